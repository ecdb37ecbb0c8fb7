//! Request and response bodies of the origin's HTTP API, and its paths. Times are milliseconds
//! since the Unix epoch, the unit the frontend SDK uses.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::protocol::ResponseHeader;
pub use crate::user_id::{UserId, UserIdError, UserIdType, MAX_USER_ID_LEN};

/// Paths of the origin's API.
pub mod paths {
    pub const SESSIONS: &str = "/v1/sessions";
    pub const REFRESH: &str = "/v1/sessions/refresh";
    pub const VERIFY: &str = "/v1/sessions/verify";
    /// `/v1/sessions/{handle}`: DELETE revokes.
    pub const SESSION: &str = "/v1/sessions/{handle}";
    /// `/v1/sessions/{handle}/info`: GET reads, PUT overwrites.
    pub const SESSION_INFO: &str = "/v1/sessions/{handle}/info";
    /// `/v1/sessions/{handle}/jwt-payload`: PUT replaces the JWT payload and re-issues the
    /// access token the client holds with it.
    pub const SESSION_JWT_PAYLOAD: &str = "/v1/sessions/{handle}/jwt-payload";
    /// `/v1/sessions/{handle}/used`: POST reports an access token of a refresh generation seen
    /// in use (by the edge or a Session object verifying directly).
    pub const SESSION_USED: &str = "/v1/sessions/{handle}/used";
    /// `/v1/users/{user_id}/sessions`: GET lists handles, DELETE revokes all.
    pub const USER_SESSIONS: &str = "/v1/users/{user_id}/sessions";
    /// `/v1/users/{user_id}/devices`: GET lists the user's sessions with their devices, newest
    /// first; DELETE revokes all of them but `?except={handle}` ("sign out other devices").
    pub const USER_DEVICES: &str = "/v1/users/{user_id}/devices";
    /// `/v1/users/{user_id}/devices/{handle}`: DELETE revokes that session, if it is the user's.
    pub const USER_DEVICE: &str = "/v1/users/{user_id}/devices/{handle}";
    pub const JWKS: &str = "/.well-known/jwks.json";
    /// The settings edge and origin share, with the keys (`crate::settings::SharedSettings`).
    pub const SETTINGS: &str = "/.well-known/latch-settings.json";
    /// POST: start signing with a new key as soon as the JWKS publish lead allows.
    pub const ROTATE_KEYS: &str = "/v1/keys/rotate";
    pub const OPENAPI: &str = "/openapi.json";
    pub const HEALTH: &str = "/healthz";
    pub const READY: &str = "/readyz";
    pub const METRICS: &str = "/metrics";
    /// GET: which credential the bearer token is (`super::CallerAnswer`), so a deployment can
    /// check its secrets are wired the right way round before it serves anyone.
    pub const CALLER: &str = "/v1/caller";
    /// The edge's internal endpoint the origin posts revocations to when KV's REST API is not
    /// configured.
    pub const EDGE_BLACKLIST: &str = "/__latch/blacklist";

    /// [`SESSION`] for one session.
    pub fn session(handle: &str) -> String {
        format!("/v1/sessions/{}", encode_segment(handle))
    }

    /// [`SESSION_INFO`] for one session.
    pub fn session_info(handle: &str) -> String {
        format!("/v1/sessions/{}/info", encode_segment(handle))
    }

    /// [`SESSION_JWT_PAYLOAD`] for one session.
    pub fn session_jwt_payload(handle: &str) -> String {
        format!("/v1/sessions/{}/jwt-payload", encode_segment(handle))
    }

    /// [`SESSION_USED`] for one session.
    pub fn session_used(handle: &str) -> String {
        format!("/v1/sessions/{}/used", encode_segment(handle))
    }

    /// [`USER_SESSIONS`] for one user: the id's text, percent-encoded, and for a numeric id
    /// `?user_id_type=number` (`7` and `"7"` are different users).
    pub fn user_sessions(user_id: &super::UserId) -> String {
        user_path(user_id, "sessions", &[])
    }

