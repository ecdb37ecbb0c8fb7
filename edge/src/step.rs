//! The protocol between the JS entry and the Rust machine, as types: what a request brings
//! ([`Facts`]), what the machine asks the entry to do ([`Step`]) and what the entry reports back
//! ([`Outcome`]). Everything crosses as JSON text; headers and bodies stay in the entry (the
//! machine names the few header values it reads, in [`FACT_HEADERS`], and the entry passes only
//! those).
//!
//! The entry is a loop: `step = machine.resume(outcome)` until the step is [`Step::Respond`],
//! [`Step::Amend`] or a [`Step::Forward`] whose answer carries no instruction of the app's.

use latch_shared::api::{DeviceReport, CLIENT_ADDRESS_HEADER};
use latch_shared::engine;
use latch_shared::identity::{FORWARDED_FOR_HEADER, FORWARDED_HOST_HEADER, FORWARDED_PROTO_HEADER};
use latch_shared::protocol::ANTI_CSRF_HEADER;
use latch_shared::sdk::{Dialect, AUTH_MODE_HEADER, RID_HEADER};
use latch_shared::trace::TRACEPARENT_HEADER;
use serde::{Deserialize, Serialize};

use crate::respond::Reply;

/// The request headers the machine reads, in the order the entry passes their values in
/// [`Facts::headers`].
pub const FACT_HEADERS: [&str; 14] = [
    "cookie",
    "authorization",
    ANTI_CSRF_HEADER,
    "origin",
    "referer",
    "access-control-request-method",
    "access-control-request-headers",
    "sec-fetch-mode",
    "sec-fetch-site",
    TRACEPARENT_HEADER,
    "cf-connecting-ip",
    "content-length",
    AUTH_MODE_HEADER,
    RID_HEADER,
];

/// A request as the entry hands it over: its method, its URL and the values of
/// [`FACT_HEADERS`] (`null` where absent).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Facts {
    pub method: String,
    pub url: String,
    pub headers: Vec<Option<String>>,
}

/// The facts with names: what the rest of the edge reads.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub method: String,
    /// The URL's path (as the runtime normalised it), without the query.
    pub path: String,
    /// The URL's query, with its `?` (empty without one).
    pub query: String,
    /// This site's own origin (`https://host[:port]`), as the request's URL has it.
    pub own_origin: String,
    pub cookie: Option<String>,
    pub authorization: Option<String>,
    pub anti_csrf: Option<String>,
    /// The `Origin` header (CORS, and same-origin proof where Fetch Metadata is missing).
    pub origin_header: Option<String>,
    pub referer: Option<String>,
    pub preflight_method: Option<String>,
    pub preflight_headers: Option<String>,
    pub sec_fetch_mode: Option<String>,
    pub sec_fetch_site: Option<String>,
    pub traceparent: Option<String>,
    /// `CF-Connecting-IP`: the client's address as Cloudflare saw it.
    pub client_address: Option<String>,
    pub content_length: Option<u64>,
    /// The SDK generation the request speaks, from `st-auth-mode`.
    pub dialect: Dialect,
    /// Whether the request carries `rid` (custom-header mode's anti-CSRF proof).
    pub rid: bool,
}

impl Request {
    pub fn from_facts(facts: Facts) -> Request {
        let mut values = facts.headers.into_iter();
        let mut next = || values.next().flatten();
        let (own_origin, path, query) = split_url(&facts.url);
        Request {
            method: facts.method,
            path,
            query,
            own_origin,
            cookie: next(),
            authorization: next(),
            anti_csrf: next(),
            origin_header: next(),
            referer: next(),
            preflight_method: next(),
            preflight_headers: next(),
            sec_fetch_mode: next(),
            sec_fetch_site: next(),
            traceparent: next(),
            client_address: next(),
            content_length: next().and_then(|value| value.trim().parse().ok()),
            dialect: Dialect::of_request(next().as_deref()),
            rid: next().is_some(),
        }
    }

