//! `call_events`: the immutable audit log, source of truth. `seq` is the tenant's stream
//! sequence number.
use sea_orm::entity::prelude::*;

/// One event (a row of `call_events`).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "call_events")]
pub struct Model {
    /// Owning tenant (primary key, with `seq`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: Uuid,
    /// The tenant's stream sequence number.
    #[sea_orm(primary_key, auto_increment = false)]
    pub seq: i64,
    /// Switchboard's call id (UUIDv7).
    pub call_id: Uuid,
    /// The client's call id.
    pub external_call_id: String,
    /// The client's idempotency key (unique within the call), if any.
    pub event_id: Option<String>,
    /// Wire `type` (`call_answered`, `sla_breached`, …).
    pub event_type: String,
    /// Event time.
    pub ts: i64,
    /// When Switchboard accepted it (wall clock).
    pub received_at: i64,
    /// The call's status after the event.
    pub status_after: String,
    /// Payload JSON.
    pub data: String,
}

/// No relations are declared.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
