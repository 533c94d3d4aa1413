//! Compatibility with the call-seller platform's Asterisk dialplan (issue 7 item 7): the same
//! two operations as the route API, in that platform's wire shapes, so an existing AGI script
//! works unchanged. The key (scope `telephony`) comes in `X-Internal-API-Token` (or, as
//! everywhere, `X-API-Key` / `Authorization: Bearer`). Errors are that platform's JSON, not
//! problem+json:
//!
//! - `GET /api/internal/route_info?did=<number>` → 200 `{"status":"proceed","routingInfo":{…}}`
//!   or 404 `{"status":"reject","rejectReason":"…"}`; a missing `did` is a 400;
//! - `POST /api/internal/log_call` → 201 `{"status":"success","message":"CDR logged
//!   successfully","cdrId":…}`; 400 `{"status":"error","message":"Invalid CDR data",
//!   "errors":{field:[…]}}`; 409 for an `asteriskUniqueid` logged before.
//!
//! Unlike that platform, Switchboard enforces the concurrency cap: `route_info` reserves a
//! slot on the one destination it answers (for `dial_timeout_seconds`, as it has no call id to
//! extend the lease by), and `log_call` with its `campaignClientSettingId` gives one back.

use std::collections::BTreeMap;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{NaiveDateTime, TimeZone, Utc};
use serde::Serialize;
use serde_json::{json, Map, Value};
use utoipa::ToSchema;

use switchboard_core::{parse_rfc3339_checked, Scope};
use switchboard_store::{
    CdrReport, CdrStatus, CdrWrite, DidTarget, Release, RouteOutcome, RouteReject, RouteRequest,
    StoreError,
};

use crate::app::AppState;
use crate::auth::Principal;
use crate::error::{ApiError, WWW_AUTHENTICATE};
use crate::extract::{body_bytes, parse_strict, Params};
use crate::routes::validate;

/// The challenges of a compatibility route's 401: the usual two and `X-Internal-API-Token`.
const COMPAT_WWW_AUTHENTICATE: &str = concat!(
    r#"Bearer realm="switchboard", ApiKey realm="switchboard", header="X-API-Key", "#,
    r#"ApiKey realm="switchboard", header="X-Internal-API-Token""#
);

/// `{"status":"error","message":…}` with `status`, keeping `Retry-After` and (for 401) the
/// challenges.
fn error(status: StatusCode, message: &str, extra: Option<(&str, Value)>) -> Response {
    let mut body = json!({"status": "error", "message": message});
    if let Some((k, v)) = extra {
        body[k] = v;
    }
    (status, Json(body)).into_response()
}

fn from_api(e: ApiError) -> Response {
    let mut r = error(e.status, &e.detail, None);
    if e.status == StatusCode::UNAUTHORIZED {
        debug_assert!(COMPAT_WWW_AUTHENTICATE.starts_with(WWW_AUTHENTICATE));
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(COMPAT_WWW_AUTHENTICATE),
        );
    }
    if let Some(s) = e.retry_after {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(s));
    }
    r
}

/// A caller of the compatibility routes holding the `telephony` scope.
pub struct CompatCaller(pub Principal);

impl FromRequestParts<AppState> for CompatCaller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let p = Principal::resolve_internal(state, &parts.headers)
            .await
            .map_err(from_api)?;
        p.require(Scope::Telephony).map_err(from_api)?;
        Ok(CompatCaller(p))
    }
}

/// `route_info`'s answer: `{"status":"proceed","routingInfo":…}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RouteInfoProceed {
    /// `proceed`.
    pub status: String,
    /// Where to send the call.
    #[serde(rename = "routingInfo")]
    pub routing_info: RoutingInfo,
}

