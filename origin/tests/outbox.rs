//! Nothing lost: revocations and theft events reach the edge and the webhook through the outbox,
//! whatever is down when they happen, across restarts, with one or two origin instances.
//!
//! These run on the real clock (the deliverer's backoff is what is measured), with the
//! backoff capped at 2 s; the figures they print are in docs/reliability.md.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use axum::routing::post;
use axum::Router;
use common::*;
use latch_origin::clock::Clock;
use latch_origin::config::{BlacklistTarget, Config};
use serde_json::Value;

on_both_stores!(
    a_revocation_while_the_edge_is_down_reaches_it_after_an_origin_restart,
    revocations_on_two_instances_while_the_edge_is_down_all_reach_it_once_it_is_back,
    a_refused_blacklist_write_is_retried_with_backoff_until_accepted,
    a_blacklist_entry_is_dropped_once_every_token_it_guarded_has_expired,
    a_theft_event_waits_in_the_outbox_until_the_webhook_is_back,
    an_instance_without_an_edge_never_settles_another_instances_revocations,
);

const MAX_BACKOFF: Duration = Duration::from_secs(2);

fn behind_edge(address: &str) -> impl Fn(&mut Config) + Clone + '_ {
    move |c: &mut Config| {
        c.blacklist = BlacklistTarget::Edge { url: format!("http://{address}") };
        c.outbox_max_backoff = MAX_BACKOFF;
        c.access_token_lifetime = Duration::from_secs(600);
    }
}

fn blacklisted(log: &Log) -> Vec<String> {
    log.lock()
        .unwrap()
        .iter()
        .flat_map(|(_, body)| body["entries"].as_array().cloned().unwrap_or_default())
        .map(|entry| entry["session_handle"].as_str().unwrap().to_owned())
        .collect()
}

fn edge_router(log: &Log) -> Router {
    Router::new().route("/__latch/blacklist", post(recording(log, StatusCode::NO_CONTENT)))
}

const PENDING: &str = "latch_outbox_pending{kind=\"blacklist\"}";

async fn a_revocation_while_the_edge_is_down_reaches_it_after_an_origin_restart(store: Store) {
    let edge = unused_address();
    let mut first = Origin::start_at(&store, Clock::System, behind_edge(&edge)).await;
    let issued = first.create("Zoë").await;
    let reply = first.api(Method::DELETE, &format!("/v1/sessions/{}", handle(&issued)), None).await;
    assert_eq!(reply.body["revoked"], true, "the revocation answers at once");
    wait_metric_at_least(&first, "latch_blacklist_writes_total{outcome=\"failed\"}", 1.0).await;
    first.stop().await;
    drop(first);

    let second = Origin::start_at(&store, Clock::System, behind_edge(&edge)).await;
    wait_metric_at_least(&second, PENDING, 1.0).await;
    let log: Log = Default::default();
    let back = Instant::now();
    receiver_at(&edge, edge_router(&log)).await;
    wait_for(&log, 1).await;
    let delay = back.elapsed();
    eprintln!("figure: blacklisted {delay:?} after the edge came back (restarted origin, cap {MAX_BACKOFF:?})");
    assert!(delay < MAX_BACKOFF + Duration::from_secs(2), "{delay:?}");
    assert_eq!(blacklisted(&log), vec![handle(&issued)]);
    wait_metric(&second, PENDING, 0.0).await;
}

async fn revocations_on_two_instances_while_the_edge_is_down_all_reach_it_once_it_is_back(
    store: Store,
) {
    let edge = unused_address();
    let one = Origin::start_at(&store, Clock::System, behind_edge(&edge)).await;
    let mut two = Origin::start_at(&store, Clock::System, behind_edge(&edge)).await;
    let mut revoked = HashSet::new();
    for (i, origin) in [&one, &two].into_iter().cycle().take(20).enumerate() {
        let issued = origin.create(&format!("user-{i}")).await;
        origin.api(Method::DELETE, &format!("/v1/sessions/{}", handle(&issued)), None).await;
        revoked.insert(handle(&issued));
    }
    // One instance goes away for good; the other delivers what both queued.
    two.stop().await;
    drop(two);
    wait_metric_at_least(&one, PENDING, 20.0).await;
    let log: Log = Default::default();
    let back = Instant::now();
    receiver_at(&edge, edge_router(&log)).await;
    wait_metric(&one, PENDING, 0.0).await;
    let delay = back.elapsed();
    eprintln!(
        "figure: 20 revocations from 2 instances blacklisted {delay:?} after the edge came back"
    );
    let delivered: HashSet<String> = blacklisted(&log).into_iter().collect();
    assert_eq!(delivered, revoked, "every revocation arrived");
    assert!(delay < MAX_BACKOFF + Duration::from_secs(3), "{delay:?}");
}

