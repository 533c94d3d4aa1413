//! Tenants: one organisation each; every other row carries its id.

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, TransactionTrait,
};
use uuid::Uuid;

use switchboard_core::{Clock, TenantId};

use crate::api_keys::{insert_api_key, ApiKeyInfo, NewApiKey};
use crate::audit::{insert_audit, Actor, AuditRecord};
use crate::entity::{call, tenant};
use crate::users::{insert_user, NewUser, User};
use crate::{corrupt, map_insert_err, Store, StoreError};

/// A tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct Tenant {
    /// Tenant id (UUIDv7).
    pub id: TenantId,
    /// Unique short name (`default` for the tenant made at bootstrap).
    pub slug: String,
    /// Epoch ms.
    pub created_at: i64,
    /// Sequence number of the tenant's last stored event (0 before the first).
    pub last_seq: i64,
    /// Largest stored event timestamp, epoch ms (the `event_time` watermark).
    pub watermark: Option<i64>,
    /// Bumped on every settings change (the `ETag`).
    pub version: i64,
    /// The settings a PATCH changes (name, clock, time zone, region, active).
    pub settings: TenantSettings,
}

/// A tenant's changeable settings; written whole by the engine's writer ([`crate::TenantUpdate`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TenantSettings {
    /// Display name.
    pub name: String,
    /// Which clock the tenant's timers run on.
    pub clock: Clock,
    /// IANA time zone (`Europe/Paris`), for day boundaries in reports.
    pub time_zone: String,
    /// ISO 3166-1 alpha-2 country (`FR`) for national phone numbers.
    pub default_region: Option<String>,
    /// False once deactivated: its credentials stop working, its data stays.
    pub active: bool,
}

/// A tenant to create.
#[derive(Debug, Clone)]
pub struct NewTenant {
    /// Unique short name.
    pub slug: String,
    /// Its settings.
    pub settings: TenantSettings,
}

impl Tenant {
    /// The tenant as the audit log shows it.
    pub fn audit_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(&self.settings).unwrap_or_default();
        v["id"] = serde_json::json!(self.id.0);
        v["slug"] = serde_json::json!(self.slug);
        v
    }
}

fn tenant_from(m: tenant::Model) -> Result<Tenant, StoreError> {
    Ok(Tenant {
        id: TenantId(m.id),
        settings: TenantSettings {
            clock: Clock::parse(&m.clock).ok_or_else(|| corrupt("tenants.clock"))?,
            name: m.name,
            time_zone: m.time_zone,
            default_region: m.default_region,
            active: m.active,
        },
        slug: m.slug,
        created_at: m.created_at,
        last_seq: m.last_seq,
        watermark: m.watermark,
        version: m.version,
    })
}

fn tenant_row(t: &NewTenant, now: i64) -> tenant::ActiveModel {
    tenant::ActiveModel {
        id: Set(Uuid::now_v7()),
        slug: Set(t.slug.clone()),
        name: Set(t.settings.name.clone()),
        clock: Set(t.settings.clock.as_str().to_owned()),
        created_at: Set(now),
        updated_at: Set(now),
        last_seq: Set(0),
        watermark: Set(None),
        version: Set(1),
        time_zone: Set(t.settings.time_zone.clone()),
        default_region: Set(t.settings.default_region.clone()),
        active: Set(t.settings.active),
    }
}

async fn insert_tenant<C: ConnectionTrait>(
    db: &C,
    t: &NewTenant,
    actor: &Actor,
    now: i64,
) -> Result<Tenant, StoreError> {
    let m = tenant::Entity::insert(tenant_row(t, now))
        .exec_with_returning(db)
        .await
        .map_err(|e| map_insert_err(e, "a tenant with this slug already exists"))?;
    let tenant = tenant_from(m)?;
    let id = tenant.id.0.to_string();
    let entry = AuditRecord::new(
        tenant.id,
        actor,
        "tenant.create",
        ("tenant", &id),
        None,
        Some(tenant.audit_json()),
        now,
    );
    insert_audit(db, &[entry]).await?;
    Ok(tenant)
}

impl NewTenant {
    /// A tenant with the default settings: `live` clock, `UTC`, no default region, active.
    pub fn new(slug: &str, name: &str) -> NewTenant {
        NewTenant {
            slug: slug.to_owned(),
            settings: TenantSettings {
                name: name.to_owned(),
                clock: Clock::Live,
                time_zone: "UTC".to_owned(),
                default_region: None,
                active: true,
            },
        }
    }
}

/// What the first start of an empty database creates, in one transaction.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    /// The first tenant (`default`).
    pub tenant: NewTenant,
    /// Its first API key, every tenant scope.
    pub key: NewApiKey,
    /// The platform admin, in that tenant.
    pub admin: NewUser,
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

    /// Creates a tenant, with its audit entry. Errors: `Conflict` when the slug is taken.
    pub async fn create_tenant(
        &self,
        t: &NewTenant,
        actor: &Actor,
        now: i64,
    ) -> Result<Tenant, StoreError> {
        let txn = self.db.begin().await?;
        let tenant = insert_tenant(&txn, t, actor, now).await?;
        txn.commit().await?;
        Ok(tenant)
    }

    /// A page of tenants in id order (oldest first), after the id `after`.
    pub async fn tenants_page(
        &self,
        after: Option<Uuid>,
        active: Option<bool>,
        limit: u64,
    ) -> Result<Vec<Tenant>, StoreError> {
        let mut q = tenant::Entity::find();
        if let Some(a) = after {
            q = q.filter(tenant::Column::Id.gt(a));
        }
        if let Some(a) = active {
            q = q.filter(tenant::Column::Active.eq(a));
        }
        q.order_by_asc(tenant::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(tenant_from)
            .collect()
    }

    /// Creates the first tenant, its key and the platform admin in one transaction, so that a
    /// failure part-way never leaves a database the operator cannot log in to. Returns
    /// `None` (and writes nothing) when the database already has a tenant.
    pub async fn bootstrap(
        &self,
        b: &Bootstrap,
        now: i64,
    ) -> Result<Option<(Tenant, ApiKeyInfo, User)>, StoreError> {
        let txn = self.db.begin().await?;
        if tenant::Entity::find().count(&txn).await? > 0 {
            return Ok(None);
        }
        let actor = Actor::system("bootstrap");
        let t = insert_tenant(&txn, &b.tenant, &actor, now).await?;
        let k = insert_api_key(&txn, t.id, &b.key, &actor, now).await?;
        let u = insert_user(&txn, t.id, &b.admin, &actor, now).await?;
        txn.commit().await?;
        Ok(Some((t, k, u)))
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
