//! Arbitrary `Cookie` headers: parsing never panics, and what it reads came from the header.
#![no_main]

use latch_shared::protocol::SessionCookies;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(header) = std::str::from_utf8(data) else { return };
    if let Ok(cookies) = SessionCookies::from_cookie_header(header) {
        for value in [cookies.access_token, cookies.refresh_token, cookies.id_refresh_token]
            .into_iter()
            .flatten()
        {
            assert!(!value.is_empty() && header.contains(value.as_str()));
        }
    }
});
