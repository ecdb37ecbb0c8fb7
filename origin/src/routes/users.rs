use axum::extract::{Path, State};
use latch_shared::api::{SessionHandles, UserId, UserIdType};
use serde::Deserialize;

use super::{Json, Query};
use crate::auth::AppCaller;
use crate::error::{ApiError, ApiResult};
use crate::AppState;

/// `?user_id_type=number` names a numeric user id (`7`, not `"7"`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserIdQuery {
    #[serde(default)]
    user_id_type: UserIdType,
}

fn user_id(segment: &str, query: &UserIdQuery) -> ApiResult<UserId> {
    UserId::from_path(segment, query.user_id_type)
        .map_err(|err| ApiError::BadRequest(err.to_string()))
}

pub async fn list(
    _: AppCaller,
    State(state): State<AppState>,
    Path(segment): Path<String>,
    Query(query): Query<UserIdQuery>,
) -> ApiResult<Json<SessionHandles>> {
    let user_id = user_id(&segment, &query)?;
    Ok(Json(SessionHandles { handles: state.sessions.user_sessions(&user_id).await? }))
}

pub async fn revoke_all(
    _: AppCaller,
    State(state): State<AppState>,
    Path(segment): Path<String>,
    Query(query): Query<UserIdQuery>,
) -> ApiResult<Json<SessionHandles>> {
    let user_id = user_id(&segment, &query)?;
    Ok(Json(SessionHandles { handles: state.sessions.revoke_user(&user_id).await? }))
}