/// The campaign's decision, in the call-seller platform's field names.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoutingInfo {
    /// The DID's owner: the tenant's id.
    pub user_id: uuid::Uuid,
    /// The campaign.
    pub campaign_id: uuid::Uuid,
    /// The DID.
    pub did_id: uuid::Uuid,
    /// `priority`, `round_robin` or `weighted`.
    pub routing_strategy: String,
    /// How long to ring, seconds.
    pub dial_timeout_seconds: u32,
    /// The destination chosen (one: its slot is reserved).
    pub targets: Vec<RoutingTarget>,
}

/// One destination, in the call-seller platform's field names.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoutingTarget {
    /// The campaign link (send it back in `log_call`).
    #[serde(rename = "campaignClientSettingId")]
    pub campaign_client_setting_id: uuid::Uuid,
    /// The destination.
    pub client_id: uuid::Uuid,
    /// The PJSIP endpoint id or group name.
    pub client_identifier: Option<String>,
    /// The destination's name.
    pub client_name: String,
    /// Where to send the call (`tel:+…` for a destination known by its number).
    pub sip_uri: String,
    /// The link's concurrency cap (`null`: none).
    pub max_concurrency: Option<u32>,
    /// The link's weight.
    pub weight: u32,
    /// The link's priority.
    pub priority: u32,
    /// PJSIP `outbound_auth`.
    pub outbound_auth: Option<String>,
    /// Caller id to present.
    pub callerid_override: Option<String>,
    /// Asterisk dialplan context.
    pub context: Option<String>,
    /// PJSIP transport.
    pub transport: Option<String>,
}

fn reject(reason: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"status": "reject", "rejectReason": reason})),
    )
        .into_response()
}

/// Where a call to a DID goes, in the call-seller platform's shape; reserves the slot of the
/// destination answered for `dial_timeout_seconds` (`log_call` with its
/// `campaignClientSettingId` gives it back sooner). Reject reasons (404):
/// `invalid_did_input` (not a phone number), `did_not_found`, `did_inactive`,
/// `no_active_campaign_for_did` (a queue DID, or the campaign inactive or gone),
/// `no_active_clients_in_campaign`, `no_eligible_clients_available` (all at a cap).
/// (`owner_inactive` is never sent: a deactivated tenant's key is refused with 401.)
#[utoipa::path(get, path = "/api/internal/route_info", operation_id = "compatRouteInfo", tag = "compatibility",
    params(("did" = String, Query, description = "The number called, as the dialplan has it")),
    responses((status = 200, body = RouteInfoProceed),
        (status = 400, description = "`did` is missing: {\"status\":\"error\",\"message\":…}"),
        (status = 401, description = "No valid key: {\"status\":\"error\",\"message\":…}"),
        (status = 403, description = "The key lacks `telephony`"),
        (status = 404, description = "{\"status\":\"reject\",\"rejectReason\":…}")),
    security(("internal_token" = []), ("api_key" = []), ("bearer" = [])))]
pub async fn route_info(
    State(s): State<AppState>,
    CompatCaller(who): CompatCaller,
    p: Result<Params, ApiError>,
) -> Response {
    match route_info_inner(&s, &who, p).await {
        Ok(r) => r,
        Err(e) => from_api(e),
    }
}

