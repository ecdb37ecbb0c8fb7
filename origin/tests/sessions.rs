//! The session lifecycle, refresh rotation and theft detection, on SQLite and on Postgres.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use common::*;
use latch_origin::sessions::PURGE_BATCH;
use serde_json::json;

on_both_stores!(
    create_verify_info_revoke,
    refresh_rotates_and_extends_the_session,
    access_tokens_carry_their_refresh_generation,
    a_lost_refresh_response_retried_minutes_later_gets_the_same_unused_successor,
    theft_s1_r1_s2_r1_revokes_the_session,
    replaying_the_previous_token_after_the_edge_saw_its_successor_used_is_theft,
    replaying_the_previous_token_after_its_successor_was_refreshed_is_theft,
    a_report_of_an_older_generation_spends_nothing,
    usage_reports_are_checked_and_need_a_credential,
    fifty_parallel_refreshes_share_one_lineage,
    expired_access_and_refresh_tokens,
    purge_removes_only_expired_sessions,
    purge_goes_batch_by_batch_until_none_is_left,
    ids_stored_before_the_whitespace_rule_stay_reachable,
    revoke_all_sessions_of_a_user,
    anti_csrf_is_enforced_on_request,
    anti_csrf_can_be_disabled,
    in_custom_header_mode_no_token_is_minted_and_only_the_rid_header_passes,
    two_instances_agree_on_keys_and_lineage,
    key_rotation_publishes_before_signing_and_retires_after_expiry,
    malformed_refresh_tokens_are_unauthorised_not_theft,
    emergency_rotation_signs_with_a_new_key_after_the_publish_lead,
    a_compromised_key_is_distrusted_at_once_on_every_instance_and_sessions_move_on,
    a_new_jwt_payload_reissues_the_access_token_and_every_refresh_carries_it,
    a_jwt_payload_update_needs_a_valid_token_of_that_session_and_an_object,
);

