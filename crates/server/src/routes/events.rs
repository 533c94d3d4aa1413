//! Event ingestion: `POST /api/v1/events` (one) and `POST /api/v1/events/batch` (up to 1000,
//! answered per event). Each answer comes after the event is durable.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use switchboard_core::{BatchItem, BatchResponse, EventParseError, IncomingEvent, MAX_BATCH};
use switchboard_engine::{EngineError, Outcome};

use crate::app::AppState;
use crate::auth::{perm, Authorized, Principal};
use crate::error::ApiError;
use crate::extract::{body_bytes, parse_json, parse_strict};
use crate::metrics::count_event;

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

/// `POST /api/v1/events/batch` body: `{"events": [...]}` and nothing else.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchBody {
    /// 1 to 1000 events, applied in order. Each is checked on its own: a refused event gets
    /// its own `problem` in the answer and the others are still applied.
    #[schema(value_type = Vec<IncomingEvent>, min_items = 1, max_items = 1000)]
    pub events: Vec<EventSlot>,
}

/// One element of a batch's `events`: the validated event, or why it is not one (its field
/// named within the event, e.g. `queue_id`).
#[derive(Debug)]
pub struct EventSlot(pub Result<IncomingEvent, EventParseError>);

impl<'de> Deserialize<'de> for EventSlot {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Value::deserialize(d).map(|v| EventSlot(IncomingEvent::from_value(v)))
    }
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
    request_body = IncomingEvent,
    responses(
        (status = 201, description = "Applied", body = EventResult),
        (status = 200, description = "Duplicate of an event_id already applied", body = EventResult),
        (status = 400, description = "Malformed JSON, data after the first value, or a repeated key"),
        (status = 401, description = "Missing or invalid key"),
        (status = 404, description = "Unknown call"), (status = 409, description = "Does not fit the call's state"),
        (status = 413, description = "Body over 1 MiB"), (status = 422, description = "Invalid field"),
        (status = 503, description = "Not durable; retry with the same event_id")),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn post_event(
    State(s): State<AppState>,
    auth: Authorized<perm::EventsWrite>,
    req: Request,
) -> Result<(StatusCode, Json<EventResult>), ApiError> {
    let r = one_event(&s, &auth, req).await;
    count_event(r.as_ref().map_or_else(|e| e.status, |(status, _)| *status));
    r
}

async fn one_event(
    s: &AppState,
    auth: &Principal,
    req: Request,
) -> Result<(StatusCode, Json<EventResult>), ApiError> {
    let bytes = body_bytes(req, &()).await?;
    // Strict JSON first (400s), then the event's own rules (422s naming the field).
    let v = parse_strict(&bytes)?;
    let ev = IncomingEvent::from_value(v).map_err(|e| ApiError::invalid(&e.field, e.message))?;
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
        (status = 200, description = "Per-event results", body = BatchResponse),
        (status = 400, description = "Malformed JSON, data after the first value, or a repeated key"),
        (status = 401, description = "Missing or invalid key"),
        (status = 413, description = "Over 1000 events or 1 MiB"),
        (status = 422, description = "No `events` array, or a field besides `events`")),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn post_batch(
    State(s): State<AppState>,
    auth: Authorized<perm::EventsWrite>,
    req: Request,
) -> Result<Json<BatchResponse>, ApiError> {
    let bytes = body_bytes(req, &()).await?;
    let body: BatchBody = parse_json(&bytes)?;
    let events = body.events;
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
    let mut results: Vec<Option<BatchItem>> = vec![None; events.len()];
    let mut valid = Vec::with_capacity(events.len());
    let mut index = Vec::with_capacity(events.len());
    for (i, slot) in events.into_iter().enumerate() {
        match slot.0 {
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
                let p = ApiError::invalid(&field, e.message);
                results[i] = Some(BatchItem::refused(i, p.problem()));
            }
        }
    }
    for (r, i) in s
        .engine
        .submit(auth.tenant_id, valid)
        .await
        .into_iter()
        .zip(index)
    {
        results[i] = Some(match r {
            Ok(o) => BatchItem {
                index: i,
                status: status_of(&o).as_u16(),
                seq: Some(o.seq),
                call_id: Some(o.call_id),
                call_uuid: Some(o.call_uuid),
                call_status: Some(o.status),
                duplicate: Some(o.duplicate),
                problem: None,
            },
            Err(e) => {
                // Name the field within the batch, as parse errors do.
                let mut p: ApiError = e.into();
                if let Some(f) = p.field.take() {
                    p = p.with_field(format!("events[{i}].{f}"));
                }
                BatchItem::refused(i, p.problem())
            }
        });
    }
    let results = results
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            // The engine answers every event it is given; should it not, say so honestly.
            r.unwrap_or_else(|| {
                BatchItem::refused(
                    i,
                    ApiError::unavailable("no result for this event").problem(),
                )
            })
        })
        .collect();
    let results: Vec<BatchItem> = results;
    for r in &results {
        count_event(StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
    }
    Ok(Json(BatchResponse::new(results)))
}
