//! `agents`: each agent's no-answer state as the engine keeps it (a projection of
//! `call_retransfer` / `call_answered` events), so a restart does not reset it.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "agents")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub agent_id: String,
    /// Consecutive offers not answered.
    pub missed: i32,
    pub on_break: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