async fn create_verify_info_revoke(store: Store) {
    let origin = Origin::start(&store).await;
    let issued = origin.create("alice").await;
    assert_eq!(issued["session"]["user_id"], "alice");
    assert_eq!(issued["session"]["jwt_payload"], json!({"role": "reader"}));
    let cookies: Vec<_> = issued["response_headers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["name"] == "set-cookie")
        .map(|h| h["value"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(cookies.len(), 3);
    assert!(cookies[0].starts_with(&format!("sAccessToken={}", access_token(&issued))));

    let verified = origin.verify(&access_token(&issued)).await;
    assert_eq!(verified.status, StatusCode::OK, "{:?}", verified.body);
    assert_eq!(verified.body["session"]["handle"], handle(&issued));
    assert_eq!(verified.body["session"]["jwt_payload"], json!({"role": "reader"}));

    let info_path = format!("/v1/sessions/{}/info", handle(&issued));
    let info = origin.api(Method::GET, &info_path, None).await;
    assert_eq!(info.body, json!({"session_info": {"n": 1}}));
    for value in [json!(2), json!(null), json!([1, "two"]), json!({"joke": "Knock, knock"})] {
        let put = origin.api(Method::PUT, &info_path, Some(json!({"session_info": value}))).await;
        assert_eq!(put.status, StatusCode::OK);
        let info = origin.api(Method::GET, &info_path, None).await;
        assert_eq!(info.body["session_info"], value, "update overwrites");
    }

    let revoked =
        origin.api(Method::DELETE, &format!("/v1/sessions/{}", handle(&issued)), None).await;
    assert_eq!(revoked.body["revoked"], true);
    // Three cookies expired; id-refresh-token and front-token `remove`; header mode's two
    // tokens emptied; the expose list.
    let cleared = revoked.body["response_headers"].as_array().unwrap();
    assert_eq!(cleared.len(), 8, "{cleared:?}");
    assert!(cleared.contains(&json!({"name": "front-token", "value": "remove"})));
    let again =
        origin.api(Method::DELETE, &format!("/v1/sessions/{}", handle(&issued)), None).await;
    assert_eq!(again.body["revoked"], false, "revoking twice reports nothing revoked");

    let verified = origin.verify(&access_token(&issued)).await;
    assert_eq!(verified.status.as_u16(), 440);
    assert_eq!(verified.error(), "UNAUTHORISED");
    assert_eq!(origin.refresh(&refresh_token(&issued)).await.error(), "UNAUTHORISED");
    assert_eq!(origin.api(Method::GET, &info_path, None).await.error(), "UNAUTHORISED");
    let put = origin.api(Method::PUT, &info_path, Some(json!({"session_info": 1}))).await;
    assert_eq!(put.error(), "UNAUTHORISED");
}

async fn refresh_rotates_and_extends_the_session(store: Store) {
    let origin = Origin::start(&store).await;
    let issued = origin.create("bob").await;
    origin.advance(Duration::from_secs(3000));
    let refreshed = origin.refresh(&refresh_token(&issued)).await;
    assert_eq!(refreshed.status, StatusCode::OK, "{:?}", refreshed.body);
    let r = &refreshed.body;
    for token in ["access_token", "refresh_token", "id_refresh_token"] {
        assert_ne!(
            r["tokens"][token]["value"], issued["tokens"][token]["value"],
            "{token} rotates"
        );
    }
    assert_ne!(r["tokens"]["anti_csrf_token"], issued["tokens"]["anti_csrf_token"]);
    assert_eq!(r["session"]["handle"], issued["session"]["handle"]);
    assert_eq!(r["session"]["jwt_payload"], json!({"role": "reader"}), "payload comes from the DB");
    assert!(
        r["tokens"]["refresh_token"]["expires_at"].as_i64().unwrap()
            > issued["tokens"]["refresh_token"]["expires_at"].as_i64().unwrap(),
        "refresh extends the session"
    );
    // The old access token stays valid until it expires; the new one works too.
    assert_eq!(origin.verify(&access_token(&issued)).await.status, StatusCode::OK);
    assert_eq!(origin.verify(&access_token(r)).await.status, StatusCode::OK);
    // A chain of refreshes keeps working.
    origin.advance(Duration::from_secs(60));
    let next = origin.refresh(&refresh_token(r)).await;
    assert_eq!(next.status, StatusCode::OK, "{:?}", next.body);
    assert_eq!(metric(&origin, "latch_sessions_refreshed_total"), 2.0);
}

async fn access_tokens_carry_their_refresh_generation(store: Store) {
    let origin = Origin::start(&store).await;
    let issued = origin.create("carol").await;
    assert_eq!(generation_of(&access_token(&issued)), 0, "login mints generation 0");
    let first = origin.refresh(&refresh_token(&issued)).await;
    assert_eq!(generation_of(&access_token(&first.body)), 1);
    let repeat = origin.refresh(&refresh_token(&issued)).await;
    assert_eq!(generation_of(&access_token(&repeat.body)), 1, "a repeat is the same generation");
    let second = origin.refresh(&refresh_token(&first.body)).await;
    assert_eq!(generation_of(&access_token(&second.body)), 2);
}

async fn a_lost_refresh_response_retried_minutes_later_gets_the_same_unused_successor(
    store: Store,
) {
    let origin = Origin::start(&store).await;
    let issued = origin.create("carol").await;
    let lost = origin.refresh(&refresh_token(&issued)).await;
    assert_eq!(lost.status, StatusCode::OK);
    // The response never reached the client, which retries much later.
    origin.advance(Duration::from_secs(10 * 60));
    let retry = origin.refresh(&refresh_token(&issued)).await;
    assert_eq!(retry.status, StatusCode::OK, "{:?}", retry.body);
    // Same successor, same anti-CSRF token: whichever response a browser keeps, it is consistent.
    assert_eq!(refresh_token(&retry.body), refresh_token(&lost.body));
    assert_eq!(retry.body["tokens"]["anti_csrf_token"], lost.body["tokens"]["anti_csrf_token"]);
    assert_eq!(metric(&origin, "latch_refresh_repeats_total"), 1.0);
    let onward = origin.refresh(&refresh_token(&retry.body)).await;
    assert_eq!(onward.status, StatusCode::OK, "the shared successor keeps working");
    assert_eq!(metric(&origin, "latch_token_thefts_total"), 0.0);
}

async fn theft_s1_r1_s2_r1_revokes_the_session(store: Store) {
    let origin = Origin::start(&store).await;
    let issued = origin.create("dave").await;
    let r1 = origin.refresh(&refresh_token(&issued)).await;
    // The successor's access token in use proves the client has it: the old token is spent.
    assert_eq!(origin.verify(&access_token(&r1.body)).await.status, StatusCode::OK);
    assert_eq!(metric(&origin, "latch_refresh_generations_proven_total"), 1.0);
    origin.advance(Duration::from_millis(1));
    let replay = origin.refresh(&refresh_token(&issued)).await;
    assert_eq!(replay.status.as_u16(), 440);
    assert_eq!(replay.error(), "TOKEN_THEFT_DETECTED");
    assert_eq!(replay.body["theft"]["user_id"], "dave");
    assert_eq!(replay.body["theft"]["session_handle"], handle(&issued));
    // The session is gone for the thief and the victim alike.
    assert_eq!(origin.refresh(&refresh_token(&r1.body)).await.error(), "UNAUTHORISED");
    assert_eq!(origin.verify(&access_token(&r1.body)).await.error(), "UNAUTHORISED");
    assert_eq!(metric(&origin, "latch_token_thefts_total"), 1.0);
}

async fn replaying_the_previous_token_after_the_edge_saw_its_successor_used_is_theft(store: Store) {
    let origin = Origin::start(&store).await;
    let issued = origin.create("erin").await;
    let r1 = origin.refresh(&refresh_token(&issued)).await;
    let generation = generation_of(&access_token(&r1.body));
    let used = format!("/v1/sessions/{}/used", handle(&issued));
    for _ in 0..2 {
        let reply = origin.edge(Method::POST, &used, Some(json!({"generation": generation}))).await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT, "reports are idempotent");
    }
    assert_eq!(metric(&origin, "latch_refresh_generations_proven_total"), 1.0);
    assert_eq!(origin.refresh(&refresh_token(&issued)).await.error(), "TOKEN_THEFT_DETECTED");
}

async fn replaying_the_previous_token_after_its_successor_was_refreshed_is_theft(store: Store) {
    let origin = Origin::start(&store).await;
    let issued = origin.create("frank").await;
    let r1 = origin.refresh(&refresh_token(&issued)).await;
    let r2 = origin.refresh(&refresh_token(&r1.body)).await;
    assert_eq!(r2.status, StatusCode::OK);
    origin.advance(Duration::from_secs(1));
    assert_eq!(
        origin.refresh(&refresh_token(&r1.body)).await.status,
        StatusCode::OK,
        "r2 unused yet: r1 still repeats"
    );
    assert_eq!(origin.refresh(&refresh_token(&issued)).await.error(), "TOKEN_THEFT_DETECTED");
}

async fn a_report_of_an_older_generation_spends_nothing(store: Store) {
    let origin = Origin::start(&store).await;
    let issued = origin.create("gina").await;
    let r1 = origin.refresh(&refresh_token(&issued)).await;
    // The login token still in use somewhere (it lives until it expires) proves nothing about
    // whether the client got generation 1.
    assert_eq!(origin.verify(&access_token(&issued)).await.status, StatusCode::OK);
    let used = format!("/v1/sessions/{}/used", handle(&issued));
    let reply = origin.edge(Method::POST, &used, Some(json!({"generation": 0}))).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let retry = origin.refresh(&refresh_token(&issued)).await;
    assert_eq!(retry.status, StatusCode::OK, "{:?}", retry.body);
    assert_eq!(refresh_token(&retry.body), refresh_token(&r1.body));
    assert_eq!(metric(&origin, "latch_refresh_generations_proven_total"), 0.0);
}

async fn usage_reports_are_checked_and_need_a_credential(store: Store) {
    let origin = Origin::start(&store).await;
    let issued = origin.create("hal").await;
    let used = format!("/v1/sessions/{}/used", handle(&issued));
    let anonymous = origin.call(Method::POST, &used, None, Some(json!({"generation": 1}))).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    for body in [
        json!({"generation": -1}),
        json!({"generation": "1"}),
        json!({}),
        json!({"generation": u64::MAX}),
    ] {
        let reply = origin.api(Method::POST, &used, Some(body.clone())).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
    }
    for (body, status) in [
        ("[".repeat(10_000), StatusCode::BAD_REQUEST),
        ("x".repeat(2 << 20), StatusCode::PAYLOAD_TOO_LARGE),
    ] {
        let request = axum::http::Request::post(&used)
            .header("authorization", format!("Bearer {API_KEY}"))
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body))
            .unwrap();
        assert_eq!(origin.send(request).await.status, status);
    }
    let unknown =
        origin.api(Method::POST, "/v1/sessions/nope/used", Some(json!({"generation": 1}))).await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST, "not a handle");
    assert_eq!(origin.refresh(&refresh_token(&issued)).await.status, StatusCode::OK);
    let app = origin.api(Method::POST, &used, Some(json!({"generation": 1}))).await;
    assert_eq!(app.status, StatusCode::NO_CONTENT, "a direct-mode app reports with the API key");
    assert_eq!(origin.refresh(&refresh_token(&issued)).await.error(), "TOKEN_THEFT_DETECTED");
}

