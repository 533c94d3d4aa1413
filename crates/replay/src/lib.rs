//! Call-trace readers that turn recorded calls into Switchboard event streams.
//!
//! A trace is a list of calls ([`TraceCall`]), each with its events ([`ReplayEvent`]) in the
//! order the call produced them, plus the rows that were skipped while reading it. The events
//! are already in Switchboard's wire format (see [`ReplayEvent`]); [`interleave`] merges the
//! calls into one stream in time order, the order a replay client sends them in.
//!
//! Readers:
//! * [`read_anonymous_bank`] — the "Anonymous Bank" call-center data set (Technion SEELab,
//!   August 1999), one CSV row per call; the row → events mapping is documented on that
//!   function (source: the replay issue and `shared/data/README.md`).
//!
//! The crate does no I/O of its own beyond reading from the [`std::io::Read`] it is given.

#![warn(missing_docs)]

mod anonymous_bank;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use chrono::{DateTime, SecondsFormat};
use serde::{Serialize, Serializer};

pub use anonymous_bank::{
    read_anonymous_bank, ANONYMOUS_BANK_QUEUES, SKIP_BAD_DATE, SKIP_BAD_NUMBER, SKIP_BAD_PRIORITY,
    SKIP_BAD_TIME, SKIP_DUPLICATE_CALL_ID, SKIP_INVALID_UTF8, SKIP_MALFORMED_ROW, SKIP_PHANTOM,
    SKIP_UNKNOWN_OUTCOME,
};

/// One call event in Switchboard's wire format (what `POST /api/v1/events/batch` takes).
///
/// Serializes to a flat JSON object (snake_case):
///
/// ```json
/// {"event_id": "1999-08-01/43678/0:10:10#0", "call_id": "1999-08-01/43678/0:10:10",
///  "timestamp": "1999-08-01T00:10:10Z", "type": "call_initiated", "call_type": "voice"}
/// ```
///
/// `type` and the payload fields come from [`EventPayload`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplayEvent {
    /// Deterministic event id, `"<call id>#<n>"` where `n` (0, 1, 2, …) is the event's index
    /// within its call, so a retried batch is deduplicated by the server.
    pub event_id: String,
    /// The call this event belongs to (see the reader for its format).
    pub call_id: String,
    /// When the event happened, in milliseconds since the Unix epoch (UTC).
    ///
    /// Serialized as `"timestamp"`, an RFC 3339 UTC string without fractional seconds when
    /// they are zero (e.g. `1999-08-01T00:10:10Z`).
    #[serde(rename = "timestamp", serialize_with = "serialize_epoch_ms")]
    pub timestamp_ms: i64,
    /// The event type and its type-specific fields (flattened into the object).
    #[serde(flatten)]
    pub payload: EventPayload,
}

impl ReplayEvent {
    /// The wire name of this event's type, e.g. `"call_queued"`.
    pub fn event_type(&self) -> &'static str {
        self.payload.event_type()
    }

    /// The timestamp as an RFC 3339 UTC string (`1999-08-01T00:10:10Z`), or `None` when the
    /// millisecond value is outside chrono's range.
    pub fn timestamp_rfc3339(&self) -> Option<String> {
        epoch_ms_to_rfc3339(self.timestamp_ms)
    }
}

/// The type-specific part of a [`ReplayEvent`]: serialized as `"type": "<variant>"` plus the
/// variant's fields. Absent fields are omitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventPayload {
    /// `call_initiated {"call_type": "voice"}` — the call entered the system (IVR entry).
    CallInitiated {
        /// Channel of the call; always `"voice"` for the Anonymous Bank trace.
        call_type: String,
    },
    /// `call_queued {"queue_id": "PS", "priority": 2}` — the call entered a queue.
    CallQueued {
        /// Queue id (the Anonymous Bank `type` column, one of [`ANONYMOUS_BANK_QUEUES`]).
        queue_id: String,
        /// Priority as recorded (Anonymous Bank: 0 or 1 regular, 2 high).
        priority: u8,
    },
    /// `call_routed {"agent_id": "MICHAL"}` — the call was assigned to an agent.
    CallRouted {
        /// Agent id (the Anonymous Bank `server` column).
        agent_id: String,
    },
    /// `call_answered {}` — the agent picked up.
    CallAnswered {},
    /// `call_ended {"end_reason": "completed"}` — the call is over.
    CallEnded {
        /// Why it ended.
        end_reason: EndReason,
    },
}

