//! `agents`: each agent's no-answer state as the engine keeps it (a projection of
//! `call_retransfer` / `call_answered` events), so a restart does not reset it.
use sea_orm::entity::prelude::*;

/// One agent's no-answer state (a row of `agents`).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "agents")]
pub struct Model {
    /// Owning tenant (primary key, with `agent_id`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: Uuid,
    /// The agent's id as telephony knows it.
    #[sea_orm(primary_key, auto_increment = false)]
    pub agent_id: String,
    /// Consecutive offers not answered.
    pub missed: i32,
    /// Whether the agent was put on break after `max_no_answer` consecutive misses.
    pub on_break: bool,
}

/// No relations are declared.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
