//! Start-up: settings, bootstrap, the router and the server loop. `main` only parses the CLI;
//! tests call [`build`] and [`serve`] with a listener bound on port 0.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request};
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use switchboard_core::time::now_ms;
use switchboard_engine::{Engine, EngineConfig, TimeSource};
use switchboard_store::{sqlite_url, Store};

use crate::auth::throttle::LoginThrottle;
use crate::auth::{generate_key, AuthState};
use crate::extract::BODY_LIMIT;
use crate::limits::HttpLimits;
use crate::routes;
use switchboard_core::{Role, ScopeSet};
use switchboard_store::{Actor, Bootstrap, NewApiKey, NewTenant, NewUser};

/// A secret that never prints itself.
#[derive(Clone, Default)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Server settings (from flags and `SWITCHBOARD_*` / `DATABASE_URL` environment variables).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address to listen on (default `127.0.0.1:8080`).
    pub listen: SocketAddr,
    /// Directory of the SQLite database (default `./data`).
    pub data_dir: PathBuf,
    /// `postgres://…` to use PostgreSQL instead of SQLite.
    pub database_url: Option<String>,
    /// Make the bootstrap API key this value (`SWITCHBOARD_BOOTSTRAP_API_KEY`); at least
    /// [`MIN_BOOTSTRAP_KEY_CHARS`] characters.
    pub bootstrap_api_key: Option<Secret>,
    /// An event timestamp later than `max(now, watermark)` by more than this many seconds is
    /// refused (422 on `timestamp`). Default 86,400 (24 h).
    pub max_clock_skew_s: u64,
    /// Commands the writer's queue holds; when full, new commands get 503 + `Retry-After`.
    /// Default 4096.
    pub writer_queue: usize,
    /// Longest time to produce a response head (`request_timeout_s`); a request not answered
    /// by then gets 504 problem+json. Default 30 s. WebSocket streams are limited only until
    /// their upgrade.
    pub request_timeout: Duration,
    /// API requests handled at once; more are shed with 503 problem+json and `Retry-After`
    /// (`/health`, `/ready` and `/metrics` are never shed). Default 1024.
    pub max_concurrent_requests: usize,
    /// The engine's clock: the wall clock, or a manual one in tests.
    pub time: TimeSource,
    /// How access tokens are signed (HS256 secret or Ed25519 key files) and the previous key
    /// still accepted after a rotation.
    pub jwt: JwtSettings,
    /// E-mail of the platform admin made on an empty database (`admin@localhost`).
    pub bootstrap_admin_email: String,
    /// Password of that admin (`SWITCHBOARD_BOOTSTRAP_ADMIN_PASSWORD`); generated and printed
    /// once when unset.
    pub bootstrap_admin_password: Option<Secret>,
}

/// Access-token signing settings. HS256 with `secret` by default; EdDSA (Ed25519) when
/// `private_key_file` and `public_key_file` (PEM) are given. Without either, a random HS256
/// secret is made at start-up: tokens then do not outlive the process (refresh tokens do).
#[derive(Debug, Clone, Default)]
pub struct JwtSettings {
    /// HS256 secret, at least 32 bytes (`SWITCHBOARD_JWT_SECRET`).
    pub secret: Option<Secret>,
    /// The secret in force before a rotation (`SWITCHBOARD_JWT_PREVIOUS_SECRET`): tokens it
    /// signed before this start stay valid until they expire (at most one access lifetime).
    pub previous_secret: Option<Secret>,
    /// Ed25519 private key, PKCS#8 PEM (`SWITCHBOARD_JWT_PRIVATE_KEY_FILE`).
    pub private_key_file: Option<PathBuf>,
    /// Ed25519 public key, PEM (`SWITCHBOARD_JWT_PUBLIC_KEY_FILE`).
    pub public_key_file: Option<PathBuf>,
    /// The Ed25519 key pair in force before a rotation
    /// (`SWITCHBOARD_JWT_PREVIOUS_PRIVATE_KEY_FILE`, `SWITCHBOARD_JWT_PREVIOUS_PUBLIC_KEY_FILE`).
    pub previous_private_key_file: Option<PathBuf>,
    /// See `previous_private_key_file`.
    pub previous_public_key_file: Option<PathBuf>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: crate::config::DEFAULT_LISTEN
                .parse()
                .expect("valid default address"),
            data_dir: PathBuf::from(crate::config::DEFAULT_DATA_DIR),
            database_url: None,
            bootstrap_api_key: None,
            max_clock_skew_s: crate::config::DEFAULT_MAX_CLOCK_SKEW_S,
            writer_queue: crate::config::DEFAULT_WRITER_QUEUE,
            request_timeout: Duration::from_secs(crate::config::DEFAULT_REQUEST_TIMEOUT_S),
            max_concurrent_requests: crate::config::DEFAULT_MAX_CONCURRENT_REQUESTS,
            time: TimeSource::System,
            jwt: JwtSettings::default(),
            bootstrap_admin_email: DEFAULT_BOOTSTRAP_ADMIN_EMAIL.to_owned(),
            bootstrap_admin_password: None,
        }
    }
}

