//! The two generations of SuperTokens' frontend SDK that Latch answers, and what differs between
//! them. `supertokens-website` 4.x (the seed's protocol, [`crate::protocol`]) learns of a session
//! from the `id-refresh-token` header and refreshes on the deployment's session-expired status
//! (440 by default). The current SDKs (`supertokens-website` 20.x, `supertokens-web-js`,
//! `supertokens-auth-react`, `supertokens-react-native`) send `st-auth-mode` and `rid` on every
//! request they make, learn of a session from the `front-token` header, refresh on 401, and may
//! carry the tokens in headers instead of cookies (header mode, for mobile apps and cross-site
//! APIs).
//!
//! Cookie-mode answers carry both generations' headers (each SDK ignores the other's), so a
//! session made by a form post or a plain `fetch` is picked up by either SDK; only the statuses,
//! the error bodies and header mode depend on who asks.

use base64::Engine as _;
use serde::Serialize;
use serde_json::Value;

use crate::api::SessionView;
use crate::error::{ErrorKind, SessionError};

/// `st-auth-mode`: sent by the current SDKs on every request, `cookie` or `header`.
pub const AUTH_MODE_HEADER: &str = "st-auth-mode";
/// `rid`: sent by the current SDKs on every request to their API. A custom header, so a
/// cross-site form cannot send it and a cross-site script needs a CORS preflight: the proof
/// of [`crate::engine::CsrfProof::CustomHeader`].
pub const RID_HEADER: &str = "rid";
/// The session's summary for the current SDKs: standard base64 of UTF-8 JSON
/// `{"uid", "ate", "up"}`, or [`FRONT_TOKEN_REMOVE`].
pub const FRONT_TOKEN_HEADER: &str = "front-token";
pub const FRONT_TOKEN_REMOVE: &str = "remove";
/// Header mode's tokens, on answers that create or refresh a session (empty to clear).
pub const ACCESS_TOKEN_HEADER: &str = "st-access-token";
pub const REFRESH_TOKEN_HEADER: &str = "st-refresh-token";
/// The current SDKs' `sessionExpiredStatusCode`.
pub const SESSION_EXPIRED_STATUS: u16 = 401;
/// The current SDKs' `invalidClaimStatusCode`.
pub const INVALID_CLAIM_STATUS: u16 = 403;
/// Where the current SDKs sign out, under their `apiBasePath`; their refresh endpoint is
/// `{apiBasePath}/session/refresh`.
pub const SIGNOUT_SUFFIX: &str = "/signout";
pub const REFRESH_SUFFIX: &str = "/session/refresh";

/// How a session's tokens travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TokenTransfer {
    /// HttpOnly cookies: browsers.
    #[default]
    Cookie,
    /// `st-access-token` / `st-refresh-token` response headers, sent back as
    /// `Authorization: Bearer`.
    Header,
}

/// Which SDK generation a request speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    /// `supertokens-website` 4.x, a page load, or a client without an SDK: the seed's protocol.
    #[default]
    Website4,
    /// A current SDK, with the transfer it asked for (which a new session gets; a refresh or a
    /// re-issued token keeps the transfer its token came in, whatever the request asks).
    Current(TokenTransfer),
}

impl Dialect {
    /// From the request's `st-auth-mode` header, which a current SDK sends on every request
    /// it makes and 4.x never does (`rid` is no sign: it is a common name for a request id).
    /// `header` asks for header mode; anything else is cookie mode.
    pub fn of_request(auth_mode: Option<&str>) -> Dialect {
        match auth_mode {
            Some(mode) if mode.trim().eq_ignore_ascii_case("header") => {
                Dialect::Current(TokenTransfer::Header)
            }
            Some(_) => Dialect::Current(TokenTransfer::Cookie),
            None => Dialect::Website4,
        }
    }

    pub fn is_current(self) -> bool {
        matches!(self, Dialect::Current(_))
    }

    pub fn transfer(self) -> TokenTransfer {
        match self {
            Dialect::Current(transfer) => transfer,
            Dialect::Website4 => TokenTransfer::Cookie,
        }
    }

    /// The status of a session error: the deployment's for 4.x (`website4_status`), 401 for
    /// the current SDKs; GENERAL_ERROR is 500 for both.
    pub fn status(self, kind: ErrorKind, website4_status: u16) -> u16 {
        match self {
            Dialect::Website4 => kind.status(website4_status),
            Dialect::Current(_) => kind.status(SESSION_EXPIRED_STATUS),
        }
    }

    /// The JSON body of a session error: Latch's for 4.x; for the current SDKs, the `message`
    /// supertokens-node sends (`try refresh token`, `unauthorised`, `token theft detected`)
    /// with Latch's fields beside it.
    pub fn error_body(self, err: &SessionError) -> String {
        if self == Dialect::Website4 {
            return err.to_json();
        }
        let message = match err.kind() {
            ErrorKind::TryRefreshToken => "try refresh token",
            ErrorKind::Unauthorised => "unauthorised",
            ErrorKind::TokenTheftDetected => "token theft detected",
            ErrorKind::GeneralError => err.message.as_str(),
        };
        serde_json::json!({
            "message": message,
            "error": err.kind(),
            "reason": err.message,
            "theft": err.theft,
        })
        .to_string()
    }
}

