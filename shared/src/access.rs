//! Access tokens: standard JWTs signed with EdDSA, verified without any I/O.
//!
//! Claims: `iss`, `aud`, `iat`, `nbf`, `exp`, `sub` (the user id as a string), `uid` (the user
//! id with its JSON type), `sid` (session handle), `csrf` (anti-CSRF token, when enabled) and
//! `pld`, the app's JWT payload, and `rgen`, the refresh generation that minted the token. The payload sits under its own claim so that nothing an app
//! puts in it can override a reserved claim.
//!
//! [`sign_jws`] and [`verify_jws`] are the one EdDSA signing and checking path, shared with the
//! edge's identity assertion (`crate::assertion`).

use chrono::{DateTime, Duration, Utc};
use jwt_compact::{alg::Ed25519, AlgorithmExt, TimeOptions, UntrustedToken};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::SessionError;
use crate::keys::{KeySet, SigningKey, ALGORITHM};
use crate::user_id::UserId;

/// Browsers drop cookies over about 4 KiB, so a longer token could never come back: refuse to
/// mint one, and refuse to parse one.
pub const MAX_ACCESS_TOKEN_LEN: usize = 4000;

/// Clock skew tolerated between the signer and the verifier.
pub const DEFAULT_LEEWAY: Duration = Duration::seconds(5);

/// The claims Latch puts in every access token, apart from the registered time claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionClaims {
    pub iss: String,
    pub aud: String,
    /// The user id's text (`sub` is always a string; [`SessionClaims::user_id`] has the type).
    pub sub: String,
    /// The user id as the app gave it: a JSON string or number. Tokens minted before numeric
    /// ids existed lack it; their id is `sub`, a string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<UserId>,
    /// The session handle.
    pub sid: String,
    /// The anti-CSRF token; absent when anti-CSRF protection is off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csrf: Option<String>,
    /// The app's JWT payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pld: Option<Value>,
    /// The refresh generation that minted this token: 0 at login, one more per rotation.
    /// Seeing a token of the session's current generation in use proves that the client got
    /// its latest refresh, so the refresh token before it can no longer be replayed
    /// (`docs/architecture.md`, "Refresh"). Absent in tokens minted before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rgen: Option<u64>,
}

impl SessionClaims {
    /// The user id with its type.
    pub fn user_id(&self) -> UserId {
        self.uid.clone().unwrap_or_else(|| UserId::Text(self.sub.clone()))
    }
}

/// A signed access token and when it stops being valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedAccessToken {
    pub value: String,
    pub expires_at: DateTime<Utc>,
}

/// Why a token could not be minted.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("the access token would be {len} bytes, over the {MAX_ACCESS_TOKEN_LEN}-byte cookie limit: make the JWT payload smaller")]
    TooLarge { len: usize },
    #[error("the claims cannot be serialised: {0}")]
    Claims(String),
}

/// Signs `claims` with `key`, valid from `now` for `lifetime`.
pub fn sign(
    key: &SigningKey,
    claims: SessionClaims,
    now: DateTime<Utc>,
    lifetime: Duration,
) -> Result<SignedAccessToken, SignError> {
    let (value, expires_at) = sign_jws(key, &claims, now, lifetime)?;
    if value.len() > MAX_ACCESS_TOKEN_LEN {
        return Err(SignError::TooLarge { len: value.len() });
    }
    Ok(SignedAccessToken { value, expires_at })
}

/// Signs `claims` as a compact EdDSA JWS with `iat`, `nbf` and `exp` (from `now` for
/// `lifetime`) and the key's `kid`. Returns the token and its expiry.
pub fn sign_jws<C: Serialize>(
    key: &SigningKey,
    claims: &C,
    now: DateTime<Utc>,
    lifetime: Duration,
) -> Result<(String, DateTime<Utc>), SignError> {
    let unsigned = UnsignedJws::new(key.kid(), claims, now, lifetime)?;
    let signature = key.sign(unsigned.signing_input().as_bytes());
    let expires_at = unsigned.expires_at;
    Ok((unsigned.with_signature(&signature), expires_at))
}

