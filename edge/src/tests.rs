//! The request flows driven natively, the test playing the JS entry: the steps a request takes
//! in the protocol of [`crate::step`], and the defects that protocol makes impossible (each also
//! tested on workerd in `tests/edge/edge.test.mjs`).

use std::cell::Cell;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use chrono::{DateTime, Duration, Utc};
use latch_shared::access::{sign, SessionClaims};
use latch_shared::keys::{KeySet, SigningKey};
use latch_shared::trace::REQUEST_ID_HEADER;

use super::*;
use crate::step::Forward;

const START_MS: i64 = 1_800_000_000_000;
/// `ASSERTION_KEYS` below: 32 bytes of 1.
const ASSERTION_SEED: [u8; 32] = [1; 32];

struct Entry {
    edge: Edge,
    now_ms: Rc<Cell<i64>>,
    key: SigningKey,
}

impl Entry {
    fn new(vars: &[(&str, &str)]) -> Entry {
        let vars: Vec<(String, String)> =
            vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let config = EdgeConfig::from_lookup(|name| {
            let fixed = match name {
                "ORIGIN_URL" => Some("http://origin.test"),
                "UPSTREAM_URL" => Some("http://app.test"),
                "EDGE_SECRET" => Some("secret-0123456789abcdef"),
                "ASSERTION_KEYS" => Some("AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE"),
                _ => None,
            };
            vars.iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
                .or(fixed.map(str::to_owned))
        })
        .unwrap();
        let now_ms = Rc::new(Cell::new(START_MS));
        let clock_ms = now_ms.clone();
        let clock: Clock =
            Rc::new(move || DateTime::from_timestamp_millis(clock_ms.get()).unwrap());
        Entry { edge: Edge::new(config, clock), now_ms, key: SigningKey::from_seed(&[9; 32]) }
    }

    fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.now_ms.get()).unwrap()
    }

    fn settings_document(&self) -> Outcome {
        let keys = KeySet::new([self.key.verifying_key()]).unwrap();
        let settings = crate::isolate::tests::settings_for(&keys);
        Outcome::Settings { text: Some(serde_json::to_string(&settings).unwrap()), error: None }
    }

    fn token(&self, key: &SigningKey) -> String {
        let claims = SessionClaims {
            iss: "latch".into(),
            aud: "latch".into(),
            sub: "Zoë".into(),
            uid: None,
            sid: "handle-1".into(),
            csrf: None,
            pld: None,
            rgen: Some(0),
        };
        sign(key, claims, self.now(), Duration::seconds(600)).unwrap().value
    }

    fn request(&self, method: &str, path: &str, headers: &[(&str, String)]) -> Machine {
        let values = FACT_HEADERS
            .iter()
            .map(|name| headers.iter().find(|(known, _)| known == name).map(|(_, v)| v.clone()))
            .collect();
        self.edge.request(Facts {
            method: method.into(),
            url: format!("https://site.test{path}"),
            headers: values,
        })
    }

    /// A fresh isolate's request to a public route: it loads the settings, then forwards.
    fn first_forward(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
    ) -> (Machine, Forward) {
        let mut machine = self.request(method, path, headers);
        assert!(matches!(machine.resume(Outcome::Start), Step::LoadSettings { .. }));
        let Step::Forward(forward) = machine.resume(self.settings_document()) else { panic!() };
        (machine, forward)
    }
}

fn signed(input: &str) -> Outcome {
    let signature = SigningKey::from_seed(&ASSERTION_SEED).sign(input.as_bytes());
    Outcome::Signed { signature: Some(URL_SAFE_NO_PAD.encode(signature)), error: None }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(known, _)| known == name).map(|(_, value)| value.as_str())
}

#[test]
fn a_token_naming_an_unknown_key_while_the_settings_are_due_loads_twice_then_asks_for_a_refresh() {
    let entry = Entry::new(&[("SETTINGS_CACHE_SECS", "1"), ("BLACKLIST_CHECK", "off")]);
    let bearer = |token: String| [("authorization", format!("Bearer {token}"))];
    let mut first = entry.request("GET", "/page", &bearer(entry.token(&entry.key)));
    assert!(matches!(first.resume(Outcome::Start), Step::LoadSettings { fresh: false, .. }));
    let Step::Sign { input } = first.resume(entry.settings_document()) else { panic!() };
    assert!(matches!(first.resume(signed(&input)), Step::Forward(_)));

    // Past the settings' cache time, a token of a key nobody published: a load, then a fresh
    // load for the key, then the answer the SDK refreshes on (the old entry answered 500).
    entry.now_ms.set(START_MS + 2_000);
    let unknown = SigningKey::from_seed(&[3; 32]);
    let mut second = entry.request("GET", "/page", &bearer(entry.token(&unknown)));
    assert!(matches!(second.resume(Outcome::Start), Step::LoadSettings { fresh: false, .. }));
    assert!(matches!(
        second.resume(entry.settings_document()),
        Step::LoadSettings { fresh: true, .. }
    ));
    let Step::Respond(reply) = second.resume(entry.settings_document()) else { panic!() };
    assert_eq!(reply.status, 440);
    assert!(reply.body.contains("TRY_REFRESH_TOKEN"), "{}", reply.body);
    assert!(header(&reply.headers, REQUEST_ID_HEADER).is_some_and(|id| id.len() == 32));
}

