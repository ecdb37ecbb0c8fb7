//! The admin operations: metrics and key rotation (the API key's; sessions and users have their
//! own modules), and the credential check both callers may make.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use latch_shared::api::{paths, CallerAnswer};

#[allow(unused_imports)] // named by the OpenAPI annotations
use super::openapi::{BadRequest, Forbidden, GeneralError, Unauthenticated};
use super::{Json, Query};
use crate::auth::{AppCaller, Caller};
use crate::error::ApiResult;
use crate::AppState;

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
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.sessions.metrics_text())
}

/// Which credential the bearer token is: `latch check-edge --probe-origin` asks with the edge's
/// secret, so an edge given the API key (admin powers it must not hold) or a stale secret is
/// caught before it serves anyone.
#[utoipa::path(
    get,
    path = paths::CALLER,
    responses(
        (status = 200, description = "The credential presented", body = CallerAnswer),
        (status = 401, response = Unauthenticated),
    ),
    security(("apiKey" = []), ("edgeSecret" = [])),
    tag = "admin"
)]
pub async fn caller(caller: Caller) -> Json<CallerAnswer> {
    Json(CallerAnswer { caller })
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
    let (kid, signs_from, retired) = state.sessions.rotate_keys(options.compromised).await?;
    Ok(Json(RotatedKey { kid, signs_from, retired }))
}
