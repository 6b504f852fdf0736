//! Team API tokens. Only a token's SHA-256 (hex) and its last four
//! characters are stored; the token itself is shown once, when created.
//! A token may carry an expiry, and records when it was last used (coarsely,
//! so authentication does not write on every request). Issuing and revoking
//! are audited in the same transaction.

use lagwatch_model::now_ms;
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use super::audit::{insert_record_audit, AuditAction, AuditSubject};
use super::{MonitorStore, StoreError};

const COLUMNS: &str = "id, team, created_at_ms, last4, expires_at_ms, last_used_at_ms";

/// A stored token, without anything that would let one use it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = TokenInfo))]
pub struct ApiToken {
    pub id: i64,
    /// The team the token acts for.
    pub team: String,
    pub created_at_ms: i64,
    /// Last four characters of the token, to tell tokens apart.
    pub last4: String,
    /// When the token stops working; never with `None`.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub expires_at_ms: Option<i64>,
    /// When the token last authenticated a request (recorded at most about
    /// once a minute); never used with `None`.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub last_used_at_ms: Option<i64>,
}

impl ApiToken {
    /// Whether the token has expired at `now_ms`.
    pub fn is_expired(&self, now_ms: i64) -> bool {
        self.expires_at_ms.is_some_and(|at| at <= now_ms)
    }
}

impl MonitorStore {
    /// Stores a token by its SHA-256 hex digest, expiring at
    /// `expires_at_ms` when given, and records `actor` issuing it in the
    /// audit log (same transaction).
    pub async fn add_token(
        &self,
        team: &str,
        sha256_hex: &str,
        last4: &str,
        expires_at_ms: Option<i64>,
        actor: &str,
    ) -> Result<ApiToken, StoreError> {
        if !super::is_valid_team_name(team) {
            return Err(StoreError::invalid(
                "team",
                "must be 1 to 64 characters of a-z A-Z 0-9 . _ -",
            ));
        }
        let now = now_ms();
        if expires_at_ms.is_some_and(|at| at <= now) {
            return Err(StoreError::invalid(
                "expires_in_secs",
                "must be in the future",
            ));
        }
        let mut tx = self.begin_write().await?;
        let result = sqlx::query(
            "INSERT INTO api_tokens (team, token_sha256, created_at_ms, last4, expires_at_ms) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(team)
        .bind(sha256_hex)
        .bind(now)
        .bind(last4)
        .bind(expires_at_ms)
        .execute(&mut *tx)
        .await?;
        let id = match result.last_insert_id() {
            Some(id) => id,
            None => sqlx::query("SELECT id FROM api_tokens WHERE token_sha256 = ?")
                .bind(sha256_hex)
                .fetch_one(&mut *tx)
                .await?
                .try_get::<i64, _>("id")?,
        };
        let token = ApiToken {
            id,
            team: team.to_string(),
            created_at_ms: now,
            last4: last4.to_string(),
            expires_at_ms,
            last_used_at_ms: None,
        };
        insert_record_audit(
            &mut tx,
            actor,
            team,
            AuditSubject::Token,
            AuditAction::Issue,
            id,
            &token,
        )
        .await?;
        tx.commit().await?;
        Ok(token)
    }

    /// The token whose SHA-256 hex digest is `sha256_hex`.
    pub async fn find_token(&self, sha256_hex: &str) -> Result<Option<ApiToken>, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM api_tokens WHERE token_sha256 = ?"
        )))
        .bind(sha256_hex)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    /// Tokens of one team (`Some`) or of all teams, by id.
    pub async fn list_tokens(&self, team: Option<&str>) -> Result<Vec<ApiToken>, StoreError> {
        let rows = match team {
            Some(team) => {
                sqlx::query(AssertSqlSafe(format!(
                    "SELECT {COLUMNS} FROM api_tokens WHERE team = ? ORDER BY id"
                )))
                .bind(team)
                .fetch_all(self.pool())
                .await?
            }
            None => {
                sqlx::query(AssertSqlSafe(format!(
                    "SELECT {COLUMNS} FROM api_tokens ORDER BY id"
                )))
                .fetch_all(self.pool())
                .await?
            }
        };
        rows.iter().map(token_from_row).collect()
    }

    /// Records that token `id` authenticated a request at `at_ms`.
    pub async fn touch_token(&self, id: i64, at_ms: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE api_tokens SET last_used_at_ms = ? WHERE id = ?")
            .bind(at_ms)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Revokes a token and records `actor` revoking it in the audit log
    /// (same transaction); returns the revoked token, `None` when it did
    /// not exist.
    pub async fn remove_token(&self, id: i64, actor: &str) -> Result<Option<ApiToken>, StoreError> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM api_tokens WHERE id = ?"
        )))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(token) = row.as_ref().map(token_from_row).transpose()? else {
            return Ok(None);
        };
        sqlx::query("DELETE FROM api_tokens WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        insert_record_audit(
            &mut tx,
            actor,
            &token.team,
            AuditSubject::Token,
            AuditAction::Revoke,
            id,
            &token,
        )
        .await?;
        tx.commit().await?;
        Ok(Some(token))
    }
}

