//! # switchboard-store
//!
//! Persistence for Switchboard: SeaORM entities, one migration set serving SQLite (embedded
//! default, WAL, `synchronous=FULL` so an acknowledged event survives power loss) and
//! PostgreSQL, and repositories that all take the tenant id: another tenant's rows are simply
//! not found.
//!
//! One module per aggregate: [`tenants`], [`users`], [`sessions`], [`api_keys`], [`audit`], [`queues`], [`calls`], [`agents`],
//! [`events`], [`alerts`], [`reports`], the call-seller routing model ([`phone_numbers`],
//! [`destinations`], [`campaigns`], [`reservations`], [`cdrs`]), and [`append`], the write path. Reads go through the
//! [`Store`]'s pool; every write of the engine goes through one [`StoreWriter`], the group-commit
//! writer's own connection, which is discarded after a failed commit so that a connection left
//! inside a failed transaction never serves a later one.

pub mod agents;
pub mod alerts;
pub mod api_keys;
pub mod append;
pub mod audit;
pub mod calls;
pub mod campaigns;
pub mod cdrs;
mod crud;
pub mod destinations;
pub mod entity;
pub mod events;
pub mod migrations;
pub mod phone_numbers;
pub mod queues;
pub mod reports;
pub mod reservations;
pub mod sessions;
pub mod tenants;
pub mod users;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbErr, SqlErr, SqlxPostgresConnector, SqlxSqliteConnector,
};
use sea_orm_migration::MigratorTrait;

pub use agents::AgentRow;
pub use alerts::{AlertFilter, AlertRecord};
pub use api_keys::{
    api_key_digest, hash_api_key, hex, key_prefix, ApiKeyFilter, ApiKeyInfo, NewApiKey, RateLimit,
    KEY_PREFIX_MAX_CHARS,
};
pub use append::{StoreWriter, TenantHead, TenantUpdate, WriteBatch};
pub use audit::{Actor, ActorKind, AuditFilter, AuditRecord};
pub use calls::{CallCursor, CallFilter, CallRow, LoadedCall};
pub use campaigns::{Campaign, CampaignLink, CampaignSettings, LinkSettings};
pub use cdrs::{Cdr, CdrReport, CdrStatus, CdrWrite, Release};
pub use crud::{Resource, Versioned};
pub use destinations::{Destination, DestinationSettings};
pub use events::EventRecord;
pub use phone_numbers::{DidTarget, PhoneNumber, PhoneNumberSettings};
pub use queues::{QueueMember, QueueRecord, QueueRouting};
pub use reservations::{Decision, RouteOutcome, RouteRecord, RouteReject, RouteRequest, Routed};
pub use sessions::{NewRefreshToken, Rotation};
pub use tenants::{Bootstrap, NewTenant, Tenant, TenantSettings};
pub use users::{NewUser, User, UserFilter, UserPatch};

/// Storage failure, converted to an HTTP status in one place (the server's error module).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row does not exist (for this tenant).
    #[error("not found")]
    NotFound,
    /// A unique constraint would be violated (e.g. a queue id already used).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A value the change refers to does not exist (a DID's campaign, a link's destination):
    /// the request is invalid in `field` (422), not a missing resource.
    #[error("{field}: {detail}")]
    Invalid {
        /// The field naming the missing value (`campaign_id`, `[2].destination_id`).
        field: String,
        /// What is wrong.
        detail: String,
    },
    /// A compare-and-set found another version (`current`).
    #[error("version mismatch: the current version is {current}")]
    VersionMismatch {
        /// The stored version.
        current: i64,
    },
    /// Anything else (connection lost, corrupt row, disk full, …).
    #[error(transparent)]
    Other(#[from] DbErr),
}

impl StoreError {
    /// True when the database could not be reached (down, restarting, no pooled connection in
    /// time) or was busy (SQLite's writer lock held past `busy_timeout`): the operation wrote
    /// nothing and may succeed if retried.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Other(DbErr::Conn(_) | DbErr::ConnectionAcquire(_)) => true,
            StoreError::Other(e) => e.to_string().contains("database is locked"),
            _ => false,
        }
    }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Other(DbErr::Custom(format!("corrupt row: {what}")))
}

