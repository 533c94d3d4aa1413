//! Destinations: the call centers a campaign sends calls to (the call seller's clients),
//! reached at a SIP URI or an E.164 number. Every change is written with its audit entry in
//! one transaction; a destination still linked to a campaign is not deleted.

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};
use serde::Serialize;
use uuid::Uuid;

use switchboard_core::TenantId;

use crate::audit::Actor;
use crate::crud::{audit, check_version, lock, update_action, Keys};
use crate::entity::{campaign_link, destination};
use crate::{Store, StoreError};

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// Destination id (UUIDv7).
    pub id: Uuid,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Its settings.
    pub settings: DestinationSettings,
    /// Epoch ms.
    pub created_at: i64,
    /// Epoch ms.
    pub updated_at: i64,
    /// Bumped on every change (the `ETag`).
    pub version: i64,
}

impl Destination {
    /// The destination as the audit log shows it.
    pub fn audit_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(&self.settings).unwrap_or_default();
        v["id"] = serde_json::json!(self.id);
        v
    }

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
    Destination {
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

fn keys() -> Keys<destination::Column> {
    Keys {
        id: destination::Column::Id,
        tenant: destination::Column::TenantId,
        touch: destination::Column::Version,
    }
}

/// The destination `id` of `tenant_id`, read on `db`. Errors: `NotFound`.
pub(crate) async fn find_destination<C: ConnectionTrait>(
    db: &C,
    tenant_id: TenantId,
    id: Uuid,
) -> Result<Destination, StoreError> {
    destination::Entity::find_by_id(id)
        .filter(destination::Column::TenantId.eq(tenant_id.0))
        .one(db)
        .await?
        .map(destination_from)
        .ok_or(StoreError::NotFound)
}

impl Store {
    /// Creates a destination, with its audit entry.
    pub async fn create_destination(
        &self,
        tenant_id: TenantId,
        settings: &DestinationSettings,
        actor: &Actor,
        now: i64,
    ) -> Result<Destination, StoreError> {
        let d = Destination {
            id: Uuid::now_v7(),
            tenant_id,
            settings: settings.clone(),
            created_at: now,
            updated_at: now,
            version: 1,
        };
        let txn = self.db.begin().await?;
        destination::Entity::insert(row(&d)).exec(&txn).await?;
        let after = Some(d.audit_json());
        audit(
            &txn,
            tenant_id,
            actor,
            "destination.create",
            ("destination", d.id),
            None,
            after,
            now,
        )
        .await?;
        txn.commit().await?;
        Ok(d)
    }

    /// One destination. Errors: `NotFound`.
    pub async fn destination(
        &self,
        tenant_id: TenantId,
        id: Uuid,
    ) -> Result<Destination, StoreError> {
        find_destination(&self.db, tenant_id, id).await
    }

    /// Destinations in id (creation) order, after `after`, at most `limit`.
    pub async fn destinations(
        &self,
        tenant_id: TenantId,
        after: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<Destination>, StoreError> {
        let mut q =
            destination::Entity::find().filter(destination::Column::TenantId.eq(tenant_id.0));
        if let Some(a) = after {
            q = q.filter(destination::Column::Id.gt(a));
        }
        Ok(q.order_by_asc(destination::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(destination_from)
            .collect())
    }

    /// Writes a destination's settings if it is still at version `expect`, with its audit
    /// entry; settings equal to the stored ones write nothing.
    ///
    /// Errors: `NotFound`; `VersionMismatch`.
    pub async fn update_destination(
        &self,
        tenant_id: TenantId,
        id: Uuid,
        settings: &DestinationSettings,
        expect: i64,
        actor: &Actor,
        now: i64,
    ) -> Result<Destination, StoreError> {
        let txn = self.db.begin().await?;
        lock::<destination::Entity, _>(&txn, keys(), tenant_id, id).await?;
        let before = find_destination(&txn, tenant_id, id).await?;
        check_version(expect, before.version)?;
        if before.settings == *settings {
            txn.commit().await?;
            return Ok(before);
        }
        let after = Destination {
            settings: settings.clone(),
            updated_at: now,
            version: before.version + 1,
            ..before.clone()
        };
        destination::Entity::update(row(&after)).exec(&txn).await?;
        let action = update_action("destination", before.settings.active, settings.active);
        let (b, a) = (Some(before.audit_json()), Some(after.audit_json()));
        audit(
            &txn,
            tenant_id,
            actor,
            &action,
            ("destination", id),
            b,
            a,
            now,
        )
        .await?;
        txn.commit().await?;
        Ok(after)
    }

    /// Deletes a destination, with its audit entry.
    ///
    /// Errors: `NotFound`; `Conflict` while a campaign links it.
    pub async fn delete_destination(
        &self,
        tenant_id: TenantId,
        id: Uuid,
        actor: &Actor,
        now: i64,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin().await?;
        lock::<destination::Entity, _>(&txn, keys(), tenant_id, id).await?;
        let before = find_destination(&txn, tenant_id, id).await?;
        let linked = campaign_link::Entity::find()
            .filter(campaign_link::Column::DestinationId.eq(id))
            .filter(campaign_link::Column::TenantId.eq(tenant_id.0))
            .one(&txn)
            .await?;
        if let Some(l) = linked {
            return Err(StoreError::Conflict(format!(
                "the destination is linked to campaign {}: remove it from the campaign's \
                 destinations first (PUT /api/v1/campaigns/{}/destinations)",
                l.campaign_id, l.campaign_id
            )));
        }
        destination::Entity::delete_by_id(id).exec(&txn).await?;
        let b = Some(before.audit_json());
        audit(
            &txn,
            tenant_id,
            actor,
            "destination.delete",
            ("destination", id),
            b,
            None,
            now,
        )
        .await?;
        txn.commit().await?;
        Ok(())
    }
}
