//! Session handles and refresh tokens.
//!
//! A refresh token is `<session handle>.<secret>`: the handle binds it to its session (and lets
//! the origin find the row without a scan); the secret is 128 unpredictable bits followed by a
//! 128-bit tag, an HMAC over handle and bits under the origin's [`RotationKey`]. The tag lets the
//! origin tell a token it issued from a forgery before looking at the database, so a made-up
//! token for a known handle is refused as invalid rather than taken for a stolen one (which
//! would let anyone log a user out). Only [`TokenHash`]es of refresh tokens are ever stored.
//!
//! Rotation is deterministic: the token that follows `t` is derived from `HMAC(rotation key, t)`.
//! The origin therefore never stores a token, yet can hand the *same* successor to every request
//! that presents `t` until that successor is proven in use — parallel tabs and retried requests
//! all converge on one lineage. Without the rotation key nobody can compute a successor, so a
//! stolen old token replayed after that is detected.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use hmac::{Hmac, Mac};
use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::csrf::AntiCsrfToken;

const HANDLE_BYTES: usize = 16;
const RANDOM_BYTES: usize = 16;
const TAG_BYTES: usize = 16;
const SECRET_BYTES: usize = RANDOM_BYTES + TAG_BYTES;
/// Length of the base64url text of a session handle.
pub const HANDLE_LEN: usize = 22;
const SECRET_LEN: usize = 43;
/// Length of a refresh token's text.
pub const REFRESH_TOKEN_LEN: usize = HANDLE_LEN + 1 + SECRET_LEN;

/// A session's fixed, public identifier: 128 random bits in base64url.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionHandle(String);

impl SessionHandle {
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let mut bytes = [0u8; HANDLE_BYTES];
        rng.fill_bytes(&mut bytes);
        SessionHandle(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Accepts exactly the canonical text [`SessionHandle::generate`] produces.
    pub fn parse(text: &str) -> Option<Self> {
        canonical_b64(text, HANDLE_BYTES).map(|_| SessionHandle(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for SessionHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Decodes `text` as unpadded base64url of exactly `len` bytes, accepting only the canonical
/// encoding (no slack bits set), so each value has exactly one spelling.
fn canonical_b64(text: &str, len: usize) -> Option<Vec<u8>> {
    let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
    (bytes.len() == len && URL_SAFE_NO_PAD.encode(&bytes) == text).then_some(bytes)
}

/// A refresh token. Its `Debug` output hides the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshToken {
    handle: SessionHandle,
    secret: [u8; SECRET_BYTES],
}

/// Why a presented refresh token was refused (always UNAUTHORISED to the client).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("refresh token is malformed")]
pub struct MalformedRefreshToken;

impl RefreshToken {
    pub fn parse(text: &str) -> Result<Self, MalformedRefreshToken> {
        if text.len() != REFRESH_TOKEN_LEN {
            return Err(MalformedRefreshToken);
        }
        let (handle, secret) = text.split_once('.').ok_or(MalformedRefreshToken)?;
        let handle = SessionHandle::parse(handle).ok_or(MalformedRefreshToken)?;
        let secret = canonical_b64(secret, SECRET_BYTES)
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or(MalformedRefreshToken)?;
        Ok(RefreshToken { handle, secret })
    }

    pub fn handle(&self) -> &SessionHandle {
        &self.handle
    }

    /// The token's text, for a cookie or a response body. Never log it.
    pub fn expose(&self) -> String {
        format!("{}.{}", self.handle, URL_SAFE_NO_PAD.encode(self.secret))
    }

    /// What the database stores in place of the token.
    pub fn hash(&self) -> TokenHash {
        TokenHash(Sha256::digest(self.expose().as_bytes()).into())
    }
}

impl std::fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshToken").field("handle", &self.handle).finish_non_exhaustive()
    }
}

/// SHA-256 of a refresh token. 256 bits of token entropy make a slow hash unnecessary.
#[derive(Clone, Copy)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    /// Lowercase hex, as stored.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn from_hex(hex: &str) -> Option<Self> {
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let mut bytes = [0u8; 32];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(TokenHash(bytes))
    }
}

