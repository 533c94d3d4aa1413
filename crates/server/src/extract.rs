//! Extractors whose rejections are problem+json: [`ApiJson`] for bodies (400 malformed JSON,
//! 413 over the limit, 422 naming the failing field path) and [`Params`] for query strings
//! (400 naming the parameter).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use switchboard_core::parse_rfc3339;

use crate::error::ApiError;

/// Largest request body, bytes (1 MiB).
pub const BODY_LIMIT: usize = 1 << 20;

/// Reads the body as bytes, mapping a body over [`BODY_LIMIT`] to 413.
pub async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large(format!("the body is larger than {BODY_LIMIT} bytes"))
        } else {
            ApiError::bad_request(format!("cannot read the body: {e}"))
        }
    })
}

/// Parses bytes as JSON into `T`: 400 for malformed JSON, 422 naming the field path otherwise.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::bad_request(format!("malformed JSON: {inner}"))
        } else {
            let path = if path == "." { String::new() } else { path };
            let msg = inner.to_string();
            // serde names a missing field in its message rather than in the path.
            let field = match msg.strip_prefix("missing field `") {
                Some(rest) => {
                    let name = rest.split('`').next().unwrap_or_default();
                    if path.is_empty() {
                        name.to_owned()
                    } else {
                        format!("{path}.{name}")
                    }
                }
                None => path,
            };
            let msg = msg.split(" at line ").next().unwrap_or_default().to_owned();
            ApiError::invalid(&field, msg)
        }
    })
}

/// A JSON body of type `T`.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = body_bytes(req, state).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// The query string as a map, with typed getters whose errors name the parameter.
pub struct Params(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map(|q| Params(q.0))
            .map_err(|e| ApiError::bad_request(format!("bad query string: {e}")))
    }
}

/// Default page size (`limit`).
pub const DEFAULT_LIMIT: u64 = 50;
/// Largest page size (`limit`).
pub const MAX_LIMIT: u64 = 500;

impl Params {
    /// The raw value, treating an empty value as absent.
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str).filter(|v| !v.is_empty())
    }

    /// An RFC 3339 instant as epoch ms.
    pub fn time(&self, k: &str) -> Result<Option<i64>, ApiError> {
        self.get(k)
            .map(|v| {
                parse_rfc3339(v).ok_or_else(|| {
                    ApiError::bad_param(
                        k,
                        "must be an RFC 3339 timestamp such as 2026-01-31T00:00:00Z",
                    )
                })
            })
            .transpose()
    }

    /// `limit`: 1..=[`MAX_LIMIT`], default [`DEFAULT_LIMIT`].
    pub fn limit(&self) -> Result<u64, ApiError> {
        match self.get("limit") {
            None => Ok(DEFAULT_LIMIT),
            Some(v) => match v.parse::<u64>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
                _ => Err(ApiError::bad_param(
                    "limit",
                    format!("must be an integer from 1 to {MAX_LIMIT}"),
                )),
            },
        }
    }

    /// A value parsed by `f`, with `expected` in the error.
    pub fn parsed<T>(
        &self,
        k: &str,
        f: impl Fn(&str) -> Option<T>,
        expected: &str,
    ) -> Result<Option<T>, ApiError> {
        self.get(k)
            .map(|v| f(v).ok_or_else(|| ApiError::bad_param(k, format!("must be {expected}"))))
            .transpose()
    }
}
