//! `GET /metrics` against the real server: after a known sequence of requests, events and
//! stream connections, each counter and gauge moved by exactly what it should.
//!
//! The `metrics` recorder is one per process, so this file holds a single test (nothing else
//! records concurrently) and compares values before and after, never absolute ones.

mod support;

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::json;
use support::{ev, TestApp};

/// The value of the sample `name{labels…}` in a Prometheus text page (0 when absent: a counter
/// not yet incremented is not rendered). `labels` must all be present; others may be too.
fn sample(page: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let mut total = None;
    for line in page.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (n, label_block) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        if n != name {
            continue;
        }
        if labels
            .iter()
            .all(|(k, v)| label_block.contains(&format!("{k}=\"{v}\"")))
        {
            assert!(total.is_none(), "{name} {labels:?} matches two series");
            total = Some(value.parse::<f64>().expect("sample value"));
        }
    }
    total.unwrap_or(0.0)
}

async fn scrape(app: &TestApp) -> String {
    let r = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200, "/metrics needs no key");
    let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    r.text().await.unwrap()
}

/// Scrapes until `name` reaches `want` (the stream session starts after the upgrade answer, on
/// its own task); the bound only keeps a broken server from hanging the test.
async fn await_gauge(app: &TestApp, name: &str, want: f64) {
    for _ in 0..400 {
        if sample(&scrape(app).await, name, &[]) == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{name} never reached {want}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_events_commits_calls_and_subscribers() {
    let app = TestApp::spawn().await;
    app.queue(json!({ "id": "q1" })).await;
    // The events are stamped in the past: on the live clock their SLA timers would fire at
    // once and add events of their own.
    app.clock("event_time").await;
    let before = scrape(&app).await;

    // Single events: accepted, duplicate, invalid (422), out of state (409).
    let first = ev(
        "call_initiated",
        "m1",
        0,
        json!({ "queue_id": "q1", "event_id": "e1" }),
    );
    assert_eq!(app.event(first.clone()).await.0, 201);
    assert_eq!(app.event(first).await.0, 200);
    assert_eq!(app.event(json!({ "type": "call_initiated" })).await.0, 422);
    assert_eq!(
        app.event(ev("call_answered", "m1", 1, json!({}))).await.0,
        409
    );
    // A batch: two accepted, one refused.
    let v = app
        .batch(vec![
            ev("call_initiated", "m2", 2, json!({ "queue_id": "q1" })),
            ev("call_initiated", "m3", 3, json!({ "queue_id": "q1" })),
            json!({ "type": "call_ended", "call_id": "never-seen", "end_reason": "completed" }),
        ])
        .await;
    assert_eq!(
        (v["accepted"].as_u64(), v["rejected"].as_u64()),
        (Some(2), Some(1)),
        "{v}"
    );
    // No route.
    assert_eq!(app.get("/api/v1/nothing-here").await.0, 404);

    let after = scrape(&app).await;
    let delta = |name: &str, labels: &[(&str, &str)]| {
        sample(&after, name, labels) - sample(&before, name, labels)
    };
    let events = "switchboard_events_total";
    assert_eq!(delta(events, &[("outcome", "accepted")]), 3.0, "{after}");
    assert_eq!(delta(events, &[("outcome", "duplicate")]), 1.0);
    assert_eq!(delta(events, &[("outcome", "refused")]), 3.0);
    assert_eq!(delta(events, &[("outcome", "unavailable")]), 0.0);

    let http = "switchboard_http_requests_total";
    let post_event = |status| {
        [
            ("method", "POST"),
            ("route", "/api/v1/events"),
            ("status", status),
        ]
    };
    for (status, n) in [("201", 1.0), ("200", 1.0), ("422", 1.0), ("409", 1.0)] {
        assert_eq!(
            delta(http, &post_event(status)),
            n,
            "POST /api/v1/events {status}"
        );
    }
    let batch = [
        ("method", "POST"),
        ("route", "/api/v1/events/batch"),
        ("status", "200"),
    ];
    assert_eq!(delta(http, &batch), 1.0);
    let unmatched = [("method", "GET"), ("route", "unmatched"), ("status", "404")];
    assert_eq!(delta(http, &unmatched), 1.0);
    let timed = [("method", "POST"), ("route", "/api/v1/events")];
    assert_eq!(
        delta("switchboard_http_request_duration_seconds_count", &timed),
        4.0
    );

    // Three new events reached the store through at least one, at most three, group commits.
    let commits = delta("switchboard_group_commit_events_count", &[]);
    assert!((1.0..=3.0).contains(&commits), "{commits} commits\n{after}");
    assert_eq!(delta("switchboard_group_commit_events_sum", &[]), 3.0);
    assert_eq!(
        delta("switchboard_group_commit_duration_seconds_count", &[]),
        commits
    );
    assert_eq!(delta("switchboard_group_commit_failures_total", &[]), 0.0);

    // Live calls: three started; ending one leaves two.
    assert_eq!(delta("switchboard_live_calls", &[]), 3.0);
    let ended = ev("call_ended", "m1", 4, json!({ "end_reason": "abandoned" }));
    assert_eq!(app.event(ended).await.0, 201);
    let live = sample(&before, "switchboard_live_calls", &[]) + 2.0;
    assert_eq!(
        sample(&scrape(&app).await, "switchboard_live_calls", &[]),
        live
    );

    // Stream subscribers: counted while the socket is open.
    let subs = sample(&after, "switchboard_stream_subscribers", &[]);
    let url = format!("ws://{}/api/v1/stream?api_key={}", app.addr, app.key);
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connect");
    await_gauge(&app, "switchboard_stream_subscribers", subs + 1.0).await;
    ws.close(None).await.expect("close");
    while let Some(Ok(_)) = ws.next().await {}
    await_gauge(&app, "switchboard_stream_subscribers", subs).await;

    // A restart: the stopped server takes its live calls away, the new one counts them anew.
    let (db, dir) = app.stop().await;
    let stopped = sample(&before, "switchboard_live_calls", &[]);
    let app = TestApp::spawn_on(db, dir).await;
    let page = scrape(&app).await;
    assert_eq!(
        sample(&page, "switchboard_live_calls", &[]),
        stopped + 2.0,
        "{page}"
    );
    app.stop().await;
}
