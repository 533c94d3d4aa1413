//! `GET /docs`: Swagger UI over `/api/v1/openapi.json`, to read the API and try it in a
//! browser ("Authorize" offers the document's two schemes, `api_key` and `bearer`).
//!
//! The UI's files are compiled into the binary (`utoipa-swagger-ui` with `vendored`: the zip
//! comes from the `utoipa-swagger-ui-vendored` crate at build time, never from the network),
//! and the page loads nothing from another origin (the online validator badge is off). `/docs`
//! redirects to `/docs/`. No key is needed to load the page; the API calls made from it need
//! one like any other.

use axum::extract::Request;
use axum::http::header::{HeaderValue, CACHE_CONTROL};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use utoipa_swagger_ui::{Config, SwaggerUi};

use crate::app::AppState;
use crate::error::ApiError;

/// Where the UI is served.
pub const DOCS_PATH: &str = "/docs";
/// The document the UI shows (served by [`crate::openapi::openapi_json`]).
pub const OPENAPI_PATH: &str = "/api/v1/openapi.json";

/// `Cache-Control` of the UI's static files (bundle, CSS, icons): a week. Their names carry no
/// version, so after an upgrade a browser may keep the old bundle for up to that long; the
/// bundle only changes with the `utoipa-swagger-ui` dependency, and the page and the
/// initializer (which hold the configuration) are never cached without revalidation.
const ASSET_CACHE: &str = "public, max-age=604800";
/// `Cache-Control` of the page and `swagger-initializer.js` (the configuration): revalidate.
const PAGE_CACHE: &str = "no-cache";

/// The UI's routes: `/docs` (redirect), `/docs/` and `/docs/{*file}`.
pub fn router() -> Router<AppState> {
    // `validator_url("none")`: otherwise the UI shows a badge from validator.swagger.io, which
    // would send the document's address to a third party and needs the network.
    let config = Config::from(OPENAPI_PATH).validator_url("none");
    Router::from(SwaggerUi::new(DOCS_PATH).config(config)).layer(middleware::from_fn(headers))
}

/// Sets `Cache-Control` on the UI's answers, and answers a file the UI does not have with the
/// API's 404 problem+json instead of the crate's empty 404.
async fn headers(req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let mut resp = next.run(req).await;
    if resp.status() == StatusCode::NOT_FOUND {
        return ApiError::not_found(format!("no file {path} in the API docs")).into_response();
    }
    if resp.status() == StatusCode::OK {
        let page = path.ends_with('/')
            || path.ends_with(".html")
            || path.ends_with("/swagger-initializer.js");
        let value = if page { PAGE_CACHE } else { ASSET_CACHE };
        resp.headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static(value));
    }
    resp
}
