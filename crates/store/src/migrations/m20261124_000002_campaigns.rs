//! The call-seller routing model (issue 7 items 5–7):
//! - `phone_numbers`: a tenant's DIDs (E.164, unique per tenant), each pointing to a queue
//!   (`queue_id`) or a campaign (`campaign_id`), never both;
//! - `destinations`: other call centers, reached at a SIP URI or an E.164 number, with the
//!   optional strings the call-seller platform's Asterisk dialplan reads (`client_identifier`,
//!   `outbound_auth`, `callerid_override`, `context`, `transport`);
//! - `campaigns`: how a DID's calls spread over destinations (`strategy`), the dial timeout and
//!   the longest call (seconds), and the link used last (`round_robin`);
//! - `campaign_links`: a campaign's destinations with `priority`, `weight`, the caps
//!   (`concurrency_cap`, `total_cap`; NULL = none) and the counters the caps are checked
//!   against (`active_calls`, `total_calls`), changed only by conditional UPDATEs;
//! - `route_reservations`: one row per routing decision: the slot a routed call holds on a
//!   link until `expires_at` (the dial timeout, then the longest call once answered) or until
//!   its CDR releases it, and the answer sent (so a repeated `call_id` gets the same answer);
//! - `cdrs`: one call detail record per call (`call_id` unique per tenant): outcome, times,
//!   durations and hangup cause, from the route API or the Asterisk compatibility route.
//!
//! FROZEN once committed: never edit; add a new migration instead.

use sea_orm_migration::prelude::*;

pub(super) struct Campaigns;

impl MigrationName for Campaigns {
    fn name(&self) -> &str {
        "m20261124_000002_campaigns"
    }
}

#[derive(Iden)]
enum PhoneNumbers {
    Table,
    Id,
    TenantId,
    Number,
    Name,
    Notes,
    QueueId,
    CampaignId,
    Active,
    CreatedAt,
    UpdatedAt,
    Version,
}

#[derive(Iden)]
enum Destinations {
    Table,
    Id,
    TenantId,
    Name,
    SipUri,
    Number,
    Active,
    ClientIdentifier,
    OutboundAuth,
    CalleridOverride,
    Context,
    Transport,
    CreatedAt,
    UpdatedAt,
    Version,
}

#[derive(Iden)]
enum CampaignsT {
    #[iden = "campaigns"]
    Table,
    Id,
    TenantId,
    Name,
    Strategy,
    DialTimeoutS,
    MaxCallS,
    Active,
    LastUsedLinkId,
    CreatedAt,
    UpdatedAt,
    Version,
}

#[derive(Iden)]
enum CampaignLinks {
    Table,
    Id,
    TenantId,
    CampaignId,
    DestinationId,
    Position,
    Priority,
    Weight,
    ConcurrencyCap,
    TotalCap,
    Active,
    ActiveCalls,
    TotalCalls,
    CreatedAt,
    UpdatedAt,
}

#[derive(Iden)]
enum RouteReservations {
    Table,
    Id,
    TenantId,
    CallId,
    Did,
    CampaignId,
    LinkId,
    QueueId,
    ReservedAt,
    ExpiresAt,
    AnsweredLeaseS,
    AnsweredAt,
    AnsweredTarget,
    ReleasedAt,
    Answer,
}

#[derive(Iden)]
enum Cdrs {
    Table,
    Id,
    TenantId,
    CallId,
    Source,
    Did,
    CampaignId,
    DestinationId,
    LinkId,
    QueueId,
    Target,
    Status,
    RawStatus,
    CallerIdNum,
    CallerIdName,
    StartedAt,
    AnsweredAt,
    EndedAt,
    DurationS,
    BillsecS,
    HangupCause,
    HangupCauseCode,
    LinkedId,
    CreatedAt,
}

fn uuid(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c).uuid().not_null().to_owned()
}
fn uuid_null(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c).uuid().null().to_owned()
}
fn text(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c).text().not_null().to_owned()
}
fn text_null(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c).text().null().to_owned()
}
fn int(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c).integer().not_null().to_owned()
}
fn int_null(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c).integer().null().to_owned()
}
fn big(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c).big_integer().not_null().to_owned()
}
fn big_null(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c).big_integer().null().to_owned()
}
fn boolean(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c).boolean().not_null().to_owned()
}

