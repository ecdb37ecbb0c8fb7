use axum::extract::{Path, State};
use latch_shared::api::SessionHandles;

use super::Json;
use crate::auth::AppCaller;
use crate::error::ApiResult;
use crate::AppState;

pub async fn list(
    _: AppCaller,
    State(state): State<AppState>,
    Path(user_id): Path<String>,
) -> ApiResult<Json<SessionHandles>> {
    Ok(Json(SessionHandles { handles: state.sessions.user_sessions(&user_id).await? }))
}

pub async fn revoke_all(
    _: AppCaller,
    State(state): State<AppState>,
    Path(user_id): Path<String>,
) -> ApiResult<Json<SessionHandles>> {
    Ok(Json(SessionHandles { handles: state.sessions.revoke_user(&user_id).await? }))
}
