//! How far a consumer group member is behind on its assigned partitions:
//! the backlog `/readyz`, the metrics and the self-alerts report for the
//! evaluator and the history stage.

use std::time::Duration;

use rdkafka::consumer::{Consumer, ConsumerContext};
use rdkafka::Offset;

/// Which position counts as "done".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// The next offset the member will fetch (work handed to the stage).
    Fetched,
    /// The committed offset (work the stage has finished, e.g. stored).
    Committed,
}

/// Messages between `progress` and the high watermark, summed over the
/// member's assigned partitions; `None` when the brokers did not answer.
/// Blocks for up to a few `timeout`s: call it on a blocking thread.
pub fn consumer_backlog<C, K>(consumer: &K, progress: Progress, timeout: Duration) -> Option<i64>
where
    C: ConsumerContext,
    K: Consumer<C>,
{
    let assignment = consumer.assignment().ok()?;
    let positions = match progress {
        Progress::Fetched => consumer.position().ok()?,
        Progress::Committed => consumer.committed_offsets(assignment, timeout).ok()?,
    };
    let mut backlog = 0i64;
    for element in positions.elements() {
        let (low, high) = consumer
            .fetch_watermarks(element.topic(), element.partition(), timeout)
            .ok()?;
        let done = match element.offset() {
            Offset::Offset(offset) => offset,
            // Nothing fetched or committed yet: all of the partition is owed.
            _ => low,
        };
        backlog = backlog.saturating_add((high - done).max(0));
    }
    Some(backlog)
}
