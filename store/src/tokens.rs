//! Team API tokens. Only a token's SHA-256 (hex) and its last four
//! characters are stored; the token itself is shown once, when created.

use lagwatch_model::now_ms;
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{MonitorStore, StoreError};

/// A stored token, without anything that would let one use it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    pub id: i64,
    /// The team the token acts for.
    pub team: String,
    pub created_at_ms: i64,
    /// Last four characters of the token, to tell tokens apart.
    pub last4: String,
}

impl MonitorStore {
    /// Stores a token by its SHA-256 hex digest.
    pub async fn add_token(
        &self,
        team: &str,
        sha256_hex: &str,
        last4: &str,
    ) -> Result<ApiToken, StoreError> {
        if !super::is_valid_team_name(team) {
            return Err(StoreError::invalid(
                "team",
                "must be 1 to 64 characters of a-z A-Z 0-9 . _ -",
            ));
        }
        let now = now_ms();
        let mut conn = self.pool().acquire().await?;
        let result = sqlx::query(
            "INSERT INTO api_tokens (team, token_sha256, created_at_ms, last4) VALUES (?, ?, ?, ?)",
        )
        .bind(team)
        .bind(sha256_hex)
        .bind(now)
        .bind(last4)
        .execute(&mut *conn)
        .await?;
        let id = match result.last_insert_id() {
            Some(id) => id,
            None => sqlx::query("SELECT id FROM api_tokens WHERE token_sha256 = ?")
                .bind(sha256_hex)
                .fetch_one(&mut *conn)
                .await?
                .try_get::<i64, _>("id")?,
        };
        Ok(ApiToken {
            id,
            team: team.to_string(),
            created_at_ms: now,
            last4: last4.to_string(),
        })
    }

    /// The token whose SHA-256 hex digest is `sha256_hex`.
    pub async fn find_token(&self, sha256_hex: &str) -> Result<Option<ApiToken>, StoreError> {
        let row = sqlx::query(
            "SELECT id, team, created_at_ms, last4 FROM api_tokens WHERE token_sha256 = ?",
        )
        .bind(sha256_hex)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    /// Tokens of one team (`Some`) or of all teams, by id.
    pub async fn list_tokens(&self, team: Option<&str>) -> Result<Vec<ApiToken>, StoreError> {
        let rows = match team {
            Some(team) => {
                sqlx::query(
                    "SELECT id, team, created_at_ms, last4 FROM api_tokens WHERE team = ? \
                     ORDER BY id",
                )
                .bind(team)
                .fetch_all(self.pool())
                .await?
            }
            None => {
                sqlx::query("SELECT id, team, created_at_ms, last4 FROM api_tokens ORDER BY id")
                    .fetch_all(self.pool())
                    .await?
            }
        };
        rows.iter().map(token_from_row).collect()
    }

    /// Revokes a token; returns whether it existed.
    pub async fn remove_token(&self, id: i64) -> Result<bool, StoreError> {
        let result = sqlx::query("DELETE FROM api_tokens WHERE id = ?")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(result.rows_affected() > 0)
    }
}

fn token_from_row(row: &AnyRow) -> Result<ApiToken, StoreError> {
    Ok(ApiToken {
        id: row.try_get("id")?,
        team: row.try_get("team")?,
        created_at_ms: row.try_get("created_at_ms")?,
        last4: row.try_get("last4")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tokens_are_stored_found_listed_and_revoked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("m.db").display());
        let store = MonitorStore::connect(&url).await.expect("connect");
        store.migrate().await.expect("migrate");
        let a = store
            .add_token("payments", &"a".repeat(64), "wxyz")
            .await
            .expect("add");
        let b = store
            .add_token("search", &"b".repeat(64), "abcd")
            .await
            .expect("add");
        assert!(
            store
                .add_token("payments", &"a".repeat(64), "wxyz")
                .await
                .is_err(),
            "digests are unique"
        );
        assert!(matches!(
            store.add_token("bad team", &"c".repeat(64), "x").await,
            Err(StoreError::InvalidField { .. })
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
        assert!(store.remove_token(a.id).await.expect("rm"));
        assert!(!store.remove_token(a.id).await.expect("rm twice"));
        assert_eq!(store.find_token(&"a".repeat(64)).await.expect("find"), None);
    }
}
