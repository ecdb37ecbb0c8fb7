//! Configuration: command-line flags, `LATCH_*` environment variables and an optional TOML file,
//! in that order of precedence, validated all at once at start-up. A bad value stops the service
//! with a message naming it; nothing falls back to a default in its place.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::{engine::general_purpose::STANDARD, Engine};
use clap::Parser;
use latch_shared::protocol::{parse_same_site, CookiePolicy, DEFAULT_REFRESH_PATH};
use latch_shared::DEFAULT_SESSION_EXPIRED_STATUS;
use serde::Deserialize;

/// Every setting, as given. `None` means "not given here"; defaults are applied in
/// [`Config::from_settings`].
#[derive(Debug, Default, Clone, Parser, Deserialize)]
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
    /// TOML file with settings.
    #[arg(long, env = "LATCH_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,

    /// Address to listen on [default: 127.0.0.1:3567].
    #[arg(long, env = "LATCH_LISTEN")]
    pub listen: Option<String>,

    /// Postgres URL (postgres://…) or SQLite URL (sqlite://…). Unset: SQLite in --data-dir.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,

    /// Directory for the embedded database and generated development secrets [default: .latch].
    #[arg(long, env = "LATCH_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// Maximum database connections [default: 10].
    #[arg(long, env = "LATCH_MAX_CONNECTIONS")]
    pub max_connections: Option<u32>,

    /// Base64 of 32 random bytes; encrypts signing keys at rest and keys refresh-token rotation.
    /// Required with Postgres; generated into --data-dir with the embedded database.
    #[arg(long, env = "LATCH_MASTER_KEY", hide_env_values = true)]
    pub master_key: Option<String>,

    /// API key of app backends and admins (Authorization: Bearer). Required with Postgres.
    #[arg(long, env = "LATCH_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,

    /// Secret shared with the edge, in both directions. Required with Postgres.
    #[arg(long, env = "LATCH_EDGE_SECRET", hide_env_values = true)]
    pub edge_secret: Option<String>,

    /// `iss` of access tokens [default: latch].
    #[arg(long, env = "LATCH_ISSUER")]
    pub issuer: Option<String>,

    /// `aud` of access tokens [default: latch].
    #[arg(long, env = "LATCH_AUDIENCE")]
    pub audience: Option<String>,

    /// Access token lifetime in seconds, 10 to 86400 [default: 3600].
    #[arg(long, env = "LATCH_ACCESS_TOKEN_LIFETIME_SECS")]
    pub access_token_lifetime_secs: Option<u64>,

    /// Refresh token (session) lifetime in seconds, 60 to 31536000; each refresh extends it
    /// [default: 8640000, 100 days].
    #[arg(long, env = "LATCH_REFRESH_TOKEN_LIFETIME_SECS")]
    pub refresh_token_lifetime_secs: Option<u64>,

    /// Seconds during which the previous refresh token is still accepted, 0 to 300; 0 disables
    /// [default: 30].
    #[arg(long, env = "LATCH_REFRESH_GRACE_SECS")]
    pub refresh_grace_secs: Option<u64>,

    /// Signing key rotation interval in seconds, 60 to 31536000 [default: 86400].
    #[arg(long, env = "LATCH_KEY_ROTATION_SECS")]
    pub key_rotation_secs: Option<u64>,

    /// How long the edge may cache the JWKS, in seconds, 0 to 3600; a new key is published at
    /// least this long before it signs [default: 300].
    #[arg(long, env = "LATCH_JWKS_CACHE_SECS")]
    pub jwks_cache_secs: Option<u64>,

    /// Seconds between purges of expired sessions, 1 to 86400 [default: 3600].
    #[arg(long, env = "LATCH_PURGE_INTERVAL_SECS")]
    pub purge_interval_secs: Option<u64>,

    /// Embed an anti-CSRF token in access tokens [default: true].
    #[arg(long, env = "LATCH_ANTI_CSRF")]
    pub anti_csrf: Option<bool>,

    /// Cookie Domain attribute [default: none, host-only cookies].
    #[arg(long, env = "LATCH_COOKIE_DOMAIN")]
    pub cookie_domain: Option<String>,

    /// Cookie Secure attribute [default: true].
    #[arg(long, env = "LATCH_COOKIE_SECURE")]
    pub cookie_secure: Option<bool>,

    /// Cookie SameSite attribute: lax, strict or none [default: lax].
    #[arg(long, env = "LATCH_COOKIE_SAME_SITE")]
    pub cookie_same_site: Option<String>,

    /// Path of the access-token cookie [default: /].
    #[arg(long, env = "LATCH_ACCESS_TOKEN_PATH")]
    pub access_token_path: Option<String>,

    /// Browser-facing refresh endpoint, also the refresh cookie's Path [default: /session/refresh].
    #[arg(long, env = "LATCH_REFRESH_PATH")]
    pub refresh_path: Option<String>,

    /// HTTP status of session errors, 400 to 499 [default: 440].
    #[arg(long, env = "LATCH_SESSION_EXPIRED_STATUS")]
    pub session_expired_status: Option<u16>,

    /// The edge's base URL, for posting revocations to its blacklist when Cloudflare KV's REST
    /// API is not configured.
    #[arg(long, env = "LATCH_EDGE_URL")]
    pub edge_url: Option<String>,

    /// Cloudflare account id, for writing the blacklist through KV's REST API.
    #[arg(long, env = "LATCH_CLOUDFLARE_ACCOUNT_ID")]
    pub cloudflare_account_id: Option<String>,

    /// Workers KV namespace id of the edge's blacklist.
    #[arg(long, env = "LATCH_CLOUDFLARE_KV_NAMESPACE_ID")]
    pub cloudflare_kv_namespace_id: Option<String>,

    /// Cloudflare API token with KV write permission.
    #[arg(long, env = "LATCH_CLOUDFLARE_API_TOKEN", hide_env_values = true)]
    pub cloudflare_api_token: Option<String>,

    /// Cloudflare API base URL [default: https://api.cloudflare.com/client/v4].
    #[arg(long, env = "LATCH_CLOUDFLARE_API_URL")]
    pub cloudflare_api_url: Option<String>,

    /// URL that receives a JSON POST for every detected token theft.
    #[arg(long, env = "LATCH_THEFT_WEBHOOK_URL")]
    pub theft_webhook_url: Option<String>,

    /// Log format: text or json [default: text].
    #[arg(long, env = "LATCH_LOG_FORMAT")]
    pub log_format: Option<String>,
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

    fn or(self, other: Settings) -> Settings {
        macro_rules! pick {
            ($($field:ident),*) => { Settings { $($field: self.$field.or(other.$field)),* } };
        }
        pick!(
            config,
            listen,
            database_url,
            data_dir,
            max_connections,
            master_key,
            api_key,
            edge_secret,
            issuer,
            audience,
            access_token_lifetime_secs,
            refresh_token_lifetime_secs,
            refresh_grace_secs,
            key_rotation_secs,
            jwks_cache_secs,
            purge_interval_secs,
            anti_csrf,
            cookie_domain,
            cookie_secure,
            cookie_same_site,
            access_token_path,
            refresh_path,
            session_expired_status,
            edge_url,
            cloudflare_account_id,
            cloudflare_kv_namespace_id,
            cloudflare_api_token,
            cloudflare_api_url,
            theft_webhook_url,
            log_format
        )
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
    CloudflareKv { api_url: String, account_id: String, namespace_id: String, api_token: String },
    /// The edge's internal endpoint, authenticated with the edge secret.
    Edge { url: String },
    /// Nowhere: no edge is configured (an origin serving app backends directly).
    Disabled,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub database_url: String,
    pub max_connections: u32,
    pub master_key: [u8; 32],
    pub api_key: String,
    pub edge_secret: String,
    pub issuer: String,
    pub audience: String,
    pub access_token_lifetime: Duration,
    pub refresh_token_lifetime: Duration,
    pub refresh_grace: Duration,
    pub key_rotation: Duration,
    pub jwks_cache: Duration,
    pub purge_interval: Duration,
    pub anti_csrf: bool,
    pub cookies: CookiePolicy,
    pub session_expired_status: u16,
    pub blacklist: BlacklistTarget,
    pub theft_webhook_url: Option<String>,
    pub json_logs: bool,
    /// Notes about generated development secrets, logged once the logger is up.
    pub notices: Vec<String>,
}

