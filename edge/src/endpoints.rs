//! The session endpoints the edge serves itself: refresh, signout and session info (each one
//! origin call), the origin's blacklist hook, and CORS preflights.

use std::rc::Rc;

use futures_util::StreamExt;
use latch_shared::api::{paths, BlacklistRequest, MAX_BODY_BYTES};
use latch_shared::engine::{self, RequestFacts};
use latch_shared::protocol::{ResponseHeader, SessionCookies, ANTI_CSRF_HEADER};
use latch_shared::settings::SharedSettings;
use latch_shared::SessionError;
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;
use worker::{Env, Method, Request, Response};

use crate::config::EdgeConfig;
use crate::decide::{self, Refusal};
use crate::origin::Origin;
use crate::respond::{cors_headers, preflight, EdgeError, Reply};
use crate::{blacklist, js_now, navigation, to_response, with_isolate};

/// Serves one endpoint request, with CORS headers for allowed origins.
pub async fn serve(mut req: Request, env: &Env) -> Response {
    let Some(config) = with_isolate(|isolate| isolate.config.clone()) else {
        return to_response(crate::respond::internal_error());
    };
    let header = |name: &str| req.headers().get(name).ok().flatten();
    let origin_header = header("origin");
    if req.method() == Method::Options {
        let reply = preflight(
            &config,
            origin_header.as_deref(),
            header("access-control-request-method").as_deref(),
            header("access-control-request-headers").as_deref(),
        );
        return to_response(reply);
    }
    let origin = Origin::for_request(&config, &req);
    let settings = current_settings().await;
    let result = match &settings {
        None => Err(EdgeError::OriginUnavailable("the origin's settings are unavailable".into())),
        Some(settings) => route(&mut req, env, &config, settings, &origin).await,
    };
    let request_id = origin.request_id();
    let mut reply =
        result.unwrap_or_else(|err| err.into_reply_for(settings.as_deref(), request_id.as_deref()));
    reply.headers.extend(cors_headers(&config, origin_header.as_deref()));
    to_response(reply.no_store_if_setting_cookies())
}

