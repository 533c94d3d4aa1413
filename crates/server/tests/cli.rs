//! The `switchboard` binary itself: `serve` bootstraps and prints a working key and, on
//! SIGTERM, flushes so that a restart finds every acknowledged event; `api-key create` prints
//! keys with the scopes asked for; `openapi` prints the document the server serves.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::TestApp;

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `switchboard serve`; returns the child and a receiver of its stdout lines.
fn serve(db_url: &str, port: u16) -> (Child, std::sync::mpsc::Receiver<String>) {
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--database-url",
            db_url,
        ])
        .env_remove("SWITCHBOARD_BOOTSTRAP_API_KEY")
        .env("SWITCHBOARD_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn switchboard serve");
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (child, rx)
}

/// Waits until the separate process answers `/health` (it starts on its own schedule).
async fn wait_healthy(base: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = reqwest::get(format!("{base}/health")).await {
            if r.status() == 200 {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "switchboard serve did not come up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn sigterm_and_wait(mut child: Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "serve exited with {exit:?} on SIGTERM");
}

async fn req(
    c: &reqwest::Client,
    m: reqwest::Method,
    url: String,
    key: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut rb = c.request(m, url).header("X-API-Key", key);
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let r = rb.send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn serve_prints_a_working_key_and_flushes_on_sigterm() {
    let (db, _dir) = support::fresh_db().await;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let (child, lines) = serve(&db, port);
    let key = loop {
        let line = lines
            .recv_timeout(Duration::from_secs(60))
            .expect("serve printed no bootstrap key");
        if let Some(k) = line.split_whitespace().find(|w| w.starts_with("sb_")) {
            break k.to_owned();
        }
    };
    wait_healthy(&base).await;
    let c = reqwest::Client::new();
    let (s, _) = req(
        &c,
        reqwest::Method::POST,
        format!("{base}/api/v1/queues"),
        &key,
        Some(json!({"id": "q0"})),
    )
    .await;
    assert_eq!(s, 201);
    let events: Vec<Value> = (0..300)
        .map(|i| json!({"type": "call_initiated", "call_id": format!("c{i}"), "queue_id": "q0", "event_id": "e0"}))
        .collect();
    let (s, v) = req(
        &c,
        reqwest::Method::POST,
        format!("{base}/api/v1/events/batch"),
        &key,
        Some(json!({"events": events})),
    )
    .await;
    assert_eq!((s, v["accepted"].as_u64()), (200, Some(300)), "{v}");
    sigterm_and_wait(child);

    // Restart on the same database: no new key is printed, the old one works, nothing is lost.
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let (child, lines) = serve(&db, port);
    wait_healthy(&base).await;
    let (s, v) = req(
        &c,
        reqwest::Method::GET,
        format!("{base}/api/v1/calls?status=waiting&limit=500"),
        &key,
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["items"].as_array().unwrap().len(), 300);
    let (s, v) = req(
        &c,
        reqwest::Method::POST,
        format!("{base}/api/v1/events"),
        &key,
        Some(
            json!({"type": "call_initiated", "call_id": "c7", "queue_id": "q0", "event_id": "e0"}),
        ),
    )
    .await;
    assert_eq!((s, v["duplicate"].as_bool()), (200, Some(true)), "{v}");
    sigterm_and_wait(child);
    let printed: Vec<String> = lines.try_iter().collect();
    assert!(
        !printed.iter().any(|l| l.contains("sb_")),
        "a restart must not create a key: {printed:?}"
    );
}

/// GET `url` with `key` until it is not 401: a key made by the command line while the server
/// runs reaches the server's key directory within about a second (docs/security.md).
async fn get_once_known(c: &reqwest::Client, url: String, key: &str) -> (u16, Value) {
    for _ in 0..40 {
        let r = req(c, reqwest::Method::GET, url.clone(), key, None).await;
        if r.0 != 401 {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    req(c, reqwest::Method::GET, url, key, None).await
}

fn api_key_create(db: &str, extra: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(["api-key", "create", "--database-url", db])
        .args(extra)
        .output()
        .expect("run switchboard api-key create")
}

#[tokio::test]
async fn api_key_create_prints_keys_with_the_scopes_asked_for() {
    let app = TestApp::spawn().await;
    let out = api_key_create(&app.db_url, &["--tenant", "default"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(all.starts_with("sb_") && all.len() == 67, "{all}");
    let c = reqwest::Client::new();
    let (s, _) = get_once_known(&c, app.url("/api/v1/tenant"), &all).await;
    assert_eq!(s, 200);

    let out = api_key_create(&app.db_url, &["--scope", "calls:read"]);
    assert!(out.status.success());
    let reader = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert_ne!(reader, all);
    let (s, _) = get_once_known(&c, app.url("/api/v1/calls"), &reader).await;
    assert_eq!(s, 200);
    let (s, v) = req(
        &c,
        reqwest::Method::POST,
        app.url("/api/v1/events"),
        &reader,
        Some(json!({"type": "call_initiated", "call_id": "x"})),
    )
    .await;
    assert_eq!(s, 403, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("events:write"));

    let out = api_key_create(&app.db_url, &["--tenant", "nope"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope"));
    let out = api_key_create(&app.db_url, &["--scope", "everything"]);
    assert!(!out.status.success(), "an unknown scope is refused");
    app.stop().await;
}

#[tokio::test]
async fn openapi_command_prints_the_served_document() {
    let app = TestApp::spawn().await;
    let out = Command::new(BIN).arg("openapi").output().unwrap();
    assert!(out.status.success());
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let (s, served) = app.get("/api/v1/openapi.json").await;
    assert_eq!(s, 200);
    assert_eq!(printed, served);
    app.stop().await;
}

/// Runs the binary in `dir` with no database settings from the environment.
fn run_in(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .current_dir(dir)
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("SWITCHBOARD_DATA_DIR")
        .env_remove("SWITCHBOARD_CONFIG")
        .env_remove("SWITCHBOARD_BOOTSTRAP_API_KEY")
        .env("SWITCHBOARD_LOG", "warn")
        .output()
        .expect("run switchboard")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn serve_on_a_busy_port_names_the_address_before_creating_anything() {
    let dir = tempfile::tempdir().unwrap();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let out = run_in(
        dir.path(),
        &["serve", "--listen", &addr, "--data-dir", "data"],
    );
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains(&format!("cannot listen on {addr}")), "{err}");
    assert!(
        !text(&out.stdout).contains("sb_"),
        "no key for a server that never ran"
    );
    assert!(
        !dir.path().join("data").exists(),
        "nothing is created before the address is bound"
    );
}

#[test]
fn a_bootstrap_key_under_32_characters_stops_serve_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().to_string();
    let out = Command::new(BIN)
        .current_dir(dir.path())
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
            "data",
        ])
        .env("SWITCHBOARD_BOOTSTRAP_API_KEY", "sb_too_short")
        .env("SWITCHBOARD_LOG", "warn")
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("SWITCHBOARD_BOOTSTRAP_API_KEY is 12 characters long")
            && err.contains("at least 32"),
        "{err}"
    );
    assert!(!dir.path().join("data/switchboard.db").exists());
}

#[test]
fn api_key_create_never_creates_a_database() {
    let dir = tempfile::tempdir().unwrap();
    // From a folder where `serve` never ran: the default ./data holds nothing.
    let out = run_in(dir.path(), &["api-key", "create"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("no database at ./data/switchboard.db") && err.contains("--data-dir"),
        "{err}"
    );
    assert!(!dir.path().join("data").exists(), "nothing was created");
    // The same with a --data-dir that holds no database.
    let out = run_in(
        dir.path(),
        &["api-key", "create", "--data-dir", "elsewhere"],
    );
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("no database at elsewhere/switchboard.db"));
    assert!(!dir.path().join("elsewhere").exists());
}

#[test]
fn an_unreachable_postgres_is_reported_with_its_cause() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    let out = run_in(dir.path(), &["api-key", "create", "--database-url", &url]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "cannot connect to PostgreSQL at 127.0.0.1:{port}/postgres"
        )) && err.contains("refused"),
        "{err}"
    );
    assert!(!err.contains("timed out"), "{err}");
}

#[tokio::test]
async fn a_missing_postgres_database_is_reported_by_name() {
    // Needs a PostgreSQL server: the one the PostgreSQL run of the suite uses.
    let Some(admin) = std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        eprintln!("TEST_DATABASE_URL unset: checked in the PostgreSQL run");
        return;
    };
    let (server, _) = admin.rsplit_once('/').unwrap();
    let url = format!("{server}/sb_no_such_database");
    let dir = tempfile::tempdir().unwrap();
    let out = run_in(dir.path(), &["api-key", "create", "--database-url", &url]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("database \"sb_no_such_database\" does not exist"),
        "{err}"
    );
    assert!(!err.contains("timed out"), "{err}");
}

#[test]
fn cli_errors_name_each_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_in(
        dir.path(),
        &["replay", "no-such-trace.csv", "--api-key", "k"],
    );
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.starts_with("error: cannot open no-such-trace.csv"),
        "{err}"
    );
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
}

