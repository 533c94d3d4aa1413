//! `TestApp`: the real server on a port-0 listener, with its own database: a fresh SQLite file,
//! or — when `TEST_DATABASE_URL` is set — a fresh PostgreSQL database created on that server
//! (an unreachable server fails the test; it is never skipped).
#![allow(dead_code)]

use std::net::SocketAddr;

use reqwest::StatusCode;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use uuid::Uuid;

use switchboard_server::{App, AppState, Secret, Settings};

/// A credential for [`TestApp::call_as`].
#[derive(Debug, Clone)]
pub enum Cred {
    /// `X-API-Key`.
    Key(String),
    /// `Authorization: Bearer`.
    Bearer(String),
    /// No credential.
    None,
}

/// The password of users made by [`TestApp::create_user`].
pub const USER_PASSWORD: &str = "violet-Harbour-42-compass";

/// The bootstrap platform admin's password in tests (`admin@localhost`).
pub const ADMIN_PASSWORD: &str = "quartz-Meridian-7-lantern";

pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub key: String,
    pub db_url: String,
    pub state: AppState,
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    dir: Option<std::sync::Arc<tempfile::TempDir>>,
}

/// A fresh database URL: a new PostgreSQL database when `TEST_DATABASE_URL` is set, else a
/// SQLite file in a new temporary directory.
pub async fn fresh_db() -> (String, Option<std::sync::Arc<tempfile::TempDir>>) {
    match std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    {
        Some(admin) => {
            use sqlx::Connection;
            let name = format!("sb_test_{}", Uuid::new_v4().simple());
            let mut conn = sqlx::PgConnection::connect(&admin)
                .await
                .unwrap_or_else(|e| {
                    panic!("TEST_DATABASE_URL={admin} is set but unreachable: {e}")
                });
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await
                .expect("create test database");
            let (prefix, _) = admin
                .rsplit_once('/')
                .expect("TEST_DATABASE_URL must end with /<database>");
            (format!("{prefix}/{name}"), None)
        }
        None => {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}", dir.path().join("switchboard.db").display());
            (url, Some(std::sync::Arc::new(dir)))
        }
    }
}

/// A file of the shared data set (`shared/data/<rel>`, beside the repository), checked to
/// exist: a missing one fails with its path and where it comes from, not a bare `NotFound`.
pub fn shared_data(rel: &str) -> std::path::PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    let path = root.join(rel);
    assert!(
        path.is_file(),
        "test data {} is missing: these tests read the shared data set, which lives in \
         shared/data/ beside the repository's folder (see shared/data/README.md); check out or \
         copy it there{}",
        path.display(),
        if root.is_dir() {
            String::new()
        } else {
            format!(" ({} does not exist at all)", root.display())
        }
    );
    path
}

/// Which backend the tests run on, for messages.
pub fn backend() -> &'static str {
    if std::env::var("TEST_DATABASE_URL")
        .map(|u| !u.is_empty())
        .unwrap_or(false)
    {
        "postgres"
    } else {
        "sqlite"
    }
}

impl TestApp {
    /// A server on a fresh database.
    pub async fn spawn() -> TestApp {
        let (url, dir) = fresh_db().await;
        Self::spawn_on(url, dir).await
    }

    /// A server on a fresh database, with settings changed by `tweak` (e.g. small limits).
    pub async fn spawn_with(tweak: impl FnOnce(&mut Settings)) -> TestApp {
        let (url, dir) = fresh_db().await;
        Self::spawn_on_with(url, dir, tweak).await
    }

    /// A server on an existing database (e.g. to test a restart).
    ///
    /// The bootstrap admin is `admin@localhost` with [`ADMIN_PASSWORD`].
    pub async fn spawn_on(
        db_url: String,
        dir: Option<std::sync::Arc<tempfile::TempDir>>,
    ) -> TestApp {
        Self::spawn_on_with(db_url, dir, |_| {}).await
    }

    /// A server on an existing database, with settings changed by `tweak`.
    pub async fn spawn_on_with(
        db_url: String,
        dir: Option<std::sync::Arc<tempfile::TempDir>>,
        tweak: impl FnOnce(&mut Settings),
    ) -> TestApp {
        // At least 32 characters, as a bootstrap key must be.
        let key = "sb_test_bootstrap_key_0123456789abcdef".to_owned();
        let mut settings = Settings {
            listen: ([127, 0, 0, 1], 0).into(),
            data_dir: std::env::temp_dir(),
            database_url: Some(db_url.clone()),
            bootstrap_api_key: Some(Secret(key.clone())),
            bootstrap_admin_password: Some(Secret(ADMIN_PASSWORD.to_owned())),
            ..Settings::default()
        };
        tweak(&mut settings);
        let app: App = switchboard_server::build(&settings)
            .await
            .expect("build app");
        let state = app.state.clone();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(switchboard_server::serve(app, listener, async move {
            let _ = rx.await;
        }));
        TestApp {
            addr,
            base: format!("http://{addr}"),
            key,
            db_url,
            state,
            client: reqwest::Client::new(),
            stop: Some(tx),
            handle: Some(handle),
            dir,
        }
    }

