//! What the routing model's administrative routes (DIDs, destinations, campaigns) share: ids
//! in paths, the 404 that names no tenant, cursor pages, and PATCH as read-modify-write with
//! `If-Match`. Each resource's module keeps its own handlers (their OpenAPI descriptions and
//! validation); their bodies are these functions over the store's
//! [`Resource`](switchboard_store::Resource)s.

use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use utoipa::ToSchema;

use switchboard_store::{Resource, StoreError, Versioned};

use crate::app::AppState;
use crate::auth::Principal;
use crate::conditional::{etag_header, IfMatch};
use crate::error::ApiError;
use crate::extract::Params;
use crate::routes::Page;

/// How a resource is named in answers.
#[derive(Debug, Clone, Copy)]
pub struct Kind {
    /// In a 404's detail: `no such <name>`.
    pub name: &'static str,
    /// The field a 409 (a unique value taken) names.
    pub conflict_field: &'static str,
}

impl Kind {
    /// A store error of a route on this kind: its 404 says only "no such …" (the same words
    /// for another tenant's id as for an id that exists nowhere); a 409 names
    /// `conflict_field`.
    pub fn error(self, e: StoreError) -> ApiError {
        match e {
            StoreError::NotFound => ApiError::not_found(format!("no such {}", self.name)),
            e => ApiError::from(e).with_field_if_conflict(self.conflict_field),
        }
    }

    /// An id from a path: a UUID, or a 404 (an id no resource can have is not looked up).
    pub fn id(self, id: &str) -> Result<uuid::Uuid, ApiError> {
        id.parse()
            .map_err(|_| ApiError::not_found(format!("no such {}", self.name)))
    }
}

/// The caller's resource `id`. Errors: 404.
pub async fn get<S: Resource>(
    s: &AppState,
    who: &Principal,
    kind: Kind,
    id: &str,
) -> Result<Versioned<S>, ApiError> {
    let id = kind.id(id)?;
    s.store
        .resource(who.tenant_id, id)
        .await
        .map_err(|e| kind.error(e))
}

/// A page of the caller's resources (`limit`, `cursor`), as `dto`s.
pub async fn list<S: Resource, D: ToSchema>(
    s: &AppState,
    who: &Principal,
    p: &Params,
    dto: impl FnMut(Versioned<S>) -> D,
) -> Result<Json<Page<D>>, ApiError> {
    let limit = p.limit()?;
    let rows = s
        .store
        .resources::<S>(who.tenant_id, p.uuid_cursor()?, limit)
        .await?;
    Ok(Json(Page::of(rows, limit, |r| r.id.to_string(), dto)))
}

/// Creates a resource: 201 with its `ETag`.
pub async fn create<S: Resource, D>(
    s: &AppState,
    who: &Principal,
    kind: Kind,
    settings: &S,
    dto: impl FnOnce(Versioned<S>) -> D,
) -> Result<(StatusCode, HeaderMap, Json<D>), ApiError> {
    let r = s
        .store
        .insert_resource(who.tenant_id, settings, &who.actor(), s.engine.now_ms())
        .await
        .map_err(|e| kind.error(e))?;
    Ok((StatusCode::CREATED, etag_header(r.version), Json(dto(r))))
}

/// A PATCH: reads the resource, checks `If-Match` against its version, computes the new
/// settings with `change` (which validates them), and writes them with compare-and-set on the
/// version read. Without `If-Match` a concurrent change makes the write fail and the patch is
/// applied again to the newer version, so concurrent PATCHes of different fields all land;
/// with it, that is a 412. Answers the resource and its new `ETag`.
///
/// Errors: 404; 412; `change`'s; the write's.
pub async fn patch<S: Resource, D>(
    s: &AppState,
    who: &Principal,
    kind: Kind,
    id: &str,
    if_match: &IfMatch,
    change: impl Fn(&S) -> Result<S, ApiError>,
    dto: impl FnOnce(Versioned<S>) -> D,
) -> Result<(HeaderMap, Json<D>), ApiError> {
    let (actor, now) = (who.actor(), s.engine.now_ms());
    loop {
        let cur = get::<S>(s, who, kind, id).await?;
        if_match.check(cur.version)?;
        let new = change(&cur.settings)?;
        let written = s
            .store
            .update_resource(who.tenant_id, cur.id, &new, cur.version, &actor, now)
            .await;
        match written {
            Err(StoreError::VersionMismatch { .. }) if !if_match.is_conditional() => continue,
            r => {
                let r = r.map_err(|e| kind.error(e))?;
                return Ok((etag_header(r.version), Json(dto(r))));
            }
        }
    }
}

/// Deletes a resource: 204.
pub async fn delete<S: Resource>(
    s: &AppState,
    who: &Principal,
    kind: Kind,
    id: &str,
) -> Result<StatusCode, ApiError> {
    let id = kind.id(id)?;
    s.store
        .delete_resource::<S>(who.tenant_id, id, &who.actor(), s.engine.now_ms())
        .await
        .map_err(|e| kind.error(e))?;
    Ok(StatusCode::NO_CONTENT)
}
