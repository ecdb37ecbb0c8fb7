//! How the edge hands a verified session to the app behind it, and how the app talks back.
//!
//! The edge removes every `x-latch-*` header the client sent, then adds the user id, session
//! handle and JWT payload, and a proof: an HMAC (shared app secret) over those values and the
//! time. An app checks the proof, so a request that bypassed the edge cannot claim an identity.
//!
//! In the other direction, an app's *response* may carry a login instruction (`x-latch-login`,
//! JSON `{"user_id": …, "jwt_payload": …, "session_info": …}`) or a logout instruction
//! (`x-latch-logout`); the edge acts on them and removes them before the browser sees them.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Sha256;

use crate::api::CreateSessionRequest;

/// Prefix of every header Latch owns; the edge drops client-sent ones.
pub const HEADER_PREFIX: &str = "x-latch-";
pub const USER_ID_HEADER: &str = "x-latch-user-id";
pub const SESSION_HANDLE_HEADER: &str = "x-latch-session-handle";
/// base64url of the JWT payload's JSON; absent when the session has none.
pub const JWT_PAYLOAD_HEADER: &str = "x-latch-jwt-payload";
/// `v1:<unix seconds>:<base64url HMAC-SHA256>`.
pub const PROOF_HEADER: &str = "x-latch-proof";
/// App response header: create a session (JSON [`CreateSessionRequest`]).
pub const LOGIN_HEADER: &str = "x-latch-login";
/// App response header: revoke the request's session.
pub const LOGOUT_HEADER: &str = "x-latch-logout";

/// How long a proof stays acceptable, against replays of captured upstream requests.
pub const MAX_PROOF_AGE_SECS: i64 = 60;

/// The session the edge verified.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    pub user_id: String,
    pub session_handle: String,
    pub jwt_payload: Option<Value>,
}

fn mac(secret: &[u8], timestamp: i64, user_id: &str, handle: &str, payload: &str) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    // Lengths are fixed by the separators: none of the fields may contain '\n' (user ids have
    // no control characters, handles and base64url never do).
    mac.update(
        format!("latch-identity/v1\n{timestamp}\n{user_id}\n{handle}\n{payload}").as_bytes(),
    );
    mac
}

impl Identity {
    /// The headers the edge adds to the upstream request.
    pub fn to_headers(&self, secret: &[u8], now_secs: i64) -> Vec<(&'static str, String)> {
        let payload = self
            .jwt_payload
            .as_ref()
            .map(|value| URL_SAFE_NO_PAD.encode(value.to_string()))
            .unwrap_or_default();
        let tag = mac(secret, now_secs, &self.user_id, &self.session_handle, &payload)
            .finalize()
            .into_bytes();
        let mut headers = vec![
            (USER_ID_HEADER, self.user_id.clone()),
            (SESSION_HANDLE_HEADER, self.session_handle.clone()),
            (PROOF_HEADER, format!("v1:{now_secs}:{}", URL_SAFE_NO_PAD.encode(tag))),
        ];
        if !payload.is_empty() {
            headers.push((JWT_PAYLOAD_HEADER, payload));
        }
        headers
    }

    /// Checks the edge's proof and reads the identity. `header` looks a request header up.
    pub fn from_headers<'a>(
        header: impl Fn(&str) -> Option<&'a str>,
        secret: &[u8],
        now_secs: i64,
    ) -> Result<Identity, ProofError> {
        let proof = header(PROOF_HEADER).ok_or(ProofError::Missing)?;
        let user_id = header(USER_ID_HEADER).ok_or(ProofError::Missing)?;
        let handle = header(SESSION_HANDLE_HEADER).ok_or(ProofError::Missing)?;
        let payload = header(JWT_PAYLOAD_HEADER).unwrap_or_default();
        let mut parts = proof.splitn(3, ':');
        let (Some("v1"), Some(timestamp), Some(tag)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(ProofError::Malformed);
        };
        let timestamp: i64 = timestamp.parse().map_err(|_| ProofError::Malformed)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| ProofError::Malformed)?;
        mac(secret, timestamp, user_id, handle, payload)
            .verify_slice(&tag)
            .map_err(|_| ProofError::Invalid)?;
        if (now_secs - timestamp).abs() > MAX_PROOF_AGE_SECS {
            return Err(ProofError::Stale);
        }
        let jwt_payload = if payload.is_empty() {
            None
        } else {
            let json = URL_SAFE_NO_PAD.decode(payload).map_err(|_| ProofError::Malformed)?;
            Some(serde_json::from_slice(&json).map_err(|_| ProofError::Malformed)?)
        };
        Ok(Identity { user_id: user_id.to_owned(), session_handle: handle.to_owned(), jwt_payload })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("the request carries no edge identity")]
    Missing,
    #[error("the edge identity headers are malformed")]
    Malformed,
    #[error("the edge identity proof is invalid")]
    Invalid,
    #[error("the edge identity proof is too old")]
    Stale,
}

