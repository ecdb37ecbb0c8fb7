//! The Latch demo: a small real site that runs behind the edge and uses the Session object.
//!
//! - `POST /login` (public at the edge): any name logs in; the app tells the edge with the
//!   `x-latch-login` response header, and the edge creates the session and sets the cookies.
//! - `/api/*` (protected): the user's id, JWT payload and session info, an editor for the info,
//!   logout through `Session::revoke_session`, and
//!   `POST /api/promote`, a new JWT payload through `Session::update_jwt_payload`.
//! - "Your devices" on `/app.html` is the edge's own `DEVICES_PATH`: no code here.
//! - Pages and the frontend SDKs are static files: `supertokens-website` 4.2.0 on `/` and
//!   `/app.html`, today's 20.1.6 on `/current.html`.

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post, put};
use axum::{Form, Json, Router};
use clap::Parser;
use latch_session::{ClearSession, Latch, Session, SessionRejection, Verification};
use latch_shared::api::{CreateSessionRequest, UserId};
use latch_shared::assertion::ASSERTION_JWKS_PATH;
use latch_shared::error::{codes, error_body};
use latch_shared::identity::{login_instruction, LOGIN_HEADER};
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
    /// The edge in front of the demo: its identity assertions are checked with the keys it
    /// publishes at `<edge>/.well-known/latch-assertion-jwks.json`.
    #[arg(long, env = "LATCH_EDGE_URL", default_value = "http://127.0.0.1:8787")]
    edge_url: String,
    /// The edge's `ASSERTION_ISSUER`.
    #[arg(long, env = "LATCH_ASSERTION_ISSUER", default_value = "latch-edge")]
    assertion_issuer: String,
    /// The edge's `ASSERTION_AUDIENCE` for this app (the edge's default: its `UPSTREAM_URL`);
    /// `http://<listen address>` when not given.
    #[arg(long, env = "LATCH_ASSERTION_AUDIENCE")]
    assertion_audience: Option<String>,
    /// Directory of the static pages.
    #[arg(long, env = "DEMO_STATIC_DIR", default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/static"))]
    static_dir: PathBuf,
}

#[derive(Deserialize)]
struct LoginForm {
    name: String,
}

async fn login(Json(form): Json<LoginForm>) -> Response {
    // Any name works, "Zoë 🚀" included: the id is the name as typed, less surrounding spaces.
    let name = form.name.trim();
    let user_id = match UserId::text(name) {
        Ok(user_id) if name.chars().count() <= 64 => user_id,
        Ok(_) => return bad_request("enter a name of at most 64 characters"),
        Err(err) => return bad_request(&format!("that name cannot be used: {err}")),
    };
    let instruction = CreateSessionRequest {
        user_id,
        jwt_payload: Some(json!({"name": name, "role": "member"})),
        session_info: Some(json!({"note": "", "theme": "light"})),
        device: None,
    };
    let mut response = Json(json!({"status": "OK"})).into_response();
    // ASCII JSON (`\u` escapes): header values must be ASCII.
    response.headers_mut().insert(
        HeaderName::from_static(LOGIN_HEADER),
        HeaderValue::from_str(&login_instruction(&instruction))
            .expect("an ASCII-only instruction is a valid header"),
    );
    response
}

fn bad_request(message: &str) -> Response {
    let body = error_body(codes::BAD_REQUEST, message);
    (StatusCode::BAD_REQUEST, [(CONTENT_TYPE, "application/json")], body).into_response()
}

async fn me(session: Session) -> Result<Json<Value>, SessionRejection> {
    let session_info = session.get_session_info().await?;
    Ok(Json(json!({
        "user_id": session.get_user_id(),
        "handle": session.get_handle(),
        "jwt_payload": session.get_jwt_payload(),
        "session_info": session_info,
    })))
}

/// Today's `mergeIntoAccessTokenPayload`: the payload with `role: admin`. Behind the edge, the
/// Session object answers with the edge's instruction, and the edge hands the browser the
/// access token re-issued with it on this same answer.
async fn promote(mut session: Session) -> Result<Response, SessionRejection> {
    let mut payload = session.get_jwt_payload().cloned().unwrap_or_else(|| json!({}));
    payload["role"] = json!("admin");
    let headers = session.update_jwt_payload(Some(payload.clone())).await?;
    Ok((headers, Json(json!({"jwt_payload": payload}))).into_response())
}

#[derive(Deserialize)]
struct InfoBody {
    session_info: Value,
}

async fn update_info(
    session: Session,
    Json(body): Json<InfoBody>,
) -> Result<Json<Value>, SessionRejection> {
    session.update_session_info(Some(body.session_info.clone())).await?;
    Ok(Json(json!({"session_info": body.session_info})))
}

/// A server-rendered page with no JavaScript at all: the edge keeps it signed in across
/// access-token expiry and sends it to the login page when the session is over.
async fn plain_page(session: Session) -> Result<Html<String>, SessionRejection> {
    let info = session.get_session_info().await?.unwrap_or(Value::Null);
    let note = info.get("note").and_then(Value::as_str).unwrap_or_default();
    Ok(Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Plain page</title>\
         <link rel=\"stylesheet\" href=\"/style.css\"></head><body><main>\
         <h1>Hello, <span id=\"user\">{user}</span></h1>\
         <p>This page is rendered on the server and runs no JavaScript.</p>\
         <p>Note: <span id=\"note\">{note}</span></p>\
         <form method=\"post\" action=\"/plain/note\">\
         <input id=\"note-input\" name=\"note\" value=\"{note}\" maxlength=\"200\">\
         <button id=\"save-note\" type=\"submit\">Save</button></form>\
         </main></body></html>",
        user = escape_html(&session.get_user_id().as_text()),
        note = escape_html(note),
    )))
}

#[derive(Deserialize)]
struct NoteForm {
    note: String,
}

/// A plain HTML form post: no anti-csrf header, so the edge accepts it only when the browser
/// proves it same-origin (Fetch Metadata).
async fn plain_note(
    session: Session,
    Form(form): Form<NoteForm>,
) -> Result<Redirect, SessionRejection> {
    let mut info = session.get_session_info().await?.unwrap_or_else(|| json!({}));
    if !info.is_object() {
        info = json!({});
    }
    info["note"] = json!(form.note.chars().take(200).collect::<String>());
    session.update_session_info(Some(info)).await?;
    Ok(Redirect::to("/plain"))
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

async fn logout(session: Session) -> Result<(ClearSession, Json<Value>), SessionRejection> {
    let cleared = session.revoke_session().await?;
    Ok((cleared, Json(json!({"status": "OK"}))))
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let latch = Latch::new(
        args.origin_url,
        args.api_key,
        Verification::BehindEdge {
            jwks_url: format!("{}{ASSERTION_JWKS_PATH}", args.edge_url.trim_end_matches('/')),
            issuer: args.assertion_issuer,
            audience: args.assertion_audience.unwrap_or_else(|| format!("http://{}", args.listen)),
        },
    );
    let app = Router::new()
        .route("/login", post(login))
        .route("/api/me", get(me))
        .route("/api/info", put(update_info))
        .route("/api/promote", post(promote))
        .route("/logout", post(logout))
        .route("/plain", get(plain_page))
        .route("/plain/note", post(plain_note))
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
