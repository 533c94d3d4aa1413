//! Queues and their business-rule settings. Writes go through the engine ([`crate::WriteBatch`]
//! `queues`); this module reads them.

use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use switchboard_core::QueueSettings;

use switchboard_core::TenantId;

use crate::entity::queue;
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
    /// Epoch ms.
    pub created_at: i64,
    /// Last change, epoch ms.
    pub updated_at: i64,
    /// Bumped on every change (the `ETag`).
    pub version: i64,
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
        created_at: Set(q.created_at),
        updated_at: Set(q.updated_at),
        version: Set(q.version),
    }
}

fn queue_from(m: queue::Model) -> QueueRecord {
    let u = |v: i32| v.max(0) as u32;
    QueueRecord {
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
        queue::Entity::find_by_id((tenant_id.0, id.to_owned()))
            .one(&self.db)
            .await?
            .map(queue_from)
            .ok_or(StoreError::NotFound)
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
        Ok(q.order_by_asc(queue::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(queue_from)
            .collect())
    }

    /// Every queue of the tenant (loaded into the engine).
    pub async fn all_queues(&self, tenant_id: TenantId) -> Result<Vec<QueueRecord>, StoreError> {
        self.queues(tenant_id, None, u64::MAX >> 1).await
    }
}
