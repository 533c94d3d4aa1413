//! `switchboard`: the command line. Parses flags and hands over to the library.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use switchboard_core::time::now_ms;
use switchboard_core::{Scope, ScopeSet};
use switchboard_server::routes::validate;
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
    /// Manage tenants.
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
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
        /// Scopes (repeatable); default every tenant scope.
        #[arg(long = "scope", value_parser = clap::builder::PossibleValuesParser::new(Scope::ALL.iter().filter(|s| **s != Scope::TenantsManage).map(|s| s.as_str())))]
        scopes: Vec<String>,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Subcommand)]
enum TenantCommand {
    /// Create a tenant and print its id.
    Create {
        /// Unique short name: 1–63 of a-z, 0-9 and -.
        #[arg(long)]
        slug: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// IANA time zone [default: UTC].
        #[arg(long)]
        time_zone: Option<String>,
        /// ISO 3166-1 alpha-2 country for national phone numbers.
        #[arg(long)]
        default_region: Option<String>,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user and print its id. The password is read from SWITCHBOARD_USER_PASSWORD, or
    /// generated and printed once.
    Create {
        /// Tenant slug.
        #[arg(long, default_value = "default")]
        tenant: String,
        /// E-mail address.
        #[arg(long)]
        email: String,
        /// Name shown in the console [default: the e-mail address].
        #[arg(long)]
        name: Option<String>,
        /// Role.
        #[arg(long, value_parser = ["platform_admin", "tenant_admin", "supervisor", "agent"])]
        role: String,
        #[command(flatten)]
        db: DbArgs,
    },
}

/// A secret from the environment (never from a flag: flags show in `ps`).
fn env_secret(name: &str) -> Option<Secret> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .map(Secret)
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The command line's changes are made by "cli" in the audit log.
fn cli_actor() -> switchboard_store::Actor {
    switchboard_store::Actor::system("cli")
}

/// Opens an existing database and finds the tenant `slug`.
async fn open_tenant(
    db: &DbArgs,
    slug: &str,
) -> anyhow::Result<(switchboard_store::Store, switchboard_store::Tenant)> {
    let (settings, _) = config::resolve(db.config.as_deref(), db.overrides())?;
    let store = switchboard_store::Store::connect(&settings.existing_database_url()?).await?;
    let t = store
        .tenant_by_slug(slug)
        .await
        .map_err(|e| anyhow::anyhow!("tenant `{slug}`: {e}"))?;
    Ok((store, t))
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
                bootstrap_api_key: env_secret("SWITCHBOARD_BOOTSTRAP_API_KEY"),
                bootstrap_admin_email: std::env::var("SWITCHBOARD_BOOTSTRAP_ADMIN_EMAIL").ok(),
                bootstrap_admin_password: env_secret("SWITCHBOARD_BOOTSTRAP_ADMIN_PASSWORD"),
                jwt: app::JwtSettings {
                    secret: env_secret("SWITCHBOARD_JWT_SECRET"),
                    previous_secret: env_secret("SWITCHBOARD_JWT_PREVIOUS_SECRET"),
                    private_key_file: env_path("SWITCHBOARD_JWT_PRIVATE_KEY_FILE"),
                    public_key_file: env_path("SWITCHBOARD_JWT_PUBLIC_KEY_FILE"),
                    previous_private_key_file: env_path(
                        "SWITCHBOARD_JWT_PREVIOUS_PRIVATE_KEY_FILE",
                    ),
                    previous_public_key_file: env_path("SWITCHBOARD_JWT_PREVIOUS_PUBLIC_KEY_FILE"),
                },
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
            if let Some(b) = &app.bootstrapped {
                println!("Created tenant `default`, its API key and a platform admin (shown once, keep them):\n");
                println!("    API key:  {}", b.key);
                println!("    admin:    {}", b.admin_email);
                match &b.admin_password {
                    Some(p) => println!("    password: {p}\n"),
                    None => {
                        println!("    password: the one in SWITCHBOARD_BOOTSTRAP_ADMIN_PASSWORD\n")
                    }
                }
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
            let (store, t) = open_tenant(&db, &tenant).await?;
            let scopes = if scopes.is_empty() {
                ScopeSet::TENANT
            } else {
                ScopeSet::parse(scopes.iter().map(String::as_str))?
            };
            let key = auth::generate_key();
            let k = switchboard_store::NewApiKey {
                name,
                key: key.clone(),
                scopes,
                expires_at: None,
                rate_limit: None,
            };
            store
                .create_api_key(t.id, &k, &cli_actor(), now_ms())
                .await?;
            println!("{key}");
            Ok(())
        }
        Command::Tenant {
            command:
                TenantCommand::Create {
                    slug,
                    name,
                    time_zone,
                    default_region,
                    db,
                },
        } => {
            let (settings, _) = config::resolve(db.config.as_deref(), db.overrides())?;
            let store =
                switchboard_store::Store::connect(&settings.existing_database_url()?).await?;
            let field = |e: switchboard_server::error::ApiError| {
                anyhow::anyhow!("{}: {}", e.field.unwrap_or_default(), e.detail)
            };
            validate::slug(&slug).map_err(field)?;
            validate::name("name", &name, 200).map_err(field)?;
            let mut t = switchboard_store::NewTenant::new(&slug, &name);
            if let Some(tz) = time_zone {
                validate::time_zone(&tz).map_err(field)?;
                t.settings.time_zone = tz;
            }
            if let Some(r) = default_region {
                t.settings.default_region = Some(validate::region(&r).map_err(field)?);
            }
            let t = store
                .create_tenant(&t, &cli_actor(), now_ms())
                .await
                .map_err(|e| anyhow::anyhow!("tenant `{slug}`: {e}"))?;
            println!("{}", t.id);
            Ok(())
        }
        Command::User {
            command:
                UserCommand::Create {
                    tenant,
                    email,
                    name,
                    role,
                    db,
                },
        } => {
            let (store, t) = open_tenant(&db, &tenant).await?;
            let email = switchboard_server::routes::users::normalise_email(&email)
                .map_err(|e| anyhow::anyhow!("--email: {}", e.detail))?;
            let (password, generated) = match std::env::var("SWITCHBOARD_USER_PASSWORD") {
                Ok(p) if !p.is_empty() => (p, false),
                _ => (auth::password::generate(), true),
            };
            auth::password::check_policy(&password, &[&email])
                .map_err(|e| anyhow::anyhow!("SWITCHBOARD_USER_PASSWORD: {e}"))?;
            let u = switchboard_store::NewUser {
                display_name: name.unwrap_or_else(|| email.clone()),
                email,
                role: role.parse()?,
                password_hash: auth::password::hash(&password),
            };
            let u = store
                .create_user(t.id, &u, &cli_actor(), now_ms())
                .await
                .map_err(|e| anyhow::anyhow!("user `{}`: {e}", u.email))?;
            println!("{}", u.id);
            if generated {
                println!("password (shown once): {password}");
            }
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
