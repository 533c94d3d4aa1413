//! Agents' presence as calls move: counters (calls taken, talk time, misses), wrap-up after a
//! call, and an `agent_status_changed` event whenever a configured agent's presence changes.
//!
//! Wrap-up follows FreeSWITCH mod_callcenter's `wrap-up-time`: after an agent's call ends (or
//! is transferred away from it) the agent is in `wrap_up` for its `wrap_up_s` and is offered
//! nothing; `longest_idle` counts its idle time from the end of the wrap-up.

use std::sync::Arc;

use serde_json::json;
use switchboard_store::EventRecord;
use uuid::Uuid;

use super::{Hold, Pending, TenantState, AGENT_STATUS_CHANGED};
use crate::rules::{ms, TimerKind};

impl TenantState {
    /// A call's holds moved from `old` to `new` at `ts` (the call's talk time now `talk_ms`):
    /// counts answers and talk time, starts wrap-ups, publishes presence changes.
    pub(super) fn agents_moved(
        &mut self,
        old: &[(String, Hold)],
        new: &[(String, Hold)],
        talk_ms: i64,
        reason: &str,
        ts: i64,
        out: &mut Pending,
    ) {
        let connected = |v: &[(String, Hold)], id: &str| {
            v.iter()
                .any(|(a, h)| a == id && matches!(h, Hold::Connected { .. }))
        };
        for (id, h) in old {
            if let Hold::Connected { talk_at } = h {
                if !connected(new, id) {
                    self.call_left(id, talk_ms - talk_at, ts);
                }
            }
        }
        for (id, h) in new {
            if matches!(h, Hold::Connected { .. }) && !connected(old, id) {
                // Answered: the misses in a row end (mod_callcenter resets `no-answer-count`).
                let a = self.agents.entry(id);
                a.row.missed = 0;
                a.row.calls_taken += 1;
                out.agents.push(id.clone());
            }
        }
        for (id, _) in old.iter().chain(new) {
            self.touch_agent(id, reason, ts, out);
        }
    }

    /// The agent's connected call left it after `talked_ms` of talk: wrap-up starts, or the
    /// agent is idle from `ts`.
    fn call_left(&mut self, id: &str, talked_ms: i64, ts: i64) {
        let a = self.agents.entry(id);
        a.row.talk_ms += talked_ms.max(0);
        a.row.idle_since = ts;
        if a.row.wrap_up_s > 0 {
            let until = ts + ms(a.row.wrap_up_s);
            let previous = a.row.wrap_up_until.replace(until);
            let key: Arc<str> = Arc::from(id);
            self.timers.arm(&key, TimerKind::WrapUp, previous, until);
        }
    }

    /// The agent's wrap-up timer fired at `deadline`.
    pub(super) fn end_wrap_up(&mut self, key: &Arc<str>, deadline: i64, out: &mut Pending) {
        let Some(a) = self.agents.get_mut(key) else {
            return;
        };
        if a.row.wrap_up_until != Some(deadline) {
            return; // re-armed by a later call
        }
        a.row.wrap_up_until = None;
        a.row.idle_since = deadline;
        out.agents.push(key.to_string());
        self.touch_agent(key, "wrap_up_done", deadline, out);
    }

    /// Publishes the agent's presence when it changed (configured agents only: an agent only
    /// seen in manual `call_routed` events has no presence to publish), and marks its row to
    /// be stored.
    pub(super) fn touch_agent(&mut self, id: &str, reason: &str, ts: i64, out: &mut Pending) {
        let Some(a) = self.agents.get_mut(id) else {
            return;
        };
        if a.row.version == 0 {
            return;
        }
        out.agents.push(id.to_owned());
        let now = a.presence();
        if now == a.published {
            return;
        }
        let previous = std::mem::replace(&mut a.published, now);
        let data = json!({
            "agent_id": id,
            "status": now.as_str(),
            "previous": previous.as_str(),
            "reason": reason,
            "active_calls": a.active_calls(),
        });
        self.last_seq += 1;
        out.events.push(EventRecord {
            seq: self.last_seq,
            call_id: Uuid::nil(),
            external_call_id: id.to_owned(),
            event_id: None,
            event_type: AGENT_STATUS_CHANGED.to_owned(),
            ts,
            received_at: out.now,
            status_after: now.as_str().to_owned(),
            data: data.to_string(),
        });
    }
}
