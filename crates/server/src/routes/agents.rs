//! Agents: `POST/GET /api/v1/agents`, `GET/PATCH /api/v1/agents/{id}`,
//! `POST /api/v1/agents/{id}/status`. Every change goes through the engine (stored and in force
//! together); presence is the engine's live view.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use switchboard_core::routing::{AgentStatus, Presence};
use switchboard_core::{format_rfc3339, AgentId, Scope};
use switchboard_engine::{AgentView, EngineError, Expect};
use switchboard_store::AgentRow;

use crate::app::AppState;
use crate::auth::{perm, Authorized, Credential};
use crate::conditional::{etag_header, IfMatch};
use crate::error::ApiError;
use crate::extract::{ApiJson, Params};
use crate::routes::{validate, Page};

/// An agent: configuration, chosen status, live presence and the counters routing uses.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentDto {
    /// The agent's id: the `agent_id` of events (1–128 of letters, digits, `. _ - : / # @ +`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// The user this agent is (its login), if linked.
    pub user_id: Option<Uuid>,
    /// Skills with levels 0–10.
    pub skills: BTreeMap<String, u8>,
    /// Calls it may have at once (default 1).
    pub capacity: u32,
    /// Seconds in `wrap_up` after each call (default 0).
    pub wrap_up_s: u32,
    /// Consecutive unanswered offers that put it on `break`; `null` = the queue's setting.
    pub max_no_answer: Option<u32>,
    /// Where telephony rings it (`sip:…`).
    pub sip_uri: Option<String>,
    /// The status it (or a supervisor) chose: `available`, `break` or `offline`.
    #[schema(value_type = String)]
    pub status: AgentStatus,
    /// Live presence: `ringing`, `on_call`, `wrap_up`, else `status`.
    #[schema(value_type = String)]
    pub presence: Presence,
    /// When `status` was last set (RFC 3339).
    pub status_since: String,
    /// Calls ringing it now (client call ids).
    pub ringing_calls: Vec<String>,
    /// Calls it is connected to now (client call ids).
    pub connected_calls: Vec<String>,
    /// Consecutive unanswered offers.
    pub missed: u32,
    /// Calls it answered.
    pub calls_taken: u64,
    /// Talk time of its calls, seconds.
    pub talk_s: f64,
    /// End of the current wrap-up (RFC 3339), if in one.
    pub wrap_up_until: Option<String>,
    /// Creation (RFC 3339).
    pub created_at: String,
    /// Last change of its configuration or status (RFC 3339).
    pub updated_at: String,
}

impl From<AgentView> for AgentDto {
    fn from(v: AgentView) -> Self {
        let r = v.row;
        AgentDto {
            id: r.agent_id,
            name: r.name,
            user_id: r.user_id,
            skills: r.skills,
            capacity: r.capacity,
            wrap_up_s: r.wrap_up_s,
            max_no_answer: r.max_no_answer,
            sip_uri: r.sip_uri,
            status: r.status,
            presence: v.presence,
            status_since: format_rfc3339(r.status_since),
            ringing_calls: v.ringing,
            connected_calls: v.connected,
            missed: r.missed,
            calls_taken: r.calls_taken,
            talk_s: r.talk_ms as f64 / 1000.0,
            wrap_up_until: r.wrap_up_until.map(format_rfc3339),
            created_at: format_rfc3339(r.created_at),
            updated_at: format_rfc3339(r.updated_at),
        }
    }
}

