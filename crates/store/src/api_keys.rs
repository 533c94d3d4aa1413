//! API keys: stored as SHA-256, scoped to a tenant.

use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use switchboard_core::TenantId;

use crate::entity::api_key;
use crate::{map_insert_err, Store, StoreError};

/// An API key's stored facts (never the key itself).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKeyInfo {
    /// Key id (UUIDv7).
    pub id: Uuid,
    /// The tenant the key acts for.
    pub tenant_id: TenantId,
    /// A name to recognise the key by.
    pub name: String,
    /// First 10 characters of the key, to recognise it in listings.
    pub prefix: String,
    /// Granted scopes (`events:write`, …); `*` is every scope.
    pub scopes: Vec<String>,
    /// Creation time, epoch ms.
    pub created_at: i64,
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

fn api_key_from(m: api_key::Model) -> ApiKeyInfo {
    ApiKeyInfo {
        id: m.id,
        tenant_id: TenantId(m.tenant_id),
        name: m.name,
        prefix: m.prefix,
        scopes: m.scopes.split_whitespace().map(str::to_owned).collect(),
        created_at: m.created_at,
    }
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
    /// Stores a key (by its hash) for a tenant. Errors: `Conflict` if the same key exists.
    pub async fn create_api_key(
        &self,
        tenant_id: TenantId,
        name: &str,
        key: &str,
        scopes: &[String],
        now: i64,
    ) -> Result<ApiKeyInfo, StoreError> {
        let m = api_key::ActiveModel {
            id: Set(Uuid::now_v7()),
            tenant_id: Set(tenant_id.0),
            name: Set(name.to_owned()),
            prefix: Set(key_prefix(key)),
            key_hash: Set(hash_api_key(key)),
            scopes: Set(scopes.join(" ")),
            created_at: Set(now),
            revoked_at: Set(None),
        };
        let m = api_key::Entity::insert(m)
            .exec_with_returning(&self.db)
            .await
            .map_err(|e| map_insert_err(e, "API key already exists"))?;
        Ok(api_key_from(m))
    }

    /// The unrevoked key whose hash is `key_hash`. Errors: `NotFound`.
    pub async fn api_key_by_hash(&self, key_hash: &str) -> Result<ApiKeyInfo, StoreError> {
        api_key::Entity::find()
            .filter(api_key::Column::KeyHash.eq(key_hash))
            .filter(api_key::Column::RevokedAt.is_null())
            .one(&self.db)
            .await?
            .map(api_key_from)
            .ok_or(StoreError::NotFound)
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
