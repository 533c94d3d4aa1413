//! Users: `POST/GET /api/v1/users`, `GET/PATCH/DELETE /api/v1/users/{id}`. DELETE
//! deactivates (the user's tokens stop working on the next request; `PATCH {"active": true}`
//! reactivates). Nobody grants a role above their own, changes a user above their own role,
//! or changes their own role or active flag (another admin must).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use switchboard_core::{format_rfc3339, Role, TenantId};
use switchboard_store::{NewUser, StoreError, User, UserFilter, UserPatch};

use crate::app::AppState;
use crate::auth::{password, perm, Authorized, Credential, Principal};
use crate::conditional::{etag_header, IfMatch};
use crate::error::ApiError;
use crate::extract::{ApiJson, Params};
use crate::routes::{validate, Page};

/// A user (never the password).
#[derive(Debug, Serialize, ToSchema)]
pub struct UserDto {
    /// User id (UUIDv7).
    pub id: uuid::Uuid,
    /// The user's tenant.
    pub tenant_id: uuid::Uuid,
    /// E-mail address, lower-case; unique in the tenant.
    pub email: String,
    /// Name shown in the console.
    pub display_name: String,
    /// What the user may do.
    pub role: Role,
    /// False once deactivated.
    pub active: bool,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

fn dto(u: User) -> UserDto {
    UserDto {
        id: u.id,
        tenant_id: u.tenant_id.0,
        email: u.email,
        display_name: u.display_name,
        role: u.role,
        active: u.active,
        created_at: format_rfc3339(u.created_at),
        updated_at: format_rfc3339(u.updated_at),
    }
}

/// `POST /api/v1/users` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserCreate {
    /// E-mail address (stored lower-case).
    pub email: String,
    /// Name shown in the console, 1–200 characters.
    pub display_name: String,
    /// `platform_admin`, `tenant_admin`, `supervisor` or `agent`.
    pub role: Role,
    /// At least 12 characters, not common.
    pub password: String,
    /// The tenant to create the user in (platform admins; default: the caller's).
    pub tenant_id: Option<uuid::Uuid>,
}

/// `PATCH /api/v1/users/{id}` body: the fields to change.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserUpdate {
    /// New e-mail address.
    pub email: Option<String>,
    /// New display name.
    pub display_name: Option<String>,
    /// New role.
    pub role: Option<Role>,
    /// Reactivate (`true`) or deactivate (`false`).
    pub active: Option<bool>,
    /// A new password (an admin's reset); ends the user's sessions.
    pub password: Option<String>,
}

/// Lower-cases and checks an e-mail address (RFC 5322 `addr-spec`, via `email_address`).
///
/// Errors: 422 on `email`.
pub fn normalise_email(v: &str) -> Result<String, ApiError> {
    let e = v.trim().to_lowercase();
    // `localhost` addresses (the bootstrap admin's) are valid addr-specs too.
    if e.chars().count() > 254 || e.contains('\0') || !email_address::EmailAddress::is_valid(&e) {
        return Err(ApiError::invalid(
            "email",
            format!("`{v}` is not an e-mail address"),
        ));
    }
    Ok(e)
}

/// May `who` give `role` to a user, or change a user who has it? Users: only a role at or below
/// their own, and only admins. Keys (`users:write`): only a role whose scopes the key holds all
/// of, so a key cannot make (or take over, by a password reset) a user stronger than itself.
fn may_grant(who: &Principal, role: Role) -> bool {
    match who.role() {
        Some(r) => r.may_grant(role),
        None => role != Role::PlatformAdmin && who.scopes.covers(role.scopes()),
    }
}

fn check_grant(who: &Principal, role: Role) -> Result<(), ApiError> {
    if may_grant(who, role) {
        Ok(())
    } else {
        Err(ApiError::forbidden_because(format!(
            "you may not give or change the role `{role}`"
        )))
    }
}

