//! The headers between the edge and the app behind it.
//!
//! Towards the app, the edge removes every client-sent header named `x-latch-*` (in any case,
//! and with `_` for `-`, which CGI-style servers treat alike), then sets:
//! - `x-latch-assertion`: the signed identity assertion (`crate::assertion`), **the one to
//!   trust**;
//! - `x-latch-user-id` and `x-latch-session-handle`: plain convenience copies for logs and
//!   dashboards, unauthenticated. The user id is percent-encoded UTF-8 (see
//!   [`encode_header_text`]), so every id fits in a header.
//!
//! and on every forwarded request, replacing whatever the client sent under these names (and
//! dropping its `Forwarded` and `X-Real-IP`, which a client could use the same way):
//! - `x-forwarded-for`: the client's address, as Cloudflare reports it (`CF-Connecting-IP`);
//! - `x-forwarded-proto` and `x-forwarded-host`: the scheme and host the client asked for.
//!
//! Back from the app, a response may carry a login instruction (`x-latch-login`, the JSON of
//! [`CreateSessionRequest`], ASCII-only: non-ASCII characters as `\u` escapes, which
//! [`login_instruction`] writes, or the same JSON in unpadded base64url) or a logout instruction
//! (`x-latch-logout`). The edge acts on them and removes them before the browser sees them.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};

use crate::access::SessionClaims;
use crate::api::CreateSessionRequest;
use crate::percent;

/// Prefix of every header Latch owns; the edge drops client-sent ones.
pub const HEADER_PREFIX: &str = "x-latch-";
/// Convenience copy of the user id, percent-encoded; trust the assertion instead.
pub const USER_ID_HEADER: &str = "x-latch-user-id";
/// Convenience copy of the session handle; trust the assertion instead.
pub const SESSION_HANDLE_HEADER: &str = "x-latch-session-handle";
/// App response header: create a session (JSON [`CreateSessionRequest`]).
pub const LOGIN_HEADER: &str = "x-latch-login";
/// App response header: revoke the request's session.
pub const LOGOUT_HEADER: &str = "x-latch-logout";
/// The app's answer: replace the request's session's JWT payload with this JSON object (or
/// `null`), ASCII JSON or unpadded base64url of it. The edge answers the same request with the
/// re-issued access token (and `front-token`).
pub const JWT_PAYLOAD_HEADER: &str = "x-latch-jwt-payload";

/// The client's address, from `CF-Connecting-IP` (absent if the runtime gave none).
pub const FORWARDED_FOR_HEADER: &str = "x-forwarded-for";
/// `https` or `http`: the scheme the client used.
pub const FORWARDED_PROTO_HEADER: &str = "x-forwarded-proto";
/// The host (and port) the client asked for.
pub const FORWARDED_HOST_HEADER: &str = "x-forwarded-host";
/// Client-sent headers the edge never forwards, since the edge sets the forwarding ones itself:
/// with them, a client could pose as another address to an app that logs, limits or decides by
/// them.
pub const CLIENT_FORWARDING_HEADERS: [&str; 5] =
    [FORWARDED_FOR_HEADER, FORWARDED_PROTO_HEADER, FORWARDED_HOST_HEADER, "forwarded", "x-real-ip"];

/// Whether a request header name is one of Latch's, however spelled: any case, `_` for `-`.
pub fn is_latch_header(name: &str) -> bool {
    name.len() >= HEADER_PREFIX.len()
        && name.as_bytes()[..HEADER_PREFIX.len()].iter().zip(HEADER_PREFIX.as_bytes()).all(
            |(&byte, &expected)| match expected {
                b'-' => byte == b'-' || byte == b'_',
                _ => byte.to_ascii_lowercase() == expected,
            },
        )
}

