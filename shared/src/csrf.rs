//! Anti-CSRF tokens: random values embedded in the access token and echoed by the frontend in
//! the `anti-csrf` header on state-changing requests.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use rand_core::{CryptoRng, RngCore};
use subtle::ConstantTimeEq;

/// An anti-CSRF token: 128 random bits in base64url.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AntiCsrfToken(String);

impl AntiCsrfToken {
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let mut bytes = [0u8; 16];
        rng.fill_bytes(&mut bytes);
        Self::from_bytes(&bytes)
    }

    pub(crate) fn from_bytes(bytes: &[u8]) -> Self {
        AntiCsrfToken(URL_SAFE_NO_PAD.encode(bytes))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// Whether the header the client sent matches the token in its verified access token, compared
/// in constant time. An absent header never matches.
pub fn anti_csrf_matches(expected: &str, presented: Option<&str>) -> bool {
    match presented {
        Some(presented) => expected.as_bytes().ct_eq(presented.as_bytes()).into(),
        None => false,
    }
}

/// Methods that change state and so need the anti-CSRF header (RFC 9110 safe methods do not).
pub fn method_needs_anti_csrf(method: &str) -> bool {
    !matches!(method.to_ascii_uppercase().as_str(), "GET" | "HEAD" | "OPTIONS" | "TRACE")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, SeedableRng};

    #[test]
    fn tokens_are_random_and_url_safe() {
        let mut rng = StdRng::seed_from_u64(1);
        let a = AntiCsrfToken::generate(&mut rng);
        let b = AntiCsrfToken::generate(&mut rng);
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 22);
        assert!(a.as_str().bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
    }

    #[test]
    fn matching_is_exact() {
        assert!(anti_csrf_matches("abc", Some("abc")));
        assert!(!anti_csrf_matches("abc", Some("abd")));
        assert!(!anti_csrf_matches("abc", Some("ab")));
        assert!(!anti_csrf_matches("abc", Some("")));
        assert!(!anti_csrf_matches("abc", None));
    }

    #[test]
    fn only_unsafe_methods_need_the_header() {
        for m in ["POST", "put", "DELETE", "PATCH", "PROPFIND"] {
            assert!(method_needs_anti_csrf(m), "{m}");
        }
        for m in ["GET", "head", "OPTIONS", "TRACE"] {
            assert!(!method_needs_anti_csrf(m), "{m}");
        }
    }
}