    /// [`USER_DEVICES`] for one user, as [`user_sessions`]; `query` pairs are appended
    /// (percent-encoded).
    pub fn user_devices(user_id: &super::UserId, query: &[(&str, &str)]) -> String {
        user_path(user_id, "devices", query)
    }

    /// [`USER_DEVICE`] for one session of one user, `query` as for [`user_devices`].
    pub fn user_device(user_id: &super::UserId, handle: &str, query: &[(&str, &str)]) -> String {
        user_path(user_id, &format!("devices/{}", encode_segment(handle)), query)
    }

    fn user_path(user_id: &super::UserId, rest: &str, query: &[(&str, &str)]) -> String {
        let mut path = format!("/v1/users/{}/{rest}", encode_segment(&user_id.as_text()));
        let number =
            matches!(user_id, super::UserId::Number(_)).then_some(("user_id_type", "number"));
        for (at, (name, value)) in number.iter().chain(query).enumerate() {
            path.push(if at == 0 { '?' } else { '&' });
            path.push_str(name);
            path.push('=');
            path.push_str(&encode_segment(value));
        }
        path
    }

    /// Percent-encodes one path segment (RFC 3986 unreserved characters pass unchanged).
    fn encode_segment(segment: &str) -> String {
        crate::percent::encode(segment, crate::percent::unreserved)
    }
}

/// Who is calling the origin's API: an app backend or admin (the API key) or the edge (the edge
/// secret).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Caller {
    App,
    Edge,
}

/// `GET /v1/caller`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallerAnswer {
    /// The credential presented: `edge` for the edge secret, `app` for the API key.
    pub caller: Caller,
}

/// The end client's IP address, which the edge (or an app backend) sends with refresh and session
/// creation so that the origin's per-address rate limits apply to the client, not the caller.
pub const CLIENT_ADDRESS_HEADER: &str = "x-latch-client-address";

/// Largest request body the origin accepts, and the edge forwards to it (session info and JWT
/// payloads included).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// `POST /v1/sessions`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateSessionRequest {
    /// A JSON string or a whole JSON number, given back with its type.
    pub user_id: UserId,
    /// A JSON object (or absent): it becomes the access token's payload, which every reader
    /// (the assertion's `pld`, the Session object) takes to be an object.
    #[serde(default, deserialize_with = "object_or_absent")]
    pub jwt_payload: Option<Value>,
    #[serde(default)]
    pub session_info: Option<Value>,
    /// What the client said of itself, for "your devices" (`DeviceReport`); the origin stores
    /// what its settings allow. The client's address comes in `x-latch-client-address`.
    #[serde(default)]
    pub device: Option<DeviceReport>,
}

/// The longest `User-Agent` a [`DeviceReport`] carries (the origin parses no longer one; real
/// ones are a few hundred bytes).
pub const MAX_USER_AGENT_LEN: usize = 1024;

/// What a client says of itself when a session is made: the edge sends the request's
/// `User-Agent` and Cloudflare's `request.cf` place. Never trusted for a security decision:
/// any of it can be made up by the client (the place only by its network).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceReport {
    #[serde(default)]
    pub user_agent: Option<String>,
    /// ISO 3166-1 alpha-2 country code (`cf.country`).
    #[serde(default)]
    pub country: Option<String>,
    /// `cf.region`, e.g. `Île-de-France`.
    #[serde(default)]
    pub region: Option<String>,
    /// `cf.city`.
    #[serde(default)]
    pub city: Option<String>,
}

/// A session as its person sees it on a "your devices" page.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceSession {
    pub handle: String,
    /// Whether this is the session that asked (through the edge, or `?current=`).
    pub current: bool,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    /// The latest refresh, or first use of a new access token: at most one access-token
    /// lifetime old. Milliseconds since the Unix epoch.
    pub last_seen_at: i64,
    /// The browser with its major version, e.g. `Chrome 131`.
    pub browser: Option<String>,
    /// e.g. `Windows 10`, `iPhone`, `Android`.
    pub os: Option<String>,
    /// `pc`, `smartphone`, `mobilephone`, `appliance` or `crawler`.
    pub device_kind: Option<String>,
    /// The client's network: its address truncated (e.g. `203.0.113.0/24`).
    pub network: Option<String>,
    pub country: Option<String>,
    pub region: Option<String>,
    pub city: Option<String>,
}

