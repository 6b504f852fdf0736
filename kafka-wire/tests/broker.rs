//! Integration tests against a real Kafka broker (`LAGWATCH_TEST_KAFKA`,
//! default 127.0.0.1:19092, started by tests/infra/up.sh), with librdkafka as
//! the source of test data and as the ground truth. The resilience test runs
//! its own throw-away broker (tests/infra/private-kafka.sh) that it kills and
//! restarts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lagwatch_kafka_wire::{CommittedOffset, Isolation, OffsetSpec, WireClient, WireConfig};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

const HOSTILE: &str = "o'brien \"x\" \\ 日本 grp";
const RD_TIMEOUT: Duration = Duration::from_secs(20);

fn bootstrap() -> String {
    std::env::var("LAGWATCH_TEST_KAFKA").unwrap_or_else(|_| "127.0.0.1:19092".to_string())
}

/// Fails (never skips) when the broker is not reachable.
fn require_broker(addr: &str) {
    let sock = addr
        .parse()
        .unwrap_or_else(|e| panic!("LAGWATCH_TEST_KAFKA={addr} is not ip:port: {e}"));
    if let Err(e) = std::net::TcpStream::connect_timeout(&sock, Duration::from_secs(3)) {
        panic!(
            "the test Kafka broker at {addr} is not reachable ({e}); start it with tests/infra/up.sh \
             or point LAGWATCH_TEST_KAFKA at one"
        );
    }
}

fn suffix() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{}-{nanos:x}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn rd_config(addr: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", addr);
    c
}

fn client(addr: &str) -> WireClient {
    WireClient::new(WireConfig::plaintext(addr, Duration::from_secs(10)).unwrap())
}

async fn create_topics(addr: &str, topics: &[(&str, i32)]) {
    let admin: AdminClient<DefaultClientContext> = rd_config(addr).create().unwrap();
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|(t, p)| NewTopic::new(t, *p, TopicReplication::Fixed(1)))
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(RD_TIMEOUT));
    for r in admin.create_topics(&new, &opts).await.unwrap() {
        r.unwrap();
    }
}

/// Produces `counts[p]` records into partition `p`.
fn produce(addr: &str, topic: &str, counts: &[usize]) {
    let producer: ThreadedProducer<DefaultProducerContext> = rd_config(addr).create().unwrap();
    for (p, n) in counts.iter().enumerate() {
        for i in 0..*n {
            let payload = format!("record {i}");
            let mut record = BaseRecord::<(), _>::to(topic)
                .partition(i32::try_from(p).unwrap())
                .payload(&payload);
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((e, r)) => {
                        record = r;
                        eprintln!("produce retry: {e}");
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
            }
        }
    }
    producer.flush(RD_TIMEOUT).unwrap();
}

/// Commits `offsets` for `group` (no members join: the group stays Empty).
fn commit(addr: &str, group: &str, offsets: &[(&str, i32, i64)]) {
    let consumer: BaseConsumer = rd_config(addr)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for (t, p, o) in offsets {
        tpl.add_partition_offset(t, *p, Offset::Offset(*o)).unwrap();
    }
    // A broker that just started loads its group coordinator for a while:
    // commits answer NOT_COORDINATOR until then.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match consumer.commit(&tpl, CommitMode::Sync) {
            Ok(()) => return,
            Err(rdkafka::error::KafkaError::ConsumerCommit(code))
                if Instant::now() < deadline
                    && matches!(
                        code,
                        rdkafka::types::RDKafkaErrorCode::NotCoordinator
                            | rdkafka::types::RDKafkaErrorCode::CoordinatorLoadInProgress
                            | rdkafka::types::RDKafkaErrorCode::CoordinatorNotAvailable
                    ) =>
            {
                std::thread::sleep(Duration::from_millis(250));
            }
            Err(error) => panic!("commit for {group}: {error}"),
        }
    }
}

/// librdkafka's view of `group`'s committed offsets on `partitions`.
fn rd_committed(addr: &str, group: &str, partitions: &[(String, i32)]) -> Vec<CommittedOffset> {
    let consumer: BaseConsumer = rd_config(addr).set("group.id", group).create().unwrap();
    let mut tpl = TopicPartitionList::new();
    for (t, p) in partitions {
        tpl.add_partition(t, *p);
    }
    let got = consumer.committed_offsets(tpl, RD_TIMEOUT).unwrap();
    let mut out: Vec<CommittedOffset> = got
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some(CommittedOffset {
                topic: e.topic().to_string(),
                partition: e.partition(),
                offset: Some(o),
            }),
            _ => None,
        })
        .collect();
    out.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    out
}

