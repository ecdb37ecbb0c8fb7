//! The Latch demo: a small real site that runs behind the edge and uses the Session object.
//!
//! - `POST /login` (public at the edge): any name logs in; the app tells the edge with the
//!   `x-latch-login` response header, and the edge creates the session and sets the cookies.
//! - `/api/*` (protected): the user's id, JWT payload and session info, an editor for the info,
//!   the user's sessions with "revoke", and logout through `Session::revoke_session`.
//! - Pages and the frontend SDK (`supertokens-website` 4.2.0) are static files.

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::extract::{Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use clap::Parser;
use latch_shared::app::{ClearSession, Latch, Session, Verification};
use latch_shared::error::{codes, error_body};
use latch_shared::identity::LOGIN_HEADER;
use latch_shared::SessionError;
use serde::Deserialize;
use serde_json::{json, Value};
use tower_http::services::ServeDir;

#[derive(Parser, Debug)]
#[command(about = "Latch demo app (runs behind the Latch edge)")]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "DEMO_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The origin's base URL.
    #[arg(long, env = "LATCH_ORIGIN_URL", default_value = "http://127.0.0.1:3567")]
    origin_url: String,
    /// The origin's API key.
    #[arg(long, env = "LATCH_API_KEY", hide_env_values = true)]
    api_key: String,
    /// The secret the edge signs identity headers with.
    #[arg(long, env = "LATCH_APP_SECRET", hide_env_values = true)]
    app_secret: String,
    /// Directory of the static pages.
    #[arg(long, env = "DEMO_STATIC_DIR", default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/static"))]
    static_dir: PathBuf,
}

#[derive(Deserialize)]
struct LoginForm {
    name: String,
}

async fn login(Json(form): Json<LoginForm>) -> Response {
    let name = form.name.trim();
    if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
        let body = error_body(codes::BAD_REQUEST, "enter a name of 1 to 64 characters");
        return (StatusCode::BAD_REQUEST, [(CONTENT_TYPE, "application/json")], body)
            .into_response();
    }
    let instruction = json!({
        "user_id": name,
        "jwt_payload": {"name": name, "role": "member"},
        "session_info": {"note": "", "theme": "light"},
    });
    let mut response = Json(json!({"status": "OK"})).into_response();
    response.headers_mut().insert(
        HeaderName::from_static(LOGIN_HEADER),
        HeaderValue::from_str(&instruction.to_string())
            .expect("JSON of a checked name is a valid header"),
    );
    response
}

async fn me(session: Session) -> Result<Json<Value>, SessionError> {
    let session_info = session.get_session_info().await?;
    Ok(Json(json!({
        "user_id": session.get_user_id(),
        "handle": session.get_handle(),
        "jwt_payload": session.get_jwt_payload(),
        "session_info": session_info,
    })))
}

#[derive(Deserialize)]
struct InfoBody {
    session_info: Value,
}

async fn update_info(
    session: Session,
    Json(body): Json<InfoBody>,
) -> Result<Json<Value>, SessionError> {
    session.update_session_info(Some(body.session_info.clone())).await?;
    Ok(Json(json!({"session_info": body.session_info})))
}

async fn sessions(
    State(latch): State<Latch>,
    session: Session,
) -> Result<Json<Value>, SessionError> {
    let handles = latch.get_all_session_handles_for_user(session.get_user_id()).await?;
    Ok(Json(json!({"current": session.get_handle(), "handles": handles})))
}

async fn revoke_other(
    State(latch): State<Latch>,
    session: Session,
    Path(handle): Path<String>,
) -> Result<Response, SessionError> {
    // Only the user's own sessions may be revoked from here.
    let mine = latch.get_all_session_handles_for_user(session.get_user_id()).await?;
    if !mine.contains(&handle) {
        return Ok((
            StatusCode::NOT_FOUND,
            [(CONTENT_TYPE, "application/json")],
            error_body(codes::NOT_FOUND, "no such session"),
        )
            .into_response());
    }
    let revoked = latch.revoke_session_using_session_handle(&handle).await?;
    Ok(Json(json!({"revoked": revoked})).into_response())
}

async fn logout(session: Session) -> Result<(ClearSession, Json<Value>), SessionError> {
    let cleared = session.revoke_session().await?;
    Ok((cleared, Json(json!({"status": "OK"}))))
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let latch = Latch::new(
        args.origin_url,
        args.api_key,
        Verification::BehindEdge { app_secret: args.app_secret.into_bytes() },
    );
    let app = Router::new()
        .route("/login", post(login))
        .route("/api/me", get(me))
        .route("/api/info", put(update_info))
        .route("/api/sessions", get(sessions))
        .route("/api/sessions/{handle}", delete(revoke_other))
        .route("/logout", post(logout))
        .fallback_service(ServeDir::new(&args.static_dir))
        .with_state(latch);
    let listener =
        tokio::net::TcpListener::bind(args.listen).await.expect("the demo's address is free");
    println!("latch-demo listening on {}", args.listen);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .expect("the demo server runs");
}
