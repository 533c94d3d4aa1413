//! Restart and durability: a graceful stop followed by a start on the same database keeps every
//! accepted event, reloads live calls (state, seq, idempotency keys, timers) and the tenant's
//! settings.

mod support;

use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{json, Value};

use support::{call, ev, t, TestApp};

fn queued(call: &str, queue: &str, at: i64) -> Value {
    ev(
        "call_initiated",
        call,
        at,
        json!({ "call_type": "voice", "queue_id": queue }),
    )
}

async fn post_ok(app: &TestApp, body: Value) -> Value {
    let (s, v) = app.event(body.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "event {body}: {v}");
    v
}

fn seq(v: &Value) -> i64 {
    v["seq"].as_i64().expect("seq")
}

/// The call's whole history as (seq, type, status, timestamp), following cursors.
async fn history(app: &TestApp, call: &str) -> Vec<(i64, String, String, String)> {
    let mut out = Vec::new();
    let mut cursor = String::new();
    loop {
        let (s, v) = app
            .get(&format!("/api/v1/calls/{call}/events?limit=500{cursor}"))
            .await;
        assert_eq!(s, StatusCode::OK, "history of {call}: {v}");
        for e in v["items"].as_array().unwrap() {
            out.push((
                e["seq"].as_i64().unwrap(),
                e["type"].as_str().unwrap().to_owned(),
                e["status"].as_str().unwrap().to_owned(),
                e["timestamp"].as_str().unwrap().to_owned(),
            ));
        }
        match v["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return out,
        }
    }
}

fn types(h: &[(i64, String, String, String)]) -> Vec<&str> {
    h.iter().map(|e| e.1.as_str()).collect()
}

/// Every call of the tenant (call_id -> status), following cursors.
async fn all_calls(app: &TestApp) -> std::collections::BTreeMap<String, Value> {
    let mut out = std::collections::BTreeMap::new();
    let mut cursor = String::new();
    loop {
        let (s, v) = app.get(&format!("/api/v1/calls?limit=500{cursor}")).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        for c in v["items"].as_array().unwrap() {
            out.insert(c["call_id"].as_str().unwrap().to_owned(), c.clone());
        }
        match v["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return out,
        }
    }
}

