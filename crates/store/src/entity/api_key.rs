//! `api_keys`: machine credentials, stored as SHA-256 of the key (keys are 256-bit random, so a
//! fast hash is enough; argon2 is for low-entropy passwords).
use sea_orm::entity::prelude::*;

/// One API key (a row of `api_keys`).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_keys")]
pub struct Model {
    /// Key id (UUIDv7).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The tenant the key acts for.
    pub tenant_id: Uuid,
    /// A name to recognise the key by.
    pub name: String,
    /// First characters of the key, to recognise it in listings.
    pub prefix: String,
    /// SHA-256 of the key, lower-case hex (64 characters).
    #[sea_orm(unique)]
    pub key_hash: String,
    /// Space-separated scopes; `*` is every scope.
    pub scopes: String,
    /// Creation time, epoch ms.
    pub created_at: i64,
    /// Revocation time, epoch ms; `None` while the key is valid.
    pub revoked_at: Option<i64>,
    /// Expiry time, epoch ms; `None` never expires.
    pub expires_at: Option<i64>,
    /// Sustained request rate allowed, requests per second; `None` is unlimited.
    pub rate_limit_per_s: Option<i32>,
    /// Requests allowed in a burst above the sustained rate (with `rate_limit_per_s`).
    pub rate_limit_burst: Option<i32>,
    /// Last time the key authenticated a request, epoch ms (written every few seconds).
    pub last_used_at: Option<i64>,
}

/// No relations are declared.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