const MIN_SECRET_LEN: usize = 16;

impl Config {
    pub fn from_settings(s: Settings) -> Result<Config, ConfigError> {
        let mut errors = Vec::new();
        let mut notices = Vec::new();

        let listen = s.listen.as_deref().unwrap_or("127.0.0.1:3567");
        let listen = listen.parse().unwrap_or_else(|_| {
            errors.push(format!("listen: {listen:?} is not an address like 127.0.0.1:3567"));
            SocketAddr::from(([127, 0, 0, 1], 3567))
        });

        let data_dir = s.data_dir.clone().unwrap_or_else(|| PathBuf::from(".latch"));
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

        let mut secret = |name: &str, given: &Option<String>, file: &str| -> Option<String> {
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
        let master_key = master_key_text
            .and_then(|text| {
                let key =
                    STANDARD.decode(text.trim()).ok().and_then(|b| <[u8; 32]>::try_from(b).ok());
                if key.is_none() {
                    errors.push("master_key: must be the base64 of exactly 32 bytes".into());
                }
                key
            })
            .unwrap_or([0; 32]);

        let mut seconds = |name: &str, given: Option<u64>, default: u64, min: u64, max: u64| {
            let value = given.unwrap_or(default);
            if !(min..=max).contains(&value) {
                errors.push(format!("{name}: {value} is outside {min}..={max}"));
            }
            Duration::from_secs(value)
        };
        let access_token_lifetime =
            seconds("access_token_lifetime_secs", s.access_token_lifetime_secs, 3600, 10, 86_400);
        let refresh_token_lifetime = seconds(
            "refresh_token_lifetime_secs",
            s.refresh_token_lifetime_secs,
            100 * 86_400,
            60,
            365 * 86_400,
        );
        let refresh_grace = seconds("refresh_grace_secs", s.refresh_grace_secs, 30, 0, 300);
        let key_rotation =
            seconds("key_rotation_secs", s.key_rotation_secs, 86_400, 60, 365 * 86_400);
        let jwks_cache = seconds("jwks_cache_secs", s.jwks_cache_secs, 300, 0, 3600);
        let purge_interval = seconds("purge_interval_secs", s.purge_interval_secs, 3600, 1, 86_400);
        if refresh_token_lifetime <= access_token_lifetime {
            errors
                .push("refresh_token_lifetime_secs: must exceed access_token_lifetime_secs".into());
        }

        let same_site = match s.cookie_same_site.as_deref().map(parse_same_site).transpose() {
            Ok(same_site) => same_site.unwrap_or(CookiePolicy::default().same_site),
            Err(err) => {
                errors.push(format!("cookie_same_site: {err}"));
                CookiePolicy::default().same_site
            }
        };
        let cookies = CookiePolicy {
            domain: s.cookie_domain.clone().filter(|d| !d.is_empty()),
            secure: s.cookie_secure.unwrap_or(true),
            same_site,
            access_token_path: s.access_token_path.clone().unwrap_or_else(|| "/".into()),
            refresh_path: s.refresh_path.clone().unwrap_or_else(|| DEFAULT_REFRESH_PATH.into()),
        };
        if let Err(err) = cookies.validate() {
            errors.push(format!("cookies: {err}"));
        }

        let session_expired_status =
            s.session_expired_status.unwrap_or(DEFAULT_SESSION_EXPIRED_STATUS);
        if !(400..=499).contains(&session_expired_status) {
            errors.push(format!("session_expired_status: {session_expired_status} is not a 4xx"));
        }

        let max_connections = s.max_connections.unwrap_or(10);
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
                    api_url: s
                        .cloudflare_api_url
                        .clone()
                        .unwrap_or_else(|| "https://api.cloudflare.com/client/v4".into()),
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

        let json_logs = match s.log_format.as_deref() {
            None | Some("text") => false,
            Some("json") => true,
            Some(other) => {
                errors.push(format!("log_format: must be text or json, not {other:?}"));
                false
            }
        };

        let issuer = s.issuer.clone().unwrap_or_else(|| "latch".into());
        let audience = s.audience.clone().unwrap_or_else(|| "latch".into());
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
            database_url,
            max_connections,
            master_key,
            api_key,
            edge_secret,
            issuer,
            audience,
            access_token_lifetime,
            refresh_token_lifetime,
            refresh_grace,
            key_rotation,
            jwks_cache,
            purge_interval,
            anti_csrf: s.anti_csrf.unwrap_or(true),
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
            master_key: Some(STANDARD.encode([7u8; 32])),
            api_key: Some("test-api-key-0123456789".into()),
            edge_secret: Some("test-edge-secret-0123456789".into()),
            cookie_secure: Some(false),
            ..Settings::default()
        };
        Config::from_settings(settings).expect("the test configuration is valid")
    }
}

