//! One tenant's live state: its calls, queues' settings, agents' no-answer counters, timers
//! and clock. Pure and synchronous (no I/O), driven by [`crate::Engine`] under a lock.
//!
//! ## Time
//! Before an event at time `t` is applied:
//! 1. on the `event_time` clock, if `t` is past the watermark, every timer due strictly before
//!    `t` fires (in deadline order) and the watermark moves to `t`;
//! 2. on either clock, the event's own call fires its timers due strictly before `t` (so a call
//!    whose events arrive late or out of order is judged in its own time).
//!
//! On the `live` clock the remaining timers fire by wall clock ([`TenantState::fire_due`]).
//! Engine-made events carry their timer's deadline as timestamp.
//!
//! ## Parts
//! The rules are pure functions ([`crate::rules`]); this state applies their effects to its
//! parts: the calls in memory, the [`queues`] (settings and waiting calls in service order),
//! the [`agents`] (configuration, presence, the calls holding each) and the [`timers`]
//! (deadline order). After every event, timer and command the [`distribute`] pass offers
//! waiting calls of `auto` queues to available agents (work-conserving).

mod agents;
mod commands;
mod distribute;
mod presence;
mod queues;
mod timers;

use std::cmp::Reverse;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use uuid::Uuid;

use switchboard_core::event::AGENT_STATUS_CHANGED;
use switchboard_core::metrics::{contribution, CallFacts, QueueBucket, StatsDelta};
use switchboard_core::routing::AgentStatus;
use switchboard_core::{
    AgentId, Call, CallStatus, Clock, EventKind, IncomingEvent, QueueSettings, TenantId,
    TransferTarget,
};
use switchboard_store::{
    AgentRow, AlertRecord, CallRow, EventRecord, LoadedCall, QueueRecord, Tenant, TenantHead,
    TenantSettings, WriteBatch,
};

use crate::rules::{self, TimerKind};
use crate::EngineError;
use agents::{Agents, Hold};
pub use commands::AgentView;
use queues::{Queues, WaitKey};
use timers::Timers;

/// Most ended calls kept in memory (answering late duplicates without a query).
const ENDED_KEPT: usize = 10_000;
/// How long an ended call stays in memory after it ended (wall clock), ms. Memory follows live
/// load: older ended calls are re-read from the store when an event names them.
const ENDED_TTL_MS: i64 = 5 * 60 * 1000;

/// What happened to one accepted event.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The event's sequence number (the first delivery's, for a duplicate).
    pub seq: i64,
    /// Switchboard's call id (UUIDv7).
    pub call_uuid: Uuid,
    /// The client's call id.
    pub call_id: String,
    /// The call's status after the event (after the first delivery, for a duplicate).
    pub status: CallStatus,
    /// A second delivery of an `event_id` already applied: nothing was changed.
    pub duplicate: bool,
}

struct CallEntry {
    call: Call,
    last_seq: i64,
    /// event_id -> (seq, status after).
    event_ids: HashMap<String, (i64, CallStatus)>,
    sla_deadline: Option<i64>,
    ring_deadline: Option<i64>,
    hold_deadline: Option<i64>,
    /// Its place among its queue's waiting calls, while `waiting`.
    seat: Option<(String, WaitKey)>,
    /// The agents it holds: ringing (offered) or connected.
    holds: Vec<(String, Hold)>,
}

impl CallEntry {
    fn new(call: Call) -> Self {
        CallEntry {
            call,
            last_seq: 0,
            event_ids: HashMap::new(),
            sla_deadline: None,
            ring_deadline: None,
            hold_deadline: None,
            seat: None,
            holds: Vec::new(),
        }
    }

    fn deadline(&mut self, k: TimerKind) -> &mut Option<i64> {
        match k {
            TimerKind::Sla => &mut self.sla_deadline,
            TimerKind::Ring => &mut self.ring_deadline,
            TimerKind::Hold => &mut self.hold_deadline,
            TimerKind::WrapUp => unreachable!("wrap-up timers belong to agents"),
        }
    }
}

/// Where a call waits: its queue and its key there, when it is `waiting`.
fn seat_of(key: &Arc<str>, c: &Call) -> Option<(String, WaitKey)> {
    if c.status != CallStatus::Waiting {
        return None;
    }
    let q = c.queue_id.as_ref()?;
    // Queue-entry time, kept by a re-queue (`call_retransfer`): the call keeps its place.
    let since = c.queue_entered_at.unwrap_or(c.state_since);
    Some((
        q.as_str().to_owned(),
        (Reverse(c.priority), since, key.clone()),
    ))
}

