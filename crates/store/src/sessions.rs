//! Refresh tokens: opaque, stored as SHA-256, 30 days, rotated on every use. Tokens descend
//! from one login in a family; presenting a token that was already exchanged means two parties
//! hold it (one of them a thief), so the whole family is revoked (OAuth 2.0 Security Best
//! Current Practice, RFC 9700 §4.14.2, "refresh token rotation").

use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};
use uuid::Uuid;

use switchboard_core::TenantId;

use crate::entity::refresh_token;
use crate::{Store, StoreError};

/// A refresh token to store (by its hash).
#[derive(Debug, Clone)]
pub struct NewRefreshToken {
    /// SHA-256 of the token, lower-case hex.
    pub token_hash: String,
    /// The user it refreshes.
    pub user_id: Uuid,
    /// The user's tenant.
    pub tenant_id: TenantId,
    /// Expiry, epoch ms.
    pub expires_at: i64,
}

/// What presenting a refresh token came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The token was valid: it is now used, and the new token is stored in its family.
    Rotated {
        /// The user to issue an access token for.
        user_id: Uuid,
        /// The user's tenant.
        tenant_id: TenantId,
    },
    /// The token had already been exchanged: its family is now revoked.
    Reused,
    /// Unknown, expired or revoked.
    Invalid,
}

fn row(t: &NewRefreshToken, family_id: Uuid, now: i64) -> refresh_token::ActiveModel {
    refresh_token::ActiveModel {
        id: Set(Uuid::now_v7()),
        family_id: Set(family_id),
        user_id: Set(t.user_id),
        tenant_id: Set(t.tenant_id.0),
        token_hash: Set(t.token_hash.clone()),
        created_at: Set(now),
        expires_at: Set(t.expires_at),
        used_at: Set(None),
        revoked_at: Set(None),
    }
}

impl Store {
    /// Stores the first token of a new family (a login).
    pub async fn create_refresh_token(
        &self,
        t: &NewRefreshToken,
        now: i64,
    ) -> Result<(), StoreError> {
        refresh_token::Entity::insert(row(t, Uuid::now_v7(), now))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Exchanges the token hashed `presented` for `next` (same family, same user: the caller
    /// fills `next.user_id`/`tenant_id` from the answer, so they are ignored here). The token
    /// is marked used by a conditional update first, so of two concurrent exchanges of one
    /// token exactly one succeeds and the other revokes the family.
    pub async fn rotate_refresh_token(
        &self,
        presented: &str,
        next_hash: &str,
        next_expires_at: i64,
        now: i64,
    ) -> Result<Rotation, StoreError> {
        let txn = self.db.begin().await?;
        // Write first: on SQLite the transaction takes the write lock at once, so it never has
        // to upgrade a read snapshot that another writer made stale.
        let used = refresh_token::Entity::update_many()
            .col_expr(refresh_token::Column::UsedAt, Expr::value(now))
            .filter(refresh_token::Column::TokenHash.eq(presented))
            .filter(refresh_token::Column::UsedAt.is_null())
            .filter(refresh_token::Column::RevokedAt.is_null())
            .filter(refresh_token::Column::ExpiresAt.gt(now))
            .exec(&txn)
            .await?
            .rows_affected;
        let Some(cur) = refresh_token::Entity::find()
            .filter(refresh_token::Column::TokenHash.eq(presented))
            .one(&txn)
            .await?
        else {
            txn.commit().await?;
            return Ok(Rotation::Invalid);
        };
        if used == 1 {
            let next = NewRefreshToken {
                token_hash: next_hash.to_owned(),
                user_id: cur.user_id,
                tenant_id: TenantId(cur.tenant_id),
                expires_at: next_expires_at,
            };
            refresh_token::Entity::insert(row(&next, cur.family_id, now))
                .exec(&txn)
                .await?;
            txn.commit().await?;
            return Ok(Rotation::Rotated {
                user_id: cur.user_id,
                tenant_id: TenantId(cur.tenant_id),
            });
        }
        let outcome = if cur.used_at.is_some() && cur.revoked_at.is_none() {
            revoke_family(&txn, cur.family_id, now).await?;
            Rotation::Reused
        } else {
            Rotation::Invalid
        };
        txn.commit().await?;
        Ok(outcome)
    }

    /// The user a refresh token (hashed `token_hash`) belongs to, if it is stored (whatever its
    /// state): checked before a rotation, so that a token of a deactivated user is not used up.
    pub async fn refresh_token_user(&self, token_hash: &str) -> Result<Option<Uuid>, StoreError> {
        Ok(refresh_token::Entity::find()
            .filter(refresh_token::Column::TokenHash.eq(token_hash))
            .one(&self.db)
            .await?
            .map(|t| t.user_id))
    }

    /// Revokes the family of the token hashed `token_hash` (logout). Returns false when no
    /// such token exists.
    pub async fn revoke_refresh_family(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let Some(cur) = refresh_token::Entity::find()
            .filter(refresh_token::Column::TokenHash.eq(token_hash))
            .one(&self.db)
            .await?
        else {
            return Ok(false);
        };
        revoke_family(&self.db, cur.family_id, now).await?;
        Ok(true)
    }
}

async fn revoke_family<C: sea_orm::ConnectionTrait>(
    db: &C,
    family_id: Uuid,
    now: i64,
) -> Result<(), StoreError> {
    refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::RevokedAt, Expr::value(now))
        .filter(refresh_token::Column::FamilyId.eq(family_id))
        .filter(refresh_token::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}
