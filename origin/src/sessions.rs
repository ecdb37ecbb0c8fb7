//! Sessions: create, refresh (rotation with theft detection by proof of use), verify, revoke,
//! and session info. Each operation is at most a couple of single statements, so no row is
//! ever locked across a network round trip and both Postgres and SQLite serve it unchanged.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use latch_shared::access::{self, SessionClaims, VerifiedAccessToken, VerifyError};
use latch_shared::api::{
    paths, CreateSessionRequest, DeviceList, DeviceSession, ExpiringToken, IssuedSession,
    JwtPayloadUpdate, ReissuedAccessToken, RevokeResponse, SessionTokens, SessionView, UserId,
    UserIdType, VerifyRequest, VerifyResponse, MAX_DEVICES_LISTED,
};
use latch_shared::csrf::AntiCsrfToken;
use latch_shared::engine::{self, AntiCsrfPolicy, Credential, RequestFacts};
use latch_shared::keys::Jwks;
use latch_shared::protocol::CookiePolicy;
use latch_shared::refresh::{
    generate_id_refresh_token, RefreshToken, RotationKey, SessionHandle, TokenHash,
};
use latch_shared::sdk::TokenTransfer;
use latch_shared::settings::SharedSettings;
use latch_shared::{SessionError, TheftDetails};
use rand::rngs::OsRng;
use serde_json::Value;

use crate::clock::{millis, Clock};
use crate::db::Pool;
use crate::devices::DevicePolicy;
use crate::error::{ApiError, ApiResult};
use crate::keys::{KeyManager, KeyRing};
use crate::metrics::Metrics;
use crate::outbox::Outbox;
use crate::revocation::Publisher;

/// What the tokens the service issues carry and how long they live: one of the origin's
/// configuration's parts (the published *settings document* is `latch_shared::settings`).
#[derive(Debug, Clone)]
pub struct TokenPolicy {
    pub access_token_lifetime: Duration,
    pub refresh_token_lifetime: Duration,
    /// The deployment's anti-CSRF rules: whether tokens carry one, and where the edge checks it.
    pub anti_csrf: AntiCsrfPolicy,
    pub issuer: String,
    pub audience: String,
}

/// Most rows one purge statement deletes.
pub const PURGE_BATCH: i64 = 500;
/// The pause between purge batches, for other writers.
const PURGE_PAUSE: Duration = Duration::from_millis(5);

pub struct SessionService {
    // Crate-visible for `crate::build` only; handlers and tests use the methods.
    pub(crate) pool: Pool,
    pub(crate) keys: Arc<KeyManager>,
    pub(crate) rotation: RotationKey,
    pub(crate) clock: Clock,
    pub(crate) tokens: TokenPolicy,
    pub(crate) cookies: CookiePolicy,
    pub(crate) devices: DevicePolicy,
    /// Blacklist entries and theft events, queued with the change they report.
    pub(crate) outbox: Arc<Outbox>,
    pub(crate) metrics: Metrics,
}

/// What goes into a freshly issued set of tokens.
struct Grant<'a> {
    handle: &'a SessionHandle,
    user_id: UserId,
    jwt_payload: Option<Value>,
    refresh_token: RefreshToken,
    anti_csrf: Option<AntiCsrfToken>,
    id_refresh_token: String,
    session_expires_at: i64,
    /// The refresh generation minting these tokens (the access token's `rgen`).
    generation: i64,
}

/// A user id as stored: its text and its type, in two columns.
#[derive(sqlx::FromRow)]
struct StoredUserId {
    user_id: String,
    user_id_type: String,
}

impl StoredUserId {
    fn type_column(user_id: &UserId) -> &'static str {
        match user_id.kind() {
            UserIdType::String => "string",
            UserIdType::Number => "number",
        }
    }

    fn into_user_id(self) -> ApiResult<UserId> {
        let kind = match self.user_id_type.as_str() {
            "number" => UserIdType::Number,
            _ => UserIdType::String,
        };
        UserId::from_path(&self.user_id, kind).map_err(|err| {
            ApiError::Internal(anyhow::anyhow!("stored user id is not valid: {err}"))
        })
    }
}

