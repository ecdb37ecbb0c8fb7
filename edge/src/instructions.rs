//! The app's instructions on its answers: `x-latch-login` creates a session (the edge sets its
//! cookies on the app's answer), `x-latch-logout` revokes the request's session and clears
//! them, `x-latch-jwt-payload` replaces the session's JWT payload (the answer carries the
//! re-issued access token). The headers are removed before the browser sees the answer, and an
//! answer that sets session cookies is never stored by a cache: its `Cache-Control` is
//! replaced, not added to.

use latch_shared::api::{DeviceReport, IssuedSession, ReissuedAccessToken, RevokeResponse};
use latch_shared::engine;
use latch_shared::identity::{
    parse_jwt_payload_instruction, parse_login_instruction, JWT_PAYLOAD_HEADER, LOGIN_HEADER,
    LOGOUT_HEADER,
};
use latch_shared::protocol::ResponseHeader;
use latch_shared::settings::SharedSettings;

use crate::exchange::Exchange;
use crate::flow::required_settings;
use crate::io::AppInstruction;
use crate::origin;
use crate::respond::{hands_over_tokens, EdgeError};
use crate::step::{Amend, Header, Step};

/// Acts on `instruction` and returns the changes to the app's answer. `session` is the handle
/// the request was admitted with (a public route's request was not checked: it is then, for a
/// logout).
pub async fn apply(
    mut cx: Exchange,
    instruction: AppInstruction,
    session: Option<String>,
    cors: Vec<Header>,
) -> Step {
    let settings = match required_settings(&mut cx).await {
        Ok(settings) => settings,
        Err(err) => {
            let reply = cx.error_reply(err, None).with_headers(cors);
            return cx.respond(reply);
        }
    };
    let added = if let Some(text) = instruction.login {
        // The session the browser had until now: its cookies are about to be replaced, and a
        // copy of them must not outlive it (another user signing in on the same browser).
        let displaced = match session {
            Some(handle) => Some(handle),
            None => cx.displaced_session().await,
        };
        let issued = login(&mut cx, &text, instruction.device).await;
        if let (Ok(_), Some(handle)) = (&issued, displaced) {
            end_displaced(&mut cx, &handle, settings.blacklist_ttl_secs()).await;
        }
        let transfer = cx.request.dialect.transfer();
        issued.map(|issued| {
            settings.cookies.session_headers(&issued.session, &issued.tokens, transfer)
        })
    } else if instruction.logout {
        logout(&mut cx, session, settings.blacklist_ttl_secs())
            .await
            .map(|()| settings.cookies.clear_headers())
    } else if let Some(text) = instruction.jwt_payload {
        update_jwt_payload(&mut cx, &settings, session, &text).await
    } else {
        Ok(Vec::new())
    };
    match added {
        Ok(added) => Step::Amend(amend(added, cors)),
        Err(err) => {
            let reply = cx.error_reply(err, Some(&settings)).with_headers(cors);
            cx.respond(reply)
        }
    }
}

async fn login(
    cx: &mut Exchange,
    text: &str,
    device: DeviceReport,
) -> Result<IssuedSession, EdgeError> {
    let mut request = parse_login_instruction(text).map_err(|err| {
        EdgeError::Internal(format!("the app sent a bad login instruction: {err}"))
    })?;
    // What the browser and Cloudflare said of the device, for "your devices".
    request.device = Some(device);
    let call = origin::create(&cx.config, &request);
    cx.call_origin_json(call).await
}

/// Revokes a session a new login displaced. A failure is logged, not the login's: the browser
/// gets its new session either way, and the old one still ends when its tokens expire.
async fn end_displaced(cx: &mut Exchange, handle: &str, ttl_secs: u64) {
    let call = origin::revoke(&cx.config, handle);
    match cx.call_origin_json::<RevokeResponse>(call).await {
        Ok(_) => cx.blacklist(handle, ttl_secs).await,
        Err(err) => {
            let id = cx.request_id();
            crate::log::error(&format!(
                "could not end the session a login displaced (request {id}): {err}"
            ));
        }
    }
}

/// Revokes the request's session, if it has a valid one: without, there is nothing to revoke,
/// and the cookies are cleared all the same.
async fn logout(
    cx: &mut Exchange,
    session: Option<String>,
    ttl_secs: u64,
) -> Result<(), EdgeError> {
    let handle = match session {
        Some(handle) => handle,
        None => match cx.authenticate().await {
            Ok(admitted) => admitted.verified.claims.sid,
            Err(_) => return Ok(()),
        },
    };
    let call = origin::revoke(&cx.config, &handle);
    cx.call_origin_json::<RevokeResponse>(call).await?;
    cx.blacklist(&handle, ttl_secs).await;
    Ok(())
}

/// Replaces the request's session's JWT payload at the origin, which re-issues the access token
/// the request carried; returns the headers that hand it over (with `front-token`).
async fn update_jwt_payload(
    cx: &mut Exchange,
    settings: &SharedSettings,
    session: Option<String>,
    text: &str,
) -> Result<Vec<ResponseHeader>, EdgeError> {
    let payload = parse_jwt_payload_instruction(text).map_err(|err| {
        EdgeError::Internal(format!("the app sent a bad JWT payload instruction: {err}"))
    })?;
    let handle = match session {
        Some(handle) => handle,
        None => cx.authenticate().await?.verified.claims.sid,
    };
    // The re-issued token goes back the way the request's token came (never out of an
    // HttpOnly cookie into a header a script can read).
    let credential = engine::credential(&cx.facts())?;
    let transfer = credential.transfer();
    let call =
        origin::update_jwt_payload(&cx.config, &handle, credential.token().to_owned(), payload);
    let reissued: ReissuedAccessToken = cx.call_origin_json(call).await?;
    Ok(settings.cookies.access_token_headers(&reissued.session, &reissued.access_token, transfer))
}

/// The instruction headers removed, the session's headers added, `no-store` in place of the
/// app's caching, and the CORS headers (the app's `Vary` kept).
fn amend(added: Vec<ResponseHeader>, cors: Vec<Header>) -> Amend {
    let mut amend = Amend {
        delete: vec![
            LOGIN_HEADER.to_owned(),
            LOGOUT_HEADER.to_owned(),
            JWT_PAYLOAD_HEADER.to_owned(),
        ],
        ..Amend::default()
    };
    if added.iter().any(|header| hands_over_tokens(&header.name)) {
        amend.set.push(("cache-control".into(), "no-store".into()));
    }
    amend.append.extend(added.into_iter().map(|header| (header.name, header.value)));
    amend.with_cors(cors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_that_sets_cookies_replaces_the_apps_caching() {
        let added = vec![ResponseHeader { name: "set-cookie".into(), value: "a=1".into() }];
        let amend = amend(added, vec![("vary".into(), "Origin".into())]);
        assert_eq!(amend.set, vec![("cache-control".to_owned(), "no-store".to_owned())]);
        assert!(amend.append.contains(&("vary".to_owned(), "Origin".to_owned())));
        assert!(amend.delete.contains(&LOGIN_HEADER.to_owned()));
    }
}
