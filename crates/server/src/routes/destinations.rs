//! Destinations (the call centers campaigns send calls to): `POST/GET /api/v1/destinations`,
//! `GET/PATCH/DELETE /api/v1/destinations/{id}`. A destination is reached at exactly one of a
//! SIP URI or an E.164 number.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use switchboard_core::{format_rfc3339, TenantId};
use switchboard_store::{Destination, DestinationSettings};

use crate::app::AppState;
use crate::auth::{perm, Authorized};
use crate::conditional::{etag_header, IfMatch};
use crate::error::ApiError;
use crate::extract::nullable;
use crate::extract::{ApiJson, Params};
use crate::routes::resource::{self, Kind};
use crate::routes::{validate, Page};

/// A destination call center.
#[derive(Debug, Serialize, ToSchema)]
pub struct DestinationDto {
    /// Destination id (UUIDv7).
    pub id: uuid::Uuid,
    /// Display name.
    pub name: String,
    /// Where calls go: a `sip:`/`sips:` URI (exactly one of `sip_uri`, `number`).
    pub sip_uri: Option<String>,
    /// Where calls go: an E.164 number (the route API answers it as `tel:+…`).
    pub number: Option<String>,
    /// False: no campaign sends it calls.
    pub active: bool,
    /// The call-seller platform's PJSIP endpoint id or group name (compatibility API).
    pub client_identifier: Option<String>,
    /// PJSIP `outbound_auth` (compatibility API).
    pub outbound_auth: Option<String>,
    /// Caller id to present (compatibility API).
    pub callerid_override: Option<String>,
    /// Asterisk dialplan context (compatibility API).
    pub context: Option<String>,
    /// PJSIP transport (compatibility API).
    pub transport: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

fn dto(d: Destination) -> DestinationDto {
    let s = d.settings;
    DestinationDto {
        id: d.id,
        name: s.name,
        sip_uri: s.sip_uri,
        number: s.number,
        active: s.active,
        client_identifier: s.client_identifier,
        outbound_auth: s.outbound_auth,
        callerid_override: s.callerid_override,
        context: s.context,
        transport: s.transport,
        created_at: format_rfc3339(d.created_at),
        updated_at: format_rfc3339(d.updated_at),
    }
}

/// Body of `POST /api/v1/destinations` (`name` and one of `sip_uri`, `number` required) and
/// of `PATCH /api/v1/destinations/{id}` (the fields to change; giving `sip_uri` switches a
/// number destination to the URI and the other way round; `null` clears an optional field).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DestinationBody {
    /// 1–200 characters.
    pub name: Option<String>,
    /// A `sip:` or `sips:` URI (RFC 3261), at most 512 characters.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub sip_uri: Option<Option<String>>,
    /// A phone number: international, or national in the tenant's `default_region`; stored
    /// as E.164.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub number: Option<Option<String>>,
    /// Default true.
    pub active: Option<bool>,
    /// Up to 200 characters (compatibility API).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub client_identifier: Option<Option<String>>,
    /// Up to 200 characters (compatibility API).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub outbound_auth: Option<Option<String>>,
    /// Up to 200 characters (compatibility API).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub callerid_override: Option<Option<String>>,
    /// Up to 200 characters (compatibility API).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub context: Option<Option<String>>,
    /// Up to 200 characters (compatibility API).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub transport: Option<Option<String>>,
}

/// Largest compatibility string, characters.
const COMPAT_MAX: usize = 200;

impl DestinationBody {
    /// `base` with this body applied, validated. Errors: 422 naming the field.
    fn apply(
        &self,
        mut s: DestinationSettings,
        region: Option<&str>,
    ) -> Result<DestinationSettings, ApiError> {
        if let Some(n) = &self.name {
            validate::name("name", n, 200)?;
            s.name = n.clone();
        }
        if matches!(
            (&self.sip_uri, &self.number),
            (Some(Some(_)), Some(Some(_)))
        ) {
            return Err(ApiError::invalid(
                "number",
                "give either `sip_uri` or `number`, not both",
            ));
        }
        match &self.sip_uri {
            Some(Some(u)) => {
                validate::sip_uri("sip_uri", u)?;
                (s.sip_uri, s.number) = (Some(u.clone()), None);
            }
            Some(None) => s.sip_uri = None,
            None => {}
        }
        match &self.number {
            Some(Some(n)) => {
                (s.number, s.sip_uri) = (Some(validate::e164("number", n, region)?), None)
            }
            Some(None) => s.number = None,
            None => {}
        }
        if s.sip_uri.is_none() && s.number.is_none() {
            return Err(ApiError::invalid(
                "sip_uri",
                "a destination needs a `sip_uri` or a `number`",
            ));
        }
        if let Some(a) = self.active {
            s.active = a;
        }
        for (field, v, slot) in [
            (
                "client_identifier",
                &self.client_identifier,
                &mut s.client_identifier,
            ),
            ("outbound_auth", &self.outbound_auth, &mut s.outbound_auth),
            (
                "callerid_override",
                &self.callerid_override,
                &mut s.callerid_override,
            ),
            ("context", &self.context, &mut s.context),
            ("transport", &self.transport, &mut s.transport),
        ] {
            if let Some(v) = v {
                validate::opt_text(field, v.as_deref(), COMPAT_MAX)?;
                *slot = v.clone();
            }
        }
        Ok(s)
    }
}

