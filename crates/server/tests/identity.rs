//! People and access through the real server: login, token checks, refresh rotation and reuse
//! detection, logout, lockout, per-key rate limits, revocation and deactivation taking effect
//! on the next request, the audit log, tenants created at runtime, and the stream closing when
//! its credential goes. Runs on SQLite, and on PostgreSQL with `TEST_DATABASE_URL`.

mod support;

use std::time::Duration;

use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use support::{Cred, TestApp, ADMIN_PASSWORD, USER_PASSWORD};
use switchboard_core::Role;
use switchboard_server::auth::tokens::{SigningKey, TokenKeys, ACCESS_TTL_S};
use switchboard_server::Secret;

const SECRET: &str = "test-secret-test-secret-test-secret-0123";

async fn spawn() -> TestApp {
    TestApp::spawn_with(|s| s.jwt.secret = Some(Secret(SECRET.to_owned()))).await
}

fn bearer(t: &str) -> Cred {
    Cred::Bearer(t.to_owned())
}

async fn me(app: &TestApp, cred: &Cred) -> (StatusCode, Value) {
    let (s, v, _) = app
        .call_as(cred, Method::GET, "/api/v1/auth/me", None)
        .await;
    (s, v)
}

fn now_s() -> i64 {
    switchboard_core::time::now_ms() / 1000
}

#[tokio::test]
async fn the_bootstrap_admin_logs_in_and_the_token_works_like_a_key() {
    let app = spawn().await;
    let (s, v) = app.login("ADMIN@localhost", ADMIN_PASSWORD, None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], ACCESS_TTL_S);
    assert!(v["refresh_token"].as_str().unwrap().starts_with("sbr_"));
    let token = v["access_token"].as_str().unwrap();
    let (s, m) = me(&app, &bearer(token)).await;
    assert_eq!(s, StatusCode::OK, "{m}");
    assert_eq!(m["kind"], "user");
    assert_eq!(m["role"], "platform_admin");
    assert_eq!(m["name"], "admin@localhost");
    let (s, _, _) = app
        .call_as(&bearer(token), Method::GET, "/api/v1/calls", None)
        .await;
    assert_eq!(s, StatusCode::OK);
    // The same request with the key.
    let (s, m) = me(&app, &Cred::Key(app.key.clone())).await;
    assert_eq!((s, m["kind"].as_str()), (StatusCode::OK, Some("api_key")));
    app.stop().await;
}

#[tokio::test]
async fn wrong_passwords_and_unknown_accounts_get_the_same_answer() {
    let app = spawn().await;
    let (s1, v1) = app
        .login("admin@localhost", "not-the-password-at-all", None)
        .await;
    let (s2, v2) = app
        .login("nobody@example.com", "not-the-password-at-all", None)
        .await;
    assert_eq!(
        (s1, s2),
        (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED)
    );
    assert_eq!(v1["detail"], v2["detail"]);
    let (s, v) = app
        .login("admin@localhost", ADMIN_PASSWORD, Some("no-such-tenant"))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert_eq!(v["detail"], v1["detail"]);
    app.stop().await;
}

