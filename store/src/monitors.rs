//! Monitor rows: validation, insert, read, update and delete, and the
//! audited variants that record who changed what in the same transaction.

use lagwatch_model::{now_ms, AlertSettings, GroupMatch, Monitor, NewMonitor};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AssertSqlSafe, Row};

use super::audit::{insert_audit, AuditAction};
use super::{MonitorStore, StoreError};

const COLUMNS: &str = "id, team, cluster, consumer_group, group_match, topics, topic_regex, \
     lag_threshold, for_secs, emails, isolation, time_lag_mode, topic_lag_threshold, \
     total_lag_threshold, time_lag_threshold_secs, repeat_interval_secs, webhooks";

/// Longest accepted `for`: 7 days.
pub const MAX_FOR_SECS: u64 = 7 * 24 * 3_600;
/// Most topics, e-mail addresses or webhooks one monitor may list.
pub const MAX_LIST_ITEMS: usize = 50;
/// Longest accepted time-lag threshold or repeat interval: 30 days.
const MAX_ALERT_SECS: u64 = 30 * 24 * 3_600;
/// Size of the `webhooks` column (MySQL `VARCHAR(8192)`).
const MAX_WEBHOOKS_JSON: usize = 8_192;

impl MonitorStore {
    /// Registers a monitor and returns it with its id.
    pub async fn add(&self, monitor: &NewMonitor) -> Result<Monitor, StoreError> {
        validate_monitor(monitor)?;
        let mut conn = self.pool().acquire().await?;
        insert_monitor(&mut conn, monitor).await
    }

    /// Registers a monitor and records `actor` as its creator in the audit
    /// log, both or neither.
    pub async fn add_audited(
        &self,
        monitor: &NewMonitor,
        actor: &str,
    ) -> Result<Monitor, StoreError> {
        validate_monitor(monitor)?;
        let mut tx = self.begin_write().await?;
        let added = insert_monitor(&mut tx, monitor).await?;
        insert_audit(
            &mut tx,
            actor,
            &added.team,
            AuditAction::Create,
            added.id,
            None,
            Some(&added),
        )
        .await?;
        tx.commit().await?;
        Ok(added)
    }

    /// Replaces every field of monitor `id`; returns `None` when it does not
    /// exist.
    pub async fn update(
        &self,
        id: i64,
        monitor: &NewMonitor,
    ) -> Result<Option<Monitor>, StoreError> {
        validate_monitor(monitor)?;
        let mut conn = self.pool().acquire().await?;
        update_monitor(&mut conn, id, monitor).await
    }

    /// Replaces monitor `id` and records the change (before and after) in
    /// the audit log in one transaction. With `owner`, only a monitor of that
    /// team is changed; any other is reported as missing (`None`).
    pub async fn update_audited(
        &self,
        id: i64,
        owner: Option<&str>,
        monitor: &NewMonitor,
        actor: &str,
    ) -> Result<Option<Monitor>, StoreError> {
        validate_monitor(monitor)?;
        let mut tx = self.begin_write().await?;
        let Some(before) = select_for_update(&mut tx, self.backend(), id).await? else {
            return Ok(None);
        };
        if owner.is_some_and(|team| team != before.team) {
            return Ok(None);
        }
        let Some(after) = update_monitor(&mut tx, id, monitor).await? else {
            return Ok(None);
        };
        insert_audit(
            &mut tx,
            actor,
            &after.team,
            AuditAction::Update,
            id,
            Some(&before),
            Some(&after),
        )
        .await?;
        tx.commit().await?;
        Ok(Some(after))
    }