async fn fifty_parallel_refreshes_share_one_lineage(store: Store) {
    let origin = std::sync::Arc::new(Origin::start(&store).await);
    let issued = origin.create("hank").await;
    let token = refresh_token(&issued);
    let replies = futures::future::join_all((0..50).map(|_| {
        let origin = origin.clone();
        let token = token.clone();
        tokio::spawn(async move { origin.refresh(&token).await })
    }))
    .await;
    let mut successors = HashSet::new();
    for reply in replies {
        let reply = reply.unwrap();
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        successors.insert(refresh_token(&reply.body));
    }
    assert_eq!(successors.len(), 1, "every response carries the same successor");
    assert_eq!(metric(&origin, "latch_token_thefts_total"), 0.0);
    assert_eq!(metric(&origin, "latch_sessions_refreshed_total"), 1.0);
    assert_eq!(metric(&origin, "latch_refresh_repeats_total"), 49.0);
    let successor = successors.into_iter().next().unwrap();
    assert_eq!(origin.refresh(&successor).await.status, StatusCode::OK);
}

async fn expired_access_and_refresh_tokens(store: Store) {
    let origin = Origin::start_with(&store, |c| {
        c.access_token_lifetime = Duration::from_secs(60);
        c.refresh_token_lifetime = Duration::from_secs(600);
    })
    .await;
    let issued = origin.create("ivy").await;
    origin.advance(Duration::from_secs(66));
    let expired = origin.verify(&access_token(&issued)).await;
    assert_eq!(expired.error(), "TRY_REFRESH_TOKEN");
    assert_eq!(expired.status.as_u16(), 440);
    let refreshed = origin.refresh(&refresh_token(&issued)).await;
    assert_eq!(refreshed.status, StatusCode::OK);
    // Refreshing moved the session's end to 600 s from now; past it, the session is over.
    origin.advance(Duration::from_secs(599));
    let alive = origin.refresh(&refresh_token(&refreshed.body)).await;
    assert_eq!(alive.status, StatusCode::OK, "{:?}", alive.body);
    origin.advance(Duration::from_secs(601));
    assert_eq!(origin.refresh(&refresh_token(&alive.body)).await.error(), "UNAUTHORISED");
    let info =
        origin.api(Method::GET, &format!("/v1/sessions/{}/info", handle(&issued)), None).await;
    assert_eq!(info.error(), "UNAUTHORISED", "expired sessions have no info");
}