/// What a rotation reads back.
#[derive(sqlx::FromRow)]
struct RotatedRow {
    #[sqlx(flatten)]
    user_id: StoredUserId,
    jwt_payload: Option<String>,
    generation: i64,
}

/// A session row, as a refresh that did not rotate reads it.
#[derive(sqlx::FromRow)]
struct SessionRow {
    #[sqlx(flatten)]
    user_id: StoredUserId,
    current_hash: String,
    previous_hash: Option<String>,
    expires_at: i64,
    jwt_payload: Option<String>,
    generation: i64,
    proven_generation: i64,
}

/// What a refresh grants: the session as stored, and the generation the new tokens belong to.
struct Refreshed {
    user_id: UserId,
    jwt_payload: Option<String>,
    session_expires_at: i64,
    generation: i64,
}

/// The columns a "your devices" list reads of a session, as a [`DeviceRow`].
const DEVICE_COLUMNS: &str =
    "handle, created_at, COALESCE(last_seen_at, created_at) AS last_seen_at, \
     device_browser, device_os, device_kind, client_network, place_country, place_region, \
     place_city";

/// A session's row for "your devices".
#[derive(sqlx::FromRow)]
struct DeviceRow {
    handle: String,
    created_at: i64,
    last_seen_at: i64,
    device_browser: Option<String>,
    device_os: Option<String>,
    device_kind: Option<String>,
    client_network: Option<String>,
    place_country: Option<String>,
    place_region: Option<String>,
    place_city: Option<String>,
}

impl DeviceRow {
    fn into_view(self, current: Option<&str>) -> DeviceSession {
        DeviceSession {
            current: current == Some(self.handle.as_str()),
            handle: self.handle,
            created_at: self.created_at,
            last_seen_at: self.last_seen_at,
            browser: self.device_browser,
            os: self.device_os,
            device_kind: self.device_kind,
            network: self.client_network,
            country: self.place_country,
            region: self.place_region,
            city: self.place_city,
        }
    }
}

fn parse_json(text: Option<String>, what: &str) -> ApiResult<Option<Value>> {
    text.map(|text| serde_json::from_str(&text))
        .transpose()
        .map_err(|err| ApiError::Internal(anyhow::anyhow!("stored {what} is not JSON: {err}")))
}

/// The origin's side of the request engine: a verify request is a cookie-borne token with the
/// seed's per-call flag (`enforce_anti_csrf`), checked whatever the method. `verified` is the
/// signature check of `request.access_token`. No I/O.
pub fn check_access_token(
    request: &VerifyRequest,
    policy: &AntiCsrfPolicy,
    verified: Result<VerifiedAccessToken, VerifyError>,
    now: DateTime<Utc>,
) -> Result<VerifiedAccessToken, SessionError> {
    let facts = RequestFacts {
        method: "POST",
        path: paths::VERIFY,
        anti_csrf: request.anti_csrf_token.as_deref(),
        custom_header: request.rid_header,
        ..RequestFacts::default()
    }
    .under(policy);
    let credential = Credential::Cookie(request.access_token.clone());
    engine::admit(
        &facts,
        &credential,
        verified,
        policy.check_for_flag(request.enforce_anti_csrf),
        now,
    )
}

/// Handles come from URLs; refuse anything that is not one before touching the database.
pub fn parse_handle(text: &str) -> ApiResult<SessionHandle> {
    SessionHandle::parse(text)
        .ok_or_else(|| ApiError::BadRequest(format!("{text:?} is not a session handle")))
}

