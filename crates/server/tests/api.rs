//! The HTTP API through the real server: queues, tenant, events (single and batch),
//! idempotency, refusals (status, problem+json, `field`) that change nothing, tenant isolation,
//! call and alert lists with their filters and cursors, ops endpoints and the OpenAPI document.

mod support;

use std::collections::{BTreeSet, HashSet};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::{call, ev, ok, t, urlencode, TestApp};

const PROBLEM: &str = "application/problem+json";

/// One answer with its content type.
struct Resp {
    status: StatusCode,
    ct: Option<String>,
    body: Value,
}

/// Sends any request with `key` (none: no `X-API-Key` header).
async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Option<&Value>,
    key: Option<&str>,
) -> Resp {
    let mut rb = app.client.request(method, app.url(path));
    if let Some(k) = key {
        rb = rb.header("X-API-Key", k);
    }
    if let Some(b) = body {
        rb = rb.json(b);
    }
    let r = rb.send().await.expect("request");
    let status = r.status();
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = r.bytes().await.expect("body");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    Resp { status, ct, body }
}

async fn get_with(app: &TestApp, path: &str) -> Resp {
    send(app, Method::GET, path, None, Some(&app.key)).await
}

async fn post_with(app: &TestApp, path: &str, body: &Value) -> Resp {
    send(app, Method::POST, path, Some(body), Some(&app.key)).await
}

async fn patch_with(app: &TestApp, path: &str, body: &Value) -> Resp {
    send(app, Method::PATCH, path, Some(body), Some(&app.key)).await
}

/// Asserts an RFC 9457 problem with `status` and, when given, `field`.
#[track_caller]
fn assert_problem(r: &Resp, status: u16, field: Option<&str>, ctx: &str) {
    assert_eq!(r.status.as_u16(), status, "{ctx}: {}", r.body);
    assert_eq!(r.ct.as_deref(), Some(PROBLEM), "{ctx}: content-type");
    let b = &r.body;
    assert_eq!(b["status"].as_u64(), Some(status as u64), "{ctx}: {b}");
    assert!(
        b["type"].as_str().is_some_and(|s| !s.is_empty()),
        "{ctx}: type in {b}"
    );
    assert!(
        b["title"].as_str().is_some_and(|s| !s.is_empty()),
        "{ctx}: title in {b}"
    );
    assert!(
        b["detail"].as_str().is_some_and(|s| !s.is_empty()),
        "{ctx}: detail in {b}"
    );
    if let Some(f) = field {
        assert_eq!(b["field"].as_str(), Some(f), "{ctx}: field in {b}");
    }
}