    /// Waits for the server to end by itself (no stop signal) and returns its result.
    pub async fn exit(mut self) -> anyhow::Result<()> {
        let h = self.handle.take().expect("server task");
        tokio::time::timeout(std::time::Duration::from_secs(30), h)
            .await
            .expect("the server ends by itself")
            .expect("server task")
    }

    /// Graceful stop: waits until accepted events are flushed. Returns what a restart needs.
    pub async fn stop(mut self) -> (String, Option<std::sync::Arc<tempfile::TempDir>>) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.expect("server task").expect("server result");
        }
        (self.db_url.clone(), self.dir.clone())
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    async fn answer(r: reqwest::Response) -> (StatusCode, Value) {
        let status = r.status();
        let bytes = r.bytes().await.expect("body");
        let v = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        (status, v)
    }

    /// Sends `method path` with the app's key and an optional JSON body.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let mut rb = self
            .client
            .request(method, self.url(path))
            .header("X-API-Key", &self.key);
        if let Some(b) = body {
            rb = rb.json(b);
        }
        Self::answer(rb.send().await.expect("request")).await
    }

    /// Sends `method path` with credential `cred` (or none) and an optional JSON body; answers
    /// the status, the body and the headers.
    pub async fn call_as(
        &self,
        cred: &Cred,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Value, reqwest::header::HeaderMap) {
        let mut rb = self.client.request(method, self.url(path));
        rb = match cred {
            Cred::Key(k) => rb.header("X-API-Key", k),
            Cred::Bearer(t) => rb.header("Authorization", format!("Bearer {t}")),
            Cred::None => rb,
        };
        if let Some(b) = body {
            rb = rb.json(b);
        }
        let r = rb.send().await.expect("request");
        let headers = r.headers().clone();
        let (s, v) = Self::answer(r).await;
        (s, v, headers)
    }

    /// Logs in; answers the status and the body (tokens on 200).
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        tenant: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut body = serde_json::json!({"email": email, "password": password});
        if let Some(t) = tenant {
            body["tenant"] = t.into();
        }
        let (s, v, _) = self
            .call_as(
                &Cred::None,
                reqwest::Method::POST,
                "/api/v1/auth/login",
                Some(&body),
            )
            .await;
        (s, v)
    }

    /// The bootstrap platform admin's access token.
    pub async fn admin_token(&self) -> String {
        let (s, v) = self.login("admin@localhost", ADMIN_PASSWORD, None).await;
        assert_eq!(s, StatusCode::OK, "admin login: {v}");
        v["access_token"].as_str().expect("access_token").to_owned()
    }

    /// Creates a tenant through the API as the platform admin; answers its id.
    pub async fn create_tenant(&self, admin: &str, slug: &str) -> String {
        let (s, v, _) = self
            .call_as(
                &Cred::Bearer(admin.to_owned()),
                reqwest::Method::POST,
                "/api/v1/tenants",
                Some(&serde_json::json!({"slug": slug, "name": slug})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "create tenant: {v}");
        v["id"].as_str().expect("id").to_owned()
    }

    /// Creates a user through the API with `cred` (in `tenant_id` when given); answers its id.
    pub async fn create_user(
        &self,
        cred: &Cred,
        email: &str,
        role: &str,
        tenant_id: Option<&str>,
    ) -> String {
        let mut body = serde_json::json!({
            "email": email, "display_name": email, "role": role, "password": USER_PASSWORD,
        });
        if let Some(t) = tenant_id {
            body["tenant_id"] = t.into();
        }
        let (s, v, _) = self
            .call_as(cred, reqwest::Method::POST, "/api/v1/users", Some(&body))
            .await;
        assert_eq!(s, StatusCode::CREATED, "create user: {v}");
        v["id"].as_str().expect("id").to_owned()
    }

    /// Creates an API key through the API with `cred`; answers the secret.
    pub async fn create_key(&self, cred: &Cred, body: Value) -> String {
        let (s, v, _) = self
            .call_as(cred, reqwest::Method::POST, "/api/v1/api-keys", Some(&body))
            .await;
        assert_eq!(s, StatusCode::CREATED, "create key: {v}");
        v["key"].as_str().expect("key").to_owned()
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn post_raw(
        &self,
        path: &str,
        body: impl Into<reqwest::Body>,
        key: Option<&str>,
    ) -> (StatusCode, Value, Option<String>) {
        let mut rb = self
            .client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body);
        if let Some(k) = key {
            rb = rb.header("X-API-Key", k);
        }
        let r = rb.send().await.expect("request");
        let ct = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let (s, v) = Self::answer(r).await;
        (s, v, ct)
    }

    pub async fn patch(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.send(reqwest::Method::PATCH, path, Some(body)).await
    }

    /// Posts one event.
    pub async fn event(&self, body: Value) -> (StatusCode, Value) {
        self.post("/api/v1/events", &body).await
    }

    /// Posts a batch; asserts the batch itself was taken (200).
    pub async fn batch(&self, events: Vec<Value>) -> Value {
        let (s, v) = self
            .post(
                "/api/v1/events/batch",
                &serde_json::json!({ "events": events }),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "batch answer: {v}");
        v
    }

    /// Creates a queue with settings; asserts 201.
    pub async fn queue(&self, body: Value) {
        let (s, v) = self.post("/api/v1/queues", &body).await;
        assert_eq!(s, StatusCode::CREATED, "create queue: {v}");
    }

    /// Switches the tenant clock.
    pub async fn clock(&self, clock: &str) {
        let (s, v) = self
            .patch("/api/v1/tenant", &serde_json::json!({ "clock": clock }))
            .await;
        assert_eq!(s, StatusCode::OK, "set clock: {v}");
    }

    /// Creates another tenant with its own key, in the store only, while the server runs
    /// (tenants have no HTTP API yet).
    pub async fn other_tenant(&self, slug: &str) -> String {
        let now = switchboard_core::time::now_ms();
        let t = self
            .state
            .store
            .create_tenant(
                &switchboard_store::NewTenant::new(slug, slug),
                &switchboard_store::Actor::system("test"),
                now,
            )
            .await
            .expect("tenant");
        let key = format!("sb_test_{slug}_{}", Uuid::new_v4().simple());
        let k = switchboard_store::NewApiKey {
            name: "test".into(),
            key: key.clone(),
            scopes: switchboard_core::ScopeSet::TENANT,
            expires_at: None,
            rate_limit: None,
        };
        let info = self
            .state
            .store
            .create_api_key(t.id, &k, &switchboard_store::Actor::system("test"), now)
            .await
            .expect("key");
        // The API adds a key to the directory after its commit; do as it does.
        self.state.auth.directory.key_created(&key, info);
        // No engine call: a tenant created while the server runs loads on first use.
        key
    }

    /// The call's events' types, in order.
    pub async fn history(&self, call: &str) -> Vec<String> {
        let (s, v) = self
            .get(&format!(
                "/api/v1/calls/{}/events?limit=500",
                urlencode(call)
            ))
            .await;
        assert_eq!(s, StatusCode::OK, "history: {v}");
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// An event of type `ty` for `call` at `t(at)`, with the payload fields of `extra` (an object).
pub fn ev(ty: &str, call: &str, at: i64, extra: Value) -> Value {
    let mut v = serde_json::json!({ "type": ty, "call_id": call, "timestamp": t(at) });
    if let (Some(m), Some(x)) = (v.as_object_mut(), extra.as_object()) {
        m.extend(x.clone());
    }
    v
}

/// Posts one event and asserts it was applied (201); returns the answer.
pub async fn ok(app: &TestApp, body: Value) -> Value {
    let (s, v) = app.event(body.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "event {body}: {v}");
    v
}

/// Routes `call` to `agent` at `t(routed)` and answers it at `t(answered)`; asserts both 201.
pub async fn route_and_answer(app: &TestApp, call: &str, agent: &str, routed: i64, answered: i64) {
    ok(
        app,
        ev(
            "call_routed",
            call,
            routed,
            serde_json::json!({ "agent_id": agent }),
        ),
    )
    .await;
    ok(
        app,
        ev("call_answered", call, answered, serde_json::json!({})),
    )
    .await;
}

/// The call (by either id); asserts 200.
pub async fn call(app: &TestApp, id: &str) -> Value {
    let (s, v) = app.get(&format!("/api/v1/calls/{}", urlencode(id))).await;
    assert_eq!(s, StatusCode::OK, "call {id}: {v}");
    v
}

/// Percent-encodes a path segment.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `1999-08-01T00:00:00Z` + `s` seconds, RFC 3339.
pub fn t(s: i64) -> String {
    switchboard_core::format_rfc3339(933_465_600_000 + s * 1000)
}
