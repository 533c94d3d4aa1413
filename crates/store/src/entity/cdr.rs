//! `cdrs`: call detail records, one per call.
use sea_orm::entity::prelude::*;

/// One call detail record (a row of `cdrs`).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "cdrs")]
pub struct Model {
    /// CDR id (UUIDv7).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Owning tenant.
    pub tenant_id: Uuid,
    /// The telephony's call id (the Asterisk uniqueid for the compatibility route); unique
    /// per tenant.
    pub call_id: String,
    /// `route_api` or `compat`.
    pub source: String,
    /// The DID called.
    pub did: Option<String>,
    /// The campaign that routed the call.
    pub campaign_id: Option<Uuid>,
    /// The destination it went to.
    pub destination_id: Option<Uuid>,
    /// The campaign link it went over.
    pub link_id: Option<Uuid>,
    /// The queue of a queue DID.
    pub queue_id: Option<String>,
    /// The target that took the call (SIP URI), as telephony said.
    pub target: Option<String>,
    /// `answered`, `no_answer`, `busy`, `failed` or `canceled`.
    pub status: String,
    /// The status as telephony sent it (Asterisk `DIALSTATUS`), when it was mapped.
    pub raw_status: Option<String>,
    /// Caller number.
    pub caller_id_num: Option<String>,
    /// Caller name.
    pub caller_id_name: Option<String>,
    /// Epoch ms.
    pub started_at: i64,
    /// Epoch ms.
    pub answered_at: Option<i64>,
    /// Epoch ms.
    pub ended_at: Option<i64>,
    /// Whole call, seconds.
    pub duration_s: Option<i64>,
    /// Billed (talk) time, seconds.
    pub billsec_s: Option<i64>,
    /// Hangup cause text (SIP reason or Q.850 text).
    pub hangup_cause: Option<String>,
    /// Q.850 cause code.
    pub hangup_cause_code: Option<i32>,
    /// Asterisk linkedid.
    pub linked_id: Option<String>,
    /// When it was recorded, epoch ms.
    pub created_at: i64,
}

/// No relations are declared.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