    /// The forwarding headers the app gets (`latch_shared::identity`): the client's address
    /// only as Cloudflare reports it, the scheme and host from the request's own URL.
    pub fn forwarding_headers(&self) -> impl Iterator<Item = Header> + '_ {
        let (scheme, host) = self.own_origin.split_once("://").unwrap_or(("https", ""));
        let address = self.client_address.as_deref().map(|address| (FORWARDED_FOR_HEADER, address));
        address
            .into_iter()
            .chain([(FORWARDED_PROTO_HEADER, scheme), (FORWARDED_HOST_HEADER, host)])
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
    }

    /// A CORS preflight: `OPTIONS` with `Access-Control-Request-Method`.
    pub fn is_preflight(&self) -> bool {
        self.method == "OPTIONS" && self.preflight_method.is_some()
    }

    /// Whether the browser proved the request same-origin: Fetch Metadata, or where it sends
    /// none, the `Origin` header (and, with `referer_too`, for a page load that carries no
    /// `Origin`, a `Referer` on this site).
    pub fn proves_same_origin(&self, referer_too: bool) -> bool {
        let own = self.own_origin.as_str();
        let on_this_site =
            |referer: &&str| referer.strip_prefix(own).is_some_and(|rest| rest.starts_with('/'));
        let origin = match (&self.origin_header, referer_too) {
            (Some(origin), _) => Some(origin.as_str()),
            (None, true) => self.referer.as_deref().filter(on_this_site).map(|_| own),
            (None, false) => None,
        };
        engine::proves_same_origin(self.sec_fetch_site.as_deref(), origin, own)
    }

    /// The path and query, as forwarded.
    pub fn target(&self) -> String {
        format!("{}{}", self.path, self.query)
    }
}

/// Splits a URL as the runtime serialises it (`scheme://host[:port]/path[?query]`) into its
/// origin, path and query, without a URL parser (the url crate's IDNA tables would double the
/// bundle, and the runtime has already parsed and normalised it).
fn split_url(url: &str) -> (String, String, String) {
    let url = url.split('#').next().unwrap_or_default();
    let (before_query, query) = match url.find('?') {
        Some(at) => (&url[..at], &url[at..]),
        None => (url, ""),
    };
    let origin_end = before_query
        .find("://")
        .and_then(|scheme| before_query[scheme + 3..].find('/').map(|at| scheme + 3 + at))
        .unwrap_or(before_query.len());
    let path = &before_query[origin_end..];
    let path = if path.is_empty() { "/" } else { path };
    (before_query[..origin_end].to_owned(), path.to_owned(), query.to_owned())
}

/// A header to add to, or set on, a request or response.
pub type Header = (String, String);

/// What the machine asks the entry to do next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "do", rename_all = "snake_case")]
pub enum Step {
    /// Fetch the origin's settings document at `url` (from the runtime's cache unless `fresh`)
    /// and report [`Outcome::Settings`]. Concurrent requests wait for this load
    /// ([`Step::AwaitSettings`]).
    LoadSettings { url: String, fresh: bool },
    /// Wait for the settings load another request is carrying out, then report
    /// [`Outcome::Waited`].
    AwaitSettings,
    /// Read this blacklist key from KV and report [`Outcome::Blacklist`].
    ReadBlacklist { key: String },
    /// Write these blacklist entries to KV and report [`Outcome::Written`].
    WriteBlacklist { entries: Vec<BlacklistWrite> },
    /// Read the request's body, at most `limit` bytes, and report [`Outcome::Body`].
    ReadBody { limit: usize },
    /// Sign `input` with the edge's assertion key (the plan's `assertion_key`, in the runtime's
    /// native Ed25519) and report [`Outcome::Signed`].
    Sign { input: String },
    /// Call the origin's API and report [`Outcome::Origin`].
    CallOrigin(OriginCall),
    /// Forward the request to the app at `url`: the client's `x-latch-*` headers stripped,
    /// `set` set, the `Cookie` header replaced by `cookie` when present (empty: removed).
    /// If the app's answer carries an instruction (`x-latch-login`, `x-latch-logout`), report
    /// [`Outcome::App`]; otherwise send the answer amended by `response`, which ends the
    /// request. `background` is an origin call to make off the request path (`waitUntil`).
    Forward(Forward),
    /// Send this answer, once the request's unread body (if any) is read to its end and
    /// dropped: an unread body leaves the client's connection unusable.
    Respond(Reply),
    /// Send the app's answer with these changes; this ends the request.
    Amend(Amend),
}

/// A KV write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlacklistWrite {
    pub key: String,
    pub ttl_secs: u64,
}

/// A call to the origin's API. The entry adds the edge's `Authorization` (from the plan) and
/// `content-type: application/json` when there is a body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OriginCall {
    pub method: &'static str,
    pub url: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<Header>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

impl OriginCall {
    /// The call's headers for one client's request: its address (the origin's rate limits) and
    /// its trace context.
    pub fn for_client(mut self, client_address: Option<&str>, traceparent: Option<String>) -> Self {
        if let Some(address) = client_address {
            self.headers.push((CLIENT_ADDRESS_HEADER.to_owned(), address.to_owned()));
        }
        if let Some(traceparent) = traceparent {
            self.headers.push((TRACEPARENT_HEADER.to_owned(), traceparent));
        }
        self
    }
}

/// How to forward a request to the app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Forward {
    pub url: String,
    /// Request headers removed (the `Authorization` that carried the session's token).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub delete: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub set: Vec<Header>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cookie: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<Amend>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub background: Option<OriginCall>,
}

