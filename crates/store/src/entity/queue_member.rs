//! `queue_members`: the agents of each queue with their tier (`level`, `position`) and
//! `weight` (FreeSWITCH mod_callcenter's tiers).
use sea_orm::entity::prelude::*;

/// One agent's membership of one queue (a row of `queue_members`).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "queue_members")]
pub struct Model {
    /// Owning tenant.
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: Uuid,
    /// The queue.
    #[sea_orm(primary_key, auto_increment = false)]
    pub queue_id: String,
    /// The agent.
    #[sea_orm(primary_key, auto_increment = false)]
    pub agent_id: String,
    /// Tier level: lower levels are offered calls first.
    pub level: i32,
    /// Position within the tier: lower first.
    pub position: i32,
    /// Weight for `weighted_random`.
    pub weight: i32,
}

/// No relations are declared.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