/// The tenant's region for national numbers.
pub(crate) async fn region(s: &AppState, tenant: TenantId) -> Result<Option<String>, ApiError> {
    Ok(s.engine.tenant_settings(tenant).await?.0.default_region)
}

const KIND: Kind = Kind {
    name: "destination",
    conflict_field: "id",
};

/// Creates a destination.
#[utoipa::path(post, path = "/api/v1/destinations", operation_id = "createDestination", tag = "routing",
    request_body = DestinationBody,
    responses((status = 201, body = DestinationDto, headers(("ETag" = String, description = "The destination's version"))),
        (status = 422, description = "Invalid field")),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn create_destination(
    State(s): State<AppState>,
    auth: Authorized<perm::RoutingWrite>,
    ApiJson(b): ApiJson<DestinationBody>,
) -> Result<(StatusCode, HeaderMap, Json<DestinationDto>), ApiError> {
    let name = b
        .name
        .clone()
        .ok_or_else(|| ApiError::invalid("name", "is required"))?;
    let base = DestinationSettings {
        name,
        sip_uri: None,
        number: None,
        active: true,
        client_identifier: None,
        outbound_auth: None,
        callerid_override: None,
        context: None,
        transport: None,
    };
    let settings = b.apply(base, region(&s, auth.tenant_id).await?.as_deref())?;
    resource::create(&s, &auth, KIND, &settings, dto).await
}

/// Lists destinations in creation order (`limit` 1–500, default 50; `cursor` from the
/// previous page).
#[utoipa::path(get, path = "/api/v1/destinations", operation_id = "listDestinations", tag = "routing",
    params(("limit" = Option<u64>, Query,), ("cursor" = Option<String>, Query,)),
    responses((status = 200, body = Page<DestinationDto>), (status = 400, description = "Bad parameter")),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn list_destinations(
    State(s): State<AppState>,
    auth: Authorized<perm::RoutingRead>,
    p: Params,
) -> Result<Json<Page<DestinationDto>>, ApiError> {
    resource::list::<DestinationSettings, _>(&s, &auth, &p, dto).await
}

/// One destination.
#[utoipa::path(get, path = "/api/v1/destinations/{id}", operation_id = "getDestination", tag = "routing",
    params(("id" = String, Path,)),
    responses((status = 200, body = DestinationDto, headers(("ETag" = String, description = "The version, for If-Match"))),
        (status = 404, description = "No such destination")),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn get_destination(
    State(s): State<AppState>,
    auth: Authorized<perm::RoutingRead>,
    Path(id): Path<String>,
) -> Result<(HeaderMap, Json<DestinationDto>), ApiError> {
    let d = resource::get::<DestinationSettings>(&s, &auth, KIND, &id).await?;
    Ok((etag_header(d.version), Json(dto(d))))
}

/// Changes a destination; omitted fields are kept. `If-Match` makes it conditional (412).
/// Calls already routed to it keep going; new decisions see the change at once.
#[utoipa::path(patch, path = "/api/v1/destinations/{id}", operation_id = "patchDestination", tag = "routing",
    params(("id" = String, Path,), ("If-Match" = Option<String>, Header, description = "ETag of the version to change")),
    request_body = DestinationBody,
    responses((status = 200, body = DestinationDto), (status = 404, description = "No such destination"),
        (status = 412, description = "If-Match does not match"), (status = 422, description = "Invalid field")),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn patch_destination(
    State(s): State<AppState>,
    auth: Authorized<perm::RoutingWrite>,
    Path(id): Path<String>,
    if_match: IfMatch,
    ApiJson(b): ApiJson<DestinationBody>,
) -> Result<(HeaderMap, Json<DestinationDto>), ApiError> {
    let region = region(&s, auth.tenant_id).await?;
    let change = |cur: &DestinationSettings| b.apply(cur.clone(), region.as_deref());
    resource::patch(&s, &auth, KIND, &id, &if_match, change, dto).await
}

/// Deletes a destination (409 while a campaign links it). 204.
#[utoipa::path(delete, path = "/api/v1/destinations/{id}", operation_id = "deleteDestination", tag = "routing",
    params(("id" = String, Path,)),
    responses((status = 204, description = "Deleted"), (status = 404, description = "No such destination"),
        (status = 409, description = "A campaign links it")),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn delete_destination(
    State(s): State<AppState>,
    auth: Authorized<perm::RoutingWrite>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    resource::delete::<DestinationSettings>(&s, &auth, KIND, &id).await
}