impl Settings {
    /// The database URL in force: `database_url`, else SQLite in `data_dir`.
    pub fn effective_database_url(&self) -> anyhow::Result<String> {
        match &self.database_url {
            Some(u) if !u.is_empty() => Ok(u.clone()),
            _ => {
                std::fs::create_dir_all(&self.data_dir).map_err(|e| {
                    anyhow::anyhow!("cannot create data dir {}: {e}", self.data_dir.display())
                })?;
                Ok(sqlite_url(&self.data_dir))
            }
        }
    }

    /// The database URL in force, for commands other than `serve`: those never create a
    /// database, so a command run from the wrong folder does not silently start an empty one.
    ///
    /// Errors: SQLite is in use and `data_dir` holds no database (the message names the file
    /// and how to point at the right one).
    pub fn existing_database_url(&self) -> anyhow::Result<String> {
        match &self.database_url {
            Some(u) if !u.is_empty() => Ok(u.clone()),
            _ => {
                let file = self.data_dir.join(SQLITE_FILE);
                if !file.is_file() {
                    anyhow::bail!(
                        "no database at {}: `switchboard serve` creates it; pass the data \
                         directory `serve` used with --data-dir (or SWITCHBOARD_DATA_DIR), or \
                         --database-url for PostgreSQL",
                        file.display()
                    );
                }
                Ok(sqlite_url(&self.data_dir))
            }
        }
    }
}

/// Default e-mail of the platform admin made on an empty database.
pub const DEFAULT_BOOTSTRAP_ADMIN_EMAIL: &str = "admin@localhost";

/// The SQLite database file inside the data directory.
pub const SQLITE_FILE: &str = "switchboard.db";
/// Shortest bootstrap API key accepted, in characters (a generated key has 67).
pub const MIN_BOOTSTRAP_KEY_CHARS: usize = 32;

/// Refuses a bootstrap key shorter than [`MIN_BOOTSTRAP_KEY_CHARS`]: it is a credential with
/// every scope, so it must not be guessable.
pub fn check_bootstrap_key(key: &str) -> anyhow::Result<()> {
    let n = key.chars().count();
    if n < MIN_BOOTSTRAP_KEY_CHARS {
        anyhow::bail!(
            "SWITCHBOARD_BOOTSTRAP_API_KEY is {n} characters long; it must have at least \
             {MIN_BOOTSTRAP_KEY_CHARS} (e.g. `sb_` and 64 hex digits from `openssl rand -hex 32`), \
             or leave it unset to have a random key generated"
        );
    }
    Ok(())
}

/// Shared state of the handlers.
#[derive(Clone)]
pub struct AppState {
    /// Reads (calls, events, alerts, reports) and admin writes (queues, tenant).
    pub store: Store,
    /// The one write path for call events.
    pub engine: Engine,
    /// Credentials: the key and user directory, token keys, login throttling.
    pub auth: AuthState,
    /// Cancelled when the server stops: open streams close.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// Renders `GET /metrics` (the process's one Prometheus recorder).
    pub metrics: PrometheusHandle,
    /// The HTTP timeout and concurrency cap the router applies.
    pub limits: HttpLimits,
}

/// What a start on an empty database created: to print once.
#[derive(Debug, Clone)]
pub struct Bootstrapped {
    /// The tenant's API key (every tenant scope).
    pub key: String,
    /// The platform admin's e-mail.
    pub admin_email: String,
    /// The admin's password when it was generated (`None` when it came from the settings).
    pub admin_password: Option<String>,
}

/// A built application, ready to serve.
pub struct App {
    /// What the handlers share.
    pub state: AppState,
    /// What this start created on an empty database, if it did.
    pub bootstrapped: Option<Bootstrapped>,
}