/// The agents a call holds in its state: those it rings, or the one it is connected to
/// (keeping the talk time it had when it connected, from `before`).
fn holds_of(c: &Call, before: &[(String, Hold)]) -> Vec<(String, Hold)> {
    let Some(agent) = c.agent_id.as_ref() else {
        return Vec::new();
    };
    match c.status {
        CallStatus::Ringing => {
            let mut v = vec![(agent.as_str().to_owned(), Hold::Ringing)];
            for a in &c.ring_group {
                if a != agent {
                    v.push((a.as_str().to_owned(), Hold::Ringing));
                }
            }
            v
        }
        CallStatus::Active | CallStatus::OnHold => {
            let id = agent.as_str();
            let kept = before.iter().find_map(|(a, h)| match h {
                Hold::Connected { talk_at } if a == id => Some(*talk_at),
                _ => None,
            });
            vec![(
                id.to_owned(),
                Hold::Connected {
                    talk_at: kept.unwrap_or(c.talk_ms),
                },
            )]
        }
        _ => Vec::new(),
    }
}

/// Events, alerts and touched calls of one request, turned into a [`WriteBatch`] by
/// [`TenantState::finish`].
pub(crate) struct Pending {
    /// Wall-clock time of the request (or tick): every event's `received_at`.
    now: i64,
    events: Vec<EventRecord>,
    alerts: Vec<AlertRecord>,
    touched: Vec<Arc<str>>,
    /// Agents whose stored row changed.
    agents: Vec<String>,
    /// Each changed call's contribution to the statistics projection as it was before the
    /// request first changed it (`None`: not queued, or not yet in existence).
    before: HashMap<Arc<str>, Option<QueueBucket>>,
}

impl Pending {
    pub(crate) fn new(now: i64) -> Self {
        Pending {
            now,
            events: Vec::new(),
            alerts: Vec::new(),
            touched: Vec::new(),
            agents: Vec::new(),
            before: HashMap::new(),
        }
    }
}

/// One tenant's live state.
pub struct TenantState {
    /// The tenant's id.
    pub id: TenantId,
    /// The tenant's settings (its timers' clock among them).
    pub settings: TenantSettings,
    /// The tenant settings' version (the `ETag` of `GET /api/v1/tenant`).
    pub version: i64,
    /// Which load of the tenant this state is: batches of an older epoch than a failed commit
    /// are never written (see the writer).
    pub(crate) epoch: u64,
    /// Largest event timestamp seen (epoch ms); the `event_time` clock.
    watermark: i64,
    last_seq: i64,
    queues: Queues,
    calls: HashMap<Arc<str>, CallEntry>,
    /// Ended calls in the order they ended, with the wall-clock time they ended at.
    ended: VecDeque<(Arc<str>, i64)>,
    agents: Agents,
    timers: Timers,
}

impl TenantState {
    /// Empty state of a tenant as its row stores it: continuing after its `last_seq` and
    /// `watermark`. `epoch` numbers this load.
    pub fn new(t: &Tenant, epoch: u64) -> Self {
        TenantState {
            id: t.id,
            settings: t.settings.clone(),
            version: t.version,
            epoch,
            watermark: t.watermark.unwrap_or(i64::MIN),
            last_seq: t.last_seq,
            queues: Queues::default(),
            calls: HashMap::new(),
            ended: VecDeque::new(),
            agents: Agents::default(),
            timers: Timers::default(),
        }
    }

    /// Sets a queue (loaded from the store, or changed by a command).
    pub fn put_queue(&mut self, q: QueueRecord) {
        self.queues.put(q);
    }

    /// A queue as the engine knows it.
    pub fn queue(&self, id: &str) -> Option<&QueueRecord> {
        self.queues.get(id)
    }

    /// The queue's waiting calls (client call ids) in service order: higher priority first,
    /// then longest waiting.
    pub fn waiting(&self, queue_id: &str) -> Vec<String> {
        self.queues
            .waiting(queue_id)
            .iter()
            .map(|k| k.to_string())
            .collect()
    }

    /// The tenant's last sequence number and its `event_time` watermark (epoch ms; `None`
    /// before the first event).
    pub fn head(&self) -> TenantHead {
        TenantHead {
            last_seq: self.last_seq,
            watermark: (self.watermark != i64::MIN).then_some(self.watermark),
        }
    }

    /// Whether an event for this call needs a store lookup first: the call is not in memory.
    pub fn needs_lookup(&self, external_id: &str) -> bool {
        !self.calls.contains_key(external_id)
    }

