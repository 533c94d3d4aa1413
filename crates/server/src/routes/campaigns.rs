//! Campaigns: `POST/GET /api/v1/campaigns`, `GET/PATCH/DELETE /api/v1/campaigns/{id}`, and
//! their destinations with caps and counters: `GET/PUT /api/v1/campaigns/{id}/destinations`.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use switchboard_core::format_rfc3339;
use switchboard_core::routing::CampaignStrategy;
use switchboard_store::{Campaign, CampaignLink, CampaignSettings, LinkSettings};

use crate::app::AppState;
use crate::auth::{perm, Authorized};
use crate::conditional::{etag_header, IfMatch};
use crate::error::ApiError;
use crate::extract::{ApiJson, Params};
use crate::routes::resource::{self, Kind};
use crate::routes::{validate, Page};

/// Default `dial_timeout_s`: 30 s (the call-seller platform's default).
pub const DEFAULT_DIAL_TIMEOUT_S: u32 = 30;
/// Default `max_call_s`: 4 hours.
pub const DEFAULT_MAX_CALL_S: u32 = 14_400;
/// Largest `dial_timeout_s`: 1 hour.
pub const MAX_DIAL_TIMEOUT_S: u32 = 3_600;
/// Largest `max_call_s`: 24 hours.
pub const MAX_MAX_CALL_S: u32 = 86_400;
/// Most destinations in one campaign.
pub const MAX_LINKS: usize = 1_000;
/// Largest `priority`, `weight` and `concurrency_cap`.
pub const MAX_LINK_VALUE: u32 = 1_000_000;

/// A campaign.
#[derive(Debug, Serialize, ToSchema)]
pub struct CampaignDto {
    /// Campaign id (UUIDv7).
    pub id: uuid::Uuid,
    /// Display name.
    pub name: String,
    /// `priority` (the lowest `priority` value that can take the call), `round_robin` (the
    /// next destination after the last one used, in list order) or `weighted` (at random, in
    /// proportion to `weight`); at-cap and inactive destinations are skipped.
    pub strategy: CampaignStrategy,
    /// How long a destination may ring, seconds: the route answer's `timeout_s`, and how long
    /// a routed call holds its slot until it is answered.
    pub dial_timeout_s: u32,
    /// Longest call, seconds: how long an answered call holds its slot without a CDR.
    pub max_call_s: u32,
    /// False: its DIDs' calls are rejected (480 `campaign_inactive`).
    pub active: bool,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

fn dto(c: Campaign) -> CampaignDto {
    let s = c.settings;
    CampaignDto {
        id: c.id,
        name: s.name,
        strategy: s.strategy,
        dial_timeout_s: s.dial_timeout_s,
        max_call_s: s.max_call_s,
        active: s.active,
        created_at: format_rfc3339(c.created_at),
        updated_at: format_rfc3339(c.updated_at),
    }
}

/// Body of `POST /api/v1/campaigns` (`name` required) and of `PATCH
/// /api/v1/campaigns/{id}` (the fields to change).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignBody {
    /// 1–200 characters.
    pub name: Option<String>,
    /// Default `priority`.
    pub strategy: Option<CampaignStrategy>,
    /// Seconds, 1–3600. Default 30.
    pub dial_timeout_s: Option<u32>,
    /// Seconds, 1–86400. Default 14400 (4 h).
    pub max_call_s: Option<u32>,
    /// Default true.
    pub active: Option<bool>,
}

fn in_range(field: &str, v: u32, max: u32) -> Result<u32, ApiError> {
    if (1..=max).contains(&v) {
        Ok(v)
    } else {
        Err(ApiError::invalid(
            field,
            format!("must be 1 to {max} seconds"),
        ))
    }
}

impl CampaignBody {
    /// `base` with this body applied, validated. Errors: 422 naming the field.
    fn apply(&self, mut s: CampaignSettings) -> Result<CampaignSettings, ApiError> {
        if let Some(n) = &self.name {
            validate::name("name", n, 200)?;
            s.name = n.clone();
        }
        if let Some(st) = self.strategy {
            s.strategy = st;
        }
        if let Some(d) = self.dial_timeout_s {
            s.dial_timeout_s = in_range("dial_timeout_s", d, MAX_DIAL_TIMEOUT_S)?;
        }
        if let Some(m) = self.max_call_s {
            s.max_call_s = in_range("max_call_s", m, MAX_MAX_CALL_S)?;
        }
        if let Some(a) = self.active {
            s.active = a;
        }
        Ok(s)
    }
}

const KIND: Kind = Kind {
    name: "campaign",
    conflict_field: "id",
};

