//! Turning the merged options into a [`Config`]: every value checked, every problem named.

use std::net::SocketAddr;
use std::time::Duration;

use base64::{engine::general_purpose::STANDARD, Engine};
use latch_shared::engine::{AntiCsrfPolicy, CsrfCheck, CsrfProof, PathRule};
use latch_shared::protocol::{parse_same_site, CookiePolicy};
use latch_shared::secret::Secret;
use latch_shared::validate;

use super::secrets::dev_secret;
use super::{redact_url, BlacklistTarget, Config, ConfigError, Options};
use crate::devices::DevicePolicy;
use crate::limits::Quota;

/// Reads `token` or `custom_header`.
fn parse_csrf_proof(text: &str) -> Option<CsrfProof> {
    match text.trim() {
        "token" => Some(CsrfProof::Token),
        "custom_header" => Some(CsrfProof::CustomHeader),
        _ => None,
    }
}

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
    pub fn from_options(s: Options) -> Result<Config, ConfigError> {
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
                Some(value) => match validate::secret(name, value.expose()) {
                    Ok(()) => Some(value.clone()),
                    Err(err) => {
                        errors.push(err);
                        None
                    }
                },
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
        let mut prefix = |name: &str, value: u64, max: u8| -> u8 {
            if value > u64::from(max) {
                errors.push(format!("{name}: {value} is outside 0..={max}"));
            }
            value.min(u64::from(max)) as u8
        };
        let devices = DevicePolicy {
            user_agent: s.device_user_agent(),
            ipv4_prefix: prefix("device_ipv4_prefix", s.device_ipv4_prefix(), 32),
            ipv6_prefix: prefix("device_ipv6_prefix", s.device_ipv6_prefix(), 128),
            place: s.device_place(),
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
        let proof = parse_csrf_proof(&s.anti_csrf_proof()).unwrap_or_else(|| {
            errors.push(format!(
                "anti_csrf_proof: must be token or custom_header, not {:?}",
                s.anti_csrf_proof()
            ));
            CsrfProof::Token
        });
        let anti_csrf = AntiCsrfPolicy { enabled: s.anti_csrf(), proof, check, routes };

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
                None if s.no_edge() => BlacklistTarget::NoEdge,
                // A revocation that reaches no blacklist leaves its access tokens working at
                // every edge: never by accident.
                None => {
                    errors.push(
                        "edge_url: required, so that revocations reach the edge's blacklist (or \
                         the cloudflare_* settings, to write it through KV's REST API); set \
                         no_edge = true if no edge fronts this origin"
                            .into(),
                    );
                    BlacklistTarget::NoEdge
                }
            },
            _ => {
                errors.push(
                    "cloudflare_*: account id, KV namespace id and API token go together".into(),
                );
                BlacklistTarget::NoEdge
            }
        };
        if s.no_edge() && !matches!(blacklist, BlacklistTarget::NoEdge) {
            errors.push(
                "no_edge: says no edge fronts this origin, but edge_url or cloudflare_* name one"
                    .into(),
            );
        }
        for (name, url) in [
            ("edge_url", &s.edge_url),
            ("cloudflare_api_url", &s.cloudflare_api_url),
            ("theft_webhook_url", &s.theft_webhook_url),
        ] {
            if let Some(url) = url {
                errors.extend(validate::http_url(name, url).err());
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
            devices,
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
        let settings = Options {
            database_url: Some(database_url.to_owned()),
            master_key: Some(Secret::from(STANDARD.encode([7u8; 32]))),
            // Tests that need a blacklist target set one.
            no_edge: Some(true),
            api_key: Some(Secret::from("test-api-key-0123456789")),
            edge_secret: Some(Secret::from("test-edge-secret-0123456789")),
            cookie_secure: Some(false),
            ..Options::default()
        };
        Config::from_options(settings).expect("the test configuration is valid")
    }
}
