//! The OpenAPI document, generated from the handlers' `#[utoipa::path]` annotations and the
//! API types in `latch_shared::api`: the router registers exactly the routes the document lists
//! (`utoipa_axum::routes!`), so neither can change without the other. `origin/openapi.json` is
//! the committed copy; `origin/tests/openapi.rs` fails when they differ.

use latch_shared::error::ErrorBody;
use latch_shared::DEFAULT_SESSION_EXPIRED_STATUS;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoResponses, Modify, OpenApi, ToResponse};

/// Malformed JSON, wrong types, unknown fields, an invalid user id or handle, or a JWT payload
/// too large for a cookie.
#[derive(ToResponse)]
#[allow(dead_code)]
pub struct BadRequest(ErrorBody);

/// Missing or wrong bearer credential.
#[derive(ToResponse)]
#[allow(dead_code)]
pub struct Unauthenticated(ErrorBody);

/// The edge secret may not call this endpoint: it needs the API key.
#[derive(ToResponse)]
#[allow(dead_code)]
pub struct Forbidden(ErrorBody);

/// The request body is over 64 KiB.
#[derive(ToResponse)]
#[allow(dead_code)]
pub struct PayloadTooLarge(ErrorBody);

/// UNAUTHORISED, TRY_REFRESH_TOKEN or TOKEN_THEFT_DETECTED, with the configured
/// session-expired status (`LATCH_SESSION_EXPIRED_STATUS`, 440 by default).
#[derive(ToResponse)]
#[allow(dead_code)]
pub struct SessionError(ErrorBody);

/// GENERAL_ERROR: the database or the service failed.
#[derive(ToResponse)]
#[allow(dead_code)]
pub struct GeneralError(ErrorBody);

/// GENERAL_ERROR: the request took longer than `LATCH_REQUEST_TIMEOUT_SECS`.
#[derive(ToResponse)]
#[allow(dead_code)]
pub struct TimedOut(ErrorBody);

/// What every authenticated operation may answer besides its success: a request it cannot
/// read (400), a missing or wrong credential (401), a failure of the service (500).
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum CallErrors {
    #[response(status = 400)]
    BadRequest(#[ref_response] BadRequest),
    #[response(status = 401)]
    Unauthenticated(#[ref_response] Unauthenticated),
    #[response(status = 500)]
    GeneralError(#[ref_response] GeneralError),
}

/// What an operation with a JSON body may answer too: a body over 64 KiB.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum BodyErrors {
    #[response(status = 413)]
    PayloadTooLarge(#[ref_response] PayloadTooLarge),
}

/// What an operation that checks a session may answer: its session error.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum SessionErrors {
    #[response(status = 440)]
    SessionError(#[ref_response] SessionError),
}

/// What a rate-limited operation (refresh, session creation) may answer: too many requests
/// from one session or client address (`LATCH_RATE_LIMIT_*`).
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum LimitErrors {
    #[response(
        status = 429,
        description = "RATE_LIMITED: too many requests from this session or client address",
        headers(("Retry-After" = u64, description = "Seconds to wait before trying again"))
    )]
    RateLimited(ErrorBody),
}

/// What an operation for app backends only answers the edge's credential.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum AppOnlyErrors {
    #[response(status = 403)]
    Forbidden(#[ref_response] Forbidden),
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Latch origin API",
        version = "1.0.0",
        description = "Creates, refreshes (rotating refresh tokens with theft detection), \
            verifies and revokes sessions; stores session info; publishes the access-token \
            signing keys and the settings the edge shares. Session errors answer with the \
            configured session-expired status (default 440) and a body {\"error\": KIND, \
            \"message\": ...}; KIND is one of UNAUTHORISED, TRY_REFRESH_TOKEN, \
            TOKEN_THEFT_DETECTED (GENERAL_ERROR answers 500).",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    servers((url = "http://127.0.0.1:3567", description = "the origin's default address")),
    components(schemas(ErrorBody), responses(
        BadRequest,
        Unauthenticated,
        Forbidden,
        PayloadTooLarge,
        SessionError,
        GeneralError,
        TimedOut
    )),
    modifiers(&BearerSchemes)
)]
pub struct ApiDoc;

/// Every route runs under the request timeout (`routes::deadline`): each operation may answer
/// 503.
struct Deadline;

impl Modify for Deadline {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{Ref, RefOr};
        for item in openapi.paths.paths.values_mut() {
            let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete];
            for operation in operations.into_iter().flatten() {
                operation
                    .responses
                    .responses
                    .entry("503".into())
                    .or_insert_with(|| RefOr::Ref(Ref::from_response_name("TimedOut")));
            }
        }
    }
}

/// The two bearer credentials.
struct BearerSchemes;

impl Modify for BearerSchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for (name, description) in [
            ("apiKey", "LATCH_API_KEY: app backends and admins"),
            ("edgeSecret", "LATCH_EDGE_SECRET: the edge"),
        ] {
            components.add_security_scheme(
                name,
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .description(Some(description))
                        .build(),
                ),
            );
        }
    }
}

/// The document, with session errors under the seed's default status (the committed copy).
pub fn document() -> utoipa::openapi::OpenApi {
    let mut document = super::api_router().split_for_parts().1;
    Deadline.modify(&mut document);
    document
}

/// The document as served at `/openapi.json`: session errors under the status this deployment
/// answers them with.
pub fn document_for(session_expired_status: u16) -> utoipa::openapi::OpenApi {
    let mut document = document();
    let default = DEFAULT_SESSION_EXPIRED_STATUS.to_string();
    for item in document.paths.paths.values_mut() {
        let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete];
        for operation in operations.into_iter().flatten() {
            // Where the status is also another answer's (401, say), both carry the same error
            // body; the entry already there stays.
            if let Some(response) = operation.responses.responses.remove(&default) {
                let status = session_expired_status.to_string();
                operation.responses.responses.entry(status).or_insert(response);
            }
        }
    }
    document
}
