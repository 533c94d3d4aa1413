//! The telephony routing API (issue 7 item 6), for SIP proxies and PBXs holding a key with the
//! `telephony` scope:
//!
//! - `GET /api/v1/internal/route?did=&from=&call_id=`: where a call to a DID goes, answered as
//!   **one line** of JSON ending in `\n` (Kamailio's `http_client` keeps only the first line),
//!   HTTP 200 for every decision: `{"action":"route","targets":["sip:…"],"timeout_s":N,
//!   "call_id":"…"}` or `{"action":"reject","reason":"…","sip_code":N}`;
//! - `POST /api/v1/internal/answered`: the call is up (its slot is held `max_call_s` instead of
//!   `dial_timeout_s`);
//! - `POST /api/v1/internal/cdr`: how it ended; gives the slot back.
//!
//! Each is idempotent by `call_id`. The call is recorded in the engine (a `call_initiated`
//! with the DID as `to`, ended by the CDR), so it shows in `/api/v1/calls` and on the stream.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use switchboard_core::{
    format_rfc3339, parse_rfc3339_checked, AgentId, CallType, EndReason, EventKind, ExternalCallId,
    IncomingEvent, QueueId, TenantId,
};
use switchboard_engine::EngineError;
use switchboard_store::{
    Cdr, CdrReport, CdrStatus, CdrWrite, Decision, DidTarget, Release, RouteOutcome, RouteReject,
    RouteRequest, StoreError,
};

use crate::app::AppState;
use crate::auth::{perm, Authorized};
use crate::error::ApiError;
use crate::extract::{ApiJson, Params};
use crate::routes::{validate, Page};

/// A routing decision, as the route API answers it (one line of JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum RouteAnswer {
    /// Send the call to `targets` (SIP URIs, or `tel:+E.164` for a destination known by its
    /// number), ringing at most `timeout_s` seconds.
    Route {
        /// Where to send the call: one destination of a campaign, or the agents a queue
        /// offers it to (several at once for `ring_all`).
        targets: Vec<String>,
        /// How long to ring, seconds: the campaign's `dial_timeout_s` or the queue's
        /// `ring_timeout_s`.
        timeout_s: u32,
        /// The call id asked about.
        call_id: String,
    },
    /// Refuse the call with SIP status `sip_code` (RFC 3261 §21).
    Reject {
        /// `did_not_found` (404), `did_inactive` (403), `campaign_not_found` (404),
        /// `campaign_inactive` (480), `no_active_destinations` (480),
        /// `all_destinations_at_cap` (480), `queue_not_found` (404), `no_agent_available` (480).
        reason: String,
        /// 403, 404 or 480.
        sip_code: u16,
    },
}

impl RouteAnswer {
    fn reject(reason: &str, sip_code: u16) -> RouteAnswer {
        RouteAnswer::Reject {
            reason: reason.to_owned(),
            sip_code,
        }
    }

    /// The reject answer of a campaign's refusal.
    pub fn of_campaign(r: RouteReject) -> RouteAnswer {
        match r {
            RouteReject::CampaignNotFound => Self::reject("campaign_not_found", 404),
            RouteReject::CampaignInactive => Self::reject("campaign_inactive", 480),
            RouteReject::NoActiveDestinations => Self::reject("no_active_destinations", 480),
            RouteReject::AllAtCap => Self::reject("all_destinations_at_cap", 480),
        }
    }

    /// The answer as one line of JSON, without the final `\n`.
    pub fn line(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    fn is_reject(&self) -> bool {
        matches!(self, RouteAnswer::Reject { .. })
    }
}

/// `200`, `application/json`, `line` and a `\n`.
fn one_line(line: &str) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        format!("{line}\n"),
    )
        .into_response()
}

/// Longest `from` kept, bytes (as events take).
const MAX_FROM: usize = 256;

/// Submits one engine event for `call_id` (its `event_id` makes a retry a duplicate).
async fn submit(
    s: &AppState,
    tenant: TenantId,
    call_id: &ExternalCallId,
    event_id: &str,
    kind: EventKind,
) -> Result<(), EngineError> {
    let ev = IncomingEvent {
        event_id: Some(event_id.to_owned()),
        call_id: call_id.clone(),
        timestamp: None,
        kind,
    };
    let r = s.engine.submit(tenant, vec![ev]).await.pop();
    r.unwrap_or_else(|| Err(EngineError::UnknownCall(call_id.to_string())))
        .map(|_| ())
}

