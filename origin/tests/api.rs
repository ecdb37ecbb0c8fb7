//! The HTTP surface: credentials, bad input on every endpoint, public endpoints, revocations
//! reaching the edge, and the theft webhook.

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::routing::{post, put};
use axum::Router;
use common::*;
use latch_origin::config::BlacklistTarget;
use serde_json::{json, Value};

on_both_stores!(
    every_endpoint_needs_the_right_credential,
    bad_input_gets_a_clear_4xx_and_changes_nothing,
    public_endpoints_answer_without_credentials,
    revocations_reach_the_edge_endpoint,
    revocations_reach_cloudflare_kv,
    thefts_are_posted_to_the_webhook,
    the_session_expired_status_is_configurable,
);

/// Asserts that the generated OpenAPI document lists `status` for `method` on the concrete
/// `uri`: every status a handler answers with is documented.
fn assert_documented(method: &Method, uri: &str, status: StatusCode) {
    let document = serde_json::to_value(latch_origin::routes::openapi::document()).unwrap();
    let path = uri.split('?').next().unwrap();
    let segments: Vec<&str> = path.split('/').collect();
    let matches = |template: &str, exact: bool| {
        let parts: Vec<&str> = template.split('/').collect();
        parts.len() == segments.len()
            && parts.iter().zip(&segments).all(|(t, s)| t == s || (!exact && t.starts_with('{')))
    };
    let paths = document["paths"].as_object().unwrap();
    let method_name = method.as_str().to_lowercase();
    let (template, item) = paths
        .iter()
        .find(|(template, item)| matches(template, true) && item.get(&method_name).is_some())
        .or_else(|| paths.iter().find(|(template, _)| matches(template, false)))
        .unwrap_or_else(|| panic!("{method} {uri}: no documented path"));
    let operation =
        item.get(&method_name).unwrap_or_else(|| panic!("{method} {template} undocumented"));
    let code = status.as_u16().to_string();
    assert!(
        operation["responses"].get(&code).is_some(),
        "{method} {template} answered {code}, which the OpenAPI document does not list"
    );
}

/// Every route with a body that would be valid, for credential checks.
fn routes(handle: &str) -> Vec<(Method, String, Option<Value>)> {
    vec![
        (Method::POST, "/v1/sessions".into(), Some(json!({"user_id": "u"}))),
        (Method::POST, "/v1/sessions/refresh".into(), Some(json!({"refresh_token": "x"}))),
        (Method::POST, "/v1/sessions/verify".into(), Some(json!({"access_token": "x"}))),
        (Method::DELETE, format!("/v1/sessions/{handle}"), None),
        (Method::GET, format!("/v1/sessions/{handle}/info"), None),
        (Method::PUT, format!("/v1/sessions/{handle}/info"), Some(json!({"session_info": 1}))),
        (Method::GET, "/v1/users/u/sessions".into(), None),
        (Method::DELETE, "/v1/users/u/sessions".into(), None),
        (Method::GET, "/metrics".into(), None),
        (Method::POST, "/v1/keys/rotate".into(), None),
        (Method::GET, "/v1/caller".into(), None),
    ]
}

async fn every_endpoint_needs_the_right_credential(store: Store) {
    let origin = Origin::start(&store).await;
    let issued = origin.create("alice").await;
    for (method, path, body) in routes(&handle(&issued)) {
        for auth in [None, Some("wrong-key-0123456789"), Some("")] {
            let reply = origin.call(method.clone(), &path, auth, body.clone()).await;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{method} {path} with {auth:?}");
            assert_documented(&method, &path, reply.status);
            assert_eq!(reply.error(), "UNAUTHENTICATED");
        }
        let as_edge = origin.call(method.clone(), &path, Some(EDGE_SECRET), body.clone()).await;
        assert_documented(&method, &path, as_edge.status);
        let as_app = origin.call(method.clone(), &path, Some(API_KEY), body.clone()).await;
        assert_documented(&method, &path, as_app.status);
        let app_only =
            path.starts_with("/v1/users") || path == "/metrics" || path == "/v1/keys/rotate";
        if app_only {
            assert_eq!(as_edge.status, StatusCode::FORBIDDEN, "{method} {path} as the edge");
        } else {
            assert_ne!(as_edge.status, StatusCode::UNAUTHORIZED, "{method} {path} as the edge");
            assert_ne!(as_edge.status, StatusCode::FORBIDDEN, "{method} {path} as the edge");
        }
    }
    // An edge handed the API key instead of its secret would hold admin powers: the credential
    // check tells the two apart, so `latch check-edge --probe-origin` can refuse it.
    let caller = |auth| origin.call(Method::GET, "/v1/caller", Some(auth), None);
    assert_eq!(caller(EDGE_SECRET).await.body, json!({"caller": "edge"}));
    assert_eq!(caller(API_KEY).await.body, json!({"caller": "app"}));
    // The session survived all of that (only the one DELETE above, as the edge, revoked it).
    let reply = origin.verify(&access_token(&issued)).await;
    assert_eq!(reply.error(), "UNAUTHORISED");
}

