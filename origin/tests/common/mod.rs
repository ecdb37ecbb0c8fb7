//! Test harness: an origin on a real database (a fresh SQLite file, or a fresh database on the
//! test Postgres server), driven in-process through its router, with a clock moved by hand.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use chrono::Utc;
use http_body_util::BodyExt;
use latch_origin::clock::Clock;
use latch_origin::config::Config;
use latch_origin::{build, routes, shutdown_pair, AppState, ShutdownTrigger};
use serde_json::{json, Value};
use sqlx::{Connection, Executor};
use tower::ServiceExt;

pub const API_KEY: &str = "test-api-key-0123456789";
pub const EDGE_SECRET: &str = "test-edge-secret-0123456789";

#[derive(Debug, Clone)]
pub struct Store {
    pub url: String,
}

fn unique(prefix: &str) -> String {
    format!("{prefix}_{}_{}", std::process::id(), rand::random::<u64>())
}

impl Store {
    pub async fn sqlite() -> Store {
        let path = std::env::temp_dir().join(format!("{}.db", unique("latch_test")));
        Store { url: format!("sqlite://{}?mode=rwc", path.display()) }
    }

    /// A fresh database on the test Postgres server, or `None` when there is none and the run
    /// does not require one (`scripts/test.sh` always provides and requires it).
    pub async fn postgres() -> Option<Store> {
        let Ok(admin_url) = std::env::var("LATCH_TEST_POSTGRES_URL") else {
            assert!(
                std::env::var("LATCH_REQUIRE_POSTGRES").is_err(),
                "LATCH_REQUIRE_POSTGRES is set but LATCH_TEST_POSTGRES_URL is not"
            );
            eprintln!("skipped: no LATCH_TEST_POSTGRES_URL (scripts/test.sh provides one)");
            return None;
        };
        sqlx::any::install_default_drivers();
        let name = unique("latch_test");
        let mut admin = sqlx::AnyConnection::connect(&admin_url).await.expect("test Postgres");
        admin.execute(format!("CREATE DATABASE {name}").as_str()).await.unwrap();
        let (base, _) = admin_url.rsplit_once('/').expect("URL has a database");
        Some(Store { url: format!("{base}/{name}") })
    }

    pub fn is_postgres(&self) -> bool {
        self.url.starts_with("postgres")
    }
}

pub struct Origin {
    pub router: Router,
    pub state: AppState,
    pub clock: Clock,
    pub config: Config,
    /// Stops this instance's outbox deliverer (see [`Origin::stop`]).
    deliverer: Option<(ShutdownTrigger, tokio::task::JoinHandle<()>)>,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or("")
    }
}

impl Origin {
    pub async fn start(store: &Store) -> Origin {
        Self::start_with(store, |_| {}).await
    }

    pub async fn start_with(store: &Store, tweak: impl FnOnce(&mut Config)) -> Origin {
        Self::start_at(store, Clock::manual(Utc::now()), tweak).await
    }

    pub async fn start_at(store: &Store, clock: Clock, tweak: impl FnOnce(&mut Config)) -> Origin {
        let mut config = Config::for_tests(&store.url);
        tweak(&mut config);
        let state = build(&config, clock.clone()).await.expect("origin starts");
        let (trigger, shutdown) = shutdown_pair();
        let deliverer = state.sessions.spawn_deliverer(shutdown);
        Origin {
            router: routes::router(state.clone()),
            state,
            clock,
            config,
            deliverer: Some((trigger, deliverer)),
        }
    }

    /// Stops the instance's background delivery, as a stopped process would.
    pub async fn stop(&mut self) {
        if let Some((trigger, job)) = self.deliverer.take() {
            trigger.trigger();
            job.await.unwrap();
        }
    }

    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    pub async fn send(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Reply { status, headers, body }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        auth: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(key) = auth {
            request = request.header("authorization", format!("Bearer {key}"));
        }
        let request = match body {
            Some(body) => request
                .header("content-type", "application/json")
                .body(Body::from(body.to_string())),
            None => request.body(Body::empty()),
        };
        self.send(request.unwrap()).await
    }

    pub async fn api(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.call(method, path, Some(API_KEY), body).await
    }

    /// A call as the edge makes it, with the edge secret.
    pub async fn edge(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.call(method, path, Some(EDGE_SECRET), body).await
    }

