//! # switchboard-store
//!
//! Persistence for Switchboard: SeaORM entities, one migration set serving SQLite (embedded
//! default, WAL, `synchronous=FULL` so an acknowledged event survives power loss) and
//! PostgreSQL, and repositories that all take the tenant id: another tenant's rows are simply
//! not found.
//!
//! The hot path is [`Store::append`]: the engine's group-commit writer hands it the events,
//! alerts and call projections of many requests at once and they are written in one
//! transaction.

pub mod entity;
pub mod migration;

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, SqlxPostgresConnector, SqlxSqliteConnector,
    TransactionTrait,
};
use sea_orm_migration::MigratorTrait;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use switchboard_core::metrics::CallFacts;
use switchboard_core::{
    Call, CallFlag, CallStatus, CallType, Clock, EndReason, ExternalCallId, Flags, QueueSettings,
};

use entity::{agent, alert, api_key, call, call_event, queue, tenant};

/// Storage failure, converted to an HTTP status in one place (the server's error module).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row does not exist (for this tenant).
    #[error("not found")]
    NotFound,
    /// A unique constraint would be violated (e.g. a queue id already used).
    #[error("conflict: {0}")]
    Conflict(String),
    /// Anything else (connection lost, corrupt row, …).
    #[error(transparent)]
    Other(#[from] DbErr),
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Other(DbErr::Custom(format!("corrupt row: {what}")))
}

fn map_insert_err(e: DbErr, what: &str) -> StoreError {
    let msg = e.to_string().to_lowercase();
    if msg.contains("unique") || msg.contains("duplicate key") {
        StoreError::Conflict(what.to_owned())
    } else {
        StoreError::Other(e)
    }
}

/// Rows per INSERT statement: keeps SQLite under its bound-parameter limit.
const CHUNK: usize = 400;

/// Which database is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite (embedded; WAL, `synchronous=FULL`).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// A tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct Tenant {
    /// Tenant id (UUIDv7).
    pub id: Uuid,
    /// Unique short name (`default` for the tenant made at bootstrap).
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Which clock the tenant's timers run on.
    pub clock: Clock,
    /// Epoch ms.
    pub created_at: i64,
}

/// An API key's stored facts (never the key itself).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKeyInfo {
    /// Key id (UUIDv7).
    pub id: Uuid,
    /// The tenant the key acts for.
    pub tenant_id: Uuid,
    /// A name to recognise the key by.
    pub name: String,
    /// First 10 characters of the key, to recognise it in listings.
    pub prefix: String,
    /// Granted scopes (`events:write`, …); `*` is every scope.
    pub scopes: Vec<String>,
    /// Creation time, epoch ms.
    pub created_at: i64,
}

/// A queue with its settings.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueRecord {
    /// Queue id chosen by the tenant.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Business-rule settings (seconds).
    pub settings: QueueSettings,
    /// Epoch ms.
    pub created_at: i64,
    /// Last change, epoch ms.
    pub updated_at: i64,
}

/// One stored event (a `call_events` row).
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    /// The tenant's stream sequence number.
    pub seq: i64,
    /// Switchboard's call id (UUIDv7).
    pub call_id: Uuid,
    /// The client's call id.
    pub external_call_id: String,
    /// The client's idempotency key (unique within the call), if any.
    pub event_id: Option<String>,
    /// Wire `type` (`call_answered`, `sla_breached`, …).
    pub event_type: String,
    /// Event time, epoch ms.
    pub ts: i64,
    /// Acceptance time (wall clock), epoch ms.
    pub received_at: i64,
    /// The call's status after the event, wire name.
    pub status_after: String,
    /// Payload, JSON text.
    pub data: String,
}

/// One stored alert (an `alerts` row; `seq` is its event's).
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRecord {
    /// Sequence number of the alert's event in the tenant's stream.
    pub seq: i64,
    /// Switchboard's call id (UUIDv7).
    pub call_id: Uuid,
    /// The client's call id.
    pub external_call_id: String,
    /// The queue the call was in when the rule fired, if any.
    pub queue_id: Option<String>,
    /// `sla_breached`, `long_wait` or `long_hold`.
    pub alert_type: String,
    /// Epoch ms.
    pub ts: i64,
    /// Payload, JSON text.
    pub data: String,
}

/// A call's projection with the sequence number of its last event and its pending timers'
/// deadlines (epoch ms).
#[derive(Debug, Clone, PartialEq)]
pub struct CallRow {
    /// The call's state.
    pub call: Call,
    /// Sequence number of the call's last event.
    pub last_seq: i64,
    /// Pending SLA timer (`sla_threshold_s`).
    pub sla_deadline: Option<i64>,
    /// Pending ring timer (`ring_timeout_s`).
    pub ring_deadline: Option<i64>,
    /// Pending hold timer (`hold_max_s`).
    pub hold_deadline: Option<i64>,
}

