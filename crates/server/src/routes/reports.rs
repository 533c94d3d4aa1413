//! `GET /api/v1/reports/queues`: queue metrics per interval (definitions in docs/metrics.md).

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use chrono_tz::Tz;

use switchboard_core::metrics::{regroup, report_rows, Interval, QueueReportRow, STATS_BUCKET_MS};
use switchboard_core::parse_rfc3339;
use switchboard_core::time::now_ms;

use crate::app::AppState;
use crate::auth::{perm, Authorized};
use crate::error::ApiError;
use crate::extract::Params;

/// The report.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueReport {
    /// One row per queue and interval with at least one offered call, by interval then queue.
    pub rows: Vec<QueueReportRow>,
}

/// Longest report range: 400 days.
const MAX_RANGE_MS: i64 = 400 * 86_400_000;

/// Queue metrics grouped by first queue-entry time: `from`/`to` RFC 3339 (`to` exclusive;
/// defaults: to = now, from = to − 24 h), `interval` = `day` | `hour` | `15m` (default `day`),
/// optional `queue_id`. Days and hours are UTC unless `time_zone` is given: `tenant` (the
/// tenant's `time_zone`) or an IANA name; then they start at local midnight (a day may last 23
/// or 25 hours across a DST change) and `interval_start` carries the local offset. With a time
/// zone, `from` and `to` must fall on 15-minute boundaries. `answered_within_sl` uses the SLA
/// threshold frozen on each call at queue entry.
#[utoipa::path(get, path = "/api/v1/reports/queues", operation_id = "queueReport", tag = "reports",
    params(("from" = Option<String>, Query,), ("to" = Option<String>, Query,), ("interval" = Option<String>, Query,), ("queue_id" = Option<String>, Query,),
        ("time_zone" = Option<String>, Query, description = "`tenant` or an IANA time zone: local days and hours")),
    responses((status = 200, body = QueueReport), (status = 400, description = "Bad parameter")),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn queue_report(
    State(s): State<AppState>,
    auth: Authorized<perm::ReportsRead>,
    p: Params,
) -> Result<Json<QueueReport>, ApiError> {
    let to = p.time("to")?.unwrap_or_else(now_ms);
    let from = p.time("from")?.unwrap_or(to - 86_400_000);
    if from >= to {
        return Err(ApiError::bad_param("from", "must be before `to`"));
    }
    if to - from > MAX_RANGE_MS {
        return Err(ApiError::bad_param(
            "to",
            "the range may span at most 400 days",
        ));
    }
    let interval = p
        .parsed("interval", Interval::parse, "`day`, `hour` or `15m`")?
        .unwrap_or(Interval::Day);
    let queue_id = p.get("queue_id");
    let tz = match p.get("time_zone") {
        None => None,
        Some("tenant") => {
            let (t, _) = s.engine.tenant_settings(auth.tenant_id).await?;
            Some(t.time_zone.parse::<Tz>().map_err(|_| {
                ApiError::bad_param("time_zone", "the tenant's time zone is not known")
            })?)
        }
        Some(name) => Some(name.parse::<Tz>().map_err(|_| {
            ApiError::bad_param(
                "time_zone",
                "must be `tenant` or an IANA time zone (e.g. `Europe/Paris`)",
            )
        })?),
    };
    let Some(tz) = tz else {
        // Aggregated in the database, from the 15-minute statistics projection when the range
        // falls on 15-minute boundaries (else from the calls): memory follows the rows, not
        // the calls.
        let buckets = s
            .store
            .report_buckets(auth.tenant_id, from, to, interval, queue_id)
            .await?;
        return Ok(Json(QueueReport {
            rows: report_rows(buckets),
        }));
    };
    for (k, v) in [("from", from), ("to", to)] {
        if v.rem_euclid(STATS_BUCKET_MS) != 0 {
            return Err(ApiError::bad_param(
                k,
                "with a time_zone, must fall on a 15-minute boundary",
            ));
        }
    }
    // The 15-minute sums from the database, regrouped here by local interval: at most 96 rows
    // per queue and day of the range.
    let fine = s
        .store
        .report_buckets(auth.tenant_id, from, to, Interval::Min15, queue_id)
        .await?;
    let rows = report_rows(regroup(fine, |t| local_floor(tz, interval, t)))
        .into_iter()
        .map(|mut r| {
            if let Some(t) = parse_rfc3339(&r.interval_start) {
                r.interval_start = local_rfc3339(tz, t);
            }
            r
        })
        .collect();
    Ok(Json(QueueReport { rows }))
}

/// The start of the local `interval` holding the instant `t` (epoch ms) in `tz`, as an instant.
fn local_floor(tz: Tz, interval: Interval, t: i64) -> i64 {
    use chrono::{TimeZone, Timelike};
    let Some(local) = tz.timestamp_millis_opt(t).single() else {
        return interval.floor(t);
    };
    let naive = local.naive_local();
    let start = match interval {
        Interval::Day => naive.date().and_hms_opt(0, 0, 0),
        Interval::Hour => naive.date().and_hms_opt(naive.hour(), 0, 0),
        Interval::Min15 => naive
            .date()
            .and_hms_opt(naive.hour(), naive.minute() / 15 * 15, 0),
    };
    // A local midnight skipped by a DST change (rare) starts the day at the first instant.
    start
        .and_then(|n| tz.from_local_datetime(&n).earliest())
        .map_or_else(|| interval.floor(t), |d| d.timestamp_millis())
}

/// RFC 3339 of the instant `t` with `tz`'s offset at that instant (`2026-03-29T00:00:00+01:00`).
fn local_rfc3339(tz: Tz, t: i64) -> String {
    use chrono::TimeZone;
    tz.timestamp_millis_opt(t).single().map_or_else(
        || switchboard_core::format_rfc3339(t),
        |d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
    )
}
