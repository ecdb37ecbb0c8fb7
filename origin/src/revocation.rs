//! Where revocations and thefts are told: the edge's blacklist (Workers KV through Cloudflare's
//! REST API, or the edge's own authenticated endpoint) and the theft webhook. One attempt per
//! call; [`crate::outbox`] decides when to try, and tries again until one succeeds.

use std::time::Duration;

use latch_shared::api::{
    blacklist_key, blacklist_ttl_secs, paths, BlacklistEntry, BlacklistRequest,
};
use latch_shared::secret::Secret;
use serde_json::{json, Value};

use crate::config::BlacklistTarget;

/// Each attempt's limit: a stuck destination must not hold the deliverer.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct Publisher {
    target: BlacklistTarget,
    edge_secret: Secret,
    theft_webhook: Option<String>,
    /// TTL of blacklist entries: the longest an access token lives (plus leeway), at least 60 s,
    /// KV's minimum.
    ttl: Duration,
    client: reqwest::Client,
}

impl Publisher {
    pub fn new(
        target: BlacklistTarget,
        edge_secret: Secret,
        theft_webhook: Option<String>,
        access_token_lifetime: Duration,
    ) -> Self {
        let client = reqwest::Client::builder()
            .timeout(ATTEMPT_TIMEOUT)
            .build()
            .expect("the HTTP client builds");
        Publisher {
            target,
            edge_secret,
            theft_webhook,
            ttl: Publisher::blacklist_ttl(access_token_lifetime),
            client,
        }
    }

    /// How long a blacklist entry must live (the rule the edge uses too).
    pub fn blacklist_ttl(access_token_lifetime: Duration) -> Duration {
        Duration::from_secs(blacklist_ttl_secs(access_token_lifetime.as_secs()))
    }

    /// Whether revocations go anywhere (`no_edge`: nowhere).
    pub fn blacklists(&self) -> bool {
        !matches!(self.target, BlacklistTarget::NoEdge)
    }

    /// Whether thefts are posted anywhere.
    pub fn reports_thefts(&self) -> bool {
        self.theft_webhook.is_some()
    }

    /// The theft event the webhook receives. No token is in it.
    pub fn theft_event(user_id: &latch_shared::api::UserId, handle: &str, at_ms: i64) -> Value {
        json!({
            "event": "token_theft_detected",
            "user_id": user_id,
            "session_handle": handle,
            "detected_at": at_ms,
        })
    }

    /// Posts one theft event to the webhook.
    pub async fn post_theft(&self, event: &Value) -> anyhow::Result<()> {
        let Some(url) = &self.theft_webhook else { return Ok(()) };
        let response = self.client.post(url).json(event).send().await?;
        anyhow::ensure!(
            response.status().is_success(),
            "the theft webhook answered {}",
            response.status()
        );
        Ok(())
    }

    /// Writes blacklist entries for `handles` (idempotent: writing one twice changes nothing).
    pub async fn blacklist(&self, handles: &[String]) -> anyhow::Result<()> {
        let ttl_seconds = self.ttl.as_secs();
        let request = match &self.target {
            BlacklistTarget::NoEdge => anyhow::bail!("no blacklist to write: no_edge is set"),
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
}