/// A compact EdDSA JWS before its signature: the one encoding of Latch's tokens, whoever signs
/// it ([`sign_jws`] here; the edge hands [`UnsignedJws::signing_input`] to the runtime's native
/// Ed25519). `base64url(header) . base64url(claims)`, the header `{"alg":"EdDSA","kid","typ":
/// "JWT"}`, the claims with `exp`, `nbf` and `iat` in whole seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsignedJws {
    signing_input: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Serialize)]
struct JwsHeader<'a> {
    alg: &'static str,
    kid: &'a str,
    typ: &'static str,
}

#[derive(Serialize)]
struct TimedClaims<'a, C> {
    exp: i64,
    nbf: i64,
    iat: i64,
    #[serde(flatten)]
    claims: &'a C,
}

impl UnsignedJws {
    pub fn new<C: Serialize>(
        kid: &str,
        claims: &C,
        now: DateTime<Utc>,
        lifetime: Duration,
    ) -> Result<UnsignedJws, SignError> {
        use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
        // Whole seconds: JWT times are NumericDate seconds, so round-trip what we report.
        let now = DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now);
        let expires_at = now + lifetime;
        let header = JwsHeader { alg: ALGORITHM, kid, typ: "JWT" };
        let claims = TimedClaims {
            exp: expires_at.timestamp(),
            nbf: now.timestamp(),
            iat: now.timestamp(),
            claims,
        };
        let header =
            serde_json::to_vec(&header).map_err(|err| SignError::Claims(err.to_string()))?;
        let claims =
            serde_json::to_vec(&claims).map_err(|err| SignError::Claims(err.to_string()))?;
        let signing_input =
            format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(claims));
        Ok(UnsignedJws { signing_input, expires_at })
    }

    /// What the signature is over.
    pub fn signing_input(&self) -> &str {
        &self.signing_input
    }

    /// The token, with the 64-byte Ed25519 signature of [`UnsignedJws::signing_input`].
    pub fn with_signature(self, signature: &[u8; 64]) -> String {
        use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
        let mut token = self.signing_input;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut token);
        token
    }
}

/// A JWS whose algorithm, key, signature and times checked out; the caller checks the claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedJws<C> {
    pub claims: C,
    pub kid: String,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Checks a compact JWS: at most `max_len` bytes, `alg` EdDSA (the only one any key is bound
/// to), a `kid` in `keys`, the signature, and `iat`/`nbf`/`exp` present and valid at `now`
/// within `leeway`. Never panics, whatever the input.
pub fn verify_jws<C: DeserializeOwned>(
    keys: &KeySet,
    token: &str,
    max_len: usize,
    now: DateTime<Utc>,
    leeway: Duration,
) -> Result<VerifiedJws<C>, VerifyError> {
    if token.len() > max_len {
        return Err(VerifyError::TooLong);
    }
    let untrusted = UntrustedToken::new(token).map_err(|_| VerifyError::Malformed)?;
    if untrusted.algorithm() != ALGORITHM {
        return Err(VerifyError::AlgorithmNotAllowed);
    }
    let kid = untrusted.header().key_id.as_deref().ok_or(VerifyError::MissingKeyId)?;
    let key = keys.get(kid).ok_or_else(|| VerifyError::UnknownKey { kid: kid.to_owned() })?;
    let verified =
        Ed25519.validator::<C>(key.inner()).validate(&untrusted).map_err(|err| match err {
            jwt_compact::ValidationError::MalformedClaims(_) => VerifyError::BadClaims,
            jwt_compact::ValidationError::AlgorithmMismatch { .. } => {
                VerifyError::AlgorithmNotAllowed
            }
            _ => VerifyError::BadSignature,
        })?;
    let claims = verified.claims();
    let options = TimeOptions::new(leeway, move || now);
    let (Some(issued_at), Some(expires_at), Some(_)) =
        (claims.issued_at, claims.expiration, claims.not_before)
    else {
        return Err(VerifyError::MissingTimeClaim);
    };
    claims.validate_expiration(&options).map_err(|_| VerifyError::Expired)?;
    claims.validate_maturity(&options).map_err(|_| VerifyError::NotYetValid)?;
    if issued_at > now + leeway {
        return Err(VerifyError::NotYetValid);
    }
    let kid = kid.to_owned();
    Ok(VerifiedJws { claims: verified.into_parts().1.custom, kid, issued_at, expires_at })
}

/// A token whose signature, times, issuer and audience all checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAccessToken {
    pub claims: SessionClaims,
    pub kid: String,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Why a token was refused. Every variant maps to TRY_REFRESH_TOKEN, as in the seed; the edge
/// also looks for [`VerifyError::UnknownKey`] to refetch the JWKS.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("access token is longer than {MAX_ACCESS_TOKEN_LEN} bytes")]
    TooLong,
    #[error("access token is malformed")]
    Malformed,
    #[error("access token has no key id")]
    MissingKeyId,
    #[error("access token algorithm is not EdDSA")]
    AlgorithmNotAllowed,
    #[error("access token was signed by an unknown key")]
    UnknownKey { kid: String },
    #[error("access token signature is invalid")]
    BadSignature,
    #[error("access token claims are invalid")]
    BadClaims,
    #[error("access token lacks a time claim")]
    MissingTimeClaim,
    #[error("access token has expired")]
    Expired,
    #[error("access token is not valid yet")]
    NotYetValid,
    #[error("access token has the wrong issuer")]
    WrongIssuer,
    #[error("access token has the wrong audience")]
    WrongAudience,
}

