//! The real engine on a real store (a fresh SQLite file per test), driven through its public
//! API with an injected clock:
//!
//! - live timers fire when the manual clock passes their deadline, and not before (no
//!   wall-clock waiting);
//! - a restart changes no outcome: the same script run straight through, and run with the
//!   engine stopped and started again on the same store at any point, answers every event the
//!   same and leaves the same log (property test).

use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use tokio::sync::broadcast;

use switchboard_core::{
    AgentId, CallType, Clock, EndReason, EventKind, ExternalCallId, IncomingEvent, QueueId,
    QueueSettings, TransferTarget,
};
use switchboard_engine::{Engine, EngineConfig, Expect, ManualClock, StreamMessage, TimeSource};
use switchboard_store::{Actor, NewTenant, QueueRecord, Store};

const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

async fn store(dir: &tempfile::TempDir) -> Store {
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    Store::connect(&url).await.expect("store")
}

async fn engine(store: &Store, time: TimeSource) -> Engine {
    Engine::start(
        store.clone(),
        EngineConfig {
            time,
            ..EngineConfig::default()
        },
    )
    .await
    .expect("engine")
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

fn event(call: &str, kind: EventKind, ts: Option<i64>, event_id: Option<String>) -> IncomingEvent {
    IncomingEvent {
        event_id,
        call_id: ExternalCallId::parse(call).unwrap(),
        timestamp: ts,
        kind,
    }
}

fn initiated(q: &str) -> EventKind {
    EventKind::CallInitiated {
        call_type: CallType::Voice,
        queue_id: Some(QueueId::parse(q).unwrap()),
        from: None,
        to: None,
        priority: None,
    }
}

/// A fresh store and engine (manual clock at `T0`) with tenant `t` on the `event_time` clock and
/// queue `q0` at default settings.
async fn event_time_tenant() -> (
    tempfile::TempDir,
    Store,
    switchboard_store::Tenant,
    Engine,
    Arc<ManualClock>,
) {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let t = store
        .create_tenant(&NewTenant::new("t", "T"), &Actor::system("test"), T0)
        .await
        .unwrap();
    let (time, clock) = TimeSource::manual(T0);
    let engine = engine(&store, time).await;
    engine
        .put_queue(
            t.id,
            queue("q0", QueueSettings::default()),
            Expect::Absent,
            &Actor::system("test"),
        )
        .await
        .unwrap();
    engine
        .set_clock(
            t.id,
            Clock::EventTime,
            Expect::Version(1),
            &Actor::system("test"),
        )
        .await
        .unwrap();
    (dir, store, t, engine, clock)
}

/// The next stream message, or a panic after 10 s (a hang guard, not a timing assertion).
async fn next(rx: &mut broadcast::Receiver<Arc<StreamMessage>>) -> String {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("a stream message")
        .expect("open stream")
        .json
        .clone()
}

#[tokio::test]
async fn live_timers_fire_when_the_injected_clock_passes_their_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let t = store
        .create_tenant(&NewTenant::new("t", "T"), &Actor::system("test"), T0)
        .await
        .unwrap();
    let (time, clock) = TimeSource::manual(T0);
    let engine = engine(&store, time).await;
    let s = QueueSettings {
        sla_threshold_s: 30,
        ..QueueSettings::default()
    };
    engine
        .put_queue(t.id, queue("q0", s), Expect::Absent, &Actor::system("test"))
        .await
        .unwrap();
    let mut rx = engine.subscribe(t.id);
    // No timestamp: the event happens "now", by the injected clock.
    let r = engine
        .submit(t.id, vec![event("c1", initiated("q0"), None, None)])
        .await;
    assert!(r[0].is_ok(), "{r:?}");
    assert!(next(&mut rx).await.contains("call_initiated"));
    clock.advance(29_999);
    // Another tenant's event goes through the same writer; the SLA timer has not fired.
    let other = store
        .create_tenant(&NewTenant::new("u", "U"), &Actor::system("test"), T0)
        .await
        .unwrap();
    engine
        .put_queue(
            other.id,
            queue("q0", QueueSettings::default()),
            Expect::Absent,
            &Actor::system("test"),
        )
        .await
        .unwrap();
    assert!(engine
        .submit(other.id, vec![event("x", initiated("q0"), None, None)])
        .await[0]
        .is_ok());
    assert!(
        rx.try_recv().is_err(),
        "nothing may fire before the deadline"
    );
    clock.advance(1);
    let m = next(&mut rx).await;
    assert!(m.contains("sla_breached"), "{m}");
    assert!(m.contains("\"threshold_s\":30"), "{m}");
    engine.shutdown().await;
}

