//! Time lag against the real broker: the estimator's scenarios with known
//! truth, through the collector's own sampling and annotation path.
//!
//! Records are produced with explicit timestamps, and their offsets come
//! from the delivery reports, so the truth of every sample is known:
//! `sample time − timestamp of the first record at or after the committed
//! offset` (0 when caught up). Each answer must hold the bound its kind
//! promises (README, "Time lag"): `exact` equal to the truth; `interpolated`
//! with `min ≤ truth ≤ min + gap` where gap is the time between two cycles
//! (one sample interval), plus the time a cycle takes (`SLACK_MS`);
//! `at_least` never above the truth.
//!
//! Compaction is covered by the unit scenarios only: the log cleaner's
//! timing is not controllable enough for a test.
//!
//! Needs `tests/infra/up.sh` (Kafka on 127.0.0.1:19092).

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lagwatch_collector::sampler::{sample_cluster, GroupTarget};
use lagwatch_collector::time_lag::{annotate_time_lag, TimeLagEstimator};
use lagwatch_collector::KafkaOffsetSource;
use lagwatch_kafka::ClusterConfig;
use lagwatch_model::{now_ms, PartitionSample, TimeLagKind};
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{BaseProducer, BaseRecord, FutureProducer, FutureRecord, Producer};

/// Time between two cycles here (the "sample interval").
const INTERVAL: Duration = Duration::from_millis(1_000);
/// Allowance for the time between a cycle's timestamp and the broker's
/// answer, and for scheduling jitter.
const SLACK_MS: i64 = 600;

/// One partition's truth: record timestamp by offset.
#[derive(Default)]
struct Truth {
    written: BTreeMap<i64, i64>,
}

impl Truth {
    /// 0 when caught up or when only transaction markers are left.
    fn lag(&self, committed: i64, end: i64, at_ms: i64) -> i64 {
        if committed >= end {
            return 0;
        }
        self.written
            .range(committed..)
            .next()
            .map_or(0, |(_, written)| at_ms - written)
    }
}

/// The collector's path for one group on one topic: sample, then annotate.
struct Collector {
    source: Arc<KafkaOffsetSource>,
    estimator: Arc<Mutex<TimeLagEstimator>>,
    target: GroupTarget,
    budget: usize,
}

impl Collector {
    fn new(group: &str, topic: &str, budget: usize) -> anyhow::Result<Self> {
        let cluster = ClusterConfig {
            bootstrap_servers: common::kafka(),
            properties: BTreeMap::new(),
            secret_properties: BTreeMap::new(),
        };
        let source = KafkaOffsetSource::new(&cluster, Default::default(), Duration::from_secs(10))?;
        Ok(Collector {
            source: Arc::new(source),
            estimator: Arc::new(Mutex::new(TimeLagEstimator::new(360))),
            target: common::topic_target(group, topic),
            budget,
        })
    }

    /// One cycle: its sample time and the partition-0 sample, if the cycle
    /// could read it.
    async fn cycle(&self) -> anyhow::Result<Option<(i64, PartitionSample)>> {
        let source = Arc::clone(&self.source);
        let estimator = Arc::clone(&self.estimator);
        let target = self.target.clone();
        let budget = self.budget;
        let mut samples = tokio::task::spawn_blocking(move || {
            let mut samples = sample_cluster(source.as_ref(), "local", &[target], now_ms());
            annotate_time_lag(&estimator, source.as_ref(), &mut samples, budget);
            samples
        })
        .await?;
        let sample = samples.remove(0);
        if sample.error.is_some() {
            return Ok(None);
        }
        let ts_ms = sample.ts_ms;
        Ok(sample
            .partitions
            .into_iter()
            .find(|p| p.partition == 0)
            .map(|p| (ts_ms, p)))
    }
}

#[derive(Debug, Default)]
struct Tally {
    exact: usize,
    interpolated: usize,
    at_least: usize,
    worst_error_ms: i64,
}

/// Checks one answer against the truth; `sample_ts` is its cycle's time.
fn check(name: &str, p: &PartitionSample, truth: &Truth, sample_ts: i64, tally: &mut Tally) {
    let committed = p.committed.expect("the group committed");
    let expected = truth.lag(committed, p.end, sample_ts);
    let value = p
        .time_lag_ms
        .unwrap_or_else(|| panic!("{name}: no time lag: {p:?}"));
    let min = p.time_lag_at_least_ms().unwrap_or(value);
    let at = format!("{name}: {p:?}; truth {expected} ms");
    assert!(
        min <= expected + SLACK_MS,
        "lower bound above the truth: {at}"
    );
    match p.time_lag_kind {
        Some(TimeLagKind::Exact) => {
            tally.exact += 1;
            assert!((value - expected).abs() <= SLACK_MS, "{at}");
        }
        Some(TimeLagKind::Interpolated) => {
            tally.interpolated += 1;
            let bound = INTERVAL.as_millis() as i64 + SLACK_MS;
            assert!(expected <= min + bound, "{at}");
            assert!((value - expected).abs() <= bound, "{at}");
        }
        Some(TimeLagKind::AtLeast) => {
            tally.at_least += 1;
            assert!(value <= expected + SLACK_MS, "{at}");
        }
        None => panic!("{name}: time lag without a kind: {p:?}"),
    }
    tally.worst_error_ms = tally.worst_error_ms.max((value - expected).abs());
}

