//! Model-based random test of the engine through the real server (the engine's `apply` is
//! crate-private, so this is where its rules meet random input).
//!
//! Each case is a fresh tenant on the `event_time` clock with two queues of different settings;
//! a seeded generator sends 50 events for 5 calls — mostly events that fit the call's state,
//! some that do not, some unknown queues, some timestamps that run backwards, some
//! redeliveries of an earlier `event_id`. A model written from DESIGN.md and the engine's
//! documented rules (timers fire strictly before the event that moves time past them, in
//! deadline order; SLA armed at first queue entry; ring, hold, long wait, review, survey)
//! predicts every answer. Checked: each answer's status code, seq and call status; that every
//! 201 event is in the call's history at its seq; that a refused event changed nothing; each
//! call's full history (engine-made events included) and its final row (status, flags,
//! durations, queues, agent).
//!
//! Seeds are fixed (reproducible); set `PROPS_HTTP_CASES` / `PROPS_HTTP_SEED` to explore more.

mod support;

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::{json, Value};

use support::TestApp;

const BASE_MS: i64 = 933_465_600_000; // 1999-08-01T00:00:00Z
const CALLS: [&str; 5] = ["c0", "c1", "c2", "c3", "c4"];
const EVENTS_PER_CASE: usize = 50;

#[derive(Debug, Clone, Copy)]
struct Settings {
    sla_s: i64,
    ring_s: i64,
    hold_s: i64,
    short_s: i64,
    survey: bool,
}

const DEFAULTS: Settings = Settings {
    sla_s: 30,
    ring_s: 15,
    hold_s: 60,
    short_s: 10,
    survey: true,
};

fn queues() -> BTreeMap<&'static str, Settings> {
    BTreeMap::from([
        ("q1", DEFAULTS),
        (
            "q2",
            Settings {
                sla_s: 20,
                ring_s: 8,
                hold_s: 25,
                short_s: 0,
                survey: false,
            },
        ),
    ])
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Sla,
    Ring,
    Hold,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    Initiated,
    Waiting,
    Ringing,
    Active,
    OnHold,
    Ended,
}

impl St {
    fn name(self) -> &'static str {
        match self {
            St::Initiated => "initiated",
            St::Waiting => "waiting",
            St::Ringing => "ringing",
            St::Active => "active",
            St::OnHold => "on_hold",
            St::Ended => "ended",
        }
    }
}

/// A client event as generated.
#[derive(Debug, Clone)]
enum Kind {
    Initiated(Option<String>),
    Queued(String),
    Routed(String),
    Answered,
    Hold,
    Resumed,
    TransferQueue(String),
    TransferAgent(String),
    Ended(&'static str),
}

impl Kind {
    fn name(&self) -> &'static str {
        match self {
            Kind::Initiated(_) => "call_initiated",
            Kind::Queued(_) => "call_queued",
            Kind::Routed(_) => "call_routed",
            Kind::Answered => "call_answered",
            Kind::Hold => "call_hold",
            Kind::Resumed => "call_resumed",
            Kind::TransferQueue(_) | Kind::TransferAgent(_) => "call_transferred",
            Kind::Ended(_) => "call_ended",
        }
    }

    fn queue(&self) -> Option<&str> {
        match self {
            Kind::Initiated(q) => q.as_deref(),
            Kind::Queued(q) | Kind::TransferQueue(q) => Some(q),
            _ => None,
        }
    }

    /// Whether it fits a call in `s` (DESIGN.md "Call lifecycle").
    fn fits(&self, s: St) -> bool {
        use St::*;
        match self {
            Kind::Initiated(_) => false,
            Kind::Queued(_) => s == Initiated,
            Kind::Routed(_) => matches!(s, Initiated | Waiting),
            Kind::Answered => s == Ringing,
            Kind::Hold => s == Active,
            Kind::Resumed => s == OnHold,
            Kind::TransferQueue(_) | Kind::TransferAgent(_) => {
                matches!(s, Waiting | Active | OnHold)
            }
            Kind::Ended(_) => s != Ended,
        }
    }

