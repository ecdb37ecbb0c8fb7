//! The browser protocol, compatible with the frontend SDK `supertokens-website` 4.x and with the
//! current SDKs ([`crate::sdk`]): cookie names, attributes and paths, the `anti-csrf`,
//! `id-refresh-token` and `front-token` headers, header mode's token headers, and clearing.
//!
//! The SDKs never read the session cookies (all three are HttpOnly). 4.x learns that a session
//! exists from the `id-refresh-token` response header (`<value>;<expiry ms>`, or `remove`), the
//! current SDKs from `front-token`; both keep the `anti-csrf` response header to echo on later
//! requests.

pub use cookie::SameSite;
use serde::{Deserialize, Serialize};

use crate::api::{ExpiringToken, SessionTokens, SessionView};
use crate::sdk::{
    self, TokenTransfer, ACCESS_TOKEN_HEADER, FRONT_TOKEN_HEADER, FRONT_TOKEN_REMOVE,
    REFRESH_TOKEN_HEADER,
};

pub const ACCESS_TOKEN_COOKIE: &str = "sAccessToken";
pub const REFRESH_TOKEN_COOKIE: &str = "sRefreshToken";
pub const ID_REFRESH_TOKEN_COOKIE: &str = "sIdRefreshToken";

pub const ANTI_CSRF_HEADER: &str = "anti-csrf";
pub const ID_REFRESH_TOKEN_HEADER: &str = "id-refresh-token";
/// `id-refresh-token` value that tells the SDK the session is gone.
pub const ID_REFRESH_TOKEN_REMOVE: &str = "remove";
pub const EXPOSE_HEADERS_HEADER: &str = "access-control-expose-headers";
/// The response headers the SDKs must be able to read on a cross-origin response.
pub const EXPOSED_HEADERS: &str =
    "id-refresh-token, anti-csrf, front-token, st-access-token, st-refresh-token";
/// The request headers the SDKs add, which a CORS preflight must allow.
pub const SDK_REQUEST_HEADERS: &str = "anti-csrf, supertokens-sdk-name, supertokens-sdk-version, \
                                       rid, fdi-version, st-auth-mode, authorization, content-type";

/// An HTTP date (RFC 9110 IMF-fixdate, `Thu, 01 Jan 1970 00:00:00 GMT`) for milliseconds since
/// the epoch; times before the epoch are the epoch.
pub fn http_date(ms: i64) -> String {
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let seconds = ms.max(0) / 1000;
    let (days, time) = (seconds / 86_400, seconds % 86_400);
    // Howard Hinnant's civil_from_days: the proleptic Gregorian date of a day count.
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 { shifted_month + 3 } else { shifted_month - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        WEEKDAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        time / 3600,
        time % 3600 / 60,
        time % 60
    )
}

/// Longest `Cookie` header read; anything longer is refused rather than parsed.
pub const MAX_COOKIE_HEADER_LEN: usize = 16 * 1024;

/// One response header to add (never replace: a response carries several `Set-Cookie`s).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseHeader {
    pub name: String,
    pub value: String,
}

impl ResponseHeader {
    fn new(name: &str, value: impl Into<String>) -> Self {
        ResponseHeader { name: name.to_owned(), value: value.into() }
    }
}

/// The seed's `setRelevantHeadersForOptionsAPI`: what an app adds to its answer to a CORS
/// preflight so that the SDK's headers and credentials are allowed (with its own
/// `Access-Control-Allow-Origin` and methods).
pub fn options_api_headers() -> Vec<ResponseHeader> {
    vec![
        ResponseHeader::new("access-control-allow-headers", SDK_REQUEST_HEADERS),
        ResponseHeader::new("access-control-allow-credentials", "true"),
    ]
}

/// How session cookies are written: one policy per deployment, set at the origin and published
/// to the edge (`crate::settings`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CookiePolicy {
    /// `Domain` attribute; `None` makes host-only cookies (the safer default).
    #[serde(default)]
    pub domain: Option<String>,
    pub secure: bool,
    #[serde(with = "same_site_text")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "Lax"))]
    pub same_site: SameSite,
    /// `Path` of the access-token and id-refresh-token cookies.
    pub access_token_path: String,
    /// The refresh endpoint, which is also the refresh-token cookie's `Path`, so the refresh
    /// token travels on refresh requests only.
    pub refresh_path: String,
}

