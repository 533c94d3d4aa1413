//! Engine foundation (issue 5):
//! - `tenants.last_seq`, `tenants.watermark`: the tenant's stream head and `event_time`
//!   watermark, written in the same transaction as its events, so start-up reads them instead of
//!   scanning `call_events` (back-filled here from the events already stored);
//! - `tenants.version`, `queues.version`: bumped on every change, the `ETag` of GET and the
//!   `If-Match` of PATCH;
//! - `calls.sla_threshold_s`: the queue's SLA threshold frozen at queue entry, used alike by
//!   `sla_breached`, `long_wait` and the report's `answered_within_sl` (NULL for calls stored
//!   before this migration: the queue's current threshold applies to them);
//! - indexes for what is queried: live calls (partial, `status <> 'ended'`), calls by status,
//!   events by tenant and time;
//! - `writer_probe`: one row the writer rewrites to learn whether the store can commit again.
//!
//! FROZEN once committed: never edit; add a new migration instead.

use sea_orm_migration::prelude::*;

pub(super) struct Foundation;

impl MigrationName for Foundation {
    fn name(&self) -> &str {
        "m20261121_000001_foundation"
    }
}

#[derive(Iden)]
enum Tenants {
    Table,
    LastSeq,
    Watermark,
    Version,
}

#[derive(Iden)]
enum Queues {
    Table,
    Version,
}

#[derive(Iden)]
enum Calls {
    Table,
    SlaThresholdS,
}

#[derive(Iden)]
enum WriterProbe {
    Table,
    Id,
    At,
}

async fn add_column(
    m: &SchemaManager<'_>,
    table: impl IntoIden + 'static,
    col: ColumnDef,
) -> Result<(), DbErr> {
    // One column per statement: SQLite's ALTER TABLE adds one at a time.
    m.alter_table(Table::alter().table(table).add_column(col).to_owned())
        .await
}

#[async_trait::async_trait]
impl MigrationTrait for Foundation {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let big0 = |c: Tenants| {
            ColumnDef::new(c)
                .big_integer()
                .not_null()
                .default(0)
                .to_owned()
        };
        add_column(m, Tenants::Table, big0(Tenants::LastSeq)).await?;
        add_column(
            m,
            Tenants::Table,
            ColumnDef::new(Tenants::Watermark)
                .big_integer()
                .null()
                .to_owned(),
        )
        .await?;
        add_column(
            m,
            Tenants::Table,
            ColumnDef::new(Tenants::Version)
                .big_integer()
                .not_null()
                .default(1)
                .to_owned(),
        )
        .await?;
        add_column(
            m,
            Queues::Table,
            ColumnDef::new(Queues::Version)
                .big_integer()
                .not_null()
                .default(1)
                .to_owned(),
        )
        .await?;
        add_column(
            m,
            Calls::Table,
            ColumnDef::new(Calls::SlaThresholdS)
                .integer()
                .null()
                .to_owned(),
        )
        .await?;
        let db = m.get_connection();
        db.execute_unprepared(
            "UPDATE tenants SET \
               last_seq = COALESCE((SELECT MAX(seq) FROM call_events e WHERE e.tenant_id = tenants.id), 0), \
               watermark = (SELECT MAX(ts) FROM call_events e WHERE e.tenant_id = tenants.id)",
        )
        .await?;
        // Same SQL on both backends (both support partial indexes).
        db.execute_unprepared(
            "CREATE INDEX calls_live ON calls (tenant_id, initiated_at, id) WHERE status <> 'ended'",
        )
        .await?;
        db.execute_unprepared(
            "CREATE INDEX calls_tenant_status_initiated ON calls (tenant_id, status, initiated_at, id)",
        )
        .await?;
        db.execute_unprepared("CREATE INDEX call_events_tenant_ts ON call_events (tenant_id, ts)")
            .await?;
        m.create_table(
            Table::create()
                .table(WriterProbe::Table)
                .col(
                    ColumnDef::new(WriterProbe::Id)
                        .integer()
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(WriterProbe::At).big_integer().not_null())
                .to_owned(),
        )
        .await?;
        db.execute_unprepared("INSERT INTO writer_probe (id, at) VALUES (1, 0)")
            .await?;
        Ok(())
    }
}
