//! The batched, retrying ClickHouse writer.
//!
//! Rows are buffered per table and flushed when a batch reaches
//! `batch_rows` or every `flush_interval`. A failed insert is retried with
//! exponential backoff and jitter (`backon`) using the same `insert_deduplication_token` (derived from the
//! batch content), so a retry after a lost response cannot duplicate rows.
//! While ClickHouse is down the writer stops reading its bounded input
//! channel, which pushes back on the metrics-topic consumer instead of
//! growing memory or dropping rows.
//!
//! The consumer interleaves [`HistoryRecord::Checkpoint`]s with the rows of
//! each message it reads; the writer hands a checkpoint back only after
//! every row received before it is stored, and only then does the consumer
//! commit that offset. A crash or a ClickHouse outage at shutdown therefore
//! loses nothing: unwritten rows are read again from the topic.
//!
//! Every insert has a timeout (`insert_timeout`): a ClickHouse that accepts
//! and never answers is retried like one that is down. A batch ClickHouse
//! keeps refusing for a reason other than load or availability (a schema
//! mismatch, a failing materialized view) is handed to the
//! [`DeadLetters`] after `rejections_before_dead_letter` attempts, so one
//! poisoned batch cannot block history forever.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use clickhouse::{Client, RowOwned, RowWrite};
use lagwatch_model::{BrokerSample, GroupSample, Notification};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::rows::{AlertRow, BrokerRow, SampleRow};
use super::{client, HistoryError};
use crate::config::ClickHouseConfig;
use crate::metrics::HistoryMetrics;

/// Something to record in history.
#[derive(Debug, Clone)]
pub enum HistoryRecord {
    Sample(GroupSample),
    Alert(Box<Notification>),
    Broker(BrokerSample),
    /// Everything sent before this is part of metrics-topic message
    /// `offset` on `partition` or earlier.
    Checkpoint(Checkpoint),
}

/// A topic position that becomes committable once stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub topic: Arc<str>,
    pub partition: i32,
    /// The next offset to read once everything before it is stored.
    pub offset: i64,
    /// Time (ms) of the latest sample or event up to this position, for
    /// the backlog's age; 0 when unknown.
    pub ts_ms: i64,
}

/// Where batches that ClickHouse keeps refusing go instead of blocking
/// history (the history stage sends them to the dead-letter topic).
pub trait DeadLetters: Send + Sync {
    /// Keeps `rows` (one JSON document each) of `table` elsewhere; returns
    /// whether they are safely kept (then their offsets may be committed).
    fn keep(
        &self,
        table: &str,
        rows: Vec<String>,
        reason: &str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send + '_>>;
}

/// Writes history records to ClickHouse in batches.
pub struct HistoryWriter {
    client: Client,
    config: ClickHouseConfig,
    metrics: HistoryMetrics,
    samples: Vec<SampleRow>,
    sample_bytes: usize,
    alerts: Vec<AlertRow>,
    brokers: Vec<BrokerRow>,
    pending: Vec<Checkpoint>,
    dead_letters: Option<Arc<dyn DeadLetters>>,
}

impl HistoryWriter {
    pub fn new(config: ClickHouseConfig, metrics: HistoryMetrics) -> Self {
        HistoryWriter {
            client: client(&config).with_database(&config.database),
            config,
            metrics,
            samples: Vec::new(),
            sample_bytes: 0,
            alerts: Vec::new(),
            brokers: Vec::new(),
            pending: Vec::new(),
            dead_letters: None,
        }
    }

    /// Sends batches ClickHouse keeps refusing to `dead_letters`.
    pub fn with_dead_letters(mut self, dead_letters: Arc<dyn DeadLetters>) -> Self {
        self.dead_letters = Some(dead_letters);
        self
    }

