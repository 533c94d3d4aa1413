//! The call-seller platform's Asterisk routes (issue 7 item 7) through the real server: the
//! key in `X-Internal-API-Token`, `route_info`'s exact shape and reject reasons, `log_call`'s
//! answers, its validation errors field by field, a repeated `asteriskUniqueid`, and the slot
//! `route_info` reserves and `log_call` gives back. Runs on SQLite, and on PostgreSQL with
//! `TEST_DATABASE_URL`.

#[path = "support/routing.rs"]
mod routing;
mod support;

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use routing::{fr, key_with, load, routed_did};
use support::{urlencode, TestApp};

/// Sends with the key in `X-Internal-API-Token` (when given); answers status, body, headers.
async fn compat(
    app: &TestApp,
    token: Option<&str>,
    m: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    let mut rb = app.client.request(m, app.url(path));
    if let Some(t) = token {
        rb = rb.header("X-Internal-API-Token", t);
    }
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let r = rb.send().await.expect("request");
    let (s, h) = (r.status(), r.headers().clone());
    let text = r.text().await.unwrap_or_default();
    (
        s,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
        h,
    )
}

async fn route_info(app: &TestApp, token: &str, did: &str) -> (StatusCode, Value) {
    let path = format!("/api/internal/route_info?did={}", urlencode(did));
    let (s, v, _) = compat(app, Some(token), Method::GET, &path, None).await;
    (s, v)
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn log(uniqueid: &str, link: Option<&str>) -> Value {
    let mut v = json!({
        "incomingDidNumber": fr(1), "timestampStart": "2026-11-24T10:00:00",
        "callStatus": "ANSWERED", "asteriskUniqueid": uniqueid,
        "callerIdNum": "0612345678", "callerIdName": "Jane", "timestampAnswered": "2026-11-24T10:00:05Z",
        "timestampEnd": "2026-11-24 10:01:05", "durationSeconds": 65, "billsecSeconds": "60",
        "hangupCauseCode": 16, "hangupCauseText": "Normal Clearing", "asteriskLinkedid": uniqueid,
        "userId": null, "campaignId": null, "didId": null, "clientId": null, "extra": "ignored",
    });
    if let Some(l) = link {
        v["campaignClientSettingId"] = json!(l);
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_info_answers_the_platforms_shape_with_the_internal_token() {
    let app = TestApp::spawn().await;
    let token = key_with(&app, &["telephony"]).await;
    let (c, dests) = routed_did(
        &app,
        &fr(1),
        json!({"strategy": "round_robin", "dial_timeout_s": 45}),
        &["acme"],
        |_| json!({"priority": 2, "weight": 7, "concurrency_cap": 3}),
    )
    .await;
    app.patch(&format!("/api/v1/destinations/{}", dests[0]), &json!({
        "client_identifier": "acme-ep", "outbound_auth": "acme-auth", "callerid_override": "+33100000000",
        "context": "from-sellers", "transport": "transport-udp"}))
        .await;
    let (s, v) = route_info(&app, &token, &fr(1)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(keys(&v), set(&["status", "routingInfo"]));
    assert_eq!(v["status"], "proceed");
    let info = &v["routingInfo"];
    assert_eq!(
        keys(info),
        set(&[
            "user_id",
            "campaign_id",
            "did_id",
            "routing_strategy",
            "dial_timeout_seconds",
            "targets"
        ])
    );
    assert_eq!(
        (
            &info["campaign_id"],
            &info["routing_strategy"],
            &info["dial_timeout_seconds"]
        ),
        (&json!(c), &json!("round_robin"), &json!(45))
    );
    let (_, me) = app.get("/api/v1/auth/me").await;
    assert_eq!(info["user_id"], me["tenant_id"]);
    let targets = info["targets"].as_array().unwrap();
    assert_eq!(
        targets.len(),
        1,
        "one target: the one whose slot is reserved"
    );
    let t = &targets[0];
    assert_eq!(
        keys(t),
        set(&[
            "campaignClientSettingId",
            "client_id",
            "client_identifier",
            "client_name",
            "sip_uri",
            "max_concurrency",
            "weight",
            "priority",
            "outbound_auth",
            "callerid_override",
            "context",
            "transport"
        ])
    );
    let link = routing::counters(&app, &c).await[0].clone();
    assert_eq!(t["campaignClientSettingId"], link["id"]);
    assert_eq!(
        (
            &t["client_id"],
            &t["client_identifier"],
            &t["client_name"],
            &t["sip_uri"]
        ),
        (
            &json!(dests[0]),
            &json!("acme-ep"),
            &json!("acme"),
            &json!("sip:acme@127.0.0.1")
        )
    );
    assert_eq!(
        (&t["max_concurrency"], &t["weight"], &t["priority"]),
        (&json!(3), &json!(7), &json!(2))
    );
    assert_eq!(
        (
            &t["outbound_auth"],
            &t["callerid_override"],
            &t["context"],
            &t["transport"]
        ),
        (
            &json!("acme-auth"),
            &json!("+33100000000"),
            &json!("from-sellers"),
            &json!("transport-udp")
        )
    );
    assert_eq!(load(&app, &c).await, [(1, 1)], "a slot is reserved");

    // The usual headers work too; no key, a bad key or a key without `telephony` do not.
    let (s, _, _) = app
        .call_as(
            &support::Cred::Key(token.clone()),
            Method::GET,
            &format!("/api/internal/route_info?did={}", urlencode(&fr(1))),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let path = format!("/api/internal/route_info?did={}", urlencode(&fr(1)));
    let (s, v, h) = compat(&app, None, Method::GET, &path, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(v["status"], "error", "{v}");
    assert!(h["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("X-Internal-API-Token"));
    let (s, v, _) = compat(&app, Some("sb_nope"), Method::GET, &path, None).await;
    assert_eq!(
        (s, &v["status"]),
        (StatusCode::UNAUTHORIZED, &json!("error")),
        "{v}"
    );
    let reader = key_with(&app, &["routing:read"]).await;
    let (s, v, _) = compat(&app, Some(&reader), Method::GET, &path, None).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert!(v["message"].as_str().unwrap().contains("telephony"), "{v}");
    // The token header counts only here.
    let r = app
        .client
        .get(app.url("/api/v1/campaigns"))
        .header("X-Internal-API-Token", &app.key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

async fn expect_reject(app: &TestApp, token: &str, did: &str, reason: &str) {
    let (s, v) = route_info(app, token, did).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{reason}: {v}");
    assert_eq!(v, json!({"status": "reject", "rejectReason": reason}));
}

async fn patched(app: &TestApp, path: &str, body: Value) {
    let (s, v) = app.patch(path, &body).await;
    assert_eq!(s, StatusCode::OK, "{path}: {v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_info_rejects_with_the_platforms_reasons() {
    let app = TestApp::spawn().await;
    let token = key_with(&app, &["telephony"]).await;
    let (s, v, _) = compat(
        &app,
        Some(&token),
        Method::GET,
        "/api/internal/route_info",
        None,
    )
    .await;
    assert_eq!(
        (s, &v["status"]),
        (StatusCode::BAD_REQUEST, &json!("error")),
        "{v}"
    );
    expect_reject(&app, &token, "hello", "invalid_did_input").await;
    expect_reject(&app, &token, &fr(1), "did_not_found").await;

    let (c, dests) = routed_did(
        &app,
        &fr(1),
        json!({}),
        &["a"],
        |_| json!({"concurrency_cap": 1}),
    )
    .await;
    let dids = app.get("/api/v1/phone-numbers").await.1;
    let did_path = format!(
        "/api/v1/phone-numbers/{}",
        dids["items"][0]["id"].as_str().unwrap()
    );
    let camp_path = format!("/api/v1/campaigns/{c}");
    let dest_path = format!("/api/v1/destinations/{}", dests[0]);
    for (path, reason) in [
        (&did_path, "did_inactive"),
        (&camp_path, "no_active_campaign_for_did"),
        (&dest_path, "no_active_clients_in_campaign"),
    ] {
        patched(&app, path, json!({"active": false})).await;
        expect_reject(&app, &token, &fr(1), reason).await;
        patched(&app, path, json!({"active": true})).await;
    }
    let (s, v) = route_info(&app, &token, &fr(1)).await;
    assert_eq!(
        (s, &v["status"]),
        (StatusCode::OK, &json!("proceed")),
        "{v}"
    );
    expect_reject(&app, &token, &fr(1), "no_eligible_clients_available").await;
    routing::links(&app, &c, json!([])).await;
    expect_reject(&app, &token, &fr(1), "no_active_clients_in_campaign").await;

    // A queue DID has no campaign.
    app.queue(json!({"id": "support"})).await;
    app.post(
        "/api/v1/phone-numbers",
        &json!({"number": fr(2), "queue_id": "support"}),
    )
    .await;
    expect_reject(&app, &token, &fr(2), "no_active_campaign_for_did").await;
    // A national number in the tenant's region is the same DID.
    patched(&app, "/api/v1/tenant", json!({"default_region": "FR"})).await;
    expect_reject(&app, &token, "01 23 45 00 02", "no_active_campaign_for_did").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_call_records_once_and_gives_the_slot_back() {
    let app = TestApp::spawn().await;
    let token = key_with(&app, &["telephony"]).await;
    let (c, dests) = routed_did(
        &app,
        &fr(1),
        json!({}),
        &["a"],
        |_| json!({"concurrency_cap": 1}),
    )
    .await;
    let (s, v) = route_info(&app, &token, &fr(1)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let link = v["routingInfo"]["targets"][0]["campaignClientSettingId"]
        .as_str()
        .unwrap()
        .to_owned();
    expect_reject(&app, &token, &fr(1), "no_eligible_clients_available").await;
    assert_eq!(load(&app, &c).await, [(1, 1)]);

    let (s, v, _) = compat(
        &app,
        Some(&token),
        Method::POST,
        "/api/internal/log_call",
        Some(log("1700000000.1", Some(&link))),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(keys(&v), set(&["status", "message", "cdrId"]));
    assert_eq!(
        (&v["status"], &v["message"]),
        (&json!("success"), &json!("CDR logged successfully"))
    );
    assert_eq!(load(&app, &c).await, [(0, 1)], "the slot is back");
    let (s, v2) = route_info(&app, &token, &fr(1)).await;
    assert_eq!(s, StatusCode::OK, "{v2}");

    // The CDR as the API shows it.
    let (_, list) = app.get("/api/v1/cdrs").await;
    let cdr = &list["items"][0];
    assert_eq!(cdr["id"], v["cdrId"]);
    assert_eq!(
        (
            &cdr["call_id"],
            &cdr["source"],
            &cdr["status"],
            &cdr["raw_status"]
        ),
        (
            &json!("1700000000.1"),
            &json!("compat"),
            &json!("answered"),
            &json!("ANSWERED")
        )
    );
    assert_eq!(
        (&cdr["link_id"], &cdr["destination_id"], &cdr["campaign_id"]),
        (&json!(link), &json!(dests[0]), &json!(c))
    );
    assert_eq!(
        (&cdr["did"], &cdr["caller_id_num"], &cdr["caller_id_name"]),
        (&json!(fr(1)), &json!("0612345678"), &json!("Jane"))
    );
    assert_eq!(
        (&cdr["started_at"], &cdr["ended_at"]),
        (
            &json!("2026-11-24T10:00:00Z"),
            &json!("2026-11-24T10:01:05Z")
        )
    );
    assert_eq!(
        (
            &cdr["duration_s"],
            &cdr["billsec_s"],
            &cdr["hangup_cause_code"]
        ),
        (&json!(65), &json!(60), &json!(16))
    );

    // The same uniqueid again: 409, nothing released.
    let (s, v, _) = compat(
        &app,
        Some(&token),
        Method::POST,
        "/api/internal/log_call",
        Some(log("1700000000.1", Some(&link))),
    )
    .await;
    assert_eq!(
        (s, &v["status"]),
        (StatusCode::CONFLICT, &json!("error")),
        "{v}"
    );
    assert_eq!(
        load(&app, &c).await,
        [(1, 2)],
        "route_info's second slot is still held"
    );
    // Without campaignClientSettingId nothing is released; a status Asterisk may send maps.
    let mut busy = log("1700000000.2", None);
    busy["callStatus"] = json!("BUSY");
    let (s, _, _) = compat(
        &app,
        Some(&token),
        Method::POST,
        "/api/internal/log_call",
        Some(busy),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(load(&app, &c).await, [(1, 2)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_call_names_every_invalid_field() {
    let app = TestApp::spawn().await;
    let token = key_with(&app, &["telephony"]).await;
    let post = async |body: Value| {
        compat(
            &app,
            Some(&token),
            Method::POST,
            "/api/internal/log_call",
            Some(body),
        )
        .await
    };
    let (s, v, _) = post(json!({})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        (&v["status"], &v["message"]),
        (&json!("error"), &json!("Invalid CDR data"))
    );
    assert_eq!(
        keys(&v["errors"]),
        set(&[
            "incomingDidNumber",
            "timestampStart",
            "callStatus",
            "asteriskUniqueid"
        ])
    );
    assert_eq!(
        v["errors"]["callStatus"],
        json!(["Missing data for required field."])
    );

    for (field, value, message) in [
        (
            "timestampStart",
            json!("yesterday"),
            "Not a valid datetime.",
        ),
        (
            "timestampEnd",
            json!("2026-13-01T00:00:00"),
            "Not a valid datetime.",
        ),
        (
            "durationSeconds",
            json!(-1),
            "Must be greater than or equal to 0.",
        ),
        ("billsecSeconds", json!("ten"), "Not a valid integer."),
        (
            "asteriskUniqueid",
            json!("x".repeat(51)),
            "Longer than maximum length 50.",
        ),
        (
            "callerIdName",
            json!("x".repeat(101)),
            "Longer than maximum length 100.",
        ),
        ("callStatus", json!(3), "Not a valid string."),
        ("asteriskUniqueid", json!(null), "Field may not be null."),
        ("campaignClientSettingId", json!("7"), "Not a valid UUID."),
    ] {
        let mut body = log("1700000001.1", None);
        body[field] = value.clone();
        let (s, v, _) = post(body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{field}={value}: {v}");
        assert_eq!(v["errors"], json!({field: [message]}), "{field}={value}");
    }
    // A link of nobody (or of another tenant) is refused by name.
    let ghost = uuid::Uuid::now_v7().to_string();
    let (s, v, _) = post(log("1700000001.2", Some(&ghost))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["errors"]["campaignClientSettingId"].is_array(), "{v}");
    // Not JSON at all.
    let r = app
        .client
        .post(app.url("/api/internal/log_call"))
        .header("X-Internal-API-Token", &token)
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["message"], "Invalid CDR data");
    // Nothing was recorded.
    let (_, list) = app.get("/api/v1/cdrs").await;
    assert_eq!(list["items"], json!([]));
}
