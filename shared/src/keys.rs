//! Ed25519 signing keys, their public JWKs (RFC 7517, OKP keys per RFC 8037) and the key set a
//! verifier trusts. Every key is bound to the one algorithm Latch signs with, `EdDSA`.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The only JWS algorithm Latch issues or accepts.
pub const ALGORITHM: &str = "EdDSA";
const KEY_TYPE: &str = "OKP";
const CURVE: &str = "Ed25519";

/// A private signing key with its key id (the RFC 7638 thumbprint of its public half).
#[derive(Clone)]
pub struct SigningKey {
    kid: String,
    key: ed25519_dalek::SigningKey,
}

impl SigningKey {
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        Self::from_key(ed25519_dalek::SigningKey::generate(rng))
    }

    /// Rebuilds a key from the 32-byte secret seed kept in storage.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self::from_key(ed25519_dalek::SigningKey::from_bytes(seed))
    }

    fn from_key(key: ed25519_dalek::SigningKey) -> Self {
        let kid = thumbprint(key.verifying_key().as_bytes());
        SigningKey { kid, key }
    }

    /// The 32-byte secret seed; store it only encrypted.
    pub fn seed(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey { kid: self.kid.clone(), key: self.key.verifying_key() }
    }

    /// The Ed25519 signature of `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        use ed25519_dalek::Signer;
        self.key.sign(message).to_bytes()
    }

    /// The key as a private JWK (RFC 8037: `kty` OKP, `crv` Ed25519, `x`, `d`), for a runtime
    /// that signs natively (the edge's WebCrypto). Secret: never log it.
    pub fn to_private_jwk(&self) -> serde_json::Value {
        serde_json::json!({
            "kty": KEY_TYPE,
            "crv": CURVE,
            "x": URL_SAFE_NO_PAD.encode(self.key.verifying_key().as_bytes()),
            "d": URL_SAFE_NO_PAD.encode(self.key.to_bytes()),
        })
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

/// A public key a verifier trusts, with its key id.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifyingKey {
    kid: String,
    key: ed25519_dalek::VerifyingKey,
}

impl VerifyingKey {
    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub(crate) fn inner(&self) -> &ed25519_dalek::VerifyingKey {
        &self.key
    }

    pub fn to_jwk(&self) -> Jwk {
        Jwk {
            kty: KEY_TYPE.into(),
            crv: CURVE.into(),
            x: URL_SAFE_NO_PAD.encode(self.key.as_bytes()),
            kid: self.kid.clone(),
            alg: Some(ALGORITHM.into()),
            key_use: Some("sig".into()),
        }
    }
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyingKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

/// RFC 7638 thumbprint of an Ed25519 public key: base64url(SHA-256 of the canonical JWK).
fn thumbprint(public: &[u8; 32]) -> String {
    let canonical = format!(
        r#"{{"crv":"{CURVE}","kty":"{KEY_TYPE}","x":"{}"}}"#,
        URL_SAFE_NO_PAD.encode(public)
    );
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// One public key in a JWKS.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    pub crv: String,
    pub x: String,
    pub kid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub key_use: Option<String>,
}

/// A JSON Web Key Set, as served at `/.well-known/jwks.json`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// Why a JWK cannot be trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwkError {
    #[error("key {kid:?}: only OKP Ed25519 keys are accepted, got kty={kty:?} crv={crv:?}")]
    UnsupportedKeyType { kid: String, kty: String, crv: String },
    #[error("key {kid:?}: algorithm {alg:?} is not allowed; only EdDSA is")]
    AlgorithmNotAllowed { kid: String, alg: String },
    #[error("key {kid:?}: use {key_use:?} is not \"sig\"")]
    NotASigningKey { kid: String, key_use: String },
    #[error("key {kid:?}: x is not a valid base64url Ed25519 public key")]
    BadPublicKey { kid: String },
    #[error("key {kid:?}: kid does not match the key's RFC 7638 thumbprint")]
    KidMismatch { kid: String },
    #[error("duplicate kid {kid:?}")]
    DuplicateKid { kid: String },
}

impl TryFrom<&Jwk> for VerifyingKey {
    type Error = JwkError;

