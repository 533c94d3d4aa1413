//! Users: people who log in, each in one tenant with one role. E-mail addresses are stored
//! lower-case and unique per tenant; passwords only as argon2id hashes (made by the server).
//! Every change is written with its audit entry in one transaction.

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};
use serde_json::json;
use uuid::Uuid;

use switchboard_core::{Role, TenantId};

use crate::audit::{insert_audit, Actor, AuditRecord};
use crate::entity::{refresh_token, user};
use crate::{corrupt, map_insert_err, Store, StoreError};

/// A user (never its password hash).
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    /// User id (UUIDv7).
    pub id: Uuid,
    /// The user's tenant.
    pub tenant_id: TenantId,
    /// E-mail address, lower-case.
    pub email: String,
    /// Name shown in the console.
    pub display_name: String,
    /// What the user may do.
    pub role: Role,
    /// False once deactivated.
    pub active: bool,
    /// Epoch ms.
    pub created_at: i64,
    /// Epoch ms.
    pub updated_at: i64,
    /// Bumped on every change (the `ETag`).
    pub version: i64,
}

impl User {
    /// The user as the audit log shows it (no secret).
    pub fn audit_json(&self) -> serde_json::Value {
        json!({
            "id": self.id, "tenant_id": self.tenant_id.0, "email": self.email,
            "display_name": self.display_name, "role": self.role, "active": self.active,
        })
    }
}

fn user_from(m: user::Model) -> Result<(User, String), StoreError> {
    Ok((
        User {
            id: m.id,
            tenant_id: TenantId(m.tenant_id),
            role: m.role.parse().map_err(|_| corrupt("users.role"))?,
            email: m.email,
            display_name: m.display_name,
            active: m.active,
            created_at: m.created_at,
            updated_at: m.updated_at,
            version: m.version,
        },
        m.password_hash,
    ))
}

/// A user to create.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// E-mail address (stored lower-case).
    pub email: String,
    /// Name shown in the console.
    pub display_name: String,
    /// What the user may do.
    pub role: Role,
    /// argon2id PHC string.
    pub password_hash: String,
}

/// Changes to a user; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    /// New e-mail address.
    pub email: Option<String>,
    /// New display name.
    pub display_name: Option<String>,
    /// New role.
    pub role: Option<Role>,
    /// Activate or deactivate (deactivating ends every session of the user).
    pub active: Option<bool>,
    /// New argon2id PHC string (ends every session of the user).
    pub password_hash: Option<String>,
}

/// One page of users, oldest first.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    /// Only this tenant's users (`None`: every tenant, for platform admins).
    pub tenant_id: Option<TenantId>,
    /// Only this role.
    pub role: Option<Role>,
    /// Only active (true) or deactivated (false) users.
    pub active: Option<bool>,
    /// Users after this id (the previous page's last).
    pub after: Option<Uuid>,
    /// Page size.
    pub limit: u64,
}

pub(crate) fn user_row(tenant_id: TenantId, u: &NewUser, now: i64) -> user::ActiveModel {
    user::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(tenant_id.0),
        email: Set(u.email.to_lowercase()),
        display_name: Set(u.display_name.clone()),
        role: Set(u.role.as_str().to_owned()),
        password_hash: Set(u.password_hash.clone()),
        active: Set(true),
        created_at: Set(now),
        updated_at: Set(now),
        version: Set(1),
    }
}

/// Inserts a user on `db` (inside a transaction) with its audit entry.
pub(crate) async fn insert_user<C: ConnectionTrait>(
    db: &C,
    tenant_id: TenantId,
    u: &NewUser,
    actor: &Actor,
    now: i64,
) -> Result<User, StoreError> {
    let m = user::Entity::insert(user_row(tenant_id, u, now))
        .exec_with_returning(db)
        .await
        .map_err(|e| map_insert_err(e, "a user with this e-mail address already exists"))?;
    let (user, _) = user_from(m)?;
    let id = user.id.to_string();
    let entry = AuditRecord::new(
        tenant_id,
        actor,
        "user.create",
        ("user", &id),
        None,
        Some(user.audit_json()),
        now,
    );
    insert_audit(db, &[entry]).await?;
    Ok(user)
}

