//! Campaigns and their links to destinations (the call-seller model): how a DID's calls
//! spread over destination call centers, with each link's priority, weight, caps and
//! counters. Every change is written with its audit entry in one transaction. The counters
//! are changed only by routing ([`crate::reservations`]); replacing a campaign's links keeps
//! the counters of the links that stay.

use std::collections::HashMap;

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};
use serde::Serialize;
use uuid::Uuid;

use switchboard_core::routing::CampaignStrategy;
use switchboard_core::TenantId;

use crate::audit::Actor;
use crate::crud::{audit, check_version, lock, update_action, Keys};
use crate::entity::{campaign, campaign_link, destination, phone_number};
use crate::{corrupt, Store, StoreError};

/// What a client sets of a campaign (validated by the server).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CampaignSettings {
    /// Display name.
    pub name: String,
    /// How calls spread over the destinations.
    pub strategy: CampaignStrategy,
    /// How long a destination may ring, seconds: the route answer's `timeout_s`, and how long
    /// a routed call holds its slot before it is answered.
    pub dial_timeout_s: u32,
    /// Longest call, seconds: how long an answered call holds its slot without a CDR.
    pub max_call_s: u32,
    /// False: its DIDs' calls are rejected.
    pub active: bool,
}

/// A stored campaign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Campaign {
    /// Campaign id (UUIDv7).
    pub id: Uuid,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Its settings.
    pub settings: CampaignSettings,
    /// The link the previous call went to (`round_robin`).
    pub last_used_link_id: Option<Uuid>,
    /// Epoch ms.
    pub created_at: i64,
    /// Epoch ms.
    pub updated_at: i64,
    /// Bumped on every change of the settings (the `ETag`).
    pub version: i64,
}

impl Campaign {
    /// The campaign as the audit log shows it.
    pub fn audit_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(&self.settings).unwrap_or_default();
        v["id"] = serde_json::json!(self.id);
        v
    }
}

/// What a client sets of one campaign–destination link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LinkSettings {
    /// The destination.
    pub destination_id: Uuid,
    /// Lower first (`priority`).
    pub priority: u32,
    /// Share of calls (`weighted`).
    pub weight: u32,
    /// Most calls up at once (`None`: no cap).
    pub concurrency_cap: Option<u32>,
    /// Most calls ever (`None`: no cap).
    pub total_cap: Option<u64>,
    /// False: the link takes no calls.
    pub active: bool,
}

/// A stored link, with its counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignLink {
    /// Link id (UUIDv7): the compatibility API's `campaignClientSettingId`.
    pub id: Uuid,
    /// The campaign.
    pub campaign_id: Uuid,
    /// Place in the campaign's list (0-based).
    pub position: u32,
    /// Its settings.
    pub settings: LinkSettings,
    /// Calls holding a slot now.
    pub active_calls: u32,
    /// Calls ever routed over it.
    pub total_calls: u64,
}

pub(crate) fn campaign_from(m: campaign::Model) -> Result<Campaign, StoreError> {
    let strategy = serde_json::from_value(serde_json::Value::String(m.strategy))
        .map_err(|_| corrupt("campaigns.strategy"))?;
    Ok(Campaign {
        id: m.id,
        tenant_id: TenantId(m.tenant_id),
        settings: CampaignSettings {
            name: m.name,
            strategy,
            dial_timeout_s: m.dial_timeout_s.max(0) as u32,
            max_call_s: m.max_call_s.max(0) as u32,
            active: m.active,
        },
        last_used_link_id: m.last_used_link_id,
        created_at: m.created_at,
        updated_at: m.updated_at,
        version: m.version,
    })
}

/// The wire name of a strategy (`round_robin`).
pub fn strategy_name(s: CampaignStrategy) -> &'static str {
    match s {
        CampaignStrategy::Priority => "priority",
        CampaignStrategy::RoundRobin => "round_robin",
        CampaignStrategy::Weighted => "weighted",
    }
}

