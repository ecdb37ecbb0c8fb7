//! Deliveries that must not be lost: blacklist entries for revoked sessions (for the edge) and
//! theft events (for the webhook).
//!
//! Each is written to the `outbox` table in the same transaction as the change it reports, so a
//! revocation cannot commit without its delivery record. A deliverer in every origin instance
//! drains the table: it claims due rows with a lease, tries each once through
//! [`Publisher`], deletes what was accepted and reschedules the rest with exponential backoff
//! and jitter. Rows outlive crashes and restarts; with several instances each row is claimed by
//! one at a time, and a lease that runs out (an instance killed mid-delivery) frees it for the
//! others. Delivery is at least once, and every destination write is idempotent.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use serde_json::Value;
use sqlx::AnyConnection;
use tokio::sync::Notify;

use crate::clock::{millis, Clock};
use crate::db::Pool;
use crate::metrics::Metrics;
use crate::revocation::Publisher;
use crate::Shutdown;

/// Most handles in one blacklist row (and one write): well under KV's bulk limit of 10,000.
const HANDLES_PER_ROW: usize = 500;
/// Most rows one pass claims.
const ROWS_PER_PASS: i64 = 50;
/// How long a claim holds a row: longer than an attempt can take.
const LEASE: Duration = Duration::from_secs(30);
/// The first retry's delay; each failure doubles it, up to the configured cap.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// How long a theft event is retried before it is dropped (and logged).
const THEFT_EVENT_MAX_AGE: Duration = Duration::from_secs(7 * 86_400);
/// How often the deliverer looks for due rows when nothing wakes it.
const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// What a row delivers.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    /// Blacklist these sessions at the edge.
    Blacklist(Vec<String>),
    /// Post this event to the theft webhook.
    Theft(Value),
}

impl Delivery {
    /// The `kind` column of each.
    const BLACKLIST: &'static str = "blacklist";
    const THEFT: &'static str = "theft_webhook";

    fn kind(&self) -> &'static str {
        match self {
            Delivery::Blacklist(_) => Delivery::BLACKLIST,
            Delivery::Theft(_) => Delivery::THEFT,
        }
    }

    fn payload(&self) -> String {
        match self {
            Delivery::Blacklist(handles) => serde_json::to_string(handles),
            Delivery::Theft(event) => serde_json::to_string(event),
        }
        .expect("a delivery serialises")
    }

    fn parse(kind: &str, payload: &str) -> anyhow::Result<Delivery> {
        Ok(match kind {
            Delivery::BLACKLIST => Delivery::Blacklist(serde_json::from_str(payload)?),
            Delivery::THEFT => Delivery::Theft(serde_json::from_str(payload)?),
            other => anyhow::bail!("unknown outbox kind {other:?}"),
        })
    }
}

/// A claimed `outbox` row.
#[derive(sqlx::FromRow)]
struct Claimed {
    id: String,
    kind: String,
    payload: String,
    attempts: i64,
    created_at: i64,
}

/// Pending rows of one kind, for the gauges.
#[derive(sqlx::FromRow)]
struct Backlog {
    kind: String,
    pending: i64,
    oldest: i64,
}

pub struct Outbox {
    pool: Pool,
    clock: Clock,
    publisher: Publisher,
    metrics: Metrics,
    max_backoff: Duration,
    /// How long a blacklist entry is worth delivering: past it, every access token minted
    /// before the revocation has expired.
    blacklist_useful_for: Duration,
    wake: Notify,
}

impl Outbox {
    pub fn new(
        pool: Pool,
        clock: Clock,
        publisher: Publisher,
        metrics: Metrics,
        max_backoff: Duration,
        access_token_lifetime: Duration,
    ) -> Self {
        Outbox {
            pool,
            clock,
            publisher,
            metrics,
            max_backoff,
            blacklist_useful_for: Publisher::blacklist_ttl(access_token_lifetime),
            wake: Notify::new(),
        }
    }

