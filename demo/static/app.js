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

async function loadSessions() {
  const { current, handles } = await api("/api/sessions");
  const list = $("sessions");
  list.replaceChildren(...handles.map((handle) => {
    const item = document.createElement("li");
    item.dataset.handle = handle;
    const label = document.createElement("span");
    label.textContent = handle === current ? `${handle} (this one)` : handle;
    item.append(label);
    if (handle !== current) {
      const revoke = document.createElement("button");
      revoke.className = "secondary revoke";
      revoke.textContent = "Revoke";
      revoke.addEventListener("click", async () => {
        await api(`/api/sessions/${handle}`, { method: "DELETE" });
        status("Session revoked.");
        await loadSessions();
      });
      item.append(revoke);
    }
    return item;
  }));
}

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
