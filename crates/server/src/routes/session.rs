//! Sessions: `POST /api/v1/auth/login`, `/auth/refresh`, `/auth/logout`, `/auth/password`
//! and `GET /api/v1/auth/me`.
//!
//! Login answers a JWT access token (15 min) and an opaque refresh token (30 days, stored
//! hashed, rotated on every use; a rotated token presented again revokes its whole family).
//! Failed logins are counted per account and per client address: after 5 in 15 minutes,
//! 429 with `Retry-After`, whether or not the account exists.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use switchboard_core::{format_rfc3339, Role, Scope};
use switchboard_store::{hash_api_key, NewRefreshToken, Rotation, StoreError, User, UserPatch};

use crate::app::AppState;
use crate::auth::tokens::ACCESS_TTL_S;
use crate::auth::{generate_refresh_token, password, Credential, Principal};
use crate::error::ApiError;
use crate::extract::ApiJson;

/// Refresh-token lifetime, ms (30 days).
pub const REFRESH_TTL_MS: i64 = 30 * 86_400 * 1000;

/// The client's address (the TCP peer), when the server knows it.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

/// `POST /api/v1/auth/login` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// E-mail address (case-insensitive).
    pub email: String,
    /// Password.
    pub password: String,
    /// Tenant slug; needed only when the address has accounts in several tenants.
    pub tenant: Option<String>,
}

/// Tokens of a session.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    /// JWT (HS256 or EdDSA) with claims `sub`, `tid`, `role`, `exp`, `iat`, `jti`; send as
    /// `Authorization: Bearer …`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds the access token is valid (900).
    pub expires_in: i64,
    /// Opaque; exchange it at `/auth/refresh` for new tokens (once: it is rotated).
    pub refresh_token: String,
    /// Seconds the refresh token is valid (30 days).
    pub refresh_expires_in: i64,
}

/// `POST /api/v1/auth/refresh` and `/auth/logout` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The refresh token.
    pub refresh_token: String,
}

/// `POST /api/v1/auth/password` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    /// The password now.
    pub current_password: String,
    /// The new one: at least 12 characters, not common.
    pub new_password: String,
}

/// Who the caller is.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    /// `user` or `api_key`.
    pub kind: &'static str,
    /// The user's or key's id.
    pub id: uuid::Uuid,
    /// The credential's tenant.
    pub tenant_id: uuid::Uuid,
    /// The user's e-mail, or the key's name.
    pub name: String,
    /// The user's role (users only).
    pub role: Option<Role>,
    /// What the caller may do.
    pub scopes: Vec<Scope>,
    /// When the credential expires (RFC 3339), if it does.
    pub expires_at: Option<String>,
}

/// Counts a password attempt under `keys` before it is checked ([`LoginThrottle::begin`]).
///
/// Errors: 429 with `Retry-After` when any key is locked out.
///
/// [`LoginThrottle::begin`]: crate::auth::throttle::LoginThrottle::begin
fn begin_attempt(s: &AppState, keys: &[&str], now: i64) -> Result<(), ApiError> {
    s.auth.throttle.begin(keys, now).map_err(|secs| {
        ApiError::too_many_requests(
            format!("too many failed password attempts; try again in {secs} s"),
            u32::try_from(secs).unwrap_or(u32::MAX),
        )
    })
}

const BAD_LOGIN: &str = "the e-mail address or the password is wrong";

async fn issue(s: &AppState, u: &User) -> Result<TokenResponse, ApiError> {
    let now = s.engine.now_ms();
    let (access, _) = s
        .auth
        .tokens
        .issue(u.id, u.tenant_id.0, u.role, now.div_euclid(1000));
    let refresh = generate_refresh_token();
    s.store
        .create_refresh_token(
            &NewRefreshToken {
                token_hash: hash_api_key(&refresh),
                user_id: u.id,
                tenant_id: u.tenant_id,
                expires_at: now + REFRESH_TTL_MS,
            },
            now,
        )
        .await?;
    Ok(TokenResponse {
        access_token: access,
        token_type: "Bearer",
        expires_in: ACCESS_TTL_S,
        refresh_token: refresh,
        refresh_expires_in: REFRESH_TTL_MS / 1000,
    })
}

