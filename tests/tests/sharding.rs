//! Collector sharding over the real broker: instances split the shards
//! without overlap, a stopped instance's shards move to the others within
//! seconds, and a killed one's (SIGKILL, no goodbye) within the session
//! timeout plus a rebalance.
//!
//! The killed instance is a separate OS process: this test binary run again
//! with `LAGWATCH_SHARD_CHILD` set, executing only
//! [`shard_child_process`], which joins the collector group through the
//! same `sharding::join` a collector uses and prints its shards.
//!
//! Needs `tests/infra/up.sh` (Kafka on 127.0.0.1:19092).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lagwatch_collector::sharding::{join, Ownership, ShardingConfig};
use lagwatch_kafka::ClusterConfig;
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

/// Environment variable that turns [`shard_child_process`] on; its value is
/// `group_id,topic,shards,session_timeout_ms`.
const CHILD_ENV: &str = "LAGWATCH_SHARD_CHILD";
/// Prefix of the child's ownership lines on stdout.
const OWNED: &str = "LAGWATCH_OWNED ";

/// Child-process side of the kill -9 test; returns at once in a normal run.
/// Joins the collector group and prints its shards whenever they change,
/// until it is killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shard_child_process() -> anyhow::Result<()> {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return Ok(());
    };
    let fields: Vec<&str> = spec.split(',').collect();
    let [group_id, topic, shards, session_ms] = fields.as_slice() else {
        anyhow::bail!("{CHILD_ENV}={spec}: expected group,topic,shards,session_ms");
    };
    let config = ShardingConfig {
        group_id: group_id.to_string(),
        topic: topic.to_string(),
        shards: shards.parse()?,
        session_timeout: Duration::from_millis(session_ms.parse()?),
    };
    let ownership = join(&cluster(), &config, CancellationToken::new()).await?;
    let mut last = None;
    loop {
        let owned = ownership.current();
        if last.as_ref() != Some(&owned) {
            let list: Vec<String> = owned.iter().map(i32::to_string).collect();
            println!("{OWNED}{}", list.join(","));
            last = Some(owned);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A collector instance in its own process; SIGKILLed on drop at the latest.
struct ChildInstance {
    child: Child,
    /// The shards the child last reported.
    owned: Arc<Mutex<Option<BTreeSet<i32>>>>,
}

impl ChildInstance {
    fn spawn(config: &ShardingConfig) -> anyhow::Result<Self> {
        let spec = format!(
            "{},{},{},{}",
            config.group_id,
            config.topic,
            config.shards,
            config.session_timeout.as_millis()
        );
        let mut child = Command::new(std::env::current_exe()?)
            .args([
                "--exact",
                "shard_child_process",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, spec)
            .stdout(Stdio::piped())
            .spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("child stdout"))?;
        let owned = Arc::new(Mutex::new(None));
        let seen = Arc::clone(&owned);
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let Some(list) = line.strip_prefix(OWNED) else {
                    continue;
                };
                let shards: BTreeSet<i32> =
                    list.split(',').filter_map(|s| s.parse().ok()).collect();
                if let Ok(mut owned) = seen.lock() {
                    *owned = Some(shards);
                }
            }
        });
        Ok(ChildInstance { child, owned })
    }

    fn owned(&self) -> BTreeSet<i32> {
        self.owned
            .lock()
            .ok()
            .and_then(|owned| owned.clone())
            .unwrap_or_default()
    }

    /// SIGKILL: the process cannot leave the group.
    fn kill(&mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for ChildInstance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survivor_takes_over_the_shards_of_a_killed_instance() -> anyhow::Result<()> {
    if std::env::var(CHILD_ENV).is_ok() {
        return Ok(());
    }
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
    let mut victim = ChildInstance::spawn(&config)?;
    wait_for("the child to own shards", Duration::from_secs(60), || {
        !victim.owned().is_empty()
    })
    .await?;
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
