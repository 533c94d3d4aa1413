//! Queues: `POST/GET /api/v1/queues`, `GET/PATCH /api/v1/queues/{queue_id}`,
//! `PUT /api/v1/queues/{queue_id}/members`.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use std::collections::BTreeMap;

use switchboard_core::routing::{RoutingMode, Strategy};
use switchboard_core::{format_rfc3339, AgentId, QueueId, QueueSettings};
use switchboard_engine::{EngineError, Expect};
use switchboard_store::{QueueMember, QueueRecord, QueueRouting};

use crate::app::AppState;
use crate::auth::{perm, Authorized};
use crate::conditional::{etag_header, IfMatch};
use crate::error::ApiError;
use crate::extract::{ApiJson, Params};
use crate::routes::{validate, Page};

/// A queue and its business-rule settings (seconds). Defaults from the lifecycle brief.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueDto {
    /// Chosen by the client: 1–64 of `A-Z a-z 0-9 . _ -`.
    pub id: String,
    /// Display name, 1–200 characters.
    pub name: String,
    /// Unanswered this long after queue entry: `sla_breached`. Default 30.
    pub sla_threshold_s: u32,
    /// Routed but unanswered this long: `call_retransfer`. Default 15.
    pub ring_timeout_s: u32,
    /// Consecutive misses that put an agent on break. Default 3 (0 = never).
    pub max_no_answer: u32,
    /// On hold longer: alert `long_hold`. Default 60.
    pub hold_max_s: u32,
    /// Talk time under it: flag `review`. Default 10 (0 = never).
    pub short_call_s: u32,
    /// Completed calls get `survey_requested`. Default true.
    pub survey_enabled: bool,
    /// Distribution strategy (DESIGN.md "Routing"): `ring_all`, `longest_idle` (default),
    /// `round_robin`, `fewest_calls`, `least_talk_time`, `top_down`, `random`,
    /// `weighted_random`.
    pub strategy: String,
    /// `manual` (default: clients send `call_routed`) or `auto` (the engine distributes).
    pub routing: String,
    /// Skills an agent needs to be offered this queue's calls: `{name: minimum level 0–10}`.
    pub required_skills: BTreeMap<String, u8>,
    /// The queue's agents with their tiers, in member order (level, position).
    pub members: Vec<MemberDto>,
    /// Creation time (RFC 3339).
    pub created_at: String,
    /// Last change of the name or settings (RFC 3339).
    pub updated_at: String,
}

impl From<QueueRecord> for QueueDto {
    fn from(q: QueueRecord) -> Self {
        let s = q.settings;
        QueueDto {
            id: q.id,
            name: q.name,
            sla_threshold_s: s.sla_threshold_s,
            ring_timeout_s: s.ring_timeout_s,
            max_no_answer: s.max_no_answer,
            hold_max_s: s.hold_max_s,
            short_call_s: s.short_call_s,
            survey_enabled: s.survey_enabled,
            strategy: q.routing.strategy.as_str().to_owned(),
            routing: q.routing.mode.as_str().to_owned(),
            required_skills: q.routing.required_skills,
            members: q.routing.members.into_iter().map(Into::into).collect(),
            created_at: format_rfc3339(q.created_at),
            updated_at: format_rfc3339(q.updated_at),
        }
    }
}

/// Body of `POST /api/v1/queues` (where `id` is required and omitted settings take their
/// defaults) and of `PATCH /api/v1/queues/{queue_id}` (where `id` may not appear and omitted
/// fields keep their values).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueBody {
    /// Chosen by the client on creation: 1–64 of `A-Z a-z 0-9 . _ -`.
    pub id: Option<String>,
    /// 1–200 characters; defaults to the id.
    pub name: Option<String>,
    /// Seconds (1–86400) unanswered after queue entry before `sla_breached`. Default 30.
    pub sla_threshold_s: Option<u32>,
    /// Seconds (1–86400) a routed call may ring before `call_retransfer`. Default 15.
    pub ring_timeout_s: Option<u32>,
    /// Consecutive misses (0–100) that put an agent on break (0 = never). Default 3.
    pub max_no_answer: Option<u32>,
    /// Seconds (1–86400) on hold before the alert `long_hold`. Default 60.
    pub hold_max_s: Option<u32>,
    /// Talk seconds (0–86400) under which a call is flagged `review` (0 = never). Default 10.
    pub short_call_s: Option<u32>,
    /// Completed calls get `survey_requested`. Default true.
    pub survey_enabled: Option<bool>,
    /// Distribution strategy (default `longest_idle`); see `QueueDto.strategy`.
    pub strategy: Option<String>,
    /// `manual` (default) or `auto`.
    pub routing: Option<String>,
    /// `{skill: minimum level 0–10}` an agent needs.
    pub required_skills: Option<BTreeMap<String, u8>>,
}

