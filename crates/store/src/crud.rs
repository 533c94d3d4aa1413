//! The routing model's administrative resources (DIDs, destinations, campaigns) as one kind: a
//! versioned row of a tenant ([`Versioned`]) that the [`Store`] creates, reads, lists,
//! changes (compare-and-set on the version) and deletes, each change with its audit entry in
//! the same transaction. Each resource's settings type says how it maps to its row
//! ([`Resource`]): `store.update_resource(tenant, id, &settings, version, actor, now)` works
//! for a `DestinationSettings` as for a `CampaignSettings`.

use std::future::Future;

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelBehavior, ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait,
    IntoActiveModel, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};
use serde_json::Value;
use uuid::Uuid;

use switchboard_core::TenantId;

use crate::audit::{insert_audit, Actor, AuditRecord};
use crate::{map_insert_err, Store, StoreError};

/// A tenant's resource at one version: what a client set (`settings`) and what the store
/// keeps about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned<S> {
    /// Id (UUIDv7).
    pub id: Uuid,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// What a client sets.
    pub settings: S,
    /// Epoch ms.
    pub created_at: i64,
    /// Epoch ms.
    pub updated_at: i64,
    /// Bumped on every change of the settings (the `ETag`).
    pub version: i64,
}

/// The columns that identify a tenant's versioned row.
#[derive(Debug, Clone, Copy)]
pub struct Keys<C> {
    /// The row's id.
    pub id: C,
    /// Its tenant.
    pub tenant: C,
    /// The version, which a no-op write targets to lock the row.
    pub version: C,
}

/// A resource's column type.
pub type Col<S> = <<S as Resource>::Entity as EntityTrait>::Column;
/// A resource's row type.
pub type Model<S> = <<S as Resource>::Entity as EntityTrait>::Model;

mod sealed {
    /// Only this crate's settings types are resources.
    pub trait Sealed {}
    impl Sealed for crate::DestinationSettings {}
    impl Sealed for crate::PhoneNumberSettings {}
    impl Sealed for crate::CampaignSettings {}
}

/// The settings of a versioned resource (`PhoneNumberSettings`, `DestinationSettings`,
/// `CampaignSettings`), and how they are stored. Implemented in this crate only.
pub trait Resource: sealed::Sealed + Clone + PartialEq + Send + Sync + 'static {
    /// Its table.
    type Entity: EntityTrait<Model = Self::Row>;
    /// Its row as read.
    type Row: IntoActiveModel<Self::Active> + Send + Sync;
    /// Its row to write.
    type Active: ActiveModelTrait<Entity = Self::Entity> + ActiveModelBehavior + Send + 'static;
    /// The audit log's resource type (`phone_number`) and the prefix of its actions.
    const KIND: &'static str;
    /// The conflict a unique index of the table reports.
    const TAKEN: &'static str;
    /// Its identifying columns.
    fn keys() -> Keys<Col<Self>>;
    /// The resource of a row. Errors: a corrupt row.
    fn from_model(m: Model<Self>) -> Result<Versioned<Self>, StoreError>;
    /// The row of a resource, every column set.
    fn row(v: &Versioned<Self>) -> Self::Active;
    /// Its `active` flag (for `.activate` / `.deactivate` audit actions).
    fn active(&self) -> bool;
    /// The resource as the audit log shows it.
    fn audit_json(v: &Versioned<Self>) -> Value;
    /// Checks what the settings refer to, in the change's transaction. Errors: `Invalid`.
    fn check<C: ConnectionTrait>(
        _db: &C,
        _tenant: TenantId,
        _s: &Self,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        async { Ok(()) }
    }
    /// Runs before a delete, in its transaction; answers the audit entry's `before`.
    /// Errors: `Conflict` while something refers to the resource.
    fn before_delete<C: ConnectionTrait>(
        _db: &C,
        v: &Versioned<Self>,
    ) -> impl Future<Output = Result<Value, StoreError>> + Send {
        let before = Self::audit_json(v);
        async move { Ok(before) }
    }
}

