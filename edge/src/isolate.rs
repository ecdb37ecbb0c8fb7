//! What an isolate keeps between requests: its configuration, the origin's settings and keys,
//! the tokens it has already verified and what KV last said about each session. Plain data, no
//! I/O: [`crate::decide`] reads and updates it, the async parts of the edge fill it.

use std::collections::HashMap;
use std::rc::Rc;

use chrono::{DateTime, Utc};
use latch_shared::access::{VerifiedAccessToken, Verifier};
use latch_shared::assertion::{CsrfOutcome, ASSERTION_HEADER, ASSERTION_REUSE_SECS};
use latch_shared::identity::convenience_headers;
use latch_shared::keys::KeySet;
use latch_shared::settings::SharedSettings;
use latch_shared::trace::TraceContext;

use crate::config::EdgeConfig;

/// Bounds on the per-isolate caches: an isolate serves many sessions, and a flood of distinct
/// tokens must not grow its memory without limit.
const MAX_VERIFIED_TOKENS: usize = 4096;
const MAX_BLACKLIST_ENTRIES: usize = 8192;
/// Few: each is a kid a fetch just failed to bring, and at most one fetch runs per cooldown.
const MAX_UNKNOWN_KIDS: usize = 64;
/// How long a kid that a fresh fetch did not bring stays known-unknown: tokens naming it are
/// refused without asking the origin again.
const UNKNOWN_KID_MEMORY_MS: f64 = 60_000.0;

/// The origin's settings and the verifier for its keys.
#[derive(Debug)]
pub struct Loaded {
    pub settings: Rc<SharedSettings>,
    pub verifier: Verifier,
    pub fetched_at_ms: f64,
}

/// A token whose signature checked out, with the identity headers last made for it: one set
/// per anti-CSRF outcome, since the assertion reports the request's.
#[derive(Debug, Clone)]
struct VerifiedToken {
    token: VerifiedAccessToken,
    identities: [Option<MintedIdentity>; CsrfOutcome::ALL.len()],
}

#[derive(Debug, Clone)]
struct MintedIdentity {
    headers: Vec<(String, String)>,
    minted_at_secs: i64,
}

/// What KV last said about a session, and when it was asked.
#[derive(Debug, Clone, Copy)]
struct BlacklistEntry {
    asked_at_ms: f64,
    revoked: bool,
}

/// Whether a session's blacklist entry must be read now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlacklistStatus {
    /// KV said so: refuse.
    Revoked,
    /// Read within the interval: trust the answer.
    Clear,
    /// Read KV now (this request is marked as the one asking).
    Due,
}

#[derive(Debug)]
pub struct Isolate {
    pub config: Rc<EdgeConfig>,
    pub loaded: Option<Loaded>,
    /// When the settings were last asked for, whether or not that worked.
    pub last_load_attempt_ms: f64,
    /// A load is under way: requests that cannot go on without settings wait for it.
    pub loading: bool,
    pub last_unknown_kid_refetch_ms: f64,
    /// Kids that triggered a refetch, and when: one the fetch did not bring is garbage (or
    /// retired), and does not trigger another for [`UNKNOWN_KID_MEMORY_MS`]. A short list (a
    /// map would cost the bundle more than scanning it costs a request).
    unknown_kids: Vec<(String, f64)>,
    verified: HashMap<String, VerifiedToken>,
    blacklist: HashMap<String, BlacklistEntry>,
    /// SplitMix64 state for new trace ids: unique, not secret (seeded by [`Isolate::seed_traces`]).
    trace_state: u64,
}

/// Where the settings stand for this request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingsState {
    /// Loaded and within the cache time (or refreshing failed recently: stale keys beat none).
    Ready,
    /// Due for a (re)load: this request loads them.
    Due,
    /// Never loaded, and the load under way has not finished: wait for it.
    Loading,
    /// Never loaded, and the last attempt failed within the cooldown.
    Unavailable,
}

impl Isolate {
    pub fn new(config: EdgeConfig) -> Isolate {
        Isolate {
            config: Rc::new(config),
            loaded: None,
            last_load_attempt_ms: f64::MIN,
            loading: false,
            last_unknown_kid_refetch_ms: f64::MIN,
            unknown_kids: Vec::new(),
            verified: HashMap::new(),
            blacklist: HashMap::new(),
            trace_state: 0x853c_49e6_748f_ea9b,
        }
    }

    /// Seeds the trace ids of this isolate (once, from the runtime's randomness).
    pub fn seed_traces(&mut self, seed: u64) {
        self.trace_state = seed;
    }

