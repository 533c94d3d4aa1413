//! Tenants. `GET/PATCH /api/v1/tenant`: the caller's own tenant. `POST/GET /api/v1/tenants`,
//! `GET/PATCH/DELETE /api/v1/tenants/{id}`: every tenant, for platform admins
//! (`tenants:manage`). Settings change through the engine (stored and in force together, with
//! their audit entry); DELETE deactivates (the tenant's credentials stop working on the next
//! request; its data stays; `PATCH {"active": true}` reactivates it).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use switchboard_core::{format_rfc3339, Clock, TenantId};
use switchboard_engine::{EngineError, Expect};
use switchboard_store::{NewTenant, StoreError, Tenant, TenantSettings};

use crate::app::AppState;
use crate::auth::{perm, Authorized, Principal};
use crate::conditional::{etag_header, IfMatch};
use crate::error::ApiError;
use crate::extract::{ApiJson, Params};
use crate::routes::{validate, Page};

/// A tenant.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantDto {
    /// Switchboard's tenant id (UUIDv7).
    pub id: uuid::Uuid,
    /// Unique short name (`default` for the tenant made at bootstrap).
    pub slug: String,
    /// Display name.
    pub name: String,
    /// `live` (wall clock, default) or `event_time` (the tenant's watermark: the largest event
    /// timestamp seen).
    pub clock: String,
    /// IANA time zone for day boundaries in reports (`UTC` by default).
    pub time_zone: String,
    /// ISO 3166-1 alpha-2 country for national phone numbers, if set.
    pub default_region: Option<String>,
    /// False once deactivated (its credentials stop working).
    pub active: bool,
    /// Creation time (RFC 3339).
    pub created_at: String,
}

fn dto(t: Tenant) -> TenantDto {
    TenantDto {
        id: t.id.uuid(),
        slug: t.slug,
        name: t.settings.name,
        clock: t.settings.clock.as_str().to_owned(),
        time_zone: t.settings.time_zone,
        default_region: t.settings.default_region,
        active: t.settings.active,
        created_at: format_rfc3339(t.created_at),
    }
}

/// `null` and absent differ: `Some(None)` clears, `None` leaves as is.
pub(crate) fn nullable<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// `PATCH` body: the fields to change.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantPatch {
    /// Display name, 1–200 characters.
    pub name: Option<String>,
    /// `live` or `event_time`.
    pub clock: Option<String>,
    /// IANA time zone.
    pub time_zone: Option<String>,
    /// ISO 3166-1 alpha-2 country; `null` clears it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub default_region: Option<Option<String>>,
    /// Reactivate (`true`) or deactivate (`false`); only on `/api/v1/tenants/{id}`.
    pub active: Option<bool>,
}

/// `POST /api/v1/tenants` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantCreate {
    /// Unique short name: 1–63 of `a-z 0-9 -`.
    pub slug: String,
    /// Display name, 1–200 characters.
    pub name: String,
    /// IANA time zone (default `UTC`).
    pub time_zone: Option<String>,
    /// ISO 3166-1 alpha-2 country for national phone numbers.
    pub default_region: Option<String>,
    /// `live` (default) or `event_time`.
    pub clock: Option<String>,
}

fn clock(v: &str) -> Result<Clock, ApiError> {
    Clock::parse(v).ok_or_else(|| ApiError::invalid("clock", "must be `live` or `event_time`"))
}

/// The checked change of a PATCH, as a function of the current settings.
fn checked_change(p: TenantPatch) -> Result<impl FnOnce(&mut TenantSettings) + Send, ApiError> {
    if let Some(n) = &p.name {
        validate::name("name", n, 200)?;
    }
    if let Some(tz) = &p.time_zone {
        validate::time_zone(tz)?;
    }
    let region = match p.default_region {
        Some(Some(r)) => Some(Some(validate::region(&r)?)),
        other => other,
    };
    let clock = p.clock.as_deref().map(clock).transpose()?;
    Ok(move |s: &mut TenantSettings| {
        if let Some(n) = p.name {
            s.name = n;
        }
        if let Some(c) = clock {
            s.clock = c;
        }
        if let Some(tz) = p.time_zone {
            s.time_zone = tz;
        }
        if let Some(r) = region {
            s.default_region = r;
        }
        if let Some(a) = p.active {
            s.active = a;
        }
    })
}