/// The `front-token` header's content: who the session is for, when its access token expires,
/// and the app's JWT payload (what `getAccessTokenPayloadSecurely` returns).
#[derive(Debug, Serialize)]
struct FrontToken<'a> {
    uid: &'a str,
    /// The access token's expiry, in milliseconds since the epoch.
    ate: i64,
    up: &'a Value,
}

/// The `front-token` value for a session whose access token was just issued, expiring at
/// `access_token_expires_at` (milliseconds since the epoch).
pub fn front_token(session: &SessionView, access_token_expires_at: i64) -> String {
    let empty = Value::Object(serde_json::Map::new());
    let token = FrontToken {
        uid: &session.user_id.as_text(),
        ate: access_token_expires_at,
        up: session.jwt_payload.as_ref().filter(|payload| payload.is_object()).unwrap_or(&empty),
    };
    let json = serde_json::to_vec(&token).expect("a front token always serialises");
    base64::engine::general_purpose::STANDARD.encode(json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ExpiringToken, SessionTokens};
    use crate::user_id::UserId;
    use proptest::prelude::*;

    fn tokens() -> SessionTokens {
        SessionTokens {
            access_token: ExpiringToken { value: "a.b.c".into(), expires_at: 1_800_000_000_123 },
            refresh_token: ExpiringToken { value: "h.s".into(), expires_at: 1_808_640_000_000 },
            id_refresh_token: ExpiringToken { value: "irt".into(), expires_at: 1_808_640_000_000 },
            anti_csrf_token: None,
        }
    }

    /// What the SDK does with the header: `JSON.parse(decodeURIComponent(escape(atob(v))))`,
    /// that is standard base64 of UTF-8 JSON.
    fn as_the_sdk_reads_it(value: &str) -> Value {
        let bytes =
            base64::engine::general_purpose::STANDARD.decode(value).expect("standard base64");
        serde_json::from_slice(&bytes).expect("UTF-8 JSON")
    }

    #[test]
    fn the_front_token_names_the_user_the_expiry_in_ms_and_the_payload() {
        let session = SessionView {
            handle: "h".into(),
            user_id: UserId::text("Zoë 🚀").unwrap(),
            jwt_payload: Some(serde_json::json!({"role": ["admin"], "st-ev": {"v": true}})),
        };
        let read = as_the_sdk_reads_it(&front_token(&session, tokens().access_token.expires_at));
        assert_eq!(
            read,
            serde_json::json!({
                "uid": "Zoë 🚀", "ate": 1_800_000_000_123_i64,
                "up": {"role": ["admin"], "st-ev": {"v": true}},
            })
        );
    }

    #[test]
    fn a_numeric_user_id_is_its_text_and_a_missing_payload_an_empty_object() {
        let session = SessionView {
            handle: "h".into(),
            user_id: UserId::number(7).unwrap(),
            jwt_payload: None,
        };
        let read = as_the_sdk_reads_it(&front_token(&session, tokens().access_token.expires_at));
        assert_eq!(read["uid"], "7");
        assert_eq!(read["up"], serde_json::json!({}));
    }

    #[test]
    fn the_current_sdk_is_known_by_its_auth_mode_header_and_asks_for_its_transfer() {
        assert_eq!(Dialect::of_request(None), Dialect::Website4);
        assert_eq!(Dialect::of_request(Some("cookie")), Dialect::Current(TokenTransfer::Cookie));
        assert_eq!(Dialect::of_request(Some("Header")), Dialect::Current(TokenTransfer::Header));
        assert_eq!(Dialect::of_request(Some("other")), Dialect::Current(TokenTransfer::Cookie));
    }

    #[test]
    fn the_current_sdk_refreshes_on_401_and_reads_supertokens_messages() {
        let current = Dialect::Current(TokenTransfer::Cookie);
        let expired = SessionError::try_refresh("access token expired");
        assert_eq!(current.status(expired.kind(), 440), 401);
        assert_eq!(Dialect::Website4.status(expired.kind(), 440), 440);
        assert_eq!(current.status(ErrorKind::GeneralError, 440), 500);
        let body: Value = serde_json::from_str(&current.error_body(&expired)).unwrap();
        assert_eq!(body["message"], "try refresh token");
        assert_eq!(body["error"], "TRY_REFRESH_TOKEN");
        let body: Value =
            serde_json::from_str(&current.error_body(&SessionError::unauthorised("gone"))).unwrap();
        assert_eq!(body["message"], "unauthorised");
        assert_eq!(Dialect::Website4.error_body(&expired), expired.to_json());
    }

    proptest! {
        #[test]
        fn any_user_and_payload_make_a_front_token_the_sdk_can_read(
            user in "\\PC{1,40}", key in "[a-z-]{1,10}", value in "\\PC{0,40}",
        ) {
            let Ok(user_id) = UserId::text(user.clone()) else { return Ok(()) };
            let session = SessionView {
                handle: "h".into(),
                user_id,
                jwt_payload: Some(serde_json::json!({ key.clone(): value.clone() })),
            };
            let read = as_the_sdk_reads_it(&front_token(&session, tokens().access_token.expires_at));
            prop_assert_eq!(&read["uid"], &Value::String(user));
            prop_assert_eq!(&read["up"][&key], &Value::String(value));
        }
    }
}
