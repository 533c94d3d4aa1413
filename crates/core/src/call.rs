//! One call and its state machine (DESIGN.md "Call lifecycle").
//!
//! ```text
//! initiated --queued--> waiting --routed--> ringing --answered--> active <--hold/resumed--> on_hold
//!     |                    ^  |                |  (retransfer)       |  (transferred)
//!     +--routed------------|--+----------------+-> waiting <---------+
//!   any non-ended state --ended--> ended (terminal)
//! ```
//!
//! [`Call::check`] tells whether an event fits the current state without changing anything;
//! [`Call::apply`] applies one that fits. Durations are computed from event timestamps:
//! `wait` runs from the first queue entry to the first answer (ring time included, like
//! Asterisk's holdtime) or, for a call that is never answered, to its end; `talk` is the time
//! spent `active`, `hold` the time spent `on_hold`. A timestamp earlier than one already seen for
//! the call is accepted, its interval counts as zero, and the call is flagged `out_of_order`.

use std::fmt;

use uuid::Uuid;

use crate::event::{CallType, EndReason, EventKind, TransferTarget};
use crate::ids::{AgentId, ExternalCallId, QueueId};
use crate::time::TimestampMs;

/// Where a call is in its lifecycle; on the wire its snake_case name (`on_hold`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CallStatus {
    /// Arrived, not yet queued (e.g. in an IVR).
    Initiated,
    /// In a queue.
    Waiting,
    /// Offered to an agent or destination.
    Ringing,
    /// Answered.
    Active,
    /// Answered and on hold.
    OnHold,
    /// Terminal.
    Ended,
}

impl CallStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [CallStatus; 6] = [
        CallStatus::Initiated,
        CallStatus::Waiting,
        CallStatus::Ringing,
        CallStatus::Active,
        CallStatus::OnHold,
        CallStatus::Ended,
    ];

    /// The wire name (`on_hold`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            CallStatus::Initiated => "initiated",
            CallStatus::Waiting => "waiting",
            CallStatus::Ringing => "ringing",
            CallStatus::Active => "active",
            CallStatus::OnHold => "on_hold",
            CallStatus::Ended => "ended",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for CallStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A mark on a call, filterable with `GET /api/v1/calls?flag=`; on the wire its snake_case
/// name (`out_of_order`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallFlag {
    /// Some event's timestamp ran backwards within the call.
    OutOfOrder,
    /// Talk time under the queue's `short_call_s`.
    Review,
    /// Not answered within the queue's `sla_threshold_s`.
    SlaBreached,
    /// Answered after waiting longer than `sla_threshold_s`.
    LongWait,
    /// On hold longer than `hold_max_s`.
    LongHold,
}