impl SessionService {
    fn issue(&self, ring: &KeyRing, grant: Grant<'_>) -> ApiResult<IssuedSession> {
        let claims = SessionClaims {
            iss: self.tokens.issuer.clone(),
            aud: self.tokens.audience.clone(),
            sub: grant.user_id.as_text().into_owned(),
            uid: Some(grant.user_id.clone()),
            sid: grant.handle.to_string(),
            csrf: grant.anti_csrf.as_ref().map(|token| token.as_str().to_owned()),
            pld: grant.jwt_payload.clone(),
            rgen: u64::try_from(grant.generation).ok(),
        };
        let lifetime = chrono::Duration::from_std(self.tokens.access_token_lifetime)
            .expect("lifetimes are validated to fit");
        let access = access::sign(&ring.signing, claims, self.clock.now(), lifetime)
            .map_err(|err| ApiError::BadRequest(err.to_string()))?;
        let tokens = SessionTokens {
            access_token: ExpiringToken {
                value: access.value,
                expires_at: access.expires_at.timestamp_millis(),
            },
            refresh_token: ExpiringToken {
                value: grant.refresh_token.expose(),
                expires_at: grant.session_expires_at,
            },
            id_refresh_token: ExpiringToken {
                value: grant.id_refresh_token,
                expires_at: grant.session_expires_at,
            },
            anti_csrf_token: grant.anti_csrf.map(AntiCsrfToken::into_string),
        };
        let session = SessionView {
            handle: grant.handle.to_string(),
            user_id: grant.user_id,
            jwt_payload: grant.jwt_payload,
        };
        Ok(IssuedSession {
            response_headers: self.cookies.session_headers(
                &session,
                &tokens,
                TokenTransfer::Cookie,
            ),
            session,
            tokens,
        })
    }

    /// Creates a session for `request`, stored with what the device policy keeps of its
    /// device and of the client's address.
    pub async fn create(
        &self,
        request: CreateSessionRequest,
        client: Option<IpAddr>,
    ) -> ApiResult<IssuedSession> {
        let device = self.devices.describe(request.device.as_ref(), client);
        let now = self.clock.now_ms();
        let handle = SessionHandle::generate(&mut OsRng);
        let refresh_token = self.rotation.first_token(handle.clone(), &mut OsRng);
        let current_hash = refresh_token.hash().to_hex();
        let expires_at = now + millis(self.tokens.refresh_token_lifetime);
        let ring = self.keys.ring().await?;
        // Sign first: a payload too large for a cookie is refused before anything is stored.
        let issued = self.issue(
            &ring,
            Grant {
                handle: &handle,
                user_id: request.user_id.clone(),
                jwt_payload: request.jwt_payload.clone(),
                refresh_token,
                anti_csrf: self
                    .tokens
                    .anti_csrf
                    .mints_token()
                    .then(|| AntiCsrfToken::generate(&mut OsRng)),
                id_refresh_token: generate_id_refresh_token(&mut OsRng),
                session_expires_at: expires_at,
                generation: 0,
            },
        )?;
        sqlx::query(
            "INSERT INTO sessions (handle, user_id, user_id_type, current_hash, jwt_payload, \
             session_info, created_at, expires_at, generation, proven_generation, last_seen_at, \
             device_browser, device_os, device_kind, client_network, place_country, \
             place_region, place_city) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, 0, $7, $9, $10, $11, $12, $13, $14, $15)",
        )
        .bind(handle.as_str())
        .bind(request.user_id.as_text().into_owned())
        .bind(StoredUserId::type_column(&request.user_id))
        .bind(current_hash)
        .bind(request.jwt_payload.as_ref().map(Value::to_string))
        .bind(request.session_info.as_ref().map(Value::to_string))
        .bind(now)
        .bind(expires_at)
        .bind(device.browser)
        .bind(device.os)
        .bind(device.kind)
        .bind(device.network)
        .bind(device.country)
        .bind(device.region)
        .bind(device.city)
        .execute(&self.pool)
        .await?;
        self.metrics.sessions_created.inc();
        Ok(issued)
    }

    /// The session a refresh token names, if the token is one this origin issued (its tag
    /// checks out). No I/O.
    pub fn issued_handle(&self, presented: &str) -> Option<SessionHandle> {
        RefreshToken::parse(presented)
            .ok()
            .filter(|token| self.rotation.issued(token))
            .map(|token| token.handle().clone())
    }

