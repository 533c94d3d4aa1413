//! Queue metrics (definitions in docs/metrics.md; DESIGN.md "Metrics").
//!
//! Per queue and interval, grouped by the call's first queue-entry time (UTC):
//! - `offered`: calls that entered the queue;
//! - `answered`; `abandoned`: ended before answer after entering the queue;
//! - `answered_within_sl`: answered with wait ≤ the `sla_threshold_s` frozen on the call at
//!   queue entry (the threshold `sla_breached` and `long_wait` used);
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

/// What the report needs of one call (a `calls` projection row): the reference input of
/// [`queue_report`].
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
    /// The queue's `sla_threshold_s` frozen on the call at first queue entry, seconds; `None`
    /// for calls stored before it was recorded (the queue's current threshold applies).
    pub sla_threshold_s: Option<u32>,
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
    /// Answered calls with wait ≤ the `sla_threshold_s` frozen on the call at queue entry (the
    /// queue's current one for calls stored before it was recorded).
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

/// The sums of one report row: the calls of one queue whose first queue entry falls in one
/// interval. This is what the store's `GROUP BY` query computes in the database; [`add`]
/// states what each sum counts and [`into_row`] turns the sums into the metrics, so every
/// definition lives here. Milliseconds in `*_ms`.
///
/// [`add`]: QueueBucket::add
/// [`into_row`]: QueueBucket::into_row
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueBucket {
    /// Start of the interval, epoch ms ([`Interval::floor`] of the first queue-entry time).
    pub interval_start: TimestampMs,
    /// The queue first entered.
    pub queue_id: String,
    /// Calls that entered the queue.
    pub offered: u64,
    /// Calls answered.
    pub answered: u64,
    /// Calls ended without an answer.
    pub abandoned: u64,
    /// Answered calls whose wait ≤ their SLA threshold.
    pub answered_within_sl: u64,
    /// Sum of the waits of answered calls, ms.
    pub wait_answered_ms: i64,
    /// Sum of the waits of abandoned calls, ms.
    pub wait_abandoned_ms: i64,
    /// Answered calls that have ended (the calls of `aht_s`).
    pub handled: u64,
    /// Sum of talk + hold of `handled` calls, ms.
    pub handle_ms: i64,
    /// Largest wait of an answered or abandoned call, ms; `None` if there is none.
    pub max_wait_ms: Option<i64>,
    /// Calls carrying the `sla_breached` flag.
    pub sla_breached: u64,
    /// Calls carrying the `review` flag.
    pub review: u64,
}

fn ratio(n: u64, d: u64) -> Option<f64> {
    (d > 0).then(|| n as f64 / d as f64)
}

fn mean_s(total_ms: i64, n: u64) -> Option<f64> {
    (n > 0).then(|| ms_to_s(total_ms) / n as f64)
}

impl QueueBucket {
    /// Adds one call. `threshold_ms` is the call's SLA threshold in ms: the one frozen on the
    /// call at queue entry, or the queue's current one for calls stored before it was recorded.
    /// A missing wait counts as 0 (an answered or ended queued call always has one).
    pub fn add(&mut self, c: &CallFacts, threshold_ms: i64) {
        self.offered += 1;
        self.sla_breached += u64::from(c.sla_breached);
        self.review += u64::from(c.review);
        let wait = c.wait_ms.unwrap_or(0);
        if c.answered {
            self.answered += 1;
            self.wait_answered_ms += wait;
            self.answered_within_sl += u64::from(wait <= threshold_ms);
            if c.ended {
                self.handled += 1;
                self.handle_ms += c.handle_ms;
            }
        } else if c.ended {
            self.abandoned += 1;
            self.wait_abandoned_ms += wait;
        } else {
            // Still waiting or ringing: offered only, its wait so far is not counted.
            return;
        }
        self.max_wait_ms = Some(self.max_wait_ms.map_or(wait, |m| m.max(wait)));
    }

    /// The report row of these sums (definitions in docs/metrics.md).
    pub fn into_row(self) -> QueueReportRow {
        let a = self;
        QueueReportRow {
            interval_start: format_rfc3339(a.interval_start),
            service_level: ratio(a.answered_within_sl, a.answered + a.abandoned),
            asa_s: mean_s(a.wait_answered_ms, a.answered),
            avg_abandon_wait_s: mean_s(a.wait_abandoned_ms, a.abandoned),
            aht_s: mean_s(a.handle_ms, a.handled),
            abandonment_rate: ratio(a.abandoned, a.offered),
            max_wait_s: a.max_wait_ms.map(ms_to_s),
            queue_id: a.queue_id,
            offered: a.offered,
            answered: a.answered,
            abandoned: a.abandoned,
            answered_within_sl: a.answered_within_sl,
            sla_breached: a.sla_breached,
            flagged_review: a.review,
        }
    }
}

/// Report rows of per-bucket sums (one bucket per interval and queue, in any order), sorted by
/// interval then queue id (byte order). Buckets with no offered call give no row.
pub fn report_rows(buckets: impl IntoIterator<Item = QueueBucket>) -> Vec<QueueReportRow> {
    let mut buckets: Vec<QueueBucket> = buckets.into_iter().filter(|b| b.offered > 0).collect();
    buckets.sort_by(|a, b| (a.interval_start, &a.queue_id).cmp(&(b.interval_start, &b.queue_id)));
    buckets.into_iter().map(QueueBucket::into_row).collect()
}

