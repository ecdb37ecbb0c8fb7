//! The origin's one error type. Every failure becomes `{"error": KIND, "message": …}` with a
//! fitting status; internal details are logged, never sent.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::header;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use latch_shared::error::{codes, error_body};
use latch_shared::{ErrorKind, SessionError};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error("{0}")]
    BadRequest(String),
    #[error("missing or wrong credentials: send Authorization: Bearer <API key>")]
    Unauthenticated,
    #[error("this credential may not call this endpoint")]
    Forbidden,
    #[error("no such route")]
    NotFound,
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    #[error("request body is too large")]
    PayloadTooLarge,
    #[error("database error")]
    Database(#[from] sqlx::Error),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
    #[error("the request took longer than {} s; try again", .0.as_secs())]
    Timeout(std::time::Duration),
    #[error("too many requests; retry in {} s", retry_after_secs(*.0))]
    RateLimited(std::time::Duration),
}

/// `Retry-After` in whole seconds, rounded up, at least 1.
fn retry_after_secs(wait: std::time::Duration) -> u64 {
    u64::try_from(wait.as_millis().div_ceil(1000)).unwrap_or(u64::MAX).max(1)
}

impl From<crate::limits::RateLimited> for ApiError {
    fn from(limited: crate::limits::RateLimited) -> Self {
        ApiError::RateLimited(limited.0)
    }
}

/// Marks a response carrying a session error, whose status the router sets to the configured
/// session-expired status (see `routes::apply_session_expired_status`).
#[derive(Clone, Copy)]
pub struct SessionErrorStatus;

/// Placeholder status for session errors before the router applies the configured one.
pub const PLACEHOLDER_SESSION_STATUS: u16 = latch_shared::DEFAULT_SESSION_EXPIRED_STATUS;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            ApiError::Session(err) => {
                let status = err.kind().status(PLACEHOLDER_SESSION_STATUS);
                let mut response =
                    (StatusCode::from_u16(status).unwrap_or(StatusCode::UNAUTHORIZED), Json(err))
                        .into_response();
                if err.kind() != ErrorKind::GeneralError {
                    response.extensions_mut().insert(SessionErrorStatus);
                }
                return response;
            }
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, codes::BAD_REQUEST),
            ApiError::Unauthenticated => (StatusCode::UNAUTHORIZED, codes::UNAUTHENTICATED),
            ApiError::Forbidden => (StatusCode::FORBIDDEN, codes::FORBIDDEN),
            ApiError::NotFound => (StatusCode::NOT_FOUND, codes::NOT_FOUND),
            ApiError::MethodNotAllowed => {
                (StatusCode::METHOD_NOT_ALLOWED, codes::METHOD_NOT_ALLOWED)
            }
            ApiError::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, codes::PAYLOAD_TOO_LARGE),
            ApiError::Database(err) => {
                tracing::error!(error = %err, "database error");
                (StatusCode::INTERNAL_SERVER_ERROR, ErrorKind::GeneralError.as_str())
            }
            ApiError::Internal(err) => {
                tracing::error!(error = %err, "internal error");
                (StatusCode::INTERNAL_SERVER_ERROR, ErrorKind::GeneralError.as_str())
            }
            ApiError::RateLimited(wait) => {
                let body = error_body(codes::RATE_LIMITED, &self.to_string());
                return (
                    StatusCode::TOO_MANY_REQUESTS,
                    [
                        (header::CONTENT_TYPE, "application/json".to_owned()),
                        (header::RETRY_AFTER, retry_after_secs(*wait).to_string()),
                    ],
                    body,
                )
                    .into_response();
            }
            ApiError::Timeout(limit) => {
                tracing::error!(limit_secs = limit.as_secs(), "request timed out");
                (StatusCode::SERVICE_UNAVAILABLE, ErrorKind::GeneralError.as_str())
            }
        };
        let body = error_body(code, &self.to_string());
        (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge
        } else {
            ApiError::BadRequest(rejection.body_text())
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::BadRequest(rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::BadRequest(rejection.body_text())
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