/// Logs in with e-mail and password.
///
/// The attempt is counted as a failure before the password is checked (and taken back if it
/// was right), per account and per client address, so concurrent attempts cannot all pass
/// the throttle; the account is the user when one exists (naming its tenant or not), else the
/// address typed. Accounts of deactivated tenants do not count.
#[utoipa::path(post, path = "/api/v1/auth/login", operation_id = "login", tag = "auth",
    request_body = LoginRequest,
    responses((status = 200, body = TokenResponse), (status = 401, description = "Wrong e-mail or password"),
        (status = 422, description = "Invalid field, or the address has accounts in several tenants: name one"),
        (status = 429, description = "Too many failed logins (see Retry-After)"),
        (status = 503, description = "Too many password checks at once (see Retry-After)")),
    security(()))]
pub async fn login(
    State(s): State<AppState>,
    ClientAddr(addr): ClientAddr,
    ApiJson(b): ApiJson<LoginRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    let email = b.email.trim().to_lowercase();
    if email.contains('\0') || email.chars().count() > 320 {
        return Err(ApiError::invalid("email", "not an e-mail address"));
    }
    let tenant = match b.tenant.as_deref().map(str::to_lowercase) {
        None => None,
        Some(slug) if slug.contains('\0') => Some(None),
        Some(slug) => match s.store.tenant_by_slug(&slug).await {
            Ok(t) => Some(Some(t.id)),
            Err(StoreError::NotFound) => Some(None),
            Err(e) => return Err(e.into()),
        },
    };
    let mut candidates = match tenant {
        Some(None) => Vec::new(),
        Some(Some(t)) => s.store.users_by_email(&email, Some(t)).await?,
        None => s.store.users_by_email(&email, None).await?,
    };
    candidates.retain(|(u, _)| s.auth.directory.is_tenant_active(u.tenant_id));
    if candidates.len() > 1 {
        // Answered before any password is checked: the answer never depends on it.
        return Err(ApiError::invalid(
            "tenant",
            "this e-mail address has accounts in several tenants: send the tenant's slug as `tenant`",
        ));
    }
    let account = match candidates.first() {
        Some((u, _)) => format!("user:{}", u.id),
        None => format!("email:{email}"),
    };
    let addr_key = addr.map(|a| format!("addr:{a}"));
    let mut keys = vec![account.as_str()];
    keys.extend(addr_key.as_deref());
    let now = s.engine.now_ms();
    let throttle = &s.auth.throttle;
    begin_attempt(&s, &keys, now)?;
    let pw = b.password;
    let user = s
        .auth
        .password_task(move || match candidates.pop() {
            Some((u, hash)) => password::verify(&pw, &hash).then_some(u),
            None => {
                password::verify_dummy(&pw);
                None
            }
        })
        .await
        .inspect_err(|_| throttle.abandoned(&keys, now))?;
    match user {
        Some(u) if u.active => {
            throttle.succeeded(&account, &keys[1..], now);
            Ok(Json(issue(&s, &u).await?))
        }
        // The failure was counted when the attempt began.
        _ => Err(ApiError::unauthorized(BAD_LOGIN)),
    }
}

/// Exchanges a refresh token for new tokens. The token presented is used up; presenting it
/// again revokes every token of its login (reuse means it was stolen). A token of a
/// deactivated user or tenant is refused without being used up, so it works again after a
/// reactivation.
#[utoipa::path(post, path = "/api/v1/auth/refresh", operation_id = "refresh", tag = "auth",
    request_body = RefreshRequest,
    responses((status = 200, body = TokenResponse),
        (status = 401, description = "Unknown, expired, revoked or reused refresh token")),
    security(()))]
pub async fn refresh(
    State(s): State<AppState>,
    ApiJson(b): ApiJson<RefreshRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    let now = s.engine.now_ms();
    let presented = hash_api_key(&b.refresh_token);
    let invalid =
        || ApiError::unauthorized("the refresh token is not valid (unknown, expired or revoked)");
    let owner = s
        .store
        .refresh_token_user(&presented)
        .await?
        .ok_or_else(invalid)?;
    let u = match s.store.user(None, owner).await {
        Ok(u) => u,
        Err(StoreError::NotFound) => return Err(invalid()),
        Err(e) => return Err(e.into()),
    };
    if !u.active || !s.auth.directory.is_tenant_active(u.tenant_id) {
        return Err(ApiError::unauthorized(
            "the user or its tenant is deactivated",
        ));
    }
    let next = generate_refresh_token();
    let r = s
        .store
        .rotate_refresh_token(&presented, &hash_api_key(&next), now + REFRESH_TTL_MS, now)
        .await?;
    match r {
        Rotation::Rotated { .. } => {}
        Rotation::Reused => {
            tracing::warn!(user = %u.id, "a used refresh token was presented again; its session is revoked");
            return Err(ApiError::unauthorized(
                "this refresh token was already used: the session is revoked, log in again",
            ));
        }
        Rotation::Invalid => return Err(invalid()),
    }
    let (access, _) = s
        .auth
        .tokens
        .issue(u.id, u.tenant_id.0, u.role, now.div_euclid(1000));
    Ok(Json(TokenResponse {
        access_token: access,
        token_type: "Bearer",
        expires_in: ACCESS_TTL_S,
        refresh_token: next,
        refresh_expires_in: REFRESH_TTL_MS / 1000,
    }))
}