#[tokio::test]
async fn expired_tampered_and_wrongly_signed_tokens_are_refused_with_a_challenge() {
    let app = spawn().await;
    let admin = app.admin_token().await;
    let (_, m) = me(&app, &bearer(&admin)).await;
    let sub: Uuid = m["id"].as_str().unwrap().parse().unwrap();
    let tid: Uuid = m["tenant_id"].as_str().unwrap().parse().unwrap();
    let ours = TokenKeys::new(
        SigningKey::Hs256 {
            secret: SECRET.as_bytes().to_vec(),
        },
        None,
        0,
    )
    .unwrap();
    // Signed with the server's key, but issued two lifetimes ago.
    let (expired, _) = ours.issue(sub, tid, Role::PlatformAdmin, now_s() - 2 * ACCESS_TTL_S);
    let other = TokenKeys::new(
        SigningKey::Hs256 {
            secret: b"another-secret-another-secret-0123456".to_vec(),
        },
        None,
        0,
    )
    .unwrap();
    let (foreign, _) = other.issue(sub, tid, Role::PlatformAdmin, now_s());
    // Change one character of the payload: the signature no longer matches.
    let mut parts: Vec<String> = admin.split('.').map(str::to_owned).collect();
    let mut payload: Vec<char> = parts[1].chars().collect();
    payload[5] = if payload[5] == 'A' { 'B' } else { 'A' };
    parts[1] = payload.into_iter().collect();
    let tampered = parts.join(".");
    // A well-signed token for a user that does not exist.
    let (ghost, _) = ours.issue(Uuid::now_v7(), tid, Role::PlatformAdmin, now_s());
    for (what, t) in [
        ("expired", expired.as_str()),
        ("foreign", &foreign),
        ("tampered", &tampered),
        ("ghost", &ghost),
        ("garbage", "not.a.jwt"),
    ] {
        let (s, v, h) = app
            .call_as(&bearer(t), Method::GET, "/api/v1/calls", None)
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{what}: {v}");
        let challenge = h.get("www-authenticate").expect("WWW-Authenticate");
        assert!(challenge.to_str().unwrap().contains("Bearer"), "{what}");
        assert_eq!(
            h.get("content-type").unwrap(),
            "application/problem+json",
            "{what}"
        );
    }
    let (s, v, _) = app
        .call_as(&Cred::None, Method::GET, "/api/v1/calls", None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    app.stop().await;
}

async fn refresh(app: &TestApp, token: &str) -> (StatusCode, Value) {
    let (s, v, _) = app
        .call_as(
            &Cred::None,
            Method::POST,
            "/api/v1/auth/refresh",
            Some(&json!({ "refresh_token": token })),
        )
        .await;
    (s, v)
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_reused_one_revokes_the_whole_login() {
    let app = spawn().await;
    let (_, v) = app.login("admin@localhost", ADMIN_PASSWORD, None).await;
    let r1 = v["refresh_token"].as_str().unwrap().to_owned();
    let (s, v2) = refresh(&app, &r1).await;
    assert_eq!(s, StatusCode::OK, "{v2}");
    let r2 = v2["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(r1, r2, "rotated");
    let (s, _) = me(&app, &bearer(v2["access_token"].as_str().unwrap())).await;
    assert_eq!(s, StatusCode::OK);
    // r1 again: someone else holds it. Refused, and r2 (the legitimate one) dies too.
    let (s, v) = refresh(&app, &r1).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert!(
        v["detail"].as_str().unwrap().contains("already used"),
        "{v}"
    );
    let (s, _) = refresh(&app, &r2).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "the family is revoked");
    // Another login is another family: unaffected.
    let (_, v) = app.login("admin@localhost", ADMIN_PASSWORD, None).await;
    let (s, _) = refresh(&app, v["refresh_token"].as_str().unwrap()).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = refresh(&app, "sbr_unknown").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    app.stop().await;
}

#[tokio::test]
async fn concurrent_refreshes_of_one_token_let_exactly_one_through() {
    let app = spawn().await;
    let (_, v) = app.login("admin@localhost", ADMIN_PASSWORD, None).await;
    let r = v["refresh_token"].as_str().unwrap().to_owned();
    let answers = futures_util::future::join_all((0..6).map(|_| refresh(&app, &r))).await;
    let ok: Vec<_> = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::OK)
        .collect();
    assert_eq!(ok.len(), 1, "{answers:?}");
    // The winner's new token died with the family when the others presented the used one.
    let (s, _) = refresh(&app, ok[0].1["refresh_token"].as_str().unwrap()).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    app.stop().await;
}

#[tokio::test]
async fn logout_revokes_the_refresh_token() {
    let app = spawn().await;
    let (_, v) = app.login("admin@localhost", ADMIN_PASSWORD, None).await;
    let r = v["refresh_token"].as_str().unwrap();
    let (s, _, _) = app
        .call_as(
            &Cred::None,
            Method::POST,
            "/api/v1/auth/logout",
            Some(&json!({ "refresh_token": r })),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = refresh(&app, r).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    app.stop().await;
}

#[tokio::test]
async fn five_failures_lock_the_account_out_without_telling_whether_it_exists() {
    let app = spawn().await;
    for _ in 0..5 {
        let (s, _) = app
            .login("admin@localhost", "wrong-password-wrong", None)
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    // Even the right password is refused now, with a time to come back.
    let (s, v, h) = app
        .call_as(
            &Cred::None,
            Method::POST,
            "/api/v1/auth/login",
            Some(&json!({"email": "admin@localhost", "password": ADMIN_PASSWORD})),
        )
        .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{v}");
    let retry: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=900).contains(&retry), "{retry}");
    // The address is locked too: an unknown account gets the very same answer.
    let (s2, v2) = app
        .login("nobody@example.com", "whatever-whatever", None)
        .await;
    assert_eq!(s2, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        v["detail"].as_str().unwrap().split(';').next(),
        v2["detail"].as_str().unwrap().split(';').next()
    );
    // Keys are not affected.
    let (s, _) = app.get("/api/v1/calls").await;
    assert_eq!(s, StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn a_key_over_its_rate_limit_gets_429_with_retry_after() {
    let app = spawn().await;
    let key = app
        .create_key(
            &Cred::Key(app.key.clone()),
            json!({"name": "slow", "scopes": ["calls:read"], "rate_limit": {"per_second": 1, "burst": 2}}),
        )
        .await;
    let mut statuses = Vec::new();
    let mut retry = None;
    for _ in 0..10 {
        let (s, _, h) = app
            .call_as(&Cred::Key(key.clone()), Method::GET, "/api/v1/calls", None)
            .await;
        if s == StatusCode::TOO_MANY_REQUESTS {
            retry = h.get("retry-after").map(|v| v.to_str().unwrap().to_owned());
        }
        statuses.push(s);
    }
    assert_eq!(
        &statuses[..2],
        &[StatusCode::OK, StatusCode::OK],
        "burst of 2"
    );
    assert!(
        statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    assert!(retry.unwrap().parse::<u32>().unwrap() >= 1);
    // Another key is not slowed down by this one.
    for _ in 0..5 {
        assert_eq!(app.get("/api/v1/calls").await.0, StatusCode::OK);
    }
    app.stop().await;
}

#[tokio::test]
async fn a_revoked_or_expired_key_is_refused_on_the_next_request() {
    let app = spawn().await;
    let admin = Cred::Key(app.key.clone());
    let (s, v, _) = app
        .call_as(
            &admin,
            Method::POST,
            "/api/v1/api-keys",
            Some(&json!({"name": "short-lived", "scopes": ["calls:read"]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let key = v["key"].as_str().unwrap().to_owned();
    let id = v["id"].as_str().unwrap().to_owned();
    assert!(key.starts_with(v["prefix"].as_str().unwrap()));
    let (s, _, _) = app
        .call_as(&Cred::Key(key.clone()), Method::GET, "/api/v1/calls", None)
        .await;
    assert_eq!(s, StatusCode::OK);
    // Listed without its secret.
    let (_, list, _) = app
        .call_as(&admin, Method::GET, "/api/v1/api-keys", None)
        .await;
    assert!(!list.to_string().contains(&key));
    assert!(list["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|k| k["id"] == id.as_str()));
    let (s, _, _) = app
        .call_as(
            &admin,
            Method::DELETE,
            &format!("/api/v1/api-keys/{id}"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, v, _) = app
        .call_as(&Cred::Key(key), Method::GET, "/api/v1/calls", None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");

    // An expired key: stored with an expiry in the past, as time would have made it.
    let tenant = app.state.store.tenant_by_slug("default").await.unwrap();
    let secret = format!("sb_expired_{}", Uuid::new_v4().simple());
    let k = switchboard_store::NewApiKey {
        name: "expired".into(),
        key: secret.clone(),
        scopes: switchboard_core::ScopeSet::TENANT,
        expires_at: Some(switchboard_core::time::now_ms() - 1),
        rate_limit: None,
    };
    let info = app
        .state
        .store
        .create_api_key(tenant.id, &k, &switchboard_store::Actor::system("test"), 0)
        .await
        .unwrap();
    app.state.auth.directory.key_created(&secret, info);
    let (s, v, _) = app
        .call_as(&Cred::Key(secret), Method::GET, "/api/v1/calls", None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(v["detail"].as_str().unwrap().contains("expired"), "{v}");
    app.stop().await;
}

#[tokio::test]
async fn a_key_made_by_the_store_behind_the_servers_back_works_without_a_query_per_attempt() {
    let app = spawn().await;
    let tenant = app.state.store.tenant_by_slug("default").await.unwrap();
    let secret = format!("sb_cli_{}", Uuid::new_v4().simple());
    let k = switchboard_store::NewApiKey {
        name: "cli".into(),
        key: secret.clone(),
        scopes: switchboard_core::ScopeSet::TENANT,
        expires_at: None,
        rate_limit: None,
    };
    app.state
        .store
        .create_api_key(
            tenant.id,
            &k,
            &switchboard_store::Actor::system("cli"),
            switchboard_core::time::now_ms(),
        )
        .await
        .unwrap();
    // The directory learns of it within a second (as `switchboard api-key create` while the
    // server runs); an invalid key meanwhile is refused from memory.
    let mut ok = false;
    for _ in 0..40 {
        let (s, _, _) = app
            .call_as(
                &Cred::Key(secret.clone()),
                Method::GET,
                "/api/v1/calls",
                None,
            )
            .await;
        if s == StatusCode::OK {
            ok = true;
            break;
        }
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "a key stored by the command line becomes usable");
    app.stop().await;
}

#[tokio::test]
async fn a_deactivated_tenant_loses_access_keeps_its_data_and_comes_back() {
    let app = spawn().await;
    let admin = app.admin_token().await;
    let tid = app.create_tenant(&admin, "acme").await;
    let pa = bearer(&admin);
    // A tenant created at runtime works at once: a key, a user, a queue, events.
    let key = app
        .create_key(
            &pa,
            json!({"name": "acme", "scopes": ["*"], "tenant_id": tid}),
        )
        .await;
    app.create_user(&pa, "boss@acme.test", "tenant_admin", Some(&tid))
        .await;
    let (s, v) = app.login("boss@acme.test", USER_PASSWORD, None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let boss = bearer(v["access_token"].as_str().unwrap());
    let acme = Cred::Key(key.clone());
    let (s, v, _) = app
        .call_as(
            &acme,
            Method::POST,
            "/api/v1/queues",
            Some(&json!({"id": "sales", "name": "Sales"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let ev = json!({"type": "call_initiated", "call_id": "c1", "event_id": "e1", "from": "+33100000000", "to": "+33100000001"});
    let (s, v, _) = app
        .call_as(&acme, Method::POST, "/api/v1/events", Some(&ev))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");

    let (s, _, _) = app
        .call_as(&pa, Method::DELETE, &format!("/api/v1/tenants/{tid}"), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    for cred in [&acme, &boss] {
        let (s, v, _) = app.call_as(cred, Method::GET, "/api/v1/queues", None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    }
    let (s, _) = app.login("boss@acme.test", USER_PASSWORD, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "no new session either");
    // The default tenant is untouched.
    assert_eq!(app.get("/api/v1/queues").await.0, StatusCode::OK);
    // A platform admin cannot lock themselves out.
    let (_, m) = me(&app, &pa).await;
    let own = m["tenant_id"].as_str().unwrap();
    let (s, _, _) = app
        .call_as(&pa, Method::DELETE, &format!("/api/v1/tenants/{own}"), None)
        .await;
    assert_eq!(s, StatusCode::CONFLICT);

    let (s, v, _) = app
        .call_as(
            &pa,
            Method::PATCH,
            &format!("/api/v1/tenants/{tid}"),
            Some(&json!({"active": true})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["active"], true);
    let (s, v, _) = app
        .call_as(&acme, Method::GET, "/api/v1/calls/c1", None)
        .await;
    assert_eq!(s, StatusCode::OK, "the data stayed: {v}");
    let (s, _, _) = app
        .call_as(&boss, Method::GET, "/api/v1/queues/sales", None)
        .await;
    assert_eq!(s, StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn a_deactivated_user_is_refused_on_the_next_request_and_cannot_refresh() {
    let app = spawn().await;
    let key = Cred::Key(app.key.clone());
    let id = app
        .create_user(&key, "agent@default.test", "agent", None)
        .await;
    let (_, v) = app.login("agent@default.test", USER_PASSWORD, None).await;
    let agent = bearer(v["access_token"].as_str().unwrap());
    let r = v["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(
        app.call_as(&agent, Method::GET, "/api/v1/calls", None)
            .await
            .0,
        StatusCode::OK
    );
    let (s, _, _) = app
        .call_as(&key, Method::DELETE, &format!("/api/v1/users/{id}"), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(
        app.call_as(&agent, Method::GET, "/api/v1/calls", None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(refresh(&app, &r).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.login("agent@default.test", USER_PASSWORD, None).await.0,
        StatusCode::UNAUTHORIZED
    );
    app.stop().await;
}

#[tokio::test]
async fn a_password_change_ends_other_sessions_and_weak_passwords_are_refused() {
    let app = spawn().await;
    let key = Cred::Key(app.key.clone());
    // Too short and too common: 422 naming the field.
    for weak in ["short", "password1234", "agent@default.test"] {
        let (s, v, _) = app
            .call_as(
                &key,
                Method::POST,
                "/api/v1/users",
                Some(&json!({"email": "agent@default.test", "display_name": "A", "role": "agent", "password": weak})),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{weak}: {v}");
        assert_eq!(v["field"], "password", "{v}");
    }
    app.create_user(&key, "agent@default.test", "agent", None)
        .await;
    let (_, a) = app.login("agent@default.test", USER_PASSWORD, None).await;
    let (_, b) = app.login("agent@default.test", USER_PASSWORD, None).await;
    let new = "saffron-Glacier-93-orbit";
    let (s, v, _) = app
        .call_as(
            &bearer(a["access_token"].as_str().unwrap()),
            Method::POST,
            "/api/v1/auth/password",
            Some(&json!({"current_password": USER_PASSWORD, "new_password": new})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    assert_eq!(
        refresh(&app, b["refresh_token"].as_str().unwrap()).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login("agent@default.test", USER_PASSWORD, None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login("agent@default.test", new, None).await.0,
        StatusCode::OK
    );
    app.stop().await;
}

#[tokio::test]
async fn administrative_changes_are_audited_per_tenant() {
    let app = spawn().await;
    let admin = app.admin_token().await;
    let pa = bearer(&admin);
    let tid = app.create_tenant(&admin, "globex").await;
    app.create_user(&pa, "root@globex.test", "tenant_admin", Some(&tid))
        .await;
    let (_, v) = app.login("root@globex.test", USER_PASSWORD, None).await;
    let root = bearer(v["access_token"].as_str().unwrap());
    let (s, _, _) = app
        .call_as(
            &root,
            Method::POST,
            "/api/v1/queues",
            Some(&json!({"id": "q1", "name": "Q1"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _, _) = app
        .call_as(
            &root,
            Method::PATCH,
            "/api/v1/queues/q1",
            Some(&json!({"name": "Queue one"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, _) = app
        .call_as(
            &root,
            Method::PATCH,
            "/api/v1/tenant",
            Some(&json!({"time_zone": "Europe/Paris", "default_region": "fr"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);

    let (s, log, _) = app.call_as(&root, Method::GET, "/api/v1/audit", None).await;
    assert_eq!(s, StatusCode::OK, "{log}");
    let items = log["items"].as_array().unwrap();
    let actions: Vec<&str> = items
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    // Newest first.
    assert_eq!(
        actions,
        [
            "tenant.update",
            "queue.update",
            "queue.create",
            "user.create",
            "tenant.create"
        ],
        "{log}"
    );
    assert!(items.iter().all(|e| e["tenant_id"] == tid.as_str()));
    let upd = &items[1];
    assert_eq!(upd["actor"]["kind"], "user");
    assert_eq!(upd["actor"]["name"], "root@globex.test");
    assert_eq!(upd["before"]["name"], "Q1");
    assert_eq!(upd["after"]["name"], "Queue one");
    assert_eq!(items[0]["after"]["default_region"], "FR");
    assert!(
        !log.to_string().contains("argon2"),
        "no password hash in the log"
    );
    // Filters.
    let (_, f, _) = app
        .call_as(&root, Method::GET, "/api/v1/audit?action=queue.", None)
        .await;
    assert_eq!(f["items"].as_array().unwrap().len(), 2);
    let (_, f, _) = app
        .call_as(
            &root,
            Method::GET,
            "/api/v1/audit?actor=root@globex.test&action=queue.create",
            None,
        )
        .await;
    assert_eq!(f["items"].as_array().unwrap().len(), 1);
    // The platform admin sees every tenant; the default tenant's admin key none of globex's.
    let (_, all, _) = app
        .call_as(&pa, Method::GET, "/api/v1/audit?limit=500", None)
        .await;
    assert!(all["items"].as_array().unwrap().len() > items.len());
    let (_, mine) = app.get("/api/v1/audit?limit=500").await;
    assert!(mine["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["tenant_id"] != tid.as_str()));
    app.stop().await;
}

#[tokio::test]
async fn the_stream_takes_a_user_token_and_closes_when_its_key_is_revoked() {
    let app = spawn().await;
    let admin = app.admin_token().await;
    let ws_url = |q: &str| format!("ws://{}/api/v1/stream?{q}", app.addr);
    // A user token in the query string (browsers cannot set WebSocket headers).
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url(&format!("access_token={admin}")))
        .await
        .expect("stream with a token");
    let ev = json!({"type": "call_initiated", "call_id": "s1", "event_id": "s1", "from": "+1", "to": "+2"});
    assert_eq!(app.event(ev).await.0, StatusCode::CREATED);
    let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("a message")
        .unwrap()
        .unwrap();
    assert!(msg.to_text().unwrap().contains("call_initiated"));

    let key = app
        .create_key(
            &Cred::Key(app.key.clone()),
            json!({"name": "wall", "scopes": ["stream:read"]}),
        )
        .await;
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url(&format!("api_key={key}")))
        .await
        .expect("stream with a key");
    let (_, list, _) = app
        .call_as(
            &Cred::Key(app.key.clone()),
            Method::GET,
            "/api/v1/api-keys",
            None,
        )
        .await;
    let id = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "wall")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.call_as(
        &Cred::Key(app.key.clone()),
        Method::DELETE,
        &format!("/api/v1/api-keys/{id}"),
        None,
    )
    .await;
    let closed = tokio::time::timeout(Duration::from_secs(15), async {
        while let Some(m) = ws.next().await {
            if let Ok(tokio_tungstenite::tungstenite::Message::Close(Some(f))) = m {
                return Some(f);
            }
        }
        None
    })
    .await
    .expect("closed within 15 s")
    .expect("a close frame");
    assert_eq!(u16::from(closed.code), 4001, "{closed:?}");
    assert!(closed.reason.contains("revoked"), "{closed:?}");
    // A revoked key cannot open a new one.
    assert!(
        tokio_tungstenite::connect_async(ws_url(&format!("api_key={key}")))
            .await
            .is_err()
    );
    app.stop().await;
}

#[tokio::test]
async fn concurrent_wrong_logins_cannot_outrun_the_throttle() {
    let app = spawn().await;
    let answers = futures_util::future::join_all(
        (0..12).map(|_| app.login("admin@localhost", "wrong-password-wrong", None)),
    )
    .await;
    let wrong = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::UNAUTHORIZED)
        .count();
    let refused = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    // 503: the password pool was full (twice the cores); that attempt checked nothing.
    let busy = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::SERVICE_UNAVAILABLE)
        .count();
    assert!(wrong <= 5, "at most 5 passwords were checked: {answers:?}");
    assert!(refused >= 7 - busy.min(7), "{answers:?}");
    assert_eq!(wrong + refused + busy, 12, "{answers:?}");
    app.stop().await;
}

#[tokio::test]
async fn an_address_in_several_tenants_must_name_one_whatever_the_password() {
    let app = spawn().await;
    let admin = app.admin_token().await;
    let pa = bearer(&admin);
    let tid = app.create_tenant(&admin, "decoy").await;
    // A tenant admin of another tenant makes an account with the platform admin's address.
    app.create_user(&pa, "admin@localhost", "tenant_admin", Some(&tid))
        .await;
    for pw in [ADMIN_PASSWORD, USER_PASSWORD, "some-other-guess-here"] {
        let (s, v) = app.login("admin@localhost", pw, None).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{pw}: {v}");
        assert_eq!(v["field"], "tenant");
    }
    let (s, v) = app
        .login("admin@localhost", ADMIN_PASSWORD, Some("default"))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, _) = app
        .login("admin@localhost", USER_PASSWORD, Some("DECOY"))
        .await;
    assert_eq!(s, StatusCode::OK, "the slug is case-insensitive");
    // Logging in to the decoy does not clear the platform admin's failures.
    for _ in 0..5 {
        app.login("admin@localhost", "wrong-password-wrong", Some("default"))
            .await;
    }
    let (s, _) = app
        .login("admin@localhost", USER_PASSWORD, Some("decoy"))
        .await;
    assert_eq!(
        s,
        StatusCode::TOO_MANY_REQUESTS,
        "the address is locked too"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_refresh_while_deactivated_does_not_use_the_token_up() {
    let app = spawn().await;
    let key = Cred::Key(app.key.clone());
    let id = app
        .create_user(&key, "sup@default.test", "supervisor", None)
        .await;
    let (_, v) = app.login("sup@default.test", USER_PASSWORD, None).await;
    let r = v["refresh_token"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/users/{id}");
    app.call_as(&key, Method::PATCH, &path, Some(&json!({"active": false})))
        .await;
    assert_eq!(refresh(&app, &r).await.0, StatusCode::UNAUTHORIZED);
    // Deactivation revoked the user's refresh tokens: reactivation brings back the account,
    // not the old sessions; a new login works.
    app.call_as(&key, Method::PATCH, &path, Some(&json!({"active": true})))
        .await;
    assert_eq!(
        app.login("sup@default.test", USER_PASSWORD, None).await.0,
        StatusCode::OK
    );

    // A deactivated tenant's session, though, survives its deactivation unused.
    let admin = app.admin_token().await;
    let tid = app.create_tenant(&admin, "pause").await;
    app.create_user(&bearer(&admin), "x@pause.test", "agent", Some(&tid))
        .await;
    let (_, v) = app.login("x@pause.test", USER_PASSWORD, None).await;
    let r = v["refresh_token"].as_str().unwrap().to_owned();
    let tpath = format!("/api/v1/tenants/{tid}");
    app.call_as(&bearer(&admin), Method::DELETE, &tpath, None)
        .await;
    assert_eq!(refresh(&app, &r).await.0, StatusCode::UNAUTHORIZED);
    app.call_as(
        &bearer(&admin),
        Method::PATCH,
        &tpath,
        Some(&json!({"active": true})),
    )
    .await;
    let (s, v) = refresh(&app, &r).await;
    assert_eq!(
        s,
        StatusCode::OK,
        "not used up while the tenant was off: {v}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_token_alone_cannot_set_its_own_password_and_a_platform_admins_tenant_stays_on() {
    let app = spawn().await;
    let admin = app.admin_token().await;
    let pa = bearer(&admin);
    let (_, m) = me(&app, &pa).await;
    let own = m["id"].as_str().unwrap();
    let (s, v, _) = app
        .call_as(
            &pa,
            Method::PATCH,
            &format!("/api/v1/users/{own}"),
            Some(&json!({"password": "saffron-Glacier-93-orbit"})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(
        app.login("admin@localhost", ADMIN_PASSWORD, None).await.0,
        StatusCode::OK
    );
    // A second platform admin in another tenant: that tenant cannot be deactivated.
    let tid = app.create_tenant(&admin, "ops").await;
    app.create_user(&pa, "second@ops.test", "platform_admin", Some(&tid))
        .await;
    let (s, v, _) = app
        .call_as(&pa, Method::DELETE, &format!("/api/v1/tenants/{tid}"), None)
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    let (_, v) = app.login("second@ops.test", USER_PASSWORD, None).await;
    let second = bearer(v["access_token"].as_str().unwrap());
    let default = m["tenant_id"].as_str().unwrap();
    let (s, _, _) = app
        .call_as(
            &second,
            Method::DELETE,
            &format!("/api/v1/tenants/{default}"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "nor the first admin's");
    app.stop().await;
}

#[tokio::test]
async fn concurrent_patches_of_one_user_all_land_or_get_412_never_500() {
    let app = spawn().await;
    let key = Cred::Key(app.key.clone());
    let id = app
        .create_user(&key, "busy@default.test", "agent", None)
        .await;
    let path = format!("/api/v1/users/{id}");
    let answers = futures_util::future::join_all((0..12).map(|i| {
        let body = json!({"display_name": format!("name {i}")});
        let key = key.clone();
        let path = path.clone();
        let app = &app;
        async move { app.call_as(&key, Method::PATCH, &path, Some(&body)).await.0 }
    }))
    .await;
    assert!(answers.iter().all(|s| *s == StatusCode::OK), "{answers:?}");
    let (_, v, h) = app.call_as(&key, Method::GET, &path, None).await;
    let etag = h["etag"].to_str().unwrap().to_owned();
    assert_eq!(etag, "\"13\"", "12 changes after the creation: {v}");
    // Conditional: of several PATCHes of one version, exactly one lands.
    let answers = futures_util::future::join_all((0..6).map(|i| {
        let etag = etag.clone();
        let path = path.clone();
        let app = &app;
        async move {
            app.client
                .patch(app.url(&path))
                .header("X-API-Key", &app.key)
                .header("If-Match", etag)
                .json(&json!({"display_name": format!("cond {i}")}))
                .send()
                .await
                .unwrap()
                .status()
        }
    }))
    .await;
    assert_eq!(
        answers.iter().filter(|s| **s == StatusCode::OK).count(),
        1,
        "{answers:?}"
    );
    assert!(answers
        .iter()
        .all(|s| *s == StatusCode::OK || *s == StatusCode::PRECONDITION_FAILED));
    app.stop().await;
}

#[tokio::test]
async fn a_revoked_bootstrap_key_stays_revoked_across_a_restart() {
    let app = spawn().await;
    let (_, list, _) = app
        .call_as(
            &Cred::Key(app.key.clone()),
            Method::GET,
            "/api/v1/api-keys",
            None,
        )
        .await;
    let id = list["items"][0]["id"].as_str().unwrap().to_owned();
    let admin = bearer(&app.admin_token().await);
    let (s, _, _) = app
        .call_as(
            &admin,
            Method::DELETE,
            &format!("/api/v1/api-keys/{id}"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let key = app.key.clone();
    let (url, dir) = app.stop().await;
    // The same SWITCHBOARD_BOOTSTRAP_API_KEY again: the server starts, the key stays dead.
    let app =
        TestApp::spawn_on_with(url, dir, |s| s.jwt.secret = Some(Secret(SECRET.to_owned()))).await;
    let (s, _, _) = app
        .call_as(&Cred::Key(key), Method::GET, "/api/v1/calls", None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    app.stop().await;
}

#[tokio::test]
async fn a_rotated_secret_keeps_earlier_tokens_until_they_expire_and_no_longer() {
    let app = spawn().await;
    let old_token = app.admin_token().await;
    let (url, dir) = app.stop().await;
    // Rotation: a new secret, the old one kept as previous.
    let new = "the-new-secret-the-new-secret-0123456789";
    let app = TestApp::spawn_on_with(url, dir, |s| {
        s.jwt.secret = Some(Secret(new.to_owned()));
        s.jwt.previous_secret = Some(Secret(SECRET.to_owned()));
    })
    .await;
    assert_eq!(
        me(&app, &bearer(&old_token)).await.0,
        StatusCode::OK,
        "issued before the rotation"
    );
    let fresh = app.admin_token().await;
    assert_eq!(me(&app, &bearer(&fresh)).await.0, StatusCode::OK);
    let (url, dir) = app.stop().await;
    // The previous secret dropped: its tokens are refused.
    let app =
        TestApp::spawn_on_with(url, dir, |s| s.jwt.secret = Some(Secret(new.to_owned()))).await;
    assert_eq!(
        me(&app, &bearer(&old_token)).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(me(&app, &bearer(&fresh)).await.0, StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn a_keys_last_use_is_recorded() {
    let app = spawn().await;
    let admin = Cred::Key(app.key.clone());
    let key = app
        .create_key(&admin, json!({"name": "used", "scopes": ["calls:read"]}))
        .await;
    let (_, list, _) = app
        .call_as(&admin, Method::GET, "/api/v1/api-keys", None)
        .await;
    let item = |list: &Value| {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["name"] == "used")
            .unwrap()
            .clone()
    };
    assert!(item(&list)["last_used_at"].is_null());
    assert_eq!(
        app.call_as(&Cred::Key(key), Method::GET, "/api/v1/calls", None)
            .await
            .0,
        StatusCode::OK
    );
    // What the background flush (every 5 s) does, done now.
    let used = app.state.auth.directory.take_used();
    assert!(!used.is_empty());
    app.state.store.touch_api_keys(&used).await.unwrap();
    let (_, list, _) = app
        .call_as(&admin, Method::GET, "/api/v1/api-keys", None)
        .await;
    let at = item(&list)["last_used_at"]
        .as_str()
        .expect("recorded")
        .to_owned();
    assert!(switchboard_core::parse_rfc3339(&at).is_some(), "{at}");
    app.stop().await;
}
