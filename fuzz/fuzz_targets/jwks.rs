//! Arbitrary JSON as a JWKS from the origin: parsing and key import never panic.
#![no_main]

use latch_shared::keys::{Jwks, KeySet};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(jwks) = serde_json::from_slice::<Jwks>(data) {
        if let Ok(set) = KeySet::from_jwks(&jwks) {
            assert_eq!(set.len(), jwks.keys.len());
        }
    }
});