    fn json(&self, call: &str, ts: i64, event_id: &str) -> Value {
        let mut v = json!({ "type": self.name(), "call_id": call, "event_id": event_id,
                            "timestamp": switchboard_core::format_rfc3339(BASE_MS + ts) });
        let m = v.as_object_mut().unwrap();
        match self {
            Kind::Initiated(q) => {
                m.insert("call_type".into(), json!("voice"));
                if let Some(q) = q {
                    m.insert("queue_id".into(), json!(q));
                }
            }
            Kind::Queued(q) | Kind::TransferQueue(q) => {
                m.insert("queue_id".into(), json!(q));
            }
            Kind::Routed(a) | Kind::TransferAgent(a) => {
                m.insert("agent_id".into(), json!(a));
            }
            Kind::Ended(r) => {
                m.insert("end_reason".into(), json!(r));
            }
            _ => {}
        }
        v
    }
}

#[derive(Debug, Clone)]
struct MCall {
    status: St,
    queue: Option<String>,
    first_queue: Option<String>,
    agent: Option<String>,
    queued_at: Option<i64>,
    answered_at: Option<i64>,
    wait: Option<i64>,
    talk: i64,
    hold: i64,
    state_since: i64,
    last_ts: i64,
    flags: std::collections::BTreeSet<&'static str>,
    timers: BTreeMap<Timer, i64>,
    /// (seq, type, status after).
    history: Vec<(i64, String, String)>,
    /// event_id -> (seq, status after) of accepted client events.
    ids: BTreeMap<String, (i64, St)>,
}

#[derive(Debug)]
enum Answer {
    Created { seq: i64, status: St },
    Duplicate { seq: i64, status: St },
    Conflict(St),
    NotFound,
    Invalid,
}

#[derive(Default)]
struct Model {
    watermark: Option<i64>,
    seq: i64,
    calls: BTreeMap<String, MCall>,
}

impl Model {
    fn settings(&self, call: &str) -> Settings {
        let c = &self.calls[call];
        c.queue
            .as_deref()
            .or(c.first_queue.as_deref())
            .map(|q| queues()[q])
            .unwrap_or(DEFAULTS)
    }

    fn record(&mut self, call: &str, ty: &str) -> i64 {
        self.seq += 1;
        let c = self.calls.get_mut(call).unwrap();
        c.history
            .push((self.seq, ty.to_owned(), c.status.name().to_owned()));
        self.seq
    }

    /// Marks time for an applied event at `ts` on the call.
    fn touch(c: &mut MCall, ts: i64) {
        if ts < c.last_ts {
            c.flags.insert("out_of_order");
        }
        c.last_ts = c.last_ts.max(ts);
    }

    fn leave_state(c: &mut MCall, ts: i64) {
        let d = (ts - c.state_since).max(0);
        match c.status {
            St::Active => c.talk += d,
            St::OnHold => c.hold += d,
            _ => {}
        }
        // A backwards timestamp does not move the state's start back: no interval counts twice.
        c.state_since = c.state_since.max(ts);
    }

    fn enter_queue(c: &mut MCall, q: &str, ts: i64) {
        if c.first_queue.is_none() {
            c.first_queue = Some(q.to_owned());
            c.queued_at = Some(ts);
        }
        c.queue = Some(q.to_owned());
        c.status = St::Waiting;
    }

