//! Property tests of the engine's public, pure parts (no I/O, no runtime):
//!
//! - `TenantState::insert_loaded` (the restart path) re-arms exactly the timers a live engine
//!   would have pending for a call, for any call reachable through the state machine;
//! - `stream_message` (the one serialiser of the live and the catch-up stream paths);
//! - `Bus` (per-tenant broadcast): isolation, order, and lag beyond `CAPACITY`;
//! - `switchboard_core::Call` properties the unit tests of core do not state: `check` agrees
//!   with `apply`, exact durations for in-order timestamps, structural invariants.
//!
//! The rules are unit-tested as pure functions in `rules.rs`; a restart of the real engine is
//! property-tested in `tests/engine.rs`.

use std::collections::HashMap;

use proptest::prelude::*;
use serde_json::{json, Value};
use tokio::sync::broadcast::error::TryRecvError;
use uuid::Uuid;

use switchboard_core::event::EVENT_TYPES;
use switchboard_core::{
    format_rfc3339, parse_rfc3339, AgentId, Call, CallFlag, CallStatus, CallType, Clock, EndReason,
    EventKind, ExternalCallId, QueueId, QueueSettings, TenantId, TransferTarget,
};
use switchboard_engine::{stream_message, Bus, TenantState};
use switchboard_store::{
    CallRow, EventRecord, LoadedCall, NewTenant, QueueRecord, Tenant, TenantSettings,
};

/// A tenant on the `event_time` clock whose stream is at `last_seq`.
fn tenant(last_seq: i64) -> Tenant {
    Tenant {
        id: TenantId::new(),
        slug: "t".into(),
        settings: TenantSettings {
            clock: Clock::EventTime,
            ..NewTenant::new("t", "T").settings
        },
        created_at: 0,
        last_seq,
        watermark: Some(0),
        version: 1,
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
        version: 1,
    }
}

fn q(s: &str) -> QueueId {
    QueueId::parse(s).unwrap()
}
fn a(s: &str) -> AgentId {
    AgentId::parse(s).unwrap()
}

/// One step of a call's life: a client event, or one of the engine's timers coming due.
#[derive(Debug, Clone)]
enum Step {
    Client(EventKind),
    FireSla,
    FireRing,
    FireHold,
}

/// Client events, weighted towards the ones that move a call forward so that long lives
/// (answered, held, resumed, re-held, transferred) are common; `call_ended` is rarer.
fn client_event() -> impl Strategy<Value = EventKind> {
    prop_oneof![
        1 => prop_oneof![Just("q0"), Just("q1")].prop_map(|x| EventKind::CallQueued {
            queue_id: q(x),
            priority: None
        }),
        3 => prop_oneof![Just("a1"), Just("a2")].prop_map(|x| EventKind::CallRouted {
            agent_id: a(x),
            routing_time: None,
            ring_group: Vec::new(),
                targets: Vec::new(),
        }),
        3 => Just(EventKind::CallAnswered {
            agent_id: None,
            wait_time: None,
        }),
        3 => Just(EventKind::CallHold {
            hold_duration: None
        }),
        3 => Just(EventKind::CallResumed),
        1 => prop_oneof![Just("q0"), Just("q1")].prop_map(|x| EventKind::CallTransferred {
            target: TransferTarget::Queue(q(x))
        }),
        1 => Just(EventKind::CallTransferred {
            target: TransferTarget::Agent(a("a3"))
        }),
        1 => prop_oneof![
            Just(EndReason::Completed),
            Just(EndReason::Abandoned),
            Just(EndReason::Failed)
        ]
        .prop_map(|r| EventKind::CallEnded {
            end_reason: r,
            duration: None
        }),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => client_event().prop_map(Step::Client),
        1 => Just(Step::FireSla),
        1 => Just(Step::FireRing),
        2 => Just(Step::FireHold),
    ]
}

fn initiate(id: &str, queue: Option<&str>, ts: i64) -> Call {
    Call::initiate(
        Uuid::now_v7(),
        ExternalCallId::parse(id).unwrap(),
        &EventKind::CallInitiated {
            call_type: CallType::Voice,
            queue_id: queue.map(q),
            from: None,
            to: None,
            priority: None,
        },
        ts,
    )
    .unwrap()
}