impl Store {
    /// Creates a user in `tenant_id`, with its audit entry.
    ///
    /// Errors: `Conflict` when the tenant has a user with this e-mail address.
    pub async fn create_user(
        &self,
        tenant_id: TenantId,
        u: &NewUser,
        actor: &Actor,
        now: i64,
    ) -> Result<User, StoreError> {
        let txn = self.db.begin().await?;
        let user = insert_user(&txn, tenant_id, u, actor, now).await?;
        txn.commit().await?;
        Ok(user)
    }

    /// The user `id` of `tenant_id` (`None`: of any tenant). Errors: `NotFound`.
    pub async fn user(&self, tenant_id: Option<TenantId>, id: Uuid) -> Result<User, StoreError> {
        let mut q = user::Entity::find_by_id(id);
        if let Some(t) = tenant_id {
            q = q.filter(user::Column::TenantId.eq(t.0));
        }
        let m = q.one(&self.db).await?.ok_or(StoreError::NotFound)?;
        Ok(user_from(m)?.0)
    }

    /// The users with this e-mail address (case-insensitive) and their password hashes, in
    /// `tenant_id` only when given: what login checks a password against.
    pub async fn users_by_email(
        &self,
        email: &str,
        tenant_id: Option<TenantId>,
    ) -> Result<Vec<(User, String)>, StoreError> {
        let mut q = user::Entity::find().filter(user::Column::Email.eq(email.to_lowercase()));
        if let Some(t) = tenant_id {
            q = q.filter(user::Column::TenantId.eq(t.0));
        }
        q.limit(16)
            .all(&self.db)
            .await?
            .into_iter()
            .map(user_from)
            .collect()
    }

    /// A page of users, oldest first.
    pub async fn users(&self, f: &UserFilter) -> Result<Vec<User>, StoreError> {
        let mut q = user::Entity::find();
        if let Some(t) = f.tenant_id {
            q = q.filter(user::Column::TenantId.eq(t.0));
        }
        if let Some(r) = f.role {
            q = q.filter(user::Column::Role.eq(r.as_str()));
        }
        if let Some(a) = f.active {
            q = q.filter(user::Column::Active.eq(a));
        }
        if let Some(after) = f.after {
            q = q.filter(user::Column::Id.gt(after));
        }
        q.order_by_asc(user::Column::Id)
            .limit(f.limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|m| user_from(m).map(|(u, _)| u))
            .collect()
    }

