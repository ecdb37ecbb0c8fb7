-- "Your devices": what a session was created from, for the person to recognise it, never for a
-- security decision (`origin/src/devices.rs`). Each column is NULL where the deployment does not
-- store that field or the client did not say. `client_network` is the client's address
-- truncated to its network (IPv4 /24, IPv6 /48 by default). `last_seen_at` is set at refresh
-- and at the first use of each new access token, so it is at most one access-token lifetime old.
ALTER TABLE sessions ADD COLUMN device_browser TEXT;
ALTER TABLE sessions ADD COLUMN device_os TEXT;
ALTER TABLE sessions ADD COLUMN device_kind TEXT;
ALTER TABLE sessions ADD COLUMN client_network TEXT;
ALTER TABLE sessions ADD COLUMN place_country TEXT;
ALTER TABLE sessions ADD COLUMN place_region TEXT;
ALTER TABLE sessions ADD COLUMN place_city TEXT;
ALTER TABLE sessions ADD COLUMN last_seen_at BIGINT;
