//! Arbitrary text as an access token: verification must refuse it without panicking.
#![no_main]

use chrono::DateTime;
use latch_shared::access::Verifier;
use latch_shared::keys::{KeySet, SigningKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else { return };
    let key = SigningKey::from_seed(&[7; 32]);
    let verifier = Verifier::new(KeySet::new([key.verifying_key()]).unwrap(), "iss", "aud");
    let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    // Without the private key no input can verify.
    assert!(verifier.verify(token, now).is_err());
});
