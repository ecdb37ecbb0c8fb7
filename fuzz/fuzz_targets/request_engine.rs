//! Arbitrary requests through the request engine: it never panics, and nothing but a token the
//! key signed is ever admitted.
#![no_main]

use chrono::DateTime;
use latch_shared::access::Verifier;
use latch_shared::engine::{authenticate, CsrfCheck, RequestFacts};
use latch_shared::keys::{KeySet, SigningKey};
use latch_shared::sdk::Dialect;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // Fields separated by NUL: method, cookie, authorization, anti-csrf, st-auth-mode.
    let mut fields = text.split('\0');
    let method = fields.next().unwrap_or_default();
    let cookie = fields.next();
    let authorization = fields.next();
    let anti_csrf = fields.next();
    let dialect = Dialect::of_request(fields.next());
    let same_origin = data.first().is_some_and(|b| b & 1 == 1);
    let custom_header = data.first().is_some_and(|b| b & 2 == 2);
    let facts = RequestFacts {
        method,
        path: "/",
        cookie,
        authorization,
        anti_csrf,
        same_origin,
        custom_header,
        dialect,
    };
    let key = SigningKey::from_seed(&[5; 32]);
    let verifier = Verifier::new(KeySet::new([key.verifying_key()]).unwrap(), "iss", "aud");
    let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    for check in [CsrfCheck::Never, CsrfCheck::UnsafeMethods, CsrfCheck::AllMethods] {
        let admitted = authenticate(&facts, check, now, |token| verifier.verify(token, now));
        assert!(admitted.is_err(), "no token in fuzz input is signed by the key");
    }
});
