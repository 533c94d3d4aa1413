//! `GET /api/v1/stream` (WebSocket) against the real server: message shape and order, auth,
//! resume with `since` (no gap, no duplicate), full replay, topic filter, tenant isolation, slow
//! consumers (disconnected, never slowing ingestion) and graceful stop with open streams.
//!
//! Timeouts only keep a broken server from hanging the suite; assertions are on content.

mod support;

use std::time::Duration;

use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

use support::{ev, t, TestApp};

/// Longest wait for one frame: only so that a broken server cannot hang the test.
const WAIT: Duration = Duration::from_secs(20);

type Ws = WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn ws_url(app: &TestApp, query: &str) -> String {
    format!("ws://{}/api/v1/stream{query}", app.addr)
}

fn request(
    app: &TestApp,
    query: &str,
    key: Option<&str>,
) -> tungstenite::handshake::client::Request {
    let mut req = ws_url(app, query)
        .into_client_request()
        .expect("ws request");
    if let Some(k) = key {
        req.headers_mut()
            .insert("x-api-key", k.parse().expect("header value"));
    }
    req
}

async fn try_connect(
    app: &TestApp,
    query: &str,
    key: Option<&str>,
) -> Result<Ws, tungstenite::Error> {
    tokio_tungstenite::connect_async(request(app, query, key))
        .await
        .map(|(ws, _)| ws)
}

/// Connects with the bootstrap key in the `X-API-Key` header.
async fn connect(app: &TestApp, query: &str) -> Ws {
    try_connect(app, query, Some(&app.key))
        .await
        .unwrap_or_else(|e| panic!("connect {query}: {e}"))
}

/// The HTTP status of a refused upgrade.
fn refused_status(r: Result<Ws, tungstenite::Error>) -> u16 {
    match r {
        Err(tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("expected an HTTP refusal, got error {e}"),
        Ok(_) => panic!("expected an HTTP refusal, but the upgrade succeeded"),
    }
}

/// The status and problem+json body of a refused upgrade.
fn refused_problem(r: Result<Ws, tungstenite::Error>) -> (u16, Value) {
    match r {
        Err(tungstenite::Error::Http(resp)) => {
            let ct = resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            assert_eq!(ct, "application/problem+json");
            let body = resp.body().as_deref().unwrap_or_default();
            let v = serde_json::from_slice(body).expect("problem+json body");
            (resp.status().as_u16(), v)
        }
        Err(e) => panic!("expected an HTTP refusal, got error {e}"),
        Ok(_) => panic!("expected an HTTP refusal, but the upgrade succeeded"),
    }
}

/// The next data message, skipping pings and pongs.
async fn next_msg<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocketStream<S>) -> Value {
    loop {
        let frame = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("no stream message within the guard timeout")
            .expect("stream ended")
            .expect("stream error");
        match frame {
            Message::Text(s) => return serde_json::from_str(&s).expect("message is JSON"),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

async fn next_n(ws: &mut Ws, n: usize) -> Vec<Value> {
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(next_msg(ws).await);
    }
    v
}

/// Reads until the message with `seq` (inclusive); panics on a message past it.
async fn read_until_seq(ws: &mut Ws, seq: i64) -> Vec<Value> {
    let mut v = Vec::new();
    loop {
        let m = next_msg(ws).await;
        let s = m["seq"].as_i64().expect("seq");
        assert!(s <= seq, "message seq {s} past the awaited {seq}: {m}");
        v.push(m);
        if s == seq {
            return v;
        }
    }
}

fn seqs(ms: &[Value]) -> Vec<i64> {
    ms.iter().map(|m| m["seq"].as_i64().expect("seq")).collect()
}

fn types(ms: &[Value]) -> Vec<String> {
    ms.iter()
        .map(|m| m["type"].as_str().expect("type").to_owned())
        .collect()
}

fn assert_contiguous(ms: &[Value], first: i64) {
    let got = seqs(ms);
    let want: Vec<i64> = (first..first + ms.len() as i64).collect();
    assert_eq!(got, want, "seq must run contiguously from {first}");
}

fn initiated(call: &str, at: i64) -> Value {
    ev("call_initiated", call, at, json!({ "call_type": "voice" }))
}

/// Posts one event; asserts 201; returns the answer.
async fn post_ok(app: &TestApp, body: Value) -> Value {
    let (s, v) = app.event(body.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "event {body}: {v}");
    v
}

/// Posts a batch with another tenant's key; asserts every event was accepted.
async fn batch_as(app: &TestApp, key: &str, events: Vec<Value>) -> Value {
    let n = events.len();
    let r = app
        .client
        .post(app.url("/api/v1/events/batch"))
        .header("X-API-Key", key)
        .json(&json!({ "events": events }))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["accepted"].as_u64(), Some(n as u64), "{v}");
    v
}

/// Posts a batch; asserts all accepted; returns the seqs.
async fn batch_ok(app: &TestApp, events: Vec<Value>) -> Vec<i64> {
    let n = events.len();
    let v = app.batch(events).await;
    assert_eq!(v["accepted"].as_u64(), Some(n as u64), "{v}");
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["seq"].as_i64().unwrap())
        .collect()
}

