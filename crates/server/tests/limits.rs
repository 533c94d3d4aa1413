//! The server's limits through the real server, on SQLite or (with `TEST_DATABASE_URL`)
//! PostgreSQL: the HTTP concurrency cap (503 + `Retry-After`, ops routes never shed), the
//! request timeout (504, WebSocket streams not cut after their upgrade), the writer's bounded
//! queue (503 + `Retry-After`, nothing acknowledged lost, retries stored once) and the
//! far-future timestamp limit (`max_clock_skew_s`).
//!
//! Nothing here asserts on wall-clock time. A request is held open by a body that is never
//! completed (over a raw TCP connection), so "over the limit" and "timed out" are states the
//! test controls; the guard timeouts only keep a broken server from hanging the suite.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use support::{ev, t, TestApp};

const PROBLEM: &str = "application/problem+json";
/// Only so that a broken server cannot hang the test.
const GUARD: Duration = Duration::from_secs(30);

/// A raw HTTP/1.1 answer.
struct RawResponse {
    status: u16,
    headers: HashMap<String, String>,
    body: Value,
}

/// Opens a connection and sends the head of `POST path` announcing `content_length` bytes of
/// JSON, followed by `first` (fewer bytes): the request stays open until the rest is sent.
async fn open_slow_post(
    app: &TestApp,
    path: &str,
    content_length: usize,
    first: &str,
) -> TcpStream {
    assert!(first.len() < content_length);
    let mut s = TcpStream::connect(app.addr).await.expect("connect");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nX-API-Key: {}\r\nContent-Type: application/json\r\n\
         Content-Length: {content_length}\r\nConnection: close\r\n\r\n{first}",
        app.addr, app.key
    );
    s.write_all(head.as_bytes()).await.expect("write head");
    s.flush().await.expect("flush");
    s
}

/// Reads one answer (head and `Content-Length` body) from a raw connection.
async fn read_response(s: &mut TcpStream) -> RawResponse {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let read = async {
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                let mut lines = head.split("\r\n");
                let status: u16 = lines
                    .next()
                    .and_then(|l| l.split(' ').nth(1))
                    .and_then(|c| c.parse().ok())
                    .expect("status line");
                let headers: HashMap<String, String> = lines
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                    .collect();
                let len: usize = headers
                    .get("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                if buf.len() >= end + 4 + len {
                    let body = &buf[end + 4..end + 4 + len];
                    let body = serde_json::from_slice(body).unwrap_or_else(|_| {
                        Value::String(String::from_utf8_lossy(body).into_owned())
                    });
                    return RawResponse {
                        status,
                        headers,
                        body,
                    };
                }
            }
            let n = s.read(&mut chunk).await.expect("read");
            assert!(n > 0, "connection closed before a full answer: {buf:?}");
            buf.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::time::timeout(GUARD, read)
        .await
        .expect("no answer within the guard timeout")
}

/// `GET path` with the app's key: status, `Retry-After`, content type and body.
async fn get_full(
    app: &TestApp,
    path: &str,
) -> (StatusCode, Option<String>, Option<String>, Value) {
    let r = app
        .client
        .get(app.url(path))
        .header("X-API-Key", &app.key)
        .send()
        .await
        .expect("request");
    let h = |n: &str| {
        r.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (status, retry, ct) = (r.status(), h("retry-after"), h("content-type"));
    let bytes = r.bytes().await.expect("body");
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, retry, ct, body)
}

/// Asserts a problem+json answer with `status`.
#[track_caller]
fn assert_problem(status: StatusCode, ct: Option<&str>, body: &Value, want: u16, ctx: &str) {
    assert_eq!(status.as_u16(), want, "{ctx}: {body}");
    assert_eq!(ct, Some(PROBLEM), "{ctx}: content type");
    assert_eq!(body["status"].as_u64(), Some(want as u64), "{ctx}: {body}");
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{ctx}: {body}"
    );
}

