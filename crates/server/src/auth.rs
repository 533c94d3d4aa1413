//! API-key authentication (`X-API-Key`). Keys are 256-bit random strings (`sb_` + 64 hex
//! digits) stored as SHA-256; a verified key is cached in memory so the hot path makes no query.
//! The tenant comes from the key: handlers never take a tenant id from the client.

pub mod password;
pub mod throttle;
pub mod tokens;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use rand::RngCore;

use switchboard_store::{api_key_digest, ApiKeyInfo, Store, StoreError};

use crate::app::AppState;
use crate::error::ApiError;

/// Every scope; a key with `*` has them all.
pub const SCOPES: [&str; 9] = [
    "events:write",
    "calls:read",
    "queues:read",
    "queues:write",
    "tenant:read",
    "tenant:write",
    "alerts:read",
    "reports:read",
    "stream:read",
];

/// A new random API key: `sb_` followed by 64 hex digits.
pub fn generate_key() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("sb_{hex}")
}

/// Verified keys by SHA-256 digest.
#[derive(Default, Clone)]
pub struct KeyCache(Arc<RwLock<HashMap<[u8; 32], Arc<ApiKeyInfo>>>>);

impl KeyCache {
    /// Resolves a presented key. Errors: 401 when unknown, 503/500 when the store fails.
    pub async fn verify(&self, store: &Store, key: &str) -> Result<Arc<ApiKeyInfo>, ApiError> {
        let digest = api_key_digest(key);
        if let Some(k) = self.0.read().expect("key cache").get(&digest) {
            return Ok(k.clone());
        }
        match store.api_key_by_digest(&digest).await {
            Ok(info) => {
                let info = Arc::new(info);
                self.0
                    .write()
                    .expect("key cache")
                    .insert(digest, info.clone());
                Ok(info)
            }
            Err(StoreError::NotFound) => Err(ApiError::unauthorized("the API key is not valid")),
            Err(e) => Err(e.into()),
        }
    }
}

/// The authenticated caller: its tenant and key.
#[derive(Clone)]
pub struct Auth {
    /// The key's tenant: every read and write is scoped to it.
    pub tenant_id: switchboard_core::TenantId,
    /// The verified key's stored facts (name, scopes, …).
    pub key: Arc<ApiKeyInfo>,
}

impl Auth {
    /// Errors: 403 unless the key has `scope` (or `*`).
    pub fn require(&self, scope: &str) -> Result<(), ApiError> {
        if self.key.scopes.iter().any(|s| s == "*" || s == scope) {
            Ok(())
        } else {
            Err(ApiError::forbidden(scope))
        }
    }

    /// Authenticates a presented key.
    pub async fn from_key(state: &AppState, key: Option<&str>) -> Result<Auth, ApiError> {
        let key =
            key.ok_or_else(|| ApiError::unauthorized("send the API key in the X-API-Key header"))?;
        let info = state.keys.verify(&state.store, key).await?;
        tracing::Span::current().record("tenant_id", tracing::field::display(info.tenant_id));
        Ok(Auth {
            tenant_id: info.tenant_id,
            key: info,
        })
    }
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let key = parts.headers.get("x-api-key").and_then(|v| v.to_str().ok());
        Auth::from_key(state, key).await
    }
}
