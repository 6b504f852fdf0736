//! The per-cluster sampling loop.
//!
//! Each cycle merges the cluster's monitors into one [`GroupTarget`] per
//! group ([`targets_with`]); group and topic patterns are compiled once per
//! monitor set ([`CompiledPatterns`]), not once per cycle. A team's group
//! pattern only ever expands to groups the team owns (`[teams]`,
//! [`targets_owned`]), so `.*` cannot read other teams' offsets.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lagwatch_model::{
    compile_pattern, now_ms, GroupMatch, GroupSample, MetricsMessage, Monitor, Tenancy,
};
use regex::Regex;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::exposition::Exposition;
use crate::metrics::CollectorMetrics;
use crate::publisher::Publisher;
use crate::sampler::{sample_cluster, GroupTarget, LimitedSelection};
use crate::sharding::Ownership;
use crate::source::OffsetSource;
use crate::time_lag::{annotate_time_lag, TimeLagEstimator};
use lagwatch_store::monitor_watch::MonitorList;

/// End-offset points remembered per partition for time-lag estimates.
const TIME_LAG_HISTORY: usize = 360;

/// Record timestamps read per cycle for time lags outside the remembered
/// history, unless configured otherwise.
pub const DEFAULT_TIME_LAG_PROBES: usize = 200;

/// Samples one cluster every `interval` and publishes the samples.
pub struct ClusterPoller {
    pub cluster: String,
    pub source: Arc<dyn OffsetSource>,
    pub interval: Duration,
    pub monitors: MonitorList,
    pub publisher: Publisher,
    pub metrics: CollectorMetrics,
    pub time_lag: Arc<Mutex<TimeLagEstimator>>,
    /// Record timestamps read per cycle for time lags outside the history.
    pub time_lag_probes: usize,
    /// Which groups this instance samples; `None` = all.
    pub ownership: Option<Ownership>,
    /// Compiled patterns of the current monitor set, kept across cycles.
    pub patterns: Arc<Mutex<CompiledPatterns>>,
    /// Each group's last logged sample error: a standing problem (a
    /// deleted topic, a broker down) is logged when it begins, changes or
    /// ends, not every cycle.
    pub logged_errors: Mutex<ErrorLog>,
    /// Which groups each team owns: pattern monitors expand only to those.
    pub tenancy: Arc<Tenancy>,
}

impl ClusterPoller {
    /// A poller for `cluster` with empty time-lag history.
    pub fn new(
        cluster: String,
        source: Arc<dyn OffsetSource>,
        interval: Duration,
        monitors: MonitorList,
        publisher: Publisher,
        metrics: CollectorMetrics,
    ) -> Self {
        ClusterPoller {
            cluster,
            source,
            interval,
            monitors,
            publisher,
            metrics,
            time_lag: Arc::new(Mutex::new(TimeLagEstimator::new(TIME_LAG_HISTORY))),
            time_lag_probes: DEFAULT_TIME_LAG_PROBES,
            ownership: None,
            patterns: Arc::default(),
            logged_errors: Mutex::default(),
            tenancy: Arc::default(),
        }
    }

