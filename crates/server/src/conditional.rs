//! Conditional requests (RFC 9110 §13): the `ETag` of a versioned resource and `If-Match` for
//! compare-and-set on PATCH. A resource at version `n` has the strong tag `"n"`.

use axum::extract::FromRequestParts;
use axum::http::header::{ETAG, IF_MATCH};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};

use crate::error::{etag, ApiError};

/// The request's `If-Match` header, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfMatch {
    /// No `If-Match`: the change applies to whatever version is current.
    Absent,
    /// `If-Match: *`: the resource must exist.
    Any,
    /// `If-Match: "3", "4"`: the current version must be one of these (strong comparison;
    /// weak or foreign tags never match).
    Tags(Vec<String>),
}

impl IfMatch {
    /// Checks the current version. Errors: 412 naming the current `ETag`.
    pub fn check(&self, current: i64) -> Result<(), ApiError> {
        match self {
            IfMatch::Absent | IfMatch::Any => Ok(()),
            IfMatch::Tags(tags) if tags.iter().any(|t| *t == etag(current)) => Ok(()),
            IfMatch::Tags(_) => Err(ApiError::precondition_failed(format!(
                "If-Match does not match the current ETag {}",
                etag(current)
            ))
            .with("current_etag", etag(current))),
        }
    }

    /// Whether the client asked for compare-and-set (then a concurrent change is a 412, not a
    /// retry).
    pub fn is_conditional(&self) -> bool {
        !matches!(self, IfMatch::Absent)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let Some(v) = parts.headers.get(IF_MATCH) else {
            return Ok(IfMatch::Absent);
        };
        let v = v
            .to_str()
            .map_err(|_| ApiError::bad_param("If-Match", "must be ASCII"))?
            .trim();
        if v == "*" {
            return Ok(IfMatch::Any);
        }
        let tags: Vec<String> = v
            .split(',')
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .collect();
        if tags.is_empty() || tags.iter().any(|t| !t.ends_with('"')) {
            return Err(ApiError::bad_param(
                "If-Match",
                "must be `*` or a list of entity tags such as \"3\"",
            ));
        }
        Ok(IfMatch::Tags(tags))
    }
}

/// Headers carrying the `ETag` of a resource at `version`.
pub fn etag_header(version: i64) -> HeaderMap {
    let mut h = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&etag(version)) {
        h.insert(ETAG, v);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strong_tags_match_only_the_current_version() {
        assert!(IfMatch::Tags(vec!["\"3\"".into()]).check(3).is_ok());
        assert!(IfMatch::Tags(vec!["\"2\"".into(), "\"3\"".into()])
            .check(3)
            .is_ok());
        let e = IfMatch::Tags(vec!["\"2\"".into()]).check(3).unwrap_err();
        assert_eq!(e.status.as_u16(), 412);
        assert!(IfMatch::Tags(vec!["W/\"3\"".into()]).check(3).is_err());
        assert!(IfMatch::Any.check(7).is_ok());
        assert!(IfMatch::Absent.check(7).is_ok());
    }
}
