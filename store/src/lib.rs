//! The monitor store: where teams' monitors live.
//!
//! One implementation over sqlx's `Any` driver serves both backends: MySQL /
//! MariaDB in production and an SQLite file as the embedded default. The two
//! backends share one logical schema, kept as two migration folders because
//! their DDL dialects differ (`AUTOINCREMENT` vs `AUTO_INCREMENT`). Queries
//! use only `?` placeholders and portable types, so they run unchanged on
//! both.
//!
//! Every stage reads monitors and silences from here: the collector to know
//! what to sample, the evaluator what to judge and whom to tell, the API to
//! serve teams. Keeping it its own crate lets each of them depend on the
//! store without depending on each other.
//!
//! # Layout
//! - `monitors`: monitor rows, their validation, and audited changes.
//! - `silences`: silence rows.
//! - `tokens`: hashed team API tokens.
//! - `audit`: the audit log of monitor changes.
//! - [`monitor_watch`], [`silence_watch`]: keep the current monitor and
//!   silence lists fresh without restarts, and in service while the
//!   database is down.

use sqlx::any::AnyPoolOptions;
use sqlx::AnyPool;

mod audit;
mod migrations;
pub mod monitor_watch;
mod monitors;
pub mod silence_watch;
mod silences;
mod tokens;

pub use audit::{AuditAction, AuditEntry, AuditSubject};
pub use monitors::{
    is_valid_team_name, is_valid_topic_name, validate_monitor, QuotaCheck, MAX_FOR_SECS,
    MAX_LIST_ITEMS,
};
pub use silences::{validate_silence, MAX_SILENCE_MS};
pub use tokens::ApiToken;

/// Errors of the monitor store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported monitor store url `{0}`: use sqlite://<file> or mysql://user:pass@host:port/db")]
    UnsupportedUrl(String),
    #[error("cannot connect to the monitor store at {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("monitor store migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("monitor store query failed: {0}")]
    Query(#[from] sqlx::Error),
    #[error("monitor {id} has a corrupt `{column}` column: {reason}")]
    Corrupt {
        id: i64,
        column: &'static str,
        reason: String,
    },
    /// A value the caller supplied is not acceptable; `field` names it the
    /// way the API's JSON does (`lag_threshold`, `alerting.webhooks`).
    #[error("invalid `{field}`: {message}")]
    InvalidField { field: String, message: String },
    /// A team quota refused the write (checked inside its transaction).
    #[error("{0}")]
    QuotaExceeded(String),
}

impl From<lagwatch_model::FieldError> for StoreError {
    fn from(error: lagwatch_model::FieldError) -> Self {
        StoreError::InvalidField {
            field: error.field,
            message: error.message,
        }
    }
}

impl StoreError {
    pub(crate) fn invalid(field: &str, message: impl Into<String>) -> Self {
        StoreError::InvalidField {
            field: field.to_string(),
            message: message.into(),
        }
    }
}

/// Which SQL dialect the store speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    MySql,
}

/// A pool of connections to the monitor store.
#[derive(Debug, Clone)]
pub struct MonitorStore {
    pool: AnyPool,
    backend: Backend,
}

/// The size of a [`MonitorStore`]'s connection pool and how long a caller
/// waits for a free connection. Each user that must not starve another
/// (the API's requests, the monitor watcher) gets a pool of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSettings {
    pub max_connections: u32,
    pub acquire_timeout: std::time::Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            max_connections: 4,
            acquire_timeout: std::time::Duration::from_secs(10),
        }
    }
}

impl MonitorStore {
    /// Connects to `url` (`sqlite://path` or `mysql://...`) with the
    /// default pool. SQLite files are created when missing.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, PoolSettings::default()).await
    }

    /// Like [`MonitorStore::connect`], with a pool of its own size.
    pub async fn connect_with(url: &str, pool: PoolSettings) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let (backend, url) = normalise_url(url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(pool.max_connections)
            .acquire_timeout(pool.acquire_timeout)
            .connect(&url)
            .await
            .map_err(|source| StoreError::Connect {
                url: redact_url(&url),
                source,
            })?;
        Ok(MonitorStore { pool, backend })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Applies pending schema migrations; safe to run repeatedly.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self.backend {
            Backend::Sqlite => migrations::sqlite().run(&self.pool).await?,
            Backend::MySql => migrations::mysql().run(&self.pool).await?,
        }
        Ok(())
    }

    /// Closes the pool, waiting for connections to finish.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn normalise_url(url: &str) -> Result<(Backend, String), StoreError> {
    if let Some(rest) = url.strip_prefix("sqlite:") {
        // Create the file on first use unless the caller chose a mode.
        let url = if rest.contains("mode=") || rest.contains(":memory:") {
            url.to_string()
        } else if rest.contains('?') {
            format!("{url}&mode=rwc")
        } else {
            format!("{url}?mode=rwc")
        };
        Ok((Backend::Sqlite, url))
    } else if url.starts_with("mysql:") || url.starts_with("mariadb:") {
        Ok((Backend::MySql, url.replacen("mariadb:", "mysql:", 1)))
    } else {
        Err(StoreError::UnsupportedUrl(redact_url(url)))
    }
}

/// Hides the password part of a `scheme://user:password@host` url (also
/// when the password contains `@`), and secret query parameters.
pub use lagwatch_model::redact_url;

/// Pool access for the sibling modules.
impl MonitorStore {
    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A transaction that will write: on SQLite it takes the write lock at
    /// once (`BEGIN IMMEDIATE`), so two read-then-write transactions wait
    /// for each other (busy timeout) instead of failing with "database is
    /// locked".
    pub(crate) async fn begin_write(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::MySql => self.pool.begin().await?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsupported_urls_are_named_without_password() {
        let error = normalise_url("postgres://u:secret@h/db").expect_err("unsupported");
        let text = error.to_string();
        assert!(text.contains("postgres://u:***@h/db"), "{text}");
        assert!(!text.contains("secret"));
    }
}