/// Changes to the app's answer, in this order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Amend {
    /// Headers removed (the app's instructions).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub delete: Vec<String>,
    /// Headers set, replacing the app's (`cache-control` on an answer that sets cookies, the
    /// CORS headers).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub set: Vec<Header>,
    /// Headers appended (`set-cookie`, and `vary`, which keeps the app's values).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub append: Vec<Header>,
}

impl Amend {
    /// Adds the edge's CORS headers: its own, but for `Vary`, which keeps the app's values.
    pub fn with_cors(mut self, cors: Vec<Header>) -> Amend {
        for (name, value) in cors {
            if name == "vary" {
                self.append.push((name, value));
            } else {
                self.set.push((name, value));
            }
        }
        self
    }
}

/// What the entry reports after carrying out a step.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// The first call: nothing carried out yet.
    Start,
    /// The settings document's text, or why it could not be had.
    Settings {
        #[serde(default)]
        text: Option<String>,
        #[serde(default)]
        error: Option<String>,
    },
    /// The load another request carried out has finished.
    Waited,
    /// KV's answer: `revoked` is absent when KV could not be read.
    Blacklist {
        #[serde(default)]
        revoked: Option<bool>,
    },
    /// The KV writes are done (`error`: the first failure).
    Written {
        #[serde(default)]
        error: Option<String>,
    },
    /// The request's body, or `too_large`.
    Body {
        #[serde(default)]
        text: Option<String>,
        #[serde(default)]
        too_large: bool,
    },
    /// The Ed25519 signature (base64url), or why there is none.
    Signed {
        #[serde(default)]
        signature: Option<String>,
        #[serde(default)]
        error: Option<String>,
    },
    /// The origin's answer, or `error` when it could not be reached.
    Origin {
        #[serde(default)]
        status: u16,
        #[serde(default)]
        body: String,
        #[serde(default)]
        retry_after: Option<String>,
        #[serde(default)]
        error: Option<String>,
    },
    /// The app's answer carries an instruction: the login instruction's value, whether there
    /// is a logout instruction, and the JWT payload instruction's value.
    App {
        #[serde(default)]
        login: Option<String>,
        #[serde(default)]
        logout: bool,
        #[serde(default)]
        jwt_payload: Option<String>,
        /// With a login instruction only: the request's `User-Agent` and `request.cf`'s
        /// country, region and city, for "your devices" (read then, not on every request:
        /// `request.cf` is built when first touched).
        #[serde(default)]
        device: DeviceReport,
    },
    /// The app could not be reached.
    AppUnreachable,
}

impl Outcome {
    /// The outcome's kind, for log lines (never its contents).
    pub fn kind(&self) -> &'static str {
        match self {
            Outcome::Start => "start",
            Outcome::Settings { .. } => "settings",
            Outcome::Waited => "waited",
            Outcome::Blacklist { .. } => "blacklist",
            Outcome::Written { .. } => "written",
            Outcome::Body { .. } => "body",
            Outcome::Signed { .. } => "signed",
            Outcome::Origin { .. } => "origin",
            Outcome::App { .. } => "app",
            Outcome::AppUnreachable => "app_unreachable",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_splits_into_origin_path_and_query() {
        assert_eq!(
            split_url("https://site.test:8443/a/b?x=1&y=%20#frag"),
            ("https://site.test:8443".into(), "/a/b".into(), "?x=1&y=%20".into())
        );
        assert_eq!(split_url("http://h"), ("http://h".into(), "/".into(), "".into()));
        assert_eq!(split_url("http://h/?"), ("http://h".into(), "/".into(), "?".into()));
    }

    #[test]
    fn facts_are_named_in_the_order_of_the_header_list() {
        let mut headers = vec![None; FACT_HEADERS.len()];
        headers[0] = Some("sAccessToken=t".to_owned());
        headers[9] = Some("00-abc".to_owned());
        headers[11] = Some(" 42 ".to_owned());
        headers[13] = Some(String::new());
        let request = Request::from_facts(Facts {
            method: "POST".into(),
            url: "http://h/p?q".into(),
            headers,
        });
        assert_eq!(request.cookie.as_deref(), Some("sAccessToken=t"));
        assert_eq!(request.traceparent.as_deref(), Some("00-abc"));
        assert_eq!(request.content_length, Some(42));
        assert!(request.rid, "an empty rid is still the custom header");
        assert_eq!(request.target(), "/p?q");
    }

    #[test]
    fn missing_header_values_read_as_absent() {
        let request = Request::from_facts(Facts {
            method: "GET".into(),
            url: "http://h/".into(),
            headers: vec![],
        });
        assert!(request.cookie.is_none() && request.client_address.is_none());
    }
}