pub const DEFAULT_REFRESH_PATH: &str = "/session/refresh";

impl Default for CookiePolicy {
    fn default() -> Self {
        CookiePolicy {
            domain: None,
            secure: true,
            same_site: SameSite::Lax,
            access_token_path: "/".into(),
            refresh_path: DEFAULT_REFRESH_PATH.into(),
        }
    }
}

/// A cookie policy that browsers would reject or that would leak the refresh token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CookiePolicyError {
    #[error("SameSite=None requires secure cookies")]
    SameSiteNoneNeedsSecure,
    #[error("cookie path {0:?} must start with '/' and contain no ';', ',' or whitespace")]
    BadPath(String),
    #[error("cookie domain {0:?} is not a valid host name")]
    BadDomain(String),
    #[error("SameSite must be lax, strict or none, not {0:?}")]
    BadSameSite(String),
}

/// SameSite as `lax`, `strict` or `none` in the settings document.
mod same_site_text {
    use super::{parse_same_site, SameSite};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &SameSite, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(match value {
            SameSite::Strict => "strict",
            SameSite::Lax => "lax",
            SameSite::None => "none",
        })
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SameSite, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_same_site(&text).map_err(serde::de::Error::custom)
    }
}

/// Parses a SameSite setting: `lax`, `strict` or `none`, in any case.
pub fn parse_same_site(text: &str) -> Result<SameSite, CookiePolicyError> {
    match text.to_ascii_lowercase().as_str() {
        "lax" => Ok(SameSite::Lax),
        "strict" => Ok(SameSite::Strict),
        "none" => Ok(SameSite::None),
        _ => Err(CookiePolicyError::BadSameSite(text.to_owned())),
    }
}

impl CookiePolicy {
    pub fn validate(&self) -> Result<(), CookiePolicyError> {
        if self.same_site == SameSite::None && !self.secure {
            return Err(CookiePolicyError::SameSiteNoneNeedsSecure);
        }
        for path in [&self.access_token_path, &self.refresh_path] {
            if !path.starts_with('/')
                || path.contains([';', ','])
                || path.contains(char::is_whitespace)
            {
                return Err(CookiePolicyError::BadPath(path.clone()));
            }
        }
        if let Some(domain) = &self.domain {
            let valid = !domain.is_empty()
                && domain.len() <= 253
                && domain.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
            if !valid {
                return Err(CookiePolicyError::BadDomain(domain.clone()));
            }
        }
        Ok(())
    }

    /// A `Set-Cookie` value, attribute for attribute as the `cookie` crate writes it (a test
    /// holds the two equal), written here because its date formatting (the `time` crate's)
    /// would cost the edge's bundle about 5 KB.
    fn set_cookie(&self, name: &str, value: &str, path: &str, expires_ms: i64) -> ResponseHeader {
        let mut header = format!("{name}={value}; HttpOnly; SameSite={}", self.same_site);
        if self.secure {
            header.push_str("; Secure");
        }
        header.push_str("; Path=");
        header.push_str(path);
        if let Some(domain) = &self.domain {
            header.push_str("; Domain=");
            header.push_str(domain.strip_prefix('.').unwrap_or(domain));
        }
        header.push_str("; Expires=");
        header.push_str(&http_date(expires_ms));
        ResponseHeader::new("set-cookie", header)
    }

