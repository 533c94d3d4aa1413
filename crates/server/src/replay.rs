//! The replay client (`switchboard replay`): sends a recorded call trace to a running
//! Switchboard server over HTTP.
//!
//! [`run`] reads an Anonymous Bank CSV with [`switchboard_replay`], creates the six Anonymous
//! Bank queues, switches the tenant to event-time clock, then posts all events in time order
//! (see [`switchboard_replay::interleave`]) to `POST /api/v1/events/batch`, one batch at a
//! time, and returns a [`ReplaySummary`]. Event ids are deterministic, so retried batches (and
//! whole re-runs) are deduplicated by the server.
//!
//! The tenant is left on the `event_time` clock (its live timers stop) unless
//! [`ReplayOptions::restore_clock`] asks to switch it back to the clock it had; the summary
//! says which clock the tenant is on and how to switch back.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use switchboard_core::{BatchResponse, IncomingEvent, Problem};
use switchboard_replay::{ReplayError, Trace, ANONYMOUS_BANK_QUEUES};

/// Default number of events per batch request.
pub const DEFAULT_BATCH_SIZE: usize = 1000;
/// Largest batch the server takes (`POST /api/v1/events/batch`).
pub const MAX_BATCH_SIZE: usize = 1000;
/// How many times a request is retried after a transport error or a 429/5xx answer.
pub const MAX_RETRIES: u32 = 5;
/// Number of rejection details kept in [`ReplaySummary::rejections`].
pub const MAX_REJECTION_DETAILS: usize = 10;

/// First retry delay; doubled on every further retry (200 ms, 400 ms, … 3.2 s).
const BACKOFF_BASE: Duration = Duration::from_millis(200);
/// Upper bound for a server-requested `Retry-After` delay.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// Longest response-body excerpt kept in error messages, in bytes.
const BODY_EXCERPT: usize = 500;

/// What to replay, and where to.
#[derive(Clone)]
pub struct ReplayOptions {
    /// The Anonymous Bank CSV file to replay.
    pub file: PathBuf,
    /// Base URL of the Switchboard server, e.g. `http://127.0.0.1:8080` (no `/api/v1`).
    pub url: String,
    /// API key sent as the `X-API-Key` header.
    pub api_key: String,
    /// Events per batch request, 1..=[`MAX_BATCH_SIZE`] (default [`DEFAULT_BATCH_SIZE`]).
    pub batch_size: usize,
    /// Show a progress bar (events sent / total) on stderr.
    pub progress: bool,
    /// After the events, switch the tenant back to the clock it had before the replay
    /// (needs the `tenant:read` scope to read it). Default false: the tenant stays on
    /// `event_time`.
    pub restore_clock: bool,
}

impl ReplayOptions {
    /// Options with the default batch size and no progress bar.
    pub fn new(
        file: impl Into<PathBuf>,
        url: impl Into<String>,
        api_key: impl Into<String>,
    ) -> Self {
        ReplayOptions {
            file: file.into(),
            url: url.into(),
            api_key: api_key.into(),
            batch_size: DEFAULT_BATCH_SIZE,
            progress: false,
            restore_clock: false,
        }
    }
}

impl fmt::Debug for ReplayOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplayOptions")
            .field("file", &self.file)
            .field("url", &self.url)
            .field("api_key", &"<redacted>")
            .field("batch_size", &self.batch_size)
            .field("progress", &self.progress)
            .field("restore_clock", &self.restore_clock)
            .finish()
    }
}

/// One event the server rejected (from a batch answer's `results`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    /// Position of the event in the whole replay stream (0-based, over all batches).
    pub index: usize,
    /// The event's call id.
    pub call_id: String,
    /// The event's type, e.g. `call_queued`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The per-event HTTP status the server gave (4xx).
    pub status: u16,
    /// The problem's `detail` (or `title` when there is no detail).
    pub detail: String,
}

