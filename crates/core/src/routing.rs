//! Routing decisions as pure functions over a snapshot: which agent a queue offers a call to,
//! and which destination call center a campaign sends a call to. No I/O, no clock, no
//! randomness of their own (the caller passes a random number), so they are tested
//! exhaustively and benchmarked alone (DESIGN.md, "Routing").
//!
//! Queue strategies carry the names of Asterisk app_queue and FreeSWITCH mod_callcenter:
//!
//! | strategy | picks, among the eligible agents of the first tier that has any |
//! |---|---|
//! | `ring_all` | all of them at once (the first to answer takes the call) |
//! | `longest_idle` | the one idle the longest (mod_callcenter `longest-idle-agent`) |
//! | `round_robin` | the next after the last one offered, in member order (app_queue `rrmemory`) |
//! | `fewest_calls` | the one that took the fewest calls (app_queue `fewestcalls`) |
//! | `least_talk_time` | the one with the least talk time (mod_callcenter `agent-with-least-talk-time`) |
//! | `top_down` | the first in tier order: level, then position (mod_callcenter `top-down`) |
//! | `random` | any, uniformly (app_queue `random`) |
//! | `weighted_random` | any, with probability proportional to its weight (app_queue `wrandom`) |
//!
//! An agent is **eligible** when it is `available`, has fewer active calls than its capacity,
//! and holds every skill the queue requires at (at least) the required level. Tiers follow
//! mod_callcenter: a call goes to the agents of the lowest tier `level` that has an eligible
//! agent; higher levels are reached only when every lower one is busy. Ties break by
//! position, then agent order, so a decision is reproducible.

use serde::{Deserialize, Serialize};

/// A queue's distribution strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Ring every eligible agent of the tier at once.
    RingAll,
    /// The agent idle the longest (default, as mod_callcenter's).
    #[default]
    LongestIdle,
    /// The next agent after the last one offered, in member order.
    RoundRobin,
    /// The agent that took the fewest calls.
    FewestCalls,
    /// The agent with the least talk time.
    LeastTalkTime,
    /// The first agent in tier order (level, then position).
    TopDown,
    /// Any eligible agent, uniformly.
    Random,
    /// Any eligible agent, with probability proportional to its weight.
    WeightedRandom,
}

impl Strategy {
    /// Every strategy.
    pub const ALL: [Strategy; 8] = [
        Strategy::RingAll,
        Strategy::LongestIdle,
        Strategy::RoundRobin,
        Strategy::FewestCalls,
        Strategy::LeastTalkTime,
        Strategy::TopDown,
        Strategy::Random,
        Strategy::WeightedRandom,
    ];
}

/// Who routes a queue's calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RoutingMode {
    /// The client routes: it sends `call_routed` (default; the behaviour before the ACD).
    #[default]
    Manual,
    /// The engine distributes waiting calls to the queue's members by its strategy.
    Auto,
}

/// The status an agent (or its supervisor) chooses; the engine derives `ringing`, `on_call` and
/// `wrap_up` on top of it (see [`Presence`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AgentStatus {
    /// Ready for calls.
    Available,
    /// Away on purpose, or put there after `max_no_answer` consecutive misses.
    Break,
    /// Logged out (default for a new agent).
    #[default]
    Offline,
}

macro_rules! wire_names {
    ($t:ty { $($v:ident = $n:literal),* $(,)? }) => {
        impl $t {
            /// The wire name.
            pub fn as_str(self) -> &'static str {
                match self { $(<$t>::$v => $n,)* }
            }
            /// Parses the wire name.
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($n => Some(<$t>::$v),)* _ => None }
            }
        }
    };
}

