//! Phone numbers (DIDs): `POST/GET /api/v1/phone-numbers`,
//! `GET/PATCH/DELETE /api/v1/phone-numbers/{id}`. A DID is an E.164 number (validated with
//! libphonenumber; national numbers read in the tenant's `default_region`), unique in the
//! tenant, pointing to exactly one of a queue or a campaign.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use switchboard_core::{format_rfc3339, QueueId, TenantId};
use switchboard_engine::EngineError;
use switchboard_store::{DidTarget, PhoneNumber, PhoneNumberSettings};

use crate::app::AppState;
use crate::auth::{perm, Authorized};
use crate::conditional::{etag_header, IfMatch};
use crate::error::ApiError;
use crate::extract::nullable;
use crate::extract::{ApiJson, Params};
use crate::routes::destinations::region;
use crate::routes::resource::{self, Kind};
use crate::routes::{validate, Page};

/// A DID.
#[derive(Debug, Serialize, ToSchema)]
pub struct PhoneNumberDto {
    /// DID id (UUIDv7).
    pub id: uuid::Uuid,
    /// The number, E.164 (`+33123456789`).
    pub number: String,
    /// A name to recognise it by.
    pub name: Option<String>,
    /// Free text.
    pub notes: Option<String>,
    /// The queue its calls enter (exactly one of `queue_id`, `campaign_id` is set).
    pub queue_id: Option<String>,
    /// The campaign that routes its calls.
    pub campaign_id: Option<uuid::Uuid>,
    /// False: its calls are rejected.
    pub active: bool,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

fn dto(p: PhoneNumber) -> PhoneNumberDto {
    let s = p.settings;
    let (queue_id, campaign_id) = match s.target {
        DidTarget::Queue(q) => (Some(q), None),
        DidTarget::Campaign(c) => (None, Some(c)),
    };
    PhoneNumberDto {
        id: p.id,
        number: s.number,
        name: s.name,
        notes: s.notes,
        queue_id,
        campaign_id,
        active: s.active,
        created_at: format_rfc3339(p.created_at),
        updated_at: format_rfc3339(p.updated_at),
    }
}

/// Body of `POST /api/v1/phone-numbers` (`number` and one of `queue_id`, `campaign_id`
/// required) and of `PATCH /api/v1/phone-numbers/{id}` (the fields to change; giving
/// `queue_id` points the DID to that queue instead of its campaign, and the other way round).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PhoneNumberBody {
    /// A phone number: international (`+33 1 23 45 67 89`), or national in the tenant's
    /// `default_region`; stored as E.164.
    pub number: Option<String>,
    /// Up to 200 characters; `null` clears it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub name: Option<Option<String>>,
    /// Up to 2000 characters; `null` clears it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub notes: Option<Option<String>>,
    /// A queue of the tenant.
    pub queue_id: Option<String>,
    /// A campaign of the tenant.
    pub campaign_id: Option<uuid::Uuid>,
    /// Default true.
    pub active: Option<bool>,
}

impl PhoneNumberBody {
    /// `base` with this body applied, validated (a campaign is checked by the store in its
    /// transaction, a queue by [`PhoneNumberBody::check_queue`]). Errors: 422 naming the
    /// field.
    fn apply(
        &self,
        mut p: PhoneNumberSettings,
        region: Option<&str>,
    ) -> Result<PhoneNumberSettings, ApiError> {
        if let Some(n) = &self.number {
            p.number = validate::e164("number", n, region)?;
        }
        if let Some(n) = &self.name {
            validate::opt_text("name", n.as_deref(), 200)?;
            p.name = n.clone();
        }
        if let Some(n) = &self.notes {
            validate::opt_text_multiline("notes", n.as_deref(), 2000)?;
            p.notes = n.clone();
        }
        match (&self.queue_id, self.campaign_id) {
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid(
                    "campaign_id",
                    "a DID points to a queue or a campaign, not both",
                ))
            }
            (Some(q), None) => {
                QueueId::parse(q).map_err(|e| ApiError::invalid("queue_id", e))?;
                p.target = DidTarget::Queue(q.clone());
            }
            (None, Some(c)) => p.target = DidTarget::Campaign(c),
            (None, None) => {}
        }
        if let Some(a) = self.active {
            p.active = a;
        }
        Ok(p)
    }

    /// Checks that the `queue_id` named exists (queues live in the engine; a queue is never
    /// deleted, so this holds at the write). Errors: 422 on `queue_id`.
    async fn check_queue(&self, s: &AppState, tenant: TenantId) -> Result<(), ApiError> {
        let Some(q) = self
            .queue_id
            .as_deref()
            .filter(|_| self.campaign_id.is_none())
        else {
            return Ok(());
        };
        QueueId::parse(q).map_err(|e| ApiError::invalid("queue_id", e))?;
        match s.engine.queue(tenant, q).await {
            Ok(_) => Ok(()),
            Err(EngineError::NoSuchQueue(_)) => {
                Err(ApiError::invalid("queue_id", format!("no queue `{q}`")))
            }
            Err(e) => Err(e.into()),
        }
    }
}

