//! Call events: the lifecycle events telephony sends (`call_initiated` … `call_ended`) and the
//! events the engine makes itself (`call_retransfer`, `sla_breached`, `long_wait`, `long_hold`,
//! `call_flagged`, `survey_requested`).
//!
//! Wire shape (JSON, snake_case), from the lifecycle brief:
//! `{"event_id"?, "type", "call_id", "timestamp"?, ...payload}`. [`IncomingEvent::from_json`]
//! validates it and names the failing field.

use serde_json::{json, Map, Value};

use crate::call::CallFlag;
use crate::ids::{AgentId, ExternalCallId, IdError, QueueId};
use crate::time::{parse_rfc3339, TimestampMs};

/// Most events accepted in one `POST /api/v1/events/batch`.
pub const MAX_BATCH: usize = 1000;
/// Longest client `event_id`, in bytes.
pub const MAX_EVENT_ID_LEN: usize = 128;
/// Longest `from` / `to`, in bytes.
pub const MAX_PARTY_LEN: usize = 256;
/// Largest caller priority (higher is served first).
pub const MAX_PRIORITY: u64 = 100;

/// Media of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// Why a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
/// agent (state `ringing`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferTarget {
    /// Into this queue.
    Queue(QueueId),
    /// To this agent.
    Agent(AgentId),
}

/// What happened. Client-sent variants carry the client's optional durations (seconds), which
/// are recorded as given; Switchboard computes wait/talk/hold itself from timestamps.
#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    /// The call arrived. With `queue_id` it is also queued.
    CallInitiated {
        /// `voice` (default) or `video`.
        call_type: CallType,
        /// Queue entered at once, if given.
        queue_id: Option<QueueId>,
        /// Caller (E.164 recommended; SIP URIs and `anonymous` kept as given), at most 256 bytes.
        from: Option<String>,
        /// Called number (the DID), as given, at most 256 bytes.
        to: Option<String>,
        /// Caller priority 0–100, higher first; `None` means 0.
        priority: Option<u32>,
    },
    /// The call entered a queue.
    CallQueued {
        /// The queue entered.
        queue_id: QueueId,
        /// New caller priority 0–100; `None` keeps the current one.
        priority: Option<u32>,
    },
    /// The call is offered (ringing) to an agent.
    CallRouted {
        /// The agent the call is offered to.
        agent_id: AgentId,
        /// Client-measured routing time, seconds; recorded as given.
        routing_time: Option<f64>,
    },
    /// The agent answered.
    CallAnswered {
        /// Client-measured wait, seconds; recorded as given.
        wait_time: Option<f64>,
    },
    /// The call was put on hold.
    CallHold {
        /// Client-measured hold duration, seconds; recorded as given.
        hold_duration: Option<f64>,
    },
    /// The call came back from hold.
    CallResumed,
    /// The call was transferred to a queue or an agent.
    CallTransferred {
        /// Where the call goes.
        target: TransferTarget,
    },
    /// The call ended.
    CallEnded {
        /// Why the call ended.
        end_reason: EndReason,
        /// Client-measured call duration, seconds; recorded as given.
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

    /// The payload as JSON (the fields besides `type`, `call_id`, `event_id`, `timestamp`).
    pub fn payload(&self) -> Value {
        fn opt<T: serde::Serialize>(m: &mut Map<String, Value>, k: &str, v: &Option<T>) {
            if let Some(v) = v {
                m.insert(k.to_owned(), json!(v));
            }
        }
        let mut m = Map::new();
        match self {
            EventKind::CallInitiated {
                call_type,
                queue_id,
                from,
                to,
                priority,
            } => {
                m.insert("call_type".into(), json!(call_type.as_str()));
                opt(&mut m, "queue_id", queue_id);
                opt(&mut m, "from", from);
                opt(&mut m, "to", to);
                opt(&mut m, "priority", priority);
            }
            EventKind::CallQueued { queue_id, priority } => {
                m.insert("queue_id".into(), json!(queue_id));
                opt(&mut m, "priority", priority);
            }
            EventKind::CallRouted {
                agent_id,
                routing_time,
            } => {
                m.insert("agent_id".into(), json!(agent_id));
                opt(&mut m, "routing_time", routing_time);
            }
            EventKind::CallAnswered { wait_time } => opt(&mut m, "wait_time", wait_time),
            EventKind::CallHold { hold_duration } => opt(&mut m, "hold_duration", hold_duration),
            EventKind::CallResumed => {}
            EventKind::CallTransferred { target } => match target {
                TransferTarget::Queue(q) => {
                    m.insert("queue_id".into(), json!(q));
                }
                TransferTarget::Agent(a) => {
                    m.insert("agent_id".into(), json!(a));
                }
            },
            EventKind::CallEnded {
                end_reason,
                duration,
            } => {
                m.insert("end_reason".into(), json!(end_reason.as_str()));
                opt(&mut m, "duration", duration);
            }
            EventKind::CallRetransfer {
                agent_id,
                missed,
                agent_on_break,
            } => {
                m.insert("agent_id".into(), json!(agent_id));
                m.insert("missed".into(), json!(missed));
                m.insert("agent_on_break".into(), json!(agent_on_break));
            }
            EventKind::SlaBreached {
                queue_id,
                threshold_s,
            } => {
                m.insert("queue_id".into(), json!(queue_id));
                m.insert("threshold_s".into(), json!(threshold_s));
            }
            EventKind::LongWait {
                queue_id,
                wait_s,
                threshold_s,
            } => {
                opt(&mut m, "queue_id", queue_id);
                m.insert("wait_s".into(), json!(wait_s));
                m.insert("threshold_s".into(), json!(threshold_s));
            }
            EventKind::LongHold {
                hold_s,
                threshold_s,
            } => {
                m.insert("hold_s".into(), json!(hold_s));
                m.insert("threshold_s".into(), json!(threshold_s));
            }
            EventKind::CallFlagged { flag, talk_s } => {
                m.insert("flag".into(), json!(flag.as_str()));
                m.insert("talk_s".into(), json!(talk_s));
            }
            EventKind::SurveyRequested { agent_id } => opt(&mut m, "agent_id", agent_id),
        }
        Value::Object(m)
    }
}

