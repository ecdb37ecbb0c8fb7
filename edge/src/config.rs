//! The edge's own configuration: `wrangler.toml` vars and secrets, read once per isolate and
//! validated whole. Only what is edge-specific lives here (where the origin and the app are, the
//! route rules, CORS, the blacklist's behaviour, secrets); what edge and origin must agree on
//! (issuer, audience, cookies, statuses, anti-CSRF rules, token lifetimes) is set at the origin
//! and fetched from its settings document (`latch_shared::settings`).

use latch_shared::assertion::AssertionSigner;
use latch_shared::claims::{self, ClaimRules};
use latch_shared::engine::{Access, PathRule, Routes};
use latch_shared::secret::Secret;
use latch_shared::validate;

/// The edge's variables that are secrets: set with `wrangler secret put` (or `.dev.vars`
/// locally), never in `wrangler.toml`'s `[vars]`, which are public in the dashboard and the
/// repository.
pub const SECRETS: [&str; 2] = ["EDGE_SECRET", "ASSERTION_KEYS"];

/// Every problem an edge configuration has, one sentence each, naming the variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub problems: Vec<String>,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.problems.join("; "))
    }
}

impl std::error::Error for ConfigError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlacklistMode {
    Off,
    /// If KV cannot be read, refuse the request (503).
    FailClosed,
    /// If KV cannot be read, let the request through.
    FailOpen,
}

#[derive(Debug, Clone)]
pub struct EdgeConfig {
    pub origin_url: String,
    pub upstream_url: String,
    pub routes: Routes,
    /// What routes require of the access token's payload (`latch_shared::claims`).
    pub claim_rules: ClaimRules,
    pub blacklist: BlacklistMode,
    /// How long a KV answer about a session is reused in the isolate: part of the revocation
    /// delay (a session revoked elsewhere is refused at most this long after KV has it).
    pub blacklist_cache_secs: u64,
    pub signout_path: String,
    pub session_info_path: String,
    /// "Your devices" for the signed-in user: GET lists, DELETE signs out the others,
    /// DELETE `{path}/{handle}` signs out one.
    pub devices_path: String,
    /// How long the origin's settings document (with its keys) is reused before a refetch.
    pub settings_cache_secs: u64,
    /// The least time between two fetches from the origin on an unknown `kid` (whatever the
    /// kid: any fetch brings every current key).
    pub jwks_refetch_cooldown_secs: u64,
    /// The longest the edge keeps trusting keys it could not refresh (the origin unreachable):
    /// past it, protected routes answer 503 rather than trust a key that may have been retired.
    pub max_stale_keys_secs: u64,
    pub cors_allowed_origins: Vec<String>,
    pub max_header_bytes: usize,
    /// Where a browser whose session is over is sent (a page says so without one).
    pub login_url: Option<String>,
    /// Whether Fetch Metadata proving a request same-origin stands in for the anti-csrf header
    /// (plain HTML forms of the site itself).
    pub fetch_metadata_csrf: bool,
    /// Whether the app receives the session cookies (off: the edge takes them out; the
    /// assertion says who is calling).
    pub forward_session_cookies: bool,
    /// A path whose request panics the WASM instance, to test recovery; empty (off) by default.
    pub crash_test_path: Option<String>,
    pub edge_secret: Secret,
    /// Signs the identity assertion the app checks (`latch_shared::assertion`); its `Debug`
    /// shows key ids only.
    pub assertion: AssertionSigner,
    /// The assertion keys' JWKS, served at `ASSERTION_JWKS_PATH`.
    pub assertion_jwks: String,
}

