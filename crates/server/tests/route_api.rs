//! The telephony route API through the real server (issue 7 item 6): one line of JSON per
//! decision, every reject reason, the campaign strategies, the caps under parallel requests,
//! the lease (on the engine's manual clock, never the wall clock), `answered`, CDRs and
//! idempotency by call id. Runs on SQLite, and on PostgreSQL with `TEST_DATABASE_URL`.

#[path = "support/routing.rs"]
mod routing;
mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use routing::{cdr, fr, key_with, load, route, route_raw, routed_did, routed_to};
use support::{call, Cred, TestApp};
use switchboard_engine::{ManualClock, TimeSource};

async fn setup() -> (TestApp, String) {
    let app = TestApp::spawn().await;
    let key = key_with(&app, &["telephony"]).await;
    (app, key)
}

/// A server on the engine's manual clock, starting now.
async fn setup_manual() -> (TestApp, String, Arc<ManualClock>) {
    let (time, clock) = TimeSource::manual(switchboard_core::time::now_ms());
    let app = TestApp::spawn_with(move |s| s.time = time).await;
    let key = key_with(&app, &["telephony"]).await;
    (app, key, clock)
}

fn reject(reason: &str, code: u16) -> Value {
    json!({"action": "reject", "reason": reason, "sip_code": code})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_is_one_line_recorded_in_the_engine_and_repeats_by_call_id() {
    let (app, key) = setup().await;
    let (c, _) = routed_did(
        &app,
        &fr(1),
        json!({"dial_timeout_s": 25}),
        &["cc1"],
        |_| json!({}),
    )
    .await;
    let (s, text, v) = route_raw(&app, &key, &fr(1), "sipp-1@127.0.0.1").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        text,
        "{\"action\":\"route\",\"targets\":[\"sip:cc1@127.0.0.1\"],\"timeout_s\":25,\"call_id\":\"sipp-1@127.0.0.1\"}\n"
    );
    assert_eq!(v["targets"][0], "sip:cc1@127.0.0.1");
    // The repeat answers the same and takes nothing more.
    for _ in 0..3 {
        let (_, again, _) = route_raw(&app, &key, &fr(1), "sipp-1@127.0.0.1").await;
        assert_eq!(again, text);
    }
    assert_eq!(load(&app, &c).await, [(1, 1)]);
    // The call is in the engine, from the caller to the DID.
    let call = call(&app, "sipp-1@127.0.0.1").await;
    assert_eq!(
        (&call["to"], &call["from"]),
        (&json!(fr(1)), &json!("+33999999999")),
        "{call}"
    );
    assert_eq!(call["status"], "initiated");
    // A national DID is read in the tenant's region.
    app.patch("/api/v1/tenant", &json!({"default_region": "FR"}))
        .await;
    let v = route(&app, &key, "01 23 45 00 01", "national-1").await;
    assert_eq!(v["action"], "route", "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_parameters_are_400_problems_naming_them() {
    let (app, key) = setup().await;
    let k = Cred::Key(key.clone());
    for (q, f) in [
        ("call_id=c1", "did"),
        ("did=%2B33123450001", "call_id"),
        ("did=%2B33123450001&call_id=", "call_id"),
        ("did=%2B33123450001&call_id=has%20space", "call_id"),
        ("did=hello&call_id=c1", "did"),
        ("did=0123450001&call_id=c1", "did"), // national, and the tenant has no region
    ] {
        let (s, v, h) = app
            .call_as(
                &k,
                Method::GET,
                &format!("/api/v1/internal/route?{q}"),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{q}: {v}");
        assert_eq!(v["field"], f, "{q}: {v}");
        assert_eq!(h["content-type"], "application/problem+json");
    }
    let long = "x".repeat(257);
    let (s, v, _) = app
        .call_as(
            &k,
            Method::GET,
            &format!("/api/v1/internal/route?did=%2B33123450001&call_id=c1&from={long}"),
            None,
        )
        .await;
    assert_eq!(
        (s, &v["field"]),
        (StatusCode::BAD_REQUEST, &json!("from")),
        "{v}"
    );
    // A key without `telephony` is refused whatever the parameters.
    let other = Cred::Key(key_with(&app, &["routing:read", "routing:write"]).await);
    let (s, v, _) = app
        .call_as(
            &other,
            Method::GET,
            "/api/v1/internal/route?did=%2B33123450001&call_id=c1",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_reject_names_its_reason_and_sip_code() {
    let (app, key) = setup().await;
    // Unknown DID; another tenant's DID is unknown too.
    assert_eq!(
        route(&app, &key, &fr(1), "r1").await,
        reject("did_not_found", 404)
    );
    let b = Cred::Key(app.other_tenant("bravo").await);
    let (s, bc, _) = app
        .call_as(
            &b,
            Method::POST,
            "/api/v1/campaigns",
            Some(&json!({"name": "B"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let body = json!({"number": fr(2), "campaign_id": bc["id"]});
    let (s, _, _) = app
        .call_as(&b, Method::POST, "/api/v1/phone-numbers", Some(&body))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(
        route(&app, &key, &fr(2), "r2").await,
        reject("did_not_found", 404)
    );

    // Inactive DID, inactive campaign, a campaign without destinations, all off.
    let (c, dests) = routed_did(&app, &fr(3), json!({}), &["a"], |_| json!({})).await;
    let dids = app.get("/api/v1/phone-numbers").await.1;
    let did3 = dids["items"][0]["id"].as_str().unwrap().to_owned();
    app.patch(
        &format!("/api/v1/phone-numbers/{did3}"),
        &json!({"active": false}),
    )
    .await;
    assert_eq!(
        route(&app, &key, &fr(3), "r3").await,
        reject("did_inactive", 403)
    );
    app.patch(
        &format!("/api/v1/phone-numbers/{did3}"),
        &json!({"active": true}),
    )
    .await;
    app.patch(&format!("/api/v1/campaigns/{c}"), &json!({"active": false}))
        .await;
    assert_eq!(
        route(&app, &key, &fr(3), "r4").await,
        reject("campaign_inactive", 480)
    );
    app.patch(&format!("/api/v1/campaigns/{c}"), &json!({"active": true}))
        .await;
    app.patch(
        &format!("/api/v1/destinations/{}", dests[0]),
        &json!({"active": false}),
    )
    .await;
    assert_eq!(
        route(&app, &key, &fr(3), "r5").await,
        reject("no_active_destinations", 480)
    );
    routing::links(&app, &c, json!([])).await;
    assert_eq!(
        route(&app, &key, &fr(3), "r6").await,
        reject("no_active_destinations", 480)
    );
    routing::links(
        &app,
        &c,
        json!([{"destination_id": dests[0], "concurrency_cap": 0}]),
    )
    .await;
    app.patch(
        &format!("/api/v1/destinations/{}", dests[0]),
        &json!({"active": true}),
    )
    .await;
    assert_eq!(
        route(&app, &key, &fr(3), "r7").await,
        reject("all_destinations_at_cap", 480)
    );
    // A rejected call ends in the engine; its repeat answers the same reject.
    assert_eq!(call(&app, "r7").await["status"], "ended");
    routing::links(&app, &c, json!([{"destination_id": dests[0]}])).await;
    assert_eq!(
        route(&app, &key, &fr(3), "r7").await,
        reject("all_destinations_at_cap", 480)
    );
    assert_eq!(route(&app, &key, &fr(3), "r8").await["action"], "route");

    // A queue DID: today no agent is offered calls, so it is refused and the call abandoned.
    app.queue(json!({"id": "support"})).await;
    let (s, v) = app
        .post(
            "/api/v1/phone-numbers",
            &json!({"number": fr(4), "queue_id": "support"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(
        route(&app, &key, &fr(4), "q1").await,
        reject("no_agent_available", 480)
    );
    let q = call(&app, "q1").await;
    assert_eq!(
        (&q["status"], &q["end_reason"], &q["queue_id"]),
        (&json!("ended"), &json!("abandoned"), &json!("support")),
        "{q}"
    );
    assert_eq!(
        app.history("q1").await[..2],
        ["call_initiated".to_owned(), "call_ended".to_owned()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn priority_sends_to_the_first_destination_below_its_cap() {
    let (app, key) = setup().await;
    let (c, _) = routed_did(
        &app,
        &fr(1),
        json!({"strategy": "priority"}),
        &["second", "first"],
        |i| {
            if i == 0 {
                json!({"priority": 2})
            } else {
                json!({"priority": 1, "concurrency_cap": 1})
            }
        },
    )
    .await;
    let to = |v: Value| routed_to(&v).unwrap_or_default();
    assert_eq!(to(route(&app, &key, &fr(1), "p1").await), "first");
    assert_eq!(
        to(route(&app, &key, &fr(1), "p2").await),
        "second",
        "first is at its cap"
    );
    assert_eq!(to(route(&app, &key, &fr(1), "p3").await), "second");
    assert_eq!(load(&app, &c).await, [(2, 2), (1, 1)]);
    let (s, v) = cdr(&app, &key, "p1", "answered").await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(load(&app, &c).await, [(2, 2), (0, 1)]);
    assert_eq!(
        to(route(&app, &key, &fr(1), "p4").await),
        "first",
        "its slot came back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_visits_each_destination_in_turn_and_skips_the_capped() {
    let (app, key) = setup().await;
    let (c, _) = routed_did(
        &app,
        &fr(1),
        json!({"strategy": "round_robin"}),
        &["a", "b", "c"],
        |i| {
            if i == 1 {
                json!({"total_cap": 2})
            } else {
                json!({})
            }
        },
    )
    .await;
    let mut order = Vec::new();
    for i in 0..9 {
        order.push(routed_to(&route(&app, &key, &fr(1), &format!("rr{i}")).await).unwrap());
    }
    assert_eq!(
        order,
        ["a", "b", "c", "a", "b", "c", "a", "c", "a"],
        "b stops at its total cap"
    );
    let totals: Vec<u64> = load(&app, &c).await.iter().map(|l| l.1).collect();
    assert_eq!(totals, [4, 2, 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weighted_shares_converge_to_the_weights() {
    let (app, key) = setup().await;
    routed_did(
        &app,
        &fr(1),
        json!({"strategy": "weighted"}),
        &["light", "heavy", "never"],
        |i| json!({"weight": ([1, 3, 0][i])}),
    )
    .await;
    let n = 400;
    let mut seen: BTreeMap<String, u32> = BTreeMap::new();
    for i in 0..n {
        let v = route(&app, &key, &fr(1), &format!("w{i}")).await;
        *seen.entry(routed_to(&v).unwrap()).or_default() += 1;
    }
    let heavy = f64::from(seen.get("heavy").copied().unwrap_or(0)) / f64::from(n);
    // 400 draws of p = 0.75: the standard deviation is 2.2 %; 0.08 is over 3.5 of them.
    assert!((heavy - 0.75).abs() < 0.08, "heavy got {heavy}: {seen:?}");
    assert_eq!(
        seen.get("never"),
        None,
        "weight 0 is never chosen: {seen:?}"
    );
}

/// `n` route requests at once, each with its own call id; answers how many were routed and
/// the reject reasons of the others.
async fn burst(
    app: &Arc<TestApp>,
    key: &str,
    did: &str,
    prefix: &str,
    n: usize,
) -> (usize, Vec<String>) {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (app, key, did) = (app.clone(), key.to_owned(), did.to_owned());
            let id = format!("{prefix}-{i}");
            tokio::spawn(async move { route(&app, &key, &did, &id).await })
        })
        .collect();
    let mut routed = 0;
    let mut reasons = Vec::new();
    for t in tasks {
        let v = t.await.expect("task");
        match v["action"].as_str() {
            Some("route") => routed += 1,
            _ => reasons.push(v["reason"].as_str().unwrap_or("?").to_owned()),
        }
    }
    (routed, reasons)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrency_cap_holds_under_parallel_route_requests() {
    let (app, key) = setup().await;
    let cap = 5;
    let (c, _) = routed_did(
        &app,
        &fr(1),
        json!({}),
        &["capped"],
        |_| json!({"concurrency_cap": cap}),
    )
    .await;
    let app = Arc::new(app);
    let (routed, reasons) = burst(&app, &key, &fr(1), "par", 40).await;
    assert_eq!(
        routed,
        cap,
        "exactly the cap is routed ({})",
        support::backend()
    );
    assert!(
        reasons.iter().all(|r| r == "all_destinations_at_cap"),
        "{reasons:?}"
    );
    assert_eq!(load(&app, &c).await, [(cap as u64, cap as u64)]);
    // Ending two calls frees two slots, again under a burst.
    for i in 0..40 {
        let (s, _) = cdr(&app, &key, &format!("par-{i}"), "answered").await;
        assert!(s.is_success());
    }
    assert_eq!(load(&app, &c).await, [(0, cap as u64)]);
    let (routed, _) = burst(&app, &key, &fr(1), "par2", 20).await;
    assert_eq!(routed, cap);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_total_cap_holds_under_parallel_route_requests() {
    let (app, key) = setup().await;
    let (c, _) = routed_did(
        &app,
        &fr(1),
        json!({"strategy": "weighted"}),
        &["t1", "t2"],
        |i| json!({"total_cap": ([7, 3][i])}),
    )
    .await;
    let app = Arc::new(app);
    let (routed, reasons) = burst(&app, &key, &fr(1), "tot", 30).await;
    assert_eq!(routed, 10, "7 + 3 ({})", support::backend());
    assert_eq!(reasons.len(), 20);
    assert_eq!(load(&app, &c).await, [(7, 7), (3, 3)]);
    // CDRs free the concurrency, not the total.
    for i in 0..30 {
        cdr(&app, &key, &format!("tot-{i}"), "answered").await;
    }
    assert_eq!(
        route(&app, &key, &fr(1), "tot-after").await,
        reject("all_destinations_at_cap", 480)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dial_timeout_lease_ends_and_an_answer_extends_it_to_the_longest_call() {
    let (app, key, clock) = setup_manual().await;
    let (c, _) = routed_did(
        &app,
        &fr(1),
        json!({"dial_timeout_s": 10, "max_call_s": 100}),
        &["one"],
        |_| json!({"concurrency_cap": 1}),
    )
    .await;
    assert_eq!(route(&app, &key, &fr(1), "l1").await["action"], "route");
    assert_eq!(
        route(&app, &key, &fr(1), "l2").await["reason"],
        "all_destinations_at_cap"
    );
    clock.advance(10_000);
    assert_eq!(
        route(&app, &key, &fr(1), "l3").await["reason"],
        "all_destinations_at_cap",
        "the lease ends after 10 s, not at"
    );
    clock.advance(1);
    assert_eq!(
        route(&app, &key, &fr(1), "l4").await["action"],
        "route",
        "l1's unanswered slot expired"
    );
    assert_eq!(load(&app, &c).await, [(1, 2)]);

    // l4 is answered: it holds its slot 100 s from the answer.
    clock.advance(5_000);
    let k = Cred::Key(key.clone());
    let (s, v, _) = app
        .call_as(
            &k,
            Method::POST,
            "/api/v1/internal/answered",
            Some(&json!({"call_id": "l4", "target": "sip:one@127.0.0.1"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let answered = clock.now_ms();
    assert_eq!(
        v["expires_at"],
        switchboard_core::format_rfc3339(answered + 100_000)
    );
    // A repeat changes nothing.
    clock.advance(1_000);
    let (s, again, _) = app
        .call_as(
            &k,
            Method::POST,
            "/api/v1/internal/answered",
            Some(&json!({"call_id": "l4"})),
        )
        .await;
    assert_eq!((s, &again), (StatusCode::OK, &v));
    clock.advance(60_000);
    assert_eq!(
        route(&app, &key, &fr(1), "l5").await["reason"],
        "all_destinations_at_cap",
        "l4 is up"
    );
    clock.advance(40_000);
    assert_eq!(
        route(&app, &key, &fr(1), "l6").await["action"],
        "route",
        "l4 ran past max_call_s"
    );

    // `answered` for a call never routed, or rejected.
    let (s, v, _) = app
        .call_as(
            &k,
            Method::POST,
            "/api/v1/internal/answered",
            Some(&json!({"call_id": "nope"})),
        )
        .await;
    assert_eq!(
        (s, &v["field"]),
        (StatusCode::NOT_FOUND, &json!("call_id")),
        "{v}"
    );
    let (s, v, _) = app
        .call_as(
            &k,
            Method::POST,
            "/api/v1/internal/answered",
            Some(&json!({"call_id": "l5"})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cdr_is_recorded_once_releases_the_slot_and_ends_the_call() {
    let (app, key) = setup().await;
    let (c, dests) = routed_did(
        &app,
        &fr(1),
        json!({}),
        &["cc"],
        |_| json!({"concurrency_cap": 2}),
    )
    .await;
    route(&app, &key, &fr(1), "c1").await;
    route(&app, &key, &fr(1), "c2").await;
    assert_eq!(load(&app, &c).await, [(2, 2)]);

    let (s, first) = cdr(&app, &key, "c1", "answered").await;
    assert_eq!(s, StatusCode::CREATED, "{first}");
    assert_eq!(
        (
            &first["status"],
            &first["did"],
            &first["campaign_id"],
            &first["destination_id"]
        ),
        (
            &json!("answered"),
            &json!(fr(1)),
            &json!(c),
            &json!(dests[0])
        )
    );
    assert_eq!(
        (&first["duration_s"], &first["billsec_s"], &first["source"]),
        (&json!(60), &json!(50), &json!("route_api"))
    );
    assert_eq!(first["started_at"], "2026-11-24T10:00:00Z");
    assert_eq!(load(&app, &c).await, [(1, 2)]);
    let (s, again) = cdr(&app, &key, "c1", "busy").await;
    assert_eq!(
        (s, &again),
        (StatusCode::OK, &first),
        "the first record, unchanged"
    );
    assert_eq!(load(&app, &c).await, [(1, 2)], "released once");
    let c1 = call(&app, "c1").await;
    assert_eq!(
        (&c1["status"], &c1["end_reason"]),
        (&json!("ended"), &json!("completed")),
        "{c1}"
    );
    let (s, _) = cdr(&app, &key, "c2", "no_answer").await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(call(&app, "c2").await["end_reason"], "abandoned");
    assert_eq!(load(&app, &c).await, [(0, 2)]);

    // A CDR of a call never routed is recorded too, and touches no counter.
    let (s, v) = cdr(&app, &key, "stray", "failed").await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["campaign_id"], Value::Null);
    let (s, list) = app.get("/api/v1/cdrs").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list["items"].as_array().unwrap().len(), 3);

    // Invalid CDRs name the field.
    let k = Cred::Key(key.clone());
    for (body, f) in [
        (
            json!({"status": "answered", "started_at": "2026-11-24T10:00:00Z"}),
            "call_id",
        ),
        (
            json!({"call_id": "x", "status": "ANSWERED", "started_at": "2026-11-24T10:00:00Z"}),
            "status",
        ),
        (json!({"call_id": "x", "status": "answered"}), "started_at"),
        (
            json!({"call_id": "x", "status": "answered", "started_at": "yesterday"}),
            "started_at",
        ),
        (
            json!({"call_id": "x", "status": "answered", "started_at": "2026-11-24T10:00:00Z", "duration_s": -1}),
            "duration_s",
        ),
        (
            json!({"call_id": "x", "status": "answered", "started_at": "2026-11-24T10:00:00Z", "target": ""}),
            "target",
        ),
        (
            json!({"call_id": "x y", "status": "answered", "started_at": "2026-11-24T10:00:00Z"}),
            "call_id",
        ),
    ] {
        let (s, v, _) = app
            .call_as(&k, Method::POST, "/api/v1/internal/cdr", Some(&body))
            .await;
        assert_eq!(
            (s, &v["field"]),
            (StatusCode::UNPROCESSABLE_ENTITY, &json!(f)),
            "{body}: {v}"
        );
    }
}
