//! "Your devices": sessions stored with their device, listed for their user, and signed out
//! one by one or all but the current, on SQLite and on Postgres.

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::*;
use latch_shared::api::MAX_DEVICES_LISTED;
use serde_json::{json, Value};

on_both_stores!(
    a_session_is_stored_with_its_device_and_listed_newest_first,
    the_device_policy_decides_what_is_stored,
    last_seen_moves_at_refresh_and_first_use_of_a_new_token,
    signing_out_other_devices_keeps_the_current_one_and_blacklists_the_rest,
    a_user_cannot_sign_out_another_users_session,
    a_device_already_signed_out_can_neither_list_nor_sign_out_the_others,
    a_user_with_many_sessions_gets_the_newest_and_the_asking_one,
    the_bound_plus_the_asking_session_is_the_whole_list,
);

const FIREFOX_LINUX: &str =
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
const CHROME_ANDROID: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 \
    (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36";

/// Creates a session as the edge does: the device in the body, the address in a header.
async fn create_from(origin: &Origin, user: &str, agent: &str, address: &str, city: &str) -> Value {
    let body = json!({
        "user_id": user,
        "device": {"user_agent": agent, "country": "fr", "region": "Île-de-France", "city": city},
    });
    let request = Request::builder()
        .method(Method::POST)
        .uri("/v1/sessions")
        .header("authorization", format!("Bearer {EDGE_SECRET}"))
        .header("content-type", "application/json")
        .header("x-latch-client-address", address)
        .body(Body::from(body.to_string()))
        .unwrap();
    let reply = origin.send(request).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    reply.body
}

async fn devices(origin: &Origin, user: &str, current: &str) -> Vec<Value> {
    let query = if current.is_empty() { String::new() } else { format!("?current={current}") };
    let reply = origin.api(Method::GET, &format!("/v1/users/{user}/devices{query}"), None).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    reply.body["sessions"].as_array().unwrap().clone()
}

async fn a_session_is_stored_with_its_device_and_listed_newest_first(store: Store) {
    let origin = Origin::start(&store).await;
    let laptop = create_from(&origin, "zoë", FIREFOX_LINUX, "203.0.113.77", "Paris").await;
    origin.advance(Duration::from_secs(5));
    let phone = create_from(&origin, "zoë", CHROME_ANDROID, "2001:db8:abcd:12::7", "Créteil").await;
    let listed = devices(&origin, "zo%C3%AB", &handle(&phone)).await;
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["handle"], handle(&phone), "newest first");
    assert_eq!(listed[0]["current"], true);
    assert_eq!(listed[0]["browser"], "Chrome 131");
    assert_eq!(listed[0]["os"], "Android");
    assert_eq!(listed[0]["device_kind"], "smartphone");
    assert_eq!(listed[0]["network"], "2001:db8:abcd::/48");
    assert_eq!(listed[0]["city"], "Créteil");
    assert_eq!(listed[1]["handle"], handle(&laptop));
    assert_eq!(listed[1]["current"], false);
    assert_eq!(listed[1]["browser"], "Firefox 133");
    assert_eq!(listed[1]["os"], "Linux");
    assert_eq!(listed[1]["network"], "203.0.113.0/24", "never the whole address");
    assert_eq!(listed[1]["country"], "FR");
    assert_eq!(listed[1]["region"], "Île-de-France");
    assert_eq!(listed[1]["created_at"], listed[1]["last_seen_at"]);
    let raw = serde_json::to_string(&listed).unwrap();
    assert!(!raw.contains("203.0.113.77") && !raw.contains("Gecko/20100101"), "{raw}");
    // A session made without a device report lists with nothing known.
    let bare = origin.create("zoë").await;
    let listed = devices(&origin, "zo%C3%AB", "").await;
    let bare = listed.iter().find(|s| s["handle"] == handle(&bare)).unwrap();
    assert_eq!((&bare["browser"], &bare["network"]), (&json!(null), &json!(null)));
}

async fn the_device_policy_decides_what_is_stored(store: Store) {
    let origin = Origin::start_with(&store, |c| {
        c.devices.user_agent = false;
        c.devices.place = false;
        c.devices.ipv4_prefix = 0;
        c.devices.ipv6_prefix = 32;
    })
    .await;
    create_from(&origin, "max", FIREFOX_LINUX, "203.0.113.77", "Paris").await;
    origin.advance(Duration::from_secs(1));
    create_from(&origin, "max", CHROME_ANDROID, "2001:db8:abcd:12::7", "Paris").await;
    let listed = devices(&origin, "max", "").await;
    for session in &listed {
        for field in ["browser", "os", "device_kind", "country", "region", "city"] {
            assert_eq!(session[field], json!(null), "{field} is off");
        }
    }
    let networks: Vec<_> = listed.iter().map(|s| s["network"].clone()).collect();
    assert_eq!(networks, [json!("2001:db8::/32"), json!(null)]);
}