/// Produces `count` records to partition 0 stamped `timestamp(i)`; their
/// offsets go into `truth`.
async fn produce_stamped(
    producer: &FutureProducer,
    topic: &str,
    count: i64,
    timestamp: impl Fn(i64) -> i64,
    truth: &Mutex<Truth>,
) -> anyhow::Result<()> {
    for i in 0..count {
        let ts = timestamp(i);
        let delivery = producer
            .send(
                FutureRecord::<(), _>::to(topic)
                    .partition(0)
                    .payload("x")
                    .timestamp(ts),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(e, _)| anyhow::anyhow!("produce: {e}"))?;
        truth
            .lock()
            .map_err(|_| anyhow::anyhow!("truth poisoned"))?
            .written
            .insert(delivery.offset, ts);
    }
    Ok(())
}

fn producer() -> anyhow::Result<FutureProducer> {
    Ok(common::client_config().set("linger.ms", "0").create()?)
}

async fn fixture(name: &str) -> anyhow::Result<(String, String)> {
    common::require_kafka()?;
    let id = common::unique(name);
    let topic = format!("{id}_t");
    common::create_topic(&topic, 1).await?;
    Ok((format!("{id}_g"), topic))
}

/// Scenarios 1, 4 and 5 in one feed: a steady feed, its rate ×10, then it
/// stops; the group trails two seconds behind the producer throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steady_feed_rate_change_and_stop_stay_within_one_interval() -> anyhow::Result<()> {
    let (group, topic) = fixture("tl_feed").await?;
    let truth = Arc::new(Mutex::new(Truth::default()));
    let feeding = {
        let truth = Arc::clone(&truth);
        let topic = topic.clone();
        tokio::spawn(async move {
            let producer = producer()?;
            // 20/s for 8 s, 200/s for 4 s, then silence.
            for (per_sec, secs) in [(20u64, 8u64), (200, 4)] {
                for _ in 0..per_sec * secs {
                    produce_stamped(&producer, &topic, 1, |_| now_ms(), &truth).await?;
                    tokio::time::sleep(Duration::from_millis(1_000 / per_sec)).await;
                }
            }
            anyhow::Ok(())
        })
    };
    let collector = Collector::new(&group, &topic, 200)?;
    let mut tally = Tally::default();
    let started = now_ms();
    while now_ms() - started < 20_000 {
        tokio::time::sleep(INTERVAL).await;
        // The group commits the first record written two seconds ago.
        let committed = {
            let truth = truth.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
            let cutoff = now_ms() - 2_000;
            truth
                .written
                .iter()
                .find(|(_, &w)| w > cutoff)
                .map(|(&o, _)| o)
                .or_else(|| truth.written.keys().next_back().map(|o| o + 1))
        };
        let Some(committed) = committed else { continue };
        common::commit_offsets(&group, &topic, 1, committed)?;
        let Some((ts, p)) = collector.cycle().await? else {
            continue;
        };
        let truth = truth.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        check("steady feed", &p, &truth, ts, &mut tally);
    }
    feeding.await??;
    println!("steady feed, ×10, stop: {tally:?}");
    assert!(tally.interpolated >= 10, "{tally:?}");
    Ok(())
}

/// Scenarios 2 and 3: a static backlog written twelve minutes ago on a
/// topic nobody writes to, then one new record. Once estimated at 36,127 s
/// and growing ~600 s per second while the truth was ~12 minutes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_backlog_on_an_idle_topic_then_one_record_is_exact() -> anyhow::Result<()> {
    let (group, topic) = fixture("tl_idle").await?;
    let truth = Mutex::new(Truth::default());
    let producer = producer()?;
    let written_at = now_ms() - 12 * 60_000;
    produce_stamped(&producer, &topic, 100, |i| written_at + i * 100, &truth).await?;
    common::commit_offsets(&group, &topic, 1, 50)?;
    let collector = Collector::new(&group, &topic, 200)?;
    let mut tally = Tally::default();
    for cycle in 0..8 {
        if cycle == 4 {
            produce_stamped(&producer, &topic, 1, |_| now_ms(), &truth).await?;
        }
        tokio::time::sleep(INTERVAL).await;
        let Some((cycle_ts, p)) = collector.cycle().await? else {
            continue;
        };
        let truth = truth.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        check("static backlog", &p, &truth, cycle_ts, &mut tally);
    }
    println!("static backlog then one record: {tally:?}");
    assert!(tally.exact >= 6, "{tally:?}");
    Ok(())
}

