//! Start-up: settings, bootstrap, the router and the server loop. `main` only parses the CLI;
//! tests call [`build`] and [`serve`] with a listener bound on port 0.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request};
use axum::Router;
use tokio::net::TcpListener;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use switchboard_core::time::now_ms;
use switchboard_engine::{Engine, EngineConfig, TimeSource};
use switchboard_store::{sqlite_url, Store, StoreError};

use crate::auth::{generate_key, KeyCache};
use crate::extract::BODY_LIMIT;
use crate::routes;

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
    /// Make the bootstrap API key this value (`SWITCHBOARD_BOOTSTRAP_API_KEY`).
    pub bootstrap_api_key: Option<Secret>,
    /// An event timestamp later than `max(now, watermark)` by more than this many seconds is
    /// refused (422 on `timestamp`). Default 86,400 (24 h).
    pub max_clock_skew_s: u64,
    /// Commands the writer's queue holds; when full, new commands get 503 + `Retry-After`.
    /// Default 4096.
    pub writer_queue: usize,
    /// The engine's clock: the wall clock, or a manual one in tests.
    pub time: TimeSource,
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
            time: TimeSource::System,
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
}

/// Shared state of the handlers.
#[derive(Clone)]
pub struct AppState {
    /// Reads (calls, events, alerts, reports) and admin writes (queues, tenant).
    pub store: Store,
    /// The one write path for call events.
    pub engine: Engine,
    /// Verified API keys.
    pub keys: KeyCache,
    /// Cancelled when the server stops: open streams close.
    pub shutdown: tokio_util::sync::CancellationToken,
}

/// A built application, ready to serve.
pub struct App {
    /// What the handlers share.
    pub state: AppState,
    /// The key created at bootstrap (printed once), if this start created one.
    pub bootstrap_key: Option<String>,
}

/// Connects the store (running migrations), bootstraps an empty database and starts the engine.
///
/// Bootstrap: on a database without tenants, creates tenant `default` and an API key with every
/// scope (the `bootstrap_api_key` value if given, else a random one). When `bootstrap_api_key`
/// is given and the database already has tenants, the key is added to `default` if missing, so
/// scripts can rely on it.
pub async fn build(settings: &Settings) -> anyhow::Result<App> {
    let url = settings.effective_database_url()?;
    let store = Store::connect(&url).await?;
    let bootstrap_key = bootstrap(
        &store,
        settings.bootstrap_api_key.as_ref().map(|s| s.0.as_str()),
    )
    .await?;
    let config = EngineConfig {
        max_clock_skew_ms: i64::try_from(settings.max_clock_skew_s)
            .unwrap_or(i64::MAX / 1000)
            .saturating_mul(1000),
        writer_queue: settings.writer_queue,
        time: settings.time.clone(),
    };
    let engine = Engine::start(store.clone(), config).await?;
    Ok(App {
        state: AppState {
            store,
            engine,
            keys: KeyCache::default(),
            shutdown: Default::default(),
        },
        bootstrap_key,
    })
}

/// Creates tenant `default` and its first key on an empty database. Returns a key to print.
pub async fn bootstrap(store: &Store, given: Option<&str>) -> anyhow::Result<Option<String>> {
    let now = now_ms();
    let all = vec!["*".to_owned()];
    if store.tenant_count().await? == 0 {
        let t = store.create_tenant("default", "Default", now).await?;
        let key = given.map(str::to_owned).unwrap_or_else(generate_key);
        store
            .create_api_key(t.id, "bootstrap", &key, &all, now)
            .await?;
        return Ok(Some(key));
    }
    if let Some(key) = given {
        match store
            .api_key_by_hash(&switchboard_store::hash_api_key(key))
            .await
        {
            Ok(_) => {}
            Err(StoreError::NotFound) => {
                let t = store.tenant_by_slug("default").await?;
                store
                    .create_api_key(t.id, "bootstrap", key, &all, now)
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
    routes::router()
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
    let server = axum::serve(listener, router).with_graceful_shutdown(async move {
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