    /// Rotates `presented` into its successor. The previous token yields the *same* successor
    /// again until the successor is proven in use (its own refresh, or one of its access
    /// tokens seen by the edge, a direct-mode Session object or `verify`): parallel tabs and a
    /// client that lost a response converge on one lineage. Any other reuse is theft, as in
    /// the seed and RFC 9700 §4.14.2.
    pub async fn refresh(&self, presented: &str) -> ApiResult<IssuedSession> {
        let token = RefreshToken::parse(presented)
            .ok()
            .filter(|token| self.rotation.issued(token))
            .ok_or_else(|| SessionError::unauthorised("refresh token is invalid"))?;
        let handle = token.handle().clone();
        let presented_hash = token.hash();
        let successor = self.rotation.successor(&token);
        let now = self.clock.now_ms();
        let extended_expiry = now + millis(self.tokens.refresh_token_lifetime);

        // The compare-and-swap: only the current token rotates, exactly once.
        let rotated: Option<RotatedRow> = sqlx::query_as(
            "UPDATE sessions SET previous_hash = current_hash, current_hash = $1, \
             generation = generation + 1, expires_at = $3, last_seen_at = $2 \
             WHERE handle = $4 AND current_hash = $5 AND expires_at > $2 \
             RETURNING user_id, user_id_type, jwt_payload, generation",
        )
        .bind(successor.hash().to_hex())
        .bind(now)
        .bind(extended_expiry)
        .bind(handle.as_str())
        .bind(presented_hash.to_hex())
        .fetch_optional(&self.pool)
        .await?;

        let refreshed = match rotated {
            Some(row) => {
                self.metrics.sessions_refreshed.inc();
                Refreshed {
                    user_id: row.user_id.into_user_id()?,
                    jwt_payload: row.jwt_payload,
                    session_expires_at: extended_expiry,
                    generation: row.generation,
                }
            }
            None => self.refresh_without_rotation(&handle, presented_hash, &successor, now).await?,
        };

        let ring = self.keys.ring().await?;
        self.issue(
            &ring,
            Grant {
                handle: &handle,
                user_id: refreshed.user_id,
                jwt_payload: parse_json(refreshed.jwt_payload, "JWT payload")?,
                anti_csrf: self
                    .tokens
                    .anti_csrf
                    .mints_token()
                    .then(|| self.rotation.anti_csrf_for_successor(&token)),
                id_refresh_token: self.rotation.id_refresh_for_successor(&token),
                refresh_token: successor,
                session_expires_at: refreshed.session_expires_at,
                generation: refreshed.generation,
            },
        )
    }

    /// The presented token is not the current one: a repeat of the last refresh whose result
    /// is still unused, or theft.
    async fn refresh_without_rotation(
        &self,
        handle: &SessionHandle,
        presented: TokenHash,
        successor: &RefreshToken,
        now: i64,
    ) -> ApiResult<Refreshed> {
        let row: SessionRow = sqlx::query_as(
            "SELECT user_id, user_id_type, current_hash, previous_hash, expires_at, jwt_payload, \
             generation, proven_generation FROM sessions WHERE handle = $1",
        )
        .bind(handle.as_str())
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| SessionError::unauthorised("session does not exist or was revoked"))?;
        let user_id = row.user_id.into_user_id()?;
        if row.expires_at <= now {
            return Err(SessionError::unauthorised("session has expired").into());
        }
        let successor_unused = row.proven_generation < row.generation;
        if successor_unused
            && row.previous_hash.as_deref().and_then(TokenHash::from_hex) == Some(presented)
            && TokenHash::from_hex(&row.current_hash) == Some(successor.hash())
        {
            self.metrics.refresh_repeats.inc();
            return Ok(Refreshed {
                user_id,
                jwt_payload: row.jwt_payload,
                session_expires_at: row.expires_at,
                generation: row.generation,
            });
        }

        let theft = TheftDetails { user_id, session_handle: handle.to_string() };
        // The revocation, its blacklist entry and the theft event commit together or not at all.
        let mut tx = self.pool.begin().await?;
        let revoked = sqlx::query("DELETE FROM sessions WHERE handle = $1")
            .bind(handle.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if revoked > 0 {
            let handles = [theft.session_handle.clone()];
            self.outbox.blacklist(&mut tx, &handles).await?;
            let event = Publisher::theft_event(&theft.user_id, &theft.session_handle, now);
            self.outbox.theft(&mut tx, event).await?;
        }
        tx.commit().await?;
        self.outbox.wake();
        if revoked > 0 {
            self.metrics.sessions_revoked.inc();
            self.metrics.token_thefts.inc();
            tracing::warn!(
                user_id = %theft.user_id,
                session_handle = %theft.session_handle,
                "refresh token reused after its successor was used: session revoked as stolen"
            );
        }
        Err(SessionError::theft(theft).into())
    }

