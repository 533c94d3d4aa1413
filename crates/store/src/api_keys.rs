//! API keys: stored as SHA-256, scoped to a tenant.

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, TransactionTrait,
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use switchboard_core::{ScopeSet, TenantId};

use crate::audit::{insert_audit, Actor, AuditRecord};
use crate::entity::api_key;
use crate::{corrupt, map_insert_err, Store, StoreError};

/// A per-key request rate limit (a token bucket: `per_s` sustained, `burst` at once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Sustained requests per second, at least 1.
    pub per_s: u32,
    /// Requests allowed at once, at least 1.
    pub burst: u32,
}

/// An API key's stored facts (never the key itself).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKeyInfo {
    /// Key id (UUIDv7).
    pub id: Uuid,
    /// The tenant the key acts for.
    pub tenant_id: TenantId,
    /// A name to recognise the key by.
    pub name: String,
    /// First characters of the key (at most a quarter of it), to recognise it in listings.
    pub prefix: String,
    /// Granted scopes.
    pub scopes: ScopeSet,
    /// Creation time, epoch ms.
    pub created_at: i64,
    /// Expiry, epoch ms (`None`: never).
    pub expires_at: Option<i64>,
    /// Request rate limit (`None`: none).
    pub rate_limit: Option<RateLimit>,
    /// Last use, epoch ms (written every few seconds, so it may lag).
    pub last_used_at: Option<i64>,
    /// Revocation time, epoch ms.
    pub revoked_at: Option<i64>,
}

impl ApiKeyInfo {
    /// The key as the audit log shows it (never the secret or its hash).
    pub fn audit_json(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id, "tenant_id": self.tenant_id.0, "name": self.name,
            "prefix": self.prefix, "scopes": self.scopes.names(),
            "expires_at": self.expires_at, "revoked_at": self.revoked_at,
            "rate_limit": self.rate_limit.map(|r| serde_json::json!({"per_s": r.per_s, "burst": r.burst})),
        })
    }
}

/// A key to store.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    /// A name to recognise the key by.
    pub name: String,
    /// The secret (stored only as its SHA-256 and a short prefix).
    pub key: String,
    /// Granted scopes.
    pub scopes: ScopeSet,
    /// Expiry, epoch ms.
    pub expires_at: Option<i64>,
    /// Request rate limit.
    pub rate_limit: Option<RateLimit>,
}

/// Which keys to list, oldest first.
#[derive(Debug, Clone, Default)]
pub struct ApiKeyFilter {
    /// Only this tenant's keys (`None`: every tenant).
    pub tenant_id: Option<TenantId>,
    /// Include revoked keys.
    pub include_revoked: bool,
    /// Keys after this id (the previous page's last).
    pub after: Option<Uuid>,
    /// Page size.
    pub limit: u64,
}

/// SHA-256 of an API key.
pub fn api_key_digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// SHA-256 of an API key, hex: what `api_keys.key_hash` holds.
pub fn hash_api_key(key: &str) -> String {
    hex(&api_key_digest(key))
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

fn api_key_from(m: api_key::Model) -> Result<ApiKeyInfo, StoreError> {
    let rate_limit = match (m.rate_limit_per_s, m.rate_limit_burst) {
        (Some(p), Some(b)) if p > 0 && b > 0 => Some(RateLimit {
            per_s: p as u32,
            burst: b as u32,
        }),
        _ => None,
    };
    Ok(ApiKeyInfo {
        id: m.id,
        tenant_id: TenantId(m.tenant_id),
        scopes: ScopeSet::parse(m.scopes.split_whitespace())
            .map_err(|_| corrupt("api_keys.scopes"))?,
        name: m.name,
        prefix: m.prefix,
        created_at: m.created_at,
        expires_at: m.expires_at,
        rate_limit,
        last_used_at: m.last_used_at,
        revoked_at: m.revoked_at,
    })
}

fn api_key_row(tenant_id: TenantId, k: &NewApiKey, now: i64) -> api_key::ActiveModel {
    api_key::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(tenant_id.0),
        name: Set(k.name.clone()),
        prefix: Set(key_prefix(&k.key)),
        key_hash: Set(hash_api_key(&k.key)),
        scopes: Set(k.scopes.names().join(" ")),
        created_at: Set(now),
        revoked_at: Set(None),
        expires_at: Set(k.expires_at),
        rate_limit_per_s: Set(k.rate_limit.map(|r| r.per_s.min(i32::MAX as u32) as i32)),
        rate_limit_burst: Set(k.rate_limit.map(|r| r.burst.min(i32::MAX as u32) as i32)),
        last_used_at: Set(None),
    }
}