/// The call ids of a list answer, in order.
fn ids(v: &Value) -> Vec<String> {
    v["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|c| c["call_id"].as_str().unwrap().to_owned())
        .collect()
}

async fn list_ids(app: &TestApp, query: &str) -> Vec<String> {
    let (s, v) = app.get(&format!("/api/v1/calls?{query}")).await;
    assert_eq!(s, StatusCode::OK, "calls?{query}: {v}");
    ids(&v)
}

fn set(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn f64_of(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// A server whose tenant runs on the event-time clock (timers only move with timestamps).
async fn event_time_app() -> TestApp {
    let app = TestApp::spawn().await;
    app.clock("event_time").await;
    app
}

// ---------------------------------------------------------------------------------------------
// Queues

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_create_get_patch_with_defaults() {
    let app = TestApp::spawn().await;
    let r = post_with(&app, "/api/v1/queues", &json!({"id": "sales"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let q = &r.body;
    assert_eq!(q["id"], "sales");
    assert_eq!(q["name"], "sales", "name defaults to the id");
    assert_eq!(
        (
            &q["sla_threshold_s"],
            &q["ring_timeout_s"],
            &q["max_no_answer"],
            &q["hold_max_s"],
            &q["short_call_s"],
            &q["survey_enabled"]
        ),
        (
            &json!(30),
            &json!(15),
            &json!(3),
            &json!(60),
            &json!(10),
            &json!(true)
        )
    );

    app.queue(
        json!({"id": "support", "name": "Support desk", "sla_threshold_s": 20, "ring_timeout_s": 5,
        "max_no_answer": 0, "hold_max_s": 90, "short_call_s": 0, "survey_enabled": false}),
    )
    .await;
    let (s, g) = app.get("/api/v1/queues/support").await;
    assert_eq!(s, StatusCode::OK, "{g}");
    assert_eq!(g["name"], "Support desk");
    assert_eq!(g["sla_threshold_s"], 20);
    assert_eq!(g["ring_timeout_s"], 5);
    assert_eq!(g["max_no_answer"], 0);
    assert_eq!(g["hold_max_s"], 90);
    assert_eq!(g["short_call_s"], 0);
    assert_eq!(g["survey_enabled"], false);

    // PATCH changes only what it names.
    let (s, p) = app
        .patch(
            "/api/v1/queues/support",
            &json!({"sla_threshold_s": 45, "name": "Tier 1"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(p["sla_threshold_s"], 45);
    assert_eq!(p["name"], "Tier 1");
    assert_eq!(p["hold_max_s"], 90, "unchanged setting kept");
    assert_eq!(p["survey_enabled"], false, "unchanged setting kept");
    let (_, g) = app.get("/api/v1/queues/support").await;
    assert_eq!(g["sla_threshold_s"], 45, "patch is persisted");
    assert_eq!(g["ring_timeout_s"], 5);

    let r = get_with(&app, "/api/v1/queues/nope").await;
    assert_problem(&r, 404, None, "GET unknown queue");
    let r = patch_with(&app, "/api/v1/queues/nope", &json!({"sla_threshold_s": 10})).await;
    assert_problem(&r, 404, None, "PATCH unknown queue");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_validation_refuses_and_changes_nothing() {
    let app = TestApp::spawn().await;
    app.queue(json!({"id": "sales", "sla_threshold_s": 25}))
        .await;

    let r = post_with(
        &app,
        "/api/v1/queues",
        &json!({"id": "sales", "sla_threshold_s": 99}),
    )
    .await;
    assert_problem(&r, 409, Some("id"), "duplicate id");

    let cases: Vec<(Value, &str)> = vec![
        (json!({"id": "q1", "colour": "red"}), "colour"),
        (
            json!({"id": "q1", "sla_threshold_s": "thirty"}),
            "sla_threshold_s",
        ),
        (
            json!({"id": "q1", "sla_threshold_s": -5}),
            "sla_threshold_s",
        ),
        (
            json!({"id": "q1", "survey_enabled": "yes"}),
            "survey_enabled",
        ),
        (json!({"id": "q1", "ring_timeout_s": 0}), "ring_timeout_s"),
        (
            json!({"id": "q1", "sla_threshold_s": 86_401}),
            "sla_threshold_s",
        ),
        (json!({"id": "q1", "hold_max_s": 0}), "hold_max_s"),
        (json!({"id": "q1", "max_no_answer": 101}), "max_no_answer"),
        (json!({"id": "has space"}), "id"),
        (json!({"id": ""}), "id"),
        (json!({"name": "no id"}), "id"),
        (json!({"id": "q1", "name": "   "}), "name"),
    ];
    for (body, field) in &cases {
        let r = post_with(&app, "/api/v1/queues", body).await;
        assert_problem(&r, 422, Some(field), &format!("create {body}"));
    }
    let r = send(&app, Method::POST, "/api/v1/queues", None, Some(&app.key)).await;
    assert!(r.status.is_client_error(), "no body: {}", r.status);
    let (s, _, ct) = app
        .post_raw("/api/v1/queues", "{\"id\": ", Some(&app.key))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(ct.as_deref(), Some(PROBLEM));

    // Nothing was created, the existing queue kept its settings.
    assert_eq!(
        get_with(&app, "/api/v1/queues/q1").await.status,
        StatusCode::NOT_FOUND
    );
    let (_, list) = app.get("/api/v1/queues").await;
    let listed: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, vec!["sales"]);
    assert_eq!(list["items"][0]["sla_threshold_s"], 25);

    // PATCH validation: refused and nothing changed.
    let bad_patches: Vec<(Value, &str)> = vec![
        (json!({"sla_threshold_s": 0}), "sla_threshold_s"),
        (json!({"short_call_s": 100_000}), "short_call_s"),
        (json!({"ring_timeout_s": "fast"}), "ring_timeout_s"),
        (json!({"id": "renamed"}), "id"),
        (json!({"name": ""}), "name"),
    ];
    for (body, field) in &bad_patches {
        let r = patch_with(&app, "/api/v1/queues/sales", body).await;
        assert_problem(&r, 422, Some(field), &format!("patch {body}"));
    }
    let (_, g) = app.get("/api/v1/queues/sales").await;
    assert_eq!(g["sla_threshold_s"], 25);
    assert_eq!(g["short_call_s"], 10);
    assert_eq!(g["ring_timeout_s"], 15);
    assert_eq!(g["name"], "sales");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_list_pages_by_cursor() {
    let app = TestApp::spawn().await;
    let want = ["a-1", "b-2", "c-3", "d-4", "e-5"];
    for id in want.iter().rev() {
        app.queue(json!({"id": id})).await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let path = match &cursor {
            Some(c) => format!("/api/v1/queues?limit=2&cursor={}", urlencode(c)),
            None => "/api/v1/queues?limit=2".to_owned(),
        };
        let (s, v) = app.get(&path).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let items = v["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|q| q["id"].as_str().unwrap().to_owned()));
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(
        seen,
        want.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        "every queue once, by id"
    );

    let r = get_with(&app, "/api/v1/queues?limit=0").await;
    assert_problem(&r, 400, Some("limit"), "limit=0");
    let r = get_with(&app, "/api/v1/queues?limit=many").await;
    assert_problem(&r, 400, Some("limit"), "limit=many");
}

// ---------------------------------------------------------------------------------------------
// Tenant

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_clock_patch_and_bad_value() {
    let app = TestApp::spawn().await;
    let (s, v) = app.get("/api/v1/tenant").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["clock"], "live", "default clock");
    assert_eq!(v["slug"], "default");

    let (s, v) = app
        .patch("/api/v1/tenant", &json!({"clock": "event_time"}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["clock"], "event_time");
    let (_, v) = app.get("/api/v1/tenant").await;
    assert_eq!(v["clock"], "event_time", "persisted");

    let r = patch_with(&app, "/api/v1/tenant", &json!({"clock": "sundial"})).await;
    assert_problem(&r, 422, Some("clock"), "bad clock");
    let r = patch_with(&app, "/api/v1/tenant", &json!({"clock": 1})).await;
    assert_problem(&r, 422, Some("clock"), "clock not a string");
    let r = patch_with(&app, "/api/v1/tenant", &json!({"timezone": "UTC"})).await;
    assert_problem(&r, 422, Some("timezone"), "unknown field");
    let (_, v) = app.get("/api/v1/tenant").await;
    assert_eq!(v["clock"], "event_time", "unchanged by refused patches");

    app.clock("live").await;
    let (_, v) = app.get("/api/v1/tenant").await;
    assert_eq!(v["clock"], "live");

    let r = send(&app, Method::GET, "/api/v1/tenant", None, None).await;
    assert_problem(&r, 401, None, "tenant without key");
}

// ---------------------------------------------------------------------------------------------
// Events: lifecycle, idempotency, refusals

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_lifecycle_computes_durations_from_timestamps() {
    let app = event_time_app().await;
    app.queue(json!({"id": "support"})).await;

    let steps: Vec<(Value, &str)> = vec![
        (
            ev(
                "call_initiated",
                "CA1",
                0,
                json!({"queue_id": "support", "from": "+15551230000", "to": "+15557650000"}),
            ),
            "waiting",
        ),
        (
            ev("call_routed", "CA1", 5, json!({"agent_id": "a1"})),
            "ringing",
        ),
        (ev("call_answered", "CA1", 12, json!({})), "active"),
        (ev("call_hold", "CA1", 20, json!({})), "on_hold"),
        (ev("call_resumed", "CA1", 35, json!({})), "active"),
        (
            ev("call_transferred", "CA1", 50, json!({"agent_id": "a2"})),
            "ringing",
        ),
        (ev("call_answered", "CA1", 55, json!({})), "active"),
        (
            ev("call_ended", "CA1", 80, json!({"end_reason": "completed"})),
            "ended",
        ),
    ];
    let mut uuid = None;
    let mut last_seq = 0;
    for (body, status) in steps {
        let v = ok(&app, body.clone()).await;
        assert_eq!(v["status"], status, "after {body}");
        assert_eq!(v["duplicate"], false);
        assert_eq!(v["call_id"], "CA1");
        let seq = v["seq"].as_i64().unwrap();
        assert!(seq > last_seq, "seq increases: {seq} after {last_seq}");
        last_seq = seq;
        match &uuid {
            None => uuid = Some(v["call_uuid"].as_str().unwrap().to_owned()),
            Some(u) => assert_eq!(v["call_uuid"].as_str(), Some(u.as_str())),
        }
    }
    let uuid = uuid.unwrap();

    let c = call(&app, "CA1").await;
    assert_eq!(c["id"].as_str(), Some(uuid.as_str()));
    assert_eq!(c["status"], "ended");
    assert_eq!(c["end_reason"], "completed");
    assert_eq!(c["queue_id"], "support");
    assert_eq!(c["first_queue_id"], "support");
    assert_eq!(c["agent_id"], "a2");
    assert_eq!(c["from"], "+15551230000");
    assert_eq!(c["initiated_at"], t(0));
    assert_eq!(c["queued_at"], t(0));
    assert_eq!(c["answered_at"], t(12), "first answer");
    assert_eq!(c["ended_at"], t(80));
    assert_eq!(f64_of(&c["wait_s"]), 12.0);
    assert_eq!(f64_of(&c["talk_s"]), 48.0, "8 + 15 + 25 s active");
    assert_eq!(f64_of(&c["hold_s"]), 15.0);
    assert_eq!(c["flags"], json!([]));

    // By Switchboard id too, same call.
    let by_uuid = call(&app, &uuid).await;
    assert_eq!(by_uuid["call_id"], "CA1");
    assert_eq!(by_uuid["last_seq"], c["last_seq"]);

    let (s, h) = app.get("/api/v1/calls/CA1/events?limit=500").await;
    assert_eq!(s, StatusCode::OK);
    let items = h["items"].as_array().unwrap();
    let types: Vec<&str> = items.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "call_initiated",
            "call_routed",
            "call_answered",
            "call_hold",
            "call_resumed",
            "call_transferred",
            "call_answered",
            "call_ended",
            "survey_requested"
        ]
    );
    let statuses: Vec<&str> = items
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "waiting", "ringing", "active", "on_hold", "active", "ringing", "active", "ended",
            "ended"
        ]
    );
    assert_eq!(items[1]["data"]["agent_id"], "a1");
    assert_eq!(items[5]["data"]["agent_id"], "a2");
    assert_eq!(items[3]["timestamp"], t(20));
    assert_eq!(c["last_seq"], items.last().unwrap()["seq"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfer_to_queue_keeps_first_queue() {
    let app = event_time_app().await;
    app.queue(json!({"id": "q1"})).await;
    app.queue(json!({"id": "q2"})).await;
    ok(
        &app,
        ev("call_initiated", "T1", 0, json!({"queue_id": "q1"})),
    )
    .await;
    ok(&app, ev("call_routed", "T1", 2, json!({"agent_id": "a1"}))).await;
    ok(&app, ev("call_answered", "T1", 4, json!({}))).await;
    let v = ok(
        &app,
        ev("call_transferred", "T1", 10, json!({"queue_id": "q2"})),
    )
    .await;
    assert_eq!(v["status"], "waiting");
    let c = call(&app, "T1").await;
    assert_eq!(c["queue_id"], "q2");
    assert_eq!(c["first_queue_id"], "q1");
    assert_eq!(c["agent_id"], Value::Null, "back in a queue: no agent");
    assert_eq!(f64_of(&c["talk_s"]), 6.0);
    assert_eq!(f64_of(&c["wait_s"]), 4.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_event_id_is_applied_once() {
    let app = event_time_app().await;
    app.queue(json!({"id": "q1"})).await;
    let init = ev(
        "call_initiated",
        "D1",
        0,
        json!({"queue_id": "q1", "event_id": "e-init"}),
    );
    let first = ok(&app, init.clone()).await;
    assert_eq!(first["duplicate"], false);

    let (s, again) = app.event(init.clone()).await;
    assert_eq!(s, StatusCode::OK, "duplicate is 200: {again}");
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["seq"], first["seq"]);
    assert_eq!(again["call_uuid"], first["call_uuid"]);
    assert_eq!(again["status"], "waiting");

    let routed = ev(
        "call_routed",
        "D1",
        3,
        json!({"agent_id": "a1", "event_id": "e-route"}),
    );
    let r1 = ok(&app, routed.clone()).await;
    assert_eq!(r1["status"], "ringing");
    // A re-delivery answers with the first result (status after the first delivery), even
    // though the call has moved on and the event would not fit any more.
    ok(
        &app,
        ev("call_answered", "D1", 5, json!({"event_id": "e-answer"})),
    )
    .await;
    let (s, r2) = app.event(routed.clone()).await;
    assert_eq!(s, StatusCode::OK, "{r2}");
    assert_eq!(r2["duplicate"], true);
    assert_eq!(r2["seq"], r1["seq"]);
    assert_eq!(r2["status"], "ringing");

    assert_eq!(
        app.history("D1").await,
        ["call_initiated", "call_routed", "call_answered"]
    );
    let before = call(&app, "D1").await;

    // In a batch: a re-delivery of an applied id, and the same new id twice.
    let end = ev(
        "call_ended",
        "D1",
        20,
        json!({"end_reason": "completed", "event_id": "e-end"}),
    );
    let b = app
        .batch(vec![routed.clone(), end.clone(), end.clone()])
        .await;
    assert_eq!(b["accepted"], 1, "{b}");
    assert_eq!(b["duplicates"], 2, "{b}");
    assert_eq!(b["rejected"], 0, "{b}");
    let res = b["results"].as_array().unwrap();
    assert_eq!(res[0]["status"], 200);
    assert_eq!(res[0]["duplicate"], true);
    assert_eq!(res[0]["seq"], r1["seq"]);
    assert_eq!(res[1]["status"], 201);
    assert_eq!(res[1]["duplicate"], false);
    assert_eq!(res[2]["status"], 200);
    assert_eq!(res[2]["duplicate"], true);
    assert_eq!(res[2]["seq"], res[1]["seq"]);
    assert_eq!(res[2]["call_status"], "ended");

    let h = app.history("D1").await;
    assert_eq!(h.iter().filter(|t| *t == "call_ended").count(), 1, "{h:?}");
    assert_eq!(h.iter().filter(|t| *t == "call_routed").count(), 1, "{h:?}");
    let after = call(&app, "D1").await;
    assert_eq!(after["status"], "ended");
    assert!(after["last_seq"].as_i64() > before["last_seq"].as_i64());

    // A later single re-delivery of the batch's event: still the same seq, nothing new.
    let last_seq = after["last_seq"].clone();
    let (s, e2) = app.event(end).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(e2["seq"], res[1]["seq"]);
    assert_eq!(call(&app, "D1").await["last_seq"], last_seq);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn illegal_transition_is_409_and_changes_nothing() {
    let app = event_time_app().await;
    app.queue(json!({"id": "q1"})).await;
    ok(
        &app,
        ev("call_initiated", "X1", 0, json!({"queue_id": "q1"})),
    )
    .await;
    let before = call(&app, "X1").await;
    let hist = app.history("X1").await;

    let cases: Vec<(Value, &str)> = vec![
        (ev("call_answered", "X1", 1, json!({})), "waiting"),
        (ev("call_hold", "X1", 1, json!({})), "waiting"),
        (ev("call_resumed", "X1", 1, json!({})), "waiting"),
        (
            ev("call_queued", "X1", 1, json!({"queue_id": "q1"})),
            "waiting",
        ),
        (
            ev("call_initiated", "X1", 1, json!({"queue_id": "q1"})),
            "waiting",
        ),
    ];
    for (body, st) in &cases {
        let r = post_with(&app, "/api/v1/events", body).await;
        assert_problem(&r, 409, None, &format!("{body}"));
        assert_eq!(r.body["call_status"], *st, "{}", r.body);
        assert_eq!(
            call(&app, "X1").await,
            before,
            "call unchanged after {body}"
        );
        assert_eq!(
            app.history("X1").await,
            hist,
            "history unchanged after {body}"
        );
    }

    ok(
        &app,
        ev("call_ended", "X1", 5, json!({"end_reason": "abandoned"})),
    )
    .await;
    let ended = call(&app, "X1").await;
    let hist = app.history("X1").await;
    for body in [
        ev("call_routed", "X1", 6, json!({"agent_id": "a1"})),
        ev("call_ended", "X1", 6, json!({"end_reason": "completed"})),
    ] {
        let r = post_with(&app, "/api/v1/events", &body).await;
        assert_problem(&r, 409, None, &format!("{body}"));
        assert_eq!(r.body["call_status"], "ended");
    }
    assert_eq!(call(&app, "X1").await, ended);
    assert_eq!(app.history("X1").await, hist);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_order_timestamps_are_accepted_clamped_and_flagged() {
    let app = event_time_app().await;
    app.queue(json!({"id": "q1"})).await;
    ok(
        &app,
        ev("call_initiated", "O1", 100, json!({"queue_id": "q1"})),
    )
    .await;
    ok(
        &app,
        ev("call_routed", "O1", 105, json!({"agent_id": "a1"})),
    )
    .await;
    let v = ok(&app, ev("call_answered", "O1", 90, json!({}))).await;
    assert_eq!(v["status"], "active", "accepted although earlier");
    let v = ok(
        &app,
        ev("call_ended", "O1", 80, json!({"end_reason": "completed"})),
    )
    .await;
    assert_eq!(v["status"], "ended");

    let c = call(&app, "O1").await;
    let flags: Vec<&str> = c["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert!(flags.contains(&"out_of_order"), "{flags:?}");
    assert_eq!(f64_of(&c["wait_s"]), 0.0, "negative wait clamped");
    assert_eq!(f64_of(&c["talk_s"]), 0.0, "negative talk clamped");
    assert_eq!(f64_of(&c["hold_s"]), 0.0);
    let listed = list_ids(&app, "flag=out_of_order").await;
    assert_eq!(listed, ["O1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_events_are_refused_with_problem_and_change_nothing() {
    let app = event_time_app().await;
    app.queue(json!({"id": "q1"})).await;
    ok(
        &app,
        ev("call_initiated", "B1", 0, json!({"queue_id": "q1"})),
    )
    .await;
    ok(&app, ev("call_routed", "B1", 1, json!({"agent_id": "a1"}))).await;
    let before = call(&app, "B1").await;
    let hist = app.history("B1").await;
    let (_, calls_before) = app.get("/api/v1/calls").await;

    let check_unchanged = |ctx: String| {
        let app = &app;
        let before = before.clone();
        let hist = hist.clone();
        let calls_before = calls_before.clone();
        async move {
            assert_eq!(call(app, "B1").await, before, "call unchanged after {ctx}");
            assert_eq!(
                app.history("B1").await,
                hist,
                "history unchanged after {ctx}"
            );
            let (_, now) = app.get("/api/v1/calls").await;
            assert_eq!(now, calls_before, "call list unchanged after {ctx}");
        }
    };

    // 422 naming the field.
    let cases: Vec<(Value, &str)> = vec![
        (json!({"call_id": "B1", "timestamp": t(2)}), "type"),
        (json!({"type": 7, "call_id": "B1"}), "type"),
        (json!({"type": "call_exploded", "call_id": "B1"}), "type"),
        (json!({"type": "sla_breached", "call_id": "B1"}), "type"),
        (json!({"type": "call_answered"}), "call_id"),
        (json!({"type": "call_answered", "call_id": 42}), "call_id"),
        (
            json!({"type": "call_answered", "call_id": "has space"}),
            "call_id",
        ),
        (
            json!({"type": "call_answered", "call_id": "B1", "timestamp": "noon"}),
            "timestamp",
        ),
        (
            json!({"type": "call_answered", "call_id": "B1", "timestamp": 933465600}),
            "timestamp",
        ),
        (
            json!({"type": "call_answered", "call_id": "B1", "wait_time": -1}),
            "wait_time",
        ),
        (
            json!({"type": "call_answered", "call_id": "B1", "event_id": ""}),
            "event_id",
        ),
        (
            json!({"type": "call_answered", "call_id": "B1", "event_id": 5}),
            "event_id",
        ),
        (json!({"type": "call_routed", "call_id": "B1"}), "agent_id"),
        (
            json!({"type": "call_routed", "call_id": "B1", "agent_id": 5}),
            "agent_id",
        ),
        (json!({"type": "call_ended", "call_id": "B1"}), "end_reason"),
        (
            json!({"type": "call_ended", "call_id": "B1", "end_reason": "bored"}),
            "end_reason",
        ),
        (json!({"type": "call_queued", "call_id": "B1"}), "queue_id"),
        (
            json!({"type": "call_transferred", "call_id": "B1"}),
            "queue_id",
        ),
        (
            json!({"type": "call_initiated", "call_id": "N1", "priority": 1000}),
            "priority",
        ),
        (
            json!({"type": "call_initiated", "call_id": "N1", "call_type": "fax"}),
            "call_type",
        ),
        // Unknown queue: refused by the engine.
        (
            json!({"type": "call_initiated", "call_id": "N1", "queue_id": "nope", "timestamp": t(3)}),
            "queue_id",
        ),
    ];
    for (body, field) in &cases {
        let r = post_with(&app, "/api/v1/events", body).await;
        assert_problem(&r, 422, Some(field), &format!("{body}"));
        check_unchanged(format!("{body}")).await;
    }
    assert_eq!(
        get_with(&app, "/api/v1/calls/N1").await.status,
        StatusCode::NOT_FOUND,
        "N1 never created"
    );

    // 404: unknown call.
    let r = post_with(
        &app,
        "/api/v1/events",
        &ev("call_answered", "GHOST", 3, json!({})),
    )
    .await;
    assert_problem(&r, 404, None, "unknown call");
    check_unchanged("unknown call".into()).await;
    assert_eq!(
        get_with(&app, "/api/v1/calls/GHOST").await.status,
        StatusCode::NOT_FOUND
    );

    // 400: malformed JSON.
    for raw in ["{\"type\": \"call_answered\", ", "not json", ""] {
        let (s, v, ct) = app.post_raw("/api/v1/events", raw, Some(&app.key)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{raw:?}: {v}");
        assert_eq!(ct.as_deref(), Some(PROBLEM), "{raw:?}");
        assert_eq!(v["status"], 400);
        check_unchanged(format!("raw {raw:?}")).await;
    }

    // 422 for a body that is JSON but not an object.
    let (s, v, ct) = app
        .post_raw("/api/v1/events", "[1, 2]", Some(&app.key))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(ct.as_deref(), Some(PROBLEM));

    // 413: over 1 MiB, even though it would otherwise be a valid event.
    let big = json!({"type": "call_initiated", "call_id": "BIG", "timestamp": t(3), "notes": "x".repeat(1_100_000)}).to_string();
    let (s, v, ct) = app.post_raw("/api/v1/events", big, Some(&app.key)).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert_eq!(ct.as_deref(), Some(PROBLEM));
    assert_eq!(v["status"], 413);
    assert_eq!(
        get_with(&app, "/api/v1/calls/BIG").await.status,
        StatusCode::NOT_FOUND
    );
    check_unchanged("413".into()).await;

    // 401: no key, a wrong key; the event would have fitted.
    let good = ev("call_answered", "B1", 4, json!({})).to_string();
    for key in [None, Some("sb_wrong"), Some("")] {
        let (s, v, ct) = app.post_raw("/api/v1/events", good.clone(), key).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "key {key:?}: {v}");
        assert_eq!(ct.as_deref(), Some(PROBLEM), "key {key:?}");
        assert_eq!(v["status"], 401);
        check_unchanged(format!("key {key:?}")).await;
    }
    let (s, v, _) = app
        .post_raw(
            "/api/v1/events/batch",
            json!({"events": [ev("call_answered", "B1", 4, json!({}))]}).to_string(),
            Some("sb_wrong"),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    let r = send(&app, Method::GET, "/api/v1/calls", None, Some("sb_wrong")).await;
    assert_problem(&r, 401, None, "list with a wrong key");
    check_unchanged("batch with a wrong key".into()).await;

    // Finally the same event with the right key applies: the refusals left the call able to move.
    let v = ok(&app, ev("call_answered", "B1", 4, json!({}))).await;
    assert_eq!(v["status"], "active");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_over_limit_is_413_and_applies_nothing() {
    let app = TestApp::spawn().await;
    let events: Vec<Value> = (0..1001)
        .map(|i| json!({"type": "call_initiated", "call_id": format!("L{i}"), "timestamp": t(i)}))
        .collect();
    let r = post_with(&app, "/api/v1/events/batch", &json!({"events": events})).await;
    assert_problem(&r, 413, None, "1001 events");
    let (_, list) = app.get("/api/v1/calls").await;
    assert_eq!(list["items"], json!([]), "nothing applied");
    assert_eq!(
        get_with(&app, "/api/v1/calls/L0").await.status,
        StatusCode::NOT_FOUND
    );

    // Exactly 1000 is taken.
    let events: Vec<Value> = (0..1000)
        .map(|i| json!({"type": "call_initiated", "call_id": format!("L{i}"), "timestamp": t(i)}))
        .collect();
    let b = app.batch(events).await;
    assert_eq!(b["accepted"], 1000);
    assert_eq!(b["rejected"], 0);

    for (body, field) in [
        (json!({"events": []}), "events"),
        (json!({"events": {}}), "events"),
        (json!({}), "events"),
    ] {
        let r = post_with(&app, "/api/v1/events/batch", &body).await;
        assert_problem(&r, 422, Some(field), &format!("{body}"));
    }
    let (s, _, ct) = app
        .post_raw("/api/v1/events/batch", "{\"events\": [", Some(&app.key))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(ct.as_deref(), Some(PROBLEM));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_batch_applies_good_and_refuses_bad_one_by_one() {
    let app = event_time_app().await;
    app.queue(json!({"id": "q1"})).await;
    let b = app
        .batch(vec![
            ev("call_initiated", "M1", 0, json!({"queue_id": "q1"})),
            ev("call_routed", "M1", 1, json!({})), // missing agent_id
            ev("call_initiated", "M2", 1, json!({"queue_id": "nope"})), // unknown queue
            ev("call_routed", "M1", 2, json!({"agent_id": "a1"})),
            ev("call_hold", "M1", 3, json!({})), // ringing: 409
            ev("call_answered", "GHOST", 3, json!({})), // unknown call
            json!("not an event"),               // not an object
            ev("call_answered", "M1", 4, json!({})),
            ev("call_initiated", "M3", 5, json!({})),
        ])
        .await;
    assert_eq!(b["accepted"], 4, "{b}");
    assert_eq!(b["duplicates"], 0, "{b}");
    assert_eq!(b["rejected"], 5, "{b}");
    let res = b["results"].as_array().unwrap();
    assert_eq!(res.len(), 9);
    for (i, r) in res.iter().enumerate() {
        assert_eq!(r["index"], i, "{r}");
    }
    let statuses: Vec<u64> = res.iter().map(|r| r["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses, [201, 422, 422, 201, 409, 404, 422, 201, 201]);
    assert_eq!(res[0]["call_status"], "waiting");
    assert_eq!(res[3]["call_status"], "ringing");
    assert_eq!(res[7]["call_status"], "active");
    assert_eq!(res[8]["call_status"], "initiated");
    assert_eq!(res[1]["problem"]["field"], "events[1].agent_id");
    assert_eq!(res[1]["problem"]["status"], 422);
    assert!(
        res[2]["problem"]["field"]
            .as_str()
            .is_some_and(|f| f.ends_with("queue_id")),
        "{}",
        res[2]
    );
    assert_eq!(res[4]["problem"]["call_status"], "ringing");
    assert_eq!(res[4]["problem"]["status"], 409);
    assert_eq!(res[5]["problem"]["status"], 404);
    for i in [1, 2, 4, 5, 6] {
        assert!(
            res[i]["seq"].is_null(),
            "refused event has no seq: {}",
            res[i]
        );
        assert!(res[i]["problem"]["detail"].is_string(), "{}", res[i]);
    }
    let seqs: Vec<i64> = [0, 3, 7, 8]
        .iter()
        .map(|&i| res[i]["seq"].as_i64().unwrap())
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "applied in order: {seqs:?}"
    );

    assert_eq!(
        app.history("M1").await,
        ["call_initiated", "call_routed", "call_answered"]
    );
    assert_eq!(call(&app, "M1").await["status"], "active");
    assert_eq!(call(&app, "M3").await["status"], "initiated");
    assert_eq!(
        get_with(&app, "/api/v1/calls/M2").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get_with(&app, "/api/v1/calls/GHOST").await.status,
        StatusCode::NOT_FOUND
    );
}

// ---------------------------------------------------------------------------------------------
// Tenants

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_are_isolated() {
    let app = event_time_app().await;
    app.queue(json!({"id": "q1"})).await;
    // An alert of ours: a call that breaches its SLA.
    ok(
        &app,
        ev("call_initiated", "AL", 0, json!({"queue_id": "q1"})),
    )
    .await;
    ok(&app, ev("call_initiated", "AL2", 40, json!({}))).await;
    let (_, ours) = app.get("/api/v1/alerts").await;
    assert_eq!(ours["items"].as_array().unwrap().len(), 1, "{ours}");
    let first = ok(
        &app,
        json!({"type": "call_initiated", "call_id": "SHARED", "timestamp": t(1)}),
    )
    .await;
    let uuid = first["call_uuid"].as_str().unwrap().to_owned();
    let before = call(&app, "SHARED").await;

    let acme = app.other_tenant("acme").await;
    let k = Some(acme.as_str());
    for path in [
        "/api/v1/calls/SHARED".to_owned(),
        format!("/api/v1/calls/{uuid}"),
        format!("/api/v1/calls/{uuid}/events"),
    ] {
        let r = send(&app, Method::GET, &path, None, k).await;
        assert_problem(&r, 404, None, &format!("other tenant {path}"));
    }
    let r = send(&app, Method::GET, "/api/v1/calls", None, k).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["items"], json!([]), "other tenant sees no calls");
    let r = send(&app, Method::GET, "/api/v1/queues/q1", None, k).await;
    assert_problem(&r, 404, None, "other tenant's queue");
    let r = send(&app, Method::GET, "/api/v1/alerts", None, k).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["items"], json!([]), "other tenant sees no alerts");
    let r = send(&app, Method::GET, "/api/v1/queues", None, k).await;
    assert_eq!(r.body["items"], json!([]), "other tenant sees no queues");
    let r = send(&app, Method::GET, "/api/v1/tenant", None, k).await;
    assert_eq!(r.body["slug"], "acme");

    // The same client call id in the other tenant is its own call.
    let r = send(
        &app,
        Method::POST,
        "/api/v1/events",
        Some(&json!({"type": "call_answered", "call_id": "SHARED", "timestamp": t(1)})),
        k,
    )
    .await;
    assert_problem(&r, 404, None, "other tenant cannot move our call");
    let r = send(
        &app,
        Method::POST,
        "/api/v1/events",
        Some(&json!({"type": "call_initiated", "call_id": "SHARED", "timestamp": t(5)})),
        k,
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["status"], "initiated");
    let theirs = r.body["call_uuid"].as_str().unwrap().to_owned();
    assert_ne!(theirs, uuid);
    let r = send(&app, Method::POST, "/api/v1/events", Some(&json!({"type": "call_queued", "call_id": "SHARED", "queue_id": "q1", "timestamp": t(6)})), k).await;
    assert_problem(
        &r,
        422,
        Some("queue_id"),
        "our queue does not exist for them",
    );

    let r = send(&app, Method::GET, "/api/v1/calls/SHARED", None, k).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["id"].as_str(), Some(theirs.as_str()));
    assert_eq!(r.body["initiated_at"], t(5));
    let r = send(&app, Method::GET, "/api/v1/calls", None, k).await;
    assert_eq!(ids(&r.body), ["SHARED"]);

    assert_eq!(call(&app, "SHARED").await, before, "ours unchanged");
    assert_eq!(
        get_with(&app, &format!("/api/v1/calls/{theirs}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(list_ids(&app, "").await, ["AL2", "SHARED", "AL"]);
    assert_eq!(app.history("SHARED").await, ["call_initiated"]);
}

// ---------------------------------------------------------------------------------------------
// Lists

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_list_filters() {
    let app = event_time_app().await;
    app.queue(json!({"id": "q1"})).await;
    app.queue(json!({"id": "q2"})).await;
    // A: waiting in q1 (breaches its SLA when D arrives at +40).
    ok(
        &app,
        ev("call_initiated", "A", 0, json!({"queue_id": "q1"})),
    )
    .await;
    // B: short answered call in q1, ended (review).
    ok(
        &app,
        ev("call_initiated", "B", 10, json!({"queue_id": "q1"})),
    )
    .await;
    ok(&app, ev("call_routed", "B", 11, json!({"agent_id": "a1"}))).await;
    ok(&app, ev("call_answered", "B", 12, json!({}))).await;
    ok(
        &app,
        ev("call_ended", "B", 15, json!({"end_reason": "completed"})),
    )
    .await;
    // C: active in q2.
    ok(
        &app,
        ev("call_initiated", "C", 20, json!({"queue_id": "q2"})),
    )
    .await;
    ok(&app, ev("call_routed", "C", 21, json!({"agent_id": "a2"}))).await;
    ok(&app, ev("call_answered", "C", 22, json!({}))).await;
    // D: initiated, no queue.
    ok(&app, ev("call_initiated", "D", 40, json!({}))).await;
    // E: entered q1, transferred to q2: current queue q2.
    ok(
        &app,
        ev("call_initiated", "E", 50, json!({"queue_id": "q1"})),
    )
    .await;
    ok(
        &app,
        ev("call_transferred", "E", 51, json!({"queue_id": "q2"})),
    )
    .await;

    assert_eq!(
        list_ids(&app, "").await,
        ["E", "D", "C", "B", "A"],
        "newest first"
    );
    let cases: Vec<(String, Vec<&str>)> = vec![
        ("status=waiting".into(), vec!["A", "E"]),
        ("status=ended".into(), vec!["B"]),
        ("status=active".into(), vec!["C"]),
        ("status=initiated".into(), vec!["D"]),
        ("status=on_hold".into(), vec![]),
        ("queue_id=q1".into(), vec!["A", "B"]),
        ("queue_id=q2".into(), vec!["C", "E"]),
        ("queue_id=q3".into(), vec![]),
        ("flag=review".into(), vec!["B"]),
        ("flag=sla_breached".into(), vec!["A"]),
        ("flag=long_hold".into(), vec![]),
        (
            format!("from={}", urlencode(&t(10))),
            vec!["B", "C", "D", "E"],
        ),
        (format!("to={}", urlencode(&t(40))), vec!["A", "B", "C"]),
        (
            format!("from={}&to={}", urlencode(&t(10)), urlencode(&t(40))),
            vec!["B", "C"],
        ),
        ("status=waiting&queue_id=q2".into(), vec!["E"]),
        (
            format!("status=waiting&from={}", urlencode(&t(1))),
            vec!["E"],
        ),
    ];
    for (q, want) in &cases {
        let got = list_ids(&app, q).await;
        assert_eq!(
            got.iter().cloned().collect::<BTreeSet<_>>(),
            set(want),
            "calls?{q}"
        );
        assert_eq!(got.len(), want.len(), "calls?{q}: no repeats");
    }

    let bad: Vec<(String, &str)> = vec![
        ("status=bogus".into(), "status"),
        ("flag=pretty".into(), "flag"),
        ("from=yesterday".into(), "from"),
        ("to=1999-13-01".into(), "to"),
        ("limit=0".into(), "limit"),
        ("limit=501".into(), "limit"),
        ("limit=-1".into(), "limit"),
        ("cursor=garbage".into(), "cursor"),
    ];
    for (q, field) in &bad {
        let r = get_with(&app, &format!("/api/v1/calls?{q}")).await;
        assert_problem(&r, 400, Some(field), &format!("calls?{q}"));
    }
    let r = get_with(&app, "/api/v1/calls/A/events?limit=0").await;
    assert_problem(&r, 400, Some("limit"), "events limit=0");
    let r = get_with(&app, "/api/v1/calls/NOPE").await;
    assert_problem(&r, 404, None, "unknown call");
    let r = get_with(&app, "/api/v1/calls/NOPE/events").await;
    assert_problem(&r, 404, None, "unknown call's events");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_list_cursor_visits_every_call_once() {
    let app = TestApp::spawn().await;
    // Four calls share one initiation time: the cursor must break the tie.
    let mut events = Vec::new();
    for (id, s) in [
        ("P1", 10),
        ("P2", 100),
        ("P3", 100),
        ("P4", 100),
        ("P5", 100),
        ("P6", 200),
        ("P7", 5),
    ] {
        events.push(json!({"type": "call_initiated", "call_id": id, "timestamp": t(s)}));
    }
    let b = app.batch(events).await;
    assert_eq!(b["accepted"], 7, "{b}");

    for limit in [1, 2, 3, 7] {
        let mut seen: Vec<(String, String)> = Vec::new();
        let mut cursor: Option<String> = None;
        for page in 0.. {
            assert!(page < 20, "too many pages");
            let path = match &cursor {
                Some(c) => format!("/api/v1/calls?limit={limit}&cursor={}", urlencode(c)),
                None => format!("/api/v1/calls?limit={limit}"),
            };
            let (s, v) = app.get(&path).await;
            assert_eq!(s, StatusCode::OK, "{v}");
            let items = v["items"].as_array().unwrap();
            assert!(items.len() <= limit);
            seen.extend(items.iter().map(|c| {
                (
                    c["call_id"].as_str().unwrap().to_owned(),
                    c["initiated_at"].as_str().unwrap().to_owned(),
                )
            }));
            match v["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        let names: Vec<&str> = seen.iter().map(|(c, _)| c.as_str()).collect();
        let unique: HashSet<&str> = names.iter().copied().collect();
        assert_eq!(names.len(), 7, "limit {limit}: {names:?}");
        assert_eq!(unique.len(), 7, "limit {limit}: each once: {names:?}");
        assert_eq!(names[0], "P6", "limit {limit}: newest first");
        assert_eq!(names[5..], ["P1", "P7"], "limit {limit}");
        let times: Vec<&str> = seen.iter().map(|(_, t)| t.as_str()).collect();
        assert!(
            times.windows(2).all(|w| w[0] >= w[1]),
            "limit {limit}: newest first: {times:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_list_filters_and_cursor() {
    let app = event_time_app().await;
    app.queue(json!({"id": "q1"})).await;
    // A: answered at +40 -> sla_breached at +30, long_wait at +40.
    ok(
        &app,
        ev("call_initiated", "A", 0, json!({"queue_id": "q1"})),
    )
    .await;
    ok(&app, ev("call_routed", "A", 39, json!({"agent_id": "a1"}))).await;
    ok(&app, ev("call_answered", "A", 40, json!({}))).await;
    ok(
        &app,
        ev("call_ended", "A", 60, json!({"end_reason": "completed"})),
    )
    .await;
    // B: on hold 97 s -> long_hold at +163.
    ok(
        &app,
        ev("call_initiated", "B", 100, json!({"queue_id": "q1"})),
    )
    .await;
    ok(&app, ev("call_routed", "B", 101, json!({"agent_id": "a2"}))).await;
    ok(&app, ev("call_answered", "B", 102, json!({}))).await;
    ok(&app, ev("call_hold", "B", 103, json!({}))).await;
    ok(&app, ev("call_resumed", "B", 200, json!({}))).await;
    ok(
        &app,
        ev("call_ended", "B", 210, json!({"end_reason": "completed"})),
    )
    .await;

    let (s, all) = app.get("/api/v1/alerts").await;
    assert_eq!(s, StatusCode::OK, "{all}");
    let items = all["items"].as_array().unwrap();
    let got: Vec<(&str, &str, &str)> = items
        .iter()
        .map(|a| {
            (
                a["type"].as_str().unwrap(),
                a["call_id"].as_str().unwrap(),
                a["timestamp"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("long_hold", "B", t(163).as_str()),
            ("long_wait", "A", t(40).as_str()),
            ("sla_breached", "A", t(30).as_str())
        ],
        "newest first"
    );
    let seqs: Vec<i64> = items.iter().map(|a| a["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] > w[1]), "{seqs:?}");
    assert_eq!(items[0]["queue_id"], "q1");
    assert_eq!(items[0]["data"]["threshold_s"], 60);
    assert_eq!(f64_of(&items[0]["data"]["hold_s"]), 60.0);
    assert_eq!(f64_of(&items[1]["data"]["wait_s"]), 40.0);
    assert_eq!(items[2]["data"]["threshold_s"], 30);
    assert_eq!(items[2]["call_uuid"], call(&app, "A").await["id"]);

    let types = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["type"].as_str().unwrap().to_owned())
            .collect()
    };
    let cases: Vec<(String, Vec<&str>)> = vec![
        ("type=sla_breached".into(), vec!["sla_breached"]),
        ("type=long_wait".into(), vec!["long_wait"]),
        ("type=long_hold".into(), vec!["long_hold"]),
        (
            format!("from={}", urlencode(&t(35))),
            vec!["long_hold", "long_wait"],
        ),
        (
            format!("from={}", urlencode(&t(40))),
            vec!["long_hold", "long_wait"],
        ),
        (format!("to={}", urlencode(&t(40))), vec!["sla_breached"]),
        (
            format!("from={}&to={}", urlencode(&t(31)), urlencode(&t(163))),
            vec!["long_wait"],
        ),
        (
            format!("type=sla_breached&from={}", urlencode(&t(31))),
            vec![],
        ),
    ];
    for (q, want) in &cases {
        let (s, v) = app.get(&format!("/api/v1/alerts?{q}")).await;
        assert_eq!(s, StatusCode::OK, "alerts?{q}: {v}");
        assert_eq!(types(&v), *want, "alerts?{q}");
    }

    // Cursor: one per page, each once.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let path = match &cursor {
            Some(c) => format!("/api/v1/alerts?limit=1&cursor={}", urlencode(c)),
            None => "/api/v1/alerts?limit=1".to_owned(),
        };
        let (_, v) = app.get(&path).await;
        seen.extend(types(&v));
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ["long_hold", "long_wait", "sla_breached"]);

    for (q, field) in [
        ("type=meltdown", "type"),
        ("from=soon", "from"),
        ("to=later", "to"),
        ("limit=1000", "limit"),
        ("cursor=x", "cursor"),
    ] {
        let r = get_with(&app, &format!("/api/v1/alerts?{q}")).await;
        assert_problem(&r, 400, Some(field), &format!("alerts?{q}"));
    }
}

// ---------------------------------------------------------------------------------------------
// Ops and description

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_ready_need_no_key() {
    let app = TestApp::spawn().await;
    let r = send(&app, Method::GET, "/health", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["status"], "ok");
    let r = send(&app, Method::GET, "/ready", None, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "ready");
    // An API route does need one.
    let r = send(&app, Method::GET, "/api/v1/queues", None, None).await;
    assert_problem(&r, 401, None, "queues without key");
    let r = send(&app, Method::GET, "/api/v1/alerts", None, None).await;
    assert_problem(&r, 401, None, "alerts without key");
    let r = send(
        &app,
        Method::GET,
        "/api/v1/no-such-thing",
        None,
        Some(&app.key),
    )
    .await;
    assert_problem(&r, 404, None, "unknown route");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_lists_every_route_with_operation_ids() {
    let app = TestApp::spawn().await;
    let r = send(&app, Method::GET, "/api/v1/openapi.json", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    let doc = &r.body;
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().expect("paths");
    let expected: &[(&str, &[&str])] = &[
        ("/health", &["get"]),
        ("/ready", &["get"]),
        ("/api/v1/tenant", &["get", "patch"]),
        ("/api/v1/queues", &["get", "post"]),
        ("/api/v1/queues/{queue_id}", &["get", "patch"]),
        ("/api/v1/events", &["post"]),
        ("/api/v1/events/batch", &["post"]),
        ("/api/v1/calls", &["get"]),
        ("/api/v1/calls/{id}", &["get"]),
        ("/api/v1/calls/{id}/events", &["get"]),
        ("/api/v1/alerts", &["get"]),
        ("/api/v1/reports/queues", &["get"]),
        ("/api/v1/stream", &["get"]),
    ];
    for (p, methods) in expected {
        let item = paths.get(*p).unwrap_or_else(|| {
            panic!(
                "path {p} missing; have {:?}",
                paths.keys().collect::<Vec<_>>()
            )
        });
        for m in *methods {
            assert!(item.get(*m).is_some(), "{m} {p} missing");
        }
    }
    let mut op_ids = HashSet::new();
    for (p, item) in paths {
        for (m, op) in item.as_object().unwrap() {
            if !["get", "post", "put", "patch", "delete"].contains(&m.as_str()) {
                continue;
            }
            let id = op["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{m} {p} has no operationId"));
            assert!(!id.is_empty(), "{m} {p}");
            assert!(op_ids.insert(id.to_owned()), "operationId {id} repeated");
        }
    }
    assert_eq!(paths["/api/v1/events"]["post"]["operationId"], "postEvent");
    assert!(
        doc["components"]["securitySchemes"]["api_key"].is_object(),
        "api key scheme"
    );
}
