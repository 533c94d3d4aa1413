//! # switchboard-engine
//!
//! The live system. Every change — a call event, a timer, a queue or tenant setting — enters
//! as a command and goes one way (DESIGN.md "One write path"):
//!
//! ```text
//! Engine::submit / put_queue / set_clock -> TenantState (state machine of core, rules,
//! timers; under the tenant's lock) -> writer (group commit: one transaction for many
//! commands) -> bus publish -> the command is answered
//! ```
//!
//! A command is answered only after the transaction holding its writes committed. Sequence
//! numbers are assigned under the tenant lock and commands reach the single writer in that
//! order, so the stream sees each tenant's events in `seq` order.
//!
//! ## Memory is a cache of the store
//! Tenants load on first use (and at start-up when they have calls not yet ended). When a
//! commit fails, the tenants in it are marked stale and answer [`EngineError::Unavailable`]
//! until they are reloaded from the store; nothing that was not committed is ever answered as
//! done, and a retry is applied exactly once (a `duplicate` is only ever answered for a stored
//! event). See [`writer`](crate::writer) for the failure handling.
//!
//! ## Supervision
//! The writer and the timer task run supervised: if one ends unexpectedly (a panic), the engine
//! stops being ready and [`Engine::fatal`] fires, on which the server exits non-zero rather than
//! limp on.

mod bus;
mod clock;
mod registry;
pub mod rules;
mod tenant;
mod writer;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use switchboard_core::routing::AgentStatus;
use switchboard_core::{CallStatus, Clock, IncomingEvent, TenantId, TransitionError};
use switchboard_store::{
    Actor, AgentRow, AuditRecord, LoadedCall, QueueRecord, Store, StoreError, TenantSettings,
    TenantUpdate, WriteBatch,
};

pub use bus::{stream_message, Bus, StreamMessage};
pub use clock::{ManualClock, TimeSource};
pub use tenant::{AgentView, Outcome, TenantState};

use registry::{Registry, Slot};
use writer::{Msg, WriteRequest};

/// Why a command was not applied. The server maps each to a status code.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EngineError {
    /// The tenant does not exist (404).
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
    /// The event's timestamp lies beyond the later of now and the tenant's watermark by more
    /// than the allowed clock skew (422, field `timestamp`).
    #[error("timestamp is too far in the future: the latest accepted now is {}", switchboard_core::format_rfc3339(*limit))]
    TimestampTooFar {
        /// The latest timestamp accepted now, epoch ms.
        limit: i64,
    },
    /// A configuration command names a queue that does not exist (404).
    #[error("no queue `{0}`")]
    NoSuchQueue(String),
    /// A queue with this id exists already (409, field `id`).
    #[error("queue `{0}` already exists")]
    QueueExists(String),
    /// A command names an agent that does not exist (404).
    #[error("no agent `{0}`")]
    NoSuchAgent(String),
    /// An agent with this id exists already (409, field `id`).
    #[error("agent `{0}` already exists")]
    AgentExists(String),
    /// A queue's members name an agent that does not exist (422, field `members`).
    #[error("members: no agent `{0}`; create it first with POST /api/v1/agents")]
    UnknownMember(String),
    /// The resource changed since the version the client named (412 for `If-Match`).
    #[error("the resource has changed: its version is now {current}")]
    VersionMismatch {
        /// The current version.
        current: i64,
    },
    /// Nothing was applied; retry after `retry_after_s` seconds (503 + `Retry-After`), with the
    /// same `event_id` for events: the store could not commit, the tenant is being reloaded
    /// after a failed commit, or the writer's queue is full (load shedding).
    #[error("unavailable: {reason}")]
    Unavailable {
        /// Why, for the logs and the problem's detail.
        reason: String,
        /// Seconds after which a retry is sensible.
        retry_after_s: u32,
    },
}

impl EngineError {
    fn unavailable(reason: impl Into<String>) -> Self {
        EngineError::Unavailable {
            reason: reason.into(),
            retry_after_s: 1,
        }
    }
}

