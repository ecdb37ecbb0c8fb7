//! Pages for browsers without the frontend SDK: a server-rendered app behind the edge needs no
//! code of its own to stay signed in.
//!
//! When a top-level navigation (`Sec-Fetch-Mode: navigate`, GET or HEAD) to a protected page
//! arrives with an expired or missing access token, the edge answers with a tiny page that
//! refreshes without JavaScript: a `<meta http-equiv="refresh">` hop to `GET <refresh path>
//! ?return=<the page>`, which the edge serves itself (the refresh cookie is only sent to that
//! path) and which redirects back to the page with new cookies. When the session is gone, the
//! browser goes to `LOGIN_URL` (or gets a small page saying the session ended) instead of JSON.
//! API calls keep the seed's JSON answers. The return target is always a path on this site:
//! never an open redirect.

use latch_shared::assertion::is_anti_csrf_refusal;
use latch_shared::error::ErrorKind;
use latch_shared::percent;
use latch_shared::protocol::SessionCookies;
use latch_shared::settings::SharedSettings;
use latch_shared::SessionError;

use crate::config::EdgeConfig;
use crate::respond::Reply;

/// Set by the hop for a few seconds: a page that still cannot be verified right after a
/// refresh gets the "session ended" answer instead of another refresh, never a loop.
pub const JUST_REFRESHED_COOKIE: &str = "latch-just-refreshed";
const JUST_REFRESHED_SECS: u32 = 5;

/// Whether a request is a browser loading a page.
pub fn is_page_load(method: &str, sec_fetch_mode: Option<&str>) -> bool {
    sec_fetch_mode == Some("navigate") && matches!(method, "GET" | "HEAD")
}

/// The answer to a page load whose session was refused, or `None` to answer as for an API call
/// (an anti-CSRF refusal: refreshing cannot fix it).
pub fn refusal(
    settings: &SharedSettings,
    config: &EdgeConfig,
    err: &SessionError,
    cookie: Option<&str>,
    target: &str,
) -> Option<Reply> {
    match err.kind() {
        ErrorKind::TryRefreshToken if is_anti_csrf_refusal(err) => None,
        ErrorKind::TryRefreshToken => Some(
            refresh_if_possible(settings, err, cookie, target)
                .unwrap_or_else(|| session_ended(settings, config)),
        ),
        _ => Some(session_ended(settings, config)),
    }
}

/// The refresh page, if refreshing can help: the access token is expired or missing, a
/// refresh cookie may exist, and this is not the page load right after a refresh (never a
/// loop). Optional routes use it too, so that their pages come back signed in.
pub fn refresh_if_possible(
    settings: &SharedSettings,
    err: &SessionError,
    cookie: Option<&str>,
    target: &str,
) -> Option<Reply> {
    if err.kind() != ErrorKind::TryRefreshToken || is_anti_csrf_refusal(err) {
        return None;
    }
    let just_refreshed = cookie.is_some_and(|cookie| {
        cookie.split(';').any(|pair| pair.trim().starts_with(JUST_REFRESHED_COOKIE))
    });
    let can_refresh = cookie
        .and_then(|cookie| SessionCookies::from_cookie_header(cookie).ok())
        .is_some_and(|cookies| cookies.id_refresh_token.is_some());
    (can_refresh && !just_refreshed).then(|| refresh_page(&settings.cookies.refresh_path, target))
}

/// The page that refreshes, then comes back to `target`.
pub fn refresh_page(refresh_path: &str, target: &str) -> Reply {
    let hop = format!("{refresh_path}?return={}", encode_query_value(&safe_return(target)));
    let hop = escape_html(&hop);
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"0; url={hop}\">\
         <meta name=\"referrer\" content=\"same-origin\"><title>Signing you back in…</title></head>\
         <body><p>Signing you back in… <a href=\"{hop}\">Continue</a></p></body></html>"
    );
    html(200, body)
}

/// The session is over: cookies cleared, then the login page (`LOGIN_URL`) or a short note.
pub fn session_ended(settings: &SharedSettings, config: &EdgeConfig) -> Reply {
    let reply = match &config.login_url {
        Some(login) => {
            let mut reply = Reply::empty(303);
            reply.headers.push(("location".into(), login.clone()));
            reply
        }
        None => html(
            401,
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>Session ended</title>\
             </head><body><h1>Your session has ended</h1><p>Please sign in again. \
             <a href=\"/\">Go to the home page</a></p></body></html>"
                .into(),
        ),
    };
    reply.with(&settings.cookies.clear_headers()).no_store_if_setting_cookies()
}

