//! Queue reports: the per-interval, per-queue sums of `switchboard_core::metrics::QueueBucket`,
//! computed in the database by one `GROUP BY` query, so that answering a report costs memory in
//! proportion to its rows (intervals × queues), not to its calls.
//!
//! Two sources, the same sums:
//! - the statistics projection `queue_stats` (15-minute buckets kept by the writer,
//!   [`Store::report_buckets_from_stats`]): at most 35,040 rows per queue and year, whatever the
//!   number of calls. Used whenever `from` and `to` fall on 15-minute boundaries, which every
//!   `day`, `hour` and `15m` bucket does;
//! - the calls themselves ([`Store::report_buckets_from_calls`]): for any other range, whose
//!   first and last intervals are cut inside a 15-minute bucket.
//!
//! The SQL is the same text on SQLite and PostgreSQL (only the placeholders differ, written by
//! sea-query). Each sum mirrors `QueueBucket::add`, the reference definition in core; the
//! server's oracle test (the Anonymous Bank trace) and this crate's `tests/reports.rs` (random
//! calls, and engine-made calls against the projection, both backends) check that they agree.

use sea_orm::sea_query::{Alias, Expr, JoinType, Query, SelectStatement, SimpleExpr};
use sea_orm::{ConnectionTrait, FromQueryResult};

use switchboard_core::metrics::{Interval, QueueBucket, STATS_BUCKET_MS};
use switchboard_core::{CallFlag, CallStatus, QueueSettings};

use switchboard_core::TenantId;

use crate::entity::{call, queue, queue_stat};
use crate::{corrupt, Store, StoreError};

/// One row of the `GROUP BY` query: every aggregate is cast to `BIGINT` so both backends
/// answer `i64` (PostgreSQL's `SUM(bigint)` is `numeric`).
#[derive(Debug, FromQueryResult)]
struct BucketRow {
    interval_start: i64,
    first_queue: String,
    offered: i64,
    answered: i64,
    abandoned: i64,
    answered_within_sl: i64,
    wait_answered_ms: i64,
    wait_abandoned_ms: i64,
    handled: i64,
    handle_ms: i64,
    max_wait_ms: Option<i64>,
    sla_breached: i64,
    review: i64,
}

/// `LIKE` pattern matching a flag in the stored `,flag1,flag2,` form (`Flags::to_db`), with
/// `_` escaped (it is a `LIKE` wildcard).
fn flag_like(f: CallFlag) -> String {
    format!("'%,{},%' ESCAPE '\\'", f.as_str().replace('_', "\\_"))
}

/// The aggregate columns `(alias, SQL)`, each the database twin of one line of
/// `QueueBucket::add`. `default_threshold_s` applies to calls whose queue no longer exists and
/// that carry no frozen threshold. Aggregates use `FILTER (WHERE …)` (SQLite ≥ 3.30,
/// PostgreSQL ≥ 9.4), measured faster than `SUM(CASE …)` on both; a `SUM` over no row is NULL,
/// hence the outer `COALESCE`.
fn aggregates(default_threshold_s: u32) -> Vec<(&'static str, String)> {
    let answered = "c.answered_at IS NOT NULL";
    let ended = format!("c.status = '{}'", CallStatus::Ended.as_str());
    let wait = "COALESCE(c.wait_ms, 0)";
    let count = |cond: &str| format!("COUNT(*) FILTER (WHERE {cond})");
    let sum = |x: &str, cond: &str| format!("COALESCE(SUM({x}) FILTER (WHERE {cond}), 0)");
    // The threshold frozen on the call at queue entry; the queue's current one for calls
    // stored before thresholds were frozen (docs/metrics.md "Thresholds and timers").
    let threshold_ms =
        format!("COALESCE(c.sla_threshold_s, q.sla_threshold_s, {default_threshold_s}) * 1000");
    let abandoned = format!("c.answered_at IS NULL AND {ended}");
    let handled = format!("{answered} AND {ended}");
    vec![
        ("offered", "COUNT(*)".to_owned()),
        ("answered", "COUNT(c.answered_at)".to_owned()),
        ("abandoned", count(&abandoned)),
        (
            "answered_within_sl",
            count(&format!("{answered} AND {wait} <= {threshold_ms}")),
        ),
        ("wait_answered_ms", sum(wait, answered)),
        ("wait_abandoned_ms", sum(wait, &abandoned)),
        ("handled", count(&handled)),
        ("handle_ms", sum("c.talk_ms + c.hold_ms", &handled)),
        // Calls still waiting or ringing have no resolved wait: not counted; NULL if none.
        (
            "max_wait_ms",
            format!("MAX({wait}) FILTER (WHERE {answered} OR {ended})"),
        ),
        (
            "sla_breached",
            count(&format!(
                "c.flags LIKE {}",
                flag_like(CallFlag::SlaBreached)
            )),
        ),
        (
            "review",
            count(&format!("c.flags LIKE {}", flag_like(CallFlag::Review))),
        ),
    ]
}

