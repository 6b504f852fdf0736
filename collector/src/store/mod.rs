//! The monitor store: where teams' monitors live.
//!
//! One implementation over sqlx's `Any` driver serves both backends: MySQL /
//! MariaDB in production and an SQLite file as the embedded default. The two
//! backends share one logical schema, kept as two migration folders because
//! their DDL dialects differ (`AUTOINCREMENT` vs `AUTO_INCREMENT`). Queries
//! use only `?` placeholders and portable types, so they run unchanged on
//! both.

use lagwatch_model::{now_ms, Monitor, NewMonitor};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Row};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static MYSQL_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/mysql");

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
    #[error("invalid monitor: {0}")]
    Invalid(String),
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

impl MonitorStore {
    /// Connects to `url` (`sqlite://path` or `mysql://...`). SQLite files are
    /// created when missing.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let (backend, url) = normalise_url(url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(std::time::Duration::from_secs(10))
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
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&self.pool).await?,
            Backend::MySql => MYSQL_MIGRATIONS.run(&self.pool).await?,
        }
        Ok(())
    }

    /// Registers a monitor and returns it with its id.
    pub async fn add(&self, monitor: &NewMonitor) -> Result<Monitor, StoreError> {
        validate(monitor)?;
        let now = now_ms();
        let topics = encode_list(&monitor.topics);
        let emails = encode_list(&monitor.emails);
        let for_secs = i64::try_from(monitor.for_secs)
            .map_err(|_| StoreError::Invalid("`for` is too large".into()))?;
        let result = sqlx::query(
            "INSERT INTO monitors (team, cluster, consumer_group, group_match, topics, \
             topic_regex, lag_threshold, for_secs, emails, isolation, time_lag_mode, \
             created_at_ms, updated_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&monitor.team)
        .bind(&monitor.cluster)
        .bind(&monitor.consumer_group)
        .bind(monitor.group_match.as_str())
        .bind(topics)
        .bind(monitor.topic_regex.as_deref().unwrap_or(""))
        .bind(monitor.lag_threshold)
        .bind(for_secs)
        .bind(emails)
        .bind(monitor.isolation.as_str())
        .bind(monitor.time_lag.as_str())
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await?;
        let id = match result.last_insert_id() {
            Some(id) => id,
            None => sqlx::query("SELECT MAX(id) AS id FROM monitors")
                .fetch_one(&self.pool)
                .await?
                .try_get::<i64, _>("id")?,
        };
        Ok(Monitor {
            id,
            team: monitor.team.clone(),
            cluster: monitor.cluster.clone(),
            consumer_group: monitor.consumer_group.clone(),
            topics: monitor.topics.clone(),
            lag_threshold: monitor.lag_threshold,
            for_secs: monitor.for_secs,
            emails: monitor.emails.clone(),
            isolation: monitor.isolation,
            time_lag: monitor.time_lag,
            group_match: monitor.group_match,
            topic_regex: monitor.topic_regex.clone(),
        })
    }

    /// All monitors, ordered by id.
    pub async fn list(&self) -> Result<Vec<Monitor>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, team, cluster, consumer_group, group_match, topics, topic_regex, \
             lag_threshold, for_secs, emails, isolation, time_lag_mode FROM monitors ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(monitor_from_row).collect()
    }

    /// Deletes a monitor; returns whether it existed.
    pub async fn remove(&self, id: i64) -> Result<bool, StoreError> {
        let result = sqlx::query("DELETE FROM monitors WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected() > 0)
    }

    /// A cheap fingerprint of the table's content, so pollers can skip
    /// re-reading monitors when nothing changed.
    pub async fn version(&self) -> Result<(i64, i64), StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, COALESCE(MAX(updated_at_ms), 0) AS latest FROM monitors",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((
            row.try_get::<i64, _>("n")?,
            row.try_get::<i64, _>("latest")?,
        ))
    }

    /// Closes the pool, waiting for connections to finish.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn monitor_from_row(row: &AnyRow) -> Result<Monitor, StoreError> {
    let id: i64 = row.try_get("id")?;
    let for_secs: i64 = row.try_get("for_secs")?;
    Ok(Monitor {
        id,
        team: row.try_get("team")?,
        cluster: row.try_get("cluster")?,
        consumer_group: row.try_get("consumer_group")?,
        group_match: row
            .try_get::<String, _>("group_match")?
            .parse()
            .map_err(|reason| StoreError::Corrupt {
                id,
                column: "group_match",
                reason,
            })?,
        topics: decode_list(id, "topics", &row.try_get::<String, _>("topics")?)?,
        topic_regex: Some(row.try_get::<String, _>("topic_regex")?).filter(|p| !p.is_empty()),
        lag_threshold: row.try_get("lag_threshold")?,
        for_secs: u64::try_from(for_secs).unwrap_or(0),
        emails: decode_list(id, "emails", &row.try_get::<String, _>("emails")?)?,
        time_lag: row
            .try_get::<String, _>("time_lag_mode")?
            .parse()
            .map_err(|reason| StoreError::Corrupt {
                id,
                column: "time_lag_mode",
                reason,
            })?,
        isolation: row
            .try_get::<String, _>("isolation")?
            .parse()
            .map_err(|reason| StoreError::Corrupt {
                id,
                column: "isolation",
                reason,
            })?,
    })
}

