//! Where settings come from, lowest precedence first: built-in defaults, a TOML file
//! (`--config FILE` or `SWITCHBOARD_CONFIG`), `SWITCHBOARD_*` / `DATABASE_URL` environment
//! variables, then command-line flags (clap merges the last two into [`Overrides`]).
//! Settings are validated once here, at start-up.
//!
//! ```toml
//! listen = "0.0.0.0:8080"
//! data_dir = "/var/lib/switchboard"
//! # database_url = "postgres://switchboard@db/switchboard"
//! log_format = "json"          # or "text"
//! # bootstrap_api_key = "…"    # better given as SWITCHBOARD_BOOTSTRAP_API_KEY
//! # bootstrap_admin_email = "ops@example.com"  # the first platform admin (password: env only)
//! # jwt_secret = "…"           # HS256, ≥ 32 bytes; better given as SWITCHBOARD_JWT_SECRET
//! # jwt_private_key_file = "/etc/switchboard/jwt-ed25519.pem"   # EdDSA instead of HS256
//! # jwt_public_key_file = "/etc/switchboard/jwt-ed25519.pub.pem"
//! max_clock_skew_s = 86400     # event timestamps at most this far past max(now, watermark)
//! writer_queue = 4096          # commands waiting for the group commit; beyond: 503
//! request_timeout_s = 30       # a request not answered in time: 504
//! max_concurrent_requests = 1024 # API requests at once; beyond: 503 + Retry-After
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::app::{Secret, Settings};

/// Default `max_clock_skew_s`: 24 hours.
pub const DEFAULT_MAX_CLOCK_SKEW_S: u64 = 86_400;
/// Default `writer_queue`: commands waiting for the group-commit writer.
pub const DEFAULT_WRITER_QUEUE: usize = 4096;
/// Default `request_timeout_s`: seconds to produce a response head.
pub const DEFAULT_REQUEST_TIMEOUT_S: u64 = 30;
/// Default `max_concurrent_requests`: API requests handled at once.
pub const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 1024;
/// Largest `max_clock_skew_s`: ten years, in seconds.
pub const MAX_CLOCK_SKEW_S_LIMIT: u64 = 10 * 365 * 86_400;
/// Largest `writer_queue` (each slot is a batch of one command's writes).
pub const WRITER_QUEUE_LIMIT: usize = 1_048_576;
/// Largest `request_timeout_s`: one day.
pub const REQUEST_TIMEOUT_S_LIMIT: u64 = 86_400;
/// Largest `max_concurrent_requests`.
pub const MAX_CONCURRENT_REQUESTS_LIMIT: usize = 1_048_576;
/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default data directory (SQLite file `switchboard.db` inside).
pub const DEFAULT_DATA_DIR: &str = "./data";

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// One JSON object per line (default): timestamp, level, message, request span with
    /// `request_id`, `route` and `tenant_id`.
    Json,
    /// Human-readable lines.
    Text,
}