async fn route_info_inner(
    s: &AppState,
    who: &Principal,
    p: Result<Params, ApiError>,
) -> Result<Response, ApiError> {
    let p = p?;
    let t = who.tenant_id;
    let Some(did_raw) = p.get("did") else {
        return Ok(error(
            StatusCode::BAD_REQUEST,
            "Missing required query parameter: did",
            None,
        ));
    };
    let region = crate::routes::destinations::region(s, t).await?;
    let Some(did) = validate::parse_e164(did_raw, region.as_deref()) else {
        return Ok(reject("invalid_did_input"));
    };
    let Some(phone) = s.store.phone_number_by_number(t, &did).await? else {
        return Ok(reject("did_not_found"));
    };
    if !phone.settings.active {
        return Ok(reject("did_inactive"));
    }
    let DidTarget::Campaign(campaign_id) = phone.settings.target else {
        return Ok(reject("no_active_campaign_for_did"));
    };
    let req = RouteRequest {
        call_id: None,
        did: &did,
        campaign_id,
        now: s.engine.now_ms(),
        random: rand::random(),
    };
    let outcome = s.store.route_campaign(t, &req, |_| String::new()).await?;
    let r = match outcome {
        RouteOutcome::Routed(r) => r,
        RouteOutcome::Rejected(RouteReject::CampaignNotFound | RouteReject::CampaignInactive) => {
            return Ok(reject("no_active_campaign_for_did"))
        }
        RouteOutcome::Rejected(RouteReject::NoActiveDestinations) => {
            return Ok(reject("no_active_clients_in_campaign"))
        }
        RouteOutcome::Rejected(RouteReject::AllAtCap) => {
            return Ok(reject("no_eligible_clients_available"))
        }
    };
    let (d, l) = (&r.destination, &r.link.settings);
    let target = RoutingTarget {
        campaign_client_setting_id: r.link.id,
        client_id: d.id,
        client_identifier: d.settings.client_identifier.clone(),
        client_name: d.settings.name.clone(),
        sip_uri: d.target(),
        max_concurrency: l.concurrency_cap,
        weight: l.weight,
        priority: l.priority,
        outbound_auth: d.settings.outbound_auth.clone(),
        callerid_override: d.settings.callerid_override.clone(),
        context: d.settings.context.clone(),
        transport: d.settings.transport.clone(),
    };
    let strategy = serde_json::to_value(r.campaign.settings.strategy)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let body = RouteInfoProceed {
        status: "proceed".into(),
        routing_info: RoutingInfo {
            user_id: t.0,
            campaign_id,
            did_id: phone.id,
            routing_strategy: strategy,
            dial_timeout_seconds: r.campaign.settings.dial_timeout_s,
            targets: vec![target],
        },
    };
    Ok((StatusCode::OK, Json(body)).into_response())
}

/// `log_call`'s body, field by field as the call-seller platform reads it (camelCase; unknown
/// fields, and its nullable `userId`, `campaignId`, `didId`, `clientId`, are ignored).
#[derive(Debug, Serialize, ToSchema)]
#[allow(non_snake_case)]
pub struct LogCallBody {
    /// The DID called (required).
    pub incomingDidNumber: String,
    /// When the call arrived, ISO 8601 (required; without an offset: UTC).
    pub timestampStart: String,
    /// Asterisk `DIALSTATUS` (`ANSWERED`, `NOANSWER`, `BUSY`, `CANCEL`, `CONGESTION`, …), at
    /// most 50 characters (required).
    pub callStatus: String,
    /// Asterisk `UNIQUEID`, at most 50 characters (required; a second log of it is a 409).
    pub asteriskUniqueid: String,
    /// The `campaignClientSettingId` route_info answered: gives its slot back.
    pub campaignClientSettingId: Option<uuid::Uuid>,
    /// At most 50 characters.
    pub callerIdNum: Option<String>,
    /// At most 100 characters.
    pub callerIdName: Option<String>,
    /// ISO 8601.
    pub timestampAnswered: Option<String>,
    /// ISO 8601.
    pub timestampEnd: Option<String>,
    /// Seconds, at least 0.
    pub durationSeconds: Option<u32>,
    /// Seconds, at least 0.
    pub billsecSeconds: Option<u32>,
    /// Q.850 cause code.
    pub hangupCauseCode: Option<i32>,
    /// At most 50 characters.
    pub hangupCauseText: Option<String>,
    /// At most 50 characters.
    pub asteriskLinkedid: Option<String>,
}

/// Reads fields of a JSON object, collecting the errors per field in the messages of the
/// call-seller platform's validator (marshmallow).
struct Fields<'a> {
    obj: &'a Map<String, Value>,
    errors: BTreeMap<String, Vec<String>>,
}

