//! Queue metrics (definitions in docs/metrics.md; DESIGN.md "Metrics").
//!
//! Per queue and interval, grouped by the call's first queue-entry time (UTC):
//! - `offered`: calls that entered the queue;
//! - `answered`; `abandoned`: ended before answer after entering the queue;
//! - `answered_within_sl`: answered with wait ≤ the queue's `sla_threshold_s`;
//! - `service_level` = answered_within_sl / (answered + abandoned);
//! - `asa_s`: mean wait of answered calls; `avg_abandon_wait_s`: mean wait of abandoned calls;
//! - `aht_s`: mean handle time (talk + hold) of answered calls that have ended;
//! - `abandonment_rate` = abandoned / offered; `max_wait_s` over answered and abandoned calls;
//! - `sla_breached` and `flagged_review`: calls carrying those flags.
//!
//! A mean, ratio or maximum over no calls is `None` (`null` in JSON).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::time::{format_rfc3339, ms_to_s, TimestampMs};

/// Report bucket width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    /// One UTC day (`day`), from 00:00Z.
    Day,
    /// One hour (`hour`), from the whole hour.
    Hour,
    /// 15 minutes (`15m`), from :00, :15, :30 or :45.
    Min15,
}

impl Interval {
    /// Parses `day`, `hour` or `15m`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "day" => Some(Interval::Day),
            "hour" => Some(Interval::Hour),
            "15m" => Some(Interval::Min15),
            _ => None,
        }
    }

    /// Width in milliseconds (UTC days have no leap seconds in Unix time).
    pub fn width_ms(self) -> i64 {
        match self {
            Interval::Day => 86_400_000,
            Interval::Hour => 3_600_000,
            Interval::Min15 => 900_000,
        }
    }

    /// Start of the bucket holding `ts`.
    pub fn floor(self, ts: TimestampMs) -> TimestampMs {
        ts - ts.rem_euclid(self.width_ms())
    }
}

/// What the report needs of one call (a `calls` projection row).
#[derive(Debug, Clone, PartialEq)]
pub struct CallFacts {
    /// The queue the call entered first.
    pub queue_id: String,
    /// First queue-entry time.
    pub queued_at: TimestampMs,
    /// Whether the call has been answered.
    pub answered: bool,
    /// Whether the call has ended.
    pub ended: bool,
    /// Wait in ms (to answer, or to the end when never answered); `None` while waiting.
    pub wait_ms: Option<i64>,
    /// Talk + hold in ms.
    pub handle_ms: i64,
    /// Whether the call's SLA timer fired (flag `sla_breached`).
    pub sla_breached: bool,
    /// Whether the call carries the `review` flag (answered, ended, talk < `short_call_s`).
    pub review: bool,
}

/// One row of `GET /api/v1/reports/queues`. Durations in seconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QueueReportRow {
    /// RFC 3339 start of the interval (UTC).
    pub interval_start: String,
    /// The queue first entered.
    pub queue_id: String,
    /// Calls that entered the queue (including calls still waiting or ringing).
    pub offered: u64,
    /// Offered calls that have been answered.
    pub answered: u64,
    /// Offered calls that ended before any answer (during `waiting` or `ringing`).
    pub abandoned: u64,
    /// Answered calls with wait ≤ the queue's current `sla_threshold_s`.
    pub answered_within_sl: u64,
    /// `answered_within_sl / (answered + abandoned)`, a fraction in [0, 1]; null if the
    /// denominator is 0.
    pub service_level: Option<f64>,
    /// Mean wait of answered calls, seconds; null if `answered` = 0.
    pub asa_s: Option<f64>,
    /// Mean wait of abandoned calls, seconds; null if `abandoned` = 0.
    pub avg_abandon_wait_s: Option<f64>,
    /// Mean handle time (talk + hold) of answered calls that have ended, seconds; null if there
    /// are none.
    pub aht_s: Option<f64>,
    /// `abandoned / offered`, a fraction in [0, 1]; null if `offered` = 0.
    pub abandonment_rate: Option<f64>,
    /// Largest wait of a resolved (answered or abandoned) call, seconds; null if no call is
    /// resolved.
    pub max_wait_s: Option<f64>,
    /// Calls whose SLA timer fired (including calls still waiting).
    pub sla_breached: u64,
    /// Calls with the `review` flag: answered, ended, talk < `short_call_s`.
    pub flagged_review: u64,
}

#[derive(Default)]
struct Acc {
    offered: u64,
    answered: u64,
    abandoned: u64,
    within_sl: u64,
    wait_answered_ms: i64,
    wait_abandoned_ms: i64,
    handled: u64,
    handle_ms: i64,
    max_wait_ms: Option<i64>,
    sla_breached: u64,
    review: u64,
}

fn ratio(n: u64, d: u64) -> Option<f64> {
    (d > 0).then(|| n as f64 / d as f64)
}

