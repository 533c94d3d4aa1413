//! The call-seller model's administration through the real server: destinations, campaigns
//! with their capped destinations, DIDs; validation naming the field, ETag/If-Match, cursor
//! pages, another tenant's ids answered 404, and the audit entries. Runs on SQLite, and on
//! PostgreSQL with `TEST_DATABASE_URL`.

#[path = "support/routing.rs"]
mod routing;
mod support;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use routing::{call, campaign, destination, did, fr, links};
use support::{Cred, TestApp};

fn field(v: &Value) -> &str {
    v["field"].as_str().unwrap_or_default()
}

/// Sends `m path body` and asserts a 422 naming `f`.
async fn refused(app: &TestApp, m: Method, path: &str, body: Value, f: &str) {
    let (s, v) = call(app, m.clone(), path, Some(body.clone())).await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{m} {path} {body}: {v}"
    );
    assert_eq!(field(&v), f, "{m} {path} {body}: {v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destinations_are_validated_changed_paged_and_deleted() {
    let app = TestApp::spawn().await;
    let p = "/api/v1/destinations";
    for (body, f) in [
        (json!({"sip_uri": "sip:a@h"}), "name"),
        (json!({"name": "A"}), "sip_uri"),
        (json!({"name": "A", "sip_uri": "http://x"}), "sip_uri"),
        (json!({"name": "A", "sip_uri": "sip:a b@h"}), "sip_uri"),
        (
            json!({"name": "A", "sip_uri": "sip:a@h", "number": fr(1)}),
            "number",
        ),
        (json!({"name": "A", "number": "01 23 45 67 89"}), "number"), // no default_region
        (json!({"name": "A", "number": "+33 1"}), "number"),
        (json!({"name": "", "sip_uri": "sip:a@h"}), "name"),
        (
            json!({"name": "A", "sip_uri": "sip:a@h", "transport": "u\0dp"}),
            "transport",
        ),
        (
            json!({"name": "A", "sip_uri": "sip:a@h", "colour": "red"}),
            "colour",
        ),
        (
            json!({"name": "A", "sip_uri": "sip:a@h", "active": "yes"}),
            "active",
        ),
    ] {
        refused(&app, Method::POST, p, body, f).await;
    }

    let (s, a) = app
        .post(
            p,
            &json!({"name": "Acme CC", "sip_uri": "sips:queue@cc.example:5061;transport=tls",
            "client_identifier": "acme", "transport": "transport-tls"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{a}");
    assert_eq!(a["active"], true);
    assert_eq!(a["number"], Value::Null);
    assert_eq!(a["client_identifier"], "acme");
    let id = a["id"].as_str().unwrap().to_owned();
    let one = format!("{p}/{id}");
    let (_, got, h) = app
        .call_as(&Cred::Key(app.key.clone()), Method::GET, &one, None)
        .await;
    assert_eq!(got, a);
    let etag = h["etag"].to_str().unwrap().to_owned();
    assert_eq!(etag, "\"1\"");

    // Switching to a number clears the URI; a national number needs the tenant's region.
    refused(
        &app,
        Method::PATCH,
        &one,
        json!({"number": "01 23 45 67 89"}),
        "number",
    )
    .await;
    let (s, v) = app
        .patch("/api/v1/tenant", &json!({"default_region": "FR"}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, b) = app
        .patch(
            &one,
            &json!({"number": "01 23 45 67 89", "client_identifier": null}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["number"], "+33123456789");
    assert_eq!(b["sip_uri"], Value::Null);
    assert_eq!(b["client_identifier"], Value::Null);
    assert_eq!(b["transport"], "transport-tls", "untouched fields stay");
    refused(
        &app,
        Method::PATCH,
        &one,
        json!({"number": null}),
        "sip_uri",
    )
    .await;

    // If-Match: the old version is refused and nothing changes.
    let r = app
        .client
        .patch(app.url(&one))
        .header("X-API-Key", &app.key)
        .header("If-Match", &etag)
        .json(&json!({"name": "stale"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PRECONDITION_FAILED);
    let (_, now) = app.get(&one).await;
    assert_eq!(now["name"], "Acme CC");
    let r = app
        .client
        .patch(app.url(&one))
        .header("X-API-Key", &app.key)
        .header("If-Match", "\"2\"")
        .json(&json!({"name": "Acme"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["etag"], "\"3\"");

    // Pages by cursor, oldest first.
    for i in 0..3 {
        destination(&app, &format!("cc{i}")).await;
    }
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let (s, page) = app.get(&format!("{p}?limit=2{cursor}")).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        for d in page["items"].as_array().unwrap() {
            seen.push(d["name"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, ["Acme", "cc0", "cc1", "cc2"]);
    let (s, v) = app.get(&format!("{p}?cursor=nope")).await;
    assert_eq!((s, field(&v)), (StatusCode::BAD_REQUEST, "cursor"), "{v}");

    let (s, _) = call(&app, Method::DELETE, &one, None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, v) = app.get(&one).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    let (s, _) = call(&app, Method::DELETE, &one, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app.get(&format!("{p}/not-a-uuid")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaigns_take_defaults_and_their_destination_lists_keep_counters() {
    let app = TestApp::spawn().await;
    let p = "/api/v1/campaigns";
    for (body, f) in [
        (json!({}), "name"),
        (json!({"name": "C", "strategy": "random"}), "strategy"),
        (json!({"name": "C", "dial_timeout_s": 0}), "dial_timeout_s"),
        (
            json!({"name": "C", "dial_timeout_s": 3601}),
            "dial_timeout_s",
        ),
        (json!({"name": "C", "max_call_s": 86401}), "max_call_s"),
        (json!({"name": "C", "max_call_s": -1}), "max_call_s"),
    ] {
        refused(&app, Method::POST, p, body, f).await;
    }
    let (s, c) = app.post(p, &json!({"name": "Leads"})).await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    assert_eq!(
        (
            &c["strategy"],
            &c["dial_timeout_s"],
            &c["max_call_s"],
            &c["active"]
        ),
        (&json!("priority"), &json!(30), &json!(14400), &json!(true))
    );
    let id = c["id"].as_str().unwrap().to_owned();
    let (s, c2) = app
        .patch(
            &format!("{p}/{id}"),
            &json!({"strategy": "weighted", "dial_timeout_s": 20}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{c2}");
    assert_eq!(
        (&c2["strategy"], &c2["dial_timeout_s"]),
        (&json!("weighted"), &json!(20))
    );
    assert_eq!(c2["name"], "Leads");

    let a = destination(&app, "a").await;
    let b = destination(&app, "b").await;
    let ghost = uuid::Uuid::now_v7().to_string();
    let dests = format!("{p}/{id}/destinations");
    for (body, f) in [
        (
            json!([{"destination_id": a}, {"destination_id": ghost}]),
            "[1].destination_id",
        ),
        (
            json!([{"destination_id": a}, {"destination_id": a}]),
            "[1].destination_id",
        ),
        (
            json!([{"destination_id": a, "weight": 1_000_001}]),
            "[0].weight",
        ),
        (json!([{"destination_id": a, "cap": 1}]), "[0].cap"),
        (json!({"destination_id": a}), ""),
    ] {
        refused(&app, Method::PUT, &dests, body, f).await;
    }

    let first = links(&app, &id, json!([
        {"destination_id": a, "priority": 1, "weight": 2, "concurrency_cap": 3, "total_cap": 100},
        {"destination_id": b},
    ]))
    .await;
    let l0 = &first[0];
    assert_eq!(
        (
            &l0["priority"],
            &l0["weight"],
            &l0["concurrency_cap"],
            &l0["total_cap"],
            &l0["active"]
        ),
        (&json!(1), &json!(2), &json!(3), &json!(100), &json!(true))
    );
    assert_eq!(
        (&first[1]["priority"], &first[1]["weight"]),
        (&json!(0), &json!(1)),
        "defaults"
    );
    assert_eq!(first[1]["concurrency_cap"], Value::Null);
    assert_eq!(
        (&l0["active_calls"], &l0["total_calls"]),
        (&json!(0), &json!(0))
    );

    // Route one call so a counter moves, then reorder: the link that stays keeps it.
    let key = routing::key_with(&app, &["telephony"]).await;
    did(&app, &fr(1), &id).await;
    let r = routing::route(&app, &key, &fr(1), "keep-1").await;
    assert_eq!(r["action"], "route", "{r}");
    let second = links(
        &app,
        &id,
        json!([{"destination_id": b, "weight": 5}, {"destination_id": a, "weight": 2}]),
    )
    .await;
    assert_eq!(second[1]["id"], l0["id"], "the link of `a` keeps its id");
    let moved = second
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["total_calls"].as_u64().unwrap())
        .sum::<u64>();
    assert_eq!(moved, 1, "the counter stays: {second}");
    assert_eq!(routing::counters(&app, &id).await, second);

    // A DID keeps its campaign, a link its destination.
    let (s, v) = call(&app, Method::DELETE, &format!("{p}/{id}"), None).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    let (s, v) = call(
        &app,
        Method::DELETE,
        &format!("/api/v1/destinations/{a}"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    let third = links(&app, &id, json!([{"destination_id": b, "weight": 5}])).await;
    assert_eq!(third.as_array().unwrap().len(), 1);
    let (s, _) = call(
        &app,
        Method::DELETE,
        &format!("/api/v1/destinations/{a}"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);

    let (s, list) = app.get(p).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_numbers_are_e164_unique_and_point_to_what_exists() {
    let app = TestApp::spawn().await;
    app.queue(json!({"id": "support"})).await;
    let c = campaign(&app, json!({})).await;
    let p = "/api/v1/phone-numbers";
    let ghost = uuid::Uuid::now_v7().to_string();
    for (body, f) in [
        (json!({"campaign_id": c}), "number"),
        (json!({"number": fr(1)}), "queue_id"),
        (
            json!({"number": fr(1), "queue_id": "support", "campaign_id": c}),
            "campaign_id",
        ),
        (json!({"number": fr(1), "queue_id": "nope"}), "queue_id"),
        (json!({"number": fr(1), "queue_id": "bad id"}), "queue_id"),
        (
            json!({"number": fr(1), "campaign_id": ghost}),
            "campaign_id",
        ),
        (json!({"number": fr(1), "campaign_id": "x"}), "campaign_id"),
        (json!({"number": "12", "campaign_id": c}), "number"),
        (
            json!({"number": "01 23 45 00 01", "campaign_id": c}),
            "number",
        ),
        (
            json!({"number": fr(1), "campaign_id": c, "name": "a\u{202E}b"}),
            "name",
        ),
    ] {
        refused(&app, Method::POST, p, body, f).await;
    }
    let (s, d) = app
        .post(
            p,
            &json!({"number": "+33 1 23 45 00 01", "campaign_id": c, "name": "Main",
            "notes": "line 1\nline 2"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{d}");
    assert_eq!(d["number"], fr(1), "stored as E.164");
    assert_eq!(d["notes"], "line 1\nline 2");
    let id = d["id"].as_str().unwrap().to_owned();

    // The same number, written another way, is taken.
    app.patch("/api/v1/tenant", &json!({"default_region": "FR"}))
        .await;
    let (s, v) = app
        .post(
            p,
            &json!({"number": "01 23 45 00 01", "queue_id": "support"}),
        )
        .await;
    assert_eq!((s, field(&v)), (StatusCode::CONFLICT, "number"), "{v}");
    let other = did(&app, &fr(2), &c).await;
    let (s, v) = app
        .patch(&format!("{p}/{other}"), &json!({"number": fr(1)}))
        .await;
    assert_eq!((s, field(&v)), (StatusCode::CONFLICT, "number"), "{v}");

    // Pointing to a queue drops the campaign.
    let (s, q) = app
        .patch(
            &format!("{p}/{id}"),
            &json!({"queue_id": "support", "active": false}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{q}");
    assert_eq!(
        (&q["queue_id"], &q["campaign_id"], &q["active"]),
        (&json!("support"), &Value::Null, &json!(false))
    );
    assert_eq!(q["name"], "Main");
    refused(
        &app,
        Method::PATCH,
        &format!("{p}/{id}"),
        json!({"queue_id": "nope"}),
        "queue_id",
    )
    .await;

    let (s, _) = call(&app, Method::DELETE, &format!("{p}/{id}"), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app.get(&format!("{p}/{id}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, list) = app.get(p).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list["items"][0]["number"], fr(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenants_routing_is_not_found_and_not_usable() {
    let app = TestApp::spawn().await;
    let b_key = app.other_tenant("bravo").await;
    let b = Cred::Key(b_key.clone());
    let mk = async |path: &str, body: Value| {
        let (s, v, _) = app.call_as(&b, Method::POST, path, Some(&body)).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["id"].as_str().unwrap().to_owned()
    };
    let b_dest = mk(
        "/api/v1/destinations",
        json!({"name": "B", "sip_uri": "sip:b@h"}),
    )
    .await;
    let b_camp = mk("/api/v1/campaigns", json!({"name": "B"})).await;
    let b_did = mk(
        "/api/v1/phone-numbers",
        json!({"number": fr(9), "campaign_id": b_camp}),
    )
    .await;

    let ghost = uuid::Uuid::now_v7().to_string();
    for (m, tpl, body) in [
        (Method::GET, "/api/v1/destinations/{}", None),
        (
            Method::PATCH,
            "/api/v1/destinations/{}",
            Some(json!({"name": "x"})),
        ),
        (Method::DELETE, "/api/v1/destinations/{}", None),
        (Method::GET, "/api/v1/campaigns/{}", None),
        (
            Method::PATCH,
            "/api/v1/campaigns/{}",
            Some(json!({"name": "x"})),
        ),
        (Method::DELETE, "/api/v1/campaigns/{}", None),
        (Method::GET, "/api/v1/campaigns/{}/destinations", None),
        (
            Method::PUT,
            "/api/v1/campaigns/{}/destinations",
            Some(json!([])),
        ),
        (Method::GET, "/api/v1/phone-numbers/{}", None),
        (
            Method::PATCH,
            "/api/v1/phone-numbers/{}",
            Some(json!({"active": false})),
        ),
        (Method::DELETE, "/api/v1/phone-numbers/{}", None),
    ] {
        let victim = match tpl {
            t if t.contains("destinations/{}") && !t.contains("campaigns") => &b_dest,
            t if t.contains("campaigns") => &b_camp,
            _ => &b_did,
        };
        let (s, v) = call(&app, m.clone(), &tpl.replace("{}", victim), body.clone()).await;
        let (gs, gv) = call(&app, m.clone(), &tpl.replace("{}", &ghost), body).await;
        assert_eq!(
            (s, gs),
            (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND),
            "{m} {tpl}: {v}"
        );
        assert_eq!(
            v.to_string().replace(victim, "<id>"),
            gv.to_string().replace(&ghost, "<id>")
        );
    }
    // B's campaign and destination cannot be used from A either.
    let a_camp = campaign(&app, json!({})).await;
    refused(
        &app,
        Method::POST,
        "/api/v1/phone-numbers",
        json!({"number": fr(1), "campaign_id": b_camp}),
        "campaign_id",
    )
    .await;
    refused(
        &app,
        Method::PUT,
        &format!("/api/v1/campaigns/{a_camp}/destinations"),
        json!([{"destination_id": b_dest}]),
        "[0].destination_id",
    )
    .await;
    // A may hold the same number as B.
    did(&app, &fr(9), &a_camp).await;
    for path in [
        "/api/v1/destinations",
        "/api/v1/campaigns",
        "/api/v1/phone-numbers",
    ] {
        let (_, v) = app.get(path).await;
        for id in [&b_dest, &b_camp, &b_did] {
            assert!(
                !v.to_string().contains(id.as_str()),
                "{path} shows B's {id}: {v}"
            );
        }
    }
    // B's things are unchanged.
    let (s, v, _) = app
        .call_as(
            &b,
            Method::GET,
            &format!("/api/v1/phone-numbers/{b_did}"),
            None,
        )
        .await;
    assert_eq!((s, &v["active"]), (StatusCode::OK, &json!(true)), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_is_audited_and_scopes_are_enforced() {
    let app = TestApp::spawn().await;
    let c = campaign(&app, json!({"name": "Audited"})).await;
    let d = destination(&app, "aud").await;
    links(&app, &c, json!([{"destination_id": d}])).await;
    let n = did(&app, &fr(3), &c).await;
    app.patch(&format!("/api/v1/campaigns/{c}"), &json!({"active": false}))
        .await;
    call(
        &app,
        Method::DELETE,
        &format!("/api/v1/phone-numbers/{n}"),
        None,
    )
    .await;
    let (s, v) = app.get("/api/v1/audit?limit=500").await;
    assert_eq!(s, StatusCode::OK);
    let actions: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in [
        "campaign.create",
        "destination.create",
        "campaign.destinations_update",
        "phone_number.create",
        "campaign.deactivate",
        "phone_number.delete",
    ] {
        assert!(actions.contains(&a), "{a} missing from {actions:?}");
    }

    let read = Cred::Key(routing::key_with(&app, &["routing:read"]).await);
    let (s, _, _) = app
        .call_as(&read, Method::GET, "/api/v1/campaigns", None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, v, _) = app
        .call_as(
            &read,
            Method::POST,
            "/api/v1/campaigns",
            Some(&json!({"name": "x"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(v.to_string().contains("routing:write"), "{v}");
    let tel = Cred::Key(routing::key_with(&app, &["telephony"]).await);
    let (s, _, _) = app
        .call_as(&tel, Method::GET, "/api/v1/destinations", None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}
