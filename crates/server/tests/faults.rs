//! Fault injection on the one write path, through the real server under concurrent load:
//!
//! - SQLite runs out of space (its database lives on a small tmpfs, grown again afterwards);
//! - PostgreSQL goes away and comes back (the server talks to it through a TCP proxy inside the
//!   test that cuts every connection and refuses new ones, then lets them through again).
//!
//! In both: every acknowledged event is in the store after recovery and after a restart; every
//! event answered 503 (always with `Retry-After`) and retried with its `event_id` is stored
//! exactly once; `/ready` is 503 during the fault and 200 after it; the log and the stream have
//! no seq gaps.
//!
//! The tmpfs needs root (`mount`), as CI has; without it the test fails, it is never skipped.

mod support;

use std::collections::{BTreeMap, HashSet};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use support::TestApp;

const WORKERS: usize = 6;
const CALLS_PER_WORKER: usize = 40;

/// What the load saw.
#[derive(Default)]
struct Seen {
    /// (call_id, event_id) answered 201 or 200.
    acked: Mutex<Vec<(String, String)>>,
    /// 503 answers (each carried `Retry-After`).
    unavailable: AtomicUsize,
    /// `/ready` answered 503 while the fault was on.
    ready_failed: AtomicBool,
}

fn lifecycle(call: &str) -> Vec<Value> {
    vec![
        json!({"type":"call_initiated","call_id":call,"queue_id":"q0","from":"+15551230000","event_id":format!("{call}#0")}),
        json!({"type":"call_routed","call_id":call,"agent_id":"a1","event_id":format!("{call}#1")}),
        json!({"type":"call_answered","call_id":call,"event_id":format!("{call}#2")}),
        json!({"type":"call_ended","call_id":call,"end_reason":"completed","event_id":format!("{call}#3")}),
    ]
}