    /// Runs until `shutdown` is cancelled. A slow cycle delays the next tick
    /// rather than stacking cycles on top of each other.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut exposition = Exposition::default();
        // Samples are stamped with the scheduled tick time, not the moment
        // the task woke up: regular timestamps compress to almost nothing in
        // ClickHouse and line up across partitions and clusters.
        let wall_base_ms = now_ms();
        let instant_base = tokio::time::Instant::now();
        loop {
            let tick = tokio::select! {
                _ = shutdown.cancelled() => break,
                tick = ticker.tick() => tick,
            };
            let offset_ms = i64::try_from(tick.saturating_duration_since(instant_base).as_millis())
                .unwrap_or(i64::MAX);
            let samples = self.cycle_at(wall_base_ms.saturating_add(offset_ms)).await;
            exposition.export(&self.metrics, &samples);
        }
        tracing::info!(cluster = %self.cluster, "collector stopped");
    }

    /// One sampling cycle stamped with the current time.
    pub async fn cycle(&self) -> Vec<GroupSample> {
        self.cycle_at(now_ms()).await
    }

    /// One sampling cycle: sample every monitored group at sample time
    /// `ts_ms`, publish, return the samples.
    pub async fn cycle_at(&self, ts_ms: i64) -> Vec<GroupSample> {
        let monitors = self.monitors.borrow().clone();
        if !monitors.iter().any(|m| m.cluster == self.cluster) {
            // Nothing to sample is not a failure to sample.
            self.metrics
                .last_success
                .with_label_values(&[&self.cluster])
                .set(ts_ms / 1_000);
            return Vec::new();
        }
        let started = Instant::now();
        let source = Arc::clone(&self.source);
        let cluster = self.cluster.clone();
        let ownership = self.ownership.clone();
        let patterns = Arc::clone(&self.patterns);
        let tenancy = Arc::clone(&self.tenancy);
        let time_lag = Arc::clone(&self.time_lag);
        let time_lag_probes = self.time_lag_probes;
        let sampled = tokio::task::spawn_blocking(move || {
            // Patterns need the cluster's group list; exact names do not.
            let needs_groups = monitors
                .iter()
                .any(|m| m.cluster == cluster && m.group_match == GroupMatch::Regex);
            let existing = if needs_groups {
                match source.list_groups() {
                    Ok((groups, errors)) => {
                        for error in errors {
                            tracing::warn!(cluster = %cluster, error = %error, "a broker did not list its groups");
                        }
                        Some(groups)
                    }
                    Err(error) => {
                        tracing::warn!(cluster = %cluster, error = %error, "cannot list groups; pattern monitors skipped this cycle");
                        None
                    }
                }
            } else {
                None
            };
            let mut targets = match patterns.lock() {
                Ok(mut patterns) => {
                    patterns.use_monitors(&monitors);
                    targets_owned(
                        &mut patterns,
                        &cluster,
                        &monitors,
                        existing.as_deref(),
                        &tenancy,
                    )
                }
                // A panic elsewhere poisoned the cache: compile afresh.
                Err(_) => targets_owned(
                    &mut CompiledPatterns::default(),
                    &cluster,
                    &monitors,
                    existing.as_deref(),
                    &tenancy,
                ),
            };
            if let Some(ownership) = &ownership {
                targets.retain(|t| ownership.owns(&cluster, &t.group));
            }
            let mut samples = sample_cluster(source.as_ref(), &cluster, &targets, ts_ms);
            annotate_time_lag(&time_lag, source.as_ref(), &mut samples, time_lag_probes);
            samples
        })
        .await;
        let samples = match sampled {
            Ok(samples) => samples,
            Err(error) => {
                tracing::error!(cluster = %self.cluster, error = %error, "sampling task failed");
                return Vec::new();
            }
        };
        let incomplete = samples.iter().filter(|s| s.error.is_some()).count();
        self.metrics
            .cycle_errors
            .with_label_values(&[&self.cluster])
            .inc_by(u64::try_from(incomplete).unwrap_or(u64::MAX));
        self.log_error_changes(&samples);
        let messages: Vec<MetricsMessage> =
            samples.iter().cloned().map(MetricsMessage::Group).collect();
        let failed = self.publisher.publish(&messages).await;
        if failed == 0 && samples.iter().any(|s| s.error.is_none()) {
            self.metrics
                .last_success
                .with_label_values(&[&self.cluster])
                .set(ts_ms / 1_000);
        }
        let elapsed = started.elapsed();
        self.metrics.cycle_seconds.observe(elapsed.as_secs_f64());
        tracing::debug!(
            cluster = %self.cluster,
            groups = samples.len(),
            failed,
            elapsed_ms = elapsed.as_millis() as u64,
            "sampling cycle done"
        );
        samples
    }

    /// Logs each group's sample error when it begins or changes, and when it
    /// clears; the same error again is only counted (`cycle_errors`).
    fn log_error_changes(&self, samples: &[GroupSample]) {
        let Ok(mut logged) = self.logged_errors.lock() else {
            return;
        };
        for change in logged.changes(samples) {
            match change {
                ErrorChange::Began { group, error } => {
                    tracing::warn!(cluster = %self.cluster, %group, %error, "incomplete sample (logged again only when the error changes or clears)")
                }
                ErrorChange::Cleared { group } => {
                    tracing::info!(cluster = %self.cluster, %group, "complete sample again")
                }
            }
        }
    }
}

