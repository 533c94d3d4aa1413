//! # switchboard-engine
//!
//! The live system. Every change enters as a command and goes one way (DESIGN.md "One write
//! path"):
//!
//! ```text
//! Engine::submit -> TenantState::apply (state machine of core, rules, timers; under the
//! tenant's lock) -> writer (group commit: one transaction for many requests) -> bus publish
//! -> the request is answered
//! ```
//!
//! A request is answered only after the transaction holding its events committed. Sequence
//! numbers are assigned under the tenant lock and requests reach the single writer in that
//! order, so the stream sees each tenant's events in `seq` order.

mod bus;
mod tenant;
mod writer;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use switchboard_core::time::now_ms;
use switchboard_core::{CallStatus, Clock, IncomingEvent, QueueSettings, TransitionError};
use switchboard_store::{LoadedCall, Store, StoreError, Tenant};

pub use bus::{stream_message, Bus, StreamMessage};
pub use tenant::{Outcome, TenantState};
use writer::WriteRequest;

/// Why one event was not applied. The server maps each to a status code.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EngineError {
    /// The tenant is not loaded (404).
    #[error("unknown tenant")]
    UnknownTenant,
    /// No call with this id was ever initiated (404).
    #[error("no call `{0}`: a call starts with call_initiated")]
    UnknownCall(String),
    /// `call_initiated` for a call that exists (409).
    #[error("call `{call_id}` already exists (status {status})")]
    CallExists {
        /// The client's call id.
        call_id: String,
        /// The existing call's current status.
        status: CallStatus,
    },
    /// The event does not fit the call's state (409).
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// The event names a queue the tenant does not have (422, field `queue_id`).
    #[error("unknown queue `{0}`")]
    UnknownQueue(String),
    /// The event could not be made durable (503); the client may retry with the same event_id.
    #[error("storage unavailable: {0}")]
    Storage(String),
}

/// The engine: per-tenant state, the writer task and the bus. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    tenants: RwLock<HashMap<Uuid, Arc<Mutex<TenantState>>>>,
    writer: mpsc::UnboundedSender<WriteRequest>,
    bus: Bus,
    healthy: Arc<AtomicBool>,
    cancel: CancellationToken,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// How often the store's write-ahead log is checkpointed (SQLite).
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// Checkpoints the store's WAL every [`CHECKPOINT_EVERY`], off the commit path.
async fn checkpoints(store: Store, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Err(e) = store.checkpoint().await {
            tracing::warn!(error = %e, "WAL checkpoint failed; will retry");
        }
    }
}

/// How often timers on the `live` clock are checked.
const LIVE_TICK: Duration = Duration::from_millis(100);

