//! Arbitrary `Cookie` headers: parsing never panics, and what it reads came from the header.
#![no_main]

use latch_shared::protocol::{without_session_cookies, SessionCookies};
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
    // What the app is forwarded never carries a session cookie.
    if let Some(kept) = without_session_cookies(header) {
        let cookies = SessionCookies::from_cookie_header(&kept).unwrap_or_default();
        assert!(cookies.access_token.is_none() && cookies.refresh_token.is_none());
        assert!(cookies.id_refresh_token.is_none());
    }
});
