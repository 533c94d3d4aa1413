//! Tenants, people and access control (issue 6):
//! - `tenants`: `time_zone` (IANA, default `UTC`), `default_region` (ISO 3166 alpha-2, for
//!   national phone numbers), `active` (a deactivated tenant's credentials stop working; its
//!   data stays);
//! - `api_keys`: `expires_at`, `rate_limit_per_s` and `rate_limit_burst` (a per-key request
//!   rate), `last_used_at` (written in the background, at most every few seconds);
//! - `users`: people, with a role and an argon2id password hash; the e-mail address is unique
//!   per tenant (stored lower-case);
//! - `refresh_tokens`: opaque refresh tokens stored as SHA-256, grouped in families (one login
//!   each); a token is used once, and a used token presented again revokes its family;
//! - `audit_log`: every administrative change, who made it, before and after (JSON text),
//!   written in the same transaction as the change.
//!
//! FROZEN once committed: never edit; add a new migration instead.

use sea_orm_migration::prelude::*;

pub(super) struct Identity;

impl MigrationName for Identity {
    fn name(&self) -> &str {
        "m20261123_000001_identity"
    }
}

#[derive(Iden)]
enum Tenants {
    Table,
    TimeZone,
    DefaultRegion,
    Active,
}

#[derive(Iden)]
enum ApiKeys {
    Table,
    ExpiresAt,
    RateLimitPerS,
    RateLimitBurst,
    LastUsedAt,
}

#[derive(Iden)]
enum Users {
    Table,
    Id,
    TenantId,
    Email,
    DisplayName,
    Role,
    PasswordHash,
    Active,
    CreatedAt,
    UpdatedAt,
    Version,
}

#[derive(Iden)]
enum RefreshTokens {
    Table,
    Id,
    FamilyId,
    UserId,
    TenantId,
    TokenHash,
    CreatedAt,
    ExpiresAt,
    UsedAt,
    RevokedAt,
}

#[derive(Iden)]
enum AuditLog {
    Table,
    Id,
    TenantId,
    At,
    ActorKind,
    ActorId,
    ActorName,
    Action,
    ResourceType,
    ResourceId,
    Before,
    After,
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

fn uuid(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c).uuid().not_null().to_owned()
}
fn text(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c).text().not_null().to_owned()
}
fn big(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c).big_integer().not_null().to_owned()
}
fn big_null(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c).big_integer().null().to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Identity {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        add_column(
            m,
            Tenants::Table,
            ColumnDef::new(Tenants::TimeZone)
                .text()
                .not_null()
                .default("UTC")
                .to_owned(),
        )
        .await?;
        add_column(
            m,
            Tenants::Table,
            ColumnDef::new(Tenants::DefaultRegion)
                .text()
                .null()
                .to_owned(),
        )
        .await?;
        add_column(
            m,
            Tenants::Table,
            ColumnDef::new(Tenants::Active)
                .boolean()
                .not_null()
                .default(true)
                .to_owned(),
        )
        .await?;
        add_column(m, ApiKeys::Table, big_null(ApiKeys::ExpiresAt)).await?;
        add_column(
            m,
            ApiKeys::Table,
            ColumnDef::new(ApiKeys::RateLimitPerS)
                .integer()
                .null()
                .to_owned(),
        )
        .await?;
        add_column(
            m,
            ApiKeys::Table,
            ColumnDef::new(ApiKeys::RateLimitBurst)
                .integer()
                .null()
                .to_owned(),
        )
        .await?;
        add_column(m, ApiKeys::Table, big_null(ApiKeys::LastUsedAt)).await?;

        m.create_table(
            Table::create()
                .table(Users::Table)
                .col(uuid(Users::Id).primary_key())
                .col(uuid(Users::TenantId))
                .col(text(Users::Email))
                .col(text(Users::DisplayName))
                .col(text(Users::Role))
                .col(text(Users::PasswordHash))
                .col(ColumnDef::new(Users::Active).boolean().not_null())
                .col(big(Users::CreatedAt))
                .col(big(Users::UpdatedAt))
                .col(big(Users::Version))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("users_tenant_email")
                .table(Users::Table)
                .col(Users::TenantId)
                .col(Users::Email)
                .unique()
                .to_owned(),
        )
        .await?;
        // Login without a tenant looks the address up across tenants.
        m.create_index(
            Index::create()
                .name("users_email")
                .table(Users::Table)
                .col(Users::Email)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(RefreshTokens::Table)
                .col(uuid(RefreshTokens::Id).primary_key())
                .col(uuid(RefreshTokens::FamilyId))
                .col(uuid(RefreshTokens::UserId))
                .col(uuid(RefreshTokens::TenantId))
                .col(text(RefreshTokens::TokenHash).unique_key())
                .col(big(RefreshTokens::CreatedAt))
                .col(big(RefreshTokens::ExpiresAt))
                .col(big_null(RefreshTokens::UsedAt))
                .col(big_null(RefreshTokens::RevokedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("refresh_tokens_family")
                .table(RefreshTokens::Table)
                .col(RefreshTokens::FamilyId)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("refresh_tokens_user")
                .table(RefreshTokens::Table)
                .col(RefreshTokens::UserId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(AuditLog::Table)
                .col(uuid(AuditLog::Id).primary_key())
                .col(uuid(AuditLog::TenantId))
                .col(big(AuditLog::At))
                .col(text(AuditLog::ActorKind))
                .col(ColumnDef::new(AuditLog::ActorId).text().null())
                .col(text(AuditLog::ActorName))
                .col(text(AuditLog::Action))
                .col(text(AuditLog::ResourceType))
                .col(text(AuditLog::ResourceId))
                .col(ColumnDef::new(AuditLog::Before).text().null())
                .col(ColumnDef::new(AuditLog::After).text().null())
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("audit_log_tenant_id")
                .table(AuditLog::Table)
                .col(AuditLog::TenantId)
                .col(AuditLog::Id)
                .to_owned(),
        )
        .await?;
        Ok(())
    }
}
