//! Building the edge's own responses: session errors, JSON, cookies, CORS and caching rules.

use latch_shared::error::{codes, error_body};
use latch_shared::protocol::{ResponseHeader, EXPOSED_HEADERS, SDK_REQUEST_HEADERS};
use latch_shared::SessionError;
use worker::{Headers, Request, Response, Result};

use crate::config::EdgeConfig;

pub fn json(status: u16, body: &str) -> Result<Response> {
    let headers = Headers::new();
    headers.set("content-type", "application/json")?;
    Ok(Response::ok(body)?.with_status(status).with_headers(headers))
}

/// A session error: the configured status, the JSON body, and cleared cookies where the error
/// ends the session.
pub fn session_error(config: &EdgeConfig, err: &SessionError) -> Result<Response> {
    let response = json(err.kind().status(config.session_expired_status), &err.to_json())?;
    if err.kind().clears_cookies() {
        append(&response, &config.cookies.clear_headers())?;
    }
    Ok(response)
}

/// 503 for an origin outage: nothing is cleared, so an outage never logs anyone out.
pub fn origin_unavailable(detail: &str) -> Result<Response> {
    worker::console_error!("latch-edge: origin unavailable: {detail}");
    json(503, &SessionError::general("the session service is unavailable; try again").to_json())
}

pub fn append(response: &Response, headers: &[ResponseHeader]) -> Result<()> {
    for header in headers {
        response.headers().append(&header.name, &header.value)?;
    }
    Ok(())
}

/// Responses that set cookies must never be stored by a cache.
pub fn no_store_if_setting_cookies(response: &Response) -> Result<()> {
    if response.headers().has("set-cookie")? {
        response.headers().set("cache-control", "no-store")?;
    }
    Ok(())
}

fn allowed_origin(config: &EdgeConfig, req: &Request) -> Option<String> {
    let origin = req.headers().get("origin").ok().flatten()?;
    config.allows_origin(&origin).then_some(origin)
}

/// CORS headers for an allowed cross-origin page: credentials, and the SDK's headers exposed.
pub fn cors(config: &EdgeConfig, origin: Option<&str>, response: &Response) -> Result<()> {
    if let Some(origin) = origin.filter(|origin| config.allows_origin(origin)) {
        let headers = response.headers();
        headers.set("access-control-allow-origin", origin)?;
        headers.set("access-control-allow-credentials", "true")?;
        headers.set("access-control-expose-headers", EXPOSED_HEADERS)?;
        headers.append("vary", "Origin")?;
    }
    Ok(())
}

/// Answers a CORS preflight: allowed origins get the SDK's headers and credentials; others get
/// a 403 without any CORS header.
pub fn preflight(config: &EdgeConfig, req: &Request) -> Result<Response> {
    let Some(origin) = allowed_origin(config, req) else {
        return json(403, &error_body(codes::FORBIDDEN, "origin not allowed"));
    };
    let requested = req.headers().get("access-control-request-headers")?.unwrap_or_default();
    let mut allowed = SDK_REQUEST_HEADERS.to_owned();
    for header in requested.split(',').map(str::trim).filter(|h| !h.is_empty()) {
        if !allowed.split(", ").any(|a| a.eq_ignore_ascii_case(header)) {
            allowed.push_str(", ");
            allowed.push_str(header);
        }
    }
    let headers = Headers::new();
    headers.set("access-control-allow-origin", &origin)?;
    headers.set("access-control-allow-credentials", "true")?;
    headers.set("access-control-allow-methods", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS")?;
    headers.set("access-control-allow-headers", &allowed)?;
    headers.set("access-control-max-age", "600")?;
    headers.set("vary", "Origin")?;
    Ok(Response::empty()?.with_status(204).with_headers(headers))
}