wire_names!(Strategy {
    RingAll = "ring_all",
    LongestIdle = "longest_idle",
    RoundRobin = "round_robin",
    FewestCalls = "fewest_calls",
    LeastTalkTime = "least_talk_time",
    TopDown = "top_down",
    Random = "random",
    WeightedRandom = "weighted_random",
});
wire_names!(RoutingMode { Manual = "manual", Auto = "auto" });
wire_names!(AgentStatus {
    Available = "available",
    Break = "break",
    Offline = "offline"
});
wire_names!(Presence {
    Available = "available",
    Ringing = "ringing",
    OnCall = "on_call",
    WrapUp = "wrap_up",
    Break = "break",
    Offline = "offline"
});

/// An agent's presence, as routing sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    /// Ready for calls.
    Available,
    /// Being offered a call.
    Ringing,
    /// On a call (at capacity or not: see `active_calls`).
    OnCall,
    /// After a call, for the agent's `wrap_up_s`.
    WrapUp,
    /// Away on purpose, or after `max_no_answer` misses.
    Break,
    /// Logged out.
    Offline,
}

/// One member of a queue at the moment of a decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// Presence. Only `available` agents (and `on_call` ones below capacity) are offered calls.
    pub presence: Presence,
    /// Calls the agent has now (ringing or connected).
    pub active_calls: u32,
    /// Calls the agent may have at once (at least 1).
    pub capacity: u32,
    /// Skills and levels (0–10), sorted by name.
    pub skills: Vec<(String, u8)>,
    /// Tier level in this queue: lower levels are offered calls first.
    pub level: u32,
    /// Position within the tier: lower first (`top_down`, `round_robin`, ties).
    pub position: u32,
    /// Weight for `weighted_random` (0 never chosen by it).
    pub weight: u32,
    /// Since when the agent is idle, epoch ms (`longest_idle`: smaller is longer).
    pub idle_since_ms: i64,
    /// Calls the agent took (`fewest_calls`).
    pub calls_taken: u64,
    /// Talk time, ms (`least_talk_time`).
    pub talk_ms: i64,
}

impl Candidate {
    /// True when the agent may be offered a call of a queue that requires `required`.
    pub fn eligible(&self, required: &[(String, u8)]) -> bool {
        let present = matches!(self.presence, Presence::Available | Presence::OnCall);
        present
            && self.active_calls < self.capacity.max(1)
            && required.iter().all(|(skill, min)| {
                self.skills
                    .binary_search_by(|(s, _)| s.as_str().cmp(skill))
                    .is_ok_and(|i| self.skills[i].1 >= *min)
            })
    }
}

/// What a queue decided for its first waiting call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offer {
    /// Offer the call to this candidate (an index into the snapshot).
    One(usize),
    /// Ring all of these at once (`ring_all`).
    All(Vec<usize>),
    /// Nobody can take it now.
    Nobody,
}

