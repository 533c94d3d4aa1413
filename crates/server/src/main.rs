//! `switchboard`: the command line. Parses flags and hands over to the library.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use switchboard_server::{app, auth, config, replay, Secret};

// glibc malloc was a fifth of the server's profile under load (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Switchboard: a multi-tenant contact-center control plane.
#[derive(Parser)]
#[command(name = "switchboard", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct DbArgs {
    /// TOML settings file (see README); flags and environment variables override it.
    #[arg(long, env = "SWITCHBOARD_CONFIG")]
    config: Option<PathBuf>,
    /// Directory of the embedded SQLite database [default: ./data].
    #[arg(long, env = "SWITCHBOARD_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// `postgres://user@host/db` to use PostgreSQL instead of SQLite.
    #[arg(long, env = "DATABASE_URL")]
    database_url: Option<String>,
}

impl DbArgs {
    fn overrides(&self) -> config::Overrides {
        config::Overrides {
            data_dir: self.data_dir.clone(),
            database_url: self.database_url.clone(),
            ..Default::default()
        }
    }
}

/// `serve`'s limits; each falls back to the config file, then its default.
#[derive(Args, Clone)]
struct LimitArgs {
    /// Seconds an event timestamp may lie beyond max(now, tenant watermark) before it is
    /// refused with 422 [default: 86400].
    #[arg(long, env = "SWITCHBOARD_MAX_CLOCK_SKEW_S")]
    max_clock_skew_s: Option<u64>,
    /// Commands the group-commit writer's queue holds; when full, 503 + Retry-After
    /// [default: 4096].
    #[arg(long, env = "SWITCHBOARD_WRITER_QUEUE")]
    writer_queue: Option<usize>,
    /// Seconds to answer a request (WebSocket: until the upgrade) before 504 [default: 30].
    #[arg(long, env = "SWITCHBOARD_REQUEST_TIMEOUT_S")]
    request_timeout_s: Option<u64>,
    /// API requests handled at once; more get 503 + Retry-After (/health, /ready and /metrics
    /// are never shed) [default: 1024].
    #[arg(long, env = "SWITCHBOARD_MAX_CONCURRENT_REQUESTS")]
    max_concurrent_requests: Option<usize>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        /// Address to listen on [default: 127.0.0.1:8080].
        #[arg(long, env = "SWITCHBOARD_LISTEN")]
        listen: Option<SocketAddr>,
        #[command(flatten)]
        db: DbArgs,
        /// Log format: `json` or `text` [default: json].
        #[arg(long, env = "SWITCHBOARD_LOG_FORMAT", value_parser = ["json", "text"])]
        log_format: Option<String>,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Manage API keys.
    ApiKey {
        #[command(subcommand)]
        command: ApiKeyCommand,
    },
    /// Replay a recorded call trace into a running server.
    Replay {
        /// The trace file.
        file: PathBuf,
        /// Trace format.
        #[arg(long, default_value = "anonymous-bank", value_parser = ["anonymous-bank"])]
        format: String,
        /// Base URL of the server.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        /// API key of the tenant to replay into.
        #[arg(long, env = "SWITCHBOARD_API_KEY")]
        api_key: String,
        /// Events per batch (1–1000).
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u16).range(1..=1000))]
        batch_size: u16,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
        /// After the replay, switch the tenant back to the timer clock it had before (the
        /// replay runs on `event_time`; without this flag the tenant stays on it and live
        /// timers stop).
        #[arg(long)]
        restore_clock: bool,
    },
    /// Print the OpenAPI document.
    Openapi,
}

#[derive(Subcommand)]
enum ApiKeyCommand {
    /// Create a key for a tenant and print it (once).
    Create {
        /// Tenant slug.
        #[arg(long, default_value = "default")]
        tenant: String,
        /// A name to recognise the key by.
        #[arg(long, default_value = "cli")]
        name: String,
        /// Scopes (repeatable); default every scope.
        #[arg(long = "scope", value_parser = clap::builder::PossibleValuesParser::new(auth::SCOPES))]
        scopes: Vec<String>,
        #[command(flatten)]
        db: DbArgs,
    },
}

fn init_logs(json: bool) {
    let filter = EnvFilter::try_from_env("SWITCHBOARD_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        b.json().with_current_span(true).init();
    } else {
        b.init();
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // The cause chain, without a backtrace: these are operator errors (bad config,
            // unreachable database, unknown tenant), not bugs.
            eprintln!("error: {}", switchboard_server::app::error_report(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve {
            listen,
            db,
            log_format,
            limits,
        } => {
            let overrides = config::Overrides {
                listen,
                log_format: log_format.map(|f| match f.as_str() {
                    "text" => config::LogFormat::Text,
                    _ => config::LogFormat::Json,
                }),
                bootstrap_api_key: std::env::var("SWITCHBOARD_BOOTSTRAP_API_KEY")
                    .ok()
                    .map(Secret),
                max_clock_skew_s: limits.max_clock_skew_s,
                writer_queue: limits.writer_queue,
                request_timeout_s: limits.request_timeout_s,
                max_concurrent_requests: limits.max_concurrent_requests,
                ..db.overrides()
            };
            let (settings, log) = config::resolve(db.config.as_deref(), overrides)?;
            init_logs(log == config::LogFormat::Json);
            // Bind before bootstrapping: a busy port must fail before a one-time key is
            // created and printed for a server that never runs.
            let listener = tokio::net::TcpListener::bind(settings.listen)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.listen))?;
            let app = app::build(&settings).await?;
            if let Some(key) = &app.bootstrap_key {
                println!("Created tenant `default` and its API key (shown once, keep it):\n\n    {key}\n");
            }
            tracing::info!(addr = %listener.local_addr()?, backend = ?app.state.store.backend(), "switchboard listening");
            app::serve(app, listener, app::shutdown_signal()).await
        }
        Command::ApiKey {
            command:
                ApiKeyCommand::Create {
                    tenant,
                    name,
                    scopes,
                    db,
                },
        } => {
            let (settings, _) = config::resolve(db.config.as_deref(), db.overrides())?;
            let store =
                switchboard_store::Store::connect(&settings.existing_database_url()?).await?;
            let t = store
                .tenant_by_slug(&tenant)
                .await
                .map_err(|e| anyhow::anyhow!("tenant `{tenant}`: {e}"))?;
            let scopes = if scopes.is_empty() {
                vec!["*".to_owned()]
            } else {
                scopes
            };
            let key = auth::generate_key();
            store
                .create_api_key(t.id, &name, &key, &scopes, switchboard_core::time::now_ms())
                .await?;
            println!("{key}");
            Ok(())
        }
        Command::Replay {
            file,
            format: _,
            url,
            api_key,
            batch_size,
            json,
            restore_clock,
        } => {
            init_logs(false);
            let opts = replay::ReplayOptions {
                file,
                url,
                api_key,
                batch_size: batch_size as usize,
                progress: !json,
                restore_clock,
            };
            let summary = replay::run(&opts).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&summary)?);
            } else {
                println!("{summary}");
            }
            Ok(())
        }
        Command::Openapi => {
            println!("{}", switchboard_server::openapi::openapi_string());
            Ok(())
        }
    }
}
