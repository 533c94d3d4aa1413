//! Automatic call distribution through the real server (issue 7 items 1–3): agents and their
//! presence, queue strategies, members and tiers, ring timeouts, `max_no_answer`, wrap-up,
//! capacity under concurrent events, re-queueing with the original entry time, and agent
//! events on the stream. Tenants run on the `event_time` clock so timers fire at known
//! instants (no wall-clock waits).

mod support;

use std::time::Duration;

use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use support::{call, ev, ok, t, Cred, TestApp};

/// Event-time clock, with a first event at `t(0)` so commands happen at `t(0)` too.
async fn start() -> TestApp {
    let app = TestApp::spawn().await;
    app.clock("event_time").await;
    ok(&app, ev("call_initiated", "warmup", 0, json!({}))).await;
    app
}

async fn agent(app: &TestApp, body: Value) -> Value {
    let (s, v) = app.post("/api/v1/agents", &body).await;
    assert_eq!(s, StatusCode::CREATED, "create agent {body}: {v}");
    v
}

async fn status(app: &TestApp, id: &str, st: &str) -> Value {
    let (s, v) = app
        .post(
            &format!("/api/v1/agents/{id}/status"),
            &json!({ "status": st }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "status {id} {st}: {v}");
    v
}

async fn get_agent(app: &TestApp, id: &str) -> Value {
    let (s, v) = app.get(&format!("/api/v1/agents/{id}")).await;
    assert_eq!(s, StatusCode::OK, "agent {id}: {v}");
    v
}

async fn members(app: &TestApp, q: &str, m: Value) -> Value {
    let (s, v, _) = app
        .call_as(
            &Cred::Key(app.key.clone()),
            Method::PUT,
            &format!("/api/v1/queues/{q}/members"),
            Some(&json!({ "members": m })),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "members of {q}: {v}");
    v
}

/// An `auto` queue with `strategy` and these available agents as members (in order).
async fn auto_queue(app: &TestApp, q: &str, strategy: &str, agents: &[&str], extra: Value) {
    let mut body = json!({"id": q, "routing": "auto", "strategy": strategy, "ring_timeout_s": 10});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    app.queue(body).await;
    let mut m = Vec::new();
    for (i, a) in agents.iter().enumerate() {
        if app.get(&format!("/api/v1/agents/{a}")).await.0 == StatusCode::NOT_FOUND {
            agent(app, json!({"id": a, "status": "available"})).await;
        }
        m.push(json!({"agent_id": a, "position": i}));
    }
    members(app, q, Value::Array(m)).await;
}

fn routed_to(c: &Value) -> Option<String> {
    (c["status"] == "ringing").then(|| c["agent_id"].as_str().unwrap().to_owned())
}

async fn events_of(app: &TestApp, call: &str, ty: &str) -> Vec<Value> {
    let (s, v) = app
        .get(&format!("/api/v1/calls/{call}/events?limit=500"))
        .await;
    assert_eq!(s, StatusCode::OK);
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == ty)
        .cloned()
        .collect()
}

