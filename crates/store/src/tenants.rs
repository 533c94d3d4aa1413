//! Tenants: one organisation each; every other row carries its id.

use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

use switchboard_core::{Clock, TenantId};

use crate::entity::{call, tenant};
use crate::{corrupt, map_insert_err, Store, StoreError};

/// A tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct Tenant {
    /// Tenant id (UUIDv7).
    pub id: TenantId,
    /// Unique short name (`default` for the tenant made at bootstrap).
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Which clock the tenant's timers run on.
    pub clock: Clock,
    /// Epoch ms.
    pub created_at: i64,
    /// Sequence number of the tenant's last stored event (0 before the first).
    pub last_seq: i64,
    /// Largest stored event timestamp, epoch ms (the `event_time` watermark).
    pub watermark: Option<i64>,
    /// Bumped on every settings change (the `ETag`).
    pub version: i64,
}

fn tenant_from(m: tenant::Model) -> Result<Tenant, StoreError> {
    Ok(Tenant {
        id: TenantId(m.id),
        clock: Clock::parse(&m.clock).ok_or_else(|| corrupt("tenants.clock"))?,
        slug: m.slug,
        name: m.name,
        created_at: m.created_at,
        last_seq: m.last_seq,
        watermark: m.watermark,
        version: m.version,
    })
}

impl Store {
    /// Every tenant, oldest first.
    pub async fn tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        tenant::Entity::find()
            .order_by_asc(tenant::Column::CreatedAt)
            .all(&self.db)
            .await?
            .into_iter()
            .map(tenant_from)
            .collect()
    }

    /// The tenant with this id. Errors: `NotFound`.
    pub async fn tenant(&self, id: TenantId) -> Result<Tenant, StoreError> {
        tenant_from(
            tenant::Entity::find_by_id(id.0)
                .one(&self.db)
                .await?
                .ok_or(StoreError::NotFound)?,
        )
    }

    /// The tenant with this slug. Errors: `NotFound`.
    pub async fn tenant_by_slug(&self, slug: &str) -> Result<Tenant, StoreError> {
        tenant_from(
            tenant::Entity::find()
                .filter(tenant::Column::Slug.eq(slug))
                .one(&self.db)
                .await?
                .ok_or(StoreError::NotFound)?,
        )
    }

    /// Creates a tenant on the `live` clock. Errors: `Conflict` when the slug is taken.
    pub async fn create_tenant(
        &self,
        slug: &str,
        name: &str,
        now: i64,
    ) -> Result<Tenant, StoreError> {
        let m = tenant::ActiveModel {
            id: Set(Uuid::now_v7()),
            slug: Set(slug.to_owned()),
            name: Set(name.to_owned()),
            clock: Set(Clock::Live.as_str().to_owned()),
            created_at: Set(now),
            updated_at: Set(now),
            last_seq: Set(0),
            watermark: Set(None),
            version: Set(1),
        };
        let m = tenant::Entity::insert(m)
            .exec_with_returning(&self.db)
            .await
            .map_err(|e| map_insert_err(e, "tenant slug already exists"))?;
        tenant_from(m)
    }

    /// Number of tenants (0 means a fresh database: bootstrap).
    pub async fn tenant_count(&self) -> Result<u64, StoreError> {
        Ok(tenant::Entity::find().count(&self.db).await?)
    }

    /// Ids of the tenants that have calls not yet ended (their timers must be re-armed at
    /// start-up; every other tenant loads on first use). One `EXISTS` per tenant, each a few
    /// seeks on `calls_tenant_status_initiated`: the cost follows the number of tenants, not
    /// the calls they ever had.
    pub async fn tenants_with_live_calls(&self) -> Result<Vec<TenantId>, StoreError> {
        use sea_orm::sea_query::{Expr, Query};
        let live = Query::select()
            .expr(Expr::val(1))
            .from(call::Entity)
            .and_where(
                Expr::col((call::Entity, call::Column::TenantId))
                    .equals((tenant::Entity, tenant::Column::Id)),
            )
            .and_where(crate::calls::live_predicate())
            .to_owned();
        let ids: Vec<Uuid> = tenant::Entity::find()
            .select_only()
            .column(tenant::Column::Id)
            .filter(Expr::exists(live))
            .into_tuple()
            .all(&self.db)
            .await?;
        Ok(ids.into_iter().map(TenantId).collect())
    }
}