/// Sends `CALLS_PER_WORKER` lifecycles; an event answered 503 is retried with the same
/// `event_id` until it is acknowledged.
async fn worker(base: String, key: String, w: usize, seen: Arc<Seen>) {
    let client = reqwest::Client::new();
    for c in 0..CALLS_PER_WORKER {
        let call = format!("w{w}c{c}");
        for ev in lifecycle(&call) {
            let mut tries = 0;
            loop {
                tries += 1;
                assert!(tries < 3000, "event {ev} never acknowledged");
                let r = client
                    .post(format!("{base}/api/v1/events"))
                    .header("X-API-Key", &key)
                    .json(&ev)
                    .send()
                    .await;
                let Ok(r) = r else {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                let status = r.status();
                let retry_after = r.headers().get("retry-after").cloned();
                let body: Value = r.json().await.unwrap_or(Value::Null);
                match status {
                    StatusCode::CREATED | StatusCode::OK => {
                        seen.acked
                            .lock()
                            .unwrap()
                            .push((call.clone(), ev["event_id"].as_str().unwrap().to_owned()));
                        break;
                    }
                    StatusCode::SERVICE_UNAVAILABLE => {
                        assert!(retry_after.is_some(), "503 without Retry-After: {body}");
                        assert_eq!(body["status"], 503, "problem+json: {body}");
                        seen.unavailable.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    s => panic!("unexpected {s} for {ev}: {body}"),
                }
            }
        }
    }
}

async fn ready_status(app: &TestApp) -> StatusCode {
    app.client
        .get(app.url("/ready"))
        .send()
        .await
        .map(|r| r.status())
        .unwrap_or(StatusCode::SERVICE_UNAVAILABLE)
}

/// Runs the load; `fault_on` starts the fault once some events are acknowledged, `fault_off`
/// ends it once the load has been refused for a while.
async fn run_with_fault(
    app: &TestApp,
    fault_on: impl std::future::Future<Output = ()>,
    fault_off: impl std::future::Future<Output = ()>,
) -> Arc<Seen> {
    app.queue(json!({"id":"q0"})).await;
    let seen = Arc::new(Seen::default());
    let tenant_id = app
        .state
        .engine
        .store()
        .tenant_by_slug("default")
        .await
        .unwrap()
        .id;
    let mut stream = app.state.engine.subscribe(tenant_id);
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| tokio::spawn(worker(app.base.clone(), app.key.clone(), w, seen.clone())))
        .collect();
    wait_for(
        || seen.acked.lock().unwrap().len() >= 40,
        "first acknowledgements",
    )
    .await;
    fault_on.await;
    // Refused for a while, and /ready says so.
    for _ in 0..600 {
        if ready_status(app).await == StatusCode::SERVICE_UNAVAILABLE {
            seen.ready_failed.store(true, Ordering::Relaxed);
        }
        if seen.unavailable.load(Ordering::Relaxed) >= 30
            && seen.ready_failed.load(Ordering::Relaxed)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        seen.unavailable.load(Ordering::Relaxed) >= 30,
        "the fault never refused events"
    );
    assert!(
        seen.ready_failed.load(Ordering::Relaxed),
        "/ready stayed 200 during the fault"
    );
    fault_off.await;
    for w in workers {
        tokio::time::timeout(Duration::from_secs(120), w)
            .await
            .expect("load finishes after recovery")
            .expect("worker");
    }
    // /ready follows the store back.
    let mut ok = false;
    for _ in 0..200 {
        if ready_status(app).await == StatusCode::OK {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ok, "/ready did not return to 200 after recovery");
    // The stream carried every committed event once, in order, without gaps.
    let mut seqs = Vec::new();
    while let Ok(m) = stream.try_recv() {
        seqs.push(m.seq);
    }
    assert_contiguous(&seqs, "stream");
    seen
}

async fn wait_for(mut f: impl FnMut() -> bool, what: &str) {
    for _ in 0..1000 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

fn assert_contiguous(seqs: &[i64], what: &str) {
    assert!(!seqs.is_empty(), "{what}: no events");
    for w in seqs.windows(2) {
        assert_eq!(
            w[1],
            w[0] + 1,
            "{what}: seq gap or repeat between {} and {}",
            w[0],
            w[1]
        );
    }
}

/// Every acknowledged event is stored exactly once, every call's lifecycle is complete, and
/// the tenant's log runs 1..=n without gaps.
async fn verify_store(app: &TestApp, seen: &Seen) {
    let store = app.state.engine.store();
    let tenant = store.tenant_by_slug("default").await.unwrap();
    let events = store.events_since(tenant.id, 0, 1_000_000).await.unwrap();
    let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs.first(), Some(&1), "the log starts at seq 1");
    assert_contiguous(&seqs, "log");
    assert_eq!(
        tenant.last_seq,
        *seqs.last().unwrap(),
        "tenants.last_seq is the log's head"
    );
    let mut stored: BTreeMap<(String, String), usize> = BTreeMap::new();
    for e in &events {
        if let Some(id) = &e.event_id {
            *stored
                .entry((e.external_call_id.clone(), id.clone()))
                .or_default() += 1;
        }
    }
    let acked: HashSet<(String, String)> = seen.acked.lock().unwrap().iter().cloned().collect();
    assert_eq!(
        acked.len(),
        WORKERS * CALLS_PER_WORKER * 4,
        "every event was acknowledged"
    );
    for k in &acked {
        assert_eq!(
            stored.get(k),
            Some(&1),
            "acknowledged event {k:?} stored exactly once"
        );
    }
    assert_eq!(
        stored.len(),
        acked.len(),
        "nothing stored that was not acknowledged"
    );
    let (s, v) = app.get("/api/v1/calls?status=ended&limit=500").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        v["items"].as_array().unwrap().len(),
        WORKERS * CALLS_PER_WORKER
    );
}

fn sh(cmd: &str) {
    let out = Command::new("sh").arg("-c").arg(cmd).output().expect("sh");
    assert!(
        out.status.success(),
        "`{cmd}` failed (this test needs root to mount a tmpfs): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Bytes used on the filesystem at `dir`.
fn used_kib(dir: &std::path::Path) -> u64 {
    let out = Command::new("df")
        .args(["-k", "--output=used"])
        .arg(dir)
        .output()
        .expect("df");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .expect("df output")
}

struct Tmpfs(tempfile::TempDir);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_disk_full_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    sh(&format!(
        "mount -t tmpfs -o size=32m tmpfs {}",
        path.display()
    ));
    let _mount = Tmpfs(dir);
    let url = format!("sqlite://{}", path.join("switchboard.db").display());
    let app = TestApp::spawn_on(url.clone(), None).await;
    let p1 = path.clone();
    let p2 = path.clone();
    let seen = run_with_fault(
        &app,
        async move {
            // Leave the database a little room, then none. The load keeps writing, so the
            // usage read may be stale by the time of the remount (then it is refused): retry.
            for _ in 0..50 {
                let size = used_kib(&p1) + 256;
                let ok = Command::new("mount")
                    .args(["-o", &format!("remount,size={size}k")])
                    .arg(&p1)
                    .stderr(std::process::Stdio::null())
                    .status()
                    .expect("mount")
                    .success();
                if ok {
                    return;
                }
            }
            panic!("could not shrink the tmpfs under the database");
        },
        async move { sh(&format!("mount -o remount,size=64m {}", p2.display())) },
    )
    .await;
    verify_store(&app, &seen).await;
    let (url, dir) = app.stop().await;
    let app = TestApp::spawn_on(url, dir).await;
    verify_store(&app, &seen).await;
    app.stop().await;
}

/// A TCP proxy to PostgreSQL that can cut every connection and refuse new ones.
struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(target: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let (up2, conns2) = (up.clone(), conns.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if !up2.load(Ordering::SeqCst) {
                    let _ = client.shutdown().await;
                    continue;
                }
                let target = target.clone();
                conns2.lock().unwrap().push(tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                }));
            }
        });
        Proxy { port, up, conns }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_outage_loses_nothing_acknowledged() {
    use sqlx::Connection;
    let admin = std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| u.starts_with("postgres"))
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let name = format!("sb_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {admin} is needed for this test: {e}"));
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap();
    let host = admin
        .split('@')
        .nth(1)
        .and_then(|h| h.split('/').next())
        .unwrap_or("127.0.0.1:5432")
        .to_owned();
    let proxy = Arc::new(Proxy::start(host).await);
    let url = format!("postgres://postgres@127.0.0.1:{}/{name}", proxy.port);
    let app = TestApp::spawn_on(url, None).await;
    let (p1, p2) = (proxy.clone(), proxy.clone());
    let seen = run_with_fault(&app, async move { p1.cut() }, async move { p2.restore() }).await;
    verify_store(&app, &seen).await;
    let (url, dir) = app.stop().await;
    let app = TestApp::spawn_on(url, dir).await;
    verify_store(&app, &seen).await;
    app.stop().await;
    let _ = sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&mut conn)
        .await;
}

/// A supervised engine task that dies (here: the writer, aborted) makes the server unready at
/// once and `serve` return an error, so the process exits non-zero rather than limp on.
#[tokio::test]
async fn a_dead_writer_stops_the_server() {
    let app = TestApp::spawn().await;
    assert_eq!(ready_status(&app).await, StatusCode::OK);
    app.state.engine.abort_task_for_tests("writer");
    let mut unready = false;
    for _ in 0..500 {
        if app.state.engine.fatal().is_cancelled() {
            unready = !app.state.engine.is_ready();
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(unready, "the engine still says ready with its writer dead");
    let err = app
        .exit()
        .await
        .expect_err("serve must fail when the writer dies");
    assert!(err.to_string().contains("engine task died"), "{err}");
}
