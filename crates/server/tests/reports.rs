//! `GET /api/v1/reports/queues` through the real server: the SLA threshold frozen on the call at
//! queue entry is the one `sla_breached`, `long_wait` and `answered_within_sl` all use, whatever
//! the queue's threshold is changed to afterwards (docs/metrics.md "Thresholds and timers").

mod support;

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::{call, ev, ok, route_and_answer, TestApp};

fn flags(c: &Value) -> Vec<&str> {
    c["flags"]
        .as_array()
        .expect("flags")
        .iter()
        .map(|f| f.as_str().expect("flag name"))
        .collect()
}

async fn report(app: &TestApp, query: &str) -> Vec<Value> {
    let (s, v) = app.get(&format!("/api/v1/reports/queues?{query}")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["rows"].as_array().expect("rows").clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answered_within_sl_uses_the_threshold_frozen_at_queue_entry() {
    let app = TestApp::spawn().await;
    app.clock("event_time").await;
    app.queue(json!({"id": "q", "sla_threshold_s": 30})).await;

    // Queued under a 30 s threshold; the queue is changed to 20 s while it waits.
    ok(
        &app,
        ev("call_initiated", "EARLY", 0, json!({"queue_id": "q"})),
    )
    .await;
    let (s, v) = app
        .patch("/api/v1/queues/q", &json!({"sla_threshold_s": 20}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    route_and_answer(&app, "EARLY", "a1", 20, 25).await;
    ok(
        &app,
        ev(
            "call_ended",
            "EARLY",
            100,
            json!({"end_reason": "completed"}),
        ),
    )
    .await;

    // Queued after the change: 25 s is over its 20 s.
    ok(
        &app,
        ev("call_initiated", "LATE", 200, json!({"queue_id": "q"})),
    )
    .await;
    route_and_answer(&app, "LATE", "a2", 220, 225).await;
    ok(
        &app,
        ev(
            "call_ended",
            "LATE",
            300,
            json!({"end_reason": "completed"}),
        ),
    )
    .await;

    let early = call(&app, "EARLY").await;
    assert_eq!(early["wait_s"].as_f64(), Some(25.0));
    assert!(
        flags(&early).is_empty(),
        "no long_wait nor sla_breached under its frozen 30 s: {early}"
    );
    let late = call(&app, "LATE").await;
    let mut late_flags = flags(&late);
    late_flags.sort();
    assert_eq!(late_flags, ["long_wait", "sla_breached"], "{late}");

    let q = "from=1999-08-01T00:00:00Z&to=1999-08-02T00:00:00Z&interval=day";
    let rows = report(&app, q).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let r = &rows[0];
    assert_eq!(r["interval_start"], "1999-08-01T00:00:00Z");
    assert_eq!(r["queue_id"], "q");
    assert_eq!(r["answered"], 2);
    assert_eq!(r["answered_within_sl"], 1, "EARLY within its 30 s: {r}");
    assert_eq!(r["sla_breached"], 1, "{r}");
    assert_eq!(r["service_level"].as_f64(), Some(0.5));

    // A later change to the threshold changes nothing in the past.
    let (s, _) = app
        .patch("/api/v1/queues/q", &json!({"sla_threshold_s": 5}))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(report(&app, q).await, rows);
    let (s, _) = app
        .patch("/api/v1/queues/q", &json!({"sla_threshold_s": 60}))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(report(&app, q).await, rows);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buckets_by_hour_and_quarter_and_one_queue() {
    let app = TestApp::spawn().await;
    app.clock("event_time").await;
    app.queue(json!({"id": "a"})).await;
    app.queue(json!({"id": "b"})).await;
    // 00:00:10 and 00:14:59 in the first quarter, 00:15:00 in the second, 01:00:00 in the
    // second hour; one call in queue b.
    for (id, at, q) in [
        ("A1", 10, "a"),
        ("A2", 899, "a"),
        ("A3", 900, "a"),
        ("A4", 3_600, "a"),
        ("B1", 20, "b"),
    ] {
        ok(&app, ev("call_initiated", id, at, json!({"queue_id": q}))).await;
    }
    ok(
        &app,
        ev(
            "call_ended",
            "A1",
            3_700,
            json!({"end_reason": "abandoned"}),
        ),
    )
    .await;

    let range = "from=1999-08-01T00:00:00Z&to=1999-08-01T02:00:00Z";
    let keys = |rows: &[Value]| -> Vec<(String, String, u64)> {
        rows.iter()
            .map(|r| {
                (
                    r["interval_start"].as_str().unwrap()[11..16].to_owned(),
                    r["queue_id"].as_str().unwrap().to_owned(),
                    r["offered"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    let k = |t: &str, q: &str, n: u64| (t.to_owned(), q.to_owned(), n);
    let rows = report(&app, &format!("{range}&interval=15m")).await;
    assert_eq!(
        keys(&rows),
        [
            k("00:00", "a", 2),
            k("00:00", "b", 1),
            k("00:15", "a", 1),
            k("01:00", "a", 1)
        ]
    );
    assert_eq!(rows[0]["abandoned"], 1);
    assert_eq!(rows[0]["avg_abandon_wait_s"].as_f64(), Some(3_690.0));
    let rows = report(&app, &format!("{range}&interval=hour&queue_id=a")).await;
    assert_eq!(keys(&rows), [k("00:00", "a", 3), k("01:00", "a", 1)]);
    // Still waiting: offered only, no wait counted.
    assert_eq!(rows[1]["max_wait_s"], Value::Null);
    let rows = report(&app, &format!("{range}&interval=day&queue_id=nope")).await;
    assert!(rows.is_empty());
}

/// Days in the tenant's time zone: local midnight, DST included (Europe/Paris went from +01:00
/// to +02:00 on 2026-03-29, a 23-hour day).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn days_follow_the_tenants_time_zone_when_asked() {
    let app = TestApp::spawn().await;
    app.clock("event_time").await;
    app.queue(json!({"id": "q"})).await;
    let (s, v) = app
        .patch("/api/v1/tenant", &json!({"time_zone": "Europe/Paris"}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // Local 23:30 on the 28th, 00:30 on the 29th, 00:30 on the 30th (after the change).
    for (id, at) in [
        ("A", "2026-03-28T22:30:00Z"),
        ("B", "2026-03-28T23:30:00Z"),
        ("C", "2026-03-29T22:30:00Z"),
    ] {
        ok(
            &app,
            json!({"type": "call_initiated", "call_id": id, "queue_id": "q", "timestamp": at}),
        )
        .await;
    }
    let range = "from=2026-03-27T00:00:00Z&to=2026-03-31T00:00:00Z&interval=day";
    let utc = report(&app, range).await;
    let days: Vec<(&str, u64)> = utc
        .iter()
        .map(|r| {
            (
                r["interval_start"].as_str().unwrap(),
                r["offered"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        days,
        [("2026-03-28T00:00:00Z", 2), ("2026-03-29T00:00:00Z", 1)],
        "UTC days by default"
    );
    for tz in ["tenant", "Europe/Paris"] {
        let local = report(&app, &format!("{range}&time_zone={tz}")).await;
        let days: Vec<(&str, u64)> = local
            .iter()
            .map(|r| {
                (
                    r["interval_start"].as_str().unwrap(),
                    r["offered"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            days,
            [
                ("2026-03-28T00:00:00+01:00", 1),
                ("2026-03-29T00:00:00+01:00", 1),
                ("2026-03-30T00:00:00+02:00", 1),
            ],
            "{tz}"
        );
    }
    let (s, v) = app
        .get(&format!(
            "/api/v1/reports/queues?{range}&time_zone=Mars/Olympus"
        ))
        .await;
    assert_eq!(
        (s, v["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("time_zone"))
    );
    let (s, v) = app
        .get("/api/v1/reports/queues?from=2026-03-27T00:07:00Z&to=2026-03-31T00:00:00Z&time_zone=tenant")
        .await;
    assert_eq!(
        (s, v["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("from"))
    );
    app.stop().await;
}