#[test]
fn the_app_and_every_origin_call_of_one_request_see_one_trace() {
    let entry = Entry::new(&[("BLACKLIST_CHECK", "off")]);
    let cookie = format!("sAccessToken={}; sIdRefreshToken=irt", entry.token(&entry.key));
    let mut machine = entry.request("GET", "/logout", &[("cookie", cookie)]);
    assert!(matches!(machine.resume(Outcome::Start), Step::LoadSettings { .. }));
    let Step::Sign { input } = machine.resume(entry.settings_document()) else { panic!() };
    let Step::Forward(forward) = machine.resume(signed(&input)) else { panic!() };
    let at_app = header(&forward.set, "traceparent").expect("a trace is made").to_owned();
    let Step::CallOrigin(revoke) = machine.resume(Outcome::App {
        login: None,
        logout: true,
        jwt_payload: None,
        device: Default::default(),
    }) else {
        panic!()
    };
    assert_eq!(revoke.method, "DELETE");
    let at_origin = header(&revoke.headers, "traceparent").unwrap();
    assert_eq!(at_origin.split('-').nth(1), at_app.split('-').nth(1), "one trace id");
    let answer = Outcome::Origin {
        status: 200,
        body: r#"{"revoked":true,"response_headers":[]}"#.into(),
        retry_after: None,
        error: None,
    };
    assert!(matches!(machine.resume(answer), Step::WriteBlacklist { .. }));
    let Step::Amend(amend) = machine.resume(Outcome::Written { error: None }) else { panic!() };
    assert!(amend
        .append
        .iter()
        .any(|(name, value)| name == "set-cookie" && value.contains("1970")));
    assert_eq!(header(&amend.set, "cache-control"), Some("no-store"), "set, not appended");
}

#[test]
fn a_public_route_is_one_step_and_forwards_with_only_the_forwarding_headers() {
    let entry = Entry::new(&[("PUBLIC_PATHS", "/public/*")]);
    let client = [("cf-connecting-ip", "203.0.113.9".to_owned())];
    let (_, forward) = entry.first_forward("GET", "/public/a?b=1", &client);
    assert_eq!(forward.url, "http://app.test/public/a?b=1");
    assert!(forward.cookie.is_none() && forward.background.is_none());
    let names: Vec<&str> = forward.set.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "traceparent"]);
    assert_eq!(header(&forward.set, "x-forwarded-for"), Some("203.0.113.9"));
    assert_eq!(header(&forward.set, "x-forwarded-proto"), Some("https"));
    assert_eq!(header(&forward.set, "x-forwarded-host"), Some("site.test"));
    // The settings are loaded now: the next public request is decided in its first step.
    let mut next = entry.request("GET", "/public/b", &[]);
    assert!(matches!(next.resume(Outcome::Start), Step::Forward(_)));
}

#[test]
fn a_login_sends_the_origin_the_device_the_entry_read_for_it() {
    let entry = Entry::new(&[("PUBLIC_PATHS", "/login")]);
    let client = [("cf-connecting-ip", "203.0.113.9".to_owned())];
    let (mut machine, _) = entry.first_forward("POST", "/login", &client);
    let device = latch_shared::api::DeviceReport {
        user_agent: Some("Mozilla/5.0 (Zoë's phone)".into()),
        country: Some("CH".into()),
        region: None,
        city: Some("Zürich".into()),
    };
    let Step::CallOrigin(create) = machine.resume(Outcome::App {
        login: Some(r#"{"user_id":"Zoë"}"#.into()),
        logout: false,
        jwt_payload: None,
        device: device.clone(),
    }) else {
        panic!()
    };
    let body: latch_shared::api::CreateSessionRequest =
        serde_json::from_str(create.body.as_deref().unwrap()).unwrap();
    assert_eq!(body.device, Some(device), "the app's instruction plus what the entry read");
    assert_eq!(header(&create.headers, "x-latch-client-address"), Some("203.0.113.9"));
}
