//! `phone_numbers`: a tenant's DIDs, each pointing to a queue or a campaign.
use sea_orm::entity::prelude::*;

/// One DID (a row of `phone_numbers`).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "phone_numbers")]
pub struct Model {
    /// DID id (UUIDv7).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Owning tenant.
    pub tenant_id: Uuid,
    /// The number, E.164 (`+33123456789`); unique per tenant.
    pub number: String,
    /// A name to recognise it by.
    pub name: Option<String>,
    /// Free text.
    pub notes: Option<String>,
    /// The queue its calls enter (exactly one of `queue_id`, `campaign_id` is set).
    pub queue_id: Option<String>,
    /// The campaign its calls are routed by.
    pub campaign_id: Option<Uuid>,
    /// False: its calls are rejected.
    pub active: bool,
    /// Epoch ms.
    pub created_at: i64,
    /// Epoch ms.
    pub updated_at: i64,
    /// Bumped on every change (the `ETag`).
    pub version: i64,
}

/// No relations are declared.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
