//! Names of the operational metrics Switchboard exports at `GET /metrics` (Prometheus text
//! format, recorded through the `metrics` facade). They live here, in the crate every other
//! crate depends on, so the engine and the server record under the same names; the full table
//! (type, labels, unit) is in `docs/metrics.md`, section "Operational metrics".
//!
//! Conventions (Prometheus naming): a `_total` suffix for counters, the base unit in the name
//! (`_seconds`), no unit for plain counts.

/// Counter: HTTP requests answered. Labels: `method`, `route` (the route pattern such as
/// `/api/v1/calls/{id}`, or `unmatched`), `status` (the numeric HTTP status).
pub const HTTP_REQUESTS_TOTAL: &str = "switchboard_http_requests_total";
/// Histogram, seconds: time from request received to response headers produced.
/// Labels: `method`, `route`.
pub const HTTP_REQUEST_DURATION_SECONDS: &str = "switchboard_http_request_duration_seconds";
/// Counter: call events received through `POST /api/v1/events` and `/events/batch`, by their
/// answer. Label `outcome`: `accepted` (201), `duplicate` (200), `refused` (4xx: invalid,
/// conflicting with the call's state, unknown call), `unavailable` (503: not durable, retry).
pub const EVENTS_TOTAL: &str = "switchboard_events_total";
/// Histogram, events: events written by one group commit (one database transaction).
pub const GROUP_COMMIT_EVENTS: &str = "switchboard_group_commit_events";
/// Histogram, seconds: duration of one group commit, retries included.
pub const GROUP_COMMIT_DURATION_SECONDS: &str = "switchboard_group_commit_duration_seconds";
/// Counter: group commits given up after their retries (their events were answered 503).
pub const GROUP_COMMIT_FAILURES_TOTAL: &str = "switchboard_group_commit_failures_total";
/// Gauge, calls: calls of every tenant that have not ended.
pub const LIVE_CALLS: &str = "switchboard_live_calls";
/// Gauge, connections: open WebSocket stream subscribers.
pub const STREAM_SUBSCRIBERS: &str = "switchboard_stream_subscribers";
/// Gauge, write requests: requests waiting in the writer's bounded queue, sampled by the writer
/// at each group-commit round.
pub const WRITER_QUEUE_DEPTH: &str = "switchboard_writer_queue_depth";
/// Gauge, tenants: tenants marked stale after a failed commit and not yet reloaded (raised by
/// the writer when it marks a tenant, lowered by the reload).
pub const STALE_TENANTS: &str = "switchboard_stale_tenants";

/// How a committed event of wire type `event_type` changes the number of live calls: `+1` for
/// `call_initiated` (a call starts), `-1` for `call_ended`, `0` otherwise.
pub fn live_call_delta(event_type: &str) -> i64 {
    match event_type {
        "call_initiated" => 1,
        "call_ended" => -1,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_start_and_end_change_live_calls() {
        assert_eq!(live_call_delta("call_initiated"), 1);
        assert_eq!(live_call_delta("call_ended"), -1);
        for t in [
            "call_queued",
            "call_answered",
            "sla_breached",
            "call_retransfer",
        ] {
            assert_eq!(live_call_delta(t), 0, "{t}");
        }
    }
}
