//! The edge's client for the origin's API, authenticated with the edge secret. Calls made for a
//! client's request carry that client's address (the key of the origin's per-address rate
//! limits) and the request's W3C trace context, so the origin's logs line up with the edge's.

use latch_shared::api::{
    paths, CreateSessionRequest, IssuedSession, RefreshRequest, RevokeResponse, UsageReport,
    CLIENT_ADDRESS_HEADER,
};
use latch_shared::trace::{TraceContext, TRACEPARENT_HEADER};
use latch_shared::SessionError;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use worker::{Fetch, Headers, Method, Request, RequestInit};

use crate::config::EdgeConfig;
use crate::respond::EdgeError;
use crate::with_isolate;

/// The origin's error body: a session error, or a request error such as BAD_REQUEST.
#[derive(Deserialize)]
struct ErrorBody {
    error: String,
}

/// The origin, as called for one request.
pub struct Origin<'a> {
    config: &'a EdgeConfig,
    /// `CF-Connecting-IP`: the client's address as Cloudflare saw it.
    client_address: Option<String>,
    trace: Option<TraceContext>,
}

impl<'a> Origin<'a> {
    /// Calls on behalf of `req`'s client.
    pub fn for_request(config: &'a EdgeConfig, req: &Request) -> Self {
        let header = |name: &str| req.headers().get(name).ok().flatten();
        let traceparent = header(TRACEPARENT_HEADER);
        let trace = with_isolate(|isolate| isolate.trace_for(traceparent.as_deref()).0);
        Origin { config, client_address: header("cf-connecting-ip"), trace }
    }

    /// Calls of the edge's own (off any client's request).
    pub fn background(config: &'a EdgeConfig) -> Self {
        Origin { config, client_address: None, trace: None }
    }

    /// The id of the request these calls are for (its trace id), for log lines.
    pub fn request_id(&self) -> Option<String> {
        self.trace.as_ref().map(|trace| trace.trace_id().to_owned())
    }

    pub async fn refresh(&self, refresh_token: String) -> Result<IssuedSession, EdgeError> {
        let body = serde_json::to_string(&RefreshRequest { refresh_token }).expect("serialises");
        self.call(Method::Post, paths::REFRESH, Some(body)).await
    }

    pub async fn create(&self, request: &CreateSessionRequest) -> Result<IssuedSession, EdgeError> {
        let body = serde_json::to_string(request).expect("serialises");
        self.call(Method::Post, paths::SESSIONS, Some(body)).await
    }

    /// Reports an access token of refresh generation `generation` seen in use here for the
    /// first time: from then on, the refresh token before it is spent (theft if presented
    /// again).
    pub async fn report_use(&self, handle: &str, generation: u64) -> Result<(), EdgeError> {
        let body = serde_json::to_string(&UsageReport { generation }).expect("serialises");
        self.call_raw(Method::Post, &paths::session_used(handle), Some(body)).await.map(drop)
    }

    pub async fn revoke(&self, handle: &str) -> Result<RevokeResponse, EdgeError> {
        self.call(Method::Delete, &paths::session(handle), None).await
    }

    /// The session info as the origin's JSON text (`{"session_info": …}`).
    pub async fn session_info(&self, handle: &str) -> Result<String, EdgeError> {
        self.call_raw(Method::Get, &paths::session_info(handle), None).await
    }

    /// Overwrites the session info with `body` as the client sent it: the origin is the one
    /// that parses and validates it (with its own size and nesting limits), and its refusals
    /// reach the client unchanged.
    pub async fn update_session_info(
        &self,
        handle: &str,
        body: String,
    ) -> Result<String, EdgeError> {
        self.call_raw(Method::Put, &paths::session_info(handle), Some(body)).await
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> Result<T, EdgeError> {
        let text = self.call_raw(method, path, body).await?;
        serde_json::from_str(&text)
            .map_err(|err| EdgeError::OriginUnavailable(format!("origin answered bad JSON: {err}")))
    }

    /// Calls the origin and returns its successful answer's body as it came.
    async fn call_raw(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> Result<String, EdgeError> {
        let config = self.config;
        let unavailable = |err: worker::Error| EdgeError::OriginUnavailable(err.to_string());
        let headers = Headers::new();
        headers
            .set("authorization", &format!("Bearer {}", config.edge_secret.expose()))
            .map_err(unavailable)?;
        if let Some(address) = &self.client_address {
            headers.set(CLIENT_ADDRESS_HEADER, address).map_err(unavailable)?;
        }
        if let Some(trace) = &self.trace {
            headers.set(TRACEPARENT_HEADER, &trace.to_string()).map_err(unavailable)?;
        }
        let mut init = RequestInit::new();
        init.with_method(method);
        if let Some(body) = body {
            headers.set("content-type", "application/json").map_err(unavailable)?;
            init.with_body(Some(body.into()));
        }
        init.with_headers(headers);
        let request = Request::new_with_init(&format!("{}{path}", config.origin_url), &init)
            .map_err(unavailable)?;
        let mut response = Fetch::Request(request).send().await.map_err(unavailable)?;
        let status = response.status_code();
        let retry_after = response.headers().get("retry-after").ok().flatten();
        let text = response.text().await.map_err(unavailable)?;
        if (200..300).contains(&status) {
            return Ok(text);
        }
        if status == 401 || status == 403 {
            return Err(EdgeError::Internal(format!(
                "the origin refused the edge's secret ({status})"
            )));
        }
        if !(400..500).contains(&status) {
            return Err(EdgeError::OriginUnavailable(format!("origin answered {status}")));
        }
        // A session error is re-answered with the edge's cookie handling; any other client
        // error (a value refused, a body over the limit, a rate limit) goes back as the origin
        // said it.
        if let Ok(err) = serde_json::from_str::<SessionError>(&text) {
            return Err(EdgeError::Session(err));
        }
        match serde_json::from_str::<ErrorBody>(&text) {
            Ok(body) if !body.error.is_empty() => {
                Err(EdgeError::Refused { status, body: text, retry_after })
            }
            _ => Err(EdgeError::OriginUnavailable(format!("origin answered {status}"))),
        }
    }
}