impl From<VerifyError> for SessionError {
    fn from(err: VerifyError) -> Self {
        SessionError::try_refresh(err.to_string())
    }
}

/// Verifies access tokens against a fixed key set, issuer and audience.
#[derive(Debug, Clone)]
pub struct Verifier {
    keys: KeySet,
    issuer: String,
    audience: String,
    leeway: Duration,
}

impl Verifier {
    pub fn new(keys: KeySet, issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Verifier { keys, issuer: issuer.into(), audience: audience.into(), leeway: DEFAULT_LEEWAY }
    }

    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    pub fn keys(&self) -> &KeySet {
        &self.keys
    }

    /// Checks `token` at time `now`. Never panics, whatever the input.
    pub fn verify(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<VerifiedAccessToken, VerifyError> {
        let jws: VerifiedJws<SessionClaims> =
            verify_jws(&self.keys, token, MAX_ACCESS_TOKEN_LEN, now, self.leeway)?;
        if jws.claims.iss != self.issuer {
            return Err(VerifyError::WrongIssuer);
        }
        if jws.claims.aud != self.audience {
            return Err(VerifyError::WrongAudience);
        }
        Ok(VerifiedAccessToken {
            claims: jws.claims,
            kid: jws.kid,
            issued_at: jws.issued_at,
            expires_at: jws.expires_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
    use hmac::{Hmac, Mac};
    use proptest::prelude::*;

    const ISSUER: &str = "https://origin.test";
    const AUDIENCE: &str = "latch";

    fn key() -> SigningKey {
        SigningKey::from_seed(&[7; 32])
    }

    fn other_key() -> SigningKey {
        SigningKey::from_seed(&[8; 32])
    }

    fn verifier() -> Verifier {
        Verifier::new(KeySet::new([key().verifying_key()]).unwrap(), ISSUER, AUDIENCE)
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn claims() -> SessionClaims {
        SessionClaims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: "alice".into(),
            uid: Some(crate::user_id::UserId::Text("alice".into())),
            sid: "handle-1".into(),
            csrf: Some("csrf-1".into()),
            pld: Some(serde_json::json!({"role": "admin", "sub": "mallory"})),
            rgen: Some(3),
        }
    }

    fn token() -> String {
        sign(&key(), claims(), now(), Duration::seconds(3600)).unwrap().value
    }

    fn b64(json: &str) -> String {
        URL_SAFE_NO_PAD.encode(json)
    }

    #[test]
    fn sign_then_verify_round_trips_every_claim() {
        let signed = sign(&key(), claims(), now(), Duration::seconds(3600)).unwrap();
        assert_eq!(signed.expires_at, now() + Duration::seconds(3600));
        let verified = verifier().verify(&signed.value, now()).unwrap();
        assert_eq!(verified.claims, claims());
        assert_eq!(verified.kid, key().kid());
        assert_eq!(verified.issued_at, now());
        assert_eq!(verified.expires_at, signed.expires_at);
        // The payload's own "sub" stays inside `pld`: it cannot override the user id.
        assert_eq!(verified.claims.sub, "alice");
    }

    #[test]
    fn header_names_the_key_and_the_algorithm() {
        let header = token().split('.').next().unwrap().to_owned();
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
        assert_eq!(header["alg"], "EdDSA");
        assert_eq!(header["kid"], key().kid());
    }

    #[test]
    fn expiry_and_maturity_are_checked_with_leeway() {
        let token = token();
        let v = verifier();
        assert!(v.verify(&token, now() + Duration::seconds(3600 + 4)).is_ok());
        assert_eq!(
            v.verify(&token, now() + Duration::seconds(3600 + 6)),
            Err(VerifyError::Expired)
        );
        assert!(v.verify(&token, now() - Duration::seconds(4)).is_ok());
        assert_eq!(v.verify(&token, now() - Duration::seconds(60)), Err(VerifyError::NotYetValid));
    }

    #[test]
    fn wrong_issuer_or_audience_is_refused() {
        let keys = KeySet::new([key().verifying_key()]).unwrap();
        let token = token();
        assert_eq!(
            Verifier::new(keys.clone(), "https://evil.test", AUDIENCE).verify(&token, now()),
            Err(VerifyError::WrongIssuer)
        );
        assert_eq!(
            Verifier::new(keys, ISSUER, "other-app").verify(&token, now()),
            Err(VerifyError::WrongAudience)
        );
    }

    #[test]
    fn tokens_from_unknown_keys_are_refused_with_their_kid() {
        let foreign = sign(&other_key(), claims(), now(), Duration::seconds(60)).unwrap();
        assert_eq!(
            verifier().verify(&foreign.value, now()),
            Err(VerifyError::UnknownKey { kid: other_key().kid().into() })
        );
    }

    #[test]
    fn a_foreign_signature_under_our_kid_is_refused() {
        // Signed by another key but labelled with ours: the signature check must catch it.
        let forged = sign(&other_key(), claims(), now(), Duration::seconds(60)).unwrap().value;
        let mut parts: Vec<String> = forged.split('.').map(str::to_owned).collect();
        parts[0] = b64(&format!(r#"{{"alg":"EdDSA","kid":"{}","typ":"JWT"}}"#, key().kid()));
        let relabelled = parts.join(".");
        assert_eq!(verifier().verify(&relabelled, now()), Err(VerifyError::BadSignature));
    }

    #[test]
    fn alg_none_is_refused() {
        let header = b64(&format!(r#"{{"alg":"none","kid":"{}"}}"#, key().kid()));
        let body = token().split('.').nth(1).unwrap().to_owned();
        for token in [format!("{header}.{body}."), format!("{header}.{body}")] {
            assert!(verifier().verify(&token, now()).is_err(), "{token}");
        }
        assert_eq!(
            verifier().verify(&format!("{header}.{body}."), now()),
            Err(VerifyError::AlgorithmNotAllowed)
        );
    }

    #[test]
    fn hs256_signed_with_the_public_key_is_refused() {
        // The classic confusion attack: HMAC keyed with the public key bytes or its JWK text.
        let public = key().verifying_key();
        let jwk_text = serde_json::to_string(&public.to_jwk()).unwrap();
        let x = public.to_jwk().x;
        let header = b64(&format!(r#"{{"alg":"HS256","kid":"{}","typ":"JWT"}}"#, key().kid()));
        let body = token().split('.').nth(1).unwrap().to_owned();
        let signing_input = format!("{header}.{body}");
        for secret in [public.inner().as_bytes().as_slice(), jwk_text.as_bytes(), x.as_bytes()] {
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
            mac.update(signing_input.as_bytes());
            let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
            assert_eq!(
                verifier().verify(&format!("{signing_input}.{sig}"), now()),
                Err(VerifyError::AlgorithmNotAllowed)
            );
        }
    }

    #[test]
    fn tokens_without_time_claims_are_refused() {
        let claims = format!(
            r#"{{"iss":"{ISSUER}","aud":"{AUDIENCE}","sub":"a","sid":"h","exp":{}}}"#,
            now().timestamp() + 60
        );
        let header = b64(&format!(r#"{{"alg":"EdDSA","kid":"{}"}}"#, key().kid()));
        let input = format!("{header}.{}", b64(&claims));
        let sig = { URL_SAFE_NO_PAD.encode(key().sign(input.as_bytes())) };
        assert_eq!(
            verifier().verify(&format!("{input}.{sig}"), now()),
            Err(VerifyError::MissingTimeClaim)
        );
    }

    #[test]
    fn oversized_payloads_are_refused_at_signing() {
        let mut big = claims();
        big.pld = Some(Value::String("x".repeat(MAX_ACCESS_TOKEN_LEN)));
        assert!(matches!(
            sign(&key(), big, now(), Duration::seconds(60)),
            Err(SignError::TooLarge { .. })
        ));
    }

    #[test]
    fn every_error_is_try_refresh_token() {
        let err: SessionError = VerifyError::Expired.into();
        assert_eq!(err.kind(), crate::ErrorKind::TryRefreshToken);
    }

    #[test]
    fn every_single_byte_change_is_refused() {
        let token = token();
        let v = verifier();
        let bytes = token.as_bytes();
        for i in 0..bytes.len() {
            for replacement in [b'A', b'-', b'_', b'.', b'0', b'=', b' '] {
                if bytes[i] == replacement {
                    continue;
                }
                let mut changed = bytes.to_vec();
                changed[i] = replacement;
                let changed = String::from_utf8(changed).unwrap();
                // Base64 has slack bits in the last character: two strings can decode to the
                // same bytes. Only a change that alters the decoded token must be refused.
                if decodes_same(&token, &changed) {
                    continue;
                }
                assert!(v.verify(&changed, now()).is_err(), "byte {i} -> {}", replacement as char);
            }
        }
    }

    fn decodes_same(a: &str, b: &str) -> bool {
        let decode = |t: &str| -> Option<Vec<Vec<u8>>> {
            t.split('.').map(|part| URL_SAFE_NO_PAD.decode(part).ok()).collect()
        };
        match (decode(a), decode(b)) {
            (Some(x), Some(y)) => x == y,
            _ => false,
        }
    }

    proptest! {
        #[test]
        fn arbitrary_input_never_panics_or_verifies(input in ".{0,600}") {
            prop_assert!(verifier().verify(&input, now()).is_err());
        }

        #[test]
        fn arbitrary_bytes_in_token_shape_never_verify(
            header in proptest::collection::vec(any::<u8>(), 0..200),
            body in proptest::collection::vec(any::<u8>(), 0..400),
            sig in proptest::collection::vec(any::<u8>(), 0..80),
        ) {
            let token = format!(
                "{}.{}.{}",
                URL_SAFE_NO_PAD.encode(header),
                URL_SAFE_NO_PAD.encode(body),
                URL_SAFE_NO_PAD.encode(sig)
            );
            prop_assert!(verifier().verify(&token, now()).is_err());
        }

        #[test]
        fn any_payload_round_trips(user in "[^\u{0}]{1,64}", n in any::<i64>(), s in ".{0,64}") {
            let mut c = claims();
            c.sub = user.clone();
            c.uid = crate::user_id::UserId::text(user).ok();
            c.pld = Some(serde_json::json!({"n": n, "s": s}));
            let signed = sign(&key(), c.clone(), now(), Duration::seconds(60)).unwrap();
            prop_assert_eq!(verifier().verify(&signed.value, now()).unwrap().claims, c);
        }
    }
}