fn count_u64(n: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(n).map_err(|_| corrupt(what))
}

/// SQL of the start of the `interval` bucket holding `col` (epoch ms). SQL `%` truncates toward
/// zero on both backends: the width is added back so that times before 1970 fall into the
/// bucket below (as `Interval::floor`, `rem_euclid`).
fn bucket_sql(col: &str, interval: Interval) -> String {
    let w = interval.width_ms();
    format!("{col} - ((({col} % {w}) + {w}) % {w})")
}

impl Store {
    /// The report's sums per interval and queue for the calls whose first queue entry is in
    /// `[from, to)` (epoch ms), optionally of one queue. Read from the statistics projection
    /// when `from` and `to` are multiples of 15 minutes, else from the calls (see the module
    /// doc). Buckets come in no particular order; turn them into rows with
    /// `switchboard_core::metrics::report_rows`.
    ///
    /// Memory: one `QueueBucket` per interval and queue with calls, whatever the number of calls.
    pub async fn report_buckets(
        &self,
        tenant_id: TenantId,
        from: i64,
        to: i64,
        interval: Interval,
        queue_id: Option<&str>,
    ) -> Result<Vec<QueueBucket>, StoreError> {
        if from.rem_euclid(STATS_BUCKET_MS) == 0 && to.rem_euclid(STATS_BUCKET_MS) == 0 {
            self.report_buckets_from_stats(tenant_id, from, to, interval, queue_id)
                .await
        } else {
            self.report_buckets_from_calls(tenant_id, from, to, interval, queue_id)
                .await
        }
    }

    /// [`Store::report_buckets`] from the statistics projection: sums the 15-minute
    /// `queue_stats` rows starting in `[from, to)` into `interval` buckets, one `GROUP BY` over
    /// the primary key's range (tenant, `bucket_start`). Exact only when `from` and `to` are
    /// multiples of 15 minutes (a row is then wholly inside or outside the range) and `interval`
    /// is at least 15 minutes wide, which every [`Interval`] is.
    pub async fn report_buckets_from_stats(
        &self,
        tenant_id: TenantId,
        from: i64,
        to: i64,
        interval: Interval,
        queue_id: Option<&str>,
    ) -> Result<Vec<QueueBucket>, StoreError> {
        let bucket = bucket_sql("s.bucket_start", interval);
        let s = Alias::new("s");
        let mut q = grouped_select(&bucket, "s.queue_id");
        for col in [
            "offered",
            "answered",
            "abandoned",
            "answered_within_sl",
            "wait_answered_ms",
            "wait_abandoned_ms",
            "handled",
            "handle_ms",
            "sla_breached",
            "review",
        ] {
            q.expr_as(
                Expr::cust(format!("CAST(SUM(s.{col}) AS BIGINT)")),
                Alias::new(col),
            );
        }
        q.expr_as(
            Expr::cust("CAST(MAX(s.max_wait_ms) AS BIGINT)"),
            Alias::new("max_wait_ms"),
        )
        .from_as(queue_stat::Entity, s.clone())
        .and_where(Expr::col((s.clone(), queue_stat::Column::TenantId)).eq(tenant_id.0))
        .and_where(Expr::col((s.clone(), queue_stat::Column::BucketStart)).gte(from))
        .and_where(Expr::col((s.clone(), queue_stat::Column::BucketStart)).lt(to));
        if let Some(qid) = queue_id {
            q.and_where(Expr::col((s.clone(), queue_stat::Column::QueueId)).eq(qid));
        }
        self.run_grouped(q, bucket, "s.queue_id").await
    }

