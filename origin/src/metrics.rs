//! Prometheus metrics, in a registry per service instance (so tests can run several).

use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub sessions_created: IntCounter,
    pub sessions_refreshed: IntCounter,
    pub sessions_revoked: IntCounter,
    pub token_thefts: IntCounter,
    pub refresh_repeats: IntCounter,
    pub generations_proven: IntCounter,
    pub sessions_purged: IntCounter,
    /// Sessions in blacklist write attempts for the edge, by outcome: `ok`, `failed` (will be
    /// retried), `expired` (given up once every token it guarded had expired).
    pub blacklist_writes: IntCounterVec,
    /// Theft webhook delivery attempts, by outcome, as for blacklist writes.
    pub theft_webhooks: IntCounterVec,
    /// Undelivered outbox rows, by kind (`blacklist`, `theft_webhook`).
    pub outbox_pending: IntGaugeVec,
    /// Age of the oldest undelivered outbox row, by kind.
    pub outbox_oldest_seconds: GaugeVec,
    /// Request latency by route and status class.
    pub request_seconds: HistogramVec,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new_custom(Some("latch".into()), None).expect("valid prefix");
        let counter = |name: &str, help: &str| {
            let counter = IntCounter::new(name, help).expect("valid metric");
            registry.register(Box::new(counter.clone())).expect("unique metric");
            counter
        };
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            let counter = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry.register(Box::new(counter.clone())).expect("unique metric");
            counter
        };
        let request_seconds = HistogramVec::new(
            HistogramOpts::new("request_duration_seconds", "Origin API latency")
                .buckets(vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0]),
            &["route", "status"],
        )
        .expect("valid metric");
        registry.register(Box::new(request_seconds.clone())).expect("unique metric");
        let outbox_pending = IntGaugeVec::new(
            Opts::new("outbox_pending", "Undelivered outbox rows, by kind"),
            &["kind"],
        )
        .expect("valid metric");
        registry.register(Box::new(outbox_pending.clone())).expect("unique metric");
        let outbox_oldest_seconds = GaugeVec::new(
            Opts::new(
                "outbox_oldest_pending_seconds",
                "Age of the oldest undelivered outbox row, by kind",
            ),
            &["kind"],
        )
        .expect("valid metric");
        registry.register(Box::new(outbox_oldest_seconds.clone())).expect("unique metric");
        Metrics {
            sessions_created: counter("sessions_created_total", "Sessions created"),
            sessions_refreshed: counter("sessions_refreshed_total", "Successful refreshes"),
            sessions_revoked: counter("sessions_revoked_total", "Sessions revoked"),
            token_thefts: counter("token_thefts_total", "Refresh token reuse detected as theft"),
            refresh_repeats: counter(
                "refresh_repeats_total",
                "Previous refresh token answered with its unused successor again",
            ),
            generations_proven: counter(
                "refresh_generations_proven_total",
                "Refresh generations first seen in use (their previous token is now spent)",
            ),
            sessions_purged: counter("sessions_purged_total", "Expired sessions purged"),
            blacklist_writes: counter_vec(
                "blacklist_writes_total",
                "Sessions in blacklist write attempts for the edge, by outcome",
                &["outcome"],
            ),
            theft_webhooks: counter_vec(
                "theft_webhooks_total",
                "Theft webhook delivery attempts, by outcome",
                &["outcome"],
            ),
            request_seconds,
            outbox_pending,
            outbox_oldest_seconds,
            registry,
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buffer)
            .expect("text encoding cannot fail");
        String::from_utf8(buffer).expect("the exposition format is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
