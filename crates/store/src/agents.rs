//! Agents: their configuration, chosen status and the counters routing uses. Writes go
//! through the engine ([`crate::WriteBatch`] `agents`); this module reads them.

use std::collections::BTreeMap;

use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use switchboard_core::routing::AgentStatus;
use switchboard_core::TenantId;

use crate::entity::agent;
use crate::{Store, StoreError};

/// An agent as stored: configuration, chosen status and routing counters.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AgentRow {
    /// The agent's id as telephony knows it (the `agent_id` of events).
    pub agent_id: String,
    /// Display name.
    pub name: String,
    /// The user this agent is, if linked.
    pub user_id: Option<Uuid>,
    /// Skills with levels 0–10.
    pub skills: BTreeMap<String, u8>,
    /// Calls the agent may have at once (≥ 1).
    pub capacity: u32,
    /// Seconds in `wrap_up` after each call (0 = none).
    pub wrap_up_s: u32,
    /// Consecutive misses that put the agent on break; `None` = the queue's `max_no_answer`.
    pub max_no_answer: Option<u32>,
    /// Where to ring the agent (`sip:…`).
    pub sip_uri: Option<String>,
    /// The chosen status.
    pub status: AgentStatus,
    /// When the chosen status was set, epoch ms.
    pub status_since: i64,
    /// Consecutive offers not answered.
    pub missed: u32,
    /// End of the current wrap-up, epoch ms.
    pub wrap_up_until: Option<i64>,
    /// Calls answered (`fewest_calls`).
    pub calls_taken: u64,
    /// Talk time of its calls, ms (`least_talk_time`).
    pub talk_ms: i64,
    /// Idle since, epoch ms (`longest_idle`).
    pub idle_since: i64,
    /// Creation, epoch ms.
    pub created_at: i64,
    /// Last change of the configuration or status, epoch ms.
    pub updated_at: i64,
    /// Bumped on every configuration change (the `ETag`); 0 for an agent only seen in events.
    pub version: i64,
}

impl AgentRow {
    /// An agent only seen in events (a manual `call_routed`): offline, capacity 1.
    pub fn seen(agent_id: &str) -> Self {
        AgentRow {
            agent_id: agent_id.to_owned(),
            name: agent_id.to_owned(),
            user_id: None,
            skills: BTreeMap::new(),
            capacity: 1,
            wrap_up_s: 0,
            max_no_answer: None,
            sip_uri: None,
            status: AgentStatus::Offline,
            status_since: 0,
            missed: 0,
            wrap_up_until: None,
            calls_taken: 0,
            talk_ms: 0,
            idle_since: 0,
            created_at: 0,
            updated_at: 0,
            version: 0,
        }
    }

    /// The agent's configuration as the audit log shows it (no counters).
    pub fn audit_json(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.agent_id, "name": self.name, "user_id": self.user_id,
            "skills": self.skills, "capacity": self.capacity, "wrap_up_s": self.wrap_up_s,
            "max_no_answer": self.max_no_answer, "sip_uri": self.sip_uri,
            "status": self.status.as_str(),
        })
    }
}

pub(crate) fn agent_active(t: TenantId, a: &AgentRow) -> agent::ActiveModel {
    agent::ActiveModel {
        tenant_id: Set(t.0),
        agent_id: Set(a.agent_id.clone()),
        missed: Set(a.missed as i32),
        on_break: Set(a.status == AgentStatus::Break),
        name: Set(a.name.clone()),
        user_id: Set(a.user_id),
        skills: Set(serde_json::to_string(&a.skills).expect("skills serialise")),
        capacity: Set(a.capacity as i32),
        wrap_up_s: Set(a.wrap_up_s as i32),
        max_no_answer: Set(a.max_no_answer.map(|m| m as i32)),
        sip_uri: Set(a.sip_uri.clone()),
        status: Set(a.status.as_str().to_owned()),
        status_since: Set(a.status_since),
        wrap_up_until: Set(a.wrap_up_until),
        calls_taken: Set(a.calls_taken as i64),
        talk_ms: Set(a.talk_ms),
        idle_since: Set(a.idle_since),
        created_at: Set(a.created_at),
        updated_at: Set(a.updated_at),
        version: Set(a.version),
    }
}

/// Upsert of a whole agent row.
pub(crate) fn agent_upsert() -> OnConflict {
    use agent::Column as C;
    OnConflict::columns([C::TenantId, C::AgentId])
        .update_columns([
            C::Missed,
            C::OnBreak,
            C::Name,
            C::UserId,
            C::Skills,
            C::Capacity,
            C::WrapUpS,
            C::MaxNoAnswer,
            C::SipUri,
            C::Status,
            C::StatusSince,
            C::WrapUpUntil,
            C::CallsTaken,
            C::TalkMs,
            C::IdleSince,
            C::CreatedAt,
            C::UpdatedAt,
            C::Version,
        ])
        .to_owned()
}

fn agent_from(m: agent::Model) -> AgentRow {
    let u = |v: i32| v.max(0) as u32;
    AgentRow {
        agent_id: m.agent_id,
        name: m.name,
        user_id: m.user_id,
        skills: serde_json::from_str(&m.skills).unwrap_or_default(),
        capacity: u(m.capacity).max(1),
        wrap_up_s: u(m.wrap_up_s),
        max_no_answer: m.max_no_answer.map(u),
        sip_uri: m.sip_uri,
        status: AgentStatus::parse(&m.status).unwrap_or_default(),
        status_since: m.status_since,
        missed: u(m.missed),
        wrap_up_until: m.wrap_up_until,
        calls_taken: m.calls_taken.max(0) as u64,
        talk_ms: m.talk_ms,
        idle_since: m.idle_since,
        created_at: m.created_at,
        updated_at: m.updated_at,
        version: m.version,
    }
}

impl Store {
    /// Every agent of the tenant (loaded into the engine).
    pub async fn agents(&self, tenant_id: TenantId) -> Result<Vec<AgentRow>, StoreError> {
        self.agents_page(tenant_id, None, u64::MAX >> 1).await
    }

    /// Agents ordered by id, after `after` (cursor), at most `limit`.
    pub async fn agents_page(
        &self,
        tenant_id: TenantId,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<AgentRow>, StoreError> {
        let mut q = agent::Entity::find().filter(agent::Column::TenantId.eq(tenant_id.0));
        if let Some(a) = after {
            q = q.filter(agent::Column::AgentId.gt(a));
        }
        Ok(q.order_by_asc(agent::Column::AgentId)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(agent_from)
            .collect())
    }
}