/// Checks the password policy (the user's e-mail and name count as easy guesses) and hashes
/// it, on the bounded password pool. Errors: 422 on `password`; 503 when the pool is full.
async fn hash_checked(s: &AppState, pw: String, inputs: Vec<String>) -> Result<String, ApiError> {
    s.auth
        .password_task(move || {
            let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
            password::check_policy(&pw, &refs).map_err(|e| ApiError::invalid("password", e))?;
            Ok(password::hash(&pw))
        })
        .await?
}

fn user_id(id: &str) -> Result<uuid::Uuid, ApiError> {
    id.parse().map_err(|_| ApiError::not_found("no such user"))
}

fn not_found(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::not_found("no such user"),
        e => ApiError::from(e).with_field_if_conflict("email"),
    }
}

/// Creates a user.
#[utoipa::path(post, path = "/api/v1/users", operation_id = "createUser", tag = "users",
    request_body = UserCreate,
    responses((status = 201, body = UserDto), (status = 403, description = "Role above the caller's"),
        (status = 404, description = "No such tenant"), (status = 409, description = "E-mail taken in the tenant"),
        (status = 422, description = "Invalid field (e-mail, weak password)")),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn create_user(
    State(s): State<AppState>,
    auth: Authorized<perm::UsersWrite>,
    ApiJson(b): ApiJson<UserCreate>,
) -> Result<(StatusCode, HeaderMap, Json<UserDto>), ApiError> {
    let tenant = auth.target_tenant(b.tenant_id.map(TenantId))?;
    let email = normalise_email(&b.email)?;
    validate::name("display_name", &b.display_name, 200)?;
    check_grant(&auth, b.role)?;
    if tenant != auth.tenant_id {
        s.store.tenant(tenant).await.map_err(|e| match e {
            StoreError::NotFound => ApiError::not_found("no such tenant").with_field("tenant_id"),
            e => e.into(),
        })?;
    }
    let hash = hash_checked(&s, b.password, vec![email.clone(), b.display_name.clone()]).await?;
    let u = NewUser {
        email,
        display_name: b.display_name,
        role: b.role,
        password_hash: hash,
    };
    let u = s
        .store
        .create_user(tenant, &u, &auth.actor(), s.engine.now_ms())
        .await
        .map_err(not_found)?;
    Ok((StatusCode::CREATED, etag_header(u.version), Json(dto(u))))
}

/// Lists users in creation order. Filters: `role`, `active`, `tenant_id` (platform admins; they
/// see every tenant without it); `limit` 1–500 (default 50), `cursor` from the previous page.
#[utoipa::path(get, path = "/api/v1/users", operation_id = "listUsers", tag = "users",
    params(("role" = Option<String>, Query,), ("active" = Option<bool>, Query,), ("tenant_id" = Option<String>, Query,),
        ("limit" = Option<u64>, Query,), ("cursor" = Option<String>, Query,)),
    responses((status = 200, body = Page<UserDto>), (status = 400, description = "Bad parameter")),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn list_users(
    State(s): State<AppState>,
    auth: Authorized<perm::UsersRead>,
    p: Params,
) -> Result<Json<Page<UserDto>>, ApiError> {
    let f = UserFilter {
        tenant_id: auth.tenant_filter(p.uuid("tenant_id")?.map(TenantId))?,
        role: p.parsed(
            "role",
            |v| v.parse().ok(),
            "one of platform_admin, tenant_admin, supervisor, agent",
        )?,
        active: p.bool("active")?,
        after: p.uuid_cursor()?,
        limit: p.limit()?,
    };
    let rows = s.store.users(&f).await?;
    Ok(Json(Page::of(rows, f.limit, |u| u.id.to_string(), dto)))
}

async fn find(s: &AppState, who: &Principal, id: &str) -> Result<User, ApiError> {
    let scope = who.tenant_filter(None)?;
    s.store.user(scope, user_id(id)?).await.map_err(not_found)
}

/// One user.
#[utoipa::path(get, path = "/api/v1/users/{id}", operation_id = "getUser", tag = "users",
    params(("id" = String, Path,)),
    responses((status = 200, body = UserDto), (status = 404, description = "No such user")),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn get_user(
    State(s): State<AppState>,
    auth: Authorized<perm::UsersRead>,
    Path(id): Path<String>,
) -> Result<(HeaderMap, Json<UserDto>), ApiError> {
    let u = find(&s, &auth, &id).await?;
    Ok((etag_header(u.version), Json(dto(u))))
}

