//! What the administrative writes of the routing model share: locking a tenant's row before a
//! read-modify-write, the compare-and-set on its version, and the audit entry written in the
//! same transaction.

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde_json::Value;
use uuid::Uuid;

use switchboard_core::TenantId;

use crate::audit::{insert_audit, Actor, AuditRecord};
use crate::StoreError;

/// The columns that identify a tenant's versioned row.
pub(crate) struct Keys<C> {
    /// The row's id.
    pub id: C,
    /// Its tenant.
    pub tenant: C,
    /// The column a no-op write targets (the version, or any column).
    pub touch: C,
}

/// Locks the row `id` of `tenant` with a write that changes nothing, first in its transaction:
/// SQLite then holds the write lock from the start (a deferred transaction that reads first
/// cannot upgrade once another writer has committed), and PostgreSQL holds the row, so a
/// concurrent change waits instead of being lost.
///
/// Errors: `NotFound` when the tenant has no such row.
pub(crate) async fn lock<E: EntityTrait, C: ConnectionTrait>(
    db: &C,
    keys: Keys<E::Column>,
    tenant: TenantId,
    id: Uuid,
) -> Result<(), StoreError> {
    let n = E::update_many()
        .col_expr(keys.touch, Expr::col(keys.touch).into())
        .filter(keys.id.eq(id))
        .filter(keys.tenant.eq(tenant.0))
        .exec(db)
        .await?
        .rows_affected;
    if n == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

/// Errors: `VersionMismatch` unless `current` is `expect`.
pub(crate) fn check_version(expect: i64, current: i64) -> Result<(), StoreError> {
    if expect == current {
        Ok(())
    } else {
        Err(StoreError::VersionMismatch { current })
    }
}

/// One audit entry of a change to resource `(type, id)`, on `db` (the change's transaction).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn audit<C: ConnectionTrait>(
    db: &C,
    tenant: TenantId,
    actor: &Actor,
    action: &str,
    resource: (&str, Uuid),
    before: Option<Value>,
    after: Option<Value>,
    now: i64,
) -> Result<(), StoreError> {
    let id = resource.1.to_string();
    let entry = AuditRecord::new(tenant, actor, action, (resource.0, &id), before, after, now);
    insert_audit(db, &[entry]).await
}

/// The audit action of an update: `<type>.activate` / `.deactivate` when the `active` flag
/// turned, else `<type>.update`.
pub(crate) fn update_action(kind: &str, before_active: bool, after_active: bool) -> String {
    match (before_active, after_active) {
        (true, false) => format!("{kind}.deactivate"),
        (false, true) => format!("{kind}.activate"),
        _ => format!("{kind}.update"),
    }
}
