//! The database's `GROUP BY`s against the reference definition in core
//! (`switchboard_core::metrics::queue_report`) over the same random calls: every interval, with
//! and without a queue filter, times before and after 1970, frozen and missing thresholds,
//! another tenant's calls and never-queued calls.
//!
//! - the per-call query (`Store::report_buckets_from_calls`), for any range;
//! - the statistics projection as the `queue_stats` migration back-fills it from the calls
//!   already stored (`Store::report_buckets_from_stats`), for ranges on 15-minute boundaries,
//!   and `Store::report_buckets` choosing between the two.
//!
//! That the writer keeps the projection equal to the per-call query through any history is
//! checked with the real engine in `crates/engine/tests/stats.rs`.
//!
//! SQLite by default; PostgreSQL (a fresh database on that server) when `TEST_DATABASE_URL` is
//! set.

use std::collections::HashMap;

use sea_orm::{
    ActiveValue::{NotSet, Set},
    Database, DatabaseConnection, EntityTrait,
};
use sea_orm_migration::MigratorTrait;
use uuid::Uuid;

use switchboard_core::metrics::{queue_report, report_rows, CallFacts, Interval};
use switchboard_store::entity::{call, queue, queue_stat};
use switchboard_store::migrations::Migrator;
use switchboard_store::Store;

/// A fresh database URL and, for SQLite, the file to remove afterwards.
async fn fresh_db() -> (String, Option<std::path::PathBuf>) {
    let name = format!("sb_test_{}", Uuid::new_v4().simple());
    match std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    {
        Some(admin) => {
            let conn = Database::connect(&admin)
                .await
                .unwrap_or_else(|e| panic!("TEST_DATABASE_URL={admin} is unreachable: {e}"));
            sea_orm::ConnectionTrait::execute_unprepared(&conn, &format!("CREATE DATABASE {name}"))
                .await
                .expect("create test database");
            let (prefix, _) = admin
                .rsplit_once('/')
                .expect("TEST_DATABASE_URL must end with /<database>");
            (format!("{prefix}/{name}"), None)
        }
        None => {
            let path = std::env::temp_dir().join(format!("{name}.db"));
            (format!("sqlite://{}", path.display()), Some(path))
        }
    }
}

/// xorshift64*: deterministic, so a failure reproduces.
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
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const DAY: i64 = 86_400_000;

fn queue_row(tenant_id: Uuid, id: &str, sla_threshold_s: i32) -> queue::ActiveModel {
    queue::ActiveModel {
        tenant_id: Set(tenant_id),
        id: Set(id.into()),
        name: Set(id.into()),
        sla_threshold_s: Set(sla_threshold_s),
        // Columns of later migrations: left to their defaults (the upgrade test inserts into
        // an older schema).
        strategy: NotSet,
        routing: NotSet,
        required_skills: NotSet,
        ring_timeout_s: Set(15),
        max_no_answer: Set(0),
        hold_max_s: Set(60),
        short_call_s: Set(10),
        survey_enabled: Set(false),
        created_at: Set(0),
        updated_at: Set(0),
        version: Set(1),
    }
}

