//! Defects found by hostile testing of issue 5 ("Engine foundation"). Each test names the
//! defect it shows; on both backends unless said otherwise.
//!
//! Faults are injected with a database trigger that refuses some rows (SQLite `RAISE(ABORT)`,
//! a PL/pgSQL exception on PostgreSQL): deterministic, no root needed.

mod support;

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Database};
use serde_json::{json, Value};

use support::{ok, TestApp};

/// Runs SQL statements on the app's database, outside the server.
async fn sql(app: &TestApp, stmts: &[&str]) {
    let db = Database::connect(app.db_url.as_str())
        .await
        .expect("connect to the test database");
    for s in stmts {
        db.execute_unprepared(s)
            .await
            .unwrap_or_else(|e| panic!("{s}: {e}"));
    }
    db.close().await.expect("close");
}

fn postgres(app: &TestApp) -> bool {
    app.db_url.starts_with("postgres")
}

/// Makes every insert into `call_events` of an event of type `ty` fail.
async fn refuse_event_type(app: &TestApp, ty: &str) {
    if postgres(app) {
        let f = format!(
            "CREATE FUNCTION hostile_refuse() RETURNS trigger AS $$ BEGIN \
             IF NEW.event_type = '{ty}' THEN RAISE EXCEPTION 'hostile: injected failure'; END IF; \
             RETURN NEW; END $$ LANGUAGE plpgsql"
        );
        sql(
            app,
            &[
                &f,
                "CREATE TRIGGER hostile_refuse BEFORE INSERT ON call_events \
                 FOR EACH ROW EXECUTE FUNCTION hostile_refuse()",
            ],
        )
        .await;
    } else {
        let t = format!(
            "CREATE TRIGGER hostile_refuse BEFORE INSERT ON call_events \
             WHEN NEW.event_type = '{ty}' BEGIN SELECT RAISE(ABORT, 'hostile: injected failure'); END"
        );
        sql(app, &[&t]).await;
    }
}

async fn allow_all_events(app: &TestApp) {
    if postgres(app) {
        sql(
            app,
            &[
                "DROP TRIGGER hostile_refuse ON call_events",
                "DROP FUNCTION hostile_refuse()",
            ],
        )
        .await;
    } else {
        sql(app, &["DROP TRIGGER hostile_refuse"]).await;
    }
}

async fn history(app: &TestApp, call: &str) -> Vec<String> {
    app.history(call).await
}

/// Defect: a tenant made stale by a failed *timer* commit is reloaded only when a client sends
/// it a command. Until then its live timers never fire again (the timer task skips stale
/// tenants and drops them from the schedule, "re-scheduled by its reload", which never comes),
/// even though the store commits again and `/ready` is back to 200. A quiet tenant's waiting
/// calls never get `sla_breached`; `switchboard_stale_tenants` stays 1.
///
/// Expected: once the store commits again, the stale tenant is reloaded (or its timers
/// re-armed) without waiting for a client request, and the SLA alert is raised.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_tenant_recovers_its_timers_without_a_client_request() {
    let app = TestApp::spawn().await;
    app.queue(json!({"id": "fast", "sla_threshold_s": 1, "ring_timeout_s": 1}))
        .await;
    // A call waits; its SLA timer fires in about 1 s, and that commit fails.
    refuse_event_type(&app, "sla_breached").await;
    ok(
        &app,
        json!({"type": "call_initiated", "call_id": "Q1", "queue_id": "fast"}),
    )
    .await;
    // The timer fires, its commit fails (retried, then isolated): the tenant is stale.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(history(&app, "Q1").await, ["call_initiated"]);
    // The store takes every event again.
    allow_all_events(&app).await;
    // No client request from here on: only the server can recover the tenant.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut h = Vec::new();
    while Instant::now() < deadline {
        h = history(&app, "Q1").await;
        if h.len() > 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ready = app
        .client
        .get(app.url("/ready"))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(
        h,
        ["call_initiated", "sla_breached"],
        "the SLA alert of a waiting call is never raised after a failed timer commit, \
         although the store commits again (/ready: {ready})"
    );
}

/// Defect (PostgreSQL): U+0000 in a path segment or query parameter reaches the database in a
/// read, which PostgreSQL refuses: 500 `internal` instead of 404 / 400. SQLite answers 404/200.
/// Expected: 404 for an id that cannot exist, 400 naming a parameter that cannot be valid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_in_a_path_or_query_is_never_a_500() {
    let app = TestApp::spawn().await;
    app.queue(json!({"id": "q1"})).await;
    let cases = [
        "/api/v1/queues/a%00b",
        "/api/v1/queues?cursor=a%00b",
        "/api/v1/calls/a%00b",
        "/api/v1/calls/a%00b/events",
        "/api/v1/calls?queue_id=a%00b",
        "/api/v1/reports/queues?from=2020-01-01T00:00:00Z&to=2020-01-02T00:00:00Z&interval=day&queue_id=a%00b",
    ];
    let mut bad = Vec::new();
    for path in cases {
        let (s, v) = app.get(path).await;
        if s.is_server_error() {
            bad.push(format!("{path} -> {s} {v}"));
        }
    }
    assert!(bad.is_empty(), "server errors for NUL input: {bad:#?}");
}

/// Sanity for the helpers above: an injected failure of one event type gives 503 with
/// `Retry-After` and stores nothing, and the retry after the fault is applied once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_commit_failure_is_a_503_then_exactly_once() {
    let app = TestApp::spawn().await;
    app.queue(json!({"id": "q"})).await;
    refuse_event_type(&app, "call_queued").await;
    let e = json!({"type": "call_initiated", "call_id": "R1", "event_id": "r1"});
    ok(&app, e).await;
    let q = json!({"type": "call_queued", "call_id": "R1", "queue_id": "q", "event_id": "r2"});
    let r = app
        .client
        .post(app.url("/api/v1/events"))
        .header("X-API-Key", &app.key)
        .json(&q)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.headers().get("retry-after").is_some());
    allow_all_events(&app).await;
    let (s, _) = app.event(q.clone()).await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, v) = app.event(q).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["duplicate"], true);
    assert_eq!(history(&app, "R1").await, ["call_initiated", "call_queued"]);
}

/// Defect: limits documented (README, OpenAPI `maxLength`, the 422's own message) in
/// characters are enforced in UTF-8 bytes: a 150-character queue name ("1 to 200
/// characters") and a 100-character `event_id` ("1 to 128 characters") are refused with a
/// message that says they are within the limit; likewise `from`/`to` (256).
/// Expected: count characters, as documented (or document and name bytes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn length_limits_named_in_characters_count_characters() {
    let app = TestApp::spawn().await;
    let name = "é".repeat(150);
    let (s, v) = app
        .post("/api/v1/queues", &json!({"id": "intl", "name": name}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "150-character queue name: {v}");
    let (s, v) = app
        .event(json!({"type": "call_initiated", "call_id": "U1", "event_id": "é".repeat(100)}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "100-character event_id: {v}");
    let (s, v) = app
        .event(json!({"type": "call_initiated", "call_id": "U2", "from": "é".repeat(200)}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "200-character from: {v}");
}
