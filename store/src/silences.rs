//! Silence rows: create, list, expire, and the active set the evaluator
//! reads. Creating and expiring a silence mutes or unmutes a team's pages,
//! so both are audited with their actor in the same transaction.

use lagwatch_model::{now_ms, NewSilence, Silence};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use super::audit::{insert_record_audit, AuditAction, AuditSubject};
use super::{MonitorStore, StoreError};

const COLUMNS: &str = "id, team, monitor_id, cluster, consumer_group, rule, starts_at_ms, \
     ends_at_ms, created_by, comment, created_at_ms";

/// Longest silence accepted: 90 days.
pub const MAX_SILENCE_MS: i64 = 90 * 24 * 3_600 * 1_000;

impl MonitorStore {
    /// Stores a silence after checking it, audited as created by its
    /// `created_by`.
    pub async fn add_silence(&self, silence: &NewSilence) -> Result<Silence, StoreError> {
        self.add_silence_within(silence, None).await
    }

    /// [`add_silence`](Self::add_silence), refused with
    /// [`StoreError::QuotaExceeded`] when the team already has
    /// `max_unexpired` unexpired silences — counted inside the same
    /// transaction with the team's write lock held, so requests racing at
    /// the limit cannot both pass.
    pub async fn add_silence_within(
        &self,
        silence: &NewSilence,
        max_unexpired: Option<u32>,
    ) -> Result<Silence, StoreError> {
        validate_silence(silence)?;
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        if let Some(max) = max_unexpired {
            crate::monitors::lock_team(&mut tx, self.backend(), &silence.team).await?;
            let have: i64 =
                sqlx::query("SELECT COUNT(*) AS n FROM silences WHERE team = ? AND ends_at_ms > ?")
                    .bind(&silence.team)
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await?
                    .try_get("n")?;
            if have >= i64::from(max) {
                return Err(StoreError::QuotaExceeded(format!(
                    "team {} has {have} unexpired silences, its quota `max_silences` is {max}",
                    silence.team
                )));
            }
        }
        let result = sqlx::query(
            "INSERT INTO silences (team, monitor_id, cluster, consumer_group, rule, \
             starts_at_ms, ends_at_ms, created_by, comment, created_at_ms) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&silence.team)
        .bind(silence.monitor_id)
        .bind(silence.cluster.as_deref())
        .bind(silence.consumer_group.as_deref())
        .bind(silence.rule.as_deref())
        .bind(silence.starts_at_ms)
        .bind(silence.ends_at_ms)
        .bind(&silence.created_by)
        .bind(&silence.comment)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let id = match result.last_insert_id() {
            Some(id) => id,
            None => sqlx::query("SELECT MAX(id) AS id FROM silences")
                .fetch_one(&mut *tx)
                .await?
                .try_get::<i64, _>("id")?,
        };
        let stored = Silence {
            id,
            team: silence.team.clone(),
            monitor_id: silence.monitor_id,
            cluster: silence.cluster.clone(),
            consumer_group: silence.consumer_group.clone(),
            rule: silence.rule.clone(),
            starts_at_ms: silence.starts_at_ms,
            ends_at_ms: silence.ends_at_ms,
            created_by: silence.created_by.clone(),
            comment: silence.comment.clone(),
            created_at_ms: now,
        };
        insert_record_audit(
            &mut tx,
            &silence.created_by,
            &silence.team,
            AuditSubject::Silence,
            AuditAction::Create,
            id,
            &stored,
        )
        .await?;
        tx.commit().await?;
        Ok(stored)
    }

    /// One silence by id.
    pub async fn get_silence(&self, id: i64) -> Result<Option<Silence>, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM silences WHERE id = ?"
        )))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(silence_from_row).transpose()
    }

    /// Silences of `team` (every team's with `None`), newest first; expired
    /// ones only when `include_expired`.
    pub async fn list_silences(
        &self,
        team: Option<&str>,
        include_expired: bool,
    ) -> Result<Vec<Silence>, StoreError> {
        let now = now_ms();
        let min_end = if include_expired { i64::MIN } else { now };
        let rows = match team {
            Some(team) => {
                sqlx::query(AssertSqlSafe(format!(
                    "SELECT {COLUMNS} FROM silences WHERE team = ? AND ends_at_ms > ? \
                     ORDER BY id DESC"
                )))
                .bind(team)
                .bind(min_end)
                .fetch_all(self.pool())
                .await?
            }
            None => {
                sqlx::query(AssertSqlSafe(format!(
                    "SELECT {COLUMNS} FROM silences WHERE ends_at_ms > ? ORDER BY id DESC"
                )))
                .bind(min_end)
                .fetch_all(self.pool())
                .await?
            }
        };
        rows.iter().map(silence_from_row).collect()
    }

    /// Silences in force now or starting later (what the evaluator keeps).
    pub async fn unexpired_silences(&self) -> Result<Vec<Silence>, StoreError> {
        self.list_silences(None, false).await
    }

    /// Ends a silence now, audited as expired by `actor`; returns `None`
    /// when it does not exist. Expiring an already expired silence leaves
    /// it unchanged and writes no audit row.
    pub async fn expire_silence(
        &self,
        id: i64,
        actor: &str,
    ) -> Result<Option<Silence>, StoreError> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let changed =
            sqlx::query("UPDATE silences SET ends_at_ms = ? WHERE id = ? AND ends_at_ms > ?")
                .bind(now)
                .bind(id)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM silences WHERE id = ?"
        )))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let silence = row.as_ref().map(silence_from_row).transpose()?;
        if let (Some(expired), true) = (&silence, changed > 0) {
            insert_record_audit(
                &mut tx,
                actor,
                &expired.team,
                AuditSubject::Silence,
                AuditAction::Expire,
                id,
                expired,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(silence)
    }
}

