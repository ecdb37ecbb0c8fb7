//! Who is calling: an app backend or admin (the API key) or the edge (the edge secret), both as
//! `Authorization: Bearer …`, compared in constant time.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use latch_shared::api::CLIENT_ADDRESS_HEADER;
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::AppState;

pub use latch_shared::api::Caller;

fn secret_matches(expected: &str, presented: &str) -> bool {
    expected.as_bytes().ct_eq(presented.as_bytes()).into()
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let presented = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .ok_or(ApiError::Unauthenticated)?;
        // Evaluate both comparisons so timing does not tell which secret was close.
        let app = secret_matches(state.credentials.api_key.expose(), presented);
        let edge = secret_matches(state.credentials.edge_secret.expose(), presented);
        match (app, edge) {
            (true, _) => Ok(Caller::App),
            (false, true) => Ok(Caller::Edge),
            _ => Err(ApiError::Unauthenticated),
        }
    }
}

/// The end client's address, as the edge (or an app backend) reports it in
/// `x-latch-client-address`: the key of the per-address rate limits. Only authenticated callers
/// reach the handlers that read it, so it is theirs to vouch for.
pub struct ClientAddress(pub Option<std::net::IpAddr>);

impl FromRequestParts<AppState> for ClientAddress {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, ApiError> {
        let Some(value) = parts.headers.get(CLIENT_ADDRESS_HEADER) else {
            return Ok(ClientAddress(None));
        };
        value
            .to_str()
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .map(|ip| ClientAddress(Some(ip)))
            .ok_or_else(|| {
                ApiError::BadRequest(format!("{CLIENT_ADDRESS_HEADER} is not an IP address"))
            })
    }
}

/// An app backend or admin: required for user-wide operations and metrics.
pub struct AppCaller;

impl FromRequestParts<AppState> for AppCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match Caller::from_request_parts(parts, state).await? {
            Caller::App => Ok(AppCaller),
            Caller::Edge => Err(ApiError::Forbidden),
        }
    }
}
