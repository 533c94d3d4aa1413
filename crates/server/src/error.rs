//! The one API error type: every failure leaves as RFC 9457 `application/problem+json`
//! (`{"type","title","status","detail","field"?, ...}`). Storage and engine errors are converted
//! here and nowhere else; internal causes are logged, never sent to the client.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use switchboard_core::Problem;
use switchboard_engine::EngineError;
use switchboard_store::StoreError;

/// An error answer.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status, also the problem's `status`.
    pub status: StatusCode,
    /// Short machine-readable slug, becomes `type` = `urn:switchboard:problem:<slug>`.
    pub slug: &'static str,
    /// Short summary of the problem type (RFC 9457 `title`).
    pub title: &'static str,
    /// Explanation of this occurrence (RFC 9457 `detail`).
    pub detail: String,
    /// The failing field (JSON field or query parameter).
    pub field: Option<String>,
    /// Extra members (e.g. `status` of the call for a 409).
    pub extra: Map<String, Value>,
    /// Seconds for the `Retry-After` header (503).
    pub retry_after: Option<u32>,
}

impl ApiError {
    fn new(
        status: StatusCode,
        slug: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        ApiError {
            status,
            slug,
            title,
            detail: detail.into(),
            field: None,
            extra: Map::new(),
            retry_after: None,
        }
    }

