//! The edge's client for the origin's API, authenticated with the edge secret.

use latch_shared::api::{
    paths, CreateSessionRequest, IssuedSession, RefreshRequest, RevokeResponse, UsageReport,
};
use latch_shared::SessionError;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use worker::{Fetch, Headers, Method, Request, RequestInit};

use crate::config::EdgeConfig;
use crate::respond::EdgeError;

/// The origin's error body: a session error, or a request error such as BAD_REQUEST.
#[derive(Deserialize)]
struct ErrorBody {
    error: String,
}

async fn call<T: DeserializeOwned>(
    config: &EdgeConfig,
    method: Method,
    path: &str,
    body: Option<String>,
) -> Result<T, EdgeError> {
    let text = call_raw(config, method, path, body).await?;
    serde_json::from_str(&text)
        .map_err(|err| EdgeError::OriginUnavailable(format!("origin answered bad JSON: {err}")))
}

/// Calls the origin and returns its successful answer's body as it came.
async fn call_raw(
    config: &EdgeConfig,
    method: Method,
    path: &str,
    body: Option<String>,
) -> Result<String, EdgeError> {
    let unavailable = |err: worker::Error| EdgeError::OriginUnavailable(err.to_string());
    let headers = Headers::new();
    headers
        .set("authorization", &format!("Bearer {}", config.edge_secret.expose()))
        .map_err(unavailable)?;
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
    // A session error is re-answered with the edge's cookie handling; any other client error
    // (a value refused, a body over the limit) goes back as the origin said it.
    if let Ok(err) = serde_json::from_str::<SessionError>(&text) {
        return Err(EdgeError::Session(err));
    }
    match serde_json::from_str::<ErrorBody>(&text) {
        Ok(body) if !body.error.is_empty() => Err(EdgeError::Refused { status, body: text }),
        _ => Err(EdgeError::OriginUnavailable(format!("origin answered {status}"))),
    }
}

pub async fn refresh(
    config: &EdgeConfig,
    refresh_token: String,
) -> Result<IssuedSession, EdgeError> {
    let body = serde_json::to_string(&RefreshRequest { refresh_token }).expect("serialises");
    call(config, Method::Post, paths::REFRESH, Some(body)).await
}

pub async fn create(
    config: &EdgeConfig,
    request: &CreateSessionRequest,
) -> Result<IssuedSession, EdgeError> {
    let body = serde_json::to_string(request).expect("serialises");
    call(config, Method::Post, paths::SESSIONS, Some(body)).await
}

/// Reports an access token of refresh generation `generation` seen in use here for the first
/// time: from then on, the refresh token before it is spent (theft if presented again).
pub async fn report_use(
    config: &EdgeConfig,
    handle: &str,
    generation: u64,
) -> Result<(), EdgeError> {
    let body = serde_json::to_string(&UsageReport { generation }).expect("serialises");
    call_raw(config, Method::Post, &paths::session_used(handle), Some(body)).await.map(drop)
}

pub async fn revoke(config: &EdgeConfig, handle: &str) -> Result<RevokeResponse, EdgeError> {
    call(config, Method::Delete, &paths::session(handle), None).await
}

/// The session info as the origin's JSON text (`{"session_info": …}`).
pub async fn session_info(config: &EdgeConfig, handle: &str) -> Result<String, EdgeError> {
    call_raw(config, Method::Get, &paths::session_info(handle), None).await
}

/// Overwrites the session info with `body` as the client sent it: the origin is the one that
/// parses and validates it (with its own size and nesting limits), and its refusals reach the
/// client unchanged.
pub async fn update_session_info(
    config: &EdgeConfig,
    handle: &str,
    body: String,
) -> Result<String, EdgeError> {
    call_raw(config, Method::Put, &paths::session_info(handle), Some(body)).await
}