/// A call driven through `steps` as a live engine would (DESIGN.md "Business rules"): which
/// timers are pending is tracked from the rules, not from the engine's code.
#[derive(Debug, Clone)]
struct LiveModel {
    call: Call,
    sla: bool,
    ring: bool,
    hold: bool,
}

impl LiveModel {
    fn new(call: Call) -> Self {
        // `call_initiated` with a queue is the first queue entry: the SLA timer starts.
        let sla = call.queued_at.is_some();
        LiveModel {
            call,
            sla,
            ring: false,
            hold: false,
        }
    }

    fn step(&mut self, s: &Step, ts: i64) {
        match s {
            Step::Client(ev) => {
                let was_queued = self.call.queued_at.is_some();
                if self.call.apply(ev, ts).is_err() {
                    return;
                }
                match ev {
                    EventKind::CallQueued { .. }
                    | EventKind::CallTransferred {
                        target: TransferTarget::Queue(_),
                    } => {
                        self.ring = false;
                        self.hold = false;
                        // The SLA timer starts at the first queue entry of an unanswered call.
                        if !was_queued && self.call.answered_at.is_none() {
                            self.sla = true;
                        }
                    }
                    EventKind::CallRouted { .. }
                    | EventKind::CallTransferred {
                        target: TransferTarget::Agent(_),
                    } => {
                        self.hold = false;
                        self.ring = true;
                    }
                    EventKind::CallAnswered { .. } => {
                        self.ring = false;
                        self.sla = false;
                    }
                    // Every hold longer than hold_max_s raises long_hold.
                    EventKind::CallHold { .. } => self.hold = true,
                    EventKind::CallResumed => self.hold = false,
                    EventKind::CallEnded { .. } => {
                        self.sla = false;
                        self.ring = false;
                        self.hold = false;
                    }
                    _ => {}
                }
            }
            Step::FireSla if self.sla => {
                self.sla = false;
                if self.call.answered_at.is_none() && self.call.status != CallStatus::Ended {
                    let ev = EventKind::SlaBreached {
                        queue_id: q("q0"),
                        threshold_s: 30,
                    };
                    self.call.apply(&ev, ts).unwrap();
                }
            }
            Step::FireRing if self.ring => {
                self.ring = false;
                if self.call.status == CallStatus::Ringing {
                    let ev = EventKind::CallRetransfer {
                        agent_id: self.call.agent_id.clone().unwrap(),
                        missed: 1,
                        agent_on_break: false,
                    };
                    self.call.apply(&ev, ts).unwrap();
                }
            }
            Step::FireHold if self.hold => {
                self.hold = false;
                if self.call.status == CallStatus::OnHold {
                    let ev = EventKind::LongHold {
                        hold_s: 61.0,
                        threshold_s: 60,
                    };
                    self.call.apply(&ev, ts).unwrap();
                }
            }
            _ => {}
        }
    }

    fn pending(&self) -> usize {
        usize::from(self.sla) + usize::from(self.ring) + usize::from(self.hold)
    }

    /// The stored row of this call: the pending timers are persisted with their deadlines
    /// (any future instant will do here; the engine must arm exactly these).
    fn row(&self, last_seq: i64) -> CallRow {
        let d = |on: bool, k: i64| on.then_some(10_000_000 + k);
        CallRow {
            call: self.call.clone(),
            last_seq,
            sla_deadline: d(self.sla, 1),
            ring_deadline: d(self.ring, 2),
            hold_deadline: d(self.hold, 3),
        }
    }
}

fn settings() -> impl Strategy<Value = QueueSettings> {
    (
        1u32..200,
        1u32..200,
        0u32..5,
        1u32..200,
        0u32..30,
        any::<bool>(),
    )
        .prop_map(|(sla, ring, mna, hold, short, survey)| QueueSettings {
            sla_threshold_s: sla,
            ring_timeout_s: ring,
            max_no_answer: mna,
            hold_max_s: hold,
            short_call_s: short,
            survey_enabled: survey,
        })
}

fn live_call(id: &str, queued: bool, steps: &[(Step, i64)]) -> LiveModel {
    let mut m = LiveModel::new(initiate(id, queued.then_some("q0"), 0));
    let mut ts = 0;
    for (s, dt) in steps {
        ts += dt;
        m.step(s, ts);
    }
    m
}

