//! The Session object (`latch_session`) of an app *not* behind the edge, against a real
//! origin over HTTP: it verifies tokens itself from the JWKS and calls the API for the rest.

mod common;

use axum::http::{HeaderMap, Method, StatusCode};
use common::*;
use latch_session::{Latch, SignInDevice, Verification};
use latch_shared::api::UserId;
use latch_shared::ErrorKind;
use serde_json::json;

on_both_stores!(
    direct_verification_and_session_calls,
    numeric_and_string_ids_are_different_users_given_back_with_their_type,
    a_direct_verify_of_the_successor_spends_the_previous_refresh_token,
    the_session_object_replaces_its_jwt_payload_and_hands_over_the_reissued_token,
    a_header_mode_refresh_from_todays_sdk_gets_its_tokens_in_headers_and_a_cookie_one_cookies,
    the_session_object_lists_its_users_devices_and_signs_out_the_others
);

/// Serves the origin's router on a real port.
async fn serve(origin: &Origin) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = origin.router.clone();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{address}")
}

fn browser_headers(issued: &serde_json::Value, anti_csrf: Option<&str>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let cookie = format!(
        "sAccessToken={}; sIdRefreshToken={}",
        access_token(issued),
        issued["tokens"]["id_refresh_token"]["value"].as_str().unwrap()
    );
    headers.insert("cookie", cookie.parse().unwrap());
    if let Some(token) = anti_csrf {
        headers.insert("anti-csrf", token.parse().unwrap());
    }
    headers
}

