//! The Session object on its own: assertions behind the edge, the per-call anti-CSRF flag, and
//! the axum extractor, against a local server publishing the settings and keys. The Session
//! object against a real origin is `origin/tests/session_object.rs`.

use std::net::SocketAddr;

use axum::routing::{get, post};
use axum::Router;
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use chrono::Utc;
use latch_shared::access::SessionClaims;
use latch_shared::assertion::{AssertionSigner, CsrfOutcome, ASSERTION_JWKS_PATH};
use latch_shared::engine::AntiCsrfPolicy;
use latch_shared::keys::SigningKey;
use latch_shared::protocol::CookiePolicy;
use serde_json::json;

use super::*;

const ISSUER: &str = "latch-edge";
const AUDIENCE: &str = "https://app.test";
/// A deployment that answers session errors with 401 instead of the seed's 440.
const CONFIGURED_STATUS: u16 = 401;

fn signer(seed: u8) -> AssertionSigner {
    AssertionSigner::from_seeds(&URL_SAFE_NO_PAD.encode([seed; 32]), ISSUER, AUDIENCE).unwrap()
}

fn settings() -> SharedSettings {
    SharedSettings {
        issuer: "origin".into(),
        audience: "latch".into(),
        cookies: CookiePolicy::default(),
        session_expired_status: CONFIGURED_STATUS,
        anti_csrf: AntiCsrfPolicy::default(),
        access_token_lifetime_secs: 3600,
        jwks: KeySet::new([SigningKey::from_seed(&[3; 32]).verifying_key()]).unwrap().to_jwks(),
    }
}

/// Publishes the edge's assertion keys and the origin's settings, as the real services do.
async fn publisher() -> SocketAddr {
    let jwks = serde_json::to_string(&signer(1).jwks()).unwrap();
    let settings = serde_json::to_string(&settings()).unwrap();
    let router = Router::new()
        .route(ASSERTION_JWKS_PATH, get(move || async move { jwks }))
        .route(paths::SETTINGS, get(move || async move { settings }));
    serve(router).await
}

async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    address
}

fn behind_edge(publisher: SocketAddr) -> Latch {
    Latch::new(
        format!("http://{publisher}"),
        "api-key",
        Verification::BehindEdge {
            jwks_url: format!("http://{publisher}{ASSERTION_JWKS_PATH}"),
            issuer: ISSUER.into(),
            audience: AUDIENCE.into(),
        },
    )
}

fn assertion(signer: &AssertionSigner, uid: UserId, csrf: CsrfOutcome) -> HeaderMap {
    let claims = SessionClaims {
        iss: "origin".into(),
        aud: "latch".into(),
        sub: uid.as_text().into_owned(),
        uid: Some(uid),
        sid: "handle-1".into(),
        csrf: Some("c".into()),
        pld: Some(json!({"name": "Zoë"})),
        rgen: Some(0),
    };
    let mut headers = HeaderMap::new();
    let now = Utc::now();
    let (token, _) = signer.mint(&claims, csrf, now, now + chrono::Duration::hours(1)).unwrap();
    headers.insert(ASSERTION_HEADER, token.parse().unwrap());
    headers
}

#[tokio::test]
async fn behind_the_edge_the_assertion_is_the_session_with_its_typed_user_id() {
    let latch = behind_edge(publisher().await);
    for uid in [UserId::Text("Zoë 🚀".into()), UserId::Number(7), UserId::Text("7".into())] {
        let headers = assertion(&signer(1), uid.clone(), CsrfOutcome::Passed);
        let session = latch.get_session(&headers, &Method::POST, true).await.unwrap();
        assert_eq!(session.get_user_id(), &uid);
        assert_eq!(session.get_handle(), "handle-1");
        assert_eq!(session.get_jwt_payload(), Some(&json!({"name": "Zoë"})));
    }
}

#[tokio::test]
async fn forged_missing_and_other_audience_assertions_are_unauthorised() {
    let latch = behind_edge(publisher().await);
    let forged = assertion(&signer(9), UserId::Text("alice".into()), CsrfOutcome::Passed);
    let other_app = {
        let seed = URL_SAFE_NO_PAD.encode([1; 32]);
        let signer = AssertionSigner::from_seeds(&seed, ISSUER, "https://other.test").unwrap();
        assertion(&signer, UserId::Text("alice".into()), CsrfOutcome::Passed)
    };
    for headers in [forged, other_app, HeaderMap::new()] {
        let err = latch.get_session(&headers, &Method::GET, false).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unauthorised, "{err}");
    }
}

#[tokio::test]
async fn the_per_call_flag_reads_the_edges_anti_csrf_finding_whatever_the_method() {
    // The seed's getSession(req, res, true): missing or wrong is TRY_REFRESH_TOKEN, on a GET too.
    let latch = behind_edge(publisher().await);
    let cases = [
        (CsrfOutcome::Passed, None),
        (CsrfOutcome::NotApplicable, None),
        (CsrfOutcome::Missing, Some("anti-csrf token not found in headers")),
        (CsrfOutcome::Failed, Some("anti-csrf check failed")),
    ];
    for (outcome, refusal) in cases {
        let headers = assertion(&signer(1), UserId::Text("alice".into()), outcome);
        for method in [Method::GET, Method::POST] {
            let flagged = latch.get_session(&headers, &method, true).await;
            match refusal {
                None => assert!(flagged.is_ok(), "{outcome:?} {method}"),
                Some(message) => {
                    let err = flagged.unwrap_err();
                    assert_eq!(err.kind(), ErrorKind::TryRefreshToken);
                    assert_eq!(err.message, message);
                }
            }
            assert!(latch.get_session(&headers, &method, false).await.is_ok(), "flag off");
        }
    }
}