impl CallFlag {
    /// Every flag.
    pub const ALL: [CallFlag; 5] = [
        CallFlag::OutOfOrder,
        CallFlag::Review,
        CallFlag::SlaBreached,
        CallFlag::LongWait,
        CallFlag::LongHold,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            CallFlag::OutOfOrder => "out_of_order",
            CallFlag::Review => "review",
            CallFlag::SlaBreached => "sla_breached",
            CallFlag::LongWait => "long_wait",
            CallFlag::LongHold => "long_hold",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of [`CallFlag`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flags(u8);

impl Flags {
    /// Adds a flag.
    pub fn insert(&mut self, f: CallFlag) {
        self.0 |= f.bit();
    }

    /// Whether the flag is set.
    pub fn contains(self, f: CallFlag) -> bool {
        self.0 & f.bit() != 0
    }

    /// The flags' wire names, in [`CallFlag::ALL`] order.
    pub fn names(self) -> Vec<&'static str> {
        CallFlag::ALL
            .into_iter()
            .filter(|f| self.contains(*f))
            .map(CallFlag::as_str)
            .collect()
    }

    /// Storage form: `,review,out_of_order,` style (delimited on both sides so that
    /// `LIKE '%,review,%'` finds one flag), or empty.
    pub fn to_db(self) -> String {
        let names = self.names();
        if names.is_empty() {
            String::new()
        } else {
            format!(",{},", names.join(","))
        }
    }

    /// Reads the storage form; unknown names are ignored.
    pub fn from_db(s: &str) -> Self {
        let mut f = Flags::default();
        for n in s.split(',').filter_map(CallFlag::parse) {
            f.insert(n);
        }
        f
    }
}

/// An event that does not fit the call's current state (answered 409 with the state).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{event}` is not allowed while the call is {status}")]
pub struct TransitionError {
    /// The call's status when the event arrived.
    pub status: CallStatus,
    /// The refused event's wire `type` (`call_answered`, …).
    pub event: &'static str,
}

/// One call's live state (also the `calls` projection row).
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// Switchboard's id (UUIDv7).
    pub id: Uuid,
    /// The client's id for the call.
    pub external_id: ExternalCallId,
    /// Media of the call (`call_initiated`'s `call_type`; voice by default).
    pub call_type: CallType,
    /// Caller (E.164 recommended; SIP URIs and `anonymous` are kept as given).
    pub from: Option<String>,
    /// Called number (the DID), as given.
    pub to: Option<String>,
    /// Where the call is in its lifecycle.
    pub status: CallStatus,
    /// The queue the call is in or was last in.
    pub queue_id: Option<QueueId>,
    /// The queue the call entered first: reports count the call there.
    pub first_queue_id: Option<QueueId>,
    /// The agent the call is offered to or talking with (the last one after it ends).
    pub agent_id: Option<AgentId>,
    /// Caller priority, higher first.
    pub priority: u32,
    /// Time of `call_initiated`.
    pub initiated_at: TimestampMs,
    /// First queue entry.
    pub queued_at: Option<TimestampMs>,
    /// First answer.
    pub answered_at: Option<TimestampMs>,
    /// Time of `call_ended`; `None` until the call ends.
    pub ended_at: Option<TimestampMs>,
    /// Reason given by `call_ended`; `None` until the call ends.
    pub end_reason: Option<EndReason>,
    /// Milliseconds from first queue entry to first answer, or to the end of a call never
    /// answered; `None` while still waiting or when never queued.
    pub wait_ms: Option<i64>,
    /// Milliseconds spent `active`.
    pub talk_ms: i64,
    /// Milliseconds spent `on_hold`.
    pub hold_ms: i64,
    /// Marks set on the call (`out_of_order`, `review`, `sla_breached`, …).
    pub flags: Flags,
    /// When the current state was entered (event time; never earlier than the previous state's
    /// start).
    pub state_since: TimestampMs,
    /// Largest event timestamp seen for this call.
    pub last_ts: TimestampMs,
    /// The queue's `sla_threshold_s` frozen at first queue entry (set by the engine), seconds:
    /// `sla_breached`, `long_wait` and the report's `answered_within_sl` all use it, so a
    /// later change of the queue's setting never judges one call by two thresholds.
    pub sla_threshold_s: Option<u32>,
    /// When the call entered the queue it is in or was last in (epoch ms). A call re-queued
    /// by `call_retransfer` keeps it, so it keeps its place in line.
    pub queue_entered_at: Option<TimestampMs>,
    /// The agents a `ring_all` offer rings at once (empty for a one-agent offer, and once the
    /// call is answered or back in its queue).
    pub ring_group: Vec<AgentId>,
}

impl Call {
    /// A new call from its `call_initiated` event at `ts`. With a `queue_id` the call is queued
    /// at once (state `waiting`).
    ///
    /// Errors: [`TransitionError`] (from `initiated`) for any other event kind, since a call
    /// starts only with `call_initiated`.
    pub fn initiate(
        id: Uuid,
        external_id: ExternalCallId,
        kind: &EventKind,
        ts: TimestampMs,
    ) -> Result<Call, TransitionError> {
        let EventKind::CallInitiated {
            call_type,
            queue_id,
            from,
            to,
            priority,
        } = kind
        else {
            return Err(TransitionError {
                status: CallStatus::Initiated,
                event: kind.type_name(),
            });
        };
        let mut call = Call {
            id,
            external_id,
            call_type: *call_type,
            from: from.clone(),
            to: to.clone(),
            status: CallStatus::Initiated,
            queue_id: None,
            first_queue_id: None,
            agent_id: None,
            priority: priority.unwrap_or(0),
            initiated_at: ts,
            queued_at: None,
            answered_at: None,
            ended_at: None,
            end_reason: None,
            wait_ms: None,
            talk_ms: 0,
            hold_ms: 0,
            flags: Flags::default(),
            state_since: ts,
            last_ts: ts,
            sla_threshold_s: None,
            queue_entered_at: None,
            ring_group: Vec::new(),
        };
        if let Some(q) = queue_id {
            call.enter_queue(q.clone(), ts);
        }
        Ok(call)
    }