// ---------------------------------------------------------------------------------------------
// HTTP concurrency cap

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_concurrency_cap_is_503_problem_with_retry_after_and_ops_still_answer() {
    let app = TestApp::spawn_with(|s| s.max_concurrent_requests = 1).await;
    let body = json!({"type": "call_initiated", "call_id": "HELD", "timestamp": t(0)}).to_string();
    let (first, rest) = body.split_at(5);

    // The held request takes the only place once its head is routed; until then a probe (a
    // read, changing nothing) may get through, and a probe in progress at that moment makes
    // the held request the one shed: then it is answered at once, and is opened again.
    let (mut held, shed) = tokio::time::timeout(GUARD, async {
        let mut shed_held = 0;
        loop {
            let mut held = open_slow_post(&app, "/api/v1/events", body.len(), first).await;
            loop {
                let mut byte = [0u8; 1];
                tokio::select! {
                    r = held.peek(&mut byte) => {
                        r.expect("peek");
                        let r = read_response(&mut held).await;
                        assert_eq!(r.status, 503, "the held request was answered: {}", r.body);
                        shed_held += 1;
                        assert!(shed_held < 100, "the held request never took the place");
                        break;
                    }
                    r = get_full(&app, "/api/v1/queues") => {
                        if r.0 != StatusCode::OK {
                            return (held, r);
                        }
                    }
                }
                tokio::task::yield_now().await;
            }
        }
    })
    .await
    .expect("no request was shed while one was held open");
    let (status, retry, ct, body) = shed;
    assert_problem(status, ct.as_deref(), &body, 503, "shed request");
    assert_eq!(retry.as_deref(), Some("1"), "Retry-After of a shed request");
    assert_eq!(body["type"], "urn:switchboard:problem:unavailable");

    // Every API route is shed, a write too (and nothing of it is applied)...
    let (s, v) = app
        .event(json!({"type": "call_initiated", "call_id": "SHED", "timestamp": t(1)}))
        .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    // ...but the operational routes answer.
    for path in ["/health", "/ready", "/metrics"] {
        let (s, _, _, v) = get_full(&app, path).await;
        assert_eq!(s, StatusCode::OK, "{path} under load shedding: {v}");
    }

    // The held request completes normally; then its place is free again.
    held.write_all(rest.as_bytes()).await.expect("write rest");
    let r = read_response(&mut held).await;
    assert_eq!(r.status, 201, "the held request: {}", r.body);
    let (s, v) = app.get("/api/v1/calls/HELD").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = app.get("/api/v1/calls/SHED").await;
    assert_eq!(s, StatusCode::NOT_FOUND, "a shed event is not applied: {v}");
    let (s, v) = app
        .event(json!({"type": "call_initiated", "call_id": "SHED", "timestamp": t(1)}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "after the held request: {v}");
}

// ---------------------------------------------------------------------------------------------
// Request timeout

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_not_answered_in_time_is_504_problem_and_frees_its_place() {
    let app = TestApp::spawn_with(|s| {
        s.request_timeout = Duration::from_millis(300);
        s.max_concurrent_requests = 1;
    })
    .await;
    // A body that never completes: the only answer the server can give is the timeout's.
    let mut held = open_slow_post(&app, "/api/v1/events", 100, "{\"type\"").await;
    let r = read_response(&mut held).await;
    assert_eq!(r.status, 504, "{}", r.body);
    assert_eq!(
        r.headers.get("content-type").map(String::as_str),
        Some(PROBLEM)
    );
    assert_eq!(r.body["status"], 504);
    assert_eq!(r.body["type"], "urn:switchboard:problem:timeout");
    // The timed-out request gave back the only place.
    let (s, v) = app.get("/api/v1/queues").await;
    assert_eq!(s, StatusCode::OK, "after the timeout: {v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_outlives_the_request_timeout_and_holds_no_place() {
    let app = TestApp::spawn_with(|s| {
        s.request_timeout = Duration::from_millis(200);
        s.max_concurrent_requests = 1;
    })
    .await;
    let mut req = format!("ws://{}/api/v1/stream", app.addr)
        .into_client_request()
        .expect("ws request");
    req.headers_mut()
        .insert("x-api-key", app.key.parse().expect("header"));
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("upgrade");
    // Longer than the request timeout: were the socket under it, it would be cut by now.
    tokio::time::sleep(Duration::from_millis(600)).await;
    // The open stream holds no place: a request gets through.
    let (s, v) = app
        .event(json!({"type": "call_initiated", "call_id": "WS", "timestamp": t(0)}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "with a stream open: {v}");
    let msg = tokio::time::timeout(GUARD, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(s))) => return serde_json::from_str::<Value>(&s).unwrap(),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                other => panic!("the stream ended or failed: {other:?}"),
            }
        }
    })
    .await
    .expect("no message on the stream");
    assert_eq!(msg["type"], "call_initiated", "{msg}");
    assert_eq!(msg["data"]["call_id"], "WS", "{msg}");
}

