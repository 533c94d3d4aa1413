//! `tenants`: one organisation.
use sea_orm::entity::prelude::*;

/// One tenant (a row of `tenants`).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tenants")]
pub struct Model {
    /// Tenant id (UUIDv7).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Unique short name (`default` for the tenant made at bootstrap).
    #[sea_orm(unique)]
    pub slug: String,
    /// Display name.
    pub name: String,
    /// `live` or `event_time`.
    pub clock: String,
    /// Creation time, epoch ms.
    pub created_at: i64,
    /// Last change, epoch ms.
    pub updated_at: i64,
    /// Sequence number of the tenant's last stored event (0 before the first).
    pub last_seq: i64,
    /// Largest stored event timestamp, epoch ms (the `event_time` clock's watermark).
    pub watermark: Option<i64>,
    /// Bumped on every settings change: the `ETag` of `GET /api/v1/tenant`.
    pub version: i64,
    /// IANA time zone for day boundaries (`Europe/Paris`; default `UTC`).
    pub time_zone: String,
    /// ISO 3166-1 alpha-2 country for national phone numbers (`FR`), if set.
    pub default_region: Option<String>,
    /// False once deactivated: its credentials stop working, its data stays.
    pub active: bool,
}

/// No relations are declared.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