/// The most sessions one "your devices" list shows: the newest, and the session asking.
pub const MAX_DEVICES_LISTED: usize = 100;

/// Answer to `GET /v1/users/{user_id}/devices`: the [`MAX_DEVICES_LISTED`] newest sessions,
/// newest first, and the session asking (`current`) even when it is older than those.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceList {
    pub sessions: Vec<DeviceSession>,
    /// The user has older sessions than those listed (`DELETE …/devices?except=` signs them
    /// out with the rest).
    #[serde(default)]
    pub more: bool,
}

/// `PUT /v1/sessions/{handle}/jwt-payload`: the seed era's `updateJWTPayload` (today's
/// `mergeIntoAccessTokenPayload`, with the merge done by the caller).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtPayloadUpdate {
    /// The access token the client holds: it must be valid and of this session. It is
    /// re-issued with the new payload (same session, refresh generation, anti-CSRF token and
    /// expiry), so the client's very next request carries it.
    pub access_token: String,
    /// The new payload, a JSON object (or `null` for none); it replaces the old one in every
    /// token from now on.
    #[serde(default, deserialize_with = "object_or_absent")]
    pub jwt_payload: Option<Value>,
}

/// A session's access token, re-issued.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReissuedAccessToken {
    pub session: SessionView,
    pub access_token: ExpiringToken,
    /// What to send a browser (the `sAccessToken` cookie and `front-token`).
    pub response_headers: Vec<ResponseHeader>,
}

/// `null` or absent is no payload; an object is kept; anything else is refused by name.
fn object_or_absent<'de, D: serde::Deserializer<'de>>(from: D) -> Result<Option<Value>, D::Error> {
    use serde::de::Error;
    match Option::<Value>::deserialize(from)? {
        None | Some(Value::Null) => Ok(None),
        Some(object @ Value::Object(_)) => Ok(Some(object)),
        Some(other) => {
            let kind = match other {
                Value::Bool(_) => "a boolean",
                Value::Number(_) => "a number",
                Value::String(_) => "a string",
                _ => "an array",
            };
            Err(D::Error::custom(format!("jwt_payload must be a JSON object, not {kind}")))
        }
    }
}

/// A token and the moment it stops being valid.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpiringToken {
    pub value: String,
    /// Milliseconds since the Unix epoch.
    pub expires_at: i64,
}

/// Everything a browser needs to hold a session.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionTokens {
    pub access_token: ExpiringToken,
    pub refresh_token: ExpiringToken,
    pub id_refresh_token: ExpiringToken,
    #[serde(default)]
    pub anti_csrf_token: Option<String>,
}

/// The session a token belongs to.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionView {
    pub handle: String,
    pub user_id: UserId,
    #[serde(default)]
    pub jwt_payload: Option<Value>,
}

/// Answer to create and refresh: the session, its tokens, and the exact headers to send.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IssuedSession {
    pub session: SessionView,
    pub tokens: SessionTokens,
    /// `Set-Cookie` and SDK headers, in order, to append to the browser's response.
    pub response_headers: Vec<ResponseHeader>,
}

/// `POST /v1/sessions/refresh`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// `POST /v1/sessions/{handle}/used`: an access token of refresh generation `generation` (its
/// `rgen` claim) was seen in use. Idempotent; reporting an old generation changes nothing.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageReport {
    pub generation: u64,
}

