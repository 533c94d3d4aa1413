//! Phone numbers (DIDs): E.164 numbers a tenant owns, unique per tenant, each pointing to a
//! queue or to a campaign. Every change is written with its audit entry in one transaction.
//! The server checks that a queue exists (queues live in the engine); a campaign is checked
//! here, in the change's transaction.

use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde_json::{json, Value};
use uuid::Uuid;

use switchboard_core::TenantId;

use crate::crud::{Keys, Resource, Versioned};
use crate::entity::{campaign, phone_number};
use crate::{corrupt, Store, StoreError};

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
pub type PhoneNumber = Versioned<PhoneNumberSettings>;

impl Resource for PhoneNumberSettings {
    type Entity = phone_number::Entity;
    type Row = phone_number::Model;
    type Active = phone_number::ActiveModel;
    const KIND: &'static str = "phone_number";
    const TAKEN: &'static str = "the tenant already has a DID with this number";

    fn keys() -> Keys<phone_number::Column> {
        Keys {
            id: phone_number::Column::Id,
            tenant: phone_number::Column::TenantId,
            version: phone_number::Column::Version,
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
        Ok(Versioned {
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

    fn active(&self) -> bool {
        self.active
    }

    fn audit_json(p: &PhoneNumber) -> Value {
        let s = &p.settings;
        let (queue_id, campaign_id) = match &s.target {
            DidTarget::Queue(q) => (Some(q.clone()), None),
            DidTarget::Campaign(c) => (None, Some(*c)),
        };
        json!({
            "id": p.id, "number": s.number, "name": s.name, "notes": s.notes,
            "queue_id": queue_id, "campaign_id": campaign_id, "active": s.active,
        })
    }

    /// Errors: `Invalid` on `campaign_id` when the target is a campaign the tenant lacks.
    async fn check<C: ConnectionTrait>(
        db: &C,
        tenant: TenantId,
        s: &PhoneNumberSettings,
    ) -> Result<(), StoreError> {
        if let DidTarget::Campaign(c) = s.target {
            let found = campaign::Entity::find_by_id(c)
                .filter(campaign::Column::TenantId.eq(tenant.0))
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
}

impl Store {
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
            .map(PhoneNumberSettings::from_model)
            .transpose()
    }
}
