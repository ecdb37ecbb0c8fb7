//! The edge's verification path (`latch_shared::access::Verifier`) as a WASM module for Node, so
//! its cost in V8 can be measured apart from workerd's request handling.

use chrono::{DateTime, Duration, Utc};
use latch_shared::access::{sign, SessionClaims, Verifier};
use latch_shared::keys::{KeySet, SigningKey};
use wasm_bindgen::prelude::wasm_bindgen;

#[wasm_bindgen]
pub struct VerifyBench {
    verifier: Verifier,
    token: String,
    now: DateTime<Utc>,
}

#[wasm_bindgen]
impl VerifyBench {
    /// A verifier with one key, and a token of realistic size signed by it.
    #[wasm_bindgen(constructor)]
    pub fn new() -> VerifyBench {
        let key = SigningKey::from_seed(&[42; 32]);
        let now = DateTime::from_timestamp(1_800_000_000, 0).expect("valid time");
        let claims = SessionClaims {
            iss: "latch".into(),
            aud: "latch".into(),
            sub: "user-1234567890".into(),
            uid: Some(latch_shared::api::UserId::Text("user-1234567890".into())),
            sid: "AAAAAAAAAAAAAAAAAAAAAA".into(),
            csrf: Some("BBBBBBBBBBBBBBBBBBBBBB".into()),
            pld: Some(serde_json_value()),
            rgen: Some(0),
        };
        let token = sign(&key, claims, now, Duration::seconds(3600)).expect("signs").value;
        let verifier =
            Verifier::new(KeySet::new([key.verifying_key()]).expect("one key"), "latch", "latch");
        VerifyBench { verifier, token, now }
    }

    /// The token, so the caller can verify it elsewhere as a baseline.
    pub fn token(&self) -> String {
        self.token.clone()
    }

    /// Verifies the token `n` times; returns how many verified.
    pub fn verify(&self, n: u32) -> u32 {
        (0..n).filter(|_| self.verifier.verify(&self.token, self.now).is_ok()).count() as u32
    }
}

impl Default for VerifyBench {
    fn default() -> Self {
        Self::new()
    }
}

/// A typical small app payload.
fn serde_json_value() -> serde_json::Value {
    serde_json::Value::from(
        [("role", "member"), ("plan", "pro")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), serde_json::Value::from(v)))
            .collect::<serde_json::Map<_, _>>(),
    )
}