async fn purge_removes_only_expired_sessions(store: Store) {
    let origin =
        Origin::start_with(&store, |c| c.refresh_token_lifetime = Duration::from_secs(3601)).await;
    for user in ["j1", "j2", "j3"] {
        origin.create(user).await;
    }
    origin.advance(Duration::from_secs(3602));
    let survivor = origin.create("j4").await;
    assert_eq!(origin.state.sessions.purge_expired().await.unwrap(), 3);
    assert_eq!(origin.verify(&access_token(&survivor)).await.status, StatusCode::OK);
    assert_eq!(origin.state.sessions.purge_expired().await.unwrap(), 0);
}

/// A user id stored before the rules on surrounding whitespace stays reachable: listed and
/// revoked by its exact text.
async fn ids_stored_before_the_whitespace_rule_stay_reachable(store: Store) {
    let origin = Origin::start(&store).await;
    let now = origin.state.sessions.now_ms();
    sqlx::query(
        "INSERT INTO sessions (handle, user_id, current_hash, created_at, expires_at) \
         VALUES ('legacy-1', ' padded', 'x', $1, $2)",
    )
    .bind(now)
    .bind(now + 60_000)
    .execute(origin.state.sessions.pool())
    .await
    .unwrap();
    let listed = origin.api(Method::GET, "/v1/users/%20padded/sessions", None).await;
    assert_eq!(listed.body["handles"], json!(["legacy-1"]), "{:?}", listed.body);
    let revoked = origin.api(Method::DELETE, "/v1/users/%20padded/sessions", None).await;
    assert_eq!(revoked.body["handles"], json!(["legacy-1"]));
}

