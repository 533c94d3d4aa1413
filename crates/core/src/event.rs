//! Call events: the lifecycle events telephony sends (`call_initiated` … `call_ended`) and the
//! events the engine makes itself (`call_retransfer`, `sla_breached`, `long_wait`, `long_hold`,
//! `call_flagged`, `survey_requested`).
//!
//! Wire shape (JSON, snake_case), from the lifecycle brief:
//! `{"event_id"?, "type", "call_id", "timestamp"?, ...payload}`. Serializing an
//! [`IncomingEvent`] writes it; [`IncomingEvent::from_value`] (and `Deserialize`) validates it
//! and names the failing field (see [`crate::wire`] for the rules).

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::call::CallFlag;
use crate::ids::{AgentId, ExternalCallId, QueueId};
use crate::time::TimestampMs;

/// Most events accepted in one `POST /api/v1/events/batch`.
pub const MAX_BATCH: usize = 1000;
/// Longest client `event_id`, in characters.
pub const MAX_EVENT_ID_LEN: usize = 128;
/// Longest `from` / `to`, in characters.
pub const MAX_PARTY_LEN: usize = 256;
/// Largest caller priority (higher is served first).
pub const MAX_PRIORITY: u64 = 100;

/// Media of a call: `voice` or `video`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CallType {
    /// Audio only (the default when `call_type` is omitted).
    Voice,
    /// Audio and video.
    Video,
}

impl CallType {
    /// `voice` or `video`.
    pub fn as_str(self) -> &'static str {
        match self {
            CallType::Voice => "voice",
            CallType::Video => "video",
        }
    }
}

/// Why a call ended: `completed`, `abandoned` or `failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// Normal end (after talking, or a call handled without a queue).
    Completed,
    /// The caller hung up before being answered.
    Abandoned,
    /// Technical failure.
    Failed,
}

impl EndReason {
    /// `completed`, `abandoned` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Completed => "completed",
            EndReason::Abandoned => "abandoned",
            EndReason::Failed => "failed",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "completed" => Some(Self::Completed),
            "abandoned" => Some(Self::Abandoned),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// Where `call_transferred` sends the call: back into a queue (state `waiting`) or straight to an
/// agent (state `ringing`). On the wire it is the one field `queue_id` or `agent_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum TransferTarget {
    /// Into this queue.
    #[serde(rename = "queue_id")]
    Queue(QueueId),
    /// To this agent.
    #[serde(rename = "agent_id")]
    Agent(AgentId),
}

