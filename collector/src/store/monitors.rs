//! Monitor rows: validation, insert, read, update and delete.

use lagwatch_model::{now_ms, AlertSettings, Monitor, NewMonitor};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use super::{MonitorStore, StoreError};

const COLUMNS: &str = "id, team, cluster, consumer_group, group_match, topics, topic_regex, \
     lag_threshold, for_secs, emails, isolation, time_lag_mode, topic_lag_threshold, \
     total_lag_threshold, time_lag_threshold_secs, repeat_interval_secs, webhooks";

impl MonitorStore {
    /// Registers a monitor and returns it with its id.
    pub async fn add(&self, monitor: &NewMonitor) -> Result<Monitor, StoreError> {
        validate_monitor(monitor)?;
        let row = MonitorRow::encode(monitor)?;
        let now = now_ms();
        let result = sqlx::query(
            "INSERT INTO monitors (team, cluster, consumer_group, group_match, topics, \
             topic_regex, lag_threshold, for_secs, emails, isolation, time_lag_mode, \
             topic_lag_threshold, total_lag_threshold, time_lag_threshold_secs, \
             repeat_interval_secs, webhooks, created_at_ms, updated_at_ms) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&monitor.team)
        .bind(&monitor.cluster)
        .bind(&monitor.consumer_group)
        .bind(monitor.group_match.as_str())
        .bind(row.topics)
        .bind(monitor.topic_regex.as_deref().unwrap_or(""))
        .bind(monitor.lag_threshold)
        .bind(row.for_secs)
        .bind(row.emails)
        .bind(monitor.isolation.as_str())
        .bind(monitor.time_lag.as_str())
        .bind(monitor.alerting.topic_lag_threshold)
        .bind(monitor.alerting.total_lag_threshold)
        .bind(row.time_lag_threshold_secs)
        .bind(row.repeat_interval_secs)
        .bind(row.webhooks)
        .bind(now)
        .bind(now)
        .execute(self.pool())
        .await?;
        let id = match result.last_insert_id() {
            Some(id) => id,
            None => sqlx::query("SELECT MAX(id) AS id FROM monitors")
                .fetch_one(self.pool())
                .await?
                .try_get::<i64, _>("id")?,
        };
        Ok(with_id(id, monitor.clone()))
    }

    /// Replaces every field of monitor `id`; returns `None` when it does not
    /// exist.
    pub async fn update(
        &self,
        id: i64,
        monitor: &NewMonitor,
    ) -> Result<Option<Monitor>, StoreError> {
        validate_monitor(monitor)?;
        let row = MonitorRow::encode(monitor)?;
        let result = sqlx::query(
            "UPDATE monitors SET team = ?, cluster = ?, consumer_group = ?, group_match = ?, \
             topics = ?, topic_regex = ?, lag_threshold = ?, for_secs = ?, emails = ?, \
             isolation = ?, time_lag_mode = ?, topic_lag_threshold = ?, \
             total_lag_threshold = ?, time_lag_threshold_secs = ?, repeat_interval_secs = ?, \
             webhooks = ?, updated_at_ms = ? WHERE id = ?",
        )
        .bind(&monitor.team)
        .bind(&monitor.cluster)
        .bind(&monitor.consumer_group)
        .bind(monitor.group_match.as_str())
        .bind(row.topics)
        .bind(monitor.topic_regex.as_deref().unwrap_or(""))
        .bind(monitor.lag_threshold)
        .bind(row.for_secs)
        .bind(row.emails)
        .bind(monitor.isolation.as_str())
        .bind(monitor.time_lag.as_str())
        .bind(monitor.alerting.topic_lag_threshold)
        .bind(monitor.alerting.total_lag_threshold)
        .bind(row.time_lag_threshold_secs)
        .bind(row.repeat_interval_secs)
        .bind(row.webhooks)
        .bind(now_ms())
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok((result.rows_affected() > 0).then(|| with_id(id, monitor.clone())))
    }

    /// One monitor by id.
    pub async fn get(&self, id: i64) -> Result<Option<Monitor>, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM monitors WHERE id = ?"
        )))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(monitor_from_row).transpose()
    }

    /// All monitors, ordered by id.
    pub async fn list(&self) -> Result<Vec<Monitor>, StoreError> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM monitors ORDER BY id"
        )))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(monitor_from_row).collect()
    }

    /// Deletes a monitor; returns whether it existed.
    pub async fn remove(&self, id: i64) -> Result<bool, StoreError> {
        let result = sqlx::query("DELETE FROM monitors WHERE id = ?")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(result.rows_affected() > 0)
    }

    /// A cheap fingerprint of the table's content, so pollers can skip
    /// re-reading monitors when nothing changed.
    pub async fn version(&self) -> Result<(i64, i64), StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, COALESCE(MAX(updated_at_ms), 0) AS latest FROM monitors",
        )
        .fetch_one(self.pool())
        .await?;
        Ok((
            row.try_get::<i64, _>("n")?,
            row.try_get::<i64, _>("latest")?,
        ))
    }
}