    fn fire(&mut self, call: &str, kind: Timer, deadline: i64) {
        let c = self.calls.get_mut(call).unwrap();
        if c.timers.get(&kind) != Some(&deadline) {
            return;
        }
        c.timers.remove(&kind);
        match kind {
            Timer::Sla if c.answered_at.is_none() && c.status != St::Ended => {
                Self::touch(c, deadline);
                c.flags.insert("sla_breached");
                self.record(call, "sla_breached");
            }
            Timer::Ring if c.status == St::Ringing => {
                Self::touch(c, deadline);
                Self::leave_state(c, deadline);
                c.agent = None;
                c.status = St::Waiting;
                self.record(call, "call_retransfer");
            }
            Timer::Hold if c.status == St::OnHold => {
                Self::touch(c, deadline);
                c.flags.insert("long_hold");
                self.record(call, "long_hold");
            }
            _ => {}
        }
    }

    /// Fires, in (deadline, kind, call) order, every timer due strictly before `t` — of every
    /// call, or only of `only`.
    fn fire_before(&mut self, t: i64, only: Option<&str>) {
        loop {
            let next = self
                .calls
                .iter()
                .filter(|(k, _)| only.is_none_or(|o| o == k.as_str()))
                .flat_map(|(k, c)| c.timers.iter().map(move |(kind, d)| (*d, *kind, k.clone())))
                .filter(|(d, _, _)| *d < t)
                .min();
            let Some((d, kind, call)) = next else { return };
            self.fire(&call, kind, d);
        }
    }

    fn apply(&mut self, call: &str, kind: &Kind, ts: i64, event_id: &str) -> Answer {
        // 1. Redelivery, then whether the event fits, before time moves.
        if let Some(c) = self.calls.get(call) {
            if let Some((seq, st)) = c.ids.get(event_id) {
                return Answer::Duplicate {
                    seq: *seq,
                    status: *st,
                };
            }
            if !kind.fits(c.status) {
                return Answer::Conflict(c.status);
            }
        } else if !matches!(kind, Kind::Initiated(_)) {
            return Answer::NotFound;
        }
        if kind.queue().is_some_and(|q| !queues().contains_key(q)) {
            return Answer::Invalid;
        }
        // 2. Time moves: the tenant's watermark, then this call's own overdue timers.
        if self.watermark.is_none_or(|w| ts > w) {
            self.fire_before(ts, None);
            self.watermark = Some(ts);
        }
        if self.calls.contains_key(call) {
            self.fire_before(ts, Some(call));
            let st = self.calls[call].status;
            if !kind.fits(st) {
                return Answer::Conflict(st);
            }
        }
        // 3. The event.
        let answered_before = self
            .calls
            .get(call)
            .is_some_and(|c| c.answered_at.is_some());
        let mut first_entry = false;
        if let Kind::Initiated(q) = kind {
            let mut c = MCall {
                status: St::Initiated,
                queue: None,
                first_queue: None,
                agent: None,
                queued_at: None,
                answered_at: None,
                wait: None,
                talk: 0,
                hold: 0,
                state_since: ts,
                last_ts: ts,
                flags: Default::default(),
                timers: Default::default(),
                history: Vec::new(),
                ids: Default::default(),
            };
            if let Some(q) = q {
                Self::enter_queue(&mut c, q, ts);
                first_entry = true;
            }
            self.calls.insert(call.to_owned(), c);
        } else {
            let c = self.calls.get_mut(call).unwrap();
            Self::touch(c, ts);
            Self::leave_state(c, ts);
            match kind {
                Kind::Queued(q) | Kind::TransferQueue(q) => {
                    first_entry = c.first_queue.is_none();
                    if matches!(kind, Kind::TransferQueue(_)) {
                        c.agent = None;
                    }
                    Self::enter_queue(c, q, ts);
                }
                Kind::Routed(a) | Kind::TransferAgent(a) => {
                    c.agent = Some(a.clone());
                    c.status = St::Ringing;
                }
                Kind::Answered => {
                    if c.answered_at.is_none() {
                        c.answered_at = Some(ts);
                        c.wait = c.queued_at.map(|q| (ts - q).max(0));
                    }
                    c.status = St::Active;
                }
                Kind::Hold => c.status = St::OnHold,
                Kind::Resumed => c.status = St::Active,
                Kind::Ended(_) => {
                    if c.answered_at.is_none() {
                        c.wait = c.queued_at.map(|q| (ts - q).max(0));
                    }
                    c.status = St::Ended;
                }
                Kind::Initiated(_) => unreachable!(),
            }
        }
        let seq = self.record(call, kind.name());
        let status = self.calls[call].status;
        self.calls
            .get_mut(call)
            .unwrap()
            .ids
            .insert(event_id.to_owned(), (seq, status));
        // 4. The rules that follow (settings of the call's queue at this moment).
        let s = self.settings(call);
        let c = self.calls.get_mut(call).unwrap();
        match kind {
            Kind::Initiated(_) | Kind::Queued(_) | Kind::TransferQueue(_) => {
                c.timers.remove(&Timer::Ring);
                c.timers.remove(&Timer::Hold);
                if first_entry && c.answered_at.is_none() {
                    c.timers.insert(Timer::Sla, ts + s.sla_s * 1000);
                }
            }
            Kind::Routed(_) | Kind::TransferAgent(_) => {
                c.timers.remove(&Timer::Hold);
                c.timers.insert(Timer::Ring, ts + s.ring_s * 1000);
            }
            Kind::Answered => {
                c.timers.remove(&Timer::Ring);
                c.timers.remove(&Timer::Sla);
                if !answered_before && c.wait.is_some_and(|w| w > s.sla_s * 1000) {
                    c.flags.insert("long_wait");
                    self.record(call, "long_wait");
                }
            }
            Kind::Hold => {
                c.timers
                    .insert(Timer::Hold, c.state_since + s.hold_s * 1000);
            }
            Kind::Resumed => {
                c.timers.remove(&Timer::Hold);
            }
            Kind::Ended(reason) => {
                c.timers.clear();
                if c.answered_at.is_some() {
                    let short = s.short_s > 0 && c.talk < s.short_s * 1000;
                    if short {
                        c.flags.insert("review");
                        self.record(call, "call_flagged");
                    }
                    if *reason == "completed" && s.survey {
                        self.record(call, "survey_requested");
                    }
                }
            }
        }
        Answer::Created { seq, status }
    }
}

