//! Values kept between sampling cycles and refreshed in rotation: the group
//! descriptions and the log start offsets of the Kafka source. Each cycle
//! asks the cluster only for the keys whose cached value may not be reused,
//! and records what it got back.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;

/// The latest good value of each key, and how many cycles have begun.
#[derive(Debug)]
pub(super) struct RotationCache<K, V> {
    cycles: u64,
    known: HashMap<K, V>,
}

impl<K, V> Default for RotationCache<K, V> {
    fn default() -> Self {
        RotationCache {
            cycles: 0,
            known: HashMap::new(),
        }
    }
}

/// What one cycle takes from the cache and what it must ask for.
#[derive(Debug)]
pub(super) struct CycleStart<K, V> {
    /// The cycle's number, from 0.
    pub number: u64,
    /// Cached values the cycle reuses.
    pub reused: HashMap<K, V>,
    /// Keys to ask the cluster about, in the order they were wanted.
    pub asked: Vec<K>,
}

impl<K: Clone, V> CycleStart<K, V> {
    /// A cycle that reuses nothing (the cache is unavailable).
    pub fn asking_all(wanted: &[K]) -> Self {
        CycleStart {
            number: 0,
            reused: HashMap::new(),
            asked: wanted.to_vec(),
        }
    }
}

impl<K: Eq + Hash + Clone, V: Clone> RotationCache<K, V> {
    /// Begins a cycle over `wanted`: forgets the keys no longer wanted and
    /// reuses the cached values `reuse(cycle, key, value)` accepts; every
    /// other wanted key is to be asked for.
    pub fn begin(&mut self, wanted: &[K], reuse: impl Fn(u64, &K, &V) -> bool) -> CycleStart<K, V> {
        let number = self.cycles;
        self.cycles += 1;
        let keep: HashSet<&K> = wanted.iter().collect();
        self.known.retain(|key, _| keep.contains(key));
        let mut reused = HashMap::new();
        let mut asked = Vec::new();
        for key in wanted {
            match self.known.get(key) {
                Some(value) if reuse(number, key, value) => {
                    reused.insert(key.clone(), value.clone());
                }
                _ => asked.push(key.clone()),
            }
        }
        CycleStart {
            number,
            reused,
            asked,
        }
    }

    /// Records a cycle's answers: a value replaces the cached one, a
    /// failure forgets it (asked again next cycle).
    pub fn record<E>(&mut self, answers: &HashMap<K, Result<V, E>>) {
        for (key, answer) in answers {
            match answer {
                Ok(value) => {
                    self.known.insert(key.clone(), value.clone());
                }
                Err(_) => {
                    self.known.remove(key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_what_the_rule_accepts_and_forgets_failures_and_unwanted_keys() {
        let mut cache: RotationCache<&str, i64> = RotationCache::default();
        let first = cache.begin(&["a", "b", "c"], |_, _, _| true);
        assert_eq!((first.number, first.asked), (0, vec!["a", "b", "c"]));
        cache.record(&HashMap::from([
            ("a", Ok(1)),
            ("b", Ok(2)),
            ("c", Err("timeout")),
        ]));
        // b is refused by the rule, c failed last time, d is new.
        let second = cache.begin(&["a", "b", "c", "d"], |cycle, key, _| {
            cycle == 1 && *key != "b"
        });
        assert_eq!(second.number, 1);
        assert_eq!(second.reused, HashMap::from([("a", 1)]));
        assert_eq!(second.asked, vec!["b", "c", "d"]);
        // Keys no longer wanted are forgotten.
        let third = cache.begin(&["b"], |_, _, _| true);
        assert_eq!(third.reused, HashMap::from([("b", 2)]));
        let fourth = cache.begin(&["a"], |_, _, _| true);
        assert_eq!(fourth.asked, vec!["a"]);
    }
}
