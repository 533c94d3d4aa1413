//! Extractors whose rejections are problem+json: [`ApiJson`] for bodies (400 malformed JSON,
//! 413 over the limit, 422 naming the failing field path) and [`Params`] for query strings
//! (400 naming the parameter).
//!
//! Bodies are read strictly ([`parse_json`]): exactly one JSON value, no object key twice. A
//! lenient reader silently drops what follows the first value (`{…}{…}`, NDJSON) and keeps the
//! last of two equal keys (`{"type":"call_ended",…,"type":"call_initiated"}`), so a client's
//! mistake would be applied as something it did not mean.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use serde::de::{DeserializeOwned, DeserializeSeed, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use switchboard_core::parse_rfc3339_checked;

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

/// Parses a body as exactly one JSON value into `T`.
///
/// Errors: 400 when the bytes are not JSON, hold data after the first value (whitespace
/// aside), or repeat a key within an object (`field` is the key's path, e.g.
/// `events[0].type`); 422 when `T` refuses the value, `field` naming the failing path (an
/// unknown or missing field is named too).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let v = parse_strict(bytes)?;
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        let msg = e.into_inner().to_string();
        // serde names a missing field in its message, the path being the parent object's; an
        // unknown field's path already ends with it (the key was read before the error).
        let missing = msg
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next());
        let field = match missing {
            Some(name) if path.is_empty() => name.to_owned(),
            Some(name) => format!("{path}.{name}"),
            None if path.is_empty() => msg
                .strip_prefix("unknown field `")
                .and_then(|rest| rest.split('`').next())
                .unwrap_or_default()
                .to_owned(),
            None => path,
        };
        ApiError::invalid(&field, msg)
    })
}

/// Parses a body as exactly one JSON value, refusing repeated object keys.
///
/// Errors: 400 as in [`parse_json`].
pub fn parse_strict(bytes: &[u8]) -> Result<Value, ApiError> {
    let duplicate = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let seed = StrictValue {
        at: JsonPath::Root,
        duplicate: &duplicate,
    };
    let v = seed
        .deserialize(&mut de)
        .map_err(|e| match duplicate.borrow_mut().take() {
            Some((path, key)) => ApiError::bad_request(format!(
                "malformed JSON: the key `{key}` appears twice in one object"
            ))
            .with_field(path),
            None => ApiError::bad_request(format!("malformed JSON: {e}")),
        })?;
    de.end().map_err(|_| {
        ApiError::bad_request(
            "malformed JSON: data after the first JSON value (send one object per request, \
             or several events in one batch)",
        )
    })?;
    Ok(v)
}

/// Where a value sits in a body (`events[3].type`); rendered only to name a duplicate key.
#[derive(Clone, Copy)]
enum JsonPath<'a> {
    Root,
    Key(&'a JsonPath<'a>, &'a str),
    Index(&'a JsonPath<'a>, usize),
}

impl fmt::Display for JsonPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JsonPath::Root => Ok(()),
            JsonPath::Key(JsonPath::Root, k) => f.write_str(k),
            JsonPath::Key(p, k) => write!(f, "{p}.{k}"),
            JsonPath::Index(p, i) => write!(f, "{p}[{i}]"),
        }
    }
}

/// Builds a [`Value`] like serde_json's own, but fails on a repeated object key, recording its
/// path and the key in `duplicate`.
struct StrictValue<'a> {
    at: JsonPath<'a>,
    duplicate: &'a RefCell<Option<(String, String)>>,
}