/// Decides whom a queue offers its next call to.
///
/// `candidates` are the queue's members (in member order); `required` the queue's skills;
/// `last_offered` the index of the member the previous call was offered to (`round_robin`);
/// `random` a uniformly random number (`random`, `weighted_random`).
pub fn choose(
    strategy: Strategy,
    candidates: &[Candidate],
    required: &[(String, u8)],
    last_offered: Option<usize>,
    random: u64,
) -> Offer {
    let eligible: Vec<usize> = (0..candidates.len())
        .filter(|&i| candidates[i].eligible(required))
        .collect();
    let Some(level) = eligible.iter().map(|&i| candidates[i].level).min() else {
        return Offer::Nobody;
    };
    let tier: Vec<usize> = eligible
        .into_iter()
        .filter(|&i| candidates[i].level == level)
        .collect();
    let c = |i: usize| &candidates[i];
    // Ties: position, then member order.
    let by = |key: &dyn Fn(usize) -> i128| {
        tier.iter()
            .copied()
            .min_by_key(|&i| (key(i), c(i).position, i))
            .map_or(Offer::Nobody, Offer::One)
    };
    match strategy {
        Strategy::RingAll => Offer::All(tier),
        Strategy::LongestIdle => by(&|i| i128::from(c(i).idle_since_ms)),
        Strategy::FewestCalls => by(&|i| i128::from(c(i).calls_taken)),
        Strategy::LeastTalkTime => by(&|i| i128::from(c(i).talk_ms)),
        Strategy::TopDown => by(&|_| 0),
        Strategy::RoundRobin => {
            // Member order is (position, index); the next after the last offered, wrapping.
            let order = |i: usize| (c(i).position, i);
            let after = last_offered.filter(|&l| l < candidates.len()).map(order);
            let next = tier
                .iter()
                .copied()
                .filter(|&i| after.is_none_or(|a| order(i) > a))
                .min_by_key(|&i| order(i));
            next.or_else(|| tier.iter().copied().min_by_key(|&i| order(i)))
                .map_or(Offer::Nobody, Offer::One)
        }
        Strategy::Random => Offer::One(tier[(random % tier.len() as u64) as usize]),
        Strategy::WeightedRandom => {
            let total: u64 = tier.iter().map(|&i| u64::from(c(i).weight)).sum();
            if total == 0 {
                return Offer::One(tier[(random % tier.len() as u64) as usize]);
            }
            let mut r = random % total;
            for &i in &tier {
                let w = u64::from(c(i).weight);
                if r < w {
                    return Offer::One(i);
                }
                r -= w;
            }
            Offer::Nobody
        }
    }
}

/// How a campaign spreads its calls over its destinations (the call-seller model).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CampaignStrategy {
    /// The destination of the lowest `priority` value that can take the call.
    #[default]
    Priority,
    /// The next destination after the last one used, in link order.
    RoundRobin,
    /// Any destination that can take the call, with probability proportional to its weight.
    Weighted,
}

/// One campaign–destination link at the moment of a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    /// False when the destination or the link is switched off.
    pub active: bool,
    /// Lower first (`priority`).
    pub priority: u32,
    /// Share for `weighted` (0 never chosen by it).
    pub weight: u32,
    /// Calls up now.
    pub active_calls: u32,
    /// Most calls at once (`None`: no cap).
    pub concurrency_cap: Option<u32>,
    /// Calls sent so far.
    pub total_calls: u64,
    /// Most calls ever (`None`: no cap).
    pub total_cap: Option<u64>,
}

impl Link {
    /// True when the destination may take one more call: active, under both caps.
    pub fn can_take(&self) -> bool {
        self.active
            && self.concurrency_cap.is_none_or(|c| self.active_calls < c)
            && self.total_cap.is_none_or(|c| self.total_calls < c)
    }
}

/// Decides which destination a campaign sends its next call to: an index into `links`, or
/// `None` when every destination is off or at a cap. `last_used` is the previous call's
/// (`round_robin`); `random` a uniformly random number (`weighted`).
pub fn choose_destination(
    strategy: CampaignStrategy,
    links: &[Link],
    last_used: Option<usize>,
    random: u64,
) -> Option<usize> {
    let open: Vec<usize> = (0..links.len()).filter(|&i| links[i].can_take()).collect();
    if open.is_empty() {
        return None;
    }
    match strategy {
        CampaignStrategy::Priority => open.iter().copied().min_by_key(|&i| (links[i].priority, i)),
        CampaignStrategy::RoundRobin => open
            .iter()
            .copied()
            .find(|&i| last_used.is_none_or(|l| i > l))
            .or(open.first().copied()),
        CampaignStrategy::Weighted => {
            let total: u64 = open.iter().map(|&i| u64::from(links[i].weight)).sum();
            if total == 0 {
                return Some(open[(random % open.len() as u64) as usize]);
            }
            let mut r = random % total;
            open.into_iter().find(|&i| {
                let w = u64::from(links[i].weight);
                if r < w {
                    true
                } else {
                    r -= w;
                    false
                }
            })
        }
    }
}

