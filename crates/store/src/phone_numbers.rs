//! Phone numbers (DIDs): E.164 numbers a tenant owns, unique per tenant, each pointing to a
//! queue or to a campaign. Every change is written with its audit entry in one transaction.
//! The server checks that a queue exists (queues live in the engine); a campaign is checked
//! here, in the change's transaction.

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};
use serde_json::json;
use uuid::Uuid;

use switchboard_core::TenantId;

use crate::audit::Actor;
use crate::crud::{audit, check_version, lock, update_action, Keys};
use crate::entity::{campaign, phone_number};
use crate::{corrupt, map_insert_err, Store, StoreError};

/// Where a DID's calls go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DidTarget {
    /// Into this queue (its agents).
    Queue(String),
    /// To this campaign's destinations.
    Campaign(Uuid),
}

/// What a client sets of a DID (validated by the server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneNumberSettings {
    /// The number, E.164 (`+33123456789`).
    pub number: String,
    /// A name to recognise it by.
    pub name: Option<String>,
    /// Free text.
    pub notes: Option<String>,
    /// Where its calls go.
    pub target: DidTarget,
    /// False: its calls are rejected.
    pub active: bool,
}

/// A stored DID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneNumber {
    /// DID id (UUIDv7).
    pub id: Uuid,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Its settings.
    pub settings: PhoneNumberSettings,
    /// Epoch ms.
    pub created_at: i64,
    /// Epoch ms.
    pub updated_at: i64,
    /// Bumped on every change (the `ETag`).
    pub version: i64,
}

impl PhoneNumber {
    /// The DID as the audit log shows it.
    pub fn audit_json(&self) -> serde_json::Value {
        let s = &self.settings;
        let (queue_id, campaign_id) = match &s.target {
            DidTarget::Queue(q) => (Some(q.clone()), None),
            DidTarget::Campaign(c) => (None, Some(*c)),
        };
        json!({
            "id": self.id, "number": s.number, "name": s.name, "notes": s.notes,
            "queue_id": queue_id, "campaign_id": campaign_id, "active": s.active,
        })
    }
}

fn from_model(m: phone_number::Model) -> Result<PhoneNumber, StoreError> {
    let target = match (m.queue_id, m.campaign_id) {
        (Some(q), None) => DidTarget::Queue(q),
        (None, Some(c)) => DidTarget::Campaign(c),
        _ => {
            return Err(corrupt(
                "phone_numbers: not exactly one of queue_id, campaign_id",
            ))
        }
    };
    Ok(PhoneNumber {
        id: m.id,
        tenant_id: TenantId(m.tenant_id),
        settings: PhoneNumberSettings {
            number: m.number,
            name: m.name,
            notes: m.notes,
            target,
            active: m.active,
        },
        created_at: m.created_at,
        updated_at: m.updated_at,
        version: m.version,
    })
}

fn row(p: &PhoneNumber) -> phone_number::ActiveModel {
    let s = p.settings.clone();
    let (queue_id, campaign_id) = match s.target {
        DidTarget::Queue(q) => (Some(q), None),
        DidTarget::Campaign(c) => (None, Some(c)),
    };
    phone_number::ActiveModel {
        id: Set(p.id),
        tenant_id: Set(p.tenant_id.0),
        number: Set(s.number),
        name: Set(s.name),
        notes: Set(s.notes),
        queue_id: Set(queue_id),
        campaign_id: Set(campaign_id),
        active: Set(s.active),
        created_at: Set(p.created_at),
        updated_at: Set(p.updated_at),
        version: Set(p.version),
    }
}

fn keys() -> Keys<phone_number::Column> {
    Keys {
        id: phone_number::Column::Id,
        tenant: phone_number::Column::TenantId,
        touch: phone_number::Column::Version,
    }
}

const NUMBER_TAKEN: &str = "the tenant already has a DID with this number";

/// Errors: `Invalid` on `campaign_id` when `target` names a campaign the tenant lacks.
async fn check_target<C: ConnectionTrait>(
    db: &C,
    tenant_id: TenantId,
    target: &DidTarget,
) -> Result<(), StoreError> {
    if let DidTarget::Campaign(c) = target {
        let found = campaign::Entity::find_by_id(*c)
            .filter(campaign::Column::TenantId.eq(tenant_id.0))
            .one(db)
            .await?;
        if found.is_none() {
            return Err(StoreError::Invalid {
                field: "campaign_id".into(),
                detail: format!("no campaign {c}"),
            });
        }
    }
    Ok(())
}

async fn find<C: ConnectionTrait>(
    db: &C,
    tenant_id: TenantId,
    id: Uuid,
) -> Result<PhoneNumber, StoreError> {
    from_model(
        phone_number::Entity::find_by_id(id)
            .filter(phone_number::Column::TenantId.eq(tenant_id.0))
            .one(db)
            .await?
            .ok_or(StoreError::NotFound)?,
    )
}

