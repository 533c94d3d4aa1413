//! `alerts`: what a supervisor must see; each is also an event of the call (same `seq`).
use sea_orm::entity::prelude::*;

/// One alert (a row of `alerts`).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "alerts")]
pub struct Model {
    /// Owning tenant (primary key, with `seq`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: Uuid,
    /// Sequence number of the alert's event in the tenant's stream.
    #[sea_orm(primary_key, auto_increment = false)]
    pub seq: i64,
    /// Switchboard's call id (UUIDv7).
    pub call_id: Uuid,
    /// The client's call id.
    pub external_call_id: String,
    /// The queue the call was in when the rule fired, if any.
    pub queue_id: Option<String>,
    /// `sla_breached`, `long_wait` or `long_hold`.
    pub alert_type: String,
    /// When the rule fired (event time), epoch ms.
    pub ts: i64,
    /// Payload (`threshold_s`, and `wait_s` / `hold_s`), JSON text.
    pub data: String,
}

/// No relations are declared.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
