//! Queue statistics projection (issue 5 item 9): `queue_stats` holds, per tenant, queue (the
//! call's first queue) and 15-minute UTC bucket of the first queue entry (`bucket_start`, epoch
//! ms), the sums of `switchboard_core::metrics::QueueBucket`. The group-commit writer keeps it
//! in the same transaction as the events (each touched call's contribution after the request
//! minus before), so a report over a year adds up at most 35,040 rows per queue, whatever the
//! number of calls.
//!
//! The primary key leads with (`tenant_id`, `bucket_start`) so that a report's time range is
//! one index range; the writer's upsert targets the same three columns.
//!
//! Back-filled here from the `calls` already stored by one `INSERT … SELECT … GROUP BY` (the
//! same SQL on both backends), with the definitions of the report's per-call query at the time
//! of this migration: a call without a frozen threshold is judged by its queue's threshold now
//! (30 s if the queue is gone).
//!
//! FROZEN once committed: never edit; add a new migration instead.

use sea_orm_migration::prelude::*;

pub(super) struct QueueStats;

impl MigrationName for QueueStats {
    fn name(&self) -> &str {
        "m20261122_000001_queue_stats"
    }
}

#[derive(Iden)]
enum QueueStatsT {
    #[iden = "queue_stats"]
    Table,
    TenantId,
    QueueId,
    BucketStart,
    Offered,
    Answered,
    Abandoned,
    AnsweredWithinSl,
    WaitAnsweredMs,
    WaitAbandonedMs,
    Handled,
    HandleMs,
    MaxWaitMs,
    SlaBreached,
    Review,
}

/// The back-fill: every queued call of `calls`, summed per tenant, first queue and 15-minute
/// bucket of `queued_at` (SQL `%` truncates toward zero: the width is added back so that times
/// before 1970 fall into the bucket below). Each aggregate mirrors `QueueBucket::add`.
const BACKFILL_SQL: &str = r"INSERT INTO queue_stats (tenant_id, queue_id, bucket_start,
    offered, answered, abandoned, answered_within_sl, wait_answered_ms, wait_abandoned_ms,
    handled, handle_ms, max_wait_ms, sla_breached, review)
SELECT c.tenant_id, c.first_queue_id,
    c.queued_at - (((c.queued_at % 900000) + 900000) % 900000),
    CAST(COUNT(*) AS BIGINT),
    CAST(COUNT(c.answered_at) AS BIGINT),
    CAST(COUNT(*) FILTER (WHERE c.answered_at IS NULL AND c.status = 'ended') AS BIGINT),
    CAST(COUNT(*) FILTER (WHERE c.answered_at IS NOT NULL
        AND COALESCE(c.wait_ms, 0) <= COALESCE(c.sla_threshold_s, q.sla_threshold_s, 30) * 1000) AS BIGINT),
    CAST(COALESCE(SUM(COALESCE(c.wait_ms, 0)) FILTER (WHERE c.answered_at IS NOT NULL), 0) AS BIGINT),
    CAST(COALESCE(SUM(COALESCE(c.wait_ms, 0)) FILTER (WHERE c.answered_at IS NULL AND c.status = 'ended'), 0) AS BIGINT),
    CAST(COUNT(*) FILTER (WHERE c.answered_at IS NOT NULL AND c.status = 'ended') AS BIGINT),
    CAST(COALESCE(SUM(c.talk_ms + c.hold_ms) FILTER (WHERE c.answered_at IS NOT NULL AND c.status = 'ended'), 0) AS BIGINT),
    CAST(MAX(COALESCE(c.wait_ms, 0)) FILTER (WHERE c.answered_at IS NOT NULL OR c.status = 'ended') AS BIGINT),
    CAST(COUNT(*) FILTER (WHERE c.flags LIKE '%,sla\_breached,%' ESCAPE '\') AS BIGINT),
    CAST(COUNT(*) FILTER (WHERE c.flags LIKE '%,review,%' ESCAPE '\') AS BIGINT)
FROM calls c
LEFT JOIN queues q ON q.tenant_id = c.tenant_id AND q.id = c.first_queue_id
WHERE c.first_queue_id IS NOT NULL AND c.queued_at IS NOT NULL
GROUP BY c.tenant_id, c.first_queue_id, c.queued_at - (((c.queued_at % 900000) + 900000) % 900000)";

fn big0(c: QueueStatsT) -> ColumnDef {
    ColumnDef::new(c)
        .big_integer()
        .not_null()
        .default(0)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for QueueStats {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        use QueueStatsT as S;
        m.create_table(
            Table::create()
                .table(S::Table)
                .col(ColumnDef::new(S::TenantId).uuid().not_null())
                .col(ColumnDef::new(S::QueueId).string().not_null())
                .col(ColumnDef::new(S::BucketStart).big_integer().not_null())
                .col(big0(S::Offered))
                .col(big0(S::Answered))
                .col(big0(S::Abandoned))
                .col(big0(S::AnsweredWithinSl))
                .col(big0(S::WaitAnsweredMs))
                .col(big0(S::WaitAbandonedMs))
                .col(big0(S::Handled))
                .col(big0(S::HandleMs))
                .col(ColumnDef::new(S::MaxWaitMs).big_integer().null())
                .col(big0(S::SlaBreached))
                .col(big0(S::Review))
                .primary_key(
                    Index::create()
                        .col(S::TenantId)
                        .col(S::BucketStart)
                        .col(S::QueueId),
                )
                .to_owned(),
        )
        .await?;
        m.get_connection().execute_unprepared(BACKFILL_SQL).await?;
        Ok(())
    }
}