fn token_from_row(row: &AnyRow) -> Result<ApiToken, StoreError> {
    Ok(ApiToken {
        id: row.try_get("id")?,
        team: row.try_get("team")?,
        created_at_ms: row.try_get("created_at_ms")?,
        last4: row.try_get("last4")?,
        expires_at_ms: row.try_get("expires_at_ms")?,
        last_used_at_ms: row.try_get("last_used_at_ms")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tokens_are_stored_found_listed_expired_touched_and_revoked_with_audit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("m.db").display());
        let store = MonitorStore::connect(&url).await.expect("connect");
        store.migrate().await.expect("migrate");
        let a = store
            .add_token("payments", &"a".repeat(64), "wxyz", None, "cli")
            .await
            .expect("add");
        let later = now_ms() + 60_000;
        let b = store
            .add_token("search", &"b".repeat(64), "abcd", Some(later), "admin")
            .await
            .expect("add");
        assert_eq!(b.expires_at_ms, Some(later));
        assert!(!b.is_expired(now_ms()) && b.is_expired(later));
        assert!(
            store
                .add_token("payments", &"a".repeat(64), "wxyz", None, "cli")
                .await
                .is_err(),
            "digests are unique"
        );
        assert!(matches!(
            store
                .add_token("bad team", &"c".repeat(64), "x", None, "cli")
                .await,
            Err(StoreError::InvalidField { .. })
        ));
        assert!(matches!(
            store
                .add_token("payments", &"d".repeat(64), "x", Some(now_ms() - 1), "cli")
                .await,
            Err(StoreError::InvalidField { field, .. }) if field == "expires_in_secs"
        ));
        assert_eq!(
            store.find_token(&"a".repeat(64)).await.expect("find"),
            Some(a.clone())
        );
        assert_eq!(store.find_token(&"f".repeat(64)).await.expect("find"), None);
        assert_eq!(
            store.list_tokens(Some("search")).await.expect("list"),
            vec![b.clone()]
        );
        assert_eq!(store.list_tokens(None).await.expect("list").len(), 2);
        store.touch_token(a.id, 1_234).await.expect("touch");
        let touched = store.find_token(&"a".repeat(64)).await.expect("find");
        assert_eq!(touched.and_then(|t| t.last_used_at_ms), Some(1_234));
        let revoked = store.remove_token(a.id, "admin").await.expect("rm");
        assert_eq!(revoked.map(|t| t.id), Some(a.id));
        assert_eq!(
            store.remove_token(a.id, "admin").await.expect("rm twice"),
            None
        );
        assert_eq!(store.find_token(&"a".repeat(64)).await.expect("find"), None);

        let audit = store.list_audit(None, 10).await.expect("audit");
        let seen: Vec<_> = audit
            .iter()
            .map(|e| {
                (
                    e.subject,
                    e.action,
                    e.subject_id,
                    e.team.as_str(),
                    e.actor.as_str(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            vec![
                (
                    AuditSubject::Token,
                    AuditAction::Revoke,
                    a.id,
                    "payments",
                    "admin"
                ),
                (
                    AuditSubject::Token,
                    AuditAction::Issue,
                    b.id,
                    "search",
                    "admin"
                ),
                (
                    AuditSubject::Token,
                    AuditAction::Issue,
                    a.id,
                    "payments",
                    "cli"
                ),
            ]
        );
        assert!(audit.iter().all(|e| e.monitor_id == 0), "no monitor named");
        let record = audit[0].record.as_ref().expect("record");
        assert_eq!(record["last4"], "wxyz");
        assert!(
            !record.to_string().contains(&"a".repeat(64)),
            "no digest in the log"
        );
    }
}
