//! The group-commit writer: one task takes every pending request off the channel, writes them
//! in one transaction (one fsync for all), publishes the events and only then answers the
//! requests. Under load a transaction carries many requests; idle, a lone event is written at
//! once (no added delay).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use switchboard_core::telemetry;
use switchboard_store::{Store, WriteBatch};

use crate::bus::Bus;

/// Result sent back to a request: `Err` carries the storage error text.
pub(crate) type Done = oneshot::Sender<Result<(), String>>;

pub(crate) enum WriteRequest {
    /// Events to make durable; `done` is answered after commit (None for timer-made events).
    Write {
        batch: WriteBatch,
        done: Option<Done>,
    },
    /// Answered once everything before it is durable (graceful shutdown).
    Flush(oneshot::Sender<()>),
}

/// Most events in one transaction.
const MAX_EVENTS_PER_TXN: usize = 20_000;
/// Attempts before a transaction is given up.
const ATTEMPTS: u32 = 4;

pub(crate) async fn run(
    store: Store,
    mut rx: mpsc::UnboundedReceiver<WriteRequest>,
    bus: Bus,
    healthy: Arc<AtomicBool>,
) {
    let mut batches: Vec<WriteBatch> = Vec::new();
    let mut dones: Vec<Done> = Vec::new();
    let mut flushes: Vec<oneshot::Sender<()>> = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut n = 0;
        let mut next = Some(first);
        while let Some(req) = next.take() {
            match req {
                WriteRequest::Write { batch, done } => {
                    n += batch.events.len();
                    if !batch.events.is_empty() {
                        batches.push(batch);
                    }
                    dones.extend(done);
                }
                WriteRequest::Flush(tx) => flushes.push(tx),
            }
            if n < MAX_EVENTS_PER_TXN {
                next = rx.try_recv().ok();
            }
        }
        let started = std::time::Instant::now();
        let res = if batches.is_empty() {
            Ok(())
        } else {
            write_with_retry(&store, &batches).await
        };
        metrics::histogram!(telemetry::GROUP_COMMIT_EVENTS).record(n as f64);
        metrics::histogram!(telemetry::GROUP_COMMIT_DURATION_SECONDS)
            .record(started.elapsed().as_secs_f64());
        tracing::debug!(
            events = n,
            requests = dones.len(),
            micros = started.elapsed().as_micros() as u64,
            "group commit"
        );
        match &res {
            Ok(()) => {
                for b in &batches {
                    bus.publish(b.tenant_id, &b.events);
                }
                let live: i64 = batches
                    .iter()
                    .flat_map(|b| &b.events)
                    .map(|e| telemetry::live_call_delta(&e.event_type))
                    .sum();
                metrics::gauge!(telemetry::LIVE_CALLS).increment(live as f64);
            }
            Err(e) => {
                tracing::error!(error = %e, events = n, "events could not be made durable; engine marked unhealthy");
                healthy.store(false, Ordering::Relaxed);
                metrics::counter!(telemetry::GROUP_COMMIT_FAILURES_TOTAL).increment(1);
            }
        }
        batches.clear();
        for d in dones.drain(..) {
            let _ = d.send(res.clone());
        }
        for f in flushes.drain(..) {
            let _ = f.send(());
        }
    }
}

async fn write_with_retry(store: &Store, batches: &[WriteBatch]) -> Result<(), String> {
    let mut delay = Duration::from_millis(20);
    let mut attempt = 1;
    loop {
        match store.append(batches).await {
            Ok(()) => return Ok(()),
            Err(e) if attempt < ATTEMPTS => {
                tracing::warn!(error = %e, attempt, "group commit failed; retrying");
                tokio::time::sleep(delay).await;
                delay *= 4;
                attempt += 1;
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}