/// Without an edge, the Session object is what sees tokens in use: its first verify of a new
/// generation tells the origin, so a stolen previous refresh token replayed afterwards is theft.
async fn a_direct_verify_of_the_successor_spends_the_previous_refresh_token(store: Store) {
    let origin = Origin::start(&store).await;
    let url = serve(&origin).await;
    let latch = Latch::new(&url, API_KEY, Verification::Direct);
    let issued = origin.create("sam").await;
    let refreshed = origin.refresh(&refresh_token(&issued)).await.body;
    let csrf = refreshed["tokens"]["anti_csrf_token"].as_str().unwrap().to_owned();
    for _ in 0..3 {
        latch
            .get_session(&browser_headers(&refreshed, Some(&csrf)), &Method::GET, false)
            .await
            .unwrap();
    }
    // The report runs in the background: wait for it, then check it was made once.
    for _ in 0..100 {
        if metric(&origin, "latch_refresh_generations_proven_total") > 0.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(metric(&origin, "latch_refresh_generations_proven_total"), 1.0);
    assert_eq!(origin.refresh(&refresh_token(&issued)).await.error(), "TOKEN_THEFT_DETECTED");
}

async fn direct_verification_and_session_calls(store: Store) {
    // The direct mode uses the real clock; the origin's manual clock starts at "now" and stays
    // there. A zero JWKS cache time lets a rotation take effect at once.
    let origin = Origin::start_with(&store, |c| c.jwks_cache = std::time::Duration::ZERO).await;
    let url = serve(&origin).await;
    let latch = Latch::new(&url, API_KEY, Verification::Direct);
    let issued = latch
        .create_new_session(sam(), Some(json!({"tier": "gold"})), Some(json!(1)))
        .await
        .unwrap();
    let issued = serde_json::to_value(&issued).unwrap();
    let csrf = issued["tokens"]["anti_csrf_token"].as_str().unwrap().to_owned();

    let session = latch
        .get_session(&browser_headers(&issued, Some(&csrf)), &Method::POST, true)
        .await
        .unwrap();
    assert_eq!(session.get_user_id(), "sam");
    assert_eq!(session.get_jwt_payload(), Some(&json!({"tier": "gold"})));
    assert_eq!(session.get_session_info().await.unwrap(), Some(json!(1)));
    session.update_session_info(Some(json!({"joke": "Knock, knock"}))).await.unwrap();
    assert_eq!(session.get_session_info().await.unwrap(), Some(json!({"joke": "Knock, knock"})));

    // The seed's rules: with the flag, the anti-CSRF header whatever the method; the id-refresh
    // cookie required.
    for method in [Method::POST, Method::GET] {
        let err =
            latch.get_session(&browser_headers(&issued, None), &method, true).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TryRefreshToken, "{method}");
    }
    assert!(latch
        .get_session(&browser_headers(&issued, Some(&csrf)), &Method::GET, true)
        .await
        .is_ok());
    assert!(latch.get_session(&browser_headers(&issued, None), &Method::POST, false).await.is_ok());
    let mut no_irt = HeaderMap::new();
    no_irt.insert("cookie", format!("sAccessToken={}", access_token(&issued)).parse().unwrap());
    let err = latch.get_session(&no_irt, &Method::GET, false).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorised);

    // Two emergency rotations later, a token's kid is one the cached JWKS has never seen
    // (the first rotation promotes the pre-published key): the JWKS is refetched.
    let cached_kids = published_kids(&origin).await;
    for _ in 0..2 {
        let rotated = origin.call(Method::POST, "/v1/keys/rotate", Some(API_KEY), None).await;
        assert_eq!(rotated.status, StatusCode::OK);
    }
    let fresh =
        serde_json::to_value(latch.create_new_session(sam(), None, None).await.unwrap()).unwrap();
    assert!(!cached_kids.contains(&kid_of(&access_token(&fresh))));
    assert!(latch.get_session(&browser_headers(&fresh, None), &Method::GET, false).await.is_ok());

    // The seed's refreshSession: the refresh and id-refresh cookies in, a rotated session and
    // its cookies out.
    let mut refresh_cookies = HeaderMap::new();
    let cookie = format!(
        "sRefreshToken={}; sIdRefreshToken={}",
        issued["tokens"]["refresh_token"]["value"].as_str().unwrap(),
        issued["tokens"]["id_refresh_token"]["value"].as_str().unwrap()
    );
    refresh_cookies.insert("cookie", cookie.parse().unwrap());
    let refreshed = latch.refresh_session(&refresh_cookies).await.unwrap();
    assert_eq!(refreshed.session.get_handle(), handle(&issued));
    assert_eq!(refreshed.session.get_user_id(), &sam());
    assert_eq!(refreshed.session.get_jwt_payload(), Some(&json!({"tier": "gold"})));
    let set_cookies = refreshed.headers.0.iter().filter(|h| h.name == "set-cookie").count();
    assert_eq!(set_cookies, 3, "{:?}", refreshed.headers);

    // Admin functions.
    let mut handles = latch.get_all_session_handles_for_user(&sam()).await.unwrap();
    handles.sort();
    let mut expected = vec![handle(&issued), handle(&fresh)];
    expected.sort();
    assert_eq!(handles, expected);

    // Revoking clears the cookies on the response and ends the session at the origin.
    let cleared = session.revoke_session().await.unwrap();
    assert!(cleared
        .0
        .iter()
        .any(|h| h.name == "set-cookie" && h.value.starts_with("sAccessToken=;")));
    assert!(cleared.0.iter().any(|h| h.name == "id-refresh-token" && h.value == "remove"));
    let err = session.get_session_info().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorised);
    // As in the seed, revoking a session that is already gone leaves the cookies alone.
    assert_eq!(session.revoke_session().await.unwrap().0, vec![]);
    assert_eq!(latch.revoke_all_sessions_for_user(&sam()).await.unwrap(), vec![handle(&fresh)]);
    assert!(!latch.revoke_session_using_session_handle(&handle(&fresh)).await.unwrap());
}

fn sam() -> UserId {
    UserId::text("sam").unwrap()
}