// ---------------------------------------------------------------------------------------------
// Writer queue

/// One client's outcome for one event.
#[derive(Default, Debug)]
struct Tally {
    created: usize,
    duplicate: usize,
    shed: usize,
}

/// Posts `events` of one call in order, retrying each 503 with the same body (same
/// `event_id`) until it is acknowledged. Checks every answer is 201, 200 or 503 with
/// `Retry-After` and problem+json.
async fn post_with_retries(
    client: reqwest::Client,
    url: String,
    key: String,
    events: Vec<Value>,
) -> Tally {
    let mut tally = Tally::default();
    for e in events {
        loop {
            let r = client
                .post(&url)
                .header("X-API-Key", &key)
                .json(&e)
                .send()
                .await
                .expect("request");
            let status = r.status();
            let retry = r.headers().get("retry-after").cloned();
            let ct = r.headers().get("content-type").cloned();
            let body: Value = r.json().await.expect("JSON answer");
            match status.as_u16() {
                201 => {
                    tally.created += 1;
                    break;
                }
                200 => {
                    assert_eq!(body["duplicate"], true, "{e}: 200 is a duplicate: {body}");
                    tally.duplicate += 1;
                    break;
                }
                503 => {
                    assert!(retry.is_some(), "{e}: 503 without Retry-After: {body}");
                    assert_eq!(ct.as_ref().and_then(|v| v.to_str().ok()), Some(PROBLEM));
                    tally.shed += 1;
                    tokio::task::yield_now().await;
                }
                s => panic!("{e}: unexpected status {s}: {body}"),
            }
        }
    }
    tally
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_writer_queue_sheds_503_and_every_acknowledged_event_is_stored_once() {
    let app = TestApp::spawn_with(|s| s.writer_queue = 1).await;
    const CLIENTS: usize = 16;
    const CALLS: usize = 6;
    let mut total = Tally::default();
    let mut want: BTreeMap<String, Vec<String>> = BTreeMap::new();
    // Rounds until the queue was seen full at least once (almost always the first).
    for round in 0..20 {
        let mut tasks = Vec::new();
        for c in 0..CLIENTS {
            let mut events = Vec::new();
            for n in 0..CALLS {
                let call = format!("R{round}C{c}N{n}");
                let seq: Vec<Value> = [
                    ev(
                        "call_initiated",
                        &call,
                        0,
                        json!({"event_id": format!("{call}-0")}),
                    ),
                    ev(
                        "call_ended",
                        &call,
                        9,
                        json!({"end_reason": "abandoned", "event_id": format!("{call}-1")}),
                    ),
                ]
                .into();
                want.insert(
                    call,
                    seq.iter()
                        .map(|e| e["type"].as_str().unwrap().to_owned())
                        .collect(),
                );
                events.extend(seq);
            }
            tasks.push(tokio::spawn(post_with_retries(
                app.client.clone(),
                app.url("/api/v1/events"),
                app.key.clone(),
                events,
            )));
        }
        for task in tasks {
            let t = tokio::time::timeout(GUARD * 4, task)
                .await
                .expect("clients did not finish")
                .expect("client task");
            total.created += t.created;
            total.duplicate += t.duplicate;
            total.shed += t.shed;
        }
        if total.shed > 0 {
            break;
        }
    }
    assert!(
        total.shed > 0,
        "the writer's queue of 1 was never full: {total:?}"
    );
    // A 503 applies nothing, so every event is created exactly once (never a `duplicate`), and
    // each is stored once, in order.
    assert_eq!(
        total.created,
        want.values().map(Vec::len).sum::<usize>(),
        "{total:?}"
    );
    assert_eq!(total.duplicate, 0, "a 503 applied nothing: {total:?}");
    for (call, types) in &want {
        assert_eq!(&app.history(call).await, types, "stored history of {call}");
    }
}

// ---------------------------------------------------------------------------------------------
// Far-future timestamps

/// The call's event types.
async fn types(app: &TestApp, call: &str) -> Vec<String> {
    app.history(call).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_far_future_timestamp_is_422_and_freezes_nothing() {
    let app = TestApp::spawn().await;
    app.clock("event_time").await;
    app.queue(json!({"id": "q1", "sla_threshold_s": 30})).await;
    // A replay of the past (1999) is accepted.
    let (s, v) = app
        .event(ev("call_initiated", "A", 0, json!({"queue_id": "q1"})))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");

    let far = json!({"type": "call_initiated", "call_id": "FAR", "queue_id": "q1",
        "timestamp": "9999-12-31T00:00:00Z", "event_id": "far-1"});
    let (s, v) = app.event(far.clone()).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["field"], "timestamp", "{v}");
    // In a batch too, naming the event.
    let b = app.batch(vec![far]).await;
    assert_eq!(b["results"][0]["status"], 422, "{b}");
    assert_eq!(
        b["results"][0]["problem"]["field"], "events[0].timestamp",
        "{b}"
    );

    // It fired no timer and left no call.
    assert_eq!(types(&app, "A").await, ["call_initiated"]);
    let (s, _) = app.get("/api/v1/calls/FAR").await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Later normal events work, and timers fire when the watermark passes them.
    let (s, v) = app.event(ev("call_initiated", "B", 20, json!({}))).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(types(&app, "A").await, ["call_initiated"], "not due yet");
    let (s, v) = app
        .event(ev(
            "call_ended",
            "B",
            31,
            json!({"end_reason": "abandoned"}),
        ))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(
        types(&app, "A").await,
        ["call_initiated", "sla_breached"],
        "the SLA timer fired once the watermark passed it"
    );

    // 23 h ahead of now is within the default 24 h skew.
    let soon =
        switchboard_core::format_rfc3339(switchboard_core::time::now_ms() + 23 * 3600 * 1000);
    let (s, v) = app
        .event(json!({"type": "call_initiated", "call_id": "SOON", "timestamp": soon}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "23 h ahead: {v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_clock_skew_s_is_honoured_from_the_later_of_now_and_the_watermark() {
    let app = TestApp::spawn_with(|s| s.max_clock_skew_s = 3600).await;
    app.clock("event_time").await;
    // Minutes of margin either side: no dependence on how long the test takes.
    let start = switchboard_core::time::now_ms();
    let at = |min: i64| switchboard_core::format_rfc3339(start + min * 60_000);
    let post = |call: &str, min: i64| {
        app.event(json!({"type": "call_initiated", "call_id": call, "timestamp": at(min)}))
    };
    let (s, v) = post("TWO_H", 120).await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "2 h ahead, skew 1 h: {v}"
    );
    assert_eq!(v["field"], "timestamp", "{v}");
    let (s, v) = post("FIFTY", 50).await;
    assert_eq!(s, StatusCode::CREATED, "50 min ahead: {v}");
    // The watermark is now +50 min, so the limit is +110 min.
    let (s, v) = post("HUNDRED", 100).await;
    assert_eq!(s, StatusCode::CREATED, "within the watermark + 1 h: {v}");
    let (s, v) = post("TWO_H", 120).await;
    assert_eq!(
        s,
        StatusCode::CREATED,
        "within the new watermark + 1 h: {v}"
    );
    let (s, v) = post("FOUR_H", 240).await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "beyond watermark + 1 h: {v}"
    );
}
