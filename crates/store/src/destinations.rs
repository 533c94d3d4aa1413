//! Destinations: the call centers a campaign sends calls to (the call seller's clients),
//! reached at a SIP URI or an E.164 number. Every change is written with its audit entry in
//! one transaction; a destination still linked to a campaign is not deleted.

use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde::Serialize;
use serde_json::Value;

use switchboard_core::TenantId;

use crate::crud::{Keys, Resource, Versioned};
use crate::entity::{campaign_link, destination};
use crate::StoreError;

/// What a client sets of a destination (validated by the server).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DestinationSettings {
    /// Display name.
    pub name: String,
    /// A `sip:`/`sips:` URI to send calls to (exactly one of `sip_uri`, `number`).
    pub sip_uri: Option<String>,
    /// An E.164 number to send calls to.
    pub number: Option<String>,
    /// False: no campaign sends it calls.
    pub active: bool,
    /// The call-seller platform's PJSIP endpoint id or group name (compatibility API).
    pub client_identifier: Option<String>,
    /// PJSIP `outbound_auth` (compatibility API).
    pub outbound_auth: Option<String>,
    /// Caller id to present (compatibility API).
    pub callerid_override: Option<String>,
    /// Asterisk dialplan context (compatibility API).
    pub context: Option<String>,
    /// PJSIP transport (compatibility API).
    pub transport: Option<String>,
}

/// A stored destination.
pub type Destination = Versioned<DestinationSettings>;

impl Destination {
    /// Where telephony sends a call for it: the SIP URI, else `tel:<E.164>` (RFC 3966) for the
    /// proxy to hand to its PSTN gateway.
    pub fn target(&self) -> String {
        match (&self.settings.sip_uri, &self.settings.number) {
            (Some(u), _) => u.clone(),
            (None, Some(n)) => format!("tel:{n}"),
            (None, None) => String::new(),
        }
    }
}

pub(crate) fn destination_from(m: destination::Model) -> Destination {
    Versioned {
        id: m.id,
        tenant_id: TenantId(m.tenant_id),
        settings: DestinationSettings {
            name: m.name,
            sip_uri: m.sip_uri,
            number: m.number,
            active: m.active,
            client_identifier: m.client_identifier,
            outbound_auth: m.outbound_auth,
            callerid_override: m.callerid_override,
            context: m.context,
            transport: m.transport,
        },
        created_at: m.created_at,
        updated_at: m.updated_at,
        version: m.version,
    }
}

impl Resource for DestinationSettings {
    type Entity = destination::Entity;
    type Row = destination::Model;
    type Active = destination::ActiveModel;
    const KIND: &'static str = "destination";
    const TAKEN: &'static str = "the destination exists";

    fn keys() -> Keys<destination::Column> {
        Keys {
            id: destination::Column::Id,
            tenant: destination::Column::TenantId,
            version: destination::Column::Version,
        }
    }

    fn from_model(m: destination::Model) -> Result<Destination, StoreError> {
        Ok(destination_from(m))
    }

    fn row(d: &Destination) -> destination::ActiveModel {
        let s = d.settings.clone();
        destination::ActiveModel {
            id: Set(d.id),
            tenant_id: Set(d.tenant_id.0),
            name: Set(s.name),
            sip_uri: Set(s.sip_uri),
            number: Set(s.number),
            active: Set(s.active),
            client_identifier: Set(s.client_identifier),
            outbound_auth: Set(s.outbound_auth),
            callerid_override: Set(s.callerid_override),
            context: Set(s.context),
            transport: Set(s.transport),
            created_at: Set(d.created_at),
            updated_at: Set(d.updated_at),
            version: Set(d.version),
        }
    }

    fn active(&self) -> bool {
        self.active
    }

    fn audit_json(d: &Destination) -> Value {
        let mut v = serde_json::to_value(&d.settings).unwrap_or_default();
        v["id"] = serde_json::json!(d.id);
        v
    }

    /// Errors: `Conflict` while a campaign links it.
    async fn before_delete<C: ConnectionTrait>(
        db: &C,
        d: &Destination,
    ) -> Result<Value, StoreError> {
        let linked = campaign_link::Entity::find()
            .filter(campaign_link::Column::DestinationId.eq(d.id))
            .filter(campaign_link::Column::TenantId.eq(d.tenant_id.0))
            .one(db)
            .await?;
        if let Some(l) = linked {
            return Err(StoreError::Conflict(format!(
                "the destination is linked to campaign {}: remove it from the campaign's \
                 destinations first (PUT /api/v1/campaigns/{}/destinations)",
                l.campaign_id, l.campaign_id
            )));
        }
        Ok(Self::audit_json(d))
    }
}