/// Stream topic of an event type name: `alerts` for `sla_breached`, `long_wait`, `long_hold`;
/// `calls` for everything else.
pub fn topic_of(type_name: &str) -> &'static str {
    match type_name {
        "sla_breached" | "long_wait" | "long_hold" => "alerts",
        _ => "calls",
    }
}

/// A validated event as a client sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct IncomingEvent {
    /// Client idempotency key, unique within the call: a second delivery is a `duplicate`.
    pub event_id: Option<String>,
    /// The client's id for the call.
    pub call_id: ExternalCallId,
    /// Event time; `None` means "now" (the server's wall clock).
    pub timestamp: Option<TimestampMs>,
    /// What happened.
    pub kind: EventKind,
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

fn err(field: &str, message: impl Into<String>) -> EventParseError {
    EventParseError {
        field: field.to_owned(),
        message: message.into(),
    }
}

fn id_err(field: &str, e: IdError) -> EventParseError {
    err(field, e.to_string())
}

struct Fields<'a>(&'a Map<String, Value>);

impl<'a> Fields<'a> {
    fn get(&self, k: &str) -> Option<&'a Value> {
        self.0.get(k).filter(|v| !v.is_null())
    }

    fn str_req(&self, k: &str) -> Result<&'a str, EventParseError> {
        match self.get(k) {
            None => Err(err(k, "is required")),
            Some(v) => v.as_str().ok_or_else(|| err(k, "must be a string")),
        }
    }

    fn str_opt(&self, k: &str, max: usize) -> Result<Option<String>, EventParseError> {
        match self.get(k) {
            None => Ok(None),
            Some(Value::String(s)) if s.len() <= max => Ok(Some(s.clone())),
            Some(Value::String(_)) => Err(err(k, format!("must be at most {max} characters"))),
            Some(_) => Err(err(k, "must be a string")),
        }
    }

    fn seconds_opt(&self, k: &str) -> Result<Option<f64>, EventParseError> {
        match self.get(k) {
            None => Ok(None),
            Some(v) => match v.as_f64() {
                Some(x) if x.is_finite() && x >= 0.0 => Ok(Some(x)),
                _ => Err(err(k, "must be a non-negative number of seconds")),
            },
        }
    }

    fn priority_opt(&self) -> Result<Option<u32>, EventParseError> {
        match self.get("priority") {
            None => Ok(None),
            Some(v) => match v.as_u64() {
                Some(p) if p <= MAX_PRIORITY => Ok(Some(p as u32)),
                _ => Err(err(
                    "priority",
                    format!("must be an integer from 0 to {MAX_PRIORITY}"),
                )),
            },
        }
    }

    fn queue_req(&self) -> Result<QueueId, EventParseError> {
        QueueId::parse(self.str_req("queue_id")?).map_err(|e| id_err("queue_id", e))
    }

    fn queue_opt(&self) -> Result<Option<QueueId>, EventParseError> {
        match self.get("queue_id") {
            None => Ok(None),
            Some(_) => self.queue_req().map(Some),
        }
    }

    fn agent_req(&self) -> Result<AgentId, EventParseError> {
        AgentId::parse(self.str_req("agent_id")?).map_err(|e| id_err("agent_id", e))
    }
}

