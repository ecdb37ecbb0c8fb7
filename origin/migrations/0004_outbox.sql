-- Deliveries that must survive crashes and restarts (`origin/src/outbox.rs`): blacklist entries
-- for the edge and theft events for the webhook, each written in the transaction of the change
-- it reports. `claimed_until` is a lease: the instance delivering a row holds it until then.
CREATE TABLE outbox (
    id               TEXT PRIMARY KEY,
    kind             TEXT NOT NULL,
    payload          TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    attempts         BIGINT NOT NULL,
    next_attempt_at  BIGINT NOT NULL,
    claimed_until    BIGINT NOT NULL,
    last_error       TEXT
);
CREATE INDEX outbox_by_next_attempt ON outbox (next_attempt_at);
