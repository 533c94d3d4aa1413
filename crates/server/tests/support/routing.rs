//! Helpers of the call-seller routing tests (`campaigns.rs`, `route_api.rs`, `compat.rs`):
//! destinations, campaigns with links, DIDs and telephony keys made through the API.
//! Included with `#[path]` beside `mod support;`.
#![allow(dead_code)]

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{urlencode, Cred, TestApp};

/// Valid French geographic numbers (libphonenumber knows `+33 1 …` as fixed lines).
pub fn fr(n: u32) -> String {
    format!("+3312345{n:04}")
}

/// A key with exactly `scopes`, made with the bootstrap key.
pub async fn key_with(app: &TestApp, scopes: &[&str]) -> String {
    app.create_key(
        &Cred::Key(app.key.clone()),
        json!({"name": format!("k-{}", scopes.join("-")), "scopes": scopes}),
    )
    .await
}

/// Sends with the bootstrap key; answers status and body.
pub async fn call(
    app: &TestApp,
    m: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    app.send(m, path, body.as_ref()).await
}

/// Creates a destination at `sip:<name>@127.0.0.1`; answers its id.
pub async fn destination(app: &TestApp, name: &str) -> String {
    let (s, v) = app
        .post(
            "/api/v1/destinations",
            &json!({"name": name, "sip_uri": format!("sip:{name}@127.0.0.1")}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "destination {name}: {v}");
    v["id"].as_str().unwrap().to_owned()
}

/// Creates a campaign with `body` (`name` added when missing); answers its id.
pub async fn campaign(app: &TestApp, mut body: Value) -> String {
    if body.get("name").is_none() {
        body["name"] = json!("campaign");
    }
    let (s, v) = app.post("/api/v1/campaigns", &body).await;
    assert_eq!(s, StatusCode::CREATED, "campaign {body}: {v}");
    v["id"].as_str().unwrap().to_owned()
}

/// Replaces a campaign's links; asserts 200; answers the list.
pub async fn links(app: &TestApp, campaign: &str, links: Value) -> Value {
    let (s, v) = call(
        app,
        Method::PUT,
        &format!("/api/v1/campaigns/{campaign}/destinations"),
        Some(links),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "links: {v}");
    v
}

/// A campaign's links with counters.
pub async fn counters(app: &TestApp, campaign: &str) -> Value {
    let (s, v) = app
        .get(&format!("/api/v1/campaigns/{campaign}/destinations"))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

/// Creates a DID routing to `campaign`; answers its id.
pub async fn did(app: &TestApp, number: &str, campaign: &str) -> String {
    let (s, v) = app
        .post(
            "/api/v1/phone-numbers",
            &json!({"number": number, "campaign_id": campaign}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "did {number}: {v}");
    v["id"].as_str().unwrap().to_owned()
}

/// A campaign `body` with destinations `names` linked by `link(i)` and DID `number`; answers
/// the campaign's id and the destinations' ids.
pub async fn routed_did(
    app: &TestApp,
    number: &str,
    body: Value,
    names: &[&str],
    link: impl Fn(usize) -> Value,
) -> (String, Vec<String>) {
    let c = campaign(app, body).await;
    let mut ids = Vec::new();
    let mut list = Vec::new();
    for (i, n) in names.iter().enumerate() {
        let d = destination(app, n).await;
        let mut l = link(i);
        l["destination_id"] = json!(d);
        list.push(l);
        ids.push(d);
    }
    links(app, &c, Value::Array(list)).await;
    did(app, number, &c).await;
    (c, ids)
}

/// The route API's raw answer: status, body text, and the body parsed (when it is JSON).
pub async fn route_raw(
    app: &TestApp,
    key: &str,
    did: &str,
    call_id: &str,
) -> (StatusCode, String, Value) {
    let path = format!(
        "/api/v1/internal/route?did={}&from=%2B33999999999&call_id={}",
        urlencode(did),
        urlencode(call_id)
    );
    let r = app
        .client
        .get(app.url(&path))
        .header("X-API-Key", key)
        .send()
        .await
        .expect("route request");
    let s = r.status();
    let text = r.text().await.expect("body");
    let v = serde_json::from_str(text.trim_end()).unwrap_or(Value::Null);
    (s, text, v)
}

/// The route API's decision (asserting 200 and one line ending in `\n`).
pub async fn route(app: &TestApp, key: &str, did: &str, call_id: &str) -> Value {
    let (s, text, v) = route_raw(app, key, did, call_id).await;
    assert_eq!(s, StatusCode::OK, "route {did} {call_id}: {text}");
    assert!(
        text.ends_with('\n') && text.matches('\n').count() == 1,
        "one line ending in a line feed: {text:?}"
    );
    v
}

/// The destination a route decision sent the call to (`sip:<name>@…` → `name`), or `None`
/// for a reject.
pub fn routed_to(v: &Value) -> Option<String> {
    if v["action"] != "route" {
        return None;
    }
    let t = v["targets"][0].as_str()?;
    Some(t.trim_start_matches("sip:").split('@').next()?.to_owned())
}

/// Posts a CDR with `key`; answers status and body.
pub async fn cdr(app: &TestApp, key: &str, call_id: &str, status: &str) -> (StatusCode, Value) {
    let body = json!({"call_id": call_id, "status": status, "started_at": "2026-11-24T10:00:00Z",
        "ended_at": "2026-11-24T10:01:00Z", "duration_s": 60, "billsec_s": 50,
        "hangup_cause": "Normal Clearing"});
    let (s, v, _) = app
        .call_as(
            &Cred::Key(key.to_owned()),
            Method::POST,
            "/api/v1/internal/cdr",
            Some(&body),
        )
        .await;
    (s, v)
}

/// `active_calls` and `total_calls` of each link, in list order.
pub async fn load(app: &TestApp, campaign: &str) -> Vec<(u64, u64)> {
    counters(app, campaign)
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["active_calls"].as_u64().unwrap(),
                l["total_calls"].as_u64().unwrap(),
            )
        })
        .collect()
}