/// Kinds that fit a call in `s`, for steering the generator into deep states.
fn fitting(rng: &mut StdRng, s: St) -> Kind {
    let q = |rng: &mut StdRng| if rng.random_bool(0.5) { "q1" } else { "q2" }.to_owned();
    let agent = |rng: &mut StdRng| format!("a{}", rng.random_range(1..=3));
    let reason = |rng: &mut StdRng| ["completed", "abandoned", "failed"][rng.random_range(0..3)];
    if s != St::Ended && rng.random_bool(0.08) {
        return Kind::Ended(reason(rng));
    }
    let options: Vec<Kind> = match s {
        St::Initiated => vec![Kind::Queued(q(rng)), Kind::Routed(agent(rng))],
        St::Waiting => vec![
            Kind::Routed(agent(rng)),
            Kind::Routed(agent(rng)),
            Kind::TransferQueue(q(rng)),
        ],
        St::Ringing => vec![Kind::Answered],
        St::Active => vec![
            Kind::Hold,
            Kind::Hold,
            Kind::TransferQueue(q(rng)),
            Kind::TransferAgent(agent(rng)),
            Kind::Ended(reason(rng)),
        ],
        St::OnHold => vec![
            Kind::Resumed,
            Kind::Resumed,
            Kind::TransferAgent(agent(rng)),
        ],
        St::Ended => vec![Kind::Ended(reason(rng))],
    };
    options[rng.random_range(0..options.len())].clone()
}

