//! The settings edge and origin must agree on, set at the origin only and published beside its
//! JWKS as one document (`/.well-known/latch-settings.json`). The edge fetches and caches it
//! like the JWKS, so after a change at the origin every edge converges within one cache period.

use serde::{Deserialize, Serialize};

use crate::engine::AntiCsrfPolicy;
use crate::keys::Jwks;
use crate::protocol::CookiePolicy;

/// The published settings document.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedSettings {
    /// `iss` of every access token.
    pub issuer: String,
    /// `aud` of every access token.
    pub audience: String,
    /// How session cookies are written and cleared.
    pub cookies: CookiePolicy,
    /// The status of UNAUTHORISED, TRY_REFRESH_TOKEN and TOKEN_THEFT_DETECTED answers.
    pub session_expired_status: u16,
    /// Which requests need the `anti-csrf` header.
    pub anti_csrf: AntiCsrfPolicy,
    /// Lifetime of access tokens: a revoked session's blacklist entry must outlive its tokens.
    pub access_token_lifetime_secs: u64,
    /// The public keys, the same as the JWKS: one fetch gives the edge everything it needs.
    pub jwks: Jwks,
}

/// Why a published settings document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error("the settings document is not valid: {0}")]
    Malformed(String),
    #[error("the session-expired status must be a 4xx, not {0}")]
    Status(u16),
    #[error("cookies: {0}")]
    Cookies(#[from] crate::protocol::CookiePolicyError),
    #[error("the settings document publishes no signing keys")]
    NoKeys,
}

/// Largest settings document read: far above any real one (a handful of keys and rules).
pub const MAX_SETTINGS_BYTES: usize = 64 * 1024;

impl SharedSettings {
    /// Reads and validates a published document.
    pub fn parse(text: &str) -> Result<SharedSettings, SettingsError> {
        if text.len() > MAX_SETTINGS_BYTES {
            return Err(SettingsError::Malformed(format!("over {MAX_SETTINGS_BYTES} bytes")));
        }
        let settings: SharedSettings =
            serde_json::from_str(text).map_err(|err| SettingsError::Malformed(err.to_string()))?;
        settings.validate()?;
        Ok(settings)
    }

    pub fn validate(&self) -> Result<(), SettingsError> {
        if !(400..500).contains(&self.session_expired_status) {
            return Err(SettingsError::Status(self.session_expired_status));
        }
        self.cookies.validate()?;
        if self.jwks.keys.is_empty() {
            return Err(SettingsError::NoKeys);
        }
        Ok(())
    }

    /// How long a revoked session's blacklist entry lives ([`crate::api::blacklist_ttl_secs`]).
    pub fn blacklist_ttl_secs(&self) -> u64 {
        crate::api::blacklist_ttl_secs(self.access_token_lifetime_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SigningKey;

    fn settings() -> SharedSettings {
        SharedSettings {
            issuer: "latch".into(),
            audience: "latch".into(),
            cookies: CookiePolicy::default(),
            session_expired_status: 440,
            anti_csrf: AntiCsrfPolicy::default(),
            access_token_lifetime_secs: 3600,
            jwks: crate::keys::KeySet::new([SigningKey::from_seed(&[1; 32]).verifying_key()])
                .unwrap()
                .to_jwks(),
        }
    }

    #[test]
    fn the_document_round_trips() {
        let text = serde_json::to_string(&settings()).unwrap();
        assert!(text.contains(r#""same_site":"lax""#), "{text}");
        assert!(text.contains(r#""check":"unsafe_methods""#), "{text}");
        assert_eq!(SharedSettings::parse(&text).unwrap(), settings());
    }

    #[test]
    fn bad_documents_are_refused() {
        let status = SharedSettings { session_expired_status: 200, ..settings() };
        assert_eq!(status.validate(), Err(SettingsError::Status(200)));
        let mut none = settings();
        none.jwks.keys.clear();
        assert_eq!(none.validate(), Err(SettingsError::NoKeys));
        assert!(SharedSettings::parse(&"[".repeat(10_000)).is_err());
        assert!(SharedSettings::parse(&" ".repeat(MAX_SETTINGS_BYTES + 1)).is_err());
    }
}
