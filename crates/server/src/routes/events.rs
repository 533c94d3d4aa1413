//! Event ingestion: `POST /api/v1/events` (one) and `POST /api/v1/events/batch` (up to 1000,
//! answered per event). Each answer comes after the event is durable.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use switchboard_core::{IncomingEvent, MAX_BATCH};
use switchboard_engine::{EngineError, Outcome};

use crate::app::AppState;
use crate::auth::Auth;
use crate::error::ApiError;
use crate::extract::{body_bytes, parse_json};
use crate::metrics::count_event;

/// A call event as telephony sends it (the lifecycle brief): `type`, `call_id`, optional
/// `event_id` (idempotency key, unique within the call), optional `timestamp` (RFC 3339; default
/// now), and the payload fields of its type:
/// `call_initiated {call_type: voice|video, queue_id?, from?, to?, priority?}`,
/// `call_queued {queue_id, priority?}`, `call_routed {agent_id, routing_time?}`,
/// `call_answered {wait_time?}`, `call_hold {hold_duration?}`, `call_resumed`,
/// `call_transferred {queue_id | agent_id}`,
/// `call_ended {end_reason: completed|abandoned|failed, duration?}`. Client durations are in
/// seconds and recorded as given; Switchboard computes wait/talk/hold from timestamps.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct EventBody {
    /// `call_initiated`, `call_queued`, `call_routed`, `call_answered`, `call_hold`,
    /// `call_resumed`, `call_transferred` or `call_ended`.
    #[schema(example = "call_initiated")]
    pub r#type: String,
    /// The client's id for the call (CallSid, PBX uniqueid): 1–128 of letters, digits and
    /// `. _ - : / # @ +`.
    #[schema(example = "CA42")]
    pub call_id: String,
    /// Idempotency key, 1–128 characters, unique within the call: a second delivery changes
    /// nothing and answers 200 with `duplicate`.
    pub event_id: Option<String>,
    /// Event time, RFC 3339 (any offset); default now (the server's clock).
    pub timestamp: Option<String>,
    /// `call_initiated`: `voice` (default) or `video`.
    pub call_type: Option<String>,
    /// `call_initiated` (optional), `call_queued`, `call_transferred`: the queue to enter
    /// (1–64 of `A-Z a-z 0-9 . _ -`).
    pub queue_id: Option<String>,
    /// `call_routed`, `call_transferred`: the agent (1–128 of letters, digits and
    /// `. _ - : / # @ +`).
    pub agent_id: Option<String>,
    /// `call_initiated`: caller, E.164 recommended (SIP URIs and `anonymous` kept as given);
    /// at most 256 characters.
    pub from: Option<String>,
    /// `call_initiated`: called number (the DID), as given; at most 256 characters.
    pub to: Option<String>,
    /// `call_initiated`, `call_queued`: caller priority 0–100, higher first (default 0).
    pub priority: Option<u32>,
    /// `call_ended`: `completed`, `abandoned` or `failed`.
    pub end_reason: Option<String>,
    /// `call_routed`: client-measured routing time, seconds; recorded as given.
    pub routing_time: Option<f64>,
    /// `call_answered`: client-measured wait, seconds; recorded as given.
    pub wait_time: Option<f64>,
    /// `call_hold`: client-measured hold duration, seconds; recorded as given.
    pub hold_duration: Option<f64>,
    /// `call_ended`: client-measured call duration, seconds; recorded as given.
    pub duration: Option<f64>,
}

/// An accepted event.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventResult {
    /// The event's sequence number in the tenant's stream.
    pub seq: i64,
    /// The client's call id.
    pub call_id: String,
    /// Switchboard's call id (UUIDv7).
    pub call_uuid: uuid::Uuid,
    /// The call's status after the event.
    pub status: String,
    /// True when this `event_id` had been applied before: nothing changed.
    pub duplicate: bool,
}

impl From<Outcome> for EventResult {
    fn from(o: Outcome) -> Self {
        EventResult {
            seq: o.seq,
            call_id: o.call_id,
            call_uuid: o.call_uuid,
            status: o.status.as_str().to_owned(),
            duplicate: o.duplicate,
        }
    }
}

/// `POST /api/v1/events/batch` body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct BatchBody {
    /// 1 to 1000 events, applied in order.
    pub events: Vec<EventBody>,
}

/// Per-event answers of a batch, in input order.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResult {
    /// Events applied (status 201).
    pub accepted: usize,
    /// Events whose `event_id` had already been applied (status 200; nothing changed).
    pub duplicates: usize,
    /// Events refused; their results carry a `problem`.
    pub rejected: usize,
    /// `{index, status, seq?, call_id?, call_uuid?, call_status?, duplicate?, problem?}`; `status`
    /// is the HTTP status the event would have had alone (201, 200 for a duplicate, 4xx).
    #[schema(value_type = Vec<Object>)]
    pub results: Vec<Value>,
}

fn status_of(o: &Outcome) -> StatusCode {
    if o.duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    }
}