/// The outcome of a replay.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplaySummary {
    /// Calls read from the trace.
    pub calls: u64,
    /// Data rows in the trace file (header excluded); `calls + Σ skipped_rows == rows`.
    pub rows: u64,
    /// Rows that produced no call, by reason (`phantom`, `duplicate_call_id`, parse errors).
    pub skipped_rows: BTreeMap<String, u64>,
    /// Events posted (all of the trace's events when the run succeeds).
    pub events_sent: u64,
    /// Events the server accepted as new (sum of the batches' `accepted`).
    pub accepted: u64,
    /// Events the server had already seen (sum of `duplicates`; e.g. from a retried batch).
    pub duplicates: u64,
    /// Events the server rejected (sum of `rejected`).
    pub rejected: u64,
    /// The first [`MAX_REJECTION_DETAILS`] rejections, in stream order.
    pub rejections: Vec<Rejection>,
    /// Batch requests that succeeded.
    pub batches: u64,
    /// Requests repeated after a transport error or a 429/5xx answer (all requests).
    pub retries: u64,
    /// Median batch round trip in milliseconds (nearest rank; the successful attempt only,
    /// request sent to response body read).
    pub batch_p50_ms: f64,
    /// 99th-percentile batch round trip in milliseconds (nearest rank).
    pub batch_p99_ms: f64,
    /// Wall time of the whole run in seconds (reading the file, setup and sending).
    pub elapsed_s: f64,
    /// `events_sent / elapsed_s`.
    pub events_per_s: f64,
    /// The tenant's timer clock before the replay (`live` or `event_time`); `None` when the
    /// key could not read it (no `tenant:read` scope).
    pub clock_before: Option<String>,
    /// The tenant's timer clock after the replay: `event_time`, or `clock_before` when
    /// [`ReplayOptions::restore_clock`] was set.
    pub clock_after: String,
}

impl fmt::Display for ReplaySummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let skipped: u64 = self.skipped_rows.values().sum();
        writeln!(f, "rows:         {}", self.rows)?;
        write!(f, "skipped rows: {skipped}")?;
        if !self.skipped_rows.is_empty() {
            let parts: Vec<String> = self
                .skipped_rows
                .iter()
                .map(|(reason, n)| format!("{reason} {n}"))
                .collect();
            write!(f, " ({})", parts.join(", "))?;
        }
        writeln!(f)?;
        writeln!(f, "calls:        {}", self.calls)?;
        writeln!(f, "events sent:  {}", self.events_sent)?;
        writeln!(f, "accepted:     {}", self.accepted)?;
        writeln!(f, "duplicates:   {}", self.duplicates)?;
        writeln!(f, "rejected:     {}", self.rejected)?;
        writeln!(
            f,
            "batches:      {} (p50 {:.1} ms, p99 {:.1} ms, {} retries)",
            self.batches, self.batch_p50_ms, self.batch_p99_ms, self.retries
        )?;
        write!(
            f,
            "elapsed:      {:.2} s ({:.0} events/s)",
            self.elapsed_s, self.events_per_s
        )?;
        let before = self.clock_before.as_deref().unwrap_or("unknown");
        if self.clock_after == EVENT_TIME && before != EVENT_TIME {
            write!(
                f,
                "\nclock:        event_time (was {before}): this tenant's live timers (SLA, ring \
                 timeout, hold) stay stopped until it is switched back: re-run with \
                 --restore-clock, or PATCH /api/v1/tenant {{\"clock\":\"live\"}}"
            )?;
        } else {
            write!(f, "\nclock:        {} (as before)", self.clock_after)?;
        }
        if !self.rejections.is_empty() {
            write!(f, "\nfirst rejections:")?;
            for r in &self.rejections {
                write!(
                    f,
                    "\n  #{} {} {} -> {}: {}",
                    r.index, r.call_id, r.event_type, r.status, r.detail
                )?;
            }
        }
        Ok(())
    }
}

