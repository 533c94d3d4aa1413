//! Who may do what, through the real server, walking the OpenAPI document the server serves:
//!
//! 1. cross-tenant: every operation of the document with a path parameter, filled with another
//!    tenant's ids, answers exactly as for an id that exists nowhere (404; 403 only for a scope
//!    the caller lacks whatever the id) and changes nothing; `tenant_id` in a query or body
//!    names only the caller's own tenant; no list shows another tenant's data;
//! 2. every protected operation refuses a missing or bad credential with 401 and
//!    `WWW-Authenticate` (the stream before its WebSocket upgrade);
//! 3. the route × role and route × key-scope matrix: 403 exactly when the documented role
//!    table (`crates/core/src/access.rs`, `docs/security.md`) lacks the route's scope;
//! 4. privilege escalation (roles above one's own, a key's scopes above its creator's,
//!    changing oneself), and revocation, deactivation, demotion, throttling and rate limits
//!    taking effect on the next request.
//!
//! The expectations are hard-coded tables ([`OPERATIONS`], [`role_scopes`]), not computed by
//! the code under test: a change to a route's scope or to the role table breaks these tests.
//! A new operation in the document that no table names fails [`document_is_covered`] and the
//! walks, so it cannot skip them.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU32, Ordering};

use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use support::{ev, t, urlencode, Cred, TestApp, ADMIN_PASSWORD, USER_PASSWORD};

// ---------------------------------------------------------------------------------------------
// The documented tables.

/// What an operation requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// No credential (operations, login, refresh, logout, the document itself).
    Public,
    /// Any valid credential, whatever its scopes (`/auth/me`, `/auth/password`).
    AnyCredential,
    /// A valid credential holding this scope.
    Scope(&'static str),
}
use Access::{AnyCredential, Public, Scope};

/// Every operation of the OpenAPI document: method, path template, what it requires, and its
/// route class (the rows of the table in `docs/security.md`). [`document_is_covered`] checks
/// that this table and the document list the same operations.
const OPERATIONS: &[(&str, &str, Access, &str)] = &[
    ("GET", "/health", Public, "operations"),
    ("GET", "/ready", Public, "operations"),
    ("GET", "/metrics", Public, "operations"),
    ("POST", "/api/v1/auth/login", Public, "session"),
    ("POST", "/api/v1/auth/refresh", Public, "session"),
    ("POST", "/api/v1/auth/logout", Public, "session"),
    ("GET", "/api/v1/auth/me", AnyCredential, "session"),
    ("POST", "/api/v1/auth/password", AnyCredential, "session"),
    (
        "POST",
        "/api/v1/events",
        Scope("events:write"),
        "events write",
    ),
    (
        "POST",
        "/api/v1/events/batch",
        Scope("events:write"),
        "events write",
    ),
    ("GET", "/api/v1/calls", Scope("calls:read"), "calls read"),
    (
        "GET",
        "/api/v1/calls/{id}",
        Scope("calls:read"),
        "calls read",
    ),
    (
        "GET",
        "/api/v1/calls/{id}/events",
        Scope("calls:read"),
        "calls read",
    ),
    ("GET", "/api/v1/queues", Scope("queues:read"), "queues read"),
    (
        "PUT",
        "/api/v1/queues/{queue_id}/members",
        Scope("queues:write"),
        "queues write",
    ),
    ("GET", "/api/v1/agents", Scope("agents:read"), "agents read"),
    (
        "GET",
        "/api/v1/agents/{id}",
        Scope("agents:read"),
        "agents read",
    ),
    // An agent's own user sets its status with agents:read; anyone else needs agents:write.
    (
        "POST",
        "/api/v1/agents/{id}/status",
        Scope("agents:read"),
        "agents status",
    ),
    (
        "POST",
        "/api/v1/agents",
        Scope("agents:write"),
        "agents write",
    ),
    (
        "PATCH",
        "/api/v1/agents/{id}",
        Scope("agents:write"),
        "agents write",
    ),
    (
        "GET",
        "/api/v1/queues/{queue_id}",
        Scope("queues:read"),
        "queues read",
    ),
    (
        "POST",
        "/api/v1/queues",
        Scope("queues:write"),
        "queues write",
    ),
    (
        "PATCH",
        "/api/v1/queues/{queue_id}",
        Scope("queues:write"),
        "queues write",
    ),
    ("GET", "/api/v1/tenant", Scope("tenant:read"), "tenant read"),
    (
        "PATCH",
        "/api/v1/tenant",
        Scope("tenant:write"),
        "tenant write",
    ),
    ("GET", "/api/v1/alerts", Scope("alerts:read"), "alerts"),
    (
        "GET",
        "/api/v1/reports/queues",
        Scope("reports:read"),
        "reports",
    ),
    ("GET", "/api/v1/stream", Scope("stream:read"), "stream"),
    ("GET", "/api/v1/users", Scope("users:read"), "users read"),
    (
        "GET",
        "/api/v1/users/{id}",
        Scope("users:read"),
        "users read",
    ),
    ("POST", "/api/v1/users", Scope("users:write"), "users write"),
    (
        "PATCH",
        "/api/v1/users/{id}",
        Scope("users:write"),
        "users write",
    ),
    (
        "DELETE",
        "/api/v1/users/{id}",
        Scope("users:write"),
        "users write",
    ),
    ("GET", "/api/v1/api-keys", Scope("keys:read"), "keys read"),
    (
        "GET",
        "/api/v1/api-keys/{id}",
        Scope("keys:read"),
        "keys read",
    ),
    (
        "POST",
        "/api/v1/api-keys",
        Scope("keys:write"),
        "keys write",
    ),
    (
        "DELETE",
        "/api/v1/api-keys/{id}",
        Scope("keys:write"),
        "keys write",
    ),
    ("GET", "/api/v1/audit", Scope("audit:read"), "audit"),
    (
        "GET",
        "/api/v1/tenants",
        Scope("tenants:manage"),
        "tenants manage",
    ),
    (
        "POST",
        "/api/v1/tenants",
        Scope("tenants:manage"),
        "tenants manage",
    ),
    (
        "GET",
        "/api/v1/tenants/{id}",
        Scope("tenants:manage"),
        "tenants manage",
    ),
    (
        "PATCH",
        "/api/v1/tenants/{id}",
        Scope("tenants:manage"),
        "tenants manage",
    ),
    (
        "DELETE",
        "/api/v1/tenants/{id}",
        Scope("tenants:manage"),
        "tenants manage",
    ),
    (
        "GET",
        "/api/v1/phone-numbers",
        Scope("routing:read"),
        "routing read",
    ),
    (
        "GET",
        "/api/v1/phone-numbers/{id}",
        Scope("routing:read"),
        "routing read",
    ),
    (
        "GET",
        "/api/v1/destinations",
        Scope("routing:read"),
        "routing read",
    ),
    (
        "GET",
        "/api/v1/destinations/{id}",
        Scope("routing:read"),
        "routing read",
    ),
    (
        "GET",
        "/api/v1/campaigns",
        Scope("routing:read"),
        "routing read",
    ),
    (
        "GET",
        "/api/v1/campaigns/{id}",
        Scope("routing:read"),
        "routing read",
    ),
    (
        "GET",
        "/api/v1/campaigns/{id}/destinations",
        Scope("routing:read"),
        "routing read",
    ),
    ("GET", "/api/v1/cdrs", Scope("routing:read"), "routing read"),
    (
        "POST",
        "/api/v1/phone-numbers",
        Scope("routing:write"),
        "routing write",
    ),
    (
        "PATCH",
        "/api/v1/phone-numbers/{id}",
        Scope("routing:write"),
        "routing write",
    ),
    (
        "DELETE",
        "/api/v1/phone-numbers/{id}",
        Scope("routing:write"),
        "routing write",
    ),
    (
        "POST",
        "/api/v1/destinations",
        Scope("routing:write"),
        "routing write",
    ),
    (
        "PATCH",
        "/api/v1/destinations/{id}",
        Scope("routing:write"),
        "routing write",
    ),
    (
        "DELETE",
        "/api/v1/destinations/{id}",
        Scope("routing:write"),
        "routing write",
    ),
    (
        "POST",
        "/api/v1/campaigns",
        Scope("routing:write"),
        "routing write",
    ),
    (
        "PATCH",
        "/api/v1/campaigns/{id}",
        Scope("routing:write"),
        "routing write",
    ),
    (
        "DELETE",
        "/api/v1/campaigns/{id}",
        Scope("routing:write"),
        "routing write",
    ),
    (
        "PUT",
        "/api/v1/campaigns/{id}/destinations",
        Scope("routing:write"),
        "routing write",
    ),
    (
        "GET",
        "/api/v1/internal/route",
        Scope("telephony"),
        "telephony",
    ),
    (
        "POST",
        "/api/v1/internal/answered",
        Scope("telephony"),
        "telephony",
    ),
    (
        "POST",
        "/api/v1/internal/cdr",
        Scope("telephony"),
        "telephony",
    ),
    (
        "GET",
        "/api/internal/route_info",
        Scope("telephony"),
        "telephony (compatibility)",
    ),
    (
        "POST",
        "/api/internal/log_call",
        Scope("telephony"),
        "telephony (compatibility)",
    ),
];

/// Paths answered without a credential that the document does not list.
const PUBLIC_UNDOCUMENTED: &[&str] = &["/api/v1/openapi.json"];

/// Every scope a tenant credential can hold (`*` on a key, and a tenant admin): all but
/// `tenants:manage`.
const TENANT_SCOPES: &[&str] = &[
    "events:write",
    "calls:read",
    "queues:read",
    "queues:write",
    "tenant:read",
    "tenant:write",
    "alerts:read",
    "reports:read",
    "stream:read",
    "users:read",
    "users:write",
    "keys:read",
    "keys:write",
    "audit:read",
    "agents:read",
    "agents:write",
    "routing:read",
    "routing:write",
    "telephony",
];

