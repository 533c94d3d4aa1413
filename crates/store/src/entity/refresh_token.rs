//! `refresh_tokens`: opaque refresh tokens, stored as SHA-256, in families (one per login).
use sea_orm::entity::prelude::*;

/// One refresh token (a row of `refresh_tokens`).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "refresh_tokens")]
pub struct Model {
    /// Token id (UUIDv7).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The login this token descends from; revoked as a whole.
    pub family_id: Uuid,
    /// The user it refreshes.
    pub user_id: Uuid,
    /// The user's tenant.
    pub tenant_id: Uuid,
    /// SHA-256 of the token, lower-case hex.
    #[sea_orm(unique)]
    pub token_hash: String,
    /// Epoch ms.
    pub created_at: i64,
    /// Epoch ms.
    pub expires_at: i64,
    /// When it was exchanged for a new one (epoch ms); presenting it again revokes the family.
    pub used_at: Option<i64>,
    /// When it was revoked (logout, reuse), epoch ms.
    pub revoked_at: Option<i64>,
}

/// No relations are declared.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