    /// Headers that hand a new or refreshed session to the client. In cookie mode: the three
    /// cookies, the `id-refresh-token` (4.x) and `front-token` (current SDKs) headers, and
    /// `anti-csrf`. In header mode (a current SDK asked for it): the tokens in `st-access-token`
    /// and `st-refresh-token`, and `front-token`; no cookie, and no anti-CSRF token (a header
    /// set by code is its own proof). Both with the expose list for cross-origin pages.
    pub fn session_headers(
        &self,
        session: &SessionView,
        tokens: &SessionTokens,
        transfer: TokenTransfer,
    ) -> Vec<ResponseHeader> {
        let front_token = ResponseHeader::new(
            FRONT_TOKEN_HEADER,
            sdk::front_token(session, tokens.access_token.expires_at),
        );
        let mut headers = match transfer {
            TokenTransfer::Header => vec![
                ResponseHeader::new(ACCESS_TOKEN_HEADER, tokens.access_token.value.clone()),
                ResponseHeader::new(REFRESH_TOKEN_HEADER, tokens.refresh_token.value.clone()),
                front_token,
            ],
            TokenTransfer::Cookie => {
                let mut headers = vec![
                    self.set_cookie(
                        ACCESS_TOKEN_COOKIE,
                        &tokens.access_token.value,
                        &self.access_token_path,
                        tokens.access_token.expires_at,
                    ),
                    self.set_cookie(
                        REFRESH_TOKEN_COOKIE,
                        &tokens.refresh_token.value,
                        &self.refresh_path,
                        tokens.refresh_token.expires_at,
                    ),
                    self.set_cookie(
                        ID_REFRESH_TOKEN_COOKIE,
                        &tokens.id_refresh_token.value,
                        &self.access_token_path,
                        tokens.id_refresh_token.expires_at,
                    ),
                    ResponseHeader::new(
                        ID_REFRESH_TOKEN_HEADER,
                        format!(
                            "{};{}",
                            tokens.id_refresh_token.value, tokens.id_refresh_token.expires_at
                        ),
                    ),
                    front_token,
                ];
                if let Some(anti_csrf) = &tokens.anti_csrf_token {
                    headers.push(ResponseHeader::new(ANTI_CSRF_HEADER, anti_csrf.clone()));
                }
                headers
            }
        };
        headers.push(ResponseHeader::new(EXPOSE_HEADERS_HEADER, EXPOSED_HEADERS));
        headers
    }

    /// Headers that hand a re-issued access token (a new JWT payload) to the client: the
    /// `sAccessToken` cookie or header mode's `st-access-token`, and `front-token` with the
    /// new payload.
    pub fn access_token_headers(
        &self,
        session: &SessionView,
        access_token: &ExpiringToken,
        transfer: TokenTransfer,
    ) -> Vec<ResponseHeader> {
        let token = match transfer {
            TokenTransfer::Header => {
                ResponseHeader::new(ACCESS_TOKEN_HEADER, access_token.value.clone())
            }
            TokenTransfer::Cookie => self.set_cookie(
                ACCESS_TOKEN_COOKIE,
                &access_token.value,
                &self.access_token_path,
                access_token.expires_at,
            ),
        };
        vec![
            token,
            ResponseHeader::new(
                FRONT_TOKEN_HEADER,
                sdk::front_token(session, access_token.expires_at),
            ),
            ResponseHeader::new(EXPOSE_HEADERS_HEADER, EXPOSED_HEADERS),
        ]
    }

    /// Headers that end the session in the client, whichever SDK and transfer it used: all
    /// three cookies expired on their own paths, header mode's tokens emptied, and
    /// `id-refresh-token: remove` and `front-token: remove` so the SDKs stop refreshing.
    pub fn clear_headers(&self) -> Vec<ResponseHeader> {
        vec![
            self.set_cookie(ACCESS_TOKEN_COOKIE, "", &self.access_token_path, 0),
            self.set_cookie(ID_REFRESH_TOKEN_COOKIE, "", &self.access_token_path, 0),
            self.set_cookie(REFRESH_TOKEN_COOKIE, "", &self.refresh_path, 0),
            ResponseHeader::new(ID_REFRESH_TOKEN_HEADER, ID_REFRESH_TOKEN_REMOVE),
            ResponseHeader::new(FRONT_TOKEN_HEADER, FRONT_TOKEN_REMOVE),
            ResponseHeader::new(ACCESS_TOKEN_HEADER, ""),
            ResponseHeader::new(REFRESH_TOKEN_HEADER, ""),
            ResponseHeader::new(EXPOSE_HEADERS_HEADER, EXPOSED_HEADERS),
        ]
    }
}

/// The session cookies a request carried. Empty values count as absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionCookies {
    pub access_token: Option<String>,
    pub refresh_token: Option<String>,
    pub id_refresh_token: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the Cookie header is longer than {MAX_COOKIE_HEADER_LEN} bytes")]
pub struct CookieHeaderTooLarge;