/// Body of `POST /api/v1/agents` (`id` required; omitted fields take their defaults) and of
/// `PATCH /api/v1/agents/{id}` (no `id` or `status`; omitted fields keep their values; `null`
/// clears `user_id`, `max_no_answer` and `sip_uri`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentBody {
    /// Chosen by the client on creation: the `agent_id` of events.
    pub id: Option<String>,
    /// 1–200 characters; defaults to the id.
    pub name: Option<String>,
    /// The linked user (same tenant).
    #[serde(default, deserialize_with = "crate::extract::nullable")]
    #[schema(value_type = Option<Uuid>)]
    pub user_id: Option<Option<Uuid>>,
    /// Skills `{name: level 0–10}`; names 1–64 of `A-Z a-z 0-9 . _ -`.
    pub skills: Option<BTreeMap<String, u8>>,
    /// Calls at once, 1–100. Default 1.
    pub capacity: Option<u32>,
    /// Seconds of wrap-up after each call, 0–86400. Default 0.
    pub wrap_up_s: Option<u32>,
    /// Consecutive misses (1–100) that put the agent on break; `null` = the queue's.
    #[serde(default, deserialize_with = "crate::extract::nullable")]
    #[schema(value_type = Option<u32>)]
    pub max_no_answer: Option<Option<u32>>,
    /// Where to ring the agent: a `sip:` or `sips:` URI, at most 256 characters.
    #[serde(default, deserialize_with = "crate::extract::nullable")]
    #[schema(value_type = Option<String>)]
    pub sip_uri: Option<Option<String>>,
    /// Creation only: the initial status (default `offline`).
    #[schema(value_type = Option<String>)]
    pub status: Option<AgentStatus>,
}

impl AgentBody {
    /// `row` with this body applied, validated. Errors: 422 naming the field.
    async fn apply(
        &self,
        s: &AppState,
        tenant: switchboard_core::TenantId,
        mut row: AgentRow,
    ) -> Result<AgentRow, ApiError> {
        if let Some(n) = &self.name {
            validate::name("name", n, 200)?;
            row.name = n.clone();
        }
        if let Some(u) = self.user_id {
            if let Some(id) = u {
                // Another tenant's user is as unknown as a user that does not exist.
                s.store.user(Some(tenant), id).await.map_err(|e| match e {
                    switchboard_store::StoreError::NotFound => {
                        ApiError::invalid("user_id", format!("no user `{id}`"))
                    }
                    e => e.into(),
                })?;
            }
            row.user_id = u;
        }
        if let Some(sk) = &self.skills {
            validate::skills("skills", sk)?;
            row.skills = sk.clone();
        }
        if let Some(c) = self.capacity {
            if !(1..=100).contains(&c) {
                return Err(ApiError::invalid("capacity", "must be between 1 and 100"));
            }
            row.capacity = c;
        }
        if let Some(w) = self.wrap_up_s {
            if w > 86_400 {
                return Err(ApiError::invalid(
                    "wrap_up_s",
                    "must be between 0 and 86400",
                ));
            }
            row.wrap_up_s = w;
        }
        if let Some(m) = self.max_no_answer {
            if m.is_some_and(|m| !(1..=100).contains(&m)) {
                return Err(ApiError::invalid(
                    "max_no_answer",
                    "must be between 1 and 100, or null for the queue's setting",
                ));
            }
            row.max_no_answer = m;
        }
        if let Some(u) = &self.sip_uri {
            if let Some(u) = u {
                sip_uri(u)?;
            }
            row.sip_uri = u.clone();
        }
        Ok(row)
    }
}

/// A `sip:` / `sips:` URI with a host part, ≤ 256 characters, no whitespace or control
/// characters (RFC 3261 §19.1). Errors: 422 naming `sip_uri`.
fn sip_uri(u: &str) -> Result<(), ApiError> {
    let rest = u
        .strip_prefix("sip:")
        .or_else(|| u.strip_prefix("sips:"))
        .unwrap_or("");
    let host = rest.rsplit('@').next().unwrap_or("");
    if u.len() > 256 || host.is_empty() || u.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ApiError::invalid(
            "sip_uri",
            "must be a sip: or sips: URI with a host (RFC 3261), at most 256 characters",
        ));
    }
    Ok(())
}

fn no_agent(id: &str) -> ApiError {
    ApiError::not_found(format!("no agent `{id}`"))
}

fn engine_err(id: &str) -> impl Fn(EngineError) -> ApiError + '_ {
    move |e| match e {
        EngineError::NoSuchAgent(_) => no_agent(id),
        e => e.into(),
    }
}