/// One member of a queue: an agent with its tier (FreeSWITCH mod_callcenter's tiers).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberDto {
    /// The agent (it must exist: `POST /api/v1/agents`).
    pub agent_id: String,
    /// Tier level 0–100: calls go to the lowest level with an available agent. Default 1.
    #[serde(default = "one")]
    pub level: u32,
    /// Position 0–10000 within the level: `top_down` and ties go lower first. Default 1.
    #[serde(default = "one")]
    pub position: u32,
    /// Weight 0–1000 for `weighted_random` (0 = never chosen by it). Default 1.
    #[serde(default = "one")]
    pub weight: u32,
}

fn one() -> u32 {
    1
}

impl From<QueueMember> for MemberDto {
    fn from(m: QueueMember) -> Self {
        MemberDto {
            agent_id: m.agent_id,
            level: m.level,
            position: m.position,
            weight: m.weight,
        }
    }
}

/// Body of `PUT /api/v1/queues/{queue_id}/members`: the whole list (replaces the previous).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MembersBody {
    /// The members, at most 1000, each agent once.
    pub members: Vec<MemberDto>,
}

/// The members of `b`, validated. Errors: 422 naming `members[i].field`.
fn members(b: MembersBody) -> Result<Vec<QueueMember>, ApiError> {
    if b.members.len() > 1000 {
        return Err(ApiError::invalid("members", "at most 1000 members"));
    }
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(b.members.len());
    for (i, m) in b.members.into_iter().enumerate() {
        let f = |name: &str| format!("members[{i}].{name}");
        AgentId::parse(&m.agent_id).map_err(|e| ApiError::invalid(&f("agent_id"), e))?;
        if !seen.insert(m.agent_id.clone()) {
            return Err(ApiError::invalid(
                &f("agent_id"),
                format!("agent `{}` is listed twice", m.agent_id),
            ));
        }
        for (name, v, max) in [
            ("level", m.level, 100),
            ("position", m.position, 10_000),
            ("weight", m.weight, 1000),
        ] {
            if v > max {
                return Err(ApiError::invalid(
                    &f(name),
                    format!("must be between 0 and {max}"),
                ));
            }
        }
        out.push(QueueMember {
            agent_id: m.agent_id,
            level: m.level,
            position: m.position,
            weight: m.weight,
        });
    }
    // Member order: level, then position (ties by agent id), as routing reads it.
    out.sort_by(|a, b| (a.level, a.position, &a.agent_id).cmp(&(b.level, b.position, &b.agent_id)));
    Ok(out)
}

impl QueueBody {
    /// `base` with this body's routing fields applied, validated. Errors: 422 naming the field.
    fn routing(&self, mut r: QueueRouting) -> Result<QueueRouting, ApiError> {
        if let Some(s) = &self.strategy {
            r.strategy = Strategy::parse(s).ok_or_else(|| {
                ApiError::invalid(
                    "strategy",
                    "must be ring_all, longest_idle, round_robin, fewest_calls, least_talk_time, top_down, random or weighted_random",
                )
            })?;
        }
        if let Some(m) = &self.routing {
            r.mode = RoutingMode::parse(m)
                .ok_or_else(|| ApiError::invalid("routing", "must be manual or auto"))?;
        }
        if let Some(sk) = &self.required_skills {
            validate::skills("required_skills", sk)?;
            r.required_skills = sk.clone();
        }
        Ok(r)
    }

    /// `base` with this body's settings applied, validated. Errors: 422 naming the setting.
    fn settings(&self, mut s: QueueSettings) -> Result<QueueSettings, ApiError> {
        s.sla_threshold_s = self.sla_threshold_s.unwrap_or(s.sla_threshold_s);
        s.ring_timeout_s = self.ring_timeout_s.unwrap_or(s.ring_timeout_s);
        s.max_no_answer = self.max_no_answer.unwrap_or(s.max_no_answer);
        s.hold_max_s = self.hold_max_s.unwrap_or(s.hold_max_s);
        s.short_call_s = self.short_call_s.unwrap_or(s.short_call_s);
        s.survey_enabled = self.survey_enabled.unwrap_or(s.survey_enabled);
        s.validate()
            .map_err(|e| ApiError::invalid(e.field, e.message))?;
        Ok(s)
    }
}