#[tokio::test]
async fn event_time_tenants_ignore_the_wall_clock() {
    let (_dir, _store, t, engine, clock) = event_time_tenant().await;
    let mut rx = engine.subscribe(t.id);
    assert!(engine
        .submit(t.id, vec![event("c1", initiated("q0"), Some(T0), None)])
        .await[0]
        .is_ok());
    next(&mut rx).await;
    clock.advance(3_600_000);
    // A later event on the event_time clock fires the timer due before it, and only then.
    assert!(engine
        .submit(
            t.id,
            vec![event("c2", initiated("q0"), Some(T0 + 31_000), None)]
        )
        .await[0]
        .is_ok());
    let first = next(&mut rx).await;
    assert!(first.contains("sla_breached"), "{first}");
    assert!(first.contains("\"call_id\":\"c1\""), "{first}");
    engine.shutdown().await;
}

#[tokio::test]
async fn far_future_timestamps_are_refused_and_move_nothing() {
    let (_dir, store, t, engine, _clock) = event_time_tenant().await;
    let day = 86_400_000;
    let r = engine
        .submit(
            t.id,
            vec![
                event("c1", initiated("q0"), Some(T0), None),
                event("c2", initiated("q0"), Some(T0 + day + 1), None),
                event("c3", initiated("q0"), Some(T0 + day - 1), None),
            ],
        )
        .await;
    assert!(r[0].is_ok());
    assert!(
        matches!(
            r[1],
            Err(switchboard_engine::EngineError::TimestampTooFar { .. })
        ),
        "{r:?}"
    );
    assert!(r[2].is_ok(), "23:59:59.999 ahead is within the skew: {r:?}");
    engine.shutdown().await;
    // The refused event moved nothing: the stored watermark is the accepted one.
    let t = store.tenant(t.id).await.unwrap();
    assert_eq!(t.watermark, Some(T0 + day - 1));
}

/// One step of a script: which call, what, how long after the previous step, and whether to
/// send it with an event id (and re-send an earlier one).
#[derive(Debug, Clone)]
struct Step {
    call: usize,
    kind: u8,
    gap_ms: i64,
    resend: Option<usize>,
}

fn step() -> impl Strategy<Value = Step> {
    (
        0usize..4,
        any::<u8>(),
        prop_oneof![
            4 => 0i64..2_000,
            4 => 10_000i64..40_000,
            2 => 50_000i64..90_000,
            1 => -5_000i64..0,
        ],
        proptest::option::weighted(0.1, 0usize..40),
    )
        .prop_map(|(call, kind, gap_ms, resend)| Step {
            call,
            kind,
            gap_ms,
            resend,
        })
}

/// The client events that fit a call in `status` (as the script models it; timers may have
/// moved the real call on, and then the engine answers 409 in both runs alike).
fn fitting(status: &str) -> Vec<EventKind> {
    let q = |s: &str| QueueId::parse(s).unwrap();
    let a = |s: &str| AgentId::parse(s).unwrap();
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
    match status {
        "new" => vec![initiated("q0")],
        "waiting" => vec![
            routed("a1"),
            routed("a2"),
            ended(EndReason::Abandoned),
            EventKind::CallQueued {
                queue_id: q("q1"),
                priority: Some(5),
            },
        ],
        "ringing" => vec![
            EventKind::CallAnswered {
                agent_id: None,
                wait_time: None,
            },
            EventKind::CallAnswered {
                agent_id: None,
                wait_time: None,
            },
            ended(EndReason::Abandoned),
        ],
        "active" => vec![
            EventKind::CallHold {
                hold_duration: None,
            },
            EventKind::CallTransferred {
                target: TransferTarget::Queue(q("q1")),
            },
            EventKind::CallTransferred {
                target: TransferTarget::Agent(a("a2")),
            },
            ended(EndReason::Completed),
            ended(EndReason::Completed),
        ],
        "on_hold" => vec![EventKind::CallResumed, ended(EndReason::Completed)],
        _ => vec![EventKind::CallResumed, initiated("q0")],
    }
}

/// The status the script expects after `k`.
fn status_after(k: &EventKind) -> &'static str {
    match k {
        EventKind::CallInitiated { .. } | EventKind::CallQueued { .. } => "waiting",
        EventKind::CallRouted { .. } => "ringing",
        EventKind::CallAnswered { .. } | EventKind::CallResumed => "active",
        EventKind::CallHold { .. } => "on_hold",
        EventKind::CallTransferred {
            target: TransferTarget::Queue(_),
        } => "waiting",
        EventKind::CallTransferred { .. } => "ringing",
        _ => "ended",
    }
}

