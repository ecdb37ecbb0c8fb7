//! Prometheus metrics, in a registry per service instance (so tests can run several).

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry, TextEncoder,
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
    /// Blacklist writes for the edge, by outcome (`ok`, `failed`).
    pub blacklist_writes: IntCounterVec,
    pub theft_webhooks: IntCounterVec,
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
                "Revocations written to the edge's blacklist, by outcome",
                &["outcome"],
            ),
            theft_webhooks: counter_vec(
                "theft_webhooks_total",
                "Theft webhook deliveries, by outcome",
                &["outcome"],
            ),
            request_seconds,
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