/// `POST /v1/sessions/verify`: the full check, including that the session still exists.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    pub access_token: String,
    /// The `anti-csrf` header the client sent, if any.
    #[serde(default)]
    pub anti_csrf_token: Option<String>,
    /// Whether to enforce the anti-CSRF check (as the seed's `enableCsrfProtection`).
    #[serde(default)]
    pub enforce_anti_csrf: bool,
    /// Whether the client sent the `rid` header: the proof in custom-header mode
    /// (`LATCH_ANTI_CSRF_PROOF=custom_header`), ignored otherwise.
    #[serde(default)]
    pub rid_header: bool,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifyResponse {
    pub session: SessionView,
    /// Milliseconds since the Unix epoch.
    pub access_token_expires_at: i64,
}

/// Body of `GET` and `PUT /v1/sessions/{handle}/info`. `PUT` overwrites the whole value.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionInfo {
    #[serde(default)]
    pub session_info: Option<Value>,
}

/// Answer to `DELETE /v1/sessions/{handle}`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokeResponse {
    /// False when there was no such session (already revoked or never existed).
    pub revoked: bool,
    /// Headers that clear the session from the browser, for an app relaying a logout.
    pub response_headers: Vec<ResponseHeader>,
}

/// Answer to `GET` and `DELETE /v1/users/{user_id}/sessions`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionHandles {
    pub handles: Vec<String>,
}

/// One revoked session, for the edge's blacklist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlacklistEntry {
    pub session_handle: String,
    /// How long the entry must live: at least as long as any access token of the session.
    pub ttl_seconds: u64,
}

/// Body of the edge's internal blacklist endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlacklistRequest {
    pub entries: Vec<BlacklistEntry>,
}

/// How long a revoked session's blacklist entry lives: past the expiry of every access token
/// minted before the revocation (their lifetime plus a margin for clock skew), and at least
/// KV's minimum TTL of 60 s.
pub fn blacklist_ttl_secs(access_token_lifetime_secs: u64) -> u64 {
    (access_token_lifetime_secs + 10).max(60)
}

/// The KV key under which the edge looks up a revoked session.
pub fn blacklist_key(session_handle: &str) -> String {
    format!("revoked:{session_handle}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_built_from_their_templates_with_encoded_segments() {
        assert_eq!(paths::session("h1"), paths::SESSION.replace("{handle}", "h1"));
        assert_eq!(paths::session_info("h1"), paths::SESSION_INFO.replace("{handle}", "h1"));
        assert_eq!(paths::user_sessions(&UserId::Text("alice".into())), "/v1/users/alice/sessions");
        assert_eq!(
            paths::user_sessions(&UserId::Text("a b/c?d".into())),
            "/v1/users/a%20b%2Fc%3Fd/sessions"
        );
        assert_eq!(paths::user_sessions(&UserId::Text("ü".into())), "/v1/users/%C3%BC/sessions");
        assert_eq!(
            paths::user_sessions(&UserId::Number(7)),
            "/v1/users/7/sessions?user_id_type=number"
        );
        let zoe = UserId::Text("Zoë".into());
        assert_eq!(
            paths::user_devices(&zoe, &[("current", "h 1")]),
            "/v1/users/Zo%C3%AB/devices?current=h%201"
        );
        assert_eq!(
            paths::user_device(&UserId::Number(7), "h1", &[("current", "h2")]),
            "/v1/users/7/devices/h1?user_id_type=number&current=h2"
        );
        assert_eq!(paths::user_device(&zoe, "h1", &[]), "/v1/users/Zo%C3%AB/devices/h1");
    }

    #[test]
    fn requests_with_unknown_fields_are_refused() {
        let ok: CreateSessionRequest =
            serde_json::from_str(r#"{"user_id":"u","jwt_payload":{"r":1}}"#).unwrap();
        assert_eq!(ok.session_info, None);
        assert!(
            serde_json::from_str::<CreateSessionRequest>(r#"{"user_id":"u","userid":1}"#).is_err()
        );
        let numeric: CreateSessionRequest = serde_json::from_str(r#"{"user_id":7}"#).unwrap();
        assert_eq!(numeric.user_id, UserId::Number(7));
        let err =
            serde_json::from_str::<CreateSessionRequest>(r#"{"user_id":" bob"}"#).unwrap_err();
        assert!(err.to_string().contains("whitespace"), "{err}");
    }
}