fn check_name(name: &str) -> Result<(), ApiError> {
    // Characters, as documented (and as OpenAPI's `maxLength` counts), not UTF-8 bytes.
    if name.trim().is_empty() || name.chars().count() > 200 {
        return Err(ApiError::invalid("name", "must be 1 to 200 characters"));
    }
    // PostgreSQL cannot store U+0000 in `text`: refuse it here rather than fail the write.
    if name.contains('\0') {
        return Err(ApiError::invalid("name", "must not contain U+0000 (NUL)"));
    }
    Ok(())
}

/// Creates a queue (through the engine: stored and in force together).
#[utoipa::path(post, path = "/api/v1/queues", operation_id = "createQueue", tag = "queues",
    request_body = QueueBody,
    responses((status = 201, body = QueueDto, headers(("ETag" = String, description = "The queue's version"))),
        (status = 409, description = "The id is taken"), (status = 422, description = "Invalid field"),
        (status = 503, description = "Not stored; retry (see Retry-After)")),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn create_queue(
    State(s): State<AppState>,
    auth: Authorized<perm::QueuesWrite>,
    ApiJson(b): ApiJson<QueueBody>,
) -> Result<(StatusCode, HeaderMap, Json<QueueDto>), ApiError> {
    let id =
        b.id.as_deref()
            .ok_or_else(|| ApiError::invalid("id", "is required"))?;
    let id = QueueId::parse(id).map_err(|e| ApiError::invalid("id", e))?;
    let name = b.name.clone().unwrap_or_else(|| id.to_string());
    check_name(&name)?;
    let settings = b.settings(QueueSettings::default())?;
    let routing = b.routing(QueueRouting::default())?;
    let rec = QueueRecord {
        id: id.to_string(),
        name,
        settings,
        routing,
        created_at: 0,
        updated_at: 0,
        version: 0,
    };
    let q = s
        .engine
        .put_queue(auth.tenant_id, rec, Expect::Absent, &auth.actor())
        .await
        .map_err(|e| match e {
            EngineError::QueueExists(_) => {
                ApiError::conflict(format!("queue `{id}` already exists")).with_field("id")
            }
            e => e.into(),
        })?;
    Ok((StatusCode::CREATED, etag_header(q.version), Json(q.into())))
}

/// Lists queues by id (`limit` 1–500, default 50; `cursor` from the previous page).
#[utoipa::path(get, path = "/api/v1/queues", operation_id = "listQueues", tag = "queues",
    params(("limit" = Option<u64>, Query,), ("cursor" = Option<String>, Query,)),
    responses((status = 200, body = Page<QueueDto>)),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn list_queues(
    State(s): State<AppState>,
    auth: Authorized<perm::QueuesRead>,
    p: Params,
) -> Result<Json<Page<QueueDto>>, ApiError> {
    let limit = p.limit()?;
    let rows = s
        .store
        .queues(auth.tenant_id, p.get("cursor"), limit)
        .await?;
    Ok(Json(Page::of(rows, limit, |q| q.id.clone(), Into::into)))
}

/// One queue.
#[utoipa::path(get, path = "/api/v1/queues/{queue_id}", operation_id = "getQueue", tag = "queues",
    params(("queue_id" = String, Path,)),
    responses((status = 200, body = QueueDto, headers(("ETag" = String, description = "The queue's version, for If-Match"))),
        (status = 404, description = "No such queue")),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn get_queue(
    State(s): State<AppState>,
    auth: Authorized<perm::QueuesRead>,
    Path(id): Path<String>,
) -> Result<(HeaderMap, Json<QueueDto>), ApiError> {
    // An id no queue can have (e.g. holding U+0000, which PostgreSQL refuses) is not looked up.
    if QueueId::parse(&id).is_err() {
        return Err(ApiError::not_found(format!("no queue `{id}`")));
    }
    let q = s
        .store
        .queue(auth.tenant_id, &id)
        .await
        .map_err(|e| not_found(e, &id))?;
    Ok((etag_header(q.version), Json(q.into())))
}

fn not_found(e: switchboard_store::StoreError, id: &str) -> ApiError {
    match e {
        switchboard_store::StoreError::NotFound => ApiError::not_found(format!("no queue `{id}`")),
        e => e.into(),
    }
}

