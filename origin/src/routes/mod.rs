//! The HTTP surface: one module per resource, handlers thin over [`crate::sessions`].

mod admin;
mod devices;
mod documents;
pub mod openapi;
mod sessions;
mod users;

use std::time::Instant;

use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use latch_shared::trace::{TraceContext, TRACEPARENT_HEADER};
use tower_http::catch_panic::CatchPanicLayer;
use tracing::Instrument;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, SessionErrorStatus};
use crate::AppState;

pub use latch_shared::api::MAX_BODY_BYTES;

pub use latch_shared::trace::REQUEST_ID_HEADER;

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

/// Every route, each registered with its OpenAPI operation: what is served is what is
/// documented.
fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(sessions::create))
        .routes(routes!(sessions::refresh))
        .routes(routes!(sessions::verify))
        .routes(routes!(sessions::revoke))
        .routes(routes!(sessions::used))
        .routes(routes!(sessions::get_info, sessions::update_info))
        .routes(routes!(sessions::update_jwt_payload))
        .routes(routes!(users::list, users::revoke_all))
        .routes(routes!(devices::list, devices::revoke_others))
        .routes(routes!(devices::revoke))
        .routes(routes!(admin::rotate_keys))
        .routes(routes!(admin::caller))
        .routes(routes!(documents::jwks))
        .routes(routes!(documents::settings))
        .routes(routes!(documents::openapi))
        .routes(routes!(documents::health))
        .routes(routes!(documents::ready))
        .routes(routes!(admin::metrics))
}

pub fn router(state: AppState) -> Router {
    let (router, _) = api_router().split_for_parts();
    router
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(state.clone(), deadline))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(middleware::from_fn(trace))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::Internal(anyhow::anyhow!("handler panicked")).into_response()
        }))
        .with_state(state)
}

/// Ends a request that takes longer than the configured timeout with a 503 GENERAL_ERROR, so
/// that a stuck database holds no client (or edge) forever. Every statement the handlers run
/// is atomic on its own, so what was cut short either happened or did not.
async fn deadline(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(state.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::Timeout(state.request_timeout).into_response(),
    }
}

/// Runs the request in a span named by its id: the trace id of its W3C `traceparent` (which the
/// edge sends, so edge, origin and app logs share it) or a new one. Every log line about the
/// request carries it, and the response names it in `x-request-id`.
async fn trace(request: Request, next: Next) -> Response {
    let context = request
        .headers()
        .get(TRACEPARENT_HEADER)
        .and_then(|value| value.to_str().ok())
        .and_then(TraceContext::parse)
        .unwrap_or_else(|| TraceContext::new(rand::random(), rand::random()));
    let request_id = context.trace_id().to_owned();
    let span = tracing::info_span!("request", request_id = %request_id);
    let mut response = next.run(request).instrument(span).await;
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
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