/// An agent's no-answer state: consecutive misses and whether it was put on break.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentRow {
    /// The agent's id as telephony knows it.
    pub agent_id: String,
    /// Consecutive offers not answered.
    pub missed: u32,
    /// Whether the agent was put on break after `max_no_answer` consecutive misses.
    pub on_break: bool,
}

/// A call loaded back into the engine, with the idempotency keys of its events
/// `(event_id, seq, status_after)`.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedCall {
    /// The call's projection.
    pub row: CallRow,
    /// `(event_id, seq, status_after)` of each of its events that carried an `event_id`.
    pub event_ids: Vec<(String, i64, String)>,
}

/// What one group-commit round writes for one tenant.
#[derive(Debug, Clone, Default)]
pub struct WriteBatch {
    /// The tenant written for.
    pub tenant_id: Uuid,
    /// Events to append, in `seq` order.
    pub events: Vec<EventRecord>,
    /// Alerts raised (each is also one of `events`).
    pub alerts: Vec<AlertRecord>,
    /// Latest projection of each call touched.
    pub calls: Vec<CallRow>,
    /// Latest state of each agent touched.
    pub agents: Vec<AgentRow>,
}

/// Filters of `GET /api/v1/calls`. Times are epoch ms on `initiated_at`, `to` exclusive.
#[derive(Debug, Clone, Default)]
pub struct CallFilter {
    /// Current status.
    pub status: Option<CallStatus>,
    /// Current (or last) queue.
    pub queue_id: Option<String>,
    /// Carries this flag.
    pub flag: Option<CallFlag>,
    /// `initiated_at` at or after this, epoch ms.
    pub from: Option<i64>,
    /// `initiated_at` before this, epoch ms.
    pub to: Option<i64>,
}

/// Position after the last row of a page of calls (newest first): `(initiated_at, id)`.
pub type CallCursor = (i64, Uuid);

/// Filters of `GET /api/v1/alerts`. Times are epoch ms on the alert time, `to` exclusive.
#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    /// `sla_breached`, `long_wait` or `long_hold`.
    pub alert_type: Option<String>,
    /// Alert time at or after this, epoch ms.
    pub from: Option<i64>,
    /// Alert time before this, epoch ms.
    pub to: Option<i64>,
}

/// SHA-256 of an API key.
pub fn api_key_digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// SHA-256 of an API key, hex: what `api_keys.key_hash` holds.
pub fn hash_api_key(key: &str) -> String {
    hex(&api_key_digest(key))
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// Longest prefix of an API key stored in the clear (to recognise a key in a list), in
/// characters.
pub const KEY_PREFIX_MAX_CHARS: usize = 10;

/// The part of `key` stored in the clear: at most a quarter of its characters and at most
/// [`KEY_PREFIX_MAX_CHARS`], so the rest (at least three quarters) is known only by its hash.
pub fn key_prefix(key: &str) -> String {
    let n = (key.chars().count() / 4).min(KEY_PREFIX_MAX_CHARS);
    key.chars().take(n).collect()
}

/// The SQLite URL for a data directory: `sqlite://<dir>/switchboard.db`.
pub fn sqlite_url(data_dir: &Path) -> String {
    format!("sqlite://{}", data_dir.join("switchboard.db").display())
}

/// Longest wait for PostgreSQL to accept a connection at start-up.
const PG_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects once, directly, so that a wrong host, port, database or password is reported with
/// its cause at once: the pool would retry until its timeout and then say only "pool timed out".
async fn check_postgres(opts: &sqlx::postgres::PgConnectOptions) -> Result<(), StoreError> {
    use sqlx::Connection;
    let target = format!(
        "{}:{}/{}",
        opts.get_host(),
        opts.get_port(),
        opts.get_database().unwrap_or("<default database>")
    );
    match tokio::time::timeout(PG_CONNECT_TIMEOUT, sqlx::PgConnection::connect_with(opts)).await {
        Err(_) => Err(conn_err(format!(
            "cannot connect to PostgreSQL at {target}: no answer within {} s",
            PG_CONNECT_TIMEOUT.as_secs()
        ))),
        Ok(Err(e)) => Err(conn_err(format!(
            "cannot connect to PostgreSQL at {target}: {e}"
        ))),
        Ok(Ok(c)) => {
            let _ = c.close().await;
            Ok(())
        }
    }
}

fn conn_err(msg: String) -> StoreError {
    StoreError::Other(DbErr::Conn(sea_orm::RuntimeErr::Internal(msg)))
}

/// Handle on the database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    db: DatabaseConnection,
    backend: Backend,
}

