//! Abuse limits: refresh per session, refresh and creation per client address, answered 429
//! with `Retry-After`, and never in the way of parallel tabs or of other sessions.

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::*;
use latch_origin::limits::Quota;
use serde_json::{json, Value};

on_both_stores!(
    a_refresh_flood_from_one_session_gets_429_while_other_sessions_keep_working,
    a_forged_token_naming_a_session_does_not_use_up_its_refreshes,
    one_client_address_is_limited_across_sessions_and_logins,
    a_bad_client_address_is_refused,
);

async fn refresh_from(origin: &Origin, token: &str, address: Option<&str>) -> Reply {
    let mut request = Request::post("/v1/sessions/refresh")
        .header("authorization", format!("Bearer {EDGE_SECRET}"))
        .header("content-type", "application/json");
    if let Some(address) = address {
        request = request.header("x-latch-client-address", address);
    }
    origin
        .send(request.body(Body::from(json!({"refresh_token": token}).to_string())).unwrap())
        .await
}

async fn create_from(origin: &Origin, user: &str, address: &str) -> Reply {
    let request = Request::post("/v1/sessions")
        .header("authorization", format!("Bearer {EDGE_SECRET}"))
        .header("content-type", "application/json")
        .header("x-latch-client-address", address)
        .body(Body::from(json!({"user_id": user}).to_string()))
        .unwrap();
    origin.send(request).await
}

fn retry_after(reply: &Reply) -> u64 {
    reply.headers["retry-after"].to_str().unwrap().parse().unwrap()
}

/// 429 is in the OpenAPI document of both limited operations, with its header.
fn assert_429_documented() {
    let document = serde_json::to_value(latch_origin::routes::openapi::document()).unwrap();
    for path in ["/v1/sessions", "/v1/sessions/refresh"] {
        let response: &Value = &document["paths"][path]["post"]["responses"]["429"];
        assert!(response["headers"]["Retry-After"].is_object(), "{path}: {response}");
    }
}

async fn a_refresh_flood_from_one_session_gets_429_while_other_sessions_keep_working(store: Store) {
    // The defaults: 30 a minute, bursts of 60.
    let origin = Origin::start(&store).await;
    let flooded = origin.create("mallory").await;
    let bystander = origin.create("alice").await;
    let token = refresh_token(&flooded);
    let mut statuses = Vec::new();
    for _ in 0..80 {
        statuses.push(refresh_from(&origin, &token, None).await.status);
    }
    let passed = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(passed, 60, "the burst passes, then the flood is cut off");
    let limited = refresh_from(&origin, &token, None).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.error(), "RATE_LIMITED");
    assert_eq!(retry_after(&limited), 2, "30 a minute: one every 2 s");
    assert_429_documented();

    let other = refresh_from(&origin, &refresh_token(&bystander), None).await;
    assert_eq!(other.status, StatusCode::OK, "other sessions keep working");
    assert_eq!(metric(&origin, "latch_token_thefts_total"), 0.0, "a 429 is not theft");

    origin.advance(Duration::from_secs(retry_after(&limited)));
    let later = refresh_from(&origin, &token, None).await;
    assert_eq!(later.status, StatusCode::OK, "after Retry-After the session refreshes again");
}

async fn a_forged_token_naming_a_session_does_not_use_up_its_refreshes(store: Store) {
    let origin = Origin::start_with(&store, |c| {
        c.rate_limit_per_session = Quota { per_minute: 1, burst: 2 };
    })
    .await;
    let victim = origin.create("victim").await;
    let forged = format!("{}.{}", handle(&victim), "A".repeat(43));
    for _ in 0..10 {
        assert_eq!(refresh_from(&origin, &forged, None).await.error(), "UNAUTHORISED");
    }
    let genuine = refresh_from(&origin, &refresh_token(&victim), None).await;
    assert_eq!(genuine.status, StatusCode::OK, "{:?}", genuine.body);
}

async fn one_client_address_is_limited_across_sessions_and_logins(store: Store) {
    let origin = Origin::start_with(&store, |c| {
        c.rate_limit_per_address = Quota { per_minute: 60, burst: 5 };
    })
    .await;
    for i in 0..5 {
        let reply = create_from(&origin, &format!("user-{i}"), "203.0.113.9").await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    }
    let sixth = create_from(&origin, "user-5", "203.0.113.9").await;
    assert_eq!(sixth.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry_after(&sixth), 1);
    let issued = origin.create("someone").await;
    let refresh = refresh_from(&origin, &refresh_token(&issued), Some("203.0.113.9")).await;
    assert_eq!(refresh.status, StatusCode::TOO_MANY_REQUESTS, "refresh shares the address budget");
    // Another client, and another address in the same IPv6 /64 or not.
    assert_eq!(create_from(&origin, "x", "198.51.100.1").await.status, StatusCode::OK);
    for i in 0..5 {
        let address = format!("2001:db8:0:1::{i}");
        assert_eq!(create_from(&origin, "v6", &address).await.status, StatusCode::OK);
    }
    let same_64 = create_from(&origin, "v6", "2001:db8:0:1:ffff::1").await;
    assert_eq!(same_64.status, StatusCode::TOO_MANY_REQUESTS, "an IPv6 /64 is one client");
    assert_eq!(create_from(&origin, "v6", "2001:db8:0:2::1").await.status, StatusCode::OK);
}

async fn a_bad_client_address_is_refused(store: Store) {
    let origin = Origin::start(&store).await;
    for address in ["not-an-ip", "1.2.3.4, 5.6.7.8", ""] {
        let reply = create_from(&origin, "x", address).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{address:?}");
        assert!(reply.body["message"].as_str().unwrap().contains("x-latch-client-address"));
    }
    let handles = origin.api(Method::GET, "/v1/users/x/sessions", None).await;
    assert_eq!(handles.body["handles"], json!([]), "nothing was created");
}