/// Applies a PATCH through the engine: compare-and-set against `If-Match` when given; without
/// it a concurrent change is not the client's concern (never a 412): read again and re-apply.
async fn apply(
    s: &AppState,
    who: &Principal,
    id: TenantId,
    if_match: &IfMatch,
    p: TenantPatch,
) -> Result<(), ApiError> {
    let deactivate = p.active == Some(false);
    if deactivate && id == who.tenant_id {
        return Err(ApiError::conflict(
            "you cannot deactivate the tenant your own credential belongs to",
        )
        .with_field("active"));
    }
    if deactivate && s.store.has_active_platform_admin(id).await? {
        return Err(ApiError::conflict(
            "this tenant holds an active platform admin: deactivating it could lock every \
             platform admin out; move or deactivate that user first",
        )
        .with_field("active"));
    }
    let active = p.active;
    let change = std::sync::Arc::new(std::sync::Mutex::new(Some(checked_change(p)?)));
    loop {
        let (_, version) = s.engine.tenant_settings(id).await.map_err(not_found)?;
        if_match.check(version)?;
        let c = change.clone();
        let r = s
            .engine
            .update_tenant(
                id,
                move |st| {
                    if let Some(f) = c.lock().expect("patch").take() {
                        f(st)
                    }
                },
                Expect::Version(version),
                &who.actor(),
            )
            .await;
        match r {
            Err(EngineError::VersionMismatch { .. }) if !if_match.is_conditional() => continue,
            r => {
                r.map_err(not_found)?;
                break;
            }
        }
    }
    if let Some(a) = active {
        s.auth.directory.tenant_active(id, a);
    }
    Ok(())
}

fn not_found(e: EngineError) -> ApiError {
    match e {
        EngineError::UnknownTenant => ApiError::not_found("no such tenant"),
        e => e.into(),
    }
}

async fn load(s: &AppState, id: TenantId) -> Result<(HeaderMap, Json<TenantDto>), ApiError> {
    let t = s.store.tenant(id).await.map_err(|e| match e {
        StoreError::NotFound => ApiError::not_found("no such tenant"),
        e => e.into(),
    })?;
    Ok((etag_header(t.version), Json(dto(t))))
}

/// The caller's tenant.
#[utoipa::path(get, path = "/api/v1/tenant", operation_id = "getTenant", tag = "tenant",
    responses((status = 200, body = TenantDto, headers(("ETag" = String, description = "The settings' version, for If-Match"))),
        (status = 401, description = "Missing or invalid credential")),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn get_tenant(
    State(s): State<AppState>,
    auth: Authorized<perm::TenantRead>,
) -> Result<(HeaderMap, Json<TenantDto>), ApiError> {
    load(&s, auth.tenant_id).await
}

/// Changes the caller's tenant's settings (`name`, `clock`, `time_zone`, `default_region`),
/// through the engine: stored and in force together. With `If-Match: "<version>"` the change
/// applies only to that version (412 otherwise). `active` is for platform admins, on
/// `/api/v1/tenants/{id}`.
#[utoipa::path(patch, path = "/api/v1/tenant", operation_id = "patchTenant", tag = "tenant",
    params(("If-Match" = Option<String>, Header, description = "ETag of the version to change")),
    request_body = TenantPatch,
    responses((status = 200, body = TenantDto, headers(("ETag" = String, description = "The new version"))),
        (status = 412, description = "If-Match does not match"), (status = 422, description = "Invalid field"),
        (status = 503, description = "Not stored; retry (see Retry-After)")),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn patch_tenant(
    State(s): State<AppState>,
    auth: Authorized<perm::TenantWrite>,
    if_match: IfMatch,
    ApiJson(p): ApiJson<TenantPatch>,
) -> Result<(HeaderMap, Json<TenantDto>), ApiError> {
    if p.active.is_some() {
        return Err(ApiError::invalid(
            "active",
            "a tenant is (de)activated by a platform admin, on /api/v1/tenants/{id}",
        ));
    }
    apply(&s, &auth, auth.tenant_id, &if_match, p).await?;
    load(&s, auth.tenant_id).await
}

