//! Call-trace readers that turn recorded calls into Switchboard event streams.
//!
//! A trace is a list of calls ([`TraceCall`]), each with its events in the order the call
//! produced them, plus the rows that were skipped while reading it. The events are
//! `switchboard-core`'s [`IncomingEvent`]s, the one client wire format: serializing one gives
//! the JSON that `POST /api/v1/events/batch` takes. [`interleave`] merges the calls into one
//! stream in time order, the order a replay client sends them in.
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

use serde::Serialize;
use switchboard_core::{ExternalCallId, IncomingEvent, TimestampMs};

pub use anonymous_bank::{
    read_anonymous_bank, ANONYMOUS_BANK_QUEUES, SKIP_BAD_DATE, SKIP_BAD_ID, SKIP_BAD_NUMBER,
    SKIP_BAD_PRIORITY, SKIP_BAD_TIME, SKIP_DUPLICATE_CALL_ID, SKIP_INVALID_UTF8,
    SKIP_MALFORMED_ROW, SKIP_PHANTOM, SKIP_UNKNOWN_OUTCOME,
};

/// One call of a trace with its events in the order the call produced them (the order is
/// kept even when the recorded times run backwards).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceCall {
    /// Unique call id within the trace (reader-specific format).
    pub call_id: ExternalCallId,
    /// The call's events, in call order, each with a `timestamp`; the event ids are
    /// deterministic, `events[n].event_id == Some(format!("{call_id}#{n}"))`, so a retried
    /// batch (or a whole re-run) is deduplicated by the server.
    pub events: Vec<IncomingEvent>,
}

/// A whole trace as read from a file.
///
/// Invariant: `calls.len() as u64 + skipped.values().sum::<u64>() == rows`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
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
/// emitted, and the available event with the smallest timestamp is always emitted next (an
/// event without one, which the readers here never make, counts as the earliest); ties go to the earlier call in `calls` (file order). A call whose times run
/// backwards therefore still has its events in call order; its late-stamped events simply come
/// out as soon as they become available.
///
/// See [`Interleave`] for the lazy form.
pub fn interleave(calls: &[TraceCall]) -> Vec<&IncomingEvent> {
    let total = calls.iter().map(|c| c.events.len()).sum();
    let mut out = Vec::with_capacity(total);
    out.extend(Interleave::new(calls));
    out
}

/// Iterator form of [`interleave`] (same order), yielding `&IncomingEvent`.
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
            .filter_map(|(ci, c)| c.events.first().map(|e| Reverse((time_of(e), ci, 0))))
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
    type Item = &'a IncomingEvent;

    fn next(&mut self) -> Option<Self::Item> {
        let Reverse((_, ci, ei)) = self.heap.pop()?;
        let events = &self.calls[ci].events;
        if let Some(next) = events.get(ei + 1) {
            self.heap.push(Reverse((time_of(next), ci, ei + 1)));
        }
        self.remaining -= 1;
        Some(&events[ei])
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for Interleave<'_> {}

fn time_of(e: &IncomingEvent) -> TimestampMs {
    e.timestamp.unwrap_or(TimestampMs::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_core::EventKind;

    fn ev(call: &str, n: usize, ts: i64) -> IncomingEvent {
        IncomingEvent {
            event_id: Some(format!("{call}#{n}")),
            call_id: ExternalCallId::parse(call).unwrap(),
            timestamp: Some(ts),
            kind: EventKind::CallAnswered {
                agent_id: None,
                wait_time: None,
            },
        }
    }

    fn call(id: &str, times: &[i64]) -> TraceCall {
        TraceCall {
            call_id: ExternalCallId::parse(id).unwrap(),
            events: times
                .iter()
                .enumerate()
                .map(|(n, &t)| ev(id, n, t))
                .collect(),
        }
    }

    fn ids(v: &[&IncomingEvent]) -> Vec<String> {
        v.iter().map(|e| e.event_id.clone().unwrap()).collect()
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
                assert_eq!(e.event_id, Some(format!("{}#{n}", c.call_id)));
            }
        }
    }

    #[test]
    fn interleave_empty() {
        assert!(interleave(&[]).is_empty());
        assert!(interleave(&[call("x", &[])]).is_empty());
    }
}
