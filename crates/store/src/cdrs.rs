//! Call detail records: the outcome of a routed call as telephony reports it (status, times,
//! durations, hangup cause), one per call id and tenant. Recording a CDR gives the call's
//! slot back in the same transaction ([`Release`]), so a destination's concurrency counter
//! never counts a call whose CDR is stored.

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use switchboard_core::TenantId;

use crate::campaigns::CampaignSettings;
use crate::crud::lock;
use crate::entity::{campaign_link, cdr, route_reservation};
use crate::reservations::{give_back, release};
use crate::{corrupt, map_insert_err, Store, StoreError};

/// How a call ended, as a CDR says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CdrStatus {
    /// Someone answered (Asterisk `ANSWERED`).
    Answered,
    /// Nobody answered within the dial timeout (`NOANSWER`).
    NoAnswer,
    /// The destination was busy (`BUSY`).
    Busy,
    /// The call could not be placed (`CONGESTION`, `CHANUNAVAIL`, a SIP error).
    Failed,
    /// The caller hung up first (`CANCEL`).
    Canceled,
}

impl CdrStatus {
    /// The wire name (`no_answer`).
    pub fn as_str(self) -> &'static str {
        match self {
            CdrStatus::Answered => "answered",
            CdrStatus::NoAnswer => "no_answer",
            CdrStatus::Busy => "busy",
            CdrStatus::Failed => "failed",
            CdrStatus::Canceled => "canceled",
        }
    }

    /// The status of a wire name.
    pub fn parse(s: &str) -> Option<CdrStatus> {
        use CdrStatus::*;
        [Answered, NoAnswer, Busy, Failed, Canceled]
            .into_iter()
            .find(|c| c.as_str() == s)
    }
}

/// What telephony reports of a call (validated by the server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdrReport {
    /// The telephony's call id (the Asterisk uniqueid for the compatibility route).
    pub call_id: String,
    /// The DID called, when telephony says (else the routing decision's).
    pub did: Option<String>,
    /// How it ended.
    pub status: CdrStatus,
    /// The status as sent, when it was mapped (Asterisk `DIALSTATUS`).
    pub raw_status: Option<String>,
    /// The target that took the call (SIP URI).
    pub target: Option<String>,
    /// Caller number.
    pub caller_id_num: Option<String>,
    /// Caller name.
    pub caller_id_name: Option<String>,
    /// Epoch ms.
    pub started_at: i64,
    /// Epoch ms.
    pub answered_at: Option<i64>,
    /// Epoch ms.
    pub ended_at: Option<i64>,
    /// Whole call, seconds.
    pub duration_s: Option<u64>,
    /// Billed (talk) time, seconds.
    pub billsec_s: Option<u64>,
    /// Hangup cause text.
    pub hangup_cause: Option<String>,
    /// Q.850 cause code.
    pub hangup_cause_code: Option<i32>,
    /// Asterisk linkedid.
    pub linked_id: Option<String>,
}

/// A stored CDR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cdr {
    /// CDR id (UUIDv7).
    pub id: Uuid,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// `route_api` or `compat`.
    pub source: String,
    /// What telephony reported.
    pub report: CdrReport,
    /// The campaign that routed the call.
    pub campaign_id: Option<Uuid>,
    /// The destination it went to.
    pub destination_id: Option<Uuid>,
    /// The link it went over.
    pub link_id: Option<Uuid>,
    /// The queue of a queue DID.
    pub queue_id: Option<String>,
    /// When it was recorded, epoch ms.
    pub created_at: i64,
}

/// Which slot a CDR gives back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// The one the route API's decision for the CDR's call id holds.
    Call,
    /// One held on this link by the compatibility route (the oldest), which has no call id.
    Link(Uuid),
    /// None.
    Nothing,
}

/// What [`Store::record_cdr`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CdrWrite {
    /// Stored now.
    Created(Cdr),
    /// A CDR for this call id was stored before: this one, unchanged.
    Existing(Cdr),
}

fn cdr_from(m: cdr::Model) -> Result<Cdr, StoreError> {
    let status = CdrStatus::parse(&m.status).ok_or_else(|| corrupt("cdrs.status"))?;
    Ok(Cdr {
        id: m.id,
        tenant_id: TenantId(m.tenant_id),
        source: m.source,
        report: CdrReport {
            call_id: m.call_id,
            did: m.did,
            status,
            raw_status: m.raw_status,
            target: m.target,
            caller_id_num: m.caller_id_num,
            caller_id_name: m.caller_id_name,
            started_at: m.started_at,
            answered_at: m.answered_at,
            ended_at: m.ended_at,
            duration_s: m.duration_s.map(|d| d.max(0) as u64),
            billsec_s: m.billsec_s.map(|d| d.max(0) as u64),
            hangup_cause: m.hangup_cause,
            hangup_cause_code: m.hangup_cause_code,
            linked_id: m.linked_id,
        },
        campaign_id: m.campaign_id,
        destination_id: m.destination_id,
        link_id: m.link_id,
        queue_id: m.queue_id,
        created_at: m.created_at,
    })
}

fn row(c: &Cdr) -> cdr::ActiveModel {
    let r = c.report.clone();
    let secs = |v: Option<u64>| v.map(|d| d.min(i64::MAX as u64) as i64);
    cdr::ActiveModel {
        id: Set(c.id),
        tenant_id: Set(c.tenant_id.0),
        call_id: Set(r.call_id),
        source: Set(c.source.clone()),
        did: Set(r.did),
        campaign_id: Set(c.campaign_id),
        destination_id: Set(c.destination_id),
        link_id: Set(c.link_id),
        queue_id: Set(c.queue_id.clone()),
        target: Set(r.target),
        status: Set(r.status.as_str().to_owned()),
        raw_status: Set(r.raw_status),
        caller_id_num: Set(r.caller_id_num),
        caller_id_name: Set(r.caller_id_name),
        started_at: Set(r.started_at),
        answered_at: Set(r.answered_at),
        ended_at: Set(r.ended_at),
        duration_s: Set(secs(r.duration_s)),
        billsec_s: Set(secs(r.billsec_s)),
        hangup_cause: Set(r.hangup_cause),
        hangup_cause_code: Set(r.hangup_cause_code),
        linked_id: Set(r.linked_id),
        created_at: Set(c.created_at),
    }
}