impl Store {
    /// Connects to `url` (`sqlite://path` or `postgres://…`) and runs pending migrations.
    /// SQLite files are created if missing and run in WAL mode with `synchronous=FULL`.
    ///
    /// Errors: the URL's scheme is neither, the database is unreachable, a migration failed.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        let (db, backend) = if url.starts_with("sqlite:") {
            let opts = sqlx::sqlite::SqliteConnectOptions::from_str(url)
                .map_err(|e| DbErr::Custom(format!("bad SQLite URL: {e}")))?
                .create_if_missing(true)
                .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sqlx::sqlite::SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(10))
                // 64 MiB page cache per connection (default 2 MiB): the hot indexes stay in memory.
                .pragma("cache_size", "-65536")
                .pragma("temp_store", "memory")
                // No checkpoint inside a commit (it stalled the group commit for up to 150 ms);
                // the engine calls `Store::checkpoint` in the background instead.
                .pragma("wal_autocheckpoint", "0")
                // 16 KiB pages (new databases only): a group commit writes fewer WAL frames, and
                // reads go through a 256 MiB memory map instead of pread (+21 % single-event
                // throughput; docs/benchmarks.md).
                .page_size(16384)
                .pragma("mmap_size", "268435456");
            let pool = sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(opts)
                .await
                .map_err(|e| DbErr::Custom(format!("cannot open SQLite database: {e}")))?;
            (
                SqlxSqliteConnector::from_sqlx_sqlite_pool(pool),
                Backend::Sqlite,
            )
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let opts = sqlx::postgres::PgConnectOptions::from_str(url)
                .map_err(|e| DbErr::Custom(format!("bad PostgreSQL URL: {e}")))?;
            check_postgres(&opts).await?;
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(PG_CONNECT_TIMEOUT)
                .connect_with(opts)
                .await
                .map_err(|e| DbErr::Custom(format!("cannot connect to PostgreSQL: {e}")))?;
            (
                SqlxPostgresConnector::from_sqlx_postgres_pool(pool),
                Backend::Postgres,
            )
        } else {
            return Err(StoreError::Other(DbErr::Custom(
                "database URL must start with sqlite:// or postgres://".into(),
            )));
        };
        migration::Migrator::up(&db, None).await?;
        Ok(Store { db, backend })
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Checks the database answers (for `/ready`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.db.ping().await.map_err(StoreError::Other)
    }

    /// SQLite: copies committed WAL frames into the database file without blocking writers
    /// (`PRAGMA wal_checkpoint(PASSIVE)`), so the WAL does not grow without bound. PostgreSQL:
    /// nothing to do.
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        if self.backend == Backend::Sqlite {
            self.db
                .execute_unprepared("PRAGMA wal_checkpoint(PASSIVE)")
                .await?;
        }
        Ok(())
    }

    /// Closes the pool (after the writer flushed).
    pub async fn close(self) -> Result<(), StoreError> {
        self.db.close().await.map_err(StoreError::Other)
    }

    // ---- tenants ----

    /// Every tenant (the engine loads them all at start).
    pub async fn tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        tenant::Entity::find()
            .order_by_asc(tenant::Column::CreatedAt)
            .all(&self.db)
            .await?
            .into_iter()
            .map(tenant_from)
            .collect()
    }

    /// The tenant with this id. Errors: `NotFound`.
    pub async fn tenant(&self, id: Uuid) -> Result<Tenant, StoreError> {
        tenant_from(
            tenant::Entity::find_by_id(id)
                .one(&self.db)
                .await?
                .ok_or(StoreError::NotFound)?,
        )
    }

    /// The tenant with this slug. Errors: `NotFound`.
    pub async fn tenant_by_slug(&self, slug: &str) -> Result<Tenant, StoreError> {
        tenant_from(
            tenant::Entity::find()
                .filter(tenant::Column::Slug.eq(slug))
                .one(&self.db)
                .await?
                .ok_or(StoreError::NotFound)?,
        )
    }

    /// Creates a tenant on the `live` clock. Errors: `Conflict` when the slug is taken.
    pub async fn create_tenant(
        &self,
        slug: &str,
        name: &str,
        now: i64,
    ) -> Result<Tenant, StoreError> {
        let m = tenant::ActiveModel {
            id: Set(Uuid::now_v7()),
            slug: Set(slug.to_owned()),
            name: Set(name.to_owned()),
            clock: Set(Clock::Live.as_str().to_owned()),
            created_at: Set(now),
            updated_at: Set(now),
        };
        let m = tenant::Entity::insert(m)
            .exec_with_returning(&self.db)
            .await
            .map_err(|e| map_insert_err(e, "tenant slug already exists"))?;
        tenant_from(m)
    }

    /// Sets the tenant's timer clock. Errors: `NotFound`.
    pub async fn set_tenant_clock(
        &self,
        id: Uuid,
        clock: Clock,
        now: i64,
    ) -> Result<(), StoreError> {
        let r = tenant::Entity::update_many()
            .col_expr(tenant::Column::Clock, Expr::value(clock.as_str()))
            .col_expr(tenant::Column::UpdatedAt, Expr::value(now))
            .filter(tenant::Column::Id.eq(id))
            .exec(&self.db)
            .await?;
        if r.rows_affected == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    // ---- API keys ----

    /// Stores a key (by its hash) for a tenant. Errors: `Conflict` if the same key exists.
    pub async fn create_api_key(
        &self,
        tenant_id: Uuid,
        name: &str,
        key: &str,
        scopes: &[String],
        now: i64,
    ) -> Result<ApiKeyInfo, StoreError> {
        let m = api_key::ActiveModel {
            id: Set(Uuid::now_v7()),
            tenant_id: Set(tenant_id),
            name: Set(name.to_owned()),
            prefix: Set(key_prefix(key)),
            key_hash: Set(hash_api_key(key)),
            scopes: Set(scopes.join(" ")),
            created_at: Set(now),
            revoked_at: Set(None),
        };
        let m = api_key::Entity::insert(m)
            .exec_with_returning(&self.db)
            .await
            .map_err(|e| map_insert_err(e, "API key already exists"))?;
        Ok(api_key_from(m))
    }

    /// The unrevoked key whose hash is `key_hash`. Errors: `NotFound`.
    pub async fn api_key_by_hash(&self, key_hash: &str) -> Result<ApiKeyInfo, StoreError> {
        api_key::Entity::find()
            .filter(api_key::Column::KeyHash.eq(key_hash))
            .filter(api_key::Column::RevokedAt.is_null())
            .one(&self.db)
            .await?
            .map(api_key_from)
            .ok_or(StoreError::NotFound)
    }

    /// Number of tenants (0 means a fresh database: bootstrap).
    pub async fn tenant_count(&self) -> Result<u64, StoreError> {
        use sea_orm::PaginatorTrait;
        Ok(tenant::Entity::find().count(&self.db).await?)
    }

    // ---- queues ----

    /// Creates a queue. Errors: `Conflict` when the id is taken in this tenant.
    pub async fn create_queue(&self, tenant_id: Uuid, q: &QueueRecord) -> Result<(), StoreError> {
        queue::Entity::insert(queue_active(tenant_id, q))
            .exec_without_returning(&self.db)
            .await
            .map_err(|e| map_insert_err(e, "queue id already exists"))?;
        Ok(())
    }

    /// Replaces a queue's name and settings. Errors: `NotFound`.
    pub async fn update_queue(&self, tenant_id: Uuid, q: &QueueRecord) -> Result<(), StoreError> {
        let s = &q.settings;
        let r = queue::Entity::update_many()
            .col_expr(queue::Column::Name, Expr::value(q.name.clone()))
            .col_expr(
                queue::Column::SlaThresholdS,
                Expr::value(s.sla_threshold_s as i32),
            )
            .col_expr(
                queue::Column::RingTimeoutS,
                Expr::value(s.ring_timeout_s as i32),
            )
            .col_expr(
                queue::Column::MaxNoAnswer,
                Expr::value(s.max_no_answer as i32),
            )
            .col_expr(queue::Column::HoldMaxS, Expr::value(s.hold_max_s as i32))
            .col_expr(
                queue::Column::ShortCallS,
                Expr::value(s.short_call_s as i32),
            )
            .col_expr(queue::Column::SurveyEnabled, Expr::value(s.survey_enabled))
            .col_expr(queue::Column::UpdatedAt, Expr::value(q.updated_at))
            .filter(queue::Column::TenantId.eq(tenant_id))
            .filter(queue::Column::Id.eq(q.id.as_str()))
            .exec(&self.db)
            .await?;
        if r.rows_affected == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// One queue. Errors: `NotFound`.
    pub async fn queue(&self, tenant_id: Uuid, id: &str) -> Result<QueueRecord, StoreError> {
        queue::Entity::find_by_id((tenant_id, id.to_owned()))
            .one(&self.db)
            .await?
            .map(queue_from)
            .ok_or(StoreError::NotFound)
    }

    /// Queues ordered by id, after `after` (cursor), at most `limit`.
    pub async fn queues(
        &self,
        tenant_id: Uuid,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<QueueRecord>, StoreError> {
        let mut q = queue::Entity::find().filter(queue::Column::TenantId.eq(tenant_id));
        if let Some(a) = after {
            q = q.filter(queue::Column::Id.gt(a));
        }
        Ok(q.order_by_asc(queue::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(queue_from)
            .collect())
    }

    /// Every queue of the tenant (the engine's copy of the settings).
    pub async fn all_queues(&self, tenant_id: Uuid) -> Result<Vec<QueueRecord>, StoreError> {
        self.queues(tenant_id, None, u64::MAX >> 1).await
    }

    // ---- calls and events ----

    /// Calls that have not ended (reloaded into the engine at start).
    pub async fn live_calls(&self, tenant_id: Uuid) -> Result<Vec<LoadedCall>, StoreError> {
        let rows = call::Entity::find()
            .filter(call::Column::TenantId.eq(tenant_id))
            .filter(call::Column::Status.ne(CallStatus::Ended.as_str()))
            .all(&self.db)
            .await?;
        self.with_event_ids(rows).await
    }

    /// How many calls of every tenant have not ended (the live-calls gauge's start value).
    pub async fn live_call_count(&self) -> Result<u64, StoreError> {
        use sea_orm::PaginatorTrait;
        Ok(call::Entity::find()
            .filter(call::Column::Status.ne(CallStatus::Ended.as_str()))
            .count(&self.db)
            .await?)
    }

    /// The calls among `external_ids` that exist, with their events' idempotency keys.
    pub async fn calls_by_external_ids(
        &self,
        tenant_id: Uuid,
        external_ids: &[&str],
    ) -> Result<Vec<LoadedCall>, StoreError> {
        let mut rows = Vec::new();
        for chunk in external_ids.chunks(CHUNK) {
            rows.extend(
                call::Entity::find()
                    .filter(call::Column::TenantId.eq(tenant_id))
                    .filter(call::Column::ExternalId.is_in(chunk.iter().copied()))
                    .all(&self.db)
                    .await?,
            );
        }
        self.with_event_ids(rows).await
    }

    async fn with_event_ids(&self, rows: Vec<call::Model>) -> Result<Vec<LoadedCall>, StoreError> {
        let mut keys: HashMap<Uuid, Vec<(String, i64, String)>> = HashMap::new();
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        for chunk in ids.chunks(CHUNK) {
            let evs: Vec<(Uuid, Option<String>, i64, String)> = call_event::Entity::find()
                .select_only()
                .column(call_event::Column::CallId)
                .column(call_event::Column::EventId)
                .column(call_event::Column::Seq)
                .column(call_event::Column::StatusAfter)
                .filter(call_event::Column::CallId.is_in(chunk.iter().copied()))
                .filter(call_event::Column::EventId.is_not_null())
                .into_tuple()
                .all(&self.db)
                .await?;
            for (call_id, event_id, seq, status) in evs {
                if let Some(eid) = event_id {
                    keys.entry(call_id).or_default().push((eid, seq, status));
                }
            }
        }
        rows.into_iter()
            .map(|m| {
                let event_ids = keys.remove(&m.id).unwrap_or_default();
                Ok(LoadedCall {
                    row: call_from(m)?,
                    event_ids,
                })
            })
            .collect()
    }

    /// The unrevoked key with this SHA-256 digest. Errors: `NotFound`.
    pub async fn api_key_by_digest(&self, digest: &[u8; 32]) -> Result<ApiKeyInfo, StoreError> {
        self.api_key_by_hash(&hex(digest)).await
    }

    /// Every call id (external) the tenant has: the engine's filter of calls that may exist.
    pub async fn external_call_ids(&self, tenant_id: Uuid) -> Result<Vec<String>, StoreError> {
        Ok(call::Entity::find()
            .select_only()
            .column(call::Column::ExternalId)
            .filter(call::Column::TenantId.eq(tenant_id))
            .into_tuple()
            .all(&self.db)
            .await?)
    }

    /// Every agent's no-answer state (reloaded into the engine at start).
    pub async fn agents(&self, tenant_id: Uuid) -> Result<Vec<AgentRow>, StoreError> {
        Ok(agent::Entity::find()
            .filter(agent::Column::TenantId.eq(tenant_id))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|m| AgentRow {
                agent_id: m.agent_id,
                missed: m.missed.max(0) as u32,
                on_break: m.on_break,
            })
            .collect())
    }

    /// A call by Switchboard id or by external id. Errors: `NotFound`.
    pub async fn call(&self, tenant_id: Uuid, id: &str) -> Result<CallRow, StoreError> {
        let mut q = call::Entity::find().filter(call::Column::TenantId.eq(tenant_id));
        q = match Uuid::parse_str(id) {
            Ok(u) => q.filter(
                sea_orm::Condition::any()
                    .add(call::Column::Id.eq(u))
                    .add(call::Column::ExternalId.eq(id)),
            ),
            Err(_) => q.filter(call::Column::ExternalId.eq(id)),
        };
        call_from(q.one(&self.db).await?.ok_or(StoreError::NotFound)?)
    }

    /// A page of calls, newest first (by `initiated_at`, then id).
    pub async fn calls(
        &self,
        tenant_id: Uuid,
        f: &CallFilter,
        after: Option<CallCursor>,
        limit: u64,
    ) -> Result<Vec<CallRow>, StoreError> {
        let mut q = call::Entity::find().filter(call::Column::TenantId.eq(tenant_id));
        if let Some(s) = f.status {
            q = q.filter(call::Column::Status.eq(s.as_str()));
        }
        if let Some(qid) = &f.queue_id {
            q = q.filter(call::Column::QueueId.eq(qid.as_str()));
        }
        if let Some(flag) = f.flag {
            q = q.filter(call::Column::Flags.like(format!("%,{},%", flag.as_str())));
        }
        if let Some(from) = f.from {
            q = q.filter(call::Column::InitiatedAt.gte(from));
        }
        if let Some(to) = f.to {
            q = q.filter(call::Column::InitiatedAt.lt(to));
        }
        if let Some((at, id)) = after {
            q = q.filter(
                sea_orm::Condition::any()
                    .add(call::Column::InitiatedAt.lt(at))
                    .add(
                        sea_orm::Condition::all()
                            .add(call::Column::InitiatedAt.eq(at))
                            .add(call::Column::Id.lt(id)),
                    ),
            );
        }
        q.order_by_desc(call::Column::InitiatedAt)
            .order_by_desc(call::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(call_from)
            .collect()
    }

    /// Events of one call in order, after `after_seq`, at most `limit`.
    pub async fn call_events(
        &self,
        tenant_id: Uuid,
        call_id: Uuid,
        after_seq: Option<i64>,
        limit: u64,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let mut q = call_event::Entity::find()
            .filter(call_event::Column::TenantId.eq(tenant_id))
            .filter(call_event::Column::CallId.eq(call_id));
        if let Some(s) = after_seq {
            q = q.filter(call_event::Column::Seq.gt(s));
        }
        Ok(q.order_by_asc(call_event::Column::Seq)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(event_from)
            .collect())
    }

    /// The tenant's events with `seq > since`, in order, at most `limit` (stream catch-up).
    pub async fn events_since(
        &self,
        tenant_id: Uuid,
        since: i64,
        limit: u64,
    ) -> Result<Vec<EventRecord>, StoreError> {
        Ok(call_event::Entity::find()
            .filter(call_event::Column::TenantId.eq(tenant_id))
            .filter(call_event::Column::Seq.gt(since))
            .order_by_asc(call_event::Column::Seq)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(event_from)
            .collect())
    }

    /// The tenant's last sequence number (0 when it has no event yet).
    pub async fn max_seq(&self, tenant_id: Uuid) -> Result<i64, StoreError> {
        let r: Option<Option<i64>> = call_event::Entity::find()
            .select_only()
            .column_as(call_event::Column::Seq.max(), "m")
            .filter(call_event::Column::TenantId.eq(tenant_id))
            .into_tuple()
            .one(&self.db)
            .await?;
        Ok(r.flatten().unwrap_or(0))
    }

    /// The tenant's largest event timestamp (the `event_time` watermark after a restart).
    pub async fn max_event_ts(&self, tenant_id: Uuid) -> Result<Option<i64>, StoreError> {
        let r: Option<Option<i64>> = call_event::Entity::find()
            .select_only()
            .column_as(call_event::Column::Ts.max(), "m")
            .filter(call_event::Column::TenantId.eq(tenant_id))
            .into_tuple()
            .one(&self.db)
            .await?;
        Ok(r.flatten())
    }

    /// Alerts, newest first, after the cursor `after_seq`, at most `limit`.
    pub async fn alerts(
        &self,
        tenant_id: Uuid,
        f: &AlertFilter,
        after_seq: Option<i64>,
        limit: u64,
    ) -> Result<Vec<AlertRecord>, StoreError> {
        let mut q = alert::Entity::find().filter(alert::Column::TenantId.eq(tenant_id));
        if let Some(t) = &f.alert_type {
            q = q.filter(alert::Column::AlertType.eq(t.as_str()));
        }
        if let Some(from) = f.from {
            q = q.filter(alert::Column::Ts.gte(from));
        }
        if let Some(to) = f.to {
            q = q.filter(alert::Column::Ts.lt(to));
        }
        if let Some(s) = after_seq {
            q = q.filter(alert::Column::Seq.lt(s));
        }
        Ok(q.order_by_desc(alert::Column::Seq)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|m| AlertRecord {
                seq: m.seq,
                call_id: m.call_id,
                external_call_id: m.external_call_id,
                queue_id: m.queue_id,
                alert_type: m.alert_type,
                ts: m.ts,
                data: m.data,
            })
            .collect())
    }

    /// What the queue report needs of every call whose first queue entry is in `[from, to)`.
    pub async fn report_facts(
        &self,
        tenant_id: Uuid,
        from: i64,
        to: i64,
        queue_id: Option<&str>,
    ) -> Result<Vec<CallFacts>, StoreError> {
        type Row = (
            Option<String>,
            Option<i64>,
            Option<i64>,
            String,
            Option<i64>,
            i64,
            i64,
            String,
        );
        let mut q = call::Entity::find()
            .select_only()
            .column(call::Column::FirstQueueId)
            .column(call::Column::QueuedAt)
            .column(call::Column::AnsweredAt)
            .column(call::Column::Status)
            .column(call::Column::WaitMs)
            .column(call::Column::TalkMs)
            .column(call::Column::HoldMs)
            .column(call::Column::Flags)
            .filter(call::Column::TenantId.eq(tenant_id))
            .filter(call::Column::QueuedAt.gte(from))
            .filter(call::Column::QueuedAt.lt(to));
        if let Some(qid) = queue_id {
            q = q.filter(call::Column::FirstQueueId.eq(qid));
        }
        let rows: Vec<Row> = q.into_tuple().all(&self.db).await?;
        Ok(rows
            .into_iter()
            .filter_map(
                |(queue, queued_at, answered_at, status, wait, talk, hold, flags)| {
                    let flags = Flags::from_db(&flags);
                    Some(CallFacts {
                        queue_id: queue?,
                        queued_at: queued_at?,
                        answered: answered_at.is_some(),
                        ended: status == CallStatus::Ended.as_str(),
                        wait_ms: wait,
                        handle_ms: talk + hold,
                        sla_breached: flags.contains(CallFlag::SlaBreached),
                        review: flags.contains(CallFlag::Review),
                    })
                },
            )
            .collect())
    }

    /// Writes the batches in one transaction: events and alerts appended, each call's latest
    /// projection upserted. Nothing is written if any statement fails.
    pub async fn append(&self, batches: &[WriteBatch]) -> Result<(), StoreError> {
        let txn = self.db.begin().await?;
        let mut latest: HashMap<Uuid, (Uuid, &CallRow)> = HashMap::new();
        let mut agents: HashMap<(Uuid, &str), &AgentRow> = HashMap::new();
        let mut events = Vec::new();
        let mut alerts = Vec::new();
        for b in batches {
            for e in &b.events {
                events.push(event_active(b.tenant_id, e));
            }
            for a in &b.alerts {
                alerts.push(alert::ActiveModel {
                    tenant_id: Set(b.tenant_id),
                    seq: Set(a.seq),
                    call_id: Set(a.call_id),
                    external_call_id: Set(a.external_call_id.clone()),
                    queue_id: Set(a.queue_id.clone()),
                    alert_type: Set(a.alert_type.clone()),
                    ts: Set(a.ts),
                    data: Set(a.data.clone()),
                });
            }
            for c in &b.calls {
                latest.insert(c.call.id, (b.tenant_id, c));
            }
            for a in &b.agents {
                agents.insert((b.tenant_id, a.agent_id.as_str()), a);
            }
        }
        insert_chunks::<call_event::Entity, _>(&txn, events, None).await?;
        insert_chunks::<alert::Entity, _>(&txn, alerts, None).await?;
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
            ])
            .to_owned();
        insert_chunks::<call::Entity, _>(&txn, calls, Some(upsert)).await?;
        let agents: Vec<agent::ActiveModel> = agents
            .into_iter()
            .map(|((t, id), a)| agent::ActiveModel {
                tenant_id: Set(t),
                agent_id: Set(id.to_owned()),
                missed: Set(a.missed as i32),
                on_break: Set(a.on_break),
            })
            .collect();
        let upsert = OnConflict::columns([agent::Column::TenantId, agent::Column::AgentId])
            .update_columns([agent::Column::Missed, agent::Column::OnBreak])
            .to_owned();
        insert_chunks::<agent::Entity, _>(&txn, agents, Some(upsert)).await?;
        txn.commit().await?;
        Ok(())
    }
}

