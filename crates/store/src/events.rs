//! The event log (`call_events`): the source of truth, append-only.

use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use switchboard_core::TenantId;

use crate::entity::call_event;
use crate::{Store, StoreError};

/// One stored event (a `call_events` row).
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    /// The tenant's stream sequence number.
    pub seq: i64,
    /// Switchboard's call id (UUIDv7).
    pub call_id: Uuid,
    /// The client's call id.
    pub external_call_id: String,
    /// The client's idempotency key (unique within the call), if any.
    pub event_id: Option<String>,
    /// Wire `type` (`call_answered`, `sla_breached`, …).
    pub event_type: String,
    /// Event time, epoch ms.
    pub ts: i64,
    /// Acceptance time (wall clock), epoch ms.
    pub received_at: i64,
    /// The call's status after the event, wire name.
    pub status_after: String,
    /// Payload, JSON text.
    pub data: String,
}

pub(crate) fn event_active(tenant_id: TenantId, e: &EventRecord) -> call_event::ActiveModel {
    call_event::ActiveModel {
        tenant_id: Set(tenant_id.0),
        seq: Set(e.seq),
        call_id: Set(e.call_id),
        external_call_id: Set(e.external_call_id.clone()),
        event_id: Set(e.event_id.clone()),
        event_type: Set(e.event_type.clone()),
        ts: Set(e.ts),
        received_at: Set(e.received_at),
        status_after: Set(e.status_after.clone()),
        data: Set(e.data.clone()),
    }
}

fn event_from(m: call_event::Model) -> EventRecord {
    EventRecord {
        seq: m.seq,
        call_id: m.call_id,
        external_call_id: m.external_call_id,
        event_id: m.event_id,
        event_type: m.event_type,
        ts: m.ts,
        received_at: m.received_at,
        status_after: m.status_after,
        data: m.data,
    }
}

impl Store {
    /// Events of one call in order, after `after_seq`, at most `limit`.
    pub async fn call_events(
        &self,
        tenant_id: TenantId,
        call_id: Uuid,
        after_seq: Option<i64>,
        limit: u64,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let mut q = call_event::Entity::find()
            .filter(call_event::Column::TenantId.eq(tenant_id.0))
            .filter(call_event::Column::CallId.eq(call_id));
        if let Some(s) = after_seq {
            q = q.filter(call_event::Column::Seq.gt(s));
        }
        Ok(q.order_by_asc(call_event::Column::Seq)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(event_from)
            .collect())
    }

    /// The tenant's events with `seq > since`, in order, at most `limit` (stream catch-up).
    pub async fn events_since(
        &self,
        tenant_id: TenantId,
        since: i64,
        limit: u64,
    ) -> Result<Vec<EventRecord>, StoreError> {
        Ok(call_event::Entity::find()
            .filter(call_event::Column::TenantId.eq(tenant_id.0))
            .filter(call_event::Column::Seq.gt(since))
            .order_by_asc(call_event::Column::Seq)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(event_from)
            .collect())
    }
}
