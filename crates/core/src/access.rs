//! Who may do what: user roles, credential scopes, and the table that maps each role to the
//! scopes it holds. Pure data; the server resolves a request's principal and checks the scope
//! its route declares (`docs/security.md` prints the same table).
//!
//! A scope is one permission (`calls:read`); an API key is granted a set of them (`*` is every
//! tenant scope), a user holds the set of its [`Role`]. [`Scope::TenantsManage`] and acting on
//! other tenants belong to `platform_admin` alone: a key never holds them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A user's role (DESIGN.md, "Domain vocabulary").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Runs the platform: manages tenants, acts in any tenant.
    PlatformAdmin,
    /// Administers one tenant: users, keys, queues, settings.
    TenantAdmin,
    /// Watches and steers one tenant's queues: reads everything, changes queues.
    Supervisor,
    /// Takes calls: sees calls, queues and the stream of its tenant.
    Agent,
}

impl Role {
    /// Every role, most powerful first.
    pub const ALL: [Role; 4] = [
        Role::PlatformAdmin,
        Role::TenantAdmin,
        Role::Supervisor,
        Role::Agent,
    ];

    /// The wire name (`tenant_admin`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::PlatformAdmin => "platform_admin",
            Role::TenantAdmin => "tenant_admin",
            Role::Supervisor => "supervisor",
            Role::Agent => "agent",
        }
    }

    /// The scopes this role holds.
    pub fn scopes(self) -> ScopeSet {
        use Scope::*;
        let agent = ScopeSet::of(&[
            CallsRead, QueuesRead, TenantRead, AlertsRead, StreamRead, AgentsRead,
        ]);
        match self {
            Role::Agent => agent,
            Role::Supervisor => agent.union(ScopeSet::of(&[
                ReportsRead,
                QueuesWrite,
                UsersRead,
                KeysRead,
                AgentsWrite,
                RoutingRead,
            ])),
            Role::TenantAdmin => ScopeSet::TENANT,
            Role::PlatformAdmin => ScopeSet::ALL,
        }
    }

    /// True when a user of this role may give `other` to a user (nobody grants a role above
    /// their own; only a platform admin makes platform admins).
    pub fn may_grant(self, other: Role) -> bool {
        self <= other && matches!(self, Role::PlatformAdmin | Role::TenantAdmin)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Role, UnknownName> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownName(s.to_owned()))
    }
}

/// A name that is not a known role or scope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown name `{0}`")]
pub struct UnknownName(pub String);

macro_rules! scopes {
    ($($variant:ident = $name:literal, $doc:literal;)*) => {
        /// One permission. Routes declare the one they need; keys are granted a set.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        pub enum Scope {
            $(#[doc = $doc] #[serde(rename = $name)] $variant,)*
        }

        impl Scope {
            /// Every scope, in table order.
            pub const ALL: &'static [Scope] = &[$(Scope::$variant),*];

            /// The wire name (`calls:read`).
            pub fn as_str(self) -> &'static str {
                match self { $(Scope::$variant => $name,)* }
            }
        }
    };
}

scopes! {
    EventsWrite = "events:write", "Post call events (`/events`, `/events/batch`).";
    CallsRead = "calls:read", "Read calls and their event histories.";
    QueuesRead = "queues:read", "Read queues.";
    QueuesWrite = "queues:write", "Create and change queues.";
    TenantRead = "tenant:read", "Read the tenant's own settings.";
    TenantWrite = "tenant:write", "Change the tenant's own settings.";
    AlertsRead = "alerts:read", "Read alerts.";
    ReportsRead = "reports:read", "Read queue reports.";
    StreamRead = "stream:read", "Open the live stream.";
    UsersRead = "users:read", "Read the tenant's users.";
    UsersWrite = "users:write", "Create, change and deactivate the tenant's users.";
    KeysRead = "keys:read", "List the tenant's API keys (never their secrets).";
    KeysWrite = "keys:write", "Create and revoke the tenant's API keys.";
    AuditRead = "audit:read", "Read the audit log of administrative changes.";
    AgentsRead = "agents:read", "Read agents and their presence.";
    AgentsWrite = "agents:write", "Create and change agents, set any agent's status, set queue members.";
    RoutingRead = "routing:read", "Read DIDs, campaigns, destinations and their counters.";
    RoutingWrite = "routing:write", "Create and change DIDs, campaigns and destinations.";
    Telephony = "telephony", "Ask where a call goes and report its outcome (route API, CDRs): for PBXs and SIP proxies.";
    TenantsManage = "tenants:manage", "Create, change and deactivate tenants (platform admins only).";
}