impl EventPayload {
    /// The wire name of this payload's type, e.g. `"call_queued"`.
    pub fn event_type(&self) -> &'static str {
        match self {
            EventPayload::CallInitiated { .. } => "call_initiated",
            EventPayload::CallQueued { .. } => "call_queued",
            EventPayload::CallRouted { .. } => "call_routed",
            EventPayload::CallAnswered {} => "call_answered",
            EventPayload::CallEnded { .. } => "call_ended",
        }
    }
}

/// Why a call ended (`end_reason` of `call_ended`), serialized snake_case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// `"completed"` — served by an agent.
    Completed,
    /// `"abandoned"` — the caller hung up before being served.
    Abandoned,
}

/// One call of a trace with its events in the order the call produced them (the order is
/// kept even when the recorded times run backwards).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TraceCall {
    /// Unique call id within the trace (reader-specific format).
    pub call_id: String,
    /// The call's events, in call order; `events[n].event_id == format!("{call_id}#{n}")`.
    pub events: Vec<ReplayEvent>,
}

/// A whole trace as read from a file.
///
/// Invariant: `calls.len() as u64 + skipped.values().sum::<u64>() == rows`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Trace {
    /// The calls, in file order.
    pub calls: Vec<TraceCall>,
    /// Rows that produced no call, counted by reason (e.g. `"phantom"`,
    /// `"duplicate_call_id"`, `"bad_time"`; see the `SKIP_*` constants).
    pub skipped: BTreeMap<String, u64>,
    /// Number of data rows read (the header excluded).
    pub rows: u64,
}

impl Trace {
    /// Total number of events over all calls.
    pub fn event_count(&self) -> usize {
        self.calls.iter().map(|c| c.events.len()).sum()
    }

    /// Total number of skipped rows (all reasons).
    pub fn skipped_count(&self) -> u64 {
        self.skipped.values().sum()
    }
}

/// Errors that stop reading a whole trace. Bad rows do not: they are skipped and counted in
/// [`Trace::skipped`].
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The underlying reader failed (I/O error).
    #[error("reading the trace failed: {0}")]
    Io(#[from] std::io::Error),
    /// The CSV could not be read at all (e.g. the header).
    #[error("reading the trace CSV failed: {0}")]
    Csv(#[from] csv::Error),
    /// The header lacks a column the reader needs.
    #[error("the trace header has no `{0}` column")]
    MissingColumn(String),
}

/// All events of `calls` merged into one stream in time order, per-call order kept.
///
/// A k-way merge: a call's next event becomes available only once its previous event was
/// emitted, and the available event with the smallest [`ReplayEvent::timestamp_ms`] is always
/// emitted next; ties go to the earlier call in `calls` (file order). A call whose times run
/// backwards therefore still has its events in call order; its late-stamped events simply come
/// out as soon as they become available.
///
/// See [`Interleave`] for the lazy form.
pub fn interleave(calls: &[TraceCall]) -> Vec<&ReplayEvent> {
    let total = calls.iter().map(|c| c.events.len()).sum();
    let mut out = Vec::with_capacity(total);
    out.extend(Interleave::new(calls));
    out
}

/// Iterator form of [`interleave`] (same order), yielding `&ReplayEvent`.
#[derive(Debug, Clone)]
pub struct Interleave<'a> {
    calls: &'a [TraceCall],
    /// Min-heap of (timestamp ms, call index, event index) of each call's next event.
    heap: BinaryHeap<Reverse<(i64, usize, usize)>>,
    remaining: usize,
}

impl<'a> Interleave<'a> {
    /// Starts the merge over `calls` (file order decides ties).
    pub fn new(calls: &'a [TraceCall]) -> Self {
        let heap = calls
            .iter()
            .enumerate()
            .filter_map(|(ci, c)| c.events.first().map(|e| Reverse((e.timestamp_ms, ci, 0))))
            .collect();
        let remaining = calls.iter().map(|c| c.events.len()).sum();
        Interleave {
            calls,
            heap,
            remaining,
        }
    }
}

