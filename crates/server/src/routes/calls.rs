//! Call reads: `GET /api/v1/calls`, `GET /api/v1/calls/{id}`, `GET /api/v1/calls/{id}/events`.

use axum::extract::{Path, State};
use axum::Json;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use switchboard_core::time::ms_to_s;
use switchboard_core::{format_rfc3339, CallFlag, CallStatus, ExternalCallId};
use switchboard_store::{CallFilter, CallRow, EventRecord, StoreError};

use crate::app::AppState;
use crate::auth::{perm, Authorized, Principal};
use crate::error::ApiError;
use crate::extract::Params;
use crate::routes::Page;

/// A call. Times RFC 3339 UTC; durations in seconds.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallDto {
    /// Switchboard's id (UUIDv7).
    pub id: uuid::Uuid,
    /// The client's id (CallSid, PBX uniqueid).
    pub call_id: String,
    /// `voice` or `video`.
    pub call_type: String,
    /// Caller (E.164 recommended; SIP URIs and `anonymous` kept as given).
    pub from: Option<String>,
    /// Called number (the DID), as given.
    pub to: Option<String>,
    /// `initiated`, `waiting`, `ringing`, `active`, `on_hold` or `ended`.
    pub status: String,
    /// The queue the call is in or was last in.
    pub queue_id: Option<String>,
    /// The queue the call entered first (reports count it there).
    pub first_queue_id: Option<String>,
    /// The agent the call is offered to or talking with (the last one after it ends).
    pub agent_id: Option<String>,
    /// Caller priority 0–100, higher first.
    pub priority: u32,
    /// Time of `call_initiated`.
    pub initiated_at: String,
    /// First queue entry; null if never queued.
    pub queued_at: Option<String>,
    /// First answer; null if never answered.
    pub answered_at: Option<String>,
    /// Time of `call_ended`; null until the call ends.
    pub ended_at: Option<String>,
    /// `completed`, `abandoned` or `failed`; null until the call ends.
    pub end_reason: Option<String>,
    /// First queue entry to first answer (or to the end, if never answered).
    pub wait_s: Option<f64>,
    /// Seconds spent `active`.
    pub talk_s: f64,
    /// Seconds spent `on_hold`.
    pub hold_s: f64,
    /// `out_of_order`, `review`, `sla_breached`, `long_wait`, `long_hold`.
    pub flags: Vec<String>,
    /// Sequence number of the call's last event.
    pub last_seq: i64,
}

impl From<CallRow> for CallDto {
    fn from(r: CallRow) -> Self {
        let c = r.call;
        let t = |v: Option<i64>| v.map(format_rfc3339);
        CallDto {
            id: c.id,
            call_id: c.external_id.to_string(),
            call_type: c.call_type.as_str().to_owned(),
            from: c.from,
            to: c.to,
            status: c.status.as_str().to_owned(),
            queue_id: c.queue_id.map(|q| q.to_string()),
            first_queue_id: c.first_queue_id.map(|q| q.to_string()),
            agent_id: c.agent_id.map(|a| a.to_string()),
            priority: c.priority,
            initiated_at: format_rfc3339(c.initiated_at),
            queued_at: t(c.queued_at),
            answered_at: t(c.answered_at),
            ended_at: t(c.ended_at),
            end_reason: c.end_reason.map(|r| r.as_str().to_owned()),
            wait_s: c.wait_ms.map(ms_to_s),
            talk_s: ms_to_s(c.talk_ms),
            hold_s: ms_to_s(c.hold_ms),
            flags: c.flags.names().into_iter().map(str::to_owned).collect(),
            last_seq: r.last_seq,
        }
    }
}

/// One entry of a call's history.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventDto {
    /// Sequence number in the tenant's stream.
    pub seq: i64,
    /// Event type: a client event (`call_initiated` … `call_ended`) or an engine one
    /// (`call_retransfer`, `sla_breached`, `long_wait`, `long_hold`, `call_flagged`,
    /// `survey_requested`).
    pub r#type: String,
    /// The client's call id.
    pub call_id: String,
    /// Switchboard's call id (UUIDv7).
    pub call_uuid: uuid::Uuid,
    /// The client's idempotency key, if one was sent (never for engine events).
    pub event_id: Option<String>,
    /// Event time.
    pub timestamp: String,
    /// When Switchboard accepted it.
    pub received_at: String,
    /// The call's status after the event.
    pub status: String,
    /// Payload (client fields, or the engine's for engine-made events).
    #[schema(value_type = Object)]
    pub data: Value,
}

