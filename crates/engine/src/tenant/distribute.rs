//! The automatic call distributor: after every event, timer and command, the waiting calls of
//! the tenant's `auto` queues are offered to their eligible members by each queue's strategy
//! ([`switchboard_core::routing::distribute`], a pure function over a snapshot), and each
//! offer becomes an engine-made `call_routed` (which arms the ring timer like a client's).
//!
//! The pass is work-conserving: it runs until no waiting call has an eligible agent, so after
//! it no available agent with room stays idle while a call it could take waits. An offer
//! counts against the agent's capacity at once, and the tenant's state is only ever changed
//! under its lock, so concurrent requests can never offer an agent more calls than its
//! capacity.

use std::collections::HashMap;
use std::sync::Arc;

use switchboard_core::routing::{self, AgentSnapshot, Member, QueueSnapshot, RoutingMode};
use switchboard_core::{AgentId, EventKind};

use super::{Pending, TenantState};

impl TenantState {
    /// Offers waiting calls of `auto` queues to available agents, at `ts` (epoch ms).
    pub(super) fn distribute(&mut self, ts: i64, out: &mut Pending) {
        let mut queue_ids = Vec::new();
        let mut snapshots = Vec::new();
        let mut agent_ids: Vec<String> = Vec::new();
        let mut agents: Vec<AgentSnapshot> = Vec::new();
        let mut agent_index: HashMap<String, usize> = HashMap::new();
        let mut calls: Vec<Arc<str>> = Vec::new();
        for (qid, q) in self.queues.iter() {
            let r = &q.record.routing;
            if r.mode != RoutingMode::Auto || q.waiting_len() == 0 {
                continue;
            }
            let mut members = Vec::with_capacity(r.members.len());
            let mut free = 0u64;
            let mut last_offered = None;
            for m in &r.members {
                let Some(a) = self.agents.get(&m.agent_id) else {
                    continue;
                };
                let i = *agent_index.entry(m.agent_id.clone()).or_insert_with(|| {
                    agent_ids.push(m.agent_id.clone());
                    agents.push(a.snapshot());
                    agents.len() - 1
                });
                if q.last_offered.as_deref() == Some(m.agent_id.as_str()) {
                    last_offered = Some(members.len());
                }
                free += u64::from(a.row.capacity.max(1).saturating_sub(a.active_calls()));
                members.push(Member {
                    agent: i,
                    level: m.level,
                    position: m.position,
                    weight: m.weight,
                });
            }
            if free == 0 {
                continue;
            }
            // At most as many calls as there are free places can be offered in this pass.
            let waiting = q
                .waiting_keys()
                .take(free as usize)
                .map(|k| {
                    calls.push(k.clone());
                    (calls.len() - 1) as u64
                })
                .collect();
            queue_ids.push(qid.clone());
            snapshots.push(QueueSnapshot {
                strategy: r.strategy,
                required: r
                    .required_skills
                    .iter()
                    .map(|(k, v)| (k.clone(), *v))
                    .collect(),
                members,
                waiting,
                last_offered,
            });
        }
        if snapshots.is_empty() {
            return;
        }
        let assignments = routing::distribute(&mut snapshots, &mut agents, &mut rand::random);
        for a in assignments {
            let key = calls[a.call as usize].clone();
            let mut group: Vec<AgentId> = a
                .agents
                .iter()
                .filter_map(|&i| AgentId::parse(&agent_ids[i]).ok())
                .collect();
            let Some(first) = group.first().cloned() else {
                continue;
            };
            if let Some(q) = self.queues.get_state_mut(&queue_ids[a.queue]) {
                q.last_offered = a.agents.last().map(|&i| agent_ids[i].clone());
            }
            let targets = group
                .iter()
                .filter_map(|g| self.agents.get(g.as_str())?.row.sip_uri.clone())
                .collect();
            if group.len() == 1 {
                group.clear();
            }
            let kind = EventKind::CallRouted {
                agent_id: first,
                routing_time: None,
                ring_group: group,
                targets,
            };
            let answered_before = self.calls[&key].call.answered_at.is_some();
            self.emit(&key, kind.clone(), ts, None, out);
            self.after(&key, &kind, ts, answered_before, out);
        }
    }
}
