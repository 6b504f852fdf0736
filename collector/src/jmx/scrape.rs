//! What one read of one endpoint returned, before rates and corrections.

use super::spec::ValueKind;

/// The raw result of reading one endpoint once.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Scrape {
    /// Metric families that were read successfully (possibly with no series).
    pub families: Vec<Family>,
    /// One line per metric that could not be read.
    pub failures: Vec<String>,
    /// Kafka version of the node, when the endpoint tells it.
    pub version: Option<String>,
}

/// The series of one metric as read: broker total (`None`) and per topic.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    pub metric: &'static str,
    pub kind: ValueKind,
    pub scale: f64,
    pub series: Vec<(Option<String>, f64)>,
}

impl Family {
    pub fn new(metric: &'static str, kind: ValueKind, scale: f64) -> Self {
        Family {
            metric,
            kind,
            scale,
            series: Vec::new(),
        }
    }

    /// Adds one value. Two sources of the same series (an MBean pattern
    /// without the topic key) add up for counters; for gauges the first one
    /// wins.
    pub fn push(&mut self, topic: Option<String>, value: f64) {
        if !value.is_finite() {
            return;
        }
        match self.series.iter_mut().find(|(t, _)| *t == topic) {
            Some((_, existing)) if self.kind == ValueKind::Counter => *existing += value,
            Some(_) => {}
            None => self.series.push((topic, value)),
        }
    }

    /// The value of the broker total.
    pub fn total(&self) -> Option<f64> {
        self.series
            .iter()
            .find(|(topic, _)| topic.is_none())
            .map(|(_, v)| *v)
    }
}

impl Scrape {
    pub fn family(&self, metric: &str) -> Option<&Family> {
        self.families.iter().find(|f| f.metric == metric)
    }
}