/// The hop could not refresh because the origin failed: a page that reloads `target` after a
/// few seconds (which refreshes again), keeping the session.
pub fn try_again(status: u16, target: &str) -> Reply {
    let back = escape_html(&location(&safe_return(target)));
    let mut reply = html(
        status,
        format!(
            "<!doctype html><html><head><meta charset=\"utf-8\">\
             <meta http-equiv=\"refresh\" content=\"{TRY_AGAIN_SECS}; url={back}\">\
             <title>One moment…</title></head><body><p>Signing you back in is taking longer \
             than it should. This page will try again in a few seconds. \
             <a href=\"{back}\">Try now</a></p></body></html>"
        ),
    );
    reply.headers.push(("retry-after".into(), TRY_AGAIN_SECS.to_string()));
    reply
}

const TRY_AGAIN_SECS: u32 = 5;

/// Where the hop sends the browser after refreshing: the `return` parameter of its query if it
/// is a path on this site, else `/`.
pub fn return_target(query: &str) -> String {
    let value = query
        .trim_start_matches('?')
        .split('&')
        .find_map(|pair| pair.strip_prefix("return="))
        .and_then(percent::decode)
        .unwrap_or_default();
    safe_return(&value)
}

/// The hop's answer once the refresh worked: back to the page, with the new cookies.
pub fn back_to(target: &str) -> Reply {
    let mut reply = Reply::empty(303);
    reply.headers.push(("location".into(), location(&safe_return(target))));
    reply.headers.push((
        "set-cookie".into(),
        format!("{JUST_REFRESHED_COOKIE}=1; Path=/; Max-Age={JUST_REFRESHED_SECS}; HttpOnly; SameSite=Lax"),
    ));
    reply
}

/// A path on this site, or `/`: never `//host`, `/\host`, a scheme, or control characters.
pub fn safe_return(target: &str) -> String {
    let local = target.starts_with('/')
        && !target.starts_with("//")
        && !target.starts_with("/\\")
        && !target.chars().any(|c| c.is_control() || c == '\\');
    if local {
        target.to_owned()
    } else {
        "/".to_owned()
    }
}

/// A header-safe `Location`: bytes outside visible ASCII percent-encoded again.
fn location(target: &str) -> String {
    percent::encode(target, |byte| byte.is_ascii_graphic())
}

fn encode_query_value(value: &str) -> String {
    percent::encode(value, |byte| percent::unreserved(byte) || byte == b'/')
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;").replace('>', "&gt;")
}

fn html(status: u16, body: String) -> Reply {
    Reply {
        status,
        headers: vec![
            ("content-type".into(), "text/html; charset=utf-8".into()),
            ("cache-control".into(), "no-store".into()),
        ],
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_return_target_is_always_a_path_on_this_site() {
        assert_eq!(return_target("?return=%2Fpage%3Fq%3D1"), "/page?q=1");
        assert_eq!(return_target("return=/a/b&x=1"), "/a/b");
        for hostile in [
            "return=%2F%2Fevil.test",
            "return=https%3A%2F%2Fevil.test",
            "return=%2F%5Cevil.test",
            "return=javascript%3Aalert(1)",
            "return=%2Fa%0D%0ALocation%3A%20x",
            "",
            "return=%zz",
        ] {
            assert_eq!(return_target(hostile), "/", "{hostile}");
        }
    }

    #[test]
    fn the_refresh_page_hops_to_the_refresh_path_and_back() {
        let reply = refresh_page("/session/refresh", "/docs/a b?x=\"1\"");
        assert_eq!(reply.status, 200);
        assert!(
            reply.body.contains("url=/session/refresh?return=/docs/a%20b%3Fx%3D%221%22\""),
            "{}",
            reply.body
        );
        assert!(!reply.body.contains("<script"), "works without JavaScript");
        assert_eq!(return_target("return=/docs/a%20b%3Fx%3D%221%22"), "/docs/a b?x=\"1\"");
    }

    #[test]
    fn the_way_back_is_a_valid_header_whatever_the_target() {
        let reply = back_to(&return_target("return=/caf%C3%A9%20menu"));
        let location = &reply.headers.iter().find(|(name, _)| name == "location").unwrap().1;
        assert_eq!(location, "/caf%C3%A9%20menu");
        assert!(location.bytes().all(|b| b.is_ascii_graphic()));
    }

    #[test]
    fn only_page_loads_get_pages() {
        assert!(is_page_load("GET", Some("navigate")));
        assert!(is_page_load("HEAD", Some("navigate")));
        assert!(!is_page_load("POST", Some("navigate")));
        assert!(!is_page_load("GET", Some("cors")));
        assert!(!is_page_load("GET", None), "Accept: text/html alone is not enough");
    }
}
