//! The write path: what one group-commit round stores ([`WriteBatch`]) and the writer's own
//! connection ([`StoreWriter`]). Everything of a round is written in one transaction.

use std::collections::HashMap;

use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    TransactionTrait,
};
use uuid::Uuid;

use switchboard_core::metrics::StatsDelta;

use switchboard_core::TenantId;

use crate::calls::call_active;
use crate::entity::{agent, alert, call, call_event, queue, queue_stat, tenant, writer_probe};
use crate::events::event_active;
use crate::queues::queue_active;
use crate::{
    AgentRow, AlertRecord, AuditRecord, CallRow, ConnectSpec, EventRecord, QueueRecord, StoreError,
    TenantSettings, CHUNK,
};

/// A tenant's stream head after a batch: written to the tenant row in the same transaction as
/// the events, so start-up reads it instead of scanning `call_events`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TenantHead {
    /// Sequence number of the tenant's last event.
    pub last_seq: i64,
    /// Largest event timestamp (epoch ms): the `event_time` clock's watermark.
    pub watermark: Option<i64>,
}

/// A change of the tenant's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantUpdate {
    /// The settings after the change (written whole).
    pub settings: TenantSettings,
    /// The new version (the `ETag`).
    pub version: i64,
    /// Time of the change, epoch ms.
    pub updated_at: i64,
}

/// What one engine command (a request, a timer tick, a configuration change) writes for one
/// tenant. A group-commit round writes many of them in one transaction.
#[derive(Debug, Clone, Default)]
pub struct WriteBatch {
    /// The tenant written for.
    pub tenant_id: TenantId,
    /// Events to append, in `seq` order.
    pub events: Vec<EventRecord>,
    /// Alerts raised (each is also one of `events`).
    pub alerts: Vec<AlertRecord>,
    /// Latest projection of each call touched.
    pub calls: Vec<CallRow>,
    /// Latest state of each agent touched.
    pub agents: Vec<AgentRow>,
    /// Queues created or changed (upserted whole).
    pub queues: Vec<QueueRecord>,
    /// The tenant's settings, when changed.
    pub tenant: Option<TenantUpdate>,
    /// The tenant's stream head after this batch, when it has events.
    pub head: Option<TenantHead>,
    /// Changes of the statistics projection (`queue_stats`): for each touched call, its
    /// contribution after the command minus before (`StatsDelta::between`), at most one per
    /// queue and bucket.
    pub stats: Vec<StatsDelta>,
    /// Audit entries of the configuration changes in this batch (same transaction).
    pub audit: Vec<AuditRecord>,
}

impl WriteBatch {
    /// An empty batch for `tenant_id`.
    pub fn new(tenant_id: TenantId) -> Self {
        WriteBatch {
            tenant_id,
            ..Default::default()
        }
    }

    /// True when the batch writes nothing.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
            && self.calls.is_empty()
            && self.agents.is_empty()
            && self.queues.is_empty()
            && self.tenant.is_none()
            && self.stats.is_empty()
            && self.audit.is_empty()
    }
}

/// The group-commit writer's connection. Opened on first use; after any failed commit it is
/// closed and a fresh one is opened for the next, so a connection left in a failed transaction
/// (SQLite after `SQLITE_FULL`, PostgreSQL after a cut) never serves another commit.
#[derive(Debug)]
pub struct StoreWriter {
    spec: ConnectSpec,
    conn: Option<DatabaseConnection>,
}

impl StoreWriter {
    pub(crate) fn new(spec: ConnectSpec) -> Self {
        StoreWriter { spec, conn: None }
    }

    async fn conn(&mut self) -> Result<&DatabaseConnection, StoreError> {
        if self.conn.is_none() {
            self.conn = Some(self.spec.pool(1).await?);
        }
        Ok(self.conn.as_ref().expect("just opened"))
    }

    async fn discard(&mut self) {
        if let Some(c) = self.conn.take() {
            let _ = c.close().await;
        }
    }

    /// Writes the batches in one transaction, in order. Nothing is written if any statement
    /// fails: the transaction is rolled back and the connection discarded.
    ///
    /// Errors: [`StoreError::Other`] with the database's cause (disk full, connection lost, …).
    pub async fn append(&mut self, batches: &[&WriteBatch]) -> Result<(), StoreError> {
        let res = async {
            let txn = self.conn().await?.begin().await?;
            match write_batches(&txn, batches).await {
                Ok(()) => txn.commit().await.map_err(StoreError::from),
                Err(e) => {
                    let _ = txn.rollback().await;
                    Err(e)
                }
            }
        }
        .await;
        if res.is_err() {
            self.discard().await;
        }
        res
    }

    /// Commits a one-row write: whether the store can commit again after a failure.
    ///
    /// Errors: as [`StoreWriter::append`].
    pub async fn probe(&mut self, now: i64) -> Result<(), StoreError> {
        let res = async {
            writer_probe::Entity::update_many()
                .col_expr(writer_probe::Column::At, Expr::value(now))
                .filter(writer_probe::Column::Id.eq(1))
                .exec(self.conn().await?)
                .await?;
            Ok(())
        }
        .await;
        if res.is_err() {
            self.discard().await;
        }
        res
    }