impl SessionCookies {
    /// Reads the session cookies from a `Cookie` header (several headers joined with `"; "`).
    /// Where a name repeats, the first occurrence wins, as in browsers' ordering (the most
    /// specific path comes first). Malformed pairs are skipped; the rest still count.
    pub fn from_cookie_header(header: &str) -> Result<Self, CookieHeaderTooLarge> {
        if header.len() > MAX_COOKIE_HEADER_LEN {
            return Err(CookieHeaderTooLarge);
        }
        let mut cookies = SessionCookies::default();
        // `name=value` pairs split on `;`, as browsers send them (RFC 6265 §5.4). Parsed by
        // hand: the cookie crate's parser also reads Set-Cookie attributes, whose date parsing
        // would be a fifth of the edge's bundle for nothing a Cookie header carries.
        for pair in header.split(';') {
            let Some((name, value)) = pair.split_once('=') else { continue };
            let slot = match name.trim() {
                ACCESS_TOKEN_COOKIE => &mut cookies.access_token,
                REFRESH_TOKEN_COOKIE => &mut cookies.refresh_token,
                ID_REFRESH_TOKEN_COOKIE => &mut cookies.id_refresh_token,
                _ => continue,
            };
            let value = value.trim();
            if slot.is_none() && !value.is_empty() {
                *slot = Some(value.to_owned());
            }
        }
        Ok(cookies)
    }
}