/// Reads a development secret from `dir/file`, creating it (mode 0600) on first use.
fn dev_secret(dir: &Path, file: &str) -> Result<String, String> {
    let path = dir.join(file);
    if let Ok(text) = std::fs::read_to_string(&path) {
        return Ok(text.trim().to_owned());
    }
    std::fs::create_dir_all(dir)
        .map_err(|err| format!("cannot create {}: {err}", dir.display()))?;
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
    let value = STANDARD.encode(bytes);
    write_private(&path, &value)
        .map_err(|err| format!("cannot write {}: {err}", path.display()))?;
    Ok(value)
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
            master_key: Some(STANDARD.encode([1u8; 32])),
            api_key: Some("0123456789abcdef".into()),
            edge_secret: Some("fedcba9876543210".into()),
            ..Settings::default()
        }
    }

    #[test]
    fn defaults_match_the_docs() {
        let config = Config::from_settings(postgres_settings()).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:3567");
        assert_eq!(config.access_token_lifetime, Duration::from_secs(3600));
        assert_eq!(config.refresh_token_lifetime, Duration::from_secs(8_640_000));
        assert_eq!(config.refresh_grace, Duration::from_secs(30));
        assert_eq!(config.key_rotation, Duration::from_secs(86_400));
        assert_eq!(config.session_expired_status, 440);
        assert!(config.anti_csrf && config.cookies.secure);
        assert!(matches!(config.blacklist, BlacklistTarget::Disabled));
    }

    #[test]
    fn every_bad_value_is_named() {
        let settings = Settings {
            access_token_lifetime_secs: Some(0),
            refresh_grace_secs: Some(9999),
            cookie_same_site: Some("sometimes".into()),
            session_expired_status: Some(200),
            master_key: Some("short".into()),
            listen: Some("nowhere".into()),
            cloudflare_account_id: Some("acc".into()),
            ..postgres_settings()
        };
        let err = Config::from_settings(settings).unwrap_err().to_string();
        for name in [
            "access_token_lifetime_secs",
            "refresh_grace_secs",
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
        assert!(first.database_url.starts_with("sqlite://"));
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
