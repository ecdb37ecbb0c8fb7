//! The request engine: every rule that decides what a request gets, written once and called by
//! the edge, the origin's strong verify and the Session object's direct mode. No I/O: the caller
//! hands in the request's facts, the time and the result of the signature check (which is where
//! the callers differ: a WASM isolate caches verified tokens, the origin reads its key ring, an
//! app fetches the JWKS), and gets back either a verified session or the session error to answer.
//!
//! The seed's rules, in order:
//! 1. `Authorization: Bearer <token>` is used when present (API clients; no cookies, so no
//!    anti-CSRF: a forged form cannot set that header).
//! 2. Otherwise the cookies: without `sIdRefreshToken` there is no session to refresh
//!    (UNAUTHORISED, even with a valid access token); without `sAccessToken`, TRY_REFRESH_TOKEN.
//!    The current SDKs know nothing of `sIdRefreshToken` ([`crate::sdk`]): for their requests
//!    only `sAccessToken` counts, and without it the answer is TRY_REFRESH_TOKEN (their 401,
//!    on which they refresh).
//! 3. The token must verify (every failure is TRY_REFRESH_TOKEN).
//! 4. Where the anti-CSRF check applies, the `anti-csrf` header must be present and equal the
//!    token's `csrf` claim (constant time); absent or different is TRY_REFRESH_TOKEN. A token
//!    minted without a `csrf` claim can never pass a required check. Without the header, a
//!    request the browser proved same-origin (Fetch Metadata, where the caller accepts it:
//!    the edge by default) passes: a plain HTML form of the site itself. A deployment in
//!    custom-header mode ([`CsrfProof::CustomHeader`], supertokens-node's `VIA_CUSTOM_HEADER`)
//!    mints no anti-CSRF token; there the current SDKs' `rid` header is the proof.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::access::{SessionClaims, VerifiedAccessToken, VerifyError, DEFAULT_LEEWAY};
use crate::assertion::CsrfOutcome;
use crate::csrf::{anti_csrf_matches, method_needs_anti_csrf};
use crate::protocol::SessionCookies;
use crate::sdk::{Dialect, TokenTransfer};
use crate::SessionError;

/// The parts of a request the engine reads, as plain data: what crosses into the edge's WASM.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestFacts<'a> {
    /// The method exactly as sent (`GET`, `PROPFIND`, …).
    pub method: &'a str,
    /// The URL path, without the query.
    pub path: &'a str,
    /// The `Cookie` header (several joined with `"; "`).
    pub cookie: Option<&'a str>,
    /// The `Authorization` header.
    pub authorization: Option<&'a str>,
    /// The `anti-csrf` header.
    pub anti_csrf: Option<&'a str>,
    /// The browser proved the request same-origin ([`proves_same_origin`]), and the caller
    /// accepts that in place of the `anti-csrf` header.
    pub same_origin: bool,
    /// The request carries the custom header ([`crate::sdk::RID_HEADER`]); it stands in for the
    /// `anti-csrf` header only as [`RequestFacts::under`] a custom-header policy reads it.
    pub custom_header: bool,
    /// The SDK generation the request speaks ([`Dialect::of_request`]).
    pub dialect: Dialect,
}

impl RequestFacts<'_> {
    /// The facts as `policy` reads them: the `rid` header stands in for the anti-CSRF token only
    /// in custom-header mode (token mode asks for more, a secret the page was handed, never less).
    pub fn under(self, policy: &AntiCsrfPolicy) -> Self {
        RequestFacts { custom_header: self.custom_header && policy.accepts_custom_header(), ..self }
    }
}

/// OWASP's fetch-metadata defence: `Sec-Fetch-Site: same-origin`, or, from a browser too old
/// to send it, an `Origin` header equal to the site's own origin. `same-site`, `cross-site` and
/// `none` prove nothing, and neither does a missing header.
pub fn proves_same_origin(
    sec_fetch_site: Option<&str>,
    origin: Option<&str>,
    own_origin: &str,
) -> bool {
    match sec_fetch_site {
        Some(site) => site.eq_ignore_ascii_case("same-origin"),
        None => origin.is_some_and(|origin| !own_origin.is_empty() && origin == own_origin),
    }
}