fn all_partitions(topic: &str, n: i32) -> Vec<(String, i32)> {
    (0..n).map(|p| (topic.to_string(), p)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_partitions_match_created_topics() {
    let addr = bootstrap();
    require_broker(&addr);
    let s = suffix();
    let (a, b, c) = (
        format!("kw-tp-a-{s}"),
        format!("kw-tp-b-{s}"),
        format!("kw-tp-c-{s}"),
    );
    create_topics(&addr, &[(&a, 1), (&b, 3), (&c, 7)]).await;
    let wire = client(&addr);
    let got = wire.topic_partitions().await.unwrap();
    assert_eq!(got.get(&a), Some(&1));
    assert_eq!(got.get(&b), Some(&3));
    assert_eq!(got.get(&c), Some(&7));
    // Same view as librdkafka's metadata for every topic both saw (other
    // tests on the shared broker may create topics between the two calls).
    let consumer: BaseConsumer = rd_config(&addr).create().unwrap();
    let md = consumer.fetch_metadata(None, RD_TIMEOUT).unwrap();
    let mut compared = 0;
    for t in md.topics() {
        if t.error().is_none() && got.contains_key(t.name()) {
            compared += 1;
            assert_eq!(
                got.get(t.name()),
                Some(&i32::try_from(t.partitions().len()).unwrap()),
                "{}",
                t.name()
            );
        }
    }
    assert!(compared >= 3, "{compared} topics compared");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_offsets_match_watermarks() {
    let addr = bootstrap();
    require_broker(&addr);
    let topic = format!("kw-lo-{}", suffix());
    create_topics(&addr, &[(&topic, 4)]).await;
    produce(&addr, &topic, &[0, 3, 10, 25]);
    // Raise the log start offset of partition 3 so earliest != 0 somewhere.
    let admin: AdminClient<DefaultClientContext> = rd_config(&addr).create().unwrap();
    let mut del = TopicPartitionList::new();
    del.add_partition_offset(&topic, 3, Offset::Offset(7))
        .unwrap();
    admin
        .delete_records(
            &del,
            &AdminOptions::new().operation_timeout(Some(RD_TIMEOUT)),
        )
        .await
        .unwrap();

    let wire = client(&addr);
    let mut parts = all_partitions(&topic, 4);
    parts.push((topic.clone(), 99)); // no such partition
    parts.push((format!("kw-missing-{}", suffix()), 0)); // no such topic
    let latest = wire
        .list_offsets(&parts, OffsetSpec::Latest, Isolation::ReadUncommitted)
        .await;
    let earliest = wire
        .list_offsets(&parts, OffsetSpec::Earliest, Isolation::ReadUncommitted)
        .await;
    let committed = wire
        .list_offsets(&parts, OffsetSpec::Latest, Isolation::ReadCommitted)
        .await;
    let consumer: BaseConsumer = rd_config(&addr).create().unwrap();
    for p in 0..4 {
        let (low, high) = consumer.fetch_watermarks(&topic, p, RD_TIMEOUT).unwrap();
        let key = (topic.clone(), p);
        assert_eq!(latest[&key], Ok(high), "latest of partition {p}");
        assert_eq!(earliest[&key], Ok(low), "earliest of partition {p}");
        assert_eq!(
            committed[&key],
            Ok(high),
            "read_committed latest of partition {p}"
        );
    }
    assert_eq!(latest[&(topic.clone(), 3)], Ok(25));
    assert_eq!(earliest[&(topic.clone(), 3)], Ok(7));
    for bad in &parts[4..] {
        let e = latest[bad].clone().unwrap_err();
        assert!(e.contains("UNKNOWN_TOPIC_OR_PARTITION"), "{e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_offsets_match_commits() {
    let addr = bootstrap();
    require_broker(&addr);
    let s = suffix();
    let (t1, t2) = (format!("kw-co-a-{s}"), format!("kw-co-b-{s}"));
    create_topics(&addr, &[(&t1, 3), (&t2, 2)]).await;
    let g_plain = format!("kw-co-g-{s}");
    let g_none = format!("kw-co-none-{s}");
    let g_hostile = format!("{HOSTILE} {s}");
    commit(&addr, &g_plain, &[(&t1, 0, 5), (&t1, 2, 9), (&t2, 1, 0)]);
    commit(&addr, &g_hostile, &[(&t2, 0, 42)]);

    let wire = client(&addr);
    let groups = vec![g_plain.clone(), g_none.clone(), g_hostile.clone()];
    let got = wire.committed_offsets(&groups).await;
    assert_eq!(got.len(), 3);
    let mut parts = all_partitions(&t1, 3);
    parts.extend(all_partitions(&t2, 2));
    let plain = got[&g_plain].clone().unwrap();
    assert_eq!(
        plain,
        vec![
            CommittedOffset {
                topic: t1.clone(),
                partition: 0,
                offset: Some(5)
            },
            CommittedOffset {
                topic: t1.clone(),
                partition: 2,
                offset: Some(9)
            },
            CommittedOffset {
                topic: t2.clone(),
                partition: 1,
                offset: Some(0)
            },
        ]
    );
    assert_eq!(plain, rd_committed(&addr, &g_plain, &parts));
    let none = got[&g_none].clone().unwrap();
    assert!(none.iter().all(|c| c.offset.is_none()), "{none:?}");
    let hostile = got[&g_hostile].clone().unwrap();
    assert_eq!(
        hostile,
        vec![CommittedOffset {
            topic: t2.clone(),
            partition: 0,
            offset: Some(42)
        }]
    );
    assert_eq!(hostile, rd_committed(&addr, &g_hostile, &parts));

    // Many groups in one call.
    let many: Vec<String> = (0..50).map(|i| format!("kw-co-many-{i}-{s}")).collect();
    for (i, g) in many.iter().enumerate() {
        let i = i64::try_from(i).unwrap();
        commit(&addr, g, &[(&t1, 1, i), (&t2, 0, 1000 + i)]);
    }
    let started = Instant::now();
    let got = wire.committed_offsets(&many).await;
    println!(
        "committed_offsets for {} groups in {:?}",
        many.len(),
        started.elapsed()
    );
    assert_eq!(got.len(), 50);
    for (i, g) in many.iter().enumerate() {
        let i = i64::try_from(i).unwrap();
        assert_eq!(
            got[g].clone().unwrap(),
            vec![
                CommittedOffset {
                    topic: t1.clone(),
                    partition: 1,
                    offset: Some(i)
                },
                CommittedOffset {
                    topic: t2.clone(),
                    partition: 0,
                    offset: Some(1000 + i)
                },
            ],
            "group {g}"
        );
    }
}

/// A member of `group` subscribed to `topic`, polling until dropped.
struct Member {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Member {
    fn start(addr: &str, group: &str, topic: &str, protocol: &str) -> Member {
        let mut config = rd_config(addr);
        config
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("group.protocol", protocol);
        if protocol == "classic" {
            config.set("session.timeout.ms", "10000");
        }
        let consumer: BaseConsumer = config.create().unwrap();
        consumer.subscribe(&[topic]).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                let _ = consumer.poll(Duration::from_millis(100));
            }
            consumer.unsubscribe();
        });
        Member {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_and_list_groups() {
    let addr = bootstrap();
    require_broker(&addr);
    let s = suffix();
    let topic = format!("kw-dg-{s}");
    create_topics(&addr, &[(&topic, 2)]).await;
    let empty = format!("kw-dg-empty-{s}");
    let hostile = format!("{HOSTILE} dg {s}");
    let active = format!("kw-dg-active-{s}");
    let unknown = format!("kw-dg-unknown-{s}");
    commit(&addr, &empty, &[(&topic, 0, 1)]);
    commit(&addr, &hostile, &[(&topic, 1, 2)]);
    let _member = Member::start(&addr, &active, &topic, "classic");

    let wire = client(&addr);
    let groups = vec![
        empty.clone(),
        hostile.clone(),
        active.clone(),
        unknown.clone(),
    ];
    let deadline = Instant::now() + Duration::from_secs(60);
    let got = loop {
        let got = wire.describe_groups(&groups).await;
        let stable = got[&active].as_ref().is_ok_and(|d| d.state == "Stable");
        if stable || Instant::now() > deadline {
            break got;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    for g in [&empty, &hostile] {
        let d = got[g].clone().unwrap();
        assert_eq!(
            (
                d.group.as_str(),
                d.state.as_str(),
                d.members,
                d.protocol.as_str()
            ),
            (g.as_str(), "Empty", 0, "Classic")
        );
    }
    let d = got[&active].clone().unwrap();
    assert_eq!(
        (d.state.as_str(), d.members, d.protocol.as_str()),
        ("Stable", 1, "Classic"),
        "{d:?}"
    );
    let d = got[&unknown].clone().unwrap();
    assert_eq!((d.state.as_str(), d.members), ("Dead", 0), "{d:?}");

    // list_groups sees them (not the unknown one), sorted, with states.
    let (listing, errors) = wire.list_groups().await.unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    let names: Vec<&str> = listing.iter().map(|g| g.group.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted);
    let state = |g: &str| {
        listing
            .iter()
            .find(|l| l.group == g)
            .map(|l| l.state.clone())
    };
    assert_eq!(state(&empty), Some(Some("Empty".to_string())));
    assert_eq!(state(&hostile), Some(Some("Empty".to_string())));
    assert_eq!(state(&active), Some(Some("Stable".to_string())));
    assert_eq!(state(&unknown), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_protocol_group_is_described() {
    let addr = bootstrap();
    require_broker(&addr);
    let s = suffix();
    let topic = format!("kw-cp-{s}");
    create_topics(&addr, &[(&topic, 2)]).await;
    let group = format!("kw-cp-group-{s}");
    let _member = Member::start(&addr, &group, &topic, "consumer");
    let wire = client(&addr);
    let deadline = Instant::now() + Duration::from_secs(60);
    let d = loop {
        let got = wire.describe_groups(std::slice::from_ref(&group)).await;
        let d = got[&group].clone();
        if d.as_ref()
            .is_ok_and(|d| d.state == "Stable" && d.members == 1)
            || Instant::now() > deadline
        {
            break d;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let d = d.unwrap();
    assert_eq!(
        (d.state.as_str(), d.members, d.protocol.as_str()),
        ("Stable", 1, "Consumer"),
        "{d:?}"
    );
    // After list_groups (v5: type consumer) the group is asked with ConsumerGroupDescribe directly.
    let (listing, _) = wire.list_groups().await.unwrap();
    assert!(listing.iter().any(|l| l.group == group), "{listing:?}");
    let d = wire.describe_groups(std::slice::from_ref(&group)).await[&group]
        .clone()
        .unwrap();
    assert_eq!(d.protocol, "Consumer");
}

/// A private broker this test may kill; killed (only its pid) when dropped.
struct PrivateBroker {
    dir: PathBuf,
    port: u16,
    controller_port: u16,
}

impl PrivateBroker {
    fn script() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/infra/private-kafka.sh")
    }
    fn start(&self) {
        self.start_with("start", &[]);
    }
    fn start_with(&self, command: &str, extra_ports: &[u16]) {
        let started = Instant::now();
        let out = Command::new("bash")
            .arg(Self::script())
            .arg(command)
            .arg(&self.dir)
            .arg(self.port.to_string())
            .arg(self.controller_port.to_string())
            .args(extra_ports.iter().map(u16::to_string))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "private broker did not start: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        println!("private broker up in {:?}", started.elapsed());
    }
    fn kill(&self) {
        let _ = Command::new("bash")
            .arg(Self::script())
            .arg("kill")
            .arg(&self.dir)
            .status();
        // SIGKILL is asynchronous: wait until the listener is gone.
        let addr = format!("127.0.0.1:{}", self.port).parse().unwrap();
        let until = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
            && Instant::now() < until
        {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_broker_kill_and_restart() {
    // Needs the shared broker only to know the infrastructure is installed.
    require_broker(&bootstrap());
    let broker = PrivateBroker {
        dir: std::env::temp_dir().join(format!("lagwatch-kafka-wire-{}", suffix())),
        port: free_port(),
        controller_port: free_port(),
    };
    broker.start();
    let addr = format!("127.0.0.1:{}", broker.port);
    let topic = format!("kw-rs-{}", suffix());
    let group = format!("kw-rs-group-{}", suffix());
    create_topics(&addr, &[(&topic, 2)]).await;
    produce(&addr, &topic, &[5, 8]);
    commit(&addr, &group, &[(&topic, 0, 3), (&topic, 1, 8)]);
    let expected = vec![
        CommittedOffset {
            topic: topic.clone(),
            partition: 0,
            offset: Some(3),
        },
        CommittedOffset {
            topic: topic.clone(),
            partition: 1,
            offset: Some(8),
        },
    ];
    let wire = WireClient::new(WireConfig::plaintext(&addr, Duration::from_secs(3)).unwrap());
    let groups = vec![group.clone()];
    let parts = all_partitions(&topic, 2);
    assert_eq!(
        wire.committed_offsets(&groups).await[&group],
        Ok(expected.clone())
    );

    let mut counts: BTreeMap<&str, u32> = BTreeMap::new();
    let mut outage_errors: HashMap<String, u32> = HashMap::new();
    for round in 1..=5 {
        broker.kill();
        // During the outage: every call answers, with an error, promptly.
        for _ in 0..5 {
            let started = Instant::now();
            let got = wire.committed_offsets(&groups).await;
            let elapsed = started.elapsed();
            assert!(
                elapsed < Duration::from_secs(8),
                "call took {elapsed:?} during the outage"
            );
            match &got[&group] {
                Ok(v) => panic!("answer {v:?} while the broker is down"),
                Err(e) => {
                    *outage_errors
                        .entry(format!("{e}").chars().take(60).collect())
                        .or_default() += 1
                }
            }
            let lo = wire
                .list_offsets(&parts, OffsetSpec::Latest, Isolation::ReadUncommitted)
                .await;
            assert!(lo.values().all(Result::is_err), "{lo:?}");
            assert!(wire.topic_partitions().await.is_err());
            *counts.entry("outage errors").or_default() += 3;
        }
        broker.start();
        // After the restart: the same client answers correctly again.
        let back = Instant::now();
        loop {
            match &wire.committed_offsets(&groups).await[&group] {
                Ok(v) if *v == expected => break,
                Ok(v) => panic!("wrong answer after restart {round}: {v:?}"),
                Err(_) => *counts.entry("errors while recovering").or_default() += 1,
            }
            assert!(
                back.elapsed() < Duration::from_secs(90),
                "no answer {round}: {:?} after restart",
                back.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let lo = wire
            .list_offsets(&parts, OffsetSpec::Latest, Isolation::ReadUncommitted)
            .await;
        assert_eq!(lo[&(topic.clone(), 0)], Ok(5));
        assert_eq!(lo[&(topic.clone(), 1)], Ok(8));
        let d = wire.describe_groups(&groups).await[&group].clone().unwrap();
        assert_eq!(d.state, "Empty");
        *counts.entry("correct answers after restart").or_default() += 1;
        println!(
            "round {round}: correct again {:?} after the restart",
            back.elapsed()
        );
    }
    println!("counts: {counts:?}");
    println!("outage errors: {outage_errors:?}");
    assert_eq!(counts["correct answers after restart"], 5);
}

fn profile(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

async fn partitions_with(
    addr: &str,
    pairs: &[(&str, &str)],
) -> Result<HashMap<String, i32>, String> {
    let config = WireConfig::from_properties(addr, &profile(pairs), Duration::from_secs(10))
        .map_err(|e| e.to_string())?;
    WireClient::new(config)
        .topic_partitions()
        .await
        .map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_plain_and_scram() {
    require_broker(&bootstrap());
    let broker = PrivateBroker {
        dir: std::env::temp_dir().join(format!("lagwatch-kafka-wire-sasl-{}", suffix())),
        port: free_port(),
        controller_port: free_port(),
    };
    let sasl_port = free_port();
    broker.start_with("start", &[sasl_port]);
    let plain_addr = format!("127.0.0.1:{}", broker.port);
    let topic = format!("kw-sasl-{}", suffix());
    create_topics(&plain_addr, &[(&topic, 3)]).await;
    let addr = format!("127.0.0.1:{sasl_port}");
    for mechanism in ["PLAIN", "SCRAM-SHA-256"] {
        let got = partitions_with(
            &addr,
            &[
                ("security.protocol", "SASL_PLAINTEXT"),
                ("sasl.mechanism", mechanism),
                ("sasl.username", "alice"),
                ("sasl.password", "alice-secret"),
            ],
        )
        .await
        .unwrap_or_else(|e| panic!("{mechanism}: {e}"));
        assert_eq!(got.get(&topic), Some(&3), "{mechanism}");
        let e = partitions_with(
            &addr,
            &[
                ("security.protocol", "SASL_PLAINTEXT"),
                ("sasl.mechanism", mechanism),
                ("sasl.username", "alice"),
                ("sasl.password", "wrong"),
            ],
        )
        .await
        .unwrap_err();
        assert!(
            e.contains("sasl authentication") && e.contains(&addr),
            "{mechanism}: {e}"
        );
    }
    // A mechanism the listener does not enable names what it offers.
    let e = partitions_with(
        &addr,
        &[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            ("sasl.username", "alice"),
            ("sasl.password", "alice-secret"),
        ],
    )
    .await
    .unwrap_err();
    assert!(e.contains("UNSUPPORTED_SASL_MECHANISM"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_mtls_and_sasl_ssl() {
    require_broker(&bootstrap());
    let broker = PrivateBroker {
        dir: std::env::temp_dir().join(format!("lagwatch-kafka-wire-tls-{}", suffix())),
        port: free_port(),
        controller_port: free_port(),
    };
    let (ssl_port, sasl_ssl_port) = (free_port(), free_port());
    broker.start_with("start-tls", &[ssl_port, sasl_ssl_port]);
    let tls = broker.dir.join("tls");
    let file = |name: &str| tls.join(name).to_string_lossy().into_owned();
    let password = std::fs::read_to_string(tls.join("client.key.password"))
        .unwrap()
        .trim()
        .to_string();
    let topic = format!("kw-tls-{}", suffix());
    create_topics(&format!("127.0.0.1:{}", broker.port), &[(&topic, 2)]).await;

    // mTLS with the encrypted client key.
    let ssl_addr = format!("127.0.0.1:{ssl_port}");
    let (ca, cert, key) = (file("ca.pem"), file("client.pem"), file("client.key"));
    let mtls = [
        ("security.protocol", "SSL"),
        ("ssl.ca.location", ca.as_str()),
        ("ssl.certificate.location", cert.as_str()),
        ("ssl.key.location", key.as_str()),
        ("ssl.key.password", password.as_str()),
    ];
    let got = partitions_with(&ssl_addr, &mtls).await.unwrap();
    assert_eq!(got.get(&topic), Some(&2));
    // Without a client certificate the broker refuses the connection.
    assert!(partitions_with(&ssl_addr, &mtls[..2]).await.is_err());
    // Wrong key password: a configuration error naming the property.
    let mut wrong = mtls;
    wrong[4] = ("ssl.key.password", "nope");
    let e = partitions_with(&ssl_addr, &wrong).await.unwrap_err();
    assert!(e.contains("ssl.key.password"), "{e}");
    // A CA that did not sign the broker certificate: refused.
    let other = file("other-ca.pem");
    let mut untrusted = mtls;
    untrusted[1] = ("ssl.ca.location", other.as_str());
    let e = partitions_with(&ssl_addr, &untrusted).await.unwrap_err();
    assert!(
        e.contains("tls handshake") || e.contains("no kafka broker"),
        "{e}"
    );

    // SASL_SSL PLAIN, with and without the host name check ("localhost" is in the certificate,
    // and so is 127.0.0.1).
    let sasl_addr = format!("localhost:{sasl_ssl_port}");
    for algorithm in ["https", "none"] {
        let got = partitions_with(
            &sasl_addr,
            &[
                ("security.protocol", "SASL_SSL"),
                ("sasl.mechanism", "PLAIN"),
                ("sasl.username", "alice"),
                ("sasl.password", "alice-secret"),
                ("ssl.ca.location", ca.as_str()),
                ("ssl.endpoint.identification.algorithm", algorithm),
            ],
        )
        .await
        .unwrap_or_else(|e| panic!("{algorithm}: {e}"));
        assert_eq!(got.get(&topic), Some(&2), "{algorithm}");
    }
}