/// The role table as documented (`Role::scopes` in `crates/core/src/access.rs`, and
/// `docs/security.md`), written out here on purpose: a change in the code breaks the test.
fn role_scopes(role: &str) -> BTreeSet<&'static str> {
    const AGENT: &[&str] = &[
        "calls:read",
        "queues:read",
        "tenant:read",
        "alerts:read",
        "stream:read",
        "agents:read",
    ];
    const SUPERVISOR_ADDS: &[&str] = &[
        "reports:read",
        "queues:write",
        "users:read",
        "keys:read",
        "agents:write",
        "routing:read",
    ];
    let s: Vec<&'static str> = match role {
        "agent" => AGENT.to_vec(),
        "supervisor" => [AGENT, SUPERVISOR_ADDS].concat(),
        "tenant_admin" => TENANT_SCOPES.to_vec(),
        "platform_admin" => [TENANT_SCOPES, &["tenants:manage"]].concat(),
        r => panic!("unknown role {r}"),
    };
    s.into_iter().collect()
}

fn access_of(method: &str, path: &str) -> Access {
    OPERATIONS
        .iter()
        .find(|(m, p, _, _)| *m == method && *p == path)
        .map(|(_, _, a, _)| *a)
        .unwrap_or_else(|| {
            panic!("{method} {path} is in the OpenAPI document but not in OPERATIONS: add it")
        })
}

// ---------------------------------------------------------------------------------------------
// The cross-tenant tables.

/// Path templates with a `{…}` parameter: each names a resource of a tenant, and [`fill`] says
/// how to fill it with a given tenant's ids. Every templated path of the document must be here.
const BY_ID: &[&str] = &[
    "/api/v1/tenants/{id}",
    "/api/v1/users/{id}",
    "/api/v1/api-keys/{id}",
    "/api/v1/queues/{queue_id}",
    "/api/v1/queues/{queue_id}/members",
    "/api/v1/agents/{id}",
    "/api/v1/agents/{id}/status",
    "/api/v1/calls/{id}",
    "/api/v1/calls/{id}/events",
    "/api/v1/phone-numbers/{id}",
    "/api/v1/destinations/{id}",
    "/api/v1/campaigns/{id}",
    "/api/v1/campaigns/{id}/destinations",
];

/// Operations without a path parameter that take a `tenant_id` (query or body): only platform
/// admins may name another tenant. Every such operation of the document must be here.
const BY_TENANT_ID: &[(&str, &str)] = &[
    ("GET", "/api/v1/users"),
    ("POST", "/api/v1/users"),
    ("GET", "/api/v1/api-keys"),
    ("POST", "/api/v1/api-keys"),
    ("GET", "/api/v1/audit"),
];

/// Paths whose operations name no other tenant's resource: the tenant is the credential's own.
/// Every path of the document that is in neither table above must be here, with its reason.
const NO_FOREIGN_ID: &[&str] = &[
    // Operations endpoints: no tenant at all.
    "/health",
    "/ready",
    "/metrics",
    // Sessions: an e-mail and password, or a refresh token (a secret, not an id), or the
    // caller's own credential.
    "/api/v1/auth/login",
    "/api/v1/auth/refresh",
    "/api/v1/auth/logout",
    "/api/v1/auth/me",
    "/api/v1/auth/password",
    // The credential's own tenant.
    "/api/v1/tenant",
    // Platform-wide, `tenants:manage` only (no tenant credential holds it); no `tenant_id`.
    "/api/v1/tenants",
    // The credential's tenant's collections. Ids in their bodies and queries (queue and call
    // ids) are names in the caller's own tenant: the walk checks that lists show nothing of
    // the other tenant even when given its ids, and that writes naming the other tenant's
    // queue and call ids leave that tenant unchanged.
    "/api/v1/queues",
    "/api/v1/agents",
    "/api/v1/events",
    "/api/v1/events/batch",
    "/api/v1/calls",
    "/api/v1/alerts",
    "/api/v1/reports/queues",
    "/api/v1/stream",
    // The routing model's collections, and the telephony operations: DIDs are looked up by
    // number and calls by call id, both in the caller's tenant (the walk routes B's DID and
    // reports B's call ids with A's key: B is unchanged).
    "/api/v1/phone-numbers",
    "/api/v1/destinations",
    "/api/v1/campaigns",
    "/api/v1/cdrs",
    "/api/v1/internal/route",
    "/api/v1/internal/answered",
    "/api/v1/internal/cdr",
    "/api/internal/route_info",
    "/api/internal/log_call",
];

/// GET operations without a path parameter that are decisions, not lists: the list walk
/// skips them (they take required parameters; the walk routes B's DID with A's key instead).
const NOT_LISTS: &[&str] = &["/api/v1/internal/route", "/api/internal/route_info"];

/// Ids of one tenant's resources, one list per path template kind.
#[derive(Debug, Clone)]
struct Ids {
    tenants: Vec<String>,
    users: Vec<String>,
    keys: Vec<String>,
    queues: Vec<String>,
    calls: Vec<String>,
    phone_numbers: Vec<String>,
    destinations: Vec<String>,
    campaigns: Vec<String>,
    agents: Vec<String>,
}

impl Ids {
    /// Ids that exist nowhere, as many of each kind as `like` has.
    fn ghosts(like: &Ids) -> Ids {
        let uuids = |n: usize| (0..n).map(|_| uuid::Uuid::new_v4().to_string()).collect();
        Ids {
            tenants: uuids(like.tenants.len()),
            users: uuids(like.users.len()),
            keys: uuids(like.keys.len()),
            queues: (0..like.queues.len())
                .map(|i| format!("ghost-queue-{i}"))
                .collect(),
            // The same shapes as the real ones: a Switchboard id, then a client call id.
            calls: like
                .calls
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    if c.parse::<uuid::Uuid>().is_ok() {
                        uuid::Uuid::new_v4().to_string()
                    } else {
                        format!("ghost-call-{i}")
                    }
                })
                .collect(),
            phone_numbers: uuids(like.phone_numbers.len()),
            destinations: uuids(like.destinations.len()),
            campaigns: uuids(like.campaigns.len()),
            agents: (0..like.agents.len())
                .map(|i| format!("ghost-agent-{i}"))
                .collect(),
        }
    }
}

/// The concrete paths of `template` for `ids`, with the id each names; `None` for a template
/// this table does not know.
fn fill(template: &str, ids: &Ids) -> Option<Vec<(String, String)>> {
    let with = |param: &str, v: &[String]| -> Vec<(String, String)> {
        v.iter()
            .map(|x| (template.replace(param, &urlencode(x)), x.clone()))
            .collect()
    };
    Some(match template {
        "/api/v1/tenants/{id}" => with("{id}", &ids.tenants),
        "/api/v1/users/{id}" => with("{id}", &ids.users),
        "/api/v1/api-keys/{id}" => with("{id}", &ids.keys),
        "/api/v1/queues/{queue_id}" | "/api/v1/queues/{queue_id}/members" => {
            with("{queue_id}", &ids.queues)
        }
        "/api/v1/agents/{id}" | "/api/v1/agents/{id}/status" => with("{id}", &ids.agents),
        "/api/v1/calls/{id}" | "/api/v1/calls/{id}/events" => with("{id}", &ids.calls),
        "/api/v1/phone-numbers/{id}" => with("{id}", &ids.phone_numbers),
        "/api/v1/destinations/{id}" => with("{id}", &ids.destinations),
        "/api/v1/campaigns/{id}" | "/api/v1/campaigns/{id}/destinations" => {
            with("{id}", &ids.campaigns)
        }
        _ => return None,
    })
}

/// The body an attacker sends with `method template` of [`BY_ID`]: a change that would succeed
/// on the caller's own resource.
fn attack_body(method: &str, template: &str) -> Option<Value> {
    match (method, template) {
        ("GET" | "DELETE", _) => None,
        ("PATCH", "/api/v1/tenants/{id}") => Some(json!({"name": "pwned"})),
        ("PATCH", "/api/v1/users/{id}") => Some(json!({"display_name": "pwned"})),
        ("PATCH", "/api/v1/queues/{queue_id}") => Some(json!({"name": "pwned"})),
        ("PATCH", "/api/v1/phone-numbers/{id}") => Some(json!({"active": false})),
        ("PATCH", "/api/v1/destinations/{id}" | "/api/v1/campaigns/{id}") => {
            Some(json!({"name": "pwned"}))
        }
        ("PUT", "/api/v1/campaigns/{id}/destinations") => Some(json!([])),
        ("PUT", "/api/v1/queues/{queue_id}/members") => Some(json!({"members": []})),
        ("PATCH", "/api/v1/agents/{id}") => Some(json!({"name": "pwned"})),
        ("POST", "/api/v1/agents/{id}/status") => Some(json!({"status": "offline"})),
        (m, p) => panic!("no attack body for {m} {p}: add one to attack_body"),
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers.

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A name no other call of this process gives.
fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", SEQ.fetch_add(1, Ordering::Relaxed))
}

fn method(m: &str) -> Method {
    Method::from_bytes(m.as_bytes()).expect("method")
}

/// `(method, path)` of every operation of the OpenAPI document.
fn operations(doc: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (m, _) in item.as_object().expect("path item") {
            if [
                "get", "put", "post", "patch", "delete", "head", "options", "trace",
            ]
            .contains(&m.as_str())
            {
                out.push((m.to_uppercase(), path.clone()));
            }
        }
    }
    out.sort();
    out
}

fn op<'a>(doc: &'a Value, m: &str, path: &str) -> &'a Value {
    &doc["paths"][path][m.to_lowercase()]
}