/// Where the access token came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// The `sAccessToken` cookie: a browser sends it on its own, so anti-CSRF applies.
    Cookie(String),
    /// `Authorization: Bearer`: set by code, never by a cross-site form.
    Bearer(String),
}

impl Credential {
    pub fn token(&self) -> &str {
        match self {
            Credential::Cookie(token) | Credential::Bearer(token) => token,
        }
    }

    /// How tokens re-issued for this credential travel back: the way it came. A client never
    /// picks another (a script asking for header mode must not read tokens out of HttpOnly
    /// cookies).
    pub fn transfer(&self) -> TokenTransfer {
        match self {
            Credential::Cookie(_) => TokenTransfer::Cookie,
            Credential::Bearer(_) => TokenTransfer::Header,
        }
    }
}

/// The refresh token a refresh request presents, and the transfer the new tokens go back in:
/// a current SDK in header mode sends it as `Authorization: Bearer` (preferred to a cookie, as
/// supertokens-node does, when it is one: an app's own `Authorization` does not hide the
/// cookie); otherwise the `sRefreshToken` cookie. The tokens go back the way it came, so a
/// script asking for header mode never reads tokens out of HttpOnly cookies.
/// `needs_id_refresh`: the seed's rule that a 4.x refresh without `sIdRefreshToken` is no
/// session (the current SDKs know nothing of it). In custom-header mode, which mints no
/// anti-CSRF token, the cookie a browser sends on its own needs the custom header (or a
/// same-origin proof) here too, as supertokens-node's `VIA_CUSTOM_HEADER` asks, or another
/// site could rotate a `SameSite=None` session at will; refused as TRY_REFRESH_TOKEN, which
/// leaves the cookies alone.
pub fn refresh_credential(
    facts: &RequestFacts<'_>,
    policy: &AntiCsrfPolicy,
    needs_id_refresh: bool,
) -> Result<(String, TokenTransfer), SessionError> {
    let bearer = bearer_token(facts.authorization).filter(|token| {
        facts.dialect.is_current() && crate::refresh::RefreshToken::parse(token).is_ok()
    });
    if let Some(token) = bearer {
        return Ok((token.to_owned(), TokenTransfer::Header));
    }
    let cookies = SessionCookies::from_cookie_header(facts.cookie.unwrap_or_default())
        .map_err(|err| SessionError::unauthorised(err.to_string()))?;
    if needs_id_refresh && !facts.dialect.is_current() && cookies.id_refresh_token.is_none() {
        return Err(SessionError::unauthorised("missing auth tokens in cookies"));
    }
    let token =
        cookies.refresh_token.ok_or_else(|| SessionError::unauthorised("refresh token missing"))?;
    let facts = facts.under(policy);
    if policy.accepts_custom_header() && !facts.custom_header && !facts.same_origin {
        return Err(SessionError::try_refresh(crate::assertion::ANTI_CSRF_MISSING));
    }
    Ok((token, TokenTransfer::Cookie))
}

/// The token of `Authorization: Bearer <token>`; an empty one is none.
pub fn bearer_token(authorization: Option<&str>) -> Option<&str> {
    authorization?.strip_prefix("Bearer ").map(str::trim).filter(|token| !token.is_empty())
}

/// Rules 1 and 2: the access token the request presents.
pub fn credential(facts: &RequestFacts<'_>) -> Result<Credential, SessionError> {
    if let Some(token) = bearer_token(facts.authorization) {
        return Ok(Credential::Bearer(token.to_owned()));
    }
    let cookies = SessionCookies::from_cookie_header(facts.cookie.unwrap_or_default())
        .map_err(|err| SessionError::unauthorised(err.to_string()))?;
    if cookies.id_refresh_token.is_none() && !facts.dialect.is_current() {
        return Err(SessionError::unauthorised("no session: sign in"));
    }
    cookies
        .access_token
        .map(Credential::Cookie)
        .ok_or_else(|| SessionError::try_refresh("access token missing in cookies"))
}

/// When the anti-CSRF check applies to a cookie-authenticated request.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CsrfCheck {
    /// Never (for routes that must accept cross-site navigations, or deployments without it).
    Never,
    /// Methods other than GET, HEAD, OPTIONS and TRACE: the edge's default.
    UnsafeMethods,
    /// Every method: the seed's `getSession(req, res, true)`.
    AllMethods,
}

