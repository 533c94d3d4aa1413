//! Agents as the engine tracks them: consecutive unanswered offers and whether the
//! `max_no_answer` rule put the agent on break. (Status, capacity and skills come with the
//! automatic call distributor.)

use std::collections::HashMap;

use switchboard_store::AgentRow;

#[derive(Default, Clone, Copy)]
struct AgentState {
    /// Consecutive offers not answered.
    missed: u32,
    on_break: bool,
}

/// The tenant's agents, by agent id.
#[derive(Default)]
pub(crate) struct Agents(HashMap<String, AgentState>);

impl Agents {
    /// Sets an agent's state read from the store.
    pub fn put(&mut self, a: AgentRow) {
        self.0.insert(
            a.agent_id,
            AgentState {
                missed: a.missed,
                on_break: a.on_break,
            },
        );
    }

    /// Consecutive misses (0 for an agent never seen).
    pub fn missed(&self, id: &str) -> u32 {
        self.0.get(id).map_or(0, |a| a.missed)
    }

    /// Records a miss as the rules computed it.
    pub fn record_miss(&mut self, id: &str, missed: u32, on_break: bool) {
        let a = self.0.entry(id.to_owned()).or_default();
        a.missed = missed;
        a.on_break |= on_break;
    }

    /// The agent answered: its misses reset and its break ends. True when that changed it.
    pub fn answered(&mut self, id: &str) -> bool {
        match self.0.get_mut(id) {
            Some(a) if a.missed > 0 || a.on_break => {
                *a = AgentState::default();
                true
            }
            _ => false,
        }
    }

    /// The stored row of an agent.
    pub fn row(&self, id: &str) -> Option<AgentRow> {
        self.0.get(id).map(|a| AgentRow {
            agent_id: id.to_owned(),
            missed: a.missed,
            on_break: a.on_break,
        })
    }

    /// `(missed, on_break)` of an agent.
    pub fn get(&self, id: &str) -> Option<(u32, bool)> {
        self.0.get(id).map(|a| (a.missed, a.on_break))
    }
}
