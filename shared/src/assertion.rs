//! The identity assertion: how the edge tells the app who is calling, in one header any JOSE
//! library can check (compare Cloudflare Access's `Cf-Access-Jwt-Assertion`).
//!
//! `x-latch-assertion` is a compact JWS signed by the edge with EdDSA (Ed25519). Its claims:
//! `iss` and `aud` (the edge and the app, both configured at the edge), `sub` (the user id as
//! a string), `uid` (the user id with its JSON type), `sid` (the session handle), `pld` (the
//! session's JWT payload, when it has one), `csrf` (what the anti-CSRF check of *this* request
//! found, see [`CsrfOutcome`]), `iat`, `nbf` and `exp` (at most [`ASSERTION_LIFETIME_SECS`]
//! later). Being JSON, it carries any user id, "Zoë 🚀" included, as plain ASCII.
//!
//! The edge holds the private keys (`ASSERTION_KEYS`, a Worker secret) and publishes the
//! public ones at [`ASSERTION_JWKS_PATH`]; apps hold no secret. The edge mints an assertion
//! once per access token and anti-CSRF outcome and reuses it for up to
//! [`ASSERTION_REUSE_SECS`], so an assertion a request carries is valid for at least
//! `ASSERTION_LIFETIME_SECS - ASSERTION_REUSE_SECS` more seconds, unless the access token
//! expires sooner: an assertion never outlives it. Replay is bounded by that lifetime and the
//! audience; assertions are not bound to a method or path.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::access::{
    verify_jws, SessionClaims, SignError, UnsignedJws, VerifyError, DEFAULT_LEEWAY,
};
use crate::keys::{Jwks, KeySet, SigningKey};
use crate::user_id::UserId;
use crate::SessionError;

/// The request header the edge sets on every request it forwards with a verified session.
pub const ASSERTION_HEADER: &str = "x-latch-assertion";
/// Where the edge publishes the public keys that verify its assertions.
pub const ASSERTION_JWKS_PATH: &str = "/.well-known/latch-assertion-jwks.json";
/// How long an assertion is valid.
pub const ASSERTION_LIFETIME_SECS: i64 = 60;
/// How long the edge reuses an assertion it minted before minting a fresh one.
pub const ASSERTION_REUSE_SECS: i64 = 30;
/// Longest assertion a verifier reads: an access token's payload (under 4 KB) plus its claims.
pub const MAX_ASSERTION_LEN: usize = 8 * 1024;

/// The seed's messages for the two anti-CSRF refusals.
pub const ANTI_CSRF_MISSING: &str = "anti-csrf token not found in headers";
pub const ANTI_CSRF_FAILED: &str = "anti-csrf check failed";

/// Whether a refusal is the anti-CSRF check's (which refreshing the session cannot fix).
pub fn is_anti_csrf_refusal(err: &SessionError) -> bool {
    err.kind() == crate::ErrorKind::TryRefreshToken
        && (err.message == ANTI_CSRF_MISSING || err.message == ANTI_CSRF_FAILED)
}

/// What the anti-CSRF check found on this request, whether or not the edge's rule for the route
/// required it. An app that wants the seed's `getSession(req, res, true)` on a route the edge
/// does not check reads it: `passed`, `same_origin` and `not_applicable` pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CsrfOutcome {
    /// The deployment's proof is there: the `anti-csrf` header equals the access token's
    /// anti-CSRF token, or, in custom-header mode, the request carries the `rid` header.
    Passed,
    /// No `anti-csrf` header.
    Missing,
    /// An `anti-csrf` header that does not match (or a token minted without one).
    Failed,
    /// No `anti-csrf` header, but the browser proved the request same-origin (`Sec-Fetch-Site:
    /// same-origin`, or without it an `Origin` equal to the site's own): a plain HTML form of
    /// the site itself, OWASP's fetch-metadata defence.
    SameOrigin,
    /// No check can apply: a Bearer token (which no cross-site form can send), or a deployment
    /// with anti-CSRF protection off.
    NotApplicable,
}

