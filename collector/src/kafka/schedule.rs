//! Which groups and partitions a cycle asks the brokers about again: settled
//! groups are described, and log start offsets read, in rotation — each by
//! a fixed slot from a stable hash of its name — so every cycle is equally
//! cheap and the same in every process.

use crate::source::GroupDescription;

use super::rotation::RotationCache;

/// Every how many cycles a settled group (`Stable` or `Empty`) is described
/// again when the group listing gives no state for it. Groups that are new,
/// failed, or not settled (e.g. rebalancing or `Dead`) are described every
/// cycle. DescribeConsumerGroups is the costliest call of a cycle for the
/// brokers after the committed offsets, while a settled group's state and
/// member count change rarely, so settled groups are refreshed in rotation:
/// each cycle re-describes the share of them whose slot ([`refresh_slot`])
/// comes up, which keeps every cycle equally cheap. Offsets and lag are
/// read every cycle.
pub(super) const DESCRIBE_EVERY: u64 = 3;

/// The rotation period of settled groups whose state the cluster's group
/// listing (one ListGroups request per broker, every cycle) reports: a
/// changed state is seen in the next cycle and makes the group described at
/// once, so only a member count that changed without a visible state change
/// can be up to `DESCRIBE_LISTED_EVERY - 1` cycles old.
pub(super) const DESCRIBE_LISTED_EVERY: u64 = 6;

/// Every how many cycles a partition's log start offset is read again.
pub(super) const LOG_START_EVERY: u64 = 3;

/// The cycle slot (`0..period`) in which a settled group is described
/// again: a fixed hash of its name, so the rotation is the same in every
/// process and does not depend on the order of the monitors.
pub(super) fn refresh_slot(group: &str, period: u64) -> u64 {
    fnv1a(FNV_OFFSET, group.as_bytes()) % period
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a over `bytes`, continuing from `hash`: stable across releases,
/// unlike the std hasher.
fn fnv1a(hash: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(hash, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Log start offsets are kept between cycles. The log start of a partition
/// moves only when retention deletes a segment or records are deleted, so
/// each partition's is read again every [`LOG_START_EVERY`] cycles, a third
/// of the partitions per cycle (slot [`refresh_slot_of_partition`]);
/// partitions never read, or whose last read failed, are read every cycle.
/// A log start (and the "committed below log start" flag built on it) may
/// therefore lag by up to `LOG_START_EVERY - 1` cycles; the log-start lookup
/// of a cycle asks about a third of the partitions.
pub(super) type LogStartCache = RotationCache<(String, i32), i64>;

/// Group descriptions kept between cycles (see [`DESCRIBE_EVERY`]).
pub(super) type DescriptionCache = RotationCache<String, GroupDescription>;

/// The rotation slot of a partition's log start (see [`LogStartCache`]).
pub(super) fn refresh_slot_of_partition((topic, partition): &(String, i32)) -> u64 {
    fnv1a(
        fnv1a(FNV_OFFSET, topic.as_bytes()),
        &partition.to_le_bytes(),
    ) % LOG_START_EVERY
}

/// Whether a described state is stable enough to reuse for a few cycles.
pub(super) fn is_settled(state: &str) -> bool {
    matches!(state, "Stable" | "Empty")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settled_groups_and_log_starts_are_refreshed_in_even_thirds() {
        let mut per_slot = [0usize; DESCRIBE_EVERY as usize];
        for g in 0..3_000 {
            let slot = refresh_slot(&format!("bench_2000g_group_{g}"), DESCRIBE_EVERY);
            per_slot[usize::try_from(slot).expect("small")] += 1;
        }
        assert!(
            per_slot.iter().all(|n| (900..=1_100).contains(n)),
            "{per_slot:?}"
        );
        // The slot is a property of the name alone.
        assert_eq!(
            refresh_slot("orders", DESCRIBE_LISTED_EVERY),
            refresh_slot("orders", DESCRIBE_LISTED_EVERY)
        );
        let mut per_slot = [0usize; LOG_START_EVERY as usize];
        for t in 0..300 {
            for p in 0..10 {
                let slot = refresh_slot_of_partition(&(format!("topic_{t}"), p));
                per_slot[usize::try_from(slot).expect("small")] += 1;
            }
        }
        assert!(
            per_slot.iter().all(|n| (900..=1_100).contains(n)),
            "partitions: {per_slot:?}"
        );
    }
}
