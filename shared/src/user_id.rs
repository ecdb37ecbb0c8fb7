//! User ids: what the app chose, given back with the type it came in. As in the seed, an id is
//! a JSON string or a JSON number, and `7` and `"7"` are different users.
//!
//! Strings may hold any Unicode text ("Zoë 🚀") but no control characters and no surrounding
//! whitespace (HTTP trims it, so such an id could not survive a header). Numbers must be whole
//! and within ±(2⁵³−1), so that every JSON reader, JavaScript's included, gives the same id back.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// Longest string user id accepted, in bytes.
pub const MAX_USER_ID_LEN: usize = 255;

/// Largest magnitude of a numeric user id: JavaScript's `Number.MAX_SAFE_INTEGER`.
pub const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// A validated user id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UserId {
    Text(String),
    Number(i64),
}

/// Why a user id was refused; the message is the 400's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserIdError {
    #[error("user_id must not be empty")]
    Empty,
    #[error("user_id must be at most {MAX_USER_ID_LEN} bytes of UTF-8")]
    TooLong,
    #[error("user_id must not contain control characters")]
    ControlCharacter,
    #[error("user_id must not start or end with whitespace (HTTP would trim it)")]
    SurroundingWhitespace,
    #[error("a numeric user_id must be a whole number between -{MAX_SAFE_INTEGER} and {MAX_SAFE_INTEGER}")]
    UnsafeNumber,
    #[error("user_id must be a JSON string or a JSON number")]
    WrongType,
}

impl UserId {
    /// A string user id, validated.
    pub fn text(id: impl Into<String>) -> Result<UserId, UserIdError> {
        let id = id.into();
        if id.is_empty() {
            Err(UserIdError::Empty)
        } else if id.len() > MAX_USER_ID_LEN {
            Err(UserIdError::TooLong)
        } else if id.chars().any(char::is_control) {
            Err(UserIdError::ControlCharacter)
        } else if id.starts_with(char::is_whitespace) || id.ends_with(char::is_whitespace) {
            Err(UserIdError::SurroundingWhitespace)
        } else {
            Ok(UserId::Text(id))
        }
    }

    /// A numeric user id, validated.
    pub fn number(id: i64) -> Result<UserId, UserIdError> {
        if (-MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER).contains(&id) {
            Ok(UserId::Number(id))
        } else {
            Err(UserIdError::UnsafeNumber)
        }
    }

    /// Reads a user id from its JSON value.
    pub fn from_json(value: &serde_json::Value) -> Result<UserId, UserIdError> {
        match value {
            serde_json::Value::String(text) => UserId::text(text.as_str()),
            serde_json::Value::Number(number) => {
                number.as_i64().ok_or(UserIdError::UnsafeNumber).and_then(UserId::number)
            }
            _ => Err(UserIdError::WrongType),
        }
    }

    /// Reads a user id as written in a path segment (already percent-decoded) and the
    /// `user_id_type` query parameter of `/v1/users/{user_id}/sessions`, or as stored. A string
    /// is taken as it is (ids stored before the rules on whitespace must stay reachable); a
    /// number must be in its one canonical decimal form.
    pub fn from_path(segment: &str, kind: UserIdType) -> Result<UserId, UserIdError> {
        match kind {
            UserIdType::String if segment.is_empty() => Err(UserIdError::Empty),
            UserIdType::String if segment.len() > MAX_USER_ID_LEN => Err(UserIdError::TooLong),
            UserIdType::String => Ok(UserId::Text(segment.to_owned())),
            UserIdType::Number => {
                // Only the canonical decimal form: `07` or `+7` would name the same number twice.
                let id: i64 = segment.parse().map_err(|_| UserIdError::UnsafeNumber)?;
                if id.to_string() != segment {
                    return Err(UserIdError::UnsafeNumber);
                }
                UserId::number(id)
            }
        }
    }

    pub fn kind(&self) -> UserIdType {
        match self {
            UserId::Text(_) => UserIdType::String,
            UserId::Number(_) => UserIdType::Number,
        }
    }

    /// The string form: the text itself, or the number in decimal. This is the JWT `sub`, which
    /// is always a string; it does not tell `7` from `"7"`, the type does.
    pub fn as_text(&self) -> std::borrow::Cow<'_, str> {
        match self {
            UserId::Text(text) => text.as_str().into(),
            UserId::Number(number) => number.to_string().into(),
        }
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_text())
    }
}

impl TryFrom<&str> for UserId {
    type Error = UserIdError;

    fn try_from(id: &str) -> Result<Self, UserIdError> {
        UserId::text(id)
    }
}

impl TryFrom<String> for UserId {
    type Error = UserIdError;

    fn try_from(id: String) -> Result<Self, UserIdError> {
        UserId::text(id)
    }
}

impl TryFrom<i64> for UserId {
    type Error = UserIdError;

    fn try_from(id: i64) -> Result<Self, UserIdError> {
        UserId::number(id)
    }
}

/// A string id equals the same text; a numeric id never equals a string (`7 != "7"`).
impl PartialEq<str> for UserId {
    fn eq(&self, other: &str) -> bool {
        matches!(self, UserId::Text(text) if text == other)
    }
}

impl PartialEq<&str> for UserId {
    fn eq(&self, other: &&str) -> bool {
        self == *other
    }
}

impl PartialEq<i64> for UserId {
    fn eq(&self, other: &i64) -> bool {
        matches!(self, UserId::Number(number) if number == other)
    }
}

/// How a user id is typed where the type cannot travel with it (the origin's API paths, the
/// database): `user_id_type=number` in `/v1/users/{user_id}/sessions?user_id_type=number`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserIdType {
    #[default]
    String,
    Number,
}