    /// One monitor by id.
    pub async fn get(&self, id: i64) -> Result<Option<Monitor>, StoreError> {
        let mut conn = self.pool().acquire().await?;
        select_monitor(&mut conn, id).await
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

    /// The monitors of one team, ordered by id.
    pub async fn list_team(&self, team: &str) -> Result<Vec<Monitor>, StoreError> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM monitors WHERE team = ? ORDER BY id"
        )))
        .bind(team)
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

    /// Deletes a monitor and records it in the audit log in one
    /// transaction; returns the deleted monitor. With `owner`, only a
    /// monitor of that team is deleted.
    pub async fn remove_audited(
        &self,
        id: i64,
        owner: Option<&str>,
        actor: &str,
    ) -> Result<Option<Monitor>, StoreError> {
        let mut tx = self.begin_write().await?;
        let Some(before) = select_for_update(&mut tx, self.backend(), id).await? else {
            return Ok(None);
        };
        if owner.is_some_and(|team| team != before.team) {
            return Ok(None);
        }
        let result = sqlx::query("DELETE FROM monitors WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if result.rows_affected() == 0 {
            return Ok(None);
        }
        insert_audit(
            &mut tx,
            actor,
            &before.team,
            AuditAction::Delete,
            id,
            Some(&before),
            None,
        )
        .await?;
        tx.commit().await?;
        Ok(Some(before))
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

/// Monitor `id`, row-locked until the transaction ends on MySQL (SQLite
/// transactions from [`MonitorStore::begin_write`] already hold the write
/// lock).
async fn select_for_update(
    conn: &mut AnyConnection,
    backend: super::Backend,
    id: i64,
) -> Result<Option<Monitor>, StoreError> {
    let lock = match backend {
        super::Backend::MySql => " FOR UPDATE",
        super::Backend::Sqlite => "",
    };
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM monitors WHERE id = ?{lock}"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(monitor_from_row).transpose()
}

async fn select_monitor(conn: &mut AnyConnection, id: i64) -> Result<Option<Monitor>, StoreError> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM monitors WHERE id = ?"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(monitor_from_row).transpose()
}

async fn insert_monitor(
    conn: &mut AnyConnection,
    monitor: &NewMonitor,
) -> Result<Monitor, StoreError> {
    let row = MonitorRow::encode(monitor)?;
    let now = now_ms();
    let insert = sqlx::query(
        "INSERT INTO monitors (team, cluster, consumer_group, group_match, topics, \
         topic_regex, lag_threshold, for_secs, emails, isolation, time_lag_mode, \
         topic_lag_threshold, total_lag_threshold, time_lag_threshold_secs, \
         repeat_interval_secs, webhooks, created_at_ms, updated_at_ms) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    );
    let result = bind_monitor(insert, monitor, row)
        .bind(now)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    let id = match result.last_insert_id() {
        Some(id) => id,
        None => sqlx::query("SELECT MAX(id) AS id FROM monitors")
            .fetch_one(&mut *conn)
            .await?
            .try_get::<i64, _>("id")?,
    };
    Ok(with_id(id, monitor.clone()))
}

/// Binds the monitor's columns in the order both the INSERT and the UPDATE
/// name them: team, cluster, consumer_group, group_match, topics,
/// topic_regex, lag_threshold, for_secs, emails, isolation, time_lag_mode,
/// topic_lag_threshold, total_lag_threshold, time_lag_threshold_secs,
/// repeat_interval_secs, webhooks.
fn bind_monitor<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    monitor: &'q NewMonitor,
    row: MonitorRow,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    query
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
}