proptest! {
    // No regression files: the shrunk counterexamples worth keeping are plain tests below.
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// After a restart every live call is put back with `insert_loaded`: it must come back as it
    /// was, with exactly the timers a live engine would have pending for it (an ended call none).
    #[test]
    fn reload_rearms_exactly_the_pending_timers(
        calls in proptest::collection::vec(
            (any::<bool>(), proptest::collection::vec((step(), 0i64..20_000), 0..30)),
            1..6,
        ),
        s0 in settings(),
        s1 in settings(),
    ) {
        let mut st = TenantState::new(&tenant(1_000), 1);
        st.put_queue(queue("q0", s0));
        st.put_queue(queue("q1", s1));
        let mut want = 0;
        for (i, (queued, steps)) in calls.iter().enumerate() {
            let id = format!("c{i}");
            let m = live_call(&id, *queued, steps);
            want += m.pending();
            st.insert_loaded(LoadedCall {
                row: m.row(i as i64 + 1),
                event_ids: vec![(format!("e{i}"), i as i64 + 1, m.call.status.as_str().to_owned())],
            });
            prop_assert!(st.has_call(&id));
            prop_assert_eq!(st.call(&id), Some(&m.call));
            prop_assert_eq!(
                st.timer_entries(), want,
                "call {} ({}, flags {:?}): a live engine has (sla, ring, hold) = {:?}",
                id, m.call.status, m.call.flags.names(), (m.sla, m.ring, m.hold)
            );
        }
    }

    /// `stream_message` is the one shape of a stream message, live or replayed.
    #[test]
    fn stream_message_has_the_documented_shape(
        seq in 1i64..i64::MAX / 2,
        ty in proptest::sample::select(EVENT_TYPES.to_vec()),
        status in proptest::sample::select(CallStatus::ALL.to_vec()),
        ts in 0i64..4_102_444_800_000,
        external in "[A-Za-z0-9._:-]{1,40}",
        event_id in proptest::option::of("[ -~]{1,40}"),
        payload in proptest::collection::btree_map("[a-z_]{1,12}", any::<i32>(), 0..6),
    ) {
        let uuid = Uuid::now_v7();
        let data: serde_json::Map<String, Value> =
            payload.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        let e = EventRecord {
            seq,
            call_id: uuid,
            external_call_id: external.clone(),
            event_id: event_id.clone(),
            event_type: ty.to_owned(),
            ts,
            received_at: ts + 5,
            status_after: status.as_str().to_owned(),
            data: Value::Object(data.clone()).to_string(),
        };
        let m = stream_message(&e);
        let v: Value = serde_json::from_str(&m.json).unwrap();
        let alert = ["sla_breached", "long_wait", "long_hold"].contains(&ty);
        let topic = if alert { "alerts" } else { "calls" };
        prop_assert_eq!(m.seq, seq);
        prop_assert_eq!(m.topic, topic);
        prop_assert_eq!(&v["seq"], &json!(seq));
        prop_assert_eq!(&v["topic"], &json!(topic));
        prop_assert_eq!(&v["type"], &json!(ty));
        prop_assert_eq!(parse_rfc3339(v["ts"].as_str().unwrap()), Some(ts));
        prop_assert_eq!(v["ts"].as_str().unwrap(), format_rfc3339(ts));
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut keys = keys;
        keys.sort_unstable();
        prop_assert_eq!(keys, ["data", "seq", "topic", "ts", "type"]);
        let d = v["data"].as_object().unwrap();
        prop_assert_eq!(&d["call_id"], &json!(external));
        prop_assert_eq!(&d["call_uuid"], &json!(uuid.to_string()));
        prop_assert_eq!(&d["status"], &json!(status.as_str()));
        match &event_id {
            Some(id) => prop_assert_eq!(&d["event_id"], &json!(id)),
            None => prop_assert!(!d.contains_key("event_id") || data.contains_key("event_id")),
        }
        for (k, val) in &data {
            if !["call_id", "call_uuid", "status", "event_id"].contains(&k.as_str()) {
                prop_assert_eq!(&d[k], val, "payload field {} kept", k);
            }
        }
    }

    /// Each tenant's subscribers get exactly that tenant's events published after they
    /// subscribed, in order; other tenants' never.
    #[test]
    fn bus_delivers_each_tenant_its_own_events_in_order(
        batches in proptest::collection::vec((0usize..3, 1usize..20), 0..30),
        late_after in 0usize..30,
    ) {
        let bus = Bus::default();
        let tenants = [TenantId::new(), TenantId::new(), TenantId::new()];
        // Tenant 2 never has a subscriber: publishing to it must be harmless.
        let mut early: Vec<_> = tenants[..2].iter().map(|t| bus.subscribe(*t)).collect();
        let mut late = None;
        let mut want: HashMap<usize, Vec<i64>> = HashMap::new();
        let mut want_late = Vec::new();
        let mut seq = [0i64; 3];
        for (i, (t, n)) in batches.iter().enumerate() {
            if i == late_after {
                late = Some(bus.subscribe(tenants[0]));
            }
            let evs: Vec<EventRecord> = (0..*n)
                .map(|_| {
                    seq[*t] += 1;
                    record(seq[*t])
                })
                .collect();
            bus.publish(tenants[*t], &evs);
            want.entry(*t).or_default().extend(evs.iter().map(|e| e.seq));
            if *t == 0 && late.is_some() {
                want_late.extend(evs.iter().map(|e| e.seq));
            }
        }
        for (i, rx) in early.iter_mut().enumerate() {
            let got = drain(rx);
            let expected = want.get(&i).cloned().unwrap_or_default();
            prop_assert_eq!(got, expected, "tenant {}", i);
        }
        if let Some(mut rx) = late {
            prop_assert_eq!(drain(&mut rx), want_late);
        }
    }

    /// `check` is exactly the precondition of `apply`, in every reachable state.
    #[test]
    fn check_agrees_with_apply(
        queued in any::<bool>(),
        steps in proptest::collection::vec((step(), 0i64..20_000), 0..30),
        probe in client_event(),
        at in -10_000i64..1_000_000,
    ) {
        let m = live_call("p", queued, &steps);
        let before = m.call.clone();
        let checked = before.check(&probe);
        let mut c = before.clone();
        let applied = c.apply(&probe, at);
        prop_assert_eq!(checked.clone(), applied);
        if checked.is_err() {
            prop_assert_eq!(c, before);
        }
    }

    /// With timestamps in order, durations are exact: talk is the time spent active, hold the
    /// time on hold, wait runs from the first queue entry to the first answer (or to the end of
    /// a call never answered); nothing is flagged out of order; set-once fields stay set.
    #[test]
    fn in_order_durations_are_exact_and_invariants_hold(
        queued in any::<bool>(),
        steps in proptest::collection::vec((step(), 0i64..20_000), 0..40),
    ) {
        let mut m = LiveModel::new(initiate("d", queued.then_some("q0"), 0));
        let (mut talk, mut hold) = (0i64, 0i64);
        let mut since = 0i64;
        let mut ts = 0i64;
        let mut first_queue = m.call.first_queue_id.clone();
        let mut queued_at = m.call.queued_at;
        let mut answered_at: Option<i64> = None;
        let mut wait_at_answer: Option<i64> = None;
        for (s, dt) in &steps {
            ts += dt;
            let before = m.call.clone();
            m.step(s, ts);
            // Client events and the ring timeout close the interval spent in the old state;
            // annotations (SLA breach, long hold) do not.
            let closes = matches!(s, Step::Client(_) | Step::FireRing) && m.call != before;
            if closes {
                match before.status {
                    CallStatus::Active => talk += ts - since,
                    CallStatus::OnHold => hold += ts - since,
                    _ => {}
                }
                since = ts;
            }
            if m.call.queued_at.is_some() && queued_at.is_none() {
                queued_at = Some(ts);
                first_queue = m.call.first_queue_id.clone();
            }
            if m.call.answered_at.is_some() && answered_at.is_none() {
                answered_at = Some(ts);
                wait_at_answer = queued_at.map(|qa| ts - qa);
            }
            let want_wait = match (answered_at, m.call.ended_at) {
                (Some(_), _) => wait_at_answer,
                (None, Some(end)) => queued_at.map(|qa| end - qa),
                (None, None) => None,
            };
            let c = &m.call;
            prop_assert_eq!(c.talk_ms, talk);
            prop_assert_eq!(c.hold_ms, hold);
            prop_assert_eq!(c.queued_at, queued_at);
            prop_assert_eq!(&c.first_queue_id, &first_queue);
            prop_assert_eq!(c.answered_at, answered_at);
            prop_assert!(!c.flags.contains(CallFlag::OutOfOrder));
            prop_assert_eq!(c.wait_ms, want_wait);
            match c.status {
                CallStatus::Ringing | CallStatus::Active | CallStatus::OnHold => {
                    prop_assert!(c.agent_id.is_some(), "{} without an agent", c.status)
                }
                CallStatus::Waiting => prop_assert!(c.agent_id.is_none(), "waiting with an agent"),
                CallStatus::Ended => {
                    prop_assert!(c.ended_at.is_some() && c.end_reason.is_some());
                }
                CallStatus::Initiated => prop_assert!(c.queued_at.is_none()),
            }
            prop_assert_eq!(c.is_abandoned(), c.status == CallStatus::Ended && queued_at.is_some() && answered_at.is_none());
            prop_assert_eq!(c.handle_ms(), talk + hold);
        }
    }
}

