//! Signing keys: created and stored in the database, the private half sealed with a key derived
//! from the master key, rotated on a schedule, and agreed on by every origin instance.
//!
//! Key `g+1` is created as soon as key `g` starts signing and is published in the JWKS at once,
//! but signs only from `max(g.signs_from + rotation, now + JWKS cache time)`: every edge has
//! seen it before any token carries its kid. Key `g` stays published until the last token it
//! signed has expired (`(g+1).signs_from + access token lifetime + leeway`), then is deleted.
//! Instances racing to create `g+1` collide on the unique `generation` and all keep the winner.

use std::sync::Arc;
use std::time::Duration;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use latch_shared::access::{Verifier, DEFAULT_LEEWAY};
use latch_shared::keys::{Jwk, Jwks, KeySet, SigningKey};
use rand::RngCore;
use tokio::sync::{Mutex, RwLock};

use crate::clock::{millis, Clock};
use crate::db::Pool;

/// Seals signing-key seeds at rest with XChaCha20-Poly1305; the kid is bound as associated data.
#[derive(Clone)]
pub struct Sealer(XChaCha20Poly1305);

impl Sealer {
    pub fn new(key: [u8; 32]) -> Self {
        Sealer(XChaCha20Poly1305::new(&key.into()))
    }

    fn seal(&self, kid: &str, seed: &[u8; 32]) -> String {
        let mut nonce = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = self
            .0
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: seed, aad: kid.as_bytes() })
            .expect("encryption of 32 bytes cannot fail");
        URL_SAFE_NO_PAD.encode([nonce.as_slice(), &sealed].concat())
    }

    fn open(&self, kid: &str, sealed: &str) -> anyhow::Result<[u8; 32]> {
        let bytes = URL_SAFE_NO_PAD.decode(sealed)?;
        anyhow::ensure!(bytes.len() > 24, "sealed key {kid} is truncated");
        let (nonce, ciphertext) = bytes.split_at(24);
        let seed = self
            .0
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ciphertext, aad: kid.as_bytes() })
            .map_err(|_| {
                anyhow::anyhow!("signing key {kid} cannot be opened: is LATCH_MASTER_KEY the one it was sealed with?")
            })?;
        seed.try_into().map_err(|_| anyhow::anyhow!("signing key {kid} has a bad length"))
    }
}

/// When keys are created, start signing, and retire.
#[derive(Debug, Clone, Copy)]
pub struct KeySchedule {
    pub rotation: Duration,
    /// At least the edge's JWKS cache time: how long a key is published before it signs.
    pub publish_lead: Duration,
    pub access_token_lifetime: Duration,
}

/// The keys in force at one moment.
#[derive(Debug)]
pub struct KeyRing {
    pub signing: SigningKey,
    /// Verifies against every published key; `verifier.keys()` is the JWKS.
    pub verifier: Verifier,
    /// When the ring must be rebuilt (a key starts signing, retires, or is due).
    pub valid_until_ms: i64,
}

/// A `signing_keys` row.
#[derive(sqlx::FromRow)]
struct StoredKey {
    kid: String,
    generation: i64,
    public_key: String,
    sealed_secret: String,
    signs_from: i64,
}

pub struct KeyManager {
    pool: Pool,
    sealer: Sealer,
    schedule: KeySchedule,
    clock: Clock,
    issuer: String,
    audience: String,
    ring: RwLock<Arc<KeyRing>>,
    maintenance: Mutex<()>,
}

impl KeyManager {
    pub async fn start(
        pool: Pool,
        sealer: Sealer,
        schedule: KeySchedule,
        clock: Clock,
        issuer: String,
        audience: String,
    ) -> anyhow::Result<Self> {
        let ring = build_ring(&pool, &sealer, schedule, &clock, &issuer, &audience).await?;
        Ok(KeyManager {
            pool,
            sealer,
            schedule,
            clock,
            issuer,
            audience,
            ring: RwLock::new(Arc::new(ring)),
            maintenance: Mutex::new(()),
        })
    }

    /// The current keys, rebuilt first if a scheduled change has come due.
    pub async fn ring(&self) -> anyhow::Result<Arc<KeyRing>> {
        let ring = self.ring.read().await.clone();
        if self.clock.now_ms() < ring.valid_until_ms {
            return Ok(ring);
        }
        self.maintain().await
    }