async fn update_monitor(
    conn: &mut AnyConnection,
    id: i64,
    monitor: &NewMonitor,
) -> Result<Option<Monitor>, StoreError> {
    let row = MonitorRow::encode(monitor)?;
    let update = sqlx::query(
        "UPDATE monitors SET team = ?, cluster = ?, consumer_group = ?, group_match = ?, \
         topics = ?, topic_regex = ?, lag_threshold = ?, for_secs = ?, emails = ?, \
         isolation = ?, time_lag_mode = ?, topic_lag_threshold = ?, \
         total_lag_threshold = ?, time_lag_threshold_secs = ?, repeat_interval_secs = ?, \
         webhooks = ?, updated_at_ms = ? WHERE id = ?",
    );
    let result = bind_monitor(update, monitor, row)
        .bind(now_ms())
        .bind(id)
        .execute(&mut *conn)
        .await?;
    if result.rows_affected() > 0 {
        return Ok(Some(with_id(id, monitor.clone())));
    }
    // MySQL counts only changed rows: an identical update affects none.
    Ok(select_monitor(conn, id)
        .await?
        .map(|_| with_id(id, monitor.clone())))
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
        let secs = |value: u64, field: &str| {
            i64::try_from(value).map_err(|_| StoreError::invalid(field, "is too large"))
        };
        Ok(MonitorRow {
            topics: encode_list(&monitor.topics),
            emails: encode_list(&monitor.emails),
            webhooks: encode_list(&monitor.alerting.webhooks),
            for_secs: secs(monitor.for_secs, "for_secs")?,
            time_lag_threshold_secs: monitor
                .alerting
                .time_lag_threshold_secs
                .map(|v| secs(v, "alerting.time_lag_threshold_secs"))
                .transpose()?,
            repeat_interval_secs: monitor
                .alerting
                .repeat_interval_secs
                .map(|v| secs(v, "alerting.repeat_interval_secs"))
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

/// Checks everything a monitor row must satisfy; the error names the field
/// as the API's JSON spells it.
pub fn validate_monitor(monitor: &NewMonitor) -> Result<(), StoreError> {
    if !is_valid_team_name(&monitor.team) {
        return Err(StoreError::invalid(
            "team",
            "must be 1 to 64 characters of a-z A-Z 0-9 . _ -",
        ));
    }
    check_name("cluster", &monitor.cluster)?;
    match monitor.group_match {
        GroupMatch::Exact => check_name("consumer_group", &monitor.consumer_group)?,
        GroupMatch::Regex => {
            check_name("consumer_group", &monitor.consumer_group)?;
            lagwatch_model::compile_pattern(&monitor.consumer_group).map_err(|e| {
                StoreError::invalid("consumer_group", format!("is not a valid pattern: {e}"))
            })?;
        }
    }
    if let Some(pattern) = &monitor.topic_regex {
        if pattern.is_empty() {
            return Err(StoreError::invalid(
                "topic_regex",
                "must not be empty (leave it out or null instead)",
            ));
        }
        lagwatch_model::compile_pattern(pattern).map_err(|e| {
            StoreError::invalid("topic_regex", format!("is not a valid pattern: {e}"))
        })?;
    }
    if monitor.lag_threshold <= 0 {
        return Err(StoreError::invalid(
            "lag_threshold",
            "must be greater than 0",
        ));
    }
    if monitor.for_secs > MAX_FOR_SECS {
        return Err(StoreError::invalid(
            "for_secs",
            format!("must be at most {MAX_FOR_SECS} (7 days)"),
        ));
    }
    check_list("topics", &monitor.topics)?;
    for topic in &monitor.topics {
        if !is_valid_topic_name(topic) {
            return Err(StoreError::invalid(
                "topics",
                format!(
                    "`{}` is not a valid Kafka topic name (1-249 chars of a-z A-Z 0-9 . _ -, not . or ..)",
                    shorten(topic)
                ),
            ));
        }
    }
    check_list("emails", &monitor.emails)?;
    for email in &monitor.emails {
        if !is_plausible_email(email) {
            return Err(StoreError::invalid(
                "emails",
                format!("`{}` is not an e-mail address", shorten(email)),
            ));
        }
    }
    validate_alerting(&monitor.alerting)
}

fn validate_alerting(alerting: &AlertSettings) -> Result<(), StoreError> {
    let positive = |value: Option<i64>, field: &str| match value {
        Some(v) if v <= 0 => Err(StoreError::invalid(field, "must be greater than 0")),
        _ => Ok(()),
    };
    positive(alerting.topic_lag_threshold, "alerting.topic_lag_threshold")?;
    positive(alerting.total_lag_threshold, "alerting.total_lag_threshold")?;
    if let Some(secs) = alerting.time_lag_threshold_secs {
        if secs == 0 || secs > MAX_ALERT_SECS {
            return Err(StoreError::invalid(
                "alerting.time_lag_threshold_secs",
                format!("must be 1 to {MAX_ALERT_SECS} (30 days)"),
            ));
        }
    }
    if let Some(secs) = alerting.repeat_interval_secs {
        if !(60..=MAX_ALERT_SECS).contains(&secs) {
            return Err(StoreError::invalid(
                "alerting.repeat_interval_secs",
                format!("must be 60 to {MAX_ALERT_SECS} (30 days)"),
            ));
        }
    }
    check_list("alerting.webhooks", &alerting.webhooks)?;
    for url in &alerting.webhooks {
        if !is_webhook_url(url) {
            return Err(StoreError::invalid(
                "alerting.webhooks",
                format!(
                    "`{}` is not a webhook URL (http:// or https:// with a host, at most 2048 characters)",
                    shorten(url)
                ),
            ));
        }
        // Checked again at delivery, on the address connected to.
        if let Some(reason) = lagwatch_model::address::webhook_url_refusal(url) {
            return Err(StoreError::invalid("alerting.webhooks", reason));
        }
    }
    if encode_list(&alerting.webhooks).chars().count() > MAX_WEBHOOKS_JSON {
        return Err(StoreError::invalid(
            "alerting.webhooks",
            format!("the URLs together must stay under {MAX_WEBHOOKS_JSON} characters"),
        ));
    }
    Ok(())
}

/// A cluster or group name: 1 to 255 bytes, not blank, no control
/// characters.
fn check_name(field: &str, value: &str) -> Result<(), StoreError> {
    if value.trim().is_empty() || value.len() > 255 {
        return Err(StoreError::invalid(field, "must be 1 to 255 characters"));
    }
    if value.chars().any(char::is_control) {
        return Err(StoreError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

fn check_list(field: &str, items: &[String]) -> Result<(), StoreError> {
    if items.len() > MAX_LIST_ITEMS {
        return Err(StoreError::invalid(
            field,
            format!("at most {MAX_LIST_ITEMS} entries"),
        ));
    }
    for (index, item) in items.iter().enumerate() {
        if items[..index].contains(item) {
            return Err(StoreError::invalid(
                field,
                format!("`{}` is listed twice", shorten(item)),
            ));
        }
    }
    Ok(())
}

/// A value quoted in an error message, cut to 80 characters.
fn shorten(value: &str) -> String {
    if value.chars().count() <= 80 {
        value.to_string()
    } else {
        format!("{}...", value.chars().take(80).collect::<String>())
    }
}

/// Team names: 1..=64 chars of `[a-zA-Z0-9._-]` (they appear in URLs and
/// logs).
pub fn is_valid_team_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
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

/// `local@domain.tld`-shaped, no whitespace or control characters, at most
/// 254 characters.
fn is_plausible_email(address: &str) -> bool {
    let Some((local, domain)) = address.rsplit_once('@') else {
        return false;
    };
    address.len() <= 254
        && !local.is_empty()
        && !address.contains(char::is_whitespace)
        && !address.contains(char::is_control)
        && !local.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
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
            url.len() <= 2048
                && !host.is_empty()
                && !url.contains(char::is_whitespace)
                && !url.contains(char::is_control)
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
    async fn rejects_invalid_monitors_naming_the_field() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = sqlite_store(&dir).await;
        type Spoil = fn(&mut NewMonitor);
        let cases: Vec<(Spoil, &str, &str)> = vec![
            (
                |m| m.topics = vec!["no spaces allowed".into()],
                "topics",
                "not a valid Kafka topic name",
            ),
            (|m| m.lag_threshold = 0, "lag_threshold", "greater than 0"),
            (
                |m| m.emails = vec!["nobody".into()],
                "emails",
                "not an e-mail",
            ),
            (
                |m| m.consumer_group = "(".into(),
                "consumer_group",
                "pattern",
            ),
            (
                |m| m.consumer_group = "a".repeat(256),
                "consumer_group",
                "255",
            ),
            (
                |m| m.topic_regex = Some("a".repeat(1_001)),
                "topic_regex",
                "longer than 1000",
            ),
            (
                |m| m.topic_regex = Some("(a{1000}){1000}".into()),
                "topic_regex",
                "pattern",
            ),
            (|m| m.team = "".into(), "team", "1 to 64"),
            (|m| m.cluster = " ".into(), "cluster", "1 to 255"),
            (|m| m.for_secs = MAX_FOR_SECS + 1, "for_secs", "7 days"),
            (
                |m| m.topics = (0..51).map(|i| format!("t{i}")).collect(),
                "topics",
                "at most 50",
            ),
            (
                |m| m.emails = vec!["a@example.com".into(), "a@example.com".into()],
                "emails",
                "twice",
            ),
            (
                |m| m.alerting.webhooks = vec!["ftp://x".into()],
                "alerting.webhooks",
                "not a webhook URL",
            ),
            (
                |m| m.alerting.webhooks = vec!["http://169.254.169.254/latest".into()],
                "alerting.webhooks",
                "link-local",
            ),
            (
                |m| m.alerting.webhooks = vec!["http://[::ffff:127.0.0.1]:8080/".into()],
                "alerting.webhooks",
                "loopback",
            ),
            (
                |m| m.alerting.webhooks = vec!["http://LOCALHOST.:8080/x".into()],
                "alerting.webhooks",
                "this machine",
            ),
            (
                |m| m.alerting.webhooks = vec!["https://u@10.0.0.1/x".into()],
                "alerting.webhooks",
                "private",
            ),
            (
                |m| m.alerting.total_lag_threshold = Some(-1),
                "alerting.total_lag_threshold",
                "greater than 0",
            ),
            (
                |m| m.alerting.repeat_interval_secs = Some(5),
                "alerting.repeat_interval_secs",
                "60",
            ),
            (
                |m| m.alerting.time_lag_threshold_secs = Some(0),
                "alerting.time_lag_threshold_secs",
                "1 to",
            ),
        ];
        for (spoil, field, expected) in cases {
            let mut bad = new_monitor();
            spoil(&mut bad);
            match store.add(&bad).await {
                Err(StoreError::InvalidField {
                    field: got,
                    message,
                }) => {
                    assert_eq!(got, field, "{message}");
                    assert!(message.contains(expected), "{field}: {message}");
                }
                other => panic!("{field}: expected InvalidField, got {other:?}"),
            }
        }
        assert!(
            store.list().await.expect("list").is_empty(),
            "nothing stored"
        );
    }

    #[tokio::test]
    async fn audited_changes_write_the_audit_log_in_the_same_transaction() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = sqlite_store(&dir).await;
        let added = store.add_audited(&new_monitor(), "cli").await.expect("add");
        let mut changed = new_monitor();
        changed.lag_threshold = 900;
        assert_eq!(
            store
                .update_audited(added.id, Some("search"), &changed, "search")
                .await
                .expect("update"),
            None,
            "another team's monitor is not changed"
        );
        let updated = store
            .update_audited(added.id, Some("payments"), &changed, "payments")
            .await
            .expect("update")
            .expect("exists");
        assert_eq!(updated.lag_threshold, 900);
        assert_eq!(
            store
                .remove_audited(added.id, Some("search"), "search")
                .await
                .expect("rm"),
            None
        );
        let removed = store
            .remove_audited(added.id, None, "admin")
            .await
            .expect("rm")
            .expect("existed");
        assert_eq!(removed, updated);

        let entries = store.list_audit(None, 10).await.expect("audit");
        let summary: Vec<_> = entries
            .iter()
            .map(|e| (e.action, e.actor.as_str(), e.monitor_id, e.team.as_str()))
            .collect();
        assert_eq!(
            summary,
            vec![
                (AuditAction::Delete, "admin", added.id, "payments"),
                (AuditAction::Update, "payments", added.id, "payments"),
                (AuditAction::Create, "cli", added.id, "payments"),
            ]
        );
        assert_eq!(entries[1].before.as_ref(), Some(&added));
        assert_eq!(entries[1].after.as_ref(), Some(&updated));
        assert_eq!(entries[0].after, None);
        assert!(store
            .list_audit(Some("search"), 10)
            .await
            .expect("audit")
            .is_empty());

        // Concurrent audited changes all land, each with its own row (SQLite
        // would answer "database is locked" to a plain deferred transaction).
        let base = store.add_audited(&new_monitor(), "cli").await.expect("add");
        let updates = (0..8).map(|i| {
            let store = store.clone();
            let mut changed = new_monitor();
            changed.lag_threshold = 1_000 + i;
            async move {
                store
                    .update_audited(base.id, None, &changed, &format!("writer-{i}"))
                    .await
            }
        });
        for result in futures::future::join_all(updates).await {
            assert!(result.expect("concurrent update").is_some());
        }
        let rows = store.list_audit(None, 100).await.expect("audit");
        assert_eq!(rows.len(), 3 + 1 + 8);
        let last = store.get(base.id).await.expect("get").expect("exists");
        assert_eq!(
            rows[0].after.as_ref().map(|m| m.lag_threshold),
            Some(last.lag_threshold),
            "the newest audit row describes the stored monitor"
        );
        store.remove(base.id).await.expect("rm");

        // A rejected change writes no audit row either.
        let mut bad = new_monitor();
        bad.lag_threshold = 0;
        assert!(store.add_audited(&bad, "cli").await.is_err());
        assert_eq!(store.list_audit(None, 100).await.expect("audit").len(), 12);
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
