//! Loading the origin's settings document (its shared settings and public keys) into the
//! isolate: from the Cache API, which the isolates of a location share and the origin's
//! `Cache-Control` bounds, or from the origin itself when `fresh` (an unknown `kid`: a rotation
//! no cache has seen yet).

use latch_shared::api::paths;
use latch_shared::keys::KeySet;
use latch_shared::settings::{SharedSettings, MAX_SETTINGS_BYTES};
use worker::{Cache, Fetch, Method, Request, Response};

use crate::config::EdgeConfig;

async fn document(url: &str, fresh: bool) -> Result<Response, String> {
    let cache = Cache::default();
    if !fresh {
        if let Ok(Some(cached)) = cache.get(url, false).await {
            return Ok(cached);
        }
    }
    let request = Request::new(url, Method::Get).map_err(|err| err.to_string())?;
    let mut response = Fetch::Request(request).send().await.map_err(|err| err.to_string())?;
    if response.status_code() != 200 {
        return Err(format!("the origin answered {}", response.status_code()));
    }
    if let Ok(copy) = response.cloned() {
        if let Err(err) = cache.put(url, copy).await {
            worker::console_warn!("latch-edge: could not cache the settings: {err}");
        }
    }
    Ok(response)
}

/// Fetches, parses and validates the settings document.
pub async fn fetch(config: &EdgeConfig, fresh: bool) -> Result<(SharedSettings, KeySet), String> {
    // A plain string, not `worker::Url`: the url crate's IDNA tables would double the bundle.
    let url = format!("{}{}", config.origin_url, paths::SETTINGS);
    let text = document(&url, fresh).await?.text().await.map_err(|err| err.to_string())?;
    if text.len() > MAX_SETTINGS_BYTES {
        return Err(format!("the settings document is over {MAX_SETTINGS_BYTES} bytes"));
    }
    let settings = SharedSettings::parse(&text).map_err(|err| err.to_string())?;
    let keys = KeySet::from_jwks(&settings.jwks).map_err(|err| format!("keys refused: {err}"))?;
    Ok((settings, keys))
}
