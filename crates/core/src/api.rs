//! Shapes of the HTTP API that both the server and its clients (the replay client, adapters)
//! read and write: the answer of `POST /api/v1/events/batch` and the RFC 9457 problem object.
//! Plain data with serde both ways; no I/O.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::call::CallStatus;

/// An RFC 9457 problem object (`application/problem+json`), as Switchboard writes every error:
/// `{"type", "title", "status", "detail", "field"?, ...extra}`.
///
/// Every member is optional when reading (RFC 9457 §3.1), so a problem from another server
/// (a proxy) still decodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Problem {
    /// URI of the problem type (`urn:switchboard:problem:<slug>`); `about:blank` when absent.
    #[serde(rename = "type", default = "about_blank")]
    pub problem_type: String,
    /// Short summary of the problem type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The HTTP status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Explanation of this occurrence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The failing field: a JSON path into the body (`events[3].queue_id`) or a query
    /// parameter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Further members (e.g. `call_status` of a 409).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn about_blank() -> String {
    "about:blank".to_owned()
}

impl Problem {
    /// `detail`, or `title` when there is no detail: the text to show a person.
    pub fn text(&self) -> Option<&str> {
        self.detail.as_deref().or(self.title.as_deref())
    }
}

/// One event's answer within a batch answer (`BatchResponse`).
///
/// An applied event has `seq`, `call_id`, `call_uuid`, `call_status` and `duplicate`; a refused
/// one has `problem`. Absent members are omitted from the JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchItem {
    /// Position of the event in the request's `events`, from 0.
    pub index: usize,
    /// The HTTP status the event would have had alone: 201 applied, 200 duplicate, 4xx/503
    /// refused.
    pub status: u16,
    /// The event's sequence number in the tenant's stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<i64>,
    /// The client's call id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    /// Switchboard's call id (UUIDv7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_uuid: Option<Uuid>,
    /// The call's status after the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_status: Option<CallStatus>,
    /// True when this `event_id` had been applied before: nothing changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<bool>,
    /// Why the event was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<Problem>,
}

impl BatchItem {
    /// An event that was refused with `problem` (whose `status` is the item's status).
    pub fn refused(index: usize, problem: Problem) -> Self {
        BatchItem {
            index,
            status: problem.status.unwrap_or(422),
            seq: None,
            call_id: None,
            call_uuid: None,
            call_status: None,
            duplicate: None,
            problem: Some(problem),
        }
    }

    /// True when the event was applied now (not a duplicate, not refused).
    pub fn is_accepted(&self) -> bool {
        self.problem.is_none() && self.duplicate != Some(true)
    }

    /// True when the event had been applied before.
    pub fn is_duplicate(&self) -> bool {
        self.problem.is_none() && self.duplicate == Some(true)
    }
}

/// The answer of `POST /api/v1/events/batch` (status 200): per-event results in input order
/// and their counts (`accepted + duplicates + rejected == results.len()`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchResponse {
    /// Events applied (status 201).
    pub accepted: usize,
    /// Events whose `event_id` had already been applied (status 200; nothing changed).
    pub duplicates: usize,
    /// Events refused; their results carry a `problem`.
    pub rejected: usize,
    /// One result per event, in input order.
    #[serde(default)]
    pub results: Vec<BatchItem>,
}

impl BatchResponse {
    /// The answer for `results`, counting them.
    pub fn new(results: Vec<BatchItem>) -> Self {
        let accepted = results.iter().filter(|r| r.is_accepted()).count();
        let duplicates = results.iter().filter(|r| r.is_duplicate()).count();
        BatchResponse {
            accepted,
            duplicates,
            rejected: results.len() - accepted - duplicates,
            results,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn batch_response_json_shape() {
        let uuid = Uuid::nil();
        let ok = BatchItem {
            index: 0,
            status: 201,
            seq: Some(7),
            call_id: Some("c1".into()),
            call_uuid: Some(uuid),
            call_status: Some(CallStatus::OnHold),
            duplicate: Some(false),
            problem: None,
        };
        let dup = BatchItem {
            index: 1,
            status: 200,
            duplicate: Some(true),
            ..ok.clone()
        };
        let problem: Problem = serde_json::from_value(json!({
            "type": "urn:switchboard:problem:conflict", "title": "Conflict", "status": 409,
            "detail": "no", "call_status": "ended"
        }))
        .unwrap();
        let bad = BatchItem::refused(2, problem);
        let r = BatchResponse::new(vec![ok, dup, bad]);
        assert_eq!((r.accepted, r.duplicates, r.rejected), (1, 1, 1));
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(
            v,
            json!({"accepted": 1, "duplicates": 1, "rejected": 1, "results": [
                {"index": 0, "status": 201, "seq": 7, "call_id": "c1", "call_uuid": uuid,
                 "call_status": "on_hold", "duplicate": false},
                {"index": 1, "status": 200, "seq": 7, "call_id": "c1", "call_uuid": uuid,
                 "call_status": "on_hold", "duplicate": true},
                {"index": 2, "status": 409, "problem": {
                    "type": "urn:switchboard:problem:conflict", "title": "Conflict",
                    "status": 409, "detail": "no", "call_status": "ended"}}
            ]})
        );
        let back: BatchResponse = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn problem_reads_any_rfc9457_object() {
        let p: Problem = serde_json::from_value(json!({"title": "Bad Gateway"})).unwrap();
        assert_eq!(p.problem_type, "about:blank");
        assert_eq!(p.text(), Some("Bad Gateway"));
        let p: Problem = serde_json::from_value(json!({"detail": "d", "title": "t"})).unwrap();
        assert_eq!(p.text(), Some("d"));
    }
}
