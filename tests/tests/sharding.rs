//! Collector sharding over the real broker: instances split the shards
//! without overlap, and a stopped instance's shards move to the others
//! within seconds.
//!
//! Needs `tests/infra/up.sh` (Kafka on 127.0.0.1:19092).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use lagwatch_collector::sharding::{join, Ownership, ShardingConfig};
use lagwatch_collector::ClusterConfig;
use tokio_util::sync::CancellationToken;

fn cluster() -> ClusterConfig {
    ClusterConfig {
        bootstrap_servers: common::kafka(),
        properties: BTreeMap::new(),
        secret_properties: BTreeMap::new(),
        jmx: None,
    }
}

async fn wait_for(
    what: &str,
    timeout: Duration,
    check: impl Fn() -> bool,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    common::eventually(what, timeout, || check().then_some(())).await?;
    Ok(started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_split_shards_and_take_over_from_a_stopped_one() -> anyhow::Result<()> {
    common::require_kafka()?;
    let id = common::unique("shards");
    let config = ShardingConfig {
        group_id: format!("{id}_collectors"),
        topic: format!("{id}_shards"),
        shards: 6,
        session_timeout: Duration::from_secs(6),
    };
    let stop_a = CancellationToken::new();
    let stop_b = CancellationToken::new();
    let a: Ownership = join(&cluster(), &config, stop_a.clone()).await?;
    let b: Ownership = join(&cluster(), &config, stop_b.clone()).await?;

    // Both instances own shards, disjointly, covering all six.
    wait_for("a balanced assignment", Duration::from_secs(60), || {
        let (sa, sb) = (a.current(), b.current());
        !sa.is_empty() && !sb.is_empty() && sa.is_disjoint(&sb) && sa.len() + sb.len() == 6
    })
    .await?;
    let groups: Vec<String> = (0..60).map(|i| format!("group-{i}")).collect();
    let owned_by_a: BTreeSet<&String> = groups.iter().filter(|g| a.owns("local", g)).collect();
    let owned_by_b: BTreeSet<&String> = groups.iter().filter(|g| b.owns("local", g)).collect();
    assert!(
        owned_by_a.is_disjoint(&owned_by_b),
        "no group sampled twice"
    );
    assert_eq!(
        owned_by_a.len() + owned_by_b.len(),
        groups.len(),
        "no group left out"
    );

    // A stops (leaves the group): B takes every shard.
    stop_a.cancel();
    let moved_after = wait_for("B to own all shards", Duration::from_secs(30), || {
        b.current().len() == 6
    })
    .await?;
    assert!(groups.iter().all(|g| b.owns("local", g)));
    eprintln!(
        "shards moved {:.1}s after the instance stopped",
        moved_after.as_secs_f64()
    );
    assert!(moved_after < Duration::from_secs(20), "{moved_after:?}");
    stop_b.cancel();
    Ok(())
}