/// Why a replay failed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayClientError {
    /// The options are unusable (batch size, URL, API key).
    #[error("invalid replay options: {0}")]
    InvalidOptions(String),
    /// The trace file could not be opened.
    #[error("cannot open {}: {source}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The trace file could not be read as an Anonymous Bank CSV.
    #[error("cannot read trace {}: {source}", path.display())]
    Trace {
        /// The file.
        path: PathBuf,
        /// The reader's error.
        source: ReplayError,
    },
    /// Reading the trace did not finish (the blocking task panicked or was cancelled).
    #[error("reading the trace did not finish: {0}")]
    Reader(String),
    /// A request failed at the transport level, after all retries.
    #[error("{what}: request failed: {source}")]
    Http {
        /// The step, e.g. `POST /api/v1/events/batch (batch 3)`.
        what: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with an unexpected status (after retries for 429/5xx).
    #[error("{what}: unexpected HTTP status {status}: {body}")]
    Status {
        /// The step.
        what: String,
        /// The HTTP status.
        status: u16,
        /// The start of the response body (problem detail when there is one).
        body: String,
    },
    /// A success answer whose body is not the expected JSON.
    #[error("{what}: unexpected response body: {source}")]
    Decode {
        /// The step.
        what: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// A batch could not be encoded as JSON.
    #[error("encoding a batch failed: {0}")]
    Encode(#[source] serde_json::Error),
}

/// Replays `opts.file` against the server at `opts.url`.
///
/// Steps: (1) read the trace; (2) `POST /api/v1/queues` `{"id","name"}` for each of
/// [`ANONYMOUS_BANK_QUEUES`] (201 created and 409 already exists are fine); (3) `PATCH
/// /api/v1/tenant` `{"clock":"event_time"}` (any 2xx); (4) post the interleaved events in
/// batches of `opts.batch_size` to `POST /api/v1/events/batch` `{"events":[…]}`, strictly one
/// after the other, adding up the answers' `accepted`/`duplicates`/`rejected`.
///
/// Every request carries `X-API-Key`. A transport error or a 429/5xx answer is retried up to
/// [`MAX_RETRIES`] times with exponential backoff (200 ms doubling, or the server's
/// `Retry-After` when longer, capped at 30 s) — safe because event ids are deterministic and
/// the setup calls are idempotent. Any other unexpected status is an error.
pub async fn run(opts: &ReplayOptions) -> Result<ReplaySummary, ReplayClientError> {
    let started = Instant::now();
    if opts.batch_size == 0 || opts.batch_size > MAX_BATCH_SIZE {
        return Err(ReplayClientError::InvalidOptions(format!(
            "batch size must be 1..={MAX_BATCH_SIZE}, got {}",
            opts.batch_size
        )));
    }
    let base = opts.url.trim_end_matches('/').to_string();
    reqwest::Url::parse(&base)
        .map_err(|e| ReplayClientError::InvalidOptions(format!("url {:?}: {e}", opts.url)))?;
    let client = Client::new(base, &opts.api_key)?;

    // 1. The trace (blocking file I/O off the async workers).
    let trace = read_trace(opts.file.clone()).await?;
    let events = switchboard_replay::interleave(&trace.calls);

    // 2. Queues.
    for queue in ANONYMOUS_BANK_QUEUES {
        let what = format!("POST /api/v1/queues ({queue})");
        let body = serde_json::json!({ "id": queue, "name": queue });
        let answer = client
            .send(&what, Method::POST, "/api/v1/queues", json_bytes(&body)?)
            .await?;
        if !matches!(answer.status, StatusCode::CREATED | StatusCode::CONFLICT) {
            return Err(answer.unexpected(what));
        }
    }

    // 3. Event-time clock, remembering the clock to restore.
    let clock_before = tenant_clock(&client, opts.restore_clock).await?;
    set_clock(&client, EVENT_TIME).await?;

    // 4. Events.
    let bar = if opts.progress {
        let bar = ProgressBar::new(events.len() as u64);
        if let Ok(style) = ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {human_pos}/{human_len} events ({per_sec}, eta {eta})",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut tally = Tally::default();
    let mut latencies: Vec<Duration> = Vec::with_capacity(events.len() / opts.batch_size + 1);
    let mut events_sent = 0u64;
    for (batch_no, chunk) in events.chunks(opts.batch_size).enumerate() {
        let what = format!("POST /api/v1/events/batch (batch {})", batch_no + 1);
        let body =
            serde_json::to_vec(&BatchBody { events: chunk }).map_err(ReplayClientError::Encode)?;
        let answer = match client
            .send(&what, Method::POST, "/api/v1/events/batch", body)
            .await
        {
            Ok(a) if a.status.is_success() => a,
            Ok(a) => {
                bar.abandon();
                return Err(a.unexpected(what));
            }
            Err(e) => {
                bar.abandon();
                return Err(e);
            }
        };
        let parsed: BatchResponse = match serde_json::from_slice(&answer.body) {
            Ok(p) => p,
            Err(source) => {
                bar.abandon();
                return Err(ReplayClientError::Decode { what, source });
            }
        };
        tally.add(&parsed, chunk, batch_no * opts.batch_size);
        latencies.push(answer.latency);
        events_sent += chunk.len() as u64;
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();

    // 5. The clock the tenant had, if asked.
    let clock_after = match &clock_before {
        Some(c) if opts.restore_clock && c != EVENT_TIME => {
            set_clock(&client, c).await?;
            c.clone()
        }
        _ => EVENT_TIME.to_string(),
    };

    let elapsed = started.elapsed().as_secs_f64();
    let (p50, p99) = (
        percentile_ms(&mut latencies, 50.0),
        percentile_ms(&mut latencies, 99.0),
    );
    Ok(ReplaySummary {
        calls: trace.calls.len() as u64,
        rows: trace.rows,
        skipped_rows: trace.skipped.clone(),
        events_sent,
        accepted: tally.accepted,
        duplicates: tally.duplicates,
        rejected: tally.rejected,
        rejections: tally.rejections,
        batches: latencies.len() as u64,
        retries: client.retries.load(Ordering::Relaxed),
        batch_p50_ms: p50,
        batch_p99_ms: p99,
        elapsed_s: elapsed,
        events_per_s: if elapsed > 0.0 {
            events_sent as f64 / elapsed
        } else {
            0.0
        },
        clock_before,
        clock_after,
    })
}

/// The clock a replay runs on.
const EVENT_TIME: &str = "event_time";

/// The tenant's clock (`GET /api/v1/tenant`). Without `required`, a key that may not read the
/// tenant gives `None`; with it, that is an error (the clock could not be restored).
async fn tenant_clock(
    client: &Client,
    required: bool,
) -> Result<Option<String>, ReplayClientError> {
    #[derive(serde::Deserialize)]
    struct Tenant {
        clock: String,
    }
    let what = "GET /api/v1/tenant".to_string();
    let answer = client
        .send(&what, Method::GET, "/api/v1/tenant", Vec::new())
        .await?;
    if !answer.status.is_success() {
        return if required {
            Err(answer.unexpected(format!("{what} (to restore the clock afterwards)")))
        } else {
            Ok(None)
        };
    }
    let t: Tenant = serde_json::from_slice(&answer.body)
        .map_err(|source| ReplayClientError::Decode { what, source })?;
    Ok(Some(t.clock))
}

/// Switches the tenant's timer clock (`PATCH /api/v1/tenant`).
async fn set_clock(client: &Client, clock: &str) -> Result<(), ReplayClientError> {
    let what = format!("PATCH /api/v1/tenant (clock {clock})");
    let body = serde_json::json!({ "clock": clock });
    let answer = client
        .send(&what, Method::PATCH, "/api/v1/tenant", json_bytes(&body)?)
        .await?;
    if !answer.status.is_success() {
        return Err(answer.unexpected(what));
    }
    Ok(())
}

async fn read_trace(path: PathBuf) -> Result<Trace, ReplayClientError> {
    tokio::task::spawn_blocking(move || {
        let file = std::fs::File::open(&path).map_err(|source| ReplayClientError::Open {
            path: path.clone(),
            source,
        })?;
        switchboard_replay::read_anonymous_bank(std::io::BufReader::new(file))
            .map_err(|source| ReplayClientError::Trace { path, source })
    })
    .await
    .map_err(|e| ReplayClientError::Reader(e.to_string()))?
}

fn json_bytes(v: &serde_json::Value) -> Result<Vec<u8>, ReplayClientError> {
    serde_json::to_vec(v).map_err(ReplayClientError::Encode)
}

/// `{"events": [...]}`, the batch request body (core's events serialize to the wire JSON).
#[derive(Serialize)]
struct BatchBody<'a> {
    events: &'a [&'a IncomingEvent],
}

/// Running totals over batch answers.
#[derive(Debug, Default)]
struct Tally {
    accepted: u64,
    duplicates: u64,
    rejected: u64,
    rejections: Vec<Rejection>,
}

impl Tally {
    /// Adds one batch answer; `offset` is the stream index of the batch's first event.
    fn add(&mut self, resp: &BatchResponse, batch: &[&IncomingEvent], offset: usize) {
        self.accepted += resp.accepted as u64;
        self.duplicates += resp.duplicates as u64;
        self.rejected += resp.rejected as u64;
        for r in &resp.results {
            if self.rejections.len() >= MAX_REJECTION_DETAILS {
                break;
            }
            if r.status < 400 {
                continue;
            }
            let event = batch.get(r.index);
            self.rejections.push(Rejection {
                index: offset + r.index,
                call_id: event.map(|e| e.call_id.to_string()).unwrap_or_default(),
                event_type: event
                    .map(|e| e.kind.type_name().to_string())
                    .unwrap_or_default(),
                status: r.status,
                detail: r
                    .problem
                    .as_ref()
                    .and_then(Problem::text)
                    .unwrap_or_default()
                    .to_string(),
            });
        }
    }
}

/// Nearest-rank percentile (`p` in 0..=100) of `samples` in milliseconds; 0 when empty.
/// Sorts `samples` in place.
fn percentile_ms(samples: &mut [Duration], p: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    samples.sort_unstable();
    let n = samples.len();
    let rank = ((p / 100.0) * n as f64).ceil() as usize;
    let i = rank.clamp(1, n) - 1;
    samples[i].as_secs_f64() * 1000.0
}

/// A server answer: status, body and the round trip of the attempt that produced it.
struct Answer {
    status: StatusCode,
    body: Vec<u8>,
    latency: Duration,
}

impl Answer {
    fn unexpected(&self, what: String) -> ReplayClientError {
        ReplayClientError::Status {
            what,
            status: self.status.as_u16(),
            body: body_excerpt(&self.body),
        }
    }
}

/// The problem `detail`/`title` when the body is a problem object, else the start of the body.
fn body_excerpt(body: &[u8]) -> String {
    if let Ok(problem) = serde_json::from_slice::<Problem>(body) {
        if let Some(text) = problem.text() {
            return text.to_string();
        }
    }
    let text = String::from_utf8_lossy(body);
    let mut end = text.len().min(BODY_EXCERPT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].trim().to_string()
}

fn is_retryable(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// Delay before retry number `retry` (1-based): exponential, or `Retry-After` (seconds) when
/// the server asked for longer.
fn backoff(retry: u32, retry_after: Option<Duration>) -> Duration {
    let exp = BACKOFF_BASE * 2u32.saturating_pow(retry.saturating_sub(1));
    match retry_after {
        Some(ra) => exp.max(ra.min(MAX_RETRY_AFTER)),
        None => exp,
    }
}

/// HTTP client bound to one server and API key, retrying transient failures.
struct Client {
    http: reqwest::Client,
    base: String,
    retries: AtomicU64,
}

impl Client {
    fn new(base: String, api_key: &str) -> Result<Self, ReplayClientError> {
        let mut key = HeaderValue::from_str(api_key).map_err(|_| {
            ReplayClientError::InvalidOptions("the API key is not a valid header value".into())
        })?;
        key.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", key);
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| ReplayClientError::InvalidOptions(format!("HTTP client: {e}")))?;
        Ok(Client {
            http,
            base,
            retries: AtomicU64::new(0),
        })
    }

    /// Sends a JSON request, retrying transport errors and 429/5xx answers up to
    /// [`MAX_RETRIES`] times. Returns the last answer (which may still be 429/5xx when the
    /// retries ran out) or the last transport error.
    async fn send(
        &self,
        what: &str,
        method: Method,
        path: &str,
        body: Vec<u8>,
    ) -> Result<Answer, ReplayClientError> {
        let url = format!("{}{path}", self.base);
        let mut retry = 0u32;
        loop {
            let start = Instant::now();
            let attempt = async {
                let resp = self
                    .http
                    .request(method.clone(), &url)
                    .header(CONTENT_TYPE, "application/json")
                    .body(body.clone())
                    .send()
                    .await?;
                let status = resp.status();
                let retry_after = resp
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                let bytes = resp.bytes().await?;
                Ok::<_, reqwest::Error>((status, retry_after, bytes.to_vec()))
            }
            .await;
            let latency = start.elapsed();
            let retry_after = match attempt {
                Ok((status, retry_after, body)) => {
                    if !is_retryable(status) || retry >= MAX_RETRIES {
                        return Ok(Answer {
                            status,
                            body,
                            latency,
                        });
                    }
                    retry_after
                }
                Err(source) => {
                    if source.is_builder() || retry >= MAX_RETRIES {
                        return Err(ReplayClientError::Http {
                            what: what.to_string(),
                            source,
                        });
                    }
                    None
                }
            };
            retry += 1;
            self.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(backoff(retry, retry_after)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_core::{BatchItem, EventKind, ExternalCallId};

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&m| Duration::from_millis(m)).collect()
    }

    #[test]
    fn nearest_rank_percentiles() {
        assert_eq!(percentile_ms(&mut [], 50.0), 0.0);
        assert_eq!(percentile_ms(&mut ms(&[7]), 99.0), 7.0);
        let mut v = ms(&(1..=100).rev().collect::<Vec<_>>());
        assert_eq!(percentile_ms(&mut v, 50.0), 50.0);
        assert_eq!(percentile_ms(&mut v, 99.0), 99.0);
        assert_eq!(percentile_ms(&mut v, 100.0), 100.0);
        let mut v = ms(&[40, 10, 30, 20]);
        assert_eq!(percentile_ms(&mut v, 50.0), 20.0);
        assert_eq!(percentile_ms(&mut v, 99.0), 40.0);
    }

    #[test]
    fn backoff_doubles_and_honours_retry_after() {
        assert_eq!(backoff(1, None), Duration::from_millis(200));
        assert_eq!(backoff(2, None), Duration::from_millis(400));
        assert_eq!(backoff(5, None), Duration::from_millis(3200));
        assert_eq!(
            backoff(1, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        assert_eq!(backoff(1, Some(Duration::from_secs(3600))), MAX_RETRY_AFTER);
        assert!(is_retryable(StatusCode::SERVICE_UNAVAILABLE));
        assert!(is_retryable(StatusCode::TOO_MANY_REQUESTS));
        assert!(is_retryable(StatusCode::INTERNAL_SERVER_ERROR));
        assert!(!is_retryable(StatusCode::BAD_REQUEST));
        assert!(!is_retryable(StatusCode::UNAUTHORIZED));
    }

    #[test]
    fn tally_counts_and_keeps_first_rejections() {
        let events: Vec<IncomingEvent> = (0..12)
            .map(|n| IncomingEvent {
                event_id: Some(format!("c{n}#0")),
                call_id: ExternalCallId::parse(&format!("c{n}")).unwrap(),
                timestamp: Some(0),
                kind: EventKind::CallAnswered {
                    agent_id: None,
                    wait_time: None,
                },
            })
            .collect();
        let batch: Vec<&IncomingEvent> = events.iter().collect();
        let body = serde_json::json!({
            "accepted": 1, "duplicates": 1, "rejected": 10,
            "results": [
                {"index": 0, "status": 201},
                {"index": 1, "status": 200},
            ]
        });
        let mut resp: BatchResponse = serde_json::from_value(body).unwrap();
        for i in 2..12 {
            let mut problem: Problem =
                serde_json::from_value(serde_json::json!({"title": "Conflict", "status": 409}))
                    .unwrap();
            problem.detail = (i % 2 == 0).then(|| format!("bad {i}"));
            resp.results.push(BatchItem::refused(i, problem));
        }
        let mut tally = Tally::default();
        tally.add(&resp, &batch, 1000);
        tally.add(&resp, &batch, 2000);
        assert_eq!(
            (tally.accepted, tally.duplicates, tally.rejected),
            (2, 2, 20)
        );
        assert_eq!(tally.rejections.len(), MAX_REJECTION_DETAILS);
        let first = &tally.rejections[0];
        assert_eq!(first.index, 1002);
        assert_eq!(first.call_id, "c2");
        assert_eq!(first.event_type, "call_answered");
        assert_eq!(first.status, 409);
        assert_eq!(first.detail, "bad 2");
        assert_eq!(tally.rejections[1].detail, "Conflict");
        assert_eq!(tally.rejections[9].index, 1011);
    }

    #[test]
    fn body_excerpt_prefers_problem_detail() {
        let problem = br#"{"type":"about:blank","title":"Unauthorized","status":401,"detail":"missing API key"}"#;
        assert_eq!(body_excerpt(problem), "missing API key");
        assert_eq!(body_excerpt(b"  plain text \n"), "plain text");
        let long = "é".repeat(400);
        assert!(body_excerpt(long.as_bytes()).len() <= BODY_EXCERPT);
    }

    #[test]
    fn summary_display_and_json() {
        let s = ReplaySummary {
            calls: 2,
            rows: 3,
            skipped_rows: [("phantom".to_string(), 1)].into_iter().collect(),
            events_sent: 7,
            accepted: 6,
            duplicates: 0,
            rejected: 1,
            rejections: vec![Rejection {
                index: 4,
                call_id: "1999-08-01/1/8:00:00".into(),
                event_type: "call_queued".into(),
                status: 422,
                detail: "unknown queue".into(),
            }],
            batches: 1,
            retries: 0,
            batch_p50_ms: 12.25,
            batch_p99_ms: 12.25,
            elapsed_s: 0.5,
            events_per_s: 14.0,
            clock_before: Some("live".into()),
            clock_after: "event_time".into(),
        };
        let text = s.to_string();
        assert!(text.contains("skipped rows: 1 (phantom 1)"), "{text}");
        assert!(
            text.contains("clock:        event_time (was live)")
                && text.contains("--restore-clock"),
            "{text}"
        );
        assert!(
            text.contains("p50 12.2 ms") || text.contains("p50 12.3 ms"),
            "{text}"
        );
        assert!(text.contains("#4 1999-08-01/1/8:00:00 call_queued -> 422: unknown queue"));
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["rejections"][0]["type"], "call_queued");
        assert_eq!(v["skipped_rows"]["phantom"], 1);
    }

    #[test]
    fn options_debug_redacts_key() {
        let o = ReplayOptions::new("f.csv", "http://127.0.0.1:8080", "secret-key");
        assert_eq!(o.batch_size, DEFAULT_BATCH_SIZE);
        assert!(!format!("{o:?}").contains("secret-key"));
    }

    #[tokio::test]
    async fn invalid_options_fail_before_any_request() {
        let mut o = ReplayOptions::new("/nonexistent.csv", "http://127.0.0.1:1", "k");
        o.batch_size = 1001;
        assert!(matches!(
            run(&o).await,
            Err(ReplayClientError::InvalidOptions(_))
        ));
        o.batch_size = 0;
        assert!(matches!(
            run(&o).await,
            Err(ReplayClientError::InvalidOptions(_))
        ));
        o.batch_size = 10;
        o.url = "not a url".into();
        assert!(matches!(
            run(&o).await,
            Err(ReplayClientError::InvalidOptions(_))
        ));
        o.url = "http://127.0.0.1:1".into();
        o.api_key = "bad\nkey".into();
        assert!(matches!(
            run(&o).await,
            Err(ReplayClientError::InvalidOptions(_))
        ));
        o.api_key = "k".into();
        assert!(matches!(run(&o).await, Err(ReplayClientError::Open { .. })));
    }
}