/// The names of an operation's parameters in `place` (`query`, `path`).
fn params_in(doc: &Value, m: &str, path: &str, place: &str) -> Vec<String> {
    op(doc, m, path)["parameters"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .filter(|p| p["in"] == place)
                .filter_map(|p| p["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether an operation takes `tenant_id` in its query or its JSON body's schema.
fn takes_tenant_id(doc: &Value, m: &str, path: &str) -> bool {
    if params_in(doc, m, path, "query")
        .iter()
        .any(|n| n == "tenant_id")
    {
        return true;
    }
    let mut schema = &op(doc, m, path)["requestBody"]["content"]["application/json"]["schema"];
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.rsplit('/').next().expect("ref name");
        schema = &doc["components"]["schemas"][name];
    }
    schema["properties"].get("tenant_id").is_some()
}

async fn openapi(app: &TestApp) -> Value {
    let (s, doc, _) = app
        .call_as(&Cred::None, Method::GET, "/api/v1/openapi.json", None)
        .await;
    assert_eq!(s, StatusCode::OK, "openapi.json without a credential");
    doc
}

/// `call_as` with a method name.
async fn call(
    app: &TestApp,
    cred: &Cred,
    m: &str,
    path: &str,
    body: Option<&Value>,
) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    app.call_as(cred, method(m), path, body).await
}

/// Sends and asserts the status; answers the body.
async fn expect(
    app: &TestApp,
    cred: &Cred,
    m: &str,
    path: &str,
    body: Option<Value>,
    status: u16,
) -> Value {
    let (s, v, _) = call(app, cred, m, path, body.as_ref()).await;
    assert_eq!(s.as_u16(), status, "{m} {path} {body:?}: {v}");
    v
}

/// Logs in; answers the access token.
async fn token(app: &TestApp, email: &str, password: &str, tenant: Option<&str>) -> String {
    let (s, v) = app.login(email, password, tenant).await;
    assert_eq!(s, StatusCode::OK, "login {email}: {v}");
    v["access_token"].as_str().expect("access_token").to_owned()
}

/// Creates a user with `cred` (in `tenant_id` when given); answers its id.
async fn user(cred: &Cred, app: &TestApp, email: &str, role: &str, tenant: Option<&str>) -> String {
    app.create_user(cred, email, role, tenant).await
}

/// Creates a key with `cred`; answers `(id, secret)`.
async fn key(app: &TestApp, cred: &Cred, body: Value) -> (String, String) {
    let v = expect(app, cred, "POST", "/api/v1/api-keys", Some(body), 201).await;
    (
        v["id"].as_str().expect("id").to_owned(),
        v["key"].as_str().expect("key").to_owned(),
    )
}

/// One tenant made for the cross-tenant suite: its tenant admin, an all-scope key and one
/// resource of each kind.
struct Tenant {
    slug: String,
    id: String,
    admin_email: String,
    admin_id: String,
    admin: Cred,
    all_key_id: String,
    all_key: Cred,
    queue: String,
    call_ext: String,
    call_uuid: String,
    victim_email: String,
    victim_id: String,
    extra_key_id: String,
    extra_key: Cred,
    /// The routing model: a DID (`did_number`) of a campaign linking one destination, and a
    /// call routed to it (`routed_call`, holding one slot).
    did_id: String,
    did_number: String,
    destination_id: String,
    campaign_id: String,
    link_id: String,
    routed_call: String,
    /// An agent (available) of the tenant.
    agent: String,
}

impl Tenant {
    fn ids(&self) -> Ids {
        Ids {
            tenants: vec![self.id.clone()],
            users: vec![self.victim_id.clone(), self.admin_id.clone()],
            keys: vec![self.extra_key_id.clone(), self.all_key_id.clone()],
            queues: vec![self.queue.clone()],
            calls: vec![self.call_uuid.clone(), self.call_ext.clone()],
            phone_numbers: vec![self.did_id.clone()],
            destinations: vec![self.destination_id.clone()],
            campaigns: vec![self.campaign_id.clone()],
            agents: vec![self.agent.clone()],
        }
    }

    /// Strings that appear only in this tenant's data.
    fn markers(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            self.slug.clone(),
            self.admin_email.clone(),
            self.admin_id.clone(),
            self.all_key_id.clone(),
            self.queue.clone(),
            self.call_ext.clone(),
            self.call_uuid.clone(),
            self.victim_email.clone(),
            self.victim_id.clone(),
            self.extra_key_id.clone(),
            format!("{}-extra-key", self.slug),
            self.did_id.clone(),
            self.did_number.clone(),
            self.destination_id.clone(),
            self.campaign_id.clone(),
            self.link_id.clone(),
            self.routed_call.clone(),
        ]
    }
}

/// Creates tenant `slug` as the platform admin and fills it, through its own tenant admin.
async fn tenant(app: &TestApp, platform: &str, slug: &str) -> Tenant {
    let id = app.create_tenant(platform, slug).await;
    let p = Cred::Bearer(platform.to_owned());
    let admin_email = format!("admin@{slug}.example");
    let admin_id = user(&p, app, &admin_email, "tenant_admin", Some(&id)).await;
    let admin = Cred::Bearer(token(app, &admin_email, USER_PASSWORD, Some(slug)).await);
    let (all_key_id, all_key) = key(app, &admin, json!({"name": "all", "scopes": ["*"]})).await;
    // Event time: nothing of this tenant changes by itself (no timer fires) between the reads
    // before and after the walk.
    expect(
        app,
        &admin,
        "PATCH",
        "/api/v1/tenant",
        Some(json!({"clock": "event_time"})),
        200,
    )
    .await;
    let queue = format!("{slug}-queue");
    expect(
        app,
        &admin,
        "POST",
        "/api/v1/queues",
        Some(json!({"id": queue, "name": format!("{slug} queue")})),
        201,
    )
    .await;
    let call_ext = format!("{slug}-call");
    let v = expect(
        app,
        &admin,
        "POST",
        "/api/v1/events",
        Some(ev(
            "call_initiated",
            &call_ext,
            0,
            json!({"queue_id": queue}),
        )),
        201,
    )
    .await;
    let call_uuid = v["call_uuid"].as_str().expect("call_uuid").to_owned();
    expect(
        app,
        &admin,
        "POST",
        "/api/v1/events",
        Some(ev("call_routed", &call_ext, 2, json!({"agent_id": "a1"}))),
        201,
    )
    .await;
    let victim_email = format!("victim@{slug}.example");
    let victim_id = user(&admin, app, &victim_email, "agent", None).await;
    let (extra_key_id, extra) = key(
        app,
        &admin,
        json!({"name": format!("{slug}-extra-key"), "scopes": ["calls:read"]}),
    )
    .await;
    let (did_id, did_number, destination_id, campaign_id, link_id, routed_call) =
        routing(app, &admin, slug).await;
    let agent = format!("{slug}-agent");
    expect(
        app,
        &admin,
        "POST",
        "/api/v1/agents",
        Some(json!({"id": agent, "status": "available"})),
        201,
    )
    .await;
    Tenant {
        slug: slug.to_owned(),
        id,
        admin_email,
        admin_id,
        admin,
        all_key_id,
        all_key: Cred::Key(all_key),
        queue,
        call_ext,
        call_uuid,
        victim_email,
        victim_id,
        extra_key_id,
        extra_key: Cred::Key(extra),
        did_id,
        did_number,
        destination_id,
        campaign_id,
        link_id,
        routed_call,
        agent,
    }
}

/// A tenant's routing model: a destination, a campaign linking it, a DID (a number of its own
/// per slug) and one call routed there. Answers the ids, the number and the call id.
async fn routing(
    app: &TestApp,
    admin: &Cred,
    slug: &str,
) -> (String, String, String, String, String, String) {
    let id = |v: &Value| v["id"].as_str().expect("id").to_owned();
    let body = json!({"name": format!("{slug} cc"), "sip_uri": format!("sip:{slug}@127.0.0.1")});
    let d = id(&expect(app, admin, "POST", "/api/v1/destinations", Some(body), 201).await);
    let body = json!({"name": format!("{slug} campaign")});
    let c = id(&expect(app, admin, "POST", "/api/v1/campaigns", Some(body), 201).await);
    let path = format!("/api/v1/campaigns/{c}/destinations");
    let links = expect(
        app,
        admin,
        "PUT",
        &path,
        Some(json!([{"destination_id": d}])),
        200,
    )
    .await;
    let link = id(&links[0]);
    let n: u32 = slug.bytes().map(u32::from).sum();
    let number = format!("+3312345{:04}", n % 10_000);
    let body = json!({"number": number, "campaign_id": c});
    let did = id(&expect(app, admin, "POST", "/api/v1/phone-numbers", Some(body), 201).await);
    let call = format!("{slug}-routed-call");
    let path = format!(
        "/api/v1/internal/route?did={}&call_id={call}",
        urlencode(&number)
    );
    let v = expect(app, admin, "GET", &path, None, 200).await;
    assert_eq!(v["action"], "route", "{v}");
    (did, number, d, c, link, call)
}

/// Removes the fields that change by use, not by a change (`last_used_at`).
fn strip_use(mut v: Value) -> Value {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(m) => {
                m.remove("last_used_at");
                m.values_mut().for_each(walk);
            }
            Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut v);
    v
}

/// Everything of tenant `b`, read with its own tenant admin (and the platform admin).
async fn snapshot(app: &TestApp, b: &Tenant, platform: &Cred) -> BTreeMap<String, Value> {
    let c = |x: &str| urlencode(x);
    let reads = [
        "/api/v1/tenant".to_owned(),
        "/api/v1/queues".to_owned(),
        format!("/api/v1/queues/{}", c(&b.queue)),
        "/api/v1/calls".to_owned(),
        format!("/api/v1/calls/{}", c(&b.call_uuid)),
        format!("/api/v1/calls/{}/events?limit=500", c(&b.call_uuid)),
        "/api/v1/alerts".to_owned(),
        "/api/v1/users?limit=500".to_owned(),
        format!("/api/v1/users/{}", b.victim_id),
        format!("/api/v1/users/{}", b.admin_id),
        "/api/v1/api-keys?include_revoked=true&limit=500".to_owned(),
        format!("/api/v1/api-keys/{}", b.extra_key_id),
        format!("/api/v1/api-keys/{}", b.all_key_id),
        "/api/v1/audit?limit=500".to_owned(),
        "/api/v1/phone-numbers".to_owned(),
        format!("/api/v1/phone-numbers/{}", b.did_id),
        "/api/v1/destinations".to_owned(),
        format!("/api/v1/destinations/{}", b.destination_id),
        "/api/v1/campaigns".to_owned(),
        format!("/api/v1/campaigns/{}", b.campaign_id),
        format!("/api/v1/campaigns/{}/destinations", b.campaign_id),
        "/api/v1/cdrs".to_owned(),
        "/api/v1/agents".to_owned(),
        format!("/api/v1/agents/{}", c(&b.agent)),
    ];
    let mut out = BTreeMap::new();
    for path in reads {
        let v = expect(app, &b.admin, "GET", &path, None, 200).await;
        out.insert(path, strip_use(v));
    }
    let path = format!("/api/v1/tenants/{}", b.id);
    let v = expect(app, platform, "GET", &path, None, 200).await;
    out.insert(path, v);
    out
}