impl Store {
    /// Creates a DID, with its audit entry.
    ///
    /// Errors: `Conflict` when the tenant has a DID with this number; `Invalid` on
    /// `campaign_id` when the campaign does not exist.
    pub async fn create_phone_number(
        &self,
        tenant_id: TenantId,
        settings: &PhoneNumberSettings,
        actor: &Actor,
        now: i64,
    ) -> Result<PhoneNumber, StoreError> {
        let p = PhoneNumber {
            id: Uuid::now_v7(),
            tenant_id,
            settings: settings.clone(),
            created_at: now,
            updated_at: now,
            version: 1,
        };
        let txn = self.db.begin().await?;
        check_target(&txn, tenant_id, &settings.target).await?;
        phone_number::Entity::insert(row(&p))
            .exec(&txn)
            .await
            .map_err(|e| map_insert_err(e, NUMBER_TAKEN))?;
        let after = Some(p.audit_json());
        audit(
            &txn,
            tenant_id,
            actor,
            "phone_number.create",
            ("phone_number", p.id),
            None,
            after,
            now,
        )
        .await?;
        txn.commit().await?;
        Ok(p)
    }

    /// One DID. Errors: `NotFound`.
    pub async fn phone_number(
        &self,
        tenant_id: TenantId,
        id: Uuid,
    ) -> Result<PhoneNumber, StoreError> {
        find(&self.db, tenant_id, id).await
    }

    /// The DID with this E.164 number, if the tenant has one.
    pub async fn phone_number_by_number(
        &self,
        tenant_id: TenantId,
        number: &str,
    ) -> Result<Option<PhoneNumber>, StoreError> {
        phone_number::Entity::find()
            .filter(phone_number::Column::TenantId.eq(tenant_id.0))
            .filter(phone_number::Column::Number.eq(number))
            .one(&self.db)
            .await?
            .map(from_model)
            .transpose()
    }

    /// DIDs in id (creation) order, after `after`, at most `limit`.
    pub async fn phone_numbers(
        &self,
        tenant_id: TenantId,
        after: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<PhoneNumber>, StoreError> {
        let mut q =
            phone_number::Entity::find().filter(phone_number::Column::TenantId.eq(tenant_id.0));
        if let Some(a) = after {
            q = q.filter(phone_number::Column::Id.gt(a));
        }
        q.order_by_asc(phone_number::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(from_model)
            .collect()
    }

    /// Writes a DID's settings if it is still at version `expect`, with its audit entry;
    /// settings equal to the stored ones write nothing.
    ///
    /// Errors: `NotFound`; `VersionMismatch`; `Conflict` when the new number is taken;
    /// `Invalid` on `campaign_id`.
    pub async fn update_phone_number(
        &self,
        tenant_id: TenantId,
        id: Uuid,
        settings: &PhoneNumberSettings,
        expect: i64,
        actor: &Actor,
        now: i64,
    ) -> Result<PhoneNumber, StoreError> {
        let txn = self.db.begin().await?;
        lock::<phone_number::Entity, _>(&txn, keys(), tenant_id, id).await?;
        let before = find(&txn, tenant_id, id).await?;
        check_version(expect, before.version)?;
        if before.settings == *settings {
            txn.commit().await?;
            return Ok(before);
        }
        check_target(&txn, tenant_id, &settings.target).await?;
        let after = PhoneNumber {
            settings: settings.clone(),
            updated_at: now,
            version: before.version + 1,
            ..before.clone()
        };
        phone_number::Entity::update(row(&after))
            .exec(&txn)
            .await
            .map_err(|e| map_insert_err(e, NUMBER_TAKEN))?;
        let action = update_action("phone_number", before.settings.active, settings.active);
        let (b, a) = (Some(before.audit_json()), Some(after.audit_json()));
        audit(
            &txn,
            tenant_id,
            actor,
            &action,
            ("phone_number", id),
            b,
            a,
            now,
        )
        .await?;
        txn.commit().await?;
        Ok(after)
    }

    /// Deletes a DID, with its audit entry. Errors: `NotFound`.
    pub async fn delete_phone_number(
        &self,
        tenant_id: TenantId,
        id: Uuid,
        actor: &Actor,
        now: i64,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin().await?;
        lock::<phone_number::Entity, _>(&txn, keys(), tenant_id, id).await?;
        let before = find(&txn, tenant_id, id).await?;
        phone_number::Entity::delete_by_id(id).exec(&txn).await?;
        let b = Some(before.audit_json());
        audit(
            &txn,
            tenant_id,
            actor,
            "phone_number.delete",
            ("phone_number", id),
            b,
            None,
            now,
        )
        .await?;
        txn.commit().await?;
        Ok(())
    }
}
