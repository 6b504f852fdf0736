//! The audit log: who created, changed or deleted which monitor, created or
//! expired which silence, issued or revoked which team token, when, and what
//! it looked like. Rows are written by the audited store methods inside the
//! transaction of the change itself, so a change without its row (or a row
//! without its change) cannot happen.

use lagwatch_model::{now_ms, Monitor};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AssertSqlSafe, Row};

use super::{MonitorStore, StoreError};

const COLUMNS: &str =
    "id, ts_ms, actor, team, subject, action, monitor_id, before_json, after_json";

/// What kind of object an audit row is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AuditSubject {
    #[default]
    Monitor,
    Silence,
    Token,
}

impl AuditSubject {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditSubject::Monitor => "monitor",
            AuditSubject::Silence => "silence",
            AuditSubject::Token => "token",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "monitor" => Some(AuditSubject::Monitor),
            "silence" => Some(AuditSubject::Silence),
            "token" => Some(AuditSubject::Token),
            _ => None,
        }
    }
}

/// What happened to the subject: monitors are created, updated and
/// deleted; silences created and expired; tokens issued and revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    Create,
    Update,
    Delete,
    Expire,
    Issue,
    Revoke,
}

impl AuditAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::Create => "create",
            AuditAction::Update => "update",
            AuditAction::Delete => "delete",
            AuditAction::Expire => "expire",
            AuditAction::Issue => "issue",
            AuditAction::Revoke => "revoke",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "create" => Some(AuditAction::Create),
            "update" => Some(AuditAction::Update),
            "delete" => Some(AuditAction::Delete),
            "expire" => Some(AuditAction::Expire),
            "issue" => Some(AuditAction::Issue),
            "revoke" => Some(AuditAction::Revoke),
            _ => None,
        }
    }
}

/// One audit-log row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    pub id: i64,
    pub ts_ms: i64,
    /// `cli`, `admin`, or `team:<team>:token:<id>`.
    pub actor: String,
    /// The subject's team (a monitor's after the change; before it for
    /// deletes).
    pub team: String,
    /// What the row is about; `monitor` for rows written before silences
    /// and tokens were audited.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub subject: AuditSubject,
    pub action: AuditAction,
    /// The monitor's id; 0 for silence and token entries (a silence's
    /// monitor is in its `record`), so filtering by monitor finds only
    /// monitor changes.
    pub monitor_id: i64,
    /// The subject's id: the monitor's, the silence's or the token's.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub subject_id: i64,
    /// The monitor before the change; `None` for creates and for other
    /// subjects.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub before: Option<Monitor>,
    /// The monitor after the change; `None` for deletes and for other
    /// subjects.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub after: Option<Monitor>,
    /// A silence or token as it is after the change (a token without
    /// anything that would let one use it); `None` for monitors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub record: Option<serde_json::Value>,
}

impl MonitorStore {
    /// Audit entries, newest first: one team's (`Some`) or all.
    pub async fn list_audit(
        &self,
        team: Option<&str>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let limit = i64::from(limit);
        let rows = match team {
            Some(team) => {
                sqlx::query(AssertSqlSafe(format!(
                    "SELECT {COLUMNS} FROM audit_log WHERE team = ? ORDER BY id DESC LIMIT ?"
                )))
                .bind(team)
                .bind(limit)
                .fetch_all(self.pool())
                .await?
            }
            None => {
                sqlx::query(AssertSqlSafe(format!(
                    "SELECT {COLUMNS} FROM audit_log ORDER BY id DESC LIMIT ?"
                )))
                .bind(limit)
                .fetch_all(self.pool())
                .await?
            }
        };
        rows.iter().map(entry_from_row).collect()
    }
}

/// Appends one audit row on `conn` (the caller's transaction).
pub(super) async fn insert_audit(
    conn: &mut AnyConnection,
    actor: &str,
    team: &str,
    action: AuditAction,
    monitor_id: i64,
    before: Option<&Monitor>,
    after: Option<&Monitor>,
) -> Result<(), StoreError> {
    let encode = |monitor: Option<&Monitor>| -> Result<Option<String>, StoreError> {
        monitor
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| StoreError::Corrupt {
                id: monitor_id,
                column: "audit_log",
                reason: e.to_string(),
            })
    };
    sqlx::query(
        "INSERT INTO audit_log (ts_ms, actor, team, action, monitor_id, before_json, after_json) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(now_ms())
    .bind(actor)
    .bind(team)
    .bind(action.as_str())
    .bind(monitor_id)
    .bind(encode(before)?)
    .bind(encode(after)?)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Appends one audit row about a silence or a token on `conn` (the caller's
/// transaction); `record` is the object after the change.
pub(super) async fn insert_record_audit(
    conn: &mut AnyConnection,
    actor: &str,
    team: &str,
    subject: AuditSubject,
    action: AuditAction,
    subject_id: i64,
    record: &impl Serialize,
) -> Result<(), StoreError> {
    let json = serde_json::to_string(record).map_err(|e| StoreError::Corrupt {
        id: subject_id,
        column: "audit_log",
        reason: e.to_string(),
    })?;
    sqlx::query(
        "INSERT INTO audit_log (ts_ms, actor, team, subject, action, monitor_id, before_json, \
         after_json) VALUES (?, ?, ?, ?, ?, ?, NULL, ?)",
    )
    .bind(now_ms())
    .bind(actor)
    .bind(team)
    .bind(subject.as_str())
    .bind(action.as_str())
    .bind(subject_id)
    .bind(json)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

fn entry_from_row(row: &AnyRow) -> Result<AuditEntry, StoreError> {
    let id: i64 = row.try_get("id")?;
    let corrupt = |column: &'static str, reason: String| StoreError::Corrupt { id, column, reason };
    let subject_text: String = row.try_get("subject")?;
    // The column holds the subject's id (the monitor's for monitor rows).
    let subject_id: i64 = row.try_get("monitor_id")?;
    let subject = AuditSubject::parse(&subject_text)
        .ok_or_else(|| corrupt("subject", format!("unknown subject `{subject_text}`")))?;
    let text = |column: &'static str| row.try_get::<Option<String>, _>(column);
    let decode = |column: &'static str| -> Result<Option<Monitor>, StoreError> {
        if subject != AuditSubject::Monitor {
            return Ok(None);
        }
        text(column)?
            .map(|text| serde_json::from_str(&text))
            .transpose()
            .map_err(|e| corrupt(column, e.to_string()))
    };
    let record = match subject {
        AuditSubject::Monitor => None,
        _ => text("after_json")?
            .map(|text| serde_json::from_str(&text))
            .transpose()
            .map_err(|e| corrupt("after_json", e.to_string()))?,
    };
    let action: String = row.try_get("action")?;
    Ok(AuditEntry {
        id,
        ts_ms: row.try_get("ts_ms")?,
        actor: row.try_get("actor")?,
        team: row.try_get("team")?,
        subject,
        action: AuditAction::parse(&action).ok_or_else(|| StoreError::Corrupt {
            id,
            column: "action",
            reason: format!("unknown action `{action}`"),
        })?,
        monitor_id: match subject {
            AuditSubject::Monitor => subject_id,
            _ => 0,
        },
        subject_id,
        before: decode("before_json")?,
        after: decode("after_json")?,
        record,
    })
}
