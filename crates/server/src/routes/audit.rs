//! `GET /api/v1/audit`: administrative changes (tenants, users, keys, queues, tenant
//! settings), newest first. Tenant admins see their tenant; platform admins every tenant.

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use switchboard_core::{format_rfc3339, TenantId};
use switchboard_store::{AuditFilter, AuditRecord};

use crate::app::AppState;
use crate::auth::{perm, Authorized};
use crate::error::ApiError;
use crate::extract::Params;
use crate::routes::Page;

/// Who made a change.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditActor {
    /// `user`, `api_key` or `system` (bootstrap, command line).
    pub kind: &'static str,
    /// The user's or key's id.
    pub id: Option<uuid::Uuid>,
    /// The user's e-mail or the key's name at the time.
    pub name: String,
}

/// One administrative change.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntry {
    /// Entry id (UUIDv7).
    pub id: uuid::Uuid,
    /// The tenant of the changed resource.
    pub tenant_id: uuid::Uuid,
    /// When (RFC 3339).
    pub at: String,
    /// Who.
    pub actor: AuditActor,
    /// `<resource>.<verb>`: `tenant.create`, `user.deactivate`, `api_key.revoke`, `queue.update`, …
    pub action: String,
    /// `tenant`, `user`, `api_key`, `queue`.
    pub resource_type: String,
    /// The resource's id.
    pub resource_id: String,
    /// The resource before (absent for a creation); never a secret.
    pub before: Option<serde_json::Value>,
    /// The resource after.
    pub after: Option<serde_json::Value>,
}

fn dto(r: AuditRecord) -> AuditEntry {
    AuditEntry {
        id: r.id,
        tenant_id: r.tenant_id.0,
        at: format_rfc3339(r.at),
        actor: AuditActor {
            kind: r.actor.kind.as_str(),
            id: r.actor.id,
            name: r.actor.name,
        },
        action: r.action,
        resource_type: r.resource_type,
        resource_id: r.resource_id,
        before: r.before,
        after: r.after,
    }
}

/// The audit log, newest first. Filters: `actor` (a user's or key's id, e-mail or name),
/// `action` (`user.create`, or `user.` for every action on users), `from`/`to` (RFC 3339, `to`
/// exclusive), `tenant_id` (platform admins); `limit` 1–500 (default 50), `cursor`.
#[utoipa::path(get, path = "/api/v1/audit", operation_id = "listAudit", tag = "audit",
    params(("actor" = Option<String>, Query,), ("action" = Option<String>, Query,), ("from" = Option<String>, Query,),
        ("to" = Option<String>, Query,), ("tenant_id" = Option<String>, Query,), ("limit" = Option<u64>, Query,),
        ("cursor" = Option<String>, Query,)),
    responses((status = 200, body = Page<AuditEntry>), (status = 400, description = "Bad parameter")),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn list_audit(
    State(s): State<AppState>,
    auth: Authorized<perm::AuditRead>,
    p: Params,
) -> Result<Json<Page<AuditEntry>>, ApiError> {
    let text = |k: &str| -> Result<Option<String>, ApiError> {
        match p.get(k) {
            Some(v) if v.contains('\0') || v.chars().count() > 320 => Err(ApiError::bad_param(
                k,
                "must be at most 320 characters, without U+0000",
            )),
            v => Ok(v.map(str::to_owned)),
        }
    };
    let f = AuditFilter {
        tenant_id: auth.tenant_filter(p.uuid("tenant_id")?.map(TenantId))?,
        actor: text("actor")?,
        action: text("action")?,
        from: p.time("from")?,
        to: p.time("to")?,
        before_id: p.uuid_cursor()?,
        limit: p.limit()?,
    };
    let rows = s.store.audit(&f).await?;
    Ok(Json(Page::of(rows, f.limit, |r| r.id.to_string(), dto)))
}
