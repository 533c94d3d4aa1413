//! `audit_log`: administrative changes, written in the same transaction as the change.
use sea_orm::entity::prelude::*;

/// One administrative change (a row of `audit_log`).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_log")]
pub struct Model {
    /// Entry id (UUIDv7: time-ordered).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The tenant the changed resource belongs to.
    pub tenant_id: Uuid,
    /// Epoch ms.
    pub at: i64,
    /// `user`, `api_key` or `system` (bootstrap, command line).
    pub actor_kind: String,
    /// The user's or key's id.
    pub actor_id: Option<String>,
    /// The user's e-mail or the key's name, as it was then.
    pub actor_name: String,
    /// `<resource>.<verb>`: `user.create`, `queue.update`, `api_key.revoke`, …
    pub action: String,
    /// `tenant`, `user`, `api_key`, `queue`.
    pub resource_type: String,
    /// The resource's id.
    pub resource_id: String,
    /// The resource before the change (JSON), `None` for a creation.
    pub before: Option<String>,
    /// The resource after the change (JSON).
    pub after: Option<String>,
}

/// No relations are declared.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
