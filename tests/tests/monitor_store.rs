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

/// Sixteen writers race at a team quota of three, with the check made slow
/// (20 ms) to widen the window between counting and inserting: exactly
/// three monitors and three silences are stored, the rest refused with the
/// quota's message. Before the team lock, every writer counted the same
/// rows and most of them passed.
async fn quotas_hold_under_concurrent_writers(store: &MonitorStore) -> anyhow::Result<()> {
    const WRITERS: usize = 16;
    const MAX: usize = 3;
    store.migrate().await?;
    fn quota(others: &[lagwatch_model::Monitor]) -> Result<(), String> {
        std::thread::sleep(std::time::Duration::from_millis(20));
        if others.len() >= MAX {
            Err(format!("team has {} monitors, max {MAX}", others.len()))
        } else {
            Ok(())
        }
    }
    let mut writers = tokio::task::JoinSet::new();
    for i in 0..WRITERS {
        let (store, monitor) = (store.clone(), monitor(&format!("race-{i}")));
        writers.spawn(async move { store.add_audited_within(&monitor, "test", &quota).await });
    }
    let monitors = writers.join_all().await;
    let stored = monitors.iter().filter(|r| r.is_ok()).count();
    assert_eq!(stored, MAX, "{monitors:?}");
    for refused in monitors.iter().filter_map(|r| r.as_ref().err()) {
        assert!(
            matches!(refused, lagwatch_store::StoreError::QuotaExceeded(m) if m.contains("max 3")),
            "{refused}"
        );
    }
    assert_eq!(store.list_team("payments").await?.len(), MAX);

    let mut writers = tokio::task::JoinSet::new();
    for i in 0..WRITERS {
        let store = store.clone();
        writers.spawn(async move {
            let now = lagwatch_model::now_ms();
            let silence = lagwatch_model::NewSilence {
                team: "payments".into(),
                monitor_id: None,
                cluster: None,
                consumer_group: Some(format!("race-{i}")),
                rule: None,
                starts_at_ms: now,
                ends_at_ms: now + 3_600_000,
                created_by: "test".into(),
                comment: "race".into(),
            };
            store.add_silence_within(&silence, Some(MAX as u32)).await
        });
    }
    let silences = writers.join_all().await;
    assert_eq!(silences.iter().filter(|r| r.is_ok()).count(), MAX);
    assert_eq!(
        store.list_silences(Some("payments"), false).await?.len(),
        MAX
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mariadb_quotas_hold_under_concurrent_writers() -> anyhow::Result<()> {
    let (url, mut admin, database) = common::throwaway_mariadb("lw_quota").await?;
    let store = MonitorStore::connect(&url).await?;
    let result = quotas_hold_under_concurrent_writers(&store).await;
    store.close().await;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE `{database}`")))
        .execute(&mut admin)
        .await?;
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_quotas_hold_under_concurrent_writers() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store =
        MonitorStore::connect(&format!("sqlite://{}", dir.path().join("q.db").display())).await?;
    quotas_hold_under_concurrent_writers(&store).await
}
