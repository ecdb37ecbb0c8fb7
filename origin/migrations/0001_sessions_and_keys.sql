-- Portable SQL: the same migration runs on Postgres and SQLite. Times are milliseconds since
-- the Unix epoch (BIGINT), the unit of the browser protocol.

-- One row per live session. Refresh tokens are stored only as SHA-256 hashes: the current one,
-- and the one it replaced (accepted again within the grace window, to serve parallel refreshes).
CREATE TABLE sessions (
    handle         TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL,
    current_hash   TEXT NOT NULL,
    previous_hash  TEXT,
    rotated_at     BIGINT,
    jwt_payload    TEXT,
    session_info   TEXT,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_id);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

-- Access-token signing keys. `generation` is unique so that origin instances racing to create
-- the next key agree on one; the private half is encrypted with the configured master key.
CREATE TABLE signing_keys (
    kid               TEXT PRIMARY KEY,
    generation        BIGINT NOT NULL UNIQUE,
    public_key        TEXT NOT NULL,
    sealed_secret     TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    signs_from        BIGINT NOT NULL
);