    /// Runs until every sender of `records` is dropped, then flushes what is
    /// left and returns. Stored checkpoints are sent on `acks`. On
    /// `shutdown`, retries of a failing insert stop; the unwritten rows were
    /// never acknowledged, so they are read again at the next start.
    pub async fn run(
        mut self,
        mut records: mpsc::Receiver<HistoryRecord>,
        acks: mpsc::Sender<Vec<Checkpoint>>,
        shutdown: CancellationToken,
    ) {
        let mut ticker = tokio::time::interval(self.config.flush_interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                record = records.recv() => match record {
                    Some(record) => {
                        self.push(record);
                        if self.samples.len() >= self.config.batch_rows
                            || self.sample_bytes >= self.config.batch_bytes
                        {
                            self.flush_and_ack(&acks, &shutdown).await;
                        }
                    }
                    None => break,
                },
                _ = ticker.tick() => self.flush_and_ack(&acks, &shutdown).await,
            }
        }
        self.flush_and_ack(&acks, &shutdown).await;
        tracing::info!("history writer stopped");
    }

    async fn flush_and_ack(
        &mut self,
        acks: &mpsc::Sender<Vec<Checkpoint>>,
        shutdown: &CancellationToken,
    ) {
        if self.flush(shutdown).await && !self.pending.is_empty() {
            let stored = std::mem::take(&mut self.pending);
            // The consumer may be gone at shutdown; then nothing is committed.
            let _ = acks.send(stored).await;
        }
    }

    fn push(&mut self, record: HistoryRecord) {
        match record {
            HistoryRecord::Sample(sample) => {
                for row in SampleRow::from_sample(&sample) {
                    self.sample_bytes += row.encoded_len();
                    self.samples.push(row);
                }
            }
            HistoryRecord::Alert(alert) => self.alerts.push(AlertRow::from(alert.as_ref())),
            HistoryRecord::Broker(sample) => self.brokers.extend(BrokerRow::from_sample(&sample)),
            HistoryRecord::Checkpoint(checkpoint) => self.pending.push(checkpoint),
        }
        self.metrics
            .rows_buffered
            .set(i64::try_from(self.samples.len() + self.alerts.len()).unwrap_or(i64::MAX));
    }

    /// Writes both buffers, retrying until they are stored or `shutdown`.
    /// Returns whether everything buffered is stored.
    pub async fn flush(&mut self, shutdown: &CancellationToken) -> bool {
        let samples = std::mem::take(&mut self.samples);
        let alerts = std::mem::take(&mut self.alerts);
        let brokers = std::mem::take(&mut self.brokers);
        self.sample_bytes = 0;
        let stored = self
            .write_until_done("lag_samples", &samples, shutdown)
            .await
            && self
                .write_until_done("alert_events", &alerts, shutdown)
                .await
            && self
                .write_until_done("broker_metrics", &brokers, shutdown)
                .await;
        if !stored {
            tracing::warn!(
                samples = samples.len(),
                alerts = alerts.len(),
                "history rows not written before shutdown; their metrics-topic offsets are not committed, so they are re-read at the next start"
            );
            self.pending.clear();
        }
        self.metrics.rows_buffered.set(0);
        stored
    }

