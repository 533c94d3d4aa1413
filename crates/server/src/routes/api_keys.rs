//! API keys: `POST/GET /api/v1/api-keys`, `GET/DELETE /api/v1/api-keys/{id}`. The secret is
//! answered once, at creation; only its SHA-256 and a short prefix are stored. Revocation and
//! expiry take effect on the very next request. A key never holds a scope its creator lacks.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use switchboard_core::{format_rfc3339, parse_rfc3339_checked, Scope, ScopeSet, TenantId};
use switchboard_store::{ApiKeyFilter, ApiKeyInfo, NewApiKey, RateLimit, StoreError};

use crate::app::AppState;
use crate::auth::{generate_key, perm, Authorized};
use crate::error::ApiError;
use crate::extract::{ApiJson, Params};
use crate::routes::{validate, Page};

/// Largest `rate_limit.per_second` and `burst`.
pub const MAX_RATE: u32 = 1_000_000;

/// A per-key request rate (token bucket): `per_second` sustained, `burst` at once.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimitDto {
    /// Requests per second, 1–1,000,000.
    pub per_second: u32,
    /// Requests at once, 1–1,000,000 (default: `per_second`).
    pub burst: Option<u32>,
}

/// An API key (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyDto {
    /// Key id (UUIDv7).
    pub id: uuid::Uuid,
    /// The tenant it acts for.
    pub tenant_id: uuid::Uuid,
    /// A name to recognise it by.
    pub name: String,
    /// The key's first characters, to recognise it.
    pub prefix: String,
    /// Granted scopes.
    pub scopes: Vec<Scope>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339, if it expires.
    pub expires_at: Option<String>,
    /// Request rate limit, if any.
    pub rate_limit: Option<RateLimitDto>,
    /// Last use (RFC 3339; recorded every few seconds, so it may lag).
    pub last_used_at: Option<String>,
    /// RFC 3339, once revoked.
    pub revoked_at: Option<String>,
}

fn dto(k: ApiKeyInfo) -> ApiKeyDto {
    ApiKeyDto {
        id: k.id,
        tenant_id: k.tenant_id.0,
        name: k.name,
        prefix: k.prefix,
        scopes: k.scopes.iter().collect(),
        created_at: format_rfc3339(k.created_at),
        expires_at: k.expires_at.map(format_rfc3339),
        rate_limit: k.rate_limit.map(|r| RateLimitDto {
            per_second: r.per_s,
            burst: Some(r.burst),
        }),
        last_used_at: k.last_used_at.map(format_rfc3339),
        revoked_at: k.revoked_at.map(format_rfc3339),
    }
}

/// A key just created: its secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyCreated {
    /// The secret: send it as `X-API-Key`. It cannot be shown again.
    pub key: String,
    /// The key's stored facts.
    #[serde(flatten)]
    pub info: ApiKeyDto,
}

/// `POST /api/v1/api-keys` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyCreate {
    /// A name to recognise the key by, 1–200 characters.
    pub name: String,
    /// Scopes (`events:write`, …), or `["*"]` for every tenant scope; each must be one the
    /// caller holds.
    pub scopes: Vec<String>,
    /// Expiry (RFC 3339, in the future).
    pub expires_at: Option<String>,
    /// Request rate limit.
    pub rate_limit: Option<RateLimitDto>,
    /// The tenant the key acts for (platform admins; default: the caller's).
    pub tenant_id: Option<uuid::Uuid>,
}

