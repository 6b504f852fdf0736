//! Per-second rates from the broker's cumulative counters.
//!
//! Kafka's `...PerSec` meters also publish rates, but those are
//! exponentially weighted (`OneMinuteRate`) or since start (`MeanRate`).
//! The rate of the `Count` between two cycles is exact for the interval and
//! the same whether read through Jolokia or an exporter.
//!
//! Rules, per broker and metric:
//! 1. The first read of a metric gives no rate, only a baseline.
//! 2. A counter that went down (broker restart, topic re-created) gives no
//!    rate that cycle, never a negative one; its new value is the baseline.
//! 3. A series that was not there at the previous read (a topic that got its
//!    first message in between: Kafka creates per-topic meters lazily, at
//!    zero) counts from zero, but only when the broker total of the same
//!    metric grew by at least as much. Otherwise (a series missing from one
//!    read and back in the next) it only sets a baseline.
//! 4. A previous read older than `max_gap`, or not older than the current
//!    one, gives no rate: it would average over an outage or divide by zero.
//! 5. Series gone from a read are forgotten.

use std::collections::HashMap;
use std::time::Duration;

/// The previous counts of every metric of one broker.
#[derive(Debug, Clone)]
pub struct RateTracker {
    max_gap_ms: i64,
    previous: HashMap<&'static str, Previous>,
}

#[derive(Debug, Clone)]
struct Previous {
    ts_ms: i64,
    counts: HashMap<Option<String>, f64>,
}

impl RateTracker {
    /// A tracker that gives no rate across reads more than `max_gap` apart.
    pub fn new(max_gap: Duration) -> Self {
        RateTracker {
            max_gap_ms: i64::try_from(max_gap.as_millis()).unwrap_or(i64::MAX),
            previous: HashMap::new(),
        }
    }

    /// Records the counts of `metric` read at `ts_ms` (broker total under
    /// `None`) and returns the per-second rate of every series that has one,
    /// in the order of `counts`.
    pub fn update(
        &mut self,
        metric: &'static str,
        ts_ms: i64,
        counts: &[(Option<String>, f64)],
    ) -> Vec<(Option<String>, f64)> {
        let current = Previous {
            ts_ms,
            counts: counts.iter().cloned().collect(),
        };
        let Some(previous) = self.previous.insert(metric, current) else {
            return Vec::new();
        };
        let elapsed_ms = ts_ms.saturating_sub(previous.ts_ms);
        if elapsed_ms <= 0 || elapsed_ms > self.max_gap_ms {
            return Vec::new();
        }
        let seconds = elapsed_ms as f64 / 1000.0;
        // What the broker total grew by: the most any new series can hold.
        let total_growth = counts
            .iter()
            .find(|(topic, _)| topic.is_none())
            .and_then(|(_, now)| Some(now - previous.counts.get(&None)?))
            .filter(|growth| *growth >= 0.0);
        counts
            .iter()
            .filter_map(|(topic, now)| {
                let delta = match previous.counts.get(topic) {
                    Some(before) if now >= before => now - before,
                    Some(_) => return None,
                    None if topic.is_some() && total_growth.is_some_and(|g| *now <= g) => *now,
                    None => return None,
                };
                Some((topic.clone(), delta / seconds))
            })
            .collect()
    }

    /// Forgets every baseline (e.g. after the endpoint changed).
    pub fn clear(&mut self) {
        self.previous.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: &str = "BytesInPerSec";

    fn tracker() -> RateTracker {
        RateTracker::new(Duration::from_secs(300))
    }

    fn total(v: f64) -> (Option<String>, f64) {
        (None, v)
    }

    fn topic(name: &str, v: f64) -> (Option<String>, f64) {
        (Some(name.to_string()), v)
    }

    #[test]
    fn rule_1_first_read_gives_no_rate() {
        let mut rates = tracker();
        assert!(rates.update(M, 1_000, &[total(500.0)]).is_empty());
        assert_eq!(
            rates.update(M, 11_000, &[total(1_500.0)]),
            vec![total(100.0)]
        );
        // Metrics are independent: another one starts with a baseline.
        assert!(rates
            .update("MessagesInPerSec", 11_000, &[total(5.0)])
            .is_empty());
    }

    #[test]
    fn rule_2_counter_reset_gives_no_rate_then_resumes() {
        let mut rates = tracker();
        rates.update(M, 0, &[total(1_000.0), topic("a", 400.0)]);
        let after_restart = rates.update(M, 10_000, &[total(50.0), topic("a", 30.0)]);
        assert!(
            after_restart.is_empty(),
            "never negative: {after_restart:?}"
        );
        assert_eq!(
            rates.update(M, 20_000, &[total(150.0), topic("a", 80.0)]),
            vec![total(10.0), topic("a", 5.0)]
        );
    }

    #[test]
    fn unchanged_counters_give_zero() {
        let mut rates = tracker();
        rates.update(M, 0, &[total(7.0)]);
        assert_eq!(rates.update(M, 30_000, &[total(7.0)]), vec![total(0.0)]);
    }

    #[test]
    fn rule_3_new_topics_count_from_zero_when_the_total_covers_them() {
        let mut rates = tracker();
        rates.update(M, 0, &[total(1_000.0), topic("old", 1_000.0)]);
        let next = rates.update(
            M,
            2_000,
            &[total(1_600.0), topic("old", 1_100.0), topic("new", 500.0)],
        );
        assert_eq!(
            next,
            vec![total(300.0), topic("old", 50.0), topic("new", 250.0)]
        );
    }

    #[test]
    fn rule_3_a_series_back_from_a_gap_only_sets_a_baseline() {
        let mut rates = tracker();
        rates.update(M, 0, &[total(1_000.0), topic("flaky", 900.0)]);
        rates.update(M, 1_000, &[total(1_010.0)]);
        // Back with its lifetime count, far more than the total grew by.
        let back = rates.update(M, 2_000, &[total(1_020.0), topic("flaky", 905.0)]);
        assert_eq!(back, vec![total(10.0)]);
        let next = rates.update(M, 3_000, &[total(1_030.0), topic("flaky", 915.0)]);
        assert_eq!(next, vec![total(10.0), topic("flaky", 10.0)]);
    }

    #[test]
    fn rule_3_without_a_total_new_series_wait() {
        let mut rates = tracker();
        rates.update(M, 0, &[topic("a", 1.0)]);
        assert_eq!(
            rates.update(M, 1_000, &[topic("a", 2.0), topic("b", 1.0)]),
            vec![topic("a", 1.0)]
        );
    }

    #[test]
    fn rule_4_gaps_and_clock_steps_give_no_rate() {
        let mut rates = RateTracker::new(Duration::from_secs(60));
        rates.update(M, 0, &[total(0.0)]);
        assert!(
            rates.update(M, 61_000, &[total(100.0)]).is_empty(),
            "too old"
        );
        assert!(
            rates.update(M, 61_000, &[total(200.0)]).is_empty(),
            "same instant"
        );
        assert!(
            rates.update(M, 60_000, &[total(300.0)]).is_empty(),
            "clock went back"
        );
        assert_eq!(rates.update(M, 70_000, &[total(400.0)]), vec![total(10.0)]);
    }

    #[test]
    fn clear_forgets_baselines() {
        let mut rates = tracker();
        rates.update(M, 0, &[total(0.0)]);
        rates.clear();
        assert!(rates.update(M, 1_000, &[total(10.0)]).is_empty());
    }
}
