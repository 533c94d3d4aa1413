//! `calls`: the projection of each call's current state, rebuilt from `call_events`.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "calls")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub external_id: String,
    pub call_type: String,
    pub from_party: Option<String>,
    pub to_party: Option<String>,
    pub status: String,
    pub queue_id: Option<String>,
    pub first_queue_id: Option<String>,
    pub agent_id: Option<String>,
    pub priority: i32,
    pub initiated_at: i64,
    pub queued_at: Option<i64>,
    pub answered_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub end_reason: Option<String>,
    pub wait_ms: Option<i64>,
    pub talk_ms: i64,
    pub hold_ms: i64,
    /// `,flag1,flag2,` or empty.
    pub flags: String,
    pub state_since: i64,
    pub last_ts: i64,
    /// Sequence number of the last event applied.
    pub last_seq: i64,
    /// Pending timers (epoch ms), so a restart re-arms exactly what was armed.
    pub sla_deadline: Option<i64>,
    pub ring_deadline: Option<i64>,
    pub hold_deadline: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