impl Scope {
    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Scope, UnknownName> {
        Scope::ALL
            .iter()
            .copied()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| UnknownName(s.to_owned()))
    }
}

/// A set of scopes (a bit set: checking one is a single AND).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct ScopeSet(u32);

impl ScopeSet {
    /// No scope.
    pub const EMPTY: ScopeSet = ScopeSet(0);
    /// Every scope, `tenants:manage` included (platform admins).
    pub const ALL: ScopeSet = ScopeSet((1 << Scope::ALL.len()) - 1);
    /// Every scope that acts inside one tenant: what `*` grants a key, and a tenant admin holds.
    pub const TENANT: ScopeSet = ScopeSet(ScopeSet::ALL.0 & !(1 << Scope::TenantsManage as u32));

    /// The set of `scopes`.
    pub fn of(scopes: &[Scope]) -> ScopeSet {
        ScopeSet(scopes.iter().fold(0, |acc, s| acc | s.bit()))
    }

    /// Both sets' scopes.
    pub fn union(self, other: ScopeSet) -> ScopeSet {
        ScopeSet(self.0 | other.0)
    }

    /// The scopes in both sets.
    pub fn intersect(self, other: ScopeSet) -> ScopeSet {
        ScopeSet(self.0 & other.0)
    }

    /// True when `scope` is in the set.
    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    /// True when every scope of `other` is in this set.
    pub fn covers(self, other: ScopeSet) -> bool {
        other.0 & !self.0 == 0
    }

    /// The scopes, in table order.
    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL
            .iter()
            .copied()
            .filter(move |s| self.contains(*s))
    }

    /// Parses stored or requested scope names; `*` is [`ScopeSet::TENANT`].
    ///
    /// Errors: a name that is neither a scope nor `*`.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<ScopeSet, UnknownName> {
        names.into_iter().try_fold(ScopeSet::EMPTY, |acc, n| {
            if n == "*" {
                Ok(acc.union(ScopeSet::TENANT))
            } else {
                Ok(acc.union(ScopeSet::of(&[n.parse()?])))
            }
        })
    }

    /// The names, `*` when the set is every tenant scope (the stored form of a key's scopes).
    pub fn names(self) -> Vec<String> {
        if self == ScopeSet::TENANT {
            vec!["*".to_owned()]
        } else {
            self.iter().map(|s| s.as_str().to_owned()).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in Scope::ALL {
            assert_eq!(s.as_str().parse::<Scope>().unwrap(), *s);
            assert_eq!(serde_json::to_string(s).unwrap(), format!("\"{s}\""));
        }
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
            assert_eq!(serde_json::to_string(&r).unwrap(), format!("\"{r}\""));
        }
        assert!("root".parse::<Role>().is_err());
        assert!("calls:delete".parse::<Scope>().is_err());
    }

    #[test]
    fn all_has_every_scope_and_tenant_all_but_platform() {
        assert_eq!(ScopeSet::ALL.iter().count(), Scope::ALL.len());
        assert!(!ScopeSet::TENANT.contains(Scope::TenantsManage));
        assert_eq!(ScopeSet::TENANT.iter().count(), Scope::ALL.len() - 1);
    }

    #[test]
    fn star_is_every_tenant_scope_and_stores_as_star() {
        let s = ScopeSet::parse(["*"]).unwrap();
        assert_eq!(s, ScopeSet::TENANT);
        assert_eq!(s.names(), vec!["*"]);
        let two = ScopeSet::parse(["calls:read", "events:write"]).unwrap();
        assert_eq!(two.names(), vec!["events:write", "calls:read"]);
        assert!(ScopeSet::parse(["calls:read", "nope"]).is_err());
    }

    #[test]
    fn roles_nest_and_only_admins_grant() {
        for w in Role::ALL.windows(2) {
            assert!(w[0].scopes().covers(w[1].scopes()), "{} ⊇ {}", w[0], w[1]);
            assert_ne!(w[0].scopes(), w[1].scopes());
        }
        assert!(!Role::TenantAdmin.scopes().contains(Scope::TenantsManage));
        assert!(!Role::Agent.scopes().contains(Scope::EventsWrite));
        assert!(Role::TenantAdmin.may_grant(Role::Agent));
        assert!(Role::TenantAdmin.may_grant(Role::TenantAdmin));
        assert!(!Role::TenantAdmin.may_grant(Role::PlatformAdmin));
        assert!(!Role::Supervisor.may_grant(Role::Agent));
        assert!(Role::PlatformAdmin.may_grant(Role::PlatformAdmin));
    }
}
