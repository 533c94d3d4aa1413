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
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::app::{Secret, Settings};

/// Default `max_clock_skew_s`: 24 hours.
pub const DEFAULT_MAX_CLOCK_SKEW_S: u64 = 86_400;
/// Default `writer_queue`: commands waiting for the group-commit writer.
pub const DEFAULT_WRITER_QUEUE: usize = 4096;
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
    /// Largest allowed clock skew of event timestamps, seconds (`--max-clock-skew-s`,
    /// `SWITCHBOARD_MAX_CLOCK_SKEW_S`).
    pub max_clock_skew_s: Option<u64>,
    /// Commands the writer's queue holds before shedding load with 503 (`--writer-queue`,
    /// `SWITCHBOARD_WRITER_QUEUE`).
    pub writer_queue: Option<usize>,
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
    max_clock_skew_s: Option<u64>,
    writer_queue: Option<usize>,
}

/// Resolves the settings and the log format.
///
/// Errors: the file cannot be read, is not valid TOML, has an unknown key or a value of the
/// wrong shape (each message names the file and the key).
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
        max_clock_skew_s: o
            .max_clock_skew_s
            .or(f.max_clock_skew_s)
            .unwrap_or(DEFAULT_MAX_CLOCK_SKEW_S),
        writer_queue: o
            .writer_queue
            .or(f.writer_queue)
            .unwrap_or(DEFAULT_WRITER_QUEUE),
        ..Settings::default()
    };
    if settings.writer_queue == 0 {
        anyhow::bail!("writer_queue must be at least 1");
    }
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
        assert_eq!(log, LogFormat::Json);
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