/// Reads an app's login instruction. Unknown fields and bad user ids are refused.
pub fn parse_login_instruction(value: &str) -> Result<CreateSessionRequest, String> {
    let request: CreateSessionRequest =
        serde_json::from_str(value).map_err(|err| format!("{LOGIN_HEADER} is not valid: {err}"))?;
    crate::api::validate_user_id(&request.user_id).map_err(|err| err.to_string())?;
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;
    use std::collections::HashMap;

    const SECRET: &[u8] = b"app-secret-0123456789";

    fn identity() -> Identity {
        Identity {
            user_id: "alice".into(),
            session_handle: "h1".into(),
            jwt_payload: Some(json!({"role": "admin", "é": [1, 2]})),
        }
    }

    fn read(headers: &[(&'static str, String)], now: i64) -> Result<Identity, ProofError> {
        let map: HashMap<&str, &str> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Identity::from_headers(|name| map.get(name).copied(), SECRET, now)
    }

    #[test]
    fn identity_round_trips_through_headers() {
        let headers = identity().to_headers(SECRET, 1000);
        assert_eq!(read(&headers, 1010), Ok(identity()));
        let no_payload = Identity { jwt_payload: None, ..identity() };
        let headers = no_payload.to_headers(SECRET, 1000);
        assert!(headers.iter().all(|(name, _)| *name != JWT_PAYLOAD_HEADER));
        assert_eq!(read(&headers, 1000), Ok(no_payload));
    }

    #[test]
    fn any_change_or_a_wrong_secret_or_age_is_refused() {
        let headers = identity().to_headers(SECRET, 1000);
        for (name, value) in [
            (USER_ID_HEADER, "mallory"),
            (SESSION_HANDLE_HEADER, "h2"),
            (JWT_PAYLOAD_HEADER, "e30"),
        ] {
            let mut changed = headers.clone();
            changed.iter_mut().find(|(n, _)| *n == name).unwrap().1 = value.into();
            assert_eq!(read(&changed, 1000), Err(ProofError::Invalid), "{name}");
        }
        let map: HashMap<&str, &str> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(
            Identity::from_headers(|n| map.get(n).copied(), b"other-secret", 1000),
            Err(ProofError::Invalid)
        );
        assert_eq!(read(&headers, 1000 + MAX_PROOF_AGE_SECS + 1), Err(ProofError::Stale));
        assert_eq!(read(&[], 1000), Err(ProofError::Missing));
    }

    #[test]
    fn login_instructions_are_validated() {
        let ok = parse_login_instruction(r#"{"user_id":"bob","session_info":{"a":1}}"#).unwrap();
        assert_eq!(ok.user_id, "bob");
        assert!(parse_login_instruction(r#"{"user_id":""}"#).is_err());
        assert!(parse_login_instruction(r#"{"user":"bob"}"#).is_err());
        assert!(parse_login_instruction("not json").is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_headers_never_panic(
            proof in ".{0,120}", user in ".{0,40}", payload in ".{0,80}",
        ) {
            let map: HashMap<&str, &str> = [
                (PROOF_HEADER, proof.as_str()),
                (USER_ID_HEADER, user.as_str()),
                (SESSION_HANDLE_HEADER, "h"),
                (JWT_PAYLOAD_HEADER, payload.as_str()),
            ]
            .into_iter()
            .collect();
            prop_assert!(Identity::from_headers(|n| map.get(n).copied(), SECRET, 0).is_err());
        }
    }
}