/// The convenience headers for a verified session.
pub fn convenience_headers(claims: &SessionClaims) -> [(&'static str, String); 2] {
    [
        (USER_ID_HEADER, encode_header_text(&claims.user_id().as_text())),
        (SESSION_HANDLE_HEADER, claims.sid.clone()),
    ]
}

/// Percent-encodes text for a header value: bytes outside visible ASCII, and `%` itself, become
/// `%XX`. ASCII ids without `%` read unchanged; "Zoë" becomes `Zo%C3%AB`. (A space, inside an
/// id, stays: ids never start or end with one.)
pub fn encode_header_text(text: &str) -> String {
    percent::encode(text, |byte| (byte.is_ascii_graphic() && byte != b'%') || byte == b' ')
}

/// The inverse of [`encode_header_text`]; `None` if the value is not its output.
pub fn decode_header_text(value: &str) -> Option<String> {
    percent::decode(value)
}

/// Writes a login instruction as ASCII-only JSON (`\u` escapes), valid in any HTTP server.
pub fn login_instruction(request: &CreateSessionRequest) -> String {
    let json = serde_json::to_string(request).expect("a request always serialises");
    let mut ascii = String::with_capacity(json.len());
    for ch in json.chars() {
        if ch.is_ascii() {
            ascii.push(ch);
        } else {
            let mut units = [0u16; 2];
            for unit in ch.encode_utf16(&mut units) {
                ascii.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    ascii
}

/// An instruction's header value as the runtime read it, refused if it holds U+FFFD: the runtime
/// reads header bytes as UTF-8 and puts U+FFFD for bytes that are not, as when an app writes
/// "Zoë" raw (Node's `setHeader` sends Latin-1). Taken as it stands, the user would be signed in
/// as "Zo\u{fffd}"; the app's developer is told instead. A `\ufffd` escape in the JSON still
/// passes.
fn utf8_header_value<'a>(name: &str, value: &'a str) -> Result<&'a str, String> {
    if value.contains(char::REPLACEMENT_CHARACTER) {
        return Err(format!(
            "{name} holds bytes that are not UTF-8 (a non-ASCII character written raw, as \
             Latin-1?): write non-ASCII characters as \\u escapes (\"Zo\\u00eb\"), or send \
             base64url JSON"
        ));
    }
    Ok(value)
}

/// Reads an app's login instruction: JSON, or unpadded base64url of that JSON. Unknown fields
/// and bad user ids are refused, with the reason.
pub fn parse_login_instruction(value: &str) -> Result<CreateSessionRequest, String> {
    let value = utf8_header_value(LOGIN_HEADER, value)?.trim();
    let json = if value.starts_with('{') {
        value.as_bytes().to_vec()
    } else {
        URL_SAFE_NO_PAD
            .decode(value)
            .map_err(|_| format!("{LOGIN_HEADER} is neither JSON nor base64url JSON"))?
    };
    serde_json::from_slice(&json).map_err(|err| format!("{LOGIN_HEADER} is not valid: {err}"))
}

/// Writes a JWT payload instruction, base64url so that any payload is an ASCII header value.
pub fn jwt_payload_instruction(payload: Option<&serde_json::Value>) -> String {
    let text = payload.map_or_else(|| "null".to_owned(), serde_json::Value::to_string);
    URL_SAFE_NO_PAD.encode(text)
}

/// Reads a JWT payload instruction: a JSON object or `null`, as JSON or base64url JSON.
pub fn parse_jwt_payload_instruction(value: &str) -> Result<Option<serde_json::Value>, String> {
    let value = utf8_header_value(JWT_PAYLOAD_HEADER, value)?.trim();
    let json = if value.starts_with('{') || value == "null" {
        value.as_bytes().to_vec()
    } else {
        URL_SAFE_NO_PAD
            .decode(value)
            .map_err(|_| format!("{JWT_PAYLOAD_HEADER} is neither JSON nor base64url JSON"))?
    };
    match serde_json::from_slice(&json) {
        Ok(serde_json::Value::Null) => Ok(None),
        Ok(object @ serde_json::Value::Object(_)) => Ok(Some(object)),
        Ok(_) => Err(format!("{JWT_PAYLOAD_HEADER} must be a JSON object or null")),
        Err(err) => Err(format!("{JWT_PAYLOAD_HEADER} is not valid: {err}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::UserId;

    #[test]
    fn an_instruction_written_as_latin1_is_refused_rather_than_signing_in_a_mangled_user() {
        // What the runtime hands over for `{"user_id":"Zoë"}` sent with ë as the byte 0xEB.
        let mangled = "{\"user_id\":\"Zo\u{fffd}\"}";
        let err = parse_login_instruction(mangled).unwrap_err();
        assert!(err.contains("not UTF-8") && err.contains("\\u00eb"), "{err}");
        let err = parse_jwt_payload_instruction("{\"name\":\"Zo\u{fffd}\"}").unwrap_err();
        assert!(err.contains(JWT_PAYLOAD_HEADER), "{err}");
        // Raw UTF-8 the runtime read as such, and an escaped U+FFFD, are the app's to send.
        assert!(parse_login_instruction("{\"user_id\":\"Zoë\"}").is_ok());
        let escaped = parse_login_instruction(r#"{"user_id":"\ufffd"}"#).unwrap();
        assert_eq!(escaped.user_id, crate::api::UserId::Text("\u{fffd}".into()));
    }

    #[test]
    fn a_jwt_payload_instruction_is_an_object_or_null_as_json_or_base64url() {
        let object = serde_json::json!({"role": ["admin"], "name": "Zoë"});
        assert_eq!(
            parse_jwt_payload_instruction(r#" {"role":["admin"],"name":"Zo\u00eb"} "#),
            Ok(Some(object.clone()))
        );
        let encoded = URL_SAFE_NO_PAD.encode(object.to_string());
        assert_eq!(parse_jwt_payload_instruction(&encoded), Ok(Some(object.clone())));
        let written = jwt_payload_instruction(Some(&object));
        assert_eq!(parse_jwt_payload_instruction(&written), Ok(Some(object)));
        assert_eq!(parse_jwt_payload_instruction(&jwt_payload_instruction(None)), Ok(None));
        assert_eq!(parse_jwt_payload_instruction("null"), Ok(None));
        // Ten thousand `[` or `{`: serde_json's nesting limit, an error, never a crash.
        let deep_array = "[".repeat(10_000);
        let deep_object = "{\"a\":".repeat(10_000);
        for bad in ["[1]", "\"admin\"", "7", "{not json", "!!", &deep_array, &deep_object] {
            assert!(parse_jwt_payload_instruction(bad).is_err(), "{bad}");
        }
    }
    use proptest::prelude::*;

    #[test]
    fn a_login_instruction_whose_payload_is_not_an_object_is_refused_by_name() {
        for payload in [r#""notanobject""#, "7", "[1]", "true"] {
            let text = format!(r#"{{"user_id":"zoë","jwt_payload":{payload}}}"#);
            let err = parse_login_instruction(&text).unwrap_err();
            assert!(err.contains("jwt_payload must be a JSON object"), "{payload}: {err}");
        }
        for payload in ["null", r#"{"role":"admin"}"#] {
            let text = format!(r#"{{"user_id":"zoë","jwt_payload":{payload}}}"#);
            assert!(parse_login_instruction(&text).is_ok(), "{payload}");
        }
        assert_eq!(parse_login_instruction(r#"{"user_id":"z"}"#).unwrap().jwt_payload, None);
    }

    #[test]
    fn every_spelling_of_a_latch_header_is_recognised() {
        for name in ["x-latch-user-id", "X-Latch-Assertion", "x_latch_user_id", "X_LATCH-proof"] {
            assert!(is_latch_header(name), "{name}");
        }
        for name in ["x-latch", "x-latchy-thing", "accept", "xx-latch-a", ""] {
            assert!(!is_latch_header(name), "{name}");
        }
    }

    #[test]
    fn login_instructions_are_ascii_and_read_back_in_both_forms() {
        let request = CreateSessionRequest {
            user_id: UserId::Text("Zoë 🚀".into()),
            jwt_payload: Some(serde_json::json!({"name": "Zoë"})),
            session_info: None,
            device: None,
        };
        let header = login_instruction(&request);
        assert!(header.is_ascii(), "{header}");
        assert_eq!(parse_login_instruction(&header).unwrap(), request);
        let base64 = URL_SAFE_NO_PAD.encode(serde_json::to_string(&request).unwrap());
        assert_eq!(parse_login_instruction(&base64).unwrap(), request);
        let numeric = parse_login_instruction(r#"{"user_id":7}"#).unwrap();
        assert_eq!(numeric.user_id, UserId::Number(7));
    }

    #[test]
    fn bad_login_instructions_say_why() {
        let err = parse_login_instruction(r#"{"user_id":" bob"}"#).unwrap_err();
        assert!(err.contains("whitespace"), "{err}");
        assert!(parse_login_instruction(r#"{"user_id":""}"#).is_err());
        assert!(parse_login_instruction(r#"{"user":"bob"}"#).is_err());
        assert!(parse_login_instruction("not json!").unwrap_err().contains("base64url"));
    }

    proptest! {
        #[test]
        fn header_text_round_trips_and_is_visible_ascii(text in "\\PC{0,40}") {
            let encoded = encode_header_text(&text);
            prop_assert!(encoded.bytes().all(|b| b.is_ascii_graphic() || b == b' '));
            prop_assert_eq!(decode_header_text(&encoded), Some(text));
        }

        #[test]
        fn arbitrary_login_instructions_never_panic(value in ".{0,200}") {
            let _ = parse_login_instruction(&value);
        }
    }
}
