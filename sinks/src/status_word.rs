//! The consumer's window status as every notification shows it.
//!
//! The evaluator puts the group's Burrow-style status on each event of a
//! monitored group (`group_status`), and the `lag_status` rule's own status
//! on its events (`status`); people read either as one upper-case word
//! (`STALL`), whatever destination the notification goes to.

use lagwatch_model::AlertEvent;

/// The group's status word (`OK`, `WARN`, `STALL`, `STOP`, `REWIND`,
/// `UNKNOWN`), when the event carries one: the `lag_status` rule's status,
/// else the group status at the sample.
pub(crate) fn status_word(alert: &AlertEvent) -> Option<String> {
    alert
        .status
        .as_deref()
        .or(alert.group_status.as_deref())
        .filter(|s| !s.is_empty())
        .map(str::to_uppercase)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rules_status_wins_and_words_are_upper_case() {
        let mut alert = AlertEvent {
            group_status: Some("warn".into()),
            ..Default::default()
        };
        assert_eq!(status_word(&alert).as_deref(), Some("WARN"));
        alert.status = Some("stop".into());
        assert_eq!(status_word(&alert).as_deref(), Some("STOP"));
        assert_eq!(status_word(&AlertEvent::default()), None);
    }
}
