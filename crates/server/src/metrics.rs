//! Prometheus metrics: `GET /metrics` renders what the `metrics` facade recorded, in the
//! Prometheus text format. The names are [`switchboard_core::telemetry`]'s; `docs/metrics.md`
//! ("Operational metrics") lists each with its type, labels and unit.
//!
//! The `metrics` facade has one recorder per process, so it is installed once ([`handle`]) and
//! every server of the process shares it; each server keeps the [`PrometheusHandle`] in its
//! `AppState`. Two servers in one test process therefore add to the same counters: tests
//! compare before/after values.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use switchboard_core::telemetry as names;

use crate::app::AppState;

/// Content type of the Prometheus text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// How often histogram samples are folded into the rendered buckets when nobody scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);
/// Buckets of the latency histograms, seconds (0.5 ms to 10 s).
const SECONDS_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Buckets of the group-commit size histogram, events.
const EVENTS_BUCKETS: [f64; 12] = [
    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 5000.0, 20000.0,
];

/// The process's Prometheus recorder, installed on first call (later calls return the same
/// handle). A periodic upkeep thread keeps histogram memory bounded between scrapes.
///
/// Errors: another `metrics` recorder was installed in this process by someone else.
pub fn handle() -> anyhow::Result<PrometheusHandle> {
    static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let h = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(names::GROUP_COMMIT_EVENTS.into()),
                        &EVENTS_BUCKETS,
                    )
                })
                .and_then(|b| b.install_recorder())
                .map_err(|e| format!("cannot install the Prometheus recorder: {e}"))?;
            describe();
            let upkeep = h.clone();
            std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || loop {
                    std::thread::sleep(UPKEEP_EVERY);
                    upkeep.run_upkeep();
                })
                .map_err(|e| format!("cannot start the metrics upkeep thread: {e}"))?;
            Ok(h)
        })
        .clone()
        .map_err(anyhow::Error::msg)
}

/// Registers the help text and unit of every metric (the `# HELP` lines).
fn describe() {
    describe_counter!(
        names::HTTP_REQUESTS_TOTAL,
        "HTTP requests answered, by method, route pattern and status"
    );
    describe_histogram!(
        names::HTTP_REQUEST_DURATION_SECONDS,
        Unit::Seconds,
        "Time to produce an HTTP response, by method and route pattern"
    );
    describe_counter!(
        names::EVENTS_TOTAL,
        "Call events received, by outcome: accepted, duplicate, refused, unavailable"
    );
    describe_histogram!(
        names::GROUP_COMMIT_EVENTS,
        Unit::Count,
        "Events written by one group commit"
    );
    describe_histogram!(
        names::GROUP_COMMIT_DURATION_SECONDS,
        Unit::Seconds,
        "Duration of one group commit, retries included"
    );
    describe_counter!(
        names::GROUP_COMMIT_FAILURES_TOTAL,
        "Group commits given up after their retries"
    );
    describe_gauge!(names::LIVE_CALLS, Unit::Count, "Calls that have not ended");
    describe_gauge!(
        names::STREAM_SUBSCRIBERS,
        Unit::Count,
        "Open WebSocket stream subscribers"
    );
    describe_gauge!(
        names::WRITER_QUEUE_DEPTH,
        Unit::Count,
        "Write requests waiting for the group-commit writer"
    );
    describe_gauge!(
        names::STALE_TENANTS,
        Unit::Count,
        "Tenants refusing commands (503) until reloaded after a failed commit"
    );
}

/// `GET /metrics`: every metric in the Prometheus text format (no key: keep the port private
/// or filter the path at the proxy).
#[utoipa::path(get, path = "/metrics", operation_id = "metrics", tag = "ops",
    responses((status = 200, description = "Prometheus text exposition format", content_type = "text/plain")))]
pub async fn metrics(State(s): State<AppState>) -> Response {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], s.metrics.render()).into_response()
}

/// Middleware: counts each answered request by method, route pattern and status, and records
/// its duration. The route is the pattern (`/api/v1/calls/{id}`), never the raw path, so the
/// label set stays bounded; requests no route matched share `route="unmatched"`.
pub async fn track_http(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(req.method());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let resp = next.run(req).await;
    metrics::histogram!(names::HTTP_REQUEST_DURATION_SECONDS, "method" => method, "route" => route.clone())
        .record(started.elapsed().as_secs_f64());
    counter!(names::HTTP_REQUESTS_TOTAL, "method" => method, "route" => route, "status" => resp.status().as_u16().to_string())
        .increment(1);
    resp
}

/// Standard methods by name, anything else as `other` (a client cannot grow the label set).
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Counts one received call event by the HTTP status it was answered with (alone, or inside a
/// batch): 201 `accepted`, 200 `duplicate`, 503 `unavailable`, anything else `refused`.
pub fn count_event(status: StatusCode) {
    let outcome = match status {
        StatusCode::CREATED => "accepted",
        StatusCode::OK => "duplicate",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        _ => "refused",
    };
    counter!(names::EVENTS_TOTAL, "outcome" => outcome).increment(1);
}

/// Moves the live-calls gauge by `n` calls: a server adds the store's count when it starts and
/// takes it away when it stops; in between, committed `call_initiated` / `call_ended` events
/// move it (in the engine's writer). So the gauge is exact for one server per process, and in
/// a test process running several it is their sum.
pub fn add_live_calls(n: i64) {
    gauge!(names::LIVE_CALLS).increment(n as f64);
}

/// Counts one open stream subscriber for as long as it lives.
#[must_use = "the subscriber is counted only while the guard lives"]
pub struct SubscriberGuard(());

impl SubscriberGuard {
    /// Counts a subscriber in [`names::STREAM_SUBSCRIBERS`] until the guard is dropped.
    pub fn new() -> Self {
        gauge!(names::STREAM_SUBSCRIBERS).increment(1.0);
        SubscriberGuard(())
    }
}

impl Default for SubscriberGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for SubscriberGuard {
    fn drop(&mut self) {
        gauge!(names::STREAM_SUBSCRIBERS).decrement(1.0);
    }
}