/// A queue at the moment of a distribution pass.
#[derive(Debug, Clone)]
pub struct QueueSnapshot {
    /// The queue's strategy.
    pub strategy: Strategy,
    /// Skills every agent offered its calls must hold, sorted by name.
    pub required: Vec<(String, u8)>,
    /// Its members: indexes into the pass's agents, in member order, with their tier.
    pub members: Vec<Member>,
    /// Its waiting calls, in service order (priority, then queue-entry time): opaque ids.
    pub waiting: Vec<u64>,
    /// The member offered the previous call (`round_robin`): an index into `members`.
    pub last_offered: Option<usize>,
}

/// An agent's place in one queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// Index into the pass's agents.
    pub agent: usize,
    /// Tier level (lower first).
    pub level: u32,
    /// Position in the tier (lower first).
    pub position: u32,
    /// Weight for `weighted_random`.
    pub weight: u32,
}

/// An agent at the moment of a distribution pass (its place in each queue is a [`Member`]).
#[derive(Debug, Clone, PartialEq)]
pub struct AgentSnapshot {
    /// Presence.
    pub presence: Presence,
    /// Calls now.
    pub active_calls: u32,
    /// Calls at once.
    pub capacity: u32,
    /// Skills and levels, sorted by name.
    pub skills: Vec<(String, u8)>,
    /// Idle since, epoch ms.
    pub idle_since_ms: i64,
    /// Calls taken.
    pub calls_taken: u64,
    /// Talk time, ms.
    pub talk_ms: i64,
}

/// One offer of a distribution pass: call `call` of queue `queue` to these agents (several for
/// `ring_all`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// Index into the pass's queues.
    pub queue: usize,
    /// The call's id.
    pub call: u64,
    /// Indexes into the pass's agents.
    pub agents: Vec<usize>,
}

/// Offers waiting calls to agents until no waiting call has an eligible agent: a
/// work-conserving pass. Queues take turns, one call each, in the order given (so one busy
/// queue does not starve the others); within a queue calls go in service order and the head
/// of the line is offered first (a later call never jumps it). Each offer counts against the
/// agents' capacity at once (`ring_all` reserves every agent it rings), so no agent is
/// offered more calls than its capacity. `random` draws the random numbers.
pub fn distribute(
    queues: &mut [QueueSnapshot],
    agents: &mut [AgentSnapshot],
    random: &mut impl FnMut() -> u64,
) -> Vec<Assignment> {
    let mut out = Vec::new();
    let mut next = vec![0usize; queues.len()];
    loop {
        let mut progressed = false;
        for (qi, q) in queues.iter_mut().enumerate() {
            let Some(&call) = q.waiting.get(next[qi]) else {
                continue;
            };
            let candidates: Vec<Candidate> = q
                .members
                .iter()
                .map(|m| {
                    let a = &agents[m.agent];
                    Candidate {
                        presence: a.presence,
                        active_calls: a.active_calls,
                        capacity: a.capacity,
                        skills: a.skills.clone(),
                        level: m.level,
                        position: m.position,
                        weight: m.weight,
                        idle_since_ms: a.idle_since_ms,
                        calls_taken: a.calls_taken,
                        talk_ms: a.talk_ms,
                    }
                })
                .collect();
            let chosen = match choose(
                q.strategy,
                &candidates,
                &q.required,
                q.last_offered,
                random(),
            ) {
                Offer::One(i) => vec![i],
                Offer::All(v) => v,
                Offer::Nobody => continue,
            };
            q.last_offered = chosen.last().copied();
            let ids: Vec<usize> = chosen.iter().map(|&i| q.members[i].agent).collect();
            for &a in &ids {
                agents[a].active_calls += 1;
            }
            next[qi] += 1;
            out.push(Assignment {
                queue: qi,
                call,
                agents: ids,
            });
            progressed = true;
        }
        if !progressed {
            return out;
        }
    }
}

#[cfg(test)]
mod tests;