/// A random call row of `tenant_id`, and its facts if it was queued.
fn random_call(rng: &mut Rng, tenant_id: Uuid, n: u64) -> (call::ActiveModel, Option<CallFacts>) {
    let queues = ["a", "b", "gone"];
    let queue_id = queues[rng.below(3) as usize].to_owned();
    let queued = !rng.chance(5);
    // From 3 days before the epoch to 5 days after it, at any millisecond.
    let queued_at = rng.below((8 * DAY) as u64) as i64 - 3 * DAY;
    let status = [
        "waiting", "ringing", "active", "on_hold", "ended", "ended", "ended",
    ][rng.below(7) as usize];
    let ended = status == "ended";
    let answered = matches!(status, "active" | "on_hold") || (ended && rng.chance(70));
    let wait_ms = (answered || ended).then(|| rng.below(90_000) as i64);
    // Exactly on a threshold now and then.
    let wait_ms = wait_ms.map(|w| if rng.chance(10) { 30_000 } else { w });
    let talk_ms = if answered {
        rng.below(600_000) as i64
    } else {
        0
    };
    let hold_ms = if answered && rng.chance(30) {
        rng.below(120_000) as i64
    } else {
        0
    };
    let sla_threshold_s = [None, Some(10u32), Some(30), Some(60)][rng.below(4) as usize];
    let mut flags = Vec::new();
    for f in [
        "out_of_order",
        "sla_breached",
        "long_wait",
        "review",
        "long_hold",
    ] {
        if rng.chance(25) {
            flags.push(f);
        }
    }
    let flags = if flags.is_empty() {
        String::new()
    } else {
        format!(",{},", flags.join(","))
    };
    let facts = queued.then(|| CallFacts {
        queue_id: queue_id.clone(),
        queued_at,
        answered,
        ended,
        wait_ms,
        handle_ms: talk_ms + hold_ms,
        sla_threshold_s,
        sla_breached: flags.contains(",sla_breached,"),
        review: flags.contains(",review,"),
    });
    let row = call::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(tenant_id),
        external_id: Set(format!("c{n}")),
        call_type: Set("voice".into()),
        from_party: Set(None),
        to_party: Set(None),
        status: Set(status.into()),
        queue_id: Set(queued.then(|| queue_id.clone())),
        first_queue_id: Set(queued.then_some(queue_id)),
        agent_id: Set(None),
        priority: Set(0),
        initiated_at: Set(queued_at - 1_000),
        queued_at: Set(queued.then_some(queued_at)),
        answered_at: Set(answered.then(|| queued_at + wait_ms.unwrap_or(0))),
        ended_at: Set(ended.then_some(queued_at + 1_000_000)),
        end_reason: Set(None),
        wait_ms: Set(if queued { wait_ms } else { None }),
        talk_ms: Set(talk_ms),
        hold_ms: Set(hold_ms),
        flags: Set(flags),
        state_since: Set(queued_at),
        last_ts: Set(queued_at),
        last_seq: Set(1),
        sla_deadline: Set(None),
        ring_deadline: Set(None),
        hold_deadline: Set(None),
        sla_threshold_s: Set(sla_threshold_s.map(|t| t as i32)),
        queue_entered_at: NotSet,
        ring_group: NotSet,
    };
    (row, facts)
}