impl CsrfCheck {
    /// The seed's per-call flag: `enableCsrfProtection` true checks whatever the method.
    pub fn from_seed_flag(enable_csrf_protection: bool) -> Self {
        if enable_csrf_protection {
            CsrfCheck::AllMethods
        } else {
            CsrfCheck::Never
        }
    }

    pub fn applies_to(self, method: &str) -> bool {
        match self {
            CsrfCheck::Never => false,
            CsrfCheck::UnsafeMethods => method_needs_anti_csrf(method),
            CsrfCheck::AllMethods => true,
        }
    }
}

/// What proves a cookie-authenticated request was not forged by another site.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CsrfProof {
    /// The `anti-csrf` header equals the anti-CSRF token minted into the access token (the
    /// seed's way, supertokens-node's `VIA_TOKEN`); both SDK generations echo it.
    #[default]
    Token,
    /// The request carries the current SDKs' `rid` header, which only a script of an origin
    /// the CORS rules allow can add (supertokens-node's `VIA_CUSTOM_HEADER`, for cookies with
    /// `SameSite=None`). No anti-CSRF token is minted; `supertokens-website` 4.x, which sends no
    /// `rid`, passes only where the browser proves the request same-origin.
    CustomHeader,
}

/// The deployment's anti-CSRF rules: set at the origin, published to the edge in the settings
/// document (`crate::settings`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AntiCsrfPolicy {
    /// Whether any anti-CSRF protection applies (the seed's `enableAntiCsrf`). When false, no
    /// check ever applies, as in the seed.
    pub enabled: bool,
    /// What proves a request genuine where a check applies.
    #[serde(default)]
    pub proof: CsrfProof,
    /// The check at the edge for routes no rule names.
    pub check: CsrfCheck,
    /// Per-route checks at the edge, most specific first wins (`/exact` or `/prefix/*`).
    #[serde(default)]
    pub routes: Vec<PathRule<CsrfCheck>>,
}

impl Default for AntiCsrfPolicy {
    fn default() -> Self {
        AntiCsrfPolicy {
            enabled: true,
            proof: CsrfProof::Token,
            check: CsrfCheck::UnsafeMethods,
            routes: Vec::new(),
        }
    }
}

impl AntiCsrfPolicy {
    /// Whether new access tokens carry an anti-CSRF token (and answers hand it to the SDK).
    pub fn mints_token(&self) -> bool {
        self.enabled && self.proof == CsrfProof::Token
    }

    /// Whether a request's `rid` header stands in for the anti-CSRF token
    /// ([`RequestFacts::custom_header`]).
    pub fn accepts_custom_header(&self) -> bool {
        self.enabled && self.proof == CsrfProof::CustomHeader
    }

    /// The check for `path` at the edge.
    pub fn check_for(&self, path: &str) -> CsrfCheck {
        if !self.enabled {
            return CsrfCheck::Never;
        }
        best_match(&self.routes, path).unwrap_or(self.check)
    }

    /// The check for a per-call flag (the Session object, the origin's verify): the seed's
    /// `enableCsrfProtection && enableAntiCsrf`.
    pub fn check_for_flag(&self, enable_csrf_protection: bool) -> CsrfCheck {
        if self.enabled {
            CsrfCheck::from_seed_flag(enable_csrf_protection)
        } else {
            CsrfCheck::Never
        }
    }
}

/// Rules 3 and 4: admits a request whose token verified (`verified`, the caller's signature
/// check of `credential`) under `check`. `now` re-checks expiry, so callers may cache verified
/// tokens.
pub fn admit(
    facts: &RequestFacts<'_>,
    credential: &Credential,
    verified: Result<VerifiedAccessToken, VerifyError>,
    check: CsrfCheck,
    now: DateTime<Utc>,
) -> Result<VerifiedAccessToken, SessionError> {
    let verified = verified?;
    if now > verified.expires_at + DEFAULT_LEEWAY {
        return Err(VerifyError::Expired.into());
    }
    if check.applies_to(facts.method) {
        csrf_outcome(facts, credential, &verified.claims).enforce()?;
    }
    Ok(verified)
}

