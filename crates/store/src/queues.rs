//! Queues and their business-rule settings. Writes go through the engine ([`crate::WriteBatch`]
//! `queues`); this module reads them.

use std::collections::BTreeMap;

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use switchboard_core::routing::{RoutingMode, Strategy};
use switchboard_core::QueueSettings;

use switchboard_core::TenantId;

use crate::entity::{queue, queue_member};
use crate::{Store, StoreError};

/// A queue with its settings.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct QueueRecord {
    /// Queue id chosen by the tenant.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Business-rule settings (seconds).
    pub settings: QueueSettings,
    /// How its calls are distributed, and to whom.
    pub routing: QueueRouting,
    /// Epoch ms.
    pub created_at: i64,
    /// Last change, epoch ms.
    pub updated_at: i64,
    /// Bumped on every change (the `ETag`).
    pub version: i64,
}

/// How a queue's calls are distributed (DESIGN.md "Routing").
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct QueueRouting {
    /// The distribution strategy (default `longest_idle`).
    pub strategy: Strategy,
    /// `manual` (clients send `call_routed`; default) or `auto` (the engine distributes).
    pub mode: RoutingMode,
    /// Skills an agent must hold, with minimum levels 0–10.
    pub required_skills: BTreeMap<String, u8>,
    /// The queue's agents with their tiers, in member order.
    pub members: Vec<QueueMember>,
}

/// An agent's membership of a queue (a tier, FreeSWITCH mod_callcenter's term).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QueueMember {
    /// The agent's id.
    pub agent_id: String,
    /// Tier level: lower levels are offered calls first.
    pub level: u32,
    /// Position within the tier: lower first.
    pub position: u32,
    /// Weight for `weighted_random` (0 = never chosen by it).
    pub weight: u32,
}

impl QueueRecord {
    /// The queue as the audit log shows it.
    pub fn audit_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

pub(crate) fn queue_active(tenant_id: TenantId, q: &QueueRecord) -> queue::ActiveModel {
    let s = &q.settings;
    queue::ActiveModel {
        tenant_id: Set(tenant_id.0),
        id: Set(q.id.clone()),
        name: Set(q.name.clone()),
        sla_threshold_s: Set(s.sla_threshold_s as i32),
        ring_timeout_s: Set(s.ring_timeout_s as i32),
        max_no_answer: Set(s.max_no_answer as i32),
        hold_max_s: Set(s.hold_max_s as i32),
        short_call_s: Set(s.short_call_s as i32),
        survey_enabled: Set(s.survey_enabled),
        strategy: Set(q.routing.strategy.as_str().to_owned()),
        routing: Set(q.routing.mode.as_str().to_owned()),
        required_skills: Set(
            serde_json::to_string(&q.routing.required_skills).expect("skills serialise")
        ),
        created_at: Set(q.created_at),
        updated_at: Set(q.updated_at),
        version: Set(q.version),
    }
}

fn queue_from(m: queue::Model) -> QueueRecord {
    let u = |v: i32| v.max(0) as u32;
    let routing = QueueRouting {
        strategy: Strategy::parse(&m.strategy).unwrap_or_default(),
        mode: RoutingMode::parse(&m.routing).unwrap_or_default(),
        required_skills: serde_json::from_str(&m.required_skills).unwrap_or_default(),
        members: Vec::new(),
    };
    QueueRecord {
        routing,
        id: m.id,
        name: m.name,
        settings: QueueSettings {
            sla_threshold_s: u(m.sla_threshold_s),
            ring_timeout_s: u(m.ring_timeout_s),
            max_no_answer: u(m.max_no_answer),
            hold_max_s: u(m.hold_max_s),
            short_call_s: u(m.short_call_s),
            survey_enabled: m.survey_enabled,
        },
        created_at: m.created_at,
        updated_at: m.updated_at,
        version: m.version,
    }
}

impl Store {
    /// One queue. Errors: `NotFound`.
    pub async fn queue(&self, tenant_id: TenantId, id: &str) -> Result<QueueRecord, StoreError> {
        let q = queue::Entity::find_by_id((tenant_id.0, id.to_owned()))
            .one(&self.db)
            .await?
            .map(queue_from)
            .ok_or(StoreError::NotFound)?;
        let mut v = vec![q];
        self.attach_members(tenant_id, &mut v).await?;
        Ok(v.remove(0))
    }

    /// Queues ordered by id, after `after` (cursor), at most `limit`.
    pub async fn queues(
        &self,
        tenant_id: TenantId,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<QueueRecord>, StoreError> {
        let mut q = queue::Entity::find().filter(queue::Column::TenantId.eq(tenant_id.0));
        if let Some(a) = after {
            q = q.filter(queue::Column::Id.gt(a));
        }
        let mut page: Vec<QueueRecord> = q
            .order_by_asc(queue::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(queue_from)
            .collect();
        self.attach_members(tenant_id, &mut page).await?;
        Ok(page)
    }

    /// Reads the members of `queues` (one query per 500 queues).
    async fn attach_members(
        &self,
        tenant_id: TenantId,
        queues: &mut [QueueRecord],
    ) -> Result<(), StoreError> {
        for chunk in queues.chunks_mut(500) {
            let ids: Vec<String> = chunk.iter().map(|q| q.id.clone()).collect();
            let rows = queue_member::Entity::find()
                .filter(queue_member::Column::TenantId.eq(tenant_id.0))
                .filter(queue_member::Column::QueueId.is_in(ids))
                .order_by_asc(queue_member::Column::Level)
                .order_by_asc(queue_member::Column::Position)
                .order_by_asc(queue_member::Column::AgentId)
                .all(&self.db)
                .await?;
            for r in rows {
                if let Some(q) = chunk.iter_mut().find(|q| q.id == r.queue_id) {
                    q.routing.members.push(QueueMember {
                        agent_id: r.agent_id,
                        level: r.level.max(0) as u32,
                        position: r.position.max(0) as u32,
                        weight: r.weight.max(0) as u32,
                    });
                }
            }
        }
        Ok(())
    }

    /// Every queue of the tenant (loaded into the engine).
    pub async fn all_queues(&self, tenant_id: TenantId) -> Result<Vec<QueueRecord>, StoreError> {
        self.queues(tenant_id, None, u64::MAX >> 1).await
    }
}

/// Replaces the members of the queues in `queues` (within the batch's transaction).
pub(crate) async fn write_members<C: ConnectionTrait>(
    db: &C,
    queues: &[(TenantId, &QueueRecord)],
) -> Result<(), StoreError> {
    for (t, q) in queues {
        queue_member::Entity::delete_many()
            .filter(queue_member::Column::TenantId.eq(t.0))
            .filter(queue_member::Column::QueueId.eq(q.id.as_str()))
            .exec(db)
            .await?;
        let rows: Vec<queue_member::ActiveModel> = q
            .routing
            .members
            .iter()
            .map(|m| queue_member::ActiveModel {
                tenant_id: Set(t.0),
                queue_id: Set(q.id.clone()),
                agent_id: Set(m.agent_id.clone()),
                level: Set(m.level as i32),
                position: Set(m.position as i32),
                weight: Set(m.weight as i32),
            })
            .collect();
        if !rows.is_empty() {
            queue_member::Entity::insert_many(rows).exec(db).await?;
        }
    }
    Ok(())
}
