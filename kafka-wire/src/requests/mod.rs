//! One module per Kafka API: how its requests are built (version by version),
//! routed (any broker, the group coordinator, the partition leader) and
//! retried, and how its answers map to this crate's types.

pub(crate) mod describe_groups;
pub(crate) mod find_coordinator;
pub(crate) mod list_groups;
pub(crate) mod list_offsets;
pub(crate) mod metadata;
pub(crate) mod offset_fetch;
pub(crate) mod routing;

use std::time::Duration;

use tokio::time::Instant;

/// Attempts of one call for the retriable errors (coordinator moved or
/// loading, leader moved, connection lost), all within the call's deadline.
pub(crate) const MAX_ATTEMPTS: u32 = 4;

/// Sleeps before retry `attempt` (1-based): 100 ms, 200 ms, 400 ms...
/// Returns false, without sleeping, when the sleep would pass `deadline`.
pub(crate) async fn backoff(attempt: u32, deadline: Instant) -> bool {
    let wait = Duration::from_millis(100u64 << attempt.saturating_sub(1).min(4));
    if Instant::now() + wait >= deadline {
        return false;
    }
    tokio::time::sleep(wait).await;
    true
}

/// Group state names as Kafka's Java admin prints them (`Stable`,
/// `PreparingRebalance`...), whatever the case the broker used; other names unchanged.
pub(crate) fn canonical_state(state: &str) -> String {
    const KNOWN: [&str; 9] = [
        "Stable",
        "Empty",
        "PreparingRebalance",
        "CompletingRebalance",
        "Dead",
        "Assigning",
        "Reconciling",
        "NotReady",
        "Unknown",
    ];
    let squashed: String = state.chars().filter(|c| *c != '_').collect();
    KNOWN
        .iter()
        .find(|k| k.eq_ignore_ascii_case(&squashed))
        .map_or_else(|| state.to_string(), |k| (*k).to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::canonical_state;

    #[test]
    fn states_are_canonical() {
        assert_eq!(canonical_state("STABLE"), "Stable");
        assert_eq!(
            canonical_state("COMPLETING_REBALANCE"),
            "CompletingRebalance"
        );
        assert_eq!(canonical_state("PreparingRebalance"), "PreparingRebalance");
        assert_eq!(canonical_state("assigning"), "Assigning");
        assert_eq!(canonical_state("Weird"), "Weird");
    }
}