    /// Whether `kind` fits the current state. Changes nothing.
    ///
    /// Engine-made events that only annotate (`sla_breached`, `long_wait`, `long_hold`,
    /// `call_flagged`, `survey_requested`) fit any state.
    pub fn check(&self, kind: &EventKind) -> Result<(), TransitionError> {
        use CallStatus::*;
        let ok = match kind {
            EventKind::CallInitiated { .. } => false,
            EventKind::CallQueued { .. } => self.status == Initiated,
            EventKind::CallRouted { .. } => matches!(self.status, Initiated | Waiting),
            EventKind::CallAnswered { .. } => self.status == Ringing,
            EventKind::CallHold { .. } => self.status == Active,
            EventKind::CallResumed => self.status == OnHold,
            EventKind::CallTransferred { .. } => matches!(self.status, Waiting | Active | OnHold),
            EventKind::CallEnded { .. } => self.status != Ended,
            EventKind::CallRetransfer { .. } => self.status == Ringing,
            EventKind::SlaBreached { .. }
            | EventKind::LongWait { .. }
            | EventKind::LongHold { .. }
            | EventKind::CallFlagged { .. }
            | EventKind::SurveyRequested { .. } => true,
        };
        if ok {
            Ok(())
        } else {
            Err(TransitionError {
                status: self.status,
                event: kind.type_name(),
            })
        }
    }

    /// Applies `kind` at `ts`.
    ///
    /// Errors: [`TransitionError`] when it does not fit (then nothing changed).
    pub fn apply(&mut self, kind: &EventKind, ts: TimestampMs) -> Result<(), TransitionError> {
        self.check(kind)?;
        if ts < self.last_ts {
            self.flags.insert(CallFlag::OutOfOrder);
        }
        self.last_ts = self.last_ts.max(ts);
        match kind {
            EventKind::CallInitiated { .. } => unreachable!("refused by check"),
            EventKind::CallQueued { queue_id, priority } => {
                if let Some(p) = priority {
                    self.priority = *p;
                }
                self.leave_state(ts);
                self.enter_queue(queue_id.clone(), ts);
            }
            EventKind::CallRouted {
                agent_id,
                ring_group,
                ..
            } => {
                self.leave_state(ts);
                self.agent_id = Some(agent_id.clone());
                self.ring_group = ring_group.clone();
                self.status = CallStatus::Ringing;
            }
            EventKind::CallAnswered { agent_id, .. } => {
                self.leave_state(ts);
                if let Some(a) = agent_id {
                    self.agent_id = Some(a.clone());
                }
                self.ring_group.clear();
                if self.answered_at.is_none() {
                    self.answered_at = Some(ts);
                    self.wait_ms = self.queued_at.map(|q| (ts - q).max(0));
                }
                self.status = CallStatus::Active;
            }
            EventKind::CallHold { .. } => {
                self.leave_state(ts);
                self.status = CallStatus::OnHold;
            }
            EventKind::CallResumed => {
                self.leave_state(ts);
                self.status = CallStatus::Active;
            }
            EventKind::CallTransferred { target } => {
                self.leave_state(ts);
                match target {
                    TransferTarget::Queue(q) => {
                        self.agent_id = None;
                        self.ring_group.clear();
                        self.enter_queue(q.clone(), ts);
                    }
                    TransferTarget::Agent(a) => {
                        self.agent_id = Some(a.clone());
                        self.ring_group.clear();
                        self.status = CallStatus::Ringing;
                    }
                }
            }
            EventKind::CallEnded { end_reason, .. } => {
                self.leave_state(ts);
                self.ring_group.clear();
                if self.answered_at.is_none() {
                    self.wait_ms = self.queued_at.map(|q| (ts - q).max(0));
                }
                self.ended_at = Some(ts);
                self.end_reason = Some(*end_reason);
                self.status = CallStatus::Ended;
            }
            EventKind::CallRetransfer { .. } => {
                self.leave_state(ts);
                self.agent_id = None;
                self.ring_group.clear();
                self.status = CallStatus::Waiting;
            }
            EventKind::SlaBreached { .. } => self.flags.insert(CallFlag::SlaBreached),
            EventKind::LongWait { .. } => self.flags.insert(CallFlag::LongWait),
            EventKind::LongHold { .. } => self.flags.insert(CallFlag::LongHold),
            EventKind::CallFlagged { flag, .. } => self.flags.insert(*flag),
            EventKind::SurveyRequested { .. } => {}
        }
        Ok(())
    }

    /// Whether the call was ever answered.
    pub fn was_answered(&self) -> bool {
        self.answered_at.is_some()
    }

    /// Whether the call ended before answer after entering a queue (the abandonment definition
    /// of docs/metrics.md).
    pub fn is_abandoned(&self) -> bool {
        self.status == CallStatus::Ended && self.queued_at.is_some() && self.answered_at.is_none()
    }

