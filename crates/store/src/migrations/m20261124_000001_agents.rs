//! Agents and automatic call distribution (issue 7):
//! - `agents`: an agent's configuration (name, linked user, skills as a JSON object
//!   `{name: level 0–10}`, capacity, `wrap_up_s`, `max_no_answer`, `sip_uri`), its chosen
//!   status (`available`, `break`, `offline`; existing agents put on break keep `break`, others
//!   start `offline`), and the counters routing uses (`calls_taken`, `talk_ms`, `idle_since`,
//!   `wrap_up_until`). `version` 0 marks an agent only seen in events, never configured;
//! - `queues`: `strategy` (DESIGN.md "Routing"), `routing` (`manual` or `auto`) and
//!   `required_skills` (JSON object `{name: minimum level}`);
//! - `queue_members`: each queue's agents with tier `level`, `position` and `weight`;
//! - `calls`: `queue_entered_at` (entry into the current queue, kept when a call is re-queued)
//!   and `ring_group` (JSON array of the agents a `ring_all` offer rings).
//!
//! FROZEN once committed: never edit; add a new migration instead.

use sea_orm_migration::prelude::*;

pub(super) struct Agents;

impl MigrationName for Agents {
    fn name(&self) -> &str {
        "m20261124_000001_agents"
    }
}

#[derive(Iden)]
enum Agents_ {
    #[iden = "agents"]
    Table,
    Name,
    UserId,
    Skills,
    Capacity,
    WrapUpS,
    MaxNoAnswer,
    SipUri,
    Status,
    StatusSince,
    WrapUpUntil,
    CallsTaken,
    TalkMs,
    IdleSince,
    CreatedAt,
    UpdatedAt,
    Version,
}

#[derive(Iden)]
enum Queues {
    Table,
    Strategy,
    Routing,
    RequiredSkills,
}

#[derive(Iden)]
enum QueueMembers {
    Table,
    TenantId,
    QueueId,
    AgentId,
    Level,
    Position,
    Weight,
}

#[derive(Iden)]
enum Calls {
    Table,
    QueueEnteredAt,
    RingGroup,
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

fn text_default(c: impl IntoIden, v: &str) -> ColumnDef {
    ColumnDef::new(c).text().not_null().default(v).to_owned()
}
fn int_default(c: impl IntoIden, v: i32) -> ColumnDef {
    ColumnDef::new(c).integer().not_null().default(v).to_owned()
}
fn big_default(c: impl IntoIden, v: i64) -> ColumnDef {
    ColumnDef::new(c)
        .big_integer()
        .not_null()
        .default(v)
        .to_owned()
}
fn null_of(mut c: ColumnDef) -> ColumnDef {
    c.null().to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Agents {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let a = || Agents_::Table;
        add_column(m, a(), text_default(Agents_::Name, "")).await?;
        add_column(
            m,
            a(),
            null_of(ColumnDef::new(Agents_::UserId).uuid().to_owned()),
        )
        .await?;
        add_column(m, a(), text_default(Agents_::Skills, "{}")).await?;
        add_column(m, a(), int_default(Agents_::Capacity, 1)).await?;
        add_column(m, a(), int_default(Agents_::WrapUpS, 0)).await?;
        add_column(
            m,
            a(),
            null_of(ColumnDef::new(Agents_::MaxNoAnswer).integer().to_owned()),
        )
        .await?;
        add_column(
            m,
            a(),
            null_of(ColumnDef::new(Agents_::SipUri).text().to_owned()),
        )
        .await?;
        add_column(m, a(), text_default(Agents_::Status, "offline")).await?;
        add_column(m, a(), big_default(Agents_::StatusSince, 0)).await?;
        add_column(
            m,
            a(),
            null_of(
                ColumnDef::new(Agents_::WrapUpUntil)
                    .big_integer()
                    .to_owned(),
            ),
        )
        .await?;
        add_column(m, a(), big_default(Agents_::CallsTaken, 0)).await?;
        add_column(m, a(), big_default(Agents_::TalkMs, 0)).await?;
        add_column(m, a(), big_default(Agents_::IdleSince, 0)).await?;
        add_column(m, a(), big_default(Agents_::CreatedAt, 0)).await?;
        add_column(m, a(), big_default(Agents_::UpdatedAt, 0)).await?;
        add_column(m, a(), big_default(Agents_::Version, 0)).await?;
        m.get_connection()
            .execute_unprepared("UPDATE agents SET status = 'break' WHERE on_break")
            .await?;

        add_column(
            m,
            Queues::Table,
            text_default(Queues::Strategy, "longest_idle"),
        )
        .await?;
        add_column(m, Queues::Table, text_default(Queues::Routing, "manual")).await?;
        add_column(m, Queues::Table, text_default(Queues::RequiredSkills, "{}")).await?;

        m.create_table(
            Table::create()
                .table(QueueMembers::Table)
                .col(ColumnDef::new(QueueMembers::TenantId).uuid().not_null())
                .col(ColumnDef::new(QueueMembers::QueueId).text().not_null())
                .col(ColumnDef::new(QueueMembers::AgentId).text().not_null())
                .col(ColumnDef::new(QueueMembers::Level).integer().not_null())
                .col(ColumnDef::new(QueueMembers::Position).integer().not_null())
                .col(ColumnDef::new(QueueMembers::Weight).integer().not_null())
                .primary_key(
                    Index::create()
                        .col(QueueMembers::TenantId)
                        .col(QueueMembers::QueueId)
                        .col(QueueMembers::AgentId),
                )
                .to_owned(),
        )
        .await?;

        add_column(
            m,
            Calls::Table,
            null_of(
                ColumnDef::new(Calls::QueueEnteredAt)
                    .big_integer()
                    .to_owned(),
            ),
        )
        .await?;
        add_column(
            m,
            Calls::Table,
            null_of(ColumnDef::new(Calls::RingGroup).text().to_owned()),
        )
        .await?;
        Ok(())
    }
}
