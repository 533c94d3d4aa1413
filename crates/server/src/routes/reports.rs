//! `GET /api/v1/reports/queues`: queue metrics per interval (definitions in docs/metrics.md).

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use switchboard_core::metrics::{report_rows, Interval, QueueReportRow};
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

/// Queue metrics grouped by first queue-entry time (UTC): `from`/`to` RFC 3339 (`to` exclusive;
/// defaults: to = now, from = to − 24 h), `interval` = `day` | `hour` | `15m` (default `day`),
/// optional `queue_id`. `answered_within_sl` uses the SLA threshold frozen on each call at queue
/// entry.
#[utoipa::path(get, path = "/api/v1/reports/queues", operation_id = "queueReport", tag = "reports",
    params(("from" = Option<String>, Query,), ("to" = Option<String>, Query,), ("interval" = Option<String>, Query,), ("queue_id" = Option<String>, Query,)),
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
    // Aggregated in the database, from the 15-minute statistics projection when the range
    // falls on 15-minute boundaries (else from the calls): memory follows the rows, not the
    // calls.
    let buckets = s
        .store
        .report_buckets(auth.tenant_id, from, to, interval, queue_id)
        .await?;
    let rows = report_rows(buckets);
    Ok(Json(QueueReport { rows }))
}