fn any_kind(rng: &mut StdRng) -> Kind {
    let q = |rng: &mut StdRng| ["q1", "q2", "nope"][rng.random_range(0..3)].to_owned();
    match rng.random_range(0..9) {
        0 => Kind::Initiated(rng.random_bool(0.5).then(|| q(rng))),
        1 => Kind::Queued(q(rng)),
        2 => Kind::Routed("a1".into()),
        3 => Kind::Answered,
        4 => Kind::Hold,
        5 => Kind::Resumed,
        6 => Kind::TransferQueue(q(rng)),
        7 => Kind::TransferAgent("a2".into()),
        _ => Kind::Ended("completed"),
    }
}

async fn send(
    app: &TestApp,
    key: &str,
    method: reqwest::Method,
    path: &str,
    body: &Value,
) -> (StatusCode, Value) {
    let r = app
        .client
        .request(method, app.url(path))
        .header("X-API-Key", key)
        .json(body)
        .send()
        .await
        .expect("request");
    let s = r.status();
    let b = r.bytes().await.expect("body");
    (
        s,
        if b.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&b).expect("json")
        },
    )
}

async fn get(app: &TestApp, key: &str, path: &str) -> Value {
    let r = app
        .client
        .get(app.url(path))
        .header("X-API-Key", key)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::OK, "GET {path}");
    r.json().await.expect("json")
}

