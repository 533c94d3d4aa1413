//! The statistics projection (`queue_stats`) kept by the engine's write path against the
//! per-call `GROUP BY` of the same store: after any random life of a tenant's calls through the
//! real engine — client events of every kind in any order the engine accepts, timers that breach
//! SLAs and re-queue unanswered calls (on the `event_time` clock, and on the `live` clock with
//! an injected clock), timestamps that run backwards, transfers, abandons and completions,
//! changes of a queue's SLA threshold, restarts of the engine, events naming calls that ended
//! and left memory — the report read from `queue_stats` equals the report computed from
//! `calls`, for every interval and queue filter.
//!
//! SQLite by default; PostgreSQL (a fresh database on that server) when `TEST_DATABASE_URL` is
//! set. One database per test, one tenant per case.

use std::collections::HashMap;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use sea_orm::{ConnectionTrait, Database};
use uuid::Uuid;

use switchboard_core::metrics::{report_rows, Interval};
use switchboard_core::{
    AgentId, CallStatus, CallType, Clock, EndReason, EventKind, ExternalCallId, IncomingEvent,
    QueueId, QueueSettings, TransferTarget,
};
use switchboard_engine::{Engine, EngineConfig, Expect, TimeSource};
use switchboard_store::{Actor, NewTenant, QueueRecord, Store};

/// 2026-01-01T23:40:00Z: the calls' lives cross 15-minute, hour and day boundaries.
const T0: i64 = 1_767_310_800_000;
const DAY: i64 = 86_400_000;

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
            conn.execute_unprepared(&format!("CREATE DATABASE {name}"))
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
            let _ = conn
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name}"))
                .await;
        }
    }
}

/// One step of a case: which call, a selector among the events that fit its status, how far
/// time moves before it (negative: backwards), and what else happens first.
#[derive(Debug, Clone)]
struct Step {
    call: usize,
    pick: u8,
    gap_ms: i64,
    extra: Extra,
}

#[derive(Debug, Clone, Copy)]
enum Extra {
    None,
    /// The engine is stopped and started again on the same store.
    Restart,
    /// Queue `q0`'s SLA threshold changes to this many seconds.
    Threshold(u32),
}

fn step() -> impl Strategy<Value = Step> {
    (
        0usize..3,
        any::<u8>(),
        prop_oneof![
            8 => 0i64..3_000,
            3 => 3_000i64..40_000,
            2 => 40_000i64..120_000,
            1 => 600_000i64..1_800_000,
            1 => -10_000i64..0,
            1 => -1_800_000i64..-600_000,
        ],
        prop_oneof![
            20 => Just(Extra::None),
            1 => Just(Extra::Restart),
            1 => (5u32..60).prop_map(Extra::Threshold),
        ],
    )
        .prop_map(|(call, pick, gap_ms, extra)| Step {
            call,
            pick,
            gap_ms,
            extra,
        })
}

fn q(s: &str) -> QueueId {
    QueueId::parse(s).unwrap()
}
fn a(s: &str) -> AgentId {
    AgentId::parse(s).unwrap()
}

/// Client events that fit a call in `status` (`None`: no call yet, or the last one ended).
/// Some do not fit what the engine holds (a timer may have moved the call on): those are
/// refused, which the projection must survive too.
fn fitting(status: Option<CallStatus>) -> Vec<EventKind> {
    let initiated = |queue: Option<&str>| EventKind::CallInitiated {
        call_type: CallType::Voice,
        queue_id: queue.map(q),
        from: None,
        to: None,
        priority: None,
    };
    let routed = |x: &str| EventKind::CallRouted {
        agent_id: a(x),
        routing_time: None,
        ring_group: Vec::new(),
        targets: Vec::new(),
    };
    let ended = |r| EventKind::CallEnded {
        end_reason: r,
        duration: None,
    };
    let to_queue = |x: &str| EventKind::CallTransferred {
        target: TransferTarget::Queue(q(x)),
    };
    match status {
        None | Some(CallStatus::Ended) => vec![
            initiated(Some("q0")),
            initiated(Some("q1")),
            initiated(Some("q0")),
            initiated(None),
        ],
        Some(CallStatus::Initiated) => vec![
            EventKind::CallQueued {
                queue_id: q("q1"),
                priority: Some(3),
            },
            // Never queued: routed straight to an agent, it is in no report.
            routed("a1"),
            ended(EndReason::Abandoned),
        ],
        Some(CallStatus::Waiting) => vec![
            routed("a1"),
            routed("a2"),
            routed("a1"),
            routed("a2"),
            ended(EndReason::Abandoned),
            to_queue("q1"),
        ],
        Some(CallStatus::Ringing) => vec![
            EventKind::CallAnswered {
                agent_id: None,
                wait_time: None,
            },
            EventKind::CallAnswered {
                agent_id: None,
                wait_time: None,
            },
            EventKind::CallAnswered {
                agent_id: None,
                wait_time: None,
            },
            EventKind::CallAnswered {
                agent_id: None,
                wait_time: None,
            },
            ended(EndReason::Abandoned),
            ended(EndReason::Failed),
        ],
        Some(CallStatus::Active) => vec![
            EventKind::CallHold {
                hold_duration: None,
            },
            to_queue("q0"),
            EventKind::CallTransferred {
                target: TransferTarget::Agent(a("a3")),
            },
            ended(EndReason::Completed),
            ended(EndReason::Completed),
        ],
        Some(CallStatus::OnHold) => vec![EventKind::CallResumed, ended(EndReason::Completed)],
    }
}

