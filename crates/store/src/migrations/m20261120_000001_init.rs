//! The first schema: tenants, API keys, queues, calls, agents, call events and alerts.
//!
//! FROZEN: committed migrations are never edited (`scripts/check-migrations` fails CI if this
//! file changes). Every schema change is a new migration in this folder.

use sea_orm_migration::prelude::*;

pub(super) struct Init;

impl MigrationName for Init {
    fn name(&self) -> &str {
        "m20261120_000001_init"
    }
}

#[derive(Iden)]
enum Tenants {
    Table,
    Id,
    Slug,
    Name,
    Clock,
    CreatedAt,
    UpdatedAt,
}

#[derive(Iden)]
enum ApiKeys {
    Table,
    Id,
    TenantId,
    Name,
    Prefix,
    KeyHash,
    Scopes,
    CreatedAt,
    RevokedAt,
}

#[derive(Iden)]
enum Queues {
    Table,
    TenantId,
    Id,
    Name,
    SlaThresholdS,
    RingTimeoutS,
    MaxNoAnswer,
    HoldMaxS,
    ShortCallS,
    SurveyEnabled,
    CreatedAt,
    UpdatedAt,
}

#[derive(Iden)]
enum Calls {
    Table,
    Id,
    TenantId,
    ExternalId,
    CallType,
    FromParty,
    ToParty,
    Status,
    QueueId,
    FirstQueueId,
    AgentId,
    Priority,
    InitiatedAt,
    QueuedAt,
    AnsweredAt,
    EndedAt,
    EndReason,
    WaitMs,
    TalkMs,
    HoldMs,
    Flags,
    StateSince,
    LastTs,
    LastSeq,
    SlaDeadline,
    RingDeadline,
    HoldDeadline,
}

#[derive(Iden)]
enum Agents {
    Table,
    TenantId,
    AgentId,
    Missed,
    OnBreak,
}

#[derive(Iden)]
enum CallEvents {
    Table,
    TenantId,
    Seq,
    CallId,
    ExternalCallId,
    EventId,
    EventType,
    Ts,
    ReceivedAt,
    StatusAfter,
    Data,
}

#[derive(Iden)]
enum Alerts {
    Table,
    TenantId,
    Seq,
    CallId,
    ExternalCallId,
    QueueId,
    AlertType,
    Ts,
    Data,
}

fn big(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c).big_integer().not_null().to_owned()
}
fn int(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c).integer().not_null().to_owned()
}
fn text(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c).string().not_null().to_owned()
}
fn text_null(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c).string().null().to_owned()
}
fn uuid(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c).uuid().not_null().to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Init {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Tenants::Table)
                .col(uuid(Tenants::Id).primary_key())
                .col(text(Tenants::Slug).unique_key())
                .col(text(Tenants::Name))
                .col(text(Tenants::Clock))
                .col(big(Tenants::CreatedAt))
                .col(big(Tenants::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(ApiKeys::Table)
                .col(uuid(ApiKeys::Id).primary_key())
                .col(uuid(ApiKeys::TenantId))
                .col(text(ApiKeys::Name))
                .col(text(ApiKeys::Prefix))
                .col(text(ApiKeys::KeyHash).unique_key())
                .col(text(ApiKeys::Scopes))
                .col(big(ApiKeys::CreatedAt))
                .col(ColumnDef::new(ApiKeys::RevokedAt).big_integer().null())
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Queues::Table)
                .col(uuid(Queues::TenantId))
                .col(text(Queues::Id))
                .col(text(Queues::Name))
                .col(int(Queues::SlaThresholdS))
                .col(int(Queues::RingTimeoutS))
                .col(int(Queues::MaxNoAnswer))
                .col(int(Queues::HoldMaxS))
                .col(int(Queues::ShortCallS))
                .col(ColumnDef::new(Queues::SurveyEnabled).boolean().not_null())
                .col(big(Queues::CreatedAt))
                .col(big(Queues::UpdatedAt))
                .primary_key(Index::create().col(Queues::TenantId).col(Queues::Id))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Calls::Table)
                .col(uuid(Calls::Id).primary_key())
                .col(uuid(Calls::TenantId))
                .col(text(Calls::ExternalId))
                .col(text(Calls::CallType))
                .col(text_null(Calls::FromParty))
                .col(text_null(Calls::ToParty))
                .col(text(Calls::Status))
                .col(text_null(Calls::QueueId))
                .col(text_null(Calls::FirstQueueId))
                .col(text_null(Calls::AgentId))
                .col(int(Calls::Priority))
                .col(big(Calls::InitiatedAt))
                .col(ColumnDef::new(Calls::QueuedAt).big_integer().null())
                .col(ColumnDef::new(Calls::AnsweredAt).big_integer().null())
                .col(ColumnDef::new(Calls::EndedAt).big_integer().null())
                .col(text_null(Calls::EndReason))
                .col(ColumnDef::new(Calls::WaitMs).big_integer().null())
                .col(big(Calls::TalkMs))
                .col(big(Calls::HoldMs))
                .col(text(Calls::Flags))
                .col(big(Calls::StateSince))
                .col(big(Calls::LastTs))
                .col(big(Calls::LastSeq))
                .col(ColumnDef::new(Calls::SlaDeadline).big_integer().null())
                .col(ColumnDef::new(Calls::RingDeadline).big_integer().null())
                .col(ColumnDef::new(Calls::HoldDeadline).big_integer().null())
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("calls_tenant_external")
                .table(Calls::Table)
                .col(Calls::TenantId)
                .col(Calls::ExternalId)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("calls_tenant_initiated")
                .table(Calls::Table)
                .col(Calls::TenantId)
                .col(Calls::InitiatedAt)
                .col(Calls::Id)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("calls_tenant_queued")
                .table(Calls::Table)
                .col(Calls::TenantId)
                .col(Calls::QueuedAt)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(CallEvents::Table)
                .col(uuid(CallEvents::TenantId))
                .col(big(CallEvents::Seq))
                .col(uuid(CallEvents::CallId))
                .col(text(CallEvents::ExternalCallId))
                .col(text_null(CallEvents::EventId))
                .col(text(CallEvents::EventType))
                .col(big(CallEvents::Ts))
                .col(big(CallEvents::ReceivedAt))
                .col(text(CallEvents::StatusAfter))
                .col(ColumnDef::new(CallEvents::Data).text().not_null())
                .primary_key(
                    Index::create()
                        .col(CallEvents::TenantId)
                        .col(CallEvents::Seq),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("call_events_call_event_id")
                .table(CallEvents::Table)
                .col(CallEvents::CallId)
                .col(CallEvents::EventId)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Alerts::Table)
                .col(uuid(Alerts::TenantId))
                .col(big(Alerts::Seq))
                .col(uuid(Alerts::CallId))
                .col(text(Alerts::ExternalCallId))
                .col(text_null(Alerts::QueueId))
                .col(text(Alerts::AlertType))
                .col(big(Alerts::Ts))
                .col(ColumnDef::new(Alerts::Data).text().not_null())
                .primary_key(Index::create().col(Alerts::TenantId).col(Alerts::Seq))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Agents::Table)
                .col(uuid(Agents::TenantId))
                .col(text(Agents::AgentId))
                .col(int(Agents::Missed))
                .col(ColumnDef::new(Agents::OnBreak).boolean().not_null())
                .primary_key(Index::create().col(Agents::TenantId).col(Agents::AgentId))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("alerts_tenant_ts")
                .table(Alerts::Table)
                .col(Alerts::TenantId)
                .col(Alerts::Ts)
                .to_owned(),
        )
        .await?;
        Ok(())
    }
}
