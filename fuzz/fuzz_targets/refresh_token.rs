//! Arbitrary text as a refresh token: parsing never panics and accepts only canonical text.
#![no_main]

use latch_shared::refresh::RefreshToken;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(token) = RefreshToken::parse(text) {
        assert_eq!(token.expose(), text);
    }
});