async fn run_case(app: &TestApp, case: u64, seed: u64) {
    let ctx = format!(
        "[{}] case {case} (PROPS_HTTP_SEED={seed})",
        support::backend()
    );
    let key = app.other_tenant(&format!("p{case}")).await;
    let (s, v) = send(
        app,
        &key,
        reqwest::Method::PATCH,
        "/api/v1/tenant",
        &json!({ "clock": "event_time" }),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    for (id, q) in queues() {
        let body = json!({ "id": id, "sla_threshold_s": q.sla_s, "ring_timeout_s": q.ring_s, "hold_max_s": q.hold_s,
                           "short_call_s": q.short_s, "survey_enabled": q.survey, "max_no_answer": 0 });
        let (s, v) = send(app, &key, reqwest::Method::POST, "/api/v1/queues", &body).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }

    let mut rng = StdRng::seed_from_u64(seed);
    let mut model = Model::default();
    let mut ts = 0i64;
    let mut sent: Vec<(String, Kind, i64, String)> = Vec::new();
    let mut log: Vec<String> = Vec::new();
    for n in 0..EVENTS_PER_CASE {
        let (call, kind, at, event_id) = if !sent.is_empty() && rng.random_bool(0.08) {
            // A redelivery of an earlier event, same event_id and body.
            sent[rng.random_range(0..sent.len())].clone()
        } else {
            let call = CALLS[rng.random_range(0..CALLS.len())].to_owned();
            let kind = match model.calls.get(&call) {
                None if rng.random_bool(0.9) => Kind::Initiated(match rng.random_range(0..3) {
                    0 => None,
                    1 => Some("q1".to_owned()),
                    _ => Some("q2".to_owned()),
                }),
                Some(c) if rng.random_bool(0.8) => fitting(&mut rng, c.status),
                _ => any_kind(&mut rng),
            };
            // Mostly forward by a few seconds, sometimes a long way (timers come due), sometimes
            // backwards; ms precision.
            ts += if rng.random_bool(0.2) {
                rng.random_range(0..70_000)
            } else {
                rng.random_range(0..6_000)
            };
            let at = if rng.random_bool(0.1) {
                ts - rng.random_range(0..30_000)
            } else {
                ts
            };
            (call, kind, at, format!("e{n}"))
        };
        sent.push((call.clone(), kind.clone(), at, event_id.clone()));
        let body = kind.json(&call, at, &event_id);
        let want = model.apply(&call, &kind, at, &event_id);
        let (s, v) = send(app, &key, reqwest::Method::POST, "/api/v1/events", &body).await;
        log.push(format!("{body} -> {s} {v}"));
        let trace = || format!("{ctx}: event #{n}\n{}", log.join("\n"));
        match want {
            Answer::Created { seq, status } => {
                assert_eq!(s, StatusCode::CREATED, "{}", trace());
                assert_eq!(
                    (v["seq"].as_i64(), v["status"].as_str(), &v["duplicate"]),
                    (Some(seq), Some(status.name()), &json!(false)),
                    "{}",
                    trace()
                );
            }
            Answer::Duplicate { seq, status } => {
                assert_eq!(s, StatusCode::OK, "{}", trace());
                assert_eq!(
                    (v["seq"].as_i64(), v["status"].as_str(), &v["duplicate"]),
                    (Some(seq), Some(status.name()), &json!(true)),
                    "{}",
                    trace()
                );
            }
            Answer::Conflict(st) => {
                assert_eq!(s, StatusCode::CONFLICT, "{}", trace());
                assert_eq!(v["call_status"].as_str(), Some(st.name()), "{}", trace());
            }
            Answer::NotFound => assert_eq!(s, StatusCode::NOT_FOUND, "{}", trace()),
            Answer::Invalid => {
                assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{}", trace());
                assert_eq!(v["field"], "queue_id", "{}", trace());
            }
        }
    }
    let trace = log.join("\n");

    // Each call's history is the model's, seq for seq (so every 201 is there, at its seq, and a
    // refused event left no trace); the row is the model's call.
    let mut total = 0;
    for (id, c) in &model.calls {
        let h = get(app, &key, &format!("/api/v1/calls/{id}/events?limit=500")).await;
        let got: Vec<(i64, String, String)> = h["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["seq"].as_i64().unwrap(),
                    e["type"].as_str().unwrap().to_owned(),
                    e["status"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(got, c.history, "{ctx}: history of {id}\n{trace}");
        total += got.len();
        let row = get(app, &key, &format!("/api/v1/calls/{id}")).await;
        let flags: std::collections::BTreeSet<&str> = row["flags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap())
            .collect();
        assert_eq!(flags, c.flags, "{ctx}: flags of {id}\n{trace}");
        let s = |ms: i64| ms as f64 / 1000.0;
        assert_eq!(
            (
                row["status"].as_str(),
                row["talk_s"].as_f64(),
                row["hold_s"].as_f64(),
                row["wait_s"].as_f64()
            ),
            (
                Some(c.status.name()),
                Some(s(c.talk)),
                Some(s(c.hold)),
                c.wait.map(s)
            ),
            "{ctx}: row of {id}\n{trace}"
        );
        assert_eq!(
            (
                row["queue_id"].as_str(),
                row["first_queue_id"].as_str(),
                row["agent_id"].as_str()
            ),
            (
                c.queue.as_deref(),
                c.first_queue.as_deref(),
                c.agent.as_deref()
            ),
            "{ctx}: queues/agent of {id}\n{trace}"
        );
        assert_eq!(
            row["last_seq"].as_i64(),
            c.history.last().map(|e| e.0),
            "{ctx}: last_seq of {id}"
        );
    }
    // Nothing else was written: the tenant's seqs are exactly 1..=model.seq.
    assert_eq!(total as i64, model.seq, "{ctx}: events stored\n{trace}");
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for c in model.calls.values() {
        for e in &c.history {
            *kinds.entry(e.1.clone()).or_default() += 1;
        }
    }
    let codes = log
        .iter()
        .fold(BTreeMap::<String, usize>::new(), |mut m, l| {
            let code = l
                .rsplit(" -> ")
                .next()
                .unwrap_or("")
                .chars()
                .take(3)
                .collect::<String>();
            *m.entry(code).or_default() += 1;
            m
        });
    eprintln!("{ctx}: answers {codes:?}; history {kinds:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_event_sequences_match_the_model() {
    let cases: u64 = std::env::var("PROPS_HTTP_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16);
    let base: u64 = std::env::var("PROPS_HTTP_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5b1d_2026);
    let app = TestApp::spawn().await;
    for case in 0..cases {
        run_case(&app, case, base.wrapping_add(case)).await;
    }
}
