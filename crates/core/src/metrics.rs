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

use crate::call::{Call, CallFlag, CallStatus};
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

impl CallFacts {
    /// The report's facts of a call as it is now; `None` if it never entered a queue (such a
    /// call is in no report).
    pub fn of(c: &Call) -> Option<CallFacts> {
        Some(CallFacts {
            queue_id: c.first_queue_id.as_ref()?.as_str().to_owned(),
            queued_at: c.queued_at?,
            answered: c.answered_at.is_some(),
            ended: c.status == CallStatus::Ended,
            wait_ms: c.wait_ms,
            handle_ms: c.handle_ms(),
            sla_threshold_s: c.sla_threshold_s,
            sla_breached: c.flags.contains(CallFlag::SlaBreached),
            review: c.flags.contains(CallFlag::Review),
        })
    }
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

    /// Adds another bucket's sums (of the same queue) to this one.
    pub fn absorb(&mut self, o: &QueueBucket) {
        self.offered += o.offered;
        self.answered += o.answered;
        self.abandoned += o.abandoned;
        self.answered_within_sl += o.answered_within_sl;
        self.wait_answered_ms += o.wait_answered_ms;
        self.wait_abandoned_ms += o.wait_abandoned_ms;
        self.handled += o.handled;
        self.handle_ms += o.handle_ms;
        self.max_wait_ms = match (self.max_wait_ms, o.max_wait_ms) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.sla_breached += o.sla_breached;
        self.review += o.review;
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

/// Width of the statistics projection's buckets (`queue_stats`), ms: 15 minutes, the finest
/// report [`Interval`], so that every report interval aligned to it is a sum of whole buckets.
pub const STATS_BUCKET_MS: i64 = 900_000;

/// One call's contribution to the statistics projection: the sums of [`QueueBucket::add`] for
/// this call alone, in the 15-minute bucket of its first queue entry
/// ([`STATS_BUCKET_MS`]). The SLA threshold is the one frozen on the call, else
/// `fallback_threshold_s` (the queue's current one, for calls stored before it was frozen).
pub fn contribution(c: &CallFacts, fallback_threshold_s: u32) -> QueueBucket {
    let mut b = QueueBucket {
        interval_start: Interval::Min15.floor(c.queued_at),
        queue_id: c.queue_id.clone(),
        ..QueueBucket::default()
    };
    let t = c.sla_threshold_s.unwrap_or(fallback_threshold_s);
    b.add(c, i64::from(t) * 1000);
    b
}

/// A change of one `queue_stats` row (tenant implied): signed differences of the sums of
/// [`QueueBucket`], and the wait a newly resolved call adds to the bucket's maximum. The
/// writer adds the sums to the stored row and keeps the larger maximum. Milliseconds in
/// `*_ms`.
///
/// The maximum needs no difference: a call's wait is fixed once it is answered or abandoned,
/// so a bucket's maximum only ever grows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsDelta {
    /// The queue first entered.
    pub queue_id: String,
    /// Start of the 15-minute bucket of the first queue entry, epoch ms.
    pub bucket_start: TimestampMs,
    /// Change of `offered`.
    pub offered: i64,
    /// Change of `answered`.
    pub answered: i64,
    /// Change of `abandoned`.
    pub abandoned: i64,
    /// Change of `answered_within_sl`.
    pub answered_within_sl: i64,
    /// Change of the sum of answered calls' waits, ms.
    pub wait_answered_ms: i64,
    /// Change of the sum of abandoned calls' waits, ms.
    pub wait_abandoned_ms: i64,
    /// Change of `handled`.
    pub handled: i64,
    /// Change of the sum of handle times, ms.
    pub handle_ms: i64,
    /// Wait of a call resolved by this change, ms (the row keeps the larger).
    pub max_wait_ms: Option<i64>,
    /// Change of `sla_breached`.
    pub sla_breached: i64,
    /// Change of `review`.
    pub review: i64,
}

fn signed(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl StatsDelta {
    fn zero(queue_id: &str, bucket_start: TimestampMs) -> Self {
        StatsDelta {
            queue_id: queue_id.to_owned(),
            bucket_start,
            ..StatsDelta::default()
        }
    }

    /// `sign` × the sums of `b` (its maximum only when adding).
    fn scaled(b: &QueueBucket, sign: i64) -> Self {
        StatsDelta {
            queue_id: b.queue_id.clone(),
            bucket_start: b.interval_start,
            offered: sign * signed(b.offered),
            answered: sign * signed(b.answered),
            abandoned: sign * signed(b.abandoned),
            answered_within_sl: sign * signed(b.answered_within_sl),
            wait_answered_ms: sign * b.wait_answered_ms,
            wait_abandoned_ms: sign * b.wait_abandoned_ms,
            handled: sign * signed(b.handled),
            handle_ms: sign * b.handle_ms,
            max_wait_ms: if sign > 0 { b.max_wait_ms } else { None },
            sla_breached: sign * signed(b.sla_breached),
            review: sign * signed(b.review),
        }
    }

    /// The changes that turn a call's contribution `before` into `after` ([`contribution`];
    /// `None` for a call never queued, or not in memory before). Changes that change nothing
    /// are left out, so the result holds zero, one or (if the bucket moved) two deltas.
    pub fn between(before: Option<&QueueBucket>, after: Option<&QueueBucket>) -> Vec<StatsDelta> {
        let mut out = Vec::new();
        match (before, after) {
            (Some(b), Some(a))
                if (b.interval_start, &b.queue_id) == (a.interval_start, &a.queue_id) =>
            {
                let mut d = StatsDelta::scaled(a, 1);
                d.merge(&StatsDelta::scaled(b, -1));
                // The wait joins the maximum once, when the call is resolved.
                if b.max_wait_ms.is_some() {
                    d.max_wait_ms = None;
                }
                out.push(d);
            }
            (b, a) => {
                out.extend(b.map(|b| StatsDelta::scaled(b, -1)));
                out.extend(a.map(|a| StatsDelta::scaled(a, 1)));
            }
        }
        out.retain(|d| !d.is_noop());
        out
    }

    /// Whether writing this delta would change nothing.
    pub fn is_noop(&self) -> bool {
        let z = StatsDelta::zero(&self.queue_id, self.bucket_start);
        *self == z
    }

    /// Adds `other` (of the same bucket) into this delta: sums add, maxima keep the larger.
    pub fn merge(&mut self, other: &StatsDelta) {
        debug_assert_eq!(
            (&self.queue_id, self.bucket_start),
            (&other.queue_id, other.bucket_start)
        );
        self.offered += other.offered;
        self.answered += other.answered;
        self.abandoned += other.abandoned;
        self.answered_within_sl += other.answered_within_sl;
        self.wait_answered_ms += other.wait_answered_ms;
        self.wait_abandoned_ms += other.wait_abandoned_ms;
        self.handled += other.handled;
        self.handle_ms += other.handle_ms;
        self.max_wait_ms = match (self.max_wait_ms, other.max_wait_ms) {
            (Some(x), Some(y)) => Some(x.max(y)),
            (x, y) => x.or(y),
        };
        self.sla_breached += other.sla_breached;
        self.review += other.review;
    }

    /// Merges deltas of the same bucket (queue and start): one per bucket, none that changes
    /// nothing, sorted by queue then start (a stable order for the writer's upsert).
    pub fn merged(deltas: impl IntoIterator<Item = StatsDelta>) -> Vec<StatsDelta> {
        let mut by_key: BTreeMap<(String, TimestampMs), StatsDelta> = BTreeMap::new();
        for d in deltas {
            match by_key.get_mut(&(d.queue_id.clone(), d.bucket_start)) {
                Some(m) => m.merge(&d),
                None => {
                    by_key.insert((d.queue_id.clone(), d.bucket_start), d);
                }
            }
        }
        by_key.into_values().filter(|d| !d.is_noop()).collect()
    }
}

/// Report rows of per-bucket sums (one bucket per interval and queue, in any order), sorted by
/// interval then queue id (byte order). Buckets with no offered call give no row.
pub fn report_rows(buckets: impl IntoIterator<Item = QueueBucket>) -> Vec<QueueReportRow> {
    let mut buckets: Vec<QueueBucket> = buckets.into_iter().filter(|b| b.offered > 0).collect();
    buckets.sort_by(|a, b| (a.interval_start, &a.queue_id).cmp(&(b.interval_start, &b.queue_id)));
    buckets.into_iter().map(QueueBucket::into_row).collect()
}

/// Regroups buckets into other intervals: each bucket goes to the interval starting at
/// `floor(bucket.interval_start)` (e.g. the instant of local midnight in a time zone, for days
/// that follow the tenant's clock rather than UTC). Buckets must be finer than the intervals
/// and aligned to them (15-minute buckets fit every real UTC offset and DST change).
pub fn regroup(
    buckets: impl IntoIterator<Item = QueueBucket>,
    floor: impl Fn(TimestampMs) -> TimestampMs,
) -> Vec<QueueBucket> {
    let mut groups: BTreeMap<(TimestampMs, String), QueueBucket> = BTreeMap::new();
    for b in buckets {
        let start = floor(b.interval_start);
        match groups.get_mut(&(start, b.queue_id.clone())) {
            Some(g) => g.absorb(&b),
            None => {
                groups.insert(
                    (start, b.queue_id.clone()),
                    QueueBucket {
                        interval_start: start,
                        ..b
                    },
                );
            }
        }
    }
    groups.into_values().collect()
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

    /// Adds a delta to stored sums, as the writer's upsert does.
    fn write(row: &mut Option<QueueBucket>, d: &StatsDelta) {
        let r = row.get_or_insert_with(|| QueueBucket {
            interval_start: d.bucket_start,
            queue_id: d.queue_id.clone(),
            ..QueueBucket::default()
        });
        let add = |x: &mut u64, y: i64| *x = x.checked_add_signed(y).expect("never negative");
        add(&mut r.offered, d.offered);
        add(&mut r.answered, d.answered);
        add(&mut r.abandoned, d.abandoned);
        add(&mut r.answered_within_sl, d.answered_within_sl);
        r.wait_answered_ms += d.wait_answered_ms;
        r.wait_abandoned_ms += d.wait_abandoned_ms;
        add(&mut r.handled, d.handled);
        r.handle_ms += d.handle_ms;
        r.max_wait_ms = r.max_wait_ms.max(d.max_wait_ms);
        add(&mut r.sla_breached, d.sla_breached);
        add(&mut r.review, d.review);
    }

    fn contrib(c: &Call) -> Option<QueueBucket> {
        CallFacts::of(c).map(|f| contribution(&f, 20))
    }

    #[test]
    fn a_calls_contribution_follows_its_life_and_the_deltas_add_up_to_it() {
        use crate::event::{CallType, EndReason, EventKind, TransferTarget};
        use crate::ids::{AgentId, ExternalCallId, QueueId};
        let q = |s: &str| QueueId::parse(s).unwrap();
        let t0 = 1_767_225_600_000 + 14 * 60_000; // 00:14 UTC: bucket 00:00
        let mut c = Call::initiate(
            uuid::Uuid::nil(),
            ExternalCallId::parse("c").unwrap(),
            &EventKind::CallInitiated {
                call_type: CallType::Voice,
                queue_id: None,
                from: None,
                to: None,
                priority: None,
            },
            t0 - 5_000,
        )
        .unwrap();
        let steps = [
            (
                EventKind::CallQueued {
                    queue_id: q("q1"),
                    priority: None,
                },
                t0,
            ),
            (
                EventKind::SlaBreached {
                    queue_id: q("q1"),
                    threshold_s: 30,
                },
                t0 + 30_000,
            ),
            (
                EventKind::CallRouted {
                    agent_id: AgentId::parse("a").unwrap(),
                    routing_time: None,
                    ring_group: Vec::new(),
                    targets: Vec::new(),
                },
                t0 + 40_000,
            ),
            (
                EventKind::CallAnswered {
                    agent_id: None,
                    wait_time: None,
                },
                t0 + 45_000,
            ),
            (
                EventKind::CallHold {
                    hold_duration: None,
                },
                t0 + 50_000,
            ),
            (EventKind::CallResumed, t0 + 56_000),
            (
                // Another queue and bucket: the call stays counted where it first entered.
                EventKind::CallTransferred {
                    target: TransferTarget::Queue(q("q2")),
                },
                t0 + 20 * 60_000,
            ),
            (
                EventKind::CallEnded {
                    end_reason: EndReason::Completed,
                    duration: None,
                },
                // Backwards: counted as zero, flagged out_of_order.
                t0 + 10 * 60_000,
            ),
        ];
        let mut row = None;
        assert_eq!(contrib(&c), None, "never queued: nothing");
        for (k, ts) in steps {
            let before = contrib(&c);
            c.apply(&k, ts).unwrap();
            let after = contrib(&c);
            for d in StatsDelta::between(before.as_ref(), after.as_ref()) {
                assert_eq!(
                    (d.queue_id.as_str(), d.bucket_start),
                    ("q1", 1_767_225_600_000)
                );
                write(&mut row, &d);
            }
            assert_eq!(row, after, "after {}", k.type_name());
        }
        let row = row.unwrap();
        assert_eq!(
            (row.offered, row.answered, row.abandoned, row.handled),
            (1, 1, 0, 1)
        );
        // Threshold 20 s (nothing frozen on this call): 45 s is outside.
        assert_eq!((row.answered_within_sl, row.wait_answered_ms), (0, 45_000));
        assert_eq!(row.max_wait_ms, Some(45_000));
        assert_eq!(row.sla_breached, 1);
        // Talk 5 s + 20 min − 6 s … to the transfer; the backwards end adds nothing.
        assert_eq!(row.handle_ms, c.handle_ms());
    }

    #[test]
    fn deltas_leave_out_what_changes_nothing_and_merge_per_bucket() {
        let waiting = call("Q", 1_000, false, false, None, 0);
        let answered = call("Q", 1_000, true, false, Some(12_000), 0);
        let held = call("Q", 1_000, true, false, Some(12_000), 0);
        let b = |f: &CallFacts| contribution(f, 30);
        assert_eq!(StatsDelta::between(None, None), vec![]);
        let d = StatsDelta::between(Some(&b(&waiting)), Some(&b(&answered)));
        assert_eq!(d.len(), 1);
        assert_eq!(
            (
                d[0].offered,
                d[0].answered,
                d[0].answered_within_sl,
                d[0].max_wait_ms
            ),
            (0, 1, 1, Some(12_000))
        );
        // Resolved before and after: the maximum is not written again, nothing else moved.
        assert_eq!(
            StatsDelta::between(Some(&b(&answered)), Some(&b(&held))),
            vec![]
        );
        // The first entry adds the call; a frozen threshold wins over the fallback.
        let frozen = CallFacts {
            sla_threshold_s: Some(10),
            ..answered.clone()
        };
        let d = StatsDelta::between(None, Some(&b(&frozen)));
        assert_eq!((d[0].offered, d[0].answered_within_sl), (1, 0));

        let other = call("Q", 900_000, false, true, Some(3_000), 0);
        let m = StatsDelta::merged(
            [
                StatsDelta::between(None, Some(&b(&waiting))),
                StatsDelta::between(Some(&b(&waiting)), Some(&b(&answered))),
                StatsDelta::between(None, Some(&b(&other))),
                StatsDelta::between(None, Some(&b(&answered))),
            ]
            .concat(),
        );
        assert_eq!(m.len(), 2);
        assert_eq!((m[0].bucket_start, m[0].offered, m[0].answered), (0, 2, 2));
        assert_eq!(m[0].max_wait_ms, Some(12_000));
        assert_eq!(
            (m[1].bucket_start, m[1].abandoned, m[1].wait_abandoned_ms),
            (900_000, 1, 3_000)
        );
    }
}
