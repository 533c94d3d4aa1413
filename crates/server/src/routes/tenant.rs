//! `GET/PATCH /api/v1/tenant`: the caller's tenant and its timer clock.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use switchboard_core::time::now_ms;
use switchboard_core::Clock;

use crate::app::AppState;
use crate::auth::Auth;
use crate::error::ApiError;
use crate::extract::ApiJson;

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
}

/// `PATCH /api/v1/tenant` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantPatch {
    /// `live` or `event_time`.
    pub clock: Option<String>,
}

async fn load(s: &AppState, auth: &Auth) -> Result<TenantDto, ApiError> {
    let t = s.store.tenant(auth.tenant_id).await?;
    Ok(TenantDto {
        id: t.id,
        slug: t.slug,
        name: t.name,
        clock: t.clock.as_str().to_owned(),
    })
}

/// The caller's tenant.
#[utoipa::path(get, path = "/api/v1/tenant", operation_id = "getTenant", tag = "tenant",
    responses((status = 200, body = TenantDto), (status = 401, description = "Missing or invalid key")),
    security(("api_key" = [])))]
pub async fn get_tenant(
    State(s): State<AppState>,
    auth: Auth,
) -> Result<Json<TenantDto>, ApiError> {
    auth.require("tenant:read")?;
    Ok(Json(load(&s, &auth).await?))
}

/// Changes the tenant's settings (`clock`).
#[utoipa::path(patch, path = "/api/v1/tenant", operation_id = "patchTenant", tag = "tenant",
    request_body = TenantPatch,
    responses((status = 200, body = TenantDto), (status = 422, description = "Invalid field")),
    security(("api_key" = [])))]
pub async fn patch_tenant(
    State(s): State<AppState>,
    auth: Auth,
    ApiJson(p): ApiJson<TenantPatch>,
) -> Result<Json<TenantDto>, ApiError> {
    auth.require("tenant:write")?;
    if let Some(c) = p.clock {
        let clock = Clock::parse(&c)
            .ok_or_else(|| ApiError::invalid("clock", "must be `live` or `event_time`"))?;
        s.store
            .set_tenant_clock(auth.tenant_id, clock, now_ms())
            .await?;
        s.engine.set_clock(auth.tenant_id, clock)?;
    }
    Ok(Json(load(&s, &auth).await?))
}