    /// The trace context of a request that brought none (or an invalid one).
    pub fn new_trace(&mut self) -> TraceContext {
        let mut next = || {
            // SplitMix64 (Steele, Lea, Flood 2014): every state gives a distinct output.
            self.trace_state = self.trace_state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.trace_state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        let mut trace_id = [0; 16];
        trace_id[..8].copy_from_slice(&next().to_le_bytes());
        trace_id[8..].copy_from_slice(&next().to_le_bytes());
        TraceContext::new(trace_id, next().to_le_bytes())
    }

    /// The request's own trace context when it is valid, else a new one.
    pub fn trace_for(&mut self, traceparent: Option<&str>) -> (TraceContext, bool) {
        match traceparent.and_then(TraceContext::parse) {
            Some(context) => (context, false),
            None => (self.new_trace(), true),
        }
    }

    pub fn settings_state(&mut self, now_ms: f64) -> SettingsState {
        let cache_ms = self.config.settings_cache_secs as f64 * 1000.0;
        let retry_ms = self.config.jwks_refetch_cooldown_secs as f64 * 1000.0;
        let max_stale_ms = self.config.max_stale_keys_secs as f64 * 1000.0;
        if self.loaded.as_ref().is_some_and(|l| now_ms - l.fetched_at_ms > max_stale_ms) {
            // The origin has been unreachable too long: its keys may have been retired since.
            self.loaded = None;
            self.verified.clear();
        }
        let fresh = self.loaded.as_ref().is_some_and(|l| now_ms - l.fetched_at_ms < cache_ms);
        if fresh || now_ms - self.last_load_attempt_ms < retry_ms {
            return match (&self.loaded, self.loading) {
                (Some(_), _) => SettingsState::Ready,
                (None, true) => SettingsState::Loading,
                (None, false) => SettingsState::Unavailable,
            };
        }
        // One request per isolate loads; the others go on with what there is meanwhile, or,
        // with nothing yet, wait for that load.
        self.last_load_attempt_ms = now_ms;
        self.loading = true;
        SettingsState::Due
    }

    /// Whether an unknown `kid` may trigger a refetch from the origin now: not if a fetch
    /// already failed to bring this kid lately, and at most one fetch per cooldown. Any fetch
    /// brings every current key, so however many garbage kids arrive, a real new key is
    /// fetched within one cooldown.
    pub fn unknown_kid_refetch_allowed(&mut self, kid: &str, now_ms: f64) -> bool {
        let remembered =
            |(known, at): &(String, f64)| known == kid && now_ms - at < UNKNOWN_KID_MEMORY_MS;
        if self.unknown_kids.iter().any(remembered) {
            return false;
        }
        let cooldown_ms = self.config.jwks_refetch_cooldown_secs as f64 * 1000.0;
        if now_ms - self.last_unknown_kid_refetch_ms < cooldown_ms {
            return false;
        }
        self.last_unknown_kid_refetch_ms = now_ms;
        self.unknown_kids.retain(|(known, at)| known != kid && now_ms - at < UNKNOWN_KID_MEMORY_MS);
        if self.unknown_kids.len() >= MAX_UNKNOWN_KIDS {
            // The oldest goes: at one fetch a second, it is a minute old anyway.
            self.unknown_kids.remove(0);
        }
        self.unknown_kids.push((kid.to_owned(), now_ms));
        true
    }

    /// Installs freshly fetched settings. Verified tokens whose key is no longer published are
    /// forgotten, so a retired key stops working here as soon as the origin stops publishing it.
    pub fn install(&mut self, settings: SharedSettings, keys: KeySet, now_ms: f64) {
        self.verified.retain(|_, cached| keys.get(&cached.token.kid).is_some());
        // A kid the fetch brought was real after all.
        self.unknown_kids.retain(|(kid, _)| keys.get(kid).is_none());
        let verifier = Verifier::new(keys, settings.issuer.clone(), settings.audience.clone());
        self.loaded = Some(Loaded { settings: Rc::new(settings), verifier, fetched_at_ms: now_ms });
    }

    /// A fetch failed: what it did not bring says nothing about any kid.
    pub fn forget_unknown_kids(&mut self) {
        self.unknown_kids.clear();
    }

    pub fn settings(&self) -> Option<Rc<SharedSettings>> {
        self.loaded.as_ref().map(|loaded| loaded.settings.clone())
    }

    /// A token verified earlier in this isolate (expiry is re-checked by the engine).
    pub fn cached_verification(&self, token: &str) -> Option<VerifiedAccessToken> {
        self.verified.get(token).map(|cached| cached.token.clone())
    }

    pub fn remember_verification(&mut self, token: &str, verified: VerifiedAccessToken) {
        if self.verified.len() >= MAX_VERIFIED_TOKENS {
            self.verified.clear();
        }
        self.verified.insert(
            token.to_owned(),
            VerifiedToken { token: verified, identities: Default::default() },
        );
    }

    /// The identity headers minted earlier for a verified token and this request's anti-CSRF
    /// outcome (the signed assertion and the convenience copies), while they may be reused:
    /// for [`ASSERTION_REUSE_SECS`] of the assertion's 60, and never once the token (its own
    /// limit) has expired. So signing costs nothing in steady state.
    pub fn minted_identity(
        &self,
        token: &str,
        verified: &VerifiedAccessToken,
        csrf: CsrfOutcome,
        now: DateTime<Utc>,
    ) -> Option<Vec<(String, String)>> {
        let minted = self.verified.get(token)?.identities[csrf.index()].as_ref()?;
        let fresh = now.timestamp() - minted.minted_at_secs < ASSERTION_REUSE_SECS
            && now < verified.expires_at;
        fresh.then(|| minted.headers.clone())
    }

    /// The identity headers for a verified token, around its newly signed `assertion`; kept
    /// for [`Isolate::minted_identity`].
    pub fn remember_identity(
        &mut self,
        token: &str,
        verified: &VerifiedAccessToken,
        csrf: CsrfOutcome,
        assertion: String,
        now: DateTime<Utc>,
    ) -> Vec<(String, String)> {
        let mut headers = vec![(ASSERTION_HEADER.to_owned(), assertion)];
        headers.extend(
            convenience_headers(&verified.claims)
                .into_iter()
                .map(|(name, value)| (name.to_owned(), value)),
        );
        if let Some(cached) = self.verified.get_mut(token) {
            cached.identities[csrf.index()] =
                Some(MintedIdentity { headers: headers.clone(), minted_at_secs: now.timestamp() });
        }
        headers
    }

    /// At most one KV read per session per isolate per `BLACKLIST_CACHE_SECS`.
    pub fn blacklist_status(&mut self, handle: &str, now_ms: f64) -> BlacklistStatus {
        let interval_ms = self.config.blacklist_cache_secs as f64 * 1000.0;
        match self.blacklist.get_mut(handle) {
            Some(entry) if entry.revoked => BlacklistStatus::Revoked,
            Some(entry) if now_ms - entry.asked_at_ms < interval_ms => BlacklistStatus::Clear,
            Some(entry) => {
                entry.asked_at_ms = now_ms;
                BlacklistStatus::Due
            }
            None => {
                if self.blacklist.len() >= MAX_BLACKLIST_ENTRIES {
                    self.blacklist.retain(|_, entry| entry.revoked);
                }
                self.blacklist.insert(
                    handle.to_owned(),
                    BlacklistEntry { asked_at_ms: now_ms, revoked: false },
                );
                BlacklistStatus::Due
            }
        }
    }

    /// Records KV's answer. `None` (KV unreadable) asks again on the next request.
    pub fn record_blacklist(&mut self, handle: &str, revoked: Option<bool>, now_ms: f64) {
        match revoked {
            Some(revoked) => {
                self.blacklist
                    .insert(handle.to_owned(), BlacklistEntry { asked_at_ms: now_ms, revoked });
            }
            None => {
                self.blacklist.remove(handle);
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use latch_shared::keys::SigningKey;

    fn isolate(blacklist_cache_secs: &str) -> Isolate {
        let config = EdgeConfig::from_lookup(|name| {
            Some(
                match name {
                    "ORIGIN_URL" => "http://127.0.0.1:1",
                    "UPSTREAM_URL" => "http://127.0.0.1:2",
                    "EDGE_SECRET" => "secret-0123456789abcdef",
                    "ASSERTION_KEYS" => "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE",
                    "BLACKLIST_CACHE_SECS" => blacklist_cache_secs,
                    _ => return None,
                }
                .to_owned(),
            )
        })
        .unwrap();
        Isolate::new(config)
    }

    /// The origin's settings document for `keys`, as the edge's tests publish it.
    pub(crate) fn settings_for(keys: &KeySet) -> SharedSettings {
        SharedSettings {
            issuer: "latch".into(),
            audience: "latch".into(),
            cookies: Default::default(),
            session_expired_status: 440,
            anti_csrf: Default::default(),
            access_token_lifetime_secs: 3600,
            jwks: keys.to_jwks(),
        }
    }

    #[test]
    fn one_kv_read_per_session_per_interval() {
        let mut isolate = isolate("10");
        assert_eq!(isolate.blacklist_status("h1", 0.0), BlacklistStatus::Due);
        // Concurrent requests while the first read is in flight do not read again.
        assert_eq!(isolate.blacklist_status("h1", 1.0), BlacklistStatus::Clear);
        isolate.record_blacklist("h1", Some(false), 5.0);
        assert_eq!(isolate.blacklist_status("h1", 9_000.0), BlacklistStatus::Clear);
        assert_eq!(isolate.blacklist_status("h2", 9_000.0), BlacklistStatus::Due, "per session");
        assert_eq!(isolate.blacklist_status("h1", 10_005.0), BlacklistStatus::Due);
        isolate.record_blacklist("h1", Some(true), 10_010.0);
        assert_eq!(isolate.blacklist_status("h1", 10_011.0), BlacklistStatus::Revoked);
        assert_eq!(isolate.blacklist_status("h1", 99_999_999.0), BlacklistStatus::Revoked);
    }

    #[test]
    fn an_unreadable_kv_is_asked_again_at_once() {
        let mut isolate = isolate("10");
        assert_eq!(isolate.blacklist_status("h1", 0.0), BlacklistStatus::Due);
        isolate.record_blacklist("h1", None, 1.0);
        assert_eq!(isolate.blacklist_status("h1", 2.0), BlacklistStatus::Due);
    }

    #[test]
    fn a_zero_interval_reads_kv_on_every_request() {
        let mut isolate = isolate("0");
        for now in [0.0, 0.0, 1.0] {
            assert_eq!(isolate.blacklist_status("h1", now), BlacklistStatus::Due);
            isolate.record_blacklist("h1", Some(false), now);
        }
    }

    #[test]
    fn a_flood_of_garbage_kids_does_not_delay_a_real_new_key() {
        let mut isolate = isolate("10");
        // The cooldown is 1 s by default: one fetch per second, whatever the kids.
        assert!(isolate.unknown_kid_refetch_allowed("garbage-0", 0.0));
        for i in 1..500 {
            assert!(!isolate.unknown_kid_refetch_allowed(&format!("garbage-{i}"), 1.0 + i as f64));
        }
        assert!(
            isolate.unknown_kid_refetch_allowed("real-new-key", 1_000.0),
            "a new kid is fetched one cooldown after the last fetch, flood or not"
        );
        // A kid a fetch did not bring does not trigger another for a minute.
        assert!(!isolate.unknown_kid_refetch_allowed("garbage-0", 5_000.0));
        assert!(isolate.unknown_kid_refetch_allowed("garbage-0", 61_000.0));
        // Memory stays bounded.
        for i in 0..5_000 {
            isolate.unknown_kid_refetch_allowed(&format!("k{i}"), 70_000.0 + 1_000.0 * i as f64);
        }
        assert!(isolate.unknown_kids.len() <= MAX_UNKNOWN_KIDS);
    }

    #[test]
    fn keys_not_refreshed_for_the_max_stale_age_are_dropped() {
        let mut isolate = isolate("10");
        let keys = KeySet::new([SigningKey::from_seed(&[1; 32]).verifying_key()]).unwrap();
        isolate.install(settings_for(&keys), keys, 0.0);
        assert_eq!(isolate.settings_state(1.0), SettingsState::Ready);
        isolate.loading = false;
        // The origin stays unreachable: the cached keys serve until the max stale age (1 h).
        assert_eq!(isolate.settings_state(3_599_000.0), SettingsState::Due);
        isolate.loading = false;
        assert_eq!(isolate.settings_state(3_599_500.0), SettingsState::Ready);
        assert_eq!(isolate.settings_state(3_601_000.0), SettingsState::Due);
        isolate.loading = false;
        assert!(isolate.settings().is_none(), "past it, no key is trusted");
    }

    #[test]
    fn settings_load_once_then_wait_for_the_cache_time() {
        let mut isolate = isolate("10");
        assert_eq!(isolate.settings_state(0.0), SettingsState::Due);
        assert_eq!(isolate.settings_state(0.5), SettingsState::Loading, "others wait for it");
        isolate.loading = false;
        // The load failed (nothing installed): retried after the cooldown only.
        assert_eq!(isolate.settings_state(1.0), SettingsState::Unavailable);
        assert_eq!(isolate.settings_state(10_001.0), SettingsState::Due);
    }
}