impl EdgeConfig {
    /// Builds the configuration from a variable lookup (vars and secrets alike). The error names
    /// every bad value; it is for the log and `latch check-edge`, never for clients.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<EdgeConfig, ConfigError> {
        let mut errors: Vec<String> = Vec::new();
        let mut text = |name: &str, default: Option<&str>| -> String {
            match get(name).filter(|v| !v.is_empty()).or(default.map(str::to_owned)) {
                Some(value) => value,
                None => {
                    errors.push(format!("{name} is required"));
                    String::new()
                }
            }
        };
        let origin_url = text("ORIGIN_URL", None);
        let upstream_url = text("UPSTREAM_URL", None);
        let default_route = text("DEFAULT_ROUTE", Some("protected"));
        // Not `BLACKLIST`: that name is the KV namespace binding, which would shadow a var.
        let blacklist = text("BLACKLIST_CHECK", Some("on"));
        let blacklist_failure = text("BLACKLIST_FAILURE", Some("closed"));
        let blacklist_cache = text("BLACKLIST_CACHE_SECS", Some("10"));
        let signout_path = text("SIGNOUT_PATH", Some("/session/signout"));
        let session_info_path = text("SESSION_INFO_PATH", Some("/session/info"));
        let devices_path = text("DEVICES_PATH", Some("/session/devices"));
        let settings_cache = text("SETTINGS_CACHE_SECS", Some("300"));
        let cooldown = text("JWKS_REFETCH_COOLDOWN_SECS", Some("1"));
        let max_stale = text("MAX_STALE_KEYS_SECS", Some("3600"));
        let max_header = text("MAX_HEADER_BYTES", Some("16384"));
        let edge_secret = text("EDGE_SECRET", None);
        let assertion_keys = text("ASSERTION_KEYS", None);
        let assertion_issuer = text("ASSERTION_ISSUER", Some("latch-edge"));
        let assertion_audience = get("ASSERTION_AUDIENCE").filter(|v| !v.is_empty());
        let cors = get("CORS_ALLOWED_ORIGINS").unwrap_or_default();
        let public = get("PUBLIC_PATHS").unwrap_or_default();
        let optional = get("OPTIONAL_PATHS").unwrap_or_default();
        let protected = get("PROTECTED_PATHS").unwrap_or_default();
        let claims = get("CLAIM_RULES").unwrap_or_default();
        let crash_test_path = get("CRASH_TEST_PATH").filter(|v| !v.is_empty());
        let forward_cookies = text("FORWARD_SESSION_COOKIES", Some("off"));
        let login_url = get("LOGIN_URL").filter(|v| !v.is_empty());
        let fetch_metadata = text("FETCH_METADATA_CSRF", Some("on"));

        let mut number = |name: &str, value: &str, min: u64, max: u64| -> u64 {
            match value.parse::<u64>() {
                Ok(n) if (min..=max).contains(&n) => n,
                _ => {
                    errors.push(format!(
                        "{name} must be a whole number in {min}..={max}, not {value:?}"
                    ));
                    min
                }
            }
        };
        let blacklist_cache_secs = number("BLACKLIST_CACHE_SECS", &blacklist_cache, 0, 60);
        let settings_cache_secs = number("SETTINGS_CACHE_SECS", &settings_cache, 0, 86_400);
        let jwks_refetch_cooldown_secs = number("JWKS_REFETCH_COOLDOWN_SECS", &cooldown, 1, 3600);
        let max_stale_keys_secs = number("MAX_STALE_KEYS_SECS", &max_stale, 60, 7 * 86_400);
        let max_header_bytes = number("MAX_HEADER_BYTES", &max_header, 1024, 65_536) as usize;
        if max_stale_keys_secs < settings_cache_secs {
            errors.push(format!(
                "MAX_STALE_KEYS_SECS ({max_stale_keys_secs}) must be at least SETTINGS_CACHE_SECS ({settings_cache_secs})"
            ));
        }

        let mut choice = |name: &str, value: &str, options: &[&str]| -> usize {
            options.iter().position(|o| o.eq_ignore_ascii_case(value)).unwrap_or_else(|| {
                errors.push(format!("{name} must be one of {}, not {value:?}", options.join(", ")));
                0
            })
        };
        let access_of = [Access::Protected, Access::Optional, Access::Public];
        let default = access_of
            [choice("DEFAULT_ROUTE", &default_route, &["protected", "optional", "public"])];
        let blacklist_on = choice("BLACKLIST_CHECK", &blacklist, &["on", "off"]) == 0;
        let forward_session_cookies =
            choice("FORWARD_SESSION_COOKIES", &forward_cookies, &["off", "on"]) == 1;
        let fetch_metadata_csrf =
            choice("FETCH_METADATA_CSRF", &fetch_metadata, &["on", "off"]) == 0;
        let fail_open = choice("BLACKLIST_FAILURE", &blacklist_failure, &["closed", "open"]) == 1;
        let blacklist = match (blacklist_on, fail_open) {
            (false, _) => BlacklistMode::Off,
            (true, false) => BlacklistMode::FailClosed,
            (true, true) => BlacklistMode::FailOpen,
        };