    /// Whether the call is in memory.
    pub fn has_call(&self, external_id: &str) -> bool {
        self.calls.contains_key(external_id)
    }

    /// The call's current state, if in memory.
    pub fn call(&self, external_id: &str) -> Option<&Call> {
        self.calls.get(external_id).map(|e| &e.call)
    }

    /// The agents the call is being offered to (ringing), with their SIP URIs.
    pub fn offered_agents(&self, call_id: &str) -> Vec<crate::OfferedAgent> {
        let Some(e) = self.calls.get(call_id) else {
            return Vec::new();
        };
        if e.call.status != CallStatus::Ringing {
            return Vec::new();
        }
        e.holds
            .iter()
            .map(|(a, _)| crate::OfferedAgent {
                agent_id: a.clone(),
                sip_uri: self.agents.get(a).and_then(|a| a.row.sip_uri.clone()),
            })
            .collect()
    }

    /// Sets an agent's row read from the store, re-arming its wrap-up timer.
    pub fn put_agent(&mut self, a: AgentRow) {
        if let Some(d) = a.wrap_up_until {
            let key: Arc<str> = Arc::from(a.agent_id.as_str());
            self.timers.arm(&key, TimerKind::WrapUp, None, d);
        }
        self.agents.put(a);
    }

    /// Puts a call read from the store back in memory with the timers it had armed.
    pub fn insert_loaded(&mut self, l: LoadedCall) {
        let key: Arc<str> = Arc::from(l.row.call.external_id.as_str());
        let event_ids = l
            .event_ids
            .into_iter()
            .filter_map(|(id, seq, st)| Some((id, (seq, CallStatus::parse(&st)?))))
            .collect();
        let ended = l.row.call.status == CallStatus::Ended;
        let mut entry = CallEntry::new(l.row.call);
        entry.last_seq = l.row.last_seq;
        entry.event_ids = event_ids;
        // Exactly the timers that were armed, with their deadlines: settings changed since do
        // not re-time them (a restart changes no outcome).
        for (k, d) in [
            (TimerKind::Sla, l.row.sla_deadline),
            (TimerKind::Ring, l.row.ring_deadline),
            (TimerKind::Hold, l.row.hold_deadline),
        ] {
            if let Some(d) = d {
                *entry.deadline(k) = Some(d);
                self.timers.arm(&key, k, None, d);
            }
        }
        entry.seat = seat_of(&key, &entry.call);
        self.queues.reseat(None, entry.seat.clone());
        entry.holds = holds_of(&entry.call, &[]);
        self.agents.rehold(&key, &[], &entry.holds);
        if ended {
            // Read back from the store: already committed, evictable at once.
            self.ended.push_back((key.clone(), i64::MIN));
        }
        self.calls.insert(key, entry);
    }

    /// The call's contribution to the statistics projection (`queue_stats`): by the threshold
    /// frozen on it, else its first queue's current one (calls stored before thresholds were
    /// frozen). `None` for a call never queued.
    fn stats_of(&self, c: &Call) -> Option<QueueBucket> {
        let f = CallFacts::of(c)?;
        let fallback = self
            .queues
            .get(&f.queue_id)
            .map_or(QueueSettings::default().sla_threshold_s, |q| {
                q.settings.sla_threshold_s
            });
        Some(contribution(&f, fallback))
    }

    /// Keeps the call's contribution as it is before this request first changes it: called
    /// before every change of a call (client event, timer, new call), whether the call was in
    /// memory or loaded from the store for this request.
    fn snapshot(&self, key: &Arc<str>, out: &mut Pending) {
        if !out.before.contains_key(key) {
            let before = self.calls.get(key).and_then(|e| self.stats_of(&e.call));
            out.before.insert(key.clone(), before);
        }
    }

    fn settings_of(&self, c: &Call) -> QueueSettings {
        c.queue_id
            .as_ref()
            .or(c.first_queue_id.as_ref())
            .and_then(|q| self.queues.get(q.as_str()))
            .map(|q| q.settings.clone())
            .unwrap_or_default()
    }

    /// The earliest armed timer's deadline (epoch ms) when the tenant runs on the `live`
    /// clock: when the timer task must visit it next.
    pub fn next_live_deadline(&self) -> Option<i64> {
        match self.settings.clock {
            Clock::Live => self.timers.next(),
            Clock::EventTime => None,
        }
    }

