//! The monitor store against real MariaDB (and SQLite, same code path).
//!
//! Needs `tests/infra/up.sh` (MariaDB on 127.0.0.1:13306).

mod common;

use lagwatch_model::NewMonitor;
use lagwatch_store::MonitorStore;

fn monitor(group: &str) -> NewMonitor {
    NewMonitor {
        team: "payments".into(),
        cluster: "local".into(),
        consumer_group: group.into(),
        topics: vec!["orders".into(), "refunds".into()],
        lag_threshold: 500,
        for_secs: 120,
        emails: vec!["a@example.com".into(), "b@example.com".into()],
        isolation: lagwatch_model::Isolation::ReadCommitted,
        time_lag: lagwatch_model::TimeLagMode::Exact,
        group_match: lagwatch_model::GroupMatch::Exact,
        topic_regex: Some("audit\\..*".into()),
        alerting: lagwatch_model::AlertSettings {
            topic_lag_threshold: None,
            total_lag_threshold: Some(10_000),
            time_lag_threshold_secs: Some(600),
            repeat_interval_secs: Some(7_200),
            webhooks: vec!["https://hooks.example.com/x?a=1".into()],
        },
    }
}

async fn exercise(store: &MonitorStore) -> anyhow::Result<()> {
    store.migrate().await?;
    store.migrate().await?; // idempotent
    let first = store.add(&monitor("billing")).await?;
    let second = store.add(&monitor("shipping")).await?;
    assert!(second.id > first.id);
    let listed = store.list().await?;
    assert_eq!(listed, vec![first.clone(), second.clone()]);
    let (count, _) = store.version().await?;
    assert_eq!(count, 2);
    assert!(store.remove(first.id).await?);
    assert_eq!(store.list().await?, vec![second]);
    let mut bad = monitor("x");
    bad.emails = vec!["not an address".into()];
    assert!(store.add(&bad).await.is_err());
    assert_eq!(
        store.list().await?.len(),
        1,
        "a rejected monitor stores nothing"
    );
    Ok(())
}

#[tokio::test]
async fn mariadb_store_round_trips_monitors() -> anyhow::Result<()> {
    let (url, mut admin, database) = common::throwaway_mariadb("lw_store").await?;
    let store = MonitorStore::connect(&url).await?;
    let result = exercise(&store).await;
    store.close().await;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE `{database}`")))
        .execute(&mut admin)
        .await?;
    result
}

#[tokio::test]
async fn sqlite_store_round_trips_monitors() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store =
        MonitorStore::connect(&format!("sqlite://{}", dir.path().join("m.db").display())).await?;
    exercise(&store).await
}

#[tokio::test]
async fn unreachable_database_gives_a_clear_error() {
    let error = MonitorStore::connect("mysql://u:secret@127.0.0.1:1/db")
        .await
        .expect_err("nothing listens on port 1");
    let text = error.to_string();
    assert!(
        text.contains("cannot connect to the monitor store"),
        "{text}"
    );
    assert!(!text.contains("secret"), "password leaked: {text}");
}
