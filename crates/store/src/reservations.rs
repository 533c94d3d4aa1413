//! Routing decisions and the slots they hold (issue 7 items 5–7).
//!
//! A campaign decision runs in one transaction that first locks the campaign's row, so the
//! decisions of one campaign are serialised (and a link list replaced meanwhile waits):
//!
//! 1. reservations of the campaign whose lease ran out (`expires_at < now`, not released) are
//!    released, each giving its link's slot back (`active_calls - 1`);
//! 2. the links are read with their destinations' `active` flags and counters, and
//!    [`choose_destination`] (a pure function of `core`) picks one;
//! 3. the slot is taken by a conditional UPDATE that only succeeds under both caps
//!    (`active_calls < concurrency_cap`, `total_calls < total_cap`); when it updates no row
//!    (a counter moved since the read), the links are read again and the choice made again;
//! 4. the reservation is inserted with the answer sent, in the same transaction: a second
//!    decision for the same call id fails on the unique `(tenant_id, call_id)` and rolls its
//!    counters back, and the caller answers the stored decision instead.
//!
//! A slot is held until the CDR releases it, or until its lease ends: `dial_timeout_s` after
//! the decision, `max_call_s` after the answer ([`Store::answer_route`]). Every write of a
//! counter goes reservation row first, then link row, so two releases never deadlock.

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, TransactionTrait,
};
use uuid::Uuid;

use switchboard_core::routing::{choose_destination, Link};
use switchboard_core::TenantId;

use crate::campaigns::{find_links, Campaign, CampaignLink, CampaignSettings};
use crate::crud::{lock, Resource};
use crate::destinations::{destination_from, Destination};
use crate::entity::{campaign, campaign_link, destination, route_reservation};
use crate::{map_insert_err, Store, StoreError};

/// How often a decision re-reads the links after its conditional UPDATE lost a race.
const MAX_ATTEMPTS: usize = 16;

/// A campaign decision to make.
#[derive(Debug, Clone, Copy)]
pub struct RouteRequest<'a> {
    /// The telephony's call id (`None`: the compatibility route, which has none).
    pub call_id: Option<&'a str>,
    /// The DID called, E.164.
    pub did: &'a str,
    /// The DID's campaign.
    pub campaign_id: Uuid,
    /// Now, epoch ms (the engine's clock).
    pub now: i64,
    /// A uniformly random number (`weighted`).
    pub random: u64,
}

/// A decision that holds no slot, to store ([`Store::record_route_decision`]).
#[derive(Debug, Clone)]
pub struct Decision<'a> {
    /// The telephony's call id.
    pub call_id: &'a str,
    /// The DID called.
    pub did: &'a str,
    /// The queue of a queue DID.
    pub queue_id: Option<&'a str>,
    /// Until when the call is offered (epoch ms); `None`: a reject, released at once.
    pub expires_at: Option<i64>,
    /// The answer sent.
    pub answer: String,
}

/// Why a campaign could not route a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteReject {
    /// The DID points to a campaign that no longer exists.
    CampaignNotFound,
    /// The campaign is switched off.
    CampaignInactive,
    /// No link is active with an active destination.
    NoActiveDestinations,
    /// Every active destination is at its concurrency or total cap.
    AllAtCap,
}

/// A slot taken on a link.
#[derive(Debug, Clone)]
pub struct Routed {
    /// The reservation's id.
    pub reservation_id: Uuid,
    /// The campaign.
    pub campaign: Campaign,
    /// The link the call goes over (counters after this call).
    pub link: CampaignLink,
    /// The destination it goes to.
    pub destination: Destination,
    /// When the slot is given back without an answer or a CDR, epoch ms.
    pub expires_at: i64,
}

/// What a campaign decided.
#[derive(Debug, Clone)]
pub enum RouteOutcome {
    /// Send the call to this destination.
    Routed(Box<Routed>),
    /// Refuse it.
    Rejected(RouteReject),
}

/// A stored decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteRecord {
    /// Reservation id.
    pub id: Uuid,
    /// The call id.
    pub call_id: Option<String>,
    /// The DID.
    pub did: String,
    /// The campaign of a campaign DID.
    pub campaign_id: Option<Uuid>,
    /// The link holding the slot (`None` for rejects and queue calls).
    pub link_id: Option<Uuid>,
    /// The queue of a queue DID.
    pub queue_id: Option<String>,
    /// Epoch ms.
    pub reserved_at: i64,
    /// Lease end, epoch ms.
    pub expires_at: Option<i64>,
    /// Epoch ms.
    pub answered_at: Option<i64>,
    /// Epoch ms.
    pub released_at: Option<i64>,
    /// The answer sent.
    pub answer: String,
}