async fn index(
    m: &SchemaManager<'_>,
    name: &str,
    table: impl IntoIden + 'static,
    cols: Vec<DynIden>,
    unique: bool,
) -> Result<(), DbErr> {
    let mut i = Index::create().name(name).table(table).to_owned();
    for c in cols {
        i.col(c);
    }
    if unique {
        i.unique();
    }
    m.create_index(i).await
}

#[async_trait::async_trait]
impl MigrationTrait for Campaigns {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(PhoneNumbers::Table)
                .col(uuid(PhoneNumbers::Id).primary_key())
                .col(uuid(PhoneNumbers::TenantId))
                .col(text(PhoneNumbers::Number))
                .col(text_null(PhoneNumbers::Name))
                .col(text_null(PhoneNumbers::Notes))
                .col(text_null(PhoneNumbers::QueueId))
                .col(uuid_null(PhoneNumbers::CampaignId))
                .col(boolean(PhoneNumbers::Active))
                .col(big(PhoneNumbers::CreatedAt))
                .col(big(PhoneNumbers::UpdatedAt))
                .col(big(PhoneNumbers::Version))
                .to_owned(),
        )
        .await?;
        // A number belongs to at most one DID of a tenant; the route API looks it up by it.
        index(
            m,
            "phone_numbers_tenant_number",
            PhoneNumbers::Table,
            vec![
                PhoneNumbers::TenantId.into_iden(),
                PhoneNumbers::Number.into_iden(),
            ],
            true,
        )
        .await?;
        index(
            m,
            "phone_numbers_tenant_id",
            PhoneNumbers::Table,
            vec![
                PhoneNumbers::TenantId.into_iden(),
                PhoneNumbers::Id.into_iden(),
            ],
            false,
        )
        .await?;
        // "Is this campaign still the target of a DID?" before it is deleted.
        index(
            m,
            "phone_numbers_campaign",
            PhoneNumbers::Table,
            vec![PhoneNumbers::CampaignId.into_iden()],
            false,
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Destinations::Table)
                .col(uuid(Destinations::Id).primary_key())
                .col(uuid(Destinations::TenantId))
                .col(text(Destinations::Name))
                .col(text_null(Destinations::SipUri))
                .col(text_null(Destinations::Number))
                .col(boolean(Destinations::Active))
                .col(text_null(Destinations::ClientIdentifier))
                .col(text_null(Destinations::OutboundAuth))
                .col(text_null(Destinations::CalleridOverride))
                .col(text_null(Destinations::Context))
                .col(text_null(Destinations::Transport))
                .col(big(Destinations::CreatedAt))
                .col(big(Destinations::UpdatedAt))
                .col(big(Destinations::Version))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "destinations_tenant_id",
            Destinations::Table,
            vec![
                Destinations::TenantId.into_iden(),
                Destinations::Id.into_iden(),
            ],
            false,
        )
        .await?;

        m.create_table(
            Table::create()
                .table(CampaignsT::Table)
                .col(uuid(CampaignsT::Id).primary_key())
                .col(uuid(CampaignsT::TenantId))
                .col(text(CampaignsT::Name))
                .col(text(CampaignsT::Strategy))
                .col(int(CampaignsT::DialTimeoutS))
                .col(int(CampaignsT::MaxCallS))
                .col(boolean(CampaignsT::Active))
                .col(uuid_null(CampaignsT::LastUsedLinkId))
                .col(big(CampaignsT::CreatedAt))
                .col(big(CampaignsT::UpdatedAt))
                .col(big(CampaignsT::Version))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "campaigns_tenant_id",
            CampaignsT::Table,
            vec![CampaignsT::TenantId.into_iden(), CampaignsT::Id.into_iden()],
            false,
        )
        .await?;

        m.create_table(
            Table::create()
                .table(CampaignLinks::Table)
                .col(uuid(CampaignLinks::Id).primary_key())
                .col(uuid(CampaignLinks::TenantId))
                .col(uuid(CampaignLinks::CampaignId))
                .col(uuid(CampaignLinks::DestinationId))
                .col(int(CampaignLinks::Position))
                .col(int(CampaignLinks::Priority))
                .col(int(CampaignLinks::Weight))
                .col(int_null(CampaignLinks::ConcurrencyCap))
                .col(big_null(CampaignLinks::TotalCap))
                .col(boolean(CampaignLinks::Active))
                .col(int(CampaignLinks::ActiveCalls))
                .col(big(CampaignLinks::TotalCalls))
                .col(big(CampaignLinks::CreatedAt))
                .col(big(CampaignLinks::UpdatedAt))
                .to_owned(),
        )
        .await?;
        // A destination appears once per campaign; a decision reads a campaign's links.
        index(
            m,
            "campaign_links_campaign_destination",
            CampaignLinks::Table,
            vec![
                CampaignLinks::CampaignId.into_iden(),
                CampaignLinks::DestinationId.into_iden(),
            ],
            true,
        )
        .await?;
        // "Is this destination still linked?" before it is deleted.
        index(
            m,
            "campaign_links_destination",
            CampaignLinks::Table,
            vec![CampaignLinks::DestinationId.into_iden()],
            false,
        )
        .await?;

        m.create_table(
            Table::create()
                .table(RouteReservations::Table)
                .col(uuid(RouteReservations::Id).primary_key())
                .col(uuid(RouteReservations::TenantId))
                .col(text_null(RouteReservations::CallId))
                .col(text(RouteReservations::Did))
                .col(uuid_null(RouteReservations::CampaignId))
                .col(uuid_null(RouteReservations::LinkId))
                .col(text_null(RouteReservations::QueueId))
                .col(big(RouteReservations::ReservedAt))
                .col(big_null(RouteReservations::ExpiresAt))
                .col(int_null(RouteReservations::AnsweredLeaseS))
                .col(big_null(RouteReservations::AnsweredAt))
                .col(text_null(RouteReservations::AnsweredTarget))
                .col(big_null(RouteReservations::ReleasedAt))
                .col(text(RouteReservations::Answer))
                .to_owned(),
        )
        .await?;
        // Idempotency of the route API (NULL call ids, of the compatibility route, repeat).
        index(
            m,
            "route_reservations_tenant_call",
            RouteReservations::Table,
            vec![
                RouteReservations::TenantId.into_iden(),
                RouteReservations::CallId.into_iden(),
            ],
            true,
        )
        .await?;
        // The open reservations of a campaign (lazy expiry) and of a link (compat release).
        index(
            m,
            "route_reservations_campaign_open",
            RouteReservations::Table,
            vec![
                RouteReservations::CampaignId.into_iden(),
                RouteReservations::ReleasedAt.into_iden(),
                RouteReservations::ExpiresAt.into_iden(),
            ],
            false,
        )
        .await?;
        index(
            m,
            "route_reservations_link_open",
            RouteReservations::Table,
            vec![
                RouteReservations::LinkId.into_iden(),
                RouteReservations::ReleasedAt.into_iden(),
            ],
            false,
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Cdrs::Table)
                .col(uuid(Cdrs::Id).primary_key())
                .col(uuid(Cdrs::TenantId))
                .col(text(Cdrs::CallId))
                .col(text(Cdrs::Source))
                .col(text_null(Cdrs::Did))
                .col(uuid_null(Cdrs::CampaignId))
                .col(uuid_null(Cdrs::DestinationId))
                .col(uuid_null(Cdrs::LinkId))
                .col(text_null(Cdrs::QueueId))
                .col(text_null(Cdrs::Target))
                .col(text(Cdrs::Status))
                .col(text_null(Cdrs::RawStatus))
                .col(text_null(Cdrs::CallerIdNum))
                .col(text_null(Cdrs::CallerIdName))
                .col(big(Cdrs::StartedAt))
                .col(big_null(Cdrs::AnsweredAt))
                .col(big_null(Cdrs::EndedAt))
                .col(big_null(Cdrs::DurationS))
                .col(big_null(Cdrs::BillsecS))
                .col(text_null(Cdrs::HangupCause))
                .col(int_null(Cdrs::HangupCauseCode))
                .col(text_null(Cdrs::LinkedId))
                .col(big(Cdrs::CreatedAt))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "cdrs_tenant_call",
            Cdrs::Table,
            vec![Cdrs::TenantId.into_iden(), Cdrs::CallId.into_iden()],
            true,
        )
        .await?;
        index(
            m,
            "cdrs_tenant_id",
            Cdrs::Table,
            vec![Cdrs::TenantId.into_iden(), Cdrs::Id.into_iden()],
            false,
        )
        .await?;
        Ok(())
    }
}