impl Store {
    /// Stores a CDR and, in the same transaction, gives back the slot `release` names (the
    /// reservation row first, then the link's counter). The routing facts (campaign, link,
    /// destination, queue, and the DID when `report` has none) come from the decision or the
    /// link. A second CDR for the same call id stores nothing and releases nothing.
    ///
    /// Errors: `Invalid` on `campaignClientSettingId` when [`Release::Link`] names a link the
    /// tenant lacks.
    pub async fn record_cdr(
        &self,
        tenant_id: TenantId,
        report: &CdrReport,
        source: &str,
        release_what: Release,
        now: i64,
    ) -> Result<CdrWrite, StoreError> {
        let mut c = Cdr {
            id: Uuid::now_v7(),
            tenant_id,
            source: source.to_owned(),
            report: report.clone(),
            campaign_id: None,
            destination_id: None,
            link_id: None,
            queue_id: None,
            created_at: now,
        };
        let link = match release_what {
            Release::Link(id) => Some(self.campaign_link(tenant_id, id).await.map_err(
                |e| match e {
                    StoreError::NotFound => StoreError::Invalid {
                        field: "campaignClientSettingId".into(),
                        detail: format!("no campaign client setting {id}"),
                    },
                    e => e,
                },
            )?),
            _ => None,
        };
        let txn = self.db.begin().await?;
        match release_what {
            Release::Call => {
                use route_reservation::Column as R;
                // The write first (SQLite), then what it touched.
                let released = route_reservation::Entity::update_many()
                    .col_expr(R::ReleasedAt, Expr::value(now))
                    .filter(R::TenantId.eq(tenant_id.0))
                    .filter(R::CallId.eq(report.call_id.as_str()))
                    .filter(R::ReleasedAt.is_null())
                    .exec(&txn)
                    .await?
                    .rows_affected
                    == 1;
                let decision = route_reservation::Entity::find()
                    .filter(R::TenantId.eq(tenant_id.0))
                    .filter(R::CallId.eq(report.call_id.as_str()))
                    .one(&txn)
                    .await?;
                if let Some(d) = decision {
                    if let (true, Some(l)) = (released, d.link_id) {
                        give_back(&txn, l, 1).await?;
                    }
                    if let Some(l) = d.link_id {
                        c.destination_id = campaign_link::Entity::find_by_id(l)
                            .one(&txn)
                            .await?
                            .map(|m| m.destination_id);
                    }
                    c.report.did = c.report.did.or(Some(d.did));
                    (c.campaign_id, c.link_id, c.queue_id) = (d.campaign_id, d.link_id, d.queue_id);
                }
            }
            Release::Link(_) => {
                let l = link.as_ref().ok_or(StoreError::NotFound)?;
                // The campaign first, as its routing decisions do: serialised with them.
                match lock::<CampaignSettings, _>(&txn, tenant_id, l.campaign_id).await {
                    Ok(()) | Err(StoreError::NotFound) => {}
                    Err(e) => return Err(e),
                }
                use route_reservation::Column as R;
                let open = route_reservation::Entity::find()
                    .filter(R::LinkId.eq(l.id))
                    .filter(R::ReleasedAt.is_null())
                    .filter(R::CallId.is_null())
                    .order_by_asc(R::Id)
                    .limit(1)
                    .one(&txn)
                    .await?;
                if let Some(r) = open {
                    release(&txn, r.id, r.link_id, now).await?;
                }
                c.campaign_id = Some(l.campaign_id);
                c.link_id = Some(l.id);
                c.destination_id = Some(l.settings.destination_id);
            }
            Release::Nothing => {}
        }
        let inserted = cdr::Entity::insert(row(&c))
            .exec(&txn)
            .await
            .map_err(|e| map_insert_err(e, "a CDR for this call id exists"));
        match inserted {
            Ok(_) => {
                txn.commit().await?;
                Ok(CdrWrite::Created(c))
            }
            Err(StoreError::Conflict(_)) => {
                drop(txn);
                let existing = self
                    .cdr(tenant_id, &report.call_id)
                    .await?
                    .ok_or(StoreError::NotFound)?;
                Ok(CdrWrite::Existing(existing))
            }
            Err(e) => Err(e),
        }
    }

    /// The CDR of `call_id`, if stored.
    pub async fn cdr(&self, tenant_id: TenantId, call_id: &str) -> Result<Option<Cdr>, StoreError> {
        cdr::Entity::find()
            .filter(cdr::Column::TenantId.eq(tenant_id.0))
            .filter(cdr::Column::CallId.eq(call_id))
            .one(&self.db)
            .await?
            .map(cdr_from)
            .transpose()
    }

    /// CDRs in id (recording) order, after `after`, at most `limit`.
    pub async fn cdrs(
        &self,
        tenant_id: TenantId,
        after: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<Cdr>, StoreError> {
        let mut q = cdr::Entity::find().filter(cdr::Column::TenantId.eq(tenant_id.0));
        if let Some(a) = after {
            q = q.filter(cdr::Column::Id.gt(a));
        }
        q.order_by_asc(cdr::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(cdr_from)
            .collect()
    }
}