/// Creates a campaign, without destinations (`PUT …/destinations` adds them).
#[utoipa::path(post, path = "/api/v1/campaigns", operation_id = "createCampaign", tag = "routing",
    request_body = CampaignBody,
    responses((status = 201, body = CampaignDto, headers(("ETag" = String, description = "The campaign's version"))),
        (status = 422, description = "Invalid field")),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn create_campaign(
    State(s): State<AppState>,
    auth: Authorized<perm::RoutingWrite>,
    ApiJson(b): ApiJson<CampaignBody>,
) -> Result<(StatusCode, HeaderMap, Json<CampaignDto>), ApiError> {
    let name = b
        .name
        .clone()
        .ok_or_else(|| ApiError::invalid("name", "is required"))?;
    let settings = b.apply(CampaignSettings {
        name,
        strategy: CampaignStrategy::default(),
        dial_timeout_s: DEFAULT_DIAL_TIMEOUT_S,
        max_call_s: DEFAULT_MAX_CALL_S,
        active: true,
    })?;
    resource::create(&s, &auth, KIND, &settings, dto).await
}

/// Lists campaigns in creation order (`limit` 1–500, default 50; `cursor` from the previous
/// page).
#[utoipa::path(get, path = "/api/v1/campaigns", operation_id = "listCampaigns", tag = "routing",
    params(("limit" = Option<u64>, Query,), ("cursor" = Option<String>, Query,)),
    responses((status = 200, body = Page<CampaignDto>), (status = 400, description = "Bad parameter")),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn list_campaigns(
    State(s): State<AppState>,
    auth: Authorized<perm::RoutingRead>,
    p: Params,
) -> Result<Json<Page<CampaignDto>>, ApiError> {
    resource::list::<CampaignSettings, _>(&s, &auth, &p, dto).await
}

/// One campaign.
#[utoipa::path(get, path = "/api/v1/campaigns/{id}", operation_id = "getCampaign", tag = "routing",
    params(("id" = String, Path,)),
    responses((status = 200, body = CampaignDto, headers(("ETag" = String, description = "The version, for If-Match"))),
        (status = 404, description = "No such campaign")),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn get_campaign(
    State(s): State<AppState>,
    auth: Authorized<perm::RoutingRead>,
    Path(id): Path<String>,
) -> Result<(HeaderMap, Json<CampaignDto>), ApiError> {
    let c = resource::get::<CampaignSettings>(&s, &auth, KIND, &id).await?;
    Ok((etag_header(c.version), Json(dto(c))))
}

/// Changes a campaign's settings; omitted fields are kept. `If-Match` makes it conditional
/// (412). Calls already routed keep the leases they were given.
#[utoipa::path(patch, path = "/api/v1/campaigns/{id}", operation_id = "patchCampaign", tag = "routing",
    params(("id" = String, Path,), ("If-Match" = Option<String>, Header, description = "ETag of the version to change")),
    request_body = CampaignBody,
    responses((status = 200, body = CampaignDto), (status = 404, description = "No such campaign"),
        (status = 412, description = "If-Match does not match"), (status = 422, description = "Invalid field")),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn patch_campaign(
    State(s): State<AppState>,
    auth: Authorized<perm::RoutingWrite>,
    Path(id): Path<String>,
    if_match: IfMatch,
    ApiJson(b): ApiJson<CampaignBody>,
) -> Result<(HeaderMap, Json<CampaignDto>), ApiError> {
    let change = |cur: &CampaignSettings| b.apply(cur.clone());
    resource::patch(&s, &auth, KIND, &id, &if_match, change, dto).await
}

/// Deletes a campaign and its destination links (409 while a DID points to it). 204.
#[utoipa::path(delete, path = "/api/v1/campaigns/{id}", operation_id = "deleteCampaign", tag = "routing",
    params(("id" = String, Path,)),
    responses((status = 204, description = "Deleted"), (status = 404, description = "No such campaign"),
        (status = 409, description = "A DID points to it")),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn delete_campaign(
    State(s): State<AppState>,
    auth: Authorized<perm::RoutingWrite>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    resource::delete::<CampaignSettings>(&s, &auth, KIND, &id).await
}

/// One destination of a campaign, with its caps and counters.
#[derive(Debug, Serialize, ToSchema)]
pub struct CampaignDestinationDto {
    /// Link id (UUIDv7): the compatibility API's `campaignClientSettingId`.
    pub id: uuid::Uuid,
    /// The destination.
    pub destination_id: uuid::Uuid,
    /// Lower first (`priority`).
    pub priority: u32,
    /// Share of calls (`weighted`).
    pub weight: u32,
    /// Most calls up at once (`null`: no cap).
    pub concurrency_cap: Option<u32>,
    /// Most calls ever (`null`: no cap).
    pub total_cap: Option<u64>,
    /// False: it takes no calls.
    pub active: bool,
    /// Calls holding a slot now: routed and neither released by their CDR nor past their
    /// lease (a lease past its end is released at the campaign's next decision).
    pub active_calls: u32,
    /// Calls ever routed to it by this campaign.
    pub total_calls: u64,
}