async fn restart(app: TestApp) -> TestApp {
    let (url, dir) = app.stop().await;
    TestApp::spawn_on(url, dir).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_accepted_before_a_graceful_stop_are_all_there_after_restart() {
    let app = TestApp::spawn().await;
    app.clock("event_time").await;
    app.queue(json!({ "id": "q1" })).await;
    // Full lifecycles (with engine-made events), live calls in every state, and a bulk load
    // sent concurrently right before the stop.
    for i in 0..5 {
        let c = format!("life{i}");
        post_ok(&app, queued(&c, "q1", i)).await;
        post_ok(
            &app,
            ev("call_routed", &c, i + 1, json!({ "agent_id": "a1" })),
        )
        .await;
        post_ok(&app, ev("call_answered", &c, i + 2, json!({}))).await;
        post_ok(
            &app,
            ev(
                "call_ended",
                &c,
                i + 3,
                json!({ "end_reason": "completed" }),
            ),
        )
        .await;
    }
    post_ok(
        &app,
        ev(
            "call_initiated",
            "st-init",
            10,
            json!({ "call_type": "voice" }),
        ),
    )
    .await;
    post_ok(&app, queued("st-wait", "q1", 10)).await;
    post_ok(&app, queued("st-ring", "q1", 10)).await;
    post_ok(
        &app,
        ev("call_routed", "st-ring", 11, json!({ "agent_id": "a2" })),
    )
    .await;
    post_ok(&app, queued("st-hold", "q1", 10)).await;
    post_ok(
        &app,
        ev("call_routed", "st-hold", 11, json!({ "agent_id": "a3" })),
    )
    .await;
    post_ok(&app, ev("call_answered", "st-hold", 12, json!({}))).await;
    post_ok(&app, ev("call_hold", "st-hold", 13, json!({}))).await;
    let app = std::sync::Arc::new(app);
    let mut bulk = Vec::new();
    for b in 0..4 {
        let app = app.clone();
        bulk.push(tokio::spawn(async move {
            let events = (0..500)
                .map(|i| {
                    ev(
                        "call_initiated",
                        &format!("bulk{b}-{i}"),
                        14,
                        json!({ "call_type": "video" }),
                    )
                })
                .collect();
            let v = app.batch(events).await;
            assert_eq!(v["accepted"], 500, "{v}");
        }));
    }
    for h in bulk {
        h.await.expect("bulk task");
    }
    let app = std::sync::Arc::into_inner(app).expect("sole owner");

    let before_calls = all_calls(&app).await;
    assert_eq!(before_calls.len(), 5 + 4 + 2000);
    let mut before_hist = std::collections::BTreeMap::new();
    for c in before_calls.keys().filter(|c| !c.starts_with("bulk")) {
        before_hist.insert(c.clone(), history(&app, c).await);
    }
    assert_eq!(
        types(&before_hist["life0"]),
        [
            "call_initiated",
            "call_routed",
            "call_answered",
            "call_ended",
            "call_flagged",
            "survey_requested"
        ]
    );

    let app = restart(app).await;
    let after_calls = all_calls(&app).await;
    assert_eq!(
        after_calls.keys().collect::<Vec<_>>(),
        before_calls.keys().collect::<Vec<_>>()
    );
    for (id, c) in &before_calls {
        assert_eq!(&after_calls[id], c, "call row of {id} after restart");
    }
    for (id, h) in &before_hist {
        assert_eq!(&history(&app, id).await, h, "history of {id} after restart");
    }
    for id in ["bulk0-0", "bulk3-499"] {
        assert_eq!(types(&history(&app, id).await), ["call_initiated"]);
    }
    let statuses: Vec<(&str, &str)> = ["st-init", "st-wait", "st-ring", "st-hold"]
        .iter()
        .map(|c| (*c, after_calls[*c]["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        statuses,
        [
            ("st-init", "initiated"),
            ("st-wait", "waiting"),
            ("st-ring", "ringing"),
            ("st-hold", "on_hold")
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_calls_continue_after_restart_with_seq_above_the_old_max() {
    let app = TestApp::spawn().await;
    app.clock("event_time").await;
    app.queue(json!({ "id": "q1" })).await;
    let w = post_ok(&app, queued("w1", "q1", 0)).await;
    post_ok(&app, queued("r1", "q1", 0)).await;
    post_ok(
        &app,
        ev("call_routed", "r1", 1, json!({ "agent_id": "a1" })),
    )
    .await;
    post_ok(&app, queued("h1", "q1", 0)).await;
    post_ok(
        &app,
        ev("call_routed", "h1", 1, json!({ "agent_id": "a2" })),
    )
    .await;
    post_ok(&app, ev("call_answered", "h1", 2, json!({}))).await;
    let last = post_ok(&app, ev("call_hold", "h1", 3, json!({}))).await;
    let old_max = seq(&last);

    let app = restart(app).await;
    // The reloaded state decides what fits: these are refused with the state from before.
    let (s, v) = app.event(queued("w1", "q1", 4)).await;
    assert_eq!(
        (s, v["call_status"].as_str()),
        (StatusCode::CONFLICT, Some("waiting")),
        "{v}"
    );
    let (s, v) = app.event(ev("call_answered", "w1", 4, json!({}))).await;
    assert_eq!(
        (s, v["call_status"].as_str()),
        (StatusCode::CONFLICT, Some("waiting")),
        "{v}"
    );
    let (s, v) = app.event(ev("call_hold", "h1", 4, json!({}))).await;
    assert_eq!(
        (s, v["call_status"].as_str()),
        (StatusCode::CONFLICT, Some("on_hold")),
        "{v}"
    );

    let a = post_ok(
        &app,
        ev("call_routed", "w1", 5, json!({ "agent_id": "a3" })),
    )
    .await;
    assert_eq!(a["status"], "ringing");
    assert_eq!(a["call_uuid"], w["call_uuid"], "same call after restart");
    assert_eq!(
        seq(&a),
        old_max + 1,
        "seq continues right after the old max"
    );
    let r = post_ok(&app, ev("call_answered", "r1", 6, json!({}))).await;
    assert_eq!(r["status"], "active");
    let b = post_ok(&app, ev("call_answered", "w1", 10, json!({}))).await;
    assert_eq!(b["status"], "active");
    let h = post_ok(&app, ev("call_resumed", "h1", 33, json!({}))).await;
    assert_eq!(h["status"], "active");
    post_ok(
        &app,
        ev("call_ended", "h1", 40, json!({ "end_reason": "completed" })),
    )
    .await;
    let c = post_ok(
        &app,
        ev(
            "call_ended",
            "w1",
            100,
            json!({ "end_reason": "completed" }),
        ),
    )
    .await;
    assert_eq!(c["status"], "ended");
    assert!(seq(&b) > seq(&a) && seq(&c) > seq(&b));
    assert_eq!(
        types(&history(&app, "w1").await),
        [
            "call_initiated",
            "call_routed",
            "call_answered",
            "call_ended",
            "survey_requested"
        ]
    );
    let row = call(&app, "w1").await;
    assert_eq!(
        (row["wait_s"].as_f64(), row["talk_s"].as_f64()),
        (Some(10.0), Some(90.0)),
        "{row}"
    );
    assert_eq!(row["agent_id"], "a3");
    let row = call(&app, "h1").await;
    // Talk 2→3 s and 33→40 s; hold 3→33 s, spanning the restart.
    assert_eq!(
        (row["talk_s"].as_f64(), row["hold_s"].as_f64()),
        (Some(8.0), Some(30.0)),
        "{row}"
    );
    assert_eq!(call(&app, "r1").await["status"], "active");

    // No seq was reused: the whole stream, from the start, is 1..=max without repeats.
    let max = all_calls(&app)
        .await
        .values()
        .map(|c| c["last_seq"].as_i64().unwrap())
        .max()
        .unwrap();
    let mut ws = tokio_tungstenite::connect_async(format!(
        "ws://{}/api/v1/stream?since=0&api_key={}",
        app.addr, app.key
    ))
    .await
    .expect("stream")
    .0;
    let mut got = Vec::new();
    while got.last() != Some(&max) {
        let m = tokio::time::timeout(std::time::Duration::from_secs(20), ws.next())
            .await
            .expect("stream message")
            .expect("open")
            .expect("ok");
        if let tokio_tungstenite::tungstenite::Message::Text(s) = m {
            let v: Value = serde_json::from_str(&s).unwrap();
            got.push(v["seq"].as_i64().unwrap());
        }
    }
    assert_eq!(got, (1..=max).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_event_id_after_restart_is_answered_with_the_original_seq() {
    let app = TestApp::spawn().await;
    app.clock("event_time").await;
    let live = ev(
        "call_initiated",
        "d-live",
        0,
        json!({ "call_type": "voice", "event_id": "x-1" }),
    );
    let live_r = ev(
        "call_routed",
        "d-live",
        1,
        json!({ "agent_id": "a1", "event_id": "x-2" }),
    );
    let ended = ev(
        "call_initiated",
        "d-ended",
        0,
        json!({ "call_type": "voice", "event_id": "y-1" }),
    );
    let ended_e = ev(
        "call_ended",
        "d-ended",
        2,
        json!({ "end_reason": "failed", "event_id": "y-2" }),
    );
    let mut first = Vec::new();
    for e in [&live, &live_r, &ended, &ended_e] {
        first.push(post_ok(&app, e.clone()).await);
    }
    let app = restart(app).await;

    for (e, orig) in [&live, &live_r, &ended, &ended_e].into_iter().zip(&first) {
        let (s, v) = app.event(e.clone()).await;
        assert_eq!(s, StatusCode::OK, "redelivery of {e}: {v}");
        assert_eq!(v["duplicate"], true, "{v}");
        assert_eq!(v["seq"], orig["seq"], "{v}");
        assert_eq!(
            v["status"], orig["status"],
            "status after the first delivery: {v}"
        );
        assert_eq!(v["call_uuid"], orig["call_uuid"]);
    }
    // In a batch too, next to a new event.
    let v = app
        .batch(vec![
            live_r.clone(),
            ev("call_answered", "d-live", 3, json!({ "event_id": "x-3" })),
            live_r.clone(),
        ])
        .await;
    assert_eq!(
        (v["accepted"].as_u64(), v["duplicates"].as_u64()),
        (Some(1), Some(2)),
        "{v}"
    );
    assert_eq!(v["results"][0]["seq"], first[1]["seq"]);
    assert_eq!(v["results"][2]["seq"], first[1]["seq"]);
    assert_eq!(v["results"][1]["call_status"], "active");
    // Nothing was applied twice.
    assert_eq!(
        types(&history(&app, "d-live").await),
        ["call_initiated", "call_routed", "call_answered"]
    );
    assert_eq!(
        types(&history(&app, "d-ended").await),
        ["call_initiated", "call_ended"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_time_timers_survive_restart() {
    let app = TestApp::spawn().await;
    app.clock("event_time").await;
    app.queue(json!({ "id": "q1" })).await;
    post_ok(&app, queued("sla1", "q1", 0)).await;
    // Ring timer (15 s, armed at 1 s) and hold timer (60 s, armed at 3 s).
    post_ok(&app, queued("ring1", "q1", 0)).await;
    post_ok(
        &app,
        ev("call_routed", "ring1", 1, json!({ "agent_id": "a1" })),
    )
    .await;
    post_ok(&app, queued("hold1", "q1", 0)).await;
    post_ok(
        &app,
        ev("call_routed", "hold1", 1, json!({ "agent_id": "a2" })),
    )
    .await;
    post_ok(&app, ev("call_answered", "hold1", 2, json!({}))).await;
    post_ok(&app, ev("call_hold", "hold1", 3, json!({}))).await;
    // A call whose SLA already fired before the stop.
    post_ok(&app, queued("early", "q1", -100)).await;
    post_ok(
        &app,
        ev(
            "call_initiated",
            "tick0",
            4,
            json!({ "call_type": "voice" }),
        ),
    )
    .await;
    assert_eq!(
        types(&history(&app, "early").await),
        ["call_initiated", "sla_breached"]
    );
    assert_eq!(
        types(&history(&app, "sla1").await),
        ["call_initiated"],
        "not due yet at 4 s"
    );

    let app = restart(app).await;
    let other = post_ok(
        &app,
        ev(
            "call_initiated",
            "tick40",
            40,
            json!({ "call_type": "voice" }),
        ),
    )
    .await;
    let h = history(&app, "sla1").await;
    assert_eq!(
        types(&h),
        ["call_initiated", "sla_breached"],
        "SLA timer armed before the stop fires after it"
    );
    assert_eq!(h[1].3, t(30), "fired at its deadline");
    assert!(
        h[1].0 < seq(&other),
        "fired before the event that moved time past it"
    );
    let h = history(&app, "ring1").await;
    assert_eq!(
        types(&h),
        [
            "call_initiated",
            "call_routed",
            "call_retransfer",
            "sla_breached"
        ]
    );
    assert_eq!(
        (h[2].2.as_str(), h[2].3.as_str()),
        ("waiting", t(16).as_str())
    );
    assert_eq!(call(&app, "ring1").await["status"], "waiting");
    assert_eq!(
        types(&history(&app, "hold1").await),
        [
            "call_initiated",
            "call_routed",
            "call_answered",
            "call_hold"
        ]
    );
    assert_eq!(
        types(&history(&app, "early").await),
        ["call_initiated", "sla_breached"],
        "fired once only"
    );

    post_ok(
        &app,
        ev(
            "call_initiated",
            "tick70",
            70,
            json!({ "call_type": "voice" }),
        ),
    )
    .await;
    let h = history(&app, "hold1").await;
    assert_eq!(
        types(&h),
        [
            "call_initiated",
            "call_routed",
            "call_answered",
            "call_hold",
            "long_hold"
        ]
    );
    assert_eq!(h[4].3, t(63));
    let (s, alerts) = app.get("/api/v1/alerts?limit=50").await;
    assert_eq!(s, StatusCode::OK);
    let mut kinds: Vec<(String, String)> = alerts["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["type"].as_str().unwrap().to_owned(),
                a["call_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    kinds.sort();
    let want: Vec<(String, String)> = [
        ("long_hold", "hold1"),
        ("sla_breached", "early"),
        ("sla_breached", "ring1"),
        ("sla_breached", "sla1"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(kinds, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_clock_and_queue_settings_persist_across_restart() {
    let app = TestApp::spawn().await;
    app.clock("event_time").await;
    app.queue(json!({ "id": "q1", "name": "Sales", "sla_threshold_s": 45, "ring_timeout_s": 20, "max_no_answer": 2, "hold_max_s": 90, "short_call_s": 0, "survey_enabled": false }))
        .await;
    app.queue(json!({ "id": "q2" })).await;
    let (s, v) = app
        .patch("/api/v1/queues/q2", &json!({ "sla_threshold_s": 5 }))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, q1_before) = app.get("/api/v1/queues/q1").await;
    let (_, q2_before) = app.get("/api/v1/queues/q2").await;

    let app = restart(app).await;
    let (s, tenant) = app.get("/api/v1/tenant").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(tenant["clock"], "event_time");
    let (_, q1) = app.get("/api/v1/queues/q1").await;
    let (_, q2) = app.get("/api/v1/queues/q2").await;
    assert_eq!(q1, q1_before);
    assert_eq!(q2, q2_before);
    assert_eq!(
        [
            &q1["name"],
            &q1["sla_threshold_s"],
            &q1["ring_timeout_s"],
            &q1["max_no_answer"],
            &q1["hold_max_s"],
            &q1["short_call_s"],
            &q1["survey_enabled"]
        ],
        [
            &json!("Sales"),
            &json!(45),
            &json!(20),
            &json!(2),
            &json!(90),
            &json!(0),
            &json!(false)
        ]
    );
    assert_eq!(q2["sla_threshold_s"], 5);

    // The engine uses them: event time (not the wall clock) and the reloaded thresholds.
    post_ok(&app, queued("p1", "q1", 0)).await;
    post_ok(&app, queued("p2", "q2", 0)).await;
    post_ok(
        &app,
        ev(
            "call_initiated",
            "tick44",
            44,
            json!({ "call_type": "voice" }),
        ),
    )
    .await;
    assert_eq!(
        types(&history(&app, "p1").await),
        ["call_initiated"],
        "45 s threshold: not due at 44 s"
    );
    assert_eq!(
        types(&history(&app, "p2").await),
        ["call_initiated", "sla_breached"],
        "5 s threshold"
    );
    post_ok(
        &app,
        ev(
            "call_initiated",
            "tick46",
            46,
            json!({ "call_type": "voice" }),
        ),
    )
    .await;
    assert_eq!(
        types(&history(&app, "p1").await),
        ["call_initiated", "sla_breached"]
    );
    // short_call_s 0 and survey off: a short completed call gets neither flag nor survey.
    post_ok(
        &app,
        ev("call_routed", "p1", 47, json!({ "agent_id": "a1" })),
    )
    .await;
    post_ok(&app, ev("call_answered", "p1", 48, json!({}))).await;
    post_ok(
        &app,
        ev("call_ended", "p1", 49, json!({ "end_reason": "completed" })),
    )
    .await;
    assert_eq!(
        types(&history(&app, "p1").await),
        [
            "call_initiated",
            "sla_breached",
            "call_routed",
            "call_answered",
            "long_wait",
            "call_ended"
        ]
    );
}

/// `(missed, agent_on_break)` of each `call_retransfer` in the call's history.
async fn misses(app: &TestApp, call: &str) -> Vec<(u64, bool)> {
    let (s, h) = app
        .get(&format!("/api/v1/calls/{call}/events?limit=500"))
        .await;
    assert_eq!(s, StatusCode::OK, "{h}");
    h["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "call_retransfer")
        .map(|e| {
            (
                e["data"]["missed"].as_u64().unwrap(),
                e["data"]["agent_on_break"].as_bool().unwrap(),
            )
        })
        .collect()
}

/// The no-answer rule counts consecutive misses per agent (`max_no_answer`, FreeSWITCH's
/// max-no-answer): with `max_no_answer` 2 the second consecutive miss puts the agent on break.
/// A restart between the two misses must not reset the count (the same events must give the
/// same result with or without a restart).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_no_answer_count_survives_restart() {
    let app = TestApp::spawn().await;
    app.clock("event_time").await;
    app.queue(json!({ "id": "q1", "max_no_answer": 2, "sla_threshold_s": 3600 }))
        .await;
    // Control, without a restart: agent8 misses twice.
    post_ok(&app, queued("m8", "q1", 0)).await;
    post_ok(
        &app,
        ev("call_routed", "m8", 1, json!({ "agent_id": "agent8" })),
    )
    .await;
    // agent7 misses once before the stop.
    post_ok(&app, queued("m7", "q1", 0)).await;
    post_ok(
        &app,
        ev("call_routed", "m7", 1, json!({ "agent_id": "agent7" })),
    )
    .await;
    post_ok(
        &app,
        ev(
            "call_initiated",
            "tick20",
            20,
            json!({ "call_type": "voice" }),
        ),
    )
    .await;
    post_ok(
        &app,
        ev("call_routed", "m8", 21, json!({ "agent_id": "agent8" })),
    )
    .await;
    post_ok(
        &app,
        ev(
            "call_initiated",
            "tick40",
            40,
            json!({ "call_type": "voice" }),
        ),
    )
    .await;
    assert_eq!(
        misses(&app, "m8").await,
        [(1, false), (2, true)],
        "the rule itself"
    );
    assert_eq!(misses(&app, "m7").await, [(1, false)]);

    let app = restart(app).await;
    post_ok(
        &app,
        ev("call_routed", "m7", 41, json!({ "agent_id": "agent7" })),
    )
    .await;
    post_ok(
        &app,
        ev(
            "call_initiated",
            "tick60",
            60,
            json!({ "call_type": "voice" }),
        ),
    )
    .await;
    assert_eq!(
        misses(&app, "m7").await,
        [(1, false), (2, true)],
        "agent7's second consecutive miss (one before, one after the restart) must put it on break"
    );
}

/// Each call's history without ids: (type, status, timestamp, data).
async fn histories(
    app: &TestApp,
    calls: &[&str],
) -> Vec<(String, Vec<(String, String, String, Value)>)> {
    let mut out = Vec::new();
    for c in calls {
        let (s, h) = app
            .get(&format!("/api/v1/calls/{c}/events?limit=500"))
            .await;
        assert_eq!(s, StatusCode::OK, "{h}");
        let items = h["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["type"].as_str().unwrap().to_owned(),
                    e["status"].as_str().unwrap().to_owned(),
                    e["timestamp"].as_str().unwrap().to_owned(),
                    e["data"].clone(),
                )
            })
            .collect();
        out.push((c.to_string(), items));
    }
    out
}

type Histories = Vec<(String, Vec<(String, String, String, Value)>)>;

/// Runs a script on a fresh event-time tenant with queues q1 (defaults), q2 (SLA 60 s, ring 5 s,
/// hold 20 s) and q3 (defaults): `phase1`, then the queue patches, then (maybe) a restart, then
/// ticks at 10, 31, 70 and 200 s of event time, then every call ends. Returns the histories.
async fn scripted(
    with_restart: bool,
    phase1: &[Value],
    patches: &[(&str, Value)],
    calls: &[&str],
) -> Histories {
    let mut app = TestApp::spawn().await;
    app.clock("event_time").await;
    app.queue(json!({ "id": "q1" })).await;
    app.queue(json!({ "id": "q2", "sla_threshold_s": 60, "ring_timeout_s": 5, "hold_max_s": 20 }))
        .await;
    app.queue(json!({ "id": "q3" })).await;
    for e in phase1 {
        post_ok(&app, e.clone()).await;
    }
    for (q, body) in patches {
        let (s, v) = app.patch(&format!("/api/v1/queues/{q}"), body).await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    if with_restart {
        app = restart(app).await;
    }
    for at in [10, 31, 70, 200] {
        post_ok(
            &app,
            ev(
                "call_initiated",
                &format!("tick{at}"),
                at,
                json!({ "call_type": "voice" }),
            ),
        )
        .await;
    }
    for c in calls {
        post_ok(
            &app,
            ev("call_ended", c, 300, json!({ "end_reason": "abandoned" })),
        )
        .await;
    }
    histories(&app, calls).await
}

/// Asserts the two runs gave the same histories, printing the differing ones.
fn assert_same(straight: &Histories, restarted: &Histories) {
    let mut differ = Vec::new();
    for ((call, want), (_, got)) in straight.iter().zip(restarted) {
        if got != want {
            eprintln!("`{call}` without restart: {want:?}\n`{call}` with restart:    {got:?}");
            differ.push(call.as_str());
        }
    }
    assert!(
        differ.is_empty(),
        "histories that differ with a restart in the middle: {differ:?}"
    );
}

/// The same script of events, once straight through and once with a restart in the middle,
/// gives the same histories: every timer re-armed on reload has the deadline it had. Covers
/// each live state, including a waiting call transferred from q1 (SLA 30 s, armed at its first
/// queue entry) to q2 (SLA 60 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_in_the_middle_changes_no_outcome() {
    let r = |ty: &str, c: &str, at: i64, x: Value| ev(ty, c, at, x);
    let phase1 = [
        // Waiting, moved from q1 (SLA armed at entry with 30 s) to q2 (SLA 60 s).
        queued("a", "q1", 0),
        r("call_transferred", "a", 1, json!({ "queue_id": "q2" })),
        // Ringing in q2 (ring 5 s).
        queued("b", "q2", 0),
        r("call_routed", "b", 2, json!({ "agent_id": "ag1" })),
        // On hold in q1 (hold 60 s).
        queued("c", "q1", 0),
        r("call_routed", "c", 1, json!({ "agent_id": "ag2" })),
        r("call_answered", "c", 2, json!({})),
        r("call_hold", "c", 3, json!({})),
        // Answered in q1, then transferred back to a queue (q2).
        queued("d", "q1", 0),
        r("call_routed", "d", 1, json!({ "agent_id": "ag3" })),
        r("call_answered", "d", 2, json!({})),
        r("call_transferred", "d", 4, json!({ "queue_id": "q2" })),
        // Never queued, ringing (default ring 15 s).
        ev("call_initiated", "e", 0, json!({ "call_type": "voice" })),
        r("call_routed", "e", 1, json!({ "agent_id": "ag4" })),
        // Initiated only (no timer).
        ev("call_initiated", "f", 0, json!({ "call_type": "voice" })),
    ];
    let calls = ["a", "b", "c", "d", "e", "f"];
    let straight = scripted(false, &phase1, &[], &calls).await;
    let restarted = scripted(true, &phase1, &[], &calls).await;
    assert_same(&straight, &restarted);
}

/// `PATCH /api/v1/queues/{id}`: "new settings apply to timers armed from now on". Timers armed
/// before the patch keep their deadlines, with or without a restart after the patch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timers_armed_before_a_queue_patch_keep_their_deadlines_across_restart() {
    let r = |ty: &str, c: &str, at: i64, x: Value| ev(ty, c, at, x);
    let phase1 = [
        // q3 has the defaults when these are armed: SLA 30 s, ring 15 s, hold 60 s.
        queued("w", "q3", 0),
        queued("g", "q3", 0),
        r("call_routed", "g", 1, json!({ "agent_id": "ag1" })),
        queued("h", "q3", 0),
        r("call_routed", "h", 1, json!({ "agent_id": "ag2" })),
        r("call_answered", "h", 2, json!({})),
        r("call_hold", "h", 3, json!({})),
    ];
    let patch = [(
        "q3",
        json!({ "sla_threshold_s": 90, "ring_timeout_s": 50, "hold_max_s": 100 }),
    )];
    let calls = ["w", "g", "h"];
    let straight = scripted(false, &phase1, &patch, &calls).await;
    // Without a restart the documented rule holds: deadlines 30 s, 16 s and 63 s.
    let fired: Vec<(&str, &str)> = straight
        .iter()
        .flat_map(|(c, h)| {
            h.iter()
                .filter(|e| {
                    ["sla_breached", "call_retransfer", "long_hold"].contains(&e.0.as_str())
                })
                .map(move |e| (c.as_str(), e.2.as_str()))
        })
        .collect();
    let (t30, t16, t63) = (t(30), t(16), t(63));
    assert_eq!(
        fired,
        [
            ("w", t30.as_str()),
            ("g", t16.as_str()),
            ("g", t30.as_str()),
            ("h", t63.as_str())
        ],
        "timers without a restart"
    );
    let restarted = scripted(true, &phase1, &patch, &calls).await;
    assert_same(&straight, &restarted);
}

/// Every hold longer than `hold_max_s` raises `long_hold`, also a second hold of a call whose
/// first hold already did; a restart during the second hold must not lose its alert.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_long_hold_is_raised_with_or_without_restart() {
    let r = |ty: &str, c: &str, at: i64, x: Value| ev(ty, c, at, x);
    let phase1 = [
        queued("k", "q1", 0),
        r("call_routed", "k", 1, json!({ "agent_id": "ag1" })),
        r("call_answered", "k", 2, json!({})),
        r("call_hold", "k", 3, json!({})),
        // Event time 70 s: the first hold's timer (63 s) fires.
        ev(
            "call_initiated",
            "pre70",
            70,
            json!({ "call_type": "voice" }),
        ),
        r("call_resumed", "k", 71, json!({})),
        // Second hold, due at 132 s.
        r("call_hold", "k", 72, json!({})),
    ];
    let straight = scripted(false, &phase1, &[], &["k"]).await;
    let holds: Vec<&str> = straight[0]
        .1
        .iter()
        .filter(|e| e.0 == "long_hold")
        .map(|e| e.2.as_str())
        .collect();
    let (t63, t132) = (t(63), t(132));
    assert_eq!(holds, [t63.as_str(), t132.as_str()], "without a restart");
    let restarted = scripted(true, &phase1, &[], &["k"]).await;
    assert_same(&straight, &restarted);
}
