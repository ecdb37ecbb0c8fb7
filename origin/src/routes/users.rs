//! `/v1/users/{user_id}/sessions`: app backends and admins only (API key).

use axum::extract::{Path, State};
use latch_shared::api::{paths, SessionHandles, UserId, UserIdType};
use serde::Deserialize;
use utoipa::IntoParams;

use super::openapi::{AppOnlyErrors, CallErrors};
use super::{Json, Query};
use crate::auth::AppCaller;
use crate::error::{ApiError, ApiResult};
use crate::AppState;

/// `?user_id_type=number` names a numeric user id (`7`, not `"7"`).
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UserIdQuery {
    /// `number` when the user id is a JSON number: the path then holds its canonical decimal
    /// form.
    #[serde(default)]
    #[param(inline)]
    pub(super) user_id_type: UserIdType,
}

/// The user id a path segment names, with its type.
pub(super) fn user_id(segment: &str, kind: UserIdType) -> ApiResult<UserId> {
    UserId::from_path(segment, kind).map_err(|err| ApiError::BadRequest(err.to_string()))
}

/// The handles of the user's live sessions, oldest first.
#[utoipa::path(
    get,
    path = paths::USER_SESSIONS,
    params(
        ("user_id" = String, Path, description = "The user id's text, percent-encoded"),
        UserIdQuery
    ),
    responses(
        (status = 200, description = "The handles", body = SessionHandles),
        CallErrors,
        AppOnlyErrors,
    ),
    security(("apiKey" = [])),
    tag = "users"
)]
pub async fn list(
    _: AppCaller,
    State(state): State<AppState>,
    Path(segment): Path<String>,
    Query(query): Query<UserIdQuery>,
) -> ApiResult<Json<SessionHandles>> {
    let user_id = user_id(&segment, query.user_id_type)?;
    Ok(Json(SessionHandles { handles: state.sessions.user_sessions(&user_id).await? }))
}

/// Revokes every session of the user at once.
#[utoipa::path(
    delete,
    path = paths::USER_SESSIONS,
    params(
        ("user_id" = String, Path, description = "The user id's text, percent-encoded"),
        UserIdQuery
    ),
    responses(
        (status = 200, description = "The handles", body = SessionHandles),
        CallErrors,
        AppOnlyErrors,
    ),
    security(("apiKey" = [])),
    tag = "users"
)]
pub async fn revoke_all(
    _: AppCaller,
    State(state): State<AppState>,
    Path(segment): Path<String>,
    Query(query): Query<UserIdQuery>,
) -> ApiResult<Json<SessionHandles>> {
    let user_id = user_id(&segment, query.user_id_type)?;
    Ok(Json(SessionHandles { handles: state.sessions.revoke_user(&user_id).await? }))
}
