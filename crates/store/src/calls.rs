//! Calls: the projection of each call's state (rebuilt from the event log), read for the API
//! and for reloading live calls into the engine.

use std::collections::HashMap;

use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use switchboard_core::{Call, CallFlag, CallStatus, CallType, EndReason, ExternalCallId, Flags};

use switchboard_core::TenantId;

use crate::entity::{call, call_event};
use crate::{corrupt, Store, StoreError, CHUNK};

/// A call's projection with the sequence number of its last event and its pending timers'
/// deadlines (epoch ms).
#[derive(Debug, Clone, PartialEq)]
pub struct CallRow {
    /// The call's state.
    pub call: Call,
    /// Sequence number of the call's last event.
    pub last_seq: i64,
    /// Pending SLA timer (`sla_threshold_s`).
    pub sla_deadline: Option<i64>,
    /// Pending ring timer (`ring_timeout_s`).
    pub ring_deadline: Option<i64>,
    /// Pending hold timer (`hold_max_s`).
    pub hold_deadline: Option<i64>,
}

/// A call loaded back into the engine, with the idempotency keys of its events
/// `(event_id, seq, status_after)`.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedCall {
    /// The call's projection.
    pub row: CallRow,
    /// `(event_id, seq, status_after)` of each of its events that carried an `event_id`.
    pub event_ids: Vec<(String, i64, String)>,
}

/// Filters of `GET /api/v1/calls`. Times are epoch ms on `initiated_at`, `to` exclusive.
#[derive(Debug, Clone, Default)]
pub struct CallFilter {
    /// Current status.
    pub status: Option<CallStatus>,
    /// Current (or last) queue.
    pub queue_id: Option<String>,
    /// Carries this flag.
    pub flag: Option<CallFlag>,
    /// `initiated_at` at or after this, epoch ms.
    pub from: Option<i64>,
    /// `initiated_at` before this, epoch ms.
    pub to: Option<i64>,
}

/// Position after the last row of a page of calls (newest first): `(initiated_at, id)`.
pub type CallCursor = (i64, Uuid);

pub(crate) fn call_active(tenant_id: TenantId, r: &CallRow) -> call::ActiveModel {
    let c = &r.call;
    call::ActiveModel {
        id: Set(c.id),
        tenant_id: Set(tenant_id.0),
        external_id: Set(c.external_id.as_str().to_owned()),
        call_type: Set(c.call_type.as_str().to_owned()),
        from_party: Set(c.from.clone()),
        to_party: Set(c.to.clone()),
        status: Set(c.status.as_str().to_owned()),
        queue_id: Set(c.queue_id.as_ref().map(|q| q.as_str().to_owned())),
        first_queue_id: Set(c.first_queue_id.as_ref().map(|q| q.as_str().to_owned())),
        agent_id: Set(c.agent_id.as_ref().map(|a| a.as_str().to_owned())),
        priority: Set(c.priority as i32),
        initiated_at: Set(c.initiated_at),
        queued_at: Set(c.queued_at),
        answered_at: Set(c.answered_at),
        ended_at: Set(c.ended_at),
        end_reason: Set(c.end_reason.map(|r| r.as_str().to_owned())),
        wait_ms: Set(c.wait_ms),
        talk_ms: Set(c.talk_ms),
        hold_ms: Set(c.hold_ms),
        flags: Set(c.flags.to_db()),
        state_since: Set(c.state_since),
        last_ts: Set(c.last_ts),
        sla_threshold_s: Set(c.sla_threshold_s.map(|s| s as i32)),
        queue_entered_at: Set(c.queue_entered_at),
        ring_group: Set((!c.ring_group.is_empty())
            .then(|| serde_json::to_string(&c.ring_group).expect("agent ids serialise"))),
        last_seq: Set(r.last_seq),
        sla_deadline: Set(r.sla_deadline),
        ring_deadline: Set(r.ring_deadline),
        hold_deadline: Set(r.hold_deadline),
    }
}

fn call_from(m: call::Model) -> Result<CallRow, StoreError> {
    use switchboard_core::{AgentId, QueueId};
    let qid = |s: Option<String>| -> Result<Option<QueueId>, StoreError> {
        s.map(|s| QueueId::parse(&s).map_err(|_| corrupt("calls.queue_id")))
            .transpose()
    };
    let queued_now = m.queue_id.is_some();
    Ok(CallRow {
        last_seq: m.last_seq,
        sla_deadline: m.sla_deadline,
        ring_deadline: m.ring_deadline,
        hold_deadline: m.hold_deadline,
        call: Call {
            id: m.id,
            external_id: ExternalCallId::parse(&m.external_id)
                .map_err(|_| corrupt("calls.external_id"))?,
            call_type: match m.call_type.as_str() {
                "video" => CallType::Video,
                _ => CallType::Voice,
            },
            from: m.from_party,
            to: m.to_party,
            status: CallStatus::parse(&m.status).ok_or_else(|| corrupt("calls.status"))?,
            queue_id: qid(m.queue_id)?,
            first_queue_id: qid(m.first_queue_id)?,
            agent_id: m
                .agent_id
                .map(|a| AgentId::parse(&a).map_err(|_| corrupt("calls.agent_id")))
                .transpose()?,
            priority: m.priority.max(0) as u32,
            initiated_at: m.initiated_at,
            queued_at: m.queued_at,
            answered_at: m.answered_at,
            ended_at: m.ended_at,
            end_reason: m.end_reason.as_deref().and_then(EndReason::parse),
            wait_ms: m.wait_ms,
            talk_ms: m.talk_ms,
            hold_ms: m.hold_ms,
            flags: Flags::from_db(&m.flags),
            state_since: m.state_since,
            last_ts: m.last_ts,
            sla_threshold_s: m.sla_threshold_s.map(|s| s.max(0) as u32),
            // Calls stored before the column existed: the start of their current state.
            queue_entered_at: m
                .queue_entered_at
                .or(Some(m.state_since).filter(|_| queued_now)),
            ring_group: match m.ring_group {
                Some(j) => serde_json::from_str(&j).map_err(|_| corrupt("calls.ring_group"))?,
                None => Vec::new(),
            },
        },
    })
}

