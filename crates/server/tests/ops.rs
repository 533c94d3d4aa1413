//! Operational edges against the real server: 405 answers, the bootstrap key's minimum length
//! and what the store keeps of a key in the clear.

mod support;

use serde_json::Value;
use support::TestApp;
use switchboard_server::{Secret, Settings};
use switchboard_store::hash_api_key;

#[tokio::test]
async fn a_known_path_with_another_method_is_405_problem_json_with_allow() {
    let app = TestApp::spawn().await;
    for (method, path, allow) in [
        (reqwest::Method::DELETE, "/api/v1/events", "POST"),
        (reqwest::Method::GET, "/api/v1/events/batch", "POST"),
        (reqwest::Method::PUT, "/api/v1/tenant", "GET,HEAD,PATCH"),
        (reqwest::Method::POST, "/metrics", "GET,HEAD"),
    ] {
        let r = app
            .client
            .request(method.clone(), app.url(path))
            .header("X-API-Key", &app.key)
            .send()
            .await
            .unwrap();
        let ctx = format!("{method} {path}");
        assert_eq!(r.status(), 405, "{ctx}");
        assert_eq!(
            r.headers()["content-type"],
            "application/problem+json",
            "{ctx}"
        );
        let mut allowed: Vec<String> = r.headers()["allow"]
            .to_str()
            .unwrap()
            .split(',')
            .map(|m| m.trim().to_owned())
            .collect();
        allowed.sort();
        assert_eq!(allowed.join(","), allow, "{ctx}");
        let p: Value = r.json().await.unwrap();
        assert_eq!(p["status"], 405, "{ctx}: {p}");
        assert_eq!(p["type"], "urn:switchboard:problem:method-not-allowed");
        let detail = p["detail"].as_str().unwrap();
        assert!(
            detail.contains(path) && detail.contains(method.as_str()),
            "{p}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn a_bootstrap_key_under_32_characters_refuses_start_up() {
    let (db, _dir) = support::fresh_db().await;
    let settings = |key: &str| Settings {
        listen: ([127, 0, 0, 1], 0).into(),
        data_dir: std::env::temp_dir(),
        database_url: Some(db.clone()),
        bootstrap_api_key: Some(Secret(key.to_owned())),
        ..Settings::default()
    };
    let short = "k".repeat(31);
    let e = match switchboard_server::build(&settings(&short)).await {
        Ok(_) => panic!("a 31-character bootstrap key was accepted"),
        Err(e) => e.to_string(),
    };
    assert!(
        e.contains("SWITCHBOARD_BOOTSTRAP_API_KEY") && e.contains("at least 32"),
        "{e}"
    );
    assert!(
        !e.contains(&short),
        "the message must not echo the key: {e}"
    );
    let app = switchboard_server::build(&settings(&"k".repeat(32)))
        .await
        .expect("a 32-character key is enough");
    assert!(app.bootstrapped.is_some());
    app.state.engine.shutdown().await;
}

#[tokio::test]
async fn the_stored_prefix_never_holds_more_than_a_quarter_of_the_key() {
    let app = TestApp::spawn().await;
    let store = &app.state.store;
    let info = store
        .api_key_by_hash(&hash_api_key(&app.key))
        .await
        .expect("bootstrap key stored");
    assert!(
        !info.prefix.is_empty() && info.prefix.len() * 4 <= app.key.len(),
        "{} of {}",
        info.prefix,
        app.key
    );
    assert!(app.key.starts_with(&info.prefix));
    // A short key (created through the store, which takes any length) keeps even less.
    let tenant = store.tenant_by_slug("default").await.unwrap();
    for key in ["abcdefghij", "abc", "sb_0123456789abcdef"] {
        let new = switchboard_store::NewApiKey {
            name: "short".into(),
            key: key.into(),
            scopes: switchboard_core::ScopeSet::TENANT,
            expires_at: None,
            rate_limit: None,
        };
        let k = store
            .create_api_key(
                tenant.id,
                &new,
                &switchboard_store::Actor::system("test"),
                0,
            )
            .await
            .unwrap();
        assert!(k.prefix.len() * 4 <= key.len(), "{key}: {}", k.prefix);
    }
    app.stop().await;
}