/// Rule 4's finding for this request, whether or not a check applies: what the edge's
/// assertion reports to the app (`crate::assertion`). A Bearer token is never checked.
pub fn csrf_outcome(
    facts: &RequestFacts<'_>,
    credential: &Credential,
    claims: &SessionClaims,
) -> CsrfOutcome {
    if matches!(credential, Credential::Bearer(_)) {
        return CsrfOutcome::NotApplicable;
    }
    if facts.custom_header {
        return CsrfOutcome::Passed;
    }
    let Some(presented) = facts.anti_csrf else {
        return if facts.same_origin { CsrfOutcome::SameOrigin } else { CsrfOutcome::Missing };
    };
    let expected = claims.csrf.as_deref().unwrap_or_default();
    if !expected.is_empty() && anti_csrf_matches(expected, Some(presented)) {
        CsrfOutcome::Passed
    } else {
        CsrfOutcome::Failed
    }
}

/// The whole check for a caller whose signature check is synchronous: rules 1 to 4.
pub fn authenticate(
    facts: &RequestFacts<'_>,
    check: CsrfCheck,
    now: DateTime<Utc>,
    verify: impl FnOnce(&str) -> Result<VerifiedAccessToken, VerifyError>,
) -> Result<VerifiedAccessToken, SessionError> {
    let credential = credential(facts)?;
    let verified = verify(credential.token());
    admit(facts, &credential, verified, check, now)
}

/// One path rule: `/exact`, or `/prefix/*` for everything below `/prefix` and `/prefix` itself.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathRule<T> {
    pub path: String,
    pub value: T,
}

impl<T> PathRule<T> {
    /// Parses a pattern; `None` if it is neither `/exact` nor `/prefix/*`.
    pub fn new(pattern: &str, value: T) -> Option<Self> {
        let star = pattern.find('*');
        let valid = pattern.starts_with('/')
            && star.is_none_or(|at| at == pattern.len() - 1 && pattern.ends_with("/*"));
        valid.then(|| PathRule { path: pattern.to_owned(), value })
    }

    /// How specific the match is, if `path` matches: longer wins, exact beats prefix.
    fn specificity(&self, path: &str) -> Option<usize> {
        match self.path.strip_suffix("/*") {
            Some(prefix) => {
                let below = path.strip_prefix(prefix)?;
                (below.is_empty() || below.starts_with('/')).then_some(prefix.len())
            }
            None => (path == self.path).then_some(self.path.len() + 1),
        }
    }
}

/// Why a path is refused: once percent-decoded it would name something else than the path the
/// route rules matched, so an app that decodes or normalises before routing (servlet
/// containers resolve `..;`, some frameworks decode `%2F` and `%5C`) could serve a protected
/// resource under a public rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AmbiguousPath {
    #[error("the path has a dot segment once decoded (%2e, %2f or a ;parameter)")]
    DotSegment,
    #[error("the path has a backslash once decoded")]
    Backslash,
}

/// Checks that `path` (as the URL parser left it: literal `.` and `..` segments already
/// resolved) means the same decoded: no segment that is `.` or `..` once percent-decoded and
/// stripped of `;parameters`, or once a decoded `%2F` splits it, and no backslash, raw or
/// `%5C`. Everything else, `%2F` inside a segment included, passes unchanged and is matched as
/// written.
pub fn check_path(path: &str) -> Result<(), AmbiguousPath> {
    let bytes = path.as_bytes();
    if !bytes.iter().any(|b| matches!(b, b'.' | b'%' | b'\\' | b';')) {
        return Ok(());
    }
    let decoded = crate::percent::decode_lenient(path);
    if decoded.contains(&b'\\') {
        return Err(AmbiguousPath::Backslash);
    }
    for segment in decoded.split(|&b| b == b'/') {
        let name = segment.split(|&b| b == b';').next().unwrap_or_default();
        if name == b"." || name == b".." {
            return Err(AmbiguousPath::DotSegment);
        }
    }
    Ok(())
}

/// The value of the most specific rule matching `path`.
pub fn best_match<T: Copy>(rules: &[PathRule<T>], path: &str) -> Option<T> {
    most_specific(rules, path).copied()
}

/// [`best_match`] for values that are not `Copy` (the claim rules): a reference to the value.
pub fn most_specific<'a, T>(rules: &'a [PathRule<T>], path: &str) -> Option<&'a T> {
    rules
        .iter()
        .filter_map(|rule| rule.specificity(path).map(|len| (len, &rule.value)))
        .max_by_key(|(len, _)| *len)
        .map(|(_, value)| value)
}

