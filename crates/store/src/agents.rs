//! Agents' no-answer state (consecutive misses, on break), kept by the engine.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use switchboard_core::TenantId;

use crate::entity::agent;
use crate::{Store, StoreError};

/// An agent's no-answer state: consecutive misses and whether it was put on break.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentRow {
    /// The agent's id as telephony knows it.
    pub agent_id: String,
    /// Consecutive offers not answered.
    pub missed: u32,
    /// Whether the agent was put on break after `max_no_answer` consecutive misses.
    pub on_break: bool,
}

impl Store {
    /// Every agent's no-answer state (reloaded into the engine at start).
    pub async fn agents(&self, tenant_id: TenantId) -> Result<Vec<AgentRow>, StoreError> {
        Ok(agent::Entity::find()
            .filter(agent::Column::TenantId.eq(tenant_id.0))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|m| AgentRow {
                agent_id: m.agent_id,
                missed: m.missed.max(0) as u32,
                on_break: m.on_break,
            })
            .collect())
    }
}
