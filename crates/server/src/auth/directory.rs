//! The in-memory directory of credentials: every unrevoked API key (by SHA-256), the
//! deactivated tenants, and the users who presented a valid token. Every request is checked
//! against it without a database query; it is a cache of the store, kept current by the
//! routes that change keys, users and tenants (after their commit), so a revocation, an expiry
//! or a deactivation takes effect on the very next request.
//!
//! A key the directory does not know is not looked up one by one: at most once a second, the
//! keys created since the last look are loaded (a key made by `switchboard api-key create`
//! while the server runs is usable within a second), so a flood of invalid keys costs no
//! query per attempt. This holds for one server; several servers sharing a database do not yet
//! tell each other of a revocation (a later issue carries it over NATS).

use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use governor::{clock::DefaultClock, state::InMemoryState, state::NotKeyed, Quota, RateLimiter};
use sha2::Digest;
use uuid::Uuid;

use switchboard_core::time::now_ms;
use switchboard_core::{ScopeSet, TenantId};
use switchboard_store::{api_key_digest, ApiKeyInfo, Store, StoreError};

use super::tokens::{Claims, TokenError, TokenKeys};
use super::{Credential, Principal};
use crate::error::ApiError;

/// Least time between two loads of new keys on a miss, ms.
const MISS_RELOAD_MS: i64 = 1000;
/// Most verified tokens remembered; when full, the memory is emptied and starts again.
const VERIFIED_MAX: usize = 65_536;

/// How far before the newest key seen a miss reload looks again, ms: a key committed a little
/// after a newer one (two writers, the command line and the API) is not missed.
const RELOAD_OVERLAP_MS: i64 = 60_000;

type Limiter = RateLimiter<NotKeyed, InMemoryState, DefaultClock>;

/// A key as the directory holds it.
struct KeyEntry {
    info: ApiKeyInfo,
    /// The key's token bucket (`rate_limit`), shared by every request with the key.
    limiter: Option<Limiter>,
    /// Last use, epoch ms (0: not since the last flush).
    last_used: AtomicI64,
}

/// A user as the directory holds it: what a request needs to know beyond the token.
#[derive(Debug, Clone)]
pub struct UserAuth {
    /// The user's tenant.
    pub tenant_id: TenantId,
    /// Current role.
    pub role: switchboard_core::Role,
    /// E-mail address.
    pub email: String,
    /// False once deactivated.
    pub active: bool,
}

#[derive(Default)]
struct Inner {
    keys: RwLock<HashMap<[u8; 32], Arc<KeyEntry>>>,
    inactive_tenants: RwLock<HashSet<TenantId>>,
    users: RwLock<HashMap<Uuid, Arc<UserAuth>>>,
    /// Bumped by every user change: a user read from the store before a change is not cached
    /// after it (it might be the old, still active, user).
    users_generation: AtomicU64,
    /// Keys revoked while this server runs: a reload that read one before its revocation
    /// committed never brings it back.
    revoked: RwLock<HashSet<Uuid>>,
    /// Access tokens whose signature was verified, by SHA-256 of the token: a client sends the
    /// same token for up to 15 minutes, and an Ed25519 verification costs ~40 µs. Only the
    /// signature's verdict is kept; the times are checked on every request.
    verified: RwLock<HashMap<[u8; 32], Claims>>,
    /// Creation time of the newest key loaded (the next miss loads from there), and when the
    /// last miss reload ran; behind an async lock so that concurrent misses share one query.
    reload: tokio::sync::Mutex<(i64, i64)>,
}

/// The credential directory; cheap to clone.
#[derive(Clone)]
pub struct Directory {
    store: Store,
    inner: Arc<Inner>,
}

fn limiter(info: &ApiKeyInfo) -> Option<Limiter> {
    let r = info.rate_limit?;
    let per_s = NonZeroU32::new(r.per_s)?;
    let burst = NonZeroU32::new(r.burst).unwrap_or(per_s);
    Some(RateLimiter::direct(
        Quota::per_second(per_s).allow_burst(burst),
    ))
}

