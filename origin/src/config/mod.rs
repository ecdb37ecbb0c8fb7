//! Configuration: command-line flags, `LATCH_*` environment variables and an optional TOML file,
//! in that order of precedence, validated all at once at start-up. A bad value stops the service
//! with a message naming it; nothing falls back to a default in its place.
//!
//! One module per job: [`options`] declares the settings and merges the file, [`validate`] turns
//! them into a [`Config`] (with the checks shared with the edge, `latch_shared::validate`),
//! [`secrets`] creates the development secret files, [`redact`] keeps credentials out of logs.

mod options;
mod redact;
mod secrets;
#[cfg(test)]
mod tests;
mod validate;

use std::net::SocketAddr;
use std::time::Duration;

use latch_shared::engine::AntiCsrfPolicy;

use crate::devices::DevicePolicy;
use latch_shared::protocol::CookiePolicy;
use latch_shared::secret::Secret;

use crate::limits::Quota;

pub use options::{Command, Options};
pub use redact::redact_url;

/// Every problem found in the configuration, one per line.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
pub struct ConfigError(pub Vec<String>);

/// Where revocations are written for the edge.
#[derive(Debug, Clone)]
pub enum BlacklistTarget {
    /// Cloudflare's KV REST API.
    CloudflareKv { api_url: String, account_id: String, namespace_id: String, api_token: Secret },
    /// The edge's internal endpoint, authenticated with the edge secret.
    Edge { url: String },
    /// Nowhere: the deployment said no edge fronts this origin (`no_edge`; app backends call
    /// it directly and verify strongly), so there is no blacklist to write.
    NoEdge,
}

/// The validated configuration. Its `Debug` shows no secret (the database URL may hold a
/// password, so it is one too; log it with [`redact_url`]).
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub database_url: Secret,
    pub max_connections: u32,
    pub master_key: Secret<[u8; 32]>,
    pub api_key: Secret,
    pub edge_secret: Secret,
    pub issuer: String,
    pub audience: String,
    pub access_token_lifetime: Duration,
    pub refresh_token_lifetime: Duration,
    pub key_rotation: Duration,
    pub jwks_cache: Duration,
    pub purge_interval: Duration,
    pub outbox_max_backoff: Duration,
    pub rate_limit_per_session: Quota,
    pub rate_limit_per_address: Quota,
    pub request_timeout: Duration,
    pub anti_csrf: AntiCsrfPolicy,
    /// What "your devices" stores of a new session.
    pub devices: DevicePolicy,
    pub cookies: CookiePolicy,
    pub session_expired_status: u16,
    pub blacklist: BlacklistTarget,
    pub theft_webhook_url: Option<String>,
    pub json_logs: bool,
    /// Notes about generated development secrets, logged once the logger is up.
    pub notices: Vec<String>,
}
