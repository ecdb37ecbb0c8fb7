//! Arbitrary text as a `traceparent` header: parsing must not panic, and whatever parses must
//! print as a header that parses to the same context.
#![no_main]

use latch_shared::trace::TraceContext;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(header) = std::str::from_utf8(data) else { return };
    if let Some(context) = TraceContext::parse(header) {
        assert_eq!(TraceContext::parse(&context.to_string()), Some(context));
    }
});