    /// Applies one client event at `now` (wall clock, the default timestamp), first moving time
    /// forward (see the module doc). `loaded` holds calls the engine read from the store for
    /// this request.
    ///
    /// Errors: [`EngineError`] — nothing of the event is applied (timers that came due by the
    /// event's time may have fired).
    pub(crate) fn apply(
        &mut self,
        ev: IncomingEvent,
        now: i64,
        max_skew_ms: i64,
        loaded: &mut HashMap<String, LoadedCall>,
        out: &mut Pending,
    ) -> Result<Outcome, EngineError> {
        let ts = ev.timestamp.unwrap_or(now);
        debug_assert_eq!(out.now, now);
        // A far-future timestamp would fire every timer and freeze the event_time clock: refuse
        // what lies beyond the later of now and the watermark by more than the allowed skew.
        let limit = now.max(self.watermark).saturating_add(max_skew_ms);
        if ts > limit {
            return Err(EngineError::TimestampTooFar { limit });
        }
        let key = ev.call_id.as_str();
        if !self.calls.contains_key(key) {
            if let Some(l) = loaded.remove(key) {
                self.insert_loaded(l);
            }
        }
        // Validate against the current state before anything moves.
        if let Some(entry) = self.calls.get(key) {
            if let Some((seq, status)) = ev.event_id.as_ref().and_then(|id| entry.event_ids.get(id))
            {
                return Ok(Outcome {
                    seq: *seq,
                    call_uuid: entry.call.id,
                    call_id: key.to_owned(),
                    status: *status,
                    duplicate: true,
                });
            }
            if matches!(ev.kind, EventKind::CallInitiated { .. }) {
                return Err(EngineError::CallExists {
                    call_id: key.to_owned(),
                    status: entry.call.status,
                });
            }
            entry.call.check(&ev.kind)?;
        } else if !matches!(ev.kind, EventKind::CallInitiated { .. }) {
            return Err(EngineError::UnknownCall(key.to_owned()));
        }
        let queue = match &ev.kind {
            EventKind::CallInitiated { queue_id, .. } => queue_id.as_ref(),
            EventKind::CallQueued { queue_id, .. } => Some(queue_id),
            EventKind::CallTransferred {
                target: TransferTarget::Queue(q),
            } => Some(q),
            _ => None,
        };
        if let Some(q) = queue {
            if !self.queues.contains(q.as_str()) {
                return Err(EngineError::UnknownQueue(q.as_str().to_owned()));
            }
        }

        // Move time forward: the tenant's watermark, then this call's own overdue timers.
        if self.settings.clock == Clock::EventTime && ts > self.watermark {
            self.fire_before(ts, out);
            self.watermark = ts;
        }
        let key: Arc<str> = match self.calls.get_key_value(key) {
            Some((k, _)) => k.clone(),
            None => Arc::from(key),
        };
        self.fire_own_before(&key, ts, out);

        let answered_before = self
            .calls
            .get(&key)
            .is_some_and(|e| e.call.answered_at.is_some());
        let seq = if let EventKind::CallInitiated { .. } = &ev.kind {
            self.snapshot(&key, out);
            let call = Call::initiate(Uuid::now_v7(), ev.call_id, &ev.kind, ts)?;
            self.calls.insert(key.clone(), CallEntry::new(call));
            self.record(&key, &ev.kind, ts, ev.event_id, out)
        } else {
            // A timer may have changed the state (e.g. ring timeout before this answer).
            self.calls[&key].call.check(&ev.kind)?;
            self.emit(&key, ev.kind.clone(), ts, ev.event_id, out)
        };
        self.after(&key, &ev.kind, ts, answered_before, out);
        self.distribute(ts, out);
        let entry = &self.calls[&key];
        Ok(Outcome {
            seq,
            call_uuid: entry.call.id,
            call_id: key.to_string(),
            status: entry.call.status,
            duplicate: false,
        })
    }

    /// Fires every timer due at or before `now` (the `live` clock's tick).
    pub(crate) fn fire_due(&mut self, now: i64, out: &mut Pending) {
        self.fire_before(now + 1, out);
    }

    /// Fires every timer with deadline strictly before `t`, in deadline order.
    fn fire_before(&mut self, t: i64, out: &mut Pending) {
        while let Some((deadline, kind, key)) = self.timers.pop_before(t) {
            self.fire(&key, kind, deadline, out);
        }
    }