async fn who(session: Session) -> String {
    serde_json::to_string(session.get_user_id()).unwrap()
}

async fn app(latch: Latch) -> SocketAddr {
    serve(Router::new().route("/me", get(who).post(who)).with_state(latch)).await
}

#[tokio::test]
async fn the_extractor_answers_with_the_configured_status_and_checks_unsafe_methods() {
    let latch = behind_edge(publisher().await);
    let app = app(latch).await;
    let client = reqwest::Client::new();
    let call = |method: reqwest::Method, headers: HeaderMap| {
        client.request(method, format!("http://{app}/me")).headers(headers).send()
    };
    // A GET passes without the anti-CSRF header; the typed id comes back as JSON.
    let answer =
        call(reqwest::Method::GET, assertion(&signer(1), UserId::Number(7), CsrfOutcome::Missing))
            .await
            .unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.text().await.unwrap(), "7");
    // A POST without it is refused, with the deployment's status (401), not a fixed 440.
    let answer =
        call(reqwest::Method::POST, assertion(&signer(1), UserId::Number(7), CsrfOutcome::Missing))
            .await
            .unwrap();
    assert_eq!(answer.status(), CONFIGURED_STATUS);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["error"], "TRY_REFRESH_TOKEN");
    // No assertion at all: UNAUTHORISED, same status, no cookie clearing behind the edge.
    let answer = call(reqwest::Method::GET, HeaderMap::new()).await.unwrap();
    assert_eq!(answer.status(), CONFIGURED_STATUS);
    assert!(answer.headers().get("set-cookie").is_none());
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["error"], "UNAUTHORISED");
}

#[tokio::test]
async fn without_an_edge_an_unauthorised_answer_clears_the_cookies() {
    let publisher = publisher().await;
    let app = app(Latch::new(format!("http://{publisher}"), "k", Verification::Direct)).await;
    let answer = reqwest::get(format!("http://{app}/me")).await.unwrap();
    assert_eq!(answer.status(), CONFIGURED_STATUS);
    let cleared: Vec<_> = answer.headers().get_all("set-cookie").iter().collect();
    assert_eq!(cleared.len(), 3, "all three session cookies expired: {cleared:?}");
    assert_eq!(answer.headers()["id-refresh-token"], "remove");
}

#[tokio::test]
async fn refresh_needs_the_refresh_cookie_and_no_edge() {
    let publisher = publisher().await;
    let direct = Latch::new(format!("http://{publisher}"), "k", Verification::Direct);
    let err = direct.refresh_session(&HeaderMap::new()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorised);
    assert_eq!(err.message, "missing auth tokens in cookies");
    // The seed wants the id-refresh token too.
    let mut refresh_only = HeaderMap::new();
    refresh_only.insert("cookie", "sRefreshToken=abc".parse().unwrap());
    let err = direct.refresh_session(&refresh_only).await.unwrap_err();
    assert_eq!(err.message, "missing auth tokens in cookies");
    let err = behind_edge(publisher).refresh_session(&refresh_only).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::GeneralError);
}

#[tokio::test]
async fn the_options_helper_allows_the_sdks_headers_and_credentials() {
    async fn preflight() -> (SessionHeaders, ()) {
        (options_api_headers(), ())
    }
    let app = serve(Router::new().route("/api", post(|| async {}).options(preflight))).await;
    let answer = reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, format!("http://{app}/api"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.headers()["access-control-allow-credentials"], "true");
    let allowed = answer.headers()["access-control-allow-headers"].to_str().unwrap();
    for header in ["anti-csrf", "supertokens-sdk-name", "supertokens-sdk-version"] {
        assert!(allowed.contains(header), "{allowed}");
    }
}

#[test]
fn debug_output_redacts_the_api_key() {
    let latch = Latch::new("http://origin", "super-secret-key", Verification::Direct);
    assert!(!format!("{latch:?}").contains("super-secret-key"));
}

#[tokio::test]
async fn behind_the_edge_a_new_jwt_payload_is_an_instruction_to_the_edge() {
    let signer = signer(1);
    let latch = behind_edge(publisher().await);
    let headers = assertion(&signer, UserId::text("zoë").unwrap(), CsrfOutcome::Passed);
    let mut session = latch.get_session(&headers, &Method::GET, false).await.unwrap();
    let payload = serde_json::json!({"role": ["admin"], "name": "Zoë"});
    let set = session.update_jwt_payload(Some(payload.clone())).await.unwrap();
    let [instruction] = set.0.as_slice() else { panic!("{set:?}") };
    assert_eq!(instruction.name, latch_shared::identity::JWT_PAYLOAD_HEADER);
    assert!(instruction.value.is_ascii());
    assert_eq!(
        latch_shared::identity::parse_jwt_payload_instruction(&instruction.value),
        Ok(Some(payload.clone()))
    );
    assert_eq!(session.get_jwt_payload(), Some(&payload));
}

#[tokio::test]
async fn todays_sdks_are_refused_with_401_and_supertokens_messages_so_they_refresh() {
    let latch = behind_edge(publisher().await);
    let app = app(latch).await;
    let answer = reqwest::Client::new()
        .get(format!("http://{app}/me"))
        .header("st-auth-mode", "cookie")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 401);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["message"], "unauthorised");
    assert_eq!(body["error"], "UNAUTHORISED");
}