    /// Queues the blacklisting of `handles` in the caller's transaction (nothing when no edge
    /// is configured). Call [`Outbox::wake`] once the transaction has committed.
    pub async fn blacklist(
        &self,
        conn: &mut AnyConnection,
        handles: &[String],
    ) -> sqlx::Result<()> {
        if !self.publisher.blacklists() {
            return Ok(());
        }
        for chunk in handles.chunks(HANDLES_PER_ROW) {
            self.insert(conn, &Delivery::Blacklist(chunk.to_vec())).await?;
        }
        Ok(())
    }

    /// Queues a theft event in the caller's transaction (nothing without a webhook).
    pub async fn theft(&self, conn: &mut AnyConnection, event: Value) -> sqlx::Result<()> {
        if !self.publisher.reports_thefts() {
            return Ok(());
        }
        self.insert(conn, &Delivery::Theft(event)).await
    }

    async fn insert(&self, conn: &mut AnyConnection, delivery: &Delivery) -> sqlx::Result<()> {
        let now = self.clock.now_ms();
        let id = format!("{:032x}", rand::rngs::OsRng.gen::<u128>());
        sqlx::query(
            "INSERT INTO outbox (id, kind, payload, created_at, attempts, next_attempt_at, \
             claimed_until) VALUES ($1, $2, $3, $4, 0, $4, 0)",
        )
        .bind(id)
        .bind(delivery.kind())
        .bind(delivery.payload())
        .bind(now)
        .execute(conn)
        .await?;
        Ok(())
    }