/// Connects the store (running migrations), bootstraps an empty database and starts the engine.
///
/// Bootstrap: on a database without tenants, creates tenant `default` and an API key with every
/// scope (the `bootstrap_api_key` value if given, else a random one). When `bootstrap_api_key`
/// is given and the database already has tenants, the key is added to `default` if missing, so
/// scripts can rely on it.
///
/// Errors: the bootstrap key is too short ([`check_bootstrap_key`]), the database cannot be
/// opened or migrated, the metrics recorder cannot be installed.
pub async fn build(settings: &Settings) -> anyhow::Result<App> {
    if let Some(k) = &settings.bootstrap_api_key {
        check_bootstrap_key(&k.0)?;
    }
    let metrics = crate::metrics::handle()?;
    let url = settings.effective_database_url()?;
    let store = Store::connect(&url).await?;
    let tokens = crate::auth::tokens::keys_from_settings(&settings.jwt)?;
    let bootstrapped = bootstrap(&store, settings).await?;
    let directory = crate::auth::directory::Directory::load(store.clone()).await?;
    let config = EngineConfig {
        max_clock_skew_ms: i64::try_from(settings.max_clock_skew_s)
            .unwrap_or(i64::MAX / 1000)
            .saturating_mul(1000),
        writer_queue: settings.writer_queue,
        time: settings.time.clone(),
    };
    let engine = Engine::start(store.clone(), config).await?;
    crate::metrics::add_live_calls(store.live_call_count().await? as i64);
    Ok(App {
        state: AppState {
            store,
            engine,
            auth: AuthState {
                directory,
                tokens: std::sync::Arc::new(tokens),
                throttle: LoginThrottle::new(
                    crate::auth::LOGIN_MAX_FAILURES,
                    crate::auth::LOGIN_WINDOW_MS,
                    100_000,
                ),
                password_work: std::sync::Arc::new(tokio::sync::Semaphore::new(
                    crate::auth::password_work_permits(),
                )),
            },
            shutdown: Default::default(),
            metrics,
            limits: HttpLimits {
                request_timeout: settings.request_timeout,
                max_concurrent_requests: settings.max_concurrent_requests,
            },
        },
        bootstrapped,
    })
}

/// On an empty database, creates tenant `default`, its first API key (every tenant scope; the
/// `bootstrap_api_key` value if given, else random) and a platform admin
/// (`bootstrap_admin_email`, with `bootstrap_admin_password` or a generated one), all in one
/// transaction. On a database with tenants, a given `bootstrap_api_key` is added to `default`
/// if missing, so scripts can rely on it.
///
/// Errors: the given admin password breaks the password policy, the e-mail is not valid, the
/// store fails.
pub async fn bootstrap(store: &Store, settings: &Settings) -> anyhow::Result<Option<Bootstrapped>> {
    let now = now_ms();
    let given = settings.bootstrap_api_key.as_ref().map(|s| s.0.clone());
    if store.tenant_count().await? == 0 {
        let email = crate::routes::users::normalise_email(&settings.bootstrap_admin_email)
            .map_err(|e| anyhow::anyhow!("SWITCHBOARD_BOOTSTRAP_ADMIN_EMAIL: {}", e.detail))?;
        let (password, generated) = match &settings.bootstrap_admin_password {
            Some(p) => (p.0.clone(), false),
            None => (crate::auth::password::generate(), true),
        };
        crate::auth::password::check_policy(&password, &[&email])
            .map_err(|e| anyhow::anyhow!("SWITCHBOARD_BOOTSTRAP_ADMIN_PASSWORD: {e}"))?;
        let hash = {
            let p = password.clone();
            tokio::task::spawn_blocking(move || crate::auth::password::hash(&p)).await?
        };
        let key = given.unwrap_or_else(generate_key);
        let b = Bootstrap {
            tenant: NewTenant::new("default", "Default"),
            key: NewApiKey {
                name: "bootstrap".into(),
                key: key.clone(),
                scopes: ScopeSet::TENANT,
                expires_at: None,
                rate_limit: None,
            },
            admin: NewUser {
                email: email.clone(),
                display_name: "Platform admin".into(),
                role: Role::PlatformAdmin,
                password_hash: hash,
            },
        };
        if store.bootstrap(&b, now).await?.is_some() {
            return Ok(Some(Bootstrapped {
                key,
                admin_email: email,
                admin_password: generated.then_some(password),
            }));
        }
        // Another server bootstrapped the same database meanwhile.
        return Ok(None);
    }
    if let Some(key) = given {
        match store
            .api_key_hash_exists(&switchboard_store::hash_api_key(&key))
            .await
        {
            // Stored, valid or revoked: a revoked bootstrap key is never brought back.
            Ok(true) => {}
            Ok(false) => {
                let t = store.tenant_by_slug("default").await?;
                let k = NewApiKey {
                    name: "bootstrap".into(),
                    key: key.clone(),
                    scopes: ScopeSet::TENANT,
                    expires_at: None,
                    rate_limit: None,
                };
                store
                    .create_api_key(t.id, &k, &Actor::system("bootstrap"), now)
                    .await?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(None)
}

/// The router with every route and layer.
pub fn router(state: AppState) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    let limits = state.limits;
    crate::limits::apply(routes::api(), routes::ops(), limits)
        // Last, so that it covers every route registered before it.
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                let route = req
                    .extensions()
                    .get::<axum::extract::MatchedPath>()
                    .map(|p| p.as_str().to_owned())
                    .unwrap_or_default();
                let id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                // tenant_id is recorded once the API key is resolved (auth.rs).
            tracing::info_span!("request", method = %req.method(), route, request_id = id, tenant_id = tracing::field::Empty)
            }),
        )
        .layer(axum::middleware::from_fn(crate::metrics::track_http))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