/// `calls.status IN (<every status but ended>)`: a few range seeks on the index
/// `calls_tenant_status_initiated (tenant_id, status, …)`, so reading live calls costs what is
/// live, not the tenant's whole history (`status <> 'ended'` walks every entry).
pub(crate) fn live_predicate() -> sea_orm::sea_query::SimpleExpr {
    call::Column::Status.is_in(
        CallStatus::ALL
            .into_iter()
            .filter(|s| *s != CallStatus::Ended)
            .map(CallStatus::as_str),
    )
}

impl Store {
    /// Calls that have not ended (reloaded into the engine at start).
    pub async fn live_calls(&self, tenant_id: TenantId) -> Result<Vec<LoadedCall>, StoreError> {
        let rows = call::Entity::find()
            .filter(call::Column::TenantId.eq(tenant_id.0))
            .filter(live_predicate())
            .all(&self.db)
            .await?;
        self.with_event_ids(rows).await
    }

    /// How many calls of every tenant have not ended (the live-calls gauge's start value).
    pub async fn live_call_count(&self) -> Result<u64, StoreError> {
        use sea_orm::PaginatorTrait;
        Ok(call::Entity::find()
            .filter(live_predicate())
            .count(&self.db)
            .await?)
    }

    /// The calls among `external_ids` that exist, with their events' idempotency keys.
    pub async fn calls_by_external_ids(
        &self,
        tenant_id: TenantId,
        external_ids: &[&str],
    ) -> Result<Vec<LoadedCall>, StoreError> {
        let mut rows = Vec::new();
        for chunk in external_ids.chunks(CHUNK) {
            rows.extend(
                call::Entity::find()
                    .filter(call::Column::TenantId.eq(tenant_id.0))
                    .filter(call::Column::ExternalId.is_in(chunk.iter().copied()))
                    .all(&self.db)
                    .await?,
            );
        }
        self.with_event_ids(rows).await
    }

    async fn with_event_ids(&self, rows: Vec<call::Model>) -> Result<Vec<LoadedCall>, StoreError> {
        let mut keys: HashMap<Uuid, Vec<(String, i64, String)>> = HashMap::new();
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        for chunk in ids.chunks(CHUNK) {
            let evs: Vec<(Uuid, Option<String>, i64, String)> = call_event::Entity::find()
                .select_only()
                .column(call_event::Column::CallId)
                .column(call_event::Column::EventId)
                .column(call_event::Column::Seq)
                .column(call_event::Column::StatusAfter)
                .filter(call_event::Column::CallId.is_in(chunk.iter().copied()))
                .filter(call_event::Column::EventId.is_not_null())
                .into_tuple()
                .all(&self.db)
                .await?;
            for (call_id, event_id, seq, status) in evs {
                if let Some(eid) = event_id {
                    keys.entry(call_id).or_default().push((eid, seq, status));
                }
            }
        }
        rows.into_iter()
            .map(|m| {
                let event_ids = keys.remove(&m.id).unwrap_or_default();
                Ok(LoadedCall {
                    row: call_from(m)?,
                    event_ids,
                })
            })
            .collect()
    }

    /// A call by Switchboard id or by external id. Errors: `NotFound`.
    pub async fn call(&self, tenant_id: TenantId, id: &str) -> Result<CallRow, StoreError> {
        let mut q = call::Entity::find().filter(call::Column::TenantId.eq(tenant_id.0));
        q = match Uuid::parse_str(id) {
            Ok(u) => q.filter(
                sea_orm::Condition::any()
                    .add(call::Column::Id.eq(u))
                    .add(call::Column::ExternalId.eq(id)),
            ),
            Err(_) => q.filter(call::Column::ExternalId.eq(id)),
        };
        call_from(q.one(&self.db).await?.ok_or(StoreError::NotFound)?)
    }

    /// A page of calls, newest first (by `initiated_at`, then id).
    pub async fn calls(
        &self,
        tenant_id: TenantId,
        f: &CallFilter,
        after: Option<CallCursor>,
        limit: u64,
    ) -> Result<Vec<CallRow>, StoreError> {
        let mut q = call::Entity::find().filter(call::Column::TenantId.eq(tenant_id.0));
        if let Some(s) = f.status {
            q = q.filter(call::Column::Status.eq(s.as_str()));
        }
        if let Some(qid) = &f.queue_id {
            q = q.filter(call::Column::QueueId.eq(qid.as_str()));
        }
        if let Some(flag) = f.flag {
            q = q.filter(call::Column::Flags.like(format!("%,{},%", flag.as_str())));
        }
        if let Some(from) = f.from {
            q = q.filter(call::Column::InitiatedAt.gte(from));
        }
        if let Some(to) = f.to {
            q = q.filter(call::Column::InitiatedAt.lt(to));
        }
        if let Some((at, id)) = after {
            q = q.filter(
                sea_orm::Condition::any()
                    .add(call::Column::InitiatedAt.lt(at))
                    .add(
                        sea_orm::Condition::all()
                            .add(call::Column::InitiatedAt.eq(at))
                            .add(call::Column::Id.lt(id)),
                    ),
            );
        }
        q.order_by_desc(call::Column::InitiatedAt)
            .order_by_desc(call::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(call_from)
            .collect()
    }
}
