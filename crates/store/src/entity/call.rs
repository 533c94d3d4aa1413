//! `calls`: the projection of each call's current state, rebuilt from `call_events`.
use sea_orm::entity::prelude::*;

/// One call's projection (a row of `calls`).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "calls")]
pub struct Model {
    /// Switchboard's call id (UUIDv7).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Owning tenant.
    pub tenant_id: Uuid,
    /// The client's call id, unique within the tenant.
    pub external_id: String,
    /// `voice` or `video`.
    pub call_type: String,
    /// Caller, as given (E.164 recommended).
    pub from_party: Option<String>,
    /// Called number (the DID), as given.
    pub to_party: Option<String>,
    /// Current status, wire name (`waiting`, `on_hold`, …).
    pub status: String,
    /// The queue the call is in or was last in.
    pub queue_id: Option<String>,
    /// The queue the call entered first (reports count it there).
    pub first_queue_id: Option<String>,
    /// The agent the call is offered to or talking with (the last one after it ends).
    pub agent_id: Option<String>,
    /// Caller priority 0–100, higher first.
    pub priority: i32,
    /// Time of `call_initiated`, epoch ms.
    pub initiated_at: i64,
    /// First queue entry, epoch ms; `None` if never queued.
    pub queued_at: Option<i64>,
    /// First answer, epoch ms; `None` if never answered.
    pub answered_at: Option<i64>,
    /// Time of `call_ended`, epoch ms; `None` until the call ends.
    pub ended_at: Option<i64>,
    /// `completed`, `abandoned` or `failed`; `None` until the call ends.
    pub end_reason: Option<String>,
    /// Milliseconds from first queue entry to first answer (or to the end if never answered);
    /// `None` while waiting or if never queued.
    pub wait_ms: Option<i64>,
    /// Milliseconds spent `active`.
    pub talk_ms: i64,
    /// Milliseconds spent `on_hold`.
    pub hold_ms: i64,
    /// `,flag1,flag2,` or empty.
    pub flags: String,
    /// When the current status was entered (event time), epoch ms.
    pub state_since: i64,
    /// Largest event timestamp seen for the call, epoch ms.
    pub last_ts: i64,
    /// Sequence number of the last event applied.
    pub last_seq: i64,
    /// Pending timers (epoch ms), so a restart re-arms exactly what was armed.
    pub sla_deadline: Option<i64>,
    /// Pending ring timer (`ring_timeout_s`), epoch ms.
    pub ring_deadline: Option<i64>,
    /// Pending hold timer (`hold_max_s`), epoch ms.
    pub hold_deadline: Option<i64>,
    /// The queue's `sla_threshold_s` frozen at first queue entry, seconds (NULL for calls
    /// never queued, and for calls stored before it was recorded).
    pub sla_threshold_s: Option<i32>,
    /// Entry into the current (or last) queue, epoch ms; kept when the call is re-queued.
    pub queue_entered_at: Option<i64>,
    /// The agents a `ring_all` offer rings: a JSON array of agent ids, or NULL.
    pub ring_group: Option<String>,
}

/// No relations are declared.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