impl Fields<'_> {
    fn fail(&mut self, key: &str, msg: impl Into<String>) {
        self.errors
            .entry(key.to_owned())
            .or_default()
            .push(msg.into());
    }

    /// A string of at most `max` characters without control characters; `required` refuses
    /// it absent or `null`.
    fn string(&mut self, key: &str, max: usize, required: bool) -> Option<String> {
        match self.obj.get(key) {
            None if required => self.fail(key, "Missing data for required field."),
            Some(Value::Null) if required => self.fail(key, "Field may not be null."),
            None | Some(Value::Null) => {}
            Some(Value::String(v)) if v.chars().count() > max => {
                self.fail(key, format!("Longer than maximum length {max}."))
            }
            Some(Value::String(v)) if v.chars().any(char::is_control) => {
                self.fail(key, "Must not contain control characters.")
            }
            Some(Value::String(v)) if required && v.is_empty() => {
                self.fail(key, "Field may not be empty.")
            }
            Some(Value::String(v)) => return Some(v.clone()),
            Some(_) => self.fail(key, "Not a valid string."),
        }
        None
    }

    /// An integer (a JSON number, or a string of one) of at least `min`.
    fn int(&mut self, key: &str, min: Option<i64>) -> Option<i64> {
        let n = match self.obj.get(key) {
            None | Some(Value::Null) => return None,
            Some(Value::Number(n)) => n.as_i64(),
            Some(Value::String(s)) => s.trim().parse().ok(),
            Some(_) => None,
        };
        match (n, min) {
            (None, _) => self.fail(key, "Not a valid integer."),
            (Some(n), Some(m)) if n < m => {
                self.fail(key, format!("Must be greater than or equal to {m}."))
            }
            (Some(n), _) if n > i64::from(i32::MAX) => self.fail(key, "Number too large."),
            (Some(n), _) => return Some(n),
        }
        None
    }

    /// An ISO 8601 date-time: RFC 3339, or without an offset (taken as UTC), `T` or a space
    /// between date and time.
    fn time(&mut self, key: &str, required: bool) -> Option<i64> {
        let v = self.string(key, 64, required)?;
        let ms = parse_rfc3339_checked(&v).ok().or_else(|| {
            ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
                .iter()
                .find_map(|f| NaiveDateTime::parse_from_str(&v, f).ok())
                .map(|n| Utc.from_utc_datetime(&n).timestamp_millis())
                .filter(|ms| *ms >= 0)
        });
        if ms.is_none() {
            self.fail(key, "Not a valid datetime.");
        }
        ms
    }
}

/// Asterisk's `DIALSTATUS` as a CDR status: `ANSWER(ED)` answered, `NOANSWER` no answer,
/// `BUSY` busy, `CANCEL` canceled, anything else (`CONGESTION`, `CHANUNAVAIL`, …) failed.
fn dial_status(v: &str) -> CdrStatus {
    match v.trim().to_ascii_uppercase().as_str() {
        "ANSWERED" | "ANSWER" => CdrStatus::Answered,
        "NOANSWER" | "NO ANSWER" => CdrStatus::NoAnswer,
        "BUSY" => CdrStatus::Busy,
        "CANCEL" | "CANCELED" | "CANCELLED" => CdrStatus::Canceled,
        _ => CdrStatus::Failed,
    }
}

fn invalid(errors: BTreeMap<String, Vec<String>>) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "Invalid CDR data",
        Some(("errors", json!(errors))),
    )
}

