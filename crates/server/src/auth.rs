//! Authentication and authorisation.
//!
//! One extractor resolves the caller ([`Principal`]): a person by `Authorization: Bearer
//! <JWT>` (an access token of [`tokens`]), or a machine by `X-API-Key`. Each route declares the
//! scope it needs in its type, [`Authorized<perm::CallsRead>`], so a route cannot forget it:
//! the extractor refuses a missing, expired, tampered or wrongly signed credential with 401 (and
//! `WWW-Authenticate`), a missing scope with 403. The tenant comes from the credential; another
//! tenant's ids are simply not found (404). `docs/security.md` has the route × role table.
//!
//! Every check runs in memory ([`directory`]): revocation, expiry and deactivation take effect on
//! the next request, and an unknown key costs no database query.

pub mod directory;
pub mod password;
pub mod throttle;
pub mod tokens;

use std::marker::PhantomData;
use std::ops::Deref;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use rand::RngCore;
use uuid::Uuid;

use switchboard_core::{Role, Scope, ScopeSet, TenantId};
use switchboard_store::{Actor, ActorKind};

use crate::app::AppState;
use crate::error::ApiError;

/// What authentication shares: the credential directory, the token keys, login throttling.
#[derive(Clone)]
pub struct AuthState {
    /// Keys, users and deactivated tenants, in memory.
    pub directory: directory::Directory,
    /// Signs and verifies access tokens.
    pub tokens: std::sync::Arc<tokens::TokenKeys>,
    /// Failed logins per account and per client address.
    pub throttle: throttle::LoginThrottle,
    /// Password hashing and checking at once (argon2id takes ~19 MiB and tens of ms each):
    /// beyond it, 503 + `Retry-After` rather than unbounded memory.
    pub password_work: std::sync::Arc<tokio::sync::Semaphore>,
}

/// Password hashes computed or checked at once: twice the cores.
pub fn password_work_permits() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get()) * 2
}

impl AuthState {
    /// Runs `f` (argon2id work) on the blocking pool, at most [`password_work_permits`] at once.
    ///
    /// Errors: 503 + `Retry-After: 1` when that many are already running.
    pub async fn password_task<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let permit = self
            .password_work
            .clone()
            .try_acquire_owned()
            .map_err(|_| {
                ApiError::unavailable_retry("too many password checks in progress; retry", 1)
            })?;
        tokio::task::spawn_blocking(move || {
            let out = f();
            drop(permit);
            out
        })
        .await
        .map_err(ApiError::internal)
    }
}

/// Failed logins (per account, and per client address) that lock further attempts out.
pub const LOGIN_MAX_FAILURES: usize = 5;
/// The window those failures are counted in, ms (15 minutes).
pub const LOGIN_WINDOW_MS: i64 = 15 * 60 * 1000;

/// A new random API key: `sb_` followed by 64 hex digits (256 bits).
pub fn generate_key() -> String {
    format!("sb_{}", random_hex())
}

/// A new random refresh token: `sbr_` followed by 64 hex digits (256 bits).
pub fn generate_refresh_token() -> String {
    format!("sbr_{}", random_hex())
}

fn random_hex() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    switchboard_store::hex(&b)
}

/// How the caller proved who it is.
#[derive(Debug, Clone)]
pub enum Credential {
    /// A person, by access token.
    User {
        /// User id.
        id: Uuid,
        /// E-mail address (for the audit log).
        email: String,
        /// Current role (read from the directory, not the token: a demotion applies at once).
        role: Role,
        /// The access token's expiry, seconds since the epoch.
        expires_at_s: i64,
    },
    /// A machine, by API key.
    Key {
        /// Key id.
        id: Uuid,
        /// Key name (for the audit log).
        name: String,
        /// The key's expiry, epoch ms.
        expires_at_ms: Option<i64>,
        /// The presented key's SHA-256, to tell whether it is still valid (streams).
        digest: [u8; 32],
    },
}

