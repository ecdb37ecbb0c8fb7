//! The origin process killed with SIGKILL in the middle of a 16-way refresh load, then started
//! again on the same database: every session is still there, each still one lineage, and no
//! client that retries what it last sent is taken for a thief. The real binary, on SQLite and on
//! Postgres.

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

on_both_stores!(sigkill_during_sixteen_way_refresh_load_loses_no_session_and_forks_none);

const CLIENTS: usize = 16;

struct Process {
    child: Child,
    url: String,
}

fn start(store: &Store, port: u16) -> Process {
    let child = Command::new(env!("CARGO_BIN_EXE_latch-origin"))
        .env_clear()
        .env("DATABASE_URL", &store.url)
        .env("LATCH_LISTEN", format!("127.0.0.1:{port}"))
        .env("LATCH_MASTER_KEY", "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=")
        .env("LATCH_API_KEY", API_KEY)
        .env("LATCH_EDGE_SECRET", EDGE_SECRET)
        .env("LATCH_LOG", "error")
        .env("LATCH_NO_EDGE", "true")
        // A load test: each client refreshes far faster than any browser would.
        .env("LATCH_RATE_LIMIT_SESSION_PER_MINUTE", "0")
        .stdout(Stdio::null())
        .spawn()
        .expect("the origin binary starts");
    Process { child, url: format!("http://127.0.0.1:{port}") }
}

async fn wait_ready(http: &reqwest::Client, url: &str) {
    for _ in 0..200 {
        if let Ok(res) = http.get(format!("{url}/readyz")).send().await {
            if res.status().is_success() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{url} never became ready");
}

/// What a client knows of its session: the refresh token it holds (the last one it was given,
/// or the one it sent when the answer never came).
#[derive(Clone)]
struct Client {
    user: String,
    token: String,
    refreshes: u32,
}

/// Sends `request` with the API key; its JSON answer.
async fn as_app(request: reqwest::RequestBuilder) -> Value {
    request.bearer_auth(API_KEY).send().await.unwrap().json().await.unwrap()
}

async fn refresh(http: &reqwest::Client, url: &str, token: &str) -> Result<(u16, Value), String> {
    let res = http
        .post(format!("{url}/v1/sessions/refresh"))
        .bearer_auth(EDGE_SECRET)
        .json(&json!({"refresh_token": token}))
        .send()
        .await
        .map_err(|err| err.to_string())?;
    let status = res.status().as_u16();
    let body = res.json().await.map_err(|err| err.to_string())?;
    Ok((status, body))
}

async fn sigkill_during_sixteen_way_refresh_load_loses_no_session_and_forks_none(store: Store) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let mut process = start(&store, port);
    wait_ready(&http, &process.url).await;

    let mut clients = Vec::new();
    for i in 0..CLIENTS {
        let user = format!("crash-{i}");
        let issued = as_app(
            http.post(format!("{}/v1/sessions", process.url)).json(&json!({"user_id": user})),
        )
        .await;
        clients.push(Arc::new(Mutex::new(Client {
            user,
            token: refresh_token(&issued),
            refreshes: 0,
        })));
    }

    // Sixteen clients refresh as fast as they can; each keeps what it was last given.
    let load: Vec<_> = clients
        .iter()
        .map(|client| {
            let (client, http, url) = (client.clone(), http.clone(), process.url.clone());
            tokio::spawn(async move {
                loop {
                    let token = client.lock().unwrap().token.clone();
                    match refresh(&http, &url, &token).await {
                        Ok((200, body)) => {
                            let mut client = client.lock().unwrap();
                            client.token = refresh_token(&body);
                            client.refreshes += 1;
                        }
                        Ok((status, body)) => panic!("refresh answered {status}: {body}"),
                        // The process is gone: the answer to `token` never came.
                        Err(_) => return,
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    process.child.kill().expect("SIGKILL");
    process.child.wait().unwrap();
    for task in load {
        task.await.unwrap();
    }
    let before: u32 = clients.iter().map(|c| c.lock().unwrap().refreshes).sum();
    assert!(before >= CLIENTS as u32, "the load ran: {before} refreshes");

    let restarted_at = Instant::now();
    let mut process = start(&store, port);
    wait_ready(&http, &process.url).await;
    let recovery = restarted_at.elapsed();
    for client in &clients {
        let Client { user, token, .. } = client.lock().unwrap().clone();
        // Whether or not its last rotation committed, retrying what it sent works.
        let (status, retried) = refresh(&http, &process.url, &token).await.unwrap();
        assert_eq!(status, 200, "{user}: {retried}");
        // And the lineage goes on from there: one successor, not two.
        let (status, onward) =
            refresh(&http, &process.url, &refresh_token(&retried)).await.unwrap();
        assert_eq!(status, 200, "{user}: {onward}");
        let sessions = as_app(http.get(format!("{}/v1/users/{user}/sessions", process.url))).await;
        assert_eq!(sessions["handles"].as_array().unwrap().len(), 1, "{user}: {sessions}");
    }
    let metrics = http
        .get(format!("{}/metrics", process.url))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("latch_token_thefts_total 0"), "no false theft");
    // Retries whose rotation had committed before the kill get their unused successor again.
    let repeats = metrics
        .lines()
        .find_map(|line| line.strip_prefix("latch_refresh_repeats_total "))
        .unwrap_or("0");
    eprintln!(
        "figure: SIGKILL after {before} refreshes by {CLIENTS} clients; ready again in \
         {recovery:?}; {CLIENTS}/{CLIENTS} sessions kept, {repeats} retries answered with the \
         successor committed before the kill, no theft"
    );
    process.child.kill().unwrap();
    process.child.wait().unwrap();
}