fn record_from(m: route_reservation::Model) -> RouteRecord {
    RouteRecord {
        id: m.id,
        call_id: m.call_id,
        did: m.did,
        campaign_id: m.campaign_id,
        link_id: m.link_id,
        queue_id: m.queue_id,
        reserved_at: m.reserved_at,
        expires_at: m.expires_at,
        answered_at: m.answered_at,
        released_at: m.released_at,
        answer: m.answer,
    }
}

fn decision_row(
    tenant_id: TenantId,
    call_id: Option<&str>,
    did: &str,
    now: i64,
    answer: String,
) -> route_reservation::ActiveModel {
    route_reservation::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(tenant_id.0),
        call_id: Set(call_id.map(str::to_owned)),
        did: Set(did.to_owned()),
        campaign_id: Set(None),
        link_id: Set(None),
        queue_id: Set(None),
        reserved_at: Set(now),
        expires_at: Set(None),
        answered_lease_s: Set(None),
        answered_at: Set(None),
        answered_target: Set(None),
        released_at: Set(None),
        answer: Set(answer),
    }
}

const CALL_DECIDED: &str = "a routing decision for this call id exists";

/// Marks reservation `id` released if it is still held; answers whether it was.
async fn mark_released<C: ConnectionTrait>(db: &C, id: Uuid, now: i64) -> Result<bool, StoreError> {
    let n = route_reservation::Entity::update_many()
        .col_expr(route_reservation::Column::ReleasedAt, Expr::value(now))
        .filter(route_reservation::Column::Id.eq(id))
        .filter(route_reservation::Column::ReleasedAt.is_null())
        .exec(db)
        .await?
        .rows_affected;
    Ok(n == 1)
}

/// Gives `n` slots of `link` back (`active_calls - n`, never below zero).
pub(crate) async fn give_back<C: ConnectionTrait>(
    db: &C,
    link: Uuid,
    n: u32,
) -> Result<(), StoreError> {
    use campaign_link::Column as L;
    for _ in 0..n {
        campaign_link::Entity::update_many()
            .col_expr(L::ActiveCalls, Expr::col(L::ActiveCalls).sub(1))
            .filter(L::Id.eq(link))
            .filter(L::ActiveCalls.gt(0))
            .exec(db)
            .await?;
    }
    Ok(())
}

/// Gives back the slot of reservation `id` if it is still held (the reservation row first,
/// then the link's). Answers whether it was held.
pub(crate) async fn release<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
    link_id: Option<Uuid>,
    now: i64,
) -> Result<bool, StoreError> {
    if !mark_released(db, id, now).await? {
        return Ok(false);
    }
    if let Some(l) = link_id {
        give_back(db, l, 1).await?;
    }
    Ok(true)
}

/// Releases the campaign's reservations whose lease ended before `now`: every reservation row
/// first (in id order), then the links (in id order), so that this never waits for a
/// reservation while holding a link another transaction needs.
async fn release_expired<C: ConnectionTrait>(
    db: &C,
    campaign_id: Uuid,
    now: i64,
) -> Result<(), StoreError> {
    let expired = route_reservation::Entity::find()
        .filter(route_reservation::Column::CampaignId.eq(campaign_id))
        .filter(route_reservation::Column::ReleasedAt.is_null())
        .filter(route_reservation::Column::ExpiresAt.lt(now))
        .order_by_asc(route_reservation::Column::Id)
        .all(db)
        .await?;
    let mut slots: std::collections::BTreeMap<Uuid, u32> = Default::default();
    for r in expired {
        if mark_released(db, r.id, now).await? {
            if let Some(l) = r.link_id {
                *slots.entry(l).or_default() += 1;
            }
        }
    }
    for (link, n) in slots {
        give_back(db, link, n).await?;
    }
    Ok(())
}

/// Takes one slot on `link` if both caps allow; answers whether it did.
async fn take_slot<C: ConnectionTrait>(db: &C, link: Uuid) -> Result<bool, StoreError> {
    use campaign_link::Column as L;
    let n = campaign_link::Entity::update_many()
        .col_expr(L::ActiveCalls, Expr::col(L::ActiveCalls).add(1))
        .col_expr(L::TotalCalls, Expr::col(L::TotalCalls).add(1))
        .filter(L::Id.eq(link))
        .filter(
            Condition::any()
                .add(L::ConcurrencyCap.is_null())
                .add(Expr::col(L::ActiveCalls).lt(Expr::col(L::ConcurrencyCap))),
        )
        .filter(
            Condition::any()
                .add(L::TotalCap.is_null())
                .add(Expr::col(L::TotalCalls).lt(Expr::col(L::TotalCap))),
        )
        .exec(db)
        .await?
        .rows_affected;
    Ok(n == 1)
}

