//! Rule 1 — offset lag above a threshold for a duration.
//!
//! The alert becomes *pending* at the first sample whose lag exceeds the
//! threshold, *fires* once the lag has stayed above it for at least `for_ms`
//! (measured between sample times), and *resolves* at the first sample back
//! at or below the threshold. A sample without a known lag (cluster
//! unreachable, no committed offset) changes nothing: missing data neither
//! fires nor resolves an alert.

/// Parameters of the threshold rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThresholdRule {
    /// Lag strictly above this breaches.
    pub threshold: i64,
    /// How long the breach must last before firing, in milliseconds.
    pub for_ms: i64,
}

/// What an observation did to the alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Nothing to notify (named so it never shadows `Option::None`).
    Unchanged,
    /// The alert started firing.
    Fire,
    /// The firing alert recovered.
    Resolve,
}

/// Per-alert state of the threshold rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ThresholdState {
    /// Sample time of the first breaching sample of the current breach.
    pub breach_since_ms: Option<i64>,
    /// Whether the alert is firing.
    pub firing: bool,
}

impl ThresholdState {
    /// Feeds one observation of the watched lag at sample time `ts_ms`.
    pub fn observe(&mut self, rule: &ThresholdRule, lag: Option<i64>, ts_ms: i64) -> Transition {
        let Some(lag) = lag else {
            return Transition::Unchanged;
        };
        if lag > rule.threshold {
            let since = *self.breach_since_ms.get_or_insert(ts_ms);
            if !self.firing && ts_ms.saturating_sub(since) >= rule.for_ms {
                self.firing = true;
                return Transition::Fire;
            }
            Transition::Unchanged
        } else {
            self.breach_since_ms = None;
            if self.firing {
                self.firing = false;
                return Transition::Resolve;
            }
            Transition::Unchanged
        }
    }

    /// Whether the rule is breached but still waiting out `for`.
    pub fn is_pending(&self) -> bool {
        self.breach_since_ms.is_some() && !self.firing
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Transition::{Fire, Resolve, Unchanged as Quiet};

    /// Numbered cases: (description, for_ms, [(ts, lag, expected)]).
    #[allow(clippy::type_complexity)]
    const CASES: &[(&str, i64, &[(i64, Option<i64>, Transition)])] = &[
        (
            "1 fires at once with for=0",
            0,
            &[(0, Some(900), Fire), (10, Some(900), Quiet)],
        ),
        (
            "2 equal to threshold is not a breach",
            0,
            &[(0, Some(500), Quiet)],
        ),
        (
            "3 waits out for, then fires once",
            30,
            &[
                (0, Some(900), Quiet),
                (20, Some(901), Quiet),
                (30, Some(902), Fire),
                (40, Some(903), Quiet),
            ],
        ),
        (
            "4 a dip below resets the pending timer",
            30,
            &[
                (0, Some(900), Quiet),
                (20, Some(100), Quiet),
                (40, Some(900), Quiet),
                (70, Some(900), Fire),
            ],
        ),
        (
            "5 resolves once on recovery",
            0,
            &[
                (0, Some(900), Fire),
                (10, Some(0), Resolve),
                (20, Some(0), Quiet),
            ],
        ),
        (
            "6 missing data neither fires nor resolves",
            0,
            &[
                (0, None, Quiet),
                (5, Some(900), Fire),
                (10, None, Quiet),
                (15, Some(1), Resolve),
            ],
        ),
        (
            "7 refires after a resolve",
            0,
            &[
                (0, Some(900), Fire),
                (10, Some(0), Resolve),
                (20, Some(900), Fire),
            ],
        ),
    ];

    #[test]
    fn table() {
        for (name, for_ms, steps) in CASES {
            let rule = ThresholdRule {
                threshold: 500,
                for_ms: *for_ms,
            };
            let mut state = ThresholdState::default();
            for (ts, lag, expected) in steps.iter() {
                assert_eq!(
                    state.observe(&rule, *lag, *ts),
                    *expected,
                    "case {name} at ts {ts}"
                );
            }
        }
    }

    #[test]
    fn pending_is_visible() {
        let rule = ThresholdRule {
            threshold: 1,
            for_ms: 100,
        };
        let mut state = ThresholdState::default();
        state.observe(&rule, Some(5), 0);
        assert!(state.is_pending());
        state.observe(&rule, Some(5), 100);
        assert!(!state.is_pending());
        assert!(state.firing);
    }
}
