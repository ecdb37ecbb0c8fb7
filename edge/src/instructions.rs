//! The app's instructions on its responses: `x-latch-login` creates a session (the edge sets its
//! cookies on the app's response), `x-latch-logout` revokes the request's session and clears
//! them. Both headers are removed before the browser sees the response.

use latch_shared::identity::{parse_login_instruction, LOGIN_HEADER, LOGOUT_HEADER};
use worker::{Env, Headers, Request, Response};

use crate::origin::Origin;
use crate::respond::{EdgeError, Reply};
use crate::{blacklist, to_response, with_isolate};

/// Acts on the instruction in `response` and returns what the browser gets.
pub async fn apply(req: &Request, response: Response, env: &Env) -> Response {
    // Fetched responses have immutable headers: work on a copy.
    let headers = match worker::web_sys::Headers::new_with_headers(&response.headers().0) {
        Ok(headers) => Headers(headers),
        Err(err) => return to_response(EdgeError::from(worker::Error::from(err)).into_reply(None)),
    };
    let response = response.with_headers(headers);
    let login = response.headers().get(LOGIN_HEADER).ok().flatten();
    let logout = response.headers().has(LOGOUT_HEADER).unwrap_or(false);
    let _ = response.headers().delete(LOGIN_HEADER);
    let _ = response.headers().delete(LOGOUT_HEADER);
    let settings = with_isolate(|isolate| isolate.settings()).flatten();
    let Some(settings) = settings else {
        let err =
            EdgeError::OriginUnavailable("no settings to act on the app's instruction".into());
        return to_response(err.into_reply(None));
    };
    let config = with_isolate(|isolate| isolate.config.clone()).expect("configured");
    let origin = Origin::for_request(&config, req);
    let added = if let Some(instruction) = login {
        match parse_login_instruction(&instruction) {
            Ok(request) => origin.create(&request).await.map(|issued| {
                Reply::empty(200).with(&settings.cookies.session_headers(&issued.tokens))
            }),
            Err(err) => {
                Err(EdgeError::Internal(format!("the app sent a bad login instruction: {err}")))
            }
        }
    } else if logout {
        logout_session(req, env, &origin, settings.blacklist_ttl_secs())
            .await
            .map(|()| Reply::empty(200).with(&settings.cookies.clear_headers()))
    } else {
        Ok(Reply::empty(200))
    };
    match added {
        Ok(added) => {
            for (name, value) in added.no_store_if_setting_cookies().headers {
                let _ = response.headers().append(&name, &value);
            }
            response
        }
        Err(err) => {
            to_response(err.into_reply_for(Some(&settings), origin.request_id().as_deref()))
        }
    }
}

/// Revokes the request's session, if it has a valid one.
async fn logout_session(
    req: &Request,
    env: &Env,
    origin: &Origin<'_>,
    ttl_secs: u64,
) -> Result<(), EdgeError> {
    // Without a valid session there is nothing to revoke: the cookies are cleared all the same.
    let Ok(handle) = crate::endpoints::authenticate(req).await else { return Ok(()) };
    origin.revoke(&handle).await?;
    blacklist::write_logged(env, &handle, ttl_secs).await;
    Ok(())
}
