//! Independent oracle for the Anonymous Bank trace: the per-day queue report computed straight
//! from the CSV rows, without going through the replay crate or the engine.
//!
//! The row-to-call mapping mirrors the replay tool's (see docs/metrics.md for the metrics):
//! - `PHANTOM` rows are ignored;
//! - times are `date` + time of day in UTC; a time more than 12 h before `vru_entry` belongs to
//!   the next day (the call crossed midnight);
//! - a row is queued iff `q_start` is not `0:00:00`; its queue is `type`; it entered the queue at
//!   `q_start`; unqueued rows are not in the queue report;
//! - `AGENT`: answered at `q_exit`, wait = max(0, q_exit - q_start), talk = `ser_time`, hold = 0;
//! - `HANG`: abandoned at `q_exit`, wait = max(0, q_exit - q_start);
//! - a second row with the same (date, call_id, vru_entry) is ignored (the first one counts).
//!
//! Rows are grouped by (UTC day of queue entry, queue).

#![allow(dead_code)]

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

/// One expected row of `GET /api/v1/reports/queues?interval=day`.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpectedRow {
    /// UTC date of queue entry, `YYYY-MM-DD`.
    pub day: String,
    pub queue_id: String,
    pub offered: u64,
    pub answered: u64,
    pub abandoned: u64,
    pub answered_within_sl: u64,
    pub service_level: Option<f64>,
    pub asa_s: Option<f64>,
    pub avg_abandon_wait_s: Option<f64>,
    pub aht_s: Option<f64>,
    pub abandonment_rate: Option<f64>,
    pub max_wait_s: Option<f64>,
    pub sla_breached: u64,
    pub flagged_review: u64,
}

/// Expected daily queue rows for the CSV at `csv_path`, sorted by (day, queue_id).
///
/// Panics on unreadable files or malformed rows: this is test support.
pub fn expected_daily_rows(
    csv_path: &Path,
    sla_threshold_s: i64,
    short_call_s: i64,
) -> Vec<ExpectedRow> {
    let mut acc: BTreeMap<(String, String), Acc> = BTreeMap::new();
    for call in queued_calls(csv_path) {
        let day = civil_from_days(call.q_start.div_euclid(86_400));
        let a = acc.entry((day, call.queue.clone())).or_default();
        a.offered += 1;
        let wait = (call.q_exit - call.q_start).max(0);
        match call.outcome {
            Outcome::Answered { talk_s } => {
                a.answered += 1;
                a.answered_wait_sum += wait;
                a.handle_sum += talk_s;
                if wait <= sla_threshold_s {
                    a.answered_within_sl += 1;
                }
                if talk_s < short_call_s {
                    a.flagged_review += 1;
                }
            }
            Outcome::Abandoned => {
                a.abandoned += 1;
                a.abandon_wait_sum += wait;
            }
        }
        if wait > sla_threshold_s {
            a.sla_breached += 1;
        }
        a.max_wait = Some(a.max_wait.map_or(wait, |m: i64| m.max(wait)));
    }

    acc.into_iter()
        .map(|((day, queue_id), a)| ExpectedRow {
            day,
            queue_id,
            offered: a.offered,
            answered: a.answered,
            abandoned: a.abandoned,
            answered_within_sl: a.answered_within_sl,
            service_level: ratio(a.answered_within_sl, a.answered + a.abandoned),
            asa_s: mean(a.answered_wait_sum, a.answered),
            avg_abandon_wait_s: mean(a.abandon_wait_sum, a.abandoned),
            aht_s: mean(a.handle_sum, a.answered),
            abandonment_rate: ratio(a.abandoned, a.offered),
            max_wait_s: a.max_wait.map(|w| w as f64),
            sla_breached: a.sla_breached,
            flagged_review: a.flagged_review,
        })
        .collect()
}

/// Per-(day, queue) accumulator. Waits and talk times are whole seconds.
#[derive(Default)]
struct Acc {
    offered: u64,
    answered: u64,
    abandoned: u64,
    answered_within_sl: u64,
    answered_wait_sum: i64,
    abandon_wait_sum: i64,
    handle_sum: i64,
    max_wait: Option<i64>,
    sla_breached: u64,
    flagged_review: u64,
}

fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

fn mean(sum: i64, n: u64) -> Option<f64> {
    (n > 0).then(|| sum as f64 / n as f64)
}

enum Outcome {
    Answered { talk_s: i64 },
    Abandoned,
}

/// A queued, non-phantom, first-seen row. Times are seconds since 1970-01-01T00:00:00Z.
struct QueuedCall {
    queue: String,
    q_start: i64,
    q_exit: i64,
    outcome: Outcome,
}

fn queued_calls(csv_path: &Path) -> Vec<QueuedCall> {
    let mut reader = csv::Reader::from_path(csv_path)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", csv_path.display()));
    let headers = reader.headers().expect("CSV header").clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("column {name} missing"))
    };
    let (c_call_id, c_type, c_date, c_vru_entry) =
        (col("call_id"), col("type"), col("date"), col("vru_entry"));
    let (c_q_start, c_q_exit, c_outcome, c_ser_time) = (
        col("q_start"),
        col("q_exit"),
        col("outcome"),
        col("ser_time"),
    );

    let mut seen: HashSet<(String, String, String)> = HashSet::new();
    let mut calls = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let r = record.unwrap_or_else(|e| panic!("CSV row {}: {e}", i + 2));
        let outcome = &r[c_outcome];
        if outcome == "PHANTOM" {
            continue;
        }
        let key = (
            r[c_date].to_string(),
            r[c_call_id].to_string(),
            r[c_vru_entry].to_string(),
        );
        if !seen.insert(key) {
            continue; // duplicate row: only the first one counts
        }
        if r[c_q_start].trim() == "0:00:00" {
            continue; // never queued: not in the queue report
        }
        let midnight = days_from_civil(parse_date(&r[c_date])) * 86_400;
        let vru_entry = parse_tod(&r[c_vru_entry]);
        let at = |tod: &str| {
            let t = parse_tod(tod);
            // More than 12 h before the IVR entry: the call crossed midnight.
            midnight + t + if t < vru_entry - 43_200 { 86_400 } else { 0 }
        };
        let outcome = match outcome {
            "AGENT" => Outcome::Answered {
                talk_s: r[c_ser_time].trim().parse().expect("ser_time"),
            },
            "HANG" => Outcome::Abandoned,
            other => panic!("CSV row {}: unknown outcome {other:?}", i + 2),
        };
        calls.push(QueuedCall {
            queue: r[c_type].to_string(),
            q_start: at(&r[c_q_start]),
            q_exit: at(&r[c_q_exit]),
            outcome,
        });
    }
    calls
}

/// `YYYY-MM-DD` -> (year, month, day).
fn parse_date(s: &str) -> (i64, i64, i64) {
    let mut it = s.trim().split('-').map(|p| p.parse::<i64>().expect("date"));
    let (y, m, d) = (it.next(), it.next(), it.next());
    (y.expect("year"), m.expect("month"), d.expect("day"))
}

/// `H:MM:SS` -> seconds since midnight.
fn parse_tod(s: &str) -> i64 {
    s.trim()
        .split(':')
        .map(|p| p.parse::<i64>().expect("time of day"))
        .fold(0, |acc, p| acc * 60 + p)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil((y, m, d): (i64, i64, i64)) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days since 1970-01-01 -> `YYYY-MM-DD` (inverse of `days_from_civil`).
fn civil_from_days(z: i64) -> String {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}