async fn insert(db: &DatabaseConnection, rows: Vec<call::ActiveModel>) {
    for chunk in rows.chunks(200) {
        call::Entity::insert_many(chunk.to_vec())
            .exec(db)
            .await
            .expect("insert calls");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_sums_equal_the_reference_definition() {
    let (url, file) = fresh_db().await;
    let store = Store::connect(&url).await.expect("connect");
    let db = Database::connect(&url).await.expect("second connection");
    let (tenant, other) = (Uuid::now_v7(), Uuid::now_v7());
    // Queue "gone" has no row: its calls without a frozen threshold fall back to 30 s.
    let thresholds: HashMap<&str, u32> = [("a", 20), ("b", 45)].into();
    for t in [tenant, other] {
        queue::Entity::insert_many(vec![queue_row(t, "a", 20), queue_row(t, "b", 45)])
            .exec(&db)
            .await
            .expect("insert queues");
    }
    let mut rng = Rng(0x5EED_2026_1121);
    let mut rows = Vec::new();
    let mut facts = Vec::new();
    for n in 0..3_000 {
        let t = if n % 5 == 0 { other } else { tenant };
        let (row, f) = random_call(&mut rng, t, n);
        rows.push(row);
        if t == tenant {
            facts.extend(f);
        }
    }
    insert(&db, rows).await;

    let ranges = [
        (-3 * DAY, 5 * DAY),
        // Cuts inside buckets on both sides, across the epoch.
        (-DAY - 1_234_567, 2 * DAY + 7_654_321),
        (0, 1),
    ];
    for interval in [Interval::Day, Interval::Hour, Interval::Min15] {
        for (from, to) in ranges {
            for queue_id in [None, Some("a"), Some("gone"), Some("none")] {
                let expected = queue_report(
                    facts
                        .iter()
                        .filter(|f| (from..to).contains(&f.queued_at))
                        .filter(|f| queue_id.is_none_or(|q| f.queue_id == q))
                        .cloned(),
                    interval,
                    |q| thresholds.get(q).copied().unwrap_or(30),
                );
                let buckets = store
                    .report_buckets_from_calls(
                        switchboard_core::TenantId(tenant),
                        from,
                        to,
                        interval,
                        queue_id,
                    )
                    .await
                    .expect("report");
                let got = report_rows(buckets);
                assert_eq!(
                    got, expected,
                    "{interval:?} [{from}, {to}) queue {queue_id:?}"
                );
                if from == -3 * DAY && queue_id.is_none() {
                    assert!(got.len() >= 24, "{} rows", got.len());
                }
            }
        }
    }
    store.close().await.expect("close");
    db.close().await.expect("close");
    cleanup(&url, file).await;
}

/// Migrations before `queue_stats`: the state of a database that holds calls when it is
/// upgraded.
const BEFORE_QUEUE_STATS: u32 = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_migrations_back_fill_equals_the_reference_definition() {
    let (url, file) = fresh_db().await;
    if let Some(path) = &file {
        std::fs::File::create(path).expect("create the SQLite file");
    }
    let db = Database::connect(&url).await.expect("connect");
    Migrator::up(&db, Some(BEFORE_QUEUE_STATS))
        .await
        .expect("migrate to before queue_stats");
    let (tenant, other) = (Uuid::now_v7(), Uuid::now_v7());
    let thresholds: HashMap<&str, u32> = [("a", 20), ("b", 45)].into();
    for t in [tenant, other] {
        queue::Entity::insert_many(vec![queue_row(t, "a", 20), queue_row(t, "b", 45)])
            .exec(&db)
            .await
            .expect("insert queues");
    }
    let mut rng = Rng(0xBAC_F111);
    let mut rows = Vec::new();
    let mut facts = Vec::new();
    for n in 0..3_000 {
        let t = if n % 5 == 0 { other } else { tenant };
        let (row, f) = random_call(&mut rng, t, n);
        rows.push(row);
        if t == tenant {
            facts.extend(f);
        }
    }
    insert(&db, rows).await;
    // The upgrade: creates queue_stats and back-fills it from the calls above.
    let store = Store::connect(&url).await.expect("migrate and connect");
    let stats_rows = queue_stat::Entity::find().all(&db).await.expect("rows");
    assert!(stats_rows.len() > 100, "{} rows", stats_rows.len());
    assert!(stats_rows.iter().all(|r| r.bucket_start % 900_000 == 0));

    let quarter = 900_000;
    let ranges = [
        (-3 * DAY, 5 * DAY),
        (-DAY - 7 * quarter, 2 * DAY + 29 * quarter),
        (0, quarter),
    ];
    for interval in [Interval::Day, Interval::Hour, Interval::Min15] {
        for (from, to) in ranges {
            for queue_id in [None, Some("a"), Some("gone"), Some("none")] {
                let expected = queue_report(
                    facts
                        .iter()
                        .filter(|f| (from..to).contains(&f.queued_at))
                        .filter(|f| queue_id.is_none_or(|q| f.queue_id == q))
                        .cloned(),
                    interval,
                    |q| thresholds.get(q).copied().unwrap_or(30),
                );
                let what = format!("{interval:?} [{from}, {to}) queue {queue_id:?}");
                let from_stats = store
                    .report_buckets_from_stats(
                        switchboard_core::TenantId(tenant),
                        from,
                        to,
                        interval,
                        queue_id,
                    )
                    .await
                    .expect("report from queue_stats");
                assert_eq!(report_rows(from_stats), expected, "{what}");
                // Aligned ranges are answered from the projection, and a cut inside a
                // 15-minute bucket from the calls: both agree with the reference.
                for (f, t) in [(from, to), (from + 1, to - 1)] {
                    let got = store
                        .report_buckets(
                            switchboard_core::TenantId(tenant),
                            f,
                            t,
                            interval,
                            queue_id,
                        )
                        .await
                        .expect("report");
                    let expected = queue_report(
                        facts
                            .iter()
                            .filter(|x| (f..t).contains(&x.queued_at))
                            .filter(|x| queue_id.is_none_or(|q| x.queue_id == q))
                            .cloned(),
                        interval,
                        |q| thresholds.get(q).copied().unwrap_or(30),
                    );
                    assert_eq!(report_rows(got), expected, "{what} cut to [{f}, {t})");
                }
            }
        }
    }
    store.close().await.expect("close");
    db.close().await.expect("close");
    cleanup(&url, file).await;
}

/// Removes the test database (best effort: a leftover is harmless).
async fn cleanup(url: &str, file: Option<std::path::PathBuf>) {
    if let Some(path) = file {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    } else if let (Ok(admin), Some((_, name))) =
        (std::env::var("TEST_DATABASE_URL"), url.rsplit_once('/'))
    {
        if let Ok(conn) = Database::connect(&admin).await {
            let _ = sea_orm::ConnectionTrait::execute_unprepared(
                &conn,
                &format!("DROP DATABASE IF EXISTS {name}"),
            )
            .await;
        }
    }
}
