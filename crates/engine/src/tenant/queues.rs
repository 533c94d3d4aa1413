//! A tenant's queues: their settings and, for each, its waiting calls in service order —
//! higher caller priority first, then earlier entry into the wait (Asterisk app_queue and
//! FreeSWITCH mod_callcenter serve callers the same way).

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use switchboard_store::QueueRecord;

/// Position of a waiting call: `(Reverse(priority), waiting since epoch ms, call key)`.
pub(crate) type WaitKey = (Reverse<u32>, i64, Arc<str>);

/// One queue: its record and its waiting calls in service order.
pub(crate) struct QueueState {
    pub record: QueueRecord,
    waiting: BTreeSet<WaitKey>,
}

/// The tenant's queues, by id.
#[derive(Default)]
pub(crate) struct Queues(HashMap<String, QueueState>);

impl Queues {
    /// Creates or replaces a queue's record, keeping its waiting calls.
    pub fn put(&mut self, q: QueueRecord) {
        match self.0.get_mut(&q.id) {
            Some(s) => s.record = q,
            None => {
                self.0.insert(
                    q.id.clone(),
                    QueueState {
                        record: q,
                        waiting: BTreeSet::new(),
                    },
                );
            }
        }
    }

    pub fn get(&self, id: &str) -> Option<&QueueRecord> {
        self.0.get(id).map(|s| &s.record)
    }

    pub fn contains(&self, id: &str) -> bool {
        self.0.contains_key(id)
    }

    /// Moves a call's place: out of `from` (its previous place, if any), into `to`.
    pub fn reseat(&mut self, from: Option<(String, WaitKey)>, to: Option<(String, WaitKey)>) {
        if from == to {
            return;
        }
        if let Some((q, k)) = from {
            if let Some(s) = self.0.get_mut(&q) {
                s.waiting.remove(&k);
            }
        }
        if let Some((q, k)) = to {
            if let Some(s) = self.0.get_mut(&q) {
                s.waiting.insert(k);
            }
        }
    }

    /// The queue's waiting calls in service order (call keys).
    pub fn waiting(&self, id: &str) -> Vec<Arc<str>> {
        self.0
            .get(id)
            .map(|s| s.waiting.iter().map(|k| k.2.clone()).collect())
            .unwrap_or_default()
    }
}