    pub async fn create(&self, user_id: &str) -> Value {
        let reply = self
            .api(
                Method::POST,
                "/v1/sessions",
                Some(json!({"user_id": user_id, "jwt_payload": {"role": "reader"}, "session_info": {"n": 1}})),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        reply.body
    }

    pub async fn refresh(&self, refresh_token: &str) -> Reply {
        self.api(
            Method::POST,
            "/v1/sessions/refresh",
            Some(json!({"refresh_token": refresh_token})),
        )
        .await
    }

    pub async fn verify(&self, access_token: &str) -> Reply {
        self.api(Method::POST, "/v1/sessions/verify", Some(json!({"access_token": access_token})))
            .await
    }
}

pub fn refresh_token(issued: &Value) -> String {
    issued["tokens"]["refresh_token"]["value"].as_str().unwrap().to_owned()
}

pub fn access_token(issued: &Value) -> String {
    issued["tokens"]["access_token"]["value"].as_str().unwrap().to_owned()
}

pub fn handle(issued: &Value) -> String {
    issued["session"]["handle"].as_str().unwrap().to_owned()
}

/// The key id in an access token's header.
pub fn kid_of(access_token: &str) -> String {
    use base64::Engine;
    let header = access_token.split('.').next().unwrap();
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).unwrap();
    serde_json::from_slice::<Value>(&header).unwrap()["kid"].as_str().unwrap().to_owned()
}

/// The refresh generation (`rgen`) an access token was minted by.
pub fn generation_of(access_token: &str) -> u64 {
    use base64::Engine;
    let claims = access_token.split('.').nth(1).unwrap();
    let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(claims).unwrap();
    serde_json::from_slice::<Value>(&claims).unwrap()["rgen"].as_u64().unwrap()
}

/// The kids the origin's JWKS publishes, in order.
pub async fn published_kids(origin: &Origin) -> Vec<String> {
    let reply = origin.call(Method::GET, "/.well-known/jwks.json", None, None).await;
    assert!(reply.headers["cache-control"].to_str().unwrap().starts_with("public, max-age="));
    reply.body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

pub fn metric(origin: &Origin, name: &str) -> f64 {
    let text = origin.state.sessions.metrics_text();
    text.lines()
        .filter(|line| line.starts_with(name) && !line.starts_with('#'))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Runs each scenario once on SQLite and once on Postgres.
#[macro_export]
macro_rules! on_both_stores {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $scenario() {
                    super::$scenario(super::common::Store::sqlite().await).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $scenario() {
                    if let Some(store) = super::common::Store::postgres().await {
                        super::$scenario(store).await
                    }
                }
            )*
        }
    };
}

/// A stand-in HTTP receiver that records what it is sent and answers `status`.
pub async fn receiver(router: Router) -> String {
    receiver_at("127.0.0.1:0", router).await
}

/// A receiver on `address` (one that was down until now).
pub async fn receiver_at(address: &str, router: Router) -> String {
    let listener = tokio::net::TcpListener::bind(address).await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{address}")
}

/// An address nothing listens on (yet).
pub fn unused_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

/// Waits until the counter or gauge `name` reaches at least `value`.
pub async fn wait_metric_at_least(origin: &Origin, name: &str, value: f64) {
    for _ in 0..1000 {
        if metric(origin, name) >= value {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{name} stayed at {}", metric(origin, name));
}

pub type Log = Arc<Mutex<Vec<(String, Value)>>>;

pub fn recording(
    log: &Log,
    status: StatusCode,
) -> impl Fn(axum::http::HeaderMap, String) -> std::future::Ready<StatusCode> + Clone {
    let log = log.clone();
    move |headers: axum::http::HeaderMap, body: String| {
        let auth = headers
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        log.lock().unwrap().push((auth, serde_json::from_str(&body).unwrap_or(Value::Null)));
        std::future::ready(status)
    }
}

pub async fn wait_for(log: &Log, count: usize) {
    for _ in 0..500 {
        if log.lock().unwrap().len() >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("expected {count} deliveries, got {:?}", log.lock().unwrap());
}

pub async fn wait_metric(origin: &Origin, name: &str, value: f64) {
    for _ in 0..500 {
        if metric(origin, name) == value {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(metric(origin, name), value, "{name}");
}
