//! Telling the edge about revocations, and the world about thefts.
//!
//! Every revoked session is written to the edge's blacklist (Workers KV) with a TTL that outlives
//! any access token it could have: through Cloudflare's KV REST API when configured, otherwise
//! through the edge's own authenticated endpoint. Writes run in the background with retries; a
//! write that still fails is logged and counted, and never undoes the database revocation.

use std::time::Duration;

use latch_shared::api::{blacklist_key, paths, BlacklistEntry, BlacklistRequest};
use latch_shared::secret::Secret;
use latch_shared::TheftDetails;
use serde_json::json;

use crate::config::BlacklistTarget;
use crate::metrics::Metrics;

const ATTEMPTS: u32 = 5;
const FIRST_BACKOFF: Duration = Duration::from_millis(200);

#[derive(Clone)]
pub struct Revocations {
    target: BlacklistTarget,
    edge_secret: Secret,
    theft_webhook: Option<String>,
    /// TTL of blacklist entries: the longest an access token lives (plus leeway), at least 60 s,
    /// KV's minimum.
    ttl: Duration,
    client: reqwest::Client,
    metrics: Metrics,
}

impl Revocations {
    pub fn new(
        target: BlacklistTarget,
        edge_secret: Secret,
        theft_webhook: Option<String>,
        access_token_lifetime: Duration,
        metrics: Metrics,
    ) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("the HTTP client builds");
        let ttl = (access_token_lifetime + Duration::from_secs(10)).max(Duration::from_secs(60));
        Revocations { target, edge_secret, theft_webhook, ttl, client, metrics }
    }

    /// Blacklists `handles` at the edge in the background. The returned handle lets tests wait.
    pub fn publish(&self, handles: Vec<String>) -> Option<tokio::task::JoinHandle<()>> {
        if handles.is_empty() || matches!(self.target, BlacklistTarget::Disabled) {
            return None;
        }
        let this = self.clone();
        Some(tokio::spawn(async move {
            let count = handles.len() as u64;
            match this.write_with_retries(&handles).await {
                Ok(()) => this.metrics.blacklist_writes.with_label_values(&["ok"]).inc_by(count),
                Err(err) => {
                    this.metrics.blacklist_writes.with_label_values(&["failed"]).inc_by(count);
                    tracing::error!(sessions = count, error = %err,
                        "could not blacklist revoked sessions at the edge; their access tokens \
                         stay usable until they expire");
                }
            }
        }))
    }

    async fn write_with_retries(&self, handles: &[String]) -> anyhow::Result<()> {
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 1;
        loop {
            match self.write(handles).await {
                Ok(()) => return Ok(()),
                Err(err) if attempt < ATTEMPTS => {
                    tracing::warn!(attempt, error = %err, "blacklist write failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                    attempt += 1;
                }
                Err(err) => return Err(err),
            }
        }
    }

    async fn write(&self, handles: &[String]) -> anyhow::Result<()> {
        let ttl_seconds = self.ttl.as_secs();
        let request = match &self.target {
            BlacklistTarget::Disabled => return Ok(()),
            BlacklistTarget::CloudflareKv { api_url, account_id, namespace_id, api_token } => {
                // https://developers.cloudflare.com/api/resources/kv/subresources/namespaces/methods/bulk_update/
                let body: Vec<_> = handles
                    .iter()
                    .map(|handle| {
                        json!({"key": blacklist_key(handle), "value": "1", "expiration_ttl": ttl_seconds})
                    })
                    .collect();
                self.client
                    .put(format!(
                        "{api_url}/accounts/{account_id}/storage/kv/namespaces/{namespace_id}/bulk"
                    ))
                    .bearer_auth(api_token.expose())
                    .json(&body)
            }
            BlacklistTarget::Edge { url } => {
                let body = BlacklistRequest {
                    entries: handles
                        .iter()
                        .map(|handle| BlacklistEntry {
                            session_handle: handle.clone(),
                            ttl_seconds,
                        })
                        .collect(),
                };
                self.client
                    .post(format!("{url}{}", paths::EDGE_BLACKLIST))
                    .bearer_auth(self.edge_secret.expose())
                    .json(&body)
            }
        };
        let response = request.send().await?;
        anyhow::ensure!(
            response.status().is_success(),
            "blacklist write answered {}",
            response.status()
        );
        Ok(())
    }

    /// Posts a theft event to the configured webhook, in the background.
    pub fn report_theft(&self, theft: &TheftDetails) -> Option<tokio::task::JoinHandle<()>> {
        let url = self.theft_webhook.clone()?;
        let body = json!({
            "event": "token_theft_detected",
            "user_id": theft.user_id,
            "session_handle": theft.session_handle,
            "detected_at": chrono::Utc::now().timestamp_millis(),
        });
        let this = self.clone();
        Some(tokio::spawn(async move {
            let sent = this.client.post(&url).json(&body).send().await;
            let outcome = match sent {
                Ok(response) if response.status().is_success() => "ok",
                Ok(response) => {
                    tracing::warn!(status = %response.status(), "theft webhook refused the event");
                    "failed"
                }
                Err(err) => {
                    tracing::warn!(error = %err, "theft webhook unreachable");
                    "failed"
                }
            };
            this.metrics.theft_webhooks.with_label_values(&[outcome]).inc();
        }))
    }
}