/// A problem answer with `id` replaced by a placeholder, to compare with another id's.
fn shape(status: StatusCode, v: &Value, id: &str) -> String {
    let text = v.to_string().replace(id, "<id>");
    let text = text.replace(&urlencode(id), "<id>");
    format!("{} {text}", status.as_u16())
}

// ---------------------------------------------------------------------------------------------
// 0. The tables cover the document.

/// Every operation of the served document is in [`OPERATIONS`] (and nothing else is), every
/// templated path is in [`BY_ID`], every operation taking `tenant_id` in [`BY_TENANT_ID`], and
/// every other path in [`NO_FOREIGN_ID`]; the document's own `security` agrees with which
/// operations are public.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn document_is_covered() {
    let app = TestApp::spawn().await;
    let doc = openapi(&app).await;
    let ops = operations(&doc);
    assert!(
        ops.len() >= 30,
        "the document lists {} operations",
        ops.len()
    );

    let documented: BTreeSet<(String, String)> = ops.iter().cloned().collect();
    let tabled: BTreeSet<(String, String)> = OPERATIONS
        .iter()
        .map(|(m, p, _, _)| (m.to_string(), p.to_string()))
        .collect();
    let missing: Vec<_> = documented.difference(&tabled).collect();
    let stale: Vec<_> = tabled.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "operations not in OPERATIONS: {missing:?}"
    );
    assert!(
        stale.is_empty(),
        "OPERATIONS not in the document: {stale:?}"
    );

    let mut problems = Vec::new();
    for (m, p) in &ops {
        let templated = p.contains('{');
        let by_tenant = takes_tenant_id(&doc, m, p);
        if templated {
            if !BY_ID.contains(&p.as_str()) {
                problems.push(format!("{m} {p}: templated path not in BY_ID"));
            }
            let one = vec!["x".to_owned()];
            let dummy = Ids {
                tenants: one.clone(),
                users: one.clone(),
                keys: one.clone(),
                queues: one.clone(),
                calls: one.clone(),
                phone_numbers: one.clone(),
                destinations: one.clone(),
                campaigns: one.clone(),
                agents: one,
            };
            if fill(p, &dummy).is_none() {
                problems.push(format!("{m} {p}: fill() does not know the template"));
            }
        } else if by_tenant {
            if !BY_TENANT_ID.contains(&(m.as_str(), p.as_str())) {
                problems.push(format!(
                    "{m} {p}: takes tenant_id but is not in BY_TENANT_ID"
                ));
            }
        } else if !NO_FOREIGN_ID.contains(&p.as_str()) {
            problems.push(format!(
                "{m} {p}: in no table (BY_ID, BY_TENANT_ID, NO_FOREIGN_ID)"
            ));
        }
        if templated && by_tenant {
            problems.push(format!(
                "{m} {p}: templated and takes tenant_id: extend the walk"
            ));
        }
        // Public in the table ⇔ the document requires no credential.
        let security = &op(&doc, m, p)["security"];
        let documented_public = match security.as_array() {
            None => doc["security"].as_array().is_none_or(|a| a.is_empty()),
            Some(reqs) => reqs
                .iter()
                .any(|r| r.as_object().is_some_and(|o| o.is_empty())),
        };
        let public = access_of(m, p) == Public;
        if public != documented_public {
            problems.push(format!(
                "{m} {p}: the table says public={public}, the document's security {security}"
            ));
        }
    }
    for (m, p) in BY_TENANT_ID {
        if !takes_tenant_id(&doc, m, p) {
            problems.push(format!(
                "{m} {p}: in BY_TENANT_ID but documents no tenant_id"
            ));
        }
    }
    let paths: BTreeSet<&str> = ops.iter().map(|(_, p)| p.as_str()).collect();
    for p in BY_ID.iter().chain(NO_FOREIGN_ID) {
        if !paths.contains(p) {
            problems.push(format!("{p}: listed but not in the document"));
        }
    }
    assert!(problems.is_empty(), "coverage:\n{}", problems.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// 1. Cross-tenant.

/// Tenant A's tenant admin and A's all-scope key, given tenant B's ids in every templated
/// operation, get exactly the answer of an id that exists nowhere (404, or the 403 of a scope
/// they lack whatever the id); `tenant_id` = B is a 404 that creates nothing; lists show nothing
/// of B, even filtered by B's ids; writes naming B's queue and call ids stay in A. B is
/// unchanged afterwards and its credentials still work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenants_ids_are_not_found_and_unchanged() {
    let app = TestApp::spawn().await;
    let platform_token = app.admin_token().await;
    let platform = Cred::Bearer(platform_token.clone());
    let a = tenant(&app, &platform_token, "alpha").await;
    let b = tenant(&app, &platform_token, "bravo").await;
    let doc = openapi(&app).await;
    let ops = operations(&doc);

    // The platform admin and its tenant (`default`) are victims too.
    let (s, me, _) = call(&app, &platform, "GET", "/api/v1/auth/me", None).await;
    assert_eq!(s, StatusCode::OK, "{me}");
    let platform_id = me["id"].as_str().expect("id").to_owned();
    let default_id = me["tenant_id"].as_str().expect("tenant_id").to_owned();
    let mut victims = b.ids();
    victims.users.push(platform_id.clone());
    victims.tenants.push(default_id.clone());
    let ghosts = Ids::ghosts(&victims);

    let before = snapshot(&app, &b, &platform).await;
    let platform_before = expect(
        &app,
        &platform,
        "GET",
        &format!("/api/v1/users/{platform_id}"),
        None,
        200,
    )
    .await;
    let default_before = expect(
        &app,
        &platform,
        "GET",
        &format!("/api/v1/tenants/{default_id}"),
        None,
        200,
    )
    .await;

    let attackers = [
        ("A's tenant admin", &a.admin, TENANT_SCOPES),
        ("A's all-scope key", &a.all_key, TENANT_SCOPES),
    ];
    let mut failures = Vec::new();
    let mut walked = 0;

    // Templated operations.
    for (m, template) in ops.iter().filter(|(_, p)| p.contains('{')) {
        let Some(targets) = fill(template, &victims) else {
            failures.push(format!("{m} {template}: no substitution in fill()"));
            continue;
        };
        let ghost_targets = fill(template, &ghosts).expect("same template");
        let body = attack_body(m, template);
        let scope = match access_of(m, template) {
            Scope(s) => s,
            other => panic!("{m} {template}: a templated operation is {other:?}"),
        };
        for (who, cred, scopes) in &attackers {
            let expected = if scopes.contains(&scope) { 404 } else { 403 };
            for ((path, id), (ghost_path, ghost_id)) in targets.iter().zip(&ghost_targets) {
                walked += 1;
                let (s, v, _) = call(&app, cred, m, path, body.as_ref()).await;
                let (gs, gv, _) = call(&app, cred, m, ghost_path, body.as_ref()).await;
                if s.as_u16() != expected {
                    failures.push(format!(
                        "{m} {path} as {who}: {s} (expected {expected}): {v}"
                    ));
                } else if shape(s, &v, id) != shape(gs, &gv, ghost_id) {
                    failures.push(format!(
                        "{m} {path} as {who}: answer differs from a non-existent id's, which \
                         tells that it exists: {s} {v} vs {gs} {gv}"
                    ));
                }
            }
        }
    }

    // `tenant_id` naming B.
    for (m, p) in ops
        .iter()
        .filter(|(m, p)| takes_tenant_id(&doc, m, p) && !p.contains('{'))
    {
        let request = |tid: &str| -> (String, Option<Value>) {
            match (m.as_str(), p.as_str()) {
                ("GET", _) => (format!("{p}?tenant_id={tid}"), None),
                ("POST", "/api/v1/users") => (
                    p.clone(),
                    Some(
                        json!({"email": "intruder@alpha.example", "display_name": "Intruder",
                        "role": "agent", "password": USER_PASSWORD, "tenant_id": tid}),
                    ),
                ),
                ("POST", "/api/v1/api-keys") => (
                    p.clone(),
                    Some(json!({"name": "intruder", "scopes": ["calls:read"], "tenant_id": tid})),
                ),
                _ => panic!("{m} {p}: no request with tenant_id; add one"),
            }
        };
        for (who, cred, _) in &attackers {
            for (victim, ghost) in [
                (&b.id, uuid::Uuid::new_v4().to_string()),
                (&default_id, uuid::Uuid::new_v4().to_string()),
            ] {
                walked += 1;
                let (path, body) = request(victim);
                let (s, v, _) = call(&app, cred, m, &path, body.as_ref()).await;
                let (gpath, gbody) = request(&ghost);
                let (gs, gv, _) = call(&app, cred, m, &gpath, gbody.as_ref()).await;
                if s != StatusCode::NOT_FOUND {
                    failures.push(format!(
                        "{m} {path} (tenant_id of another tenant) as {who}: {s}: {v}"
                    ));
                } else if shape(s, &v, victim) != shape(gs, &gv, &ghost) {
                    failures.push(format!(
                        "{m} {path} as {who}: answer differs from a non-existent tenant's: {v} vs {gv}"
                    ));
                }
            }
        }
    }

    // Lists (every GET without a path parameter, but the stream) show nothing of B, also when
    // their query names B's queue or user.
    let markers = b.markers();
    for (m, p) in ops.iter().filter(|(m, p)| m == "GET" && !p.contains('{')) {
        if access_of(m, p) == Public || p == "/api/v1/stream" || NOT_LISTS.contains(&p.as_str()) {
            continue;
        }
        let mut queries = vec![String::new()];
        for q in params_in(&doc, m, p, "query") {
            match q.as_str() {
                "queue_id" => queries.push(format!("?queue_id={}", urlencode(&b.queue))),
                "actor" => {
                    queries.push(format!("?actor={}", urlencode(&b.admin_email)));
                    queries.push(format!("?actor={}", b.admin_id));
                }
                "tenant_id" => {} // above
                q if q.ends_with("_id") => failures.push(format!(
                    "{m} {p}: query parameter {q} not in the walk; add it"
                )),
                _ => {}
            }
        }
        for q in queries {
            for (who, cred, scopes) in &attackers {
                walked += 1;
                let path = format!("{p}{q}");
                let (s, v, _) = call(&app, cred, m, &path, None).await;
                let lacks = match access_of(m, p) {
                    Scope(scope) => !scopes.contains(&scope),
                    _ => false,
                };
                if lacks {
                    if s != StatusCode::FORBIDDEN {
                        failures.push(format!("{m} {path} as {who}: {s} (expected 403): {v}"));
                    }
                    continue;
                }
                if !s.is_success() {
                    failures.push(format!("{m} {path} as {who}: {s}: {v}"));
                }
                let text = v.to_string();
                for mk in &markers {
                    if text.contains(mk.as_str()) {
                        failures.push(format!("{m} {path} as {who} shows B's `{mk}`: {v}"));
                    }
                }
            }
        }
    }

    // Writes in A that use B's names: A's own queue and call of the same ids.
    let q = expect(
        &app,
        &a.admin,
        "POST",
        "/api/v1/queues",
        Some(json!({"id": b.queue, "name": "alpha's namesake"})),
        201,
    )
    .await;
    assert_eq!(q["name"], "alpha's namesake");
    for body in [
        ev("call_routed", &b.call_ext, 3, json!({"agent_id": "a9"})),
        ev("call_answered", &b.call_ext, 4, json!({})),
        ev("call_ended", &b.call_ext, 5, json!({})),
    ] {
        let (s, v, _) = call(&app, &a.all_key, "POST", "/api/v1/events", Some(&body)).await;
        assert!(
            !s.is_success() || v["call_uuid"] != b.call_uuid.as_str(),
            "A's event for B's call id touched B's call: {s} {v}"
        );
    }
    let (s, v, _) = call(&app, &a.admin, "POST", "/api/v1/events/batch",
        Some(&json!({"events": [ev("call_initiated", &b.call_ext, 6, json!({"queue_id": b.queue}))]}))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(
        !v.to_string().contains(&b.call_uuid),
        "batch answer names B's call: {v}"
    );

    // A's telephony naming B's DID, B's call and B's campaign link reaches none of them.
    let path = format!(
        "/api/v1/internal/route?did={}&call_id=alpha-probe",
        urlencode(&b.did_number)
    );
    let v = expect(&app, &a.all_key, "GET", &path, None, 200).await;
    assert_eq!(v["reason"], "did_not_found", "{v}");
    let path = format!("/api/internal/route_info?did={}", urlencode(&b.did_number));
    let v = expect(&app, &a.all_key, "GET", &path, None, 404).await;
    assert_eq!(v["rejectReason"], "did_not_found", "{v}");
    let body = json!({"call_id": b.routed_call});
    expect(
        &app,
        &a.all_key,
        "POST",
        "/api/v1/internal/answered",
        Some(body),
        404,
    )
    .await;
    let body = json!({"call_id": b.routed_call, "status": "answered", "started_at": t(0)});
    let v = expect(
        &app,
        &a.all_key,
        "POST",
        "/api/v1/internal/cdr",
        Some(body),
        201,
    )
    .await;
    assert_eq!(
        v["campaign_id"],
        Value::Null,
        "A's CDR took nothing of B's: {v}"
    );
    let body = json!({"incomingDidNumber": b.did_number, "timestampStart": t(0),
        "callStatus": "ANSWERED", "asteriskUniqueid": "alpha.1", "campaignClientSettingId": b.link_id});
    let v = expect(
        &app,
        &a.all_key,
        "POST",
        "/api/internal/log_call",
        Some(body),
        400,
    )
    .await;
    assert!(v["errors"]["campaignClientSettingId"].is_array(), "{v}");

    // B is unchanged, and its credentials still work.
    let after = snapshot(&app, &b, &platform).await;
    for (path, v) in &before {
        if after.get(path) != Some(v) {
            failures.push(format!(
                "B's {path} changed:\n before {v}\n after  {}",
                after.get(path).unwrap_or(&Value::Null)
            ));
        }
    }
    let platform_after = expect(
        &app,
        &platform,
        "GET",
        &format!("/api/v1/users/{platform_id}"),
        None,
        200,
    )
    .await;
    if platform_after != platform_before {
        failures.push(format!(
            "the platform admin changed: {platform_before} → {platform_after}"
        ));
    }
    let default_after = expect(
        &app,
        &platform,
        "GET",
        &format!("/api/v1/tenants/{default_id}"),
        None,
        200,
    )
    .await;
    if default_after != default_before {
        failures.push(format!(
            "tenant default changed: {default_before} → {default_after}"
        ));
    }
    for (what, cred) in [("all-scope key", &b.all_key), ("extra key", &b.extra_key)] {
        let (s, v, _) = call(&app, cred, "GET", "/api/v1/calls", None).await;
        if s != StatusCode::OK {
            failures.push(format!("B's {what} no longer works: {s} {v}"));
        }
    }
    for (email, password, slug) in [
        (
            b.victim_email.as_str(),
            USER_PASSWORD,
            Some(b.slug.as_str()),
        ),
        (b.admin_email.as_str(), USER_PASSWORD, Some(b.slug.as_str())),
        ("admin@localhost", ADMIN_PASSWORD, None),
    ] {
        let (s, v) = app.login(email, password, slug).await;
        if s != StatusCode::OK {
            failures.push(format!("{email} can no longer log in: {s} {v}"));
        }
    }

    assert!(walked > 50, "walked only {walked} requests");
    assert!(
        failures.is_empty(),
        "{} cross-tenant failures ({}):\n{}",
        failures.len(),
        support::backend(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Missing and bad credentials.

fn b64url_decode(s: &str) -> Vec<u8> {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.bytes() {
        let v = A.iter().position(|x| *x == c).expect("base64url") as u32;
        bits = (bits << 6) | v;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    out
}

fn b64url_encode(b: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in b.chunks(3) {
        let v = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, x)| acc | (*x as u32) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(A[((v >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// `token` with its claims changed by `f`, the signature kept.
fn tampered(token: &str, f: impl FnOnce(&mut Value)) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "a compact JWT");
    let mut claims: Value = serde_json::from_slice(&b64url_decode(parts[1])).expect("claims");
    f(&mut claims);
    let c = b64url_encode(claims.to_string().as_bytes());
    assert_eq!(b64url_decode(&c), claims.to_string().as_bytes(), "codec");
    format!("{}.{c}.{}", parts[0], parts[2])
}

/// A request for `m template` as the role and key matrices send it: ids that exist nowhere, a
/// body that would succeed, and the status a caller allowed to make it gets.
fn probe(m: &str, template: &str) -> (String, Option<Value>, u16) {
    let ghost = uuid::Uuid::new_v4().to_string();
    let path = template
        .replace("{queue_id}", "ghost-queue")
        .replace("{id}", &ghost);
    let now = switchboard_core::format_rfc3339(switchboard_core::time::now_ms());
    let event =
        || json!({"type": "call_initiated", "call_id": unique("probe-call"), "timestamp": now});
    match (m, template) {
        (_, p) if p.contains('{') => {
            let body = match m {
                "PATCH" if p.starts_with("/api/v1/users") => Some(json!({"display_name": "x"})),
                "PATCH" if p.starts_with("/api/v1/phone-numbers") => Some(json!({"active": true})),
                "PATCH" => Some(json!({"name": "x"})),
                "PUT" if p.ends_with("/members") => Some(json!({"members": []})),
                "PUT" => Some(json!([])),
                "POST" if p.ends_with("/status") => Some(json!({"status": "offline"})),
                "GET" | "DELETE" => None,
                _ => panic!("no probe for {m} {p}"),
            };
            (path, body, 404)
        }
        ("POST", "/api/v1/auth/password") => (path, Some(json!({})), 422),
        ("GET", "/api/v1/stream") => (path, None, 400), // allowed, but not a WebSocket upgrade
        // A DID that exists nowhere: a reject, answered 200 (route API) or 404 (compatibility).
        ("GET", "/api/v1/internal/route") => (
            format!(
                "{path}?did=%2B33123459999&call_id={}",
                unique("probe-route")
            ),
            None,
            200,
        ),
        ("GET", "/api/internal/route_info") => (format!("{path}?did=%2B33123459999"), None, 404),
        ("POST", "/api/v1/internal/answered") => (
            path,
            Some(json!({"call_id": unique("probe-answered")})),
            404,
        ),
        ("POST", "/api/v1/internal/cdr") => (
            path,
            Some(json!({"call_id": unique("probe-cdr"), "status": "failed", "started_at": now})),
            201,
        ),
        ("POST", "/api/internal/log_call") => (
            path,
            Some(
                json!({"incomingDidNumber": "+33123459999", "timestampStart": now,
                "callStatus": "NOANSWER", "asteriskUniqueid": unique("probe.log")}),
            ),
            201,
        ),
        // A DID needs a queue or campaign that exists: the allowed caller gets the 422.
        ("POST", "/api/v1/phone-numbers") => (
            path,
            Some(json!({"number": "+33123459999", "queue_id": "ghost-queue"})),
            422,
        ),
        ("POST", "/api/v1/destinations") => (
            path,
            Some(json!({"name": unique("probe-dest"), "sip_uri": "sip:probe@127.0.0.1"})),
            201,
        ),
        ("POST", "/api/v1/campaigns") => {
            (path, Some(json!({"name": unique("probe-campaign")})), 201)
        }
        ("GET", _) => (path, None, 200),
        ("PATCH", "/api/v1/tenant") => (path, Some(json!({"name": "Default"})), 200),
        ("POST", "/api/v1/events") => (path, Some(event()), 201),
        ("POST", "/api/v1/events/batch") => (path, Some(json!({"events": [event()]})), 200),
        ("POST", "/api/v1/queues") => (path, Some(json!({"id": unique("probe-queue")})), 201),
        ("POST", "/api/v1/agents") => (path, Some(json!({"id": unique("probe-agent")})), 201),
        ("POST", "/api/v1/users") => (
            path,
            Some(
                json!({"email": format!("{}@probe.example", unique("u")), "display_name": "Probe",
                "role": "agent", "password": USER_PASSWORD}),
            ),
            201,
        ),
        ("POST", "/api/v1/api-keys") => (
            path,
            Some(json!({"name": unique("probe-key"), "scopes": ["keys:write"]})),
            201,
        ),
        ("POST", "/api/v1/tenants") => (
            path,
            Some(json!({"slug": unique("probe"), "name": "Probe"})),
            201,
        ),
        _ => panic!("no probe for {m} {template}: add one"),
    }
}

/// Every protected operation of the document: no credential, a garbage or wrongly shaped
/// Bearer token, a token whose claims were changed, a garbage key → 401 with
/// `WWW-Authenticate`, before any body is read. Public operations answer without one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_protected_route_refuses_missing_and_bad_credentials() {
    let app = TestApp::spawn().await;
    let doc = openapi(&app).await;
    let platform = app.admin_token().await;
    let other_tenant = app.create_tenant(&platform, "other").await;
    let forged_role = tampered(&platform, |c| c["role"] = json!("tenant_admin"));
    let forged_tenant = tampered(&platform, |c| c["tid"] = json!(other_tenant));
    let forged_exp = tampered(&platform, |c| {
        c["exp"] = json!(c["exp"].as_i64().unwrap() + 60)
    });
    // Sanity: the untampered token works, so the refusals below are the tampering's.
    expect(
        &app,
        &Cred::Bearer(platform.clone()),
        "GET",
        "/api/v1/auth/me",
        None,
        200,
    )
    .await;

    type BadCredential<'a> = (&'a str, Cred, Option<(&'a str, String)>);
    let bad: Vec<BadCredential> = vec![
        ("no credential", Cred::None, None),
        ("garbage Bearer", Cred::Bearer("garbage".into()), None),
        ("empty Bearer", Cred::Bearer(String::new()), None),
        ("JWT with role changed", Cred::Bearer(forged_role), None),
        ("JWT with tenant changed", Cred::Bearer(forged_tenant), None),
        ("JWT with exp changed", Cred::Bearer(forged_exp), None),
        ("garbage key", Cred::Key("garbage".into()), None),
        (
            "key-shaped garbage",
            Cred::Key(format!("sb_{}", "0".repeat(64))),
            None,
        ),
        (
            "Basic scheme",
            Cred::None,
            Some(("authorization", "Basic YWRtaW46eA==".into())),
        ),
    ];
    let mut failures = Vec::new();
    let mut checked = 0;
    for (m, p) in operations(&doc) {
        if access_of(&m, &p) == Public {
            continue;
        }
        let path = p
            .replace("{queue_id}", "q1")
            .replace("{id}", &uuid::Uuid::new_v4().to_string());
        for (what, cred, header) in &bad {
            checked += 1;
            let mut rb = app.client.request(method(&m), app.url(&path));
            rb = match cred {
                Cred::Key(k) => rb.header("X-API-Key", k),
                Cred::Bearer(t) => rb.header("Authorization", format!("Bearer {t}")),
                Cred::None => rb,
            };
            if let Some((h, v)) = header {
                rb = rb.header(*h, v);
            }
            // No body: a route that read its body before the credential would answer 4xx ≠ 401.
            let r = rb.send().await.expect("request");
            let s = r.status();
            let www = r
                .headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = r.text().await.unwrap_or_default();
            if s != StatusCode::UNAUTHORIZED {
                failures.push(format!("{m} {path} with {what}: {s} {body}"));
            } else if !www
                .as_deref()
                .is_some_and(|w| w.contains("Bearer") && w.contains("X-API-Key"))
            {
                failures.push(format!(
                    "{m} {path} with {what}: 401 without WWW-Authenticate ({www:?})"
                ));
            }
        }
    }
    assert!(checked > 200, "checked {checked}");

    // Public operations answer without a credential.
    for p in ["/health", "/ready", "/metrics"]
        .iter()
        .chain(PUBLIC_UNDOCUMENTED)
    {
        let (s, _, _) = call(&app, &Cred::None, "GET", p, None).await;
        if s != StatusCode::OK {
            failures.push(format!("GET {p} without a credential: {s}"));
        }
    }
    expect(
        &app,
        &Cred::None,
        "POST",
        "/api/v1/auth/logout",
        Some(json!({"refresh_token": "sbr_nope"})),
        204,
    )
    .await;
    expect(
        &app,
        &Cred::None,
        "POST",
        "/api/v1/auth/refresh",
        Some(json!({"refresh_token": "sbr_nope"})),
        401,
    )
    .await;

    // Credentials in the query string count on the stream only.
    let k = app.key.clone();
    for q in [format!("api_key={k}"), format!("access_token={platform}")] {
        let (s, v, _) = call(
            &app,
            &Cred::None,
            "GET",
            &format!("/api/v1/calls?{q}"),
            None,
        )
        .await;
        if s != StatusCode::UNAUTHORIZED {
            failures.push(format!(
                "GET /api/v1/calls?{} : {s} {v}",
                &q[..q.find('=').unwrap()]
            ));
        }
        // On the stream they authenticate: a plain GET then fails only the upgrade (400).
        let (s, v, _) = call(
            &app,
            &Cred::None,
            "GET",
            &format!("/api/v1/stream?{q}"),
            None,
        )
        .await;
        if s != StatusCode::BAD_REQUEST {
            failures.push(format!(
                "GET /api/v1/stream?{}… without upgrade: {s} {v}",
                &q[..q.find('=').unwrap()]
            ));
        }
    }
    for q in ["api_key=garbage", "access_token=garbage", ""] {
        let (s, _, h) = call(
            &app,
            &Cred::None,
            "GET",
            &format!("/api/v1/stream?{q}"),
            None,
        )
        .await;
        if s != StatusCode::UNAUTHORIZED || !h.contains_key("www-authenticate") {
            failures.push(format!("GET /api/v1/stream?{q} (no upgrade): {s}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures ({}):\n{}",
        failures.len(),
        support::backend(),
        failures.join("\n")
    );
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn ws(app: &TestApp, query: &str, header: Option<(&str, &str)>) -> Result<Ws, u16> {
    let mut req = format!("ws://{}/api/v1/stream{query}", app.addr)
        .into_client_request()
        .expect("ws request");
    if let Some((h, v)) = header {
        req.headers_mut().insert(
            tungstenite::http::HeaderName::from_bytes(h.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => Ok(ws),
        Err(tungstenite::Error::Http(r)) => Err(r.status().as_u16()),
        Err(e) => panic!("stream {query}: {e}"),
    }
}

/// A real WebSocket handshake: refused with 401 without a valid credential, 403 without
/// `stream:read`; accepted with a key or an access token, in a header or the query string.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_handshake_checks_the_credential_first() {
    let app = TestApp::spawn().await;
    let platform = app.admin_token().await;
    let p = Cred::Bearer(platform.clone());
    user(&p, &app, "agent@default.example", "agent", None).await;
    let agent = token(&app, "agent@default.example", USER_PASSWORD, None).await;
    let (_, calls_only) = key(
        &app,
        &Cred::Key(app.key.clone()),
        json!({"name": "c", "scopes": ["calls:read"]}),
    )
    .await;

    assert_eq!(ws(&app, "", None).await.err(), Some(401), "no credential");
    assert_eq!(ws(&app, "?api_key=garbage", None).await.err(), Some(401));
    assert_eq!(
        ws(&app, "?access_token=garbage", None).await.err(),
        Some(401)
    );
    assert_eq!(
        ws(&app, "", Some(("authorization", "Bearer garbage")))
            .await
            .err(),
        Some(401)
    );
    assert_eq!(
        ws(&app, &format!("?api_key={calls_only}"), None)
            .await
            .err(),
        Some(403)
    );
    assert_eq!(
        ws(&app, "", Some(("x-api-key", &calls_only))).await.err(),
        Some(403)
    );

    let bearer = format!("Bearer {agent}");
    for (q, h) in [
        (format!("?api_key={}", app.key), None),
        (format!("?access_token={agent}"), None),
        (String::new(), Some(("x-api-key", app.key.as_str()))),
        (String::new(), Some(("authorization", bearer.as_str()))),
    ] {
        let mut s = ws(&app, &q, h)
            .await
            .unwrap_or_else(|c| panic!("stream {q} {h:?}: {c}"));
        let _ = tokio::time::timeout(std::time::Duration::from_millis(50), s.next()).await;
        let _ = s.close(None).await;
    }
}

// ---------------------------------------------------------------------------------------------
// 3. The role and key-scope matrix.

/// Sends every protected operation of the document as `cred` holding `scopes` (for
/// AnyCredential operations: `user` says whether it is a user) and collects each mismatch
/// with the documented table.
async fn walk_matrix(
    app: &TestApp,
    doc: &Value,
    who: &str,
    cred: &Cred,
    scopes: &BTreeSet<&'static str>,
    failures: &mut Vec<String>,
) {
    for (m, p) in operations(doc) {
        let access = access_of(&m, &p);
        if access == Public {
            continue;
        }
        let (path, body, ok) = probe(&m, &p);
        // The probe makes an agent; a key may give only a role whose scopes it holds all of
        // (docs/security.md), so a key lacking one of the agent's scopes is refused.
        let ok = if who.starts_with("key")
            && m == "POST"
            && p == "/api/v1/users"
            && !role_scopes("agent").is_subset(scopes)
        {
            403
        } else {
            ok
        };
        let (s, v, _) = call(app, cred, &m, &path, body.as_ref()).await;
        match access {
            Scope(scope) if !scopes.contains(scope) => {
                if s != StatusCode::FORBIDDEN {
                    failures.push(format!(
                        "{who}: {m} {p} needs {scope}, which it lacks: {s} (expected 403) {v}"
                    ));
                } else if !v.to_string().contains(scope) {
                    failures.push(format!(
                        "{who}: {m} {p}: 403 that does not name {scope}: {v}"
                    ));
                }
            }
            _ => {
                if s.as_u16() != ok {
                    failures.push(format!(
                        "{who}: {m} {p} ({access:?}): {s} (expected {ok}) {v}"
                    ));
                }
            }
        }
    }
}

/// Each role, logged in, against every protected operation: 403 exactly when the documented
/// role table lacks the operation's scope, the operation's own answer otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_matrix() {
    let app = TestApp::spawn().await;
    let doc = openapi(&app).await;
    let platform = app.admin_token().await;
    let p = Cred::Bearer(platform.clone());
    let mut roles = vec![("platform_admin", p.clone())];
    for role in ["tenant_admin", "supervisor", "agent"] {
        let email = format!("{role}@default.example");
        user(&p, &app, &email, role, None).await;
        roles.push((
            role,
            Cred::Bearer(token(&app, &email, USER_PASSWORD, None).await),
        ));
    }
    // The roles nest as documented (a sanity check of the table itself).
    assert!(role_scopes("agent").is_subset(&role_scopes("supervisor")));
    assert!(role_scopes("supervisor").is_subset(&role_scopes("tenant_admin")));
    assert!(!role_scopes("tenant_admin").contains("tenants:manage"));

    let mut failures = Vec::new();
    for (role, cred) in &roles {
        let scopes = role_scopes(role);
        walk_matrix(&app, &doc, role, cred, &scopes, &mut failures).await;
        // `/auth/me` reports the same scopes as the documented table.
        let me = expect(&app, cred, "GET", "/api/v1/auth/me", None, 200).await;
        let got: BTreeSet<String> = me["scopes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect();
        let want: BTreeSet<String> = scopes.iter().map(|s| s.to_string()).collect();
        if got != want {
            failures.push(format!(
                "{role}: /auth/me scopes {got:?}, documented {want:?}"
            ));
        }
        if me["role"] != *role {
            failures.push(format!("{role}: /auth/me role {}", me["role"]));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures ({}):\n{}",
        failures.len(),
        support::backend(),
        failures.join("\n")
    );
}

/// A key holding one scope, for each scope, against every protected operation: 403 exactly
/// for the operations of other scopes; `*` holds every tenant scope and never
/// `tenants:manage`. In particular a `calls:read` key may list calls but not post events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_scope_matrix() {
    let app = TestApp::spawn().await;
    let doc = openapi(&app).await;
    let boot = Cred::Key(app.key.clone());
    let mut failures = Vec::new();

    let (_, calls_only) = key(
        &app,
        &boot,
        json!({"name": "calls", "scopes": ["calls:read"]}),
    )
    .await;
    let calls_only = Cred::Key(calls_only);
    expect(&app, &calls_only, "GET", "/api/v1/calls", None, 200).await;
    let e = json!({"type": "call_initiated", "call_id": "K1", "timestamp": t(0)});
    let v = expect(
        &app,
        &calls_only,
        "POST",
        "/api/v1/events",
        Some(e.clone()),
        403,
    )
    .await;
    assert!(v.to_string().contains("events:write"), "{v}");
    expect(
        &app,
        &calls_only,
        "POST",
        "/api/v1/events/batch",
        Some(json!({"events": [e]})),
        403,
    )
    .await;
    expect(&app, &calls_only, "GET", "/api/v1/calls/K1", None, 404).await; // nothing was posted

    for scope in TENANT_SCOPES {
        let (_, k) = key(
            &app,
            &boot,
            json!({"name": format!("only {scope}"), "scopes": [scope]}),
        )
        .await;
        let scopes: BTreeSet<&'static str> = [*scope].into_iter().collect();
        walk_matrix(
            &app,
            &doc,
            &format!("key [{scope}]"),
            &Cred::Key(k),
            &scopes,
            &mut failures,
        )
        .await;
    }
    let all: BTreeSet<&'static str> = TENANT_SCOPES.iter().copied().collect();
    walk_matrix(&app, &doc, "key [*]", &boot, &all, &mut failures).await;
    assert!(
        failures.is_empty(),
        "{} failures ({}):\n{}",
        failures.len(),
        support::backend(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Privilege escalation.

/// Users' e-mails in the caller's tenant.
async fn emails(app: &TestApp, cred: &Cred) -> BTreeSet<String> {
    let v = expect(app, cred, "GET", "/api/v1/users?limit=500", None, 200).await;
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_privilege_escalation() {
    let app = TestApp::spawn().await;
    let platform = app.admin_token().await;
    let p = Cred::Bearer(platform.clone());
    let boot = Cred::Key(app.key.clone());
    let me = expect(&app, &p, "GET", "/api/v1/auth/me", None, 200).await;
    let platform_id = me["id"].as_str().unwrap().to_owned();
    let ta_id = user(&p, &app, "ta@default.example", "tenant_admin", None).await;
    let ta = Cred::Bearer(token(&app, "ta@default.example", USER_PASSWORD, None).await);
    let sup_id = user(&p, &app, "sup@default.example", "supervisor", None).await;
    let sup = Cred::Bearer(token(&app, "sup@default.example", USER_PASSWORD, None).await);
    let agent_id = user(&p, &app, "agent@default.example", "agent", None).await;
    let agent = Cred::Bearer(token(&app, "agent@default.example", USER_PASSWORD, None).await);
    let users_before = emails(&app, &p).await;
    let admin_before = expect(
        &app,
        &p,
        "GET",
        &format!("/api/v1/users/{platform_id}"),
        None,
        200,
    )
    .await;
    let new_user = |email: &str, role: &str| json!({"email": email, "display_name": "X", "role": role, "password": USER_PASSWORD});

    // A tenant admin makes no platform admin, and cannot promote anyone to one.
    expect(
        &app,
        &ta,
        "POST",
        "/api/v1/users",
        Some(new_user("evil@default.example", "platform_admin")),
        403,
    )
    .await;
    expect(
        &app,
        &ta,
        "PATCH",
        &format!("/api/v1/users/{agent_id}"),
        Some(json!({"role": "platform_admin"})),
        403,
    )
    .await;
    // Nor may a key with users:write (a key has no role; `platform_admin` is never its to give).
    expect(
        &app,
        &boot,
        "POST",
        "/api/v1/users",
        Some(new_user("evil2@default.example", "platform_admin")),
        403,
    )
    .await;
    expect(
        &app,
        &boot,
        "PATCH",
        &format!("/api/v1/users/{agent_id}"),
        Some(json!({"role": "platform_admin"})),
        403,
    )
    .await;

    // The bootstrap platform admin lives in tenant `default`, the tenant admin's own tenant:
    // neither the tenant admin nor the tenant's all-scope key may change, reset or deactivate it.
    for (who, cred) in [("tenant admin", &ta), ("bootstrap key", &boot)] {
        for (m, body) in [
            ("PATCH", Some(json!({"display_name": "owned"}))),
            (
                "PATCH",
                Some(json!({"password": "a-completely-New-passphrase-77"})),
            ),
            ("PATCH", Some(json!({"email": "evil@default.example"}))),
            ("PATCH", Some(json!({"role": "agent"}))),
            ("PATCH", Some(json!({"active": false}))),
            ("DELETE", None),
        ] {
            let (s, v, _) = call(
                &app,
                cred,
                m,
                &format!("/api/v1/users/{platform_id}"),
                body.as_ref(),
            )
            .await;
            assert_eq!(
                s,
                StatusCode::FORBIDDEN,
                "{who}: {m} the platform admin {body:?}: {v}"
            );
        }
    }
    let admin_after = expect(
        &app,
        &p,
        "GET",
        &format!("/api/v1/users/{platform_id}"),
        None,
        200,
    )
    .await;
    assert_eq!(admin_before, admin_after, "the platform admin changed");
    token(&app, "admin@localhost", ADMIN_PASSWORD, None).await;

    // A supervisor creates and changes no user; an agent cannot promote itself.
    let refused = [
        (
            &sup,
            "POST",
            "/api/v1/users".to_owned(),
            new_user("s1@default.example", "agent"),
        ),
        (
            &sup,
            "PATCH",
            format!("/api/v1/users/{agent_id}"),
            json!({"display_name": "x"}),
        ),
        (
            &sup,
            "PATCH",
            format!("/api/v1/users/{sup_id}"),
            json!({"role": "tenant_admin"}),
        ),
        (
            &agent,
            "PATCH",
            format!("/api/v1/users/{agent_id}"),
            json!({"role": "supervisor"}),
        ),
    ];
    for (cred, m, path, body) in refused {
        expect(&app, cred, m, &path, Some(body), 403).await;
    }
    assert_eq!(
        emails(&app, &p).await,
        users_before,
        "a refused request created a user"
    );

    // A key's scopes never exceed its creator's.
    let (_, kw) = key(
        &app,
        &boot,
        json!({"name": "kw", "scopes": ["keys:write", "calls:read"]}),
    )
    .await;
    let kw = Cred::Key(kw);
    for scopes in [
        json!(["events:write"]),
        json!(["*"]),
        json!(["calls:read", "events:write"]),
        json!(["tenants:manage"]),
    ] {
        let v = expect(
            &app,
            &kw,
            "POST",
            "/api/v1/api-keys",
            Some(json!({"name": "x", "scopes": scopes})),
            403,
        )
        .await;
        assert_eq!(v["field"], "scopes", "{v}");
    }
    key(&app, &kw, json!({"name": "ok", "scopes": ["calls:read"]})).await;
    // Nobody gets `tenants:manage` on a key, not even the platform admin; supervisors hold
    // keys:read only; a tenant admin's key cannot name another tenant.
    expect(
        &app,
        &p,
        "POST",
        "/api/v1/api-keys",
        Some(json!({"name": "x", "scopes": ["tenants:manage"]})),
        403,
    )
    .await;
    expect(
        &app,
        &sup,
        "POST",
        "/api/v1/api-keys",
        Some(json!({"name": "x", "scopes": ["calls:read"]})),
        403,
    )
    .await;
    let (_, star) = key(&app, &ta, json!({"name": "star", "scopes": ["*"]})).await;
    let me = expect(&app, &Cred::Key(star), "GET", "/api/v1/auth/me", None, 200).await;
    assert!(!me["scopes"].to_string().contains("tenants:manage"), "{me}");
    // An API key has no password to change.
    expect(
        &app,
        &boot,
        "POST",
        "/api/v1/auth/password",
        Some(json!({"current_password": "x", "new_password": "another-Strong-passphrase-5"})),
        403,
    )
    .await;

    // Nobody changes their own role or deactivates themselves.
    for (who, cred, id, other_role) in [
        ("tenant admin", &ta, &ta_id, "supervisor"),
        ("platform admin", &p, &platform_id, "tenant_admin"),
    ] {
        let path = format!("/api/v1/users/{id}");
        expect(
            &app,
            cred,
            "PATCH",
            &path,
            Some(json!({"role": other_role})),
            409,
        )
        .await;
        expect(
            &app,
            cred,
            "PATCH",
            &path,
            Some(json!({"active": false})),
            409,
        )
        .await;
        expect(&app, cred, "DELETE", &path, None, 409).await;
        // Changing one's own display name is fine.
        let v = expect(
            &app,
            cred,
            "PATCH",
            &path,
            Some(json!({"display_name": format!("{who} renamed")})),
            200,
        )
        .await;
        assert_eq!(v["active"], true);
    }
    expect(
        &app,
        &ta,
        "PATCH",
        &format!("/api/v1/users/{ta_id}"),
        Some(json!({"role": "platform_admin"})),
        403,
    )
    .await;
    let v = expect(
        &app,
        &p,
        "GET",
        &format!("/api/v1/users/{ta_id}"),
        None,
        200,
    )
    .await;
    assert_eq!(
        (v["role"].as_str(), v["active"].as_bool()),
        (Some("tenant_admin"), Some(true))
    );
    expect(&app, &ta, "GET", "/api/v1/auth/me", None, 200).await;

    // A tenant admin cannot deactivate its own tenant, nor reach tenant management at all.
    expect(
        &app,
        &ta,
        "PATCH",
        "/api/v1/tenant",
        Some(json!({"active": false})),
        422,
    )
    .await;
    expect(&app, &ta, "GET", "/api/v1/tenants", None, 403).await;
}

// ---------------------------------------------------------------------------------------------
// 5. Revocation, deactivation, demotion, throttling and rate limits act on the next request.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_take_effect_on_the_next_request() {
    let app = TestApp::spawn().await;
    let platform = app.admin_token().await;
    let p = Cred::Bearer(platform.clone());
    let boot = Cred::Key(app.key.clone());

    // A revoked key.
    let (kid, k) = key(
        &app,
        &boot,
        json!({"name": "soon revoked", "scopes": ["calls:read"]}),
    )
    .await;
    let k = Cred::Key(k);
    expect(&app, &k, "GET", "/api/v1/calls", None, 200).await;
    expect(
        &app,
        &boot,
        "DELETE",
        &format!("/api/v1/api-keys/{kid}"),
        None,
        204,
    )
    .await;
    let (s, _, h) = call(&app, &k, "GET", "/api/v1/calls", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(h.contains_key("www-authenticate"));

    // A demoted supervisor loses reports:read at once; a deactivated user is refused.
    let sup_id = user(&p, &app, "sup@default.example", "supervisor", None).await;
    let sup = Cred::Bearer(token(&app, "sup@default.example", USER_PASSWORD, None).await);
    expect(&app, &sup, "GET", "/api/v1/reports/queues", None, 200).await;
    expect(
        &app,
        &p,
        "PATCH",
        &format!("/api/v1/users/{sup_id}"),
        Some(json!({"role": "agent"})),
        200,
    )
    .await;
    expect(&app, &sup, "GET", "/api/v1/reports/queues", None, 403).await;
    expect(&app, &sup, "GET", "/api/v1/calls", None, 200).await;
    expect(
        &app,
        &p,
        "DELETE",
        &format!("/api/v1/users/{sup_id}"),
        None,
        204,
    )
    .await;
    expect(&app, &sup, "GET", "/api/v1/calls", None, 401).await;
    let (s, _) = app.login("sup@default.example", USER_PASSWORD, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "a deactivated user logs in");

    // A deactivated tenant: its users' tokens and its keys are refused; reactivated, they work.
    let tid = app.create_tenant(&platform, "gamma").await;
    user(&p, &app, "admin@gamma.example", "tenant_admin", Some(&tid)).await;
    let ga = Cred::Bearer(token(&app, "admin@gamma.example", USER_PASSWORD, None).await);
    let (_, gk) = key(&app, &ga, json!({"name": "g", "scopes": ["*"]})).await;
    let gk = Cred::Key(gk);
    expect(
        &app,
        &p,
        "DELETE",
        &format!("/api/v1/tenants/{tid}"),
        None,
        204,
    )
    .await;
    expect(&app, &ga, "GET", "/api/v1/tenant", None, 401).await;
    expect(&app, &gk, "GET", "/api/v1/tenant", None, 401).await;
    expect(
        &app,
        &p,
        "PATCH",
        &format!("/api/v1/tenants/{tid}"),
        Some(json!({"active": true})),
        200,
    )
    .await;
    expect(&app, &ga, "GET", "/api/v1/tenant", None, 200).await;
    expect(&app, &gk, "GET", "/api/v1/tenant", None, 200).await;

    // Refresh tokens rotate; presenting a used one revokes the whole session.
    let (s, v) = app.login("admin@gamma.example", USER_PASSWORD, None).await;
    assert_eq!(s, StatusCode::OK);
    let r1 = v["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(v["expires_in"], 900);
    assert_eq!(v["refresh_expires_in"], 30 * 86_400);
    let v = expect(
        &app,
        &Cred::None,
        "POST",
        "/api/v1/auth/refresh",
        Some(json!({"refresh_token": r1})),
        200,
    )
    .await;
    let r2 = v["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(r1, r2);
    expect(
        &app,
        &Cred::None,
        "POST",
        "/api/v1/auth/refresh",
        Some(json!({"refresh_token": r1})),
        401,
    )
    .await;
    expect(
        &app,
        &Cred::None,
        "POST",
        "/api/v1/auth/refresh",
        Some(json!({"refresh_token": r2})),
        401,
    )
    .await;

    // A key over its rate limit: 429 with Retry-After.
    let (_, rl) = key(&app, &boot, json!({"name": "slow", "scopes": ["calls:read"], "rate_limit": {"per_second": 1, "burst": 1}})).await;
    let rl = Cred::Key(rl);
    let mut limited = None;
    for _ in 0..5 {
        let (s, _, h) = call(&app, &rl, "GET", "/api/v1/calls", None).await;
        if s == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(h);
            break;
        }
    }
    let h = limited.expect("a key limited to 1/s is never refused over 5 quick requests");
    assert!(h.contains_key("retry-after"), "{h:?}");
}

/// Five failed logins in 15 minutes lock the account out (429 + Retry-After), even with the
/// right password, and the lock does not tell whether the account exists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_throttling() {
    let app = TestApp::spawn().await;
    for _ in 0..5 {
        let (s, v) = app
            .login("admin@localhost", "wrong-password-wrong", None)
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    }
    let (s, _, h) = app
        .call_as(
            &Cred::None,
            Method::POST,
            "/api/v1/auth/login",
            Some(&json!({"email": "admin@localhost", "password": ADMIN_PASSWORD})),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::TOO_MANY_REQUESTS,
        "the right password after 5 failures"
    );
    let secs: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=900).contains(&secs), "Retry-After {secs}");
    // The address is locked too: another account (existing or not) from the same address.
    let (s, _) = app
        .login("nobody@example.com", "whatever-password-x", None)
        .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
}

/// The stream checks the credential before anything of its query: without a credential, a
/// query it would refuse (a U+0000, a bad `since` or `topics`) is still a 401, as on every
/// other route, so an anonymous caller learns nothing of the parameters' rules.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_refuses_an_anonymous_caller_before_reading_its_query() {
    let app = TestApp::spawn().await;
    let mut failures = Vec::new();
    for q in ["?since=-1", "?topics=nope", "?topics=%00", "?x=%00"] {
        for p in ["/api/v1/stream", "/api/v1/calls", "/api/v1/audit"] {
            let (s, v, _) = call(&app, &Cred::None, "GET", &format!("{p}{q}"), None).await;
            if s != StatusCode::UNAUTHORIZED {
                failures.push(format!("GET {p}{q} without a credential: {s} {v}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures ({}):\n{}",
        failures.len(),
        support::backend(),
        failures.join("\n")
    );
}

/// A key holding `users:write` but not every tenant scope may not make (or take over, by a
/// password reset) a user whose role holds scopes the key lacks: otherwise it logs in as that
/// user and holds them all, the escalation that key creation refuses ("a key cannot hold
/// scopes its creator lacks").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_write_key_cannot_mint_a_stronger_user() {
    let app = TestApp::spawn().await;
    let boot = Cred::Key(app.key.clone());
    let p = Cred::Bearer(app.admin_token().await);
    let ta = user(&p, &app, "ta@default.example", "tenant_admin", None).await;
    let (_, uw) = key(
        &app,
        &boot,
        json!({"name": "uw", "scopes": ["users:write", "users:read"]}),
    )
    .await;
    let uw = Cred::Key(uw);
    let body = json!({"email": "made@default.example", "display_name": "Made", "role": "tenant_admin",
        "password": USER_PASSWORD});
    let (s, v, _) = call(&app, &uw, "POST", "/api/v1/users", Some(&body)).await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "a users:write key created a tenant admin: {v}"
    );
    let (s, v, _) = call(
        &app,
        &uw,
        "PATCH",
        &format!("/api/v1/users/{ta}"),
        Some(&json!({"password": "fresh-Unusual-passphrase-93"})),
    )
    .await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "a users:write key reset a tenant admin's password: {v}"
    );
}