/// Creates a key and answers its secret, once.
#[utoipa::path(post, path = "/api/v1/api-keys", operation_id = "createApiKey", tag = "api-keys",
    request_body = ApiKeyCreate,
    responses((status = 201, body = ApiKeyCreated), (status = 403, description = "A scope the caller lacks"),
        (status = 404, description = "No such tenant"), (status = 422, description = "Invalid field")),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn create_api_key(
    State(s): State<AppState>,
    auth: Authorized<perm::KeysWrite>,
    ApiJson(b): ApiJson<ApiKeyCreate>,
) -> Result<(StatusCode, Json<ApiKeyCreated>), ApiError> {
    let tenant = auth.target_tenant(b.tenant_id.map(TenantId))?;
    validate::name("name", &b.name, 200)?;
    if b.scopes.is_empty() {
        return Err(ApiError::invalid(
            "scopes",
            "give at least one scope (or `*`)",
        ));
    }
    let scopes = ScopeSet::parse(b.scopes.iter().map(String::as_str))
        .map_err(|e| ApiError::invalid("scopes", format!("{e}; see docs/security.md")))?;
    let allowed = auth.scopes.intersect(ScopeSet::TENANT);
    if !allowed.covers(scopes) {
        let missing: Vec<&str> = scopes
            .iter()
            .filter(|s| !allowed.contains(*s))
            .map(Scope::as_str)
            .collect();
        return Err(ApiError::forbidden_because(format!(
            "a key cannot hold scopes its creator lacks: {}",
            missing.join(", ")
        ))
        .with_field("scopes"));
    }
    let now = s.engine.now_ms();
    let expires_at = match &b.expires_at {
        None => None,
        Some(v) => {
            let t = parse_rfc3339_checked(v).map_err(|e| ApiError::invalid("expires_at", e))?;
            if t <= now {
                return Err(ApiError::invalid("expires_at", "must be in the future"));
            }
            Some(t)
        }
    };
    let rate_limit = match b.rate_limit {
        None => None,
        Some(r) => {
            let burst = r.burst.unwrap_or(r.per_second);
            for (f, v) in [
                ("rate_limit.per_second", r.per_second),
                ("rate_limit.burst", burst),
            ] {
                if !(1..=MAX_RATE).contains(&v) {
                    return Err(ApiError::invalid(f, format!("must be 1 to {MAX_RATE}")));
                }
            }
            Some(RateLimit {
                per_s: r.per_second,
                burst,
            })
        }
    };
    if tenant != auth.tenant_id {
        s.store.tenant(tenant).await.map_err(|e| match e {
            StoreError::NotFound => ApiError::not_found("no such tenant").with_field("tenant_id"),
            e => e.into(),
        })?;
    }
    let key = generate_key();
    let k = NewApiKey {
        name: b.name,
        key: key.clone(),
        scopes,
        expires_at,
        rate_limit,
    };
    let info = s
        .store
        .create_api_key(tenant, &k, &auth.actor(), now)
        .await?;
    s.auth.directory.key_created(&key, info.clone());
    Ok((
        StatusCode::CREATED,
        Json(ApiKeyCreated {
            key,
            info: dto(info),
        }),
    ))
}

/// Lists keys in creation order (never their secrets). `include_revoked`; `tenant_id` for
/// platform admins (they see every tenant without it); `limit` 1–500, `cursor`.
#[utoipa::path(get, path = "/api/v1/api-keys", operation_id = "listApiKeys", tag = "api-keys",
    params(("include_revoked" = Option<bool>, Query,), ("tenant_id" = Option<String>, Query,),
        ("limit" = Option<u64>, Query,), ("cursor" = Option<String>, Query,)),
    responses((status = 200, body = Page<ApiKeyDto>), (status = 400, description = "Bad parameter")),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn list_api_keys(
    State(s): State<AppState>,
    auth: Authorized<perm::KeysRead>,
    p: Params,
) -> Result<Json<Page<ApiKeyDto>>, ApiError> {
    let f = ApiKeyFilter {
        tenant_id: auth.tenant_filter(p.uuid("tenant_id")?.map(TenantId))?,
        include_revoked: p.bool("include_revoked")?.unwrap_or(false),
        after: p.uuid_cursor()?,
        limit: p.limit()?,
    };
    let rows = s.store.api_keys(&f).await?;
    Ok(Json(Page::of(rows, f.limit, |k| k.id.to_string(), dto)))
}

fn key_id(id: &str) -> Result<uuid::Uuid, ApiError> {
    id.parse()
        .map_err(|_| ApiError::not_found("no such API key"))
}

fn not_found(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::not_found("no such API key"),
        e => e.into(),
    }
}

/// One key (never its secret).
#[utoipa::path(get, path = "/api/v1/api-keys/{id}", operation_id = "getApiKey", tag = "api-keys",
    params(("id" = String, Path,)),
    responses((status = 200, body = ApiKeyDto), (status = 404, description = "No such key")),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn get_api_key(
    State(s): State<AppState>,
    auth: Authorized<perm::KeysRead>,
    Path(id): Path<String>,
) -> Result<Json<ApiKeyDto>, ApiError> {
    let k = s
        .store
        .api_key(auth.tenant_filter(None)?, key_id(&id)?)
        .await
        .map_err(not_found)?;
    Ok(Json(dto(k)))
}

/// Revokes a key: its next request is refused. 204 (also when already revoked).
#[utoipa::path(delete, path = "/api/v1/api-keys/{id}", operation_id = "revokeApiKey", tag = "api-keys",
    params(("id" = String, Path,)),
    responses((status = 204, description = "Revoked"), (status = 404, description = "No such key")),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn revoke_api_key(
    State(s): State<AppState>,
    auth: Authorized<perm::KeysWrite>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let k = s
        .store
        .revoke_api_key(
            auth.tenant_filter(None)?,
            key_id(&id)?,
            &auth.actor(),
            s.engine.now_ms(),
        )
        .await
        .map_err(not_found)?;
    s.auth.directory.key_revoked(k.id);
    Ok(StatusCode::NO_CONTENT)
}