async fn last_seen_moves_at_refresh_and_first_use_of_a_new_token(store: Store) {
    let origin = Origin::start(&store).await;
    let issued = create_from(&origin, "lee", FIREFOX_LINUX, "203.0.113.1", "Lyon").await;
    let created = devices(&origin, "lee", "").await[0]["created_at"].as_i64().unwrap();
    origin.advance(Duration::from_secs(60));
    let refreshed = origin.refresh(&refresh_token(&issued)).await;
    assert_eq!(refreshed.status, StatusCode::OK);
    let seen = devices(&origin, "lee", "").await[0]["last_seen_at"].as_i64().unwrap();
    assert_eq!(seen, created + 60_000, "refresh is a sighting");
    origin.advance(Duration::from_secs(30));
    let used = format!("/v1/sessions/{}/used", handle(&issued));
    let generation = generation_of(&access_token(&refreshed.body));
    let reply = origin.edge(Method::POST, &used, Some(json!({"generation": generation}))).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let seen = devices(&origin, "lee", "").await[0]["last_seen_at"].as_i64().unwrap();
    assert_eq!(seen, created + 90_000, "the new token's first use is one");
    // A second report of the same generation writes nothing.
    origin.advance(Duration::from_secs(30));
    origin.edge(Method::POST, &used, Some(json!({"generation": generation}))).await;
    let seen = devices(&origin, "lee", "").await[0]["last_seen_at"].as_i64().unwrap();
    assert_eq!(seen, created + 90_000);
}

async fn signing_out_other_devices_keeps_the_current_one_and_blacklists_the_rest(store: Store) {
    let origin = Origin::start(&store).await;
    let keep = create_from(&origin, "ana", FIREFOX_LINUX, "203.0.113.1", "Lyon").await;
    let lost = create_from(&origin, "ana", CHROME_ANDROID, "203.0.113.2", "Lyon").await;
    let other = create_from(&origin, "ana", CHROME_ANDROID, "203.0.113.3", "Nice").await;
    let unrelated = origin.create("bob").await;
    let path = format!("/v1/users/ana/devices?except={}", handle(&keep));
    let reply = origin.edge(Method::DELETE, &path, None).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let mut revoked: Vec<_> = reply.body["handles"].as_array().unwrap().clone();
    revoked.sort_by_key(|h| h.as_str().unwrap().to_owned());
    let mut expected = vec![json!(handle(&lost)), json!(handle(&other))];
    expected.sort_by_key(|h| h.as_str().unwrap().to_owned());
    assert_eq!(revoked, expected);
    assert_eq!(origin.verify(&access_token(&keep)).await.status, StatusCode::OK);
    assert_eq!(origin.verify(&access_token(&lost)).await.error(), "UNAUTHORISED");
    assert_eq!(origin.verify(&access_token(&unrelated)).await.status, StatusCode::OK);
    assert_eq!(devices(&origin, "ana", "").await.len(), 1);
    // Each revocation is queued for the edge's blacklist, like every other.
    wait_metric_at_least(&origin, "latch_sessions_revoked_total", 2.0).await;
    let bad = origin.edge(Method::DELETE, "/v1/users/ana/devices", None).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "which one to keep must be said");
    let unnamed = origin.edge(Method::GET, "/v1/users/ana/devices", None).await;
    assert_eq!(unnamed.status, StatusCode::BAD_REQUEST, "the edge lists only for a session asking");
}

async fn a_user_cannot_sign_out_another_users_session(store: Store) {
    let origin = Origin::start(&store).await;
    let mine = create_from(&origin, "kim", FIREFOX_LINUX, "203.0.113.1", "Lyon").await;
    let theirs = create_from(&origin, "lou", FIREFOX_LINUX, "203.0.113.1", "Lyon").await;
    let path = format!("/v1/users/kim/devices/{}?current={}", handle(&theirs), handle(&mine));
    let reply = origin.edge(Method::DELETE, &path, None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["handles"], json!([]), "not kim's: nothing revoked");
    assert_eq!(origin.verify(&access_token(&theirs)).await.status, StatusCode::OK);
    let path = format!("/v1/users/kim/devices/{}?current={}", handle(&mine), handle(&mine));
    let reply = origin.edge(Method::DELETE, &path, None).await;
    assert_eq!(reply.body["handles"], json!([handle(&mine)]));
    assert_eq!(origin.verify(&access_token(&mine)).await.error(), "UNAUTHORISED");
}

