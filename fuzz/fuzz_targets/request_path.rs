//! Arbitrary request paths through the edge's path check and user ids through their parser:
//! never a panic, and a path the check passes has no dot segment or backslash once decoded.
#![no_main]

use latch_shared::engine::check_path;
use latch_shared::user_id::{UserId, UserIdType};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if check_path(text).is_ok() {
        assert!(!text.contains('\\'));
        assert!(!text.split('/').any(|segment| segment == "." || segment == ".."));
    }
    for kind in [UserIdType::String, UserIdType::Number] {
        if let Ok(id) = UserId::from_path(text, kind) {
            assert_eq!(id.kind(), kind);
        }
    }
    let _ = serde_json::from_str::<UserId>(text);
});
