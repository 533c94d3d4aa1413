//! HTTP limits: a timeout on every request and a global cap on concurrent API requests with
//! load shedding, built from tower's `timeout`, `load_shed` and `limit` layers. Both answer
//! RFC 9457 problem+json, never axum's plain-text errors:
//!
//! - over [`HttpLimits::max_concurrent_requests`]: **503** `unavailable` with `Retry-After: 1`;
//!   the request was not looked at, so nothing was applied.
//! - not answered within [`HttpLimits::request_timeout`] (a slow handler, or a client sending
//!   its body too slowly): **504** `timeout`. Unlike a 503, the outcome is unknown: an event
//!   already handed to the engine is still committed. Retrying an event with the same
//!   `event_id` is safe (applied once); a PATCH should be re-read and sent with `If-Match`.
//!
//! What the limits cover: the timeout runs until the response head is ready, so a WebSocket
//! is limited only until its `101 Switching Protocols`; the upgraded socket runs on its own
//! task and is never cut. Likewise its concurrency permit is returned at the upgrade: open
//! streams do not count against the cap. The operational routes (`/health`, `/ready`,
//! `/metrics`) are not shed, so a supervisor still sees the server under load; they do have
//! the timeout.

use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::Router;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::{BoxError, ServiceBuilder};

use crate::error::ApiError;

/// `Retry-After` of a shed request, seconds.
pub const SHED_RETRY_AFTER_S: u32 = 1;

/// The limits in force (from `Settings`).
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// Longest time to produce a response head, from `request_timeout_s` (default 30 s).
    pub request_timeout: Duration,
    /// API requests handled at once before further ones are shed with 503; from
    /// `max_concurrent_requests` (default 1024).
    pub max_concurrent_requests: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            request_timeout: Duration::from_secs(crate::config::DEFAULT_REQUEST_TIMEOUT_S),
            max_concurrent_requests: crate::config::DEFAULT_MAX_CONCURRENT_REQUESTS,
        }
    }
}

/// The problem for a request stopped by a limit layer.
async fn on_error(err: BoxError) -> ApiError {
    if err.is::<tower::load_shed::error::Overloaded>() {
        return ApiError::unavailable_retry(
            "too many requests in progress; nothing was applied: retry (with the same \
             event_id for events)",
            SHED_RETRY_AFTER_S,
        );
    }
    if err.is::<tower::timeout::error::Elapsed>() {
        return ApiError::timeout(
            "the request was not answered in time; it may or may not have been applied: \
             retry events with the same event_id (applied once), re-read a resource before \
             changing it again",
        );
    }
    ApiError::internal(err)
}

/// `api` with the concurrency cap (load shedding) and the timeout, merged with `ops` with the
/// timeout only. Every API route shares one semaphore: tower's global limit hands the same one
/// to each route's service, however many times axum clones the layer.
pub fn apply<S>(api: Router<S>, ops: Router<S>, limits: HttpLimits) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let api = api.layer(
        ServiceBuilder::new()
            .layer(HandleErrorLayer::new(on_error))
            .load_shed()
            .layer(GlobalConcurrencyLimitLayer::new(
                limits.max_concurrent_requests.max(1),
            ))
            // Inside the cap, so a timed-out request gives its permit back.
            .timeout(limits.request_timeout),
    );
    let ops = ops.layer(
        ServiceBuilder::new()
            .layer(HandleErrorLayer::new(on_error))
            .timeout(limits.request_timeout),
    );
    ops.merge(api)
}
