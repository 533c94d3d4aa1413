//! The audit log: every administrative change (tenants, users, API keys, queues, tenant
//! settings), who made it, before and after. Entries are written by the change's own
//! transaction ([`insert_audit`]), so a change is never stored without its entry.

use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use serde_json::Value;
use uuid::Uuid;

use switchboard_core::TenantId;

use crate::entity::audit;
use crate::{corrupt, Store, StoreError};

/// What kind of principal made a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorKind {
    /// A person, by access token.
    User,
    /// A machine, by API key.
    ApiKey,
    /// Switchboard itself: the bootstrap, or the command line run on the server's host.
    System,
}

impl ActorKind {
    /// The stored name (`user`, `api_key`, `system`).
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::User => "user",
            ActorKind::ApiKey => "api_key",
            ActorKind::System => "system",
        }
    }

    fn parse(s: &str) -> Option<ActorKind> {
        [ActorKind::User, ActorKind::ApiKey, ActorKind::System]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// Who made a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// User, key or system.
    pub kind: ActorKind,
    /// The user's or key's id (`None` for the system).
    pub id: Option<Uuid>,
    /// The user's e-mail or the key's name at the time (`bootstrap`, `cli` for the system).
    pub name: String,
}

impl Actor {
    /// Switchboard itself, acting as `name` (`bootstrap`, `cli`).
    pub fn system(name: &str) -> Actor {
        Actor {
            kind: ActorKind::System,
            id: None,
            name: name.to_owned(),
        }
    }
}

/// One administrative change.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    /// Entry id (UUIDv7, time-ordered: the list's cursor).
    pub id: Uuid,
    /// The tenant the changed resource belongs to.
    pub tenant_id: TenantId,
    /// Time of the change, epoch ms.
    pub at: i64,
    /// Who made it.
    pub actor: Actor,
    /// `<resource>.<verb>`: `tenant.create`, `user.update`, `api_key.revoke`, `queue.create`, …
    pub action: String,
    /// `tenant`, `user`, `api_key`, `queue`.
    pub resource_type: String,
    /// The resource's id.
    pub resource_id: String,
    /// The resource before the change (`None` for a creation). Never holds a secret.
    pub before: Option<Value>,
    /// The resource after the change.
    pub after: Option<Value>,
}

impl AuditRecord {
    /// An entry for a change made now by `actor` (`resource` is `(type, id)`).
    pub fn new(
        tenant_id: TenantId,
        actor: &Actor,
        action: &str,
        resource: (&str, &str),
        before: Option<Value>,
        after: Option<Value>,
        at: i64,
    ) -> AuditRecord {
        AuditRecord {
            id: Uuid::now_v7(),
            tenant_id,
            at,
            actor: actor.clone(),
            action: action.to_owned(),
            resource_type: resource.0.to_owned(),
            resource_id: resource.1.to_owned(),
            before,
            after,
        }
    }
}

fn audit_active(r: &AuditRecord) -> audit::ActiveModel {
    audit::ActiveModel {
        id: Set(r.id),
        tenant_id: Set(r.tenant_id.0),
        at: Set(r.at),
        actor_kind: Set(r.actor.kind.as_str().to_owned()),
        actor_id: Set(r.actor.id.map(|u| u.to_string())),
        actor_name: Set(r.actor.name.clone()),
        action: Set(r.action.clone()),
        resource_type: Set(r.resource_type.clone()),
        resource_id: Set(r.resource_id.clone()),
        before: Set(r.before.as_ref().map(Value::to_string)),
        after: Set(r.after.as_ref().map(Value::to_string)),
    }
}

fn audit_from(m: audit::Model) -> Result<AuditRecord, StoreError> {
    let json = |s: Option<String>| -> Result<Option<Value>, StoreError> {
        s.map(|s| serde_json::from_str(&s).map_err(|_| corrupt("audit_log.before/after")))
            .transpose()
    };
    Ok(AuditRecord {
        id: m.id,
        tenant_id: TenantId(m.tenant_id),
        at: m.at,
        actor: Actor {
            kind: ActorKind::parse(&m.actor_kind).ok_or_else(|| corrupt("audit_log.actor_kind"))?,
            id: m.actor_id.and_then(|s| s.parse().ok()),
            name: m.actor_name,
        },
        action: m.action,
        resource_type: m.resource_type,
        resource_id: m.resource_id,
        before: json(m.before)?,
        after: json(m.after)?,
    })
}

/// Writes entries on `db`: call it inside the change's own transaction.
pub async fn insert_audit<C: ConnectionTrait>(
    db: &C,
    records: &[AuditRecord],
) -> Result<(), StoreError> {
    if records.is_empty() {
        return Ok(());
    }
    audit::Entity::insert_many(records.iter().map(audit_active))
        .exec(db)
        .await?;
    Ok(())
}

/// Which entries to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only this tenant's entries (`None`: every tenant, for platform admins).
    pub tenant_id: Option<TenantId>,
    /// The actor's id or name (e-mail, key name).
    pub actor: Option<String>,
    /// The action (`user.create`), or a resource's actions when it ends in `.` (`user.`).
    pub action: Option<String>,
    /// At or after, epoch ms.
    pub from: Option<i64>,
    /// Before, epoch ms.
    pub to: Option<i64>,
    /// Entries older than this id (the previous page's last).
    pub before_id: Option<Uuid>,
    /// Page size.
    pub limit: u64,
}

impl Store {
    /// Audit entries matching `f`, newest first.
    pub async fn audit(&self, f: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
        let mut q = audit::Entity::find();
        if let Some(t) = f.tenant_id {
            q = q.filter(audit::Column::TenantId.eq(t.0));
        }
        if let Some(a) = &f.actor {
            q = q.filter(
                Condition::any()
                    .add(audit::Column::ActorId.eq(a.as_str()))
                    .add(audit::Column::ActorName.eq(a.as_str())),
            );
        }
        if let Some(a) = &f.action {
            q = match a.strip_suffix('.') {
                Some(resource) => q.filter(audit::Column::ResourceType.eq(resource)),
                None => q.filter(audit::Column::Action.eq(a.as_str())),
            };
        }
        if let Some(from) = f.from {
            q = q.filter(audit::Column::At.gte(from));
        }
        if let Some(to) = f.to {
            q = q.filter(audit::Column::At.lt(to));
        }
        if let Some(b) = f.before_id {
            q = q.filter(audit::Column::Id.lt(b));
        }
        q.order_by_desc(audit::Column::Id)
            .limit(f.limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(audit_from)
            .collect()
    }
}