/// Inserts a key on `db` (inside a transaction) with its audit entry.
pub(crate) async fn insert_api_key<C: ConnectionTrait>(
    db: &C,
    tenant_id: TenantId,
    k: &NewApiKey,
    actor: &Actor,
    now: i64,
) -> Result<ApiKeyInfo, StoreError> {
    let m = api_key::Entity::insert(api_key_row(tenant_id, k, now))
        .exec_with_returning(db)
        .await
        .map_err(|e| map_insert_err(e, "API key already exists"))?;
    let info = api_key_from(m)?;
    let id = info.id.to_string();
    let entry = AuditRecord::new(
        tenant_id,
        actor,
        "api_key.create",
        ("api_key", &id),
        None,
        Some(info.audit_json()),
        now,
    );
    insert_audit(db, &[entry]).await?;
    Ok(info)
}

/// Longest prefix of an API key stored in the clear (to recognise a key in a list), in
/// characters.
pub const KEY_PREFIX_MAX_CHARS: usize = 10;

/// The part of `key` stored in the clear: at most a quarter of its characters and at most
/// [`KEY_PREFIX_MAX_CHARS`], so the rest (at least three quarters) is known only by its hash.
pub fn key_prefix(key: &str) -> String {
    let n = (key.chars().count() / 4).min(KEY_PREFIX_MAX_CHARS);
    key.chars().take(n).collect()
}

impl Store {
    /// Stores a key (by its hash) for a tenant, with its audit entry.
    ///
    /// Errors: `Conflict` if the same key exists.
    pub async fn create_api_key(
        &self,
        tenant_id: TenantId,
        k: &NewApiKey,
        actor: &Actor,
        now: i64,
    ) -> Result<ApiKeyInfo, StoreError> {
        let txn = self.db.begin().await?;
        let info = insert_api_key(&txn, tenant_id, k, actor, now).await?;
        txn.commit().await?;
        Ok(info)
    }

    /// The unrevoked key whose hash is `key_hash` (expired or not). Errors: `NotFound`.
    pub async fn api_key_by_hash(&self, key_hash: &str) -> Result<ApiKeyInfo, StoreError> {
        api_key_from(
            api_key::Entity::find()
                .filter(api_key::Column::KeyHash.eq(key_hash))
                .filter(api_key::Column::RevokedAt.is_null())
                .one(&self.db)
                .await?
                .ok_or(StoreError::NotFound)?,
        )
    }

    /// True when a key with this hash is stored, revoked or not.
    pub async fn api_key_hash_exists(&self, key_hash: &str) -> Result<bool, StoreError> {
        Ok(api_key::Entity::find()
            .filter(api_key::Column::KeyHash.eq(key_hash))
            .one(&self.db)
            .await?
            .is_some())
    }

