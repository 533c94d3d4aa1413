//! Campaign caps under concurrent decisions, straight against the store (the route API's
//! tests in `crates/server/tests/route_api.rs` check the same through HTTP): many
//! `route_campaign` calls at once on capped links route exactly the caps, and decisions racing
//! CDRs never leave a counter off. Without the campaign lock SQLite answers "database is
//! locked"; without it and the conditional UPDATE, PostgreSQL routes past the caps (both seen
//! failing here). SQLite by default; PostgreSQL (a fresh
//! database on that server) when `TEST_DATABASE_URL` is set.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use sea_orm::Database;
use uuid::Uuid;

use switchboard_core::routing::CampaignStrategy;
use switchboard_core::TenantId;
use switchboard_store::{
    Actor, CampaignSettings, CdrReport, CdrStatus, DestinationSettings, LinkSettings, NewTenant,
    Release, RouteOutcome, RouteReject, RouteRequest, Store,
};

async fn fresh_store() -> Store {
    let name = format!("sb_test_{}", Uuid::new_v4().simple());
    let url = match std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    {
        Some(admin) => {
            let conn = Database::connect(&admin)
                .await
                .unwrap_or_else(|e| panic!("TEST_DATABASE_URL={admin} is unreachable: {e}"));
            sea_orm::ConnectionTrait::execute_unprepared(&conn, &format!("CREATE DATABASE {name}"))
                .await
                .expect("create test database");
            let (prefix, _) = admin.rsplit_once('/').expect("…/<database>");
            format!("{prefix}/{name}")
        }
        None => format!(
            "sqlite://{}",
            std::env::temp_dir().join(format!("{name}.db")).display()
        ),
    };
    Store::connect(&url).await.expect("store")
}

/// A tenant with one campaign (`strategy`) linking one destination per `links` entry.
async fn campaign(
    store: &Store,
    strategy: CampaignStrategy,
    links: &[(Option<u32>, Option<u64>)],
) -> (TenantId, Uuid) {
    let actor = Actor::system("test");
    let t = store
        .create_tenant(&NewTenant::new("t", "T"), &actor, 0)
        .await
        .expect("tenant")
        .id;
    let c = CampaignSettings {
        name: "c".into(),
        strategy,
        dial_timeout_s: 30,
        max_call_s: 600,
        active: true,
    };
    let c = store
        .insert_resource(t, &c, &actor, 0)
        .await
        .expect("campaign")
        .id;
    let mut list = Vec::new();
    for (i, (cap, total)) in links.iter().enumerate() {
        let d = DestinationSettings {
            name: format!("d{i}"),
            sip_uri: Some(format!("sip:d{i}@h")),
            number: None,
            active: true,
            client_identifier: None,
            outbound_auth: None,
            callerid_override: None,
            context: None,
            transport: None,
        };
        let d = store
            .insert_resource(t, &d, &actor, 0)
            .await
            .expect("dest")
            .id;
        list.push(LinkSettings {
            destination_id: d,
            priority: i as u32,
            weight: 1,
            concurrency_cap: *cap,
            total_cap: *total,
            active: true,
        });
    }
    store
        .put_campaign_links(t, c, &list, &actor, 0)
        .await
        .expect("links");
    (t, c)
}

/// `n` decisions at once; answers how many routed.
async fn burst(store: &Store, t: TenantId, c: Uuid, prefix: &str, n: usize) -> usize {
    let routed = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (store, routed) = (store.clone(), routed.clone());
            let call = format!("{prefix}-{i}");
            tokio::spawn(async move {
                let req = RouteRequest {
                    call_id: Some(&call),
                    did: "+33123450001",
                    campaign_id: c,
                    now: 1_000,
                    random: i as u64,
                };
                match store.route_campaign(t, &req, |_| "{}".into()).await {
                    Ok(RouteOutcome::Routed(_)) => {
                        routed.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(RouteOutcome::Rejected(r)) => assert_eq!(r, RouteReject::AllAtCap),
                    Err(e) => panic!("decision {call}: {e}"),
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    routed.load(Ordering::Relaxed)
}

async fn counters(store: &Store, t: TenantId, c: Uuid) -> Vec<(u32, u64)> {
    store
        .campaign_links(t, c)
        .await
        .expect("links")
        .iter()
        .map(|l| (l.active_calls, l.total_calls))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_decisions_route_exactly_the_caps() {
    let store = fresh_store().await;
    let (t, c) = campaign(
        &store,
        CampaignStrategy::Priority,
        &[(Some(3), None), (Some(2), Some(4))],
    )
    .await;
    assert_eq!(burst(&store, t, c, "a", 64).await, 5);
    assert_eq!(counters(&store, t, c).await, [(3, 3), (2, 2)]);

    // Release every slot while new decisions race the releases: the concurrency caps still
    // hold, the second link's total cap (4) too, and no counter ends off.
    let releases: Vec<_> = (0..64)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let r = CdrReport {
                    call_id: format!("a-{i}"),
                    did: None,
                    status: CdrStatus::Answered,
                    raw_status: None,
                    target: None,
                    caller_id_num: None,
                    caller_id_name: None,
                    started_at: 0,
                    answered_at: None,
                    ended_at: None,
                    duration_s: None,
                    billsec_s: None,
                    hangup_cause: None,
                    hangup_cause_code: None,
                    linked_id: None,
                };
                store
                    .record_cdr(t, &r, "route_api", Release::Call, 2_000)
                    .await
                    .expect("cdr");
            })
        })
        .collect();
    let routed = burst(&store, t, c, "b", 64).await;
    for r in releases {
        r.await.expect("release");
    }
    let after = counters(&store, t, c).await;
    assert!(after[0].0 <= 3 && after[1].0 <= 2, "{after:?}");
    assert!(after[1].1 <= 4, "total cap: {after:?}");
    // Every slot of the first burst is back; what is held is the second burst's.
    let held: u32 = after.iter().map(|l| l.0).sum();
    assert_eq!(held as usize, routed, "{after:?}");
    let total: u64 = after.iter().map(|l| l.1).sum();
    assert_eq!(total as usize, 5 + routed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_decisions_route_exactly_a_total_cap() {
    let store = fresh_store().await;
    let (t, c) = campaign(
        &store,
        CampaignStrategy::RoundRobin,
        &[(None, Some(7)), (None, Some(3))],
    )
    .await;
    assert_eq!(burst(&store, t, c, "x", 64).await, 10);
    assert_eq!(counters(&store, t, c).await, [(7, 7), (3, 3)]);
}