    fn try_from(jwk: &Jwk) -> Result<Self, JwkError> {
        let kid = jwk.kid.clone();
        if jwk.kty != KEY_TYPE || jwk.crv != CURVE {
            return Err(JwkError::UnsupportedKeyType {
                kid,
                kty: jwk.kty.clone(),
                crv: jwk.crv.clone(),
            });
        }
        if let Some(alg) = jwk.alg.as_deref().filter(|alg| *alg != ALGORITHM) {
            return Err(JwkError::AlgorithmNotAllowed { kid, alg: alg.into() });
        }
        if let Some(key_use) = jwk.key_use.as_deref().filter(|key_use| *key_use != "sig") {
            return Err(JwkError::NotASigningKey { kid, key_use: key_use.into() });
        }
        let raw: [u8; 32] = URL_SAFE_NO_PAD
            .decode(&jwk.x)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| JwkError::BadPublicKey { kid: kid.clone() })?;
        let key = ed25519_dalek::VerifyingKey::from_bytes(&raw)
            .map_err(|_| JwkError::BadPublicKey { kid: kid.clone() })?;
        // Binding the kid to the key means a key set can never carry two keys under one name.
        if thumbprint(key.as_bytes()) != kid {
            return Err(JwkError::KidMismatch { kid });
        }
        Ok(VerifyingKey { kid, key })
    }
}

/// The public keys a verifier trusts, looked up by `kid`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeySet {
    keys: Vec<VerifyingKey>,
}

impl KeySet {
    pub fn new(keys: impl IntoIterator<Item = VerifyingKey>) -> Result<Self, JwkError> {
        let mut set = KeySet::default();
        for key in keys {
            if set.get(key.kid()).is_some() {
                return Err(JwkError::DuplicateKid { kid: key.kid.clone() });
            }
            set.keys.push(key);
        }
        Ok(set)
    }

    /// Every key must be a valid Ed25519 signing key: a set with one bad key is refused whole,
    /// so a misconfigured origin shows up at once rather than as a subset of failing tokens.
    pub fn from_jwks(jwks: &Jwks) -> Result<Self, JwkError> {
        Self::new(jwks.keys.iter().map(VerifyingKey::try_from).collect::<Result<Vec<_>, _>>()?)
    }

    pub fn get(&self, kid: &str) -> Option<&VerifyingKey> {
        self.keys.iter().find(|key| key.kid == kid)
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn to_jwks(&self) -> Jwks {
        Jwks { keys: self.keys.iter().map(VerifyingKey::to_jwk).collect() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_seed(&[seed; 32])
    }

    #[test]
    fn jwk_round_trips_and_keeps_its_kid() {
        let public = key(1).verifying_key();
        let jwk = public.to_jwk();
        assert_eq!(jwk.kty, "OKP");
        assert_eq!(jwk.crv, "Ed25519");
        assert_eq!(jwk.alg.as_deref(), Some("EdDSA"));
        assert_eq!(VerifyingKey::try_from(&jwk).unwrap(), public);
        let json = serde_json::to_string(&Jwks { keys: vec![jwk] }).unwrap();
        assert!(json.contains(r#""use":"sig""#), "{json}");
    }

    #[test]
    fn kid_is_the_rfc7638_thumbprint() {
        // RFC 8037 appendix A.3: thumbprint of its example public key.
        let x = URL_SAFE_NO_PAD.decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo").unwrap();
        assert_eq!(
            thumbprint(&x.try_into().unwrap()),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[test]
    fn keys_bound_to_other_algorithms_are_refused() {
        let mut jwk = key(2).verifying_key().to_jwk();
        jwk.alg = Some("HS256".into());
        assert!(matches!(VerifyingKey::try_from(&jwk), Err(JwkError::AlgorithmNotAllowed { .. })));
        let mut jwk = key(2).verifying_key().to_jwk();
        jwk.kty = "oct".into();
        assert!(matches!(VerifyingKey::try_from(&jwk), Err(JwkError::UnsupportedKeyType { .. })));
        let mut jwk = key(2).verifying_key().to_jwk();
        jwk.key_use = Some("enc".into());
        assert!(matches!(VerifyingKey::try_from(&jwk), Err(JwkError::NotASigningKey { .. })));
    }

    #[test]
    fn relabelled_or_truncated_keys_are_refused() {
        let mut jwk = key(3).verifying_key().to_jwk();
        jwk.kid = key(4).kid().into();
        assert!(matches!(VerifyingKey::try_from(&jwk), Err(JwkError::KidMismatch { .. })));
        let mut jwk = key(3).verifying_key().to_jwk();
        jwk.x.truncate(20);
        assert!(matches!(VerifyingKey::try_from(&jwk), Err(JwkError::BadPublicKey { .. })));
    }

    #[test]
    fn a_key_set_finds_keys_by_kid_and_refuses_duplicates() {
        let set = KeySet::new([key(5).verifying_key(), key(6).verifying_key()]).unwrap();
        assert_eq!(set.get(key(6).kid()).unwrap().kid(), key(6).kid());
        assert!(set.get("nope").is_none());
        assert_eq!(KeySet::from_jwks(&set.to_jwks()).unwrap(), set);
        assert!(matches!(
            KeySet::new([key(5).verifying_key(), key(5).verifying_key()]),
            Err(JwkError::DuplicateKid { .. })
        ));
    }
}
