//! Collector sharding over the real broker: instances split the shards
//! without overlap, a stopped instance's shards move to the others within
//! seconds, and a killed one's (SIGKILL, no goodbye) within the session
//! timeout plus a rebalance.
//!
//! The killed instance is a separate OS process: the real `lagwatch
//! collector` ([`common::agent_process`]) with `[collector.sharding]` set,
//! whose shards the test reads from the assignment lines of its log.
//!
//! Needs `tests/infra/up.sh` (Kafka on 127.0.0.1:19092).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::agent_process::{lagwatch_binary, AgentProcess};
use lagwatch_collector::sharding::{join, Ownership, ShardingConfig};
use lagwatch_kafka::ClusterConfig;
use lagwatch_store::MonitorStore;
use tokio_util::sync::CancellationToken;

fn cluster() -> ClusterConfig {
    ClusterConfig {
        bootstrap_servers: common::kafka(),
        properties: BTreeMap::new(),
        secret_properties: BTreeMap::new(),
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

/// A collector instance in its own process: the real `lagwatch collector`
/// with `[collector.sharding]` set, its shards read from its log.
struct ChildInstance {
    process: AgentProcess,
    log: PathBuf,
}

impl ChildInstance {
    /// Starts `lagwatch collector` on an empty monitor store in `dir`,
    /// joining the collector group of `config`.
    async fn spawn(dir: &Path, config: &ShardingConfig) -> anyhow::Result<Self> {
        let binary = lagwatch_binary()?;
        let store_url = format!("sqlite://{}", dir.join("monitors.db").display());
        let store = MonitorStore::connect(&store_url).await?;
        store.migrate().await?;
        store.close().await;
        let metrics_topic = format!("{}_samples", config.topic);
        let path = common::write_config(
            dir,
            &store_url,
            &metrics_topic,
            "lagwatch_unused",
            common::free_port(),
        )?;
        let mut text = std::fs::read_to_string(&path)?;
        text.push_str(&format!(
            "\n[collector.sharding]\ngroup_id = \"{}\"\ntopic = \"{}\"\nshards = {}\nsession_timeout = \"{}ms\"\n",
            config.group_id,
            config.topic,
            config.shards,
            config.session_timeout.as_millis()
        ));
        std::fs::write(&path, text)?;
        let log = dir.join("collector.log");
        let process = AgentProcess::start(&binary, &path, "collector", &log)?;
        Ok(ChildInstance { process, log })
    }

    /// The shards the process last logged as its own (`collector shard
    /// assignment changed shards={..}`); empty before the first.
    fn owned(&self) -> BTreeSet<i32> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .rev()
            .filter(|line| line.contains("collector shard assignment changed"))
            .find_map(|line| {
                let list = line.split("shards={").nth(1)?.split('}').next()?;
                Some(
                    list.split(',')
                        .filter_map(|s| s.trim().parse().ok())
                        .collect(),
                )
            })
            .unwrap_or_default()
    }

    /// SIGKILL: the process cannot leave the group.
    fn kill(&mut self) -> anyhow::Result<()> {
        self.process.kill()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survivor_takes_over_the_shards_of_a_killed_instance() -> anyhow::Result<()> {
    common::require_kafka()?;
    let id = common::unique("shards_kill");
    let session_timeout = Duration::from_secs(6);
    let config = ShardingConfig {
        group_id: format!("{id}_collectors"),
        topic: format!("{id}_shards"),
        shards: 6,
        session_timeout,
    };
    // The victim runs in its own process and joins first.
    let dir = tempfile::tempdir()?;
    let mut victim = ChildInstance::spawn(dir.path(), &config).await?;
    let joined = wait_for("the child to own shards", Duration::from_secs(60), || {
        !victim.owned().is_empty()
    })
    .await;
    if let Err(error) = joined {
        return Err(error.context(victim.process.log_tail(30)));
    }
    let stop = CancellationToken::new();
    let survivor = join(&cluster(), &config, stop.clone()).await?;
    wait_for(
        "a split between the processes",
        Duration::from_secs(60),
        || {
            let (child, own) = (victim.owned(), survivor.current());
            !child.is_empty()
                && !own.is_empty()
                && child.is_disjoint(&own)
                && child.len() + own.len() == 6
        },
    )
    .await?;
    let victim_shards = victim.owned();
    eprintln!(
        "before kill -9: child owns {victim_shards:?}, survivor owns {:?}",
        survivor.current()
    );

    victim.kill()?;
    let margin = Duration::from_secs(10);
    let took = wait_for(
        "the survivor to own every shard",
        session_timeout + margin + Duration::from_secs(20),
        || survivor.current().len() == 6,
    )
    .await?;
    eprintln!(
        "kill -9 takeover: shards {victim_shards:?} moved to the survivor {:.1}s after SIGKILL (session timeout {}s)",
        took.as_secs_f64(),
        session_timeout.as_secs()
    );
    let groups: Vec<String> = (0..60).map(|i| format!("group-{i}")).collect();
    assert!(
        groups.iter().all(|g| survivor.owns("local", g)),
        "the survivor samples every group"
    );
    assert!(
        took >= session_timeout - Duration::from_secs(1),
        "a dead member is only noticed after the session timeout: {took:?}"
    );
    assert!(
        took < session_timeout + margin,
        "takeover took {took:?}, more than the session timeout {session_timeout:?} + {margin:?}"
    );
    stop.cancel();
    Ok(())
}
