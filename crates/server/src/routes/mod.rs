//! HTTP routes under `/api/v1` plus `/health`, `/ready`, `/metrics` and the API docs (`/docs`).
//! Handlers translate HTTP into store reads or engine commands; no business rule lives here.

pub mod agents;
pub mod alerts;
pub mod api_keys;
pub mod audit;
pub mod calls;
pub mod campaigns;
pub mod compat;
pub mod destinations;
pub mod docs;
pub mod events;
pub mod health;
pub mod phone_numbers;
pub mod queues;
pub mod reports;
pub mod resource;
pub mod route_api;
pub mod session;
pub mod stream;
pub mod tenant;
pub mod users;
pub mod validate;

use axum::http::{Method, Uri};
use axum::routing::{get, post};
use axum::Router;
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::AppState;
use crate::error::ApiError;

/// A page of a list: `items` and the cursor of the next page (`null` on the last page).
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T: ToSchema> {
    /// This page's entries.
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page.
    pub next_cursor: Option<String>,
}

impl<T: ToSchema> Page<T> {
    /// The page of `rows` asked for with `limit`: a full page has a next cursor (`cursor` of
    /// its last row), a shorter one is the last (`null`). `item` turns a row into an entry.
    pub fn of<R>(
        rows: Vec<R>,
        limit: u64,
        cursor: impl Fn(&R) -> String,
        item: impl FnMut(R) -> T,
    ) -> Page<T> {
        let next_cursor = (rows.len() as u64 == limit)
            .then(|| rows.last().map(&cursor))
            .flatten();
        Page {
            items: rows.into_iter().map(item).collect(),
            next_cursor,
        }
    }
}

/// The operational routes (`/health`, `/ready`, `/metrics`): no key, never load-shed.
pub fn ops() -> Router<AppState> {
    Router::new()
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        .route("/metrics", get(crate::metrics::metrics))
}

/// Every other route: the API under `/api/v1`, the API docs (`/docs`, shed under load like the
/// API: they are for people, not supervisors) and the 404 fallback.
pub fn api() -> Router<AppState> {
    Router::new()
        .merge(docs::router())
        .route("/api/v1/openapi.json", get(crate::openapi::openapi_json))
        .route("/api/v1/auth/login", post(session::login))
        .route("/api/v1/auth/refresh", post(session::refresh))
        .route("/api/v1/auth/logout", post(session::logout))
        .route("/api/v1/auth/me", get(session::me))
        .route("/api/v1/auth/password", post(session::change_password))
        .route(
            "/api/v1/tenant",
            get(tenant::get_tenant).patch(tenant::patch_tenant),
        )
        .route(
            "/api/v1/tenants",
            post(tenant::create_tenant).get(tenant::list_tenants),
        )
        .route(
            "/api/v1/tenants/{id}",
            get(tenant::get_tenant_by_id)
                .patch(tenant::patch_tenant_by_id)
                .delete(tenant::deactivate_tenant),
        )
        .route(
            "/api/v1/users",
            post(users::create_user).get(users::list_users),
        )
        .route(
            "/api/v1/users/{id}",
            get(users::get_user)
                .patch(users::patch_user)
                .delete(users::deactivate_user),
        )
        .route(
            "/api/v1/api-keys",
            post(api_keys::create_api_key).get(api_keys::list_api_keys),
        )
        .route(
            "/api/v1/api-keys/{id}",
            get(api_keys::get_api_key).delete(api_keys::revoke_api_key),
        )
        .route("/api/v1/audit", get(audit::list_audit))
        .route(
            "/api/v1/queues",
            post(queues::create_queue).get(queues::list_queues),
        )
        .route(
            "/api/v1/queues/{queue_id}",
            get(queues::get_queue).patch(queues::patch_queue),
        )
        .route(
            "/api/v1/queues/{queue_id}/members",
            axum::routing::put(queues::put_members),
        )
        .route(
            "/api/v1/agents",
            post(agents::create_agent).get(agents::list_agents),
        )
        .route(
            "/api/v1/agents/{id}",
            get(agents::get_agent).patch(agents::patch_agent),
        )
        .route("/api/v1/agents/{id}/status", post(agents::set_status))
        .route("/api/v1/events", post(events::post_event))
        .route("/api/v1/events/batch", post(events::post_batch))
        .route("/api/v1/calls", get(calls::list_calls))
        .route("/api/v1/calls/{id}", get(calls::get_call))
        .route("/api/v1/calls/{id}/events", get(calls::call_events))
        .route("/api/v1/alerts", get(alerts::list_alerts))
        .route("/api/v1/reports/queues", get(reports::queue_report))
        .route("/api/v1/stream", get(stream::stream))
        .route(
            "/api/v1/phone-numbers",
            post(phone_numbers::create_phone_number).get(phone_numbers::list_phone_numbers),
        )
        .route(
            "/api/v1/phone-numbers/{id}",
            get(phone_numbers::get_phone_number)
                .patch(phone_numbers::patch_phone_number)
                .delete(phone_numbers::delete_phone_number),
        )
        .route(
            "/api/v1/destinations",
            post(destinations::create_destination).get(destinations::list_destinations),
        )
        .route(
            "/api/v1/destinations/{id}",
            get(destinations::get_destination)
                .patch(destinations::patch_destination)
                .delete(destinations::delete_destination),
        )
        .route(
            "/api/v1/campaigns",
            post(campaigns::create_campaign).get(campaigns::list_campaigns),
        )
        .route(
            "/api/v1/campaigns/{id}",
            get(campaigns::get_campaign)
                .patch(campaigns::patch_campaign)
                .delete(campaigns::delete_campaign),
        )
        .route(
            "/api/v1/campaigns/{id}/destinations",
            get(campaigns::get_campaign_destinations).put(campaigns::put_campaign_destinations),
        )
        .route("/api/v1/cdrs", get(route_api::list_cdrs))
        .route("/api/v1/internal/route", get(route_api::route))
        .route("/api/v1/internal/answered", post(route_api::answered))
        .route("/api/v1/internal/cdr", post(route_api::post_cdr))
        .route("/api/internal/route_info", get(compat::route_info))
        .route("/api/internal/log_call", post(compat::log_call))
        .fallback(|| async { ApiError::not_found("no such route") })
}

/// The answer for a known path asked with a method it does not take: 405 problem+json (axum
/// adds the `Allow` header listing the methods it does take).
pub async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::method_not_allowed(format!("{} does not take {method}", uri.path()))
}