/// Ends the call in the engine unless it is unknown or ended already.
async fn end_call(
    s: &AppState,
    tenant: TenantId,
    call_id: &ExternalCallId,
    event_id: &str,
    end_reason: EndReason,
    duration: Option<f64>,
) -> Result<(), ApiError> {
    let kind = EventKind::CallEnded {
        end_reason,
        duration,
    };
    match submit(s, tenant, call_id, event_id, kind).await {
        Ok(()) | Err(EngineError::UnknownCall(_) | EngineError::Transition(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Where a call to a DID goes. Answers 200 with one line of JSON for every decision (see
/// [`RouteAnswer`]); a repeated `call_id` gets the first answer and takes nothing more.
#[utoipa::path(get, path = "/api/v1/internal/route", operation_id = "routeCall", tag = "telephony",
    params(("did" = String, Query, description = "The number called: E.164, or national in the tenant's default_region"),
        ("call_id" = String, Query, description = "The telephony's call id (SIP Call-ID): 1–128 of letters, digits and . _ - : / # @ +"),
        ("from" = Option<String>, Query, description = "The caller, kept as given (at most 256 bytes)")),
    responses((status = 200, description = "The decision, one line of JSON ending in a line feed", body = RouteAnswer),
        (status = 400, description = "A parameter is missing or wrong (problem+json naming it)")),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn route(
    State(s): State<AppState>,
    auth: Authorized<perm::Telephony>,
    p: Params,
) -> Result<Response, ApiError> {
    let t = auth.tenant_id;
    let required = |k: &str| {
        p.get(k)
            .ok_or_else(|| ApiError::bad_param(k, "is required"))
    };
    let call_id = ExternalCallId::parse(required("call_id")?)
        .map_err(|e| ApiError::bad_param("call_id", e))?;
    let did_raw = required("did")?;
    let from = p.get("from").map(str::to_owned);
    if from.as_ref().is_some_and(|f| f.len() > MAX_FROM) {
        return Err(ApiError::bad_param(
            "from",
            format!("must be at most {MAX_FROM} bytes"),
        ));
    }
    if let Some(d) = s.store.route_decision(t, call_id.as_str()).await? {
        return Ok(one_line(&d.answer));
    }
    let region = crate::routes::destinations::region(&s, t).await?;
    let did = validate::parse_e164(did_raw, region.as_deref()).ok_or_else(|| {
        ApiError::bad_param(
            "did",
            "is not a valid phone number (E.164, or national in the tenant's default_region)",
        )
    })?;
    let now = s.engine.now_ms();
    let record = async |answer: &RouteAnswer, queue: Option<&str>, expires_at: Option<i64>| {
        let d = Decision {
            call_id: call_id.as_str(),
            did: &did,
            queue_id: queue,
            expires_at,
            answer: answer.line(),
        };
        match s.store.record_route_decision(t, &d, now).await {
            Ok(()) => Ok(one_line(&d.answer)),
            Err(StoreError::Conflict(_)) => stored(&s, t, call_id.as_str()).await,
            Err(e) => Err(ApiError::from(e)),
        }
    };
    let Some(phone) = s.store.phone_number_by_number(t, &did).await? else {
        return record(&RouteAnswer::reject("did_not_found", 404), None, None).await;
    };
    if !phone.settings.active {
        return record(&RouteAnswer::reject("did_inactive", 403), None, None).await;
    }
    let initiated = |queue_id: Option<QueueId>| EventKind::CallInitiated {
        call_type: CallType::Voice,
        queue_id,
        from: from.clone(),
        to: Some(did.clone()),
        priority: None,
    };
    match phone.settings.target {
        DidTarget::Campaign(campaign_id) => {
            match submit(&s, t, &call_id, "route:initiated", initiated(None)).await {
                Ok(()) | Err(EngineError::CallExists { .. }) => {}
                Err(e) => return Err(e.into()),
            }
            let req = RouteRequest {
                call_id: Some(call_id.as_str()),
                did: &did,
                campaign_id,
                now,
                random: rand::random(),
            };
            let mut answer = None;
            let outcome = s.store.route_campaign(t, &req, |o| {
                let a = campaign_answer(o, call_id.as_str());
                let line = a.line();
                answer = Some(a);
                line
            });
            match outcome.await {
                Ok(_) => {}
                Err(StoreError::Conflict(_)) => return stored(&s, t, call_id.as_str()).await,
                Err(e) => return Err(e.into()),
            }
            let answer = answer.ok_or_else(|| ApiError::internal("no routing answer"))?;
            if answer.is_reject() {
                end_call(&s, t, &call_id, "route:ended", EndReason::Abandoned, None).await?;
            }
            Ok(one_line(&answer.line()))
        }
        DidTarget::Queue(queue_id) => {
            let q = QueueId::parse(&queue_id).map_err(ApiError::internal)?;
            match submit(&s, t, &call_id, "route:initiated", initiated(Some(q))).await {
                Ok(()) | Err(EngineError::CallExists { .. }) => {}
                Err(EngineError::UnknownQueue(_)) => {
                    return record(&RouteAnswer::reject("queue_not_found", 404), None, None).await;
                }
                Err(e) => return Err(e.into()),
            }
            let targets: Vec<String> = s
                .engine
                .offered_agents(t, call_id.as_str())
                .await?
                .into_iter()
                .filter_map(|a| a.sip_uri)
                .collect();
            if targets.is_empty() {
                end_call(&s, t, &call_id, "route:ended", EndReason::Abandoned, None).await?;
                let a = RouteAnswer::reject("no_agent_available", 480);
                return record(&a, Some(&queue_id), None).await;
            }
            let ring_s = s.engine.queue(t, &queue_id).await?.settings.ring_timeout_s;
            let a = RouteAnswer::Route {
                targets,
                timeout_s: ring_s,
                call_id: call_id.to_string(),
            };
            let expires = now + i64::from(ring_s) * 1000;
            record(&a, Some(&queue_id), Some(expires)).await
        }
    }
}

fn campaign_answer(o: &RouteOutcome, call_id: &str) -> RouteAnswer {
    match o {
        RouteOutcome::Routed(r) => RouteAnswer::Route {
            targets: vec![r.destination.target()],
            timeout_s: r.campaign.settings.dial_timeout_s,
            call_id: call_id.to_owned(),
        },
        RouteOutcome::Rejected(r) => RouteAnswer::of_campaign(*r),
    }
}

/// The stored answer of a decision made meanwhile for `call_id`.
async fn stored(s: &AppState, t: TenantId, call_id: &str) -> Result<Response, ApiError> {
    let d = s
        .store
        .route_decision(t, call_id)
        .await?
        .ok_or_else(|| ApiError::internal("a routing decision vanished"))?;
    Ok(one_line(&d.answer))
}

/// `POST /api/v1/internal/answered` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnsweredBody {
    /// The call id of the route request.
    pub call_id: String,
    /// The target that answered (one of the route answer's `targets`), at most 512 characters.
    pub target: Option<String>,
}

/// The call is up.
#[derive(Debug, Serialize, ToSchema)]
pub struct AnsweredDto {
    /// The call id.
    pub call_id: String,
    /// When it was answered (the first report), RFC 3339.
    pub answered_at: Option<String>,
    /// Until when it holds its destination's slot without a CDR (RFC 3339): the answer plus
    /// the campaign's `max_call_s`; `null` for a queue call (agents are not capped here).
    pub expires_at: Option<String>,
}

fn check_target(field: &str, v: Option<&str>) -> Result<(), ApiError> {
    match v {
        Some(t) if t.is_empty() || t.chars().count() > 512 || t.chars().any(char::is_control) => {
            Err(ApiError::invalid(
                field,
                "must be 1 to 512 characters, no control character",
            ))
        }
        _ => Ok(()),
    }
}

/// The call routed by a decision is up (answered): its slot is held `max_call_s` from now
/// instead of `dial_timeout_s` from the decision; for a queue call the engine records
/// `call_answered`. A repeat changes nothing.
#[utoipa::path(post, path = "/api/v1/internal/answered", operation_id = "callAnswered", tag = "telephony",
    request_body = AnsweredBody,
    responses((status = 200, body = AnsweredDto), (status = 404, description = "No route decision for this call_id"),
        (status = 409, description = "The call was rejected, or the engine refuses the answer (call_status)"),
        (status = 422, description = "Invalid field")),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn answered(
    State(s): State<AppState>,
    auth: Authorized<perm::Telephony>,
    ApiJson(b): ApiJson<AnsweredBody>,
) -> Result<Json<AnsweredDto>, ApiError> {
    let t = auth.tenant_id;
    let call_id = ExternalCallId::parse(&b.call_id).map_err(|e| ApiError::invalid("call_id", e))?;
    check_target("target", b.target.as_deref())?;
    let r = s
        .store
        .answer_route(t, call_id.as_str(), b.target.as_deref(), s.engine.now_ms())
        .await
        .map_err(|e| match e {
            StoreError::NotFound => {
                ApiError::not_found("no route decision for this call id").with_field("call_id")
            }
            e => e.into(),
        })?;
    if r.link_id.is_none() && r.queue_id.is_none() {
        return Err(
            ApiError::conflict("the route request of this call was rejected").with_field("call_id"),
        );
    }
    if r.queue_id.is_some() {
        // Of the agents the call rings (several for `ring_all`), the one whose SIP URI answered.
        let agent_id = match b.target.as_deref() {
            Some(target) => s
                .engine
                .offered_agents(t, call_id.as_str())
                .await?
                .into_iter()
                .find(|a| a.sip_uri.as_deref() == Some(target))
                .and_then(|a| AgentId::parse(&a.agent_id).ok()),
            None => None,
        };
        let kind = EventKind::CallAnswered {
            agent_id,
            wait_time: None,
        };
        submit(&s, t, &call_id, "answered", kind).await?;
    }
    Ok(Json(AnsweredDto {
        call_id: call_id.to_string(),
        answered_at: r.answered_at.map(format_rfc3339),
        expires_at: r
            .expires_at
            .filter(|_| r.link_id.is_some())
            .map(format_rfc3339),
    }))
}

/// `POST /api/v1/internal/cdr` body: how a call ended.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CdrBody {
    /// The call id of the route request (a call never routed is recorded too).
    pub call_id: String,
    /// `answered`, `no_answer`, `busy`, `failed` or `canceled`.
    #[schema(value_type = String)]
    pub status: CdrStatus,
    /// The target that took (or was tried for) the call, at most 512 characters.
    pub target: Option<String>,
    /// When the call arrived, RFC 3339.
    pub started_at: String,
    /// When it was answered, RFC 3339.
    pub answered_at: Option<String>,
    /// When it ended, RFC 3339.
    pub ended_at: Option<String>,
    /// Whole call, seconds.
    pub duration_s: Option<u32>,
    /// Billed (talk) time, seconds.
    pub billsec_s: Option<u32>,
    /// Hangup cause (a SIP reason or Q.850 text), at most 256 characters.
    pub hangup_cause: Option<String>,
}

/// A call detail record.
#[derive(Debug, Serialize, ToSchema)]
pub struct CdrDto {
    /// CDR id (UUIDv7).
    pub id: uuid::Uuid,
    /// The telephony's call id (the Asterisk uniqueid for `log_call`).
    pub call_id: String,
    /// `route_api` or `compat` (`/api/internal/log_call`).
    pub source: String,
    /// `answered`, `no_answer`, `busy`, `failed` or `canceled`.
    #[schema(value_type = String)]
    pub status: CdrStatus,
    /// The status as sent, when it was mapped (Asterisk `DIALSTATUS`).
    pub raw_status: Option<String>,
    /// The DID called (E.164).
    pub did: Option<String>,
    /// The campaign that routed the call.
    pub campaign_id: Option<uuid::Uuid>,
    /// The destination it was sent to.
    pub destination_id: Option<uuid::Uuid>,
    /// The campaign link (`campaignClientSettingId`).
    pub link_id: Option<uuid::Uuid>,
    /// The queue of a queue DID.
    pub queue_id: Option<String>,
    /// The target telephony reported.
    pub target: Option<String>,
    /// Caller number.
    pub caller_id_num: Option<String>,
    /// Caller name.
    pub caller_id_name: Option<String>,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339.
    pub answered_at: Option<String>,
    /// RFC 3339.
    pub ended_at: Option<String>,
    /// Whole call, seconds.
    pub duration_s: Option<u64>,
    /// Billed (talk) time, seconds.
    pub billsec_s: Option<u64>,
    /// Hangup cause text.
    pub hangup_cause: Option<String>,
    /// Q.850 cause code.
    pub hangup_cause_code: Option<i32>,
    /// Asterisk linkedid.
    pub linked_id: Option<String>,
    /// When Switchboard recorded it, RFC 3339.
    pub recorded_at: String,
}

/// The CDR as the API shows it.
pub fn cdr_dto(c: Cdr) -> CdrDto {
    let r = c.report;
    CdrDto {
        id: c.id,
        call_id: r.call_id,
        source: c.source,
        status: r.status,
        raw_status: r.raw_status,
        did: r.did,
        campaign_id: c.campaign_id,
        destination_id: c.destination_id,
        link_id: c.link_id,
        queue_id: c.queue_id,
        target: r.target,
        caller_id_num: r.caller_id_num,
        caller_id_name: r.caller_id_name,
        started_at: format_rfc3339(r.started_at),
        answered_at: r.answered_at.map(format_rfc3339),
        ended_at: r.ended_at.map(format_rfc3339),
        duration_s: r.duration_s,
        billsec_s: r.billsec_s,
        hangup_cause: r.hangup_cause,
        hangup_cause_code: r.hangup_cause_code,
        linked_id: r.linked_id,
        recorded_at: format_rfc3339(c.created_at),
    }
}

fn time(field: &str, v: Option<&str>) -> Result<Option<i64>, ApiError> {
    v.map(|v| parse_rfc3339_checked(v).map_err(|e| ApiError::invalid(field, e)))
        .transpose()
}

/// Records how a call ended and gives its destination's slot back (once: a repeat with the
/// same `call_id` answers 200 and the record stored first). The call ends in the engine
/// (`completed` when answered, else `abandoned`) unless it has ended already.
#[utoipa::path(post, path = "/api/v1/internal/cdr", operation_id = "postCdr", tag = "telephony",
    request_body = CdrBody,
    responses((status = 201, description = "Recorded", body = CdrDto),
        (status = 200, description = "Recorded before for this call_id: that record", body = CdrDto),
        (status = 422, description = "Invalid field")),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn post_cdr(
    State(s): State<AppState>,
    auth: Authorized<perm::Telephony>,
    ApiJson(b): ApiJson<CdrBody>,
) -> Result<(StatusCode, Json<CdrDto>), ApiError> {
    let t = auth.tenant_id;
    let call_id = ExternalCallId::parse(&b.call_id).map_err(|e| ApiError::invalid("call_id", e))?;
    check_target("target", b.target.as_deref())?;
    validate::opt_text("hangup_cause", b.hangup_cause.as_deref(), 256)?;
    let report = CdrReport {
        call_id: call_id.to_string(),
        did: None,
        status: b.status,
        raw_status: None,
        target: b.target,
        caller_id_num: None,
        caller_id_name: None,
        started_at: time("started_at", Some(&b.started_at))?.unwrap_or_default(),
        answered_at: time("answered_at", b.answered_at.as_deref())?,
        ended_at: time("ended_at", b.ended_at.as_deref())?,
        duration_s: b.duration_s.map(u64::from),
        billsec_s: b.billsec_s.map(u64::from),
        hangup_cause: b.hangup_cause,
        hangup_cause_code: None,
        linked_id: None,
    };
    let written = s
        .store
        .record_cdr(t, &report, "route_api", Release::Call, s.engine.now_ms())
        .await?;
    let reason = if b.status == CdrStatus::Answered {
        EndReason::Completed
    } else {
        EndReason::Abandoned
    };
    let duration = b.duration_s.map(f64::from);
    end_call(&s, t, &call_id, "cdr:ended", reason, duration).await?;
    Ok(match written {
        CdrWrite::Created(c) => (StatusCode::CREATED, Json(cdr_dto(c))),
        CdrWrite::Existing(c) => (StatusCode::OK, Json(cdr_dto(c))),
    })
}

/// Lists CDRs in recording order (`limit` 1–500, default 50; `cursor` from the previous page).
#[utoipa::path(get, path = "/api/v1/cdrs", operation_id = "listCdrs", tag = "routing",
    params(("limit" = Option<u64>, Query,), ("cursor" = Option<String>, Query,)),
    responses((status = 200, body = Page<CdrDto>), (status = 400, description = "Bad parameter")),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn list_cdrs(
    State(s): State<AppState>,
    auth: Authorized<perm::RoutingRead>,
    p: Params,
) -> Result<Json<Page<CdrDto>>, ApiError> {
    let limit = p.limit()?;
    let rows = s
        .store
        .cdrs(auth.tenant_id, p.uuid_cursor()?, limit)
        .await?;
    Ok(Json(Page::of(rows, limit, |c| c.id.to_string(), cdr_dto)))
}