/// Values given as flags or environment variables; `None` falls back to the file, then the
/// default.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// Address to listen on (`--listen`, `SWITCHBOARD_LISTEN`).
    pub listen: Option<SocketAddr>,
    /// SQLite data directory (`--data-dir`, `SWITCHBOARD_DATA_DIR`).
    pub data_dir: Option<PathBuf>,
    /// `postgres://…` (`--database-url`, `DATABASE_URL`); selects PostgreSQL over `data_dir`.
    pub database_url: Option<String>,
    /// Log output format (`--log-format`, `SWITCHBOARD_LOG_FORMAT`).
    pub log_format: Option<LogFormat>,
    /// The key to create at first start (`SWITCHBOARD_BOOTSTRAP_API_KEY`).
    pub bootstrap_api_key: Option<Secret>,
    /// The platform admin's e-mail at first start (`SWITCHBOARD_BOOTSTRAP_ADMIN_EMAIL`).
    pub bootstrap_admin_email: Option<String>,
    /// The platform admin's password at first start (`SWITCHBOARD_BOOTSTRAP_ADMIN_PASSWORD`).
    pub bootstrap_admin_password: Option<Secret>,
    /// Access-token keys (`SWITCHBOARD_JWT_*`); a field left `None` falls back to the file.
    pub jwt: crate::app::JwtSettings,
    /// Largest allowed clock skew of event timestamps, seconds (`--max-clock-skew-s`,
    /// `SWITCHBOARD_MAX_CLOCK_SKEW_S`).
    pub max_clock_skew_s: Option<u64>,
    /// Commands the writer's queue holds before shedding load with 503 (`--writer-queue`,
    /// `SWITCHBOARD_WRITER_QUEUE`).
    pub writer_queue: Option<usize>,
    /// Seconds to produce a response head before 504 (`--request-timeout-s`,
    /// `SWITCHBOARD_REQUEST_TIMEOUT_S`).
    pub request_timeout_s: Option<u64>,
    /// API requests handled at once before shedding load with 503
    /// (`--max-concurrent-requests`, `SWITCHBOARD_MAX_CONCURRENT_REQUESTS`).
    pub max_concurrent_requests: Option<usize>,
}

/// The TOML file's keys (all optional; an unknown key is an error, so a typo is not ignored).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    log_format: Option<LogFormat>,
    bootstrap_api_key: Option<String>,
    bootstrap_admin_email: Option<String>,
    jwt_secret: Option<String>,
    jwt_previous_secret: Option<String>,
    jwt_private_key_file: Option<PathBuf>,
    jwt_public_key_file: Option<PathBuf>,
    jwt_previous_private_key_file: Option<PathBuf>,
    jwt_previous_public_key_file: Option<PathBuf>,
    max_clock_skew_s: Option<u64>,
    writer_queue: Option<usize>,
    request_timeout_s: Option<u64>,
    max_concurrent_requests: Option<usize>,
}

/// Checks that `value` of setting `key` lies in `min..=max`; the error names the file key, the
/// flag and the environment variable, since the value may have come from any of them.
fn in_range<T: PartialOrd + std::fmt::Display>(
    key: &str,
    value: T,
    min: T,
    max: T,
) -> anyhow::Result<T> {
    if value < min || value > max {
        let flag = key.replace('_', "-");
        let env = format!("SWITCHBOARD_{}", key.to_uppercase());
        anyhow::bail!("{key} (--{flag}, {env}) must be between {min} and {max}, not {value}");
    }
    Ok(value)
}