    /// 400: the request body is not JSON, or a query parameter is wrong.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "Bad request",
            detail,
        )
    }

    /// 400 naming a query parameter.
    pub fn bad_param(param: &str, detail: impl std::fmt::Display) -> Self {
        let mut e = Self::bad_request(format!("{param}: {detail}"));
        e.field = Some(param.to_owned());
        e
    }

    /// 401: no key, or an unknown one.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unauthorized",
            detail,
        )
    }

    /// 403: the credential lacks the scope.
    pub fn forbidden(scope: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Forbidden",
            format!("this credential lacks the scope `{scope}`"),
        )
        .with("scope", scope)
    }

    /// 403 for a reason other than a missing scope (e.g. granting a role above one's own).
    pub fn forbidden_because(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", detail)
    }

    /// 429 with `Retry-After: seconds`.
    pub fn too_many_requests(detail: impl Into<String>, seconds: u32) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too-many-requests",
            "Too many requests",
            detail,
        );
        e.retry_after = Some(seconds.max(1));
        e
    }

    /// 404.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    /// 405: the path exists but not with this method (see the `Allow` header).
    pub fn method_not_allowed(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            "Method not allowed",
            detail,
        )
    }

    /// 409.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", "Conflict", detail)
    }

    /// 413.
    pub fn too_large(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "Content too large",
            detail,
        )
    }

    /// 422 naming a field of the body.
    pub fn invalid(field: &str, detail: impl std::fmt::Display) -> Self {
        let mut e = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-field",
            "Invalid field",
            if field.is_empty() {
                detail.to_string()
            } else {
                format!("{field}: {detail}")
            },
        );
        if !field.is_empty() {
            e.field = Some(field.to_owned());
        }
        e
    }

    /// 503: the store or the writer is unavailable; retrying is safe.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Service unavailable",
            detail,
        )
    }

    /// 503 with `Retry-After: seconds`.
    pub fn unavailable_retry(detail: impl Into<String>, seconds: u32) -> Self {
        let mut e = Self::unavailable(detail);
        e.retry_after = Some(seconds);
        e
    }

    /// 504: the request was not answered within the server's `request_timeout_s`; whether it
    /// was applied is unknown.
    pub fn timeout(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            "timeout",
            "Request timed out",
            detail,
        )
    }

    /// 412: the resource changed since the version named in `If-Match`.
    pub fn precondition_failed(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::PRECONDITION_FAILED,
            "precondition-failed",
            "Precondition failed",
            detail,
        )
    }

    /// 500 with the cause logged, not shown.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal server error",
            "an internal error occurred; it has been logged",
        )
    }

    /// Names the failing field.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// Names `field` when this is a 409 (a unique value taken).
    pub fn with_field_if_conflict(self, field: &str) -> Self {
        if self.status == StatusCode::CONFLICT {
            self.with_field(field)
        } else {
            self
        }
    }

    /// Adds a member to the problem object.
    pub fn with(mut self, key: &str, v: impl Into<Value>) -> Self {
        self.extra.insert(key.to_owned(), v.into());
        self
    }

    /// The problem object, typed (as the batch answer carries it per event).
    pub fn problem(&self) -> Problem {
        Problem {
            problem_type: format!("urn:switchboard:problem:{}", self.slug),
            title: Some(self.title.to_owned()),
            status: Some(self.status.as_u16()),
            detail: Some(self.detail.clone()),
            field: self.field.clone(),
            extra: self.extra.clone(),
        }
    }

    /// The problem object as JSON.
    pub fn body(&self) -> Value {
        // A `Problem` is plain JSON data: serializing it cannot fail.
        serde_json::to_value(self.problem()).unwrap_or_default()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.body().to_string();
        let mut r = (
            self.status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            body,
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 9110 §11.6.1: a 401 names the schemes that would work (RFC 6750 for Bearer).
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static(WWW_AUTHENTICATE),
            );
        }
        if let Some(s) = self.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(s));
        }
        r
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::not_found("no such resource"),
            StoreError::Conflict(what) => ApiError::conflict(what),
            StoreError::Invalid { field, detail } => ApiError::invalid(&field, detail),
            StoreError::VersionMismatch { current } => ApiError::precondition_failed(format!(
                "the resource changed: its current version is {current}"
            ))
            .with("current_etag", etag(current)),
            // Unreachable (down, restarting, pool exhausted) or busy (SQLite's writer lock held
            // past busy_timeout): nothing was written; a retry will do.
            e @ StoreError::Other(_) if e.is_transient() => {
                tracing::warn!(error = %e, "store unreachable or busy");
                ApiError::unavailable_retry(
                    "the store cannot be reached or is busy; nothing was written, retry",
                    1,
                )
            }
            StoreError::Other(e) => ApiError::internal(e),
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match &e {
            EngineError::UnknownTenant => ApiError::not_found(e.to_string()),
            EngineError::UnknownCall(_) => ApiError::not_found(e.to_string()).with_field("call_id"),
            EngineError::CallExists { status, .. } => {
                ApiError::conflict(e.to_string()).with("call_status", status.as_str())
            }
            EngineError::Transition(t) => {
                ApiError::conflict(e.to_string()).with("call_status", t.status.as_str())
            }
            EngineError::UnknownQueue(_) => ApiError::invalid("queue_id", e.to_string()),
            EngineError::TimestampTooFar { .. } => ApiError::invalid("timestamp", e.to_string()),
            EngineError::NoSuchQueue(_) => ApiError::not_found(e.to_string()),
            EngineError::QueueExists(_) => ApiError::conflict(e.to_string()).with_field("id"),
            EngineError::NoSuchAgent(_) => ApiError::not_found(e.to_string()),
            EngineError::AgentExists(_) => ApiError::conflict(e.to_string()).with_field("id"),
            EngineError::UnknownMember(_) => ApiError::invalid("members", e.to_string()),
            EngineError::VersionMismatch { current } => {
                ApiError::precondition_failed(e.to_string()).with("current_etag", etag(*current))
            }
            EngineError::Unavailable {
                reason,
                retry_after_s,
            } => {
                tracing::warn!(reason = %reason, "command not applied: unavailable");
                ApiError::unavailable_retry(
                    "nothing was applied: the store cannot commit right now; retry (with the same event_id for events)",
                    *retry_after_s,
                )
            }
        }
    }
}

/// The challenges of every 401: an access token (RFC 6750) or an API key in `X-API-Key`.
pub const WWW_AUTHENTICATE: &str =
    r#"Bearer realm="switchboard", ApiKey realm="switchboard", header="X-API-Key""#;

/// The strong `ETag` of a resource at `version`: `"<version>"` (RFC 9110 §8.8.3).
pub fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_or_busy_store_is_503_and_anything_else_500() {
        use sea_orm::{ConnAcquireErr, DbErr, RuntimeErr};
        let conn = StoreError::Other(DbErr::Conn(RuntimeErr::Internal("refused".into())));
        let pool = StoreError::Other(DbErr::ConnectionAcquire(ConnAcquireErr::Timeout));
        let busy = StoreError::Other(DbErr::Custom("database is locked".into()));
        for e in [conn, pool, busy] {
            let a = ApiError::from(e);
            assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(a.retry_after, Some(1));
        }
        let other = ApiError::from(StoreError::Other(DbErr::Custom("corrupt row".into())));
        assert_eq!(other.status, StatusCode::INTERNAL_SERVER_ERROR);
    }
}