    /// The strong check: the shared engine's rules, then that the session still exists.
    pub async fn verify(&self, request: VerifyRequest) -> ApiResult<VerifyResponse> {
        let now = self.clock.now();
        let ring = self.keys.ring().await?;
        let mut verified = ring.verifier.verify(&request.access_token, now);
        if let Err(VerifyError::UnknownKey { .. }) = verified {
            // Another instance may have rotated since this one last looked.
            let ring = self.keys.maintain().await?;
            verified = ring.verifier.verify(&request.access_token, now);
        }
        let verified = check_access_token(&request, &self.anti_csrf_policy(), verified, now)?;
        // The key is checked too: one retired after a compromise by another instance is
        // refused here at once, before this instance's next key reload.
        let found: Option<(i64, i64, i64)> = sqlx::query_as(
            "SELECT generation, proven_generation, \
             (SELECT COUNT(*) FROM signing_keys WHERE kid = $3) \
             FROM sessions WHERE handle = $1 AND expires_at > $2",
        )
        .bind(&verified.claims.sid)
        .bind(now.timestamp_millis())
        .bind(&verified.kid)
        .fetch_optional(&self.pool)
        .await?;
        let Some((generation, proven_generation, key_trusted)) = found else {
            return Err(SessionError::unauthorised("session is over or has been revoked").into());
        };
        if key_trusted == 0 {
            return Err(
                SessionError::try_refresh("the access token's signing key was retired").into()
            );
        }
        // The first verify of the current generation proves it in use (one write, once).
        let used = verified.claims.rgen.and_then(|rgen| i64::try_from(rgen).ok());
        if used == Some(generation) && proven_generation < generation {
            self.prove_generation(&verified.claims.sid, generation).await?;
        }
        Ok(VerifyResponse {
            session: SessionView {
                user_id: verified.claims.user_id(),
                handle: verified.claims.sid,
                jwt_payload: verified.claims.pld,
            },
            access_token_expires_at: verified.expires_at.timestamp_millis(),
        })
    }

    /// Records that an access token of refresh generation `generation` was seen in use: once the
    /// session's current generation is proven, the refresh token before it is spent for good.
    /// Idempotent; an older generation, or a session that is gone, changes nothing.
    pub async fn prove_generation(&self, handle: &str, generation: i64) -> ApiResult<()> {
        // The first use of each new access token is also when the session was last seen.
        let proven = sqlx::query(
            "UPDATE sessions SET proven_generation = $1, last_seen_at = $3 \
             WHERE handle = $2 AND generation = $1 AND proven_generation < $1",
        )
        .bind(generation)
        .bind(handle)
        .bind(self.clock.now_ms())
        .execute(&self.pool)
        .await?
        .rows_affected();
        self.metrics.generations_proven.inc_by(proven);
        Ok(())
    }

    /// The settings document the edge fetches (`latch_shared::settings`), with the keys.
    pub async fn settings_document(
        &self,
        session_expired_status: u16,
    ) -> ApiResult<SharedSettings> {
        let ring = self.keys.ring().await?;
        Ok(SharedSettings {
            issuer: self.tokens.issuer.clone(),
            audience: self.tokens.audience.clone(),
            cookies: self.cookies.clone(),
            session_expired_status,
            anti_csrf: self.anti_csrf_policy(),
            access_token_lifetime_secs: self.tokens.access_token_lifetime.as_secs(),
            jwks: ring.verifier.keys().to_jwks(),
        })
    }

    /// The public keys (RFC 7517).
    pub async fn jwks(&self) -> ApiResult<Jwks> {
        Ok(self.keys.ring().await?.verifier.keys().to_jwks())
    }

    /// Rotates the signing key now: the new key's id, when it signs (ms since the epoch) and
    /// the kids retired. Planned, the new key signs after the JWKS publish lead and nothing is
    /// retired; after a `compromised` key, a brand-new key signs at once and every other is
    /// retired.
    pub async fn rotate_keys(&self, compromised: bool) -> ApiResult<(String, i64, Vec<String>)> {
        if compromised {
            let (kid, retired) = self.keys.replace_compromised().await?;
            return Ok((kid, self.clock.now_ms(), retired));
        }
        let (kid, signs_from) = self.keys.rotate_now().await?;
        Ok((kid, signs_from, Vec::new()))
    }

