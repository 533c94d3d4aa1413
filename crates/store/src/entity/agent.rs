//! `agents`: each agent's configuration, chosen status and the counters the engine keeps
//! (consecutive misses, calls taken, talk time, idle since, wrap-up end).
use sea_orm::entity::prelude::*;

/// One agent (a row of `agents`).
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
    /// Whether the agent's chosen status is `break` (kept for older readers; `status` rules).
    pub on_break: bool,
    /// Display name.
    pub name: String,
    /// The linked user, if any.
    pub user_id: Option<Uuid>,
    /// Skills: JSON object `{name: level 0–10}`.
    pub skills: String,
    /// Calls at once (≥ 1).
    pub capacity: i32,
    /// Seconds of wrap-up after each call.
    pub wrap_up_s: i32,
    /// Consecutive misses that put the agent on break; NULL = the queue's setting.
    pub max_no_answer: Option<i32>,
    /// Where to ring the agent.
    pub sip_uri: Option<String>,
    /// Chosen status: `available`, `break` or `offline`.
    pub status: String,
    /// When the chosen status was set, epoch ms.
    pub status_since: i64,
    /// End of the current wrap-up, epoch ms.
    pub wrap_up_until: Option<i64>,
    /// Calls answered.
    pub calls_taken: i64,
    /// Talk time, ms.
    pub talk_ms: i64,
    /// Idle since, epoch ms.
    pub idle_since: i64,
    /// Creation, epoch ms.
    pub created_at: i64,
    /// Last change, epoch ms.
    pub updated_at: i64,
    /// Configuration version; 0 = only seen in events.
    pub version: i64,
}

/// No relations are declared.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