async fn a_refused_blacklist_write_is_retried_with_backoff_until_accepted(store: Store) {
    let log: Log = Default::default();
    let refusals = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(3));
    let edge = receiver(Router::new().route(
        "/__latch/blacklist",
        post({
            let log = log.clone();
            let refusals = refusals.clone();
            move |body: String| {
                log.lock().unwrap().push((String::new(), serde_json::from_str(&body).unwrap()));
                let refuse = refusals
                    .fetch_update(
                        std::sync::atomic::Ordering::SeqCst,
                        std::sync::atomic::Ordering::SeqCst,
                        |left| left.checked_sub(1),
                    )
                    .is_ok();
                async move {
                    if refuse {
                        StatusCode::SERVICE_UNAVAILABLE
                    } else {
                        StatusCode::NO_CONTENT
                    }
                }
            }
        }),
    ))
    .await;
    let address = edge.trim_start_matches("http://").to_owned();
    let origin = Origin::start_at(&store, Clock::System, behind_edge(&address)).await;
    let issued = origin.create("frank").await;
    origin.api(Method::DELETE, &format!("/v1/sessions/{}", handle(&issued)), None).await;
    wait_metric(&origin, "latch_blacklist_writes_total{outcome=\"ok\"}", 1.0).await;
    assert_eq!(log.lock().unwrap().len(), 4, "three refusals, then accepted");
    assert_eq!(metric(&origin, "latch_blacklist_writes_total{outcome=\"failed\"}"), 3.0);
    // The revocation itself never waited for, nor depended on, the edge.
    assert_eq!(origin.verify(&access_token(&issued)).await.error(), "UNAUTHORISED");
    assert_eq!(origin.refresh(&refresh_token(&issued)).await.error(), "UNAUTHORISED");
    wait_metric(&origin, PENDING, 0.0).await;
}

async fn a_blacklist_entry_is_dropped_once_every_token_it_guarded_has_expired(store: Store) {
    let edge = unused_address();
    let origin = Origin::start_with(&store, |c| {
        behind_edge(&edge)(c);
        c.access_token_lifetime = Duration::from_secs(60);
    })
    .await;
    let issued = origin.create("gina").await;
    origin.api(Method::DELETE, &format!("/v1/sessions/{}", handle(&issued)), None).await;
    wait_metric_at_least(&origin, "latch_blacklist_writes_total{outcome=\"failed\"}", 1.0).await;
    // 70 s later (the 60 s token lifetime and leeway) the entry guards nothing any more.
    origin.advance(Duration::from_secs(71));
    origin.state.sessions.wake_deliverer();
    wait_metric(&origin, "latch_blacklist_writes_total{outcome=\"expired\"}", 1.0).await;
    wait_metric(&origin, PENDING, 0.0).await;
}

async fn a_theft_event_waits_in_the_outbox_until_the_webhook_is_back(store: Store) {
    let hook = unused_address();
    let origin = Origin::start_at(&store, Clock::System, |c| {
        c.theft_webhook_url = Some(format!("http://{hook}/hook"));
        c.outbox_max_backoff = MAX_BACKOFF;
    })
    .await;
    let issued = origin.create("hank").await;
    let r1 = origin.refresh(&refresh_token(&issued)).await;
    origin.refresh(&refresh_token(&r1.body)).await;
    assert_eq!(origin.refresh(&refresh_token(&issued)).await.error(), "TOKEN_THEFT_DETECTED");
    wait_metric_at_least(&origin, "latch_theft_webhooks_total{outcome=\"failed\"}", 1.0).await;
    let log: Log = Default::default();
    receiver_at(&hook, Router::new().route("/hook", post(recording(&log, StatusCode::OK)))).await;
    wait_for(&log, 1).await;
    let event: Value = log.lock().unwrap()[0].1.clone();
    assert_eq!(event["event"], "token_theft_detected");
    assert_eq!(event["session_handle"], handle(&issued));
    wait_metric(&origin, "latch_outbox_pending{kind=\"theft_webhook\"}", 0.0).await;
}

/// In a shared database, an instance told there is no edge (`no_edge`) used to claim the other
/// instances' blacklist rows and settle them as delivered: their revoked sessions then kept
/// working at the edge. It now leaves them for an instance that can deliver them.
async fn an_instance_without_an_edge_never_settles_another_instances_revocations(store: Store) {
    let edge = unused_address();
    let with_edge = Origin::start_at(&store, Clock::System, behind_edge(&edge)).await;
    let without_edge = Origin::start_at(&store, Clock::System, |c| {
        assert!(matches!(c.blacklist, BlacklistTarget::NoEdge));
        c.outbox_max_backoff = MAX_BACKOFF;
    })
    .await;
    let issued = with_edge.create("Zoë").await;
    let reply =
        with_edge.api(Method::DELETE, &format!("/v1/sessions/{}", handle(&issued)), None).await;
    assert_eq!(reply.body["revoked"], true);
    wait_metric_at_least(&with_edge, "latch_blacklist_writes_total{outcome=\"failed\"}", 1.0).await;
    // Several passes of the instance without an edge (one a second, and woken).
    for _ in 0..3 {
        without_edge.state.sessions.wake_deliverer();
        tokio::time::sleep(Duration::from_millis(800)).await;
    }
    assert_eq!(metric(&without_edge, PENDING), 1.0, "it sees the row, and leaves it");
    assert_eq!(metric(&without_edge, "latch_blacklist_writes_total{outcome=\"ok\"}"), 0.0);
    let log: Log = Default::default();
    receiver_at(&edge, edge_router(&log)).await;
    wait_for(&log, 1).await;
    assert_eq!(blacklisted(&log), vec![handle(&issued)], "delivered by the instance with the edge");
}
