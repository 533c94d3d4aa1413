//! `route_reservations`: routing decisions, and the slots routed calls hold on links.
use sea_orm::entity::prelude::*;

/// One routing decision (a row of `route_reservations`).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "route_reservations")]
pub struct Model {
    /// Reservation id (UUIDv7).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Owning tenant.
    pub tenant_id: Uuid,
    /// The telephony's call id, unique per tenant; `None` for the compatibility route.
    pub call_id: Option<String>,
    /// The DID called, E.164 (or as given when it was not a number).
    pub did: String,
    /// The campaign that routed it.
    pub campaign_id: Option<Uuid>,
    /// The link holding the slot (`None`: a reject, or a queue call).
    pub link_id: Option<Uuid>,
    /// The queue of a queue DID.
    pub queue_id: Option<String>,
    /// Epoch ms.
    pub reserved_at: i64,
    /// When an unreleased slot is given back, epoch ms.
    pub expires_at: Option<i64>,
    /// The lease after the answer, seconds (the campaign's `max_call_s` at the decision).
    pub answered_lease_s: Option<i32>,
    /// Epoch ms.
    pub answered_at: Option<i64>,
    /// The target that answered, as telephony said.
    pub answered_target: Option<String>,
    /// When the slot was given back (CDR or expiry), epoch ms.
    pub released_at: Option<i64>,
    /// The answer sent (one line of JSON), repeated for the same call id.
    pub answer: String,
}

/// No relations are declared.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
