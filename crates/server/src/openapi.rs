//! The OpenAPI 3.1 description, generated from the handlers' own types (utoipa), served at
//! `/api/v1/openapi.json` and committed as `docs/openapi.json` (checked in CI).

use axum::Json;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{alerts, calls, events, health, queues, reports, stream, tenant};

struct Security;

impl Modify for Security {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let c = api.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
    }
}

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(title = "Switchboard", description = "Multi-tenant contact-center control plane: call events, live state, rules, alerts, stream and queue reports. Errors are RFC 9457 problem+json."),
    paths(
        health::health, health::ready, crate::metrics::metrics,
        tenant::get_tenant, tenant::patch_tenant,
        queues::create_queue, queues::list_queues, queues::get_queue, queues::patch_queue,
        events::post_event, events::post_batch,
        calls::list_calls, calls::get_call, calls::call_events,
        alerts::list_alerts, reports::queue_report, stream::stream,
    ),
    modifiers(&Security)
)]
pub struct ApiDoc;

/// The document as pretty JSON.
pub fn openapi_string() -> String {
    ApiDoc::openapi().to_pretty_json().unwrap_or_default()
}

/// `GET /api/v1/openapi.json`.
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
