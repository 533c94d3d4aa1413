//! The OpenAPI 3.1 description, generated from the handlers' own types (utoipa), served at
//! `/api/v1/openapi.json` and committed as `docs/openapi.json` (checked in CI).

use axum::Json;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{
    agents, alerts, api_keys, audit, calls, campaigns, compat, destinations, events, health,
    phone_numbers, queues, reports, route_api, session, stream, tenant, users,
};

/// The two ways to authenticate, as `components.securitySchemes` (the UI at `/docs` offers
/// both under "Authorize"): `api_key`, the `X-API-Key` header, and `bearer`, an
/// `Authorization: Bearer <JWT>` token. Which operations take which is each route's
/// `security(...)`.
struct Security;

impl Modify for Security {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let c = api.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "An API key, sent in the `X-API-Key` header.",
            ))),
        );
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("A JWT, sent as `Authorization: Bearer <token>`."))
                    .build(),
            ),
        );
        c.add_security_scheme(
            "internal_token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Internal-API-Token",
                "An API key with the `telephony` scope, as the call-seller platform's Asterisk \
                 dialplan sends it; read only by the compatibility routes under `/api/internal/`.",
            ))),
        );
    }
}

/// Adds the answers of the HTTP limits (`crate::limits`) to every operation: 503 with
/// `Retry-After` to the API's (load shedding; operations that already describe a 503 keep
/// their text), 504 to all (request timeout).
struct Limits;

impl Modify for Limits {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::header::Header;
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        use utoipa::openapi::ResponseBuilder;

        for (path, item) in api.paths.paths.iter_mut() {
            let shed = path.starts_with("/api/");
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                let r = &mut op.responses.responses;
                if shed && !r.contains_key("503") {
                    let retry = Header::new(ObjectBuilder::new().schema_type(Type::Integer));
                    r.insert(
                        "503".into(),
                        ResponseBuilder::new()
                            .description(
                                "Nothing was applied: too many requests in progress (load \
                                 shedding) or the store cannot commit; retry after Retry-After \
                                 seconds",
                            )
                            .header("Retry-After", retry)
                            .build()
                            .into(),
                    );
                }
                r.insert(
                    "504".into(),
                    ResponseBuilder::new()
                        .description(
                            "Not answered within request_timeout_s; whether it was applied is \
                             unknown (retry events with the same event_id)",
                        )
                        .build()
                        .into(),
                );
            }
        }
    }
}

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(title = "Switchboard", description = "Multi-tenant contact-center control plane: call events, live state, rules, alerts, stream, queue reports, and the call-seller routing model (DIDs, campaigns, destinations, the telephony route API). Errors are RFC 9457 problem+json, except on the compatibility routes under /api/internal/, which answer the call-seller platform's own JSON."),
    paths(
        health::health, health::ready, crate::metrics::metrics,
        session::login, session::refresh, session::logout, session::me, session::change_password,
        tenant::get_tenant, tenant::patch_tenant,
        tenant::create_tenant, tenant::list_tenants, tenant::get_tenant_by_id,
        tenant::patch_tenant_by_id, tenant::deactivate_tenant,
        users::create_user, users::list_users, users::get_user, users::patch_user,
        users::deactivate_user,
        api_keys::create_api_key, api_keys::list_api_keys, api_keys::get_api_key,
        api_keys::revoke_api_key,
        audit::list_audit,
        queues::create_queue, queues::list_queues, queues::get_queue, queues::patch_queue,
        queues::put_members,
        agents::create_agent, agents::list_agents, agents::get_agent, agents::patch_agent,
        agents::set_status,
        events::post_event, events::post_batch,
        calls::list_calls, calls::get_call, calls::call_events,
        alerts::list_alerts, reports::queue_report, stream::stream,
        phone_numbers::create_phone_number, phone_numbers::list_phone_numbers,
        phone_numbers::get_phone_number, phone_numbers::patch_phone_number,
        phone_numbers::delete_phone_number,
        destinations::create_destination, destinations::list_destinations,
        destinations::get_destination, destinations::patch_destination,
        destinations::delete_destination,
        campaigns::create_campaign, campaigns::list_campaigns, campaigns::get_campaign,
        campaigns::patch_campaign, campaigns::delete_campaign,
        campaigns::get_campaign_destinations, campaigns::put_campaign_destinations,
        route_api::list_cdrs, route_api::route, route_api::answered, route_api::post_cdr,
        compat::route_info, compat::log_call,
    ),
    modifiers(&Security, &Limits)
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
