//! The HTTP surface: one module per resource, handlers thin over [`crate::sessions`].

mod public;
mod sessions;
mod users;

use std::time::Instant;

use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use latch_shared::api::paths;
use tower_http::catch_panic::CatchPanicLayer;

use crate::error::{ApiError, SessionErrorStatus};
use crate::AppState;

pub use latch_shared::api::MAX_BODY_BYTES;

/// `Json` whose rejections are [`ApiError`]s, so bad bodies get the API's JSON error shape.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

/// `Query` whose rejections are [`ApiError`]s.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route(paths::SESSIONS, post(sessions::create))
        .route(paths::REFRESH, post(sessions::refresh))
        .route(paths::VERIFY, post(sessions::verify))
        .route(paths::SESSION, delete(sessions::revoke))
        .route(paths::SESSION_INFO, get(sessions::get_info).put(sessions::update_info))
        .route(paths::USER_SESSIONS, get(users::list).delete(users::revoke_all))
        .route(paths::ROTATE_KEYS, post(public::rotate_keys))
        .route(paths::JWKS, get(public::jwks))
        .route(paths::SETTINGS, get(public::settings))
        .route(paths::OPENAPI, get(public::openapi))
        .route(paths::HEALTH, get(public::health))
        .route(paths::READY, get(public::ready))
        .route(paths::METRICS, get(public::metrics))
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::Internal(anyhow::anyhow!("handler panicked")).into_response()
        }))
        .with_state(state)
}

/// Applies the configured session-expired status and records latency per route.
async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let started = Instant::now();
    let mut response = next.run(request).await;
    if response.extensions().get::<SessionErrorStatus>().is_some() {
        *response.status_mut() = StatusCode::from_u16(state.session_expired_status)
            .expect("validated as a 4xx at start-up");
    }
    let class = format!("{}xx", response.status().as_u16() / 100);
    state
        .sessions
        .metrics
        .request_seconds
        .with_label_values(&[&route, &class])
        .observe(started.elapsed().as_secs_f64());
    response
}
