//! The session endpoints the edge serves itself: refresh (the SDKs' POST and the hop of pages
//! without JavaScript), signout and session info (each one origin call), the origin's blacklist
//! hook, and CORS preflights. Which endpoint a request is gets decided once, as an
//! [`Endpoint`]; each is then served from the facts and steps it needs, and answered in the
//! SDK generation the request speaks (`latch_shared::sdk`).
//!
//! The current SDKs call `{apiBasePath}/session/refresh` and `{apiBasePath}/signout`: their
//! `apiBasePath` is the refresh path without `/session/refresh` (the origin's
//! `LATCH_REFRESH_PATH`), so the refresh token's cookie path serves both generations.

use latch_shared::api::{
    paths, BlacklistRequest, IssuedSession, RevokeResponse, SessionHandles, MAX_BODY_BYTES,
};
use latch_shared::engine;
use latch_shared::error::codes;
use latch_shared::protocol::ResponseHeader;
use latch_shared::sdk;
use latch_shared::settings::SharedSettings;
use subtle::ConstantTimeEq;

use crate::config::EdgeConfig;
use crate::exchange::Exchange;
use crate::flow::required_settings;
use crate::io::BodyRefused;
use crate::respond::{cors_headers, preflight, EdgeError, Reply};
use crate::step::{BlacklistWrite, Request, Step};
use crate::{navigation, origin};

/// An endpoint of the edge's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A CORS preflight.
    Preflight,
    /// The origin's way to blacklist revoked sessions when KV's REST API is not configured.
    BlacklistHook,
    /// `POST` to the signout path (or the current SDKs' `{apiBasePath}/signout`): revoke,
    /// blacklist, clear.
    Signout,
    /// `GET` (read) or `PUT` (overwrite) the session info.
    SessionInfo { update: bool },
    /// The SDK's `POST` to the refresh path.
    Refresh,
    /// A page without JavaScript refreshing (`crate::navigation`): rotate, then back.
    RefreshHop,
    /// "Your devices" for the signed-in user, at the devices path.
    Devices(DevicesCall),
}

/// What a request to the devices path asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DevicesCall {
    /// `GET`: the user's sessions with their devices, this one marked `current`.
    List,
    /// `DELETE`: sign out every other device.
    SignOutOthers,
    /// `DELETE {path}/{handle}`: sign out that one.
    SignOut(String),
}

impl DevicesCall {
    fn of(request: &Request, devices_path: &str) -> Option<DevicesCall> {
        let rest = request.path.strip_prefix(devices_path)?;
        match (request.method.as_str(), rest) {
            ("GET", "") => Some(DevicesCall::List),
            ("DELETE", "") => Some(DevicesCall::SignOutOthers),
            ("DELETE", rest) => {
                let handle =
                    rest.strip_prefix('/').filter(|h| !h.is_empty() && !h.contains('/'))?;
                Some(DevicesCall::SignOut(handle.to_owned()))
            }
            _ => None,
        }
    }
}

impl Endpoint {
    /// The endpoints whose paths are the edge's own configuration.
    pub fn without_settings(request: &Request, config: &EdgeConfig) -> Option<Endpoint> {
        let (method, path) = (request.method.as_str(), request.path.as_str());
        if request.is_preflight() {
            Some(Endpoint::Preflight)
        } else if path == paths::EDGE_BLACKLIST {
            Some(Endpoint::BlacklistHook)
        } else if path == config.signout_path && method == "POST" {
            Some(Endpoint::Signout)
        } else if path == config.session_info_path && matches!(method, "GET" | "PUT") {
            Some(Endpoint::SessionInfo { update: method == "PUT" })
        } else {
            DevicesCall::of(request, &config.devices_path).map(Endpoint::Devices)
        }
    }

    /// The endpoints at paths the origin's settings name.
    pub fn with_settings(
        request: &Request,
        settings: &SharedSettings,
        page_load: bool,
    ) -> Option<Endpoint> {
        let refresh_path = settings.cookies.refresh_path.as_str();
        if request.path != refresh_path {
            let api_base = refresh_path.strip_suffix(sdk::REFRESH_SUFFIX)?;
            // Only for a current SDK's request: an app's own `/signout` stays the app's.
            let signout = request.path.strip_prefix(api_base) == Some(sdk::SIGNOUT_SUFFIX);
            let current = request.dialect.is_current();
            return (signout && current && request.method == "POST").then_some(Endpoint::Signout);
        }
        match request.method.as_str() {
            "POST" => Some(Endpoint::Refresh),
            _ if page_load => Some(Endpoint::RefreshHop),
            _ => None,
        }
    }
}