/// Locks the row `id` of `tenant` with a write that changes nothing, first in its
/// transaction: SQLite then holds the write lock from the start (a deferred transaction that
/// reads first cannot upgrade once another writer has committed), and PostgreSQL holds the
/// row, so a concurrent change waits instead of being lost.
///
/// Errors: `NotFound` when the tenant has no such row.
pub(crate) async fn lock<S: Resource, C: ConnectionTrait>(
    db: &C,
    tenant: TenantId,
    id: Uuid,
) -> Result<(), StoreError> {
    let k = S::keys();
    let n = S::Entity::update_many()
        .col_expr(k.version, Expr::col(k.version).into())
        .filter(k.id.eq(id))
        .filter(k.tenant.eq(tenant.0))
        .exec(db)
        .await?
        .rows_affected;
    if n == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

/// The resource `id` of `tenant`. Errors: `NotFound`.
pub(crate) async fn find<S: Resource, C: ConnectionTrait>(
    db: &C,
    tenant: TenantId,
    id: Uuid,
) -> Result<Versioned<S>, StoreError> {
    let k = S::keys();
    let m = S::Entity::find()
        .filter(k.id.eq(id))
        .filter(k.tenant.eq(tenant.0))
        .one(db)
        .await?
        .ok_or(StoreError::NotFound)?;
    S::from_model(m)
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

impl Store {
    /// The resource `id` of `tenant`. Errors: `NotFound`.
    pub async fn resource<S: Resource>(
        &self,
        tenant: TenantId,
        id: Uuid,
    ) -> Result<Versioned<S>, StoreError> {
        find(&self.db, tenant, id).await
    }

    /// The tenant's resources in id (creation) order, after `after`, at most `limit`.
    pub async fn resources<S: Resource>(
        &self,
        tenant: TenantId,
        after: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<Versioned<S>>, StoreError> {
        let k = S::keys();
        let mut q = S::Entity::find().filter(k.tenant.eq(tenant.0));
        if let Some(a) = after {
            q = q.filter(k.id.gt(a));
        }
        q.order_by_asc(k.id)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(S::from_model)
            .collect()
    }

    /// Creates a resource at version 1, with its audit entry (`<kind>.create`).
    ///
    /// Errors: `check`'s; `Conflict` (`TAKEN`) on a unique index.
    pub async fn insert_resource<S: Resource>(
        &self,
        tenant: TenantId,
        settings: &S,
        actor: &Actor,
        now: i64,
    ) -> Result<Versioned<S>, StoreError> {
        let v = Versioned {
            id: Uuid::now_v7(),
            tenant_id: tenant,
            settings: settings.clone(),
            created_at: now,
            updated_at: now,
            version: 1,
        };
        let txn = self.db.begin().await?;
        // Write first, then read: on SQLite a deferred transaction that reads before its first
        // write fails at once (SQLITE_BUSY_SNAPSHOT, no busy wait) when the engine's writer
        // commits in between. A failed check rolls the insert back with the transaction.
        S::Entity::insert(S::row(&v))
            .exec(&txn)
            .await
            .map_err(|e| map_insert_err(e, S::TAKEN))?;
        S::check(&txn, tenant, settings).await?;
        let (action, after) = (format!("{}.create", S::KIND), Some(S::audit_json(&v)));
        audit(
            &txn,
            tenant,
            actor,
            &action,
            (S::KIND, v.id),
            None,
            after,
            now,
        )
        .await?;
        txn.commit().await?;
        Ok(v)
    }

    /// Writes a resource's settings if it is still at version `expect`, with its audit entry
    /// (`<kind>.update`, or `.activate` / `.deactivate` when `active` turned); settings equal to
    /// the stored ones write nothing.
    ///
    /// Errors: `NotFound`; `VersionMismatch`; `check`'s; `Conflict` (`TAKEN`).
    #[allow(clippy::too_many_arguments)]
    pub async fn update_resource<S: Resource>(
        &self,
        tenant: TenantId,
        id: Uuid,
        settings: &S,
        expect: i64,
        actor: &Actor,
        now: i64,
    ) -> Result<Versioned<S>, StoreError> {
        let txn = self.db.begin().await?;
        lock::<S, _>(&txn, tenant, id).await?;
        let before = find::<S, _>(&txn, tenant, id).await?;
        if before.version != expect {
            return Err(StoreError::VersionMismatch {
                current: before.version,
            });
        }
        if before.settings == *settings {
            txn.commit().await?;
            return Ok(before);
        }
        S::check(&txn, tenant, settings).await?;
        let after = Versioned {
            settings: settings.clone(),
            updated_at: now,
            version: before.version + 1,
            ..before.clone()
        };
        S::Entity::update(S::row(&after))
            .exec(&txn)
            .await
            .map_err(|e| map_insert_err(e, S::TAKEN))?;
        let action = match (before.settings.active(), settings.active()) {
            (true, false) => format!("{}.deactivate", S::KIND),
            (false, true) => format!("{}.activate", S::KIND),
            _ => format!("{}.update", S::KIND),
        };
        let (b, a) = (Some(S::audit_json(&before)), Some(S::audit_json(&after)));
        audit(&txn, tenant, actor, &action, (S::KIND, id), b, a, now).await?;
        txn.commit().await?;
        Ok(after)
    }

    /// Deletes a resource, with its audit entry (`<kind>.delete`).
    ///
    /// Errors: `NotFound`; `before_delete`'s.
    pub async fn delete_resource<S: Resource>(
        &self,
        tenant: TenantId,
        id: Uuid,
        actor: &Actor,
        now: i64,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin().await?;
        lock::<S, _>(&txn, tenant, id).await?;
        let before = find::<S, _>(&txn, tenant, id).await?;
        let b = S::before_delete(&txn, &before).await?;
        S::Entity::delete_many()
            .filter(S::keys().id.eq(id))
            .exec(&txn)
            .await?;
        let action = format!("{}.delete", S::KIND);
        audit(
            &txn,
            tenant,
            actor,
            &action,
            (S::KIND, id),
            Some(b),
            None,
            now,
        )
        .await?;
        txn.commit().await?;
        Ok(())
    }
}