impl CsrfOutcome {
    /// Every outcome, in the order of [`CsrfOutcome::index`].
    pub const ALL: [CsrfOutcome; 5] = [
        CsrfOutcome::Passed,
        CsrfOutcome::Missing,
        CsrfOutcome::Failed,
        CsrfOutcome::SameOrigin,
        CsrfOutcome::NotApplicable,
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    /// The seed's answer where the check applies: TRY_REFRESH_TOKEN unless it passed.
    pub fn enforce(self) -> Result<(), SessionError> {
        match self {
            CsrfOutcome::Passed | CsrfOutcome::SameOrigin | CsrfOutcome::NotApplicable => Ok(()),
            CsrfOutcome::Missing => Err(SessionError::try_refresh(ANTI_CSRF_MISSING)),
            CsrfOutcome::Failed => Err(SessionError::try_refresh(ANTI_CSRF_FAILED)),
        }
    }
}

/// The claims of an assertion, apart from the time claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssertionClaims {
    pub iss: String,
    pub aud: String,
    /// The user id's text: always a string, as JOSE libraries expect.
    pub sub: String,
    /// The user id with its JSON type: `7` and `"7"` are different users.
    pub uid: UserId,
    /// The session handle.
    pub sid: String,
    /// The session's JWT payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pld: Option<Value>,
    pub csrf: CsrfOutcome,
}

impl AssertionClaims {
    /// The assertion for a request presenting a verified access token.
    pub fn for_session(
        session: &SessionClaims,
        csrf: CsrfOutcome,
        issuer: &str,
        audience: &str,
    ) -> AssertionClaims {
        let uid = session.user_id();
        AssertionClaims {
            iss: issuer.to_owned(),
            aud: audience.to_owned(),
            sub: uid.as_text().into_owned(),
            uid,
            sid: session.sid.clone(),
            pld: session.pld.clone(),
            csrf,
        }
    }
}

/// The edge's assertion keys: the first signs, every one is published, so that a new key can
/// be published before it signs and an old one kept until its last assertion expires.
#[derive(Clone)]
pub struct AssertionSigner {
    keys: Vec<SigningKey>,
    issuer: String,
    audience: String,
}

impl std::fmt::Debug for AssertionSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<&str> = self.keys.iter().map(SigningKey::kid).collect();
        f.debug_struct("AssertionSigner")
            .field("kids", &kids)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish()
    }
}

/// Why `ASSERTION_KEYS` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssertionKeysError {
    #[error("ASSERTION_KEYS holds no key: give one or more base64url 32-byte Ed25519 seeds, separated by commas")]
    Empty,
    #[error("ASSERTION_KEYS entry {position} is not a base64url 32-byte Ed25519 seed")]
    BadSeed { position: usize },
}

impl AssertionSigner {
    /// Reads `ASSERTION_KEYS`: base64url (unpadded) 32-byte Ed25519 seeds, separated by commas or
    /// whitespace; the first signs.
    pub fn from_seeds(
        text: &str,
        issuer: impl Into<String>,
        audience: impl Into<String>,
    ) -> Result<AssertionSigner, AssertionKeysError> {
        use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
        let keys = text
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|part| !part.is_empty())
            .enumerate()
            .map(|(index, part)| {
                let seed: [u8; 32] = URL_SAFE_NO_PAD
                    .decode(part)
                    .ok()
                    .and_then(|bytes| bytes.try_into().ok())
                    .ok_or(AssertionKeysError::BadSeed { position: index + 1 })?;
                Ok(SigningKey::from_seed(&seed))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(AssertionKeysError::Empty);
        }
        Ok(AssertionSigner { keys, issuer: issuer.into(), audience: audience.into() })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The public keys, for [`ASSERTION_JWKS_PATH`].
    pub fn jwks(&self) -> Jwks {
        KeySet::new(self.keys.iter().map(SigningKey::verifying_key))
            .expect("distinct seeds have distinct key ids")
            .to_jwks()
    }

    /// Mints the assertion for `session` at `now`, valid for [`ASSERTION_LIFETIME_SECS`] but
    /// never past `not_after` (the access token's own expiry). Returns it and its expiry.
    pub fn mint(
        &self,
        session: &SessionClaims,
        csrf: CsrfOutcome,
        now: DateTime<Utc>,
        not_after: DateTime<Utc>,
    ) -> Result<(String, DateTime<Utc>), SignError> {
        let unsigned = self.unsigned(session, csrf, now, not_after)?;
        let signature = self.keys[0].sign(unsigned.signing_input().as_bytes());
        let expires_at = unsigned.expires_at;
        Ok((unsigned.with_signature(&signature), expires_at))
    }

    /// [`AssertionSigner::mint`] up to the signature, for a runtime that signs natively with
    /// [`AssertionSigner::signing_jwk`].
    pub fn unsigned(
        &self,
        session: &SessionClaims,
        csrf: CsrfOutcome,
        now: DateTime<Utc>,
        not_after: DateTime<Utc>,
    ) -> Result<UnsignedJws, SignError> {
        let claims = AssertionClaims::for_session(session, csrf, &self.issuer, &self.audience);
        let lifetime = Duration::seconds(ASSERTION_LIFETIME_SECS)
            .min(not_after - now)
            .max(Duration::seconds(1));
        UnsignedJws::new(self.keys[0].kid(), &claims, now, lifetime)
    }

    /// The signing key (the first) as a private JWK. Secret: never log it.
    pub fn signing_jwk(&self) -> serde_json::Value {
        self.keys[0].to_private_jwk()
    }
}

/// Checks assertions for one app: the edge's published keys, its issuer and the app's audience.
#[derive(Debug, Clone)]
pub struct AssertionVerifier {
    keys: KeySet,
    issuer: String,
    audience: String,
}

impl AssertionVerifier {
    pub fn new(keys: KeySet, issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        AssertionVerifier { keys, issuer: issuer.into(), audience: audience.into() }
    }

