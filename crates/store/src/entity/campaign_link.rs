//! `campaign_links`: a campaign's destinations, their caps and counters.
use sea_orm::entity::prelude::*;

/// One campaign–destination link (a row of `campaign_links`).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "campaign_links")]
pub struct Model {
    /// Link id (UUIDv7): the compatibility API's `campaignClientSettingId`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Owning tenant.
    pub tenant_id: Uuid,
    /// The campaign.
    pub campaign_id: Uuid,
    /// The destination.
    pub destination_id: Uuid,
    /// Place in the campaign's list (link order, for `round_robin` and ties).
    pub position: i32,
    /// Lower first (`priority`).
    pub priority: i32,
    /// Share of calls (`weighted`).
    pub weight: i32,
    /// Most calls up at once; `None`: no cap.
    pub concurrency_cap: Option<i32>,
    /// Most calls ever; `None`: no cap.
    pub total_cap: Option<i64>,
    /// False: the link takes no calls.
    pub active: bool,
    /// Calls holding a slot now (reserved and not released).
    pub active_calls: i32,
    /// Calls ever routed over the link.
    pub total_calls: i64,
    /// Epoch ms.
    pub created_at: i64,
    /// Epoch ms.
    pub updated_at: i64,
}

/// No relations are declared.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