async fn bad_input_gets_a_clear_4xx_and_changes_nothing(store: Store) {
    let origin = Origin::start(&store).await;
    let issued = origin.create("bob").await;
    let info = format!("/v1/sessions/{}/info", handle(&issued));
    let raw = |method: Method, path: &str, content_type: Option<&str>, body: Body| {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {API_KEY}"));
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        request.body(body).unwrap()
    };
    let json_body = |text: &str| Body::from(text.to_owned());
    let cases: Vec<(Request<Body>, StatusCode)> = vec![
        (
            raw(Method::POST, "/v1/sessions", Some("application/json"), json_body("{")),
            StatusCode::BAD_REQUEST,
        ),
        (
            raw(Method::POST, "/v1/sessions", Some("application/json"), json_body("[]")),
            StatusCode::BAD_REQUEST,
        ),
        (
            raw(
                Method::POST,
                "/v1/sessions",
                Some("application/json"),
                json_body(r#"{"user_id":"zoë","jwt_payload":"notanobject"}"#),
            ),
            StatusCode::BAD_REQUEST,
        ),
        (
            raw(
                Method::POST,
                "/v1/sessions",
                Some("application/json"),
                json_body(r#"{"user_id":7.5}"#),
            ),
            StatusCode::BAD_REQUEST,
        ),
        (
            raw(
                Method::POST,
                "/v1/sessions",
                Some("application/json"),
                json_body(r#"{"user_id":""}"#),
            ),
            StatusCode::BAD_REQUEST,
        ),
        (
            raw(
                Method::POST,
                "/v1/sessions",
                Some("application/json"),
                json_body(r#"{"user_id":"a\nb"}"#),
            ),
            StatusCode::BAD_REQUEST,
        ),
        (
            raw(
                Method::POST,
                "/v1/sessions",
                Some("application/json"),
                json_body(r#"{"user_id":"u","extra":1}"#),
            ),
            StatusCode::BAD_REQUEST,
        ),
        (
            raw(Method::POST, "/v1/sessions", Some("text/plain"), json_body(r#"{"user_id":"u"}"#)),
            StatusCode::BAD_REQUEST,
        ),
        (raw(Method::POST, "/v1/sessions", None, Body::empty()), StatusCode::BAD_REQUEST),
        (
            raw(
                Method::POST,
                "/v1/sessions",
                Some("application/json"),
                json_body(&json!({"user_id": "u", "jwt_payload": "x".repeat(5000)}).to_string()),
            ),
            StatusCode::BAD_REQUEST,
        ),
        (
            raw(
                Method::POST,
                "/v1/sessions",
                Some("application/json"),
                json_body(&json!({"user_id": "u", "session_info": "x".repeat(70_000)}).to_string()),
            ),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            raw(Method::POST, "/v1/sessions/refresh", Some("application/json"), json_body("{}")),
            StatusCode::BAD_REQUEST,
        ),
        (
            raw(
                Method::POST,
                "/v1/sessions/verify",
                Some("application/json"),
                json_body(r#"{"access_token":1}"#),
            ),
            StatusCode::BAD_REQUEST,
        ),
        (
            raw(Method::PUT, &info, Some("application/json"), json_body(r#"{"info":1}"#)),
            StatusCode::BAD_REQUEST,
        ),
        (
            raw(Method::GET, "/v1/sessions/not-a-handle/info", None, Body::empty()),
            StatusCode::BAD_REQUEST,
        ),
        (raw(Method::DELETE, "/v1/sessions/%00%01", None, Body::empty()), StatusCode::BAD_REQUEST),
        (
            raw(
                Method::GET,
                &format!("/v1/users/{}/sessions", "x".repeat(300)),
                None,
                Body::empty(),
            ),
            StatusCode::BAD_REQUEST,
        ),
        (raw(Method::GET, "/v1/nothing", None, Body::empty()), StatusCode::NOT_FOUND),
        (raw(Method::PATCH, "/v1/sessions", None, Body::empty()), StatusCode::METHOD_NOT_ALLOWED),
    ];
    for (request, expected) in cases {
        let description = format!("{} {}", request.method(), request.uri());
        let (method, uri) = (request.method().clone(), request.uri().to_string());
        let reply = origin.send(request).await;
        assert_eq!(reply.status, expected, "{description}: {:?}", reply.body);
        // Unknown paths and methods are the router's answers, not an operation's.
        if !matches!(expected, StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED) {
            assert_documented(&method, &uri, reply.status);
        }
        assert!(!reply.error().is_empty(), "{description} answers the JSON error shape");
        assert!(reply.body["message"].as_str().is_some_and(|m| !m.is_empty()), "{description}");
    }
    // Nothing was created, and the existing session is untouched.
    let listed = origin.api(Method::GET, "/v1/users/u/sessions", None).await;
    assert_eq!(listed.body["handles"], json!([]));
    let info = origin.api(Method::GET, &info, None).await;
    assert_eq!(info.body["session_info"], json!({"n": 1}));
    assert_eq!(origin.verify(&access_token(&issued)).await.status, StatusCode::OK);
}

async fn public_endpoints_answer_without_credentials(store: Store) {
    let origin = Origin::start(&store).await;
    assert_eq!(origin.call(Method::GET, "/healthz", None, None).await.status, StatusCode::OK);
    assert_eq!(origin.call(Method::GET, "/readyz", None, None).await.status, StatusCode::OK);
    let jwks = origin.call(Method::GET, "/.well-known/jwks.json", None, None).await;
    assert_eq!(jwks.status, StatusCode::OK);
    assert!(jwks.headers["cache-control"].to_str().unwrap().contains("max-age="));
    let spec = origin.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(spec.status, StatusCode::OK);
    assert_eq!(spec.body["openapi"], "3.1.0");
    // The document describes every route the router serves, with the same methods.
    let paths = spec.body["paths"].as_object().unwrap();
    for (method, path, _) in routes("{handle}") {
        let path = path.replace("/u/", "/{user_id}/");
        let entry = paths.get(&path).unwrap_or_else(|| panic!("{path} missing from openapi.json"));
        assert!(
            entry.get(method.as_str().to_lowercase()).is_some(),
            "{method} {path} undocumented"
        );
    }
    for path in ["/.well-known/jwks.json", "/healthz", "/readyz", "/openapi.json"] {
        assert!(paths.contains_key(path), "{path} missing from openapi.json");
    }
    origin.create("metrics-user").await;
    let metrics = origin.api(Method::GET, "/metrics", None).await;
    let text = metrics.body.as_str().unwrap();
    for name in [
        "latch_sessions_created_total 1",
        "latch_sessions_refreshed_total",
        "latch_token_thefts_total",
        "latch_refresh_repeats_total",
        "latch_refresh_generations_proven_total",
        "latch_request_duration_seconds_bucket",
    ] {
        assert!(text.contains(name), "{name} missing from metrics");
    }
}

async fn revocations_reach_the_edge_endpoint(store: Store) {
    let log: Log = Default::default();
    let edge = receiver(
        Router::new().route("/__latch/blacklist", post(recording(&log, StatusCode::NO_CONTENT))),
    )
    .await;
    let origin = Origin::start_with(&store, |c| {
        c.blacklist = BlacklistTarget::Edge { url: edge.clone() };
        c.access_token_lifetime = Duration::from_secs(600);
    })
    .await;
    let one = origin.create("carol").await;
    origin.create("dave").await;
    origin.create("dave").await;
    origin.api(Method::DELETE, &format!("/v1/sessions/{}", handle(&one)), None).await;
    origin.api(Method::DELETE, "/v1/users/dave/sessions", None).await;
    wait_for(&log, 2).await;
    let deliveries = log.lock().unwrap().clone();
    for (auth, _) in &deliveries {
        assert_eq!(auth, &format!("Bearer {EDGE_SECRET}"));
    }
    let entries: Vec<&Value> =
        deliveries.iter().flat_map(|(_, body)| body["entries"].as_array().unwrap()).collect();
    assert_eq!(entries.len(), 3);
    assert!(entries.iter().any(|e| e["session_handle"] == handle(&one)));
    for entry in entries {
        let ttl = entry["ttl_seconds"].as_u64().unwrap();
        assert!(ttl >= 600, "TTL {ttl} outlives every access token (600 s) and KV's 60 s minimum");
    }
    wait_metric(&origin, "latch_blacklist_writes_total{outcome=\"ok\"}", 3.0).await;
}

async fn revocations_reach_cloudflare_kv(store: Store) {
    let log: Log = Default::default();
    let api = receiver(Router::new().route(
        "/client/v4/accounts/acc123/storage/kv/namespaces/ns456/bulk",
        put(recording(&log, StatusCode::OK)),
    ))
    .await;
    let origin = Origin::start_with(&store, |c| {
        c.blacklist = BlacklistTarget::CloudflareKv {
            api_url: format!("{api}/client/v4"),
            account_id: "acc123".into(),
            namespace_id: "ns456".into(),
            api_token: "cf-token".into(),
        };
    })
    .await;
    let issued = origin.create("erin").await;
    origin.api(Method::DELETE, &format!("/v1/sessions/{}", handle(&issued)), None).await;
    wait_for(&log, 1).await;
    let (auth, body) = log.lock().unwrap()[0].clone();
    assert_eq!(auth, "Bearer cf-token");
    assert_eq!(body[0]["key"], format!("revoked:{}", handle(&issued)));
    assert!(body[0]["expiration_ttl"].as_u64().unwrap() >= 3600);
}

async fn thefts_are_posted_to_the_webhook(store: Store) {
    let log: Log = Default::default();
    let hook = receiver(Router::new().route("/hook", post(recording(&log, StatusCode::OK)))).await;
    let origin =
        Origin::start_with(&store, |c| c.theft_webhook_url = Some(format!("{hook}/hook"))).await;
    let issued = origin.create("gina").await;
    let r1 = origin.refresh(&refresh_token(&issued)).await;
    origin.refresh(&refresh_token(&r1.body)).await;
    assert_eq!(origin.refresh(&refresh_token(&issued)).await.error(), "TOKEN_THEFT_DETECTED");
    wait_for(&log, 1).await;
    let (_, event) = log.lock().unwrap()[0].clone();
    assert_eq!(event["event"], "token_theft_detected");
    assert_eq!(event["user_id"], "gina");
    assert_eq!(event["session_handle"], handle(&issued));
    let serialized = event.to_string();
    assert!(!serialized.contains(&refresh_token(&issued)), "no token in the event");
}

/// A request stuck behind a database lock is answered 503 at the timeout, not held forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_stuck_on_the_database_times_out_with_a_503() {
    let store = Store::sqlite().await;
    let origin = Origin::start_with(&store, |c| c.request_timeout = Duration::from_secs(1)).await;
    // SQLite has one writer: an open write transaction blocks every create (busy_timeout 10 s).
    let mut blocker = origin.state.sessions.pool().begin().await.unwrap();
    sqlx::query(
        "INSERT INTO sessions (handle, user_id, current_hash, created_at, expires_at) \
         VALUES ('blocker', 'b', 'x', 0, 0)",
    )
    .execute(&mut *blocker)
    .await
    .unwrap();
    let reply = origin
        .call(Method::POST, "/v1/sessions", Some(API_KEY), Some(json!({"user_id": "stuck"})))
        .await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{:?}", reply.body);
    assert_eq!(reply.error(), "GENERAL_ERROR");
    assert_documented(&Method::POST, "/v1/sessions", reply.status);
    blocker.rollback().await.unwrap();
    let created = origin
        .call(Method::POST, "/v1/sessions", Some(API_KEY), Some(json!({"user_id": "unstuck"})))
        .await;
    assert_eq!(created.status, StatusCode::OK, "served again once the lock is gone");
}

async fn the_session_expired_status_is_configurable(store: Store) {
    let origin = Origin::start_with(&store, |c| c.session_expired_status = 401).await;
    let reply = origin.verify("not-a-token").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.error(), "TRY_REFRESH_TOKEN");
    // The served document says so too.
    let spec = origin.call(Method::GET, "/openapi.json", None, None).await;
    let responses = &spec.body["paths"]["/v1/sessions/verify"]["post"]["responses"];
    assert!(responses.get("401").is_some(), "{responses}");
    assert!(responses.get("440").is_none(), "{responses}");
}

/// The edge sends each request's W3C `traceparent`: the origin logs under its trace id and
/// names it in `x-request-id`, so one id follows a request through edge, origin and app.
#[tokio::test]
async fn every_answer_names_its_request_id_from_the_traceparent() {
    let origin = Origin::start(&Store::sqlite().await).await;
    let traced = Request::get("/healthz")
        .header("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        .body(Body::empty())
        .unwrap();
    let reply = origin.send(traced).await;
    assert_eq!(reply.headers["x-request-id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    for traceparent in
        [None, Some("garbage"), Some("00-00000000000000000000000000000000-00f067aa0ba902b7-01")]
    {
        let mut request = Request::post("/v1/sessions/refresh");
        if let Some(value) = traceparent {
            request = request.header("traceparent", value);
        }
        let reply = origin.send(request.body(Body::empty()).unwrap()).await;
        let id = reply.headers["x-request-id"].to_str().unwrap();
        assert!(
            id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) && id != "0".repeat(32),
            "{traceparent:?} gets a new id: {id}"
        );
    }
}