/// The shrunk counterexample of `reload_rearms_exactly_the_pending_timers`, kept as a plain
/// test: a call whose first hold raised `long_hold`, resumed and put on hold again, has a hold
/// timer pending (a live engine raises `long_hold` for the second hold too); reloaded after a
/// restart it must still have it.
#[test]
fn reload_rearms_the_hold_timer_of_a_second_hold() {
    let steps = [
        Step::Client(EventKind::CallRouted {
            agent_id: a("a1"),
            routing_time: None,
            ring_group: Vec::new(),
            targets: Vec::new(),
        }),
        Step::Client(EventKind::CallAnswered {
            agent_id: None,
            wait_time: None,
        }),
        Step::Client(EventKind::CallHold {
            hold_duration: None,
        }),
        Step::FireHold,
        Step::Client(EventKind::CallResumed),
        Step::Client(EventKind::CallHold {
            hold_duration: None,
        }),
    ];
    let steps: Vec<(Step, i64)> = steps.into_iter().map(|s| (s, 70_000)).collect();
    let m = live_call("h", false, &steps);
    assert_eq!(m.call.status, CallStatus::OnHold);
    assert!(m.call.flags.contains(CallFlag::LongHold));
    assert_eq!((m.sla, m.ring, m.hold), (false, false, true));
    let mut st = TenantState::new(&tenant(10), 1);
    st.insert_loaded(LoadedCall {
        row: m.row(7),
        event_ids: vec![],
    });
    assert_eq!(
        st.timer_entries(),
        1,
        "the second hold's long_hold timer, persisted with the call, is re-armed on reload"
    );
}