/// Changes a queue's name or settings; omitted fields are kept, so concurrent PATCHes of
/// different fields all survive. With `If-Match: "<version>"` the change applies only to that
/// version (412 otherwise). New settings apply to timers armed from now on; a call's SLA
/// threshold stays the one frozen at its queue entry.
#[utoipa::path(patch, path = "/api/v1/queues/{queue_id}", operation_id = "patchQueue", tag = "queues",
    params(("queue_id" = String, Path,), ("If-Match" = Option<String>, Header, description = "ETag of the version to change")),
    request_body = QueueBody,
    responses((status = 200, body = QueueDto, headers(("ETag" = String, description = "The new version"))),
        (status = 404, description = "No such queue"), (status = 412, description = "If-Match does not match"),
        (status = 422, description = "Invalid field"), (status = 503, description = "Not stored; retry (see Retry-After)")),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn patch_queue(
    State(s): State<AppState>,
    auth: Authorized<perm::QueuesWrite>,
    Path(id): Path<String>,
    if_match: IfMatch,
    ApiJson(b): ApiJson<QueueBody>,
) -> Result<(HeaderMap, Json<QueueDto>), ApiError> {
    if b.id.is_some() {
        return Err(ApiError::invalid("id", "a queue's id cannot be changed"));
    }
    if let Some(n) = &b.name {
        check_name(n)?;
    }
    change_queue(&s, &auth, &id, &if_match, |q| {
        if let Some(n) = &b.name {
            q.name = n.clone();
        }
        q.settings = b.settings(q.settings.clone())?;
        q.routing = b.routing(q.routing.clone())?;
        Ok(())
    })
    .await
}

/// Changes queue `id` by `change`, read-modify-write against the engine's version: a
/// concurrent change of another field makes the compare-and-set fail, and `change` is
/// re-applied to the newer version (with `If-Match`, the change applies to that version only:
/// 412 otherwise). Answers the new version as `ETag` and body.
async fn change_queue(
    s: &AppState,
    auth: &Authorized<perm::QueuesWrite>,
    id: &str,
    if_match: &IfMatch,
    change: impl Fn(&mut QueueRecord) -> Result<(), ApiError>,
) -> Result<(HeaderMap, Json<QueueDto>), ApiError> {
    loop {
        let mut q = s
            .engine
            .queue(auth.tenant_id, id)
            .await
            .map_err(|e| match e {
                // If-Match names a current representation; there is none (RFC 9110 §13.1.1).
                EngineError::NoSuchQueue(_) if if_match.is_conditional() => {
                    ApiError::precondition_failed(format!("no queue `{id}`: If-Match cannot match"))
                }
                EngineError::NoSuchQueue(_) => ApiError::not_found(format!("no queue `{id}`")),
                e => e.into(),
            })?;
        if_match.check(q.version)?;
        let base = q.version;
        change(&mut q)?;
        match s
            .engine
            .put_queue(auth.tenant_id, q, Expect::Version(base), &auth.actor())
            .await
        {
            Err(EngineError::VersionMismatch { .. }) if !if_match.is_conditional() => continue,
            r => {
                let q = r?;
                return Ok((etag_header(q.version), Json(q.into())));
            }
        }
    }
}

/// Replaces a queue's members (agents with tier `level`, `position` and `weight`). Every agent
/// must exist (422 naming `members` otherwise). In an `auto` queue the distributor runs at
/// once: new available members take waiting calls. With `If-Match` the change applies only to
/// that version of the queue (412 otherwise).
#[utoipa::path(put, path = "/api/v1/queues/{queue_id}/members", operation_id = "putQueueMembers", tag = "queues",
    params(("queue_id" = String, Path,), ("If-Match" = Option<String>, Header, description = "ETag of the queue version to change")),
    request_body = MembersBody,
    responses((status = 200, body = QueueDto, headers(("ETag" = String, description = "The queue's new version"))),
        (status = 404, description = "No such queue"), (status = 412, description = "If-Match does not match"),
        (status = 422, description = "Invalid member"), (status = 503, description = "Not stored; retry (see Retry-After)")),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn put_members(
    State(s): State<AppState>,
    auth: Authorized<perm::QueuesWrite>,
    Path(id): Path<String>,
    if_match: IfMatch,
    ApiJson(b): ApiJson<MembersBody>,
) -> Result<(HeaderMap, Json<QueueDto>), ApiError> {
    let members = members(b)?;
    change_queue(&s, &auth, &id, &if_match, |q| {
        q.routing.members = members.clone();
        Ok(())
    })
    .await
}
