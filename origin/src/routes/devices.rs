//! `/v1/users/{user_id}/devices`: "your devices", a user's sessions with what they were made
//! from. The edge calls these for the signed-in user (the user id and handle from the verified
//! access token); app backends with the API key.

use axum::extract::{Path, State};
use latch_shared::api::{paths, DeviceList, SessionHandles, UserIdType};
use serde::Deserialize;
use utoipa::IntoParams;

use super::openapi::{CallErrors, SessionErrors};
use super::users::user_id;
use super::{Json, Query};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::sessions::parse_handle;
use crate::AppState;
use latch_shared::refresh::SessionHandle;

/// `?current={handle}`: the session asking, if any, marked `current` in a list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AskingQuery {
    /// `number` when the user id is a JSON number.
    #[serde(default)]
    #[param(inline)]
    user_id_type: UserIdType,
    /// The session asking. It must be live: a device already signed out is answered
    /// UNAUTHORISED, and signs out no other.
    current: Option<String>,
}

/// `?except={handle}`: the session that stays signed in.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExceptQuery {
    /// `number` when the user id is a JSON number.
    #[serde(default)]
    #[param(inline)]
    user_id_type: UserIdType,
    /// The session to keep: the one asking, which must be live.
    except: String,
}

/// The session asking. The edge always names one (the signed-in user's), so that even a
/// leaked edge secret reaches devices only through a live session of that user.
fn asking(caller: Caller, current: Option<&str>) -> ApiResult<Option<SessionHandle>> {
    match (caller, current) {
        (Caller::Edge, None) => {
            Err(ApiError::BadRequest("the edge names the session asking: ?current=".into()))
        }
        (_, current) => current.map(parse_handle).transpose(),
    }
}

/// The user's live sessions with their devices, newest first.
#[utoipa::path(
    get,
    path = paths::USER_DEVICES,
    params(("user_id" = String, Path, description = "The user id's text, percent-encoded"), AskingQuery),
    responses((status = 200, description = "The sessions", body = DeviceList), CallErrors, SessionErrors),
    security(("apiKey" = []), ("edgeSecret" = [])),
    tag = "devices"
)]
pub async fn list(
    caller: Caller,
    State(state): State<AppState>,
    Path(segment): Path<String>,
    Query(query): Query<AskingQuery>,
) -> ApiResult<Json<DeviceList>> {
    let user_id = user_id(&segment, query.user_id_type)?;
    let current = asking(caller, query.current.as_deref())?;
    Ok(Json(state.sessions.user_devices(&user_id, current.as_ref()).await?))
}

/// Signs out every other device: revokes all the user's sessions but `except`, each
/// blacklisted at the edge.
#[utoipa::path(
    delete,
    path = paths::USER_DEVICES,
    params(("user_id" = String, Path, description = "The user id's text, percent-encoded"), ExceptQuery),
    responses((status = 200, description = "The handles revoked", body = SessionHandles), CallErrors, SessionErrors),
    security(("apiKey" = []), ("edgeSecret" = [])),
    tag = "devices"
)]
pub async fn revoke_others(
    _: Caller,
    State(state): State<AppState>,
    Path(segment): Path<String>,
    Query(query): Query<ExceptQuery>,
) -> ApiResult<Json<SessionHandles>> {
    let user_id = user_id(&segment, query.user_id_type)?;
    let keep = parse_handle(&query.except)?;
    Ok(Json(SessionHandles { handles: state.sessions.revoke_user_except(&user_id, &keep).await? }))
}

/// Signs out one device: revokes that session if it is the user's (otherwise nothing, and
/// the list is empty).
#[utoipa::path(
    delete,
    path = paths::USER_DEVICE,
    params(
        ("user_id" = String, Path, description = "The user id's text, percent-encoded"),
        ("handle" = String, Path, description = "The session handle"),
        AskingQuery,
    ),
    responses((status = 200, description = "The handle, if it was revoked", body = SessionHandles), CallErrors, SessionErrors),
    security(("apiKey" = []), ("edgeSecret" = [])),
    tag = "devices"
)]
pub async fn revoke(
    caller: Caller,
    State(state): State<AppState>,
    Path((segment, handle)): Path<(String, String)>,
    Query(query): Query<AskingQuery>,
) -> ApiResult<Json<SessionHandles>> {
    let user_id = user_id(&segment, query.user_id_type)?;
    let handle = parse_handle(&handle)?;
    let asking = asking(caller, query.current.as_deref())?;
    let revoked = state.sessions.revoke_user_device(&user_id, &handle, asking.as_ref()).await?;
    Ok(Json(SessionHandles { handles: revoked.then(|| handle.to_string()).into_iter().collect() }))
}
