//! Queue reports: what the metrics of `switchboard_core::metrics` need of each call.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use switchboard_core::metrics::CallFacts;
use switchboard_core::{CallFlag, CallStatus, Flags};

use crate::entity::call;
use crate::{Store, StoreError};

impl Store {
    /// What the queue report needs of every call whose first queue entry is in `[from, to)`.
    pub async fn report_facts(
        &self,
        tenant_id: Uuid,
        from: i64,
        to: i64,
        queue_id: Option<&str>,
    ) -> Result<Vec<CallFacts>, StoreError> {
        type Row = (
            Option<String>,
            Option<i64>,
            Option<i64>,
            String,
            Option<i64>,
            i64,
            i64,
            String,
        );
        let mut q = call::Entity::find()
            .select_only()
            .column(call::Column::FirstQueueId)
            .column(call::Column::QueuedAt)
            .column(call::Column::AnsweredAt)
            .column(call::Column::Status)
            .column(call::Column::WaitMs)
            .column(call::Column::TalkMs)
            .column(call::Column::HoldMs)
            .column(call::Column::Flags)
            .filter(call::Column::TenantId.eq(tenant_id))
            .filter(call::Column::QueuedAt.gte(from))
            .filter(call::Column::QueuedAt.lt(to));
        if let Some(qid) = queue_id {
            q = q.filter(call::Column::FirstQueueId.eq(qid));
        }
        let rows: Vec<Row> = q.into_tuple().all(&self.db).await?;
        Ok(rows
            .into_iter()
            .filter_map(
                |(queue, queued_at, answered_at, status, wait, talk, hold, flags)| {
                    let flags = Flags::from_db(&flags);
                    Some(CallFacts {
                        queue_id: queue?,
                        queued_at: queued_at?,
                        answered: answered_at.is_some(),
                        ended: status == CallStatus::Ended.as_str(),
                        wait_ms: wait,
                        handle_ms: talk + hold,
                        sla_breached: flags.contains(CallFlag::SlaBreached),
                        review: flags.contains(CallFlag::Review),
                    })
                },
            )
            .collect())
    }
}
