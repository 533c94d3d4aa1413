//! Properties of the routing functions (issue 7): eligibility, capacity, the order each
//! strategy promises, weights, caps, and that a distribution pass leaves no eligible agent idle
//! while a call it could take waits.

use proptest::prelude::{
    any, prop_assert, prop_assert_eq, prop_assume, prop_oneof, proptest, Just, ProptestConfig,
};
use proptest::strategy::Strategy as Gen;

use super::*;

const SKILLS: [&str; 3] = ["billing", "french", "sales"];

fn presence() -> impl Gen<Value = Presence> {
    prop_oneof![
        3 => Just(Presence::Available),
        1 => Just(Presence::Ringing),
        1 => Just(Presence::OnCall),
        1 => Just(Presence::WrapUp),
        1 => Just(Presence::Break),
        1 => Just(Presence::Offline),
    ]
}

fn skills() -> impl Gen<Value = Vec<(String, u8)>> {
    proptest::collection::btree_map(proptest::sample::select(SKILLS.to_vec()), 0u8..=10, 0..=3)
        .prop_map(|m| m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

fn candidate() -> impl Gen<Value = Candidate> {
    (
        presence(),
        0u32..3,
        1u32..4,
        skills(),
        0u32..3,
        0u32..6,
        0u32..6,
        (0i64..1000, 0u64..50, 0i64..10_000),
    )
        .prop_map(
            |(presence, active, capacity, skills, level, position, weight, (idle, calls, talk))| {
                Candidate {
                    presence,
                    active_calls: active.min(capacity),
                    capacity,
                    skills,
                    level,
                    position,
                    weight,
                    idle_since_ms: idle,
                    calls_taken: calls,
                    talk_ms: talk,
                }
            },
        )
}

fn required() -> impl Gen<Value = Vec<(String, u8)>> {
    proptest::collection::btree_map(proptest::sample::select(SKILLS.to_vec()), 0u8..=10, 0..=1)
        .prop_map(|m| m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

fn strategy() -> impl Gen<Value = Strategy> {
    proptest::sample::select(Strategy::ALL.to_vec())
}

/// The tier a decision must come from: the lowest level with an eligible agent.
fn first_tier(c: &[Candidate], req: &[(String, u8)]) -> Vec<usize> {
    let level = (0..c.len())
        .filter(|&i| c[i].eligible(req))
        .map(|i| c[i].level)
        .min();
    (0..c.len())
        .filter(|&i| c[i].eligible(req) && Some(c[i].level) == level)
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn only_eligible_agents_of_the_first_tier_are_chosen(
        s in strategy(), c in proptest::collection::vec(candidate(), 0..12), req in required(),
        last in proptest::option::of(0usize..12), r in any::<u64>(),
    ) {
        let tier = first_tier(&c, &req);
        match choose(s, &c, &req, last, r) {
            Offer::Nobody => prop_assert!(tier.is_empty(), "{s:?} chose nobody among {tier:?}"),
            Offer::One(i) => {
                prop_assert!(tier.contains(&i), "{s:?} chose {i}, not in {tier:?}");
                prop_assert!(c[i].eligible(&req));
                prop_assert!(c[i].active_calls < c[i].capacity);
            }
            Offer::All(v) => {
                prop_assert_eq!(s, Strategy::RingAll);
                prop_assert_eq!(v, tier);
            }
        }
    }

    #[test]
    fn ordered_strategies_pick_the_best_of_the_tier(
        c in proptest::collection::vec(candidate(), 1..12), req in required(),
    ) {
        let tier = first_tier(&c, &req);
        prop_assume!(!tier.is_empty());
        let pick = |s| match choose(s, &c, &req, None, 0) { Offer::One(i) => i, o => panic!("{o:?}") };
        let i = pick(Strategy::LongestIdle);
        prop_assert!(tier.iter().all(|&j| c[i].idle_since_ms <= c[j].idle_since_ms));
        let i = pick(Strategy::FewestCalls);
        prop_assert!(tier.iter().all(|&j| c[i].calls_taken <= c[j].calls_taken));
        let i = pick(Strategy::LeastTalkTime);
        prop_assert!(tier.iter().all(|&j| c[i].talk_ms <= c[j].talk_ms));
        let i = pick(Strategy::TopDown);
        prop_assert!(tier.iter().all(|&j| (c[i].level, c[i].position, i) <= (c[j].level, c[j].position, j)));
        // Tier order: nobody of a lower level is eligible but passed over.
        prop_assert!((0..c.len()).all(|j| !c[j].eligible(&req) || c[j].level >= c[i].level));
    }

    #[test]
    fn round_robin_visits_every_eligible_agent_before_repeating(
        c in proptest::collection::vec(candidate(), 1..12), req in required(), start in proptest::option::of(0usize..12),
    ) {
        let tier = first_tier(&c, &req);
        prop_assume!(!tier.is_empty());
        let mut last = start;
        let mut seen = Vec::new();
        for _ in 0..tier.len() {
            let Offer::One(i) = choose(Strategy::RoundRobin, &c, &req, last, 0) else { panic!() };
            prop_assert!(!seen.contains(&i), "repeated {i} before visiting all of {tier:?}: {seen:?}");
            seen.push(i);
            last = Some(i);
        }
        seen.sort_unstable();
        prop_assert_eq!(seen, tier);
    }

    #[test]
    fn a_pass_never_exceeds_capacity_and_leaves_no_eligible_agent_idle(
        agents in proptest::collection::vec(candidate(), 1..10),
        queues in proptest::collection::vec(
            (strategy(), required(), proptest::collection::vec((0usize..10, 0u32..3, 0u32..5, 0u32..4), 0..8), 0usize..6),
            1..5),
        seed in any::<u64>(),
    ) {
        let mut snap: Vec<AgentSnapshot> = agents.iter().map(|c| AgentSnapshot {
            presence: c.presence, active_calls: c.active_calls, capacity: c.capacity,
            skills: c.skills.clone(), idle_since_ms: c.idle_since_ms,
            calls_taken: c.calls_taken, talk_ms: c.talk_ms,
        }).collect();
        let n = snap.len();
        let mut qs: Vec<QueueSnapshot> = queues.into_iter().enumerate().map(|(qi, (s, req, members, calls))| {
            let mut seen = std::collections::HashSet::new();
            QueueSnapshot {
                strategy: s,
                required: req,
                members: members.into_iter()
                    .filter(|(a, ..)| *a < n && seen.insert(*a))
                    .map(|(agent, level, position, weight)| Member { agent, level, position, weight })
                    .collect(),
                waiting: (0..calls as u64).map(|k| qi as u64 * 100 + k).collect(),
                last_offered: None,
            }
        }).collect();
        let before = snap.clone();
        let mut x = seed | 1;
        let mut rnd = || { x ^= x << 13; x ^= x >> 7; x ^= x << 17; x };
        let out = distribute(&mut qs, &mut snap, &mut rnd);
        // Capacity: every agent's calls, counted from the offers, within its capacity.
        for (a, s) in snap.iter().enumerate() {
            let offered = out.iter().filter(|o| o.agents.contains(&a)).count() as u32;
            prop_assert_eq!(s.active_calls, before[a].active_calls + offered);
            if offered > 0 {
                prop_assert!(s.active_calls <= s.capacity, "agent {a}: {} > {}", s.active_calls, s.capacity);
            }
        }
        // Service order: each queue's offered calls are a prefix of its line.
        for (qi, q) in qs.iter().enumerate() {
            let calls: Vec<u64> = out.iter().filter(|o| o.queue == qi).map(|o| o.call).collect();
            prop_assert_eq!(&calls[..], &q.waiting[..calls.len()]);
            // Work-conserving: a queue with calls left has no eligible member left.
            if calls.len() < q.waiting.len() {
                for m in &q.members {
                    let a = &snap[m.agent];
                    let c = Candidate {
                        presence: a.presence, active_calls: a.active_calls, capacity: a.capacity,
                        skills: a.skills.clone(), level: m.level, position: m.position,
                        weight: m.weight, idle_since_ms: 0, calls_taken: 0, talk_ms: 0,
                    };
                    prop_assert!(!c.eligible(&q.required), "queue {qi} has waiting calls and eligible agent {}", m.agent);
                }
            }
        }
    }

    #[test]
    fn campaigns_never_exceed_caps_and_priority_takes_the_lowest(
        links in proptest::collection::vec(
            (any::<bool>(), 0u32..4, 0u32..5, proptest::option::of(0u32..4), proptest::option::of(0u64..6)),
            0..6),
        s in proptest::sample::select(vec![CampaignStrategy::Priority, CampaignStrategy::RoundRobin, CampaignStrategy::Weighted]),
        calls in 0usize..30, seed in any::<u64>(),
    ) {
        let mut l: Vec<Link> = links.into_iter().map(|(active, priority, weight, cc, tc)| Link {
            active, priority, weight, active_calls: 0, concurrency_cap: cc, total_calls: 0, total_cap: tc,
        }).collect();
        let mut last = None;
        let mut r = seed;
        for _ in 0..calls {
            r = r.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            match choose_destination(s, &l, last, r >> 11) {
                None => prop_assert!(l.iter().all(|x| !x.can_take())),
                Some(i) => {
                    prop_assert!(l[i].can_take());
                    if s == CampaignStrategy::Priority {
                        prop_assert!(l.iter().all(|x| !x.can_take() || x.priority >= l[i].priority));
                    }
                    l[i].active_calls += 1;
                    l[i].total_calls += 1;
                    last = Some(i);
                }
            }
        }
        for x in &l {
            prop_assert!(x.concurrency_cap.is_none_or(|c| x.active_calls <= c));
            prop_assert!(x.total_cap.is_none_or(|c| x.total_calls <= c));
        }
    }
}

fn agent(weight: u32) -> Candidate {
    Candidate {
        presence: Presence::Available,
        active_calls: 0,
        capacity: 1,
        skills: vec![],
        level: 0,
        position: 0,
        weight,
        idle_since_ms: 0,
        calls_taken: 0,
        talk_ms: 0,
    }
}

#[test]
fn weighted_random_frequencies_are_the_weights() {
    let c = vec![agent(1), agent(0), agent(3), agent(6)];
    // Every random number modulo the total weight, 1,000 times over: exact frequencies.
    let mut counts = [0u64; 4];
    for r in 0..10 * 1000 {
        let Offer::One(i) = choose(Strategy::WeightedRandom, &c, &[], None, r) else {
            panic!()
        };
        counts[i] += 1;
    }
    assert_eq!(counts, [1000, 0, 3000, 6000]);
    // And with a pseudo-random stream, within 2 % of the weights' shares.
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut counts = [0f64; 4];
    let n = 100_000;
    for _ in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let Offer::One(i) = choose(Strategy::WeightedRandom, &c, &[], None, x) else {
            panic!()
        };
        counts[i] += 1.0;
    }
    for (i, w) in [1.0, 0.0, 3.0, 6.0].iter().enumerate() {
        assert!((counts[i] / n as f64 - w / 10.0).abs() < 0.02, "{counts:?}");
    }
}

#[test]
fn campaign_weights_and_round_robin_spread_as_configured() {
    let link = |weight| Link {
        active: true,
        priority: 0,
        weight,
        active_calls: 0,
        concurrency_cap: None,
        total_calls: 0,
        total_cap: None,
    };
    let l = [link(1), link(3)];
    let mut counts = [0; 2];
    for r in 0..4000 {
        counts[choose_destination(CampaignStrategy::Weighted, &l, None, r).unwrap()] += 1;
    }
    assert_eq!(counts, [1000, 3000]);
    let mut last = None;
    let seq: Vec<usize> = (0..5)
        .map(|_| {
            last = choose_destination(CampaignStrategy::RoundRobin, &l, last, 0);
            last.unwrap()
        })
        .collect();
    assert_eq!(seq, [0, 1, 0, 1, 0]);
}
