//! One request engine, three callers: the edge's decision path, the origin's strong verify and
//! the Session object's direct mode must reach the same outcome for the same request. Each is
//! driven through its own public entry point, with the same keys, time and anti-CSRF rules: the
//! edge through its step machine, with this test playing the JS entry.

use std::rc::Rc;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};

use chrono::{DateTime, Duration, Utc};
use latch_edge::step::{Facts, Outcome as Reported, Step, FACT_HEADERS};
use latch_edge::{Edge, EdgeConfig};
use latch_origin::sessions::check_access_token;
use latch_session::check_request;
use latch_shared::access::{sign, SessionClaims, VerifiedAccessToken};
use latch_shared::api::VerifyRequest;
use latch_shared::assertion::{AssertionVerifier, ASSERTION_HEADER};
use latch_shared::engine::{AntiCsrfPolicy, CsrfCheck, CsrfProof, PathRule, RequestFacts};
use latch_shared::keys::{KeySet, SigningKey};
use latch_shared::protocol::CookiePolicy;
use latch_shared::sdk::{Dialect, TokenTransfer, AUTH_MODE_HEADER, RID_HEADER};
use latch_shared::settings::SharedSettings;
use latch_shared::SessionError;
use proptest::prelude::*;

const ISSUER: &str = "https://origin.test";
const AUDIENCE: &str = "app";

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

fn key() -> SigningKey {
    SigningKey::from_seed(&[9; 32])
}

/// The seed's flag at the edge is a route rule: `/checked/*` checks every method, `/unchecked/*`
/// none; the Session object and the origin take it per call.
fn policy(enabled: bool, proof: CsrfProof) -> AntiCsrfPolicy {
    AntiCsrfPolicy {
        enabled,
        proof,
        check: CsrfCheck::UnsafeMethods,
        routes: vec![
            PathRule::new("/checked/*", CsrfCheck::AllMethods).unwrap(),
            PathRule::new("/unchecked/*", CsrfCheck::Never).unwrap(),
        ],
    }
}

fn settings(policy: &AntiCsrfPolicy) -> SharedSettings {
    SharedSettings {
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        cookies: CookiePolicy::default(),
        session_expired_status: 440,
        anti_csrf: policy.clone(),
        access_token_lifetime_secs: 60,
        jwks: KeySet::new([key().verifying_key()]).unwrap().to_jwks(),
    }
}

/// An edge isolate, and a verifier of its assertions as an app would hold.
fn edge() -> (Edge, AssertionVerifier) {
    let config = EdgeConfig::from_lookup(|name| {
        Some(
            match name {
                "ORIGIN_URL" => "http://127.0.0.1:1",
                "UPSTREAM_URL" => "http://127.0.0.1:2",
                "EDGE_SECRET" => "secret-0123456789abcdef",
                "ASSERTION_KEYS" => "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE",
                // KV's answer is not the engine's: the blacklist is tested on workerd.
                "BLACKLIST_CHECK" => "off",
                _ => return None,
            }
            .to_owned(),
        )
    })
    .unwrap();
    let keys = KeySet::from_jwks(&serde_json::from_str(&config.assertion_jwks).unwrap()).unwrap();
    let verifier =
        AssertionVerifier::new(keys, config.assertion.issuer(), config.assertion.audience());
    (Edge::new(config, Rc::new(now)), verifier)
}

#[derive(Debug, Clone, Copy)]
enum Token {
    Valid,
    WithoutCsrfClaim,
    Expired,
    ForeignKey,
    WrongAudience,
    Tampered,
    Garbage,
}

