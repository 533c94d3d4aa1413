//! The Anonymous Bank trace (days 1–15 of August 1999) replayed through the real server with
//! the `switchboard replay` client: the per-day queue report must equal what the oracle computes
//! straight from the CSV (counts exact, means within 0.01 s).

#[path = "support/anonymous_bank_oracle.rs"]
mod oracle;
mod support;

use std::path::PathBuf;

use support::TestApp;
use switchboard_server::replay::{run, ReplayOptions};

fn csv_path() -> PathBuf {
    support::shared_data("anonymous-bank/calls-1999-08-01_15.csv")
}

fn close(a: Option<f64>, b: Option<f64>, tol: f64) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(x), Some(y)) => (x - y).abs() <= tol,
        _ => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_trace_report_equals_the_csv() {
    let app = TestApp::spawn().await;
    let mut opts = ReplayOptions::new(csv_path(), app.base.clone(), app.key.clone());
    opts.progress = false;
    let summary = run(&opts).await.expect("replay");
    eprintln!("[{}] {summary}", support::backend());
    assert_eq!(summary.rejected, 0, "rejections: {:?}", summary.rejections);
    assert_eq!(summary.accepted, summary.events_sent);
    assert_eq!(summary.skipped_rows.get("phantom").copied(), Some(199));

    let (s, report) = app
        .get(
            "/api/v1/reports/queues?from=1999-08-01T00:00:00Z&to=1999-08-17T00:00:00Z&interval=day",
        )
        .await;
    assert_eq!(s, 200, "{report}");
    let rows = report["rows"].as_array().expect("rows");
    let expected = oracle::expected_daily_rows(&csv_path(), 30, 10);
    assert_eq!(rows.len(), expected.len(), "one row per day and queue");
    for (got, want) in rows.iter().zip(&expected) {
        let ctx = format!("{} {}", want.day, want.queue_id);
        assert_eq!(
            got["interval_start"],
            format!("{}T00:00:00Z", want.day),
            "{ctx}"
        );
        assert_eq!(got["queue_id"], want.queue_id.as_str(), "{ctx}");
        for (k, v) in [
            ("offered", want.offered),
            ("answered", want.answered),
            ("abandoned", want.abandoned),
            ("answered_within_sl", want.answered_within_sl),
            ("sla_breached", want.sla_breached),
            ("flagged_review", want.flagged_review),
        ] {
            assert_eq!(got[k].as_u64(), Some(v), "{ctx} {k}");
        }
        for (k, v, tol) in [
            ("service_level", want.service_level, 1e-9),
            ("abandonment_rate", want.abandonment_rate, 1e-9),
            ("asa_s", want.asa_s, 0.01),
            ("avg_abandon_wait_s", want.avg_abandon_wait_s, 0.01),
            ("aht_s", want.aht_s, 0.01),
            ("max_wait_s", want.max_wait_s, 0.01),
        ] {
            assert!(
                close(got[k].as_f64(), v, tol),
                "{ctx} {k}: got {} want {v:?}",
                got[k]
            );
        }
    }

    // The alerts the engine raised on the event-time clock are the ones of the original days.
    let breached: u64 = expected.iter().map(|r| r.sla_breached).sum();
    let (s, alerts) = app.get("/api/v1/alerts?type=sla_breached&limit=1").await;
    assert_eq!(s, 200);
    assert_eq!(alerts["items"].as_array().unwrap().len(), 1);
    let (_, calls) = app.get("/api/v1/calls?flag=sla_breached&limit=500").await;
    assert_eq!(
        calls["items"].as_array().unwrap().len(),
        500.min(breached as usize)
    );

    // A second replay of the same file changes nothing: every event is a duplicate.
    let again = run(&opts).await.expect("second replay");
    assert_eq!(again.accepted, 0);
    assert_eq!(again.duplicates, summary.events_sent);
    let (_, report2) = app
        .get(
            "/api/v1/reports/queues?from=1999-08-01T00:00:00Z&to=1999-08-17T00:00:00Z&interval=day",
        )
        .await;
    assert_eq!(report, report2);
    app.stop().await;
}
