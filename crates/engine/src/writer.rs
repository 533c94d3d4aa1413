//! The group-commit writer: one task takes every pending request off a bounded channel, writes
//! them in one transaction (one fsync for all) on the store's writer connection, publishes the
//! events and only then answers the requests. Under load a transaction carries many requests;
//! idle, a lone event is written at once (no added delay).
//!
//! ## When a commit fails
//! The round is retried a few times; if it still fails, each request is committed on its own
//! (so one batch the store refuses never fails another tenant's). A tenant whose batch failed
//! is marked stale: its memory ran ahead of the store. Every later batch of that tenant made
//! from the same load (its `epoch`) is answered with an error without being written, so the
//! log never gets a gap; the engine reloads the tenant from the store before accepting more.
//! While commits fail the writer probes the store and reports it not ready; the first
//! successful commit or probe makes it ready again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use switchboard_core::TenantId;
use tokio::sync::{mpsc, oneshot};

use switchboard_core::telemetry;
use switchboard_store::{Store, StoreWriter, WriteBatch};

use crate::bus::Bus;
use crate::registry::{Registry, Slot};
use crate::TimeSource;

/// Result sent back to a request: `Err` carries the reason, for the logs.
pub(crate) type Done = oneshot::Sender<Result<(), String>>;
/// The receiving end of [`Done`].
pub(crate) type Committed = oneshot::Receiver<Result<(), String>>;

/// One engine command's writes.
pub(crate) struct WriteRequest {
    /// The tenant's slot (marked stale on failure; its committed seq advanced on success).
    pub slot: Arc<Slot>,
    /// The load of the tenant the batch was made from.
    pub epoch: u64,
    /// What to write (may be empty: then the request is only answered in order).
    pub batch: WriteBatch,
    /// Answered after commit (None for timer-made events).
    pub done: Option<Done>,
}

pub(crate) enum Msg {
    Write(Box<WriteRequest>),
    /// Answered once everything before it is durable; then the writer closes its connection
    /// and stops (graceful shutdown).
    Shutdown(oneshot::Sender<()>),
}

/// Most events in one transaction.
const MAX_EVENTS_PER_TXN: usize = 20_000;
/// Attempts of a whole round before its requests are committed one by one.
const ATTEMPTS: u32 = 3;
/// How often the store is probed while commits fail.
const PROBE_EVERY: Duration = Duration::from_millis(250);

pub(crate) struct Writer {
    pub store: Store,
    pub rx: mpsc::Receiver<Msg>,
    pub bus: Bus,
    /// False while the store cannot commit.
    pub ready: Arc<AtomicBool>,
    pub time: TimeSource,
    /// Where a stale tenant is scheduled for its reload.
    pub registry: Arc<Registry>,
}

impl Writer {
    pub(crate) async fn run(mut self) {
        let mut conn = self.store.writer();
        // Tenant -> the newest epoch whose commit failed: its batches are never written.
        let mut failed: HashMap<TenantId, u64> = HashMap::new();
        let mut reqs: Vec<WriteRequest> = Vec::new();
        let mut stop: Option<oneshot::Sender<()>> = None;
        loop {
            let first = if self.ready.load(Ordering::Relaxed) {
                self.rx.recv().await
            } else {
                match tokio::time::timeout(PROBE_EVERY, self.rx.recv()).await {
                    Ok(m) => m,
                    Err(_) => {
                        self.probe(&mut conn).await;
                        continue;
                    }
                }
            };
            let Some(first) = first else { break };
            let mut n = 0;
            let mut next = Some(first);
            while let Some(msg) = next.take() {
                match msg {
                    Msg::Write(r) => {
                        n += r.batch.events.len();
                        reqs.push(*r);
                    }
                    Msg::Shutdown(tx) => stop = Some(tx),
                }
                if n < MAX_EVENTS_PER_TXN && stop.is_none() {
                    next = self.rx.try_recv().ok();
                }
            }
            metrics::gauge!(telemetry::WRITER_QUEUE_DEPTH).set(self.rx.len() as f64);
            let results = self.commit(&mut conn, &reqs, &mut failed).await;
            for (r, res) in reqs.drain(..).zip(results) {
                if let Some(d) = r.done {
                    let _ = d.send(res);
                }
            }
            if let Some(tx) = stop.take() {
                conn.close().await;
                let _ = tx.send(());
                return;
            }
        }
        conn.close().await;
    }

