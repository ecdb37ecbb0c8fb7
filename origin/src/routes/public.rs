//! Public documents, probes and the admin endpoints.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use latch_shared::api::paths;
use latch_shared::keys::Jwks;
use latch_shared::settings::SharedSettings;

#[allow(unused_imports)] // named by the OpenAPI annotations
use super::openapi::{BadRequest, Forbidden, GeneralError, Unauthenticated};
use super::{Json, Query};
use crate::auth::AppCaller;
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
    let ring = state.sessions.keys.ring().await?;
    let cache = format!("public, max-age={}", state.jwks_cache_secs);
    Ok(([(header::CACHE_CONTROL, cache)], Json(ring.verifier.keys().to_jwks())))
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
    let ring = state.sessions.keys.ring().await?;
    let cache = format!("public, max-age={}", state.jwks_cache_secs);
    let document = state.sessions.shared_settings(&ring, state.session_expired_status);
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
    if crate::db::ping(&state.sessions.pool).await {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unreachable")
    }
}

/// Prometheus metrics.
#[utoipa::path(
    get,
    path = paths::METRICS,
    responses(
        (status = 200, description = "Prometheus text format", body = String, content_type = "text/plain; version=0.0.4"),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
    ),
    security(("apiKey" = [])),
    tag = "admin"
)]
pub async fn metrics(_: AppCaller, State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.sessions.metrics.render())
}

/// The key that will sign next, and from when.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct RotatedKey {
    pub kid: String,
    /// Milliseconds since the Unix epoch.
    pub signs_from: i64,
    /// The kids no longer trusted (after `?compromised=true`; otherwise none: the old key
    /// stays published until its tokens expire).
    pub retired: Vec<String>,
}

/// How to rotate.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RotateOptions {
    /// `true` after a suspected key compromise: a brand-new key signs at once and every other
    /// key stops being trusted at once (their tokens are refused, and sessions refresh onto
    /// the new key). Default `false`: the next key signs after the JWKS publish lead, and the
    /// old one stays trusted until its tokens expire, so nobody notices.
    #[serde(default)]
    pub compromised: bool,
}

/// Rotates the signing key now: planned (after the JWKS publish lead), or after a compromise.
#[utoipa::path(
    post,
    path = paths::ROTATE_KEYS,
    params(RotateOptions),
    responses(
        (status = 200, description = "The new key's id, when it starts signing, and the kids retired", body = RotatedKey),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 500, response = GeneralError),
    ),
    security(("apiKey" = [])),
    tag = "admin"
)]
pub async fn rotate_keys(
    _: AppCaller,
    State(state): State<AppState>,
    Query(options): Query<RotateOptions>,
) -> ApiResult<Json<RotatedKey>> {
    if options.compromised {
        let (kid, retired) = state.sessions.keys.replace_compromised().await?;
        let signs_from = state.sessions.clock.now_ms();
        return Ok(Json(RotatedKey { kid, signs_from, retired }));
    }
    let (kid, signs_from) = state.sessions.keys.rotate_now().await?;
    Ok(Json(RotatedKey { kid, signs_from, retired: Vec::new() }))
}