/// The call's stored history.
async fn history(app: &TestApp, call: &str) -> Vec<Value> {
    let (s, v) = app
        .get(&format!("/api/v1/calls/{call}/events?limit=500"))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["items"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_arrive_in_order_with_type_topic_and_call_data() {
    let app = TestApp::spawn().await;
    app.clock("event_time").await;
    app.queue(json!({ "id": "q1" })).await;
    let mut ws = connect(&app, "").await;

    let posted = vec![
        ev(
            "call_initiated",
            "c1",
            0,
            json!({ "call_type": "voice", "queue_id": "q1", "from": "+15551230001", "event_id": "e-init" }),
        ),
        ev("call_routed", "c1", 5, json!({ "agent_id": "a1" })),
        ev("call_answered", "c1", 8, json!({ "event_id": "e-ans" })),
        ev("call_hold", "c1", 20, json!({})),
        ev("call_resumed", "c1", 30, json!({})),
        ev(
            "call_ended",
            "c1",
            100,
            json!({ "end_reason": "completed" }),
        ),
    ];
    let mut answers = Vec::new();
    for e in &posted {
        answers.push(post_ok(&app, e.clone()).await);
    }
    // The six events plus the engine's survey request for a completed, answered call.
    let ms = next_n(&mut ws, 7).await;
    assert_contiguous(&ms, answers[0]["seq"].as_i64().unwrap());
    assert_eq!(
        types(&ms),
        [
            "call_initiated",
            "call_routed",
            "call_answered",
            "call_hold",
            "call_resumed",
            "call_ended",
            "survey_requested"
        ]
    );
    let statuses: Vec<&str> = ms
        .iter()
        .map(|m| m["data"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["waiting", "ringing", "active", "on_hold", "active", "ended", "ended"]
    );
    for (m, a) in ms.iter().zip(&answers) {
        assert_eq!(m["seq"], a["seq"], "{m}");
        assert_eq!(m["data"]["status"], a["status"], "{m}");
    }
    let uuid = answers[0]["call_uuid"].clone();
    for m in &ms {
        assert_eq!(m["topic"], "calls", "{m}");
        assert_eq!(m["data"]["call_id"], "c1", "{m}");
        assert_eq!(m["data"]["call_uuid"], uuid, "{m}");
    }
    assert_eq!(ms[0]["data"]["event_id"], "e-init");
    assert_eq!(ms[0]["data"]["queue_id"], "q1");
    assert_eq!(ms[0]["data"]["from"], "+15551230001");
    assert_eq!(ms[1]["data"]["agent_id"], "a1");
    assert!(
        ms[1]["data"].get("event_id").is_none(),
        "no event_id was sent: {}",
        ms[1]
    );
    assert_eq!(ms[2]["data"]["event_id"], "e-ans");
    assert_eq!(ms[5]["data"]["end_reason"], "completed");

    // Each message is the stored history entry of the same seq.
    let h = history(&app, "c1").await;
    assert_eq!(h.len(), ms.len());
    for (m, e) in ms.iter().zip(&h) {
        assert_eq!(m["seq"], e["seq"]);
        assert_eq!(m["type"], e["type"]);
        assert_eq!(m["data"]["status"], e["status"]);
        assert_eq!(
            switchboard_core::parse_rfc3339(m["ts"].as_str().unwrap()),
            switchboard_core::parse_rfc3339(e["timestamp"].as_str().unwrap()),
            "ts of {m}"
        );
    }
    assert_eq!(
        switchboard_core::parse_rfc3339(ms[0]["ts"].as_str().unwrap()),
        switchboard_core::parse_rfc3339(&t(0))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_in_query_works_and_missing_or_bad_keys_get_401_before_upgrade() {
    let app = TestApp::spawn().await;
    let mut ws = try_connect(&app, &format!("?api_key={}", app.key), None)
        .await
        .expect("?api_key= upgrade");
    let a = post_ok(&app, initiated("k1", 0)).await;
    let m = next_msg(&mut ws).await;
    assert_eq!(m["seq"], a["seq"]);
    assert_eq!(m["data"]["call_id"], "k1");

    assert_eq!(
        refused_status(try_connect(&app, "", None).await),
        401,
        "no key"
    );
    assert_eq!(
        refused_status(try_connect(&app, "", Some("sb_not_a_key")).await),
        401,
        "bad header key"
    );
    assert_eq!(
        refused_status(try_connect(&app, "?api_key=sb_not_a_key", None).await),
        401,
        "bad query key"
    );
    assert_eq!(
        refused_status(try_connect(&app, "?api_key=", None).await),
        401,
        "empty query key"
    );
    // Bad parameters are refused before the upgrade too.
    assert_eq!(
        refused_status(try_connect(&app, "?since=-1", Some(&app.key)).await),
        400
    );
    assert_eq!(
        refused_status(try_connect(&app, "?since=abc", Some(&app.key)).await),
        400
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_with_since_gets_exactly_the_missed_messages_then_live_ones() {
    let app = TestApp::spawn().await;
    let mut ws = connect(&app, "").await;
    let first = batch_ok(
        &app,
        (0..5).map(|i| initiated(&format!("r-a{i}"), 0)).collect(),
    )
    .await;
    let ms = next_n(&mut ws, 5).await;
    assert_eq!(seqs(&ms), first);
    assert_contiguous(&ms, 1);
    let last = *first.last().unwrap();
    ws.close(None).await.expect("close");
    drop(ws);

    // Missed while disconnected: more than one catch-up page (the server reads 1000 at a time).
    let mut missed = Vec::new();
    for b in 0..3 {
        missed.extend(
            batch_ok(
                &app,
                (0..1000)
                    .map(|i| initiated(&format!("r-b{b}-{i}"), 1))
                    .collect(),
            )
            .await,
        );
    }
    let mut ws = connect(&app, &format!("?since={last}")).await;
    // Published while the catch-up may still be running: each must come once.
    let app2 = std::sync::Arc::new(app);
    let poster = {
        let app = app2.clone();
        tokio::spawn(async move {
            let mut s = Vec::new();
            for b in 0..4 {
                s.extend(
                    batch_ok(
                        &app,
                        (0..250)
                            .map(|i| initiated(&format!("r-c{b}-{i}"), 2))
                            .collect(),
                    )
                    .await,
                );
            }
            s
        })
    };
    let live = poster.await.expect("poster");
    let end = *live.last().unwrap();
    let got = read_until_seq(&mut ws, end).await;
    assert_eq!(
        got.len() as i64,
        end - last,
        "exactly the messages after since={last}"
    );
    assert_contiguous(&got, last + 1);
    let mut want = missed.clone();
    want.extend(&live);
    assert_eq!(seqs(&got), want);

    // Nothing more is pending: the next message is the next live event.
    let a = post_ok(&app2, initiated("r-sentinel", 3)).await;
    let m = next_msg(&mut ws).await;
    assert_eq!(m["seq"], a["seq"], "next message after resume: {m}");
    assert_eq!(m["seq"].as_i64(), Some(end + 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn since_zero_replays_the_full_history_as_live_clients_saw_it() {
    let app = TestApp::spawn().await;
    app.clock("event_time").await;
    app.queue(json!({ "id": "q1" })).await;
    let mut live = connect(&app, "").await;
    // A mix of client and engine events: SLA breach, retransfer, long wait, review, survey.
    post_ok(
        &app,
        ev(
            "call_initiated",
            "h1",
            0,
            json!({ "call_type": "voice", "queue_id": "q1" }),
        ),
    )
    .await;
    post_ok(
        &app,
        ev("call_routed", "h1", 2, json!({ "agent_id": "a1" })),
    )
    .await;
    // Event time 35 s fires h1's ring timeout (17 s) and SLA (30 s) before h2 is applied.
    post_ok(&app, initiated("h2", 35)).await;
    post_ok(
        &app,
        ev("call_routed", "h1", 40, json!({ "agent_id": "a2" })),
    )
    .await;
    post_ok(&app, ev("call_answered", "h1", 41, json!({}))).await;
    post_ok(
        &app,
        ev("call_ended", "h1", 45, json!({ "end_reason": "completed" })),
    )
    .await;
    let end = post_ok(
        &app,
        ev("call_ended", "h2", 46, json!({ "end_reason": "failed" })),
    )
    .await;
    let end = end["seq"].as_i64().unwrap();

    let seen_live = read_until_seq(&mut live, end).await;
    assert_contiguous(&seen_live, 1);
    let ty = types(&seen_live);
    for engine_made in [
        "sla_breached",
        "call_retransfer",
        "long_wait",
        "call_flagged",
        "survey_requested",
    ] {
        assert!(
            ty.iter().any(|x| x == engine_made),
            "{engine_made} in {ty:?}"
        );
    }

    let mut replay = connect(&app, "?since=0").await;
    let replayed = read_until_seq(&mut replay, end).await;
    assert_eq!(
        replayed, seen_live,
        "the replay must be exactly what a live client saw"
    );
    let a = post_ok(&app, initiated("h3", 50)).await;
    assert_eq!(next_msg(&mut replay).await["seq"], a["seq"]);
    assert_eq!(next_msg(&mut live).await["seq"], a["seq"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_filter_alerts_only_gets_alerts_and_unknown_topic_is_400() {
    let app = TestApp::spawn().await;
    assert_eq!(
        refused_status(try_connect(&app, "?topics=bogus", Some(&app.key)).await),
        400
    );
    assert_eq!(
        refused_status(try_connect(&app, "?topics=calls,bogus", Some(&app.key)).await),
        400
    );
    app.clock("event_time").await;
    app.queue(json!({ "id": "q1" })).await;
    let mut alerts = connect(&app, "?topics=alerts").await;
    let mut calls = connect(&app, "?topics=calls").await;
    let mut both = connect(&app, "?topics=calls,alerts").await;

    let c1 = post_ok(
        &app,
        ev(
            "call_initiated",
            "s1",
            0,
            json!({ "call_type": "voice", "queue_id": "q1" }),
        ),
    )
    .await;
    // Event time 31 s: the 30 s SLA timer of s1 fires before s2 is applied.
    let c2 = post_ok(
        &app,
        ev(
            "call_initiated",
            "s2",
            31,
            json!({ "call_type": "voice", "queue_id": "q1" }),
        ),
    )
    .await;
    let (c1, c2) = (c1["seq"].as_i64().unwrap(), c2["seq"].as_i64().unwrap());
    assert_eq!(c2, c1 + 2, "the alert takes the seq between the two events");

    let m = next_msg(&mut alerts).await;
    assert_eq!(m["type"], "sla_breached", "{m}");
    assert_eq!(m["topic"], "alerts");
    assert_eq!(m["seq"].as_i64(), Some(c1 + 1));
    assert_eq!(m["data"]["call_id"], "s1");
    assert_eq!(m["data"]["status"], "waiting");
    assert_eq!(m["data"]["threshold_s"], 30);
    let (s, list) = app.get("/api/v1/alerts?type=sla_breached").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list["items"][0]["seq"], m["seq"]);

    let ms = next_n(&mut calls, 2).await;
    assert_eq!(seqs(&ms), [c1, c2], "calls topic skips the alert");
    assert!(ms.iter().all(|m| m["topic"] == "calls"));
    let ms = next_n(&mut both, 3).await;
    assert_contiguous(&ms, c1);
    assert_eq!(
        types(&ms),
        ["call_initiated", "sla_breached", "call_initiated"]
    );

    // A second alert is the next message of the alerts client: s2's call event never came.
    let c3 = post_ok(&app, initiated("s3", 62)).await;
    let m = next_msg(&mut alerts).await;
    assert_eq!(
        (m["type"].as_str(), m["data"]["call_id"].as_str()),
        (Some("sla_breached"), Some("s2")),
        "{m}"
    );
    assert_eq!(m["seq"].as_i64(), Some(c3["seq"].as_i64().unwrap() - 1));

    // Catch-up honours the filter too.
    let mut replay = connect(&app, "?topics=alerts&since=0").await;
    let ms = next_n(&mut replay, 2).await;
    assert_eq!(types(&ms), ["sla_breached", "sla_breached"]);
    assert_eq!(ms[0]["data"]["call_id"], "s1");
    assert_eq!(ms[1]["data"]["call_id"], "s2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenants_client_gets_none_of_the_messages() {
    let app = TestApp::spawn().await;
    let key_b = app.other_tenant("b").await;
    let mut b = try_connect(&app, "", Some(&key_b))
        .await
        .expect("tenant b connects");
    let mut b_replay_all = try_connect(&app, "?since=0", Some(&key_b))
        .await
        .expect("tenant b connects");
    let mut a = connect(&app, "").await;

    let a_seqs = batch_ok(
        &app,
        (0..50).map(|i| initiated(&format!("a{i}"), 0)).collect(),
    )
    .await;
    assert_eq!(next_n(&mut a, 50).await.len(), 50);
    // Tenant B's own event is the first thing its clients see: nothing of A came before it.
    let vb = batch_as(&app, &key_b, vec![initiated("b-only", 0)]).await;
    let b_seq = vb["results"][0]["seq"].clone();
    for ws in [&mut b, &mut b_replay_all] {
        let m = next_msg(ws).await;
        assert_eq!(m["data"]["call_id"], "b-only", "tenant B got {m}");
        assert_eq!(m["seq"], b_seq);
    }
    assert_eq!(b_seq.as_i64(), Some(1), "tenant B has its own sequence");
    // And A's client does not see B's event: A's next message is A's next event.
    let x = post_ok(&app, initiated("a-next", 1)).await;
    let m = next_msg(&mut a).await;
    assert_eq!(m["seq"], x["seq"], "{m}");
    assert_eq!(x["seq"].as_i64(), Some(a_seqs.last().unwrap() + 1));
    // A replay for B holds only B's history.
    let mut again = try_connect(&app, "?since=0", Some(&key_b))
        .await
        .expect("connect");
    let vb2 = batch_as(&app, &key_b, vec![initiated("b-two", 2)]).await;
    let ms = next_n(&mut again, 2).await;
    assert_eq!(seqs(&ms), [1, vb2["results"][0]["seq"].as_i64().unwrap()]);
    assert!(
        ms.iter()
            .all(|m| m["data"]["call_id"].as_str().unwrap().starts_with("b-")),
        "{ms:?}"
    );
}

/// A client that never reads while 20 000 (or more) events are ingested: every batch is still answered,
/// the client is disconnected (close 4008 or a dropped connection), and can resume.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_consumer_is_disconnected_and_never_slows_ingestion() {
    const PER_BATCH: usize = 1000;
    // Enough that the server's socket buffer (≤ tcp_wmem max, ~700 B a message) cannot hold
    // the excess over the bus buffer (8192 messages): at least 20 batches.
    let wmem_max: usize = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_wmem")
        .ok()
        .and_then(|s| s.split_whitespace().nth(2)?.parse().ok())
        .unwrap_or(4 << 20);
    let batches = ((wmem_max / 600 + 8192 + 4000) / PER_BATCH + 1).max(20);
    let app = TestApp::spawn().await;
    // A tiny receive buffer (no autotuning) so the server's socket fills quickly.
    let sock = tokio::net::TcpSocket::new_v4().expect("socket");
    sock.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let tcp = sock.connect(app.addr).await.expect("tcp connect");
    let (mut slow, _) = tokio_tungstenite::client_async(request(&app, "", Some(&app.key)), tcp)
        .await
        .expect("slow client upgrade");

    // Large messages (from/to near their 256-byte limit): ~20 000 × 700 B.
    let party = format!("sip:{}@example.com", "x".repeat(230));
    for b in 0..batches {
        let events: Vec<Value> = (0..PER_BATCH)
            .map(|i| {
                ev(
                    "call_initiated",
                    &format!("slow-{b}-{i}"),
                    0,
                    json!({ "call_type": "voice", "from": party, "to": party }),
                )
            })
            .collect();
        let v = app.batch(events).await;
        assert_eq!(v["accepted"].as_u64(), Some(PER_BATCH as u64), "batch {b}");
    }
    let total = (batches * PER_BATCH) as i64;

    // Now read what the slow client was sent: contiguous from seq 1, then the disconnect.
    let mut last = 0i64;
    let mut close_code: Option<u16> = None;
    let mut close_reason = String::new();
    loop {
        let frame = tokio::time::timeout(WAIT, slow.next())
            .await
            .expect("slow client neither fed nor disconnected");
        match frame {
            Some(Ok(Message::Text(s))) => {
                let m: Value = serde_json::from_str(&s).expect("json");
                let seq = m["seq"].as_i64().unwrap();
                assert_eq!(seq, last + 1, "gap or duplicate before the disconnect");
                last = seq;
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            Some(Ok(Message::Close(f))) => {
                let f = f.expect("close frame with a code");
                close_code = Some(u16::from(f.code));
                close_reason = f.reason.to_string();
                break;
            }
            Some(Ok(other)) => panic!("unexpected frame {other:?}"),
            Some(Err(_)) | None => break, // connection reset / dropped: accepted
        }
    }
    eprintln!(
        "[{}] slow client: {last} messages, then close {close_code:?} {close_reason:?}",
        support::backend()
    );
    assert!(
        last < total,
        "the slow client cannot have been sent everything (last seq {last})"
    );
    if let Some(code) = close_code {
        assert_eq!(code, 4008, "close code (reason {close_reason:?})");
        let hint: i64 = close_reason
            .rsplit("since=")
            .next()
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| {
                panic!("close reason names the seq to resume from: {close_reason:?}")
            });
        assert!(
            hint <= last,
            "resume hint since={hint} is past the last message received ({last})"
        );
    }

    // The server still serves stream clients normally, and the slow one can resume.
    let mut resumed = connect(&app, &format!("?since={last}")).await;
    assert_eq!(next_msg(&mut resumed).await["seq"].as_i64(), Some(last + 1));
    drop(resumed);
    let mut fresh = connect(&app, "").await;
    let a = post_ok(&app, initiated("after-slow", 1)).await;
    assert_eq!(a["seq"].as_i64(), Some(total + 1));
    let m = next_msg(&mut fresh).await;
    assert_eq!(m["seq"], a["seq"]);
    assert_eq!(m["data"]["call_id"], "after-slow");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_stop_closes_open_streams_with_1001() {
    let app = TestApp::spawn().await;
    let mut ws = connect(&app, "").await;
    let a = post_ok(&app, initiated("g1", 0)).await;
    assert_eq!(next_msg(&mut ws).await["seq"], a["seq"]);
    let stopping = tokio::spawn(app.stop());
    let frame = tokio::time::timeout(WAIT, ws.next())
        .await
        .expect("close frame within the guard timeout");
    match frame {
        Some(Ok(Message::Close(Some(f)))) => assert_eq!(u16::from(f.code), 1001, "{f:?}"),
        other => panic!("expected close 1001, got {other:?}"),
    }
    tokio::time::timeout(WAIT, stopping)
        .await
        .expect("stop returns")
        .expect("stop task");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn since_beyond_the_head_is_400_naming_since() {
    let app = TestApp::spawn().await;
    // An empty stream: its head is 0; 0 is fine, 1 is a seq no message has.
    drop(connect(&app, "?since=0").await);
    let (s, p) = refused_problem(try_connect(&app, "?since=1", Some(&app.key)).await);
    assert_eq!(
        (s, p["field"].as_str(), p["head"].as_i64()),
        (400, Some("since"), Some(0)),
        "{p}"
    );

    let seqs = batch_ok(&app, vec![initiated("h1", 0), initiated("h2", 1)]).await;
    let head = *seqs.last().unwrap();
    let (s, p) =
        refused_problem(try_connect(&app, &format!("?since={}", head + 1), Some(&app.key)).await);
    assert_eq!((s, p["field"].as_str()), (400, Some("since")), "{p}");
    assert_eq!(p["head"].as_i64(), Some(head), "{p}");
    assert!(
        p["detail"].as_str().unwrap().contains(&head.to_string()),
        "{p}"
    );

    // since = head is the newest message seen: nothing to catch up, the next one arrives live.
    let mut ws = connect(&app, &format!("?since={head}")).await;
    let next = post_ok(&app, initiated("h3", 2)).await;
    let m = next_msg(&mut ws).await;
    assert_eq!(m["seq"], next["seq"], "{m}");
    assert_eq!(m["data"]["call_id"], "h3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_that_carry_nothing_yet_are_400_naming_topics() {
    let app = TestApp::spawn().await;
    for q in ["?topics=queues", "?topics=calls,queues", "?topics=bogus"] {
        let (s, p) = refused_problem(try_connect(&app, q, Some(&app.key)).await);
        assert_eq!((s, p["field"].as_str()), (400, Some("topics")), "{q}: {p}");
        let detail = p["detail"].as_str().unwrap();
        assert!(
            detail.contains("calls, alerts, agents"),
            "{q}: names the topics on offer: {p}"
        );
        if q.contains("bogus") {
            assert!(detail.contains("unknown"), "{p}");
        } else {
            assert!(detail.contains("not published yet"), "{p}");
        }
    }
    // Every published topic is accepted, alone or together.
    drop(connect(&app, "?topics=calls").await);
    drop(connect(&app, "?topics=alerts").await);
    drop(connect(&app, "?topics=calls,alerts").await);
    drop(connect(&app, "?topics=agents").await);
    drop(connect(&app, "?topics=calls,alerts,agents").await);
}