/// Creates an agent (stored and in force together; audit `agent.create`).
#[utoipa::path(post, path = "/api/v1/agents", operation_id = "createAgent", tag = "agents",
    request_body = AgentBody,
    responses((status = 201, body = AgentDto, headers(("ETag" = String, description = "The agent's version"))),
        (status = 409, description = "The id is taken"), (status = 422, description = "Invalid field"),
        (status = 503, description = "Not stored; retry (see Retry-After)")),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn create_agent(
    State(s): State<AppState>,
    auth: Authorized<perm::AgentsWrite>,
    ApiJson(b): ApiJson<AgentBody>,
) -> Result<(StatusCode, HeaderMap, Json<AgentDto>), ApiError> {
    let id =
        b.id.as_deref()
            .ok_or_else(|| ApiError::invalid("id", "is required"))?;
    let id = AgentId::parse(id).map_err(|e| ApiError::invalid("id", e))?;
    let mut row = AgentRow::seen(id.as_str());
    row.status = b.status.unwrap_or_default();
    let row = b.apply(&s, auth.tenant_id, row).await?;
    let v = s
        .engine
        .put_agent(auth.tenant_id, row, Expect::Absent, &auth.actor())
        .await
        .map_err(|e| match e {
            EngineError::AgentExists(_) => {
                ApiError::conflict(format!("agent `{id}` already exists")).with_field("id")
            }
            e => e.into(),
        })?;
    Ok((
        StatusCode::CREATED,
        etag_header(v.row.version),
        Json(v.into()),
    ))
}

/// Lists agents by id (`limit` 1–500, default 50; `cursor` from the previous page), optionally
/// only those with presence `presence` or in queue `queue_id`.
#[utoipa::path(get, path = "/api/v1/agents", operation_id = "listAgents", tag = "agents",
    params(("limit" = Option<u64>, Query,), ("cursor" = Option<String>, Query,),
        ("presence" = Option<String>, Query, description = "available, ringing, on_call, wrap_up, break or offline"),
        ("queue_id" = Option<String>, Query,)),
    responses((status = 200, body = Page<AgentDto>), (status = 400, description = "Bad parameter")),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn list_agents(
    State(s): State<AppState>,
    auth: Authorized<perm::AgentsRead>,
    p: Params,
) -> Result<Json<Page<AgentDto>>, ApiError> {
    let limit = p.limit()?;
    let presence = p
        .get("presence")
        .map(|v| {
            Presence::parse(v).ok_or_else(|| {
                ApiError::bad_param(
                    "presence",
                    "expected available, ringing, on_call, wrap_up, break or offline",
                )
            })
        })
        .transpose()?;
    // A queue the tenant does not have lists no one, like the other lists' filters.
    let members: Option<Vec<String>> = match p.get("queue_id") {
        Some(q) => Some(match s.engine.queue(auth.tenant_id, q).await {
            Ok(q) => q.routing.members.into_iter().map(|m| m.agent_id).collect(),
            Err(EngineError::NoSuchQueue(_)) => Vec::new(),
            Err(e) => return Err(e.into()),
        }),
        None => None,
    };
    let after = p.get("cursor");
    let rows: Vec<AgentView> = s
        .engine
        .agents(auth.tenant_id)
        .await?
        .into_iter()
        .filter(|v| after.is_none_or(|a| v.row.agent_id.as_str() > a))
        .filter(|v| presence.is_none_or(|p| v.presence == p))
        .filter(|v| members.as_ref().is_none_or(|m| m.contains(&v.row.agent_id)))
        .take(limit as usize)
        .collect();
    Ok(Json(Page::of(
        rows,
        limit,
        |v| v.row.agent_id.clone(),
        Into::into,
    )))
}

/// One agent with its presence.
#[utoipa::path(get, path = "/api/v1/agents/{id}", operation_id = "getAgent", tag = "agents",
    params(("id" = String, Path,)),
    responses((status = 200, body = AgentDto, headers(("ETag" = String, description = "The agent's version, for If-Match"))),
        (status = 404, description = "No such agent")),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn get_agent(
    State(s): State<AppState>,
    auth: Authorized<perm::AgentsRead>,
    Path(id): Path<String>,
) -> Result<(HeaderMap, Json<AgentDto>), ApiError> {
    let v = s
        .engine
        .agent(auth.tenant_id, &id)
        .await
        .map_err(engine_err(&id))?;
    Ok((etag_header(v.row.version), Json(v.into())))
}