impl Engine {
    /// Loads every tenant with its queues, its calls that have not ended, its last sequence
    /// number and watermark, then starts the writer and the live-clock timer task.
    ///
    /// Errors: the store could not be read.
    pub async fn start(store: Store) -> Result<Engine, StoreError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let bus = Bus::default();
        let healthy = Arc::new(AtomicBool::new(true));
        let cancel = CancellationToken::new();
        let writer = tokio::spawn(writer::run(store.clone(), rx, bus.clone(), healthy.clone()));
        let engine = Engine {
            inner: Arc::new(Inner {
                store: store.clone(),
                tenants: RwLock::new(HashMap::new()),
                writer: tx,
                bus,
                healthy,
                cancel: cancel.clone(),
                tasks: Mutex::new(vec![writer]),
            }),
        };
        for t in store.tenants().await? {
            engine.load_tenant(&t).await?;
        }
        let ticker = tokio::spawn(engine.clone().live_timers(cancel.clone()));
        let checkpoints = tokio::spawn(checkpoints(store, cancel));
        engine
            .inner
            .tasks
            .lock()
            .expect("tasks lock")
            .extend([ticker, checkpoints]);
        Ok(engine)
    }

    /// Loads (or reloads) one tenant from the store.
    pub async fn load_tenant(&self, t: &Tenant) -> Result<(), StoreError> {
        let s = &self.inner.store;
        let queues = s.all_queues(t.id).await?;
        let live = s.live_calls(t.id).await?;
        let seq = s.max_seq(t.id).await?;
        let watermark = s.max_event_ts(t.id).await?;
        let agents = s.agents(t.id).await?;
        let ids = s.external_call_ids(t.id).await?;
        let mut st = TenantState::new(t.id, t.clock, seq, watermark, ids.len());
        for id in &ids {
            st.add_known(id);
        }
        for q in queues {
            st.put_queue(&q.id, q.settings);
        }
        for c in live {
            st.insert_loaded(c);
        }
        for a in agents {
            st.put_agent(a);
        }
        self.inner
            .tenants
            .write()
            .expect("tenants lock")
            .insert(t.id, Arc::new(Mutex::new(st)));
        Ok(())
    }

    fn tenant(&self, id: Uuid) -> Result<Arc<Mutex<TenantState>>, EngineError> {
        self.inner
            .tenants
            .read()
            .expect("tenants lock")
            .get(&id)
            .cloned()
            .ok_or(EngineError::UnknownTenant)
    }

    /// The store the engine writes to.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// False after the writer failed to make events durable (then `/ready` fails).
    pub fn is_healthy(&self) -> bool {
        self.inner.healthy.load(Ordering::Relaxed)
    }

    /// Registers a queue's settings (after the store wrote them).
    pub fn put_queue(
        &self,
        tenant_id: Uuid,
        queue_id: &str,
        settings: QueueSettings,
    ) -> Result<(), EngineError> {
        let t = self.tenant(tenant_id)?;
        t.lock().expect("tenant lock").put_queue(queue_id, settings);
        Ok(())
    }

    /// Switches the tenant's timer clock (after the store wrote it).
    pub fn set_clock(&self, tenant_id: Uuid, clock: Clock) -> Result<(), EngineError> {
        let t = self.tenant(tenant_id)?;
        t.lock().expect("tenant lock").clock = clock;
        Ok(())
    }

    /// Subscribes to a tenant's stream of committed events.
    pub fn subscribe(
        &self,
        tenant_id: Uuid,
    ) -> tokio::sync::broadcast::Receiver<Arc<StreamMessage>> {
        self.inner.bus.subscribe(tenant_id)
    }

    /// Applies events in order, answering each once its effects are durable.
    ///
    /// Events for calls not in memory that the store may hold are looked up first (one query
    /// for the whole batch), without holding the tenant lock. Results are in input order.
    pub async fn submit(
        &self,
        tenant_id: Uuid,
        events: Vec<IncomingEvent>,
    ) -> Vec<Result<Outcome, EngineError>> {
        let tenant = match self.tenant(tenant_id) {
            Ok(t) => t,
            Err(e) => return events.iter().map(|_| Err(e.clone())).collect(),
        };
        let missing: Vec<String> = {
            let st = tenant.lock().expect("tenant lock");
            let mut m: Vec<String> = events
                .iter()
                .map(|e| e.call_id.as_str())
                .filter(|k| st.needs_lookup(k))
                .map(str::to_owned)
                .collect();
            m.sort_unstable();
            m.dedup();
            m
        };
        let mut loaded: HashMap<String, LoadedCall> = HashMap::new();
        if !missing.is_empty() {
            let ids: Vec<&str> = missing.iter().map(String::as_str).collect();
            match self
                .inner
                .store
                .calls_by_external_ids(tenant_id, &ids)
                .await
            {
                Ok(found) => {
                    for c in found {
                        loaded.insert(c.row.call.external_id.as_str().to_owned(), c);
                    }
                }
                Err(e) => {
                    let e = EngineError::Storage(e.to_string());
                    return events.iter().map(|_| Err(e.clone())).collect();
                }
            }
        }
        let now = now_ms();
        let (mut results, done) = {
            let mut st = tenant.lock().expect("tenant lock");
            let mut out = tenant::Pending::new(now);
            let results: Vec<_> = events
                .into_iter()
                .map(|e| st.apply(e, now, &mut loaded, &mut out))
                .collect();
            let any_ok = results.iter().any(Result::is_ok);
            let batch = st.finish(out);
            // Sent under the lock: the writer receives each tenant's events in seq order. A
            // request with only duplicates still goes through the writer, so it is answered
            // after the original delivery is durable.
            let done = if any_ok || !batch.events.is_empty() {
                let (tx, rx) = oneshot::channel();
                if self
                    .inner
                    .writer
                    .send(WriteRequest::Write {
                        batch,
                        done: Some(tx),
                    })
                    .is_err()
                {
                    None
                } else {
                    Some(rx)
                }
            } else {
                None
            };
            (results, done)
        };
        if let Some(rx) = done {
            let res = rx.await.unwrap_or_else(|_| Err("writer stopped".into()));
            if let Err(msg) = res {
                for r in results.iter_mut().filter(|r| r.is_ok()) {
                    *r = Err(EngineError::Storage(msg.clone()));
                }
            }
        }
        results
    }

    /// Fires every due timer of every tenant on the `live` clock, every [`LIVE_TICK`].
    async fn live_timers(self, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(LIVE_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            let tenants: Vec<_> = self
                .inner
                .tenants
                .read()
                .expect("tenants lock")
                .values()
                .cloned()
                .collect();
            let now = now_ms();
            for t in tenants {
                let mut st = t.lock().expect("tenant lock");
                if st.clock != Clock::Live {
                    continue;
                }
                let mut out = tenant::Pending::new(now);
                st.fire_due(now, &mut out);
                let batch = st.finish(out);
                if !batch.events.is_empty() {
                    let _ = self
                        .inner
                        .writer
                        .send(WriteRequest::Write { batch, done: None });
                }
            }
        }
    }

    /// Stops the timer task and waits until everything accepted so far is durable.
    pub async fn shutdown(&self) {
        self.inner.cancel.cancel();
        let (tx, rx) = oneshot::channel();
        if self.inner.writer.send(WriteRequest::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}