fn token(kind: Token) -> String {
    let claims = |csrf: Option<&str>, aud: &str| SessionClaims {
        iss: ISSUER.into(),
        aud: aud.into(),
        sub: "zoë".into(),
        uid: Some(latch_shared::api::UserId::Text("zoë".into())),
        sid: "handle-1".into(),
        csrf: csrf.map(str::to_owned),
        pld: Some(serde_json::json!({"role": "admin"})),
        rgen: Some(0),
    };
    let mint = |key: &SigningKey, claims, at: DateTime<Utc>| {
        sign(key, claims, at, Duration::seconds(60)).unwrap().value
    };
    match kind {
        Token::Valid => mint(&key(), claims(Some("csrf-1"), AUDIENCE), now()),
        Token::WithoutCsrfClaim => mint(&key(), claims(None, AUDIENCE), now()),
        Token::Expired => {
            mint(&key(), claims(Some("csrf-1"), AUDIENCE), now() - Duration::hours(1))
        }
        Token::ForeignKey => {
            mint(&SigningKey::from_seed(&[1; 32]), claims(Some("csrf-1"), AUDIENCE), now())
        }
        Token::WrongAudience => mint(&key(), claims(Some("csrf-1"), "other"), now()),
        Token::Tampered => {
            let valid = mint(&key(), claims(Some("csrf-1"), AUDIENCE), now());
            let (head, sig) = valid.rsplit_once('.').unwrap();
            let flipped = if sig.starts_with('A') { "B" } else { "A" };
            format!("{head}.{flipped}{}", &sig[1..])
        }
        Token::Garbage => "not-a-token".into(),
    }
}

fn token_kind() -> impl Strategy<Value = Token> {
    prop_oneof![
        Just(Token::Valid),
        Just(Token::WithoutCsrfClaim),
        Just(Token::Expired),
        Just(Token::ForeignKey),
        Just(Token::WrongAudience),
        Just(Token::Tampered),
        Just(Token::Garbage),
    ]
}

/// What a caller decided, comparable across callers.
type Outcome = Result<(String, String, Option<serde_json::Value>), SessionError>;

fn outcome(result: Result<VerifiedAccessToken, SessionError>) -> Outcome {
    result.map(|v| (v.claims.sub, v.claims.sid, v.claims.pld))
}

/// The edge's answer to `facts`, the test carrying out its steps: the origin's settings
/// document for every load (an unknown kid stays unknown), and the app's answer never awaited.
fn at_edge(
    (edge, verifier): &(Edge, AssertionVerifier),
    facts: &RequestFacts<'_>,
    policy: &AntiCsrfPolicy,
) -> Outcome {
    let mut headers = vec![None; FACT_HEADERS.len()];
    for (name, value) in [
        ("cookie", facts.cookie),
        ("authorization", facts.authorization),
        ("anti-csrf", facts.anti_csrf),
        (RID_HEADER, facts.custom_header.then_some("anti-csrf")),
        (
            AUTH_MODE_HEADER,
            match facts.dialect {
                Dialect::Website4 => None,
                Dialect::Current(TokenTransfer::Cookie) => Some("cookie"),
                Dialect::Current(TokenTransfer::Header) => Some("header"),
            },
        ),
    ] {
        let at = FACT_HEADERS.iter().position(|known| *known == name).unwrap();
        headers[at] = value.map(str::to_owned);
    }
    let url = format!("https://site.test{}", facts.path);
    let mut machine = edge.request(Facts { method: facts.method.to_owned(), url, headers });
    let document = serde_json::to_string(&settings(policy)).unwrap();
    let mut step = machine.resume(Reported::Start);
    loop {
        step = match step {
            Step::LoadSettings { .. } => {
                machine.resume(Reported::Settings { text: Some(document.clone()), error: None })
            }
            // The edge's assertion key: ASSERTION_KEYS below is 32 bytes of 1.
            Step::Sign { input } => {
                let signature = SigningKey::from_seed(&[1; 32]).sign(input.as_bytes());
                let signature = URL_SAFE_NO_PAD.encode(signature);
                machine.resume(Reported::Signed { signature: Some(signature), error: None })
            }
            Step::Forward(forward) => {
                let (_, assertion) =
                    forward.set.iter().find(|(name, _)| name == ASSERTION_HEADER).unwrap();
                let claims = verifier.verify(assertion, now()).unwrap();
                return Ok((claims.sub, claims.sid, claims.pld));
            }
            Step::Respond(reply) => {
                let mut body: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
                // A current SDK's answer carries supertokens-node's message, and Latch's reason
                // beside it; its status is the current SDKs' 401 (500 for GENERAL_ERROR).
                if let Some(reason) = body.get("reason").cloned() {
                    assert!(matches!(reply.status, 401 | 500), "{body}");
                    body["message"] = reason;
                }
                return Err(serde_json::from_value(body).unwrap());
            }
            other => panic!("no such step for a protected route without KV: {other:?}"),
        }
    }
}