impl IncomingEvent {
    /// Validates one event object.
    ///
    /// Errors: [`EventParseError`] naming the first failing field: a missing or non-string
    /// `type`/`call_id`, an unknown or engine-only `type`, a payload field of the wrong type or
    /// out of range, a `timestamp` that is not RFC 3339. Unknown extra fields are ignored.
    pub fn from_json(v: &Value) -> Result<Self, EventParseError> {
        let obj = v
            .as_object()
            .ok_or_else(|| err("", "an event must be a JSON object"))?;
        let f = Fields(obj);
        let ty = f.str_req("type")?;
        let call_id =
            ExternalCallId::parse(f.str_req("call_id")?).map_err(|e| id_err("call_id", e))?;
        let event_id = match f.get("event_id") {
            None => None,
            Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_EVENT_ID_LEN => {
                Some(s.clone())
            }
            Some(Value::String(_)) => {
                return Err(err(
                    "event_id",
                    format!("must be 1 to {MAX_EVENT_ID_LEN} characters"),
                ))
            }
            Some(_) => return Err(err("event_id", "must be a string")),
        };
        let timestamp = match f.get("timestamp") {
            None => None,
            Some(Value::String(s)) => Some(parse_rfc3339(s).ok_or_else(|| {
                err(
                    "timestamp",
                    "must be an RFC 3339 timestamp such as 2026-01-31T09:00:00Z",
                )
            })?),
            Some(_) => return Err(err("timestamp", "must be an RFC 3339 string")),
        };
        let kind = match ty {
            "call_initiated" => EventKind::CallInitiated {
                call_type: match f.get("call_type") {
                    None => CallType::Voice,
                    Some(Value::String(s)) if s == "voice" => CallType::Voice,
                    Some(Value::String(s)) if s == "video" => CallType::Video,
                    Some(_) => return Err(err("call_type", "must be `voice` or `video`")),
                },
                queue_id: f.queue_opt()?,
                from: f.str_opt("from", MAX_PARTY_LEN)?,
                to: f.str_opt("to", MAX_PARTY_LEN)?,
                priority: f.priority_opt()?,
            },
            "call_queued" => EventKind::CallQueued {
                queue_id: f.queue_req()?,
                priority: f.priority_opt()?,
            },
            "call_routed" => EventKind::CallRouted {
                agent_id: f.agent_req()?,
                routing_time: f.seconds_opt("routing_time")?,
            },
            "call_answered" => EventKind::CallAnswered {
                wait_time: f.seconds_opt("wait_time")?,
            },
            "call_hold" => EventKind::CallHold {
                hold_duration: f.seconds_opt("hold_duration")?,
            },
            "call_resumed" => EventKind::CallResumed,
            "call_transferred" => {
                let target = match (f.get("queue_id"), f.get("agent_id")) {
                    (Some(_), None) => TransferTarget::Queue(f.queue_req()?),
                    (None, Some(_)) => TransferTarget::Agent(f.agent_req()?),
                    (Some(_), Some(_)) => {
                        return Err(err(
                            "agent_id",
                            "give either queue_id or agent_id, not both",
                        ))
                    }
                    (None, None) => return Err(err("queue_id", "is required (or agent_id)")),
                };
                EventKind::CallTransferred { target }
            }
            "call_ended" => EventKind::CallEnded {
                end_reason: match f.get("end_reason") {
                    None => return Err(err("end_reason", "is required")),
                    Some(v) => v.as_str().and_then(EndReason::parse).ok_or_else(|| {
                        err("end_reason", "must be `completed`, `abandoned` or `failed`")
                    })?,
                },
                duration: f.seconds_opt("duration")?,
            },
            other if EVENT_TYPES.contains(&other) => {
                return Err(err(
                    "type",
                    format!("`{other}` is made by the engine and cannot be sent"),
                ))
            }
            other => {
                return Err(err(
                    "type",
                    format!(
                        "unknown event type `{}`; expected one of {}",
                        other.chars().take(64).collect::<String>(),
                        EVENT_TYPES[..8].join(", ")
                    ),
                ))
            }
        };
        Ok(IncomingEvent {
            event_id,
            call_id,
            timestamp,
            kind,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> Result<IncomingEvent, EventParseError> {
        IncomingEvent::from_json(&v)
    }

    #[test]
    fn parses_every_client_type() {
        let cases = [
            json!({"type":"call_initiated","call_id":"c1","call_type":"video","queue_id":"q0","from":"+15551230000","priority":2}),
            json!({"type":"call_queued","call_id":"c1","queue_id":"q0"}),
            json!({"type":"call_routed","call_id":"c1","agent_id":"a1","routing_time":1.5}),
            json!({"type":"call_answered","call_id":"c1","wait_time":3}),
            json!({"type":"call_hold","call_id":"c1"}),
            json!({"type":"call_resumed","call_id":"c1"}),
            json!({"type":"call_transferred","call_id":"c1","agent_id":"a2"}),
            json!({"type":"call_ended","call_id":"c1","end_reason":"completed","duration":30}),
        ];
        for (i, c) in cases.iter().enumerate() {
            let e = parse(c.clone()).unwrap();
            assert_eq!(e.kind.type_name(), EVENT_TYPES[i]);
        }
    }

    #[test]
    fn payload_round_trips_client_fields() {
        let e = parse(json!({"type":"call_initiated","call_id":"c1","queue_id":"q0","priority":2}))
            .unwrap();
        assert_eq!(
            e.kind.payload(),
            json!({"call_type":"voice","queue_id":"q0","priority":2})
        );
    }

    #[test]
    fn errors_name_the_field() {
        let f = |v: Value| parse(v).unwrap_err().field;
        assert_eq!(f(json!({"call_id":"c1"})), "type");
        assert_eq!(f(json!({"type":"call_queued"})), "call_id");
        assert_eq!(f(json!({"type":"call_queued","call_id":"c1"})), "queue_id");
        assert_eq!(
            f(json!({"type":"call_routed","call_id":"c1","agent_id":5})),
            "agent_id"
        );
        assert_eq!(
            f(json!({"type":"call_answered","call_id":"c1","wait_time":-1})),
            "wait_time"
        );
        assert_eq!(
            f(json!({"type":"call_ended","call_id":"c1","end_reason":"bored"})),
            "end_reason"
        );
        assert_eq!(
            f(json!({"type":"call_ended","call_id":"c1","end_reason":"failed","timestamp":"noon"})),
            "timestamp"
        );
        assert_eq!(
            f(json!({"type":"call_initiated","call_id":"c1","priority":101})),
            "priority"
        );
        assert_eq!(
            f(json!({"type":"call_transferred","call_id":"c1"})),
            "queue_id"
        );
        assert_eq!(
            f(json!({"type":"call_initiated","call_id":"c1","event_id":""})),
            "event_id"
        );
        assert_eq!(f(json!([1, 2])), "");
    }

    #[test]
    fn unknown_and_engine_types_are_refused() {
        let e = parse(json!({"type":"call_exploded","call_id":"c1"})).unwrap_err();
        assert_eq!(e.field, "type");
        assert!(e.message.contains("unknown event type"));
        let e = parse(json!({"type":"sla_breached","call_id":"c1"})).unwrap_err();
        assert!(e.message.contains("made by the engine"));
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