async fn insert_chunks<E, C>(
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

fn tenant_from(m: tenant::Model) -> Result<Tenant, StoreError> {
    Ok(Tenant {
        id: m.id,
        clock: Clock::parse(&m.clock).ok_or_else(|| corrupt("tenants.clock"))?,
        slug: m.slug,
        name: m.name,
        created_at: m.created_at,
    })
}

fn api_key_from(m: api_key::Model) -> ApiKeyInfo {
    ApiKeyInfo {
        id: m.id,
        tenant_id: m.tenant_id,
        name: m.name,
        prefix: m.prefix,
        scopes: m.scopes.split_whitespace().map(str::to_owned).collect(),
        created_at: m.created_at,
    }
}

fn queue_active(tenant_id: Uuid, q: &QueueRecord) -> queue::ActiveModel {
    let s = &q.settings;
    queue::ActiveModel {
        tenant_id: Set(tenant_id),
        id: Set(q.id.clone()),
        name: Set(q.name.clone()),
        sla_threshold_s: Set(s.sla_threshold_s as i32),
        ring_timeout_s: Set(s.ring_timeout_s as i32),
        max_no_answer: Set(s.max_no_answer as i32),
        hold_max_s: Set(s.hold_max_s as i32),
        short_call_s: Set(s.short_call_s as i32),
        survey_enabled: Set(s.survey_enabled),
        created_at: Set(q.created_at),
        updated_at: Set(q.updated_at),
    }
}

fn queue_from(m: queue::Model) -> QueueRecord {
    let u = |v: i32| v.max(0) as u32;
    QueueRecord {
        id: m.id,
        name: m.name,
        settings: QueueSettings {
            sla_threshold_s: u(m.sla_threshold_s),
            ring_timeout_s: u(m.ring_timeout_s),
            max_no_answer: u(m.max_no_answer),
            hold_max_s: u(m.hold_max_s),
            short_call_s: u(m.short_call_s),
            survey_enabled: m.survey_enabled,
        },
        created_at: m.created_at,
        updated_at: m.updated_at,
    }
}

fn event_active(tenant_id: Uuid, e: &EventRecord) -> call_event::ActiveModel {
    call_event::ActiveModel {
        tenant_id: Set(tenant_id),
        seq: Set(e.seq),
        call_id: Set(e.call_id),
        external_call_id: Set(e.external_call_id.clone()),
        event_id: Set(e.event_id.clone()),
        event_type: Set(e.event_type.clone()),
        ts: Set(e.ts),
        received_at: Set(e.received_at),
        status_after: Set(e.status_after.clone()),
        data: Set(e.data.clone()),
    }
}

fn event_from(m: call_event::Model) -> EventRecord {
    EventRecord {
        seq: m.seq,
        call_id: m.call_id,
        external_call_id: m.external_call_id,
        event_id: m.event_id,
        event_type: m.event_type,
        ts: m.ts,
        received_at: m.received_at,
        status_after: m.status_after,
        data: m.data,
    }
}

fn call_active(tenant_id: Uuid, r: &CallRow) -> call::ActiveModel {
    let c = &r.call;
    call::ActiveModel {
        id: Set(c.id),
        tenant_id: Set(tenant_id),
        external_id: Set(c.external_id.as_str().to_owned()),
        call_type: Set(c.call_type.as_str().to_owned()),
        from_party: Set(c.from.clone()),
        to_party: Set(c.to.clone()),
        status: Set(c.status.as_str().to_owned()),
        queue_id: Set(c.queue_id.as_ref().map(|q| q.as_str().to_owned())),
        first_queue_id: Set(c.first_queue_id.as_ref().map(|q| q.as_str().to_owned())),
        agent_id: Set(c.agent_id.as_ref().map(|a| a.as_str().to_owned())),
        priority: Set(c.priority as i32),
        initiated_at: Set(c.initiated_at),
        queued_at: Set(c.queued_at),
        answered_at: Set(c.answered_at),
        ended_at: Set(c.ended_at),
        end_reason: Set(c.end_reason.map(|r| r.as_str().to_owned())),
        wait_ms: Set(c.wait_ms),
        talk_ms: Set(c.talk_ms),
        hold_ms: Set(c.hold_ms),
        flags: Set(c.flags.to_db()),
        state_since: Set(c.state_since),
        last_ts: Set(c.last_ts),
        last_seq: Set(r.last_seq),
        sla_deadline: Set(r.sla_deadline),
        ring_deadline: Set(r.ring_deadline),
        hold_deadline: Set(r.hold_deadline),
    }
}

fn call_from(m: call::Model) -> Result<CallRow, StoreError> {
    use switchboard_core::{AgentId, QueueId};
    let qid = |s: Option<String>| -> Result<Option<QueueId>, StoreError> {
        s.map(|s| QueueId::parse(&s).map_err(|_| corrupt("calls.queue_id")))
            .transpose()
    };
    Ok(CallRow {
        last_seq: m.last_seq,
        sla_deadline: m.sla_deadline,
        ring_deadline: m.ring_deadline,
        hold_deadline: m.hold_deadline,
        call: Call {
            id: m.id,
            external_id: ExternalCallId::parse(&m.external_id)
                .map_err(|_| corrupt("calls.external_id"))?,
            call_type: match m.call_type.as_str() {
                "video" => CallType::Video,
                _ => CallType::Voice,
            },
            from: m.from_party,
            to: m.to_party,
            status: CallStatus::parse(&m.status).ok_or_else(|| corrupt("calls.status"))?,
            queue_id: qid(m.queue_id)?,
            first_queue_id: qid(m.first_queue_id)?,
            agent_id: m
                .agent_id
                .map(|a| AgentId::parse(&a).map_err(|_| corrupt("calls.agent_id")))
                .transpose()?,
            priority: m.priority.max(0) as u32,
            initiated_at: m.initiated_at,
            queued_at: m.queued_at,
            answered_at: m.answered_at,
            ended_at: m.ended_at,
            end_reason: m.end_reason.as_deref().and_then(EndReason::parse),
            wait_ms: m.wait_ms,
            talk_ms: m.talk_ms,
            hold_ms: m.hold_ms,
            flags: Flags::from_db(&m.flags),
            state_since: m.state_since,
            last_ts: m.last_ts,
        },
    })
}

#[cfg(test)]
mod key_prefix_tests {
    use super::*;

    #[test]
    fn the_prefix_never_holds_more_than_a_quarter_of_the_key() {
        for len in 0..100 {
            let key: String = "k".repeat(len);
            let p = key_prefix(&key);
            assert!(p.chars().count() * 4 <= len, "len {len}: {p}");
            assert!(p.chars().count() <= KEY_PREFIX_MAX_CHARS);
        }
        assert_eq!(key_prefix("sb_0123456789abcdef0123"), "sb_01");
        assert_eq!(key_prefix(&format!("sb_{}", "a".repeat(64))), "sb_aaaaaaa");
        assert_eq!(key_prefix("éééééééé"), "éé", "counted in characters");
    }
}
