//! The edge's calls to the origin's API, as [`OriginCall`] steps the entry carries out with the
//! edge secret, and the one reading of the origin's answers. Calls made for a client's request
//! carry that client's address (the key of the origin's per-address rate limits) and the
//! request's trace context (`crate::exchange::Exchange::call_origin`).

use latch_shared::api::{
    paths, CreateSessionRequest, JwtPayloadUpdate, RefreshRequest, UsageReport, UserId,
};
use latch_shared::SessionError;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::config::EdgeConfig;
use crate::io::OriginAnswer;
use crate::respond::EdgeError;
use crate::step::OriginCall;

fn call(config: &EdgeConfig, method: &'static str, path: &str, body: Option<String>) -> OriginCall {
    OriginCall { method, url: format!("{}{path}", config.origin_url), headers: Vec::new(), body }
}

fn json(value: &impl serde::Serialize) -> Option<String> {
    Some(serde_json::to_string(value).expect("API types serialise"))
}

pub fn refresh(config: &EdgeConfig, refresh_token: String) -> OriginCall {
    call(config, "POST", paths::REFRESH, json(&RefreshRequest { refresh_token }))
}

pub fn create(config: &EdgeConfig, request: &CreateSessionRequest) -> OriginCall {
    call(config, "POST", paths::SESSIONS, json(request))
}

/// An access token of refresh generation `generation` seen in use here for the first time:
/// from then on, the refresh token before it is spent (theft if presented again).
pub fn report_use(config: &EdgeConfig, handle: &str, generation: u64) -> OriginCall {
    call(config, "POST", &paths::session_used(handle), json(&UsageReport { generation }))
}

pub fn revoke(config: &EdgeConfig, handle: &str) -> OriginCall {
    call(config, "DELETE", &paths::session(handle), None)
}

/// The user's sessions with their devices, `current` (the session asking) marked.
pub fn devices(config: &EdgeConfig, user_id: &UserId, current: &str) -> OriginCall {
    call(config, "GET", &paths::user_devices(user_id, &[("current", current)]), None)
}

/// Signs out every other session of the user than `keep`, the session asking.
pub fn sign_out_other_devices(config: &EdgeConfig, user_id: &UserId, keep: &str) -> OriginCall {
    call(config, "DELETE", &paths::user_devices(user_id, &[("except", keep)]), None)
}

/// Signs out the user's session `handle`, for the session `current`.
pub fn sign_out_device(
    config: &EdgeConfig,
    user_id: &UserId,
    handle: &str,
    current: &str,
) -> OriginCall {
    let path = paths::user_device(user_id, handle, &[("current", current)]);
    call(config, "DELETE", &path, None)
}

/// The session info, answered as the origin's JSON text (`{"session_info": …}`).
pub fn session_info(config: &EdgeConfig, handle: &str) -> OriginCall {
    call(config, "GET", &paths::session_info(handle), None)
}

/// Overwrites the session info with `body` as the client sent it: the origin is the one that
/// parses and validates it (with its own size and nesting limits), and its refusals reach the
/// client unchanged.
pub fn update_session_info(config: &EdgeConfig, handle: &str, body: String) -> OriginCall {
    call(config, "PUT", &paths::session_info(handle), Some(body))
}

/// Replaces the session's JWT payload and re-issues `access_token` with it.
pub fn update_jwt_payload(
    config: &EdgeConfig,
    handle: &str,
    access_token: String,
    jwt_payload: Option<serde_json::Value>,
) -> OriginCall {
    let update = JwtPayloadUpdate { access_token, jwt_payload };
    call(config, "PUT", &paths::session_jwt_payload(handle), json(&update))
}

/// The origin's error body: a session error, or a request error such as BAD_REQUEST.
#[derive(Deserialize)]
struct ErrorBody {
    error: String,
}

/// The body of a successful answer, or the error it means.
pub fn read_answer(answer: Result<OriginAnswer, String>) -> Result<String, EdgeError> {
    let OriginAnswer { status, body, retry_after } =
        answer.map_err(EdgeError::OriginUnavailable)?;
    if (200..300).contains(&status) {
        return Ok(body);
    }
    if status == 401 || status == 403 {
        return Err(EdgeError::Internal(format!(
            "the origin refused the edge's secret ({status})"
        )));
    }
    if !(400..500).contains(&status) {
        return Err(EdgeError::OriginUnavailable(format!("origin answered {status}")));
    }
    // A session error is re-answered with the edge's cookie handling; any other client error
    // (a value refused, a body over the limit, a rate limit) goes back as the origin said it.
    if let Ok(err) = serde_json::from_str::<SessionError>(&body) {
        return Err(EdgeError::Session(err));
    }
    match serde_json::from_str::<ErrorBody>(&body) {
        Ok(error) if !error.error.is_empty() => {
            Err(EdgeError::Refused { status, body, retry_after })
        }
        _ => Err(EdgeError::OriginUnavailable(format!("origin answered {status}"))),
    }
}

/// A successful answer's body, parsed as `T`.
pub fn parse_body<T: DeserializeOwned>(body: &str) -> Result<T, EdgeError> {
    serde_json::from_str(body)
        .map_err(|err| EdgeError::OriginUnavailable(format!("origin answered bad JSON: {err}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> Result<OriginAnswer, String> {
        Ok(OriginAnswer { status, body: body.into(), retry_after: Some("7".into()) })
    }

    #[test]
    fn the_origins_answers_are_read_by_kind() {
        assert_eq!(read_answer(answer(200, "{}")).unwrap(), "{}");
        let session = SessionError::unauthorised("gone").to_json();
        assert!(matches!(read_answer(answer(440, &session)), Err(EdgeError::Session(_))));
        assert!(matches!(
            read_answer(answer(429, r#"{"error":"RATE_LIMITED","message":"slow"}"#)),
            Err(EdgeError::Refused { status: 429, retry_after: Some(_), .. })
        ));
        assert!(matches!(read_answer(answer(401, "")), Err(EdgeError::Internal(_))));
        assert!(matches!(read_answer(answer(502, "")), Err(EdgeError::OriginUnavailable(_))));
        assert!(matches!(read_answer(answer(404, "<html>")), Err(EdgeError::OriginUnavailable(_))));
        assert!(matches!(read_answer(Err("refused".into())), Err(EdgeError::OriginUnavailable(_))));
    }
}