impl From<EventRecord> for EventDto {
    fn from(e: EventRecord) -> Self {
        EventDto {
            seq: e.seq,
            r#type: e.event_type,
            call_id: e.external_call_id,
            call_uuid: e.call_id,
            event_id: e.event_id,
            timestamp: format_rfc3339(e.ts),
            received_at: format_rfc3339(e.received_at),
            status: e.status_after,
            data: serde_json::from_str(&e.data).unwrap_or(Value::Null),
        }
    }
}

fn parse_cursor(c: &str) -> Option<(i64, uuid::Uuid)> {
    let (a, b) = c.split_once('_')?;
    Some((a.parse().ok()?, uuid::Uuid::parse_str(b).ok()?))
}

/// Lists calls, newest first. Filters: `status`, `queue_id` (current queue), `flag`,
/// `from`/`to` (RFC 3339 on the initiation time, `to` exclusive); `limit` 1–500 (default 50),
/// `cursor` from the previous page.
#[utoipa::path(get, path = "/api/v1/calls", operation_id = "listCalls", tag = "calls",
    params(("status" = Option<String>, Query,), ("queue_id" = Option<String>, Query,), ("flag" = Option<String>, Query,),
           ("from" = Option<String>, Query,), ("to" = Option<String>, Query,), ("limit" = Option<u64>, Query,), ("cursor" = Option<String>, Query,)),
    responses((status = 200, body = Page<CallDto>), (status = 400, description = "Bad parameter")),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn list_calls(
    State(s): State<AppState>,
    auth: Authorized<perm::CallsRead>,
    p: Params,
) -> Result<Json<Page<CallDto>>, ApiError> {
    let f = CallFilter {
        status: p.parsed(
            "status",
            CallStatus::parse,
            "one of initiated, waiting, ringing, active, on_hold, ended",
        )?,
        queue_id: p.get("queue_id").map(str::to_owned),
        flag: p.parsed(
            "flag",
            CallFlag::parse,
            "one of out_of_order, review, sla_breached, long_wait, long_hold",
        )?,
        from: p.time("from")?,
        to: p.time("to")?,
    };
    let limit = p.limit()?;
    let after = p.parsed("cursor", parse_cursor, "a cursor returned by this endpoint")?;
    let rows = s.store.calls(auth.tenant_id, &f, after, limit).await?;
    Ok(Json(Page::of(
        rows,
        limit,
        |r| format!("{}_{}", r.call.initiated_at, r.call.id),
        Into::into,
    )))
}

async fn find(s: &AppState, auth: &Principal, id: &str) -> Result<CallRow, ApiError> {
    // An id no call can have (a UUID is a valid call id too) is not looked up: PostgreSQL
    // refuses a text holding U+0000, which would be a 500.
    if ExternalCallId::parse(id).is_err() {
        return Err(ApiError::not_found(format!("no call `{id}`")));
    }
    s.store.call(auth.tenant_id, id).await.map_err(|e| match e {
        StoreError::NotFound => ApiError::not_found(format!("no call `{id}`")),
        e => e.into(),
    })
}

/// One call, by Switchboard id or by the client's call id.
#[utoipa::path(get, path = "/api/v1/calls/{id}", operation_id = "getCall", tag = "calls",
    params(("id" = String, Path, description = "Switchboard id or the client's call id")),
    responses((status = 200, body = CallDto), (status = 404, description = "No such call")),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn get_call(
    State(s): State<AppState>,
    auth: Authorized<perm::CallsRead>,
    Path(id): Path<String>,
) -> Result<Json<CallDto>, ApiError> {
    Ok(Json(find(&s, &auth, &id).await?.into()))
}

/// The call's history in order (client and engine events); `limit` 1–500 (default 50),
/// `cursor` = the last `seq` seen.
#[utoipa::path(get, path = "/api/v1/calls/{id}/events", operation_id = "getCallEvents", tag = "calls",
    params(("id" = String, Path,), ("limit" = Option<u64>, Query,), ("cursor" = Option<String>, Query,)),
    responses((status = 200, body = Page<EventDto>), (status = 404, description = "No such call")),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn call_events(
    State(s): State<AppState>,
    auth: Authorized<perm::CallsRead>,
    Path(id): Path<String>,
    p: Params,
) -> Result<Json<Page<EventDto>>, ApiError> {
    let call = find(&s, &auth, &id).await?;
    let limit = p.limit()?;
    let after = p.parsed(
        "cursor",
        |c| c.parse::<i64>().ok(),
        "a cursor returned by this endpoint",
    )?;
    let rows = s
        .store
        .call_events(auth.tenant_id, call.call.id, after, limit)
        .await?;
    Ok(Json(Page::of(
        rows,
        limit,
        |e| e.seq.to_string(),
        Into::into,
    )))
}