fn row(c: &Campaign) -> campaign::ActiveModel {
    let s = &c.settings;
    campaign::ActiveModel {
        id: Set(c.id),
        tenant_id: Set(c.tenant_id.0),
        name: Set(s.name.clone()),
        strategy: Set(strategy_name(s.strategy).to_owned()),
        dial_timeout_s: Set(s.dial_timeout_s.min(i32::MAX as u32) as i32),
        max_call_s: Set(s.max_call_s.min(i32::MAX as u32) as i32),
        active: Set(s.active),
        last_used_link_id: Set(c.last_used_link_id),
        created_at: Set(c.created_at),
        updated_at: Set(c.updated_at),
        version: Set(c.version),
    }
}

pub(crate) fn link_from(m: campaign_link::Model) -> CampaignLink {
    CampaignLink {
        id: m.id,
        campaign_id: m.campaign_id,
        position: m.position.max(0) as u32,
        settings: LinkSettings {
            destination_id: m.destination_id,
            priority: m.priority.max(0) as u32,
            weight: m.weight.max(0) as u32,
            concurrency_cap: m.concurrency_cap.map(|c| c.max(0) as u32),
            total_cap: m.total_cap.map(|c| c.max(0) as u64),
            active: m.active,
        },
        active_calls: m.active_calls.max(0) as u32,
        total_calls: m.total_calls.max(0) as u64,
    }
}

pub(crate) fn keys() -> Keys<campaign::Column> {
    Keys {
        id: campaign::Column::Id,
        tenant: campaign::Column::TenantId,
        touch: campaign::Column::Version,
    }
}

pub(crate) async fn find_campaign<C: ConnectionTrait>(
    db: &C,
    tenant_id: TenantId,
    id: Uuid,
) -> Result<Campaign, StoreError> {
    campaign_from(
        campaign::Entity::find_by_id(id)
            .filter(campaign::Column::TenantId.eq(tenant_id.0))
            .one(db)
            .await?
            .ok_or(StoreError::NotFound)?,
    )
}

/// A campaign's links in list order.
pub(crate) async fn find_links<C: ConnectionTrait>(
    db: &C,
    tenant_id: TenantId,
    campaign_id: Uuid,
) -> Result<Vec<CampaignLink>, StoreError> {
    Ok(campaign_link::Entity::find()
        .filter(campaign_link::Column::CampaignId.eq(campaign_id))
        .filter(campaign_link::Column::TenantId.eq(tenant_id.0))
        .order_by_asc(campaign_link::Column::Position)
        .all(db)
        .await?
        .into_iter()
        .map(link_from)
        .collect())
}

fn links_json(links: &[CampaignLink]) -> serde_json::Value {
    serde_json::json!(links
        .iter()
        .map(|l| {
            let mut v = serde_json::to_value(&l.settings).unwrap_or_default();
            v["id"] = serde_json::json!(l.id);
            v
        })
        .collect::<Vec<_>>())
}

fn clamp_i32(v: u32) -> i32 {
    v.min(i32::MAX as u32) as i32
}

fn clamp_i64(v: u64) -> i64 {
    v.min(i64::MAX as u64) as i64
}