/// Scenario 9: the same backlog with no probe budget — lower bounds only,
/// never above the truth.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_probe_budget_only_lower_bounds_are_reported() -> anyhow::Result<()> {
    let (group, topic) = fixture("tl_nobudget").await?;
    let truth = Mutex::new(Truth::default());
    let producer = producer()?;
    let written_at = now_ms() - 12 * 60_000;
    produce_stamped(&producer, &topic, 100, |i| written_at + i * 100, &truth).await?;
    common::commit_offsets(&group, &topic, 1, 50)?;
    let collector = Collector::new(&group, &topic, 0)?;
    let mut tally = Tally::default();
    for cycle in 0..5 {
        if cycle == 2 {
            produce_stamped(&producer, &topic, 1, |_| now_ms(), &truth).await?;
        }
        tokio::time::sleep(INTERVAL).await;
        let Some((cycle_ts, p)) = collector.cycle().await? else {
            continue;
        };
        let truth = truth.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        check("no budget", &p, &truth, cycle_ts, &mut tally);
    }
    println!("no probe budget: {tally:?}");
    assert!(tally.at_least >= 4, "{tally:?}");
    Ok(())
}

/// Scenario 6: the topic is deleted and recreated between two samples and
/// the group starts over on it. Once estimated growing 164 s per second,
/// paging within 15 s while the truth was under a minute.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recreated_topic_resets_the_history() -> anyhow::Result<()> {
    let (group, topic) = fixture("tl_recreate").await?;
    let truth = Mutex::new(Truth::default());
    let producer = producer()?;
    produce_stamped(&producer, &topic, 2_000, |_| now_ms(), &truth).await?;
    common::commit_offsets(&group, &topic, 1, 1_900)?;
    let collector = Collector::new(&group, &topic, 200)?;
    let mut tally = Tally::default();
    for _ in 0..3 {
        tokio::time::sleep(INTERVAL).await;
        if let Some((cycle_ts, p)) = collector.cycle().await? {
            let truth = truth.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
            check("before recreation", &p, &truth, cycle_ts, &mut tally);
        }
    }
    delete_topic(&topic).await?;
    recreate_topic(&topic).await?;
    let fresh = Mutex::new(Truth::default());
    produce_stamped(&producer, &topic, 30, |_| now_ms(), &fresh).await?;
    common::commit_offsets(&group, &topic, 1, 5)?;
    let mut after = 0;
    for _ in 0..30 {
        if after >= 5 {
            break;
        }
        tokio::time::sleep(INTERVAL).await;
        let Some((cycle_ts, p)) = collector.cycle().await? else {
            continue;
        };
        if p.end > 30 {
            // Metadata still names the old partition.
            continue;
        }
        let truth = fresh.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        check("after recreation", &p, &truth, cycle_ts, &mut tally);
        assert!(
            p.time_lag_ms.is_some_and(|ms| ms < 60_000),
            "a fresh topic's lag is seconds: {p:?}"
        );
        after += 1;
    }
    println!("topic recreated: {tally:?}");
    assert_eq!(after, 5, "the recreated topic was sampled: {tally:?}");
    Ok(())
}

/// Scenario 8: transactions. Commit markers take offsets without records;
/// a group committed at a marker reads the next transaction's first record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_are_exact_past_commit_markers() -> anyhow::Result<()> {
    let (group, topic) = fixture("tl_txn").await?;
    let txn: BaseProducer = common::client_config()
        .set("transactional.id", format!("{group}_txn"))
        .create()?;
    txn.init_transactions(Duration::from_secs(30))?;
    let minutes_ago = |m: i64| now_ms() - m * 60_000;
    let mut truth = Truth::default();
    // Three transactions of 10 records, 10, 9 and 8 minutes old: records
    // 0–9, marker 10, records 11–20, marker 21, records 22–31, marker 32.
    for (n, age) in [10i64, 9, 8].into_iter().enumerate() {
        txn.begin_transaction()?;
        for i in 0..10 {
            let ts = minutes_ago(age) + i;
            txn.send(
                BaseRecord::<(), _>::to(&topic)
                    .partition(0)
                    .payload("x")
                    .timestamp(ts),
            )
            .map_err(|(e, _)| e)?;
            truth.written.insert(n as i64 * 11 + i, ts);
        }
        txn.commit_transaction(Duration::from_secs(30))?;
    }
    let collector = Collector::new(&group, &topic, 200)?;
    let mut tally = Tally::default();
    // At a marker (10), just past it (11), inside (15), at the last (32).
    for committed in [10, 11, 15, 21, 32] {
        common::commit_offsets(&group, &topic, 1, committed)?;
        tokio::time::sleep(INTERVAL).await;
        let Some((cycle_ts, p)) = collector.cycle().await? else {
            continue;
        };
        check("transactions", &p, &truth, cycle_ts, &mut tally);
    }
    println!("transactions: {tally:?}");
    assert!(tally.exact >= 4, "{tally:?}");
    Ok(())
}

async fn delete_topic(topic: &str) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = common::client_config().create()?;
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for result in admin.delete_topics(&[topic], &options).await? {
        result.map_err(|(t, e)| anyhow::anyhow!("delete topic {t}: {e}"))?;
    }
    Ok(())
}

/// Creates `topic` again once its deletion has gone through.
async fn recreate_topic(topic: &str) -> anyhow::Result<()> {
    common::eventually_async(
        "the deleted topic can be created again",
        Duration::from_secs(60),
        || async { common::create_topic(topic, 1).await.ok() },
    )
    .await
}
