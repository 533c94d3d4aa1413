//! `campaigns`: how a DID's calls spread over destination call centers.
use sea_orm::entity::prelude::*;

/// One campaign (a row of `campaigns`).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "campaigns")]
pub struct Model {
    /// Campaign id (UUIDv7).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Owning tenant.
    pub tenant_id: Uuid,
    /// Display name.
    pub name: String,
    /// `priority`, `round_robin` or `weighted`.
    pub strategy: String,
    /// How long a destination may ring before the call gives up, seconds (the first lease).
    pub dial_timeout_s: i32,
    /// Longest call once answered, seconds (the lease after the answer).
    pub max_call_s: i32,
    /// False: its DIDs' calls are rejected.
    pub active: bool,
    /// The link the previous call went to (`round_robin`).
    pub last_used_link_id: Option<Uuid>,
    /// Epoch ms.
    pub created_at: i64,
    /// Epoch ms.
    pub updated_at: i64,
    /// Bumped on every change of the settings (the `ETag`; not by routing).
    pub version: i64,
}

/// No relations are declared.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
