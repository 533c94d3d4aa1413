//! `GET /api/v1/alerts`: supervisor alerts (`sla_breached`, `long_wait`, `long_hold`).

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use switchboard_core::format_rfc3339;
use switchboard_store::AlertFilter;

use crate::app::AppState;
use crate::auth::{perm, Authorized};
use crate::error::ApiError;
use crate::extract::Params;
use crate::routes::Page;

/// Alert types.
pub const ALERT_TYPES: [&str; 3] = ["sla_breached", "long_wait", "long_hold"];

/// An alert; `seq` is also its event's in the call's history and the stream.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertDto {
    /// Sequence number of the alert's event in the tenant's stream.
    pub seq: i64,
    /// `sla_breached`, `long_wait` or `long_hold`.
    pub r#type: String,
    /// The client's call id.
    pub call_id: String,
    /// Switchboard's call id (UUIDv7).
    pub call_uuid: uuid::Uuid,
    /// The queue the call was in when the rule fired, if any.
    pub queue_id: Option<String>,
    /// When the rule fired (event time).
    pub timestamp: String,
    /// `threshold_s`, and `wait_s` / `hold_s` where they apply.
    #[schema(value_type = Object)]
    pub data: Value,
}

/// Lists alerts, newest first: `type`, `from`/`to` (RFC 3339, `to` exclusive), `limit` 1–500
/// (default 50), `cursor` from the previous page.
#[utoipa::path(get, path = "/api/v1/alerts", operation_id = "listAlerts", tag = "alerts",
    params(("type" = Option<String>, Query,), ("from" = Option<String>, Query,), ("to" = Option<String>, Query,),
           ("limit" = Option<u64>, Query,), ("cursor" = Option<String>, Query,)),
    responses((status = 200, body = Page<AlertDto>), (status = 400, description = "Bad parameter")),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn list_alerts(
    State(s): State<AppState>,
    auth: Authorized<perm::AlertsRead>,
    p: Params,
) -> Result<Json<Page<AlertDto>>, ApiError> {
    let f = AlertFilter {
        alert_type: p.parsed(
            "type",
            |t| ALERT_TYPES.contains(&t).then(|| t.to_owned()),
            "one of sla_breached, long_wait, long_hold",
        )?,
        from: p.time("from")?,
        to: p.time("to")?,
    };
    let limit = p.limit()?;
    let after = p.parsed(
        "cursor",
        |c| c.parse::<i64>().ok(),
        "a cursor returned by this endpoint",
    )?;
    let rows = s.store.alerts(auth.tenant_id, &f, after, limit).await?;
    Ok(Json(Page::of(
        rows,
        limit,
        |a| a.seq.to_string(),
        |a| AlertDto {
            seq: a.seq,
            r#type: a.alert_type,
            call_id: a.external_call_id,
            call_uuid: a.call_id,
            queue_id: a.queue_id,
            timestamp: format_rfc3339(a.ts),
            data: serde_json::from_str(&a.data).unwrap_or(Value::Null),
        },
    )))
}