    /// Talk plus hold, milliseconds.
    pub fn handle_ms(&self) -> i64 {
        self.talk_ms + self.hold_ms
    }

    fn enter_queue(&mut self, q: QueueId, ts: TimestampMs) {
        if self.first_queue_id.is_none() {
            self.first_queue_id = Some(q.clone());
            self.queued_at = Some(ts);
        }
        self.queue_id = Some(q);
        self.queue_entered_at = Some(ts);
        self.status = CallStatus::Waiting;
    }

    /// Closes the interval spent in the current state, adding it to talk or hold time. The next
    /// state starts at `ts`, or where this one started if `ts` runs backwards: intervals never
    /// overlap, so talk + hold never exceed the time the call has seen.
    fn leave_state(&mut self, ts: TimestampMs) {
        let d = (ts - self.state_since).max(0);
        match self.status {
            CallStatus::Active => self.talk_ms += d,
            CallStatus::OnHold => self.hold_ms += d,
            _ => {}
        }
        self.state_since = self.state_since.max(ts);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn q(s: &str) -> QueueId {
        QueueId::parse(s).unwrap()
    }
    fn a(s: &str) -> AgentId {
        AgentId::parse(s).unwrap()
    }
    fn init(queue: Option<&str>, ts: i64) -> Call {
        Call::initiate(
            Uuid::now_v7(),
            ExternalCallId::parse("c1").unwrap(),
            &EventKind::CallInitiated {
                call_type: CallType::Voice,
                queue_id: queue.map(q),
                from: None,
                to: None,
                priority: None,
            },
            ts,
        )
        .unwrap()
    }
    fn routed() -> EventKind {
        EventKind::CallRouted {
            agent_id: a("a1"),
            routing_time: None,
            ring_group: Vec::new(),
            targets: Vec::new(),
        }
    }
    fn answered() -> EventKind {
        EventKind::CallAnswered {
            agent_id: None,
            wait_time: None,
        }
    }
    fn ended(r: EndReason) -> EventKind {
        EventKind::CallEnded {
            end_reason: r,
            duration: None,
        }
    }

    #[test]
    fn full_lifecycle_computes_wait_talk_hold() {
        let mut c = init(Some("q0"), 0);
        assert_eq!(c.status, CallStatus::Waiting);
        c.apply(&routed(), 20_000).unwrap();
        c.apply(&answered(), 25_000).unwrap();
        c.apply(
            &EventKind::CallHold {
                hold_duration: None,
            },
            65_000,
        )
        .unwrap();
        c.apply(&EventKind::CallResumed, 95_000).unwrap();
        c.apply(&ended(EndReason::Completed), 100_000).unwrap();
        assert_eq!(c.wait_ms, Some(25_000));
        assert_eq!(c.talk_ms, 45_000);
        assert_eq!(c.hold_ms, 30_000);
        assert_eq!(c.handle_ms(), 75_000);
        assert!(!c.is_abandoned());
        assert_eq!(c.flags, Flags::default());
    }

    #[test]
    fn abandon_wait_runs_to_the_end() {
        let mut c = init(None, 0);
        c.apply(
            &EventKind::CallQueued {
                queue_id: q("q0"),
                priority: Some(2),
            },
            10_000,
        )
        .unwrap();
        c.apply(&ended(EndReason::Abandoned), 52_000).unwrap();
        assert_eq!(c.wait_ms, Some(42_000));
        assert_eq!(c.priority, 2);
        assert!(c.is_abandoned());
    }

    #[test]
    fn illegal_transition_is_refused_and_changes_nothing() {
        let mut c = init(Some("q0"), 0);
        let before = c.clone();
        let e = c.apply(&answered(), 5_000).unwrap_err();
        assert_eq!(
            e,
            TransitionError {
                status: CallStatus::Waiting,
                event: "call_answered"
            }
        );
        assert_eq!(c, before);
    }

    #[test]
    fn backwards_timestamps_clamp_and_flag() {
        let mut c = init(Some("q0"), 100_000);
        c.apply(&routed(), 90_000).unwrap();
        c.apply(&answered(), 90_000).unwrap();
        assert_eq!(c.wait_ms, Some(0));
        assert!(c.flags.contains(CallFlag::OutOfOrder));
        c.apply(&ended(EndReason::Completed), 80_000).unwrap();
        assert_eq!(c.talk_ms, 0);
    }

    #[test]
    fn retransfer_and_transfer_move_back_to_a_queue() {
        let mut c = init(Some("q0"), 0);
        c.apply(&routed(), 1_000).unwrap();
        c.apply(
            &EventKind::CallRetransfer {
                agent_id: a("a1"),
                missed: 1,
                agent_on_break: false,
            },
            16_000,
        )
        .unwrap();
        assert_eq!((c.status, c.agent_id.clone()), (CallStatus::Waiting, None));
        c.apply(&routed(), 17_000).unwrap();
        c.apply(&answered(), 18_000).unwrap();
        c.apply(
            &EventKind::CallTransferred {
                target: TransferTarget::Queue(q("q1")),
            },
            28_000,
        )
        .unwrap();
        assert_eq!(c.status, CallStatus::Waiting);
        assert_eq!(c.queue_id, Some(q("q1")));
        assert_eq!(c.first_queue_id, Some(q("q0")));
        assert_eq!(c.queued_at, Some(0));
        assert_eq!(c.talk_ms, 10_000);
    }

    #[test]
    fn flags_round_trip_storage_form() {
        let mut f = Flags::default();
        assert_eq!(f.to_db(), "");
        f.insert(CallFlag::Review);
        f.insert(CallFlag::OutOfOrder);
        assert_eq!(f.to_db(), ",out_of_order,review,");
        assert_eq!(Flags::from_db(&f.to_db()), f);
    }

    fn any_event() -> impl Strategy<Value = EventKind> {
        prop_oneof![
            Just(EventKind::CallQueued {
                queue_id: q("q0"),
                priority: None
            }),
            Just(routed()),
            Just(answered()),
            Just(EventKind::CallHold {
                hold_duration: None
            }),
            Just(EventKind::CallResumed),
            Just(EventKind::CallTransferred {
                target: TransferTarget::Queue(q("q1"))
            }),
            Just(EventKind::CallTransferred {
                target: TransferTarget::Agent(a("a2"))
            }),
            Just(EventKind::CallRetransfer {
                agent_id: a("a1"),
                missed: 1,
                agent_on_break: false
            }),
            prop_oneof![
                Just(EndReason::Completed),
                Just(EndReason::Abandoned),
                Just(EndReason::Failed)
            ]
            .prop_map(ended),
        ]
    }

    proptest! {
        /// Any sequence of events with any timestamps: refused events change nothing, accepted
        /// ones follow the diagram, durations never go negative, nothing follows `ended`, and
        /// talk + hold never exceed the span of time the call has seen.
        #[test]
        fn state_machine_invariants(
            queued in any::<bool>(),
            steps in proptest::collection::vec((any_event(), -50_000i64..200_000), 0..40)
        ) {
            let mut c = init(queued.then_some("q0"), 0);
            let mut min_ts = 0i64;
            let mut max_ts = 0i64;
            for (ev, ts) in steps {
                let before = c.clone();
                match c.apply(&ev, ts) {
                    Err(e) => {
                        prop_assert_eq!(&c, &before);
                        prop_assert_eq!(e.status, before.status);
                    }
                    Ok(()) => {
                        min_ts = min_ts.min(ts);
                        max_ts = max_ts.max(ts);
                        prop_assert!(before.status != CallStatus::Ended);
                        let expected = match &ev {
                            EventKind::CallQueued { .. } | EventKind::CallRetransfer { .. } => CallStatus::Waiting,
                            EventKind::CallRouted { .. } => CallStatus::Ringing,
                            EventKind::CallAnswered { .. } | EventKind::CallResumed => CallStatus::Active,
                            EventKind::CallHold { .. } => CallStatus::OnHold,
                            EventKind::CallTransferred { target: TransferTarget::Queue(_) } => CallStatus::Waiting,
                            EventKind::CallTransferred { target: TransferTarget::Agent(_) } => CallStatus::Ringing,
                            EventKind::CallEnded { .. } => CallStatus::Ended,
                            _ => before.status,
                        };
                        prop_assert_eq!(c.status, expected);
                        if ts < before.last_ts {
                            prop_assert!(c.flags.contains(CallFlag::OutOfOrder));
                        }
                    }
                }
                prop_assert!(c.talk_ms >= 0 && c.hold_ms >= 0);
                prop_assert!(c.wait_ms.unwrap_or(0) >= 0);
                prop_assert!(c.talk_ms + c.hold_ms <= max_ts - min_ts);
                if c.wait_ms.is_some() {
                    prop_assert!(c.queued_at.is_some());
                }
                if c.is_abandoned() {
                    prop_assert!(c.wait_ms.is_some());
                }
                if c.answered_at.is_none() {
                    prop_assert_eq!(c.talk_ms + c.hold_ms, 0);
                }
            }
        }
    }
}