/// What happened. Client-sent variants carry the client's optional durations (seconds), which
/// are recorded as given; Switchboard computes wait/talk/hold itself from timestamps.
///
/// Serializes as `{"type": "<type_name>", ...payload}` with absent options omitted; that is the
/// wire payload (and what [`EventKind::payload`] returns without `type`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// The call arrived. With `queue_id` it is also queued.
    CallInitiated {
        /// `voice` (default) or `video`.
        call_type: CallType,
        /// Queue entered at once, if given.
        #[serde(skip_serializing_if = "Option::is_none")]
        queue_id: Option<QueueId>,
        /// Caller (E.164 recommended; SIP URIs and `anonymous` kept as given), at most 256 bytes.
        #[serde(skip_serializing_if = "Option::is_none")]
        from: Option<String>,
        /// Called number (the DID), as given, at most 256 bytes.
        #[serde(skip_serializing_if = "Option::is_none")]
        to: Option<String>,
        /// Caller priority 0–100, higher first; `None` means 0.
        #[serde(skip_serializing_if = "Option::is_none")]
        priority: Option<u32>,
    },
    /// The call entered a queue.
    CallQueued {
        /// The queue entered.
        queue_id: QueueId,
        /// New caller priority 0–100; `None` keeps the current one.
        #[serde(skip_serializing_if = "Option::is_none")]
        priority: Option<u32>,
    },
    /// The call is offered (ringing) to an agent.
    CallRouted {
        /// The agent the call is offered to.
        agent_id: AgentId,
        /// Client-measured routing time, seconds; recorded as given.
        #[serde(skip_serializing_if = "Option::is_none")]
        routing_time: Option<f64>,
        /// Engine-made `ring_all` offers: every agent rung at once (`agent_id` among them); the
        /// first to answer takes the call. Empty for a one-agent offer.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        ring_group: Vec<AgentId>,
        /// Engine-made offers: where telephony rings the offered agents (their `sip_uri`s, in
        /// `ring_group` order; agents without one are left out).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        targets: Vec<String>,
    },
    /// The agent answered.
    CallAnswered {
        /// Which agent answered a call that rang several (`ring_group`); `None`: the agent it
        /// was routed to.
        #[serde(skip_serializing_if = "Option::is_none")]
        agent_id: Option<AgentId>,
        /// Client-measured wait, seconds; recorded as given.
        #[serde(skip_serializing_if = "Option::is_none")]
        wait_time: Option<f64>,
    },
    /// The call was put on hold.
    CallHold {
        /// Client-measured hold duration, seconds; recorded as given.
        #[serde(skip_serializing_if = "Option::is_none")]
        hold_duration: Option<f64>,
    },
    /// The call came back from hold.
    CallResumed,
    /// The call was transferred to a queue or an agent.
    CallTransferred {
        /// Where the call goes.
        #[serde(flatten)]
        target: TransferTarget,
    },
    /// The call ended.
    CallEnded {
        /// Why the call ended.
        end_reason: EndReason,
        /// Client-measured call duration, seconds; recorded as given.
        #[serde(skip_serializing_if = "Option::is_none")]
        duration: Option<f64>,
    },
    /// Engine: the agent did not answer within `ring_timeout_s`; the call is back in its queue.
    CallRetransfer {
        /// The agent who did not answer.
        agent_id: AgentId,
        /// The agent's consecutive unanswered offers, this one included.
        missed: u32,
        /// Whether the agent is on break (`missed` reached the queue's `max_no_answer`).
        agent_on_break: bool,
    },
    /// Engine: the call was not answered within the queue's `sla_threshold_s`.
    SlaBreached {
        /// The queue the call is in.
        queue_id: QueueId,
        /// The `sla_threshold_s` in force when the call entered the queue, seconds.
        threshold_s: u32,
    },
    /// Engine: the call was answered after waiting longer than `sla_threshold_s`.
    LongWait {
        /// The queue the call was in when answered.
        #[serde(skip_serializing_if = "Option::is_none")]
        queue_id: Option<QueueId>,
        /// Seconds from first queue entry to answer.
        wait_s: f64,
        /// The queue's `sla_threshold_s` at answer time, seconds.
        threshold_s: u32,
    },
    /// Engine: the call has been on hold longer than `hold_max_s`.
    LongHold {
        /// Seconds on hold when the timer fired.
        hold_s: f64,
        /// The `hold_max_s` in force when the hold began, seconds.
        threshold_s: u32,
    },
    /// Engine: the call was flagged (e.g. `review` for talk time under `short_call_s`).
    CallFlagged {
        /// The flag set (`review`).
        flag: CallFlag,
        /// The call's talk time, seconds.
        talk_s: f64,
    },
    /// Engine: a completed call is due its post-call survey.
    SurveyRequested {
        /// The agent who last handled the call.
        #[serde(skip_serializing_if = "Option::is_none")]
        agent_id: Option<AgentId>,
    },
}

/// Every event type name, client-sent first.
pub const EVENT_TYPES: [&str; 14] = [
    "call_initiated",
    "call_queued",
    "call_routed",
    "call_answered",
    "call_hold",
    "call_resumed",
    "call_transferred",
    "call_ended",
    "call_retransfer",
    "sla_breached",
    "long_wait",
    "long_hold",
    "call_flagged",
    "survey_requested",
];

impl EventKind {
    /// The wire `type`.
    pub fn type_name(&self) -> &'static str {
        match self {
            EventKind::CallInitiated { .. } => "call_initiated",
            EventKind::CallQueued { .. } => "call_queued",
            EventKind::CallRouted { .. } => "call_routed",
            EventKind::CallAnswered { .. } => "call_answered",
            EventKind::CallHold { .. } => "call_hold",
            EventKind::CallResumed => "call_resumed",
            EventKind::CallTransferred { .. } => "call_transferred",
            EventKind::CallEnded { .. } => "call_ended",
            EventKind::CallRetransfer { .. } => "call_retransfer",
            EventKind::SlaBreached { .. } => "sla_breached",
            EventKind::LongWait { .. } => "long_wait",
            EventKind::LongHold { .. } => "long_hold",
            EventKind::CallFlagged { .. } => "call_flagged",
            EventKind::SurveyRequested { .. } => "survey_requested",
        }
    }

    /// True for a supervisor alert (`sla_breached`, `long_wait`, `long_hold`): stored in the
    /// alerts list and streamed on the `alerts` topic.
    pub fn is_alert(&self) -> bool {
        matches!(
            self,
            EventKind::SlaBreached { .. } | EventKind::LongWait { .. } | EventKind::LongHold { .. }
        )
    }

    /// Stream topic: `alerts` for alerts, `calls` otherwise.
    pub fn topic(&self) -> &'static str {
        topic_of(self.type_name())
    }

    /// The payload as JSON (the fields besides `type`, `call_id`, `event_id`, `timestamp`):
    /// the serialized event without its `type`, e.g. `{"call_type":"voice","queue_id":"q0"}`.
    pub fn payload(&self) -> Value {
        // Serializing these plain data types into a `Value` cannot fail.
        let mut v = serde_json::to_value(self).expect("an EventKind is plain JSON data");
        if let Value::Object(m) = &mut v {
            // `retain` keeps the order of the others (serde_json `preserve_order`).
            m.retain(|k, _| k != "type");
        }
        v
    }
}