fn entry(info: ApiKeyInfo) -> Arc<KeyEntry> {
    Arc::new(KeyEntry {
        limiter: limiter(&info),
        info,
        last_used: AtomicI64::new(0),
    })
}

fn digest_of_hash(hash: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if hash.len() != 64 {
        return None;
    }
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(hash.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

impl Directory {
    /// Loads every unrevoked key and the deactivated tenants.
    ///
    /// Errors: the store cannot be read.
    pub async fn load(store: Store) -> Result<Directory, StoreError> {
        let d = Directory {
            store,
            inner: Arc::default(),
        };
        let newest = d.add_keys_since(0).await?;
        *d.inner.reload.lock().await = (newest, 0);
        let inactive: HashSet<TenantId> = d
            .store
            .tenants()
            .await?
            .into_iter()
            .filter(|t| !t.settings.active)
            .map(|t| t.id)
            .collect();
        *d.inner.inactive_tenants.write().expect("directory lock") = inactive;
        Ok(d)
    }

    /// Adds the keys created at or after `since`; answers the newest creation time seen.
    async fn add_keys_since(&self, since: i64) -> Result<i64, StoreError> {
        let keys = self.store.api_keys_since(since).await?;
        let newest = keys
            .iter()
            .map(|(_, k)| k.created_at)
            .max()
            .unwrap_or(since);
        let revoked = self.inner.revoked.read().expect("directory lock");
        let mut map = self.inner.keys.write().expect("directory lock");
        for (hash, info) in keys {
            if revoked.contains(&info.id) {
                continue;
            }
            if let Some(d) = digest_of_hash(&hash) {
                map.entry(d).or_insert_with(|| entry(info));
            }
        }
        Ok(newest)
    }

    /// Adds a key just created (after its commit).
    pub fn key_created(&self, key: &str, info: ApiKeyInfo) {
        self.inner
            .keys
            .write()
            .expect("directory lock")
            .insert(api_key_digest(key), entry(info));
    }

    /// Forgets a key just revoked (after its commit): its next request is refused.
    pub fn key_revoked(&self, id: Uuid) {
        self.inner
            .revoked
            .write()
            .expect("directory lock")
            .insert(id);
        self.inner
            .keys
            .write()
            .expect("directory lock")
            .retain(|_, e| e.info.id != id);
    }

    /// Records a tenant's `active` flag (after its commit).
    pub fn tenant_active(&self, id: TenantId, active: bool) {
        let mut set = self.inner.inactive_tenants.write().expect("directory lock");
        if active {
            set.remove(&id);
        } else {
            set.insert(id);
        }
    }

    /// Forgets what is held of a user (after a change): the next request reads it again.
    pub fn user_changed(&self, id: Uuid) {
        self.inner
            .users
            .write()
            .expect("directory lock")
            .remove(&id);
    }

    /// False once the tenant is deactivated.
    pub fn is_tenant_active(&self, id: TenantId) -> bool {
        !self
            .inner
            .inactive_tenants
            .read()
            .expect("directory lock")
            .contains(&id)
    }

    async fn key_entry(&self, digest: &[u8; 32]) -> Result<Option<Arc<KeyEntry>>, ApiError> {
        if let Some(e) = self.inner.keys.read().expect("directory lock").get(digest) {
            return Ok(Some(e.clone()));
        }
        // Unknown: perhaps made by the command line since the last look. Look at most once a
        // second; concurrent misses wait for the same look.
        let mut reload = self.inner.reload.lock().await;
        if let Some(e) = self.inner.keys.read().expect("directory lock").get(digest) {
            return Ok(Some(e.clone()));
        }
        let now = now_ms();
        if now - reload.1 >= MISS_RELOAD_MS {
            // Keys already held are kept as they are (or_insert), so looking again over the
            // overlap costs nothing but the read.
            let newest = self
                .add_keys_since(reload.0.saturating_sub(RELOAD_OVERLAP_MS))
                .await?;
            reload.0 = reload.0.max(newest);
            reload.1 = now;
            return Ok(self
                .inner
                .keys
                .read()
                .expect("directory lock")
                .get(digest)
                .cloned());
        }
        Ok(None)
    }

    /// The principal of an API key.
    ///
    /// Errors: 401 when unknown, revoked, expired or its tenant deactivated; 429 (with
    /// `Retry-After`) when over its rate limit; 503 when a miss reload fails.
    pub async fn key_principal(&self, key: &str) -> Result<Principal, ApiError> {
        let digest = api_key_digest(key);
        let e = self
            .key_entry(&digest)
            .await?
            .ok_or_else(|| ApiError::unauthorized("the API key is not valid"))?;
        let now = now_ms();
        if e.info.expires_at.is_some_and(|x| x <= now) {
            return Err(ApiError::unauthorized("the API key has expired"));
        }
        if !self.is_tenant_active(e.info.tenant_id) {
            return Err(ApiError::unauthorized("the key's tenant is deactivated"));
        }
        if let Some(l) = &e.limiter {
            if let Err(not_until) = l.check() {
                let wait = not_until.wait_time_from(governor::clock::Clock::now(
                    &governor::clock::DefaultClock::default(),
                ));
                let secs = wait.as_secs_f64().ceil().max(1.0) as u32;
                return Err(ApiError::too_many_requests(
                    "this API key is over its request rate limit",
                    secs,
                ));
            }
        }
        e.last_used.store(now, Ordering::Relaxed);
        Ok(Principal {
            tenant_id: e.info.tenant_id,
            scopes: e.info.scopes.intersect(ScopeSet::TENANT),
            credential: Credential::Key {
                id: e.info.id,
                name: e.info.name.clone(),
                expires_at_ms: e.info.expires_at,
                digest,
            },
        })
    }

    async fn user(&self, id: Uuid) -> Result<Option<Arc<UserAuth>>, ApiError> {
        if let Some(u) = self.inner.users.read().expect("directory lock").get(&id) {
            return Ok(Some(u.clone()));
        }
        // Only a correctly signed token gets here: no query for forged ones.
        let generation = self.inner.users_generation.load(Ordering::SeqCst);
        let u = match self.store.user(None, id).await {
            Ok(u) => Arc::new(UserAuth {
                tenant_id: u.tenant_id,
                role: u.role,
                email: u.email,
                active: u.active,
            }),
            Err(StoreError::NotFound) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let mut users = self.inner.users.write().expect("directory lock");
        // A change since the read: answer what was read, but do not keep it.
        if self.inner.users_generation.load(Ordering::SeqCst) == generation {
            users.insert(id, u.clone());
        }
        Ok(Some(u))
    }

    /// The principal of an access token.
    ///
    /// Errors: 401 when the token is malformed, tampered, wrongly signed or expired, or its user
    /// is unknown or deactivated, or its tenant deactivated.
    pub async fn user_principal(
        &self,
        keys: &TokenKeys,
        token: &str,
    ) -> Result<Principal, ApiError> {
        let now_s = now_ms().div_euclid(1000);
        let claims = self
            .verify_remembered(keys, token, now_s)
            .map_err(|e| match e {
                TokenError::Expired => ApiError::unauthorized("the access token has expired"),
                TokenError::Invalid(why) => {
                    ApiError::unauthorized(format!("the access token is not valid: {why}"))
                }
            })?;
        let u = self
            .user(claims.sub)
            .await?
            .filter(|u| u.tenant_id.0 == claims.tid)
            .ok_or_else(|| ApiError::unauthorized("the token's user does not exist"))?;
        if !u.active {
            return Err(ApiError::unauthorized("the user is deactivated"));
        }
        if !self.is_tenant_active(u.tenant_id) {
            return Err(ApiError::unauthorized("the user's tenant is deactivated"));
        }
        Ok(Principal {
            tenant_id: u.tenant_id,
            scopes: u.role.scopes(),
            credential: Credential::User {
                id: claims.sub,
                email: u.email.clone(),
                role: u.role,
                expires_at_s: claims.exp,
            },
        })
    }

    /// [`TokenKeys::verify`], remembering tokens whose signature held. A remembered token is
    /// only checked for expiry (`exp`) again: the rest of what `verify` checks does not change
    /// with time, and the directory lives as long as the keys it is used with.
    fn verify_remembered(
        &self,
        keys: &TokenKeys,
        token: &str,
        now_s: i64,
    ) -> Result<Claims, TokenError> {
        let digest: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        if let Some(c) = self
            .inner
            .verified
            .read()
            .expect("directory lock")
            .get(&digest)
        {
            return if now_s < c.exp {
                Ok(c.clone())
            } else {
                Err(TokenError::Expired)
            };
        }
        let claims = keys.verify(token, now_s)?;
        let mut verified = self.inner.verified.write().expect("directory lock");
        if verified.len() >= VERIFIED_MAX {
            verified.clear();
        }
        verified.insert(digest, claims.clone());
        Ok(claims)
    }

    /// Whether `p`'s credential still holds (streams re-check it). Errors: 401 naming why not.
    pub async fn still_valid(&self, p: &Principal) -> Result<(), ApiError> {
        if !self.is_tenant_active(p.tenant_id) {
            return Err(ApiError::unauthorized("the tenant is deactivated"));
        }
        let now = now_ms();
        match &p.credential {
            Credential::Key {
                digest,
                expires_at_ms,
                ..
            } => {
                if expires_at_ms.is_some_and(|x| x <= now) {
                    return Err(ApiError::unauthorized("the API key has expired"));
                }
                if !self
                    .inner
                    .keys
                    .read()
                    .expect("directory lock")
                    .contains_key(digest)
                {
                    return Err(ApiError::unauthorized("the API key was revoked"));
                }
            }
            Credential::User {
                id, expires_at_s, ..
            } => {
                if *expires_at_s <= now.div_euclid(1000) {
                    return Err(ApiError::unauthorized("the access token has expired"));
                }
                match self.user(*id).await? {
                    Some(u) if u.active => {}
                    _ => return Err(ApiError::unauthorized("the user is deactivated")),
                }
            }
        }
        Ok(())
    }

    /// The keys used since the last call, with when; resets them.
    pub fn take_used(&self) -> Vec<(Uuid, i64)> {
        self.inner
            .keys
            .read()
            .expect("directory lock")
            .values()
            .filter_map(|e| {
                let at = e.last_used.swap(0, Ordering::Relaxed);
                (at > 0).then_some((e.info.id, at))
            })
            .collect()
    }

    /// Writes the keys' last use every `every` until `stop`, and once more at the end.
    pub async fn flush_last_used(
        self,
        every: std::time::Duration,
        stop: tokio_util::sync::CancellationToken,
    ) {
        loop {
            let stopping = tokio::select! {
                _ = stop.cancelled() => true,
                _ = tokio::time::sleep(every) => false,
            };
            let used = self.take_used();
            if !used.is_empty() {
                if let Err(e) = self.store.touch_api_keys(&used).await {
                    tracing::warn!(error = %e, "recording the API keys' last use");
                }
            }
            if stopping {
                return;
            }
        }
    }

    /// How many keys and users are held.
    pub fn sizes(&self) -> (usize, usize) {
        (
            self.inner.keys.read().expect("directory lock").len(),
            self.inner.users.read().expect("directory lock").len(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_turn_back_into_digests() {
        let d = api_key_digest("sb_x");
        assert_eq!(
            digest_of_hash(&switchboard_store::hex(&d)),
            Some(d),
            "hex round trip"
        );
        assert_eq!(digest_of_hash("zz"), None);
        assert_eq!(digest_of_hash(&"g".repeat(64)), None);
    }
}