/// The encoded forms of a monitor's non-scalar columns.
struct MonitorRow {
    topics: String,
    emails: String,
    webhooks: String,
    for_secs: i64,
    time_lag_threshold_secs: Option<i64>,
    repeat_interval_secs: Option<i64>,
}

impl MonitorRow {
    fn encode(monitor: &NewMonitor) -> Result<Self, StoreError> {
        let secs = |value: u64, what: &str| {
            i64::try_from(value).map_err(|_| StoreError::Invalid(format!("`{what}` is too large")))
        };
        Ok(MonitorRow {
            topics: encode_list(&monitor.topics),
            emails: encode_list(&monitor.emails),
            webhooks: encode_list(&monitor.alerting.webhooks),
            for_secs: secs(monitor.for_secs, "for")?,
            time_lag_threshold_secs: monitor
                .alerting
                .time_lag_threshold_secs
                .map(|v| secs(v, "time_lag_threshold_secs"))
                .transpose()?,
            repeat_interval_secs: monitor
                .alerting
                .repeat_interval_secs
                .map(|v| secs(v, "repeat_interval_secs"))
                .transpose()?,
        })
    }
}

fn with_id(id: i64, monitor: NewMonitor) -> Monitor {
    Monitor {
        id,
        team: monitor.team,
        cluster: monitor.cluster,
        consumer_group: monitor.consumer_group,
        group_match: monitor.group_match,
        topics: monitor.topics,
        topic_regex: monitor.topic_regex,
        lag_threshold: monitor.lag_threshold,
        for_secs: monitor.for_secs,
        emails: monitor.emails,
        isolation: monitor.isolation,
        time_lag: monitor.time_lag,
        alerting: monitor.alerting,
    }
}

/// Checks everything a monitor row must satisfy; the error names the field.
pub fn validate_monitor(monitor: &NewMonitor) -> Result<(), StoreError> {
    let invalid = |msg: String| Err(StoreError::Invalid(msg));
    if monitor.team.trim().is_empty() || monitor.team.len() > 255 {
        return invalid("team must be 1 to 255 characters".into());
    }
    if monitor.cluster.trim().is_empty() || monitor.cluster.len() > 255 {
        return invalid("cluster must be 1 to 255 characters".into());
    }
    if monitor.consumer_group.is_empty() || monitor.consumer_group.len() > 255 {
        return invalid("consumer group must be 1 to 255 characters".into());
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
        return invalid("lag threshold must be greater than 0".into());
    }
    for topic in &monitor.topics {
        if !is_valid_topic_name(topic) {
            return invalid(format!(
                "`{topic}` is not a valid Kafka topic name (1-249 chars of a-z A-Z 0-9 . _ -)"
            ));
        }
    }
    for email in &monitor.emails {
        if !is_plausible_email(email) {
            return invalid(format!("`{email}` is not an e-mail address"));
        }
    }
    validate_alerting(&monitor.alerting)
}

