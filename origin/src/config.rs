//! Configuration: command-line flags, `LATCH_*` environment variables and an optional TOML file,
//! in that order of precedence, validated all at once at start-up. A bad value stops the service
//! with a message naming it; nothing falls back to a default in its place.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::limits::Quota;
use base64::{engine::general_purpose::STANDARD, Engine};
use clap::Parser;
use latch_shared::engine::{AntiCsrfPolicy, CsrfCheck, PathRule};
use latch_shared::protocol::{parse_same_site, CookiePolicy};
use latch_shared::secret::Secret;
use serde::Deserialize;

/// Declares every setting once: its flag and environment variable (clap), its TOML key
/// (serde), its help text and its default. Generates [`Settings`] (every field an `Option`:
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
                With no configuration it serves on 127.0.0.1:3567 with an embedded SQLite database and \
                development secrets in ./.latch. Every flag can also be set through the environment \
                variable shown, or in a TOML file (--config) whose keys are the flag names with \
                underscores. Flags beat environment variables, which beat the file."
        )]
        #[serde(default, deny_unknown_fields)]
        pub struct Settings {
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

        impl Settings {
            /// These settings, with `other`'s where these have none.
            fn or(self, other: Settings) -> Settings {
                Settings {
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
        impl std::fmt::Debug for Settings {
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
    /// Embed an anti-CSRF token in access tokens (the seed's enableAntiCsrf).
    anti_csrf: bool, env "LATCH_ANTI_CSRF", default true;
    /// Where the edge checks the anti-csrf header on cookie-authenticated requests no route rule
    /// names: unsafe_methods (all but GET, HEAD, OPTIONS, TRACE), all_methods (the seed's
    /// getSession(req, res, true)) or never.
    anti_csrf_check: String, env "LATCH_ANTI_CSRF_CHECK", default "unsafe_methods";
    /// Per-route anti-CSRF checks at the edge, comma-separated: /exact=CHECK or /prefix/*=CHECK,
    /// CHECK as in --anti-csrf-check; the most specific rule wins.
    anti_csrf_routes: String, env "LATCH_ANTI_CSRF_ROUTES";
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

impl Settings {
    /// Reads the TOML file named by `--config`, if any, and fills whatever flags and the
    /// environment left unset.
    pub fn with_file(self) -> Result<Settings, ConfigError> {
        let Some(path) = self.config.clone() else { return Ok(self) };
        let text = std::fs::read_to_string(&path)
            .map_err(|err| ConfigError(vec![format!("config file {}: {err}", path.display())]))?;
        let file: Settings = toml::from_str(&text)
            .map_err(|err| ConfigError(vec![format!("config file {}: {err}", path.display())]))?;
        Ok(self.or(file))
    }
}

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
    /// Nowhere: no edge is configured (an origin serving app backends directly).
    Disabled,
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
    pub cookies: CookiePolicy,
    pub session_expired_status: u16,
    pub blacklist: BlacklistTarget,
    pub theft_webhook_url: Option<String>,
    pub json_logs: bool,
    /// Notes about generated development secrets, logged once the logger is up.
    pub notices: Vec<String>,
}

const MIN_SECRET_LEN: usize = 16;

/// Reads `never`, `unsafe_methods` or `all_methods`.
fn parse_csrf_check(text: &str) -> Option<CsrfCheck> {
    match text.trim() {
        "never" => Some(CsrfCheck::Never),
        "unsafe_methods" => Some(CsrfCheck::UnsafeMethods),
        "all_methods" => Some(CsrfCheck::AllMethods),
        _ => None,
    }
}

impl Config {
    pub fn from_settings(s: Settings) -> Result<Config, ConfigError> {
        let mut errors = Vec::new();
        let mut notices = Vec::new();

        let listen = s.listen();
        let listen = listen.parse().unwrap_or_else(|_| {
            errors.push(format!("listen: {listen:?} is not an address like 127.0.0.1:3567"));
            SocketAddr::from(([127, 0, 0, 1], 3567))
        });

        let data_dir = s.data_dir();
        let database_url = match &s.database_url {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                url.clone()
            }
            Some(url) if url.starts_with("sqlite:") => url.clone(),
            Some(url) => {
                errors.push(format!(
                    "database_url: must start with postgres://, postgresql:// or sqlite:, got {:?}",
                    redact_url(url)
                ));
                String::new()
            }
            None => format!("sqlite://{}?mode=rwc", data_dir.join("latch.db").display()),
        };
        let is_sqlite = database_url.starts_with("sqlite:");

        let mut secret = |name: &str, given: &Option<Secret>, file: &str| -> Option<Secret> {
            match given {
                Some(value) if value.len() >= MIN_SECRET_LEN => Some(value.clone()),
                Some(_) => {
                    errors.push(format!("{name}: must be at least {MIN_SECRET_LEN} characters"));
                    None
                }
                None if is_sqlite => match dev_secret(&data_dir, file) {
                    Ok(value) => {
                        notices.push(format!(
                            "{name} not set: using the development secret in {}",
                            data_dir.join(file).display()
                        ));
                        Some(value)
                    }
                    Err(err) => {
                        errors.push(format!("{name}: not set, and {err}"));
                        None
                    }
                },
                None => {
                    errors.push(format!("{name}: required when the database is Postgres"));
                    None
                }
            }
        };
        let master_key_text = secret("master_key", &s.master_key, "master-key");
        let api_key = secret("api_key", &s.api_key, "api-key").unwrap_or_default();
        let edge_secret = secret("edge_secret", &s.edge_secret, "edge-secret").unwrap_or_default();
        // Generated secrets sit in a local directory: fine for a laptop, not for a service
        // others can reach.
        if !notices.is_empty() && !listen.ip().is_loopback() && !s.dev() {
            errors.push(format!(
                "master_key, api_key, edge_secret: generated development secrets are only used on a \
                 loopback address, and {listen} is not one: set the secrets (or pass --dev for a \
                 development run)"
            ));
        }
        let master_key = master_key_text
            .and_then(|text| {
                let key = STANDARD
                    .decode(text.expose().trim())
                    .ok()
                    .and_then(|b| <[u8; 32]>::try_from(b).ok());
                if key.is_none() {
                    errors.push("master_key: must be the base64 of exactly 32 bytes".into());
                }
                key
            })
            .unwrap_or([0; 32]);

        let mut seconds = |name: &str, value: u64, min: u64, max: u64| {
            if !(min..=max).contains(&value) {
                errors.push(format!("{name}: {value} is outside {min}..={max}"));
            }
            Duration::from_secs(value)
        };
        let access_token_lifetime =
            seconds("access_token_lifetime_secs", s.access_token_lifetime_secs(), 10, 86_400);
        let refresh_token_lifetime = seconds(
            "refresh_token_lifetime_secs",
            s.refresh_token_lifetime_secs(),
            60,
            365 * 86_400,
        );
        let key_rotation = seconds("key_rotation_secs", s.key_rotation_secs(), 60, 365 * 86_400);
        let jwks_cache = seconds("jwks_cache_secs", s.jwks_cache_secs(), 0, 3600);
        let purge_interval = seconds("purge_interval_secs", s.purge_interval_secs(), 1, 86_400);
        let outbox_max_backoff =
            seconds("outbox_max_backoff_secs", s.outbox_max_backoff_secs(), 1, 3600);
        let request_timeout = seconds("request_timeout_secs", s.request_timeout_secs(), 1, 300);
        let mut count = |name: &str, value: u64, min: u64| -> u32 {
            if !(min..=100_000).contains(&value) {
                errors.push(format!("{name}: {value} is outside {min}..=100000"));
            }
            u32::try_from(value.min(100_000)).expect("at most 100000")
        };
        let rate_limit_per_session = Quota {
            per_minute: count(
                "rate_limit_session_per_minute",
                s.rate_limit_session_per_minute(),
                0,
            ),
            burst: count("rate_limit_session_burst", s.rate_limit_session_burst(), 1),
        };
        let rate_limit_per_address = Quota {
            per_minute: count(
                "rate_limit_address_per_minute",
                s.rate_limit_address_per_minute(),
                0,
            ),
            burst: count("rate_limit_address_burst", s.rate_limit_address_burst(), 1),
        };
        if refresh_token_lifetime <= access_token_lifetime {
            errors
                .push("refresh_token_lifetime_secs: must exceed access_token_lifetime_secs".into());
        }

        let same_site = parse_same_site(&s.cookie_same_site()).unwrap_or_else(|err| {
            errors.push(format!("cookie_same_site: {err}"));
            CookiePolicy::default().same_site
        });
        let cookies = CookiePolicy {
            domain: s.cookie_domain.clone().filter(|d| !d.is_empty()),
            secure: s.cookie_secure(),
            same_site,
            access_token_path: s.access_token_path(),
            refresh_path: s.refresh_path(),
        };
        if let Err(err) = cookies.validate() {
            errors.push(format!("cookies: {err}"));
        }

        let check = parse_csrf_check(&s.anti_csrf_check()).unwrap_or_else(|| {
            errors.push(format!(
                "anti_csrf_check: must be never, unsafe_methods or all_methods, not {:?}",
                s.anti_csrf_check()
            ));
            CsrfCheck::UnsafeMethods
        });
        let mut routes = Vec::new();
        for rule in s.anti_csrf_routes.as_deref().unwrap_or_default().split(',') {
            let rule = rule.trim();
            if rule.is_empty() {
                continue;
            }
            let parsed = rule.split_once('=').and_then(|(pattern, check)| {
                PathRule::new(pattern.trim(), parse_csrf_check(check)?)
            });
            match parsed {
                Some(parsed) => routes.push(parsed),
                None => errors.push(format!(
                    "anti_csrf_routes: {rule:?} must be /exact=CHECK or /prefix/*=CHECK, CHECK one \
                     of never, unsafe_methods, all_methods"
                )),
            }
        }
        let anti_csrf = AntiCsrfPolicy { enabled: s.anti_csrf(), check, routes };

        let session_expired_status = s.session_expired_status();
        if !(400..=499).contains(&session_expired_status) {
            errors.push(format!("session_expired_status: {session_expired_status} is not a 4xx"));
        }

        let max_connections = s.max_connections();
        if max_connections == 0 {
            errors.push("max_connections: must be at least 1".into());
        }

        let cloudflare = (
            s.cloudflare_account_id.clone(),
            s.cloudflare_kv_namespace_id.clone(),
            s.cloudflare_api_token.clone(),
        );
        let blacklist = match cloudflare {
            (Some(account_id), Some(namespace_id), Some(api_token)) => {
                BlacklistTarget::CloudflareKv {
                    api_url: s.cloudflare_api_url(),
                    account_id,
                    namespace_id,
                    api_token,
                }
            }
            (None, None, None) => match &s.edge_url {
                Some(url) => BlacklistTarget::Edge { url: url.trim_end_matches('/').to_owned() },
                None => BlacklistTarget::Disabled,
            },
            _ => {
                errors.push(
                    "cloudflare_*: account id, KV namespace id and API token go together".into(),
                );
                BlacklistTarget::Disabled
            }
        };
        for (name, url) in [
            ("edge_url", &s.edge_url),
            ("cloudflare_api_url", &s.cloudflare_api_url),
            ("theft_webhook_url", &s.theft_webhook_url),
        ] {
            if let Some(url) = url {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    errors.push(format!("{name}: {url:?} is not an http(s) URL"));
                }
            }
        }

        let json_logs = match s.log_format().as_str() {
            "text" => false,
            "json" => true,
            other => {
                errors.push(format!("log_format: must be text or json, not {other:?}"));
                false
            }
        };

        let (issuer, audience) = (s.issuer(), s.audience());
        for (name, value) in [("issuer", &issuer), ("audience", &audience)] {
            if value.is_empty() {
                errors.push(format!("{name}: must not be empty"));
            }
        }

        if !errors.is_empty() {
            return Err(ConfigError(errors));
        }
        Ok(Config {
            listen,
            database_url: Secret::from(database_url),
            max_connections,
            master_key: Secret::new(master_key),
            api_key,
            edge_secret,
            issuer,
            audience,
            access_token_lifetime,
            refresh_token_lifetime,
            key_rotation,
            jwks_cache,
            purge_interval,
            outbox_max_backoff,
            rate_limit_per_session,
            rate_limit_per_address,
            request_timeout,
            anti_csrf,
            cookies,
            session_expired_status,
            blacklist,
            theft_webhook_url: s.theft_webhook_url.clone(),
            json_logs,
            notices,
        })
    }

    /// A configuration for tests: SQLite in memory unless a URL is given, fixed secrets.
    pub fn for_tests(database_url: &str) -> Config {
        let settings = Settings {
            database_url: Some(database_url.to_owned()),
            master_key: Some(Secret::from(STANDARD.encode([7u8; 32]))),
            api_key: Some(Secret::from("test-api-key-0123456789")),
            edge_secret: Some(Secret::from("test-edge-secret-0123456789")),
            cookie_secure: Some(false),
            ..Settings::default()
        };
        Config::from_settings(settings).expect("the test configuration is valid")
    }
}

/// Reads a development secret from `dir/file`, creating it (mode 0600) on first use.
fn dev_secret(dir: &Path, file: &str) -> Result<Secret, String> {
    let path = dir.join(file);
    if let Ok(text) = std::fs::read_to_string(&path) {
        return Ok(Secret::from(text.trim()));
    }
    std::fs::create_dir_all(dir)
        .map_err(|err| format!("cannot create {}: {err}", dir.display()))?;
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
    let value = STANDARD.encode(bytes);
    write_private(&path, &value)
        .map_err(|err| format!("cannot write {}: {err}", path.display()))?;
    Ok(Secret::from(value))
}

fn write_private(path: &Path, value: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(value.as_bytes())
}

/// A database URL with its password replaced, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn postgres_settings() -> Settings {
        Settings {
            database_url: Some("postgres://latch:pw@localhost/latch".into()),
            master_key: Some(Secret::from(STANDARD.encode([1u8; 32]))),
            api_key: Some(Secret::from("0123456789abcdef")),
            edge_secret: Some(Secret::from("fedcba9876543210")),
            ..Settings::default()
        }
    }

    #[test]
    fn defaults_match_the_docs() {
        let config = Config::from_settings(postgres_settings()).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:3567");
        assert_eq!(config.access_token_lifetime, Duration::from_secs(3600));
        assert_eq!(config.refresh_token_lifetime, Duration::from_secs(8_640_000));
        assert_eq!(config.key_rotation, Duration::from_secs(86_400));
        assert_eq!(config.session_expired_status, 440);
        assert!(config.anti_csrf.enabled && config.cookies.secure);
        assert_eq!(config.anti_csrf.check, CsrfCheck::UnsafeMethods);
        assert!(config.anti_csrf.routes.is_empty());
        assert!(matches!(config.blacklist, BlacklistTarget::Disabled));
    }

    #[test]
    fn every_bad_value_is_named() {
        let settings = Settings {
            access_token_lifetime_secs: Some(0),
            refresh_token_lifetime_secs: Some(1),
            cookie_same_site: Some("sometimes".into()),
            session_expired_status: Some(200),
            master_key: Some("short".into()),
            listen: Some("nowhere".into()),
            cloudflare_account_id: Some("acc".into()),
            ..postgres_settings()
        };
        let err = Config::from_settings(Settings {
            anti_csrf_check: Some("sometimes".into()),
            anti_csrf_routes: Some("/api/*=all_methods, api=never".into()),
            ..settings
        })
        .unwrap_err()
        .to_string();
        for name in [
            "anti_csrf_check",
            "anti_csrf_routes: \"api=never\"",
            "access_token_lifetime_secs",
            "refresh_token_lifetime_secs",
            "cookie_same_site",
            "session_expired_status",
            "master_key",
            "listen",
            "cloudflare_",
        ] {
            assert!(err.contains(name), "{name} missing from:\n{err}");
        }
    }

    #[test]
    fn anti_csrf_rules_per_route_reach_the_published_policy() {
        let settings = Settings {
            anti_csrf_check: Some("never".into()),
            anti_csrf_routes: Some("/api/*=all_methods, /api/webhook=never".into()),
            ..postgres_settings()
        };
        let policy = Config::from_settings(settings).unwrap().anti_csrf;
        assert_eq!(policy.check_for("/page"), CsrfCheck::Never);
        assert_eq!(policy.check_for("/api/orders"), CsrfCheck::AllMethods);
        assert_eq!(policy.check_for("/api/webhook"), CsrfCheck::Never);
    }

    #[test]
    fn debug_output_never_shows_a_secret() {
        let settings = Settings {
            database_url: Some("postgres://latch:db-password-123@localhost/latch".into()),
            cloudflare_account_id: Some("acc".into()),
            cloudflare_kv_namespace_id: Some("ns".into()),
            cloudflare_api_token: Some(Secret::from("cf-token-0123456789")),
            ..postgres_settings()
        };
        let config = Config::from_settings(settings.clone()).unwrap();
        for debug in [format!("{settings:?}"), format!("{config:?}")] {
            for secret in [
                "db-password-123",
                "cf-token-0123456789",
                "0123456789abcdef",
                "fedcba9876543210",
                &STANDARD.encode([1u8; 32]),
            ] {
                assert!(!debug.contains(secret), "{secret} in {debug}");
            }
        }
    }

    #[test]
    fn generated_secrets_stay_on_loopback_unless_told_it_is_a_development_run() {
        let dir = std::env::temp_dir().join(format!("latch-config-lo-{}", std::process::id()));
        let open = Settings {
            data_dir: Some(dir.clone()),
            listen: Some("0.0.0.0:3567".into()),
            ..Settings::default()
        };
        let err = Config::from_settings(open.clone()).unwrap_err().to_string();
        assert!(err.contains("only used on a loopback address"), "{err}");
        assert!(Config::from_settings(Settings { dev: Some(true), ..open }).is_ok());
        let with_secrets = Settings { listen: Some("0.0.0.0:3567".into()), ..postgres_settings() };
        assert!(Config::from_settings(with_secrets).is_ok(), "real secrets serve anywhere");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn postgres_requires_real_secrets() {
        let settings = Settings { master_key: None, api_key: None, ..postgres_settings() };
        let err = Config::from_settings(settings).unwrap_err().to_string();
        assert!(err.contains("master_key: required"), "{err}");
        assert!(err.contains("api_key: required"), "{err}");
    }

    #[test]
    fn embedded_default_generates_and_reuses_dev_secrets() {
        let dir = std::env::temp_dir().join(format!("latch-config-{}", std::process::id()));
        let settings = Settings { data_dir: Some(dir.clone()), ..Settings::default() };
        let first = Config::from_settings(settings.clone()).unwrap();
        let second = Config::from_settings(settings).unwrap();
        assert!(first.database_url.expose().starts_with("sqlite://"));
        assert_eq!(first.master_key, second.master_key);
        assert_eq!(first.api_key, second.api_key);
        assert_ne!(first.api_key, first.edge_secret);
        assert_eq!(first.notices.len(), 3);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn flags_beat_the_file() {
        let flags = Settings { issuer: Some("flag".into()), ..Settings::default() };
        let file: Settings = toml::from_str("issuer = \"file\"\naudience = \"file-aud\"").unwrap();
        let merged = flags.or(file);
        assert_eq!(merged.issuer.as_deref(), Some("flag"));
        assert_eq!(merged.audience.as_deref(), Some("file-aud"));
        assert!(toml::from_str::<Settings>("isuer = \"typo\"").is_err());
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact_url("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact_url("sqlite://x.db"), "sqlite://x.db");
    }
}
