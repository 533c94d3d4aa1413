//! The routing decision (issue 7 target: p99 under 50 µs with 10,000 agents in 100 queues):
//! `choose` for one queue of 100 members, by strategy, over a snapshot of 10,000 agents in 100
//! queues (a third of them busy, skills required); and one work-conserving `distribute` pass
//! over all 100 queues with a call waiting in each. Run with
//! `cargo bench -p switchboard-core --bench routing`; figures in docs/benchmarks.md.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use std::hint::black_box;

use switchboard_core::routing::{
    choose, distribute, AgentSnapshot, Candidate, Member, Presence, QueueSnapshot, Strategy,
};

const AGENTS: usize = 10_000;
const QUEUES: usize = 100;

fn agents() -> Vec<AgentSnapshot> {
    (0..AGENTS)
        .map(|i| AgentSnapshot {
            presence: if i % 3 == 0 {
                Presence::OnCall
            } else {
                Presence::Available
            },
            active_calls: u32::from(i % 3 == 0),
            capacity: 1,
            skills: vec![
                ("billing".into(), (i % 11) as u8),
                ("sales".into(), (i % 7) as u8),
            ],
            idle_since_ms: (i * 7919 % 100_000) as i64,
            calls_taken: (i * 31 % 200) as u64,
            talk_ms: (i * 104_729 % 3_600_000) as i64,
        })
        .collect()
}

fn queue(q: usize, strategy: Strategy) -> QueueSnapshot {
    let per = AGENTS / QUEUES;
    QueueSnapshot {
        strategy,
        required: vec![("billing".into(), 3)],
        members: (0..per)
            .map(|k| Member {
                agent: q * per + k,
                level: (k / 40) as u32,
                position: (k % 40) as u32,
                weight: 1 + (k % 5) as u32,
            })
            .collect(),
        waiting: vec![q as u64],
        last_offered: Some(17),
    }
}

fn candidates(a: &[AgentSnapshot], q: &QueueSnapshot) -> Vec<Candidate> {
    q.members
        .iter()
        .map(|m| {
            let s = &a[m.agent];
            Candidate {
                presence: s.presence,
                active_calls: s.active_calls,
                capacity: s.capacity,
                skills: s.skills.clone(),
                level: m.level,
                position: m.position,
                weight: m.weight,
                idle_since_ms: s.idle_since_ms,
                calls_taken: s.calls_taken,
                talk_ms: s.talk_ms,
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let a = agents();
    let mut g = c.benchmark_group("choose, 100 members");
    for s in Strategy::ALL {
        let q = queue(42, s);
        let cands = candidates(&a, &q);
        let mut r = 0u64;
        g.bench_with_input(
            BenchmarkId::from_parameter(format!("{s:?}")),
            &cands,
            |b, cands| {
                b.iter(|| {
                    r = r.wrapping_add(0x9E37_79B9_7F4A_7C15);
                    choose(s, black_box(cands), &q.required, q.last_offered, r)
                })
            },
        );
    }
    g.finish();
    c.bench_function("distribute, 100 queues x 1 call, 10,000 agents", |b| {
        b.iter_batched(
            || {
                let qs: Vec<QueueSnapshot> = (0..QUEUES)
                    .map(|q| queue(q, Strategy::ALL[q % 8]))
                    .collect();
                (qs, a.clone())
            },
            |(mut qs, mut ags)| {
                let mut x = 1u64;
                distribute(&mut qs, &mut ags, &mut || {
                    x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    x
                })
            },
            criterion::BatchSize::LargeInput,
        )
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
