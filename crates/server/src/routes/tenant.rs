//! `GET/PATCH /api/v1/tenant`: the caller's tenant and its timer clock.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use axum::http::HeaderMap;
use switchboard_core::Clock;
use switchboard_engine::{EngineError, Expect};

use crate::app::AppState;
use crate::auth::Auth;
use crate::conditional::{etag_header, IfMatch};
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

async fn load(s: &AppState, auth: &Auth) -> Result<(HeaderMap, TenantDto), ApiError> {
    let t = s.store.tenant(auth.tenant_id).await?;
    Ok((
        etag_header(t.version),
        TenantDto {
            id: t.id.uuid(),
            slug: t.slug,
            name: t.name,
            clock: t.clock.as_str().to_owned(),
        },
    ))
}

/// The caller's tenant.
#[utoipa::path(get, path = "/api/v1/tenant", operation_id = "getTenant", tag = "tenant",
    responses((status = 200, body = TenantDto, headers(("ETag" = String, description = "The settings' version, for If-Match"))),
        (status = 401, description = "Missing or invalid key")),
    security(("api_key" = [])))]
pub async fn get_tenant(
    State(s): State<AppState>,
    auth: Auth,
) -> Result<(HeaderMap, Json<TenantDto>), ApiError> {
    auth.require("tenant:read")?;
    let (h, t) = load(&s, &auth).await?;
    Ok((h, Json(t)))
}

/// Changes the tenant's settings (`clock`), through the engine: stored and in force together.
/// With `If-Match: "<version>"` the change applies only to that version (412 otherwise).
#[utoipa::path(patch, path = "/api/v1/tenant", operation_id = "patchTenant", tag = "tenant",
    params(("If-Match" = Option<String>, Header, description = "ETag of the version to change")),
    request_body = TenantPatch,
    responses((status = 200, body = TenantDto, headers(("ETag" = String, description = "The new version"))),
        (status = 412, description = "If-Match does not match"), (status = 422, description = "Invalid field"),
        (status = 503, description = "Not stored; retry (see Retry-After)")),
    security(("api_key" = [])))]
pub async fn patch_tenant(
    State(s): State<AppState>,
    auth: Auth,
    if_match: IfMatch,
    ApiJson(p): ApiJson<TenantPatch>,
) -> Result<(HeaderMap, Json<TenantDto>), ApiError> {
    auth.require("tenant:write")?;
    let clock = p
        .clock
        .map(|c| {
            Clock::parse(&c)
                .ok_or_else(|| ApiError::invalid("clock", "must be `live` or `event_time`"))
        })
        .transpose()?;
    // Compare-and-set against the version just read; without `If-Match` a concurrent change
    // is not the client's concern (never a 412): read again and re-apply, as a queue PATCH does.
    loop {
        let (_, version) = s.engine.tenant_settings(auth.tenant_id).await?;
        if_match.check(version)?;
        let Some(clock) = clock else { break };
        match s
            .engine
            .set_clock(auth.tenant_id, clock, Expect::Version(version))
            .await
        {
            Err(EngineError::VersionMismatch { .. }) if !if_match.is_conditional() => continue,
            r => {
                r?;
                break;
            }
        }
    }
    let (h, t) = load(&s, &auth).await?;
    Ok((h, Json(t)))
}
