//! # latch-edge
//!
//! The Cloudflare Worker in front of any web app. On every request it does what needs no
//! database — verify the access token, anti-CSRF, the KV blacklist — and forwards the request
//! to the app with the verified identity. The session endpoints (refresh, signout, session
//! info) and the app's login/logout instructions go to the origin.

mod config;
mod keys;
mod origin;
mod respond;
mod verify;

use std::cell::OnceCell;
use std::rc::Rc;

use chrono::{DateTime, Utc};
use latch_shared::api::{blacklist_key, paths, BlacklistRequest, SessionInfo};
use latch_shared::error::{codes, error_body};
use latch_shared::identity::{
    parse_login_instruction, Identity, HEADER_PREFIX, LOGIN_HEADER, LOGOUT_HEADER,
};
use latch_shared::protocol::MAX_COOKIE_HEADER_LEN;
use latch_shared::SessionError;
use subtle::ConstantTimeEq;
use worker::{
    event, Context, Date, Env, Fetch, Headers, Method, Request, RequestInit, RequestRedirect,
    Response, Result,
};

pub use config::{Access, BlacklistMode, EdgeConfig};
use origin::OriginError;
use verify::Session;

thread_local! {
    /// Configuration is fixed for an isolate's life: parse and validate it once.
    static CONFIG: OnceCell<std::result::Result<Rc<EdgeConfig>, String>> = const { OnceCell::new() };
}

fn load_config(env: &Env) -> std::result::Result<Rc<EdgeConfig>, String> {
    CONFIG.with(|cell| {
        cell.get_or_init(|| {
            EdgeConfig::from_lookup(|name| {
                env.secret(name)
                    .map(|value| value.to_string())
                    .or_else(|_| env.var(name).map(|value| value.to_string()))
                    .ok()
            })
            .map(Rc::new)
        })
        .clone()
    })
}

fn now() -> DateTime<Utc> {
    // std::time and chrono's clock do not work on wasm32-unknown-unknown: ask the runtime.
    DateTime::from_timestamp_millis(Date::now().as_millis() as i64).unwrap_or_default()
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    let config = match load_config(&env) {
        Ok(config) => config,
        Err(err) => {
            worker::console_error!("latch-edge: invalid configuration: {err}");
            let body = SessionError::general(format!("edge misconfigured: {err}")).to_json();
            return respond::json(500, &body);
        }
    };
    let request_origin = req.headers().get("origin")?;
    let response = match handle(req, &env, &ctx, &config).await {
        Ok(response) => response,
        Err(err) => {
            worker::console_error!("latch-edge: {err}");
            respond::json(500, &SessionError::general("edge error").to_json())?
        }
    };
    respond::cors(&config, request_origin.as_deref(), &response)?;
    respond::no_store_if_setting_cookies(&response)?;
    Ok(response)
}

fn oversized_headers(req: &Request, config: &EdgeConfig) -> bool {
    req.headers().entries().any(|(name, value)| {
        let limit = if name == "cookie" { MAX_COOKIE_HEADER_LEN } else { config.max_header_bytes };
        value.len() > limit
    })
}

async fn handle(req: Request, env: &Env, ctx: &Context, config: &EdgeConfig) -> Result<Response> {
    if oversized_headers(&req, config) {
        return respond::json(
            431,
            &error_body(codes::HEADER_TOO_LARGE, "a request header is too large"),
        );
    }
    let path = req.path();
    let method = req.method();
    if method == Method::Options && req.headers().has("access-control-request-method")? {
        return respond::preflight(config, &req);
    }
    if path == config.cookies.refresh_path && method == Method::Post {
        return refresh(&req, env, ctx, config).await;
    }
    if path == config.signout_path && method == Method::Post {
        return signout(&req, env, config).await;
    }
    if path == config.session_info_path && (method == Method::Get || method == Method::Put) {
        return session_info(req, env, config).await;
    }
    if path == paths::EDGE_BLACKLIST {
        return internal_blacklist(req, env, config).await;
    }
    let session = match config.routes.access(&path) {
        Access::Public => None,
        Access::Optional => verify::authenticate(&req, env, config, now()).await.ok(),
        Access::Protected => match verify::authenticate(&req, env, config, now()).await {
            Ok(session) => Some(session),
            Err(err) => return respond::session_error(config, &err),
        },
    };
    let upstream = forward(&req, config, session.as_ref().map(Session::identity)).await?;
    app_instructions(upstream, &req, env, config, session.as_ref()).await
}

