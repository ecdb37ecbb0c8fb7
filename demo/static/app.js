// The protected page: every call goes through the SDK's fetch, which refreshes the session
// transparently when the edge answers 440 and sends the anti-csrf header.
supertokens.default.init({ refreshTokenUrl: "/session/refresh", sessionExpiredStatusCode: 440 });

const $ = (id) => document.getElementById(id);
const status = (text, error = false) => {
  if (document.body.dataset.signedOut) return; // keep the sign-out message
  $("status").textContent = text;
  $("status").className = error ? "error" : "";
};

async function api(path, options = {}) {
  const res = await fetch(path, {
    ...options,
    headers: { "content-type": "application/json", ...(options.headers || {}) },
  });
  if (res.status === 440) {
    // The session is over (revoked, stolen or expired): back to sign in.
    status("Your session has ended. Please sign in again.", true);
    document.body.dataset.signedOut = "true";
    setTimeout(() => location.assign("/"), 1500);
    throw new Error("session ended");
  }
  if (!res.ok) throw new Error(`${path}: ${res.status}`);
  return res.json();
}

async function loadMe() {
  const me = await api("/api/me");
  $("user").textContent = me.user_id;
  $("user-id").textContent = me.user_id;
  $("handle").textContent = me.handle;
  $("payload").textContent = JSON.stringify(me.jwt_payload);
  $("info").textContent = JSON.stringify(me.session_info);
  $("loaded-at").textContent = new Date().toLocaleTimeString();
  if (document.activeElement !== $("info-editor")) {
    $("info-editor").value = JSON.stringify(me.session_info, null, 2);
  }
  document.body.dataset.loaded = String(Date.now());
  return me;
}

// "Your devices": the edge's own endpoint (DEVICES_PATH) answers for the signed-in user; the
// app has no code for it.
const DEVICES = "/session/devices";

function describe(device) {
  const what = [device.browser, device.os && `on ${device.os}`].filter(Boolean).join(" ") || "Unknown device";
  const where = [device.city, device.region, device.country].filter(Boolean).join(", ");
  const seen = new Date(device.last_seen_at).toLocaleString();
  return [what, device.device_kind, where, device.network, `last seen ${seen}`].filter(Boolean).join(" · ");
}

async function loadSessions() {
  const { sessions, more } = await api(DEVICES);
  const list = $("sessions");
  const older = document.createElement("li");
  older.textContent = "…and older sessions: “Sign out all other devices” ends them too.";
  list.replaceChildren(...sessions.map((device) => {
    const item = document.createElement("li");
    item.dataset.handle = device.handle;
    const label = document.createElement("span");
    label.className = "device";
    label.textContent = device.current ? `${describe(device)} (this device)` : describe(device);
    item.append(label);
    if (!device.current) {
      const revoke = document.createElement("button");
      revoke.className = "secondary revoke";
      revoke.textContent = "Sign out";
      revoke.addEventListener("click", async () => {
        await api(`${DEVICES}/${encodeURIComponent(device.handle)}`, { method: "DELETE" });
        status("That device is signed out.");
        await loadSessions();
      });
      item.append(revoke);
    }
    return item;
  }), ...(more ? [older] : []));
  $("sign-out-others").hidden = sessions.length < 2 && !more;
}

$("sign-out-others").addEventListener("click", async () => {
  const { handles } = await api(DEVICES, { method: "DELETE" });
  status(`${handles.length} other device${handles.length === 1 ? "" : "s"} signed out.`);
  await loadSessions();
});
$("reload").addEventListener("click", () => loadMe().then(loadSessions).catch((e) => status(e.message, true)));
$("save-info").addEventListener("click", async () => {
  let value;
  try { value = JSON.parse($("info-editor").value); } catch { return status("Session info must be JSON.", true); }
  await api("/api/info", { method: "PUT", body: JSON.stringify({ session_info: value }) });
  status("Session info saved.");
  await loadMe();
});
$("logout").addEventListener("click", async () => {
  await api("/logout", { method: "POST" });
  location.assign("/");
});

if (!supertokens.default.doesSessionExist()) location.replace("/");
else loadMe().then(loadSessions).catch((e) => status(e.message, true));