/// Constant-time, so a stored hash cannot be probed byte by byte through response timing.
impl PartialEq for TokenHash {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}
impl Eq for TokenHash {}

impl std::fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenHash({}…)", &self.to_hex()[..8])
    }
}

/// The origin's secret for deriving a refresh token's successor and the values issued with it.
#[derive(Clone)]
pub struct RotationKey([u8; 32]);

impl RotationKey {
    pub fn new(key: [u8; 32]) -> Self {
        RotationKey(key)
    }

    fn mac(&self, label: &[u8], parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(label);
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    fn derive(&self, label: &[u8], token: &RefreshToken) -> [u8; 32] {
        self.mac(label, &[token.expose().as_bytes()])
    }

    fn tag(&self, handle: &SessionHandle, random: &[u8]) -> [u8; 32] {
        self.mac(b"latch/refresh-tag/v1\0", &[handle.as_str().as_bytes(), b".", random])
    }

    fn seal(&self, handle: SessionHandle, random: &[u8]) -> RefreshToken {
        let mut secret = [0u8; SECRET_BYTES];
        secret[..RANDOM_BYTES].copy_from_slice(&random[..RANDOM_BYTES]);
        secret[RANDOM_BYTES..]
            .copy_from_slice(&self.tag(&handle, &random[..RANDOM_BYTES])[..TAG_BYTES]);
        RefreshToken { handle, secret }
    }

    /// The first refresh token of a new session.
    pub fn first_token<R: RngCore + CryptoRng>(
        &self,
        handle: SessionHandle,
        rng: &mut R,
    ) -> RefreshToken {
        let mut random = [0u8; RANDOM_BYTES];
        rng.fill_bytes(&mut random);
        self.seal(handle, &random)
    }

    /// Whether this key issued `token` (constant time). A token that fails is a forgery or
    /// belongs to another deployment: never evidence of theft.
    pub fn issued(&self, token: &RefreshToken) -> bool {
        let (random, tag) = token.secret.split_at(RANDOM_BYTES);
        self.tag(&token.handle, random)[..TAG_BYTES].ct_eq(tag).into()
    }

    /// The token that replaces `token` when it is used to refresh.
    pub fn successor(&self, token: &RefreshToken) -> RefreshToken {
        let random = self.derive(b"latch/refresh/v1\0", token);
        self.seal(token.handle.clone(), &random)
    }

    /// The anti-CSRF token issued with `token`'s successor: equal for every parallel refresh, so
    /// whichever response a browser applies last, its cookie and its header agree.
    pub fn anti_csrf_for_successor(&self, token: &RefreshToken) -> AntiCsrfToken {
        AntiCsrfToken::from_bytes(&self.derive(b"latch/anti-csrf/v1\0", token)[..16])
    }

    /// The id-refresh-token value issued with `token`'s successor.
    pub fn id_refresh_for_successor(&self, token: &RefreshToken) -> String {
        URL_SAFE_NO_PAD.encode(&self.derive(b"latch/id-refresh/v1\0", token)[..16])
    }
}

impl std::fmt::Debug for RotationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RotationKey(..)")
    }
}