/// What a path of the app needs at the edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// Forwarded without identity (client identity headers are still stripped).
    Public,
    /// Forwarded with identity when a valid session is present, without it otherwise.
    Optional,
    /// Requires a valid session; otherwise answered with a session error.
    Protected,
}

/// The edge's route rules: the most specific rule wins, else the default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routes {
    pub rules: Vec<PathRule<Access>>,
    pub default: Access,
}

impl Routes {
    pub fn access(&self, path: &str) -> Access {
        best_match(&self.rules, path).unwrap_or(self.default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::{sign, SessionClaims, Verifier};
    use crate::keys::{KeySet, SigningKey};
    use chrono::Duration;
    use proptest::prelude::*;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn key() -> SigningKey {
        SigningKey::from_seed(&[3; 32])
    }

    fn verifier() -> Verifier {
        Verifier::new(KeySet::new([key().verifying_key()]).unwrap(), "iss", "aud")
    }

    fn token(csrf: Option<&str>) -> String {
        let claims = SessionClaims {
            iss: "iss".into(),
            aud: "aud".into(),
            sub: "alice".into(),
            uid: Some(crate::user_id::UserId::Text("alice".into())),
            sid: "h1".into(),
            csrf: csrf.map(str::to_owned),
            pld: None,
            rgen: None,
        };
        sign(&key(), claims, now(), Duration::seconds(60)).unwrap().value
    }

    fn run(facts: &RequestFacts<'_>, check: CsrfCheck) -> Result<String, SessionError> {
        authenticate(facts, check, now(), |token| verifier().verify(token, now()))
            .map(|verified| verified.claims.sub)
    }

    #[test]
    fn only_the_browsers_same_origin_word_or_a_matching_origin_proves_same_origin() {
        let own = "https://app.test";
        assert!(proves_same_origin(Some("same-origin"), None, own));
        assert!(proves_same_origin(Some("same-origin"), Some("https://evil.test"), own));
        for site in ["same-site", "cross-site", "none", ""] {
            assert!(!proves_same_origin(Some(site), Some(own), own), "{site}");
        }
        assert!(proves_same_origin(None, Some(own), own));
        assert!(!proves_same_origin(None, Some("https://app.test.evil.test"), own));
        assert!(!proves_same_origin(None, Some("null"), own));
        assert!(!proves_same_origin(None, None, own));
    }

    #[test]
    fn paths_whose_decoded_form_means_something_else_are_refused() {
        for path in [
            "/pub/..;/secret",
            "/pub/.;x/secret",
            "/pub/%2e%2e%2fsecret",
            "/pub/%2E%2E/secret",
            "/pub/..%2Fsecret",
            "/pub/..%2fsecret",
            "/pub/..%5csecret",
            "/pub/%5C..%5Csecret",
            "/pub/a\\b",
            "/pub/%2e",
        ] {
            assert!(check_path(path).is_err(), "{path}");
        }
        for path in [
            "/",
            "/pub/page",
            "/pub/a%2Fb",
            "/pub/%20space",
            "/pub/file.tar.gz",
            "/.well-known/jwks.json",
            "/pub/...",
            "/pub/..x",
            "/pub/a;b=c",
            "/pub/%zz",
            "/pub/Zo%C3%AB",
        ] {
            assert_eq!(check_path(path), Ok(()), "{path}");
        }
    }

    proptest::proptest! {
        #[test]
        fn check_path_never_panics(path in "/[a-z./%;\\\\0-9A-F]{0,40}") {
            let _ = check_path(&path);
        }
    }

    #[test]
    fn without_the_id_refresh_cookie_there_is_no_session_even_with_a_valid_token() {
        let cookie = format!("sAccessToken={}", token(Some("c")));
        let facts = RequestFacts { method: "GET", cookie: Some(&cookie), ..Default::default() };
        assert_eq!(
            run(&facts, CsrfCheck::Never).unwrap_err().kind(),
            crate::ErrorKind::Unauthorised
        );
        let facts = RequestFacts { method: "GET", cookie: Some("sIdRefreshToken=i"), ..facts };
        assert_eq!(
            run(&facts, CsrfCheck::Never).unwrap_err().kind(),
            crate::ErrorKind::TryRefreshToken
        );
    }

    #[test]
    fn a_refresh_answers_in_the_transfer_its_token_came_in_whatever_the_request_asks() {
        use crate::sdk::TokenTransfer;
        let header = Dialect::Current(TokenTransfer::Header);
        let refresh = crate::refresh::RotationKey::new([3; 32])
            .first_token(
                crate::refresh::SessionHandle::generate(&mut rand::rngs::OsRng),
                &mut rand::rngs::OsRng,
            )
            .expose();
        let bearer = format!("Bearer {refresh}");
        let cookie = format!("sRefreshToken={refresh}");
        // Header mode's Bearer refresh token: tokens back in headers.
        let facts =
            RequestFacts { authorization: Some(&bearer), dialect: header, ..Default::default() };
        assert_eq!(
            refresh_credential(&facts, &AntiCsrfPolicy::default(), true).unwrap().1,
            TokenTransfer::Header
        );
        // A cookie session asking for header mode: still cookies.
        let facts = RequestFacts { cookie: Some(&cookie), dialect: header, ..Default::default() };
        assert_eq!(
            refresh_credential(&facts, &AntiCsrfPolicy::default(), true).unwrap().1,
            TokenTransfer::Cookie
        );
        // An app's own Authorization does not hide the cookie.
        let facts = RequestFacts { authorization: Some("Bearer app-token"), ..facts };
        assert_eq!(
            refresh_credential(&facts, &AntiCsrfPolicy::default(), true).unwrap(),
            (refresh.clone(), TokenTransfer::Cookie)
        );
        // 4.x: a Bearer is never a refresh token, and the seed's id-refresh rule holds where asked.
        let facts = RequestFacts {
            authorization: Some(&bearer),
            cookie: Some(&cookie),
            ..Default::default()
        };
        assert_eq!(
            refresh_credential(&facts, &AntiCsrfPolicy::default(), false).unwrap().1,
            TokenTransfer::Cookie
        );
        assert_eq!(
            refresh_credential(&facts, &AntiCsrfPolicy::default(), true).unwrap_err().kind(),
            crate::ErrorKind::Unauthorised
        );
    }

    #[test]
    fn in_custom_header_mode_another_site_cannot_refresh_with_the_cookie() {
        let policy = custom_header_policy();
        let forged = RequestFacts {
            method: "POST",
            cookie: Some("sRefreshToken=r"),
            dialect: Dialect::Current(TokenTransfer::Cookie),
            ..Default::default()
        };
        let err = refresh_credential(&forged, &policy, false).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::TryRefreshToken, "the cookies are left alone");
        let sdk = RequestFacts { custom_header: true, ..forged };
        assert_eq!(refresh_credential(&sdk, &policy, false).unwrap().0, "r");
        let same_origin = RequestFacts { same_origin: true, ..forged };
        assert!(refresh_credential(&same_origin, &policy, false).is_ok());
        // Token mode asks nothing more of a refresh, as the seed.
        assert!(refresh_credential(&forged, &AntiCsrfPolicy::default(), false).is_ok());
    }

    #[test]
    fn the_current_sdk_needs_no_id_refresh_cookie_and_refreshes_without_an_access_token() {
        use crate::sdk::TokenTransfer;
        let current = Dialect::Current(TokenTransfer::Cookie);
        let cookie = format!("sAccessToken={}", token(Some("c")));
        let facts = RequestFacts {
            method: "GET",
            cookie: Some(&cookie),
            dialect: current,
            ..Default::default()
        };
        assert!(run(&facts, CsrfCheck::Never).is_ok());
        let facts = RequestFacts { cookie: None, ..facts };
        assert_eq!(
            run(&facts, CsrfCheck::Never).unwrap_err().kind(),
            crate::ErrorKind::TryRefreshToken
        );
    }

    #[test]
    fn cross_site_forms_cannot_pass_the_anti_csrf_check() {
        let cookie = format!("sAccessToken={}; sIdRefreshToken=i", token(Some("c")));
        let post = RequestFacts { method: "POST", cookie: Some(&cookie), ..Default::default() };
        let err = run(&post, CsrfCheck::UnsafeMethods).unwrap_err();
        assert_eq!(err.message, "anti-csrf token not found in headers");
        let wrong = RequestFacts { anti_csrf: Some("d"), ..post };
        assert_eq!(
            run(&wrong, CsrfCheck::UnsafeMethods).unwrap_err().message,
            "anti-csrf check failed"
        );
        let right = RequestFacts { anti_csrf: Some("c"), ..post };
        assert_eq!(run(&right, CsrfCheck::UnsafeMethods).unwrap(), "alice");
        // A WebDAV method is unsafe too.
        let propfind = RequestFacts { method: "PROPFIND", ..post };
        assert!(run(&propfind, CsrfCheck::UnsafeMethods).is_err());
        // The seed's flag checks whatever the method.
        let get = RequestFacts { method: "GET", ..post };
        assert!(run(&get, CsrfCheck::UnsafeMethods).is_ok());
        assert!(run(&get, CsrfCheck::AllMethods).is_err());
    }

    #[test]
    fn a_same_origin_form_passes_without_the_header_but_a_wrong_header_never_does() {
        let cookie = format!("sAccessToken={}; sIdRefreshToken=i", token(Some("c")));
        let form = RequestFacts {
            method: "POST",
            cookie: Some(&cookie),
            same_origin: true,
            ..Default::default()
        };
        assert_eq!(run(&form, CsrfCheck::AllMethods).unwrap(), "alice");
        let wrong = RequestFacts { anti_csrf: Some("d"), ..form };
        assert_eq!(
            run(&wrong, CsrfCheck::AllMethods).unwrap_err().message,
            "anti-csrf check failed"
        );
    }

    #[test]
    fn a_token_minted_without_anti_csrf_never_passes_a_required_check() {
        let cookie = format!("sAccessToken={}; sIdRefreshToken=i", token(None));
        let facts = RequestFacts {
            method: "POST",
            cookie: Some(&cookie),
            anti_csrf: Some(""),
            ..Default::default()
        };
        assert!(run(&facts, CsrfCheck::UnsafeMethods).is_err());
        assert!(run(&facts, CsrfCheck::Never).is_ok());
    }

    fn custom_header_policy() -> AntiCsrfPolicy {
        AntiCsrfPolicy { proof: CsrfProof::CustomHeader, ..AntiCsrfPolicy::default() }
    }

    #[test]
    fn in_custom_header_mode_the_rid_header_is_the_proof_and_a_cross_site_form_has_none() {
        let policy = custom_header_policy();
        assert!(!policy.mints_token(), "custom-header mode mints no anti-CSRF token");
        let cookie = format!("sAccessToken={}", token(None));
        let form = RequestFacts {
            method: "POST",
            cookie: Some(&cookie),
            dialect: Dialect::Current(TokenTransfer::Cookie),
            ..Default::default()
        };
        let err = run(&form.under(&policy), CsrfCheck::UnsafeMethods).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::TryRefreshToken);
        assert_eq!(err.message, "anti-csrf token not found in headers");
        // A guessed anti-csrf header is no proof either.
        let guessed = RequestFacts { anti_csrf: Some(""), ..form };
        assert!(run(&guessed.under(&policy), CsrfCheck::UnsafeMethods).is_err());
        let sdk = RequestFacts { custom_header: true, ..form };
        assert_eq!(run(&sdk.under(&policy), CsrfCheck::AllMethods).unwrap(), "alice");
        // Off is off: no proof is asked for.
        let off = AntiCsrfPolicy { enabled: false, ..policy };
        assert!(!off.mints_token());
        assert!(!sdk.under(&off).custom_header);
    }