async fn change(
    s: &AppState,
    who: &Principal,
    id: &str,
    b: UserUpdate,
    if_match: &IfMatch,
) -> Result<User, ApiError> {
    let cur = find(s, who, id).await?;
    if_match.check(cur.version)?;
    check_grant(who, cur.role)?;
    if let Some(r) = b.role {
        check_grant(who, r)?;
    }
    let own = matches!(&who.credential, Credential::User { id, .. } if *id == cur.id);
    if own && (b.role.is_some_and(|r| r != cur.role) || b.active == Some(false)) {
        return Err(ApiError::conflict(
            "you cannot change your own role or deactivate yourself; ask another admin",
        ));
    }
    if own && b.password.is_some() {
        // A token alone must not be enough to take the account over for good.
        return Err(ApiError::conflict(
            "change your own password with POST /api/v1/auth/password (it asks for the current one)",
        )
        .with_field("password"));
    }
    let email = b.email.as_deref().map(normalise_email).transpose()?;
    if let Some(d) = &b.display_name {
        validate::name("display_name", d, 200)?;
    }
    let password_hash = match b.password {
        Some(pw) => Some(
            hash_checked(
                s,
                pw,
                vec![
                    email.clone().unwrap_or(cur.email.clone()),
                    b.display_name.clone().unwrap_or(cur.display_name.clone()),
                ],
            )
            .await?,
        ),
        None => None,
    };
    let patch = UserPatch {
        email,
        display_name: b.display_name,
        role: b.role,
        active: b.active,
        password_hash,
    };
    // Without If-Match a concurrent change is not the client's concern (as for queues and the
    // tenant): the patch's fields are written over whatever version is current.
    let expect = if_match.is_conditional().then_some(cur.version);
    let u = s
        .store
        .update_user(
            Some(cur.tenant_id),
            cur.id,
            &patch,
            expect,
            &who.actor(),
            s.engine.now_ms(),
        )
        .await
        .map_err(not_found)?;
    s.auth.directory.user_changed(u.id);
    Ok(u)
}

/// Changes a user. `If-Match` makes it conditional on the version read (412 otherwise).
#[utoipa::path(patch, path = "/api/v1/users/{id}", operation_id = "patchUser", tag = "users",
    params(("id" = String, Path,), ("If-Match" = Option<String>, Header, description = "ETag of the version to change")),
    request_body = UserUpdate,
    responses((status = 200, body = UserDto), (status = 403, description = "Role above the caller's"),
        (status = 404, description = "No such user"), (status = 409, description = "E-mail taken, or changing oneself"),
        (status = 412, description = "If-Match does not match"), (status = 422, description = "Invalid field")),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn patch_user(
    State(s): State<AppState>,
    auth: Authorized<perm::UsersWrite>,
    Path(id): Path<String>,
    if_match: IfMatch,
    ApiJson(b): ApiJson<UserUpdate>,
) -> Result<(HeaderMap, Json<UserDto>), ApiError> {
    let u = change(&s, &auth, &id, b, &if_match).await?;
    Ok((etag_header(u.version), Json(dto(u))))
}

/// Deactivates a user: its access tokens stop working on the next request and its refresh
/// tokens are revoked. 204.
#[utoipa::path(delete, path = "/api/v1/users/{id}", operation_id = "deactivateUser", tag = "users",
    params(("id" = String, Path,)),
    responses((status = 204, description = "Deactivated"), (status = 403, description = "Role above the caller's"),
        (status = 404, description = "No such user"), (status = 409, description = "Deactivating oneself")),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn deactivate_user(
    State(s): State<AppState>,
    auth: Authorized<perm::UsersWrite>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let b = UserUpdate {
        active: Some(false),
        ..Default::default()
    };
    change(&s, &auth, &id, b, &IfMatch::Absent).await?;
    Ok(StatusCode::NO_CONTENT)
}
