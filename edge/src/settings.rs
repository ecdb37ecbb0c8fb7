//! The origin's settings document (its shared settings and public keys), as the entry fetched
//! it: from the runtime's Cache API, which the isolates of a location share and the origin's
//! `Cache-Control` bounds, or from the origin itself when the load is `fresh` (an unknown `kid`:
//! a rotation no cache has seen yet). See [`crate::step::Step::LoadSettings`].

use latch_shared::api::paths;
use latch_shared::keys::KeySet;
use latch_shared::settings::{SharedSettings, MAX_SETTINGS_BYTES};

use crate::config::EdgeConfig;

/// Where the document is.
pub fn url(config: &EdgeConfig) -> String {
    format!("{}{}", config.origin_url, paths::SETTINGS)
}

/// Parses and validates the document.
pub fn parse(text: &str) -> Result<(SharedSettings, KeySet), String> {
    if text.len() > MAX_SETTINGS_BYTES {
        return Err(format!("the settings document is over {MAX_SETTINGS_BYTES} bytes"));
    }
    let settings = SharedSettings::parse(text).map_err(|err| err.to_string())?;
    let keys = KeySet::from_jwks(&settings.jwks).map_err(|err| format!("keys refused: {err}"))?;
    Ok((settings, keys))
}