    pub fn keys(&self) -> &KeySet {
        &self.keys
    }

    /// Checks `assertion` at `now`: signature by a published key, times, issuer and audience.
    /// An assertion living longer than [`ASSERTION_LIFETIME_SECS`] is refused too, so a leaked
    /// signing key cannot mint long-lived ones unnoticed.
    pub fn verify(
        &self,
        assertion: &str,
        now: DateTime<Utc>,
    ) -> Result<AssertionClaims, VerifyError> {
        let jws = verify_jws::<AssertionClaims>(
            &self.keys,
            assertion,
            MAX_ASSERTION_LEN,
            now,
            DEFAULT_LEEWAY,
        )?;
        if jws.expires_at - jws.issued_at > Duration::seconds(ASSERTION_LIFETIME_SECS) {
            return Err(VerifyError::BadClaims);
        }
        if jws.claims.iss != self.issuer {
            return Err(VerifyError::WrongIssuer);
        }
        if jws.claims.aud != self.audience {
            return Err(VerifyError::WrongAudience);
        }
        if jws.claims.sub != jws.claims.uid.as_text() {
            return Err(VerifyError::BadClaims);
        }
        Ok(jws.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
    use proptest::prelude::*;
    use serde_json::json;

    const ISSUER: &str = "latch-edge";
    const AUDIENCE: &str = "https://app.test";

    fn seed(byte: u8) -> String {
        URL_SAFE_NO_PAD.encode([byte; 32])
    }

    fn signer() -> AssertionSigner {
        AssertionSigner::from_seeds(&format!("{}, {}", seed(1), seed(2)), ISSUER, AUDIENCE).unwrap()
    }

    fn verifier() -> AssertionVerifier {
        AssertionVerifier::new(KeySet::from_jwks(&signer().jwks()).unwrap(), ISSUER, AUDIENCE)
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    impl AssertionSigner {
        fn mint_for_test(
            &self,
            session: &SessionClaims,
            csrf: CsrfOutcome,
            now: DateTime<Utc>,
        ) -> Result<String, SignError> {
            self.mint(session, csrf, now, now + Duration::hours(1)).map(|(token, _)| token)
        }
    }

    #[test]
    fn an_assertion_never_outlives_the_access_token() {
        let expires = now() + Duration::seconds(20);
        let (token, until) = signer()
            .mint(&session(UserId::Text("a".into())), CsrfOutcome::Passed, now(), expires)
            .unwrap();
        assert_eq!(until, expires);
        assert!(verifier().verify(&token, now() + Duration::seconds(19)).is_ok());
        let late = now() + Duration::seconds(20 + 6);
        assert_eq!(verifier().verify(&token, late), Err(VerifyError::Expired));
    }

    fn session(uid: UserId) -> SessionClaims {
        SessionClaims {
            iss: "origin".into(),
            aud: "latch".into(),
            sub: uid.as_text().into_owned(),
            uid: Some(uid),
            sid: "handle-1".into(),
            csrf: Some("c".into()),
            pld: Some(json!({"role": "admin", "sub": "mallory"})),
            rgen: Some(0),
        }
    }

    #[test]
    fn an_assertion_carries_any_user_id_with_its_type() {
        for uid in [UserId::Text("Zoë 🚀".into()), UserId::Number(7), UserId::Text("7".into())] {
            let token =
                signer().mint_for_test(&session(uid.clone()), CsrfOutcome::Passed, now()).unwrap();
            assert!(token.is_ascii(), "header-safe by construction");
            let claims = verifier().verify(&token, now()).unwrap();
            assert_eq!(claims.uid, uid);
            assert_eq!(claims.sub, uid.as_text());
            assert_eq!(claims.sid, "handle-1");
            assert_eq!(claims.pld, Some(json!({"role": "admin", "sub": "mallory"})));
            assert_eq!(claims.csrf, CsrfOutcome::Passed);
        }
    }

    #[test]
    fn expired_forged_and_other_audience_assertions_are_refused() {
        let token = signer()
            .mint_for_test(&session(UserId::Text("alice".into())), CsrfOutcome::Missing, now())
            .unwrap();
        let late = now() + Duration::seconds(ASSERTION_LIFETIME_SECS + 6);
        assert_eq!(verifier().verify(&token, late), Err(VerifyError::Expired));
        let other_app =
            AssertionVerifier::new(verifier().keys().clone(), ISSUER, "https://other.test");
        assert_eq!(other_app.verify(&token, now()), Err(VerifyError::WrongAudience));
        let forger = AssertionSigner::from_seeds(&seed(9), ISSUER, AUDIENCE).unwrap();
        let forged = forger
            .mint_for_test(&session(UserId::Text("alice".into())), CsrfOutcome::Passed, now())
            .unwrap();
        assert!(matches!(verifier().verify(&forged, now()), Err(VerifyError::UnknownKey { .. })));
    }

    #[test]
    fn a_published_but_not_yet_signing_key_verifies_after_rotation() {
        // Rotation: publish the new key second, then make it first; apps trust both throughout.
        let rotated =
            AssertionSigner::from_seeds(&format!("{},{}", seed(2), seed(1)), ISSUER, AUDIENCE)
                .unwrap();
        let token = rotated
            .mint_for_test(&session(UserId::Text("alice".into())), CsrfOutcome::Passed, now())
            .unwrap();
        assert!(verifier().verify(&token, now()).is_ok());
    }

    #[test]
    fn assertion_keys_are_parsed_strictly() {
        assert_eq!(
            AssertionSigner::from_seeds(" , ", ISSUER, AUDIENCE).unwrap_err(),
            AssertionKeysError::Empty
        );
        assert_eq!(
            AssertionSigner::from_seeds(&format!("{},short", seed(1)), ISSUER, AUDIENCE)
                .unwrap_err(),
            AssertionKeysError::BadSeed { position: 2 }
        );
        let debug = format!("{:?}", signer());
        assert!(!debug.contains(&seed(1)), "seeds never appear in Debug: {debug}");
    }

    #[test]
    fn the_outcome_enforces_the_seeds_errors() {
        assert!(CsrfOutcome::Passed.enforce().is_ok());
        assert!(CsrfOutcome::NotApplicable.enforce().is_ok());
        assert!(CsrfOutcome::SameOrigin.enforce().is_ok());
        let missing = CsrfOutcome::Missing.enforce().unwrap_err();
        assert_eq!(missing.kind(), crate::ErrorKind::TryRefreshToken);
        assert_eq!(missing.message, "anti-csrf token not found in headers");
        assert_eq!(CsrfOutcome::Failed.enforce().unwrap_err().message, "anti-csrf check failed");
        for (index, outcome) in CsrfOutcome::ALL.into_iter().enumerate() {
            assert_eq!(outcome.index(), index);
        }
    }

    proptest! {
        #[test]
        fn arbitrary_headers_never_panic_or_verify(input in ".{0,300}") {
            prop_assert!(verifier().verify(&input, now()).is_err());
        }
    }
}