/// Forwards to the app: client-sent `x-latch-*` headers removed (any case, any number), the
/// verified identity and its proof added.
async fn forward(
    req: &Request,
    config: &EdgeConfig,
    identity: Option<Identity>,
) -> Result<Response> {
    let url = req.url()?;
    let mut target = format!("{}{}", config.upstream_url, url.path());
    if let Some(query) = url.query() {
        target.push('?');
        target.push_str(query);
    }
    // Clone natively in JS, then drop what must not pass: fewer JS↔WASM crossings than copying
    // header by header. Names from `keys()` are already lower-case.
    let headers = clone_headers(req.headers())?;
    let dropped: Vec<String> =
        headers.keys().filter(|name| name.starts_with(HEADER_PREFIX) || name == "host").collect();
    for name in dropped {
        headers.delete(&name)?;
    }
    if let Some(identity) = identity {
        for (name, value) in identity.to_headers(config.app_secret.as_bytes(), now().timestamp()) {
            headers.set(name, &value)?;
        }
    }
    let mut init = RequestInit::new();
    init.with_method(req.method()).with_headers(headers).with_redirect(RequestRedirect::Manual);
    if !matches!(req.method(), Method::Get | Method::Head) {
        init.with_body(req.inner().body().map(Into::into));
    }
    match Fetch::Request(Request::new_with_init(&target, &init)?).send().await {
        Ok(response) => {
            // Fetched responses have immutable headers: give the response a mutable copy.
            let headers = clone_headers(response.headers())?;
            Ok(response.with_headers(headers))
        }
        Err(err) => {
            worker::console_error!("latch-edge: upstream app unreachable: {err}");
            respond::json(502, &SessionError::general("the app is unreachable").to_json())
        }
    }
}

fn clone_headers(headers: &Headers) -> Result<Headers> {
    Ok(Headers(worker::web_sys::Headers::new_with_headers(&headers.0)?))
}

/// Acts on the app's login or logout instruction and removes it from the response.
async fn app_instructions(
    response: Response,
    req: &Request,
    env: &Env,
    config: &EdgeConfig,
    session: Option<&Session>,
) -> Result<Response> {
    let login = response.headers().get(LOGIN_HEADER)?;
    let logout = response.headers().has(LOGOUT_HEADER)?;
    if login.is_some() {
        response.headers().delete(LOGIN_HEADER)?;
    }
    if logout {
        response.headers().delete(LOGOUT_HEADER)?;
    }
    if let Some(instruction) = login {
        let request = match parse_login_instruction(&instruction) {
            Ok(request) => request,
            Err(err) => {
                worker::console_error!("latch-edge: the app sent a bad login instruction: {err}");
                return respond::json(500, &SessionError::general(err).to_json());
            }
        };
        return match origin::create(config, &request).await {
            Ok(issued) => {
                respond::append(&response, &config.cookies.session_headers(&issued.tokens))?;
                Ok(response)
            }
            Err(OriginError::Session(err)) => respond::session_error(config, &err),
            Err(OriginError::Unavailable(detail)) => respond::origin_unavailable(&detail),
        };
    }
    if logout {
        let session = match session {
            Some(session) => Some(session.clone()),
            None => verify::authenticate(req, env, config, now()).await.ok(),
        };
        if let Some(session) = session {
            if let Err(OriginError::Unavailable(detail)) =
                origin::revoke(config, session.handle()).await
            {
                return respond::origin_unavailable(&detail);
            }
            blacklist(env, config, session.handle()).await;
        }
        respond::append(&response, &config.cookies.clear_headers())?;
    }
    Ok(response)
}