impl Store {
    /// Creates a campaign (without destinations), with its audit entry.
    pub async fn create_campaign(
        &self,
        tenant_id: TenantId,
        settings: &CampaignSettings,
        actor: &Actor,
        now: i64,
    ) -> Result<Campaign, StoreError> {
        let c = Campaign {
            id: Uuid::now_v7(),
            tenant_id,
            settings: settings.clone(),
            last_used_link_id: None,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        let txn = self.db.begin().await?;
        campaign::Entity::insert(row(&c)).exec(&txn).await?;
        let after = Some(c.audit_json());
        audit(
            &txn,
            tenant_id,
            actor,
            "campaign.create",
            ("campaign", c.id),
            None,
            after,
            now,
        )
        .await?;
        txn.commit().await?;
        Ok(c)
    }

    /// One campaign. Errors: `NotFound`.
    pub async fn campaign(&self, tenant_id: TenantId, id: Uuid) -> Result<Campaign, StoreError> {
        find_campaign(&self.db, tenant_id, id).await
    }

    /// Campaigns in id (creation) order, after `after`, at most `limit`.
    pub async fn campaigns(
        &self,
        tenant_id: TenantId,
        after: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<Campaign>, StoreError> {
        let mut q = campaign::Entity::find().filter(campaign::Column::TenantId.eq(tenant_id.0));
        if let Some(a) = after {
            q = q.filter(campaign::Column::Id.gt(a));
        }
        q.order_by_asc(campaign::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(campaign_from)
            .collect()
    }

    /// Writes a campaign's settings if it is still at version `expect`, with its audit entry;
    /// settings equal to the stored ones write nothing. Reservations made before keep their
    /// leases.
    ///
    /// Errors: `NotFound`; `VersionMismatch`.
    pub async fn update_campaign(
        &self,
        tenant_id: TenantId,
        id: Uuid,
        settings: &CampaignSettings,
        expect: i64,
        actor: &Actor,
        now: i64,
    ) -> Result<Campaign, StoreError> {
        let txn = self.db.begin().await?;
        lock::<campaign::Entity, _>(&txn, keys(), tenant_id, id).await?;
        let before = find_campaign(&txn, tenant_id, id).await?;
        check_version(expect, before.version)?;
        if before.settings == *settings {
            txn.commit().await?;
            return Ok(before);
        }
        let after = Campaign {
            settings: settings.clone(),
            updated_at: now,
            version: before.version + 1,
            ..before.clone()
        };
        campaign::Entity::update(row(&after)).exec(&txn).await?;
        let action = update_action("campaign", before.settings.active, settings.active);
        let (b, a) = (Some(before.audit_json()), Some(after.audit_json()));
        audit(&txn, tenant_id, actor, &action, ("campaign", id), b, a, now).await?;
        txn.commit().await?;
        Ok(after)
    }

    /// Deletes a campaign and its links, with its audit entry. Calls it routed keep their
    /// CDRs; their slots die with the links.
    ///
    /// Errors: `NotFound`; `Conflict` while a DID points to it.
    pub async fn delete_campaign(
        &self,
        tenant_id: TenantId,
        id: Uuid,
        actor: &Actor,
        now: i64,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin().await?;
        lock::<campaign::Entity, _>(&txn, keys(), tenant_id, id).await?;
        let before = find_campaign(&txn, tenant_id, id).await?;
        let did = phone_number::Entity::find()
            .filter(phone_number::Column::CampaignId.eq(id))
            .filter(phone_number::Column::TenantId.eq(tenant_id.0))
            .one(&txn)
            .await?;
        if let Some(d) = did {
            return Err(StoreError::Conflict(format!(
                "DID {} ({}) routes to this campaign: point it elsewhere or delete it first",
                d.number, d.id
            )));
        }
        let links = find_links(&txn, tenant_id, id).await?;
        campaign_link::Entity::delete_many()
            .filter(campaign_link::Column::CampaignId.eq(id))
            .exec(&txn)
            .await?;
        campaign::Entity::delete_by_id(id).exec(&txn).await?;
        let mut b = before.audit_json();
        b["destinations"] = links_json(&links);
        audit(
            &txn,
            tenant_id,
            actor,
            "campaign.delete",
            ("campaign", id),
            Some(b),
            None,
            now,
        )
        .await?;
        txn.commit().await?;
        Ok(())
    }

    /// A campaign's links in list order, with their counters. Errors: `NotFound` (campaign).
    pub async fn campaign_links(
        &self,
        tenant_id: TenantId,
        campaign_id: Uuid,
    ) -> Result<Vec<CampaignLink>, StoreError> {
        find_campaign(&self.db, tenant_id, campaign_id).await?;
        find_links(&self.db, tenant_id, campaign_id).await
    }

    /// The link `id` of `tenant_id`. Errors: `NotFound`.
    pub async fn campaign_link(
        &self,
        tenant_id: TenantId,
        id: Uuid,
    ) -> Result<CampaignLink, StoreError> {
        campaign_link::Entity::find_by_id(id)
            .filter(campaign_link::Column::TenantId.eq(tenant_id.0))
            .one(&self.db)
            .await?
            .map(link_from)
            .ok_or(StoreError::NotFound)
    }

    /// Replaces a campaign's links with `links` (in this order), with one audit entry
    /// (`campaign.destinations_update`): a link whose destination stays keeps its id and its
    /// counters, a new destination gets a new link at zero, a destination left out loses its
    /// link (calls up on it keep going; their slots are gone with it). The same list again
    /// writes nothing.
    ///
    /// Errors: `NotFound` (campaign); `Invalid` on `[i].destination_id` for a destination
    /// the tenant lacks or named twice.
    pub async fn put_campaign_links(
        &self,
        tenant_id: TenantId,
        campaign_id: Uuid,
        links: &[LinkSettings],
        actor: &Actor,
        now: i64,
    ) -> Result<Vec<CampaignLink>, StoreError> {
        let txn = self.db.begin().await?;
        // The campaign's lock also serialises this with its routing decisions.
        lock::<campaign::Entity, _>(&txn, keys(), tenant_id, campaign_id).await?;
        let before = find_links(&txn, tenant_id, campaign_id).await?;
        let mut seen = HashMap::new();
        for (i, l) in links.iter().enumerate() {
            let invalid = |detail: String| StoreError::Invalid {
                field: format!("[{i}].destination_id"),
                detail,
            };
            if let Some(j) = seen.insert(l.destination_id, i) {
                return Err(invalid(format!("the same destination as [{j}]")));
            }
            let exists = destination::Entity::find_by_id(l.destination_id)
                .filter(destination::Column::TenantId.eq(tenant_id.0))
                .one(&txn)
                .await?
                .is_some();
            if !exists {
                return Err(invalid(format!("no destination {}", l.destination_id)));
            }
        }
        let unchanged =
            before.len() == links.len() && before.iter().zip(links).all(|(b, l)| b.settings == *l);
        if unchanged {
            txn.commit().await?;
            return Ok(before);
        }
        let old: HashMap<Uuid, &CampaignLink> = before
            .iter()
            .map(|l| (l.settings.destination_id, l))
            .collect();
        let gone: Vec<Uuid> = before
            .iter()
            .filter(|l| !seen.contains_key(&l.settings.destination_id))
            .map(|l| l.id)
            .collect();
        if !gone.is_empty() {
            campaign_link::Entity::delete_many()
                .filter(campaign_link::Column::Id.is_in(gone))
                .exec(&txn)
                .await?;
        }
        for (i, l) in links.iter().enumerate() {
            let kept = old.get(&l.destination_id);
            let m = campaign_link::ActiveModel {
                id: Set(kept.map_or_else(Uuid::now_v7, |k| k.id)),
                tenant_id: Set(tenant_id.0),
                campaign_id: Set(campaign_id),
                destination_id: Set(l.destination_id),
                position: Set(i as i32),
                priority: Set(clamp_i32(l.priority)),
                weight: Set(clamp_i32(l.weight)),
                concurrency_cap: Set(l.concurrency_cap.map(clamp_i32)),
                total_cap: Set(l.total_cap.map(clamp_i64)),
                active: Set(l.active),
                updated_at: Set(now),
                ..Default::default()
            };
            if kept.is_some() {
                // Counters and creation time stay as they are (NotSet).
                campaign_link::Entity::update(m).exec(&txn).await?;
            } else {
                let m = campaign_link::ActiveModel {
                    active_calls: Set(0),
                    total_calls: Set(0),
                    created_at: Set(now),
                    ..m
                };
                campaign_link::Entity::insert(m).exec(&txn).await?;
            }
        }
        let after = find_links(&txn, tenant_id, campaign_id).await?;
        let (b, a) = (Some(links_json(&before)), Some(links_json(&after)));
        let action = "campaign.destinations_update";
        audit(
            &txn,
            tenant_id,
            actor,
            action,
            ("campaign", campaign_id),
            b,
            a,
            now,
        )
        .await?;
        txn.commit().await?;
        Ok(after)
    }
}
