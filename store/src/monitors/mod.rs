//! Monitor rows: the [`MonitorStore`] methods that add, read, change and
//! remove them, and the audited variants that record who changed what in
//! the same transaction.
//!
//! Split by job so each part can be read alone:
//! - `sql`: the statements (column list, select, insert, update);
//! - `row`: the row codec (lists as JSON text, enums as their names, seconds
//!   as signed integers) between [`Monitor`] and a database row;
//!
//! What a monitor must satisfy before it is written lives on the model
//! type (`NewMonitor::validate`), shared with the CLI and the API.

use lagwatch_model::{Monitor, NewMonitor};
use sqlx::{AssertSqlSafe, Row};

use super::audit::{insert_audit, AuditAction};
use super::{MonitorStore, StoreError};

mod row;
pub(crate) mod sql;
#[cfg(test)]
mod tests;

pub use lagwatch_model::{is_valid_team_name, is_valid_topic_name, MAX_FOR_SECS, MAX_LIST_ITEMS};
use row::monitor_from_row;
pub(crate) use sql::lock_team;
use sql::{
    insert_monitor, select_for_update, select_monitor, team_monitors, update_monitor, COLUMNS,
};

/// Checks `monitor` with the model's rules ([`NewMonitor::validate`]).
pub fn validate_monitor(monitor: &NewMonitor) -> Result<(), StoreError> {
    Ok(monitor.validate()?)
}

/// A team limit checked inside a write's transaction: given the team's
/// (other) monitors, `Err` with the message that refuses the write.
pub type QuotaCheck<'a> = &'a (dyn Fn(&[Monitor]) -> Result<(), String> + Send + Sync);

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
        self.add_audited_within(monitor, actor, &|_| Ok(())).await
    }

    /// [`add_audited`](Self::add_audited) after `quota` accepted the
    /// team's current monitors, checked inside the same transaction with
    /// the team's write lock held: requests racing at the limit cannot both
    /// pass. A refusal is [`StoreError::QuotaExceeded`].
    pub async fn add_audited_within(
        &self,
        monitor: &NewMonitor,
        actor: &str,
        quota: QuotaCheck<'_>,
    ) -> Result<Monitor, StoreError> {
        validate_monitor(monitor)?;
        let mut tx = self.begin_write().await?;
        lock_team(&mut tx, self.backend(), &monitor.team).await?;
        quota(&team_monitors(&mut tx, &monitor.team).await?).map_err(StoreError::QuotaExceeded)?;
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
        self.update_audited_within(id, owner, monitor, actor, &|_| Ok(()))
            .await
    }

    /// [`update_audited`](Self::update_audited) after `quota` accepted the
    /// new team's other monitors (all but `id`), checked inside the same
    /// transaction with that team's write lock held.
    pub async fn update_audited_within(
        &self,
        id: i64,
        owner: Option<&str>,
        monitor: &NewMonitor,
        actor: &str,
        quota: QuotaCheck<'_>,
    ) -> Result<Option<Monitor>, StoreError> {
        validate_monitor(monitor)?;
        let mut tx = self.begin_write().await?;
        lock_team(&mut tx, self.backend(), &monitor.team).await?;
        let Some(before) = select_for_update(&mut tx, self.backend(), id).await? else {
            return Ok(None);
        };
        if owner.is_some_and(|team| team != before.team) {
            return Ok(None);
        }
        let others: Vec<Monitor> = team_monitors(&mut tx, &monitor.team)
            .await?
            .into_iter()
            .filter(|m| m.id != id)
            .collect();
        quota(&others).map_err(StoreError::QuotaExceeded)?;
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