    /// Closes the connection.
    pub async fn close(mut self) {
        self.discard().await;
    }
}

/// Writes the batches on `db` (a transaction): events and alerts appended, each call's latest
/// projection, each agent, queue and tenant row upserted, the statistics deltas added to their
/// `queue_stats` rows.
pub async fn write_batches<C: ConnectionTrait>(
    db: &C,
    batches: &[&WriteBatch],
) -> Result<(), StoreError> {
    let mut latest: HashMap<Uuid, (TenantId, &CallRow)> = HashMap::new();
    let mut agents: HashMap<(TenantId, &str), &AgentRow> = HashMap::new();
    let mut queues: HashMap<(TenantId, &str), &QueueRecord> = HashMap::new();
    let mut heads: HashMap<TenantId, TenantHead> = HashMap::new();
    let mut tenants: HashMap<TenantId, &TenantUpdate> = HashMap::new();
    let mut audit = Vec::new();
    // One delta per row: PostgreSQL refuses an upsert that touches a row twice.
    let mut stats: HashMap<(TenantId, &str, i64), StatsDelta> = HashMap::new();
    let mut events = Vec::new();
    let mut alerts = Vec::new();
    for b in batches {
        let t = b.tenant_id;
        events.extend(b.events.iter().map(|e| event_active(t, e)));
        alerts.extend(b.alerts.iter().map(|a| alert_active(t, a)));
        for c in &b.calls {
            latest.insert(c.call.id, (t, c));
        }
        for a in &b.agents {
            agents.insert((t, a.agent_id.as_str()), a);
        }
        for q in &b.queues {
            queues.insert((t, q.id.as_str()), q);
        }
        if let Some(h) = b.head {
            heads.insert(t, h);
        }
        if let Some(u) = &b.tenant {
            tenants.insert(t, u);
        }
        audit.extend(b.audit.iter().cloned());
        for d in &b.stats {
            match stats.get_mut(&(t, d.queue_id.as_str(), d.bucket_start)) {
                Some(m) => m.merge(d),
                None => {
                    stats.insert((t, d.queue_id.as_str(), d.bucket_start), d.clone());
                }
            }
        }
    }
    insert_chunks::<call_event::Entity, _>(db, events, None).await?;
    insert_chunks::<alert::Entity, _>(db, alerts, None).await?;
    crate::audit::insert_audit(db, &audit).await?;
    let calls: Vec<call::ActiveModel> = latest
        .into_values()
        .map(|(t, c)| call_active(t, c))
        .collect();
    let upsert = OnConflict::column(call::Column::Id)
        .update_columns([
            call::Column::Status,
            call::Column::QueueId,
            call::Column::FirstQueueId,
            call::Column::AgentId,
            call::Column::Priority,
            call::Column::QueuedAt,
            call::Column::AnsweredAt,
            call::Column::EndedAt,
            call::Column::EndReason,
            call::Column::WaitMs,
            call::Column::TalkMs,
            call::Column::HoldMs,
            call::Column::Flags,
            call::Column::StateSince,
            call::Column::LastTs,
            call::Column::LastSeq,
            call::Column::SlaDeadline,
            call::Column::RingDeadline,
            call::Column::HoldDeadline,
            call::Column::SlaThresholdS,
            call::Column::QueueEnteredAt,
            call::Column::RingGroup,
        ])
        .to_owned();
    insert_chunks::<call::Entity, _>(db, calls, Some(upsert)).await?;
    let agents: Vec<agent::ActiveModel> = agents
        .into_iter()
        .map(|((t, _), a)| crate::agents::agent_active(t, a))
        .collect();
    let upsert = crate::agents::agent_upsert();
    insert_chunks::<agent::Entity, _>(db, agents, Some(upsert)).await?;
    let members: Vec<(TenantId, &QueueRecord)> =
        queues.iter().map(|((t, _), q)| (*t, *q)).collect();
    let queues: Vec<queue::ActiveModel> = queues
        .into_iter()
        .map(|((t, _), q)| queue_active(t, q))
        .collect();
    let upsert = OnConflict::columns([queue::Column::TenantId, queue::Column::Id])
        .update_columns([
            queue::Column::Name,
            queue::Column::SlaThresholdS,
            queue::Column::RingTimeoutS,
            queue::Column::MaxNoAnswer,
            queue::Column::HoldMaxS,
            queue::Column::ShortCallS,
            queue::Column::SurveyEnabled,
            queue::Column::Strategy,
            queue::Column::Routing,
            queue::Column::RequiredSkills,
            queue::Column::UpdatedAt,
            queue::Column::Version,
        ])
        .to_owned();
    insert_chunks::<queue::Entity, _>(db, queues, Some(upsert)).await?;
    crate::queues::write_members(db, &members).await?;
    let stats: Vec<queue_stat::ActiveModel> = stats
        .into_iter()
        .filter(|(_, d)| !d.is_noop())
        .map(|((t, _, _), d)| stats_active(t, d))
        .collect();
    insert_chunks::<queue_stat::Entity, _>(db, stats, Some(stats_upsert())).await?;
    for (t, h) in heads {
        tenant::Entity::update_many()
            .col_expr(tenant::Column::LastSeq, Expr::value(h.last_seq))
            .col_expr(tenant::Column::Watermark, Expr::value(h.watermark))
            .filter(tenant::Column::Id.eq(t.0))
            .exec(db)
            .await?;
    }
    for (t, u) in tenants {
        let st = &u.settings;
        tenant::Entity::update_many()
            .col_expr(tenant::Column::Clock, Expr::value(st.clock.as_str()))
            .col_expr(tenant::Column::Name, Expr::value(st.name.as_str()))
            .col_expr(tenant::Column::TimeZone, Expr::value(st.time_zone.as_str()))
            .col_expr(
                tenant::Column::DefaultRegion,
                Expr::value(st.default_region.clone()),
            )
            .col_expr(tenant::Column::Active, Expr::value(st.active))
            .col_expr(tenant::Column::Version, Expr::value(u.version))
            .col_expr(tenant::Column::UpdatedAt, Expr::value(u.updated_at))
            .filter(tenant::Column::Id.eq(t.0))
            .exec(db)
            .await?;
    }
    Ok(())
}