/// A random id-refresh-token value. The server never checks it; the frontend SDK reads it to
/// know that a session exists.
pub fn generate_id_refresh_token<R: RngCore + CryptoRng>(rng: &mut R) -> String {
    let mut bytes = [0u8; 16];
    rng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::{rngs::StdRng, SeedableRng};

    fn rng() -> StdRng {
        StdRng::seed_from_u64(42)
    }

    fn token() -> RefreshToken {
        let mut rng = rng();
        RotationKey::new([1; 32]).first_token(SessionHandle::generate(&mut rng), &mut rng)
    }

    #[test]
    fn only_tokens_this_key_issued_are_authentic() {
        let key = RotationKey::new([1; 32]);
        let first = token();
        assert!(key.issued(&first));
        assert!(key.issued(&key.successor(&first)));
        assert!(!RotationKey::new([2; 32]).issued(&first));
        let text = first.expose();
        let (handle, secret) = text.split_once('.').unwrap();
        let forged = RefreshToken::parse(&format!("{handle}.{}", "A".repeat(43))).unwrap();
        assert!(!key.issued(&forged));
        // Moving a genuine secret to another session's handle breaks the tag.
        let other = SessionHandle::generate(&mut StdRng::seed_from_u64(9));
        let moved = RefreshToken::parse(&format!("{other}.{secret}")).unwrap();
        assert!(!key.issued(&moved));
    }

    #[test]
    fn tokens_round_trip_through_text() {
        let token = token();
        let text = token.expose();
        assert_eq!(text.len(), REFRESH_TOKEN_LEN);
        assert_eq!(RefreshToken::parse(&text).unwrap(), token);
        assert_eq!(text.split('.').next().unwrap(), token.handle().as_str());
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let token = token();
        let secret = token.expose().split('.').nth(1).unwrap().to_owned();
        assert!(!format!("{token:?}").contains(&secret));
        assert!(!format!("{:?}", token.hash()).contains(&token.hash().to_hex()));
    }

    #[test]
    fn hashes_are_stable_hex_and_distinguish_tokens() {
        let token = token();
        let hex = token.hash().to_hex();
        assert_eq!(hex.len(), 64);
        assert_eq!(TokenHash::from_hex(&hex).unwrap(), token.hash());
        let key = RotationKey::new([1; 32]);
        assert_ne!(key.successor(&token).hash(), token.hash());
        assert!(TokenHash::from_hex("zz").is_none());
    }

    #[test]
    fn successors_are_deterministic_keyed_and_bound_to_the_session() {
        let token = token();
        let key = RotationKey::new([1; 32]);
        let next = key.successor(&token);
        assert_eq!(next, key.successor(&token));
        assert_eq!(next.handle(), token.handle());
        assert_ne!(next, token);
        assert_ne!(RotationKey::new([2; 32]).successor(&token), next);
        assert_eq!(key.anti_csrf_for_successor(&token), key.anti_csrf_for_successor(&token));
        assert_ne!(key.anti_csrf_for_successor(&token), key.anti_csrf_for_successor(&next));
    }

    #[test]
    fn non_canonical_and_wrong_shaped_tokens_are_refused() {
        let text = token().expose();
        let (handle, secret) = text.split_once('.').unwrap();
        for bad in [
            String::new(),
            handle.to_owned(),
            format!("{handle}:{secret}"),
            format!("{handle}.{secret}="),
            format!("{secret}.{handle}"),
            format!("{handle}.{}", &secret[..42]),
            text.replace('.', ""),
        ] {
            assert!(RefreshToken::parse(&bad).is_err(), "{bad}");
        }
        // Last char with slack bits set: decodes to the same bytes, but is not canonical.
        let last = secret.chars().last().unwrap();
        let sibling = if last == 'A' { 'B' } else { 'A' };
        let twisted = format!("{handle}.{}{sibling}", &secret[..42]);
        if let Ok(t) = RefreshToken::parse(&twisted) {
            assert_eq!(t.expose(), twisted, "a parsed token must re-encode to its own text");
        }
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(input in ".{0,200}") {
            if let Ok(token) = RefreshToken::parse(&input) {
                prop_assert_eq!(token.expose(), input);
            }
        }

        #[test]
        fn arbitrary_token_shaped_text_parses_only_canonically(
            h in "[A-Za-z0-9_-]{22}", s in "[A-Za-z0-9_-]{43}",
        ) {
            let text = format!("{h}.{s}");
            if let Ok(token) = RefreshToken::parse(&text) {
                prop_assert_eq!(token.expose(), text);
            }
        }
    }
}
