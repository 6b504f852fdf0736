//! Finds the monitors a sample can concern without scanning them all.
//!
//! Exact-group monitors are indexed by (cluster, group); pattern monitors
//! are listed per cluster and still matched by the engine. Rebuilt when the
//! monitor list changes, so a sample costs one hash lookup plus the pattern
//! monitors of its cluster, not one comparison per registered monitor.

use std::collections::HashMap;
use std::sync::Arc;

use lagwatch_model::{GroupMatch, Monitor};

/// The current monitors, indexed.
#[derive(Debug, Default)]
pub struct MonitorIndex {
    monitors: Arc<Vec<Monitor>>,
    exact: HashMap<(String, String), Vec<usize>>,
    patterns: HashMap<String, Vec<usize>>,
}

impl MonitorIndex {
    pub fn new(monitors: Arc<Vec<Monitor>>) -> Self {
        let mut exact: HashMap<(String, String), Vec<usize>> = HashMap::new();
        let mut patterns: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, monitor) in monitors.iter().enumerate() {
            match monitor.group_match {
                GroupMatch::Exact => exact
                    .entry((monitor.cluster.clone(), monitor.consumer_group.clone()))
                    .or_default()
                    .push(i),
                GroupMatch::Regex => patterns.entry(monitor.cluster.clone()).or_default().push(i),
            }
        }
        MonitorIndex {
            monitors,
            exact,
            patterns,
        }
    }

    /// Every monitor.
    pub fn all(&self) -> &[Monitor] {
        &self.monitors
    }

    /// The monitors naming `group` on `cluster` exactly, then the pattern
    /// monitors of `cluster` (in registration order within each kind).
    pub fn candidates<'a>(
        &'a self,
        cluster: &str,
        group: &str,
    ) -> impl Iterator<Item = &'a Monitor> + 'a {
        let exact = self
            .exact
            .get(&(cluster.to_string(), group.to_string()))
            .map(Vec::as_slice)
            .unwrap_or_default();
        let patterns = self
            .patterns
            .get(cluster)
            .map(Vec::as_slice)
            .unwrap_or_default();
        exact
            .iter()
            .chain(patterns.iter())
            .filter_map(|&i| self.monitors.get(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn monitor(id: i64, cluster: &str, group: &str, group_match: GroupMatch) -> Monitor {
        Monitor {
            id,
            team: "t".into(),
            cluster: cluster.into(),
            consumer_group: group.into(),
            group_match,
            topics: vec![],
            topic_regex: None,
            lag_threshold: 1,
            for_secs: 0,
            emails: vec![],
            isolation: Default::default(),
            time_lag: Default::default(),
            alerting: Default::default(),
        }
    }

    #[test]
    fn exact_monitors_by_group_and_patterns_by_cluster() {
        let index = MonitorIndex::new(Arc::new(vec![
            monitor(1, "prod", "billing", GroupMatch::Exact),
            monitor(2, "prod", "bill.*", GroupMatch::Regex),
            monitor(3, "dev", "billing", GroupMatch::Exact),
            monitor(4, "prod", "billing", GroupMatch::Exact),
            monitor(5, "prod", "shipping", GroupMatch::Exact),
        ]));
        let ids = |cluster, group| -> Vec<i64> {
            index.candidates(cluster, group).map(|m| m.id).collect()
        };
        assert_eq!(ids("prod", "billing"), vec![1, 4, 2]);
        assert_eq!(ids("prod", "other"), vec![2]);
        assert_eq!(ids("dev", "billing"), vec![3]);
        assert!(ids("staging", "billing").is_empty());
        assert_eq!(index.all().len(), 5);
    }
}