async fn route(
    req: &mut Request,
    env: &Env,
    config: &EdgeConfig,
    settings: &SharedSettings,
    origin: &Origin<'_>,
) -> Result<Reply, EdgeError> {
    let path = req.path();
    let method = req.method();
    if path == paths::EDGE_BLACKLIST {
        return origin_blacklist_hook(req, env, config).await;
    }
    if path == settings.cookies.refresh_path && method == Method::Post {
        let headers = rotate(req, env, origin).await?;
        return Ok(Reply::json(200, r#"{"status":"OK"}"#.into()).with(&headers));
    }
    if path == settings.cookies.refresh_path && matches!(method, Method::Get | Method::Head) {
        return refresh_hop(req, env, config, settings, origin).await;
    }
    if path == config.signout_path && method == Method::Post {
        let handle = authenticate(req).await?;
        origin.revoke(&handle).await?;
        blacklist::write_logged(env, &handle, settings.blacklist_ttl_secs()).await;
        return Ok(
            Reply::json(200, r#"{"status":"OK"}"#.into()).with(&settings.cookies.clear_headers())
        );
    }
    if path == config.session_info_path {
        let handle = authenticate(req).await?;
        let info = if method == Method::Put {
            let body = read_body(req, MAX_FORWARDED_BODY_BYTES).await?;
            let body = String::from_utf8(body)
                .map_err(|_| EdgeError::bad_request("the body must be UTF-8 JSON"))?;
            origin.update_session_info(&handle, body).await?
        } else {
            origin.session_info(&handle).await?
        };
        return Ok(Reply::json(200, info));
    }
    Err(EdgeError::Internal(format!("no endpoint for {method:?} {path}")))
}

/// The request URL as sent: its origin and its query (with `?`), read without a URL parser.
fn url_parts(req: &Request) -> (String, String) {
    let url = req.inner().url();
    let url = url.split('#').next().unwrap_or_default();
    let (before_query, query) = match url.find('?') {
        Some(at) => (&url[..at], &url[at..]),
        None => (url, ""),
    };
    let origin_end = before_query
        .find("://")
        .and_then(|scheme| before_query[scheme + 3..].find('/').map(|at| scheme + 3 + at))
        .unwrap_or(before_query.len());
    (before_query[..origin_end].to_owned(), query.to_owned())
}

/// Whether the browser proved `req` same-origin: Fetch Metadata, or where it sends none, the
/// `Origin` header (and, with `referer_too`, for a page load that carries no `Origin`, the
/// `Referer`).
fn proves_same_origin(req: &Request, own_origin: &str, referer_too: bool) -> bool {
    let header = |name: &str| req.headers().get(name).ok().flatten();
    let origin = header("origin").or_else(|| {
        header("referer")
            .filter(|referer| referer_too && referer.starts_with(&format!("{own_origin}/")))
            .map(|_| own_origin.to_owned())
    });
    engine::proves_same_origin(header("sec-fetch-site").as_deref(), origin.as_deref(), own_origin)
}

/// A page without JavaScript refreshing (`crate::navigation`): rotate, then back to the page;
/// a session that is over goes to the login page. Only this site's own pages may start it.
async fn refresh_hop(
    req: &Request,
    env: &Env,
    config: &EdgeConfig,
    settings: &SharedSettings,
    origin: &Origin<'_>,
) -> Result<Reply, EdgeError> {
    let (own_origin, query) = url_parts(req);
    // Whatever FETCH_METADATA_CSRF says: only the site's own refresh page starts a refresh.
    if !proves_same_origin(req, &own_origin, true) {
        return Err(EdgeError::BadRequest {
            status: 403,
            code: latch_shared::error::codes::FORBIDDEN,
            message: "a session is only refreshed from this site's own pages".into(),
        });
    }
    let target = navigation::return_target(&query);
    match rotate(req, env, origin).await {
        Ok(headers) => Ok(navigation::back_to(&target).with(&headers)),
        Err(EdgeError::Session(_)) => Ok(navigation::session_ended(settings, config)),
        // The origin is down or failing: a page, not JSON, that comes back by itself.
        Err(err) => {
            let status = err.into_reply_for(Some(settings), origin.request_id().as_deref()).status;
            Ok(navigation::try_again(status, &target))
        }
    }
}

/// Rotates the request's refresh token at the origin; returns the headers that hand the new
/// session to the browser.
async fn rotate(
    req: &Request,
    env: &Env,
    origin: &Origin<'_>,
) -> Result<Vec<ResponseHeader>, EdgeError> {
    let settings = current_settings().await.ok_or_else(|| {
        EdgeError::OriginUnavailable("the origin's settings are unavailable".into())
    })?;
    let cookie = req.headers().get("cookie")?.unwrap_or_default();
    let cookies = SessionCookies::from_cookie_header(&cookie)
        .map_err(|err| SessionError::unauthorised(err.to_string()))?;
    let refresh_token =
        cookies.refresh_token.ok_or_else(|| SessionError::unauthorised("refresh token missing"))?;
    match origin.refresh(refresh_token).await {
        Ok(issued) => Ok(settings.cookies.session_headers(&issued.tokens)),
        Err(EdgeError::Session(err)) => {
            if let Some(theft) = &err.theft {
                // The origin blacklists too; writing here as well closes the gap at once.
                blacklist::write_logged(env, &theft.session_handle, settings.blacklist_ttl_secs())
                    .await;
            }
            Err(EdgeError::Session(err))
        }
        Err(err) => Err(err),
    }
}

/// The request's session handle, by the shared engine's rules (`decide::authenticate`),
/// refetching the origin's keys once if the token names one this isolate does not have.
pub(crate) async fn authenticate(req: &Request) -> Result<String, EdgeError> {
    let header = |name: &str| req.headers().get(name).ok().flatten();
    let (method, path) = (req.method().to_string(), req.path());
    let (cookie, authorization, anti_csrf) =
        (header("cookie"), header("authorization"), header(ANTI_CSRF_HEADER));
    let config = with_isolate(|isolate| isolate.config.clone())
        .ok_or_else(|| EdgeError::Internal("not configured".into()))?;
    let facts = RequestFacts {
        method: &method,
        path: &path,
        cookie: cookie.as_deref(),
        authorization: authorization.as_deref(),
        anti_csrf: anti_csrf.as_deref(),
        same_origin: config.fetch_metadata_csrf
            && proves_same_origin(req, &url_parts(req).0, false),
    };
    loop {
        let now = js_now();
        let checked = with_isolate(|isolate| decide::authenticate(isolate, &facts, now))
            .ok_or_else(|| EdgeError::Internal("not configured".into()))?;
        match checked {
            Ok(admitted) => return Ok(admitted.verified.claims.sid),
            Err(Refusal::Session(err)) => return Err(err.into()),
            // Allowed at most once per cooldown, so this loops at most twice.
            Err(Refusal::NeedKeys) => crate::load_settings(true).await,
        }
    }
}

/// The settings, loading them first when this isolate has none yet.
async fn current_settings() -> Option<Rc<SharedSettings>> {
    if let Some(settings) = with_isolate(|isolate| isolate.settings()).flatten() {
        return Some(settings);
    }
    crate::load_settings(false).await;
    with_isolate(|isolate| isolate.settings()).flatten()
}

/// The most the edge holds of a body it passes to the origin, which enforces its own, smaller
/// limit (`MAX_BODY_BYTES`) and answers for it.
const MAX_FORWARDED_BODY_BYTES: usize = 1024 * 1024;

/// Reads a body of at most `limit` bytes: over it is a 413, whatever `Content-Length` says.
async fn read_body(req: &mut Request, limit: usize) -> Result<Vec<u8>, EdgeError> {
    let too_large = || EdgeError::too_large(format!("the body is over {limit} bytes"));
    let declared = req.headers().get("content-length")?.and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    let Ok(mut stream) = req.stream() else { return Ok(body) };
    while let Some(chunk) = stream.next().await {
        body.extend_from_slice(&chunk?);
        if body.len() > limit {
            return Err(too_large());
        }
    }
    Ok(body)
}

/// Reads a JSON body the edge itself acts on: at most [`MAX_BODY_BYTES`], parsed in Rust with
/// serde_json's nesting limit, so a huge or deeply nested body is a 413 or a 400, never a
/// crashed instance.
async fn read_json<T: DeserializeOwned>(req: &mut Request, shape: &str) -> Result<T, EdgeError> {
    let body = read_body(req, MAX_BODY_BYTES).await?;
    serde_json::from_slice(&body)
        .map_err(|err| EdgeError::bad_request(format!("the body must be {shape}: {err}")))
}

/// The origin's way to blacklist revoked sessions when KV's REST API is not configured.
/// Anything but an authenticated POST is answered as if the route did not exist.
async fn origin_blacklist_hook(
    req: &mut Request,
    env: &Env,
    config: &EdgeConfig,
) -> Result<Reply, EdgeError> {
    let presented = req.headers().get("authorization")?.unwrap_or_default();
    let expected = format!("Bearer {}", config.edge_secret.expose());
    let authorised: bool = presented.as_bytes().ct_eq(expected.as_bytes()).into();
    if req.method() != Method::Post || !authorised {
        return Err(EdgeError::BadRequest {
            status: 404,
            code: latch_shared::error::codes::NOT_FOUND,
            message: "no such route".into(),
        });
    }
    let body: BlacklistRequest = read_json(req, "{\"entries\": [...]}").await?;
    for entry in body.entries {
        blacklist::write(env, &entry.session_handle, entry.ttl_seconds)
            .await
            .map_err(EdgeError::Internal)?;
    }
    Ok(Reply::empty(204))
}