    /// Changes a user (compare-and-set on `expect_version` when given), with its audit entry.
    /// Deactivating a user or changing its password revokes all of its refresh tokens in the
    /// same transaction. A patch that changes nothing writes nothing. `tenant_id` `None` finds
    /// the user in any tenant (platform admins).
    ///
    /// Errors: `NotFound`; `VersionMismatch` when `expect_version` differs; `Conflict` when the
    /// new e-mail address is taken in the tenant.
    pub async fn update_user(
        &self,
        tenant_id: Option<TenantId>,
        id: Uuid,
        patch: &UserPatch,
        expect_version: Option<i64>,
        actor: &Actor,
        now: i64,
    ) -> Result<User, StoreError> {
        let txn = self.db.begin().await?;
        // Lock the row first, with a write that changes nothing: SQLite then holds the write
        // lock from the start (a deferred transaction that reads first cannot upgrade once
        // another writer has committed: "database is locked"), and PostgreSQL holds the row,
        // so a concurrent change waits instead of being lost.
        let mut lock = user::Entity::update_many()
            .col_expr(
                user::Column::Version,
                Expr::col(user::Column::Version).into(),
            )
            .filter(user::Column::Id.eq(id));
        if let Some(t) = tenant_id {
            lock = lock.filter(user::Column::TenantId.eq(t.0));
        }
        if lock.exec(&txn).await?.rows_affected == 0 {
            return Err(StoreError::NotFound);
        }
        let m = user::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or(StoreError::NotFound)?;
        let (before, _) = user_from(m.clone())?;
        if expect_version.is_some_and(|v| v != before.version) {
            return Err(StoreError::VersionMismatch {
                current: before.version,
            });
        }
        let mut a: user::ActiveModel = m.into();
        if let Some(e) = &patch.email {
            a.email = Set(e.to_lowercase());
        }
        if let Some(d) = &patch.display_name {
            a.display_name = Set(d.clone());
        }
        if let Some(r) = patch.role {
            a.role = Set(r.as_str().to_owned());
        }
        if let Some(act) = patch.active {
            a.active = Set(act);
        }
        if let Some(h) = &patch.password_hash {
            a.password_hash = Set(h.clone());
        }
        let mut after = before.clone();
        if let Some(e) = &patch.email {
            after.email = e.to_lowercase();
        }
        if let Some(d) = &patch.display_name {
            after.display_name = d.clone();
        }
        if let Some(r) = patch.role {
            after.role = r;
        }
        if let Some(act) = patch.active {
            after.active = act;
        }
        if after == before && patch.password_hash.is_none() {
            txn.commit().await?;
            return Ok(before);
        }
        a.updated_at = Set(now);
        a.version = Set(before.version + 1);
        user::Entity::update(a)
            .exec(&txn)
            .await
            .map_err(|e| map_insert_err(e, "a user with this e-mail address already exists"))?;
        after.updated_at = now;
        after.version = before.version + 1;
        if patch.active == Some(false) || patch.password_hash.is_some() {
            revoke_user_tokens(&txn, id, now).await?;
        }
        let verb = match (before.active, after.active) {
            (true, false) => "user.deactivate",
            (false, true) => "user.activate",
            _ if patch.password_hash.is_some() && before == before_but_version(&before, &after) => {
                "user.password_reset"
            }
            _ => "user.update",
        };
        let mut after_json = after.audit_json();
        if patch.password_hash.is_some() {
            after_json["password_changed"] = serde_json::Value::Bool(true);
        }
        let rid = id.to_string();
        let entry = AuditRecord::new(
            after.tenant_id,
            actor,
            verb,
            ("user", &rid),
            Some(before.audit_json()),
            Some(after_json),
            now,
        );
        insert_audit(&txn, &[entry]).await?;
        txn.commit().await?;
        Ok(after)
    }

    /// The user `id` of `tenant_id` with its password hash (to check a current password).
    ///
    /// Errors: `NotFound`.
    pub async fn user_with_hash(
        &self,
        tenant_id: TenantId,
        id: Uuid,
    ) -> Result<(User, String), StoreError> {
        user_from(
            user::Entity::find_by_id(id)
                .filter(user::Column::TenantId.eq(tenant_id.0))
                .one(&self.db)
                .await?
                .ok_or(StoreError::NotFound)?,
        )
    }

    /// True when `tenant_id` has an active platform admin (such a tenant is never deactivated:
    /// that could lock every platform admin out).
    pub async fn has_active_platform_admin(&self, tenant_id: TenantId) -> Result<bool, StoreError> {
        Ok(user::Entity::find()
            .filter(user::Column::TenantId.eq(tenant_id.0))
            .filter(user::Column::Role.eq(Role::PlatformAdmin.as_str()))
            .filter(user::Column::Active.eq(true))
            .one(&self.db)
            .await?
            .is_some())
    }
}

/// `after` with `before`'s version and time: equal to `before` when only the password changed.
fn before_but_version(before: &User, after: &User) -> User {
    User {
        version: before.version,
        updated_at: before.updated_at,
        ..after.clone()
    }
}

/// Revokes every refresh token of `user_id` not yet revoked.
pub(crate) async fn revoke_user_tokens<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    now: i64,
) -> Result<(), StoreError> {
    refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::RevokedAt, Expr::value(now))
        .filter(refresh_token::Column::UserId.eq(user_id))
        .filter(refresh_token::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}