/// Checks a silence; the error names the field as the API's JSON spells it.
pub fn validate_silence(silence: &NewSilence) -> Result<(), StoreError> {
    let invalid = |field: &str, msg: &str| Err(StoreError::invalid(field, msg));
    if silence.team.trim().is_empty() || silence.team.len() > 255 {
        return invalid("team", "must be 1 to 255 characters");
    }
    if silence.ends_at_ms <= silence.starts_at_ms {
        return invalid("duration_secs", "the silence must end after it starts");
    }
    if silence.ends_at_ms.saturating_sub(silence.starts_at_ms) > MAX_SILENCE_MS {
        return invalid("duration_secs", "a silence may last at most 90 days");
    }
    if silence.comment.len() > 1024 {
        return invalid("comment", "must be at most 1024 characters");
    }
    if silence.created_by.is_empty() || silence.created_by.len() > 255 {
        return invalid("created_by", "must be 1 to 255 characters");
    }
    let name = |field: &str, value: &Option<String>, max: usize| match value {
        Some(v) if v.is_empty() || v.len() > max || v.chars().any(char::is_control) => {
            Err(StoreError::invalid(
                field,
                format!("must be 1 to {max} characters, no control characters"),
            ))
        }
        _ => Ok(()),
    };
    name("cluster", &silence.cluster, 255)?;
    name("consumer_group", &silence.consumer_group, 255)?;
    name("rule", &silence.rule, 64)?;
    Ok(())
}

fn silence_from_row(row: &AnyRow) -> Result<Silence, StoreError> {
    Ok(Silence {
        id: row.try_get("id")?,
        team: row.try_get("team")?,
        monitor_id: row.try_get("monitor_id")?,
        cluster: row.try_get("cluster")?,
        consumer_group: row.try_get("consumer_group")?,
        rule: row.try_get("rule")?,
        starts_at_ms: row.try_get("starts_at_ms")?,
        ends_at_ms: row.try_get("ends_at_ms")?,
        created_by: row.try_get("created_by")?,
        comment: row.try_get("comment")?,
        created_at_ms: row.try_get("created_at_ms")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_silence(team: &str, minutes: i64) -> NewSilence {
        let now = now_ms();
        NewSilence {
            team: team.into(),
            monitor_id: Some(3),
            cluster: None,
            consumer_group: Some("billing".into()),
            rule: None,
            starts_at_ms: now - 1_000,
            ends_at_ms: now + minutes * 60_000,
            created_by: team.into(),
            comment: "deploy".into(),
        }
    }

    #[tokio::test]
    async fn silences_are_created_listed_per_team_and_expired() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("m.db").display());
        let store = MonitorStore::connect(&url).await.expect("connect");
        store.migrate().await.expect("migrate");

        let ours = store
            .add_silence(&new_silence("payments", 30))
            .await
            .expect("add");
        let theirs = store
            .add_silence(&new_silence("search", 30))
            .await
            .expect("add");
        assert_eq!(ours.monitor_id, Some(3));
        assert_eq!(ours.cluster, None);
        let listed = store
            .list_silences(Some("payments"), false)
            .await
            .expect("list");
        assert_eq!(listed, vec![ours.clone()]);
        assert_eq!(store.unexpired_silences().await.expect("all").len(), 2);

        let expired = store
            .expire_silence(ours.id, "payments")
            .await
            .expect("expire")
            .expect("exists");
        assert!(!expired.is_active(now_ms() + 1));
        assert!(store
            .list_silences(Some("payments"), false)
            .await
            .expect("list")
            .is_empty());
        assert_eq!(
            store
                .list_silences(Some("payments"), true)
                .await
                .expect("list")
                .len(),
            1
        );
        assert_eq!(
            store.unexpired_silences().await.expect("all"),
            vec![theirs.clone()]
        );
        assert_eq!(store.expire_silence(999, "x").await.expect("expire"), None);
        // Expiring again changes nothing and is not audited again.
        store
            .expire_silence(ours.id, "payments")
            .await
            .expect("expire twice");
        let audit = store.list_audit(None, 10).await.expect("audit");
        let seen: Vec<_> = audit
            .iter()
            .map(|e| (e.subject, e.action, e.subject_id, e.actor.as_str()))
            .collect();
        assert_eq!(
            seen,
            vec![
                (
                    AuditSubject::Silence,
                    AuditAction::Expire,
                    ours.id,
                    "payments"
                ),
                (
                    AuditSubject::Silence,
                    AuditAction::Create,
                    theirs.id,
                    "search"
                ),
                (
                    AuditSubject::Silence,
                    AuditAction::Create,
                    ours.id,
                    "payments"
                ),
            ]
        );
        assert_eq!(
            audit[2].record.as_ref().map(|r| r["comment"].clone()),
            Some("deploy".into())
        );
    }

    #[tokio::test]
    async fn invalid_silences_are_rejected() {
        let mut bad = new_silence("payments", 30);
        bad.ends_at_ms = bad.starts_at_ms;
        assert!(validate_silence(&bad).is_err());
        let bad = new_silence("payments", 91 * 24 * 60);
        assert!(validate_silence(&bad)
            .expect_err("too long")
            .to_string()
            .contains("90 days"));
    }
}