/// Serves one endpoint request, with CORS headers for allowed origins.
pub async fn serve(mut cx: Exchange, endpoint: Endpoint) -> Step {
    let config = cx.config.clone();
    let request = &cx.request;
    if endpoint == Endpoint::Preflight {
        let reply = preflight(
            &config,
            request.origin_header.as_deref(),
            request.preflight_method.as_deref(),
            request.preflight_headers.as_deref(),
        );
        return cx.respond(reply);
    }
    let cors = cors_headers(&config, request.origin_header.as_deref());
    let (result, settings) = if endpoint == Endpoint::BlacklistHook {
        (blacklist_hook(&mut cx).await, None)
    } else {
        match required_settings(&mut cx).await {
            Ok(settings) => (session_endpoint(&mut cx, endpoint, &settings).await, Some(settings)),
            Err(err) => (Err(err), None),
        }
    };
    let mut reply = result.unwrap_or_else(|err| cx.error_reply(err, settings.as_deref()));
    reply.headers.extend(cors);
    cx.respond(reply.no_store_if_setting_cookies())
}

async fn session_endpoint(
    cx: &mut Exchange,
    endpoint: Endpoint,
    settings: &SharedSettings,
) -> Result<Reply, EdgeError> {
    let config = cx.config.clone();
    match endpoint {
        Endpoint::Refresh => {
            let headers = rotate(cx, settings).await?;
            Ok(Reply::json(200, r#"{"status":"OK"}"#.into()).with(&headers))
        }
        Endpoint::RefreshHop => refresh_hop(cx, settings).await,
        Endpoint::Signout => {
            let handle = cx.authenticate().await?.verified.claims.sid;
            cx.call_origin_json::<RevokeResponse>(origin::revoke(&config, &handle)).await?;
            cx.blacklist(&handle, settings.blacklist_ttl_secs()).await;
            Ok(Reply::json(200, r#"{"status":"OK"}"#.into())
                .with(&settings.cookies.clear_headers()))
        }
        Endpoint::SessionInfo { update } => {
            let handle = cx.authenticate().await?.verified.claims.sid;
            let call = if update {
                let body = cx
                    .io
                    .read_body(MAX_FORWARDED_BODY_BYTES)
                    .await
                    .map_err(|r| body_refused(r, MAX_FORWARDED_BODY_BYTES))?;
                origin::update_session_info(&config, &handle, body)
            } else {
                origin::session_info(&config, &handle)
            };
            Ok(Reply::json(200, cx.call_origin(call).await?))
        }
        Endpoint::Devices(call) => devices(cx, call, settings).await,
        Endpoint::Preflight | Endpoint::BlacklistHook => {
            Err(EdgeError::Internal(format!("{endpoint:?} is not a session endpoint")))
        }
    }
}

/// "Your devices": the origin's answer for the signed-in user (the user id and the asking
/// session from the verified access token, never from the request). Devices signed out are
/// blacklisted here at once, as the origin's own delivery will too.
async fn devices(
    cx: &mut Exchange,
    call: DevicesCall,
    settings: &SharedSettings,
) -> Result<Reply, EdgeError> {
    let claims = cx.authenticate().await?.verified.claims;
    let (user_id, current) = (claims.user_id(), claims.sid);
    let config = cx.config.clone();
    let origin_call = match &call {
        DevicesCall::List => {
            return Ok(Reply::json(
                200,
                cx.call_origin(origin::devices(&config, &user_id, &current)).await?,
            ));
        }
        DevicesCall::SignOutOthers => origin::sign_out_other_devices(&config, &user_id, &current),
        DevicesCall::SignOut(handle) => {
            origin::sign_out_device(&config, &user_id, handle, &current)
        }
    };
    let revoked: SessionHandles = cx.call_origin_json(origin_call).await?;
    cx.blacklist_all(&revoked.handles, settings.blacklist_ttl_secs()).await;
    let body =
        serde_json::to_string(&revoked).map_err(|err| EdgeError::Internal(err.to_string()))?;
    // Signing out this very device is signing out: its cookies go too.
    let this_one = revoked.handles.contains(&current);
    let reply = Reply::json(200, body);
    Ok(if this_one { reply.with(&settings.cookies.clear_headers()) } else { reply })
}

/// The most the edge holds of a body it passes to the origin, which enforces its own, smaller
/// limit (`MAX_BODY_BYTES`) and answers for it.
const MAX_FORWARDED_BODY_BYTES: usize = 1024 * 1024;

fn body_refused(refused: BodyRefused, limit: usize) -> EdgeError {
    match refused {
        BodyRefused::TooLarge => EdgeError::too_large(format!("the body is over {limit} bytes")),
        BodyRefused::NotUtf8 => EdgeError::bad_request("the body must be UTF-8 JSON"),
    }
}

/// A page without JavaScript refreshing: rotate, then back to the page; a session that is
/// over goes to the login page. Only this site's own pages may start it.
async fn refresh_hop(cx: &mut Exchange, settings: &SharedSettings) -> Result<Reply, EdgeError> {
    // Whatever FETCH_METADATA_CSRF says: only the site's own refresh page starts a refresh.
    if !cx.request.proves_same_origin(true) {
        return Err(EdgeError::BadRequest {
            status: 403,
            code: codes::FORBIDDEN,
            message: "a session is only refreshed from this site's own pages".into(),
        });
    }
    let target = navigation::return_target(&cx.request.query);
    match rotate(cx, settings).await {
        Ok(headers) => Ok(navigation::back_to(&target).with(&headers)),
        Err(EdgeError::Session(_)) => Ok(navigation::session_ended(settings, &cx.config)),
        // The origin is down or failing: a page, not JSON, that comes back by itself.
        Err(err) => {
            let status = cx.error_reply(err, Some(settings)).status;
            Ok(navigation::try_again(status, &target))
        }
    }
}

/// Rotates the request's refresh token at the origin; returns the headers that hand the new
/// session to the client, in the transfer it uses.
async fn rotate(
    cx: &mut Exchange,
    settings: &SharedSettings,
) -> Result<Vec<ResponseHeader>, EdgeError> {
    let (refresh_token, transfer) =
        engine::refresh_credential(&cx.facts(), &settings.anti_csrf, false)?;
    let call = origin::refresh(&cx.config, refresh_token);
    match cx.call_origin_json::<IssuedSession>(call).await {
        Ok(issued) => {
            Ok(settings.cookies.session_headers(&issued.session, &issued.tokens, transfer))
        }
        Err(EdgeError::Session(err)) => {
            if let Some(theft) = &err.theft {
                // The origin blacklists too; writing here as well closes the gap at once.
                cx.blacklist(&theft.session_handle, settings.blacklist_ttl_secs()).await;
            }
            Err(EdgeError::Session(err))
        }
        Err(err) => Err(err),
    }
}

/// The origin's blacklist hook. Anything but an authenticated POST is answered as if the route
/// did not exist. The body is read in Rust, at most [`MAX_BODY_BYTES`], with serde_json's
/// nesting limit: a huge or deeply nested body is a 413 or a 400, never a crashed instance.
async fn blacklist_hook(cx: &mut Exchange) -> Result<Reply, EdgeError> {
    let presented = cx.request.authorization.as_deref().unwrap_or_default();
    let expected = format!("Bearer {}", cx.config.edge_secret.expose());
    let authorised: bool = presented.as_bytes().ct_eq(expected.as_bytes()).into();
    if cx.request.method != "POST" || !authorised {
        return Err(EdgeError::BadRequest {
            status: 404,
            code: codes::NOT_FOUND,
            message: "no such route".into(),
        });
    }
    let body =
        cx.io.read_body(MAX_BODY_BYTES).await.map_err(|r| body_refused(r, MAX_BODY_BYTES))?;
    let body: BlacklistRequest = serde_json::from_str(&body).map_err(|err| {
        EdgeError::bad_request(format!("the body must be {{\"entries\": [...]}}: {err}"))
    })?;
    let now_ms = cx.now_ms();
    cx.isolate(|isolate| {
        for entry in &body.entries {
            isolate.record_blacklist(&entry.session_handle, Some(true), now_ms);
        }
    });
    let entries = body
        .entries
        .iter()
        .map(|entry| BlacklistWrite {
            key: latch_shared::api::blacklist_key(&entry.session_handle),
            ttl_secs: entry.ttl_seconds.max(60),
        })
        .collect();
    cx.io.write_blacklist(entries).await.map_err(EdgeError::Internal)?;
    Ok(Reply::empty(204))
}