/// Stream topic of an event type name: `alerts` for `sla_breached`, `long_wait`, `long_hold`;
/// `calls` for everything else.
/// The type of the engine's agent events: an agent's presence changed (`data`: `agent_id`,
/// `status`, `previous`, `reason`, `active_calls`). They share the tenant's stream sequence with
/// call events and are published on the `agents` topic.
pub const AGENT_STATUS_CHANGED: &str = "agent_status_changed";

pub fn topic_of(type_name: &str) -> &'static str {
    match type_name {
        "sla_breached" | "long_wait" | "long_hold" => "alerts",
        AGENT_STATUS_CHANGED => "agents",
        _ => "calls",
    }
}

/// A validated event as a client sent it.
///
/// Serializes to the wire JSON `{"event_id"?, "call_id", "timestamp"? (RFC 3339), "type",
/// ...payload}`, which [`IncomingEvent::from_value`] (and `Deserialize`) reads back.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IncomingEvent {
    /// Client idempotency key, unique within the call: a second delivery is a `duplicate`.
    /// 1–128 bytes, no U+0000.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// The client's id for the call.
    pub call_id: ExternalCallId,
    /// Event time; `None` means "now" (the server's wall clock).
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "crate::time::rfc3339_opt"
    )]
    pub timestamp: Option<TimestampMs>,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// Reads the wire JSON with [`IncomingEvent::from_value`]; the error message is
/// `"<field>: <message>"` (use `from_value` to get the field apart).
impl<'de> Deserialize<'de> for IncomingEvent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Self::from_value(v).map_err(serde::de::Error::custom)
    }
}

/// A field of an event that is missing or wrong. `field` is the JSON field name (`agent_id`),
/// or empty when the body itself is not a JSON object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct EventParseError {
    /// JSON field name (`agent_id`); empty when the body is not a JSON object.
    pub field: String,
    /// What is wrong with the field.
    pub message: String,
}

impl IncomingEvent {
    /// Validates one event object (the wire format of [`crate::wire`]).
    ///
    /// Errors: [`EventParseError`] naming the first failing field: a missing or non-string
    /// `type`/`call_id`, an unknown or engine-only `type`, a field the type does not have, a
    /// payload field of the wrong type or out of range, a string holding U+0000, a `timestamp`
    /// that is not RFC 3339 or outside years 1970–9999.
    pub fn from_value(v: Value) -> Result<Self, EventParseError> {
        crate::wire::parse(v)
    }

