//! Agent commands on the tenant state: create or change an agent, set its chosen status, read
//! it with its presence. The engine ([`crate::Engine`]) runs them under the tenant's lock and
//! stores their effects in the same commit as their events and audit entries.

use std::sync::Arc;

use switchboard_core::routing::{AgentStatus, Presence};
use switchboard_core::{CallStatus, EventKind};
use switchboard_store::AgentRow;

use super::{Pending, TenantState};
use crate::rules::TimerKind;
use crate::{EngineError, Expect};

/// An agent with what the engine knows live: its presence and the calls it has.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentView {
    /// The stored agent (configuration, chosen status, counters).
    pub row: AgentRow,
    /// Derived presence: `ringing`, `on_call`, `wrap_up`, else the chosen status.
    pub presence: Presence,
    /// Client call ids of the calls ringing it.
    pub ringing: Vec<String>,
    /// Client call ids of the calls it is connected to.
    pub connected: Vec<String>,
}

impl TenantState {
    /// The time a command takes effect on the tenant's timeline: on the `event_time` clock the
    /// watermark (a replay's "now"; wall-clock `now` before the first event), else `now`.
    pub(crate) fn clock_now(&self, now: i64) -> i64 {
        match self.settings.clock {
            switchboard_core::Clock::EventTime if self.watermark != i64::MIN => self.watermark,
            _ => now,
        }
    }

    /// The agent with its presence, if configured (an agent only seen in events is not one).
    pub fn agent_view(&self, id: &str) -> Option<AgentView> {
        let a = self.agents.get(id).filter(|a| a.row.version > 0)?;
        let ids =
            |s: &std::collections::BTreeSet<Arc<str>>| s.iter().map(|k| k.to_string()).collect();
        Some(AgentView {
            row: a.row.clone(),
            presence: a.presence(),
            ringing: ids(&a.ringing),
            connected: ids(&a.connected),
        })
    }

    /// Every configured agent, ordered by id.
    pub fn agent_views(&self) -> Vec<AgentView> {
        let mut ids: Vec<&str> = self
            .agents
            .iter()
            .filter(|a| a.row.version > 0)
            .map(|a| a.row.agent_id.as_str())
            .collect();
        ids.sort_unstable();
        ids.into_iter()
            .filter_map(|id| self.agent_view(id))
            .collect()
    }

    /// Whether `id` is a configured agent.
    pub fn has_agent(&self, id: &str) -> bool {
        self.agents.get(id).is_some_and(|a| a.row.version > 0)
    }

    /// Creates (`Expect::Absent`) or changes (`Expect::Version`) an agent's configuration at
    /// `now`: name, user, skills, capacity, `wrap_up_s`, `max_no_answer`, `sip_uri`, and on
    /// creation its status. Counters and calls are kept. Returns the row before (if any).
    ///
    /// Errors: `AgentExists`, `NoSuchAgent`, `VersionMismatch`.
    pub(crate) fn put_agent_config(
        &mut self,
        mut row: AgentRow,
        expect: Expect,
        now: i64,
        out: &mut Pending,
    ) -> Result<Option<AgentRow>, EngineError> {
        let current = self
            .agents
            .get(&row.agent_id)
            .map(|a| a.row.clone())
            .filter(|r| r.version > 0);
        match (&current, expect) {
            (Some(_), Expect::Absent) => return Err(EngineError::AgentExists(row.agent_id)),
            (None, Expect::Version(_)) => return Err(EngineError::NoSuchAgent(row.agent_id)),
            (Some(c), Expect::Version(v)) if c.version != v => {
                return Err(EngineError::VersionMismatch { current: c.version })
            }
            _ => {}
        }
        let seen = self.agents.get(&row.agent_id).map(|a| a.row.clone());
        let base = current.clone().or(seen);
        if let Some(b) = &base {
            // Counters and live state stay; a seen agent keeps its misses.
            row.missed = b.missed;
            row.wrap_up_until = b.wrap_up_until;
            row.calls_taken = b.calls_taken;
            row.talk_ms = b.talk_ms;
            row.idle_since = b.idle_since;
        }
        match &current {
            Some(c) => {
                row.status = c.status;
                row.status_since = c.status_since;
                row.created_at = c.created_at;
                row.version = c.version + 1;
            }
            None => {
                row.created_at = now;
                row.version = 1;
            }
        }
        row.updated_at = now;
        let id = row.agent_id.clone();
        let at = self.clock_now(now);
        if current.is_none() {
            row.status_since = at;
            row.idle_since = at;
        }
        self.agents.put(row);
        if current.is_none() {
            // A new agent's first presence is published (from `offline`).
            if let Some(a) = self.agents.get_mut(&id) {
                a.published = Presence::Offline;
            }
        }
        self.touch_agent(&id, "configured", at, out);
        out.agents.push(id.clone());
        self.distribute(at, out);
        Ok(current)
    }

    /// Sets the agent's chosen status at `now`. Going `break` or `offline` re-queues the calls
    /// it is being offered (`call_retransfer`, no miss counted); going `available` starts its
    /// idle time and clears its misses. Returns the status before.
    ///
    /// Errors: `NoSuchAgent`.
    pub(crate) fn set_agent_status(
        &mut self,
        id: &str,
        status: AgentStatus,
        now: i64,
        out: &mut Pending,
    ) -> Result<AgentStatus, EngineError> {
        let now_wall = now;
        let now = self.clock_now(now);
        let a = self
            .agents
            .get_mut(id)
            .filter(|a| a.row.version > 0)
            .ok_or_else(|| EngineError::NoSuchAgent(id.to_owned()))?;
        let before = a.row.status;
        if before == status {
            return Ok(before);
        }
        a.row.status = status;
        a.row.status_since = now;
        a.row.updated_at = now_wall;
        if status == AgentStatus::Available {
            a.row.missed = 0;
            if a.connected.is_empty() && a.row.wrap_up_until.is_none() {
                a.row.idle_since = now;
            }
        }
        let ringing: Vec<Arc<str>> = if status == AgentStatus::Available {
            Vec::new()
        } else {
            a.ringing.iter().cloned().collect()
        };
        out.agents.push(id.to_owned());
        for key in ringing {
            self.requeue(&key, now, out);
        }
        self.touch_agent(id, "requested", now, out);
        self.distribute(now, out);
        Ok(before)
    }

    /// Puts a ringing call back in its queue (its agent went away mid-offer).
    fn requeue(&mut self, key: &Arc<str>, now: i64, out: &mut Pending) {
        let Some(e) = self.calls.get(key) else {
            return;
        };
        if e.call.status != CallStatus::Ringing || e.call.queue_id.is_none() {
            return;
        }
        let Some(agent) = e.call.agent_id.clone() else {
            return;
        };
        let missed = self.agents.missed(agent.as_str());
        self.disarm(key, TimerKind::Ring);
        self.emit(
            key,
            EventKind::CallRetransfer {
                agent_id: agent,
                missed,
                agent_on_break: false,
            },
            now,
            None,
            out,
        );
    }

    /// Runs a distribution pass at `now` on the tenant's clock (after a queue's routing
    /// changed).
    pub(crate) fn distribute_now(&mut self, now: i64, out: &mut Pending) {
        let at = self.clock_now(now);
        self.distribute(at, out);
    }
}