    /// Creates the next key if due, deletes retired ones, and reloads. Safe to call from any
    /// number of instances at once.
    pub async fn maintain(&self) -> anyhow::Result<Arc<KeyRing>> {
        let _one_at_a_time = self.maintenance.lock().await;
        self.reload().await
    }

    /// After a key compromise: a brand-new key signs at once, and every other key (the
    /// compromised one, and any pending key made before the compromise) is deleted, so tokens
    /// they signed are refused at once by every origin instance's `verify`, and by the edge as
    /// soon as it next loads the JWKS. Sessions survive: their next refresh gets a token of the
    /// new key. Returns the new key's kid and the retired kids.
    pub async fn replace_compromised(&self) -> anyhow::Result<(String, Vec<String>)> {
        let _one_at_a_time = self.maintenance.lock().await;
        let now = self.clock.now_ms();
        let mut generation = load(&self.pool).await?.last().map_or(1, |key| key.generation + 1);
        // Another instance may create this generation at the same moment: take the next one.
        let kid = loop {
            if let Some(kid) = insert_key(&self.pool, &self.sealer, generation, now, now).await? {
                break kid;
            }
            generation += 1;
        };
        let retired: Vec<String> =
            sqlx::query_scalar("DELETE FROM signing_keys WHERE generation < $1 RETURNING kid")
                .bind(generation)
                .fetch_all(&self.pool)
                .await?;
        tracing::warn!(%kid, ?retired, "signing keys replaced after a compromise");
        self.reload().await?;
        Ok((kid, retired))
    }

    async fn reload(&self) -> anyhow::Result<Arc<KeyRing>> {
        let ring = Arc::new(
            build_ring(
                &self.pool,
                &self.sealer,
                self.schedule,
                &self.clock,
                &self.issuer,
                &self.audience,
            )
            .await?,
        );
        *self.ring.write().await = ring.clone();
        Ok(ring)
    }

    /// Starts the next key's signing as soon as the publish lead allows, e.g. after a suspected
    /// key compromise: the pending key is brought forward (or a new one created), and the old
    /// key stays published until its tokens expire. Returns the new signing key's kid and when
    /// it starts signing (ms since the epoch).
    pub async fn rotate_now(&self) -> anyhow::Result<(String, i64)> {
        let now = self.clock.now_ms();
        let signs_from = now + millis(self.schedule.publish_lead);
        let pending = load(&self.pool).await?.into_iter().rfind(|key| key.signs_from > now);
        match &pending {
            Some(key) => {
                sqlx::query("UPDATE signing_keys SET signs_from = $1 WHERE generation = $2 AND signs_from > $1")
                    .bind(signs_from)
                    .bind(key.generation)
                    .execute(&self.pool)
                    .await?;
            }
            None => {
                let last = load(&self.pool).await?.last().map_or(0, |key| key.generation);
                insert_key(&self.pool, &self.sealer, last + 1, now, signs_from).await?;
            }
        }
        let key = load(&self.pool)
            .await?
            .into_iter()
            .rfind(|key| key.signs_from <= signs_from)
            .ok_or_else(|| anyhow::anyhow!("no signing key after rotation"))?;
        tracing::warn!(kid = %key.kid, signs_from = key.signs_from, "signing key rotation requested");
        self.maintain().await?;
        Ok((key.kid, key.signs_from))
    }

    /// How often the background task should call [`KeyManager::maintain`].
    pub fn maintenance_interval(&self) -> Duration {
        // At most 10 s: other instances stop signing with a key replaced after a compromise
        // within this long.
        (self.schedule.rotation / 4).clamp(Duration::from_secs(1), Duration::from_secs(10))
    }
}

async fn load(pool: &Pool) -> anyhow::Result<Vec<StoredKey>> {
    Ok(sqlx::query_as(
        "SELECT kid, generation, public_key, sealed_secret, signs_from FROM signing_keys \
         ORDER BY generation",
    )
    .fetch_all(pool)
    .await?)
}

