//! Declaring the settings (flags, `LATCH_*` environment variables, TOML keys, help and
//! defaults, each written once) and merging them with the optional TOML file.

use std::path::PathBuf;

use clap::Parser;
use latch_shared::secret::Secret;
use serde::Deserialize;

use super::ConfigError;

/// Declares every setting once: its flag and environment variable (clap), its TOML key
/// (serde), its help text and its default. Generates [`Options`] (every field an `Option`:
/// "not given here"), its merge, and for each setting with a default an accessor of the same
/// name that applies it, so the default written in `--help` is the one used.
macro_rules! settings {
    ($(
        $(#[doc = $doc:literal])+
        $name:ident: $ty:ty, env $env:literal $(, default $default:literal)?;
    )+) => {
        #[derive(Default, Clone, Parser, Deserialize)]
        #[command(
            name = "latch-origin",
            version,
            about = "Latch origin: creates, refreshes and revokes sessions; owns the signing keys.",
            long_about = "Latch origin: creates, refreshes and revokes sessions; owns the signing keys.\n\n\
                Given only where its edge is (--edge-url; or --no-edge when none fronts it), it serves \
                on 127.0.0.1:3567 with an embedded SQLite database and development secrets in \
                ./.latch. Every flag can also be set through the environment \
                variable shown, or in a TOML file (--config) whose keys are the flag names with \
                underscores. Flags beat environment variables, which beat the file."
        )]
        #[serde(default, deny_unknown_fields)]
        pub struct Options {
            #[command(subcommand)]
            #[serde(skip)]
            pub command: Option<Command>,
            /// TOML file with settings.
            #[arg(long, env = "LATCH_CONFIG")]
            #[serde(skip)]
            pub config: Option<PathBuf>,
            $(
                $(#[doc = $doc])+
                $(#[doc = concat!(" [default: ", $default, "]")])?
                #[arg(long, env = $env, hide_env_values = true)]
                pub $name: Option<$ty>,
            )+
        }

        impl Options {
            /// These settings, with `other`'s where these have none.
            pub(super) fn or(self, other: Options) -> Options {
                Options {
                    command: self.command,
                    config: self.config.or(other.config),
                    $($name: self.$name.or(other.$name)),+
                }
            }

            $($(
                #[doc = concat!("`", stringify!($name), "`, or its default (", $default, ").")]
                pub fn $name(&self) -> $ty {
                    self.$name.clone().unwrap_or_else(|| <$ty as SettingDefault>::from_literal($default))
                }
            )?)+
        }

        /// Names every setting given, never a value: secrets stay out of logs.
        impl std::fmt::Debug for Options {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let mut given = f.debug_set();
                if self.config.is_some() {
                    given.entry(&"config");
                }
                $(if self.$name.is_some() {
                    given.entry(&stringify!($name));
                })+
                given.finish()
            }
        }
    };
}

/// How a default written as a literal in [`settings!`] becomes the setting's value.
trait SettingDefault {
    type Literal;
    fn from_literal(literal: Self::Literal) -> Self;
}

macro_rules! setting_defaults {
    ($($ty:ty: $literal:ty => $convert:expr;)+) => {
        $(impl SettingDefault for $ty {
            type Literal = $literal;
            fn from_literal(literal: $literal) -> Self {
                $convert(literal)
            }
        })+
    };
}

setting_defaults! {
    String: &'static str => String::from;
    PathBuf: &'static str => PathBuf::from;
    u64: u64 => std::convert::identity;
    u32: u32 => std::convert::identity;
    u16: u16 => std::convert::identity;
    bool: bool => std::convert::identity;
}