/// The first `rows` calls of the Anonymous Bank trace, as a file of their own.
fn small_trace(dir: &std::path::Path, rows: usize) -> std::path::PathBuf {
    let full = support::shared_data("anonymous-bank/calls-1999-08-01_15.csv");
    let text = std::fs::read_to_string(&full).unwrap();
    let head: Vec<&str> = text.lines().take(rows + 1).collect();
    let path = dir.join("trace.csv");
    std::fs::write(&path, head.join("\n") + "\n").unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_says_how_to_leave_event_time_and_restore_clock_does_it() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let trace = small_trace(dir.path(), 50);
    let trace = trace.to_str().unwrap();
    let replay = |extra: &'static [&'static str]| {
        let mut args = vec!["replay", trace, "--url", &app.base, "--api-key", &app.key];
        args.extend_from_slice(extra);
        run_in(dir.path(), &args)
    };
    let clock = || async { app.get("/api/v1/tenant").await.1["clock"].clone() };

    let out = replay(&[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    assert!(
        printed.contains("clock:        event_time (was live)")
            && printed.contains("--restore-clock"),
        "{printed}"
    );
    assert_eq!(clock().await, "event_time");

    app.clock("live").await;
    let out = replay(&["--restore-clock", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (
            summary["clock_before"].as_str(),
            summary["clock_after"].as_str()
        ),
        (Some("live"), Some("live")),
        "{summary}"
    );
    assert_eq!(summary["rejected"], 0, "{summary}");
    assert_eq!(clock().await, "live");
    app.stop().await;
}

#[tokio::test]
async fn tenant_create_and_user_create_make_a_tenant_its_admin_can_log_in_to() {
    let app = TestApp::spawn().await;
    let out = Command::new(BIN)
        .args(["tenant", "create", "--slug", "initech", "--name", "Initech"])
        .args([
            "--time-zone",
            "America/Chicago",
            "--database-url",
            &app.db_url,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tid = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(tid.parse::<uuid::Uuid>().is_ok(), "{tid}");
    let bad = Command::new(BIN)
        .args([
            "tenant",
            "create",
            "--slug",
            "Bad Slug",
            "--name",
            "x",
            "--database-url",
            &app.db_url,
        ])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("slug"));

    let out = Command::new(BIN)
        .args([
            "user",
            "create",
            "--tenant",
            "initech",
            "--email",
            "Peter@Initech.test",
        ])
        .args(["--role", "tenant_admin", "--database-url", &app.db_url])
        .env("SWITCHBOARD_USER_PASSWORD", support::USER_PASSWORD)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (s, v) = app
        .login("peter@initech.test", support::USER_PASSWORD, None)
        .await;
    assert_eq!(s.as_u16(), 200, "{v}");
    let c = reqwest::Client::new();
    let r = c
        .get(app.url("/api/v1/tenant"))
        .bearer_auth(v["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let t: Value = r.json().await.unwrap();
    assert_eq!(
        (t["slug"].as_str(), t["time_zone"].as_str()),
        (Some("initech"), Some("America/Chicago"))
    );
    // A generated password is printed once, and a weak one is refused.
    let weak = Command::new(BIN)
        .args([
            "user",
            "create",
            "--email",
            "x@default.test",
            "--role",
            "agent",
            "--database-url",
            &app.db_url,
        ])
        .env("SWITCHBOARD_USER_PASSWORD", "password")
        .output()
        .unwrap();
    assert!(!weak.status.success());
    assert!(String::from_utf8_lossy(&weak.stderr).contains("too short"));
    let gen = Command::new(BIN)
        .args([
            "user",
            "create",
            "--email",
            "y@default.test",
            "--role",
            "agent",
            "--database-url",
            &app.db_url,
        ])
        .env_remove("SWITCHBOARD_USER_PASSWORD")
        .output()
        .unwrap();
    assert!(gen.status.success());
    let text = String::from_utf8(gen.stdout).unwrap();
    let pw = text
        .lines()
        .find_map(|l| l.strip_prefix("password (shown once): "))
        .expect(&text);
    assert_eq!(app.login("y@default.test", pw, None).await.0.as_u16(), 200);
}