/// The campaign's links with their destinations, as routing sees them.
async fn snapshot<C: ConnectionTrait>(
    db: &C,
    c: &Campaign,
) -> Result<Vec<(CampaignLink, Destination)>, StoreError> {
    let links = find_links(db, c.tenant_id, c.id).await?;
    let ids: Vec<Uuid> = links.iter().map(|l| l.settings.destination_id).collect();
    let dests: std::collections::HashMap<Uuid, Destination> = destination::Entity::find()
        .filter(destination::Column::Id.is_in(ids))
        .filter(destination::Column::TenantId.eq(c.tenant_id.0))
        .all(db)
        .await?
        .into_iter()
        .map(|m| (m.id, destination_from(m)))
        .collect();
    Ok(links
        .into_iter()
        .filter_map(|l| {
            let d = dests.get(&l.settings.destination_id)?.clone();
            Some((l, d))
        })
        .collect())
}

fn core_link(l: &CampaignLink, d: &Destination) -> Link {
    Link {
        active: l.settings.active && d.settings.active,
        priority: l.settings.priority,
        weight: l.settings.weight,
        active_calls: l.active_calls,
        concurrency_cap: l.settings.concurrency_cap,
        total_calls: l.total_calls,
        total_cap: l.settings.total_cap,
    }
}

/// Decides for a locked, active campaign whose previous call went over `last_used` (a link
/// id): releases expired slots, chooses, takes a slot.
async fn decide<C: ConnectionTrait>(
    db: &C,
    c: &Campaign,
    last_used: Option<Uuid>,
    req: &RouteRequest<'_>,
) -> Result<RouteOutcome, StoreError> {
    release_expired(db, c.id, req.now).await?;
    for _ in 0..MAX_ATTEMPTS {
        let snap = snapshot(db, c).await?;
        let links: Vec<Link> = snap.iter().map(|(l, d)| core_link(l, d)).collect();
        if !links.iter().any(|l| l.active) {
            return Ok(RouteOutcome::Rejected(RouteReject::NoActiveDestinations));
        }
        let last = last_used.and_then(|id| snap.iter().position(|(l, _)| l.id == id));
        let strategy = c.settings.strategy;
        let Some(i) = choose_destination(strategy, &links, last, req.random) else {
            return Ok(RouteOutcome::Rejected(RouteReject::AllAtCap));
        };
        let (mut link, destination) = snap[i].clone();
        if !take_slot(db, link.id).await? {
            continue;
        }
        link.active_calls += 1;
        link.total_calls += 1;
        campaign::Entity::update_many()
            .col_expr(campaign::Column::LastUsedLinkId, Expr::value(link.id))
            .filter(campaign::Column::Id.eq(c.id))
            .exec(db)
            .await?;
        let expires_at = req.now + i64::from(c.settings.dial_timeout_s) * 1000;
        return Ok(RouteOutcome::Routed(Box::new(Routed {
            reservation_id: Uuid::now_v7(),
            campaign: c.clone(),
            link,
            destination,
            expires_at,
        })));
    }
    Err(StoreError::Other(sea_orm::DbErr::Custom(format!(
        "routing: the links kept changing over {MAX_ATTEMPTS} attempts"
    ))))
}