    fn fire_own_before(&mut self, key: &Arc<str>, t: i64, out: &mut Pending) {
        loop {
            let Some(entry) = self.calls.get_mut(key) else {
                return;
            };
            let due = TimerKind::ALL
                .into_iter()
                .filter_map(|k| entry.deadline(k).filter(|d| *d < t).map(|d| (d, k)))
                .min();
            let Some((d, k)) = due else { return };
            self.timers.disarm(key, k, Some(d));
            self.fire(key, k, d, out);
        }
    }

    /// A timer came due: the rules say what it makes, if anything; then waiting calls are
    /// distributed at the deadline's time.
    fn fire(&mut self, key: &Arc<str>, kind: TimerKind, deadline: i64, out: &mut Pending) {
        if kind == TimerKind::WrapUp {
            self.end_wrap_up(key, deadline, out);
        } else {
            self.fire_call(key, kind, deadline, out);
        }
        self.distribute(deadline, out);
    }

    fn fire_call(&mut self, key: &Arc<str>, kind: TimerKind, deadline: i64, out: &mut Pending) {
        let Some(entry) = self.calls.get_mut(key) else {
            return;
        };
        if *entry.deadline(kind) != Some(deadline) {
            return; // cancelled or re-armed
        }
        *entry.deadline(kind) = None;
        let c = &self.calls[key].call;
        let mut s = self.settings_of(c);
        let missed = c
            .agent_id
            .as_ref()
            .map_or(0, |a| self.agents.missed(a.as_str()));
        // The agent's own max_no_answer, when set, rules over the queue's.
        if let Some(m) = c
            .agent_id
            .as_ref()
            .and_then(|a| self.agents.get(a.as_str()))
            .and_then(|a| a.row.max_no_answer)
        {
            s.max_no_answer = m;
        }
        let Some(ev) = rules::on_timer(c, kind, deadline, &s, missed) else {
            return;
        };
        if let EventKind::CallRetransfer {
            agent_id,
            missed,
            agent_on_break,
        } = &ev
        {
            let a = self.agents.entry(agent_id.as_str());
            a.row.missed = *missed;
            if *agent_on_break && a.row.status != AgentStatus::Break {
                a.row.status = AgentStatus::Break;
                a.row.status_since = deadline;
            }
            out.agents.push(agent_id.as_str().to_owned());
        }
        self.emit(key, ev, deadline, None, out);
    }

    /// Applies an event to an existing call, assigns its seq and records it.
    fn emit(
        &mut self,
        key: &Arc<str>,
        kind: EventKind,
        ts: i64,
        event_id: Option<String>,
        out: &mut Pending,
    ) -> i64 {
        self.snapshot(key, out);
        let entry = self.calls.get_mut(key).expect("emit on a known call");
        entry.call.apply(&kind, ts).expect("checked before emit");
        self.record(key, &kind, ts, event_id, out)
    }

    fn record(
        &mut self,
        key: &Arc<str>,
        kind: &EventKind,
        ts: i64,
        event_id: Option<String>,
        out: &mut Pending,
    ) -> i64 {
        self.last_seq += 1;
        let seq = self.last_seq;
        let entry = self.calls.get_mut(key).expect("record on a known call");
        entry.last_seq = seq;
        let c = &entry.call;
        let data = kind.payload().to_string();
        if kind.is_alert() {
            out.alerts.push(AlertRecord {
                seq,
                call_id: c.id,
                external_call_id: key.to_string(),
                queue_id: c.queue_id.as_ref().map(|q| q.as_str().to_owned()),
                alert_type: kind.type_name().to_owned(),
                ts,
                data: data.clone(),
            });
        }
        out.events.push(EventRecord {
            seq,
            call_id: c.id,
            external_call_id: key.to_string(),
            event_id: event_id.clone(),
            event_type: kind.type_name().to_owned(),
            ts,
            received_at: out.now,
            status_after: c.status.as_str().to_owned(),
            data,
        });
        if let Some(id) = event_id {
            let status = c.status;
            entry.event_ids.insert(id, (seq, status));
        }
        if out.touched.last() != Some(key) {
            out.touched.push(key.clone());
        }
        // Keep the call's place among its queue's waiting calls in step with its state.
        let seat = seat_of(key, &entry.call);
        if seat != entry.seat {
            let old = std::mem::replace(&mut entry.seat, seat.clone());
            self.queues.reseat(old, seat);
        }
        // And the agents it holds.
        let holds = holds_of(&entry.call, &entry.holds);
        if holds != entry.holds {
            let old = std::mem::replace(&mut entry.holds, holds.clone());
            let talk_ms = entry.call.talk_ms;
            self.agents.rehold(key, &old, &holds);
            let reason = match kind {
                EventKind::CallRetransfer {
                    agent_on_break: true,
                    ..
                } => "max_no_answer",
                k => k.type_name(),
            };
            self.agents_moved(&old, &holds, talk_ms, reason, ts, out);
        }
        seq
    }

