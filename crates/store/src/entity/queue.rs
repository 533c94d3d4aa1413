//! `queues`: a tenant's queues with their business-rule settings (seconds).
use sea_orm::entity::prelude::*;

/// One queue (a row of `queues`).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "queues")]
pub struct Model {
    /// Owning tenant (primary key, with `id`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: Uuid,
    /// Queue id chosen by the tenant.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// Display name.
    pub name: String,
    /// Service-level threshold, seconds.
    pub sla_threshold_s: i32,
    /// Ring time before `call_retransfer`, seconds.
    pub ring_timeout_s: i32,
    /// Consecutive misses that put an agent on break; 0 = never.
    pub max_no_answer: i32,
    /// Hold time before the alert `long_hold`, seconds.
    pub hold_max_s: i32,
    /// Talk time under which a call is flagged `review`, seconds; 0 = never.
    pub short_call_s: i32,
    /// Whether completed answered calls get `survey_requested`.
    pub survey_enabled: bool,
    /// Distribution strategy (`longest_idle`, `ring_all`, …; DESIGN.md "Routing").
    pub strategy: String,
    /// `manual` (clients route) or `auto` (the engine distributes).
    pub routing: String,
    /// Skills an agent needs: JSON object `{name: minimum level 0–10}`.
    pub required_skills: String,
    /// Creation time, epoch ms.
    pub created_at: i64,
    /// Last change, epoch ms.
    pub updated_at: i64,
    /// Bumped on every change: the queue's `ETag`.
    pub version: i64,
}

/// No relations are declared.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
