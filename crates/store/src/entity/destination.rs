//! `destinations`: other call centers a campaign sends calls to.
use sea_orm::entity::prelude::*;

/// One destination (a row of `destinations`).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "destinations")]
pub struct Model {
    /// Destination id (UUIDv7).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Owning tenant.
    pub tenant_id: Uuid,
    /// Display name.
    pub name: String,
    /// Where to send calls: a `sip:`/`sips:` URI (exactly one of `sip_uri`, `number`).
    pub sip_uri: Option<String>,
    /// Where to send calls: an E.164 number.
    pub number: Option<String>,
    /// False: no campaign sends it calls.
    pub active: bool,
    /// The call-seller platform's PJSIP endpoint id or group name.
    pub client_identifier: Option<String>,
    /// PJSIP `outbound_auth` of the endpoint.
    pub outbound_auth: Option<String>,
    /// Caller id to present.
    pub callerid_override: Option<String>,
    /// Asterisk dialplan context.
    pub context: Option<String>,
    /// PJSIP transport.
    pub transport: Option<String>,
    /// Epoch ms.
    pub created_at: i64,
    /// Epoch ms.
    pub updated_at: i64,
    /// Bumped on every change (the `ETag`).
    pub version: i64,
}

/// No relations are declared.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