/// The reference definition of the report: aggregates calls into report rows, sorted by
/// interval then queue id. A call's SLA threshold is the one frozen on it
/// ([`CallFacts::sla_threshold_s`]), else `threshold_s(queue)`, the queue's current one. The
/// server computes the same sums in the database and finishes them with [`report_rows`].
pub fn queue_report(
    calls: impl IntoIterator<Item = CallFacts>,
    interval: Interval,
    threshold_s: impl Fn(&str) -> u32,
) -> Vec<QueueReportRow> {
    let mut groups: BTreeMap<(TimestampMs, String), QueueBucket> = BTreeMap::new();
    let mut current: BTreeMap<String, u32> = BTreeMap::new();
    for c in calls {
        let t = match c.sla_threshold_s {
            Some(t) => t,
            None => *current
                .entry(c.queue_id.clone())
                .or_insert_with(|| threshold_s(&c.queue_id)),
        };
        let start = interval.floor(c.queued_at);
        let b = groups
            .entry((start, c.queue_id.clone()))
            .or_insert_with(|| QueueBucket {
                interval_start: start,
                queue_id: c.queue_id.clone(),
                ..QueueBucket::default()
            });
        b.add(&c, i64::from(t) * 1000);
    }
    report_rows(groups.into_values())
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
            sla_threshold_s: None,
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

    #[test]
    fn the_threshold_frozen_on_the_call_wins_over_the_queues_current_one() {
        let frozen = |t: Option<u32>, wait: i64| CallFacts {
            sla_threshold_s: t,
            ..call("Q", 0, true, true, Some(wait), 1_000)
        };
        let rows = queue_report(
            vec![
                // Entered when the threshold was 30 s: within SL although the queue is now 20 s.
                frozen(Some(30), 25_000),
                // Entered when it was 10 s: not within SL.
                frozen(Some(10), 15_000),
                // Stored before thresholds were frozen: the queue's current 20 s applies.
                frozen(None, 20_000),
                frozen(None, 20_001),
            ],
            Interval::Day,
            |q| {
                assert_eq!(q, "Q");
                20
            },
        );
        assert_eq!((rows[0].answered, rows[0].answered_within_sl), (4, 2));
        assert_eq!(rows[0].service_level, Some(0.5));
    }

    #[test]
    fn a_row_is_a_pure_function_of_its_sums() {
        let b = QueueBucket {
            interval_start: 3_600_000,
            queue_id: "Q".into(),
            offered: 10,
            answered: 6,
            abandoned: 2,
            answered_within_sl: 3,
            wait_answered_ms: 60_000,
            wait_abandoned_ms: 9_000,
            handled: 4,
            handle_ms: 402_000,
            max_wait_ms: Some(31_500),
            sla_breached: 3,
            review: 1,
        };
        let r = b.into_row();
        assert_eq!(r.interval_start, "1970-01-01T01:00:00Z");
        assert_eq!(
            (r.offered, r.answered, r.abandoned, r.answered_within_sl),
            (10, 6, 2, 3)
        );
        assert_eq!(r.service_level, Some(3.0 / 8.0));
        assert_eq!(r.asa_s, Some(10.0));
        assert_eq!(r.avg_abandon_wait_s, Some(4.5));
        assert_eq!(r.aht_s, Some(100.5));
        assert_eq!(r.abandonment_rate, Some(0.2));
        assert_eq!(r.max_wait_s, Some(31.5));
        assert_eq!((r.sla_breached, r.flagged_review), (3, 1));

        // Only waiting calls: every mean, ratio and maximum but the abandonment rate is null.
        let waiting = QueueBucket {
            offered: 2,
            ..QueueBucket::default()
        }
        .into_row();
        assert_eq!(
            (
                waiting.service_level,
                waiting.asa_s,
                waiting.avg_abandon_wait_s,
                waiting.aht_s,
                waiting.max_wait_s
            ),
            (None, None, None, None, None)
        );
        assert_eq!(waiting.abandonment_rate, Some(0.0));
    }

    #[test]
    fn rows_of_buckets_are_sorted_and_empty_buckets_dropped() {
        let b = |start: i64, q: &str, offered: u64| QueueBucket {
            interval_start: start,
            queue_id: q.into(),
            offered,
            ..QueueBucket::default()
        };
        let rows = report_rows(vec![
            b(86_400_000, "a", 1),
            b(0, "b", 1),
            b(0, "B", 2),
            b(0, "a", 0),
        ]);
        let keys: Vec<(&str, &str)> = rows
            .iter()
            .map(|r| (r.interval_start.as_str(), r.queue_id.as_str()))
            .collect();
        assert_eq!(
            keys,
            [
                ("1970-01-01T00:00:00Z", "B"),
                ("1970-01-01T00:00:00Z", "b"),
                ("1970-01-02T00:00:00Z", "a")
            ]
        );
    }
}
