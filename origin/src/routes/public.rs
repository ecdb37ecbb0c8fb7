use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;

use super::Json;
use crate::auth::AppCaller;
use crate::error::ApiResult;
use crate::AppState;

/// The public keys, cacheable for the configured JWKS cache time: new keys are published at
/// least that long before they sign.
pub async fn jwks(State(state): State<AppState>) -> ApiResult<impl IntoResponse> {
    let ring = state.sessions.keys.ring().await?;
    let cache = format!("public, max-age={}", state.jwks_cache_secs);
    Ok(([(header::CACHE_CONTROL, cache)], Json(ring.verifier.keys().to_jwks())))
}

/// The settings the edge must share with the origin, with the public keys: one document the
/// edge caches like the JWKS, for as long.
pub async fn settings(State(state): State<AppState>) -> ApiResult<impl IntoResponse> {
    let ring = state.sessions.keys.ring().await?;
    let cache = format!("public, max-age={}", state.jwks_cache_secs);
    let document = state.sessions.shared_settings(&ring, state.session_expired_status);
    Ok(([(header::CACHE_CONTROL, cache)], Json(document)))
}

pub async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], include_str!("../../openapi.json"))
}

pub async fn health() -> &'static str {
    "ok"
}

pub async fn ready(State(state): State<AppState>) -> (StatusCode, &'static str) {
    if crate::db::ping(&state.sessions.pool).await {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unreachable")
    }
}

pub async fn metrics(_: AppCaller, State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.sessions.metrics.render())
}

/// Rotates the signing key now (after the JWKS publish lead), for a suspected compromise.
pub async fn rotate_keys(
    _: AppCaller,
    State(state): State<AppState>,
) -> ApiResult<Json<serde_json::Value>> {
    let (kid, signs_from) = state.sessions.keys.rotate_now().await?;
    Ok(Json(serde_json::json!({"kid": kid, "signs_from": signs_from})))
}