/// Resolves the settings and the log format.
///
/// Errors: the file cannot be read, is not valid TOML, has an unknown key or a value of the
/// wrong shape (each message names the file and the key); a number is out of its range
/// (`max_clock_skew_s` 1 s to 10 years, `writer_queue` and `max_concurrent_requests` 1 to
/// 1,048,576, `request_timeout_s` 1 to 86,400; the message names the key, flag and variable).
pub fn resolve(file: Option<&Path>, o: Overrides) -> anyhow::Result<(Settings, LogFormat)> {
    let f = match file {
        None => FileConfig::default(),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("cannot read config file {}: {e}", path.display()))?;
            toml::from_str(&text)
                .map_err(|e| anyhow::anyhow!("config file {}: {e}", path.display()))?
        }
    };
    let max_clock_skew_s = in_range(
        "max_clock_skew_s",
        o.max_clock_skew_s
            .or(f.max_clock_skew_s)
            .unwrap_or(DEFAULT_MAX_CLOCK_SKEW_S),
        1,
        MAX_CLOCK_SKEW_S_LIMIT,
    )?;
    let writer_queue = in_range(
        "writer_queue",
        o.writer_queue
            .or(f.writer_queue)
            .unwrap_or(DEFAULT_WRITER_QUEUE),
        1,
        WRITER_QUEUE_LIMIT,
    )?;
    let request_timeout_s = in_range(
        "request_timeout_s",
        o.request_timeout_s
            .or(f.request_timeout_s)
            .unwrap_or(DEFAULT_REQUEST_TIMEOUT_S),
        1,
        REQUEST_TIMEOUT_S_LIMIT,
    )?;
    let max_concurrent_requests = in_range(
        "max_concurrent_requests",
        o.max_concurrent_requests
            .or(f.max_concurrent_requests)
            .unwrap_or(DEFAULT_MAX_CONCURRENT_REQUESTS),
        1,
        MAX_CONCURRENT_REQUESTS_LIMIT,
    )?;
    let settings = Settings {
        listen: o
            .listen
            .or(f.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("valid default")),
        data_dir: o
            .data_dir
            .or(f.data_dir)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
        database_url: o.database_url.or(f.database_url).filter(|u| !u.is_empty()),
        bootstrap_api_key: o
            .bootstrap_api_key
            .or(f.bootstrap_api_key.map(Secret))
            .filter(|k| !k.0.is_empty()),
        bootstrap_admin_email: o
            .bootstrap_admin_email
            .or(f.bootstrap_admin_email)
            .unwrap_or_else(|| crate::app::DEFAULT_BOOTSTRAP_ADMIN_EMAIL.to_owned()),
        bootstrap_admin_password: o.bootstrap_admin_password,
        jwt: crate::app::JwtSettings {
            secret: o.jwt.secret.or(f.jwt_secret.map(Secret)),
            previous_secret: o.jwt.previous_secret.or(f.jwt_previous_secret.map(Secret)),
            private_key_file: o.jwt.private_key_file.or(f.jwt_private_key_file),
            public_key_file: o.jwt.public_key_file.or(f.jwt_public_key_file),
            previous_private_key_file: o
                .jwt
                .previous_private_key_file
                .or(f.jwt_previous_private_key_file),
            previous_public_key_file: o
                .jwt
                .previous_public_key_file
                .or(f.jwt_previous_public_key_file),
        },
        max_clock_skew_s,
        writer_queue,
        request_timeout: Duration::from_secs(request_timeout_s),
        max_concurrent_requests,
        ..Settings::default()
    };
    Ok((
        settings,
        o.log_format.or(f.log_format).unwrap_or(LogFormat::Json),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> tempfile::NamedTempFile {
        use std::io::Write;
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    #[test]
    fn defaults_without_file_or_overrides() {
        let (s, log) = resolve(None, Overrides::default()).unwrap();
        assert_eq!(s.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(s.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        assert_eq!(s.database_url, None);
        assert!(s.bootstrap_api_key.is_none());
        assert_eq!(s.max_clock_skew_s, 86_400);
        assert_eq!(s.writer_queue, 4096);
        assert_eq!(s.request_timeout, Duration::from_secs(30));
        assert_eq!(s.max_concurrent_requests, 1024);
        assert_eq!(log, LogFormat::Json);
    }

    #[test]
    fn limits_come_from_the_file_and_overrides_win() {
        let f = file(
            "max_clock_skew_s = 3600\nwriter_queue = 8\nrequest_timeout_s = 5\nmax_concurrent_requests = 2\n",
        );
        let (s, _) = resolve(Some(f.path()), Overrides::default()).unwrap();
        assert_eq!(s.max_clock_skew_s, 3600);
        assert_eq!(s.writer_queue, 8);
        assert_eq!(s.request_timeout, Duration::from_secs(5));
        assert_eq!(s.max_concurrent_requests, 2);
        let o = Overrides {
            max_clock_skew_s: Some(60),
            writer_queue: Some(1),
            request_timeout_s: Some(86_400),
            max_concurrent_requests: Some(1_048_576),
            ..Default::default()
        };
        let (s, _) = resolve(Some(f.path()), o).unwrap();
        assert_eq!(s.max_clock_skew_s, 60);
        assert_eq!(s.writer_queue, 1);
        assert_eq!(s.request_timeout, Duration::from_secs(86_400));
        assert_eq!(s.max_concurrent_requests, 1_048_576);
    }

    #[test]
    fn limits_out_of_range_are_refused_naming_key_flag_and_variable() {
        let cases = [
            (
                Overrides {
                    max_clock_skew_s: Some(0),
                    ..Default::default()
                },
                "max_clock_skew_s (--max-clock-skew-s, SWITCHBOARD_MAX_CLOCK_SKEW_S)",
            ),
            (
                Overrides {
                    max_clock_skew_s: Some(MAX_CLOCK_SKEW_S_LIMIT + 1),
                    ..Default::default()
                },
                "max_clock_skew_s",
            ),
            (
                Overrides {
                    writer_queue: Some(0),
                    ..Default::default()
                },
                "writer_queue (--writer-queue, SWITCHBOARD_WRITER_QUEUE)",
            ),
            (
                Overrides {
                    request_timeout_s: Some(0),
                    ..Default::default()
                },
                "request_timeout_s (--request-timeout-s, SWITCHBOARD_REQUEST_TIMEOUT_S)",
            ),
            (
                Overrides {
                    max_concurrent_requests: Some(0),
                    ..Default::default()
                },
                "max_concurrent_requests (--max-concurrent-requests, SWITCHBOARD_MAX_CONCURRENT_REQUESTS)",
            ),
        ];
        for (o, want) in cases {
            let e = resolve(None, o).unwrap_err().to_string();
            assert!(e.starts_with(want) && e.contains("must be between"), "{e}");
        }
        // From the file too, and a negative number is a shape error naming the key.
        let e = resolve(Some(file("writer_queue = 0").path()), Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("writer_queue") && e.contains("not 0"), "{e}");
        let e = resolve(
            Some(file("request_timeout_s = -1").path()),
            Overrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("request_timeout_s"), "{e}");
    }

    #[test]
    fn file_overrides_defaults_and_flags_override_the_file() {
        let f = file("listen = \"0.0.0.0:9000\"\ndata_dir = \"/srv/sb\"\nlog_format = \"text\"\ndatabase_url = \"postgres://db/sb\"\n");
        let (s, log) = resolve(Some(f.path()), Overrides::default()).unwrap();
        assert_eq!(s.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(s.data_dir, PathBuf::from("/srv/sb"));
        assert_eq!(s.database_url.as_deref(), Some("postgres://db/sb"));
        assert_eq!(log, LogFormat::Text);
        let o = Overrides {
            listen: Some("127.0.0.1:7000".parse().unwrap()),
            log_format: Some(LogFormat::Json),
            ..Default::default()
        };
        let (s, log) = resolve(Some(f.path()), o).unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:7000");
        assert_eq!(s.data_dir, PathBuf::from("/srv/sb"));
        assert_eq!(log, LogFormat::Json);
    }

    #[test]
    fn bad_files_are_refused_with_the_key_named() {
        let e = resolve(
            Some(file("listn = \"0.0.0.0:1\"").path()),
            Overrides::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("listn"), "{e}");
        let e = resolve(
            Some(file("listen = \"not an address\"").path()),
            Overrides::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("listen"), "{e}");
        let e = resolve(
            Some(file("log_format = \"xml\"").path()),
            Overrides::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("log_format"), "{e}");
        let e = resolve(
            Some(Path::new("/nonexistent/switchboard.toml")),
            Overrides::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("cannot read config file"), "{e}");
    }

    #[test]
    fn secrets_do_not_print() {
        let f = file("bootstrap_api_key = \"sb_secret\"");
        let (s, _) = resolve(Some(f.path()), Overrides::default()).unwrap();
        assert_eq!(
            s.bootstrap_api_key.as_ref().map(|k| k.0.as_str()),
            Some("sb_secret")
        );
        assert!(!format!("{s:?}").contains("sb_secret"));
    }
}
