//! The public documents (the JWKS, the settings document, the OpenAPI document) and the probes.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use latch_shared::api::paths;
use latch_shared::keys::Jwks;
use latch_shared::settings::SharedSettings;

#[allow(unused_imports)] // named by the OpenAPI annotations
use super::openapi::GeneralError;
use super::Json;
use crate::error::ApiResult;
use crate::AppState;

/// The public keys, cacheable for the configured JWKS cache time: new keys are published at
/// least that long before they sign.
#[utoipa::path(
    get,
    path = paths::JWKS,
    responses(
        (status = 200, description = "The public keys (RFC 7517; OKP Ed25519, alg EdDSA)", body = Jwks),
        (status = 500, response = GeneralError),
    ),
    tag = "public"
)]
pub async fn jwks(State(state): State<AppState>) -> ApiResult<impl IntoResponse> {
    let cache = format!("public, max-age={}", state.jwks_cache_secs);
    Ok(([(header::CACHE_CONTROL, cache)], Json(state.sessions.jwks().await?)))
}

/// The settings the edge must share with the origin, with the public keys: one document the
/// edge caches like the JWKS, for as long.
#[utoipa::path(
    get,
    path = paths::SETTINGS,
    responses(
        (status = 200, description = "Issuer, audience, cookies, statuses, anti-CSRF rules and keys", body = SharedSettings),
        (status = 500, response = GeneralError),
    ),
    tag = "public"
)]
pub async fn settings(State(state): State<AppState>) -> ApiResult<impl IntoResponse> {
    let cache = format!("public, max-age={}", state.jwks_cache_secs);
    let document = state.sessions.settings_document(state.session_expired_status).await?;
    Ok(([(header::CACHE_CONTROL, cache)], Json(document)))
}

/// This document.
#[utoipa::path(
    get,
    path = paths::OPENAPI,
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json")),
    tag = "public"
)]
pub async fn openapi(State(state): State<AppState>) -> impl IntoResponse {
    let document = super::openapi::document_for(state.session_expired_status)
        .to_pretty_json()
        .expect("the document serialises");
    ([(header::CONTENT_TYPE, "application/json")], document)
}

/// Liveness: the process serves HTTP.
#[utoipa::path(
    get,
    path = paths::HEALTH,
    responses((status = 200, description = "ok", body = String, content_type = "text/plain")),
    tag = "public"
)]
pub async fn health() -> &'static str {
    "ok"
}

/// Readiness: the database answers.
#[utoipa::path(
    get,
    path = paths::READY,
    responses(
        (status = 200, description = "ready", body = String, content_type = "text/plain"),
        (status = 503, description = "database unreachable", body = String, content_type = "text/plain"),
    ),
    tag = "public"
)]
pub async fn ready(State(state): State<AppState>) -> (StatusCode, &'static str) {
    if state.sessions.is_ready().await {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unreachable")
    }
}