/// A string or a safe integer, in the OpenAPI document.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for UserId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, SchemaType, Type};
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(SchemaType::Type(Type::String))
                    .min_length(Some(1))
                    .max_length(Some(MAX_USER_ID_LEN)),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(SchemaType::Type(Type::Integer))
                    .minimum(Some(-MAX_SAFE_INTEGER as f64))
                    .maximum(Some(MAX_SAFE_INTEGER as f64)),
            )
            .description(Some(
                "A user id as the app gave it: a JSON string (any Unicode text without control \
                 characters or surrounding whitespace, 1 to 255 bytes of UTF-8) or a whole JSON \
                 number within ±(2^53−1). 7 and \"7\" are different users; each comes back with \
                 its type.",
            ))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for UserId {}

impl Serialize for UserId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            UserId::Text(text) => serializer.serialize_str(text),
            UserId::Number(number) => serializer.serialize_i64(*number),
        }
    }
}

impl<'de> Deserialize<'de> for UserId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct UserIdVisitor;

        impl Visitor<'_> for UserIdVisitor {
            type Value = UserId;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a user id (a JSON string or a whole JSON number)")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<UserId, E> {
                UserId::text(text).map_err(E::custom)
            }

            fn visit_i64<E: de::Error>(self, number: i64) -> Result<UserId, E> {
                UserId::number(number).map_err(E::custom)
            }

            fn visit_u64<E: de::Error>(self, number: u64) -> Result<UserId, E> {
                i64::try_from(number)
                    .map_err(|_| E::custom(UserIdError::UnsafeNumber))
                    .and_then(|number| self.visit_i64(number))
            }

            fn visit_f64<E: de::Error>(self, _: f64) -> Result<UserId, E> {
                Err(E::custom(UserIdError::UnsafeNumber))
            }
        }

        deserializer.deserialize_any(UserIdVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn any_unicode_text_without_controls_or_surrounding_space_is_an_id() {
        for id in ["alice@example.com", "Zoë 🚀", "ユーザー 7", "a b", "7"] {
            assert_eq!(UserId::text(id), Ok(UserId::Text(id.into())), "{id}");
        }
        assert_eq!(UserId::text(""), Err(UserIdError::Empty));
        assert_eq!(UserId::text("x".repeat(256)), Err(UserIdError::TooLong));
        assert_eq!(UserId::text("a\r\nX-User: admin"), Err(UserIdError::ControlCharacter));
        assert_eq!(UserId::text("\u{7f}"), Err(UserIdError::ControlCharacter));
        for id in [" alice", "alice ", "\u{a0}alice", "alice\u{3000}"] {
            assert_eq!(UserId::text(id), Err(UserIdError::SurroundingWhitespace), "{id:?}");
        }
    }

    #[test]
    fn seven_and_the_string_seven_are_different_users() {
        let number: UserId = serde_json::from_value(json!(7)).unwrap();
        let text: UserId = serde_json::from_value(json!("7")).unwrap();
        assert_ne!(number, text);
        assert!(number == 7 && number != "7" && text == "7" && text != 7);
        assert_eq!(number.as_text(), text.as_text(), "the same `sub`");
        assert_eq!(serde_json::to_value(&number).unwrap(), json!(7));
        assert_eq!(serde_json::to_value(&text).unwrap(), json!("7"));
    }

    #[test]
    fn numbers_must_be_safe_integers() {
        for bad in [json!(7.5), json!(1e300), json!(9007199254740992_i64), json!(u64::MAX)] {
            let err = serde_json::from_value::<UserId>(bad.clone()).unwrap_err();
            assert!(err.to_string().contains("whole number"), "{bad}: {err}");
        }
        for bad in [json!(null), json!(true), json!([1]), json!({"id": 1})] {
            assert!(serde_json::from_value::<UserId>(bad).is_err());
            assert_eq!(UserId::from_json(&json!(null)), Err(UserIdError::WrongType));
        }
        assert_eq!(
            UserId::from_json(&json!(-9007199254740991_i64)),
            Ok(UserId::Number(-MAX_SAFE_INTEGER))
        );
    }

    #[test]
    fn path_segments_name_one_id_each() {
        assert_eq!(UserId::from_path("7", UserIdType::Number), Ok(UserId::Number(7)));
        assert_eq!(UserId::from_path("7", UserIdType::String), Ok(UserId::Text("7".into())));
        // Ids stored before the whitespace rule stay reachable.
        assert_eq!(UserId::from_path(" old", UserIdType::String), Ok(UserId::Text(" old".into())));
        assert_eq!(UserId::from_path("", UserIdType::String), Err(UserIdError::Empty));
        for bad in ["07", "+7", "7.0", "", "-0", "seven"] {
            assert!(UserId::from_path(bad, UserIdType::Number).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn every_accepted_id_round_trips_through_json(text in "\\PC{1,40}", number in any::<i64>()) {
            if let Ok(id) = UserId::text(text.as_str()) {
                let json = serde_json::to_string(&id).unwrap();
                prop_assert_eq!(serde_json::from_str::<UserId>(&json).unwrap(), id);
            }
            match UserId::number(number) {
                Ok(id) => {
                    prop_assert_eq!(serde_json::from_value::<UserId>(json!(number)).unwrap(), id.clone());
                    prop_assert_eq!(UserId::from_path(&id.as_text(), UserIdType::Number).unwrap(), id);
                }
                Err(_) => prop_assert!(number.unsigned_abs() > MAX_SAFE_INTEGER as u64),
            }
        }
    }
}
