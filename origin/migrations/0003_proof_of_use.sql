-- Theft detection by proof of use, replacing the fixed grace window. `generation` counts the
-- session's rotations (the current refresh token's generation, and the `rgen` claim of the
-- access tokens it mints); `proven_generation` is the highest generation seen in use. The
-- previous refresh token yields the same successor while `proven_generation < generation`,
-- and is theft once the successor has been used. Sessions from before this migration start
-- unproven at generation 1: a client that lost its last refresh response can still retry.
ALTER TABLE sessions ADD COLUMN generation BIGINT NOT NULL DEFAULT 1;
ALTER TABLE sessions ADD COLUMN proven_generation BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sessions DROP COLUMN rotated_at;