    async fn write_until_done<T>(
        &self,
        table: &str,
        rows: &[T],
        shutdown: &CancellationToken,
    ) -> bool
    where
        T: RowOwned + RowWrite + Serialize + Hash,
    {
        if rows.is_empty() {
            return true;
        }
        let token = dedup_token(table, rows);
        let mut delays = retry_delays();
        let mut attempt = 1u32;
        let mut refusals = 0u32;
        loop {
            let outcome = match tokio::time::timeout(
                self.config.insert_timeout,
                self.insert(table, rows, &token),
            )
            .await
            {
                Ok(outcome) => outcome,
                Err(_) => Err(HistoryError::Timeout {
                    url: self.config.url.clone(),
                    after: self.config.insert_timeout,
                }),
            };
            if let Err(error) = &outcome {
                refusals = if error.is_refusal() { refusals + 1 } else { 0 };
                if refusals >= self.config.rejections_before_dead_letter.max(1) {
                    if let Some(dead_letters) = &self.dead_letters {
                        let documents = rows
                            .iter()
                            .filter_map(|row| serde_json::to_string(row).ok())
                            .collect();
                        if dead_letters
                            .keep(table, documents, &error.to_string())
                            .await
                        {
                            self.metrics
                                .dead_letter_rows
                                .with_label_values(&[table])
                                .inc_by(rows.len() as u64);
                            tracing::error!(table, rows = rows.len(), error = %error, "ClickHouse keeps refusing a batch; sent to the dead-letter topic");
                            return true;
                        }
                    }
                }
            }
            match outcome {
                Ok(()) => {
                    self.metrics
                        .rows_written
                        .with_label_values(&[table])
                        .inc_by(rows.len() as u64);
                    return true;
                }
                Err(error) => {
                    self.metrics.write_errors.inc();
                    tracing::warn!(table, rows = rows.len(), attempt, error = %error, "ClickHouse insert failed, retrying");
                    if shutdown.is_cancelled() && attempt >= 3 {
                        return false;
                    }
                    let delay = delays.next().unwrap_or(RETRY_MAX_DELAY);
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = shutdown.cancelled(), if attempt < 3 => {}
                    }
                    attempt += 1;
                }
            }
        }
    }

    async fn insert<T>(&self, table: &str, rows: &[T], token: &str) -> Result<(), HistoryError>
    where
        T: RowOwned + RowWrite + Serialize,
    {
        let fail = |source| HistoryError::ClickHouse {
            url: self.config.url.clone(),
            source,
        };
        let mut insert = self
            .client
            .insert::<T>(table)
            .await
            .map_err(fail)?
            .with_setting("insert_deduplication_token", token)
            .with_setting("deduplicate_blocks_in_dependent_materialized_views", "1");
        for row in rows {
            insert.write(row).await.map_err(fail)?;
        }
        insert.end().await.map_err(fail)
    }
}

/// A token identifying a batch by its content: the same rows give the same
/// token, so ClickHouse drops a retried batch it already stored.
/// Longest base delay between two attempts at one batch; the jitter adds up
/// to as much again, so no wait exceeds 30 s.
const RETRY_MAX_DELAY: Duration = Duration::from_secs(15);

/// Waits between attempts at one batch: 200 ms doubling up to
/// [`RETRY_MAX_DELAY`], each plus a random 0–100 % so several writers (or a
/// writer and the other stages) that lost ClickHouse at the same moment do
/// not retry in step. Never runs out: the writer retries until stored,
/// dead-lettered or shut down.
fn retry_delays() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::new()
        .with_min_delay(Duration::from_millis(200))
        .with_factor(2.0)
        .with_max_delay(RETRY_MAX_DELAY)
        .with_jitter()
        .without_max_times()
        .build()
}

fn dedup_token<T: Hash>(table: &str, rows: &[T]) -> String {
    let mut hasher = DefaultHasher::new();
    table.hash(&mut hasher);
    rows.hash(&mut hasher);
    format!("lagwatch-{table}-{}-{:016x}", rows.len(), hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedup_token_depends_on_content_only() {
        let a = vec![1u64, 2, 3];
        let b = vec![1u64, 2, 4];
        assert_eq!(dedup_token("t", &a), dedup_token("t", &a.clone()));
        assert_ne!(dedup_token("t", &a), dedup_token("t", &b));
        assert_ne!(dedup_token("t", &a), dedup_token("u", &a));
    }

    #[test]
    fn retry_delays_grow_jittered_and_never_run_out() {
        let delays: Vec<Duration> = retry_delays().take(200).collect();
        assert_eq!(delays.len(), 200, "the writer retries until stored");
        let first = delays[0];
        assert!(first >= Duration::from_millis(200) && first < Duration::from_millis(400));
        for delay in &delays {
            assert!(*delay < 2 * RETRY_MAX_DELAY, "{delay:?}");
        }
        let capped = &delays[100..];
        assert!(capped.iter().all(|d| *d >= RETRY_MAX_DELAY));
        assert!(
            capped.iter().any(|d| *d != capped[0]),
            "jitter spreads the capped delays"
        );
    }
}
