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

/// `GET /ready`: the database answers and the writer is healthy (else 503).
#[utoipa::path(get, path = "/ready", operation_id = "ready", tag = "ops",
    responses((status = 200, description = "Ready", body = Object), (status = 503, description = "Not ready")))]
pub async fn ready(State(s): State<AppState>) -> Result<Json<Value>, ApiError> {
    s.store
        .ping()
        .await
        .map_err(|e| ApiError::unavailable(format!("database unreachable: {e}")))?;
    if !s.engine.is_healthy() {
        return Err(ApiError::unavailable(
            "the event writer failed; see the logs",
        ));
    }
    Ok(Json(json!({"status": "ready"})))
}
