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
    /// The agent the last call was offered to (`round_robin` goes on after it). Memory only:
    /// after a restart the rotation starts again from the first member.
    pub last_offered: Option<String>,
}

impl QueueState {
    /// Number of waiting calls.
    pub fn waiting_len(&self) -> usize {
        self.waiting.len()
    }

    /// Waiting calls' keys in service order.
    pub fn waiting_keys(&self) -> impl Iterator<Item = &Arc<str>> {
        self.waiting.iter().map(|k| &k.2)
    }
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
                        last_offered: None,
                    },
                );
            }
        }
    }

    pub fn get(&self, id: &str) -> Option<&QueueRecord> {
        self.0.get(id).map(|s| &s.record)
    }

    pub fn get_state_mut(&mut self, id: &str) -> Option<&mut QueueState> {
        self.0.get_mut(id)
    }

    /// Every queue with its id.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &QueueState)> {
        self.0.iter()
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

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_core::QueueSettings;

    fn record(id: &str) -> QueueRecord {
        QueueRecord {
            id: id.into(),
            name: id.into(),
            settings: QueueSettings::default(),
            routing: Default::default(),
            created_at: 0,
            updated_at: 0,
            version: 1,
        }
    }

    fn seat(q: &str, priority: u32, since: i64, call: &str) -> Option<(String, WaitKey)> {
        Some((q.into(), (Reverse(priority), since, Arc::from(call))))
    }

    #[test]
    fn waiting_calls_are_served_by_priority_then_longest_wait() {
        let mut qs = Queues::default();
        qs.put(record("q0"));
        qs.reseat(None, seat("q0", 0, 1_000, "early"));
        qs.reseat(None, seat("q0", 0, 2_000, "late"));
        qs.reseat(None, seat("q0", 5, 3_000, "vip"));
        let order = |qs: &Queues| {
            qs.waiting("q0")
                .iter()
                .map(|k| k.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(order(&qs), ["vip", "early", "late"]);
        // Routed: it leaves the queue; a change of the record keeps the others waiting.
        qs.reseat(seat("q0", 5, 3_000, "vip"), None);
        qs.put(record("q0"));
        assert_eq!(order(&qs), ["early", "late"]);
        // Moved to another queue (that exists).
        qs.put(record("q1"));
        qs.reseat(seat("q0", 0, 1_000, "early"), seat("q1", 0, 4_000, "early"));
        assert_eq!(order(&qs), ["late"]);
        assert_eq!(qs.waiting("q1").len(), 1);
        assert!(qs.waiting("nope").is_empty());
    }
}