impl<'de> DeserializeSeed<'de> for StrictValue<'_> {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(v) = seq.next_element_seed(StrictValue {
            at: JsonPath::Index(&self.at, out.len()),
            duplicate: self.duplicate,
        })? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(k) = map.next_key::<String>()? {
            if out.contains_key(&k) {
                let path = JsonPath::Key(&self.at, &k).to_string();
                *self.duplicate.borrow_mut() = Some((path, k.clone()));
                return Err(A::Error::custom(format!("duplicate key `{k}`")));
            }
            let v = map.next_value_seed(StrictValue {
                at: JsonPath::Key(&self.at, &k),
                duplicate: self.duplicate,
            })?;
            out.insert(k, v);
        }
        Ok(Value::Object(out))
    }
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
        let q = Query::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_request(format!("bad query string: {e}")))?;
        // PostgreSQL cannot compare with a text holding U+0000: refuse it here rather than
        // answer a read with 500. No parameter can hold one.
        if let Some((k, _)) =
            q.0.iter()
                .find(|(k, v)| k.contains('\0') || v.contains('\0'))
        {
            return Err(ApiError::bad_param(k, "must not contain U+0000 (NUL)"));
        }
        Ok(Params(q.0))
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

    /// An RFC 3339 instant as epoch ms, within years 1970–9999.
    pub fn time(&self, k: &str) -> Result<Option<i64>, ApiError> {
        self.get(k)
            .map(|v| parse_rfc3339_checked(v).map_err(|e| ApiError::bad_param(k, e)))
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

    /// `cursor` of an id-ordered list: the UUID of the previous page's last item.
    pub fn uuid_cursor(&self) -> Result<Option<uuid::Uuid>, ApiError> {
        self.parsed(
            "cursor",
            |v| v.parse().ok(),
            "a cursor returned by this endpoint",
        )
    }

    /// `true` or `false`.
    pub fn bool(&self, k: &str) -> Result<Option<bool>, ApiError> {
        self.parsed(k, |v| v.parse().ok(), "`true` or `false`")
    }

    /// A UUID (e.g. `tenant_id`).
    pub fn uuid(&self, k: &str) -> Result<Option<uuid::Uuid>, ApiError> {
        self.parsed(k, |v| v.parse().ok(), "a UUID")
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

/// For `PATCH` fields that may be cleared: `null` and absent differ — `Some(None)` clears,
/// `None` (with `#[serde(default)]`) leaves the value as is.
pub fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad(body: &str) -> ApiError {
        parse_strict(body.as_bytes()).unwrap_err()
    }

    #[test]
    fn one_value_only() {
        assert_eq!(
            parse_strict(b" {\"a\": [1, 2.5, null]} \n").unwrap()["a"][1],
            2.5
        );
        for body in ["{}{}", "{\"a\":1}\n{\"a\":2}\n", "[] x", "1 2"] {
            let e = bad(body);
            assert_eq!(e.status.as_u16(), 400, "{body}");
            assert!(
                e.detail.contains("after the first JSON value"),
                "{}",
                e.detail
            );
        }
        assert_eq!(bad("{").status.as_u16(), 400);
        assert_eq!(bad("").status.as_u16(), 400);
    }

    #[test]
    fn duplicate_keys_are_named_by_path() {
        let e = bad(r#"{"type":"call_ended","call_id":"c","type":"call_initiated"}"#);
        assert_eq!(e.status.as_u16(), 400);
        assert_eq!(e.field.as_deref(), Some("type"));
        let e = bad(r#"{"events":[{"a":1},{"b":{"c":1,"c":2}}]}"#);
        assert_eq!(e.field.as_deref(), Some("events[1].b.c"));
        // The same key in different objects is fine.
        parse_strict(br#"{"a":{"a":1},"b":[{"a":1},{"a":2}]}"#).unwrap();
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        inner: Option<Inner>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        n: u32,
    }

    #[test]
    fn typed_errors_name_the_field() {
        let f = |body: &str| {
            let e = parse_json::<Body>(body.as_bytes()).unwrap_err();
            assert_eq!(e.status.as_u16(), 422, "{body}");
            e.field
        };
        assert_eq!(f(r#"{"nam":"x","name":"y"}"#).as_deref(), Some("nam"));
        assert_eq!(f(r#"{}"#).as_deref(), Some("name"));
        assert_eq!(
            f(r#"{"name":"y","inner":{"n":1,"m":2}}"#).as_deref(),
            Some("inner.m")
        );
        assert_eq!(
            f(r#"{"name":"y","inner":{"n":-1}}"#).as_deref(),
            Some("inner.n")
        );
        assert_eq!(f(r#"{"name":"y","inner":{}}"#).as_deref(), Some("inner.n"));
        assert_eq!(
            f(r#"{"name":"y","inner":{"inner":1,"n":1}}"#).as_deref(),
            Some("inner.inner")
        );
    }
}
