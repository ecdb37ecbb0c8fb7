//! Arbitrary settings documents: parsing never panics, and whatever is accepted is valid.
#![no_main]

use latch_shared::settings::SharedSettings;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(settings) = SharedSettings::parse(text) {
        assert!(settings.validate().is_ok());
    }
});
