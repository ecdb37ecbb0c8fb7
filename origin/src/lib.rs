//! # latch-origin
//!
//! The session service behind the edge: every operation that needs the database. See
//! `docs/architecture.md` for how it fits with the edge, and `openapi.json` for the API.

pub mod auth;
pub mod clock;
pub mod config;
pub mod db;
pub mod devices;
pub mod error;
pub mod keys;
pub mod limits;
pub mod metrics;
pub mod outbox;
pub mod revocation;
pub mod routes;
pub mod sessions;

use std::sync::Arc;
use std::time::Duration;

use hkdf::Hkdf;
use latch_shared::refresh::RotationKey;
use latch_shared::secret::Secret;
use sha2::Sha256;
use shutdown::ShutdownSignal;

use crate::clock::Clock;
use crate::config::Config;
use crate::keys::{KeyManager, KeySchedule, Sealer};
use crate::limits::Limits;
use crate::metrics::Metrics;
use crate::outbox::Outbox;
use crate::revocation::Publisher;
use crate::sessions::{SessionService, TokenPolicy};

/// The bearer credentials the API accepts.
#[derive(Debug)]
pub struct Credentials {
    pub api_key: Secret,
    pub edge_secret: Secret,
}

#[derive(Clone)]
pub struct AppState {
    pub sessions: Arc<SessionService>,
    pub credentials: Arc<Credentials>,
    pub session_expired_status: u16,
    pub jwks_cache_secs: u64,
    /// The longest any request may take (`LATCH_REQUEST_TIMEOUT_SECS`).
    pub request_timeout: Duration,
    /// Rate limits on refresh and session creation.
    pub limits: Arc<Limits>,
}

/// Derives an independent 32-byte key for one purpose from the master key.
fn derive_key(master: &[u8; 32], purpose: &str) -> [u8; 32] {
    let mut key = [0u8; 32];
    Hkdf::<Sha256>::new(Some(b"latch-origin"), master)
        .expand(purpose.as_bytes(), &mut key)
        .expect("32 bytes is a valid HKDF output length");
    key
}

/// Connects to the database, migrates it, loads or creates the signing keys.
pub async fn build(config: &Config, clock: Clock) -> anyhow::Result<AppState> {
    let pool = db::connect(config.database_url.expose(), config.max_connections).await?;
    let keys = KeyManager::start(
        pool.clone(),
        Sealer::new(derive_key(config.master_key.expose(), "signing-key-seal/v1")),
        KeySchedule {
            rotation: config.key_rotation,
            publish_lead: config.jwks_cache,
            access_token_lifetime: config.access_token_lifetime,
        },
        clock.clone(),
        config.issuer.clone(),
        config.audience.clone(),
    )
    .await?;
    let metrics = Metrics::new();
    let publisher = Publisher::new(
        config.blacklist.clone(),
        config.edge_secret.clone(),
        config.theft_webhook_url.clone(),
        config.access_token_lifetime,
    );
    let outbox = Outbox::new(
        pool.clone(),
        clock.clone(),
        publisher,
        metrics.clone(),
        config.outbox_max_backoff,
        config.access_token_lifetime,
    );
    let limits =
        Limits::new(clock.clone(), config.rate_limit_per_session, config.rate_limit_per_address);
    let sessions = SessionService {
        pool,
        keys: Arc::new(keys),
        rotation: RotationKey::new(derive_key(config.master_key.expose(), "refresh-rotation/v1")),
        clock,
        tokens: TokenPolicy {
            access_token_lifetime: config.access_token_lifetime,
            refresh_token_lifetime: config.refresh_token_lifetime,
            anti_csrf: config.anti_csrf.clone(),
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
        },
        cookies: config.cookies.clone(),
        devices: config.devices,
        outbox: Arc::new(outbox),
        metrics,
    };
    Ok(AppState {
        sessions: Arc::new(sessions),
        credentials: Arc::new(Credentials {
            api_key: config.api_key.clone(),
            edge_secret: config.edge_secret.clone(),
        }),
        session_expired_status: config.session_expired_status,
        jwks_cache_secs: config.jwks_cache.as_secs(),
        request_timeout: config.request_timeout,
        limits: Arc::new(limits),
    })
}

/// Starts key maintenance, the purge of expired sessions and the outbox's deliverer; all stop
/// with `shutdown`.
pub fn spawn_background_jobs(
    state: &AppState,
    purge_interval: Duration,
    shutdown: ShutdownSignal,
) -> Vec<tokio::task::JoinHandle<()>> {
    let keys = state.sessions.keys.clone();
    let key_interval = keys.maintenance_interval();
    let key_job = periodic(key_interval, shutdown.clone(), move || {
        let keys = keys.clone();
        async move {
            if let Err(err) = keys.maintain().await {
                tracing::error!(error = %err, "signing key maintenance failed; will retry");
            }
        }
    });
    let sessions = state.sessions.clone();
    let deliverer = state.sessions.spawn_deliverer(shutdown.clone());
    let purge_job = periodic(purge_interval, shutdown, move || {
        let sessions = sessions.clone();
        async move {
            match sessions.purge_expired().await {
                Ok(0) => {}
                Ok(purged) => tracing::info!(purged, "purged expired sessions"),
                Err(err) => tracing::error!(error = %err, "purging expired sessions failed"),
            }
        }
    });
    vec![key_job, purge_job, deliverer]
}

fn periodic<F, Fut>(
    every: Duration,
    mut shutdown: ShutdownSignal,
    job: F,
) -> tokio::task::JoinHandle<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => job().await,
                _ = shutdown.wait() => return,
            }
        }
    })
}

/// A cloneable "stop now" signal for background jobs and the server.
mod shutdown {
    use tokio::sync::watch;

    #[derive(Clone)]
    pub struct ShutdownSignal(watch::Receiver<bool>);

    pub struct ShutdownTrigger(watch::Sender<bool>);

    pub fn shutdown_pair() -> (ShutdownTrigger, ShutdownSignal) {
        let (sender, receiver) = watch::channel(false);
        (ShutdownTrigger(sender), ShutdownSignal(receiver))
    }

    impl ShutdownTrigger {
        pub fn trigger(&self) {
            let _ = self.0.send(true);
        }
    }

    impl ShutdownSignal {
        pub async fn wait(&mut self) {
            let _ = self.0.wait_for(|stopped| *stopped).await;
        }
    }
}

pub use shutdown::{shutdown_pair, ShutdownSignal as Shutdown, ShutdownTrigger};
