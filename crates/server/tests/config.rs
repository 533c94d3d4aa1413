//! Configuration through the engine, through the real server on SQLite or (with
//! `TEST_DATABASE_URL`) PostgreSQL: concurrent PATCHes of different queue fields all survive,
//! `ETag` / `If-Match` compare-and-set on queues and the tenant (412 naming the current tag,
//! 400 for a malformed header), 404 and 409 on queues, and a tenant created while the server
//! runs works at once and stays isolated.

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use support::{ev, TestApp};

const PROBLEM: &str = "application/problem+json";

/// One answer with the headers these tests look at.
#[derive(Debug)]
struct Resp {
    status: StatusCode,
    etag: Option<String>,
    ct: Option<String>,
    body: Value,
}

/// Sends `method path` with `key`, an optional `If-Match` and an optional JSON body.
async fn req(
    client: &reqwest::Client,
    url: String,
    method: Method,
    key: &str,
    if_match: Option<&str>,
    body: Option<&Value>,
) -> Resp {
    let mut rb = client.request(method, url).header("X-API-Key", key);
    if let Some(m) = if_match {
        rb = rb.header("If-Match", m);
    }
    if let Some(b) = body {
        rb = rb.json(b);
    }
    let r = rb.send().await.expect("request");
    let h = |n: &str| {
        r.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (status, etag, ct) = (r.status(), h("etag"), h("content-type"));
    let bytes = r.bytes().await.expect("body");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    Resp {
        status,
        etag,
        ct,
        body,
    }
}

async fn get(app: &TestApp, key: &str, path: &str) -> Resp {
    req(&app.client, app.url(path), Method::GET, key, None, None).await
}

async fn patch(app: &TestApp, key: &str, path: &str, if_match: Option<&str>, body: Value) -> Resp {
    req(
        &app.client,
        app.url(path),
        Method::PATCH,
        key,
        if_match,
        Some(&body),
    )
    .await
}

async fn post(app: &TestApp, key: &str, path: &str, body: Value) -> Resp {
    req(
        &app.client,
        app.url(path),
        Method::POST,
        key,
        None,
        Some(&body),
    )
    .await
}

/// Asserts a problem+json answer with `status` and, when given, `field`.
#[track_caller]
fn assert_problem(r: &Resp, status: u16, field: Option<&str>, ctx: &str) {
    assert_eq!(r.status.as_u16(), status, "{ctx}: {}", r.body);
    assert_eq!(r.ct.as_deref(), Some(PROBLEM), "{ctx}: content type");
    assert_eq!(
        r.body["status"].as_u64(),
        Some(status as u64),
        "{ctx}: {}",
        r.body
    );
    if let Some(f) = field {
        assert_eq!(r.body["field"].as_str(), Some(f), "{ctx}: {}", r.body);
    }
}

/// The version in a strong `ETag` `"<n>"`.
#[track_caller]
fn version(etag: &Option<String>) -> i64 {
    let e = etag.as_deref().expect("an ETag header");
    e.strip_prefix('"')
        .and_then(|e| e.strip_suffix('"'))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a strong numeric ETag: {e}"))
}

// ---------------------------------------------------------------------------------------------
// Concurrent PATCHes

/// The four fields the concurrent PATCHes change, one each.
const FIELDS: [&str; 4] = [
    "sla_threshold_s",
    "ring_timeout_s",
    "hold_max_s",
    "short_call_s",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_patches_of_different_fields_all_survive() {
    let app = TestApp::spawn().await;
    app.queue(json!({"id": "q1"})).await;
    let mut etag = get(&app, &app.key, "/api/v1/queues/q1").await.etag;
    let barrier = Arc::new(tokio::sync::Barrier::new(FIELDS.len()));
    for round in 0..30u64 {
        // Fresh values every round, different for each field.
        let want: Vec<u64> = (0..FIELDS.len() as u64)
            .map(|i| 100 + round * 10 + i)
            .collect();
        let tasks: Vec<_> = FIELDS
            .iter()
            .zip(&want)
            .map(|(field, value)| {
                let (client, url, key) = (
                    app.client.clone(),
                    app.url("/api/v1/queues/q1"),
                    app.key.clone(),
                );
                let body = json!({ *field: value });
                let barrier = barrier.clone();
                tokio::spawn(async move {
                    // All four leave together, to meet inside the server.
                    barrier.wait().await;
                    req(&client, url, Method::PATCH, &key, None, Some(&body)).await
                })
            })
            .collect();
        let mut tags = BTreeSet::new();
        for (task, field) in tasks.into_iter().zip(FIELDS) {
            let r = task.await.expect("patch task");
            assert_eq!(
                r.status,
                StatusCode::OK,
                "round {round} {field}: {}",
                r.body
            );
            tags.insert(version(&r.etag));
        }
        let r = get(&app, &app.key, "/api/v1/queues/q1").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        for (field, value) in FIELDS.iter().zip(&want) {
            assert_eq!(
                r.body[*field].as_u64(),
                Some(*value),
                "round {round}: {field} lost: {}",
                r.body
            );
        }
        // Each PATCH made its own version: four new ones, the last of them current.
        let before = version(&etag);
        assert_eq!(
            tags,
            (before + 1..=before + 4).collect::<BTreeSet<_>>(),
            "round {round}: the four answers' ETags"
        );
        assert_eq!(version(&r.etag), before + 4, "round {round}: ETag after");
        assert_ne!(r.etag, etag, "round {round}: the ETag changed");
        etag = r.etag;
    }
}

// ---------------------------------------------------------------------------------------------
// ETag / If-Match

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_etag_and_if_match() {
    let app = TestApp::spawn().await;
    let key = app.key.clone();
    let path = "/api/v1/queues/q1";
    let created = post(&app, &key, "/api/v1/queues", json!({"id": "q1"})).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let r = get(&app, &key, path).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.etag.is_some(), "GET gives an ETag");
    assert_eq!(r.etag, created.etag, "the ETag of the created version");
    let v1 = r.etag.clone();

    // The current ETag: applied, and a new ETag.
    let r = patch(
        &app,
        &key,
        path,
        v1.as_deref(),
        json!({"sla_threshold_s": 45}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["sla_threshold_s"], 45);
    assert_ne!(r.etag, v1, "a new ETag");
    let v2 = r.etag.clone();
    assert_eq!(
        get(&app, &key, path).await.etag,
        v2,
        "GET gives the new one"
    );

    // A stale ETag: 412 naming the current one, nothing changed.
    let r = patch(
        &app,
        &key,
        path,
        v1.as_deref(),
        json!({"sla_threshold_s": 50}),
    )
    .await;
    assert_problem(&r, 412, None, "stale If-Match");
    assert_eq!(r.body["current_etag"].as_str(), v2.as_deref(), "{}", r.body);
    let now = get(&app, &key, path).await;
    assert_eq!(now.body["sla_threshold_s"], 45, "unchanged by the 412");
    assert_eq!(now.etag, v2, "version unchanged by the 412");

    // One of a list matches; `*` matches any existing version.
    let list = format!("\"999\", {}", v2.as_deref().unwrap());
    let r = patch(&app, &key, path, Some(&list), json!({"hold_max_s": 61})).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "list with the current tag: {}",
        r.body
    );
    let r = patch(&app, &key, path, Some("*"), json!({"hold_max_s": 62})).await;
    assert_eq!(r.status, StatusCode::OK, "If-Match *: {}", r.body);
    let v4 = r.etag.clone();
    // A weak tag never matches (strong comparison).
    let weak = format!("W/{}", v4.as_deref().unwrap());
    let r = patch(&app, &key, path, Some(&weak), json!({"hold_max_s": 63})).await;
    assert_problem(&r, 412, None, "weak If-Match");

    // Malformed: 400 naming the header, nothing changed.
    for bad in ["4", "\"4", "", "  ,  "] {
        let r = patch(&app, &key, path, Some(bad), json!({"hold_max_s": 64})).await;
        assert_problem(&r, 400, Some("If-Match"), &format!("If-Match {bad:?}"));
    }
    let now = get(&app, &key, path).await;
    assert_eq!(now.body["hold_max_s"], 62, "unchanged by refused PATCHes");
    assert_eq!(now.etag, v4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_etag_and_if_match() {
    let app = TestApp::spawn().await;
    let key = app.key.clone();
    let path = "/api/v1/tenant";
    let r = get(&app, &key, path).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v1 = r.etag.clone();
    assert!(v1.is_some(), "GET /tenant gives an ETag");

    let r = patch(
        &app,
        &key,
        path,
        v1.as_deref(),
        json!({"clock": "event_time"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["clock"], "event_time");
    assert_ne!(r.etag, v1, "a new ETag");
    let v2 = r.etag.clone();
    assert_eq!(get(&app, &key, path).await.etag, v2);

    let r = patch(&app, &key, path, v1.as_deref(), json!({"clock": "live"})).await;
    assert_problem(&r, 412, None, "stale If-Match on the tenant");
    assert_eq!(r.body["current_etag"].as_str(), v2.as_deref(), "{}", r.body);
    let r = patch(&app, &key, path, Some("2"), json!({"clock": "live"})).await;
    assert_problem(
        &r,
        400,
        Some("If-Match"),
        "malformed If-Match on the tenant",
    );
    let now = get(&app, &key, path).await;
    assert_eq!(
        now.body["clock"], "event_time",
        "unchanged by refused PATCHes"
    );
    assert_eq!(now.etag, v2);
}

// ---------------------------------------------------------------------------------------------
// 404 and 409

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_queue_is_404_and_a_taken_id_is_409_naming_id() {
    let app = TestApp::spawn().await;
    let key = app.key.clone();
    let r = patch(
        &app,
        &key,
        "/api/v1/queues/nope",
        None,
        json!({"hold_max_s": 5}),
    )
    .await;
    assert_problem(&r, 404, None, "PATCH of an unknown queue");
    // Conditionally, If-Match cannot match a resource that does not exist: 412 (RFC 9110
    // §13.1.1), and nothing is created.
    let r = patch(
        &app,
        &key,
        "/api/v1/queues/nope",
        Some("\"1\""),
        json!({"hold_max_s": 5}),
    )
    .await;
    assert_problem(&r, 412, None, "conditional PATCH of an unknown queue");
    let r = get(&app, &key, "/api/v1/queues/nope").await;
    assert_problem(&r, 404, None, "the PATCH created nothing");

    app.queue(json!({"id": "q1", "name": "First"})).await;
    let before = get(&app, &key, "/api/v1/queues/q1").await;
    let r = post(
        &app,
        &key,
        "/api/v1/queues",
        json!({"id": "q1", "name": "Second", "sla_threshold_s": 5}),
    )
    .await;
    assert_problem(&r, 409, Some("id"), "create with a taken id");
    assert!(
        r.body["detail"].as_str().unwrap_or_default().contains("q1"),
        "{}",
        r.body
    );
    let after = get(&app, &key, "/api/v1/queues/q1").await;
    assert_eq!(after.body, before.body, "the existing queue is unchanged");
    assert_eq!(after.etag, before.etag);
}

// ---------------------------------------------------------------------------------------------
// A tenant created while the server runs

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_created_at_runtime_works_at_once_and_is_isolated() {
    let app = TestApp::spawn().await;
    let ours = app.key.clone();
    // The default tenant is loaded and busy before the other one exists.
    app.queue(json!({"id": "home"})).await;
    let r = post(
        &app,
        &ours,
        "/api/v1/events",
        ev("call_initiated", "H1", 0, json!({"queue_id": "home"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    let theirs = app.other_tenant("late").await;
    // Stamped from now: on the live clock the 20 s SLA timer is not due before the call ends
    // (a 1999 stamp would make it due at once, racing the test).
    let start = switchboard_core::time::now_ms();
    let now = |s: i64| switchboard_core::format_rfc3339(start + s * 1000);
    let r = post(
        &app,
        &theirs,
        "/api/v1/queues",
        json!({"id": "sales", "sla_threshold_s": 20}),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "queue of the new tenant: {}",
        r.body
    );
    let r = post(
        &app,
        &theirs,
        "/api/v1/events",
        json!({"type": "call_initiated", "call_id": "L1", "queue_id": "sales", "timestamp": now(0)}),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "event of the new tenant: {}",
        r.body
    );
    assert_eq!(r.body["status"], "waiting", "queued at once: {}", r.body);
    let r = post(
        &app,
        &theirs,
        "/api/v1/events",
        json!({"type": "call_ended", "call_id": "L1", "end_reason": "abandoned", "timestamp": now(8)}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    let r = get(&app, &theirs, "/api/v1/calls/L1").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "ended");
    assert_eq!(r.body["queue_id"], "sales");
    let r = get(&app, &theirs, "/api/v1/calls/L1/events").await;
    let types: Vec<&str> = r.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["call_initiated", "call_ended"]);
    let r = get(&app, &theirs, "/api/v1/queues/sales").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["sla_threshold_s"], 20);
    let r = patch(
        &app,
        &theirs,
        "/api/v1/queues/sales",
        r.etag.as_deref(),
        json!({"hold_max_s": 90}),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "conditional PATCH by the new tenant: {}",
        r.body
    );
    let r = get(&app, &theirs, "/api/v1/tenant").await;
    assert_eq!(r.body["slug"], "late");

    // Isolated both ways: another tenant's queue or call is 404, and a same id is its own.
    for (key, path) in [
        (&ours, "/api/v1/queues/sales"),
        (&ours, "/api/v1/calls/L1"),
        (&theirs, "/api/v1/queues/home"),
        (&theirs, "/api/v1/calls/H1"),
    ] {
        let r = get(&app, key, path).await;
        assert_problem(&r, 404, None, path);
    }
    let r = patch(
        &app,
        &ours,
        "/api/v1/queues/sales",
        None,
        json!({"hold_max_s": 1}),
    )
    .await;
    assert_problem(&r, 404, None, "PATCH of another tenant's queue");
    let r = post(
        &app,
        &ours,
        "/api/v1/events",
        ev("call_initiated", "X", 1, json!({"queue_id": "sales"})),
    )
    .await;
    assert_problem(&r, 422, Some("queue_id"), "their queue in our event");
    let r = post(&app, &ours, "/api/v1/queues", json!({"id": "sales"})).await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "the same queue id is ours to take: {}",
        r.body
    );
    let r = get(&app, &theirs, "/api/v1/queues/sales").await;
    assert_eq!(r.body["sla_threshold_s"], 20, "theirs untouched");
    assert_eq!(r.body["hold_max_s"], 90, "theirs untouched");
    let r = get(&app, &ours, "/api/v1/calls").await;
    let calls: Vec<&str> = r.body["items"]
        .as_array()
        .map(|a| a.iter().map(|c| c["call_id"].as_str().unwrap()).collect())
        .unwrap_or_default();
    assert_eq!(calls, ["H1"], "our list holds only our call: {}", r.body);
}