/// A group's sample error that began (or changed), or cleared.
#[derive(Debug, PartialEq, Eq)]
pub enum ErrorChange {
    Began { group: String, error: String },
    Cleared { group: String },
}

/// Each group's last reported sample error.
#[derive(Debug, Default)]
pub struct ErrorLog {
    last: HashMap<String, String>,
}

impl ErrorLog {
    /// What changed with this cycle's samples; groups no longer sampled
    /// (monitor removed) are forgotten.
    pub fn changes(&mut self, samples: &[GroupSample]) -> Vec<ErrorChange> {
        let mut changes = Vec::new();
        for sample in samples {
            match (&sample.error, self.last.get(&sample.group)) {
                (Some(error), Some(before)) if error == before => {}
                (Some(error), _) => {
                    self.last.insert(sample.group.clone(), error.clone());
                    changes.push(ErrorChange::Began {
                        group: sample.group.clone(),
                        error: error.clone(),
                    });
                }
                (None, Some(_)) => {
                    self.last.remove(&sample.group);
                    changes.push(ErrorChange::Cleared {
                        group: sample.group.clone(),
                    });
                }
                (None, None) => {}
            }
        }
        if !samples.is_empty() {
            let sampled: std::collections::HashSet<&str> =
                samples.iter().map(|s| s.group.as_str()).collect();
            self.last
                .retain(|group, _| sampled.contains(group.as_str()));
        }
        changes
    }
}

/// Compiled group and topic patterns of one monitor set. Compiling a
/// pattern costs far more than matching with it, so the poller keeps them
/// across cycles; they are dropped when the monitor set changes (the
/// monitor watch hands over a new list), so patterns of removed monitors do
/// not pile up. Patterns are keyed by text: the same text always compiles
/// to the same matcher, so the result never depends on the cache.
#[derive(Debug, Default)]
pub struct CompiledPatterns {
    /// The monitor set the cache belongs to.
    monitors: Option<Arc<Vec<Monitor>>>,
    /// Pattern text → anchored regex (`None`: invalid, matches nothing).
    compiled: HashMap<String, Option<Regex>>,
    /// Compilations since creation, for tests and debugging.
    compilations: u64,
}

impl CompiledPatterns {
    /// Makes `monitors` the current set, dropping the compiled patterns if
    /// the set changed.
    pub fn use_monitors(&mut self, monitors: &Arc<Vec<Monitor>>) {
        let unchanged = self
            .monitors
            .as_ref()
            .is_some_and(|current| Arc::ptr_eq(current, monitors) || current == monitors);
        if !unchanged {
            if self.monitors.is_some() {
                tracing::debug!(
                    patterns = self.compiled.len(),
                    "monitor set changed, dropping compiled patterns"
                );
            }
            self.compiled.clear();
            self.monitors = Some(Arc::clone(monitors));
        }
    }

    /// The compiled `pattern`; `None` when it is invalid.
    fn get(&mut self, pattern: &str) -> Option<&Regex> {
        if !self.compiled.contains_key(pattern) {
            self.compilations += 1;
            self.compiled
                .insert(pattern.to_string(), compile_pattern(pattern).ok());
        }
        self.compiled.get(pattern).and_then(Option::as_ref)
    }

    /// How many patterns were compiled so far.
    pub fn compilations(&self) -> u64 {
        self.compilations
    }
}

/// Merges the monitors of one cluster into one target per group. Monitors
/// naming groups by pattern expand to the matching groups of `existing`
/// (the cluster's group list; `None` when it could not be read). Compiles
/// the patterns afresh; the poller uses [`targets_with`] and its cache.
pub fn targets_for(
    cluster: &str,
    monitors: &[Monitor],
    existing: Option<&[String]>,
) -> Vec<GroupTarget> {
    targets_with(
        &mut CompiledPatterns::default(),
        cluster,
        monitors,
        existing,
    )
}