const KIND: Kind = Kind {
    name: "phone number",
    conflict_field: "number",
};

/// Creates a DID.
#[utoipa::path(post, path = "/api/v1/phone-numbers", operation_id = "createPhoneNumber", tag = "routing",
    request_body = PhoneNumberBody,
    responses((status = 201, body = PhoneNumberDto, headers(("ETag" = String, description = "The DID's version"))),
        (status = 409, description = "The tenant has a DID with this number (field `number`)"),
        (status = 422, description = "Invalid field (a number that is not one, a queue or campaign that does not exist)")),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn create_phone_number(
    State(s): State<AppState>,
    auth: Authorized<perm::RoutingWrite>,
    ApiJson(b): ApiJson<PhoneNumberBody>,
) -> Result<(StatusCode, HeaderMap, Json<PhoneNumberDto>), ApiError> {
    let t = auth.tenant_id;
    if b.number.is_none() {
        return Err(ApiError::invalid("number", "is required"));
    }
    if b.queue_id.is_none() && b.campaign_id.is_none() {
        return Err(ApiError::invalid(
            "queue_id",
            "give the `queue_id` or the `campaign_id` the DID's calls go to",
        ));
    }
    let base = PhoneNumberSettings {
        number: String::new(),
        name: None,
        notes: None,
        target: DidTarget::Queue(String::new()),
        active: true,
    };
    let settings = b.apply(base, region(&s, t).await?.as_deref())?;
    b.check_queue(&s, t).await?;
    resource::create(&s, &auth, KIND, &settings, dto).await
}

/// Lists DIDs in creation order (`limit` 1–500, default 50; `cursor` from the previous page).
#[utoipa::path(get, path = "/api/v1/phone-numbers", operation_id = "listPhoneNumbers", tag = "routing",
    params(("limit" = Option<u64>, Query,), ("cursor" = Option<String>, Query,)),
    responses((status = 200, body = Page<PhoneNumberDto>), (status = 400, description = "Bad parameter")),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn list_phone_numbers(
    State(s): State<AppState>,
    auth: Authorized<perm::RoutingRead>,
    p: Params,
) -> Result<Json<Page<PhoneNumberDto>>, ApiError> {
    resource::list::<PhoneNumberSettings, _>(&s, &auth, &p, dto).await
}

/// One DID.
#[utoipa::path(get, path = "/api/v1/phone-numbers/{id}", operation_id = "getPhoneNumber", tag = "routing",
    params(("id" = String, Path,)),
    responses((status = 200, body = PhoneNumberDto, headers(("ETag" = String, description = "The version, for If-Match"))),
        (status = 404, description = "No such DID")),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn get_phone_number(
    State(s): State<AppState>,
    auth: Authorized<perm::RoutingRead>,
    Path(id): Path<String>,
) -> Result<(HeaderMap, Json<PhoneNumberDto>), ApiError> {
    let p = resource::get::<PhoneNumberSettings>(&s, &auth, KIND, &id).await?;
    Ok((etag_header(p.version), Json(dto(p))))
}

/// Changes a DID; omitted fields are kept. `If-Match` makes it conditional (412).
#[utoipa::path(patch, path = "/api/v1/phone-numbers/{id}", operation_id = "patchPhoneNumber", tag = "routing",
    params(("id" = String, Path,), ("If-Match" = Option<String>, Header, description = "ETag of the version to change")),
    request_body = PhoneNumberBody,
    responses((status = 200, body = PhoneNumberDto), (status = 404, description = "No such DID"),
        (status = 409, description = "The number is another DID's (field `number`)"),
        (status = 412, description = "If-Match does not match"), (status = 422, description = "Invalid field")),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn patch_phone_number(
    State(s): State<AppState>,
    auth: Authorized<perm::RoutingWrite>,
    Path(id): Path<String>,
    if_match: IfMatch,
    ApiJson(b): ApiJson<PhoneNumberBody>,
) -> Result<(HeaderMap, Json<PhoneNumberDto>), ApiError> {
    let region = region(&s, auth.tenant_id).await?;
    b.check_queue(&s, auth.tenant_id).await?;
    let change = |cur: &PhoneNumberSettings| b.apply(cur.clone(), region.as_deref());
    resource::patch(&s, &auth, KIND, &id, &if_match, change, dto).await
}

/// Deletes a DID: its calls are then answered `did_not_found`. 204.
#[utoipa::path(delete, path = "/api/v1/phone-numbers/{id}", operation_id = "deletePhoneNumber", tag = "routing",
    params(("id" = String, Path,)),
    responses((status = 204, description = "Deleted"), (status = 404, description = "No such DID")),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn delete_phone_number(
    State(s): State<AppState>,
    auth: Authorized<perm::RoutingWrite>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    resource::delete::<PhoneNumberSettings>(&s, &auth, KIND, &id).await
}