async fn blacklist(env: &Env, config: &EdgeConfig, handle: &str) {
    let written = match env.kv("BLACKLIST") {
        Ok(kv) => match kv.put(&blacklist_key(handle), "1") {
            Ok(put) => put
                .expiration_ttl(config.blacklist_ttl_secs)
                .execute()
                .await
                .map_err(|e| e.to_string()),
            Err(err) => Err(err.to_string()),
        },
        Err(err) => Err(err.to_string()),
    };
    if let Err(err) = written {
        worker::console_error!("latch-edge: could not blacklist a revoked session: {err}");
    }
}

async fn refresh(req: &Request, env: &Env, ctx: &Context, config: &EdgeConfig) -> Result<Response> {
    let cookies = match verify::request_cookies(req) {
        Ok(cookies) => cookies,
        Err(err) => return respond::session_error(config, &err),
    };
    let Some(refresh_token) = cookies.refresh_token else {
        return respond::session_error(
            config,
            &SessionError::unauthorised("refresh token missing"),
        );
    };
    match origin::refresh(config, refresh_token).await {
        Ok(issued) => {
            let response = respond::json(200, r#"{"status":"OK"}"#)?;
            respond::append(&response, &config.cookies.session_headers(&issued.tokens))?;
            Ok(response)
        }
        Err(OriginError::Session(err)) => {
            if let Some(theft) = &err.theft {
                // The origin blacklists too; writing here as well closes the gap at once.
                let (env, config, handle) =
                    (env.clone(), config.clone(), theft.session_handle.clone());
                ctx.wait_until(async move { blacklist(&env, &config, &handle).await });
            }
            respond::session_error(config, &err)
        }
        Err(OriginError::Unavailable(detail)) => respond::origin_unavailable(&detail),
    }
}

async fn signout(req: &Request, env: &Env, config: &EdgeConfig) -> Result<Response> {
    let session = match verify::authenticate(req, env, config, now()).await {
        Ok(session) => session,
        Err(err) => return respond::session_error(config, &err),
    };
    if let Err(OriginError::Unavailable(detail)) = origin::revoke(config, session.handle()).await {
        return respond::origin_unavailable(&detail);
    }
    blacklist(env, config, session.handle()).await;
    let response = respond::json(200, r#"{"status":"OK"}"#)?;
    respond::append(&response, &config.cookies.clear_headers())?;
    Ok(response)
}

async fn session_info(mut req: Request, env: &Env, config: &EdgeConfig) -> Result<Response> {
    let session = match verify::authenticate(&req, env, config, now()).await {
        Ok(session) => session,
        Err(err) => return respond::session_error(config, &err),
    };
    let result = if req.method() == Method::Put {
        let body: SessionInfo = match req.json().await {
            Ok(body) => body,
            Err(err) => {
                let message = format!("body must be {{\"session_info\": <any JSON>}}: {err}");
                return respond::json(400, &error_body(codes::BAD_REQUEST, &message));
            }
        };
        origin::update_session_info(config, session.handle(), &body).await
    } else {
        origin::session_info(config, session.handle()).await
    };
    match result {
        Ok(info) => respond::json(200, &serde_json::to_string(&info)?),
        Err(OriginError::Session(err)) => respond::session_error(config, &err),
        Err(OriginError::Unavailable(detail)) => respond::origin_unavailable(&detail),
    }
}

/// The origin's way to blacklist revoked sessions when KV's REST API is not configured.
async fn internal_blacklist(mut req: Request, env: &Env, config: &EdgeConfig) -> Result<Response> {
    let presented = req.headers().get("authorization")?.unwrap_or_default();
    let expected = format!("Bearer {}", config.edge_secret);
    let authorised: bool = presented.as_bytes().ct_eq(expected.as_bytes()).into();
    if req.method() != Method::Post || !authorised {
        return respond::json(404, &error_body(codes::NOT_FOUND, "no such route"));
    }
    let body: BlacklistRequest = match req.json().await {
        Ok(body) => body,
        Err(err) => return respond::json(400, &error_body(codes::BAD_REQUEST, &err.to_string())),
    };
    let kv = env.kv("BLACKLIST")?;
    for entry in body.entries {
        kv.put(&blacklist_key(&entry.session_handle), "1")?
            .expiration_ttl(entry.ttl_seconds.max(60))
            .execute()
            .await?;
    }
    Ok(Response::empty()?.with_status(204))
}
