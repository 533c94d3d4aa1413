//! Supervisor alerts (`sla_breached`, `long_wait`, `long_hold`), each also an event.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use switchboard_core::TenantId;

use crate::entity::alert;
use crate::{Store, StoreError};

/// One stored alert (an `alerts` row; `seq` is its event's).
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRecord {
    /// Sequence number of the alert's event in the tenant's stream.
    pub seq: i64,
    /// Switchboard's call id (UUIDv7).
    pub call_id: Uuid,
    /// The client's call id.
    pub external_call_id: String,
    /// The queue the call was in when the rule fired, if any.
    pub queue_id: Option<String>,
    /// `sla_breached`, `long_wait` or `long_hold`.
    pub alert_type: String,
    /// Epoch ms.
    pub ts: i64,
    /// Payload, JSON text.
    pub data: String,
}

/// Filters of `GET /api/v1/alerts`. Times are epoch ms on the alert time, `to` exclusive.
#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    /// `sla_breached`, `long_wait` or `long_hold`.
    pub alert_type: Option<String>,
    /// Alert time at or after this, epoch ms.
    pub from: Option<i64>,
    /// Alert time before this, epoch ms.
    pub to: Option<i64>,
}

impl Store {
    /// Alerts, newest first, after the cursor `after_seq`, at most `limit`.
    pub async fn alerts(
        &self,
        tenant_id: TenantId,
        f: &AlertFilter,
        after_seq: Option<i64>,
        limit: u64,
    ) -> Result<Vec<AlertRecord>, StoreError> {
        let mut q = alert::Entity::find().filter(alert::Column::TenantId.eq(tenant_id.0));
        if let Some(t) = &f.alert_type {
            q = q.filter(alert::Column::AlertType.eq(t.as_str()));
        }
        if let Some(from) = f.from {
            q = q.filter(alert::Column::Ts.gte(from));
        }
        if let Some(to) = f.to {
            q = q.filter(alert::Column::Ts.lt(to));
        }
        if let Some(s) = after_seq {
            q = q.filter(alert::Column::Seq.lt(s));
        }
        Ok(q.order_by_desc(alert::Column::Seq)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|m| AlertRecord {
                seq: m.seq,
                call_id: m.call_id,
                external_call_id: m.external_call_id,
                queue_id: m.queue_id,
                alert_type: m.alert_type,
                ts: m.ts,
                data: m.data,
            })
            .collect())
    }
}
