// The seed library (supertokens-node-postgres-ref-jwt 4.0.0) behind express, exposing the same
// three operations the benchmark drives on Latch's origin, through its core API.
const express = require("express");
const st = require("supertokens-node-postgres-ref-jwt");

const port = Number(process.env.PORT ?? 4567);
const url = new URL(process.env.DATABASE_URL);

async function main() {
  await st.init({
    postgres: {
      config: {
        host: url.hostname,
        port: Number(url.port),
        user: decodeURIComponent(url.username),
        password: decodeURIComponent(url.password) || undefined,
        database: url.pathname.slice(1),
        // Its refresh opens a second transaction while holding the first connection, so a pool no
        // larger than the concurrency deadlocks: size it generously.
        max: Number(process.env.SEED_POOL_MAX ?? 64),
      },
    },
    tokens: { refreshToken: { renewTokenPath: "/refresh" } },
    cookie: { domain: "localhost", secure: false },
  });
  const app = express();
  app.use(express.json());
  const wrap = (fn) => async (req, res) => {
    try {
      res.json(await fn(req.body));
    } catch (err) {
      res.status(err && err.errType === st.Error.GENERAL_ERROR ? 500 : 440).json({ error: String(err && err.errType) });
    }
  };
  app.post("/create", wrap(async (body) => {
    const s = await st.createNewSession(body.user_id, body.jwt_payload, body.session_info);
    return { access_token: s.accessToken.value, refresh_token: s.refreshToken.value, anti_csrf_token: s.antiCsrfToken };
  }));
  app.post("/refresh", wrap(async (body) => {
    const s = await st.refreshSession(body.refresh_token);
    return { access_token: s.newAccessToken.value, refresh_token: s.newRefreshToken.value, anti_csrf_token: s.newAntiCsrfToken };
  }));
  app.post("/verify", wrap(async (body) => {
    const s = await st.getSession(body.access_token, body.anti_csrf_token ?? null);
    return { user_id: s.session.userId, new_access_token: s.newAccessToken ? s.newAccessToken.value : null };
  }));
  app.listen(port, "127.0.0.1", () => console.log(`seed listening on ${port}`));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