settings! {
    /// Address to listen on.
    listen: String, env "LATCH_LISTEN", default "127.0.0.1:3567";
    /// Postgres URL (postgres://…) or SQLite URL (sqlite://…). Unset: SQLite in --data-dir.
    database_url: String, env "DATABASE_URL";
    /// Directory for the embedded database and generated development secrets.
    data_dir: PathBuf, env "LATCH_DATA_DIR", default ".latch";
    /// Maximum database connections.
    max_connections: u32, env "LATCH_MAX_CONNECTIONS", default 10;
    /// Base64 of 32 random bytes; encrypts signing keys at rest and keys refresh-token rotation.
    /// Required with Postgres; generated into --data-dir with the embedded database.
    master_key: Secret, env "LATCH_MASTER_KEY";
    /// API key of app backends and admins (Authorization: Bearer). Required with Postgres.
    api_key: Secret, env "LATCH_API_KEY";
    /// Secret shared with the edge, in both directions. Required with Postgres.
    edge_secret: Secret, env "LATCH_EDGE_SECRET";
    /// `iss` of access tokens.
    issuer: String, env "LATCH_ISSUER", default "latch";
    /// `aud` of access tokens.
    audience: String, env "LATCH_AUDIENCE", default "latch";
    /// Access token lifetime in seconds, 10 to 86400.
    access_token_lifetime_secs: u64, env "LATCH_ACCESS_TOKEN_LIFETIME_SECS", default 3600;
    /// Refresh token (session) lifetime in seconds, 60 to 31536000; each refresh extends it
    /// (8640000 is 100 days).
    refresh_token_lifetime_secs: u64, env "LATCH_REFRESH_TOKEN_LIFETIME_SECS", default 8640000;
    /// Signing key rotation interval in seconds, 60 to 31536000.
    key_rotation_secs: u64, env "LATCH_KEY_ROTATION_SECS", default 86400;
    /// How long the edge may cache the JWKS, in seconds, 0 to 3600; a new key is published at
    /// least this long before it signs.
    jwks_cache_secs: u64, env "LATCH_JWKS_CACHE_SECS", default 300;
    /// The longest a request may take, in seconds, 1 to 300: then it is answered 503.
    request_timeout_secs: u64, env "LATCH_REQUEST_TIMEOUT_SECS", default 10;
    /// Seconds between purges of expired sessions, 1 to 86400.
    purge_interval_secs: u64, env "LATCH_PURGE_INTERVAL_SECS", default 3600;
    /// Longest wait between attempts to deliver a revocation to the edge (or a theft event to
    /// the webhook), in seconds, 1 to 3600: once the edge is back, revoked sessions are
    /// blacklisted within this long.
    outbox_max_backoff_secs: u64, env "LATCH_OUTBOX_MAX_BACKOFF_SECS", default 60;
    /// Refreshes one session may make per minute, sustained, 0 to 100000 (0: no limit).
    rate_limit_session_per_minute: u64, env "LATCH_RATE_LIMIT_SESSION_PER_MINUTE", default 30;
    /// Refreshes one session may make at once before the per-minute rate applies, 1 to 100000
    /// (parallel tabs each refresh: keep it at 50 or more).
    rate_limit_session_burst: u64, env "LATCH_RATE_LIMIT_SESSION_BURST", default 60;
    /// Refreshes and session creations one client address (IPv6: its /64) may make per minute,
    /// sustained, 0 to 100000 (0: no limit).
    rate_limit_address_per_minute: u64, env "LATCH_RATE_LIMIT_ADDRESS_PER_MINUTE", default 600;
    /// Refreshes and session creations one client address may make at once, 1 to 100000.
    rate_limit_address_burst: u64, env "LATCH_RATE_LIMIT_ADDRESS_BURST", default 300;
    /// Protect cookie-authenticated requests against cross-site forgery (the seed's
    /// enableAntiCsrf); false turns every check off.
    anti_csrf: bool, env "LATCH_ANTI_CSRF", default true;
    /// What proves a request genuine: token (an anti-CSRF token minted into the access token,
    /// echoed in the anti-csrf header by both SDK generations) or custom_header (the rid header
    /// today's SDKs send, supertokens-node's VIA_CUSTOM_HEADER, for SameSite=None cookies; no
    /// token is minted, and supertokens-website 4.x passes only same-origin requests).
    anti_csrf_proof: String, env "LATCH_ANTI_CSRF_PROOF", default "token";
    /// Where the edge checks the anti-csrf header on cookie-authenticated requests no route rule
    /// names: unsafe_methods (all but GET, HEAD, OPTIONS, TRACE), all_methods (the seed's
    /// getSession(req, res, true)) or never.
    anti_csrf_check: String, env "LATCH_ANTI_CSRF_CHECK", default "unsafe_methods";
    /// Per-route anti-CSRF checks at the edge, comma-separated: /exact=CHECK or /prefix/*=CHECK,
    /// CHECK as in --anti-csrf-check; the most specific rule wins.
    anti_csrf_routes: String, env "LATCH_ANTI_CSRF_ROUTES";
    /// "Your devices": store the browser, OS and kind of device parsed from a new session's
    /// User-Agent (never the header itself).
    device_user_agent: bool, env "LATCH_DEVICE_USER_AGENT", default true;
    /// "Your devices": leading bits of a new session's IPv4 address stored as its network,
    /// 0 (no address stored) to 32.
    device_ipv4_prefix: u64, env "LATCH_DEVICE_IPV4_PREFIX", default 24;
    /// "Your devices": leading bits of an IPv6 address stored, 0 (none) to 128.
    device_ipv6_prefix: u64, env "LATCH_DEVICE_IPV6_PREFIX", default 48;
    /// "Your devices": store the country, region and city Cloudflare reports for the request
    /// that made a session.
    device_place: bool, env "LATCH_DEVICE_PLACE", default true;
    /// Cookie Domain attribute; unset: host-only cookies.
    cookie_domain: String, env "LATCH_COOKIE_DOMAIN";
    /// Cookie Secure attribute.
    cookie_secure: bool, env "LATCH_COOKIE_SECURE", default true;
    /// Cookie SameSite attribute: lax, strict or none.
    cookie_same_site: String, env "LATCH_COOKIE_SAME_SITE", default "lax";
    /// Path of the access-token cookie.
    access_token_path: String, env "LATCH_ACCESS_TOKEN_PATH", default "/";
    /// Browser-facing refresh endpoint, also the refresh cookie's Path.
    refresh_path: String, env "LATCH_REFRESH_PATH", default "/session/refresh";
    /// HTTP status of session errors, 400 to 499.
    session_expired_status: u16, env "LATCH_SESSION_EXPIRED_STATUS", default 440;
    /// The edge's base URL, for posting revocations to its blacklist when Cloudflare KV's REST
    /// API is not configured.
    edge_url: String, env "LATCH_EDGE_URL";
    /// No edge fronts this origin (app backends call it directly): revocations are written to
    /// no blacklist. Without it, edge_url or the cloudflare_* settings are required, so that a
    /// revoked session's access tokens stop working at the edge.
    no_edge: bool, env "LATCH_NO_EDGE", default false;
    /// Cloudflare account id, for writing the blacklist through KV's REST API.
    cloudflare_account_id: String, env "LATCH_CLOUDFLARE_ACCOUNT_ID";
    /// Workers KV namespace id of the edge's blacklist.
    cloudflare_kv_namespace_id: String, env "LATCH_CLOUDFLARE_KV_NAMESPACE_ID";
    /// Cloudflare API token with KV write permission.
    cloudflare_api_token: Secret, env "LATCH_CLOUDFLARE_API_TOKEN";
    /// Cloudflare API base URL.
    cloudflare_api_url: String, env "LATCH_CLOUDFLARE_API_URL", default "https://api.cloudflare.com/client/v4";
    /// URL that receives a JSON POST for every detected token theft.
    theft_webhook_url: String, env "LATCH_THEFT_WEBHOOK_URL";
    /// Log format: text or json.
    log_format: String, env "LATCH_LOG_FORMAT", default "text";
    /// A development run: generated development secrets are used even on an address other
    /// than loopback. Never in production.
    dev: bool, env "LATCH_DEV", default false;
}

/// What to do instead of serving.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Probes this configuration's /readyz (on 127.0.0.1 when listening on every address):
    /// exit status 0 when ready, 1 otherwise. For container health checks.
    Healthcheck,
}

impl Options {
    /// Reads the TOML file named by `--config`, if any, and fills whatever flags and the
    /// environment left unset.
    pub fn with_file(self) -> Result<Options, ConfigError> {
        let Some(path) = self.config.clone() else { return Ok(self) };
        let text = std::fs::read_to_string(&path)
            .map_err(|err| ConfigError(vec![format!("config file {}: {err}", path.display())]))?;
        let file: Options = toml::from_str(&text)
            .map_err(|err| ConfigError(vec![format!("config file {}: {err}", path.display())]))?;
        Ok(self.or(file))
    }
}
