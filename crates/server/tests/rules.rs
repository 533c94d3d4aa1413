//! Business rules through the real server (DESIGN.md "Business rules"): SLA, ring timeout and
//! agent breaks, long wait, long hold, short-call review, survey, engine-made events in the
//! call's history, queue settings changes; on the `event_time` clock, plus one live-clock run.

mod support;

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::{call, ev, ok, route_and_answer, t, urlencode, TestApp};

/// The call's full history (every field).
async fn events(app: &TestApp, id: &str) -> Vec<Value> {
    let (s, v) = app
        .get(&format!("/api/v1/calls/{}/events?limit=500", urlencode(id)))
        .await;
    assert_eq!(s, StatusCode::OK, "events {id}: {v}");
    v["items"].as_array().unwrap().clone()
}

/// The first event of `ty` in the call's history.
async fn find(app: &TestApp, id: &str, ty: &str) -> Option<Value> {
    events(app, id).await.into_iter().find(|e| e["type"] == ty)
}

fn flags(c: &Value) -> Vec<String> {
    c["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_owned())
        .collect()
}

async fn alerts(app: &TestApp, query: &str) -> Vec<Value> {
    let (s, v) = app.get(&format!("/api/v1/alerts?{query}")).await;
    assert_eq!(s, StatusCode::OK, "alerts?{query}: {v}");
    v["items"].as_array().unwrap().clone()
}

fn f64_of(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// A server on the event-time clock with queue `q` (settings merged over the given ones).
async fn app_with_queue(settings: Value) -> TestApp {
    let app = TestApp::spawn().await;
    app.clock("event_time").await;
    let mut q = json!({"id": "q"});
    if let Value::Object(m) = settings {
        for (k, x) in m {
            q[k] = x;
        }
    }
    app.queue(q).await;
    app
}

// ---------------------------------------------------------------------------------------------
// SLA and long wait

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answered_after_threshold_breaches_sla_and_alerts_long_wait() {
    let app = app_with_queue(json!({})).await;
    ok(
        &app,
        ev("call_initiated", "C1", 0, json!({"queue_id": "q"})),
    )
    .await;
    ok(&app, ev("call_routed", "C1", 29, json!({"agent_id": "a1"}))).await;
    assert!(
        find(&app, "C1", "sla_breached").await.is_none(),
        "not yet due at +29"
    );
    let v = ok(&app, ev("call_answered", "C1", 31, json!({}))).await;
    assert_eq!(v["status"], "active");

    let h: Vec<String> = app.history("C1").await;
    assert_eq!(
        h,
        [
            "call_initiated",
            "call_routed",
            "sla_breached",
            "call_answered",
            "long_wait"
        ],
        "the timer fired before the answer"
    );
    let sla = find(&app, "C1", "sla_breached").await.unwrap();
    assert_eq!(sla["timestamp"], t(30), "engine event carries the deadline");
    assert_eq!(sla["data"]["threshold_s"], 30);
    assert_eq!(sla["data"]["queue_id"], "q");
    assert_eq!(
        sla["status"], "ringing",
        "annotates without moving the call"
    );
    let lw = find(&app, "C1", "long_wait").await.unwrap();
    assert_eq!(f64_of(&lw["data"]["wait_s"]), 31.0);
    assert_eq!(lw["timestamp"], t(31));

    let c = call(&app, "C1").await;
    let f = flags(&c);
    assert!(f.contains(&"sla_breached".to_owned()), "{f:?}");
    assert!(f.contains(&"long_wait".to_owned()), "{f:?}");
    assert_eq!(f64_of(&c["wait_s"]), 31.0);

    let a = alerts(&app, "type=sla_breached").await;
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(a[0]["call_id"], "C1");
    assert_eq!(a[0]["timestamp"], t(30));
    assert_eq!(a[0]["seq"], sla["seq"]);
    let a = alerts(&app, "type=long_wait").await;
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(a[0]["call_id"], "C1");
    assert_eq!(a[0]["data"]["threshold_s"], 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answered_at_exactly_the_threshold_breaches_nothing() {
    let app = app_with_queue(json!({})).await;
    ok(
        &app,
        ev("call_initiated", "C1", 0, json!({"queue_id": "q"})),
    )
    .await;
    route_and_answer(&app, "C1", "a1", 29, 30).await;
    // Time moves far on: nothing may fire for the answered call.
    ok(
        &app,
        ev("call_ended", "C1", 50, json!({"end_reason": "completed"})),
    )
    .await;
    ok(&app, ev("call_initiated", "OTHER", 500, json!({}))).await;

    let h = app.history("C1").await;
    assert!(
        !h.iter().any(|t| t == "sla_breached" || t == "long_wait"),
        "{h:?}"
    );
    assert_eq!(
        h,
        [
            "call_initiated",
            "call_routed",
            "call_answered",
            "call_ended",
            "survey_requested"
        ]
    );
    let c = call(&app, "C1").await;
    assert_eq!(flags(&c), Vec::<String>::new());
    assert_eq!(f64_of(&c["wait_s"]), 30.0);
    assert_eq!(alerts(&app, "").await, Vec::<Value>::new());
    let (_, l) = app.get("/api/v1/calls?flag=sla_breached").await;
    assert_eq!(l["items"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_after_threshold_breaches_sla() {
    let app = app_with_queue(json!({})).await;
    ok(
        &app,
        ev("call_initiated", "C1", 0, json!({"queue_id": "q"})),
    )
    .await;
    let v = ok(
        &app,
        ev("call_ended", "C1", 45, json!({"end_reason": "abandoned"})),
    )
    .await;
    assert_eq!(v["status"], "ended");
    assert_eq!(
        app.history("C1").await,
        ["call_initiated", "sla_breached", "call_ended"],
        "no long_wait, no survey, no review"
    );
    let sla = find(&app, "C1", "sla_breached").await.unwrap();
    assert_eq!(sla["timestamp"], t(30));
    let c = call(&app, "C1").await;
    assert_eq!(flags(&c), ["sla_breached"]);
    assert_eq!(
        f64_of(&c["wait_s"]),
        45.0,
        "wait of a call never answered runs to its end"
    );
    assert_eq!(c["end_reason"], "abandoned");
    let a = alerts(&app, "").await;
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(a[0]["type"], "sla_breached");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_within_threshold_breaches_nothing() {
    let app = app_with_queue(json!({})).await;
    ok(
        &app,
        ev("call_initiated", "C1", 0, json!({"queue_id": "q"})),
    )
    .await;
    ok(
        &app,
        ev("call_ended", "C1", 20, json!({"end_reason": "abandoned"})),
    )
    .await;
    ok(&app, ev("call_initiated", "LATER", 300, json!({}))).await;
    assert_eq!(app.history("C1").await, ["call_initiated", "call_ended"]);
    assert!(alerts(&app, "").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_calls_event_fires_a_waiting_calls_timer() {
    let app = app_with_queue(json!({})).await;
    ok(
        &app,
        ev("call_initiated", "WAITER", 0, json!({"queue_id": "q"})),
    )
    .await;
    // Another call's event exactly at the deadline: not strictly past it, nothing fires.
    ok(&app, ev("call_initiated", "B", 30, json!({}))).await;
    assert_eq!(app.history("WAITER").await, ["call_initiated"]);
    assert!(alerts(&app, "").await.is_empty());
    // Past it: the waiting call breaches although it sent nothing.
    ok(&app, ev("call_initiated", "C", 31, json!({}))).await;
    assert_eq!(
        app.history("WAITER").await,
        ["call_initiated", "sla_breached"]
    );
    let sla = find(&app, "WAITER", "sla_breached").await.unwrap();
    assert_eq!(sla["timestamp"], t(30));
    let c = call(&app, "WAITER").await;
    assert_eq!(c["status"], "waiting");
    assert_eq!(flags(&c), ["sla_breached"]);
    assert_eq!(c["last_seq"], sla["seq"]);
    let a = alerts(&app, "type=sla_breached").await;
    assert_eq!(a.len(), 1);
    assert_eq!(a[0]["call_id"], "WAITER");
    // The breach happened before C's event: its seq is lower.
    let c_seq = events(&app, "C").await[0]["seq"].as_i64().unwrap();
    assert!(sla["seq"].as_i64().unwrap() < c_seq);
    // It fires once: answering later adds long_wait but no second breach.
    route_and_answer(&app, "WAITER", "a1", 40, 41).await;
    let h = app.history("WAITER").await;
    assert_eq!(
        h.iter().filter(|t| *t == "sla_breached").count(),
        1,
        "{h:?}"
    );
    assert_eq!(alerts(&app, "type=sla_breached").await.len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Ring timeout and agent breaks

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ring_timeout_requeues_counts_misses_and_breaks_the_agent() {
    let app = app_with_queue(json!({"max_no_answer": 2, "sla_threshold_s": 3600})).await;
    ok(
        &app,
        ev("call_initiated", "C1", 0, json!({"queue_id": "q"})),
    )
    .await;
    ok(&app, ev("call_routed", "C1", 10, json!({"agent_id": "a1"}))).await;
    // Exactly at routed + 15: not yet.
    ok(&app, ev("call_initiated", "X1", 25, json!({}))).await;
    assert_eq!(call(&app, "C1").await["status"], "ringing");
    // Past it: re-queued.
    ok(&app, ev("call_initiated", "X2", 26, json!({}))).await;
    let c = call(&app, "C1").await;
    assert_eq!(c["status"], "waiting");
    assert_eq!(c["agent_id"], Value::Null);
    assert_eq!(c["queue_id"], "q");
    let rt = find(&app, "C1", "call_retransfer")
        .await
        .expect("call_retransfer");
    assert_eq!(rt["timestamp"], t(25));
    assert_eq!(rt["status"], "waiting");
    assert_eq!(rt["data"]["agent_id"], "a1");
    assert_eq!(rt["data"]["missed"], 1);
    assert_eq!(rt["data"]["agent_on_break"], false);

    // Second consecutive miss: max_no_answer = 2 puts the agent on break.
    ok(&app, ev("call_routed", "C1", 30, json!({"agent_id": "a1"}))).await;
    ok(&app, ev("call_initiated", "X3", 46, json!({}))).await;
    let rts: Vec<Value> = events(&app, "C1")
        .await
        .into_iter()
        .filter(|e| e["type"] == "call_retransfer")
        .collect();
    assert_eq!(rts.len(), 2);
    assert_eq!(rts[1]["timestamp"], t(45));
    assert_eq!(rts[1]["data"]["missed"], 2);
    assert_eq!(rts[1]["data"]["agent_on_break"], true);
    assert_eq!(call(&app, "C1").await["status"], "waiting");

    // An answer resets the count: the next miss is the first again.
    route_and_answer(&app, "C1", "a1", 50, 52).await;
    ok(
        &app,
        ev("call_initiated", "C2", 60, json!({"queue_id": "q"})),
    )
    .await;
    ok(&app, ev("call_routed", "C2", 61, json!({"agent_id": "a1"}))).await;
    ok(&app, ev("call_initiated", "X4", 77, json!({}))).await;
    let rt = find(&app, "C2", "call_retransfer")
        .await
        .expect("C2 retransfer");
    assert_eq!(rt["data"]["missed"], 1);
    assert_eq!(rt["data"]["agent_on_break"], false);
    assert_eq!(
        call(&app, "C1").await["status"],
        "active",
        "the answered call is not re-queued"
    );
    assert_eq!(
        events(&app, "C1")
            .await
            .iter()
            .filter(|e| e["type"] == "call_retransfer")
            .count(),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answer_past_ring_timeout_is_refused_at_exactly_it_accepted() {
    let app = app_with_queue(json!({"sla_threshold_s": 3600})).await;
    ok(
        &app,
        ev("call_initiated", "LATE", 0, json!({"queue_id": "q"})),
    )
    .await;
    ok(
        &app,
        ev("call_routed", "LATE", 10, json!({"agent_id": "a1"})),
    )
    .await;
    let (s, v) = app.event(ev("call_answered", "LATE", 26, json!({}))).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["call_status"], "waiting", "the ring timer fired first");
    assert_eq!(
        app.history("LATE").await,
        ["call_initiated", "call_routed", "call_retransfer"]
    );
    assert_eq!(call(&app, "LATE").await["status"], "waiting");

    ok(
        &app,
        ev("call_initiated", "EDGE", 100, json!({"queue_id": "q"})),
    )
    .await;
    ok(
        &app,
        ev("call_routed", "EDGE", 110, json!({"agent_id": "a2"})),
    )
    .await;
    let v = ok(&app, ev("call_answered", "EDGE", 125, json!({}))).await;
    assert_eq!(v["status"], "active");
    assert_eq!(
        app.history("EDGE").await,
        ["call_initiated", "call_routed", "call_answered"]
    );
}

// ---------------------------------------------------------------------------------------------
// Hold

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_longer_than_max_alerts_long_hold() {
    let app = app_with_queue(json!({"hold_max_s": 60})).await;
    ok(
        &app,
        ev("call_initiated", "H1", 0, json!({"queue_id": "q"})),
    )
    .await;
    route_and_answer(&app, "H1", "a1", 1, 2).await;
    ok(&app, ev("call_hold", "H1", 10, json!({}))).await;
    // Another call's event past the deadline fires it while the call is still on hold.
    ok(&app, ev("call_initiated", "X", 71, json!({}))).await;
    let lh = find(&app, "H1", "long_hold").await.expect("long_hold");
    assert_eq!(lh["timestamp"], t(70));
    assert_eq!(lh["status"], "on_hold");
    assert_eq!(lh["data"]["threshold_s"], 60);
    assert_eq!(f64_of(&lh["data"]["hold_s"]), 60.0);
    let c = call(&app, "H1").await;
    assert_eq!(c["status"], "on_hold");
    assert_eq!(flags(&c), ["long_hold"]);
    let a = alerts(&app, "type=long_hold").await;
    assert_eq!(a.len(), 1);
    assert_eq!(a[0]["call_id"], "H1");
    assert_eq!(a[0]["timestamp"], t(70));

    ok(&app, ev("call_resumed", "H1", 100, json!({}))).await;
    ok(
        &app,
        ev("call_ended", "H1", 130, json!({"end_reason": "completed"})),
    )
    .await;
    let c = call(&app, "H1").await;
    assert_eq!(f64_of(&c["hold_s"]), 90.0);
    assert_eq!(f64_of(&c["talk_s"]), 38.0);
    assert_eq!(alerts(&app, "type=long_hold").await.len(), 1, "fires once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumed_with_own_event_past_max_alerts_long_hold_first() {
    let app = app_with_queue(json!({"hold_max_s": 60})).await;
    ok(
        &app,
        ev("call_initiated", "H1", 0, json!({"queue_id": "q"})),
    )
    .await;
    route_and_answer(&app, "H1", "a1", 1, 2).await;
    ok(&app, ev("call_hold", "H1", 10, json!({}))).await;
    ok(&app, ev("call_resumed", "H1", 71, json!({}))).await;
    assert_eq!(
        app.history("H1").await,
        [
            "call_initiated",
            "call_routed",
            "call_answered",
            "call_hold",
            "long_hold",
            "call_resumed"
        ]
    );
    assert_eq!(alerts(&app, "type=long_hold").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumed_at_exactly_max_is_no_long_hold() {
    let app = app_with_queue(json!({"hold_max_s": 60})).await;
    ok(
        &app,
        ev("call_initiated", "H2", 0, json!({"queue_id": "q"})),
    )
    .await;
    route_and_answer(&app, "H2", "a1", 1, 2).await;
    ok(&app, ev("call_hold", "H2", 10, json!({}))).await;
    ok(&app, ev("call_resumed", "H2", 70, json!({}))).await;
    ok(&app, ev("call_initiated", "X", 500, json!({}))).await;
    let h = app.history("H2").await;
    assert!(!h.iter().any(|t| t == "long_hold"), "{h:?}");
    assert!(!flags(&call(&app, "H2").await).contains(&"long_hold".to_owned()));
    assert!(alerts(&app, "type=long_hold").await.is_empty());
    assert_eq!(f64_of(&call(&app, "H2").await["hold_s"]), 60.0);
}

// ---------------------------------------------------------------------------------------------
// Review and survey

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_talk_is_flagged_review() {
    let app = app_with_queue(json!({"short_call_s": 10})).await;
    // 9 s of talk: review.
    ok(
        &app,
        ev("call_initiated", "S1", 0, json!({"queue_id": "q"})),
    )
    .await;
    route_and_answer(&app, "S1", "a1", 1, 2).await;
    ok(
        &app,
        ev("call_ended", "S1", 11, json!({"end_reason": "completed"})),
    )
    .await;
    // Exactly 10 s: no review.
    ok(
        &app,
        ev("call_initiated", "S2", 20, json!({"queue_id": "q"})),
    )
    .await;
    route_and_answer(&app, "S2", "a1", 21, 22).await;
    ok(
        &app,
        ev("call_ended", "S2", 32, json!({"end_reason": "completed"})),
    )
    .await;
    // A long call that is mostly hold: 6 s of talk, review.
    ok(
        &app,
        ev("call_initiated", "S3", 40, json!({"queue_id": "q"})),
    )
    .await;
    route_and_answer(&app, "S3", "a1", 41, 42).await;
    ok(&app, ev("call_hold", "S3", 43, json!({}))).await;
    ok(&app, ev("call_resumed", "S3", 90, json!({}))).await;
    ok(
        &app,
        ev("call_ended", "S3", 95, json!({"end_reason": "completed"})),
    )
    .await;

    let f = find(&app, "S1", "call_flagged").await.expect("S1 flagged");
    assert_eq!(f["data"]["flag"], "review");
    assert_eq!(f64_of(&f["data"]["talk_s"]), 9.0);
    assert_eq!(f["timestamp"], t(11));
    assert_eq!(flags(&call(&app, "S1").await), ["review"]);

    assert!(find(&app, "S2", "call_flagged").await.is_none());
    assert_eq!(flags(&call(&app, "S2").await), Vec::<String>::new());

    let f = find(&app, "S3", "call_flagged").await.expect("S3 flagged");
    assert_eq!(f64_of(&f["data"]["talk_s"]), 6.0);
    let (_, l) = app.get("/api/v1/calls?flag=review").await;
    let mut listed: Vec<&str> = l["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["call_id"].as_str().unwrap())
        .collect();
    listed.sort();
    assert_eq!(listed, ["S1", "S3"]);
    // Review is a flag, not a supervisor alert.
    assert!(alerts(&app, "").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unanswered_call_is_not_flagged_review() {
    let app = app_with_queue(json!({"short_call_s": 10})).await;
    ok(
        &app,
        ev("call_initiated", "U1", 0, json!({"queue_id": "q"})),
    )
    .await;
    ok(
        &app,
        ev("call_ended", "U1", 3, json!({"end_reason": "abandoned"})),
    )
    .await;
    assert_eq!(app.history("U1").await, ["call_initiated", "call_ended"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survey_for_completed_answered_calls_only() {
    let app = app_with_queue(json!({})).await;
    app.queue(json!({"id": "nosurvey", "survey_enabled": false}))
        .await;
    // Completed answered call: survey.
    ok(
        &app,
        ev("call_initiated", "DONE", 0, json!({"queue_id": "q"})),
    )
    .await;
    route_and_answer(&app, "DONE", "a7", 1, 2).await;
    ok(
        &app,
        ev("call_ended", "DONE", 40, json!({"end_reason": "completed"})),
    )
    .await;
    // Abandoned: none.
    ok(
        &app,
        ev("call_initiated", "GONE", 50, json!({"queue_id": "q"})),
    )
    .await;
    ok(
        &app,
        ev("call_ended", "GONE", 55, json!({"end_reason": "abandoned"})),
    )
    .await;
    // Answered but failed: none.
    ok(
        &app,
        ev("call_initiated", "FAIL", 60, json!({"queue_id": "q"})),
    )
    .await;
    route_and_answer(&app, "FAIL", "a7", 61, 62).await;
    ok(
        &app,
        ev("call_ended", "FAIL", 90, json!({"end_reason": "failed"})),
    )
    .await;
    // Survey disabled on the queue: none.
    ok(
        &app,
        ev(
            "call_initiated",
            "OFF",
            100,
            json!({"queue_id": "nosurvey"}),
        ),
    )
    .await;
    route_and_answer(&app, "OFF", "a7", 101, 102).await;
    ok(
        &app,
        ev("call_ended", "OFF", 140, json!({"end_reason": "completed"})),
    )
    .await;

    let s = find(&app, "DONE", "survey_requested")
        .await
        .expect("survey for DONE");
    assert_eq!(s["data"]["agent_id"], "a7");
    assert_eq!(s["timestamp"], t(40));
    assert_eq!(
        app.history("DONE").await.last().map(String::as_str),
        Some("survey_requested")
    );
    for id in ["GONE", "FAIL", "OFF"] {
        assert!(
            find(&app, id, "survey_requested").await.is_none(),
            "{id}: {:?}",
            app.history(id).await
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Engine-made events in the history; queue settings changes

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_events_appear_in_history_in_seq_order() {
    let app = app_with_queue(json!({})).await;
    ok(
        &app,
        ev("call_initiated", "E1", 0, json!({"queue_id": "q"})),
    )
    .await;
    ok(&app, ev("call_routed", "E1", 5, json!({"agent_id": "a1"}))).await;
    ok(&app, ev("call_initiated", "TICK", 21, json!({}))).await; // ring timeout of E1 at +20
    route_and_answer(&app, "E1", "a2", 25, 35).await; // SLA at +30 first, then long_wait
    ok(&app, ev("call_hold", "E1", 36, json!({}))).await;
    ok(&app, ev("call_resumed", "E1", 100, json!({}))).await; // long_hold at +96 first
    ok(
        &app,
        ev("call_ended", "E1", 101, json!({"end_reason": "completed"})),
    )
    .await; // review, survey

    let h = events(&app, "E1").await;
    let got: Vec<(String, String)> = h
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_owned(),
                e["timestamp"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [
        ("call_initiated", 0),
        ("call_routed", 5),
        ("call_retransfer", 20),
        ("call_routed", 25),
        ("sla_breached", 30),
        ("call_answered", 35),
        ("long_wait", 35),
        ("call_hold", 36),
        ("long_hold", 96),
        ("call_resumed", 100),
        ("call_ended", 101),
        ("call_flagged", 101),
        ("survey_requested", 101),
    ]
    .iter()
    .map(|(ty, s)| (ty.to_string(), t(*s)))
    .collect();
    assert_eq!(got, want);
    let seqs: Vec<i64> = h.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "strictly increasing: {seqs:?}"
    );
    let uuid = call(&app, "E1").await["id"].clone();
    assert!(h
        .iter()
        .all(|e| e["call_uuid"] == uuid && e["call_id"] == "E1"));
    assert!(h
        .iter()
        .filter(|e| e["type"] == "call_retransfer" || e["type"] == "sla_breached")
        .all(|e| e["event_id"].is_null()));

    // Paging the history by cursor gives the same sequence.
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..20 {
        let path = match &cursor {
            Some(c) => format!("/api/v1/calls/E1/events?limit=3&cursor={}", urlencode(c)),
            None => "/api/v1/calls/E1/events?limit=3".to_owned(),
        };
        let (s, v) = app.get(&path).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        paged.extend(
            v["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["seq"].as_i64().unwrap()),
        );
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(paged, seqs);

    let c = call(&app, "E1").await;
    let mut f = flags(&c);
    f.sort();
    assert_eq!(f, ["long_hold", "long_wait", "review", "sla_breached"]);
    assert_eq!(f64_of(&c["wait_s"]), 35.0);
    assert_eq!(f64_of(&c["talk_s"]), 2.0);
    assert_eq!(f64_of(&c["hold_s"]), 64.0);
    assert_eq!(c["last_seq"].as_i64(), seqs.last().copied());
    // The tick call's own event came after the retransfer it caused.
    let tick = events(&app, "TICK").await[0]["seq"].as_i64().unwrap();
    assert!(seqs[2] < tick && tick < seqs[3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_patch_changes_threshold_of_newly_armed_timers() {
    let app = app_with_queue(json!({"sla_threshold_s": 30})).await;
    ok(
        &app,
        ev("call_initiated", "OLD", 0, json!({"queue_id": "q"})),
    )
    .await;
    let (s, v) = app
        .patch("/api/v1/queues/q", &json!({"sla_threshold_s": 10}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["sla_threshold_s"], 10);
    ok(
        &app,
        ev("call_initiated", "NEW", 1, json!({"queue_id": "q"})),
    )
    .await;
    ok(&app, ev("call_initiated", "TICK", 12, json!({}))).await;

    let sla = find(&app, "NEW", "sla_breached")
        .await
        .expect("NEW breached its 10 s threshold");
    assert_eq!(sla["timestamp"], t(11));
    assert_eq!(sla["data"]["threshold_s"], 10);
    assert!(
        find(&app, "OLD", "sla_breached").await.is_none(),
        "OLD's timer was armed with 30 s"
    );
    let a = alerts(&app, "type=sla_breached").await;
    assert_eq!(a.len(), 1);
    assert_eq!(a[0]["call_id"], "NEW");

    // Ring timeout and hold max from a patch apply too.
    let (s, _) = app
        .patch("/api/v1/queues/q", &json!({"ring_timeout_s": 5}))
        .await;
    assert_eq!(s, StatusCode::OK);
    ok(
        &app,
        ev("call_routed", "NEW", 20, json!({"agent_id": "a1"})),
    )
    .await;
    ok(&app, ev("call_initiated", "TICK2", 26, json!({}))).await;
    let rt = find(&app, "NEW", "call_retransfer")
        .await
        .expect("5 s ring timeout");
    assert_eq!(rt["timestamp"], t(25));
}

// ---------------------------------------------------------------------------------------------
// Live clock

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_clock_fires_sla_by_wall_clock() {
    let app = TestApp::spawn().await;
    let (_, tenant) = app.get("/api/v1/tenant").await;
    assert_eq!(tenant["clock"], "live");
    app.queue(json!({"id": "fast", "sla_threshold_s": 1})).await;
    let v = ok(
        &app,
        json!({"type": "call_initiated", "call_id": "LIVE1", "queue_id": "fast"}),
    )
    .await;
    assert_eq!(v["status"], "waiting");

    let deadline = Instant::now() + Duration::from_secs(20);
    let found = loop {
        let a = alerts(&app, "type=sla_breached").await;
        if let Some(x) = a.into_iter().find(|x| x["call_id"] == "LIVE1") {
            break Some(x);
        }
        if Instant::now() > deadline {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let alert = found.expect("sla_breached alert on the live clock within 20 s");
    assert_eq!(alert["data"]["threshold_s"], 1);
    assert_eq!(alert["queue_id"], "fast");
    let c = call(&app, "LIVE1").await;
    assert_eq!(c["status"], "waiting");
    assert_eq!(flags(&c), ["sla_breached"]);
    assert_eq!(
        app.history("LIVE1").await,
        ["call_initiated", "sla_breached"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sla_timer_starts_at_queue_entry_not_at_initiation() {
    let app = app_with_queue(json!({})).await;
    ok(&app, ev("call_initiated", "IVR", 0, json!({}))).await;
    ok(&app, ev("call_initiated", "TICK", 35, json!({}))).await;
    assert_eq!(
        app.history("IVR").await,
        ["call_initiated"],
        "not queued: no SLA timer"
    );
    ok(&app, ev("call_queued", "IVR", 36, json!({"queue_id": "q"}))).await;
    route_and_answer(&app, "IVR", "a1", 60, 66).await;
    assert_eq!(
        app.history("IVR").await,
        [
            "call_initiated",
            "call_queued",
            "call_routed",
            "call_answered"
        ]
    );
    ok(&app, ev("call_initiated", "IVR2", 100, json!({}))).await;
    ok(
        &app,
        ev("call_queued", "IVR2", 110, json!({"queue_id": "q"})),
    )
    .await;
    route_and_answer(&app, "IVR2", "a2", 130, 141).await;
    let sla = find(&app, "IVR2", "sla_breached")
        .await
        .expect("queued +31 s");
    assert_eq!(sla["timestamp"], t(140));
    assert_eq!(f64_of(&call(&app, "IVR2").await["wait_s"]), 31.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_wait_is_alerted_once_per_call() {
    let app = app_with_queue(json!({})).await;
    ok(
        &app,
        ev("call_initiated", "W1", 0, json!({"queue_id": "q"})),
    )
    .await;
    route_and_answer(&app, "W1", "a1", 39, 40).await;
    // A blind transfer answered within the same second (second-resolution traces do this).
    ok(
        &app,
        ev("call_transferred", "W1", 40, json!({"agent_id": "a2"})),
    )
    .await;
    ok(&app, ev("call_answered", "W1", 40, json!({}))).await;
    let h = app.history("W1").await;
    assert_eq!(h.iter().filter(|t| *t == "long_wait").count(), 1, "{h:?}");
    assert_eq!(alerts(&app, "type=long_wait").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn armed_sla_timer_reports_the_threshold_it_was_armed_with() {
    let app = app_with_queue(json!({"sla_threshold_s": 30})).await;
    ok(
        &app,
        ev("call_initiated", "OLD", 0, json!({"queue_id": "q"})),
    )
    .await;
    let (s, _) = app
        .patch("/api/v1/queues/q", &json!({"sla_threshold_s": 10}))
        .await;
    assert_eq!(s, StatusCode::OK);
    ok(&app, ev("call_initiated", "TICK", 31, json!({}))).await;
    let sla = find(&app, "OLD", "sla_breached")
        .await
        .expect("armed with 30 s");
    assert_eq!(sla["timestamp"], t(30));
    assert_eq!(
        sla["data"]["threshold_s"], 30,
        "breached at queued + 30 s: {sla}"
    );
}