fn mean_s(total_ms: i64, n: u64) -> Option<f64> {
    (n > 0).then(|| ms_to_s(total_ms) / n as f64)
}

/// Aggregates calls into report rows, sorted by interval then queue id. `threshold_s` gives a
/// queue's current `sla_threshold_s`.
pub fn queue_report(
    calls: impl IntoIterator<Item = CallFacts>,
    interval: Interval,
    threshold_s: impl Fn(&str) -> u32,
) -> Vec<QueueReportRow> {
    let mut groups: BTreeMap<(TimestampMs, String), Acc> = BTreeMap::new();
    let mut thresholds: BTreeMap<String, i64> = BTreeMap::new();
    for c in calls {
        let threshold_ms = *thresholds
            .entry(c.queue_id.clone())
            .or_insert_with(|| i64::from(threshold_s(&c.queue_id)) * 1000);
        let acc = groups
            .entry((interval.floor(c.queued_at), c.queue_id))
            .or_default();
        acc.offered += 1;
        acc.sla_breached += u64::from(c.sla_breached);
        acc.review += u64::from(c.review);
        let wait = c.wait_ms.unwrap_or(0);
        if c.answered {
            acc.answered += 1;
            acc.wait_answered_ms += wait;
            acc.within_sl += u64::from(wait <= threshold_ms);
            if c.ended {
                acc.handled += 1;
                acc.handle_ms += c.handle_ms;
            }
        } else if c.ended {
            acc.abandoned += 1;
            acc.wait_abandoned_ms += wait;
        } else {
            continue;
        }
        acc.max_wait_ms = Some(acc.max_wait_ms.map_or(wait, |m| m.max(wait)));
    }
    groups
        .into_iter()
        .map(|((start, queue_id), a)| QueueReportRow {
            interval_start: format_rfc3339(start),
            queue_id,
            offered: a.offered,
            answered: a.answered,
            abandoned: a.abandoned,
            answered_within_sl: a.within_sl,
            service_level: ratio(a.within_sl, a.answered + a.abandoned),
            asa_s: mean_s(a.wait_answered_ms, a.answered),
            avg_abandon_wait_s: mean_s(a.wait_abandoned_ms, a.abandoned),
            aht_s: mean_s(a.handle_ms, a.handled),
            abandonment_rate: ratio(a.abandoned, a.offered),
            max_wait_s: a.max_wait_ms.map(ms_to_s),
            sla_breached: a.sla_breached,
            flagged_review: a.review,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(
        q: &str,
        at: i64,
        answered: bool,
        ended: bool,
        wait: Option<i64>,
        handle: i64,
    ) -> CallFacts {
        CallFacts {
            queue_id: q.into(),
            queued_at: at,
            answered,
            ended,
            wait_ms: wait,
            handle_ms: handle,
            sla_breached: wait.unwrap_or(0) > 30_000,
            review: answered && ended && handle < 10_000,
        }
    }

    #[test]
    fn computes_each_definition() {
        let day = 86_400_000;
        let rows = queue_report(
            vec![
                call("PS", 1_000, true, true, Some(10_000), 100_000),
                call("PS", 2_000, true, true, Some(30_000), 5_000),
                call("PS", 3_000, true, false, Some(50_000), 0),
                call("PS", 4_000, false, true, Some(40_000), 0),
                call("PS", 5_000, false, false, None, 0),
                call("PE", day + 1, false, true, Some(2_000), 0),
            ],
            Interval::Day,
            |_| 30,
        );
        assert_eq!(rows.len(), 2);
        let ps = &rows[0];
        assert_eq!(ps.interval_start, "1970-01-01T00:00:00Z");
        assert_eq!(
            (ps.offered, ps.answered, ps.abandoned, ps.answered_within_sl),
            (5, 3, 1, 2)
        );
        assert_eq!(ps.service_level, Some(0.5));
        assert_eq!(ps.asa_s, Some(30.0));
        assert_eq!(ps.avg_abandon_wait_s, Some(40.0));
        assert_eq!(ps.aht_s, Some(52.5));
        assert_eq!(ps.abandonment_rate, Some(0.2));
        assert_eq!(ps.max_wait_s, Some(50.0));
        assert_eq!((ps.sla_breached, ps.flagged_review), (2, 1));
        let pe = &rows[1];
        assert_eq!(
            (pe.queue_id.as_str(), pe.interval_start.as_str()),
            ("PE", "1970-01-02T00:00:00Z")
        );
        assert_eq!(
            (pe.asa_s, pe.aht_s, pe.service_level),
            (None, None, Some(0.0))
        );
    }

    #[test]
    fn buckets_floor_in_utc() {
        assert_eq!(Interval::Min15.floor(899_999), 0);
        assert_eq!(Interval::Min15.floor(900_000), 900_000);
        assert_eq!(Interval::Hour.floor(-1), -3_600_000);
        assert_eq!(Interval::parse("15m"), Some(Interval::Min15));
        assert_eq!(Interval::parse("week"), None);
    }
}