    /// [`IncomingEvent::from_value`] on a borrowed value (copies it).
    pub fn from_json(v: &Value) -> Result<Self, EventParseError> {
        Self::from_value(v.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<IncomingEvent, EventParseError> {
        IncomingEvent::from_value(v)
    }

    fn field(v: Value) -> String {
        parse(v).unwrap_err().field
    }

    /// One event of each client type, with every field it can carry.
    fn every_client_type() -> Vec<Value> {
        vec![
            json!({"event_id":"e0","type":"call_initiated","call_id":"c1","timestamp":"2026-01-31T09:00:00Z",
                   "call_type":"video","queue_id":"q0","from":"+15551230000","to":"+15559870000","priority":2}),
            json!({"type":"call_initiated","call_id":"c1"}),
            json!({"event_id":"e1","type":"call_queued","call_id":"c1","queue_id":"q0","priority":100}),
            json!({"type":"call_routed","call_id":"c1","agent_id":"sip:1001@pbx","routing_time":1.5,
                   "timestamp":"2026-01-31T09:00:00.250Z"}),
            json!({"type":"call_answered","call_id":"c1","wait_time":3.0}),
            json!({"type":"call_hold","call_id":"c1","hold_duration":0.0}),
            json!({"type":"call_resumed","call_id":"c1"}),
            json!({"type":"call_transferred","call_id":"c1","agent_id":"a2"}),
            json!({"type":"call_transferred","call_id":"c1","queue_id":"q1"}),
            json!({"type":"call_ended","call_id":"c1","end_reason":"completed","duration":30.0}),
            json!({"type":"call_ended","call_id":"c1","end_reason":"abandoned"}),
            json!({"type":"call_ended","call_id":"c1","end_reason":"failed"}),
        ]
    }

    #[test]
    fn every_client_type_round_trips() {
        let mut seen = std::collections::BTreeSet::new();
        for v in every_client_type() {
            let e = parse(v.clone()).unwrap_or_else(|e| panic!("{v}: {e}"));
            seen.insert(e.kind.type_name());
            let out = serde_json::to_value(&e).unwrap();
            // `call_initiated` always writes its `call_type`; otherwise the JSON is as sent.
            let mut expected = v.clone();
            if e.kind.type_name() == "call_initiated" && v.get("call_type").is_none() {
                expected["call_type"] = json!("voice");
            }
            assert_eq!(out, expected);
            assert_eq!(parse(out).unwrap(), e);
            // `Deserialize` reads the same.
            let back: IncomingEvent =
                serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
            assert_eq!(back, e);
        }
        assert_eq!(seen.len(), 8, "{seen:?}");
        assert!(seen.iter().all(|t| EVENT_TYPES[..8].contains(t)));
    }

    #[test]
    fn serialized_key_order_is_the_wire_order() {
        let e = parse(
            json!({"type":"call_queued","call_id":"c1","queue_id":"PS","priority":2,
                             "event_id":"c1#1","timestamp":"1999-08-01T00:10:10Z"}),
        )
        .unwrap();
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"event_id":"c1#1","call_id":"c1","timestamp":"1999-08-01T00:10:10Z","type":"call_queued","queue_id":"PS","priority":2}"#
        );
    }

    #[test]
    fn null_is_absent() {
        let e = parse(
            json!({"type":"call_initiated","call_id":"c1","queue_id":null,"event_id":null,
                             "timestamp":null,"call_type":null}),
        )
        .unwrap();
        assert_eq!(e.event_id, None);
        assert_eq!(e.timestamp, None);
        assert_eq!(
            e.kind,
            EventKind::CallInitiated {
                call_type: CallType::Voice,
                queue_id: None,
                from: None,
                to: None,
                priority: None
            }
        );
        assert_eq!(
            field(json!({"type":"call_queued","call_id":"c1","queue_id":null})),
            "queue_id"
        );
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(field(json!({"call_id":"c1"})), "type");
        assert_eq!(field(json!({"type":5,"call_id":"c1"})), "type");
        assert_eq!(field(json!({"type":"call_queued"})), "call_id");
        assert_eq!(
            field(json!({"type":"call_queued","call_id":"a b","queue_id":"q"})),
            "call_id"
        );
        assert_eq!(
            field(json!({"type":"call_queued","call_id":"c1"})),
            "queue_id"
        );
        assert_eq!(
            field(json!({"type":"call_queued","call_id":"c1","queue_id":"a/b"})),
            "queue_id"
        );
        assert_eq!(
            field(json!({"type":"call_routed","call_id":"c1","agent_id":5})),
            "agent_id"
        );
        assert_eq!(
            field(json!({"type":"call_answered","call_id":"c1","wait_time":-1})),
            "wait_time"
        );
        assert_eq!(
            field(json!({"type":"call_hold","call_id":"c1","hold_duration":"1"})),
            "hold_duration"
        );
        assert_eq!(
            field(json!({"type":"call_ended","call_id":"c1","end_reason":"bored"})),
            "end_reason"
        );
        assert_eq!(
            field(json!({"type":"call_ended","call_id":"c1"})),
            "end_reason"
        );
        assert_eq!(
            field(
                json!({"type":"call_ended","call_id":"c1","end_reason":"failed","timestamp":"noon"})
            ),
            "timestamp"
        );
        assert_eq!(
            field(json!({"type":"call_initiated","call_id":"c1","priority":101})),
            "priority"
        );
        assert_eq!(
            field(json!({"type":"call_initiated","call_id":"c1","priority":1.5})),
            "priority"
        );
        assert_eq!(
            field(json!({"type":"call_initiated","call_id":"c1","call_type":"fax"})),
            "call_type"
        );
        assert_eq!(
            field(json!({"type":"call_transferred","call_id":"c1"})),
            "queue_id"
        );
        assert_eq!(
            field(json!({"type":"call_transferred","call_id":"c1","queue_id":"q","agent_id":"a"})),
            "agent_id"
        );
        assert_eq!(
            field(json!({"type":"call_initiated","call_id":"c1","event_id":""})),
            "event_id"
        );
        assert_eq!(
            field(json!({"type":"call_initiated","call_id":"c1","event_id":"x".repeat(129)})),
            "event_id"
        );
        assert_eq!(
            field(json!({"type":"call_initiated","call_id":"c1","from":"x".repeat(257)})),
            "from"
        );
        assert_eq!(field(json!([1, 2])), "");
        assert_eq!(field(json!("call_initiated")), "");
    }