async fn a_device_already_signed_out_can_neither_list_nor_sign_out_the_others(store: Store) {
    let origin = Origin::start(&store).await;
    let owner = create_from(&origin, "eve", FIREFOX_LINUX, "203.0.113.1", "Lyon").await;
    let stolen = create_from(&origin, "eve", CHROME_ANDROID, "198.51.100.1", "Nice").await;
    let path = format!("/v1/users/eve/devices?except={}", handle(&owner));
    assert_eq!(origin.edge(Method::DELETE, &path, None).await.status, StatusCode::OK);
    // The stolen phone's access token still verifies until it expires; the origin's records
    // do not, and every device operation names the session asking.
    let list = format!("/v1/users/eve/devices?current={}", handle(&stolen));
    assert_eq!(origin.edge(Method::GET, &list, None).await.error(), "UNAUTHORISED");
    let others = format!("/v1/users/eve/devices?except={}", handle(&stolen));
    assert_eq!(origin.edge(Method::DELETE, &others, None).await.error(), "UNAUTHORISED");
    let one = format!("/v1/users/eve/devices/{}?current={}", handle(&owner), handle(&stolen));
    assert_eq!(origin.edge(Method::DELETE, &one, None).await.error(), "UNAUTHORISED");
    assert_eq!(
        origin.verify(&access_token(&owner)).await.status,
        StatusCode::OK,
        "the owner stays"
    );
}

/// A script that signs in again and again must not make every "your devices" page carry
/// thousands of rows: the list holds the newest, says there are more, and always the session
/// asking, which can then sign out the rest.
async fn a_user_with_many_sessions_gets_the_newest_and_the_asking_one(store: Store) {
    let origin = Origin::start(&store).await;
    let oldest = origin.create("many").await;
    for _ in 0..MAX_DEVICES_LISTED + 1 {
        origin.advance(Duration::from_millis(10));
        origin.create("many").await;
    }
    let reply = origin.api(Method::GET, "/v1/users/many/devices", None).await;
    assert_eq!(reply.body["sessions"].as_array().unwrap().len(), MAX_DEVICES_LISTED);
    assert_eq!(reply.body["more"], true);
    let asked = format!("/v1/users/many/devices?current={}", handle(&oldest));
    let reply = origin.api(Method::GET, &asked, None).await;
    let sessions = reply.body["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), MAX_DEVICES_LISTED + 1, "the newest, and the one asking");
    let last = sessions.last().unwrap();
    assert_eq!((&last["handle"], &last["current"]), (&json!(handle(&oldest)), &json!(true)));
    assert!(sessions[..MAX_DEVICES_LISTED].iter().all(|s| s["current"] == false));
    let except = format!("/v1/users/many/devices?except={}", handle(&oldest));
    let revoked = origin.api(Method::DELETE, &except, None).await;
    assert_eq!(revoked.body["handles"].as_array().unwrap().len(), MAX_DEVICES_LISTED + 1);
    let reply = origin.api(Method::GET, &asked, None).await;
    assert_eq!(
        (reply.body["sessions"].as_array().unwrap().len(), &reply.body["more"]),
        (1, &json!(false))
    );
}

/// With exactly one session past the bound and that one asking, everything is listed: there
/// is nothing more.
async fn the_bound_plus_the_asking_session_is_the_whole_list(store: Store) {
    let origin = Origin::start(&store).await;
    let oldest = origin.create("bound").await;
    for _ in 0..MAX_DEVICES_LISTED {
        origin.advance(Duration::from_millis(10));
        origin.create("bound").await;
    }
    let asked = format!("/v1/users/bound/devices?current={}", handle(&oldest));
    let reply = origin.api(Method::GET, &asked, None).await;
    assert_eq!(reply.body["sessions"].as_array().unwrap().len(), MAX_DEVICES_LISTED + 1);
    assert_eq!(reply.body["more"], false, "all of them are listed");
    let reply = origin.api(Method::GET, "/v1/users/bound/devices", None).await;
    assert_eq!(reply.body["more"], true, "without the asking one, one is left out");
}