fn session_object(facts: &RequestFacts<'_>, policy: &AntiCsrfPolicy, flag: bool) -> Outcome {
    let verifier = latch_shared::access::Verifier::new(
        KeySet::new([key().verifying_key()]).unwrap(),
        ISSUER,
        AUDIENCE,
    );
    outcome(check_request(facts, policy, flag, now(), |t| verifier.verify(t, now())))
}

fn origin(token: &str, facts: &RequestFacts<'_>, policy: &AntiCsrfPolicy, flag: bool) -> Outcome {
    let verifier = latch_shared::access::Verifier::new(
        KeySet::new([key().verifying_key()]).unwrap(),
        ISSUER,
        AUDIENCE,
    );
    let request = VerifyRequest {
        access_token: token.to_owned(),
        anti_csrf_token: facts.anti_csrf.map(str::to_owned),
        enforce_anti_csrf: flag,
        rid_header: facts.custom_header,
    };
    outcome(check_access_token(&request, policy, verifier.verify(token, now()), now()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn edge_origin_and_session_object_agree(
        kind in token_kind(),
        // 0: no cookies, 1: access token only, 2: id-refresh only, 3: both, 4: bearer
        layout in 0u8..5,
        anti_csrf in prop_oneof![Just(None), Just(Some("csrf-1")), Just(Some("wrong")), Just(Some(""))],
        method in prop_oneof![Just("GET"), Just("POST"), Just("PROPFIND"), Just("HEAD")],
        flag: bool,
        enabled: bool,
        proof in prop_oneof![Just(CsrfProof::Token), Just(CsrfProof::CustomHeader)],
        rid: bool,
        dialect in prop_oneof![
            Just(Dialect::Website4),
            Just(Dialect::Current(TokenTransfer::Cookie)),
            Just(Dialect::Current(TokenTransfer::Header)),
        ],
    ) {
        let token = token(kind);
        let cookie = match layout {
            1 => Some(format!("sAccessToken={token}")),
            2 => Some("sIdRefreshToken=irt".to_owned()),
            3 => Some(format!("theme=dark; sAccessToken={token}; sIdRefreshToken=irt")),
            _ => None,
        };
        let authorization = (layout == 4).then(|| format!("Bearer {token}"));
        let path = if flag { "/checked/page" } else { "/unchecked/page" };
        let facts = RequestFacts {
            method,
            path,
            cookie: cookie.as_deref(),
            authorization: authorization.as_deref(),
            anti_csrf,
            same_origin: false,
            custom_header: rid,
            dialect,
        };
        let policy = policy(enabled, proof);
        let edge = edge();
        let at_edge = at_edge(&edge, &facts, &policy);
        // A second request with the same token takes the edge's cache of verified tokens: it
        // must not change the answer.
        prop_assert_eq!(&self::at_edge(&edge, &facts, &policy), &at_edge);
        prop_assert_eq!(&session_object(&facts, &policy, flag), &at_edge);
        if layout == 3 {
            // The origin is given the cookie's token directly.
            prop_assert_eq!(&origin(&token, &facts, &policy, flag), &at_edge);
        }
        if matches!(kind, Token::Valid) && layout >= 3 {
            // A matching token proves it in either mode (custom-header mode mints none, but a
            // token from before the switch still carries one); `rid` only in custom-header mode.
            let proved = anti_csrf == Some("csrf-1") || (proof == CsrfProof::CustomHeader && rid);
            let csrf_ok = !enabled || !flag || layout == 4 || proved;
            prop_assert_eq!(at_edge.is_ok(), csrf_ok, "{:?}", at_edge);
        }
    }
}