/// Publishing more than `CAPACITY` messages to a subscriber that does not read: it learns it
/// lagged (the stream handler then disconnects it) and the publisher never blocks.
#[test]
fn bus_reports_lag_beyond_capacity() {
    let bus = Bus::default();
    let t = TenantId::new();
    let mut rx = bus.subscribe(t);
    let extra = 10;
    let total = BUS_CAPACITY + extra;
    let evs: Vec<EventRecord> = (1..=total as i64).map(record).collect();
    bus.publish(t, &evs);
    assert_eq!(
        rx.try_recv().err(),
        Some(TryRecvError::Lagged(extra as u64))
    );
    let rest = drain(&mut rx);
    assert_eq!(rest.first(), Some(&(extra as i64 + 1)));
    assert_eq!(rest.last(), Some(&(total as i64)));
    assert_eq!(rest.len(), total - extra);
}

/// `bus::CAPACITY` (documented: messages buffered per tenant for slow subscribers).
const BUS_CAPACITY: usize = 8192;

fn record(seq: i64) -> EventRecord {
    EventRecord {
        seq,
        call_id: Uuid::nil(),
        external_call_id: format!("c{seq}"),
        event_id: None,
        event_type: "call_initiated".into(),
        ts: seq,
        received_at: seq,
        status_after: "initiated".into(),
        data: "{}".into(),
    }
}

fn drain(
    rx: &mut tokio::sync::broadcast::Receiver<std::sync::Arc<switchboard_engine::StreamMessage>>,
) -> Vec<i64> {
    let mut v = Vec::new();
    loop {
        match rx.try_recv() {
            Ok(m) => v.push(m.seq),
            Err(TryRecvError::Empty) => return v,
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
}