fn queue(id: &str, settings: QueueSettings) -> QueueRecord {
    QueueRecord {
        id: id.into(),
        name: id.into(),
        settings,
        routing: Default::default(),
        created_at: 0,
        updated_at: 0,
        version: 0,
    }
}

async fn start(store: &Store, time: &TimeSource) -> Engine {
    Engine::start(
        store.clone(),
        EngineConfig {
            time: time.clone(),
            ..EngineConfig::default()
        },
    )
    .await
    .expect("engine")
}

/// Runs one case on a new tenant of `store`, then compares the two reports.
async fn case(store: &Store, n: usize, live: bool, steps: &[Step]) -> Result<(), TestCaseError> {
    let t = store
        .create_tenant(
            &NewTenant::new(&format!("t{n}"), "T"),
            &Actor::system("test"),
            T0,
        )
        .await
        .expect("tenant");
    // The injected clock: on the `live` clock, timers fire as the test moves it.
    let (time, clock) = TimeSource::manual(T0);
    let mut engine = start(store, &time).await;
    let s1 = QueueSettings {
        sla_threshold_s: 20,
        ring_timeout_s: 10,
        max_no_answer: 2,
        ..QueueSettings::default()
    };
    engine
        .put_queue(
            t.id,
            queue("q0", QueueSettings::default()),
            Expect::Absent,
            &Actor::system("test"),
        )
        .await
        .expect("q0");
    engine
        .put_queue(
            t.id,
            queue("q1", s1),
            Expect::Absent,
            &Actor::system("test"),
        )
        .await
        .expect("q1");
    if !live {
        engine
            .set_clock(
                t.id,
                Clock::EventTime,
                Expect::Version(1),
                &Actor::system("test"),
            )
            .await
            .expect("clock");
    }
    let mut ts = T0;
    // Each slot's current call (generation) and its status as last answered.
    let mut calls: HashMap<usize, (u32, Option<CallStatus>)> = HashMap::new();
    let mut accepted = 0;
    for s in steps {
        match s.extra {
            Extra::None => {}
            Extra::Restart => {
                engine.shutdown().await;
                engine = start(store, &time).await;
            }
            Extra::Threshold(secs) => {
                let cur = engine.queue(t.id, "q0").await.expect("q0");
                let settings = QueueSettings {
                    sla_threshold_s: secs,
                    ..cur.settings.clone()
                };
                engine
                    .put_queue(
                        t.id,
                        queue("q0", settings),
                        Expect::Version(cur.version),
                        &Actor::system("test"),
                    )
                    .await
                    .expect("threshold change");
            }
        }
        ts += s.gap_ms;
        if ts > clock.now_ms() {
            // Live timers due by then fire (in the timer task, concurrently).
            clock.set(ts);
        }
        let (generation, status) = calls.entry(s.call).or_insert((0, None));
        let options = fitting(*status);
        let kind = options[usize::from(s.pick) % options.len()].clone();
        if matches!(kind, EventKind::CallInitiated { .. }) && status.is_some() {
            *generation += 1;
        }
        let id = format!("c{}-{}", s.call, generation);
        let r = engine
            .submit(
                t.id,
                vec![IncomingEvent {
                    event_id: None,
                    call_id: ExternalCallId::parse(&id).unwrap(),
                    timestamp: Some(ts),
                    kind,
                }],
            )
            .await
            .remove(0);
        if let Ok(o) = r {
            *status = Some(o.status);
            accepted += 1;
        }
    }
    engine.shutdown().await;
    prop_assert!(accepted > 0);

    let day = Interval::Day.floor(T0);
    let quarter = Interval::Min15.floor(T0);
    let ranges = [
        (day - DAY, day + 3 * DAY),
        // Aligned to 15 minutes only, across the day boundary.
        (quarter - 15 * 60_000, quarter + 45 * 60_000),
    ];
    for interval in [Interval::Day, Interval::Hour, Interval::Min15] {
        for (from, to) in ranges {
            for queue_id in [None, Some("q0"), Some("q1")] {
                let stats = store
                    .report_buckets_from_stats(t.id, from, to, interval, queue_id)
                    .await
                    .expect("report from queue_stats");
                let calls = store
                    .report_buckets_from_calls(t.id, from, to, interval, queue_id)
                    .await
                    .expect("report from calls");
                prop_assert_eq!(
                    report_rows(stats),
                    report_rows(calls),
                    "{:?} [{}, {}) queue {:?}",
                    interval,
                    from,
                    to,
                    queue_id
                );
            }
        }
    }
    Ok(())
}

#[test]
fn the_projection_equals_the_per_call_report_after_any_history() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (url, file) = rt.block_on(fresh_db());
    let store = rt.block_on(Store::connect(&url)).expect("store");
    let mut runner = TestRunner::new(Config {
        cases: 24,
        failure_persistence: None,
        ..Config::default()
    });
    // Each case (shrinking included) on a tenant of its own.
    let n = std::cell::Cell::new(0);
    let res = runner.run(
        &(any::<bool>(), proptest::collection::vec(step(), 1..80)),
        |(live, steps)| {
            n.set(n.get() + 1);
            rt.block_on(case(&store, n.get(), live, &steps))
        },
    );
    rt.block_on(async {
        store.close().await.expect("close");
        cleanup(&url, file).await;
    });
    if let Err(e) = res {
        panic!("{e}");
    }
}