    #[test]
    fn in_token_mode_a_rid_header_does_not_stand_in_for_the_token() {
        let policy = AntiCsrfPolicy::default();
        assert!(policy.mints_token());
        let cookie = format!("sAccessToken={}", token(Some("c")));
        let scripted = RequestFacts {
            method: "POST",
            cookie: Some(&cookie),
            custom_header: true,
            dialect: Dialect::Current(TokenTransfer::Cookie),
            ..Default::default()
        };
        let err = run(&scripted.under(&policy), CsrfCheck::UnsafeMethods).unwrap_err();
        assert_eq!(err.message, "anti-csrf token not found in headers");
        let with_token = RequestFacts { anti_csrf: Some("c"), ..scripted };
        assert_eq!(run(&with_token.under(&policy), CsrfCheck::UnsafeMethods).unwrap(), "alice");
    }

    #[test]
    fn the_proof_defaults_to_the_token_in_settings_that_do_not_name_it() {
        let policy: AntiCsrfPolicy =
            serde_json::from_str(r#"{"enabled":true,"check":"unsafe_methods"}"#).unwrap();
        assert_eq!(policy.proof, CsrfProof::Token);
        let named: AntiCsrfPolicy = serde_json::from_str(
            r#"{"enabled":true,"proof":"custom_header","check":"unsafe_methods"}"#,
        )
        .unwrap();
        assert!(named.accepts_custom_header());
    }

    #[test]
    fn bearer_tokens_need_no_cookies_and_no_anti_csrf() {
        let auth = format!("Bearer {}", token(Some("c")));
        let facts =
            RequestFacts { method: "DELETE", authorization: Some(&auth), ..Default::default() };
        assert_eq!(run(&facts, CsrfCheck::AllMethods).unwrap(), "alice");
    }

    #[test]
    fn a_cached_verification_still_expires() {
        let cookie = format!("sAccessToken={}; sIdRefreshToken=i", token(Some("c")));
        let facts = RequestFacts { method: "GET", cookie: Some(&cookie), ..Default::default() };
        let verified = verifier().verify(&token(Some("c")), now());
        let credential = credential(&facts).unwrap();
        let later = now() + Duration::seconds(120);
        let err = admit(&facts, &credential, verified, CsrfCheck::Never, later).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::TryRefreshToken);
    }

