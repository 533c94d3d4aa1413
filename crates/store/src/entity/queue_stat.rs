//! `queue_stats`: the statistics projection, the sums of
//! `switchboard_core::metrics::QueueBucket` per tenant, first queue and 15-minute UTC bucket of
//! the first queue entry, kept by the group-commit writer (`crate::append`) and read by the
//! queue report (`crate::reports`). Milliseconds in `*_ms`.
use sea_orm::entity::prelude::*;

/// One 15-minute bucket of one queue (a row of `queue_stats`).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "queue_stats")]
pub struct Model {
    /// Owning tenant (primary key, with `bucket_start` and `queue_id`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: Uuid,
    /// Start of the 15-minute bucket of the calls' first queue entry, epoch ms.
    #[sea_orm(primary_key, auto_increment = false)]
    pub bucket_start: i64,
    /// The queue the calls entered first.
    #[sea_orm(primary_key, auto_increment = false)]
    pub queue_id: String,
    /// Calls that entered the queue.
    pub offered: i64,
    /// Calls answered.
    pub answered: i64,
    /// Calls ended without an answer.
    pub abandoned: i64,
    /// Answered calls whose wait ≤ their SLA threshold.
    pub answered_within_sl: i64,
    /// Sum of the waits of answered calls, ms.
    pub wait_answered_ms: i64,
    /// Sum of the waits of abandoned calls, ms.
    pub wait_abandoned_ms: i64,
    /// Answered calls that have ended.
    pub handled: i64,
    /// Sum of talk + hold of `handled` calls, ms.
    pub handle_ms: i64,
    /// Largest wait of an answered or abandoned call, ms; NULL if there is none.
    pub max_wait_ms: Option<i64>,
    /// Calls carrying the `sla_breached` flag.
    pub sla_breached: i64,
    /// Calls carrying the `review` flag.
    pub review: i64,
}

/// No relations are declared.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