/// Changes an agent's configuration; omitted fields are kept (concurrent PATCHes of different
/// fields all survive). With `If-Match` the change applies only to that version (412
/// otherwise). The status is set with `POST /api/v1/agents/{id}/status`.
#[utoipa::path(patch, path = "/api/v1/agents/{id}", operation_id = "patchAgent", tag = "agents",
    params(("id" = String, Path,), ("If-Match" = Option<String>, Header, description = "ETag of the version to change")),
    request_body = AgentBody,
    responses((status = 200, body = AgentDto, headers(("ETag" = String, description = "The new version"))),
        (status = 404, description = "No such agent"), (status = 412, description = "If-Match does not match"),
        (status = 422, description = "Invalid field"), (status = 503, description = "Not stored; retry (see Retry-After)")),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn patch_agent(
    State(s): State<AppState>,
    auth: Authorized<perm::AgentsWrite>,
    Path(id): Path<String>,
    if_match: IfMatch,
    ApiJson(b): ApiJson<AgentBody>,
) -> Result<(HeaderMap, Json<AgentDto>), ApiError> {
    if b.id.is_some() {
        return Err(ApiError::invalid("id", "an agent's id cannot be changed"));
    }
    if b.status.is_some() {
        return Err(ApiError::invalid(
            "status",
            "set the status with POST /api/v1/agents/{id}/status",
        ));
    }
    loop {
        let cur = s
            .engine
            .agent(auth.tenant_id, &id)
            .await
            .map_err(|e| match e {
                EngineError::NoSuchAgent(_) if if_match.is_conditional() => {
                    ApiError::precondition_failed(format!("no agent `{id}`: If-Match cannot match"))
                }
                e => engine_err(&id)(e),
            })?;
        if_match.check(cur.row.version)?;
        let base = cur.row.version;
        let row = b.apply(&s, auth.tenant_id, cur.row).await?;
        match s
            .engine
            .put_agent(auth.tenant_id, row, Expect::Version(base), &auth.actor())
            .await
        {
            Err(EngineError::VersionMismatch { .. }) if !if_match.is_conditional() => continue,
            r => {
                let v = r.map_err(engine_err(&id))?;
                return Ok((etag_header(v.row.version), Json(v.into())));
            }
        }
    }
}

/// Body of `POST /api/v1/agents/{id}/status`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusBody {
    /// `available`, `break` or `offline` (the engine sets `ringing`, `on_call`, `wrap_up`).
    #[schema(value_type = String)]
    pub status: String,
}

/// Sets an agent's status. Callers with `agents:write` set anyone's; an agent (a user linked
/// to the agent) sets its own with `agents:read`. Leaving (`break`, `offline`) while a call
/// rings the agent puts the call back in its queue; becoming `available` offers it waiting
/// calls at once. Published on the stream's `agents` topic as `agent_status_changed`.
#[utoipa::path(post, path = "/api/v1/agents/{id}/status", operation_id = "setAgentStatus", tag = "agents",
    params(("id" = String, Path,)),
    request_body = StatusBody,
    responses((status = 200, body = AgentDto),
        (status = 403, description = "Neither agents:write nor the agent's own user"),
        (status = 404, description = "No such agent"), (status = 422, description = "Invalid status"),
        (status = 503, description = "Not stored; retry (see Retry-After)")),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn set_status(
    State(s): State<AppState>,
    auth: Authorized<perm::AgentsRead>,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<StatusBody>,
) -> Result<Json<AgentDto>, ApiError> {
    let status = AgentStatus::parse(&b.status).ok_or_else(|| {
        ApiError::invalid(
            "status",
            "must be available, break or offline (ringing, on_call and wrap_up are set by the engine)",
        )
    })?;
    let cur = s
        .engine
        .agent(auth.tenant_id, &id)
        .await
        .map_err(engine_err(&id))?;
    let own =
        matches!(&auth.credential, Credential::User { id: u, .. } if cur.row.user_id == Some(*u));
    if !own {
        auth.require(Scope::AgentsWrite)?;
    }
    let v = s
        .engine
        .set_agent_status(auth.tenant_id, &id, status)
        .await
        .map_err(engine_err(&id))?;
    Ok(Json(v.into()))
}
