//! Benchmark helper (not a test): fills a Switchboard database with synthetic ended calls for
//! the queue-report benchmark (`scripts/bench-report`, docs/benchmarks.md).
//!
//! ```sh
//! cargo run --release -p switchboard-store --example fill_calls -- \
//!     <database URL> <tenant id> [calls = 1000000] [queues = q0,q1,q2,q3] [year = 2025]
//! ```
//!
//! The calls' first queue entries are spread uniformly over the given UTC year, in the given
//! queues (which should exist, so the report's fallback join has rows to read). About 85 % are
//! answered and 15 % abandoned; waits up to 3 min, talk up to 15 min; 10 % carry no frozen SLA
//! threshold (rows from before it was recorded). Rows go straight into `calls` through the
//! store's SeaORM entity, 400 per statement and 50,000 per transaction; the database must
//! already be migrated (start `switchboard serve` on it once). Deterministic: the same
//! arguments give the same rows, with fresh call ids.
//!
//! The statistics projection (`queue_stats`) is kept as the engine's writer keeps it, in the
//! same transaction as the rows: each call's contribution
//! (`switchboard_core::metrics::contribution`, by its frozen threshold, else its queue's
//! current one) goes in as a `StatsDelta` through the writer's own upsert
//! (`switchboard_store::append::write_batches`), merged per 15-minute bucket.

use std::time::Instant;

use std::collections::HashMap;

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, Database, DatabaseBackend, EntityTrait,
    QueryFilter, TransactionTrait,
};
use uuid::Uuid;

use switchboard_core::metrics::{contribution, CallFacts, StatsDelta};
use switchboard_core::QueueSettings;
use switchboard_store::append::write_batches;
use switchboard_store::entity::{call, queue};
use switchboard_store::WriteBatch;

/// Rows per INSERT statement (28 columns: under SQLite's bound-parameter limit).
const ROWS_PER_INSERT: usize = 400;
/// Rows per transaction.
const ROWS_PER_TX: usize = 50_000;

/// xorshift64*: fast and deterministic; statistical quality is beside the point here.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Epoch ms of 00:00Z on 1 January of `year` (proleptic Gregorian).
fn year_start_ms(year: i64) -> i64 {
    let days: i64 = (1970..year)
        .map(|y| {
            if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 {
                366
            } else {
                365
            }
        })
        .sum();
    days * 86_400_000
}