fn script(steps: &[Step]) -> Vec<IncomingEvent> {
    let mut ts = T0;
    let mut status = ["new"; 4];
    let mut out: Vec<IncomingEvent> = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        ts += s.gap_ms;
        if let Some(r) = s.resend.filter(|r| *r < out.len()) {
            let mut again = out[r].clone();
            again.timestamp = Some(ts);
            out.push(again);
            continue;
        }
        let options = fitting(status[s.call]);
        let k = options[usize::from(s.kind) % options.len()].clone();
        status[s.call] = status_after(&k);
        out.push(event(
            &format!("c{}", s.call),
            k,
            Some(ts),
            Some(format!("e{i}")),
        ));
    }
    out
}

/// Runs the script on a fresh store, restarting the engine before each event whose index is in
/// `restarts`; returns each answer (without Switchboard's random call uuids) and the log.
async fn run(events: &[IncomingEvent], restarts: &[usize]) -> (Vec<String>, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let t = store
        .create_tenant(&NewTenant::new("t", "T"), &Actor::system("test"), T0)
        .await
        .unwrap();
    let time = TimeSource::System;
    let mut engine = engine(&store, time.clone()).await;
    let s1 = QueueSettings {
        sla_threshold_s: 20,
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
        .unwrap();
    engine
        .put_queue(
            t.id,
            queue("q1", s1),
            Expect::Absent,
            &Actor::system("test"),
        )
        .await
        .unwrap();
    engine
        .set_clock(
            t.id,
            Clock::EventTime,
            Expect::Version(1),
            &Actor::system("test"),
        )
        .await
        .unwrap();
    let mut answers = Vec::new();
    for (i, e) in events.iter().enumerate() {
        if restarts.contains(&i) {
            engine.shutdown().await;
            engine = self::engine(&store, time.clone()).await;
        }
        let r = engine.submit(t.id, vec![e.clone()]).await.remove(0);
        answers.push(match r {
            Ok(o) => format!("ok seq={} {} dup={}", o.seq, o.status, o.duplicate),
            Err(e) => format!("err {e}"),
        });
    }
    engine.shutdown().await;
    let log = store
        .events_since(t.id, 0, 100_000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| {
            format!(
                "{} {} {} {} {} {:?} {}",
                e.seq, e.external_call_id, e.event_type, e.ts, e.status_after, e.event_id, e.data
            )
        })
        .collect();
    drop(store);
    (answers, log)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 32,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// A restart at any points changes no answer and no stored event: the reload (the tenant
    /// row's head, live calls with their armed timers and idempotency keys, agents' misses)
    /// restores exactly the state the engine had.
    #[test]
    fn a_restart_changes_no_outcome(
        steps in proptest::collection::vec(step(), 1..60),
        cuts in proptest::collection::vec(0usize..60, 1..4),
    ) {
        let events = script(&steps);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let straight = rt.block_on(run(&events, &[]));
        let restarted = rt.block_on(run(&events, &cuts));
        prop_assert_eq!(&straight.0, &restarted.0, "answers differ with restarts before {:?}", cuts);
        prop_assert_eq!(&straight.1, &restarted.1, "logs differ with restarts before {:?}", cuts);
    }
}

#[test]
fn the_harness_tells_different_scripts_apart() {
    // The property compares two runs: check that a difference would show.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let a = rt.block_on(run(&[event("c0", initiated("q0"), Some(T0), None)], &[]));
    let b = rt.block_on(run(&[event("c0", initiated("q1"), Some(T0), None)], &[]));
    assert_ne!(a.1, b.1);
}

/// After a restart, a tenant with a call still waiting is loaded at start-up: its SLA timer
/// fires on the live clock without any client request.
#[tokio::test]
async fn start_up_rearms_live_timers_without_a_request() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let t = store
        .create_tenant(&NewTenant::new("t", "T"), &Actor::system("test"), T0)
        .await
        .unwrap();
    store
        .create_tenant(&NewTenant::new("idle", "Idle"), &Actor::system("test"), T0)
        .await
        .unwrap();
    let (time, clock) = TimeSource::manual(T0);
    let first = engine(&store, time.clone()).await;
    first
        .put_queue(
            t.id,
            queue("q0", QueueSettings::default()),
            Expect::Absent,
            &Actor::system("test"),
        )
        .await
        .unwrap();
    assert!(first
        .submit(t.id, vec![event("c1", initiated("q0"), None, None)])
        .await[0]
        .is_ok());
    first.shutdown().await;
    assert_eq!(store.tenants_with_live_calls().await.unwrap(), vec![t.id]);
    let second = engine(&store, time).await;
    assert_eq!(
        second.tenant_counts(),
        (1, 0),
        "only the tenant with a live call is loaded"
    );
    let mut rx = second.subscribe(t.id);
    clock.advance(30_000);
    let m = next(&mut rx).await;
    assert!(m.contains("sla_breached"), "{m}");
    second.shutdown().await;
}