/// Records a call's outcome as the call-seller platform's dialplan reports it, and gives back
/// the slot `route_info` reserved on `campaignClientSettingId`. Not recorded in the engine:
/// the compatibility route has no call to end there.
#[utoipa::path(post, path = "/api/internal/log_call", operation_id = "compatLogCall", tag = "compatibility",
    request_body = LogCallBody,
    responses((status = 201, description = "{\"status\":\"success\",\"message\":\"CDR logged successfully\",\"cdrId\":…}"),
        (status = 400, description = "{\"status\":\"error\",\"message\":\"Invalid CDR data\",\"errors\":{field:[…]}}"),
        (status = 401, description = "No valid key"), (status = 403, description = "The key lacks `telephony`"),
        (status = 409, description = "This asteriskUniqueid was logged before")),
    security(("internal_token" = []), ("api_key" = []), ("bearer" = [])))]
pub async fn log_call(
    State(s): State<AppState>,
    CompatCaller(who): CompatCaller,
    req: Request,
) -> Response {
    match log_call_inner(&s, &who, req).await {
        Ok(r) => r,
        Err(e) => from_api(e),
    }
}

async fn log_call_inner(s: &AppState, who: &Principal, req: Request) -> Result<Response, ApiError> {
    let t = who.tenant_id;
    let bytes = body_bytes(req, &()).await?;
    let v = match parse_strict(&bytes) {
        Ok(v) => v,
        Err(e) => {
            let errors = BTreeMap::from([("_schema".to_owned(), vec![e.detail])]);
            return Ok(invalid(errors));
        }
    };
    let Some(obj) = v.as_object() else {
        let errors = BTreeMap::from([("_schema".to_owned(), vec!["Invalid input type.".into()])]);
        return Ok(invalid(errors));
    };
    let mut f = Fields {
        obj,
        errors: BTreeMap::new(),
    };
    let did = f.string("incomingDidNumber", 64, true);
    let started = f.time("timestampStart", true);
    let status = f.string("callStatus", 50, true);
    let uniqueid = f.string("asteriskUniqueid", 50, true);
    let link = f
        .string("campaignClientSettingId", 64, false)
        .and_then(|l| {
            let id = l.parse::<uuid::Uuid>().ok();
            if id.is_none() {
                f.fail("campaignClientSettingId", "Not a valid UUID.");
            }
            id
        });
    let region = crate::routes::destinations::region(s, t).await?;
    let report = CdrReport {
        call_id: uniqueid.unwrap_or_default(),
        did: did.map(|d| validate::parse_e164(&d, region.as_deref()).unwrap_or(d)),
        status: dial_status(status.as_deref().unwrap_or_default()),
        raw_status: status,
        target: None,
        caller_id_num: f.string("callerIdNum", 50, false),
        caller_id_name: f.string("callerIdName", 100, false),
        started_at: started.unwrap_or_default(),
        answered_at: f.time("timestampAnswered", false),
        ended_at: f.time("timestampEnd", false),
        duration_s: f.int("durationSeconds", Some(0)).map(|d| d as u64),
        billsec_s: f.int("billsecSeconds", Some(0)).map(|d| d as u64),
        hangup_cause: f.string("hangupCauseText", 50, false),
        hangup_cause_code: f.int("hangupCauseCode", None).map(|c| c as i32),
        linked_id: f.string("asteriskLinkedid", 50, false),
    };
    if !f.errors.is_empty() {
        return Ok(invalid(f.errors));
    }
    let release = link.map_or(Release::Nothing, Release::Link);
    let written = s
        .store
        .record_cdr(t, &report, "compat", release, s.engine.now_ms())
        .await;
    match written {
        Ok(CdrWrite::Created(c)) => Ok((
            StatusCode::CREATED,
            Json(json!({"status": "success", "message": "CDR logged successfully", "cdrId": c.id})),
        )
            .into_response()),
        Ok(CdrWrite::Existing(c)) => Ok(error(
            StatusCode::CONFLICT,
            "A call log with this asteriskUniqueid already exists",
            Some(("cdrId", json!(c.id))),
        )),
        Err(StoreError::Invalid { field, detail }) => {
            Ok(invalid(BTreeMap::from([(field, vec![detail])])))
        }
        Err(e) => Err(e.into()),
    }
}