#[tokio::test]
async fn agents_are_created_validated_and_tenant_scoped() {
    let app = TestApp::spawn().await;
    let (s, v) = app
        .post(
            "/api/v1/agents",
            &json!({"id": "a1", "name": "Ann", "skills": {"fr": 7}, "capacity": 2,
                    "wrap_up_s": 15, "sip_uri": "sip:ann@127.0.0.1:5101"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(
        v["status"], "offline",
        "a new agent is offline until it says otherwise"
    );
    assert_eq!(v["presence"], "offline");
    assert_eq!(v["capacity"], 2);
    assert_eq!(v["skills"]["fr"], 7);
    let (s, v) = app.post("/api/v1/agents", &json!({"id": "a1"})).await;
    assert_eq!(
        (s, v["field"].as_str()),
        (StatusCode::CONFLICT, Some("id")),
        "{v}"
    );
    for (body, field) in [
        (json!({"id": "b", "capacity": 0}), "capacity"),
        (json!({"id": "b", "skills": {"fr": 11}}), "skills"),
        (json!({"id": "b", "skills": {"a b": 1}}), "skills"),
        (json!({"id": "b", "sip_uri": "http://x"}), "sip_uri"),
        (json!({"id": "b", "max_no_answer": 0}), "max_no_answer"),
        (json!({"id": "b", "wrap_up_s": 86_401}), "wrap_up_s"),
        (
            json!({"id": "b", "user_id": "0190b6a0-0000-7000-8000-000000000000"}),
            "user_id",
        ),
        (json!({"id": "b c"}), "id"),
        (json!({"capacity": 1}), "id"),
    ] {
        let (s, v) = app.post("/api/v1/agents", &body).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {v}");
        assert_eq!(v["field"], field, "{body}: {v}");
    }
    assert_eq!(app.get("/api/v1/agents/b").await.0, StatusCode::NOT_FOUND);

    // PATCH keeps what it does not name; `null` clears; the status has its own route.
    let (s, v) = app
        .patch(
            "/api/v1/agents/a1",
            &json!({"name": "Ann B.", "sip_uri": null}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (v["name"].as_str(), v["capacity"].as_u64()),
        (Some("Ann B."), Some(2))
    );
    assert_eq!(v["sip_uri"], Value::Null);
    let (s, v) = app
        .patch("/api/v1/agents/a1", &json!({"status": "available"}))
        .await;
    assert_eq!(
        (s, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("status"))
    );
    let (s, v) = app
        .post("/api/v1/agents/a1/status", &json!({"status": "on_call"}))
        .await;
    assert_eq!(
        (s, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("status"))
    );
    assert_eq!(
        status(&app, "a1", "available").await["presence"],
        "available"
    );

    // Lists: by presence, paginated.
    agent(&app, json!({"id": "a2"})).await;
    let (_, v) = app.get("/api/v1/agents?presence=available").await;
    let ids: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a1"]);
    let (_, v) = app.get("/api/v1/agents?limit=1").await;
    assert_eq!(v["items"][0]["id"], "a1");
    let (_, v2) = app
        .get(&format!(
            "/api/v1/agents?limit=1&cursor={}",
            v["next_cursor"].as_str().unwrap()
        ))
        .await;
    assert_eq!(v2["items"][0]["id"], "a2");

    // Another tenant sees none of it, and cannot change it.
    let other = app.other_tenant("acd-other").await;
    let (s, _, _) = app
        .call_as(
            &Cred::Key(other.clone()),
            Method::GET,
            "/api/v1/agents/a1",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, _) = app
        .call_as(
            &Cred::Key(other),
            Method::POST,
            "/api/v1/agents/a1/status",
            Some(&json!({"status": "offline"})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Members must be agents; the queue's routing fields are validated.
    app.queue(json!({"id": "q"})).await;
    let (s, v, _) = app
        .call_as(
            &Cred::Key(app.key.clone()),
            Method::PUT,
            "/api/v1/queues/q/members",
            Some(&json!({"members": [{"agent_id": "ghost"}]})),
        )
        .await;
    assert_eq!(
        (s, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("members")),
        "{v}"
    );
    let (s, v) = app
        .patch("/api/v1/queues/q", &json!({"strategy": "fastest"}))
        .await;
    assert_eq!(
        (s, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("strategy"))
    );
    let (s, v) = app
        .patch("/api/v1/queues/q", &json!({"routing": "robot"}))
        .await;
    assert_eq!(
        (s, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("routing"))
    );
    let q = members(
        &app,
        "q",
        json!([{"agent_id": "a2", "level": 2}, {"agent_id": "a1"}]),
    )
    .await;
    assert_eq!(q["members"][0]["agent_id"], "a1", "members in tier order");
    assert_eq!(q["routing"], "manual", "routing stays manual until asked");
}

#[tokio::test]
async fn an_auto_queue_offers_calls_and_is_work_conserving() {
    let app = start().await;
    auto_queue(&app, "q", "longest_idle", &["a1", "a2"], json!({})).await;

    ok(
        &app,
        ev("call_initiated", "C1", 10, json!({"queue_id": "q"})),
    )
    .await;
    ok(
        &app,
        ev("call_initiated", "C2", 11, json!({"queue_id": "q"})),
    )
    .await;
    ok(
        &app,
        ev("call_initiated", "C3", 12, json!({"queue_id": "q"})),
    )
    .await;
    let (c1, c2) = (call(&app, "C1").await, call(&app, "C2").await);
    let (r1, r2) = (
        routed_to(&c1).expect("C1 offered"),
        routed_to(&c2).expect("C2 offered"),
    );
    assert_ne!(r1, r2, "each agent has one call");
    assert_eq!(
        call(&app, "C3").await["status"],
        "waiting",
        "nobody left for C3"
    );
    // The engine-made call_routed is in the history at the event's time.
    let routed = events_of(&app, "C1", "call_routed").await;
    assert_eq!(routed.len(), 1);
    assert_eq!(routed[0]["timestamp"], t(10));
    assert_eq!(get_agent(&app, &r1).await["presence"], "ringing");

    // Telephony answers C1; its agent is on call. C1 ends: the agent at once takes C3.
    ok(&app, ev("call_answered", "C1", 13, json!({}))).await;
    assert_eq!(get_agent(&app, &r1).await["presence"], "on_call");
    ok(
        &app,
        ev("call_ended", "C1", 20, json!({"end_reason": "completed"})),
    )
    .await;
    let c3 = call(&app, "C3").await;
    assert_eq!(
        routed_to(&c3).as_deref(),
        Some(r1.as_str()),
        "work-conserving: {c3}"
    );
    let a = get_agent(&app, &r1).await;
    assert_eq!(a["calls_taken"], 1);
    assert_eq!(a["talk_s"], 7.0);
}

#[tokio::test]
async fn ring_timeout_retransfers_and_max_no_answer_puts_on_break() {
    let app = start().await;
    agent(
        &app,
        json!({"id": "a1", "status": "available", "max_no_answer": 2}),
    )
    .await;
    auto_queue(
        &app,
        "q",
        "top_down",
        &["a1", "a2"],
        json!({"ring_timeout_s": 5}),
    )
    .await;

    ok(
        &app,
        ev("call_initiated", "C1", 10, json!({"queue_id": "q"})),
    )
    .await;
    // C2 takes a2, so C1's re-offers can only go to a1.
    ok(
        &app,
        ev("call_initiated", "C2", 10, json!({"queue_id": "q"})),
    )
    .await;
    assert_eq!(routed_to(&call(&app, "C1").await).as_deref(), Some("a1"));
    ok(&app, ev("call_answered", "C2", 11, json!({}))).await;
    // t(15): a1 missed it; top_down offers it to a1 again (a2 is busy). t(20): second miss.
    ok(&app, ev("call_initiated", "X", 21, json!({}))).await;
    let rts = events_of(&app, "C1", "call_retransfer").await;
    assert_eq!(rts.len(), 2, "{rts:?}");
    assert_eq!(rts[0]["timestamp"], t(15));
    assert_eq!(
        (
            rts[1]["data"]["missed"].as_u64(),
            rts[1]["data"]["agent_on_break"].as_bool()
        ),
        (Some(2), Some(true))
    );
    let a1 = get_agent(&app, "a1").await;
    assert_eq!(
        (a1["status"].as_str(), a1["presence"].as_str()),
        (Some("break"), Some("break")),
        "{a1}"
    );
    assert_eq!(call(&app, "C1").await["status"], "waiting");

    // a2 ends its call: it takes C1, which kept its place.
    ok(
        &app,
        ev("call_ended", "C2", 22, json!({"end_reason": "completed"})),
    )
    .await;
    assert_eq!(routed_to(&call(&app, "C1").await).as_deref(), Some("a2"));
    // Back from break, a1 is offered calls again, and its misses start over.
    let a1 = status(&app, "a1", "available").await;
    assert_eq!(a1["missed"], 0);
}

#[tokio::test]
async fn wrap_up_holds_the_agent_then_releases_it_on_the_tenant_clock() {
    let app = start().await;
    agent(
        &app,
        json!({"id": "a1", "status": "available", "wrap_up_s": 30}),
    )
    .await;
    auto_queue(&app, "q", "longest_idle", &["a1"], json!({})).await;
    ok(
        &app,
        ev("call_initiated", "C1", 10, json!({"queue_id": "q"})),
    )
    .await;
    ok(&app, ev("call_answered", "C1", 12, json!({}))).await;
    ok(
        &app,
        ev("call_ended", "C1", 20, json!({"end_reason": "completed"})),
    )
    .await;
    let a = get_agent(&app, "a1").await;
    assert_eq!(a["presence"], "wrap_up", "{a}");
    assert_eq!(a["wrap_up_until"], t(50));
    ok(
        &app,
        ev("call_initiated", "C2", 25, json!({"queue_id": "q"})),
    )
    .await;
    assert_eq!(
        call(&app, "C2").await["status"],
        "waiting",
        "no offer during wrap-up"
    );
    ok(&app, ev("call_initiated", "X", 51, json!({}))).await;
    assert_eq!(routed_to(&call(&app, "C2").await).as_deref(), Some("a1"));
    let routed = events_of(&app, "C2", "call_routed").await;
    assert_eq!(
        routed[0]["timestamp"],
        t(50),
        "offered when the wrap-up ended"
    );
}

#[tokio::test]
async fn capacity_is_never_exceeded_under_concurrent_events() {
    let app = start().await;
    agent(
        &app,
        json!({"id": "big", "status": "available", "capacity": 3}),
    )
    .await;
    auto_queue(&app, "q", "fewest_calls", &["a1", "a2", "big"], json!({})).await;
    let calls: Vec<_> = (0..40)
        .map(|i| {
            let app = &app;
            async move {
                ok(
                    app,
                    ev(
                        "call_initiated",
                        &format!("P{i}"),
                        // All at one instant: no ring timer fires while they arrive.
                        10,
                        json!({"queue_id": "q"}),
                    ),
                )
                .await;
            }
        })
        .collect();
    futures_util::future::join_all(calls).await;
    let mut per_agent = std::collections::HashMap::<String, usize>::new();
    let mut waiting = 0;
    for i in 0..40 {
        let c = call(&app, &format!("P{i}")).await;
        match routed_to(&c) {
            Some(a) => *per_agent.entry(a).or_default() += 1,
            None => waiting += 1,
        }
    }
    assert_eq!(per_agent.get("a1"), Some(&1));
    assert_eq!(per_agent.get("a2"), Some(&1));
    assert_eq!(per_agent.get("big"), Some(&3));
    assert_eq!(waiting, 35);
    let big = get_agent(&app, "big").await;
    assert_eq!(big["ringing_calls"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn round_robin_visits_every_agent_and_ring_all_rings_them_together() {
    let app = start().await;
    auto_queue(&app, "rr", "round_robin", &["a1", "a2", "a3"], json!({})).await;
    let mut order = Vec::new();
    for i in 0..6 {
        let id = format!("R{i}");
        ok(
            &app,
            ev("call_initiated", &id, 10 + 2 * i, json!({"queue_id": "rr"})),
        )
        .await;
        order.push(routed_to(&call(&app, &id).await).expect("offered"));
        ok(
            &app,
            ev(
                "call_ended",
                &id,
                11 + 2 * i,
                json!({"end_reason": "abandoned"}),
            ),
        )
        .await;
    }
    assert_eq!(order, ["a1", "a2", "a3", "a1", "a2", "a3"]);

    auto_queue(&app, "all", "ring_all", &["b1", "b2"], json!({})).await;
    ok(
        &app,
        ev("call_initiated", "G1", 30, json!({"queue_id": "all"})),
    )
    .await;
    let routed = events_of(&app, "G1", "call_routed").await;
    assert_eq!(routed[0]["data"]["ring_group"], json!(["b1", "b2"]));
    for a in ["b1", "b2"] {
        assert_eq!(get_agent(&app, a).await["presence"], "ringing");
    }
    ok(
        &app,
        ev("call_answered", "G1", 31, json!({"agent_id": "b2"})),
    )
    .await;
    let g1 = call(&app, "G1").await;
    assert_eq!(g1["agent_id"], "b2");
    assert_eq!(get_agent(&app, "b2").await["presence"], "on_call");
    assert_eq!(
        get_agent(&app, "b1").await["presence"],
        "available",
        "released at the answer"
    );
}

#[tokio::test]
async fn an_agent_leaving_mid_offer_requeues_the_call_in_its_place() {
    let app = start().await;
    auto_queue(&app, "q", "longest_idle", &["a1"], json!({})).await;
    ok(
        &app,
        ev("call_initiated", "C1", 10, json!({"queue_id": "q"})),
    )
    .await;
    ok(
        &app,
        ev(
            "call_initiated",
            "C2",
            11,
            json!({"queue_id": "q", "priority": 0}),
        ),
    )
    .await;
    assert_eq!(routed_to(&call(&app, "C1").await).as_deref(), Some("a1"));
    let a = status(&app, "a1", "offline").await;
    assert_eq!(a["presence"], "offline");
    let c1 = call(&app, "C1").await;
    assert_eq!(c1["status"], "waiting");
    let rt = events_of(&app, "C1", "call_retransfer").await;
    assert_eq!(rt[0]["data"]["missed"], 0, "leaving is not a miss");
    // Back: C1 (entered at t(10)) is served before C2 (t(11)).
    status(&app, "a1", "available").await;
    assert_eq!(routed_to(&call(&app, "C1").await).as_deref(), Some("a1"));
    assert_eq!(call(&app, "C2").await["status"], "waiting");
}

#[tokio::test]
async fn skills_and_tiers_narrow_who_is_offered() {
    let app = start().await;
    agent(
        &app,
        json!({"id": "fr5", "status": "available", "skills": {"fr": 5}}),
    )
    .await;
    agent(
        &app,
        json!({"id": "fr9", "status": "available", "skills": {"fr": 9}}),
    )
    .await;
    agent(
        &app,
        json!({"id": "fr9b", "status": "available", "skills": {"fr": 9}}),
    )
    .await;
    app.queue(
        json!({"id": "q", "routing": "auto", "strategy": "top_down", "required_skills": {"fr": 8}}),
    )
    .await;
    members(
        &app,
        "q",
        json!([
            {"agent_id": "fr5", "level": 1},
            {"agent_id": "fr9b", "level": 2},
            {"agent_id": "fr9", "level": 1, "position": 5},
        ]),
    )
    .await;
    ok(
        &app,
        ev("call_initiated", "C1", 10, json!({"queue_id": "q"})),
    )
    .await;
    ok(
        &app,
        ev("call_initiated", "C2", 11, json!({"queue_id": "q"})),
    )
    .await;
    ok(
        &app,
        ev("call_initiated", "C3", 12, json!({"queue_id": "q"})),
    )
    .await;
    assert_eq!(
        routed_to(&call(&app, "C1").await).as_deref(),
        Some("fr9"),
        "tier 1, skilled"
    );
    assert_eq!(
        routed_to(&call(&app, "C2").await).as_deref(),
        Some("fr9b"),
        "tier 2 once tier 1 is busy"
    );
    assert_eq!(
        call(&app, "C3").await["status"],
        "waiting",
        "fr5 lacks the skill level"
    );
}

#[tokio::test]
async fn agent_presence_changes_are_published_on_the_agents_topic() {
    let app = start().await;
    agent(
        &app,
        json!({"id": "a1", "status": "available", "sip_uri": "sip:a1@127.0.0.1:5101"}),
    )
    .await;
    let url = format!("ws://{}/api/v1/stream?topics=agents,calls", app.addr);
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("x-api-key", app.key.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.expect("ws");
    auto_queue(&app, "q", "longest_idle", &["a1"], json!({})).await;
    ok(
        &app,
        ev("call_initiated", "C1", 10, json!({"queue_id": "q"})),
    )
    .await;
    ok(&app, ev("call_answered", "C1", 11, json!({}))).await;
    ok(
        &app,
        ev("call_ended", "C1", 12, json!({"end_reason": "completed"})),
    )
    .await;
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let m = tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("a message in time")
            .expect("open")
            .expect("ok");
        if !m.is_text() {
            continue;
        }
        let v: Value = serde_json::from_str(m.to_text().unwrap()).unwrap();
        if v["type"] == "call_routed" {
            assert_eq!(
                v["data"]["targets"],
                json!(["sip:a1@127.0.0.1:5101"]),
                "{v}"
            );
            continue;
        }
        if v["topic"] != "agents" {
            continue;
        }
        assert_eq!(v["type"], "agent_status_changed");
        assert_eq!(v["data"]["agent_id"], "a1");
        seen.push((
            v["data"]["previous"].as_str().unwrap().to_owned(),
            v["data"]["status"].as_str().unwrap().to_owned(),
        ));
    }
    let want = [
        ("available", "ringing"),
        ("ringing", "on_call"),
        ("on_call", "available"),
    ];
    assert_eq!(
        &seen[..],
        want.map(|(a, b)| (a.to_owned(), b.to_owned())).as_slice(),
        "{seen:?}"
    );
}