    /// [`Store::report_buckets`] from the calls: one `GROUP BY` query over
    /// `calls_tenant_queued` (tenant, `queued_at`), left-joined to `queues` for the current
    /// threshold of calls that carry no frozen one. Exact for any range.
    pub async fn report_buckets_from_calls(
        &self,
        tenant_id: TenantId,
        from: i64,
        to: i64,
        interval: Interval,
        queue_id: Option<&str>,
    ) -> Result<Vec<QueueBucket>, StoreError> {
        let bucket = bucket_sql("c.queued_at", interval);
        let c = Alias::new("c");
        let mut q = grouped_select(&bucket, "c.first_queue_id");
        for (alias, sql) in aggregates(QueueSettings::default().sla_threshold_s) {
            q.expr_as(
                Expr::cust(format!("CAST({sql} AS BIGINT)")),
                Alias::new(alias),
            );
        }
        q.from_as(call::Entity, c.clone())
            .join_as(
                JoinType::LeftJoin,
                queue::Entity,
                Alias::new("q"),
                Expr::cust("q.tenant_id = c.tenant_id AND q.id = c.first_queue_id"),
            )
            .and_where(Expr::col((c.clone(), call::Column::TenantId)).eq(tenant_id.0))
            .and_where(Expr::col((c.clone(), call::Column::QueuedAt)).gte(from))
            .and_where(Expr::col((c.clone(), call::Column::QueuedAt)).lt(to))
            .and_where(Expr::col((c.clone(), call::Column::FirstQueueId)).is_not_null());
        if let Some(qid) = queue_id {
            q.and_where(Expr::col((c.clone(), call::Column::FirstQueueId)).eq(qid));
        }
        self.run_grouped(q, bucket, "c.first_queue_id").await
    }

    /// Groups `q` by (`bucket`, `queue`), runs it and reads its rows as buckets.
    async fn run_grouped(
        &self,
        mut q: SelectStatement,
        bucket: String,
        queue: &str,
    ) -> Result<Vec<QueueBucket>, StoreError> {
        let group: Vec<SimpleExpr> = vec![Expr::cust(bucket), Expr::cust(queue)];
        q.add_group_by(group);
        let stmt = self.db.get_database_backend().build(&q);
        let rows = BucketRow::find_by_statement(stmt).all(&self.db).await?;
        rows.into_iter().map(BucketRow::into_bucket).collect()
    }
}

/// A report query's first two columns: the interval bucket and the queue, named as
/// [`BucketRow`] reads them.
fn grouped_select(bucket: &str, queue: &str) -> SelectStatement {
    let mut q = Query::select();
    q.expr_as(Expr::cust(bucket.to_owned()), Alias::new("interval_start"))
        .expr_as(Expr::cust(queue.to_owned()), Alias::new("first_queue"));
    q
}

impl BucketRow {
    fn into_bucket(self) -> Result<QueueBucket, StoreError> {
        let r = self;
        Ok(QueueBucket {
            interval_start: r.interval_start,
            queue_id: r.first_queue,
            offered: count_u64(r.offered, "report offered")?,
            answered: count_u64(r.answered, "report answered")?,
            abandoned: count_u64(r.abandoned, "report abandoned")?,
            answered_within_sl: count_u64(r.answered_within_sl, "report within SL")?,
            wait_answered_ms: r.wait_answered_ms,
            wait_abandoned_ms: r.wait_abandoned_ms,
            handled: count_u64(r.handled, "report handled")?,
            handle_ms: r.handle_ms,
            max_wait_ms: r.max_wait_ms,
            sla_breached: count_u64(r.sla_breached, "report sla_breached")?,
            review: count_u64(r.review, "report review")?,
        })
    }
}