    /// Commits a round; returns each request's result, in order.
    async fn commit(
        &self,
        conn: &mut StoreWriter,
        reqs: &[WriteRequest],
        failed: &mut HashMap<TenantId, u64>,
    ) -> Vec<Result<(), String>> {
        let refused = |r: &WriteRequest, failed: &HashMap<TenantId, u64>| {
            failed
                .get(&r.batch.tenant_id)
                .is_some_and(|e| r.epoch <= *e)
        };
        let mut results: Vec<Result<(), String>> = reqs
            .iter()
            .map(|r| {
                if refused(r, failed) {
                    Err("the tenant is being reloaded after a failed commit".into())
                } else {
                    Ok(())
                }
            })
            .collect();
        let todo: Vec<&WriteRequest> = reqs
            .iter()
            .zip(&results)
            .filter(|(r, ok)| ok.is_ok() && !r.batch.is_empty())
            .map(|(r, _)| r)
            .collect();
        if todo.is_empty() {
            return results;
        }
        let started = std::time::Instant::now();
        let batches: Vec<&WriteBatch> = todo.iter().map(|r| &r.batch).collect();
        let mut res = Err(String::new());
        for attempt in 1..=ATTEMPTS {
            res = conn.append(&batches).await.map_err(|e| e.to_string());
            match &res {
                Ok(()) => break,
                Err(e) if attempt < ATTEMPTS => {
                    tracing::warn!(error = %e, attempt, "group commit failed; retrying");
                    tokio::time::sleep(Duration::from_millis(20 << (2 * attempt))).await;
                }
                Err(_) => {}
            }
        }
        let events = batches.iter().map(|b| b.events.len()).sum::<usize>();
        metrics::histogram!(telemetry::GROUP_COMMIT_EVENTS).record(events as f64);
        metrics::histogram!(telemetry::GROUP_COMMIT_DURATION_SECONDS)
            .record(started.elapsed().as_secs_f64());
        if res.is_err() {
            metrics::counter!(telemetry::GROUP_COMMIT_FAILURES_TOTAL).increment(1);
        }
        tracing::debug!(
            events,
            requests = reqs.len(),
            micros = started.elapsed().as_micros() as u64,
            ok = res.is_ok(),
            "group commit"
        );
        if res.is_ok() {
            self.ready.store(true, Ordering::Relaxed);
            for r in &todo {
                self.committed(r);
            }
            return results;
        }
        // Isolate: each request alone, in order; a tenant stops at its first failure. Two
        // failures in a row mean the store itself is failing (disk full, connection gone), not
        // one batch: the rest of the round then fails without more attempts, so an outage
        // costs a bounded time per round.
        let mut in_a_row = 0;
        for (i, r) in reqs.iter().enumerate() {
            if results[i].is_err() {
                continue;
            }
            if refused(r, failed) {
                results[i] = Err("an earlier batch of this tenant failed".into());
                continue;
            }
            if r.batch.is_empty() {
                continue;
            }
            let res = if in_a_row >= 2 {
                Err("the store is failing: not attempted".to_owned())
            } else {
                conn.append(&[&r.batch]).await.map_err(|e| e.to_string())
            };
            match res {
                Ok(()) => {
                    in_a_row = 0;
                    self.ready.store(true, Ordering::Relaxed);
                    self.committed(r);
                }
                Err(e) => {
                    in_a_row += 1;
                    tracing::error!(error = %e, tenant = %r.batch.tenant_id, events = r.batch.events.len(),
                        "events could not be made durable; tenant marked stale until reloaded");
                    failed.insert(r.batch.tenant_id, r.epoch);
                    if r.slot.mark_stale() {
                        metrics::gauge!(telemetry::STALE_TENANTS).increment(1.0);
                    }
                    // The timer task reloads it even if no client writes to it again.
                    self.registry.schedule(r.batch.tenant_id, Some(i64::MIN));
                    self.ready.store(false, Ordering::Relaxed);
                    results[i] = Err(e);
                }
            }
        }
        results
    }

    fn committed(&self, r: &WriteRequest) {
        if let Some(h) = r.batch.head {
            r.slot.set_committed(h.last_seq);
        }
        self.bus.publish(r.batch.tenant_id, &r.batch.events);
        let live: i64 = r
            .batch
            .events
            .iter()
            .map(|e| telemetry::live_call_delta(&e.event_type))
            .sum();
        if live != 0 {
            metrics::gauge!(telemetry::LIVE_CALLS).increment(live as f64);
        }
    }

    async fn probe(&self, conn: &mut StoreWriter) {
        match conn.probe(self.time.now_ms()).await {
            Ok(()) => {
                tracing::info!("the store commits again; ready");
                self.ready.store(true, Ordering::Relaxed);
            }
            Err(e) => tracing::debug!(error = %e, "store probe failed"),
        }
    }
}
