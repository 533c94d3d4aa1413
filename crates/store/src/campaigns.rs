//! Campaigns and their links to destinations (the call-seller model): how a DID's calls
//! spread over destination call centers, with each link's priority, weight, caps and
//! counters. Every change is written with its audit entry in one transaction. The counters
//! are changed only by routing ([`crate::reservations`]); replacing a campaign's links keeps
//! the counters of the links that stay.

use std::collections::HashMap;

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    TransactionTrait,
};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use switchboard_core::routing::CampaignStrategy;
use switchboard_core::TenantId;

use crate::audit::Actor;
use crate::crud::{self, audit, lock, Keys, Resource, Versioned};
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

/// A stored campaign (its routing state, the link used last, is the store's own).
pub type Campaign = Versioned<CampaignSettings>;

/// The wire name of a strategy (`round_robin`).
pub fn strategy_name(s: CampaignStrategy) -> &'static str {
    match s {
        CampaignStrategy::Priority => "priority",
        CampaignStrategy::RoundRobin => "round_robin",
        CampaignStrategy::Weighted => "weighted",
    }
}

fn strategy(name: &str) -> Option<CampaignStrategy> {
    use CampaignStrategy::*;
    [Priority, RoundRobin, Weighted]
        .into_iter()
        .find(|s| strategy_name(*s) == name)
}

impl Resource for CampaignSettings {
    type Entity = campaign::Entity;
    type Row = campaign::Model;
    type Active = campaign::ActiveModel;
    const KIND: &'static str = "campaign";
    const TAKEN: &'static str = "the campaign exists";

    fn keys() -> Keys<campaign::Column> {
        Keys {
            id: campaign::Column::Id,
            tenant: campaign::Column::TenantId,
            version: campaign::Column::Version,
        }
    }

    fn from_model(m: campaign::Model) -> Result<Campaign, StoreError> {
        Ok(Versioned {
            id: m.id,
            tenant_id: TenantId(m.tenant_id),
            settings: CampaignSettings {
                name: m.name,
                strategy: strategy(&m.strategy).ok_or_else(|| corrupt("campaigns.strategy"))?,
                dial_timeout_s: m.dial_timeout_s.max(0) as u32,
                max_call_s: m.max_call_s.max(0) as u32,
                active: m.active,
            },
            created_at: m.created_at,
            updated_at: m.updated_at,
            version: m.version,
        })
    }

    /// Every column but `last_used_link_id`, which only routing writes.
    fn row(c: &Campaign) -> campaign::ActiveModel {
        let s = &c.settings;
        campaign::ActiveModel {
            id: Set(c.id),
            tenant_id: Set(c.tenant_id.0),
            name: Set(s.name.clone()),
            strategy: Set(strategy_name(s.strategy).to_owned()),
            dial_timeout_s: Set(clamp_i32(s.dial_timeout_s)),
            max_call_s: Set(clamp_i32(s.max_call_s)),
            active: Set(s.active),
            created_at: Set(c.created_at),
            updated_at: Set(c.updated_at),
            version: Set(c.version),
            ..Default::default()
        }
    }

    fn active(&self) -> bool {
        self.active
    }

    fn audit_json(c: &Campaign) -> Value {
        let mut v = serde_json::to_value(&c.settings).unwrap_or_default();
        v["id"] = serde_json::json!(c.id);
        v
    }

    /// Deletes the campaign's links; the audit entry's `before` lists them.
    ///
    /// Errors: `Conflict` while a DID points to the campaign.
    async fn before_delete<C: ConnectionTrait>(db: &C, c: &Campaign) -> Result<Value, StoreError> {
        let did = phone_number::Entity::find()
            .filter(phone_number::Column::CampaignId.eq(c.id))
            .filter(phone_number::Column::TenantId.eq(c.tenant_id.0))
            .one(db)
            .await?;
        if let Some(d) = did {
            return Err(StoreError::Conflict(format!(
                "DID {} ({}) routes to this campaign: point it elsewhere or delete it first",
                d.number, d.id
            )));
        }
        let links = find_links(db, c.tenant_id, c.id).await?;
        campaign_link::Entity::delete_many()
            .filter(campaign_link::Column::CampaignId.eq(c.id))
            .exec(db)
            .await?;
        let mut b = Self::audit_json(c);
        b["destinations"] = links_json(&links);
        Ok(b)
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

fn links_json(links: &[CampaignLink]) -> Value {
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
    /// A campaign's links in list order, with their counters. Errors: `NotFound` (campaign).
    pub async fn campaign_links(
        &self,
        tenant_id: TenantId,
        campaign_id: Uuid,
    ) -> Result<Vec<CampaignLink>, StoreError> {
        crud::find::<CampaignSettings, _>(&self.db, tenant_id, campaign_id).await?;
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
        lock::<CampaignSettings, _>(&txn, tenant_id, campaign_id).await?;
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