        // A missing value is already named as required.
        for (name, url) in [("ORIGIN_URL", &origin_url), ("UPSTREAM_URL", &upstream_url)] {
            if !url.is_empty() {
                errors.extend(validate::http_url(name, url).err());
            }
        }
        if !edge_secret.is_empty() {
            errors.extend(validate::secret("EDGE_SECRET", &edge_secret).err());
        }
        // The app this edge fronts: by default, its upstream URL.
        let upstream = upstream_url.trim_end_matches('/').to_owned();
        let audience = assertion_audience.unwrap_or_else(|| upstream.clone());
        let assertion = if assertion_keys.is_empty() {
            None
        } else {
            AssertionSigner::from_seeds(&assertion_keys, assertion_issuer, audience)
                .map_err(|err| errors.push(err.to_string()))
                .ok()
        };
        if let Some(login) = &login_url {
            let http = validate::http_url("LOGIN_URL", login).is_ok();
            let path = login.starts_with('/') && !login.starts_with("//");
            if !(http || path) || login.chars().any(char::is_control) {
                errors.push(format!(
                    "LOGIN_URL must be a path (/login) or an http(s) URL, not {login:?}"
                ));
            }
        }
        for (name, path) in [
            ("SIGNOUT_PATH", &signout_path),
            ("SESSION_INFO_PATH", &session_info_path),
            ("DEVICES_PATH", &devices_path),
        ] {
            if !path.starts_with('/') {
                errors.push(format!("{name} must start with '/', not {path:?}"));
            }
        }