/// The seed's `userId: string | number`: 7 and "7" are two users, each id comes back with its
/// type from create, verify, refresh and the user's session list.
async fn numeric_and_string_ids_are_different_users_given_back_with_their_type(store: Store) {
    let origin = Origin::start(&store).await;
    let url = serve(&origin).await;
    let latch = Latch::new(&url, API_KEY, Verification::Direct);
    let number = UserId::number(7).unwrap();
    let text = UserId::text("7").unwrap();
    let unicode = UserId::text("Zoë 🚀").unwrap();
    let mut issued = Vec::new();
    for user_id in [&number, &text, &unicode] {
        let session = latch.create_new_session(user_id.clone(), None, None).await.unwrap();
        assert_eq!(&session.session.user_id, user_id);
        let issued_json = serde_json::to_value(&session).unwrap();
        let verified =
            latch.get_session(&browser_headers(&issued_json, None), &Method::GET, false).await;
        assert_eq!(verified.unwrap().get_user_id(), user_id);
        issued.push(session);
    }
    assert_eq!(
        serde_json::to_value(&issued[0]).unwrap()["session"]["user_id"],
        json!(7),
        "a number on the wire"
    );
    // Each id lists, refreshes and revokes only its own sessions.
    for (user_id, session) in [&number, &text, &unicode].into_iter().zip(&issued) {
        let handles = latch.get_all_session_handles_for_user(user_id).await.unwrap();
        assert_eq!(handles, vec![session.session.handle.clone()], "{user_id:?}");
        let refreshed = origin
            .call(
                Method::POST,
                "/v1/sessions/refresh",
                Some(API_KEY),
                Some(json!({"refresh_token": session.tokens.refresh_token.value})),
            )
            .await;
        assert_eq!(refreshed.body["session"]["user_id"], serde_json::to_value(user_id).unwrap());
    }
    assert_eq!(latch.revoke_all_sessions_for_user(&number).await.unwrap().len(), 1);
    assert_eq!(latch.get_all_session_handles_for_user(&text).await.unwrap().len(), 1, "\"7\" kept");

    // Ids that cannot travel are refused at creation with the reason.
    for (bad, reason) in [
        (json!(" padded"), "whitespace"),
        (json!("a\nb"), "control"),
        (json!(7.5), "whole number"),
        (json!(9007199254740992_i64), "whole number"),
        (json!(true), "string or a"),
    ] {
        let answer = origin
            .call(Method::POST, "/v1/sessions", Some(API_KEY), Some(json!({"user_id": bad})))
            .await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{bad}");
        let message = answer.body["message"].as_str().unwrap();
        assert!(message.contains(reason), "{bad}: {message}");
    }
    // A numeric id in a path is written in decimal with `user_id_type=number`.
    let listed = origin
        .call(Method::GET, "/v1/users/07/sessions?user_id_type=number", Some(API_KEY), None)
        .await;
    assert_eq!(listed.status, StatusCode::BAD_REQUEST, "one spelling per number");
}

async fn the_session_object_replaces_its_jwt_payload_and_hands_over_the_reissued_token(
    store: Store,
) {
    let origin = Origin::start(&store).await;
    let url = serve(&origin).await;
    let latch = Latch::new(&url, API_KEY, Verification::Direct);
    let issued = origin.create("sam").await;
    let mut session =
        latch.get_session(&browser_headers(&issued, None), &Method::GET, false).await.unwrap();
    let headers = session.update_jwt_payload(Some(json!({"role": "admin"}))).await.unwrap();
    assert_eq!(session.get_jwt_payload(), Some(&json!({"role": "admin"})));
    let cookie = headers.0.iter().find(|h| h.name == "set-cookie").unwrap();
    let token = cookie.value.strip_prefix("sAccessToken=").unwrap().split(';').next().unwrap();
    assert_eq!(
        origin.verify(token).await.body["session"]["jwt_payload"],
        json!({"role": "admin"}),
        "the cookie carries the re-issued token"
    );
    assert!(headers.0.iter().any(|h| h.name == "front-token"));
    let refused = session.update_jwt_payload(Some(json!(["not", "an", "object"]))).await;
    assert!(refused.is_err());
    assert_eq!(session.get_jwt_payload(), Some(&json!({"role": "admin"})), "nothing changed");
}