/// [`targets_for`] with patterns taken from (and added to) `patterns`.
pub fn targets_with(
    patterns: &mut CompiledPatterns,
    cluster: &str,
    monitors: &[Monitor],
    existing: Option<&[String]>,
) -> Vec<GroupTarget> {
    targets_owned(patterns, cluster, monitors, existing, &Tenancy::default())
}

/// [`targets_with`] where a monitor's group pattern matches only groups
/// its team owns in `tenancy`.
pub fn targets_owned(
    patterns: &mut CompiledPatterns,
    cluster: &str,
    monitors: &[Monitor],
    existing: Option<&[String]>,
    tenancy: &Tenancy,
) -> Vec<GroupTarget> {
    let mut by_group: BTreeMap<String, GroupTarget> = BTreeMap::new();
    for monitor in monitors.iter().filter(|m| m.cluster == cluster) {
        let groups: Vec<String> = match monitor.group_match {
            GroupMatch::Exact => vec![monitor.consumer_group.clone()],
            GroupMatch::Regex => match patterns.get(&monitor.consumer_group) {
                Some(pattern) => existing
                    .unwrap_or_default()
                    .iter()
                    .filter(|g| pattern.is_match(g))
                    .filter(|g| tenancy.owns_group(&monitor.team, cluster, g))
                    .cloned()
                    .collect(),
                None => Vec::new(),
            },
        };
        let pattern = monitor
            .topic_regex
            .as_deref()
            .and_then(|p| patterns.get(p))
            .cloned();
        for group in groups {
            let target = by_group
                .entry(group.clone())
                .or_insert_with(|| GroupTarget {
                    group,
                    topics: Default::default(),
                    topic_patterns: Vec::new(),
                    all_topics: false,
                    limited_selections: Vec::new(),
                    exact_time_lag: false,
                    read_committed: false,
                });
            if monitor.time_lag == lagwatch_model::TimeLagMode::Exact {
                target.exact_time_lag = true;
            }
            if monitor.isolation == lagwatch_model::Isolation::ReadCommitted {
                target.read_committed = true;
            }
            // Explicit topics the team does not own are dropped (the API
            // refuses them; a monitor stored before `[teams]` existed may
            // still name one).
            target.topics.extend(
                monitor
                    .topics
                    .iter()
                    .filter(|t| tenancy.owns_topic(&monitor.team, t))
                    .cloned(),
            );
            let every_topic = monitor.topics.is_empty() && monitor.topic_regex.is_none();
            match tenancy.topic_limits(&monitor.team) {
                None => {
                    if every_topic {
                        target.all_topics = true;
                    }
                    if let Some(pattern) = &pattern {
                        if !target
                            .topic_patterns
                            .iter()
                            .any(|p| p.as_str() == pattern.as_str())
                        {
                            target.topic_patterns.push(pattern.clone());
                        }
                    }
                }
                Some(limits) if every_topic || pattern.is_some() => {
                    target.limited_selections.push(LimitedSelection {
                        pattern: pattern.clone(),
                        limits,
                    });
                }
                Some(_) => {}
            }
        }
    }
    by_group.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn monitor(id: i64, cluster: &str, group: &str, topics: &[&str]) -> Monitor {
        Monitor {
            id,
            team: "t".into(),
            cluster: cluster.into(),
            consumer_group: group.into(),
            topics: topics.iter().map(|t| t.to_string()).collect(),
            lag_threshold: 1,
            for_secs: 0,
            emails: vec![],
            isolation: Default::default(),
            time_lag: Default::default(),
            alerting: Default::default(),
            group_match: Default::default(),
            topic_regex: None,
        }
    }

    /// Ownership where team `t` owns `groups` and `topics` (globs).
    fn team_t_owning(groups: &[&str], topics: &[&str]) -> Tenancy {
        let owned = |names: &[&str]| names.iter().map(|n| n.to_string()).collect();
        let scope = lagwatch_model::TeamScope {
            clusters: None,
            groups: owned(groups),
            topics: owned(topics),
            routes: vec![],
            max_monitors: None,
            max_silences: None,
            max_regex_monitors: None,
            max_exact_time_lag_monitors: None,
        };
        Tenancy::new(
            Some(std::collections::BTreeMap::from([("t".to_string(), scope)])),
            Default::default(),
        )
    }

    #[test]
    fn a_team_pattern_expands_only_to_groups_the_team_owns() {
        let mut everything = monitor(1, "a", ".*", &[]);
        everything.group_match = GroupMatch::Regex;
        let existing = vec!["pay-eu".to_string(), "search".to_string()];
        let tenancy = team_t_owning(&["pay-*"], &["*"]);
        let owned = targets_owned(
            &mut CompiledPatterns::default(),
            "a",
            &[everything.clone()],
            Some(&existing),
            &tenancy,
        );
        let groups: Vec<&str> = owned.iter().map(|t| t.group.as_str()).collect();
        assert_eq!(groups, vec!["pay-eu"]);
        let open = targets_for("a", &[everything], Some(&existing));
        assert_eq!(open.len(), 2, "without [teams] nothing is filtered");
    }

    #[test]
    fn a_team_limited_to_some_topics_never_samples_another_teams_topic() {
        let tenancy = team_t_owning(&["pay-*"], &["pay.*"]);
        // Stored before ownership was configured: an explicit foreign
        // topic, a pattern matching everything, and "every topic".
        let explicit = monitor(1, "a", "pay-eu", &["pay.orders", "search.docs"]);
        let mut pattern = monitor(2, "a", "pay-us", &[]);
        pattern.topic_regex = Some(".*".into());
        let every = monitor(3, "a", "pay-asia", &[]);
        let targets = targets_owned(
            &mut CompiledPatterns::default(),
            "a",
            &[explicit, pattern, every],
            None,
            &tenancy,
        );
        assert_eq!(targets.len(), 3);
        for target in &targets {
            assert!(target.wants("pay.orders"), "{}", target.group);
            assert!(!target.wants("search.docs"), "{}", target.group);
            assert!(!target.wants("a)|(?:.*"), "{}", target.group);
        }
    }

    #[test]
    fn a_standing_sample_error_is_logged_when_it_begins_changes_and_clears() {
        let sample = |error: Option<&str>| GroupSample {
            v: lagwatch_model::WIRE_VERSION,
            cluster: "c".into(),
            group: "g".into(),
            state: "Stable".into(),
            members: 1,
            ts_ms: 0,
            error: error.map(str::to_string),
            partitions: vec![],
        };
        let mut log = ErrorLog::default();
        let began = |error: &str| ErrorChange::Began {
            group: "g".into(),
            error: error.into(),
        };
        assert_eq!(
            log.changes(&[sample(Some("topic t deleted"))]),
            vec![began("topic t deleted")]
        );
        for _ in 0..100 {
            assert_eq!(log.changes(&[sample(Some("topic t deleted"))]), vec![]);
        }
        assert_eq!(
            log.changes(&[sample(Some("broker down"))]),
            vec![began("broker down")]
        );
        assert_eq!(
            log.changes(&[sample(None)]),
            vec![ErrorChange::Cleared { group: "g".into() }]
        );
        assert_eq!(log.changes(&[sample(None)]), vec![]);
    }

    #[test]
    fn group_patterns_expand_to_existing_groups() {
        let mut pattern = monitor(1, "a", "pay-.*", &[]);
        pattern.group_match = GroupMatch::Regex;
        pattern.topic_regex = Some("orders\\..*".into());
        let existing = vec![
            "pay-eu".to_string(),
            "pay-us".to_string(),
            "ship".to_string(),
        ];
        let targets = targets_for("a", &[pattern.clone()], Some(&existing));
        let groups: Vec<&str> = targets.iter().map(|t| t.group.as_str()).collect();
        assert_eq!(groups, vec!["pay-eu", "pay-us"]);
        assert!(targets[0].wants("orders.v1"));
        assert!(!targets[0].wants("audit"));
        assert!(
            targets_for("a", &[pattern], None).is_empty(),
            "no group list, no pattern targets"
        );
    }

    /// A comparable view of targets (regexes compared by text).
    type Summary = Vec<(String, Vec<String>, Vec<String>, bool, bool, bool)>;

    fn summary(targets: &[GroupTarget]) -> Summary {
        targets
            .iter()
            .map(|t| {
                (
                    t.group.clone(),
                    t.topics.iter().cloned().collect(),
                    t.topic_patterns
                        .iter()
                        .map(|p| p.as_str().to_string())
                        .collect(),
                    t.all_topics,
                    t.exact_time_lag,
                    t.read_committed,
                )
            })
            .collect()
    }

    #[test]
    fn patterns_compile_once_per_monitor_set_with_identical_targets() {
        let mut pay = monitor(1, "a", "pay-.*", &[]);
        pay.group_match = GroupMatch::Regex;
        pay.topic_regex = Some("orders\\..*".into());
        let mut ship = monitor(2, "a", "ship-(eu|us)", &["audit"]);
        ship.group_match = GroupMatch::Regex;
        ship.topic_regex = Some("orders\\..*".into());
        let mut broken = monitor(3, "a", "(", &[]);
        broken.group_match = GroupMatch::Regex;
        let set = Arc::new(vec![
            pay,
            ship,
            broken,
            monitor(4, "a", "pay-eu", &["x"]),
            monitor(5, "b", "pay-us", &[]),
        ]);
        let existing: Vec<String> = ["pay-eu", "pay-us", "ship-eu", "ship-asia", "("]
            .iter()
            .map(|g| g.to_string())
            .collect();
        let fresh = summary(&targets_for("a", &set, Some(&existing)));
        assert_eq!(
            fresh.iter().map(|t| t.0.as_str()).collect::<Vec<_>>(),
            vec!["pay-eu", "pay-us", "ship-eu"]
        );

        let mut cache = CompiledPatterns::default();
        for _ in 0..5 {
            cache.use_monitors(&set);
            let cached = summary(&targets_with(&mut cache, "a", &set, Some(&existing)));
            assert_eq!(cached, fresh);
        }
        // "pay-.*", "orders\..*", "ship-(eu|us)" and the invalid "(": once each.
        assert_eq!(cache.compilations(), 4);

        // The same monitors in a new list (a reload without changes).
        let reloaded = Arc::new((*set).clone());
        cache.use_monitors(&reloaded);
        targets_with(&mut cache, "a", &reloaded, Some(&existing));
        assert_eq!(cache.compilations(), 4);

        // A changed set drops the cache; the new pattern takes effect.
        let mut changed = (*set).clone();
        changed[0].consumer_group = "pay-u.".into();
        let changed = Arc::new(changed);
        cache.use_monitors(&changed);
        let cached = summary(&targets_with(&mut cache, "a", &changed, Some(&existing)));
        assert_eq!(
            cached,
            summary(&targets_for("a", &changed, Some(&existing)))
        );
        assert_eq!(
            cached.iter().map(|t| t.0.as_str()).collect::<Vec<_>>(),
            vec!["pay-eu", "pay-us", "ship-eu"],
            "pay-eu stays through its exact monitor"
        );
        assert!(
            cached[0].2.is_empty(),
            "pay-eu lost the pattern monitor's topics"
        );
        assert_eq!(cache.compilations(), 8);
    }

    #[test]
    fn merges_monitors_per_group_and_cluster() {
        let monitors = vec![
            monitor(1, "a", "g1", &["x"]),
            monitor(2, "a", "g1", &["y"]),
            monitor(3, "a", "g2", &[]),
            monitor(4, "b", "g1", &["z"]),
        ];
        let targets = targets_for("a", &monitors, None);
        assert_eq!(targets.len(), 2);
        assert_eq!(targets[0].group, "g1");
        assert_eq!(targets[0].topics.iter().collect::<Vec<_>>(), vec!["x", "y"]);
        assert!(!targets[0].all_topics);
        assert!(targets[1].all_topics);
    }
}