impl Store {
    /// Decides where a campaign sends a call and, when it routes it, takes the slot, all in
    /// one transaction (see the module's documentation); the decision is stored with
    /// `answer(&outcome)` (for a call id: rejects too, so a repeat gets the same answer).
    ///
    /// Errors: `Conflict` when a decision for `req.call_id` exists (nothing was taken: answer
    /// [`Store::route_decision`]'s instead).
    pub async fn route_campaign(
        &self,
        tenant_id: TenantId,
        req: &RouteRequest<'_>,
        answer: impl FnOnce(&RouteOutcome) -> String,
    ) -> Result<RouteOutcome, StoreError> {
        let txn = self.db.begin().await?;
        let outcome = match lock::<CampaignSettings, _>(&txn, tenant_id, req.campaign_id).await {
            Err(StoreError::NotFound) => RouteOutcome::Rejected(RouteReject::CampaignNotFound),
            Err(e) => return Err(e),
            Ok(()) => {
                let m = campaign::Entity::find_by_id(req.campaign_id)
                    .one(&txn)
                    .await?
                    .ok_or(StoreError::NotFound)?;
                let last_used = m.last_used_link_id;
                let c = CampaignSettings::from_model(m)?;
                if c.settings.active {
                    decide(&txn, &c, last_used, req).await?
                } else {
                    RouteOutcome::Rejected(RouteReject::CampaignInactive)
                }
            }
        };
        let text = answer(&outcome);
        let mut row = decision_row(tenant_id, req.call_id, req.did, req.now, text);
        row.campaign_id = Set(Some(req.campaign_id));
        match &outcome {
            RouteOutcome::Routed(r) => {
                row.id = Set(r.reservation_id);
                row.link_id = Set(Some(r.link.id));
                row.expires_at = Set(Some(r.expires_at));
                row.answered_lease_s = Set(Some(
                    r.campaign.settings.max_call_s.min(i32::MAX as u32) as i32,
                ));
            }
            RouteOutcome::Rejected(_) if req.call_id.is_none() => {
                // Nothing to repeat without a call id, and nothing held.
                txn.commit().await?;
                return Ok(outcome);
            }
            RouteOutcome::Rejected(_) => row.released_at = Set(Some(req.now)),
        }
        route_reservation::Entity::insert(row)
            .exec(&txn)
            .await
            .map_err(|e| map_insert_err(e, CALL_DECIDED))?;
        txn.commit().await?;
        Ok(outcome)
    }

    /// Stores a decision that holds no slot (a reject before any campaign, or a queue call
    /// offered to agents).
    ///
    /// Errors: `Conflict` when a decision for `d.call_id` exists.
    pub async fn record_route_decision(
        &self,
        tenant_id: TenantId,
        d: &Decision<'_>,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut row = decision_row(tenant_id, Some(d.call_id), d.did, now, d.answer.clone());
        row.queue_id = Set(d.queue_id.map(str::to_owned));
        row.expires_at = Set(d.expires_at);
        if d.expires_at.is_none() {
            row.released_at = Set(Some(now));
        }
        route_reservation::Entity::insert(row)
            .exec(&self.db)
            .await
            .map_err(|e| map_insert_err(e, CALL_DECIDED))?;
        Ok(())
    }

    /// The stored decision for `call_id`, if any.
    pub async fn route_decision(
        &self,
        tenant_id: TenantId,
        call_id: &str,
    ) -> Result<Option<RouteRecord>, StoreError> {
        Ok(route_reservation::Entity::find()
            .filter(route_reservation::Column::TenantId.eq(tenant_id.0))
            .filter(route_reservation::Column::CallId.eq(call_id))
            .one(&self.db)
            .await?
            .map(record_from))
    }

    /// The call is up: its slot is held `answered_lease_s` (the campaign's `max_call_s` at the
    /// decision) from `now` instead of the dial timeout. Once per call: a repeat, or an answer
    /// after the CDR released the slot, changes nothing and answers the record.
    ///
    /// Errors: `NotFound` when no decision exists for `call_id`.
    pub async fn answer_route(
        &self,
        tenant_id: TenantId,
        call_id: &str,
        target: Option<&str>,
        now: i64,
    ) -> Result<RouteRecord, StoreError> {
        use route_reservation::Column as R;
        let txn = self.db.begin().await?;
        // The write first (SQLite: a transaction that reads first cannot write once another
        // writer committed). A queue call has no lease after the answer (NULL stays NULL).
        route_reservation::Entity::update_many()
            .col_expr(R::AnsweredAt, Expr::value(now))
            .col_expr(R::AnsweredTarget, Expr::value(target.map(str::to_owned)))
            .col_expr(
                R::ExpiresAt,
                Expr::col(R::AnsweredLeaseS).mul(1000).add(now),
            )
            .filter(R::TenantId.eq(tenant_id.0))
            .filter(R::CallId.eq(call_id))
            .filter(R::AnsweredAt.is_null())
            .filter(R::ReleasedAt.is_null())
            .exec(&txn)
            .await?;
        let m = route_reservation::Entity::find()
            .filter(R::TenantId.eq(tenant_id.0))
            .filter(R::CallId.eq(call_id))
            .one(&txn)
            .await?
            .ok_or(StoreError::NotFound)?;
        txn.commit().await?;
        Ok(record_from(m))
    }
}