/// Serves until `shutdown` completes, then stops accepting, lets in-flight requests finish
/// (at most 30 s), and flushes every accepted event before returning.
pub async fn serve(
    app: App,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let state = app.state.clone();
    let router = router(app.state);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let stop_streams = state.shutdown.clone();
    let last_used = tokio::spawn(
        state
            .auth
            .directory
            .clone()
            .flush_last_used(Duration::from_secs(5), state.shutdown.clone()),
    );
    let server = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown.await;
        stop_streams.cancel();
        let _ = tx.send(());
    });
    let server = tokio::spawn(async move { server.await });
    let drained = async {
        let _ = rx.await;
        // Streams close on the token; anything else still open gets a bounded time.
        tokio::time::sleep(Duration::from_secs(30)).await;
    };
    let fatal = state.engine.fatal();
    tokio::select! {
        r = server => { r??; }
        _ = drained => { tracing::warn!("in-flight requests still open after 30 s; stopping"); }
        _ = fatal.cancelled() => {
            state.shutdown.cancel();
            anyhow::bail!("an engine task died (see the log above); exiting so a supervisor restarts the server");
        }
    }
    state.engine.shutdown().await;
    state.shutdown.cancel();
    let _ = last_used.await;
    // This server's share of the live-calls gauge leaves with it.
    match state.store.live_call_count().await {
        Ok(n) => crate::metrics::add_live_calls(-(n as i64)),
        Err(e) => tracing::warn!(error = %e, "counting live calls at shutdown"),
    }
    // Closing the pool lets SQLite checkpoint and remove its WAL file.
    if let Err(e) = state.store.clone().close().await {
        tracing::warn!(error = %e, "closing the database");
    }
    tracing::info!("accepted events flushed; bye");
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

/// An error and its causes on one line, `outer: cause: deeper cause`, each text once: many
/// errors (reqwest's, sqlx's, ours wrapping them) already repeat their source in their own
/// message, and printing the chain as is would show the same cause twice.
pub fn error_report(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if text.is_empty() || out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("sending batch 3: {0}")]
    struct Wrapping(#[source] std::io::Error);

    #[test]
    fn error_report_names_each_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let e = anyhow::Error::new(Wrapping(io)).context("replay failed");
        assert_eq!(
            error_report(&e),
            "replay failed: sending batch 3: connection refused"
        );
        let plain = anyhow::anyhow!("no database").context("api-key create");
        assert_eq!(error_report(&plain), "api-key create: no database");
    }

    #[test]
    fn short_bootstrap_keys_are_refused() {
        let e = check_bootstrap_key("sb_short").unwrap_err().to_string();
        assert!(e.contains("8 characters") && e.contains("32"), "{e}");
        assert!(check_bootstrap_key(&"k".repeat(32)).is_ok());
        assert!(check_bootstrap_key(&generate_key()).is_ok());
    }
}
