//! Committed offsets from the `__consumer_offsets` reader, for profiles
//! with `committed_offsets = "offsets_topic"`: the reader is started on
//! first use and restarted a minute after a failure; whenever it cannot
//! answer (starting, catching up, stopped) the admin API answers instead,
//! and the reason is logged once until it changes.

use std::time::Duration;

use crate::source::CommittedByGroup;

use super::{offsets_topic, KafkaOffsetSource};

/// The offsets-topic reader of a source, or why there is none yet.
#[derive(Default)]
pub(super) struct OffsetsReaderSlot {
    reader: Option<offsets_topic::OffsetsTopicReader>,
    /// The last start or read error, logged once until it changes.
    last_error: Option<String>,
    /// When starting the reader may be tried again.
    retry_at: Option<std::time::Instant>,
}

/// How long a read waits for the offsets-topic reader to catch up before
/// the admin API answers instead.
const OFFSETS_READER_WAIT: Duration = Duration::from_secs(1);

/// How long after a failed start the offsets-topic reader is tried again.
const OFFSETS_READER_RETRY: Duration = Duration::from_secs(60);

impl OffsetsReaderSlot {
    /// Logs a reader problem once until it changes; the admin API answers.
    fn note_error(&mut self, bootstrap: &str, error: String) {
        if self.last_error.as_deref() != Some(error.as_str()) {
            tracing::warn!(
                bootstrap,
                error = %error,
                "committed offsets from the admin API this cycle; __consumer_offsets unavailable"
            );
            self.last_error = Some(error);
        }
    }

    /// Notes, once, that the reader is still catching up (normal at start).
    fn note_catching_up(&mut self, bootstrap: &str, behind: i64) {
        const CATCHING_UP: &str = "catching up";
        if self.last_error.as_deref() != Some(CATCHING_UP) {
            tracing::info!(
                bootstrap,
                behind,
                "committed offsets from the admin API while the __consumer_offsets reader catches up"
            );
            self.last_error = Some(CATCHING_UP.to_string());
        }
    }
}

impl KafkaOffsetSource {
    /// Committed offsets from the `__consumer_offsets` reader (started on
    /// first use, restarted a minute after a failure); `None` when the
    /// reader cannot answer this cycle, so the admin API answers instead.
    pub(super) fn committed_from_offsets_topic(
        &self,
        groups: &[String],
    ) -> Option<CommittedByGroup> {
        let mut slot = self.offsets_reader.lock().ok()?;
        let now = std::time::Instant::now();
        if slot.reader.is_none() && slot.retry_at.is_none_or(|at| now >= at) {
            match offsets_topic::OffsetsTopicReader::start(
                &self.cluster.client_config(),
                self,
                self.timeout,
            ) {
                Ok(reader) => {
                    slot.reader = Some(reader);
                    slot.last_error = None;
                }
                Err(error) => {
                    slot.retry_at = Some(now + OFFSETS_READER_RETRY);
                    slot.note_error(&self.cluster.bootstrap_servers, error.to_string());
                    return None;
                }
            }
        }
        let reader = slot.reader.as_ref()?;
        match reader.committed_offsets(self, groups, OFFSETS_READER_WAIT.min(self.timeout)) {
            Ok(answer) => {
                if slot.last_error.take().is_some() {
                    tracing::info!(
                        bootstrap = %self.cluster.bootstrap_servers,
                        "committed offsets are read from __consumer_offsets again"
                    );
                }
                drop(slot);
                let mut all: CommittedByGroup = answer
                    .offsets
                    .into_iter()
                    .map(|(group, list)| (group, Ok(list)))
                    .collect();
                if !answer.unsure.is_empty() {
                    tracing::debug!(
                        groups = answer.unsure.len(),
                        "groups behind an open transaction in __consumer_offsets: OffsetFetch"
                    );
                    all.extend(self.calls.committed_offsets(&answer.unsure));
                }
                Some(all)
            }
            Err(error) => {
                match error {
                    offsets_topic::OffsetsTopicError::Behind { behind, .. } => {
                        slot.note_catching_up(&self.cluster.bootstrap_servers, behind);
                    }
                    offsets_topic::OffsetsTopicError::Lookup(_) => {
                        slot.note_error(&self.cluster.bootstrap_servers, error.to_string());
                    }
                    offsets_topic::OffsetsTopicError::Reader(_) => {
                        // A stopped reader is replaced after the retry delay.
                        slot.reader = None;
                        slot.retry_at = Some(now + OFFSETS_READER_RETRY);
                        slot.note_error(&self.cluster.bootstrap_servers, error.to_string());
                    }
                }
                None
            }
        }
    }
}