/// Creates a tenant (platform admins). It works at once: events, stream, queues.
#[utoipa::path(post, path = "/api/v1/tenants", operation_id = "createTenant", tag = "tenants",
    request_body = TenantCreate,
    responses((status = 201, body = TenantDto), (status = 409, description = "The slug is taken"),
        (status = 422, description = "Invalid field")),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn create_tenant(
    State(s): State<AppState>,
    auth: Authorized<perm::TenantsManage>,
    ApiJson(b): ApiJson<TenantCreate>,
) -> Result<(StatusCode, HeaderMap, Json<TenantDto>), ApiError> {
    validate::slug(&b.slug)?;
    validate::name("name", &b.name, 200)?;
    let mut t = NewTenant::new(&b.slug, &b.name);
    if let Some(tz) = b.time_zone {
        validate::time_zone(&tz)?;
        t.settings.time_zone = tz;
    }
    if let Some(r) = b.default_region {
        t.settings.default_region = Some(validate::region(&r)?);
    }
    if let Some(c) = b.clock {
        t.settings.clock = clock(&c)?;
    }
    let t = s
        .store
        .create_tenant(&t, &auth.actor(), s.engine.now_ms())
        .await
        .map_err(|e| ApiError::from(e).with_field_if_conflict("slug"))?;
    Ok((StatusCode::CREATED, etag_header(t.version), Json(dto(t))))
}

/// Lists tenants in creation order (platform admins). `active` filters; `limit` 1–500
/// (default 50), `cursor` from the previous page.
#[utoipa::path(get, path = "/api/v1/tenants", operation_id = "listTenants", tag = "tenants",
    params(("active" = Option<bool>, Query,), ("limit" = Option<u64>, Query,), ("cursor" = Option<String>, Query,)),
    responses((status = 200, body = Page<TenantDto>), (status = 400, description = "Bad parameter")),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn list_tenants(
    State(s): State<AppState>,
    _auth: Authorized<perm::TenantsManage>,
    p: Params,
) -> Result<Json<Page<TenantDto>>, ApiError> {
    let limit = p.limit()?;
    let after = p.uuid_cursor()?;
    let active = p.bool("active")?;
    let rows = s.store.tenants_page(after, active, limit).await?;
    Ok(Json(Page::of(rows, limit, |t| t.id.0.to_string(), dto)))
}

fn tenant_id(id: &str) -> Result<TenantId, ApiError> {
    id.parse::<uuid::Uuid>()
        .map(TenantId)
        .map_err(|_| ApiError::not_found("no such tenant"))
}

/// One tenant (platform admins).
#[utoipa::path(get, path = "/api/v1/tenants/{id}", operation_id = "getTenantById", tag = "tenants",
    params(("id" = String, Path,)),
    responses((status = 200, body = TenantDto), (status = 404, description = "No such tenant")),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn get_tenant_by_id(
    State(s): State<AppState>,
    _auth: Authorized<perm::TenantsManage>,
    Path(id): Path<String>,
) -> Result<(HeaderMap, Json<TenantDto>), ApiError> {
    load(&s, tenant_id(&id)?).await
}

/// Changes a tenant (platform admins); `active: true` reactivates a deactivated one.
#[utoipa::path(patch, path = "/api/v1/tenants/{id}", operation_id = "patchTenantById", tag = "tenants",
    params(("id" = String, Path,), ("If-Match" = Option<String>, Header, description = "ETag of the version to change")),
    request_body = TenantPatch,
    responses((status = 200, body = TenantDto), (status = 404, description = "No such tenant"),
        (status = 409, description = "Deactivating one's own tenant"),
        (status = 412, description = "If-Match does not match"), (status = 422, description = "Invalid field")),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn patch_tenant_by_id(
    State(s): State<AppState>,
    auth: Authorized<perm::TenantsManage>,
    Path(id): Path<String>,
    if_match: IfMatch,
    ApiJson(p): ApiJson<TenantPatch>,
) -> Result<(HeaderMap, Json<TenantDto>), ApiError> {
    let id = tenant_id(&id)?;
    apply(&s, &auth, id, &if_match, p).await?;
    load(&s, id).await
}

/// Deactivates a tenant (platform admins): its keys and users stop working on the next
/// request, its data stays, `PATCH {"active": true}` reactivates it. 204.
#[utoipa::path(delete, path = "/api/v1/tenants/{id}", operation_id = "deactivateTenant", tag = "tenants",
    params(("id" = String, Path,)),
    responses((status = 204, description = "Deactivated"), (status = 404, description = "No such tenant"),
        (status = 409, description = "Deactivating one's own tenant")),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn deactivate_tenant(
    State(s): State<AppState>,
    auth: Authorized<perm::TenantsManage>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = tenant_id(&id)?;
    let p = TenantPatch {
        active: Some(false),
        ..Default::default()
    };
    apply(&s, &auth, id, &IfMatch::Absent, p).await?;
    Ok(StatusCode::NO_CONTENT)
}