    #[test]
    fn unknown_fields_are_refused_naming_them() {
        let e =
            parse(json!({"type":"call_initiated","call_id":"c1","queue_idd":"q0"})).unwrap_err();
        assert_eq!(e.field, "queue_idd");
        assert!(e.message.contains("unknown field"), "{}", e.message);
        // A field of another type is unknown too.
        assert_eq!(
            field(json!({"type":"call_answered","call_id":"c1","queue_id":"q0"})),
            "queue_id"
        );
        assert_eq!(
            field(json!({"type":"call_resumed","call_id":"c1","end_reason":"failed"})),
            "end_reason"
        );
        // Also when the unknown field comes before `type`.
        let v: Value =
            serde_json::from_str(r#"{"aaa":1,"type":"call_resumed","call_id":"c1"}"#).unwrap();
        assert_eq!(field(v), "aaa");
        // `Deserialize` names it in the message.
        let e = serde_json::from_str::<IncomingEvent>(
            r#"{"type":"call_resumed","call_id":"c1","x":1}"#,
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("x: unknown field"), "{e}");
    }

    #[test]
    fn unknown_and_engine_types_are_refused() {
        let e = parse(json!({"type":"call_exploded","call_id":"c1"})).unwrap_err();
        assert_eq!(e.field, "type");
        assert!(e.message.contains("unknown event type"));
        for t in &EVENT_TYPES[8..] {
            let e = parse(json!({"type":t,"call_id":"c1"})).unwrap_err();
            assert_eq!(e.field, "type");
            assert!(
                e.message.contains("made by the engine"),
                "{t}: {}",
                e.message
            );
        }
    }

    #[test]
    fn nul_is_refused_in_every_stored_string() {
        for (k, base) in [
            ("from", json!({"type":"call_initiated","call_id":"c1"})),
            ("to", json!({"type":"call_initiated","call_id":"c1"})),
            ("event_id", json!({"type":"call_resumed","call_id":"c1"})),
            ("call_id", json!({"type":"call_resumed"})),
            ("queue_id", json!({"type":"call_queued","call_id":"c1"})),
            ("agent_id", json!({"type":"call_routed","call_id":"c1"})),
        ] {
            let mut v = base.clone();
            v[k] = json!("a\u{0}b");
            let e = parse(v).unwrap_err();
            assert_eq!(e.field, k, "{e}");
            let mut ok = base;
            ok[k] = json!("ab");
            parse(ok).unwrap();
        }
    }

    #[test]
    fn timestamps_outside_1970_to_9999_are_refused() {
        let at = |ts: &str| parse(json!({"type":"call_resumed","call_id":"c1","timestamp":ts}));
        for bad in [
            "0000-01-01T00:00:00Z",
            "1969-12-31T23:59:59Z",
            "10000-01-01T00:00:00Z",
            "+10000-01-01T00:00:00Z",
            "9999-12-31T23:30:00-01:00",
        ] {
            let e = at(bad).unwrap_err();
            assert_eq!(e.field, "timestamp", "{bad}");
        }
        assert_eq!(at("1970-01-01T00:00:00Z").unwrap().timestamp, Some(0));
        assert!(at("9999-12-31T23:59:59Z").is_ok());
        assert_eq!(
            field(json!({"type":"call_resumed","call_id":"c1","timestamp":5})),
            "timestamp"
        );
    }

    /// The payload each variant had before it came from serde (the hand-written `payload()`).
    #[test]
    fn payload_is_unchanged() {
        let q = || QueueId::parse("q0").unwrap();
        let a = || AgentId::parse("a1").unwrap();
        let cases = [
            (
                EventKind::CallInitiated {
                    call_type: CallType::Voice,
                    queue_id: Some(q()),
                    from: None,
                    to: Some("+1555".into()),
                    priority: Some(2),
                },
                json!({"call_type":"voice","queue_id":"q0","to":"+1555","priority":2}),
            ),
            (
                EventKind::CallQueued {
                    queue_id: q(),
                    priority: None,
                },
                json!({"queue_id":"q0"}),
            ),
            (
                EventKind::CallRouted {
                    agent_id: a(),
                    routing_time: Some(1.5),
                    ring_group: Vec::new(),
                    targets: Vec::new(),
                },
                json!({"agent_id":"a1","routing_time":1.5}),
            ),
            (
                EventKind::CallAnswered {
                    agent_id: None,
                    wait_time: None,
                },
                json!({}),
            ),
            (
                EventKind::CallHold {
                    hold_duration: Some(2.0),
                },
                json!({"hold_duration":2.0}),
            ),
            (EventKind::CallResumed, json!({})),
            (
                EventKind::CallTransferred {
                    target: TransferTarget::Queue(q()),
                },
                json!({"queue_id":"q0"}),
            ),
            (
                EventKind::CallTransferred {
                    target: TransferTarget::Agent(a()),
                },
                json!({"agent_id":"a1"}),
            ),
            (
                EventKind::CallEnded {
                    end_reason: EndReason::Failed,
                    duration: Some(3.0),
                },
                json!({"end_reason":"failed","duration":3.0}),
            ),
            (
                EventKind::CallRetransfer {
                    agent_id: a(),
                    missed: 3,
                    agent_on_break: true,
                },
                json!({"agent_id":"a1","missed":3,"agent_on_break":true}),
            ),
            (
                EventKind::SlaBreached {
                    queue_id: q(),
                    threshold_s: 30,
                },
                json!({"queue_id":"q0","threshold_s":30}),
            ),
            (
                EventKind::LongWait {
                    queue_id: None,
                    wait_s: 31.5,
                    threshold_s: 30,
                },
                json!({"wait_s":31.5,"threshold_s":30}),
            ),
            (
                EventKind::LongHold {
                    hold_s: 61.0,
                    threshold_s: 60,
                },
                json!({"hold_s":61.0,"threshold_s":60}),
            ),
            (
                EventKind::CallFlagged {
                    flag: CallFlag::Review,
                    talk_s: 4.0,
                },
                json!({"flag":"review","talk_s":4.0}),
            ),
            (
                EventKind::SurveyRequested {
                    agent_id: Some(a()),
                },
                json!({"agent_id":"a1"}),
            ),
            (EventKind::SurveyRequested { agent_id: None }, json!({})),
        ];
        for (k, expected) in cases {
            assert_eq!(k.payload(), expected, "{}", k.type_name());
            let mut full = serde_json::to_value(&k).unwrap();
            assert_eq!(full["type"], json!(k.type_name()));
            full.as_object_mut().unwrap().remove("type");
            assert_eq!(full, expected);
        }
    }

    #[test]
    fn wire_names_match_as_str() {
        for t in [CallType::Voice, CallType::Video] {
            assert_eq!(serde_json::to_value(t).unwrap(), json!(t.as_str()));
        }
        for r in [
            EndReason::Completed,
            EndReason::Abandoned,
            EndReason::Failed,
        ] {
            assert_eq!(serde_json::to_value(r).unwrap(), json!(r.as_str()));
            assert_eq!(EndReason::parse(r.as_str()), Some(r));
        }
        for f in CallFlag::ALL {
            assert_eq!(serde_json::to_value(f).unwrap(), json!(f.as_str()));
        }
        for s in crate::CallStatus::ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), json!(s.as_str()));
            assert_eq!(
                serde_json::from_value::<crate::CallStatus>(json!(s.as_str())).unwrap(),
                s
            );
        }
    }

    #[test]
    fn alerts_go_to_the_alert_topic() {
        let k = EventKind::LongHold {
            hold_s: 61.0,
            threshold_s: 60,
        };
        assert!(k.is_alert());
        assert_eq!(k.topic(), "alerts");
        assert_eq!(EventKind::CallResumed.topic(), "calls");
        for t in EVENT_TYPES {
            let alert = matches!(t, "sla_breached" | "long_wait" | "long_hold");
            assert_eq!(topic_of(t), if alert { "alerts" } else { "calls" });
        }
    }
}
