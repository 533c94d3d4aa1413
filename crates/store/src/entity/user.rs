//! `users`: people who log in, with a role.
use sea_orm::entity::prelude::*;

/// One user (a row of `users`).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    /// User id (UUIDv7).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The user's tenant.
    pub tenant_id: Uuid,
    /// E-mail address, lower-case; unique per tenant.
    pub email: String,
    /// Name shown in the console.
    pub display_name: String,
    /// `platform_admin`, `tenant_admin`, `supervisor` or `agent`.
    pub role: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// False once deactivated: the user can no longer log in or use a token.
    pub active: bool,
    /// Epoch ms.
    pub created_at: i64,
    /// Epoch ms.
    pub updated_at: i64,
    /// Bumped on every change (the `ETag`).
    pub version: i64,
}

/// No relations are declared.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
