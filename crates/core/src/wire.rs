//! The JSON form of a client event, read by [`IncomingEvent::from_value`] and described to
//! OpenAPI (the `openapi` feature): one struct per client `type`, each with the common fields
//! (`type`, `event_id`, `call_id`, `timestamp`) and its own payload fields, and nothing else.
//!
//! Rules, from the lifecycle brief and what the stores can hold:
//! * `type` is one of the eight client types; the engine's own types (`call_retransfer`,
//!   `sla_breached`, …) are refused ("made by the engine").
//! * A field the type does not have is refused, naming it (a typo such as `queue_idd` must not
//!   silently make a call without a queue). `null` counts as absent.
//! * `event_id` is 1–128 bytes, `from`/`to` at most 256 bytes; none may hold U+0000, which
//!   PostgreSQL cannot store in `text`.
//! * `timestamp` is RFC 3339 (any offset) within years 1970–9999 in UTC.
//! * `priority` is an integer 0–100; durations are non-negative numbers of seconds.
//! * `call_transferred` takes exactly one of `queue_id` and `agent_id`.
//!
//! Serde's `deny_unknown_fields` does not work through `flatten` or internally tagged enums
//! (and those lose the field path of an error), so the type is read first and the object is
//! then decoded into that type's struct, whose fields are all known.

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::event::{
    CallType, EndReason, EventKind, EventParseError, IncomingEvent, TransferTarget, EVENT_TYPES,
    MAX_EVENT_ID_LEN, MAX_PARTY_LEN, MAX_PRIORITY,
};
use crate::ids::{AgentId, ExternalCallId, QueueId};
use crate::time::TimestampMs;

/// Event types a client may send, in [`EVENT_TYPES`] order.
pub const CLIENT_EVENT_TYPES: [&str; 8] = [
    "call_initiated",
    "call_queued",
    "call_routed",
    "call_answered",
    "call_hold",
    "call_resumed",
    "call_transferred",
    "call_ended",
];

const NUL_MESSAGE: &str = "must not contain U+0000 (NUL)";

fn err(field: &str, message: impl Into<String>) -> EventParseError {
    EventParseError {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// Client `event_id`: 1–[`MAX_EVENT_ID_LEN`] characters, no U+0000.
struct EventIdText(String);

impl<'de> Deserialize<'de> for EventIdText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.is_empty() || s.chars().count() > MAX_EVENT_ID_LEN {
            Err(serde::de::Error::custom(format!(
                "must be 1 to {MAX_EVENT_ID_LEN} characters"
            )))
        } else if s.contains('\0') {
            Err(serde::de::Error::custom(NUL_MESSAGE))
        } else {
            Ok(Self(s))
        }
    }
}

/// `from` / `to`: at most [`MAX_PARTY_LEN`] characters, no U+0000.
struct Party(String);

impl<'de> Deserialize<'de> for Party {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.chars().count() > MAX_PARTY_LEN {
            Err(serde::de::Error::custom(format!(
                "must be at most {MAX_PARTY_LEN} characters"
            )))
        } else if s.contains('\0') {
            Err(serde::de::Error::custom(NUL_MESSAGE))
        } else {
            Ok(Self(s))
        }
    }
}

/// Caller priority 0–[`MAX_PRIORITY`].
struct Priority(u32);

impl<'de> Deserialize<'de> for Priority {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let msg = || format!("must be an integer from 0 to {MAX_PRIORITY}");
        match Value::deserialize(d)?.as_u64() {
            Some(p) if p <= MAX_PRIORITY => Ok(Self(p as u32)),
            _ => Err(serde::de::Error::custom(msg())),
        }
    }
}

/// A client-measured duration: a finite, non-negative number of seconds.
struct Seconds(f64);

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)?.as_f64() {
            Some(x) if x.is_finite() && x >= 0.0 => Ok(Self(x)),
            _ => Err(serde::de::Error::custom(
                "must be a non-negative number of seconds",
            )),
        }
    }
}

/// One client type's wire struct.
trait Wire: DeserializeOwned {
    /// The `type` it is read for.
    #[allow(dead_code)] // Read by the OpenAPI description only.
    const TYPE: &'static str;
    /// Every field the type has, `type` and the common fields included.
    const FIELDS: &'static [&'static str];
    /// Fields that must be present and not `null`.
    const REQUIRED: &'static [&'static str];
    /// The validated event.
    fn into_event(self) -> Result<IncomingEvent, EventParseError>;
}

