//! The edge's configuration: `wrangler.toml` vars and secrets, read once per isolate and
//! validated whole. A bad value makes every request answer 500 naming it.

use latch_shared::protocol::{parse_same_site, CookiePolicy, SameSite, DEFAULT_REFRESH_PATH};
use latch_shared::DEFAULT_SESSION_EXPIRED_STATUS;

/// What a path needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Forwarded without identity (client identity headers are still stripped).
    Public,
    /// Forwarded with identity when a valid session is present, without it otherwise.
    Optional,
    /// Requires a valid session; otherwise answered with a session error.
    Protected,
}

/// One path rule: `/exact`, or `/prefix/*` for everything below (and `/prefix` itself).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    pattern: String,
    access: Access,
}

impl Rule {
    /// Specificity for longest-match ordering.
    fn matches(&self, path: &str) -> Option<usize> {
        match self.pattern.strip_suffix("/*") {
            Some(prefix) => {
                let below = path.strip_prefix(prefix)?;
                (below.is_empty() || below.starts_with('/')).then_some(prefix.len())
            }
            None => (path == self.pattern).then_some(self.pattern.len() + 1),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routes {
    rules: Vec<Rule>,
    default: Access,
}

impl Routes {
    /// The access rule of `path`: the most specific matching rule, else the default.
    pub fn access(&self, path: &str) -> Access {
        self.rules
            .iter()
            .filter_map(|rule| rule.matches(path).map(|len| (len, rule.access)))
            .max_by_key(|(len, _)| *len)
            .map(|(_, access)| access)
            .unwrap_or(self.default)
    }
}

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
    pub issuer: String,
    pub audience: String,
    pub routes: Routes,
    pub anti_csrf: bool,
    pub blacklist: BlacklistMode,
    pub cookies: CookiePolicy,
    pub signout_path: String,
    pub session_info_path: String,
    pub session_expired_status: u16,
    pub jwks_cache_secs: u64,
    pub jwks_refetch_cooldown_secs: u64,
    pub blacklist_ttl_secs: u64,
    pub cors_allowed_origins: Vec<String>,
    pub max_header_bytes: usize,
    pub edge_secret: String,
    pub app_secret: String,
}

const MIN_SECRET_LEN: usize = 16;

impl EdgeConfig {
    /// Builds the configuration from a variable lookup (vars and secrets alike).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<EdgeConfig, String> {
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
        let issuer = text("ISSUER", Some("latch"));
        let audience = text("AUDIENCE", Some("latch"));
        let default_route = text("DEFAULT_ROUTE", Some("protected"));
        let anti_csrf = text("ANTI_CSRF", Some("on"));
        // Not `BLACKLIST`: that name is the KV namespace binding, which would shadow a var.
        let blacklist = text("BLACKLIST_CHECK", Some("on"));
        let blacklist_failure = text("BLACKLIST_FAILURE", Some("closed"));
        let cookie_secure = text("COOKIE_SECURE", Some("true"));
        let cookie_same_site = text("COOKIE_SAME_SITE", Some("lax"));
        let access_token_path = text("ACCESS_TOKEN_PATH", Some("/"));
        let refresh_path = text("REFRESH_PATH", Some(DEFAULT_REFRESH_PATH));
        let signout_path = text("SIGNOUT_PATH", Some("/session/signout"));
        let session_info_path = text("SESSION_INFO_PATH", Some("/session/info"));
        let default_status = DEFAULT_SESSION_EXPIRED_STATUS.to_string();
        let status = text("SESSION_EXPIRED_STATUS", Some(&default_status));
        let jwks_cache = text("JWKS_CACHE_SECS", Some("300"));
        let cooldown = text("JWKS_REFETCH_COOLDOWN_SECS", Some("10"));
        let blacklist_ttl = text("BLACKLIST_TTL_SECS", Some("3610"));
        let max_header = text("MAX_HEADER_BYTES", Some("16384"));
        let edge_secret = text("EDGE_SECRET", None);
        let app_secret = text("APP_SECRET", None);
        let cookie_domain = get("COOKIE_DOMAIN").filter(|v| !v.is_empty());
        let cors = get("CORS_ALLOWED_ORIGINS").unwrap_or_default();
        let public = get("PUBLIC_PATHS").unwrap_or_default();
        let optional = get("OPTIONAL_PATHS").unwrap_or_default();
        let protected = get("PROTECTED_PATHS").unwrap_or_default();

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
        let session_expired_status = number("SESSION_EXPIRED_STATUS", &status, 400, 499) as u16;
        let jwks_cache_secs = number("JWKS_CACHE_SECS", &jwks_cache, 0, 86_400);
        let jwks_refetch_cooldown_secs = number("JWKS_REFETCH_COOLDOWN_SECS", &cooldown, 1, 3600);
        let blacklist_ttl_secs = number("BLACKLIST_TTL_SECS", &blacklist_ttl, 60, 31_536_000);
        let max_header_bytes = number("MAX_HEADER_BYTES", &max_header, 1024, 65_536) as usize;

        let mut choice = |name: &str, value: &str, options: &[&str]| -> usize {
            options.iter().position(|o| o.eq_ignore_ascii_case(value)).unwrap_or_else(|| {
                errors.push(format!("{name} must be one of {}, not {value:?}", options.join(", ")));
                0
            })
        };
        let access_of = [Access::Protected, Access::Optional, Access::Public];
        let default = access_of
            [choice("DEFAULT_ROUTE", &default_route, &["protected", "optional", "public"])];
        let anti_csrf = choice("ANTI_CSRF", &anti_csrf, &["on", "off"]) == 0;
        let blacklist_on = choice("BLACKLIST_CHECK", &blacklist, &["on", "off"]) == 0;
        let fail_open = choice("BLACKLIST_FAILURE", &blacklist_failure, &["closed", "open"]) == 1;
        let secure = choice("COOKIE_SECURE", &cookie_secure, &["true", "false"]) == 0;
        let blacklist = match (blacklist_on, fail_open) {
            (false, _) => BlacklistMode::Off,
            (true, false) => BlacklistMode::FailClosed,
            (true, true) => BlacklistMode::FailOpen,
        };

        let same_site = parse_same_site(&cookie_same_site).unwrap_or_else(|err| {
            errors.push(format!("COOKIE_SAME_SITE: {err}"));
            SameSite::Lax
        });
        let cookies = CookiePolicy {
            domain: cookie_domain,
            secure,
            same_site,
            access_token_path,
            refresh_path,
        };
        if let Err(err) = cookies.validate() {
            errors.push(format!("cookies: {err}"));
        }

        for (name, url) in [("ORIGIN_URL", &origin_url), ("UPSTREAM_URL", &upstream_url)] {
            let http = url.starts_with("http://") || url.starts_with("https://");
            if !url.is_empty() && !http {
                errors.push(format!("{name} must be an http(s) URL, not {url:?}"));
            }
        }
        for (name, secret) in [("EDGE_SECRET", &edge_secret), ("APP_SECRET", &app_secret)] {
            if !secret.is_empty() && secret.len() < MIN_SECRET_LEN {
                errors.push(format!("{name} must be at least {MIN_SECRET_LEN} characters"));
            }
        }
        for (name, path) in
            [("SIGNOUT_PATH", &signout_path), ("SESSION_INFO_PATH", &session_info_path)]
        {
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
                let star = pattern.find('*');
                let valid = pattern.starts_with('/')
                    && star.is_none_or(|at| at == pattern.len() - 1 && pattern.ends_with("/*"));
                if valid {
                    rules.push(Rule { pattern: pattern.to_owned(), access });
                } else {
                    errors.push(format!(
                        "{name}: {pattern:?} must be /exact/path or /prefix/* (one trailing /*)"
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

        if !errors.is_empty() {
            return Err(errors.join("; "));
        }
        Ok(EdgeConfig {
            origin_url: origin_url.trim_end_matches('/').to_owned(),
            upstream_url: upstream_url.trim_end_matches('/').to_owned(),
            issuer,
            audience,
            routes: Routes { rules, default },
            anti_csrf,
            blacklist,
            cookies,
            signout_path,
            session_info_path,
            session_expired_status,
            jwks_cache_secs,
            jwks_refetch_cooldown_secs,
            blacklist_ttl_secs,
            cors_allowed_origins,
            max_header_bytes,
            edge_secret,
            app_secret,
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
            ("APP_SECRET", "app-secret-0123456789"),
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
        assert!(config.anti_csrf);
        assert_eq!(config.blacklist, BlacklistMode::FailClosed);
        assert!(config.cookies.secure);
        assert_eq!(config.session_expired_status, 440);
        assert_eq!(config.cookies.refresh_path, "/session/refresh");
    }

    #[test]
    fn most_specific_rule_wins() {
        let config = EdgeConfig::from_lookup(lookup(&[
            ("PUBLIC_PATHS", "/, /static/*, /login"),
            ("PROTECTED_PATHS", "/static/private/*, /api/*"),
            ("OPTIONAL_PATHS", "/api/feed"),
            ("DEFAULT_ROUTE", "public"),
        ]))
        .unwrap();
        let routes = &config.routes;
        assert_eq!(routes.access("/"), Access::Public);
        assert_eq!(routes.access("/static/app.js"), Access::Public);
        assert_eq!(routes.access("/static"), Access::Public);
        assert_eq!(routes.access("/staticky"), Access::Public, "falls to the default");
        assert_eq!(routes.access("/static/private/x"), Access::Protected);
        assert_eq!(routes.access("/api/me"), Access::Protected);
        assert_eq!(routes.access("/api/feed"), Access::Optional);
        assert_eq!(routes.access("/login"), Access::Public);
        assert_eq!(routes.access("/login/x"), Access::Public, "default");
    }

    #[test]
    fn every_bad_value_is_named() {
        let err = EdgeConfig::from_lookup(lookup(&[
            ("ORIGIN_URL", ""),
            ("UPSTREAM_URL", "ftp://x"),
            ("ANTI_CSRF", "maybe"),
            ("SESSION_EXPIRED_STATUS", "200"),
            ("PUBLIC_PATHS", "static/*"),
            ("CORS_ALLOWED_ORIGINS", "*"),
            ("COOKIE_SAME_SITE", "none"),
            ("COOKIE_SECURE", "false"),
            ("APP_SECRET", "short"),
        ]))
        .unwrap_err();
        for name in [
            "ORIGIN_URL",
            "UPSTREAM_URL",
            "ANTI_CSRF",
            "SESSION_EXPIRED_STATUS",
            "PUBLIC_PATHS",
            "CORS_ALLOWED_ORIGINS",
            "SameSite=None",
            "APP_SECRET",
        ] {
            assert!(err.contains(name), "{name} missing from: {err}");
        }
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