    fn arm(&mut self, key: &Arc<str>, kind: TimerKind, deadline: i64) {
        let entry = self.calls.get_mut(key).expect("arm on a known call");
        let previous = entry.deadline(kind).replace(deadline);
        self.timers.arm(key, kind, previous, deadline);
    }

    fn disarm(&mut self, key: &Arc<str>, kind: TimerKind) {
        let entry = self.calls.get_mut(key).expect("disarm on a known call");
        let previous = entry.deadline(kind).take();
        self.timers.disarm(key, kind, previous);
    }

    /// Applies the rules' effects after a client event.
    fn after(
        &mut self,
        key: &Arc<str>,
        kind: &EventKind,
        ts: i64,
        answered_before: bool,
        out: &mut Pending,
    ) {
        let entry = &self.calls[key];
        let c = &entry.call;
        let s = self.settings_of(c);
        let fx = rules::after_event(
            c,
            kind,
            ts,
            &s,
            answered_before,
            entry.sla_deadline.is_some(),
        );
        if let Some(t) = fx.freeze_sla_threshold_s {
            self.snapshot(key, out);
            self.calls
                .get_mut(key)
                .expect("applied")
                .call
                .sla_threshold_s = Some(t);
        }
        for k in fx.disarm {
            self.disarm(key, k);
        }
        for (k, d) in fx.arm {
            self.arm(key, k, d);
        }
        for ev in fx.emit {
            self.emit(key, ev, ts, None, out);
        }
        if matches!(kind, EventKind::CallEnded { .. }) {
            self.ended.push_back((key.clone(), out.now));
        }
    }

    /// Turns the request's output into a write batch (each touched call's latest projection,
    /// the statistics deltas of the touched calls, the tenant's head) and drops from memory the ended calls that are committed (their
    /// last event's seq ≤ `committed_seq`) and older than [`ENDED_TTL_MS`] or beyond
    /// [`ENDED_KEPT`]. A call is never dropped before its events are durable: an event naming
    /// it would otherwise miss it in memory and in the store.
    pub(crate) fn finish(&mut self, out: Pending, committed_seq: i64) -> WriteBatch {
        let mut touched = out.touched;
        touched.sort_unstable();
        touched.dedup();
        let calls = touched
            .iter()
            .filter_map(|k| self.calls.get(k))
            .map(|e| CallRow {
                call: e.call.clone(),
                last_seq: e.last_seq,
                sla_deadline: e.sla_deadline,
                ring_deadline: e.ring_deadline,
                hold_deadline: e.hold_deadline,
            })
            .collect();
        let mut agent_ids = out.agents;
        agent_ids.sort_unstable();
        agent_ids.dedup();
        let agents = agent_ids
            .into_iter()
            .filter_map(|id| self.agents.get(&id).map(|a| a.row.clone()))
            .collect();
        let stats = StatsDelta::merged(out.before.iter().flat_map(|(k, before)| {
            let after = self.calls.get(k).and_then(|e| self.stats_of(&e.call));
            StatsDelta::between(before.as_ref(), after.as_ref())
        }));
        while let Some((k, ended_at)) = self.ended.front() {
            let expired =
                self.ended.len() > ENDED_KEPT || out.now.saturating_sub(*ended_at) > ENDED_TTL_MS;
            let entry = self.calls.get(k);
            if !expired || entry.is_some_and(|e| e.last_seq > committed_seq) {
                break;
            }
            if entry.is_some_and(|e| e.call.status == CallStatus::Ended) {
                self.calls.remove(k);
            }
            self.ended.pop_front();
        }
        let head = (!out.events.is_empty()).then(|| self.head());
        WriteBatch {
            tenant_id: self.id,
            events: out.events,
            alerts: out.alerts,
            calls,
            agents,
            head,
            stats,
            ..Default::default()
        }
    }

    /// Number of pending (armed) timers, stale entries included.
    pub fn timer_entries(&self) -> usize {
        self.timers.len()
    }

    /// The agent's consecutive misses and whether it is on break.
    pub fn agent(&self, agent: &AgentId) -> Option<(u32, bool)> {
        self.agents
            .get(agent.as_str())
            .map(|a| (a.row.missed, a.row.status == AgentStatus::Break))
    }
}