/// The authenticated caller: its tenant, its scopes and how it authenticated.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The credential's tenant: every read and write is scoped to it.
    pub tenant_id: TenantId,
    /// What the caller may do.
    pub scopes: ScopeSet,
    /// User or key.
    pub credential: Credential,
}

impl Principal {
    /// Errors: 403 naming `scope` unless the caller holds it.
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.scopes.contains(scope) {
            Ok(())
        } else {
            Err(ApiError::forbidden(scope.as_str()))
        }
    }

    /// The user's role (`None` for a key).
    pub fn role(&self) -> Option<Role> {
        match &self.credential {
            Credential::User { role, .. } => Some(*role),
            Credential::Key { .. } => None,
        }
    }

    /// True for a platform admin: the only caller who acts across tenants.
    pub fn is_platform_admin(&self) -> bool {
        self.role() == Some(Role::PlatformAdmin)
    }

    /// The tenant a request acts on: `requested` (a `tenant_id` in a body or query) is allowed
    /// only to platform admins; anyone else may name only their own tenant.
    ///
    /// Errors: 404 when another caller names another tenant (as if it did not exist).
    pub fn target_tenant(&self, requested: Option<TenantId>) -> Result<TenantId, ApiError> {
        match requested {
            None => Ok(self.tenant_id),
            Some(t) if t == self.tenant_id || self.is_platform_admin() => Ok(t),
            Some(_) => Err(ApiError::not_found("no such tenant").with_field("tenant_id")),
        }
    }

    /// The tenant filter of a list: platform admins see every tenant unless they name one;
    /// anyone else sees their own (naming another is a 404).
    pub fn tenant_filter(&self, requested: Option<TenantId>) -> Result<Option<TenantId>, ApiError> {
        if self.is_platform_admin() {
            Ok(requested)
        } else {
            self.target_tenant(requested).map(Some)
        }
    }

    /// Who the audit log names for this caller's changes.
    pub fn actor(&self) -> Actor {
        match &self.credential {
            Credential::User { id, email, .. } => Actor {
                kind: ActorKind::User,
                id: Some(*id),
                name: email.clone(),
            },
            Credential::Key { id, name, .. } => Actor {
                kind: ActorKind::ApiKey,
                id: Some(*id),
                name: name.clone(),
            },
        }
    }

    /// Resolves the credential of a request: `Authorization: Bearer <JWT>`, else `X-API-Key`,
    /// else `query_key` (`?api_key=` / `?access_token=` of the stream, which browsers open
    /// without headers).
    ///
    /// Errors: 401 (with `WWW-Authenticate`) when none is given or it is not valid; 429 when a
    /// key is over its rate limit.
    pub async fn resolve(
        state: &AppState,
        headers: &HeaderMap,
        query: QueryCredential<'_>,
    ) -> Result<Principal, ApiError> {
        let bearer = headers
            .get(axum::http::header::AUTHORIZATION)
            .map(|v| {
                v.to_str().map_err(|_| {
                    ApiError::unauthorized("the Authorization header is not visible ASCII")
                })
            })
            .transpose()?
            .map(|v| {
                let (scheme, rest) = v.split_once(' ').unwrap_or((v, ""));
                if scheme.eq_ignore_ascii_case("bearer") {
                    Ok(rest.trim())
                } else {
                    Err(ApiError::unauthorized(
                        "the Authorization header must be `Bearer <access token>`",
                    ))
                }
            })
            .transpose()?
            .or(query.access_token);
        let p = if let Some(token) = bearer {
            state
                .auth
                .directory
                .user_principal(&state.auth.tokens, token)
                .await?
        } else {
            let key = headers
                .get("x-api-key")
                .and_then(|v| v.to_str().ok())
                .or(query.api_key)
                .ok_or_else(|| {
                    ApiError::unauthorized(
                        "send an access token (Authorization: Bearer …) or an API key (X-API-Key)",
                    )
                })?;
            state.auth.directory.key_principal(key).await?
        };
        tracing::Span::current().record("tenant_id", tracing::field::display(p.tenant_id));
        Ok(p)
    }

    /// Whether the credential still holds now (not revoked, expired or deactivated): checked
    /// by long-lived streams. Errors: 401 naming why not.
    pub async fn still_valid(&self, state: &AppState) -> Result<(), ApiError> {
        state.auth.directory.still_valid(self).await
    }
}

