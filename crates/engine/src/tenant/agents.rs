//! Agents as the engine tracks them: the stored row (configuration, chosen status, counters)
//! plus the calls each one is being offered (`ringing`) or is connected to (`on_call`), from
//! which its presence is derived:
//!
//! | presence | when |
//! |---|---|
//! | `ringing` | a call is being offered to it |
//! | `on_call` | it is connected to a call (active or on hold) |
//! | `wrap_up` | its last call ended less than `wrap_up_s` ago |
//! | `available` / `break` / `offline` | otherwise: its chosen status |
//!
//! The calls' holds are kept in step with the calls by the tenant state (see `record`), so an
//! agent's active calls are exactly the calls in memory that ring it or are connected to it.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use switchboard_core::routing::{AgentSnapshot, AgentStatus, Presence};
use switchboard_store::AgentRow;

/// How a call holds an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hold {
    /// The call is offered to the agent.
    Ringing,
    /// The agent is connected to the call; the call's talk time (ms) when it connected.
    Connected { talk_at: i64 },
}

/// One agent: its row and the calls holding it.
#[derive(Debug, Clone)]
pub(crate) struct AgentState {
    pub row: AgentRow,
    pub ringing: BTreeSet<Arc<str>>,
    pub connected: BTreeSet<Arc<str>>,
    /// The presence last published (agent events are emitted when it changes).
    pub published: Presence,
}

impl AgentState {
    fn new(row: AgentRow) -> Self {
        let mut a = AgentState {
            row,
            ringing: BTreeSet::new(),
            connected: BTreeSet::new(),
            published: Presence::Offline,
        };
        a.published = a.presence();
        a
    }

    /// Calls ringing or connected.
    pub fn active_calls(&self) -> u32 {
        (self.ringing.len() + self.connected.len()) as u32
    }

    /// The derived presence (module table).
    pub fn presence(&self) -> Presence {
        if !self.ringing.is_empty() {
            Presence::Ringing
        } else if !self.connected.is_empty() {
            Presence::OnCall
        } else if self.row.wrap_up_until.is_some() {
            Presence::WrapUp
        } else {
            status_presence(self.row.status)
        }
    }

    /// The agent as a routing decision sees it: only an `available` agent, not in wrap-up, is
    /// offered calls (up to its capacity, counting calls it already has).
    pub fn snapshot(&self) -> AgentSnapshot {
        let presence = match (self.row.status, self.row.wrap_up_until) {
            (AgentStatus::Available, Some(_)) => Presence::WrapUp,
            (AgentStatus::Available, None) if self.active_calls() > 0 => Presence::OnCall,
            (s, _) => status_presence(s),
        };
        AgentSnapshot {
            presence,
            active_calls: self.active_calls(),
            capacity: self.row.capacity.max(1),
            skills: self
                .row
                .skills
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
            idle_since_ms: self.row.idle_since,
            calls_taken: self.row.calls_taken,
            talk_ms: self.row.talk_ms,
        }
    }
}

fn status_presence(s: AgentStatus) -> Presence {
    match s {
        AgentStatus::Available => Presence::Available,
        AgentStatus::Break => Presence::Break,
        AgentStatus::Offline => Presence::Offline,
    }
}

/// The tenant's agents, by agent id.
#[derive(Default)]
pub(crate) struct Agents(HashMap<String, AgentState>);

impl Agents {
    /// Sets an agent's row (loaded from the store, or changed by a command), keeping the calls
    /// that hold it.
    pub fn put(&mut self, row: AgentRow) {
        match self.0.get_mut(&row.agent_id) {
            Some(a) => a.row = row,
            None => {
                self.0.insert(row.agent_id.clone(), AgentState::new(row));
            }
        }
    }

    pub fn get(&self, id: &str) -> Option<&AgentState> {
        self.0.get(id)
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut AgentState> {
        self.0.get_mut(id)
    }

    /// The agent, created as "seen in events" (offline, unconfigured) when unknown.
    pub fn entry(&mut self, id: &str) -> &mut AgentState {
        self.0
            .entry(id.to_owned())
            .or_insert_with(|| AgentState::new(AgentRow::seen(id)))
    }

    /// Every agent, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &AgentState> {
        self.0.values()
    }

    /// Consecutive misses (0 for an agent never seen).
    pub fn missed(&self, id: &str) -> u32 {
        self.0.get(id).map_or(0, |a| a.row.missed)
    }

    /// Moves a call's holds: releases `from`, takes `to`.
    pub fn rehold(&mut self, call: &Arc<str>, from: &[(String, Hold)], to: &[(String, Hold)]) {
        for (id, h) in from {
            if to.contains(&(id.clone(), *h)) {
                continue;
            }
            if let Some(a) = self.0.get_mut(id) {
                match h {
                    Hold::Ringing => a.ringing.remove(call),
                    Hold::Connected { .. } => a.connected.remove(call),
                };
            }
        }
        for (id, h) in to {
            if from.contains(&(id.clone(), *h)) {
                continue;
            }
            let a = self.entry(id);
            match h {
                Hold::Ringing => a.ringing.insert(call.clone()),
                Hold::Connected { .. } => a.connected.insert(call.clone()),
            };
        }
    }
}