impl From<StoreError> for EngineError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => EngineError::UnknownTenant,
            e => EngineError::unavailable(format!("the store failed: {e}")),
        }
    }
}

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// How far past the later of now and a tenant's watermark an event timestamp may lie, ms.
    /// Default 24 h. A replay of the past is unaffected.
    pub max_clock_skew_ms: i64,
    /// Commands the writer's queue holds before new ones are shed with 503. Default 4096.
    pub writer_queue: usize,
    /// Where "now" comes from.
    pub time: TimeSource,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_clock_skew_ms: 24 * 3600 * 1000,
            writer_queue: 4096,
            time: TimeSource::System,
        }
    }
}

/// An agent a call is offered to, as telephony needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferedAgent {
    /// The agent's id (the `agent_id` of events).
    pub agent_id: String,
    /// Where to ring the agent (`sip:…`), when it has one.
    pub sip_uri: Option<String>,
}

/// What a configuration command expects of the current version (compare-and-set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// The resource must not exist yet (create).
    Absent,
    /// The resource must be at this version.
    Version(i64),
}

/// The engine: per-tenant state, the writer task and the bus. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    config: EngineConfig,
    registry: Arc<Registry>,
    writer: mpsc::Sender<Msg>,
    bus: Bus,
    /// False while the store cannot commit (set by the writer).
    store_ready: Arc<AtomicBool>,
    /// Cancelled at shutdown: background tasks stop.
    cancel: CancellationToken,
    /// Cancelled when a supervised task died: the server must exit.
    fatal: CancellationToken,
    /// Supervised tasks by name (the checkpointer is not supervised: a failed checkpoint only
    /// delays WAL truncation).
    tasks: Mutex<Vec<(&'static str, tokio::task::AbortHandle)>>,
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

impl Engine {
    /// Starts the writer and the live-timer task, then loads the tenants that have calls not
    /// yet ended (re-arming their timers). Every other tenant loads on first use.
    ///
    /// Errors: `Unavailable` when the store could not be read.
    pub async fn start(store: Store, config: EngineConfig) -> Result<Engine, EngineError> {
        let (tx, rx) = mpsc::channel(config.writer_queue.max(1));
        let bus = Bus::default();
        let store_ready = Arc::new(AtomicBool::new(true));
        let cancel = CancellationToken::new();
        let engine = Engine {
            inner: Arc::new(Inner {
                store: store.clone(),
                config: config.clone(),
                registry: Arc::default(),
                writer: tx,
                bus: bus.clone(),
                store_ready: store_ready.clone(),
                cancel: cancel.clone(),
                fatal: CancellationToken::new(),
                tasks: Mutex::new(Vec::new()),
            }),
        };
        let writer = writer::Writer {
            store: store.clone(),
            rx,
            bus,
            ready: store_ready,
            time: config.time.clone(),
            registry: engine.inner.registry.clone(),
        };
        engine.supervise("writer", writer.run());
        for id in store.tenants_with_live_calls().await? {
            engine.slot(id).await?;
        }
        engine.supervise("timers", engine.clone().live_timers());
        tokio::spawn(checkpoints(store, cancel));
        Ok(engine)
    }

    /// Runs `fut` as a supervised task: if it ends before shutdown (a panic, or an unexpected
    /// return), the engine stops being ready and [`Engine::fatal`] fires.
    fn supervise(
        &self,
        name: &'static str,
        fut: impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        let handle = tokio::spawn(fut);
        self.inner
            .tasks
            .lock()
            .expect("tasks lock")
            .push((name, handle.abort_handle()));
        let inner = self.inner.clone();
        tokio::spawn(async move {
            let res = handle.await;
            if inner.cancel.is_cancelled() {
                return;
            }
            match res {
                Err(e) => tracing::error!(task = name, error = %e, "engine task died; stopping"),
                Ok(()) => tracing::error!(task = name, "engine task ended unexpectedly; stopping"),
            }
            inner.fatal.cancel();
        });
    }

    /// Aborts the supervised task `name` (`writer` or `timers`), as if it had died: for tests
    /// of the supervision only.
    #[doc(hidden)]
    pub fn abort_task_for_tests(&self, name: &str) {
        for (n, h) in self.inner.tasks.lock().expect("tasks lock").iter() {
            if *n == name {
                h.abort();
            }
        }
    }

    /// Fires when a supervised background task died: the process must exit non-zero.
    pub fn fatal(&self) -> CancellationToken {
        self.inner.fatal.clone()
    }

    /// The store the engine writes to.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Now, epoch ms, by the engine's time source.
    pub fn now_ms(&self) -> i64 {
        self.inner.config.time.now_ms()
    }

    /// Whether the engine can accept writes: the store commits and no supervised task died.
    /// `/ready` answers 503 while this is false.
    pub fn is_ready(&self) -> bool {
        self.inner.store_ready.load(Ordering::Relaxed) && !self.inner.fatal.is_cancelled()
    }

    /// Tenants loaded, and how many of them are stale (waiting for a reload).
    pub fn tenant_counts(&self) -> (usize, usize) {
        (self.inner.registry.len(), self.inner.registry.stale_count())
    }

    /// Subscribes to a tenant's stream of committed events.
    pub fn subscribe(
        &self,
        tenant_id: TenantId,
    ) -> tokio::sync::broadcast::Receiver<Arc<StreamMessage>> {
        self.inner.bus.subscribe(tenant_id)
    }

    /// Reads a tenant's state from the store into a fresh [`TenantState`].
    async fn load(&self, id: TenantId) -> Result<TenantState, EngineError> {
        let s = &self.inner.store;
        let t = s.tenant(id).await?;
        let mut st = TenantState::new(&t, self.inner.registry.epoch());
        for q in s.all_queues(id).await? {
            st.put_queue(q);
        }
        // Agents first: live calls re-take the agents they ring or are connected to.
        for a in s.agents(id).await? {
            st.put_agent(a);
        }
        for c in s.live_calls(id).await? {
            st.insert_loaded(c);
        }
        Ok(st)
    }

    /// The tenant's slot, loading it on first use and reloading it when stale.
    ///
    /// Errors: `UnknownTenant`; `Unavailable` when the store cannot be read.
    async fn slot(&self, id: TenantId) -> Result<Arc<Slot>, EngineError> {
        let reg = &self.inner.registry;
        let slot = match reg.get(&id) {
            Some(s) => s,
            None => {
                let _g = reg.loading.lock().await;
                match reg.get(&id) {
                    Some(s) => s,
                    None => {
                        let st = self.load(id).await?;
                        let slot = reg.insert(id, Slot::new(st));
                        self.reschedule(id, &slot);
                        slot
                    }
                }
            }
        };
        if slot.is_stale() {
            let _g = slot.reload.lock().await;
            if slot.is_stale() {
                let reloading = |e: EngineError| match e {
                    EngineError::Unavailable { reason, .. } => EngineError::Unavailable {
                        reason: format!("the tenant is reloading after a failed commit: {reason}"),
                        retry_after_s: 2,
                    },
                    e => e,
                };
                let fresh = self.load(id).await.map_err(reloading)?;
                // A commit whose answer was lost (the connection cut during COMMIT) may have
                // landed: publish what the store holds beyond what was published, so the
                // stream has no gap. No new event of this tenant exists before the reload.
                let mut after = slot.committed();
                while after < fresh.head().last_seq {
                    let evs = self
                        .inner
                        .store
                        .events_since(id, after, 1000)
                        .await
                        .map_err(|e| reloading(e.into()))?;
                    let Some(last) = evs.last() else { break };
                    after = last.seq;
                    self.inner.bus.publish(id, &evs);
                    let live: i64 = evs
                        .iter()
                        .map(|e| switchboard_core::telemetry::live_call_delta(&e.event_type))
                        .sum();
                    metrics::gauge!(switchboard_core::telemetry::LIVE_CALLS).increment(live as f64);
                }
                slot.replace(fresh);
                tracing::info!(tenant = %id, "tenant reloaded from the store");
                self.reschedule(id, &slot);
            }
        }
        Ok(slot)
    }

    fn reschedule(&self, id: TenantId, slot: &Slot) {
        let next = slot.state.lock().expect("tenant lock").next_live_deadline();
        self.inner.registry.schedule(id, next);
    }

    /// Runs `f` on the tenant's state under its lock and hands the batch it returns to the
    /// writer (when it writes something, or when `f` asks to be answered in order). Returns
    /// `f`'s value and the receiver of the commit's result.
    ///
    /// Errors: `f`'s; `Unavailable` when the tenant is stale or the writer's queue is full (then
    /// nothing was applied).
    fn dispatch<T>(
        &self,
        tenant_id: TenantId,
        slot: &Arc<Slot>,
        f: impl FnOnce(&mut TenantState, i64) -> Result<(T, WriteBatch, bool), EngineError>,
    ) -> Result<(T, Option<writer::Committed>), EngineError> {
        let mut st = slot.state.lock().expect("tenant lock");
        if slot.is_stale() {
            return Err(EngineError::Unavailable {
                reason: "the tenant is reloading after a failed commit".into(),
                retry_after_s: 1,
            });
        }
        // Reserve the writer's place first: when its queue is full nothing is applied.
        let permit = self
            .inner
            .writer
            .try_reserve()
            .map_err(|_| EngineError::unavailable("the writer's queue is full"))?;
        let now = self.now_ms();
        let (value, batch, wait) = f(&mut st, now)?;
        let rx = (wait || !batch.is_empty()).then(|| {
            let (tx, rx) = oneshot::channel();
            permit.send(Msg::Write(Box::new(WriteRequest {
                slot: slot.clone(),
                epoch: st.epoch,
                batch,
                done: Some(tx),
            })));
            rx
        });
        self.inner
            .registry
            .schedule(tenant_id, st.next_live_deadline());
        Ok((value, rx))
    }

    /// [`Engine::dispatch`] on the tenant (loaded or reloaded as needed), answered once the
    /// batch is durable.
    async fn command<T>(
        &self,
        tenant_id: TenantId,
        f: impl FnOnce(&mut TenantState, i64) -> Result<(T, WriteBatch, bool), EngineError>,
    ) -> Result<T, EngineError> {
        let slot = self.slot(tenant_id).await?;
        let (value, rx) = self.dispatch(tenant_id, &slot, f)?;
        if let Some(rx) = rx {
            match rx.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(EngineError::unavailable(format!("not durable: {e}"))),
                Err(_) => return Err(EngineError::unavailable("the writer stopped")),
            }
        }
        Ok(value)
    }

    /// Applies events in order, answering each once its effects are durable.
    ///
    /// Events for calls not in memory that the store may hold are looked up first (one query
    /// for the whole batch), without holding the tenant lock. Results are in input order; when
    /// the commit fails every applied event's result becomes `Unavailable` (and the tenant is
    /// reloaded before it accepts more, so a retry is applied exactly once).
    pub async fn submit(
        &self,
        tenant_id: TenantId,
        events: Vec<IncomingEvent>,
    ) -> Vec<Result<Outcome, EngineError>> {
        let n = events.len();
        let fail = |e: EngineError| (0..n).map(|_| Err(e.clone())).collect();
        let slot = match self.slot(tenant_id).await {
            Ok(s) => s,
            Err(e) => return fail(e),
        };
        let mut loaded: HashMap<String, LoadedCall> = HashMap::new();
        let mut looked_up: HashSet<String> = HashSet::new();
        let mut events = Some(events);
        let skew = self.inner.config.max_clock_skew_ms;
        // Calls not in memory are read from the store first, without holding the tenant lock.
        // Another request may evict a call between that check and the apply: then the apply
        // step sees a call neither in memory nor looked up, and the lookup is done again.
        for _ in 0..8 {
            let missing: Vec<String> = {
                let st = slot.state.lock().expect("tenant lock");
                let mut m: Vec<String> = events
                    .iter()
                    .flatten()
                    .map(|e| e.call_id.as_str())
                    .filter(|k| st.needs_lookup(k) && !looked_up.contains(*k))
                    .map(str::to_owned)
                    .collect();
                m.sort_unstable();
                m.dedup();
                m
            };
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
                    Err(e) => return fail(e.into()),
                }
                looked_up.extend(missing);
            }
            let committed = slot.committed();
            let res = self
                .command(tenant_id, |st, now| {
                    let evicted = events.iter().flatten().any(|e| {
                        let k = e.call_id.as_str();
                        st.needs_lookup(k) && !looked_up.contains(k)
                    });
                    if evicted {
                        return Ok((None, WriteBatch::new(st.id), false));
                    }
                    let mut out = tenant::Pending::new(now);
                    let results: Vec<_> = events
                        .take()
                        .into_iter()
                        .flatten()
                        .map(|e| st.apply(e, now, skew, &mut loaded, &mut out))
                        .collect();
                    // A request with only duplicates still goes through the writer, so it is
                    // answered after the original delivery is durable (or fails with it).
                    let wait = results.iter().any(Result::is_ok);
                    let batch = st.finish(out, committed);
                    Ok((Some(results), batch, wait))
                })
                .await;
            match res {
                Ok(Some(results)) => return results,
                Ok(None) => continue,
                Err(e) => return fail(e),
            }
        }
        fail(EngineError::unavailable(
            "calls kept leaving memory while this request was looked up",
        ))
    }

    /// The agents a call is being offered to now (its status is `ringing`), each with the SIP
    /// URI to ring it at when the agent has one: what the route API answers telephony.
    /// Empty when the call is not ringing (or not in memory: an ended call).
    ///
    /// Errors: `UnknownTenant`, `Unavailable`.
    pub async fn offered_agents(
        &self,
        tenant_id: TenantId,
        call_id: &str,
    ) -> Result<Vec<OfferedAgent>, EngineError> {
        let slot = self.slot(tenant_id).await?;
        let st = slot.state.lock().expect("tenant lock");
        Ok(st.offered_agents(call_id))
    }

    /// The queue as the engine holds it (loading the tenant if needed).
    ///
    /// Errors: `NoSuchQueue`, `UnknownTenant`, `Unavailable`.
    pub async fn queue(&self, tenant_id: TenantId, id: &str) -> Result<QueueRecord, EngineError> {
        let slot = self.slot(tenant_id).await?;
        let st = slot.state.lock().expect("tenant lock");
        st.queue(id)
            .cloned()
            .ok_or_else(|| EngineError::NoSuchQueue(id.to_owned()))
    }

    /// Creates or changes a queue (compare-and-set on its version), stored and applied to the
    /// engine together with its audit entry (by `actor`); answers the stored record (version
    /// bumped, `updated_at` = now).
    ///
    /// Errors: `QueueExists` (for [`Expect::Absent`]), `NoSuchQueue`, `VersionMismatch`,
    /// `Unavailable`.
    pub async fn put_queue(
        &self,
        tenant_id: TenantId,
        mut q: QueueRecord,
        expect: Expect,
        actor: &Actor,
    ) -> Result<QueueRecord, EngineError> {
        let actor = actor.clone();
        self.command(tenant_id, move |st, now| {
            let before = st.queue(&q.id).cloned();
            match (&before, expect) {
                (Some(_), Expect::Absent) => return Err(EngineError::QueueExists(q.id.clone())),
                (None, Expect::Version(_)) => return Err(EngineError::NoSuchQueue(q.id.clone())),
                (Some(cur), Expect::Version(v)) if cur.version != v => {
                    return Err(EngineError::VersionMismatch {
                        current: cur.version,
                    })
                }
                (Some(cur), _) => {
                    q.version = cur.version + 1;
                    q.created_at = cur.created_at;
                }
                (None, _) => {
                    q.version = 1;
                    q.created_at = now;
                }
            }
            q.updated_at = now;
            if let Some(m) = q
                .routing
                .members
                .iter()
                .find(|m| !st.has_agent(&m.agent_id))
            {
                return Err(EngineError::UnknownMember(m.agent_id.clone()));
            }
            st.put_queue(q.clone());
            let mut out = tenant::Pending::new(now);
            st.distribute_now(now, &mut out);
            let mut batch = st.finish(out, i64::MIN);
            batch.queues.push(q.clone());
            let verb = if before.is_some() {
                "queue.update"
            } else {
                "queue.create"
            };
            batch.audit.push(AuditRecord::new(
                st.id,
                &actor,
                verb,
                ("queue", &q.id),
                before.map(|b| b.audit_json()),
                Some(q.audit_json()),
                now,
            ));
            Ok((q, batch, true))
        })
        .await
    }

    /// One configured agent with its presence (loading the tenant if needed).
    ///
    /// Errors: `NoSuchAgent`, `UnknownTenant`, `Unavailable`.
    pub async fn agent(&self, tenant_id: TenantId, id: &str) -> Result<AgentView, EngineError> {
        let slot = self.slot(tenant_id).await?;
        let st = slot.state.lock().expect("tenant lock");
        st.agent_view(id)
            .ok_or_else(|| EngineError::NoSuchAgent(id.to_owned()))
    }

    /// Every configured agent of the tenant with its presence, ordered by id.
    ///
    /// Errors: `UnknownTenant`, `Unavailable`.
    pub async fn agents(&self, tenant_id: TenantId) -> Result<Vec<AgentView>, EngineError> {
        let slot = self.slot(tenant_id).await?;
        let st = slot.state.lock().expect("tenant lock");
        Ok(st.agent_views())
    }

    /// Creates (`Expect::Absent`) or changes (`Expect::Version`) an agent's configuration,
    /// stored with its audit entry (`agent.create` / `agent.update` by `actor`); counters and
    /// calls are kept. The distributor runs at once (a new available agent takes waiting
    /// calls).
    ///
    /// Errors: `AgentExists`, `NoSuchAgent`, `VersionMismatch`, `Unavailable`.
    pub async fn put_agent(
        &self,
        tenant_id: TenantId,
        row: AgentRow,
        expect: Expect,
        actor: &Actor,
    ) -> Result<AgentView, EngineError> {
        let actor = actor.clone();
        self.command(tenant_id, move |st, now| {
            let id = row.agent_id.clone();
            let mut out = tenant::Pending::new(now);
            let before = st.put_agent_config(row, expect, now, &mut out)?;
            let view = st.agent_view(&id).expect("just configured");
            let mut batch = st.finish(out, i64::MIN);
            let verb = if before.is_some() {
                "agent.update"
            } else {
                "agent.create"
            };
            batch.audit.push(AuditRecord::new(
                st.id,
                &actor,
                verb,
                ("agent", &id),
                before.map(|b| b.audit_json()),
                Some(view.row.audit_json()),
                now,
            ));
            Ok((view, batch, true))
        })
        .await
    }

    /// Sets an agent's chosen status (`available`, `break`, `offline`): an
    /// `agent_status_changed` event when its presence changes; calls it was being offered go
    /// back to their queue when it leaves; the distributor runs at once.
    ///
    /// Errors: `NoSuchAgent`, `Unavailable`.
    pub async fn set_agent_status(
        &self,
        tenant_id: TenantId,
        id: &str,
        status: AgentStatus,
    ) -> Result<AgentView, EngineError> {
        let id = id.to_owned();
        self.command(tenant_id, move |st, now| {
            let mut out = tenant::Pending::new(now);
            st.set_agent_status(&id, status, now, &mut out)?;
            let view = st.agent_view(&id).expect("exists");
            let batch = st.finish(out, i64::MIN);
            Ok((view, batch, true))
        })
        .await
    }

    /// The tenant's settings and their version (loading the tenant if needed).
    ///
    /// Errors: `UnknownTenant`, `Unavailable`.
    pub async fn tenant_settings(
        &self,
        tenant_id: TenantId,
    ) -> Result<(TenantSettings, i64), EngineError> {
        let slot = self.slot(tenant_id).await?;
        let st = slot.state.lock().expect("tenant lock");
        Ok((st.settings.clone(), st.version))
    }

    /// Changes the tenant's settings by `change` (compare-and-set on the settings version),
    /// stored and in force together, with an audit entry by `actor` (`tenant.update`, or
    /// `tenant.deactivate` / `tenant.activate` when `active` flips); answers the new settings
    /// and version. A change that changes nothing writes nothing and keeps the version.
    ///
    /// Errors: `VersionMismatch`, `UnknownTenant`, `Unavailable`.
    pub async fn update_tenant(
        &self,
        tenant_id: TenantId,
        change: impl FnOnce(&mut TenantSettings) + Send + 'static,
        expect: Expect,
        actor: &Actor,
    ) -> Result<(TenantSettings, i64), EngineError> {
        let actor = actor.clone();
        self.command(tenant_id, move |st, now| {
            if let Expect::Version(v) = expect {
                if v != st.version {
                    return Err(EngineError::VersionMismatch {
                        current: st.version,
                    });
                }
            }
            let before = st.settings.clone();
            change(&mut st.settings);
            if st.settings == before {
                return Ok(((before, st.version), WriteBatch::new(st.id), false));
            }
            st.version += 1;
            let mut batch = WriteBatch::new(st.id);
            batch.tenant = Some(TenantUpdate {
                settings: st.settings.clone(),
                version: st.version,
                updated_at: now,
            });
            let verb = match (before.active, st.settings.active) {
                (true, false) => "tenant.deactivate",
                (false, true) => "tenant.activate",
                _ => "tenant.update",
            };
            let id = st.id.0.to_string();
            let json = |s: &TenantSettings| {
                let mut v = serde_json::to_value(s).unwrap_or_default();
                v["id"] = serde_json::json!(id);
                v
            };
            batch.audit.push(AuditRecord::new(
                st.id,
                &actor,
                verb,
                ("tenant", &id),
                Some(json(&before)),
                Some(json(&st.settings)),
                now,
            ));
            Ok(((st.settings.clone(), st.version), batch, true))
        })
        .await
    }

    /// Switches the tenant's timer clock ([`Engine::update_tenant`] of the clock alone);
    /// answers the new version.
    ///
    /// Errors: `VersionMismatch`, `Unavailable`.
    pub async fn set_clock(
        &self,
        tenant_id: TenantId,
        clock: Clock,
        expect: Expect,
        actor: &Actor,
    ) -> Result<i64, EngineError> {
        let (_, v) = self
            .update_tenant(tenant_id, move |s| s.clock = clock, expect, actor)
            .await?;
        Ok(v)
    }

    /// Fires every due timer of the tenants on the `live` clock, visiting only the tenants
    /// with a deadline due.
    async fn live_timers(self) {
        let reg = &self.inner.registry;
        let time = self.inner.config.time.clone();
        loop {
            let next = reg.next_due();
            tokio::select! {
                _ = self.inner.cancel.cancelled() => return,
                _ = reg.wake.notified() => continue,
                _ = time.sleep_until(next) => {}
            }
            let now = time.now_ms();
            for id in reg.take_due(now) {
                let Some(slot) = reg.get(&id) else { continue };
                if slot.is_stale() {
                    // The writer scheduled it when a commit failed: reload it from the store
                    // (re-arming its timers) without waiting for a client, off this task so
                    // that a slow store does not hold up other tenants' timers.
                    let engine = self.clone();
                    tokio::spawn(async move {
                        if let Err(e) = engine.slot(id).await {
                            tracing::warn!(tenant = %id, error = %e, "reload failed; retrying in 1 s");
                            let retry = engine.now_ms() + 1000;
                            engine.inner.registry.schedule(id, Some(retry));
                        }
                    });
                    continue;
                }
                let committed = slot.committed();
                // Not awaited: timer events are answered to no one.
                let fired = self.dispatch(id, &slot, move |st, now| {
                    let mut out = tenant::Pending::new(now);
                    if st.settings.clock == Clock::Live {
                        st.fire_due(now, &mut out);
                    }
                    Ok(((), st.finish(out, committed), false))
                });
                if fired.is_err() {
                    // The writer's queue is full: try again shortly.
                    reg.schedule(id, Some(now + 100));
                }
            }
        }
    }

    /// Stops the timer task, waits until everything accepted so far is durable, then stops the
    /// writer (commands after this answer `Unavailable`).
    pub async fn shutdown(&self) {
        self.inner.cancel.cancel();
        let (tx, rx) = oneshot::channel();
        if self.inner.writer.send(Msg::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}