/// A unique-constraint violation (recognised by SeaORM's `sql_err()`, not by message text)
/// becomes `Conflict(what)`; anything else stays `Other`.
fn map_insert_err(e: DbErr, what: &str) -> StoreError {
    match e.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => StoreError::Conflict(what.to_owned()),
        _ => StoreError::Other(e),
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

/// The SQLite URL for a data directory: `sqlite://<dir>/switchboard.db`.
pub fn sqlite_url(data_dir: &Path) -> String {
    format!("sqlite://{}", data_dir.join("switchboard.db").display())
}

/// How to open a connection pool; kept so the writer can open a fresh connection after a
/// failed commit.
#[derive(Debug, Clone)]
enum ConnectSpec {
    Sqlite(sqlx::sqlite::SqliteConnectOptions),
    Postgres(sqlx::postgres::PgConnectOptions),
}

impl ConnectSpec {
    fn parse(url: &str) -> Result<ConnectSpec, StoreError> {
        if url.starts_with("sqlite:") {
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
            Ok(ConnectSpec::Sqlite(opts))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let opts = sqlx::postgres::PgConnectOptions::from_str(url)
                .map_err(|e| DbErr::Custom(format!("bad PostgreSQL URL: {e}")))?;
            Ok(ConnectSpec::Postgres(opts))
        } else {
            Err(StoreError::Other(DbErr::Custom(
                "database URL must start with sqlite:// or postgres://".into(),
            )))
        }
    }

    fn backend(&self) -> Backend {
        match self {
            ConnectSpec::Sqlite(_) => Backend::Sqlite,
            ConnectSpec::Postgres(_) => Backend::Postgres,
        }
    }

    /// A pool of at most `max` connections, connected now (errors name the cause).
    async fn pool(&self, max: u32) -> Result<DatabaseConnection, StoreError> {
        Ok(match self {
            ConnectSpec::Sqlite(opts) => {
                let pool = sqlx::sqlite::SqlitePoolOptions::new()
                    .max_connections(max)
                    .connect_with(opts.clone())
                    .await
                    .map_err(|e| DbErr::Custom(format!("cannot open SQLite database: {e}")))?;
                SqlxSqliteConnector::from_sqlx_sqlite_pool(pool)
            }
            ConnectSpec::Postgres(opts) => {
                check_postgres(opts).await?;
                let pool = sqlx::postgres::PgPoolOptions::new()
                    .max_connections(max)
                    .acquire_timeout(PG_CONNECT_TIMEOUT)
                    .connect_with(opts.clone())
                    .await
                    .map_err(|e| DbErr::Custom(format!("cannot connect to PostgreSQL: {e}")))?;
                SqlxPostgresConnector::from_sqlx_postgres_pool(pool)
            }
        })
    }
}

/// Longest wait for PostgreSQL to accept a connection.
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
    spec: ConnectSpec,
}

impl Store {
    /// Connects to `url` (`sqlite://path` or `postgres://…`) and runs pending migrations.
    /// SQLite files are created if missing and run in WAL mode with `synchronous=FULL`.
    ///
    /// Errors: the URL's scheme is neither, the database is unreachable, a migration failed.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        let spec = ConnectSpec::parse(url)?;
        let max = match spec.backend() {
            Backend::Sqlite => 4,
            Backend::Postgres => 16,
        };
        let db = spec.pool(max).await?;
        migrations::Migrator::up(&db, None).await?;
        Ok(Store { db, spec })
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.spec.backend()
    }

    /// The writer's own connection (opened on first use). The engine's group-commit writer
    /// holds the only one, so every engine write is serialised through it.
    pub fn writer(&self) -> StoreWriter {
        StoreWriter::new(self.spec.clone())
    }

    /// Checks the database answers (for `/ready`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.db.ping().await.map_err(StoreError::Other)
    }

    /// SQLite: copies committed WAL frames into the database file without blocking writers
    /// (`PRAGMA wal_checkpoint(PASSIVE)`), so the WAL does not grow without bound. PostgreSQL:
    /// nothing to do.
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        if self.backend() == Backend::Sqlite {
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
}