    /// Starts a delivery pass now (after a commit that queued something).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Runs the deliverer until `shutdown`: a pass when woken, and every second.
    pub fn spawn(self: Arc<Self>, mut shutdown: Shutdown) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                if let Err(err) = self.deliver_due().await {
                    tracing::error!(error = %err, "outbox pass failed; will retry");
                }
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(POLL_INTERVAL) => {}
                    _ = shutdown.wait() => return,
                }
            }
        })
    }

    /// One pass: refreshes the backlog gauges, then claims what is due, tries each once and
    /// settles each. Returns how many rows were delivered. An empty outbox costs one read: no
    /// write, so an idle instance never takes SQLite's write lock.
    pub async fn deliver_due(&self) -> anyhow::Result<usize> {
        if self.update_gauges().await? == 0 {
            return Ok(0);
        }
        // Only what this instance can deliver: in a shared database, an instance without a
        // blacklist target (or a webhook) must never take, let alone settle, another's rows.
        let kinds = self.deliverable_kinds();
        if kinds == ["", ""] {
            return Ok(0);
        }
        let now = self.clock.now_ms();
        // The outer `claimed_until` test is checked again on the row itself, so two instances
        // claiming at once on Postgres cannot both take a row.
        let claimed: Vec<Claimed> = sqlx::query_as(
            "UPDATE outbox SET claimed_until = $1, attempts = attempts + 1 \
             WHERE claimed_until <= $2 AND id IN (SELECT id FROM outbox \
             WHERE next_attempt_at <= $2 AND claimed_until <= $2 AND kind IN ($4, $5) \
             ORDER BY next_attempt_at LIMIT $3) \
             RETURNING id, kind, payload, attempts, created_at",
        )
        .bind(now + millis(LEASE))
        .bind(now)
        .bind(ROWS_PER_PASS)
        .bind(kinds[0])
        .bind(kinds[1])
        .fetch_all(&self.pool)
        .await?;
        let mut delivered = 0;
        for row in claimed {
            if self.deliver(row).await? {
                delivered += 1;
            }
        }
        Ok(delivered)
    }

    /// The row kinds this instance delivers (`""` for none), for the claim's `kind IN`.
    fn deliverable_kinds(&self) -> [&'static str; 2] {
        [
            if self.publisher.blacklists() { Delivery::BLACKLIST } else { "" },
            if self.publisher.reports_thefts() { Delivery::THEFT } else { "" },
        ]
    }

    /// Tries one claimed row; returns whether it was delivered.
    async fn deliver(&self, row: Claimed) -> anyhow::Result<bool> {
        let now = self.clock.now_ms();
        let delivery = match Delivery::parse(&row.kind, &row.payload) {
            Ok(delivery) => delivery,
            Err(err) => {
                tracing::error!(id = %row.id, error = %err, "dropping an unreadable outbox row");
                self.remove(&row.id).await?;
                return Ok(false);
            }
        };
        let (counter, useful_for, count) = match &delivery {
            Delivery::Blacklist(handles) => {
                (&self.metrics.blacklist_writes, self.blacklist_useful_for, handles.len() as u64)
            }
            Delivery::Theft(_) => (&self.metrics.theft_webhooks, THEFT_EVENT_MAX_AGE, 1),
        };
        if now - row.created_at > millis(useful_for) {
            // A blacklist entry this late guards nothing: every token it was for has expired.
            tracing::warn!(kind = %row.kind, attempts = row.attempts, "outbox row expired undelivered");
            counter.with_label_values(&["expired"]).inc_by(count);
            self.remove(&row.id).await?;
            return Ok(false);
        }
        let attempt = match &delivery {
            Delivery::Blacklist(handles) => self.publisher.blacklist(handles).await,
            Delivery::Theft(event) => self.publisher.post_theft(event).await,
        };
        match attempt {
            Ok(()) => {
                counter.with_label_values(&["ok"]).inc_by(count);
                self.remove(&row.id).await?;
                Ok(true)
            }
            Err(err) => {
                counter.with_label_values(&["failed"]).inc_by(count);
                let delay = self.backoff(row.attempts);
                tracing::warn!(kind = %row.kind, attempts = row.attempts, retry_in_ms = millis(delay),
                    error = %format!("{err:#}"), "outbox delivery failed; will retry");
                sqlx::query(
                    "UPDATE outbox SET next_attempt_at = $1, claimed_until = 0, last_error = $2 \
                     WHERE id = $3",
                )
                .bind(self.clock.now_ms() + millis(delay))
                .bind(format!("{err:#}"))
                .bind(&row.id)
                .execute(&self.pool)
                .await?;
                Ok(false)
            }
        }
    }

    /// The delay before attempt `attempts + 1`: doubling from one second up to the cap, each
    /// drawn from its upper half so that instances and rows retrying together spread out.
    fn backoff(&self, attempts: i64) -> Duration {
        let doublings = u32::try_from(attempts.saturating_sub(1)).unwrap_or(u32::MAX).min(20);
        let ceiling = (FIRST_BACKOFF * 2u32.pow(doublings)).min(self.max_backoff);
        let half = ceiling / 2;
        half + half.mul_f64(rand::rngs::OsRng.gen::<f64>())
    }

    async fn remove(&self, id: &str) -> sqlx::Result<()> {
        sqlx::query("DELETE FROM outbox WHERE id = $1").bind(id).execute(&self.pool).await?;
        Ok(())
    }

    /// Sets the gauges from the table; returns how many rows are pending.
    async fn update_gauges(&self) -> sqlx::Result<i64> {
        let backlog: Vec<Backlog> = sqlx::query_as(
            "SELECT kind, COUNT(*) AS pending, MIN(created_at) AS oldest FROM outbox GROUP BY kind",
        )
        .fetch_all(&self.pool)
        .await?;
        let now = self.clock.now_ms();
        for kind in [Delivery::BLACKLIST, Delivery::THEFT] {
            let (pending, age_ms) = backlog
                .iter()
                .find(|row| row.kind == kind)
                .map_or((0, 0), |row| (row.pending, (now - row.oldest).max(0)));
            self.metrics.outbox_pending.with_label_values(&[kind]).set(pending);
            self.metrics
                .outbox_oldest_seconds
                .with_label_values(&[kind])
                .set(age_ms as f64 / 1000.0);
        }
        Ok(backlog.iter().map(|row| row.pending).sum())
    }
}