    /// Whether the database answers.
    pub async fn is_ready(&self) -> bool {
        crate::db::ping(&self.pool).await
    }

    /// The metrics, in Prometheus' text format.
    pub fn metrics_text(&self) -> String {
        self.metrics.render()
    }

    /// Starts this instance's outbox deliverer; it stops with `shutdown`.
    pub fn spawn_deliverer(&self, shutdown: crate::Shutdown) -> tokio::task::JoinHandle<()> {
        self.outbox.clone().spawn(shutdown)
    }

    /// Has the deliverer look at the outbox now rather than at its next pass.
    pub fn wake_deliverer(&self) {
        self.outbox.wake()
    }

    /// The database, for tests that set up what no API can (an expired row, a held lock).
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The service's clock, in milliseconds since the epoch.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The deployment's anti-CSRF rules, as published to the edge.
    pub fn anti_csrf_policy(&self) -> AntiCsrfPolicy {
        self.tokens.anti_csrf.clone()
    }

    pub async fn session_info(&self, handle: &SessionHandle) -> ApiResult<Option<Value>> {
        let (info,): (Option<String>,) = sqlx::query_as(
            "SELECT session_info FROM sessions WHERE handle = $1 AND expires_at > $2",
        )
        .bind(handle.as_str())
        .bind(self.clock.now_ms())
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| SessionError::unauthorised("session does not exist anymore"))?;
        parse_json(info, "session info")
    }

    /// Replaces a live session's JWT payload, and re-issues the access token the client holds
    /// with it: the same claims but the payload (session, refresh generation, anti-CSRF token),
    /// and the same expiry, so changing a payload never lengthens a token's life. The token
    /// must be valid and of `handle`; the session must still exist.
    pub async fn update_jwt_payload(
        &self,
        handle: &SessionHandle,
        update: JwtPayloadUpdate,
    ) -> ApiResult<ReissuedAccessToken> {
        let now = self.clock.now();
        let ring = self.keys.ring().await?;
        let verified =
            ring.verifier.verify(&update.access_token, now).map_err(SessionError::from)?;
        if verified.claims.sid != handle.as_str() {
            return Err(ApiError::BadRequest("the access token is of another session".into()));
        }
        // From the whole second (the token's times are whole seconds), so the expiry is the
        // old one exactly.
        let now = DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now);
        let remaining = verified.expires_at - now;
        if remaining <= chrono::Duration::zero() {
            return Err(SessionError::try_refresh("the access token has expired").into());
        }
        let user_id = verified.claims.user_id();
        let claims = SessionClaims { pld: update.jwt_payload.clone(), ..verified.claims };
        // Sign first: a payload too large for a cookie is refused before anything is stored.
        let signed = access::sign(&ring.signing, claims, now, remaining)
            .map_err(|err| ApiError::BadRequest(err.to_string()))?;
        let updated = sqlx::query(
            "UPDATE sessions SET jwt_payload = $1 WHERE handle = $2 AND expires_at > $3",
        )
        .bind(update.jwt_payload.as_ref().map(Value::to_string))
        .bind(handle.as_str())
        .bind(now.timestamp_millis())
        .execute(&self.pool)
        .await?
        .rows_affected();
        if updated == 0 {
            return Err(SessionError::unauthorised("session does not exist anymore").into());
        }
        let session =
            SessionView { user_id, handle: handle.to_string(), jwt_payload: update.jwt_payload };
        let access_token =
            ExpiringToken { value: signed.value, expires_at: signed.expires_at.timestamp_millis() };
        let response_headers =
            self.cookies.access_token_headers(&session, &access_token, TokenTransfer::Cookie);
        Ok(ReissuedAccessToken { session, access_token, response_headers })
    }

    /// Overwrites the session info, as the seed does.
    pub async fn update_session_info(
        &self,
        handle: &SessionHandle,
        info: Option<Value>,
    ) -> ApiResult<()> {
        let updated = sqlx::query(
            "UPDATE sessions SET session_info = $1 WHERE handle = $2 AND expires_at > $3",
        )
        .bind(info.as_ref().map(Value::to_string))
        .bind(handle.as_str())
        .bind(self.clock.now_ms())
        .execute(&self.pool)
        .await?
        .rows_affected();
        if updated == 0 {
            return Err(SessionError::unauthorised("session does not exist anymore").into());
        }
        Ok(())
    }

    /// Revokes one session; its blacklist entry is queued in the same transaction, so it
    /// reaches the edge even if the edge is down now or this instance stops.
    pub async fn revoke(&self, handle: &SessionHandle) -> ApiResult<RevokeResponse> {
        let mut tx = self.pool.begin().await?;
        let revoked = sqlx::query("DELETE FROM sessions WHERE handle = $1")
            .bind(handle.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected()
            > 0;
        if revoked {
            self.outbox.blacklist(&mut tx, &[handle.to_string()]).await?;
        }
        tx.commit().await?;
        if revoked {
            self.outbox.wake();
            self.metrics.sessions_revoked.inc();
        }
        Ok(RevokeResponse { revoked, response_headers: self.cookies.clear_headers() })
    }

    /// Revokes every session of a user in one statement.
    pub async fn revoke_user(&self, user_id: &UserId) -> ApiResult<Vec<String>> {
        let mut tx = self.pool.begin().await?;
        let handles: Vec<String> = sqlx::query_scalar(
            "DELETE FROM sessions WHERE user_id = $1 AND user_id_type = $2 RETURNING handle",
        )
        .bind(user_id.as_text().into_owned())
        .bind(StoredUserId::type_column(user_id))
        .fetch_all(&mut *tx)
        .await?;
        self.outbox.blacklist(&mut tx, &handles).await?;
        tx.commit().await?;
        self.outbox.wake();
        self.metrics.sessions_revoked.inc_by(handles.len() as u64);
        Ok(handles)
    }

    pub async fn user_sessions(&self, user_id: &UserId) -> ApiResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT handle FROM sessions WHERE user_id = $1 AND user_id_type = $2 \
             AND expires_at > $3 ORDER BY created_at, handle",
        )
        .bind(user_id.as_text().into_owned())
        .bind(StoredUserId::type_column(user_id))
        .bind(self.clock.now_ms())
        .fetch_all(&self.pool)
        .await?)
    }

    /// The user's live sessions with their devices: the [`MAX_DEVICES_LISTED`] newest, newest
    /// first, and whether there are more. `current`, the session asking, is marked and always
    /// listed (after the newest if older than them); it must be live (a revoked device sees
    /// nothing).
    pub async fn user_devices(
        &self,
        user_id: &UserId,
        current: Option<&SessionHandle>,
    ) -> ApiResult<DeviceList> {
        let now = self.clock.now_ms();
        let mut rows: Vec<DeviceRow> = sqlx::query_as(&format!(
            "SELECT {DEVICE_COLUMNS} FROM sessions \
             WHERE user_id = $1 AND user_id_type = $2 AND expires_at > $3 \
             ORDER BY created_at DESC, handle LIMIT $4"
        ))
        .bind(user_id.as_text().into_owned())
        .bind(StoredUserId::type_column(user_id))
        .bind(now)
        .bind(MAX_DEVICES_LISTED as i64 + 1)
        .fetch_all(&self.pool)
        .await?;
        let current = current.map(SessionHandle::as_str);
        // One past the bound tells whether there are more, unless it is the session asking,
        // which is listed anyway.
        let extra_is_asking =
            rows.get(MAX_DEVICES_LISTED).is_some_and(|row| current == Some(row.handle.as_str()));
        let more = rows.len() > MAX_DEVICES_LISTED && !extra_is_asking;
        if !extra_is_asking {
            rows.truncate(MAX_DEVICES_LISTED);
        }
        if let Some(asking) = current.filter(|asking| !rows.iter().any(|row| row.handle == *asking))
        {
            let row = self.live_device(user_id, asking, now).await?;
            rows.push(
                row.ok_or_else(|| SessionError::unauthorised("session does not exist anymore"))?,
            );
        }
        let sessions = rows.into_iter().map(|row| row.into_view(current)).collect();
        Ok(DeviceList { sessions, more })
    }

    /// Revokes one session of the user ("sign out that device"); a handle that is not one of
    /// the user's revokes nothing, as if it did not exist. `asking`, the session asking (if
    /// any), must be live: a device already signed out signs out no other.
    pub async fn revoke_user_device(
        &self,
        user_id: &UserId,
        handle: &SessionHandle,
        asking: Option<&SessionHandle>,
    ) -> ApiResult<bool> {
        let revoked = self.revoke_user_where(user_id, "handle = $3", handle, asking).await?;
        Ok(!revoked.is_empty())
    }

    /// Revokes every session of the user but `keep`, the session asking, which must be live
    /// ("sign out other devices"); returns the handles revoked.
    pub async fn revoke_user_except(
        &self,
        user_id: &UserId,
        keep: &SessionHandle,
    ) -> ApiResult<Vec<String>> {
        self.revoke_user_where(user_id, "handle <> $3", keep, Some(keep)).await
    }

    /// Deletes the user's live sessions that match `condition` on `$3`, with their blacklist
    /// entries queued in the same transaction, if `asking` is live: one statement, so the check
    /// and the delete cannot be split by another writer (two devices signing each other out at
    /// once), and SQLite's deferred transaction never has to upgrade a read to a write.
    async fn revoke_user_where(
        &self,
        user_id: &UserId,
        condition: &'static str,
        handle: &SessionHandle,
        asking: Option<&SessionHandle>,
    ) -> ApiResult<Vec<String>> {
        let now = self.clock.now_ms();
        let mut tx = self.pool.begin().await?;
        let handles: Vec<String> = sqlx::query_scalar(&format!(
            "DELETE FROM sessions WHERE user_id = $1 AND user_id_type = $2 AND {condition} \
             AND expires_at > $5 AND ($4 IS NULL OR EXISTS (SELECT 1 FROM sessions AS asking \
             WHERE asking.handle = $4 AND asking.user_id = $1 AND asking.user_id_type = $2 \
             AND asking.expires_at > $5)) RETURNING handle"
        ))
        .bind(user_id.as_text().into_owned())
        .bind(StoredUserId::type_column(user_id))
        .bind(handle.as_str())
        .bind(asking.map(SessionHandle::as_str))
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        self.outbox.blacklist(&mut tx, &handles).await?;
        tx.commit().await?;
        if !handles.is_empty() {
            self.outbox.wake();
            self.metrics.sessions_revoked.inc_by(handles.len() as u64);
        } else if let Some(asking) = asking {
            // Nothing revoked: say so, unless it is because the session asking is gone.
            if self.live_device(user_id, asking.as_str(), now).await?.is_none() {
                return Err(SessionError::unauthorised("session does not exist anymore").into());
            }
        }
        Ok(handles)
    }

    /// The user's session `handle` as "your devices" shows it, if it is live.
    async fn live_device(
        &self,
        user_id: &UserId,
        handle: &str,
        now: i64,
    ) -> ApiResult<Option<DeviceRow>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {DEVICE_COLUMNS} FROM sessions \
             WHERE user_id = $1 AND user_id_type = $2 AND expires_at > $3 AND handle = $4"
        ))
        .bind(user_id.as_text().into_owned())
        .bind(StoredUserId::type_column(user_id))
        .bind(now)
        .bind(handle)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Deletes expired sessions in batches of [`PURGE_BATCH`]; returns how many. One statement
    /// over a million rows held SQLite's only write lock for about two seconds, and every create
    /// and refresh waited behind it; a batch holds it for a few milliseconds, and the pause
    /// between batches lets waiting writers in.
    pub async fn purge_expired(&self) -> ApiResult<u64> {
        let now = self.clock.now_ms();
        let mut purged = 0;
        loop {
            let deleted = sqlx::query(
                "DELETE FROM sessions WHERE handle IN \
                 (SELECT handle FROM sessions WHERE expires_at <= $1 LIMIT $2)",
            )
            .bind(now)
            .bind(PURGE_BATCH)
            .execute(&self.pool)
            .await?
            .rows_affected();
            purged += deleted;
            self.metrics.sessions_purged.inc_by(deleted);
            if deleted < PURGE_BATCH as u64 {
                return Ok(purged);
            }
            tokio::time::sleep(PURGE_PAUSE).await;
        }
    }
}
