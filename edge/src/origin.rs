//! The edge's client for the origin's API, authenticated with the edge secret.

use latch_shared::api::{
    paths, CreateSessionRequest, IssuedSession, RefreshRequest, RevokeResponse, SessionInfo,
};
use latch_shared::SessionError;
use serde::de::DeserializeOwned;
use worker::{Fetch, Headers, Method, Request, RequestInit};

use crate::config::EdgeConfig;

/// Why an origin call failed.
#[derive(Debug)]
pub enum OriginError {
    /// The origin answered with a session error (UNAUTHORISED, TOKEN_THEFT_DETECTED, …).
    Session(SessionError),
    /// The origin is down or failed: nothing about the session is known, so nothing is cleared.
    Unavailable(String),
}

async fn call<T: DeserializeOwned>(
    config: &EdgeConfig,
    method: Method,
    path: &str,
    body: Option<String>,
) -> Result<T, OriginError> {
    let headers = Headers::new();
    let unavailable = |err: worker::Error| OriginError::Unavailable(err.to_string());
    headers.set("authorization", &format!("Bearer {}", config.edge_secret)).map_err(unavailable)?;
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
    if status == 200 {
        return serde_json::from_str(&text)
            .map_err(|err| OriginError::Unavailable(format!("origin answered bad JSON: {err}")));
    }
    match serde_json::from_str::<SessionError>(&text) {
        Ok(err) if (400..500).contains(&status) => Err(OriginError::Session(err)),
        _ => Err(OriginError::Unavailable(format!("origin answered {status}"))),
    }
}

pub async fn refresh(
    config: &EdgeConfig,
    refresh_token: String,
) -> Result<IssuedSession, OriginError> {
    let body = serde_json::to_string(&RefreshRequest { refresh_token }).expect("serialises");
    call(config, Method::Post, paths::REFRESH, Some(body)).await
}

pub async fn create(
    config: &EdgeConfig,
    request: &CreateSessionRequest,
) -> Result<IssuedSession, OriginError> {
    let body = serde_json::to_string(request).expect("serialises");
    call(config, Method::Post, paths::SESSIONS, Some(body)).await
}

pub async fn revoke(config: &EdgeConfig, handle: &str) -> Result<RevokeResponse, OriginError> {
    call(config, Method::Delete, &paths::session(handle), None).await
}

pub async fn session_info(config: &EdgeConfig, handle: &str) -> Result<SessionInfo, OriginError> {
    call(config, Method::Get, &paths::session_info(handle), None).await
}

pub async fn update_session_info(
    config: &EdgeConfig,
    handle: &str,
    info: &SessionInfo,
) -> Result<SessionInfo, OriginError> {
    let body = serde_json::to_string(info).expect("serialises");
    call(config, Method::Put, &paths::session_info(handle), Some(body)).await
}