/// The `Cookie` header without the session cookies, for an app that must not see them (the
/// edge's identity assertion replaces them); `None` when there were none to remove. An empty
/// result means no cookie is left. The session cookies include the current SDKs' copies of
/// header mode's tokens, which they keep in cookies of their own (`st-access-token`,
/// `st-refresh-token`) that the browser then sends everywhere.
pub fn without_session_cookies(header: &str) -> Option<String> {
    let is_session = |pair: &str| {
        let name = pair.split_once('=').map_or(pair, |(name, _)| name).trim();
        matches!(
            name,
            ACCESS_TOKEN_COOKIE
                | REFRESH_TOKEN_COOKIE
                | ID_REFRESH_TOKEN_COOKIE
                | ACCESS_TOKEN_HEADER
                | REFRESH_TOKEN_HEADER
        )
    };
    if !header.split(';').any(is_session) {
        return None;
    }
    let kept: Vec<&str> = header
        .split(';')
        .map(str::trim)
        .filter(|pair| !pair.is_empty() && !is_session(pair))
        .collect();
    Some(kept.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_cookies_are_taken_out_and_the_rest_kept() {
        assert_eq!(without_session_cookies("theme=dark; lang=fr"), None);
        assert_eq!(
            without_session_cookies(
                "sAccessToken=a; theme=dark;sRefreshToken=r; sIdRefreshToken=i"
            ),
            Some("theme=dark".into())
        );
        assert_eq!(without_session_cookies("sAccessToken=a"), Some(String::new()));
        assert_eq!(
            without_session_cookies("st-access-token=a; sFrontToken=f; st-refresh-token=r"),
            Some("sFrontToken=f".into())
        );
        // Only exact names: lookalikes belong to the app.
        assert_eq!(without_session_cookies("sAccessTokenX=a; xsAccessToken=b"), None);
    }
    use crate::api::ExpiringToken;
    use proptest::prelude::*;

    fn tokens(anti_csrf: Option<&str>) -> SessionTokens {
        SessionTokens {
            access_token: ExpiringToken { value: "a.b.c".into(), expires_at: 1_800_000_000_000 },
            refresh_token: ExpiringToken { value: "h.s".into(), expires_at: 1_808_640_000_000 },
            id_refresh_token: ExpiringToken { value: "irt".into(), expires_at: 1_808_640_000_000 },
            anti_csrf_token: anti_csrf.map(str::to_owned),
        }
    }

    fn session() -> SessionView {
        SessionView {
            handle: "h".into(),
            user_id: crate::user_id::UserId::text("u").unwrap(),
            jwt_payload: None,
        }
    }

    fn find<'a>(headers: &'a [ResponseHeader], name: &str) -> Vec<&'a str> {
        headers.iter().filter(|h| h.name == name).map(|h| h.value.as_str()).collect()
    }

    #[test]
    fn session_headers_set_three_cookies_on_their_paths() {
        let policy = CookiePolicy { domain: Some("example.com".into()), ..CookiePolicy::default() };
        let headers =
            policy.session_headers(&session(), &tokens(Some("csrf")), TokenTransfer::Cookie);
        let cookies = find(&headers, "set-cookie");
        assert_eq!(cookies.len(), 3);
        assert!(cookies[0].starts_with("sAccessToken=a.b.c;"), "{}", cookies[0]);
        assert!(cookies[0].contains("Path=/;") || cookies[0].contains("Path=/ "), "{}", cookies[0]);
        assert!(cookies[1].starts_with("sRefreshToken=h.s;"), "{}", cookies[1]);
        assert!(cookies[1].contains("Path=/session/refresh"), "{}", cookies[1]);
        assert!(cookies[2].starts_with("sIdRefreshToken=irt;"), "{}", cookies[2]);
        for cookie in &cookies {
            for attribute in
                ["HttpOnly", "Secure", "SameSite=Lax", "Domain=example.com", "Expires="]
            {
                assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
            }
        }
        assert!(cookies[0].contains("Expires=Fri, 15 Jan 2027 08:00:00 GMT"), "{}", cookies[0]);
        assert_eq!(find(&headers, "id-refresh-token"), ["irt;1808640000000"]);
        assert_eq!(find(&headers, "anti-csrf"), ["csrf"]);
        assert_eq!(find(&headers, "front-token").len(), 1);
        assert!(find(&headers, "st-access-token").is_empty());
        assert_eq!(find(&headers, "access-control-expose-headers"), [EXPOSED_HEADERS]);
    }

    #[test]
    fn header_mode_hands_the_tokens_over_in_headers_and_sets_no_cookie() {
        let headers = CookiePolicy::default().session_headers(
            &session(),
            &tokens(Some("csrf")),
            TokenTransfer::Header,
        );
        assert!(find(&headers, "set-cookie").is_empty());
        assert_eq!(find(&headers, "st-access-token"), ["a.b.c"]);
        assert_eq!(find(&headers, "st-refresh-token"), ["h.s"]);
        assert_eq!(find(&headers, "front-token").len(), 1);
        // Header mode needs no anti-CSRF token, and 4.x's header would mean a cookie session.
        assert!(find(&headers, "anti-csrf").is_empty());
        assert!(find(&headers, "id-refresh-token").is_empty());
        for exposed in ["front-token", "st-access-token", "st-refresh-token", "anti-csrf"] {
            assert!(EXPOSED_HEADERS.split(", ").any(|name| name == exposed), "{exposed}");
        }
    }

    #[test]
    fn without_anti_csrf_no_header_is_sent_and_host_only_cookies_have_no_domain() {
        let headers = CookiePolicy::default().session_headers(
            &session(),
            &tokens(None),
            TokenTransfer::Cookie,
        );
        assert!(find(&headers, "anti-csrf").is_empty());
        assert!(find(&headers, "set-cookie").iter().all(|c| !c.contains("Domain=")));
    }

    #[test]
    fn clearing_expires_every_cookie_on_its_path_and_tells_the_sdk() {
        let headers = CookiePolicy { secure: false, ..CookiePolicy::default() }.clear_headers();
        let cookies = find(&headers, "set-cookie");
        assert_eq!(cookies.len(), 3);
        for (cookie, (name, path)) in cookies.iter().zip([
            ("sAccessToken", "/"),
            ("sIdRefreshToken", "/"),
            ("sRefreshToken", "/session/refresh"),
        ]) {
            assert!(cookie.starts_with(&format!("{name}=;")), "{cookie}");
            assert!(cookie.contains(&format!("Path={path}")), "{cookie}");
            assert!(cookie.contains("Expires=Thu, 01 Jan 1970 00:00:00 GMT"), "{cookie}");
            assert!(!cookie.contains("Secure"), "{cookie}");
        }
        assert_eq!(find(&headers, "id-refresh-token"), ["remove"]);
        assert_eq!(find(&headers, "front-token"), ["remove"]);
        assert_eq!(find(&headers, "st-access-token"), [""]);
        assert_eq!(find(&headers, "st-refresh-token"), [""]);
    }

    #[test]
    fn policies_browsers_would_reject_are_refused() {
        let none_insecure =
            CookiePolicy { same_site: SameSite::None, secure: false, ..CookiePolicy::default() };
        assert_eq!(none_insecure.validate(), Err(CookiePolicyError::SameSiteNoneNeedsSecure));
        let bad_path = CookiePolicy { refresh_path: "refresh".into(), ..CookiePolicy::default() };
        assert!(matches!(bad_path.validate(), Err(CookiePolicyError::BadPath(_))));
        let bad_domain = CookiePolicy { domain: Some("a;b".into()), ..CookiePolicy::default() };
        assert!(matches!(bad_domain.validate(), Err(CookiePolicyError::BadDomain(_))));
        assert!(CookiePolicy::default().validate().is_ok());
        assert_eq!(parse_same_site("Strict"), Ok(SameSite::Strict));
        assert!(parse_same_site("sometimes").is_err());
    }

    #[test]
    fn request_cookies_first_occurrence_wins_and_noise_is_skipped() {
        let header = "theme=dark;sAccessToken=first;  sAccessToken=second; junk; =x; \
                      sRefreshToken=; sRefreshToken=r1;sIdRefreshToken=i1";
        let cookies = SessionCookies::from_cookie_header(header).unwrap();
        assert_eq!(cookies.access_token.as_deref(), Some("first"));
        assert_eq!(cookies.refresh_token.as_deref(), Some("r1"));
        assert_eq!(cookies.id_refresh_token.as_deref(), Some("i1"));
        assert_eq!(SessionCookies::from_cookie_header("").unwrap(), SessionCookies::default());
    }

    #[test]
    fn huge_cookie_headers_are_refused_and_large_values_kept() {
        let big = format!("sAccessToken={}", "x".repeat(MAX_COOKIE_HEADER_LEN));
        assert_eq!(SessionCookies::from_cookie_header(&big), Err(CookieHeaderTooLarge));
        let large = format!("sAccessToken={}", "y".repeat(8000));
        let cookies = SessionCookies::from_cookie_header(&large).unwrap();
        assert_eq!(cookies.access_token.unwrap().len(), 8000);
    }

    /// What the `cookie` crate writes for the same cookie: the reference `set_cookie` matches.
    fn cookie_crate(policy: &CookiePolicy, name: &str, value: &str, path: &str, ms: i64) -> String {
        let expires = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)).unwrap();
        let mut builder = cookie::Cookie::build((name.to_owned(), value.to_owned()))
            .path(path.to_owned())
            .http_only(true)
            .secure(policy.secure)
            .same_site(policy.same_site)
            .expires(cookie::Expiration::DateTime(expires));
        if let Some(domain) = &policy.domain {
            builder = builder.domain(domain.clone());
        }
        builder.build().to_string()
    }

    #[test]
    fn http_dates_are_imf_fixdates() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(-5), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(951_782_400_000), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(http_date(1_808_640_000_999), "Sun, 25 Apr 2027 08:00:00 GMT");
    }

    proptest! {
        #[test]
        fn set_cookie_writes_what_the_cookie_crate_writes(
            ms in 0i64..253_402_300_799_000,
            secure in any::<bool>(),
            same_site in prop::sample::select(vec![SameSite::Lax, SameSite::Strict, SameSite::None]),
            domain in prop::option::of("\\.?[a-z]{1,10}\\.example"),
            path in "/[a-z/]{0,12}",
        ) {
            let policy = CookiePolicy { secure, same_site, domain, ..CookiePolicy::default() };
            let ours = policy.set_cookie("sAccessToken", "a.b.c", &path, ms).value;
            prop_assert_eq!(ours, cookie_crate(&policy, "sAccessToken", "a.b.c", &path, ms));
        }

        #[test]
        fn arbitrary_cookie_headers_never_panic(header in ".{0,400}") {
            let _ = SessionCookies::from_cookie_header(&header);
        }

        #[test]
        fn cookies_survive_arbitrary_neighbours(
            before in "[a-zA-Z0-9 =;]{0,60}", after in "[a-zA-Z0-9 =;]{0,60}",
            token in "[A-Za-z0-9_.-]{1,100}",
        ) {
            let header = format!("{before}; sAccessToken={token}; {after}");
            let cookies = SessionCookies::from_cookie_header(&header).unwrap();
            // Unless the noise itself names sAccessToken first, ours is what is read.
            if !before.contains("sAccessToken") {
                prop_assert_eq!(cookies.access_token.as_deref(), Some(token.as_str()));
            }
        }
    }
}