impl<'a> Iterator for Interleave<'a> {
    type Item = &'a ReplayEvent;

    fn next(&mut self) -> Option<Self::Item> {
        let Reverse((_, ci, ei)) = self.heap.pop()?;
        let events = &self.calls[ci].events;
        if let Some(next) = events.get(ei + 1) {
            self.heap.push(Reverse((next.timestamp_ms, ci, ei + 1)));
        }
        self.remaining -= 1;
        Some(&events[ei])
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for Interleave<'_> {}

fn epoch_ms_to_rfc3339(ms: i64) -> Option<String> {
    DateTime::from_timestamp_millis(ms).map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

fn serialize_epoch_ms<S: Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
    match epoch_ms_to_rfc3339(*ms) {
        Some(text) => s.serialize_str(&text),
        None => Err(serde::ser::Error::custom(format!(
            "timestamp {ms} ms is out of range"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(call: &str, n: usize, ts: i64) -> ReplayEvent {
        ReplayEvent {
            event_id: format!("{call}#{n}"),
            call_id: call.to_string(),
            timestamp_ms: ts,
            payload: EventPayload::CallAnswered {},
        }
    }

    fn call(id: &str, times: &[i64]) -> TraceCall {
        TraceCall {
            call_id: id.to_string(),
            events: times
                .iter()
                .enumerate()
                .map(|(n, &t)| ev(id, n, t))
                .collect(),
        }
    }

    fn ids(v: &[&ReplayEvent]) -> Vec<String> {
        v.iter().map(|e| e.event_id.clone()).collect()
    }

    #[test]
    fn wire_format() {
        let e = ReplayEvent {
            event_id: "1999-08-01/43678/0:10:10#1".into(),
            call_id: "1999-08-01/43678/0:10:10".into(),
            timestamp_ms: 933_466_210_000, // 1999-08-01T00:10:10Z
            payload: EventPayload::CallQueued {
                queue_id: "PS".into(),
                priority: 2,
            },
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "event_id": "1999-08-01/43678/0:10:10#1",
                "type": "call_queued",
                "call_id": "1999-08-01/43678/0:10:10",
                "timestamp": "1999-08-01T00:10:10Z",
                "queue_id": "PS",
                "priority": 2
            })
        );
        let answered = ReplayEvent {
            payload: EventPayload::CallAnswered {},
            ..e.clone()
        };
        let v = serde_json::to_value(&answered).unwrap();
        assert_eq!(v.as_object().unwrap().len(), 4);
        assert_eq!(v["type"], "call_answered");
        let ended = ReplayEvent {
            payload: EventPayload::CallEnded {
                end_reason: EndReason::Abandoned,
            },
            ..e
        };
        let v = serde_json::to_value(&ended).unwrap();
        assert_eq!(v["type"], "call_ended");
        assert_eq!(v["end_reason"], "abandoned");
        assert_eq!(ended.event_type(), "call_ended");
    }

    #[test]
    fn interleave_time_order_and_ties() {
        let calls = vec![
            call("a", &[10, 30, 50]),
            call("b", &[10, 20, 50]),
            call("c", &[5]),
        ];
        let out = interleave(&calls);
        assert_eq!(ids(&out), ["c#0", "a#0", "b#0", "b#1", "a#1", "a#2", "b#2"]);
        assert_eq!(Interleave::new(&calls).len(), 7);
    }

    #[test]
    fn interleave_keeps_per_call_order_when_times_run_backwards() {
        // Call "a" runs backwards (its second event is stamped before its first).
        let calls = vec![call("a", &[100, 40, 120]), call("b", &[50, 60, 200])];
        let out = interleave(&calls);
        assert_eq!(ids(&out), ["b#0", "b#1", "a#0", "a#1", "a#2", "b#2"]);
        // Per-call order kept.
        for c in &calls {
            let mine: Vec<_> = out.iter().filter(|e| e.call_id == c.call_id).collect();
            for (n, e) in mine.iter().enumerate() {
                assert_eq!(e.event_id, format!("{}#{n}", c.call_id));
            }
        }
    }

    #[test]
    fn interleave_empty() {
        assert!(interleave(&[]).is_empty());
        assert!(interleave(&[call("x", &[])]).is_empty());
    }
}