    #[test]
    fn policies_disabled_at_the_origin_check_nothing() {
        let policy = AntiCsrfPolicy {
            enabled: false,
            proof: CsrfProof::Token,
            check: CsrfCheck::AllMethods,
            routes: vec![PathRule::new("/api/*", CsrfCheck::AllMethods).unwrap()],
        };
        assert_eq!(policy.check_for("/api/x"), CsrfCheck::Never);
        assert_eq!(policy.check_for_flag(true), CsrfCheck::Never);
        let on = AntiCsrfPolicy { enabled: true, ..policy };
        assert_eq!(on.check_for("/api/x"), CsrfCheck::AllMethods);
        assert_eq!(on.check_for("/other"), CsrfCheck::AllMethods);
        assert_eq!(on.check_for_flag(false), CsrfCheck::Never);
    }

    #[test]
    fn most_specific_rule_wins() {
        let rule = |p: &str, a| PathRule::new(p, a).unwrap();
        let routes = Routes {
            rules: vec![
                rule("/", Access::Public),
                rule("/static/*", Access::Public),
                rule("/login", Access::Public),
                rule("/static/private/*", Access::Protected),
                rule("/api/*", Access::Protected),
                rule("/api/feed", Access::Optional),
            ],
            default: Access::Public,
        };
        assert_eq!(routes.access("/"), Access::Public);
        assert_eq!(routes.access("/static/app.js"), Access::Public);
        assert_eq!(routes.access("/static"), Access::Public);
        assert_eq!(routes.access("/staticky"), Access::Public, "falls to the default");
        assert_eq!(routes.access("/static/private/x"), Access::Protected);
        assert_eq!(routes.access("/api/me"), Access::Protected);
        assert_eq!(routes.access("/api/feed"), Access::Optional);
        assert!(PathRule::new("static/*", Access::Public).is_none());
        assert!(PathRule::new("/a*/b", Access::Public).is_none());
        assert!(PathRule::new("/a/*x", Access::Public).is_none());
    }

    proptest! {
        #[test]
        fn arbitrary_requests_never_panic_or_pass_without_a_valid_token(
            method in "[A-Z]{1,10}",
            cookie in proptest::option::of(".{0,200}"),
            authorization in proptest::option::of(".{0,200}"),
            anti_csrf in proptest::option::of(".{0,40}"),
            same_origin in proptest::bool::ANY,
            custom_header in proptest::bool::ANY,
            proof in prop_oneof![Just(CsrfProof::Token), Just(CsrfProof::CustomHeader)],
        ) {
            let facts = RequestFacts {
                method: &method,
                path: "/",
                cookie: cookie.as_deref(),
                authorization: authorization.as_deref(),
                anti_csrf: anti_csrf.as_deref(),
                same_origin,
                custom_header,
                dialect: Dialect::default(),
            };
            let policy = AntiCsrfPolicy { proof, ..AntiCsrfPolicy::default() };
            prop_assert!(run(&facts.under(&policy), CsrfCheck::AllMethods).is_err());
        }
    }
}
