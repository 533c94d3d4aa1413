//! The edge of the API through the real server: strict JSON (one value per body, no repeated
//! keys), unknown fields refused, input the store cannot hold (U+0000) refused before it can
//! fail anyone's commit, and timestamps outside years 1970–9999. Runs on SQLite, or on
//! PostgreSQL when `TEST_DATABASE_URL` is set.

mod support;

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::{backend, ev, ok, urlencode, TestApp};

/// Posts `body` as is (not re-encoded) with the app's key.
async fn raw(app: &TestApp, path: &str, body: &str) -> (StatusCode, Value) {
    let (s, v, _) = app.post_raw(path, body.to_owned(), Some(&app.key)).await;
    (s, v)
}

/// Asserts a problem answer with `status` naming `field`.
fn assert_problem(s: StatusCode, v: &Value, status: u16, field: &str, ctx: &str) {
    assert_eq!(s.as_u16(), status, "{ctx} on {}: {v}", backend());
    assert_eq!(v["status"], json!(status), "{ctx}: {v}");
    assert_eq!(v["field"], json!(field), "{ctx}: {v}");
}

/// True when the call exists.
async fn exists(app: &TestApp, call: &str) -> bool {
    let (s, _) = app.get(&format!("/api/v1/calls/{}", urlencode(call))).await;
    s == StatusCode::OK
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_after_the_first_json_value_is_400_and_applies_nothing() {
    let app = TestApp::spawn().await;
    let one = |c: &str| json!({"type": "call_initiated", "call_id": c}).to_string();
    let cases = [
        ("/api/v1/events", format!("{}{}", one("T1"), one("T2"))),
        ("/api/v1/events", format!("{}\n{}\n", one("T3"), one("T4"))),
        ("/api/v1/events", format!("{} x", one("T5"))),
        (
            "/api/v1/events/batch",
            format!("{{\"events\":[{}]}}{{}}", one("T6")),
        ),
        ("/api/v1/queues", r#"{"id":"q1"}{"id":"q2"}"#.to_owned()),
    ];
    for (path, body) in &cases {
        let (s, v) = raw(&app, path, body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{path} {body}: {v}");
        assert!(
            v["detail"]
                .as_str()
                .unwrap()
                .contains("after the first JSON value"),
            "{v}"
        );
    }
    for c in ["T1", "T2", "T3", "T4", "T5", "T6"] {
        assert!(!exists(&app, c).await, "{c} must not be applied");
    }
    let (s, _) = app.get("/api/v1/queues/q1").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Trailing whitespace is not data.
    let (s, v) = raw(&app, "/api/v1/events", &format!(" {}\r\n\t ", one("T7"))).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_key_is_400_naming_it_and_applies_nothing() {
    let app = TestApp::spawn().await;
    let (s, v) = raw(
        &app,
        "/api/v1/events",
        r#"{"type":"call_ended","call_id":"D1","end_reason":"completed","type":"call_initiated"}"#,
    )
    .await;
    assert_problem(s, &v, 400, "type", "duplicate type");
    assert!(v["detail"].as_str().unwrap().contains("`type`"), "{v}");
    assert!(!exists(&app, "D1").await);

    let (s, v) = raw(
        &app,
        "/api/v1/events/batch",
        r#"{"events":[{"type":"call_initiated","call_id":"D2"},
                      {"type":"call_initiated","call_id":"D3","call_id":"D4"}]}"#,
    )
    .await;
    assert_problem(s, &v, 400, "events[1].call_id", "duplicate in batch");
    for c in ["D2", "D3", "D4"] {
        assert!(!exists(&app, c).await, "{c}");
    }

    let (s, v) = raw(
        &app,
        "/api/v1/queues",
        r#"{"id":"q1","name":"a","name":"b"}"#,
    )
    .await;
    assert_problem(s, &v, 400, "name", "duplicate queue name");
    let (s, v) = raw(&app, "/api/v1/events/batch", r#"{"events":[],"events":[]}"#).await;
    assert_problem(s, &v, 400, "events", "duplicate events");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_fields_are_422_naming_them() {
    let app = TestApp::spawn().await;
    app.queue(json!({"id": "q0"})).await;

    // The newcomer's typo: it used to give 201 and a call without a queue.
    let (s, v) = app
        .event(json!({"type": "call_initiated", "call_id": "U1", "queue_idd": "q0"}))
        .await;
    assert_problem(s, &v, 422, "queue_idd", "single");
    assert!(!exists(&app, "U1").await);
    // A field of another event type is unknown for this one.
    let (s, v) = app
        .event(json!({"type": "call_resumed", "call_id": "U1", "end_reason": "failed"}))
        .await;
    assert_problem(s, &v, 422, "end_reason", "field of another type");

    // In a batch the bad event is refused alone, named by its path; the others are applied.
    let mut events: Vec<Value> = (0..5)
        .map(|i| {
            ev(
                "call_initiated",
                &format!("UB{i}"),
                i,
                json!({"queue_id": "q0"}),
            )
        })
        .collect();
    events[3]["queue_idd"] = json!("q0");
    let r = app.batch(events).await;
    assert_eq!(
        (&r["accepted"], &r["rejected"]),
        (&json!(4), &json!(1)),
        "{r}"
    );
    let bad = &r["results"][3];
    assert_eq!(bad["index"], 3);
    assert_eq!(bad["status"], 422);
    assert_eq!(bad["problem"]["field"], "events[3].queue_idd", "{bad}");
    assert!(!exists(&app, "UB3").await);
    for i in [0, 1, 2, 4] {
        assert_eq!(r["results"][i]["status"], 201, "{r}");
        assert!(exists(&app, &format!("UB{i}")).await);
    }

    // Beside `events`, a batch body has nothing.
    let (s, v) = app
        .post(
            "/api/v1/events/batch",
            &json!({"events": [ev("call_initiated", "UX", 0, json!({}))], "atomic": true}),
        )
        .await;
    assert_problem(s, &v, 422, "atomic", "batch body");
    assert!(!exists(&app, "UX").await);
    // Queue and tenant bodies too.
    let (s, v) = app
        .post("/api/v1/queues", &json!({"id": "q9", "nmae": "x"}))
        .await;
    assert_problem(s, &v, 422, "nmae", "queue body");
    let (s, v) = app
        .patch("/api/v1/tenant", &json!({"clock": "live", "clok": "x"}))
        .await;
    assert_problem(s, &v, 422, "clok", "tenant body");

    // Engine-made types are refused on `type`.
    let (s, v) = app
        .event(
            json!({"type": "sla_breached", "call_id": "UB0", "queue_id": "q0", "threshold_s": 1}),
        )
        .await;
    assert_problem(s, &v, 422, "type", "engine type");
    assert!(v["detail"].as_str().unwrap().contains("made by the engine"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn years_outside_1970_to_9999_are_422_on_timestamp() {
    let app = TestApp::spawn().await;
    app.clock("event_time").await;
    for (i, ts) in [
        "0000-01-01T00:00:00Z",
        "1969-12-31T23:59:59Z",
        "1970-01-01T00:30:00+01:00",
        "9999-12-31T23:30:00-01:00",
        "10000-01-01T00:00:00Z",
        "+10000-01-01T00:00:00Z",
    ]
    .into_iter()
    .enumerate()
    {
        let call = format!("Y{i}");
        let (s, v) = app
            .event(json!({"type": "call_initiated", "call_id": call, "timestamp": ts}))
            .await;
        assert_problem(s, &v, 422, "timestamp", ts);
        assert!(!exists(&app, &call).await, "{ts}");
        let r = app
            .batch(vec![
                json!({"type": "call_initiated", "call_id": call, "timestamp": ts}),
            ])
            .await;
        assert_eq!(r["results"][0]["status"], 422, "{ts}: {r}");
        assert_eq!(r["results"][0]["problem"]["field"], "events[0].timestamp");
    }
    // Query parameters take the same range.
    let (s, v) = app.get("/api/v1/alerts?from=0000-01-01T00:00:00Z").await;
    assert_problem(s, &v, 400, "from", "query from");
    assert!(v["detail"].as_str().unwrap().contains("1970"), "{v}");
    // The first instant of the range is taken and echoed as RFC 3339.
    ok(
        &app,
        json!({"type": "call_initiated", "call_id": "Y-epoch", "timestamp": "1970-01-01T00:00:00Z"}),
    )
    .await;
    let (s, v) = app.get("/api/v1/calls/Y-epoch/events").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["items"][0]["timestamp"], "1970-01-01T00:00:00Z", "{v}");
}

/// U+0000 in a stored string (`from`, `to`, `event_id`, a queue name) is refused at the edge,
/// so it can never fail a group commit that holds other tenants' events: good requests sent at
/// the same time, by another tenant and within the same batch, are all applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_is_422_and_concurrent_good_requests_are_unaffected() {
    let app = TestApp::spawn().await;
    let other = app.other_tenant("nul-tenant").await;
    const ROUNDS: usize = 12;

    let mut tasks = Vec::new();
    for round in 0..ROUNDS {
        // Tenant B: a NUL in each stored string, alone and inside a batch with a good event.
        for field in ["from", "to", "event_id"] {
            let (c, app_key, base) = (app.client.clone(), other.clone(), app.base.clone());
            tasks.push(tokio::spawn(async move {
                let call = format!("N{round}-{field}");
                let mut bad = json!({"type": "call_initiated", "call_id": call});
                bad[field] = json!(format!("x\u{0}{round}"));
                let good = json!({"type": "call_initiated", "call_id": format!("{call}-good")});
                let single = c
                    .post(format!("{base}/api/v1/events"))
                    .header("X-API-Key", &app_key)
                    .json(&bad)
                    .send()
                    .await
                    .expect("request");
                let s = single.status();
                let v: Value = single.json().await.expect("json");
                assert_problem(s, &v, 422, field, "single NUL");
                let batch = c
                    .post(format!("{base}/api/v1/events/batch"))
                    .header("X-API-Key", &app_key)
                    .json(&json!({"events": [good, bad]}))
                    .send()
                    .await
                    .expect("request");
                assert_eq!(batch.status(), StatusCode::OK);
                let r: Value = batch.json().await.expect("json");
                assert_eq!(r["results"][0]["status"], 201, "good beside NUL: {r}");
                assert_eq!(r["results"][1]["status"], 422, "{r}");
                assert_eq!(
                    r["results"][1]["problem"]["field"],
                    json!(format!("events[1].{field}"))
                );
            }));
        }
        // Tenant B: a queue name with NUL.
        let (c, key, base) = (app.client.clone(), other.clone(), app.base.clone());
        tasks.push(tokio::spawn(async move {
            let r = c
                .post(format!("{base}/api/v1/queues"))
                .header("X-API-Key", &key)
                .json(&json!({"id": format!("nq{round}"), "name": "a\u{0}b"}))
                .send()
                .await
                .expect("request");
            let s = r.status();
            let v: Value = r.json().await.expect("json");
            assert_problem(s, &v, 422, "name", "queue name NUL");
        }));
        // Tenant A: good events and a good queue at the same time.
        let (c, key, base) = (app.client.clone(), app.key.clone(), app.base.clone());
        tasks.push(tokio::spawn(async move {
            let r = c
                .post(format!("{base}/api/v1/events"))
                .header("X-API-Key", &key)
                .json(&json!({"type": "call_initiated", "call_id": format!("G{round}"),
                              "event_id": format!("g{round}"), "from": "+15551230000", "to": "+15559870000"}))
                .send()
                .await
                .expect("request");
            assert_eq!(r.status(), StatusCode::CREATED, "good event");
            let events: Vec<Value> = (0..5)
                .map(|i| json!({"type": "call_initiated", "call_id": format!("GB{round}-{i}"), "from": "anonymous"}))
                .collect();
            let r = c
                .post(format!("{base}/api/v1/events/batch"))
                .header("X-API-Key", &key)
                .json(&json!({ "events": events }))
                .send()
                .await
                .expect("request");
            let v: Value = r.json().await.expect("json");
            assert_eq!(v["accepted"], 5, "good batch: {v}");
            let r = c
                .post(format!("{base}/api/v1/queues"))
                .header("X-API-Key", &key)
                .json(&json!({"id": format!("gq{round}"), "name": format!("Good {round}")}))
                .send()
                .await
                .expect("request");
            assert_eq!(r.status(), StatusCode::CREATED, "good queue");
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }

    // Everything good is stored; nothing with a NUL is.
    for round in 0..ROUNDS {
        assert!(exists(&app, &format!("G{round}")).await);
        for i in 0..5 {
            assert!(exists(&app, &format!("GB{round}-{i}")).await);
        }
        let (s, _) = app.get(&format!("/api/v1/queues/gq{round}")).await;
        assert_eq!(s, StatusCode::OK);
    }
    let (s, v) = app.get("/api/v1/calls?limit=500").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["items"].as_array().unwrap().len(), ROUNDS * 6, "{v}");
    let b = |path: String| {
        let (c, key, url) = (app.client.clone(), other.clone(), app.url(&path));
        async move {
            let r = c
                .get(url)
                .header("X-API-Key", key)
                .send()
                .await
                .expect("get");
            let s = r.status();
            (s, r.json::<Value>().await.expect("json"))
        }
    };
    let (s, v) = b("/api/v1/calls?limit=500".into()).await;
    assert_eq!(s, StatusCode::OK);
    let ids: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["call_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids.len(),
        ROUNDS * 3,
        "only the good ones of tenant B: {ids:?}"
    );
    assert!(ids.iter().all(|id| id.ends_with("-good")), "{ids:?}");
    let (_, v) = b("/api/v1/queues".into()).await;
    assert_eq!(v["items"], json!([]), "{v}");

    // The server is still healthy and takes more work.
    let (s, _) = app.get("/ready").await;
    assert_eq!(s, StatusCode::OK);
    ok(&app, ev("call_initiated", "after", 0, json!({}))).await;
}
