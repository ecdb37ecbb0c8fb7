//! The configuration's checks, as a user meets them.

use super::*;
use base64::{engine::general_purpose::STANDARD, Engine};
use latch_shared::engine::CsrfCheck;

fn postgres_options() -> Options {
    Options {
        database_url: Some("postgres://latch:pw@localhost/latch".into()),
        master_key: Some(Secret::from(STANDARD.encode([1u8; 32]))),
        api_key: Some(Secret::from("0123456789abcdef")),
        edge_secret: Some(Secret::from("fedcba9876543210")),
        edge_url: Some("https://edge.example.com".into()),
        ..Options::default()
    }
}

#[test]
fn defaults_match_the_docs() {
    let config = Config::from_options(postgres_options()).unwrap();
    assert_eq!(config.listen.to_string(), "127.0.0.1:3567");
    assert_eq!(config.access_token_lifetime, Duration::from_secs(3600));
    assert_eq!(config.refresh_token_lifetime, Duration::from_secs(8_640_000));
    assert_eq!(config.key_rotation, Duration::from_secs(86_400));
    assert_eq!(config.session_expired_status, 440);
    assert!(config.anti_csrf.enabled && config.cookies.secure);
    assert_eq!(config.anti_csrf.check, CsrfCheck::UnsafeMethods);
    assert!(config.anti_csrf.routes.is_empty());
    assert!(matches!(config.blacklist, BlacklistTarget::Edge { .. }));
}

#[test]
fn an_origin_with_no_revocation_target_refuses_to_start_unless_told_there_is_no_edge() {
    // Revocations would reach no blacklist: a copied cookie would keep working at the edge for
    // the access token's life, and nothing would show it.
    let silent = Options { edge_url: None, ..postgres_options() };
    let err = Config::from_options(silent.clone()).unwrap_err().to_string();
    assert!(err.contains("edge_url: required") && err.contains("no_edge"), "{err}");
    let told = Config::from_options(Options { no_edge: Some(true), ..silent }).unwrap();
    assert!(matches!(told.blacklist, BlacklistTarget::NoEdge));
    let contradiction = Options { no_edge: Some(true), ..postgres_options() };
    let err = Config::from_options(contradiction).unwrap_err().to_string();
    assert!(err.contains("no_edge: says no edge fronts this origin"), "{err}");
}

#[test]
fn every_bad_value_is_named() {
    let settings = Options {
        access_token_lifetime_secs: Some(0),
        refresh_token_lifetime_secs: Some(1),
        cookie_same_site: Some("sometimes".into()),
        session_expired_status: Some(200),
        master_key: Some("short".into()),
        listen: Some("nowhere".into()),
        cloudflare_account_id: Some("acc".into()),
        ..postgres_options()
    };
    let err = Config::from_options(Options {
        anti_csrf_check: Some("sometimes".into()),
        anti_csrf_routes: Some("/api/*=all_methods, api=never".into()),
        anti_csrf_proof: Some("cookie".into()),
        ..settings
    })
    .unwrap_err()
    .to_string();
    for name in [
        "anti_csrf_check",
        "anti_csrf_proof: must be token or custom_header, not \"cookie\"",
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
    let settings = Options {
        anti_csrf_check: Some("never".into()),
        anti_csrf_routes: Some("/api/*=all_methods, /api/webhook=never".into()),
        ..postgres_options()
    };
    let policy = Config::from_options(settings).unwrap().anti_csrf;
    assert_eq!(policy.check_for("/page"), CsrfCheck::Never);
    assert_eq!(policy.check_for("/api/orders"), CsrfCheck::AllMethods);
    assert_eq!(policy.check_for("/api/webhook"), CsrfCheck::Never);
}

#[test]
fn custom_header_mode_reaches_the_published_policy_and_mints_no_token() {
    let default = Config::from_options(postgres_options()).unwrap().anti_csrf;
    assert!(default.mints_token() && !default.accepts_custom_header());
    let settings = Options { anti_csrf_proof: Some("custom_header".into()), ..postgres_options() };
    let policy = Config::from_options(settings).unwrap().anti_csrf;
    assert!(policy.accepts_custom_header());
    assert!(!policy.mints_token());
}

#[test]
fn debug_output_never_shows_a_secret() {
    let settings = Options {
        database_url: Some("postgres://latch:db-password-123@localhost/latch".into()),
        cloudflare_account_id: Some("acc".into()),
        cloudflare_kv_namespace_id: Some("ns".into()),
        cloudflare_api_token: Some(Secret::from("cf-token-0123456789")),
        ..postgres_options()
    };
    let config = Config::from_options(settings.clone()).unwrap();
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
    let open = Options {
        data_dir: Some(dir.clone()),
        listen: Some("0.0.0.0:3567".into()),
        no_edge: Some(true),
        ..Options::default()
    };
    let err = Config::from_options(open.clone()).unwrap_err().to_string();
    assert!(err.contains("only used on a loopback address"), "{err}");
    assert!(Config::from_options(Options { dev: Some(true), ..open }).is_ok());
    let with_secrets = Options { listen: Some("0.0.0.0:3567".into()), ..postgres_options() };
    assert!(Config::from_options(with_secrets).is_ok(), "real secrets serve anywhere");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn postgres_requires_real_secrets() {
    let settings = Options { master_key: None, api_key: None, ..postgres_options() };
    let err = Config::from_options(settings).unwrap_err().to_string();
    assert!(err.contains("master_key: required"), "{err}");
    assert!(err.contains("api_key: required"), "{err}");
}

#[test]
fn embedded_default_generates_and_reuses_dev_secrets() {
    let dir = std::env::temp_dir().join(format!("latch-config-{}", std::process::id()));
    let settings =
        Options { data_dir: Some(dir.clone()), no_edge: Some(true), ..Options::default() };
    let first = Config::from_options(settings.clone()).unwrap();
    let second = Config::from_options(settings).unwrap();
    assert!(first.database_url.expose().starts_with("sqlite://"));
    assert_eq!(first.master_key, second.master_key);
    assert_eq!(first.api_key, second.api_key);
    assert_ne!(first.api_key, first.edge_secret);
    assert_eq!(first.notices.len(), 3);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn flags_beat_the_file() {
    let flags = Options { issuer: Some("flag".into()), ..Options::default() };
    let file: Options = toml::from_str("issuer = \"file\"\naudience = \"file-aud\"").unwrap();
    let merged = flags.or(file);
    assert_eq!(merged.issuer.as_deref(), Some("flag"));
    assert_eq!(merged.audience.as_deref(), Some("file-aud"));
    assert!(toml::from_str::<Options>("isuer = \"typo\"").is_err());
}

#[test]
fn passwords_are_redacted() {
    assert_eq!(redact_url("postgres://u:secret@h/db"), "postgres://u:***@h/db");
    assert_eq!(redact_url("sqlite://x.db"), "sqlite://x.db");
}