/// Inserts key `generation` unless another instance already has; either way one row wins.
/// Returns the kid when this call's key is the one inserted.
async fn insert_key(
    pool: &Pool,
    sealer: &Sealer,
    generation: i64,
    now_ms: i64,
    signs_from: i64,
) -> anyhow::Result<Option<String>> {
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    let jwk = key.verifying_key().to_jwk();
    let inserted = sqlx::query(
        "INSERT INTO signing_keys (kid, generation, public_key, sealed_secret, created_at, signs_from) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (generation) DO NOTHING",
    )
    .bind(key.kid())
    .bind(generation)
    .bind(jwk.x)
    .bind(sealer.seal(key.kid(), &key.seed()))
    .bind(now_ms)
    .bind(signs_from)
    .execute(pool)
    .await?
    .rows_affected();
    if inserted == 1 {
        tracing::info!(kid = key.kid(), generation, signs_from, "created signing key");
        return Ok(Some(key.kid().to_owned()));
    }
    Ok(None)
}

async fn build_ring(
    pool: &Pool,
    sealer: &Sealer,
    schedule: KeySchedule,
    clock: &Clock,
    issuer: &str,
    audience: &str,
) -> anyhow::Result<KeyRing> {
    let now = clock.now_ms();
    let mut keys = load(pool).await?;
    if keys.is_empty() {
        // First start: nothing can have cached a JWKS yet, so the first key signs at once.
        insert_key(pool, sealer, 1, now, now).await?;
        keys = load(pool).await?;
    }
    let current_index = keys.iter().rposition(|k| k.signs_from <= now).unwrap_or(0);
    if current_index + 1 == keys.len() {
        let current = &keys[current_index];
        let signs_from = (current.signs_from + millis(schedule.rotation))
            .max(now + millis(schedule.publish_lead));
        insert_key(pool, sealer, current.generation + 1, now, signs_from).await?;
        keys = load(pool).await?;
    }
    let current_index = keys.iter().rposition(|k| k.signs_from <= now).unwrap_or(0);

    // A key retires once every token it signed has expired: its successor's start plus the
    // access token lifetime and the verifier's leeway.
    let afterlife = millis(schedule.access_token_lifetime) + DEFAULT_LEEWAY.num_milliseconds();
    let mut retired = Vec::new();
    let mut published = Vec::new();
    let mut valid_until = i64::MAX;
    for (index, key) in keys.iter().enumerate() {
        let retires_at = keys.get(index + 1).map(|next| next.signs_from + afterlife);
        match retires_at {
            Some(at) if at <= now => retired.push(key.generation),
            _ => {
                published.push(key);
                if let Some(at) = retires_at {
                    valid_until = valid_until.min(at);
                }
                if key.signs_from > now {
                    valid_until = valid_until.min(key.signs_from);
                }
            }
        }
    }
    for generation in retired {
        sqlx::query("DELETE FROM signing_keys WHERE generation = $1")
            .bind(generation)
            .execute(pool)
            .await?;
    }

    let current = &keys[current_index];
    let signing = SigningKey::from_seed(&sealer.open(&current.kid, &current.sealed_secret)?);
    anyhow::ensure!(
        signing.kid() == current.kid,
        "signing key {} does not match its kid",
        current.kid
    );
    let published = KeySet::from_jwks(&Jwks {
        keys: published
            .iter()
            .map(|key| Jwk {
                kty: "OKP".into(),
                crv: "Ed25519".into(),
                x: key.public_key.clone(),
                kid: key.kid.clone(),
                alg: None,
                key_use: None,
            })
            .collect(),
    })?;
    let verifier = Verifier::new(published, issuer, audience);
    Ok(KeyRing { signing, verifier, valid_until_ms: valid_until })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_seeds_open_only_with_the_same_key_and_kid() {
        let sealer = Sealer::new([1; 32]);
        let sealed = sealer.seal("kid-a", &[9; 32]);
        assert_eq!(sealer.open("kid-a", &sealed).unwrap(), [9; 32]);
        assert!(sealer.open("kid-b", &sealed).is_err());
        assert!(Sealer::new([2; 32]).open("kid-a", &sealed).is_err());
        assert!(sealer.open("kid-a", "AAAA").is_err());
        assert_ne!(sealed, sealer.seal("kid-a", &[9; 32]), "nonces are fresh");
    }
}
