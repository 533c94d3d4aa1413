//! What the routing model's administrative routes (DIDs, destinations, campaigns) share: ids
//! in paths, the 404 that names no tenant, and PATCH as read-modify-write with `If-Match`.

use switchboard_store::StoreError;

use crate::conditional::IfMatch;
use crate::error::ApiError;

/// A resource id from a path: a UUID, or a 404 (an id no resource can have is not looked up).
pub fn path_id(id: &str, what: &str) -> Result<uuid::Uuid, ApiError> {
    id.parse()
        .map_err(|_| ApiError::not_found(format!("no such {what}")))
}

/// A store error of a route on `what`: its 404 says only "no such …" (the same words for
/// another tenant's id as for an id that exists nowhere); a 409 names `conflict_field`.
pub fn store_error(e: StoreError, what: &str, conflict_field: &str) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::not_found(format!("no such {what}")),
        e => ApiError::from(e).with_field_if_conflict(conflict_field),
    }
}

/// The end of one round of a PATCH's read-modify-write (read, check `If-Match`, apply, write
/// with compare-and-set on the version read): `Some` when done, `None` to go round again.
/// Without `If-Match` a concurrent change makes the write fail and the patch is applied again
/// to the newer version, so concurrent PATCHes of different fields all land; with it, that is
/// a 412.
///
/// Errors: the write's, through `err`.
pub fn settle<R>(
    if_match: &IfMatch,
    written: Result<R, StoreError>,
    err: impl Fn(StoreError) -> ApiError,
) -> Result<Option<R>, ApiError> {
    match written {
        Err(StoreError::VersionMismatch { .. }) if !if_match.is_conditional() => Ok(None),
        r => r.map(Some).map_err(err),
    }
}
