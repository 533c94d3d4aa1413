//! Liveness and readiness; no key needed.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use crate::app::AppState;
use crate::error::ApiError;

/// `GET /health`: the process is up.
#[utoipa::path(get, path = "/health", operation_id = "health", tag = "ops",
    responses((status = 200, description = "The process is up", body = Object)))]
pub async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /ready`: 200 when the database answers and the store commits; 503 (with
/// `Retry-After`) while a commit fails, until a commit or the writer's probe succeeds again,
/// or when a background task died (the process is then exiting).
#[utoipa::path(get, path = "/ready", operation_id = "ready", tag = "ops",
    responses((status = 200, description = "Ready", body = Object), (status = 503, description = "Not ready")))]
pub async fn ready(State(s): State<AppState>) -> Result<Json<Value>, ApiError> {
    s.store
        .ping()
        .await
        .map_err(|e| ApiError::unavailable_retry(format!("database unreachable: {e}"), 1))?;
    if !s.engine.is_ready() {
        return Err(ApiError::unavailable_retry(
            "the store cannot commit events right now; see the logs",
            1,
        ));
    }
    let (tenants, stale) = s.engine.tenant_counts();
    Ok(Json(
        json!({"status": "ready", "tenants_loaded": tenants, "tenants_stale": stale}),
    ))
}
