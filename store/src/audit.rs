//! The audit log: who created, changed or deleted which monitor, when, and
//! what it looked like before and after. Rows are written by the audited
//! store methods inside the transaction of the change itself.

use lagwatch_model::{now_ms, Monitor};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AssertSqlSafe, Row};

use super::{MonitorStore, StoreError};

const COLUMNS: &str = "id, ts_ms, actor, team, action, monitor_id, before_json, after_json";

/// What happened to the monitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    Create,
    Update,
    Delete,
}

impl AuditAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::Create => "create",
            AuditAction::Update => "update",
            AuditAction::Delete => "delete",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "create" => Some(AuditAction::Create),
            "update" => Some(AuditAction::Update),
            "delete" => Some(AuditAction::Delete),
            _ => None,
        }
    }
}

/// One audit-log row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: i64,
    pub ts_ms: i64,
    /// `cli`, `admin`, or `team:<team>:token:<id>`.
    pub actor: String,
    /// The monitor's team (after the change; before it for deletes).
    pub team: String,
    pub action: AuditAction,
    pub monitor_id: i64,
    /// The monitor before the change; `None` for creates.
    pub before: Option<Monitor>,
    /// The monitor after the change; `None` for deletes.
    pub after: Option<Monitor>,
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

fn entry_from_row(row: &AnyRow) -> Result<AuditEntry, StoreError> {
    let id: i64 = row.try_get("id")?;
    let decode = |column: &'static str| -> Result<Option<Monitor>, StoreError> {
        row.try_get::<Option<String>, _>(column)?
            .map(|text| serde_json::from_str(&text))
            .transpose()
            .map_err(|e| StoreError::Corrupt {
                id,
                column,
                reason: e.to_string(),
            })
    };
    let action: String = row.try_get("action")?;
    Ok(AuditEntry {
        id,
        ts_ms: row.try_get("ts_ms")?,
        actor: row.try_get("actor")?,
        team: row.try_get("team")?,
        action: AuditAction::parse(&action).ok_or_else(|| StoreError::Corrupt {
            id,
            column: "action",
            reason: format!("unknown action `{action}`"),
        })?,
        monitor_id: row.try_get("monitor_id")?,
        before: decode("before_json")?,
        after: decode("after_json")?,
    })
}