async fn a_header_mode_refresh_from_todays_sdk_gets_its_tokens_in_headers_and_a_cookie_one_cookies(
    store: Store,
) {
    let origin = Origin::start(&store).await;
    let url = serve(&origin).await;
    let latch = Latch::new(&url, API_KEY, Verification::Direct);
    let issued = origin.create("sam").await;
    let mut header_mode = HeaderMap::new();
    header_mode.insert("st-auth-mode", "header".parse().unwrap());
    let bearer = format!("Bearer {}", refresh_token(&issued));
    header_mode.insert("authorization", bearer.parse().unwrap());
    let refreshed = latch.refresh_session(&header_mode).await.unwrap();
    let names: Vec<_> = refreshed.headers.0.iter().map(|h| h.name.as_str()).collect();
    assert!(names.contains(&"st-access-token") && names.contains(&"st-refresh-token"), "{names:?}");
    assert!(!names.contains(&"set-cookie"), "{names:?}");
    assert!(names.contains(&"front-token"));

    // A cookie session asking for header mode still gets cookies: its tokens never become
    // readable; and today's SDK needs no sIdRefreshToken.
    let successor = refreshed.headers.0.iter().find(|h| h.name == "st-refresh-token").unwrap();
    let mut cookie_mode = HeaderMap::new();
    cookie_mode.insert("st-auth-mode", "header".parse().unwrap());
    let cookie = format!("sRefreshToken={}", successor.value);
    cookie_mode.insert("cookie", cookie.parse().unwrap());
    let refreshed = latch.refresh_session(&cookie_mode).await.unwrap();
    let names: Vec<_> = refreshed.headers.0.iter().map(|h| h.name.as_str()).collect();
    assert!(names.contains(&"set-cookie") && !names.contains(&"st-refresh-token"), "{names:?}");
}

async fn the_session_object_lists_its_users_devices_and_signs_out_the_others(store: Store) {
    let origin = Origin::start(&store).await;
    let url = serve(&origin).await;
    let latch = Latch::new(&url, API_KEY, Verification::Direct);
    let zoe = UserId::Text("Zoë".into());
    // An app that signs people in itself says where from, as the edge does for a login.
    let mut sign_in = HeaderMap::new();
    let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
    sign_in.insert("user-agent", firefox.parse().unwrap());
    let from = SignInDevice::from_request(&sign_in, Some("203.0.113.77".parse().unwrap()));
    let phone = latch.create_new_session_from(from, zoe.clone(), None, None).await.unwrap();
    let phone = serde_json::to_value(phone).unwrap();
    let laptop =
        serde_json::to_value(latch.create_new_session(zoe.clone(), None, None).await.unwrap())
            .unwrap();
    let tablet =
        serde_json::to_value(latch.create_new_session(zoe, None, None).await.unwrap()).unwrap();
    let session =
        latch.get_session(&browser_headers(&laptop, None), &Method::GET, false).await.unwrap();
    let listed = session.list_devices().await.unwrap();
    assert!(!listed.more);
    let devices = listed.sessions;
    assert_eq!(devices.len(), 3);
    let signed_in_from = devices.iter().find(|d| d.handle == handle(&phone)).unwrap();
    assert_eq!(signed_in_from.browser.as_deref(), Some("Firefox 133"));
    assert_eq!(signed_in_from.network.as_deref(), Some("203.0.113.0/24"), "never the address");
    let plain = devices.iter().find(|d| d.handle == handle(&tablet)).unwrap();
    assert_eq!((&plain.browser, &plain.network), (&None, &None), "nothing said, nothing stored");
    let current: Vec<_> = devices.iter().filter(|d| d.current).map(|d| d.handle.clone()).collect();
    assert_eq!(current, [handle(&laptop)]);
    assert!(session.sign_out_device(session.get_handle()).await.is_err(), "revoke_session clears");
    assert!(session.sign_out_device(&handle(&tablet)).await.unwrap());
    assert!(!session.sign_out_device(&handle(&tablet)).await.unwrap(), "already gone");
    assert_eq!(session.sign_out_other_devices().await.unwrap(), [handle(&phone)]);
    let left = session.list_devices().await.unwrap().sessions;
    assert_eq!(left.iter().map(|d| d.handle.clone()).collect::<Vec<_>>(), [handle(&laptop)]);
}
