//! `call_events`: the immutable audit log, source of truth. `seq` is the tenant's stream
//! sequence number.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "call_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub seq: i64,
    pub call_id: Uuid,
    pub external_call_id: String,
    /// The client's idempotency key (unique within the call), if any.
    pub event_id: Option<String>,
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

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