fn link_dto(l: CampaignLink) -> CampaignDestinationDto {
    let s = l.settings;
    CampaignDestinationDto {
        id: l.id,
        destination_id: s.destination_id,
        priority: s.priority,
        weight: s.weight,
        concurrency_cap: s.concurrency_cap,
        total_cap: s.total_cap,
        active: s.active,
        active_calls: l.active_calls,
        total_calls: l.total_calls,
    }
}

/// One element of `PUT /api/v1/campaigns/{id}/destinations`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignDestinationBody {
    /// A destination of the tenant, at most once per list.
    pub destination_id: uuid::Uuid,
    /// 0–1,000,000, lower first (`priority`). Default 0.
    pub priority: Option<u32>,
    /// 0–1,000,000, share of calls (`weighted`; 0 never chosen). Default 1.
    pub weight: Option<u32>,
    /// 0–1,000,000 calls up at once; absent or `null`: no cap.
    pub concurrency_cap: Option<u32>,
    /// Calls ever; absent or `null`: no cap.
    pub total_cap: Option<u64>,
    /// Default true.
    pub active: Option<bool>,
}

fn link_settings(i: usize, b: &CampaignDestinationBody) -> Result<LinkSettings, ApiError> {
    let check = |field: &str, v: Option<u32>| -> Result<(), ApiError> {
        match v {
            Some(v) if v > MAX_LINK_VALUE => Err(ApiError::invalid(
                &format!("[{i}].{field}"),
                format!("must be 0 to {MAX_LINK_VALUE}"),
            )),
            _ => Ok(()),
        }
    };
    check("priority", b.priority)?;
    check("weight", b.weight)?;
    check("concurrency_cap", b.concurrency_cap)?;
    if b.total_cap.is_some_and(|c| c > i64::MAX as u64) {
        return Err(ApiError::invalid(
            &format!("[{i}].total_cap"),
            "is too large",
        ));
    }
    Ok(LinkSettings {
        destination_id: b.destination_id,
        priority: b.priority.unwrap_or(0),
        weight: b.weight.unwrap_or(1),
        concurrency_cap: b.concurrency_cap,
        total_cap: b.total_cap,
        active: b.active.unwrap_or(true),
    })
}

/// A campaign's destinations in list order, with their counters.
#[utoipa::path(get, path = "/api/v1/campaigns/{id}/destinations", operation_id = "getCampaignDestinations", tag = "routing",
    params(("id" = String, Path,)),
    responses((status = 200, body = Vec<CampaignDestinationDto>), (status = 404, description = "No such campaign")),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn get_campaign_destinations(
    State(s): State<AppState>,
    auth: Authorized<perm::RoutingRead>,
    Path(id): Path<String>,
) -> Result<Json<Vec<CampaignDestinationDto>>, ApiError> {
    let id = KIND.id(&id)?;
    let links = s
        .store
        .campaign_links(auth.tenant_id, id)
        .await
        .map_err(|e| KIND.error(e))?;
    Ok(Json(links.into_iter().map(link_dto).collect()))
}

/// Replaces a campaign's destinations with this list (a JSON array, in routing order): a
/// destination that stays keeps its counters; one left out stops getting calls (calls up on
/// it go on, uncounted). Answers the new list.
#[utoipa::path(put, path = "/api/v1/campaigns/{id}/destinations", operation_id = "putCampaignDestinations", tag = "routing",
    params(("id" = String, Path,)),
    request_body = Vec<CampaignDestinationBody>,
    responses((status = 200, body = Vec<CampaignDestinationDto>), (status = 404, description = "No such campaign"),
        (status = 422, description = "Invalid field, e.g. `[2].destination_id` naming no destination of the tenant, or one named twice")),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn put_campaign_destinations(
    State(s): State<AppState>,
    auth: Authorized<perm::RoutingWrite>,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<Vec<CampaignDestinationBody>>,
) -> Result<Json<Vec<CampaignDestinationDto>>, ApiError> {
    let id = KIND.id(&id)?;
    if b.len() > MAX_LINKS {
        return Err(ApiError::invalid(
            "",
            format!("a campaign has at most {MAX_LINKS} destinations"),
        ));
    }
    let links = b
        .iter()
        .enumerate()
        .map(|(i, l)| link_settings(i, l))
        .collect::<Result<Vec<_>, _>>()?;
    let links = s
        .store
        .put_campaign_links(auth.tenant_id, id, &links, &auth.actor(), s.engine.now_ms())
        .await
        .map_err(|e| KIND.error(e))?;
    Ok(Json(links.into_iter().map(link_dto).collect()))
}