/// A `queue_stats` row holding one delta, for an upsert that adds it to the stored row.
fn stats_active(tenant_id: TenantId, d: StatsDelta) -> queue_stat::ActiveModel {
    queue_stat::ActiveModel {
        tenant_id: Set(tenant_id.0),
        bucket_start: Set(d.bucket_start),
        queue_id: Set(d.queue_id),
        offered: Set(d.offered),
        answered: Set(d.answered),
        abandoned: Set(d.abandoned),
        answered_within_sl: Set(d.answered_within_sl),
        wait_answered_ms: Set(d.wait_answered_ms),
        wait_abandoned_ms: Set(d.wait_abandoned_ms),
        handled: Set(d.handled),
        handle_ms: Set(d.handle_ms),
        max_wait_ms: Set(d.max_wait_ms),
        sla_breached: Set(d.sla_breached),
        review: Set(d.review),
    }
}

/// `ON CONFLICT (tenant_id, queue_id, bucket_start) DO UPDATE`: every sum adds the delta, the
/// maximum keeps the larger (a NULL on either side keeps the other). The same SQL on both
/// backends (no `GREATEST`/`MAX(a, b)`, which differ).
fn stats_upsert() -> OnConflict {
    use queue_stat::Column as S;
    let add = |c: S, name: &str| {
        (
            c,
            Expr::cust(format!("queue_stats.{name} + excluded.{name}")),
        )
    };
    OnConflict::columns([S::TenantId, S::QueueId, S::BucketStart])
        .values([
            add(S::Offered, "offered"),
            add(S::Answered, "answered"),
            add(S::Abandoned, "abandoned"),
            add(S::AnsweredWithinSl, "answered_within_sl"),
            add(S::WaitAnsweredMs, "wait_answered_ms"),
            add(S::WaitAbandonedMs, "wait_abandoned_ms"),
            add(S::Handled, "handled"),
            add(S::HandleMs, "handle_ms"),
            add(S::SlaBreached, "sla_breached"),
            add(S::Review, "review"),
            (
                S::MaxWaitMs,
                Expr::cust(
                    "CASE WHEN queue_stats.max_wait_ms IS NULL \
                       OR excluded.max_wait_ms > queue_stats.max_wait_ms \
                     THEN excluded.max_wait_ms ELSE queue_stats.max_wait_ms END",
                ),
            ),
        ])
        .to_owned()
}

fn alert_active(tenant_id: TenantId, a: &AlertRecord) -> alert::ActiveModel {
    alert::ActiveModel {
        tenant_id: Set(tenant_id.0),
        seq: Set(a.seq),
        call_id: Set(a.call_id),
        external_call_id: Set(a.external_call_id.clone()),
        queue_id: Set(a.queue_id.clone()),
        alert_type: Set(a.alert_type.clone()),
        ts: Set(a.ts),
        data: Set(a.data.clone()),
    }
}

pub(crate) async fn insert_chunks<E, C>(
    db: &C,
    rows: Vec<E::ActiveModel>,
    on_conflict: Option<OnConflict>,
) -> Result<(), StoreError>
where
    E: EntityTrait,
    E::Model: sea_orm::IntoActiveModel<E::ActiveModel>,
    C: ConnectionTrait,
{
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<E::ActiveModel> = rows.by_ref().take(CHUNK).collect();
        let mut ins = E::insert_many(chunk);
        if let Some(oc) = &on_conflict {
            ins = ins.on_conflict(oc.clone());
        }
        ins.exec_without_returning(db).await?;
    }
    Ok(())
}