        let mut rules = Vec::new();
        for (name, list, access) in [
            ("PUBLIC_PATHS", &public, Access::Public),
            ("OPTIONAL_PATHS", &optional, Access::Optional),
            ("PROTECTED_PATHS", &protected, Access::Protected),
        ] {
            for pattern in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                match PathRule::new(pattern, access) {
                    Some(rule) => rules.push(rule),
                    None => errors.push(format!(
                        "{name}: {pattern:?} must be /exact/path or /prefix/* (one trailing /*)"
                    )),
                }
            }
        }

        let routes = Routes { rules, default };
        if let Some(login) = login_url.as_deref().filter(|login| login.starts_with('/')) {
            let path = login.split(['?', '#']).next().unwrap_or(login);
            if routes.access(path) == Access::Protected {
                errors.push(format!(
                    "LOGIN_URL {login:?} is a protected route: a browser sent there would be sent \
                     there again; list it in PUBLIC_PATHS"
                ));
            }
        }

        let claim_rules = claims::parse_rules(&claims)
            .map_err(|err| errors.push(format!("CLAIM_RULES: {err}")))
            .unwrap_or_default();
        // A claim rule holds only where a session is required: on a public or optional route,
        // a request without one would reach the app unchecked, and so would a public or
        // optional rule more specific than the claimed prefix.
        for rule in &claim_rules {
            let prefix = rule.path.strip_suffix("/*");
            let path = prefix.unwrap_or(&rule.path);
            if routes.access(if path.is_empty() { "/" } else { path }) != Access::Protected {
                errors.push(format!(
                    "CLAIM_RULES: {:?} is not a protected route, so a request without a session \
                     would pass unchecked: list it in PROTECTED_PATHS",
                    rule.path
                ));
            }
            let Some(prefix) = prefix else { continue };
            for inner in routes.rules.iter().filter(|route| route.value != Access::Protected) {
                let below = inner.path.trim_end_matches("/*").strip_prefix(prefix);
                if below.is_some_and(|below| below.starts_with('/')) {
                    errors.push(format!(
                        "CLAIM_RULES: {:?} is claimed, but {:?} inside it is not protected",
                        rule.path, inner.path
                    ));
                }
            }
        }

        let cors_allowed_origins: Vec<String> =
            cors.split(',').map(str::trim).filter(|o| !o.is_empty()).map(str::to_owned).collect();
        for origin in &cors_allowed_origins {
            let host = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://"));
            if !host.is_some_and(|host| !host.is_empty() && !host.contains(['/', '*'])) {
                errors.push(format!(
                    "CORS_ALLOWED_ORIGINS: {origin:?} must be an exact origin like https://app.example.com"
                ));
            }
        }

        let Some(assertion) = assertion.filter(|_| errors.is_empty()) else {
            return Err(ConfigError { problems: errors });
        };
        let assertion_jwks =
            serde_json::to_string(&assertion.jwks()).expect("a JWKS always serialises");
        Ok(EdgeConfig {
            origin_url: origin_url.trim_end_matches('/').to_owned(),
            upstream_url: upstream,
            routes,
            claim_rules,
            blacklist,
            blacklist_cache_secs,
            signout_path,
            session_info_path,
            devices_path,
            settings_cache_secs,
            jwks_refetch_cooldown_secs,
            max_stale_keys_secs,
            cors_allowed_origins,
            max_header_bytes,
            crash_test_path,
            login_url,
            fetch_metadata_csrf,
            forward_session_cookies,
            edge_secret: Secret::from(edge_secret),
            assertion,
            assertion_jwks,
        })
    }

    pub fn allows_origin(&self, origin: &str) -> bool {
        self.cors_allowed_origins.iter().any(|allowed| allowed == origin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let mut map: HashMap<String, String> = [
            ("ORIGIN_URL", "http://127.0.0.1:3567"),
            ("UPSTREAM_URL", "http://127.0.0.1:8080/"),
            ("EDGE_SECRET", "edge-secret-0123456789"),
            ("ASSERTION_KEYS", "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        for (k, v) in pairs {
            map.insert((*k).to_owned(), (*v).to_owned());
        }
        move |name| map.get(name).cloned()
    }

    #[test]
    fn defaults_are_safe() {
        let config = EdgeConfig::from_lookup(lookup(&[])).unwrap();
        assert_eq!(config.upstream_url, "http://127.0.0.1:8080");
        assert_eq!(config.routes.access("/anything"), Access::Protected);
        assert_eq!(config.blacklist, BlacklistMode::FailClosed);
        assert_eq!(config.blacklist_cache_secs, 10);
        assert_eq!(config.crash_test_path, None);
        assert_eq!(config.assertion.issuer(), "latch-edge");
        assert_eq!(
            config.assertion.audience(),
            "http://127.0.0.1:8080",
            "the upstream, by default"
        );
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let config = EdgeConfig::from_lookup(lookup(&[])).unwrap();
        let debug = format!("{config:?}");
        assert!(!debug.contains("edge-secret-0123456789"), "{debug}");
        assert!(!debug.contains("AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE"), "{debug}");
    }

    #[test]
    fn route_rules_come_from_the_three_lists() {
        let config = EdgeConfig::from_lookup(lookup(&[
            ("PUBLIC_PATHS", "/, /static/*"),
            ("PROTECTED_PATHS", "/static/private/*"),
            ("OPTIONAL_PATHS", "/feed"),
            ("DEFAULT_ROUTE", "public"),
        ]))
        .unwrap();
        assert_eq!(config.routes.access("/static/x"), Access::Public);
        assert_eq!(config.routes.access("/static/private/x"), Access::Protected);
        assert_eq!(config.routes.access("/feed"), Access::Optional);
        assert_eq!(config.routes.access("/other"), Access::Public);
    }

    #[test]
    fn every_bad_value_is_named() {
        let err = EdgeConfig::from_lookup(lookup(&[
            ("ORIGIN_URL", ""),
            ("UPSTREAM_URL", "ftp://x"),
            ("BLACKLIST_CHECK", "maybe"),
            ("BLACKLIST_CACHE_SECS", "600"),
            ("PUBLIC_PATHS", "static/*"),
            ("CORS_ALLOWED_ORIGINS", "*"),
            ("ASSERTION_KEYS", "short"),
        ]))
        .unwrap_err()
        .to_string();
        for name in [
            "ORIGIN_URL",
            "UPSTREAM_URL",
            "BLACKLIST_CHECK",
            "BLACKLIST_CACHE_SECS",
            "PUBLIC_PATHS",
            "CORS_ALLOWED_ORIGINS",
            "ASSERTION_KEYS",
        ] {
            assert!(err.contains(name), "{name} missing from: {err}");
        }
    }

    #[test]
    fn claim_rules_hold_only_where_a_session_is_required() {
        let config = EdgeConfig::from_lookup(lookup(&[
            ("PUBLIC_PATHS", "/, /login"),
            ("CLAIM_RULES", "/admin/*: role includes admin"),
        ]))
        .unwrap();
        assert!(latch_shared::engine::most_specific(&config.claim_rules, "/admin/x").is_some());
        for (rules, names) in [
            ("/login: role = admin", "not a protected route"),
            ("/feed: role = admin", "not a protected route"),
            ("/: role = admin", "not a protected route"),
            ("/admin/*: role = admin", "inside it is not protected"),
            ("/admin/* role includes admin", "PATH: REQUIREMENT"),
        ] {
            let err = EdgeConfig::from_lookup(lookup(&[
                ("PUBLIC_PATHS", "/, /login, /admin/help/*"),
                ("OPTIONAL_PATHS", "/feed"),
                ("CLAIM_RULES", rules),
            ]))
            .unwrap_err()
            .to_string();
            assert!(err.contains("CLAIM_RULES") && err.contains(names), "{rules}: {err}");
        }
    }

    #[test]
    fn a_login_url_behind_the_login_wall_is_refused() {
        let err =
            EdgeConfig::from_lookup(lookup(&[("LOGIN_URL", "/login")])).unwrap_err().to_string();
        assert!(err.contains("LOGIN_URL"), "{err}");
        let config = EdgeConfig::from_lookup(lookup(&[
            ("LOGIN_URL", "/login?next=1"),
            ("PUBLIC_PATHS", "/login"),
        ]))
        .unwrap();
        assert_eq!(config.login_url.as_deref(), Some("/login?next=1"));
        assert!(
            EdgeConfig::from_lookup(lookup(&[("LOGIN_URL", "https://id.example.com/")])).is_ok()
        );
        assert!(EdgeConfig::from_lookup(lookup(&[("LOGIN_URL", "//evil.test")])).is_err());
    }

    #[test]
    fn the_blacklist_check_can_be_turned_off() {
        let config = EdgeConfig::from_lookup(lookup(&[("BLACKLIST_CHECK", "off")])).unwrap();
        assert_eq!(config.blacklist, BlacklistMode::Off);
        let config = EdgeConfig::from_lookup(lookup(&[("BLACKLIST_FAILURE", "open")])).unwrap();
        assert_eq!(config.blacklist, BlacklistMode::FailOpen);
    }

    #[test]
    fn the_docs_table_lists_exactly_the_variables_read() {
        let read = std::cell::RefCell::new(std::collections::BTreeSet::new());
        let _ = EdgeConfig::from_lookup(|name| {
            read.borrow_mut().insert(name.to_owned());
            None
        });
        let docs = include_str!("../../docs/configuration.md");
        let edge_docs = docs.split("## Edge").nth(1).unwrap().split("### ").next().unwrap();
        let documented: std::collections::BTreeSet<String> = edge_docs
            .lines()
            .filter_map(|line| line.strip_prefix("| `"))
            .flat_map(|rest| {
                // A row may name two variables: `ISSUER` / `AUDIENCE`.
                let cell = rest.split(" |").next().unwrap_or_default();
                cell.split('`')
                    .step_by(2)
                    .map(str::trim)
                    .filter(|n| !n.is_empty() && *n != "/")
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .map(|name| name.trim_end_matches(" (secret)").to_owned())
            .collect();
        assert_eq!(documented, read.into_inner(), "docs/configuration.md's edge table is stale");
    }

    #[test]
    fn the_docs_mark_exactly_the_secrets_as_secrets() {
        let docs = include_str!("../../docs/configuration.md");
        let edge_docs = docs.split("## Edge").nth(1).unwrap().split("### ").next().unwrap();
        let marked: Vec<&str> = edge_docs
            .lines()
            .filter_map(|line| line.strip_prefix("| `")?.split_once("` (secret)"))
            .map(|(name, _)| name)
            .collect();
        assert_eq!(marked, SECRETS);
    }

    #[test]
    fn cors_origins_match_exactly() {
        let config = EdgeConfig::from_lookup(lookup(&[(
            "CORS_ALLOWED_ORIGINS",
            "https://app.example.com, http://localhost:5173",
        )]))
        .unwrap();
        assert!(config.allows_origin("https://app.example.com"));
        assert!(config.allows_origin("http://localhost:5173"));
        assert!(!config.allows_origin("https://app.example.com.evil.test"));
        assert!(!config.allows_origin("null"));
    }
}