/// A call row and what the report needs of it.
fn row(
    rng: &mut Rng,
    tenant_id: Uuid,
    n: u64,
    queue: &str,
    queued_at: i64,
) -> (call::ActiveModel, CallFacts) {
    let answered = rng.below(100) < 85;
    let wait_ms = rng.below(180_000) as i64;
    let talk_ms = if answered {
        rng.below(900_000) as i64
    } else {
        0
    };
    let hold_ms = if answered && rng.below(10) == 0 {
        rng.below(120_000) as i64
    } else {
        0
    };
    let threshold = [20, 30, 30, 60][rng.below(4) as usize];
    let frozen = rng.below(10) != 0;
    let mut flags = Vec::new();
    if wait_ms > threshold * 1000 {
        flags.push("sla_breached");
        if answered {
            flags.push("long_wait");
        }
    }
    if answered && talk_ms < 10_000 {
        flags.push("review");
    }
    let flags = if flags.is_empty() {
        String::new()
    } else {
        format!(",{},", flags.join(","))
    };
    let ended_at = queued_at + wait_ms + talk_ms + hold_ms;
    let facts = CallFacts {
        queue_id: queue.to_owned(),
        queued_at,
        answered,
        ended: true,
        wait_ms: Some(wait_ms),
        handle_ms: talk_ms + hold_ms,
        sla_threshold_s: frozen.then_some(threshold as u32),
        sla_breached: flags.contains(",sla_breached,"),
        review: flags.contains(",review,"),
    };
    let row = call::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(tenant_id),
        external_id: Set(format!("bench-{n:08}")),
        call_type: Set("voice".into()),
        from_party: Set(Some(format!("+1555{:07}", rng.below(10_000_000)))),
        to_party: Set(Some("+18005550100".into())),
        status: Set("ended".into()),
        queue_id: Set(Some(queue.to_owned())),
        first_queue_id: Set(Some(queue.to_owned())),
        agent_id: Set(answered.then(|| format!("agent-{}", rng.below(200)))),
        priority: Set(0),
        initiated_at: Set(queued_at - 5_000),
        queued_at: Set(Some(queued_at)),
        answered_at: Set(answered.then_some(queued_at + wait_ms)),
        ended_at: Set(Some(ended_at)),
        end_reason: Set(Some(
            if answered { "completed" } else { "abandoned" }.into(),
        )),
        wait_ms: Set(Some(wait_ms)),
        talk_ms: Set(talk_ms),
        hold_ms: Set(hold_ms),
        flags: Set(flags),
        state_since: Set(ended_at),
        last_ts: Set(ended_at),
        last_seq: Set(n as i64 * 6 + 6),
        sla_deadline: Set(None),
        ring_deadline: Set(None),
        hold_deadline: Set(None),
        sla_threshold_s: Set(frozen.then_some(threshold as i32)),
        queue_entered_at: Set(Some(queued_at)),
        ring_group: Set(None),
    };
    (row, facts)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(url), Some(tenant)) = (args.first(), args.get(1)) else {
        return Err(
            "usage: fill_calls <database URL> <tenant id> [calls] [queues,comma-separated] [year]"
                .into(),
        );
    };
    let tenant_id: Uuid = tenant.parse()?;
    let total: u64 = args.get(2).map_or(Ok(1_000_000), |s| s.parse())?;
    let queues: Vec<String> = args
        .get(3)
        .map_or("q0,q1,q2,q3", String::as_str)
        .split(',')
        .map(str::to_owned)
        .collect();
    let year: i64 = args.get(4).map_or(Ok(2025), |s| s.parse())?;
    let start = year_start_ms(year);
    let span = (year_start_ms(year + 1) - start) as u64;

    let db = Database::connect(url.as_str()).await?;
    // The queues' current thresholds: the fallback for calls without a frozen one.
    let thresholds: HashMap<String, u32> = queue::Entity::find()
        .filter(queue::Column::TenantId.eq(tenant_id))
        .all(&db)
        .await?
        .into_iter()
        .map(|q| (q.id, q.sla_threshold_s as u32))
        .collect();
    let fallback = |q: &str| {
        thresholds
            .get(q)
            .copied()
            .unwrap_or(QueueSettings::default().sla_threshold_s)
    };
    let began = Instant::now();
    let mut rng = Rng(0x5EED_0000_0001);
    let mut n = 0u64;
    while n < total {
        let tx = db.begin().await?;
        let end = (n + ROWS_PER_TX as u64).min(total);
        let mut stats = Vec::new();
        while n < end {
            let batch_end = (n + ROWS_PER_INSERT as u64).min(end);
            let rows: Vec<call::ActiveModel> = (n..batch_end)
                .map(|i| {
                    // Spread evenly over the year, in order (as calls arrive), with jitter.
                    let at = start + (i * span / total) as i64 + rng.below(1_000) as i64;
                    let q = &queues[rng.below(queues.len() as u64) as usize];
                    let (row, facts) = row(&mut rng, tenant_id, i, q, at);
                    let b = contribution(&facts, fallback(q));
                    stats.extend(StatsDelta::between(None, Some(&b)));
                    row
                })
                .collect();
            call::Entity::insert_many(rows).exec(&tx).await?;
            n = batch_end;
        }
        let batch = WriteBatch {
            stats: StatsDelta::merged(stats),
            ..WriteBatch::new(switchboard_core::TenantId(tenant_id))
        };
        write_batches(&tx, &[&batch]).await?;
        tx.commit().await?;
        eprint!("\r{n} calls");
    }
    eprintln!(" inserted in {:.1} s", began.elapsed().as_secs_f64());
    // What a running server would have by now: the WAL copied into the database file (the
    // server checkpoints in the background), PostgreSQL's autovacuum statistics.
    match db.get_database_backend() {
        DatabaseBackend::Sqlite => {
            db.execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)")
                .await?;
        }
        _ => {
            db.execute_unprepared("VACUUM ANALYZE calls").await?;
            db.execute_unprepared("VACUUM ANALYZE queue_stats").await?;
        }
    }
    eprintln!("ready after {:.1} s", began.elapsed().as_secs_f64());
    Ok(())
}