macro_rules! if_req {
    (req $name:expr) => {
        Some($name)
    };
    (opt $name:expr) => {
        None
    };
}

/// Defines the wire struct of one client type: the common fields, then the payload fields
/// (`req` must be present, `opt` — an `Option` — may be absent or `null`), and how it becomes
/// an [`EventKind`].
macro_rules! client_event {
    (
        $(#[$doc:meta])*
        $name:ident, $tag:ident = $wire:literal {
            $( $(#[$fattr:meta])* $kind:ident $field:ident : $fty:ty ),* $(,)?
        } => $body:block
    ) => {
        $(#[$doc])*
        #[derive(Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)] // `r#type` is read only to be checked.
        struct $name {
            #[doc = concat!("`", $wire, "`.")]
            #[serde(rename = "type")]
            #[cfg_attr(feature = "openapi", schema(inline))]
            r#type: $tag,
            /// Idempotency key, 1–128 characters, no U+0000, unique within the call: a second
            /// delivery changes nothing and answers 200 with `duplicate`.
            #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, min_length = 1, max_length = 128))]
            event_id: Option<EventIdText>,
            /// The client's id for the call (CallSid, PBX uniqueid): 1–128 of letters, digits
            /// and `. _ - : / # @ +`.
            #[cfg_attr(feature = "openapi", schema(value_type = String, min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9._:/#@+-]+$", example = "CA42"))]
            call_id: ExternalCallId,
            /// Event time, RFC 3339 (any offset) within years 1970–9999; default now (the
            /// server's clock).
            #[serde(default, with = "crate::time::rfc3339_opt")]
            #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime, example = "2026-01-31T09:00:00Z"))]
            timestamp: Option<TimestampMs>,
            $( $(#[$fattr])* $field: $fty, )*
        }

        #[doc = concat!("The `type` of [`", stringify!($name), "`].")]
        #[derive(Deserialize)]
        enum $tag {
            #[serde(rename = $wire)]
            Tag,
        }

        // By hand: utoipa's derive does not see a `rename` that a macro passes in.
        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $tag {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some([$wire]))
                    .into()
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $tag {}

        impl Wire for $name {
            const TYPE: &'static str = $wire;
            const FIELDS: &'static [&'static str] =
                &["type", "event_id", "call_id", "timestamp", $(stringify!($field)),*];
            const REQUIRED: &'static [&'static str] = {
                const ALL: &[Option<&str>] = &[Some("call_id"), $(if_req!($kind stringify!($field))),*];
                const N: usize = {
                    let mut n = 0;
                    let mut i = 0;
                    while i < ALL.len() {
                        if ALL[i].is_some() {
                            n += 1;
                        }
                        i += 1;
                    }
                    n
                };
                const OUT: [&str; N] = {
                    let mut out = [""; N];
                    let (mut i, mut j) = (0, 0);
                    while i < ALL.len() {
                        if let Some(f) = ALL[i] {
                            out[j] = f;
                            j += 1;
                        }
                        i += 1;
                    }
                    out
                };
                &OUT
            };

            fn into_event(self) -> Result<IncomingEvent, EventParseError> {
                let $name { r#type: _, event_id, call_id, timestamp, $($field),* } = self;
                let kind: Result<EventKind, EventParseError> = $body;
                Ok(IncomingEvent {
                    event_id: event_id.map(|e| e.0),
                    call_id,
                    timestamp,
                    kind: kind?,
                })
            }
        }
    };
}

client_event! {
    /// `call_initiated`: the call arrived; with `queue_id` it is also queued.
    CallInitiatedEvent, CallInitiatedTag = "call_initiated" {
        /// `voice` (default) or `video`.
        opt call_type: Option<CallType>,
        /// Queue entered at once (1–64 of `A-Z a-z 0-9 . _ -`).
        #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9._-]+$"))]
        opt queue_id: Option<QueueId>,
        /// Caller, E.164 recommended (SIP URIs and `anonymous` kept as given); at most 256
        /// characters, no U+0000.
        #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, max_length = 256))]
        opt from: Option<Party>,
        /// Called number (the DID), as given; at most 256 characters, no U+0000.
        #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, max_length = 256))]
        opt to: Option<Party>,
        /// Caller priority 0–100, higher first (default 0).
        #[cfg_attr(feature = "openapi", schema(value_type = Option<u32>, minimum = 0, maximum = 100))]
        opt priority: Option<Priority>,
    } => {
        Ok(EventKind::CallInitiated {
            call_type: call_type.unwrap_or(CallType::Voice),
            queue_id,
            from: from.map(|p| p.0),
            to: to.map(|p| p.0),
            priority: priority.map(|p| p.0),
        })
    }
}

client_event! {
    /// `call_queued`: the call entered a queue.
    CallQueuedEvent, CallQueuedTag = "call_queued" {
        /// The queue entered (1–64 of `A-Z a-z 0-9 . _ -`).
        #[cfg_attr(feature = "openapi", schema(value_type = String, min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9._-]+$"))]
        req queue_id: QueueId,
        /// New caller priority 0–100, higher first; absent keeps the current one.
        #[cfg_attr(feature = "openapi", schema(value_type = Option<u32>, minimum = 0, maximum = 100))]
        opt priority: Option<Priority>,
    } => {
        Ok(EventKind::CallQueued { queue_id, priority: priority.map(|p| p.0) })
    }
}

client_event! {
    /// `call_routed`: the call is offered (ringing) to an agent.
    CallRoutedEvent, CallRoutedTag = "call_routed" {
        /// The agent (1–128 of letters, digits and `. _ - : / # @ +`).
        #[cfg_attr(feature = "openapi", schema(value_type = String, min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9._:/#@+-]+$"))]
        req agent_id: AgentId,
        /// Client-measured routing time, seconds; recorded as given.
        #[cfg_attr(feature = "openapi", schema(value_type = Option<f64>, minimum = 0))]
        opt routing_time: Option<Seconds>,
    } => {
        Ok(EventKind::CallRouted { agent_id, routing_time: routing_time.map(|s| s.0), ring_group: Vec::new(), targets: Vec::new() })
    }
}

client_event! {
    /// `call_answered`: the agent answered.
    CallAnsweredEvent, CallAnsweredTag = "call_answered" {
        /// The agent who answered, when the call rang several at once (`ring_all`); absent: the
        /// agent it was routed to (1–128 of letters, digits and `. _ - : / # @ +`).
        #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9._:/#@+-]+$"))]
        opt agent_id: Option<AgentId>,
        /// Client-measured wait, seconds; recorded as given.
        #[cfg_attr(feature = "openapi", schema(value_type = Option<f64>, minimum = 0))]
        opt wait_time: Option<Seconds>,
    } => {
        Ok(EventKind::CallAnswered { agent_id, wait_time: wait_time.map(|s| s.0) })
    }
}

client_event! {
    /// `call_hold`: the call was put on hold.
    CallHoldEvent, CallHoldTag = "call_hold" {
        /// Client-measured hold duration, seconds; recorded as given.
        #[cfg_attr(feature = "openapi", schema(value_type = Option<f64>, minimum = 0))]
        opt hold_duration: Option<Seconds>,
    } => {
        Ok(EventKind::CallHold { hold_duration: hold_duration.map(|s| s.0) })
    }
}

client_event! {
    /// `call_resumed`: the call came back from hold.
    CallResumedEvent, CallResumedTag = "call_resumed" {} => { Ok(EventKind::CallResumed) }
}

client_event! {
    /// `call_transferred`: the call goes back into a queue (`queue_id`, state `waiting`) or
    /// straight to an agent (`agent_id`, state `ringing`); exactly one of the two.
    CallTransferredEvent, CallTransferredTag = "call_transferred" {
        /// The queue to enter (1–64 of `A-Z a-z 0-9 . _ -`).
        #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9._-]+$"))]
        opt queue_id: Option<QueueId>,
        /// The agent (1–128 of letters, digits and `. _ - : / # @ +`).
        #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9._:/#@+-]+$"))]
        opt agent_id: Option<AgentId>,
    } => {
        let target = match (queue_id, agent_id) {
            (Some(q), None) => TransferTarget::Queue(q),
            (None, Some(a)) => TransferTarget::Agent(a),
            (Some(_), Some(_)) => {
                return Err(err("agent_id", "give either queue_id or agent_id, not both"))
            }
            (None, None) => return Err(err("queue_id", "is required (or agent_id)")),
        };
        Ok(EventKind::CallTransferred { target })
    }
}

client_event! {
    /// `call_ended`: the call ended.
    CallEndedEvent, CallEndedTag = "call_ended" {
        /// `completed`, `abandoned` or `failed`.
        req end_reason: EndReason,
        /// Client-measured call duration, seconds; recorded as given.
        #[cfg_attr(feature = "openapi", schema(value_type = Option<f64>, minimum = 0))]
        opt duration: Option<Seconds>,
    } => {
        Ok(EventKind::CallEnded { end_reason, duration: duration.map(|s| s.0) })
    }
}

/// Longest piece of client text echoed in an error (an unknown `type` or field name).
const ECHO_MAX: usize = 64;

fn echo(s: &str) -> String {
    s.chars().take(ECHO_MAX).collect()
}

/// Reads and validates one event object; see the module documentation for the rules.
pub(crate) fn parse(v: Value) -> Result<IncomingEvent, EventParseError> {
    let Value::Object(obj) = v else {
        return Err(err("", "an event must be a JSON object"));
    };
    let ty = match obj.get("type") {
        None | Some(Value::Null) => return Err(err("type", "is required")),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(err("type", "must be a string")),
    };
    let ty = ty.as_str();
    match ty {
        "call_initiated" => decode::<CallInitiatedEvent>(ty, obj),
        "call_queued" => decode::<CallQueuedEvent>(ty, obj),
        "call_routed" => decode::<CallRoutedEvent>(ty, obj),
        "call_answered" => decode::<CallAnsweredEvent>(ty, obj),
        "call_hold" => decode::<CallHoldEvent>(ty, obj),
        "call_resumed" => decode::<CallResumedEvent>(ty, obj),
        "call_transferred" => decode::<CallTransferredEvent>(ty, obj),
        "call_ended" => decode::<CallEndedEvent>(ty, obj),
        other if EVENT_TYPES.contains(&other) => Err(err(
            "type",
            format!("`{other}` is made by the engine and cannot be sent"),
        )),
        other => Err(err(
            "type",
            format!(
                "unknown event type `{}`; expected one of {}",
                echo(other),
                CLIENT_EVENT_TYPES.join(", ")
            ),
        )),
    }
}

fn decode<W: Wire>(ty: &str, obj: Map<String, Value>) -> Result<IncomingEvent, EventParseError> {
    if let Some(k) = obj.keys().find(|k| !W::FIELDS.contains(&k.as_str())) {
        return Err(err(
            &echo(k),
            format!(
                "unknown field for `{ty}`; expected one of {}",
                W::FIELDS.join(", ")
            ),
        ));
    }
    if let Some(k) = W::REQUIRED
        .iter()
        .find(|k| obj.get(**k).is_none_or(Value::is_null))
    {
        return Err(err(k, "is required"));
    }
    let w: W = serde_path_to_error::deserialize(Value::Object(obj)).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { String::new() } else { path };
        err(&field, e.into_inner().to_string())
    })?;
    w.into_event()
}

/// OpenAPI: an event is one of the client types' structs, told apart by `type`.
#[cfg(feature = "openapi")]
mod openapi {
    use std::borrow::Cow;

    use utoipa::openapi::schema::{Discriminator, OneOfBuilder, Schema};
    use utoipa::openapi::{Ref, RefOr};
    use utoipa::{PartialSchema, ToSchema};

    use super::*;

    macro_rules! each_client_struct {
        ($m:ident) => {
            $m!(
                CallInitiatedEvent,
                CallQueuedEvent,
                CallRoutedEvent,
                CallAnsweredEvent,
                CallHoldEvent,
                CallResumedEvent,
                CallTransferredEvent,
                CallEndedEvent
            )
        };
    }

    impl PartialSchema for IncomingEvent {
        fn schema() -> RefOr<Schema> {
            macro_rules! one_of {
                ($($s:ident),*) => {{
                    let mut d = Discriminator::new("type");
                    $(
                        d.mapping.insert(
                            <$s as Wire>::TYPE.to_owned(),
                            format!("#/components/schemas/{}", <$s as ToSchema>::name()),
                        );
                    )*
                    OneOfBuilder::new()
                        $(.item(Ref::from_schema_name(<$s as ToSchema>::name())))*
                        .discriminator(Some(d))
                }};
            }
            let b = each_client_struct!(one_of);
            b.description(Some(
                "A call event as telephony sends it (the lifecycle brief), told apart by `type`. \
                 Fields a type does not have are refused (422 naming the field).",
            ))
            .into()
        }
    }

    impl ToSchema for IncomingEvent {
        fn name() -> Cow<'static, str> {
            Cow::Borrowed("IncomingEvent")
        }

        fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
            macro_rules! add {
                ($($s:ident),*) => {
                    $(
                        schemas.push((<$s as ToSchema>::name().into_owned(), <$s as PartialSchema>::schema()));
                        <$s as ToSchema>::schemas(schemas);
                    )*
                };
            }
            each_client_struct!(add);
        }
    }
}