    /// Every unrevoked key created at or after `since` (epoch ms; 0 for all), with its hash:
    /// what the server's key directory holds, so that an unknown key is refused without a
    /// query.
    pub async fn api_keys_since(
        &self,
        since: i64,
    ) -> Result<Vec<(String, ApiKeyInfo)>, StoreError> {
        api_key::Entity::find()
            .filter(api_key::Column::RevokedAt.is_null())
            .filter(api_key::Column::CreatedAt.gte(since))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|m| {
                let h = m.key_hash.clone();
                api_key_from(m).map(|k| (h, k))
            })
            .collect()
    }

    /// A page of keys, oldest first.
    pub async fn api_keys(&self, f: &ApiKeyFilter) -> Result<Vec<ApiKeyInfo>, StoreError> {
        let mut q = api_key::Entity::find();
        if let Some(t) = f.tenant_id {
            q = q.filter(api_key::Column::TenantId.eq(t.0));
        }
        if !f.include_revoked {
            q = q.filter(api_key::Column::RevokedAt.is_null());
        }
        if let Some(a) = f.after {
            q = q.filter(api_key::Column::Id.gt(a));
        }
        q.order_by_asc(api_key::Column::Id)
            .limit(f.limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(api_key_from)
            .collect()
    }

    /// The key `id` of `tenant_id` (`None`: of any tenant), revoked or not. Errors: `NotFound`.
    pub async fn api_key(
        &self,
        tenant_id: Option<TenantId>,
        id: Uuid,
    ) -> Result<ApiKeyInfo, StoreError> {
        let mut q = api_key::Entity::find_by_id(id);
        if let Some(t) = tenant_id {
            q = q.filter(api_key::Column::TenantId.eq(t.0));
        }
        api_key_from(q.one(&self.db).await?.ok_or(StoreError::NotFound)?)
    }

    /// Revokes the key `id` of `tenant_id` (`None`: of any tenant), with its audit entry;
    /// revoking a revoked key changes nothing and answers it. Errors: `NotFound`.
    pub async fn revoke_api_key(
        &self,
        tenant_id: Option<TenantId>,
        id: Uuid,
        actor: &Actor,
        now: i64,
    ) -> Result<ApiKeyInfo, StoreError> {
        let txn = self.db.begin().await?;
        let res = api_key::Entity::update_many()
            .col_expr(api_key::Column::RevokedAt, Expr::value(now))
            .filter(api_key::Column::Id.eq(id))
            .filter(api_key::Column::RevokedAt.is_null())
            .filter(tenant_id.map_or(Condition::all(), |t| {
                Condition::all().add(api_key::Column::TenantId.eq(t.0))
            }))
            .exec(&txn)
            .await?;
        let mut q = api_key::Entity::find_by_id(id);
        if let Some(t) = tenant_id {
            q = q.filter(api_key::Column::TenantId.eq(t.0));
        }
        let after = api_key_from(q.one(&txn).await?.ok_or(StoreError::NotFound)?)?;
        if res.rows_affected == 1 {
            let mut before = after.clone();
            before.revoked_at = None;
            let rid = id.to_string();
            let entry = AuditRecord::new(
                after.tenant_id,
                actor,
                "api_key.revoke",
                ("api_key", &rid),
                Some(before.audit_json()),
                Some(after.audit_json()),
                now,
            );
            insert_audit(&txn, &[entry]).await?;
        }
        txn.commit().await?;
        Ok(after)
    }

    /// Records when keys were last used (`(key id, epoch ms)`); a time never moves back.
    pub async fn touch_api_keys(&self, used: &[(Uuid, i64)]) -> Result<(), StoreError> {
        for (id, at) in used {
            api_key::Entity::update_many()
                .col_expr(api_key::Column::LastUsedAt, Expr::value(*at))
                .filter(api_key::Column::Id.eq(*id))
                .filter(
                    Condition::any()
                        .add(api_key::Column::LastUsedAt.is_null())
                        .add(api_key::Column::LastUsedAt.lt(*at)),
                )
                .exec(&self.db)
                .await?;
        }
        Ok(())
    }

    /// The unrevoked key with this SHA-256 digest. Errors: `NotFound`.
    pub async fn api_key_by_digest(&self, digest: &[u8; 32]) -> Result<ApiKeyInfo, StoreError> {
        self.api_key_by_hash(&hex(digest)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefix_never_holds_more_than_a_quarter_of_the_key() {
        for len in 0..100 {
            let key: String = "k".repeat(len);
            let p = key_prefix(&key);
            assert!(p.chars().count() * 4 <= len, "len {len}: {p}");
            assert!(p.chars().count() <= KEY_PREFIX_MAX_CHARS);
        }
        assert_eq!(key_prefix("sb_0123456789abcdef0123"), "sb_01");
        assert_eq!(key_prefix(&format!("sb_{}", "a".repeat(64))), "sb_aaaaaaa");
        assert_eq!(key_prefix("éééééééé"), "éé", "counted in characters");
    }
}