/// More expired sessions than one batch: every one goes, in several statements, and live ones
/// stay.
async fn purge_goes_batch_by_batch_until_none_is_left(store: Store) {
    let origin = Origin::start(&store).await;
    let expired = 2 * PURGE_BATCH + 7;
    let now = origin.state.sessions.now_ms();
    let mut tx = origin.state.sessions.pool().begin().await.unwrap();
    for n in 0..expired {
        sqlx::query(
            "INSERT INTO sessions (handle, user_id, current_hash, created_at, expires_at) \
             VALUES ($1, 'old', 'x', $2, $3)",
        )
        .bind(format!("expired-{n}"))
        .bind(now - 10_000)
        .bind(now - 1)
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    let live = origin.create("still-here").await;
    assert_eq!(origin.state.sessions.purge_expired().await.unwrap(), expired as u64);
    assert_eq!(origin.verify(&access_token(&live)).await.status, StatusCode::OK);
    assert_eq!(origin.state.sessions.purge_expired().await.unwrap(), 0);
}

async fn revoke_all_sessions_of_a_user(store: Store) {
    let origin = Origin::start(&store).await;
    let mut handles = Vec::new();
    let mut issued_all = Vec::new();
    for _ in 0..3 {
        let issued = origin.create("kim").await;
        handles.push(handle(&issued));
        issued_all.push(issued);
    }
    let other = origin.create("kim2").await;
    let listed = origin.api(Method::GET, "/v1/users/kim/sessions", None).await;
    let mut listed: Vec<String> = serde_json::from_value(listed.body["handles"].clone()).unwrap();
    listed.sort();
    handles.sort();
    assert_eq!(listed, handles);
    let revoked = origin.api(Method::DELETE, "/v1/users/kim/sessions", None).await;
    assert_eq!(revoked.body["handles"].as_array().unwrap().len(), 3);
    for issued in &issued_all {
        assert_eq!(origin.verify(&access_token(issued)).await.error(), "UNAUTHORISED");
    }
    assert_eq!(origin.verify(&access_token(&other)).await.status, StatusCode::OK);
    let listed = origin.api(Method::GET, "/v1/users/kim/sessions", None).await;
    assert_eq!(listed.body["handles"], json!([]));
}

async fn anti_csrf_is_enforced_on_request(store: Store) {
    let origin = Origin::start(&store).await;
    let issued = origin.create("lee").await;
    let csrf = issued["tokens"]["anti_csrf_token"].as_str().unwrap().to_owned();
    let verify = |header: Option<&str>| {
        let body = json!({
            "access_token": access_token(&issued),
            "anti_csrf_token": header,
            "enforce_anti_csrf": true,
        });
        let origin = &origin;
        async move { origin.api(Method::POST, "/v1/sessions/verify", Some(body)).await }
    };
    assert_eq!(verify(Some(&csrf)).await.status, StatusCode::OK);
    assert_eq!(verify(None).await.error(), "TRY_REFRESH_TOKEN");
    assert_eq!(verify(Some("wrong")).await.error(), "TRY_REFRESH_TOKEN");
    // Without enforcement the header is not needed.
    assert_eq!(origin.verify(&access_token(&issued)).await.status, StatusCode::OK);
}

async fn in_custom_header_mode_no_token_is_minted_and_only_the_rid_header_passes(store: Store) {
    let origin = Origin::start_with(&store, |c| {
        c.anti_csrf.proof = latch_shared::engine::CsrfProof::CustomHeader
    })
    .await;
    let issued = origin.create("ana").await;
    assert_eq!(issued["tokens"]["anti_csrf_token"], json!(null));
    let headers = issued["response_headers"].as_array().unwrap();
    assert!(headers.iter().all(|h| h["name"] != "anti-csrf"), "no token to hand out");
    let verify = |rid_header: bool| {
        let body = json!({
            "access_token": access_token(&issued),
            "enforce_anti_csrf": true,
            "rid_header": rid_header,
        });
        let origin = &origin;
        async move { origin.api(Method::POST, "/v1/sessions/verify", Some(body)).await }
    };
    assert_eq!(verify(true).await.status, StatusCode::OK);
    assert_eq!(verify(false).await.error(), "TRY_REFRESH_TOKEN", "a forged form sends no rid");
    let refreshed = origin.refresh(&refresh_token(&issued)).await;
    assert_eq!(refreshed.body["tokens"]["anti_csrf_token"], json!(null));
}

async fn anti_csrf_can_be_disabled(store: Store) {
    let origin = Origin::start_with(&store, |c| c.anti_csrf.enabled = false).await;
    let issued = origin.create("max").await;
    assert_eq!(issued["tokens"]["anti_csrf_token"], json!(null));
    assert!(issued["response_headers"]
        .as_array()
        .unwrap()
        .iter()
        .all(|h| h["name"] != "anti-csrf"));
    let body = json!({"access_token": access_token(&issued), "enforce_anti_csrf": true});
    assert_eq!(
        origin.api(Method::POST, "/v1/sessions/verify", Some(body)).await.status,
        StatusCode::OK
    );
    let refreshed = origin.refresh(&refresh_token(&issued)).await;
    assert_eq!(refreshed.body["tokens"]["anti_csrf_token"], json!(null));
}

async fn two_instances_agree_on_keys_and_lineage(store: Store) {
    let clock = latch_origin::clock::Clock::manual(chrono::Utc::now());
    let (a, b) = tokio::join!(
        Origin::start_at(&store, clock.clone(), |_| {}),
        Origin::start_at(&store, clock.clone(), |_| {}),
    );
    let jwks_a = a.call(Method::GET, "/.well-known/jwks.json", None, None).await.body;
    let jwks_b = b.call(Method::GET, "/.well-known/jwks.json", None, None).await.body;
    assert_eq!(jwks_a, jwks_b, "both instances publish the same keys");
    assert_eq!(jwks_a["keys"].as_array().unwrap().len(), 2, "current and next key");

    let issued = a.create("nia").await;
    assert_eq!(b.verify(&access_token(&issued)).await.status, StatusCode::OK);
    let token = refresh_token(&issued);
    let (a, b) = (std::sync::Arc::new(a), std::sync::Arc::new(b));
    let replies = futures::future::join_all((0..20).map(|i| {
        let origin = if i % 2 == 0 { a.clone() } else { b.clone() };
        let token = token.clone();
        tokio::spawn(async move { origin.refresh(&token).await })
    }))
    .await;
    let successors: HashSet<_> = replies
        .into_iter()
        .map(|reply| {
            let reply = reply.unwrap();
            assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
            refresh_token(&reply.body)
        })
        .collect();
    assert_eq!(successors.len(), 1, "instances converge on one lineage");

    // A day later both rotate at once: they still publish the same keys and accept each
    // other's tokens.
    clock.advance(Duration::from_secs(86_400));
    let (jwks_a, jwks_b) = tokio::join!(
        a.call(Method::GET, "/.well-known/jwks.json", None, None),
        b.call(Method::GET, "/.well-known/jwks.json", None, None),
    );
    assert_eq!(jwks_a.body, jwks_b.body);
    assert_eq!(jwks_a.body["keys"].as_array().unwrap().len(), 3, "old, current, next");
    let issued = b.create("nia").await;
    assert_eq!(a.verify(&access_token(&issued)).await.status, StatusCode::OK);
}

async fn key_rotation_publishes_before_signing_and_retires_after_expiry(store: Store) {
    let origin = Origin::start_with(&store, |c| {
        c.key_rotation = Duration::from_secs(3600);
        c.jwks_cache = Duration::from_secs(300);
        c.access_token_lifetime = Duration::from_secs(600);
    })
    .await;
    let published = published_kids(&origin).await;
    assert_eq!(published.len(), 2, "the next key is published from the start");
    let next_kid = published[1].clone();

    // Five minutes before the rotation the first key still signs.
    origin.advance(Duration::from_secs(3300));
    let first = origin.create("oli").await;
    assert_eq!(kid_of(&access_token(&first)), published[0]);

    // At the hour the pre-published key signs, and tokens of the old key still verify.
    origin.advance(Duration::from_secs(300));
    let second = origin.create("oli").await;
    assert_eq!(kid_of(&access_token(&second)), next_kid);
    assert_eq!(origin.verify(&access_token(&first)).await.status, StatusCode::OK);
    let published = published_kids(&origin).await;
    assert_eq!(published.len(), 3, "old, current and next: {published:?}");

    // Once every token of the old key has expired, the old key leaves the JWKS.
    origin.advance(Duration::from_secs(600 + 6));
    let published = published_kids(&origin).await;
    assert_eq!(published.len(), 2, "{published:?}");
    assert!(published.contains(&next_kid));
    assert!(!published.contains(&kid_of(&access_token(&first))));
}

async fn malformed_refresh_tokens_are_unauthorised_not_theft(store: Store) {
    let origin = Origin::start(&store).await;
    let issued = origin.create("pat").await;
    let token = refresh_token(&issued);
    let (handle_part, _) = token.split_once('.').unwrap();
    let forged = format!("{handle_part}.{}", "A".repeat(43));
    for bad in ["", "garbage", &token[..token.len() - 1], &format!("{token}x")] {
        let reply = origin.refresh(bad).await;
        assert_eq!(reply.error(), "UNAUTHORISED", "{bad:?}: {:?}", reply.body);
    }
    // A well-formed forgery for a real session's handle is invalid, not theft: knowing a
    // handle must not let anyone end someone else's session.
    assert_eq!(origin.refresh(&forged).await.error(), "UNAUTHORISED");
    assert_eq!(origin.refresh(&token).await.status, StatusCode::OK, "the session lives on");
    assert_eq!(metric(&origin, "latch_token_thefts_total"), 0.0);
}

async fn emergency_rotation_signs_with_a_new_key_after_the_publish_lead(store: Store) {
    let origin = Origin::start_with(&store, |c| c.jwks_cache = Duration::from_secs(60)).await;
    let before = origin.create("rex").await;
    let rotated = origin.api(Method::POST, "/v1/keys/rotate", None).await;
    assert_eq!(rotated.status, StatusCode::OK, "{:?}", rotated.body);
    let new_kid = rotated.body["kid"].as_str().unwrap().to_owned();
    assert!(published_kids(&origin).await.contains(&new_kid), "published before it signs");
    origin.advance(Duration::from_secs(61));
    let after = origin.create("rex").await;
    assert_eq!(kid_of(&access_token(&after)), new_kid);
    assert_ne!(kid_of(&access_token(&before)), new_kid);
    assert_eq!(origin.verify(&access_token(&before)).await.status, StatusCode::OK);
}

async fn a_compromised_key_is_distrusted_at_once_on_every_instance_and_sessions_move_on(
    store: Store,
) {
    let one = Origin::start(&store).await;
    let two = Origin::start(&store).await;
    let issued = one.create("rex").await;
    let old_kid = kid_of(&access_token(&issued));
    let before = published_kids(&one).await;
    assert_eq!(before.len(), 2, "the signing key and the pending one: {before:?}");

    let rotated = one.api(Method::POST, "/v1/keys/rotate?compromised=true", None).await;
    assert_eq!(rotated.status, StatusCode::OK, "{:?}", rotated.body);
    let new_kid = rotated.body["kid"].as_str().unwrap().to_owned();
    let retired: Vec<String> = serde_json::from_value(rotated.body["retired"].clone()).unwrap();
    assert_eq!(retired, before, "the pending key, made before the compromise, goes too");
    let after = published_kids(&one).await;
    assert!(after.contains(&new_kid) && !after.iter().any(|kid| before.contains(kid)), "{after:?}");

    // Refused at once, on this instance and on the other, which has not reloaded its keys.
    for origin in [&one, &two] {
        let verified = origin.verify(&access_token(&issued)).await;
        assert_eq!(verified.error(), "TRY_REFRESH_TOKEN", "{:?}", verified.body);
    }
    // The session itself survives: its refresh token gets a token of the new key.
    let refreshed = one.refresh(&refresh_token(&issued)).await;
    assert_eq!(kid_of(&access_token(&refreshed.body)), new_kid);
    for origin in [&one, &two] {
        assert_eq!(origin.verify(&access_token(&refreshed.body)).await.status, StatusCode::OK);
    }
    assert_eq!(kid_of(&access_token(&one.create("rex").await)), new_kid, "signs at once");
    assert_ne!(old_kid, new_kid);
    let bad = one.api(Method::POST, "/v1/keys/rotate?compromised=maybe", None).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

async fn a_new_jwt_payload_reissues_the_access_token_and_every_refresh_carries_it(store: Store) {
    let origin = Origin::start(&store).await;
    let issued = origin.create("dora").await;
    let path = format!("/v1/sessions/{}/jwt-payload", handle(&issued));
    origin.advance(Duration::from_secs(60));
    let update = json!({"access_token": access_token(&issued), "jwt_payload": {"role": "admin"}});
    let reissued = origin.api(Method::PUT, &path, Some(update)).await;
    assert_eq!(reissued.status, StatusCode::OK, "{:?}", reissued.body);
    assert_eq!(reissued.body["session"]["jwt_payload"], json!({"role": "admin"}));
    // The same expiry: a payload change never lengthens a token's life.
    assert_eq!(
        reissued.body["access_token"]["expires_at"],
        issued["tokens"]["access_token"]["expires_at"]
    );
    let token = reissued.body["access_token"]["value"].as_str().unwrap().to_owned();
    assert_ne!(token, access_token(&issued));
    let verified = origin.verify(&token).await;
    assert_eq!(verified.body["session"]["jwt_payload"], json!({"role": "admin"}));
    assert_eq!(generation_of(&token), 0, "the same refresh generation");
    let headers = reissued.body["response_headers"].as_array().unwrap();
    assert!(headers.iter().any(|h| h["name"] == "set-cookie"
        && h["value"].as_str().unwrap().starts_with(&format!("sAccessToken={token};"))));
    assert!(headers.iter().any(|h| h["name"] == "front-token"));

    let refreshed = origin.refresh(&refresh_token(&issued)).await;
    assert_eq!(refreshed.body["session"]["jwt_payload"], json!({"role": "admin"}));
    let clear = json!({"access_token": token, "jwt_payload": null});
    let cleared = origin.api(Method::PUT, &path, Some(clear)).await;
    assert_eq!(cleared.status, StatusCode::OK, "{:?}", cleared.body);
    assert_eq!(cleared.body["session"]["jwt_payload"], json!(null));
}

async fn a_jwt_payload_update_needs_a_valid_token_of_that_session_and_an_object(store: Store) {
    let origin = Origin::start(&store).await;
    let alice = origin.create("alice").await;
    let mallory = origin.create("mallory").await;
    let path = format!("/v1/sessions/{}/jwt-payload", handle(&alice));
    // Another session's token cannot rewrite this one's payload.
    let other = json!({"access_token": access_token(&mallory), "jwt_payload": {"role": "admin"}});
    assert_eq!(origin.api(Method::PUT, &path, Some(other)).await.status, StatusCode::BAD_REQUEST);
    let forged = json!({"access_token": "a.b.c", "jwt_payload": {}});
    assert_eq!(origin.api(Method::PUT, &path, Some(forged)).await.error(), "TRY_REFRESH_TOKEN");
    let string = json!({"access_token": access_token(&alice), "jwt_payload": "admin"});
    let refused = origin.api(Method::PUT, &path, Some(string)).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.body.to_string().contains("must be a JSON object"), "{:?}", refused.body);
    // Revoked: the token still verifies by signature, but the session is gone.
    origin.api(Method::DELETE, &format!("/v1/sessions/{}", handle(&alice)), None).await;
    let late = json!({"access_token": access_token(&alice), "jwt_payload": {}});
    assert_eq!(origin.api(Method::PUT, &path, Some(late)).await.error(), "UNAUTHORISED");
    assert_eq!(
        origin.verify(&access_token(&mallory)).await.body["session"]["jwt_payload"],
        json!({"role": "reader"}),
        "nothing changed for the other session"
    );
}