/// Ingests one event; answers once it is durable.
#[utoipa::path(post, path = "/api/v1/events", operation_id = "postEvent", tag = "events",
    request_body = EventBody,
    responses(
        (status = 201, description = "Applied", body = EventResult),
        (status = 200, description = "Duplicate of an event_id already applied", body = EventResult),
        (status = 400, description = "Malformed JSON"), (status = 401, description = "Missing or invalid key"),
        (status = 404, description = "Unknown call"), (status = 409, description = "Does not fit the call's state"),
        (status = 413, description = "Body over 1 MiB"), (status = 422, description = "Invalid field"),
        (status = 503, description = "Not durable; retry with the same event_id")),
    security(("api_key" = [])))]
pub async fn post_event(
    State(s): State<AppState>,
    auth: Auth,
    req: Request,
) -> Result<(StatusCode, Json<EventResult>), ApiError> {
    auth.require("events:write")?;
    let r = one_event(&s, &auth, req).await;
    count_event(r.as_ref().map_or_else(|e| e.status, |(status, _)| *status));
    r
}

async fn one_event(
    s: &AppState,
    auth: &Auth,
    req: Request,
) -> Result<(StatusCode, Json<EventResult>), ApiError> {
    let bytes = body_bytes(req, &()).await?;
    let v: Value = parse_json(&bytes)?;
    let ev = IncomingEvent::from_json(&v).map_err(|e| ApiError::invalid(&e.field, e.message))?;
    let r = s
        .engine
        .submit(auth.tenant_id, vec![ev])
        .await
        .pop()
        .unwrap_or(Err(EngineError::Unavailable {
            reason: "no result".into(),
            retry_after_s: 1,
        }))?;
    Ok((status_of(&r), Json(r.into())))
}

/// Ingests up to 1000 events in order, answering each; bad events are refused one by one and
/// the good ones applied.
#[utoipa::path(post, path = "/api/v1/events/batch", operation_id = "postEventBatch", tag = "events",
    request_body = BatchBody,
    responses(
        (status = 200, description = "Per-event results", body = BatchResult),
        (status = 400, description = "Malformed JSON"), (status = 401, description = "Missing or invalid key"),
        (status = 413, description = "Over 1000 events or 1 MiB"), (status = 422, description = "No `events` array")),
    security(("api_key" = [])))]
pub async fn post_batch(
    State(s): State<AppState>,
    auth: Auth,
    req: Request,
) -> Result<Json<BatchResult>, ApiError> {
    auth.require("events:write")?;
    let bytes = body_bytes(req, &()).await?;
    let body: Value = parse_json(&bytes)?;
    let events = match body.get("events") {
        Some(Value::Array(a)) => a,
        Some(_) => return Err(ApiError::invalid("events", "must be an array of events")),
        None => return Err(ApiError::invalid("events", "is required")),
    };
    if events.is_empty() {
        return Err(ApiError::invalid("events", "must hold at least one event"));
    }
    if events.len() > MAX_BATCH {
        return Err(ApiError::too_large(format!(
            "a batch holds at most {MAX_BATCH} events; this one has {}",
            events.len()
        ))
        .with_field("events"));
    }
    let mut results: Vec<Option<Value>> = vec![None; events.len()];
    let mut valid = Vec::with_capacity(events.len());
    let mut index = Vec::with_capacity(events.len());
    for (i, v) in events.iter().enumerate() {
        match IncomingEvent::from_json(v) {
            Ok(ev) => {
                valid.push(ev);
                index.push(i);
            }
            Err(e) => {
                let field = if e.field.is_empty() {
                    format!("events[{i}]")
                } else {
                    format!("events[{i}].{}", e.field)
                };
                results[i] = Some(problem_entry(i, ApiError::invalid(&field, e.message)));
            }
        }
    }
    let (mut accepted, mut duplicates) = (0, 0);
    for (r, i) in s
        .engine
        .submit(auth.tenant_id, valid)
        .await
        .into_iter()
        .zip(index)
    {
        results[i] = Some(match r {
            Ok(o) => {
                if o.duplicate {
                    duplicates += 1
                } else {
                    accepted += 1
                }
                json!({"index": i, "status": status_of(&o).as_u16(), "seq": o.seq, "call_id": o.call_id,
                       "call_uuid": o.call_uuid, "call_status": o.status.as_str(), "duplicate": o.duplicate})
            }
            Err(e) => {
                // Name the field within the batch, as parse errors do.
                let mut p: ApiError = e.into();
                if let Some(f) = p.field.take() {
                    p = p.with_field(format!("events[{i}].{f}"));
                }
                problem_entry(i, p)
            }
        });
    }
    let results: Vec<Value> = results
        .into_iter()
        .map(|r| r.unwrap_or(Value::Null))
        .collect();
    let rejected = results.len() - accepted - duplicates;
    for r in &results {
        let status = r["status"]
            .as_u64()
            .and_then(|n| StatusCode::from_u16(n as u16).ok());
        count_event(status.unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
    }
    Ok(Json(BatchResult {
        accepted,
        duplicates,
        rejected,
        results,
    }))
}

fn problem_entry(i: usize, e: ApiError) -> Value {
    json!({"index": i, "status": e.status.as_u16(), "problem": e.body()})
}