/// The header the call-seller platform's Asterisk dialplan sends its API key in (issue 7 item
/// 7). Only the compatibility routes (`/api/internal/…`) read it, through
/// [`Principal::resolve_internal`]; everywhere else it is ignored like any other header.
pub const INTERNAL_TOKEN_HEADER: &str = "x-internal-api-token";

impl Principal {
    /// [`Principal::resolve`] for the compatibility routes: when neither `Authorization` nor
    /// `X-API-Key` is sent, an API key in [`INTERNAL_TOKEN_HEADER`] is taken instead.
    ///
    /// Errors: as [`Principal::resolve`].
    pub async fn resolve_internal(
        state: &AppState,
        headers: &HeaderMap,
    ) -> Result<Principal, ApiError> {
        let standard = headers.contains_key(axum::http::header::AUTHORIZATION)
            || headers.contains_key("x-api-key");
        match headers.get(INTERNAL_TOKEN_HEADER).filter(|_| !standard) {
            Some(v) => {
                let key = v.to_str().map_err(|_| {
                    ApiError::unauthorized("the X-Internal-API-Token header is not visible ASCII")
                })?;
                let p = state.auth.directory.key_principal(key).await?;
                tracing::Span::current().record("tenant_id", tracing::field::display(p.tenant_id));
                Ok(p)
            }
            None => Principal::resolve(state, headers, QueryCredential::default()).await,
        }
    }
}

/// A credential sent in the query string (the stream's `?api_key=` or `?access_token=`).
#[derive(Debug, Default, Clone, Copy)]
pub struct QueryCredential<'a> {
    /// `?api_key=`.
    pub api_key: Option<&'a str>,
    /// `?access_token=`.
    pub access_token: Option<&'a str>,
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    /// Any authenticated caller, whatever its scopes (`/auth/me`).
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Principal::resolve(state, &parts.headers, QueryCredential::default()).await
    }
}

/// A scope a route requires, named by a type of [`perm`].
pub trait Permission: Send + Sync + 'static {
    /// The scope.
    const SCOPE: Scope;
}

/// Marker types of the scopes, for [`Authorized`].
pub mod perm {
    use super::{Permission, Scope};

    macro_rules! perms {
        ($($name:ident),*) => {$(
            #[doc = concat!("Requires [`Scope::", stringify!($name), "`].")]
            #[derive(Debug, Clone, Copy)]
            pub struct $name;
            impl Permission for $name {
                const SCOPE: Scope = Scope::$name;
            }
        )*};
    }

    perms!(
        EventsWrite,
        CallsRead,
        QueuesRead,
        QueuesWrite,
        TenantRead,
        TenantWrite,
        AlertsRead,
        ReportsRead,
        StreamRead,
        UsersRead,
        UsersWrite,
        KeysRead,
        KeysWrite,
        AuditRead,
        AgentsRead,
        AgentsWrite,
        RoutingRead,
        RoutingWrite,
        Telephony,
        TenantsManage
    );
}

/// An authenticated caller holding the scope `P`: the extractor every protected route takes.
#[derive(Debug, Clone)]
pub struct Authorized<P: Permission>(pub Principal, PhantomData<P>);

impl<P: Permission> Authorized<P> {
    /// Checks `p` holds `P::SCOPE`. Errors: 403.
    pub fn check(p: Principal) -> Result<Self, ApiError> {
        p.require(P::SCOPE)?;
        Ok(Authorized(p, PhantomData))
    }
}

impl<P: Permission> Deref for Authorized<P> {
    type Target = Principal;
    fn deref(&self) -> &Principal {
        &self.0
    }
}

impl<P: Permission> FromRequestParts<AppState> for Authorized<P> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Authorized::check(Principal::from_request_parts(parts, state).await?)
    }
}