fn validate_alerting(alerting: &AlertSettings) -> Result<(), StoreError> {
    let positive = |value: Option<i64>, name: &str| match value {
        Some(v) if v <= 0 => Err(StoreError::Invalid(format!(
            "{name} must be greater than 0"
        ))),
        _ => Ok(()),
    };
    positive(alerting.topic_lag_threshold, "topic_lag_threshold")?;
    positive(alerting.total_lag_threshold, "total_lag_threshold")?;
    if alerting.time_lag_threshold_secs == Some(0) {
        return Err(StoreError::Invalid(
            "time_lag_threshold_secs must be greater than 0".into(),
        ));
    }
    if alerting.repeat_interval_secs.is_some_and(|s| s < 60) {
        return Err(StoreError::Invalid(
            "repeat_interval_secs must be at least 60".into(),
        ));
    }
    for url in &alerting.webhooks {
        if !is_webhook_url(url) {
            return Err(StoreError::Invalid(format!(
                "`{url}` is not a webhook URL (http:// or https:// with a host)"
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

/// `local@domain.tld`-shaped, no whitespace, at most 254 characters.
fn is_plausible_email(address: &str) -> bool {
    let Some((local, domain)) = address.rsplit_once('@') else {
        return false;
    };
    address.len() <= 254
        && !local.is_empty()
        && !address.contains(char::is_whitespace)
        && !local.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
}

/// An absolute http(s) URL with a non-empty host and no whitespace.
fn is_webhook_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(rest) => {
            let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
            let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
            url.len() <= 2048 && !host.is_empty() && !url.contains(char::is_whitespace)
        }
        None => false,
    }
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

fn parse_column<T: std::str::FromStr<Err = String>>(
    row: &AnyRow,
    id: i64,
    column: &'static str,
) -> Result<T, StoreError> {
    row.try_get::<String, _>(column)?
        .parse()
        .map_err(|reason| StoreError::Corrupt { id, column, reason })
}

fn optional_secs(row: &AnyRow, column: &str) -> Result<Option<u64>, StoreError> {
    Ok(row
        .try_get::<Option<i64>, _>(column)?
        .map(|v| u64::try_from(v).unwrap_or(0)))
}

fn monitor_from_row(row: &AnyRow) -> Result<Monitor, StoreError> {
    let id: i64 = row.try_get("id")?;
    let for_secs: i64 = row.try_get("for_secs")?;
    Ok(Monitor {
        id,
        team: row.try_get("team")?,
        cluster: row.try_get("cluster")?,
        consumer_group: row.try_get("consumer_group")?,
        group_match: parse_column(row, id, "group_match")?,
        topics: decode_list(id, "topics", &row.try_get::<String, _>("topics")?)?,
        topic_regex: Some(row.try_get::<String, _>("topic_regex")?).filter(|p| !p.is_empty()),
        lag_threshold: row.try_get("lag_threshold")?,
        for_secs: u64::try_from(for_secs).unwrap_or(0),
        emails: decode_list(id, "emails", &row.try_get::<String, _>("emails")?)?,
        time_lag: parse_column(row, id, "time_lag_mode")?,
        isolation: parse_column(row, id, "isolation")?,
        alerting: AlertSettings {
            topic_lag_threshold: row.try_get("topic_lag_threshold")?,
            total_lag_threshold: row.try_get("total_lag_threshold")?,
            time_lag_threshold_secs: optional_secs(row, "time_lag_threshold_secs")?,
            repeat_interval_secs: optional_secs(row, "repeat_interval_secs")?,
            webhooks: decode_list(id, "webhooks", &row.try_get::<String, _>("webhooks")?)?,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn new_monitor() -> NewMonitor {
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
            alerting: AlertSettings {
                topic_lag_threshold: Some(2_000),
                total_lag_threshold: None,
                time_lag_threshold_secs: Some(300),
                repeat_interval_secs: Some(3_600),
                webhooks: vec!["https://hooks.example.com/lag".into()],
            },
        }
    }

    async fn sqlite_store(dir: &tempfile::TempDir) -> MonitorStore {
        let url = format!("sqlite://{}", dir.path().join("m.db").display());
        let store = MonitorStore::connect(&url).await.expect("connect");
        store.migrate().await.expect("migrate");
        store
    }

    #[tokio::test]
    async fn sqlite_store_adds_gets_updates_lists_and_removes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = sqlite_store(&dir).await;
        store.migrate().await.expect("migrations are idempotent");
        let added = store.add(&new_monitor()).await.expect("add");
        assert_eq!(store.list().await.expect("list"), vec![added.clone()]);
        assert_eq!(store.get(added.id).await.expect("get"), Some(added.clone()));
        assert_eq!(store.version().await.expect("version").0, 1);

        let mut changed = new_monitor();
        changed.lag_threshold = 900;
        changed.alerting = AlertSettings::default();
        let updated = store
            .update(added.id, &changed)
            .await
            .expect("update")
            .expect("exists");
        assert_eq!(updated.lag_threshold, 900);
        assert_eq!(store.get(added.id).await.expect("get"), Some(updated));
        assert_eq!(store.update(999, &changed).await.expect("update"), None);

        assert!(store.remove(added.id).await.expect("rm"));
        assert!(!store.remove(added.id).await.expect("rm twice"));
        assert!(store.list().await.expect("list").is_empty());
        assert_eq!(store.get(added.id).await.expect("get"), None);
    }

    #[tokio::test]
    async fn rejects_invalid_monitors_with_reason() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = sqlite_store(&dir).await;
        type Spoil = fn(&mut NewMonitor);
        let cases: Vec<(Spoil, &str)> = vec![
            (
                |m| m.topics = vec!["no spaces allowed".into()],
                "not a valid Kafka topic name",
            ),
            (|m| m.lag_threshold = 0, "lag threshold"),
            (|m| m.emails = vec!["nobody".into()], "not an e-mail"),
            (|m| m.consumer_group = "(".into(), "consumer group pattern"),
            (
                |m| m.alerting.webhooks = vec!["ftp://x".into()],
                "not a webhook URL",
            ),
            (
                |m| m.alerting.total_lag_threshold = Some(-1),
                "total_lag_threshold",
            ),
            (
                |m| m.alerting.repeat_interval_secs = Some(5),
                "repeat_interval_secs",
            ),
        ];
        for (spoil, expected) in cases {
            let mut bad = new_monitor();
            spoil(&mut bad);
            let error = store.add(&bad).await.expect_err(expected);
            assert!(error.to_string().contains(expected), "{error}");
        }
        assert!(
            store.list().await.expect("list").is_empty(),
            "nothing stored"
        );
    }

    #[test]
    fn topic_name_rules() {
        assert!(is_valid_topic_name("orders.v1_a-b"));
        assert!(!is_valid_topic_name(""));
        assert!(!is_valid_topic_name(".."));
        assert!(!is_valid_topic_name(&"a".repeat(250)));
        assert!(!is_valid_topic_name("a/b"));
    }

    #[test]
    fn email_and_webhook_shapes() {
        assert!(is_plausible_email("a.b@example.com"));
        assert!(!is_plausible_email("a@b"));
        assert!(!is_plausible_email("a b@example.com"));
        assert!(is_webhook_url("http://127.0.0.1:8080/hook"));
        assert!(is_webhook_url("https://user:pw@hooks.example.com"));
        assert!(!is_webhook_url("https:///path"));
        assert!(!is_webhook_url("javascript:alert(1)"));
    }
}