/// Ends a session: every refresh token of its login is revoked (access tokens already issued
/// end within their 15 minutes). 204, also for an unknown token.
#[utoipa::path(post, path = "/api/v1/auth/logout", operation_id = "logout", tag = "auth",
    request_body = RefreshRequest,
    responses((status = 204, description = "Logged out")),
    security(()))]
pub async fn logout(
    State(s): State<AppState>,
    ApiJson(b): ApiJson<RefreshRequest>,
) -> Result<StatusCode, ApiError> {
    s.store
        .revoke_refresh_family(&hash_api_key(&b.refresh_token), s.engine.now_ms())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Who the caller is: a user (role) or a key, its tenant and scopes.
#[utoipa::path(get, path = "/api/v1/auth/me", operation_id = "me", tag = "auth",
    responses((status = 200, body = Me), (status = 401, description = "Missing or invalid credential")),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn me(p: Principal) -> Json<Me> {
    let (kind, id, name, role, expires_at) = match &p.credential {
        Credential::User {
            id,
            email,
            role,
            expires_at_s,
        } => (
            "user",
            *id,
            email.clone(),
            Some(*role),
            Some(format_rfc3339(expires_at_s.saturating_mul(1000))),
        ),
        Credential::Key {
            id,
            name,
            expires_at_ms,
            ..
        } => (
            "api_key",
            *id,
            name.clone(),
            None,
            expires_at_ms.map(format_rfc3339),
        ),
    };
    Json(Me {
        kind,
        id,
        tenant_id: p.tenant_id.0,
        name,
        role,
        scopes: p.scopes.iter().collect(),
        expires_at,
    })
}

/// Changes the caller's own password (users only). Every refresh token of the user is
/// revoked, this session's too: every client logs in again. Wrong current passwords count
/// towards the login throttle of the account. 204.
#[utoipa::path(post, path = "/api/v1/auth/password", operation_id = "changePassword", tag = "auth",
    request_body = PasswordChange,
    responses((status = 204, description = "Changed"),
        (status = 422, description = "Wrong current password (`current_password`), or the new one is too short or too common (`new_password`)"),
        (status = 429, description = "Too many wrong passwords (see Retry-After)")),
    security(("bearer" = [])))]
pub async fn change_password(
    State(s): State<AppState>,
    ClientAddr(addr): ClientAddr,
    p: Principal,
    ApiJson(b): ApiJson<PasswordChange>,
) -> Result<StatusCode, ApiError> {
    let Credential::User { id, .. } = &p.credential else {
        return Err(ApiError::forbidden_because(
            "an API key has no password; log in as the user",
        ));
    };
    let (u, hash) = s.store.user_with_hash(p.tenant_id, *id).await?;
    let account = format!("user:{}", u.id);
    let addr_key = addr.map(|a| format!("addr:{a}"));
    let mut keys = vec![account.as_str()];
    keys.extend(addr_key.as_deref());
    let now = s.engine.now_ms();
    begin_attempt(&s, &keys, now)?;
    let inputs = [u.email.clone(), u.display_name.clone()];
    let new_hash = s
        .auth
        .password_task(move || {
            if !password::verify(&b.current_password, &hash) {
                return Err(ApiError::invalid(
                    "current_password",
                    "the current password is wrong",
                ));
            }
            let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
            password::check_policy(&b.new_password, &refs)
                .map_err(|e| ApiError::invalid("new_password", e))?;
            Ok(password::hash(&b.new_password))
        })
        .await
        .inspect_err(|_| s.auth.throttle.abandoned(&keys, now))?;
    let new_hash = match new_hash {
        Ok(h) => h,
        Err(e) if e.field.as_deref() == Some("current_password") => return Err(e),
        Err(e) => {
            s.auth.throttle.succeeded(&account, &keys[1..], now);
            return Err(e);
        }
    };
    s.auth.throttle.succeeded(&account, &keys[1..], now);
    let patch = UserPatch {
        password_hash: Some(new_hash),
        ..Default::default()
    };
    s.store
        .update_user(Some(p.tenant_id), u.id, &patch, None, &p.actor(), now)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