fn validate(monitor: &NewMonitor) -> Result<(), StoreError> {
    let invalid = |msg: &str| Err(StoreError::Invalid(msg.to_string()));
    if monitor.team.trim().is_empty() {
        return invalid("team must not be empty");
    }
    if monitor.cluster.trim().is_empty() {
        return invalid("cluster must not be empty");
    }
    if monitor.consumer_group.is_empty() || monitor.consumer_group.len() > 255 {
        return invalid("consumer group must be 1 to 255 characters");
    }
    if monitor.group_match == lagwatch_model::GroupMatch::Regex {
        lagwatch_model::compile_pattern(&monitor.consumer_group).map_err(|e| {
            StoreError::Invalid(format!(
                "consumer group pattern `{}`: {e}",
                monitor.consumer_group
            ))
        })?;
    }
    if let Some(pattern) = &monitor.topic_regex {
        lagwatch_model::compile_pattern(pattern)
            .map_err(|e| StoreError::Invalid(format!("topic pattern `{pattern}`: {e}")))?;
    }
    if monitor.lag_threshold <= 0 {
        return invalid("lag threshold must be greater than 0");
    }
    for topic in &monitor.topics {
        if !is_valid_topic_name(topic) {
            return Err(StoreError::Invalid(format!(
                "`{topic}` is not a valid Kafka topic name (1-249 chars of a-z A-Z 0-9 . _ -)"
            )));
        }
    }
    for email in &monitor.emails {
        if !email.contains('@') || email.contains(char::is_whitespace) {
            return Err(StoreError::Invalid(format!(
                "`{email}` is not an e-mail address"
            )));
        }
    }
    Ok(())
}

/// Kafka's topic name rule: 1..=249 chars of `[a-zA-Z0-9._-]`, not `.`/`..`.
pub fn is_valid_topic_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

fn encode_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".to_string())
}

fn decode_list(id: i64, column: &'static str, text: &str) -> Result<Vec<String>, StoreError> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    serde_json::from_str(text).map_err(|error| StoreError::Corrupt {
        id,
        column,
        reason: error.to_string(),
    })
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

/// Hides the password part of a `scheme://user:password@host` url.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((credentials, host)) => {
            let user = credentials.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_monitor() -> NewMonitor {
        NewMonitor {
            team: "payments".into(),
            cluster: "local".into(),
            consumer_group: "billing".into(),
            topics: vec!["orders".into()],
            lag_threshold: 500,
            for_secs: 30,
            emails: vec!["oncall@example.com".into()],
            isolation: lagwatch_model::Isolation::ReadCommitted,
            time_lag: lagwatch_model::TimeLagMode::Exact,
            group_match: lagwatch_model::GroupMatch::Regex,
            topic_regex: Some("orders\\..*".into()),
        }
    }

    #[tokio::test]
    async fn sqlite_store_adds_lists_and_removes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("m.db").display());
        let store = MonitorStore::connect(&url).await.expect("connect");
        store.migrate().await.expect("migrate");
        store.migrate().await.expect("migrations are idempotent");
        let added = store.add(&new_monitor()).await.expect("add");
        let listed = store.list().await.expect("list");
        assert_eq!(listed, vec![added.clone()]);
        assert_eq!(store.version().await.expect("version").0, 1);
        assert!(store.remove(added.id).await.expect("rm"));
        assert!(!store.remove(added.id).await.expect("rm twice"));
        assert!(store.list().await.expect("list").is_empty());
    }

    #[tokio::test]
    async fn rejects_invalid_monitors_with_reason() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("m.db").display());
        let store = MonitorStore::connect(&url).await.expect("connect");
        store.migrate().await.expect("migrate");
        let mut bad = new_monitor();
        bad.topics = vec!["no spaces allowed".into()];
        let error = store.add(&bad).await.expect_err("bad topic");
        assert!(
            error.to_string().contains("not a valid Kafka topic name"),
            "{error}"
        );
        let mut bad = new_monitor();
        bad.lag_threshold = 0;
        assert!(store.add(&bad).await.is_err());
        assert!(
            store.list().await.expect("list").is_empty(),
            "nothing stored"
        );
    }

    #[test]
    fn unsupported_urls_are_named_without_password() {
        let error = normalise_url("postgres://u:secret@h/db").expect_err("unsupported");
        let text = error.to_string();
        assert!(text.contains("postgres://u:***@h/db"), "{text}");
        assert!(!text.contains("secret"));
    }

    #[test]
    fn topic_name_rules() {
        assert!(is_valid_topic_name("orders.v1_a-b"));
        assert!(!is_valid_topic_name(""));
        assert!(!is_valid_topic_name(".."));
        assert!(!is_valid_topic_name(&"a".repeat(250)));
        assert!(!is_valid_topic_name("a/b"));
    }
}
