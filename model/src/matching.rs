//! Which groups and topics a monitor covers: exact names, lists or regular
//! expressions.
//!
//! Patterns are anchored (a pattern must match the whole name) and compiled
//! with a size limit, so a team cannot register a pattern that eats the
//! collector's memory. Compiled patterns are cached by text.

use std::collections::HashMap;

use regex::{Regex, RegexBuilder};

use crate::monitor::{GroupMatch, Monitor};

/// Compiled size limit of one pattern.
const PATTERN_SIZE_LIMIT: usize = 256 * 1024;
/// Longest accepted pattern text.
pub const MAX_PATTERN_LEN: usize = 1_000;

/// `pattern` wrapped as `^(?:pattern)$`, after checking that the bare
/// pattern compiles on its own. Without that check a pattern could close
/// the wrapper's group and escape its anchors: `a)|(?:.*` wraps to
/// `^(?:a)|(?:.*)$`, which matches every name. A pattern that compiles
/// alone has balanced groups, so the wrapper encloses all of it. Used for
/// the collector's matching and for ClickHouse `match()` alike.
pub fn anchored_pattern(pattern: &str) -> Result<String, String> {
    if pattern.len() > MAX_PATTERN_LEN {
        return Err(format!(
            "pattern is longer than {MAX_PATTERN_LEN} characters"
        ));
    }
    build(pattern)?;
    Ok(format!("^(?:{pattern})$"))
}

/// Compiles `pattern` anchored at both ends, with size limits.
pub fn compile_pattern(pattern: &str) -> Result<Regex, String> {
    build(&anchored_pattern(pattern)?)
}

fn build(pattern: &str) -> Result<Regex, String> {
    RegexBuilder::new(pattern)
        .size_limit(PATTERN_SIZE_LIMIT)
        .dfa_size_limit(PATTERN_SIZE_LIMIT)
        .build()
        .map_err(|e| e.to_string())
}

/// Matches monitors against group and topic names, caching compiled
/// patterns. An invalid pattern (which the store refuses to save) matches
/// nothing.
#[derive(Debug, Default)]
pub struct Matcher {
    cache: HashMap<String, Option<Regex>>,
}

impl Matcher {
    pub fn new() -> Self {
        Matcher::default()
    }

    fn pattern(&mut self, pattern: &str) -> Option<&Regex> {
        self.cache
            .entry(pattern.to_string())
            .or_insert_with(|| compile_pattern(pattern).ok())
            .as_ref()
    }

    /// Whether `monitor` covers consumer group `group`.
    pub fn covers_group(&mut self, monitor: &Monitor, group: &str) -> bool {
        match monitor.group_match {
            GroupMatch::Exact => monitor.consumer_group == group,
            GroupMatch::Regex => self
                .pattern(&monitor.consumer_group)
                .is_some_and(|re| re.is_match(group)),
        }
    }

    /// Whether `monitor` covers `topic`: listed, matching the topic
    /// pattern, or every topic when neither is given.
    pub fn covers_topic(&mut self, monitor: &Monitor, topic: &str) -> bool {
        if monitor.topics.is_empty() && monitor.topic_regex.is_none() {
            return true;
        }
        monitor.topics.iter().any(|t| t == topic)
            || monitor
                .topic_regex
                .as_deref()
                .and_then(|p| self.pattern(p))
                .is_some_and(|re| re.is_match(topic))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Isolation;

    fn monitor(
        group: &str,
        group_match: GroupMatch,
        topics: &[&str],
        topic_regex: Option<&str>,
    ) -> Monitor {
        Monitor {
            id: 1,
            team: "t".into(),
            cluster: "c".into(),
            consumer_group: group.into(),
            group_match,
            topics: topics.iter().map(|t| t.to_string()).collect(),
            topic_regex: topic_regex.map(str::to_string),
            lag_threshold: 1,
            for_secs: 0,
            emails: vec![],
            isolation: Isolation::ReadUncommitted,
            time_lag: Default::default(),
            alerting: Default::default(),
        }
    }

    #[test]
    fn group_patterns_are_anchored() {
        let mut matcher = Matcher::new();
        let m = monitor("billing-.*", GroupMatch::Regex, &[], None);
        assert!(matcher.covers_group(&m, "billing-eu"));
        assert!(!matcher.covers_group(&m, "old-billing-eu"));
        let exact = monitor("billing-.*", GroupMatch::Exact, &[], None);
        assert!(!matcher.covers_group(&exact, "billing-eu"));
        assert!(matcher.covers_group(&exact, "billing-.*"));
    }

    #[test]
    fn topics_by_list_regex_or_all() {
        let mut matcher = Matcher::new();
        assert!(matcher.covers_topic(&monitor("g", GroupMatch::Exact, &[], None), "anything"));
        let both = monitor("g", GroupMatch::Exact, &["audit"], Some("orders\\..*"));
        assert!(matcher.covers_topic(&both, "audit"));
        assert!(matcher.covers_topic(&both, "orders.eu"));
        assert!(!matcher.covers_topic(&both, "payments"));
    }

    #[test]
    fn patterns_cannot_escape_their_anchors() {
        // Each compiles once wrapped in ^(?:..)$ but not alone; wrapped,
        // the first would match everything.
        for escape in [
            "a)|(?:.*",
            "x)|(.*",
            "a)|.*|(?:b",
            ")|(",
            "a)(?s:.*",
            "billing)|(?:",
        ] {
            let error = compile_pattern(escape).expect_err(escape);
            assert!(!error.is_empty(), "{escape}");
            assert!(anchored_pattern(escape).is_err(), "{escape}");
            let mut matcher = Matcher::new();
            let m = monitor(escape, GroupMatch::Regex, &[], None);
            assert!(!matcher.covers_group(&m, "payments"), "{escape}");
            assert!(!matcher.covers_topic(&monitor("g", GroupMatch::Exact, &[], Some(escape)), "t"));
        }
        // (?x) comments cannot eat the closing anchor either: refused.
        assert!(compile_pattern("(?x)a#").is_err());
        // Honest patterns with groups and alternations stay anchored.
        let re = compile_pattern("(a|b)|c").expect("valid");
        assert!(re.is_match("a") && re.is_match("c") && !re.is_match("ac"));
        assert_eq!(anchored_pattern("a|b").as_deref(), Ok("^(?:a|b)$"));
    }

    #[test]
    fn invalid_or_huge_patterns_are_refused() {
        assert!(compile_pattern("(unclosed").is_err());
        assert!(compile_pattern(&"a".repeat(MAX_PATTERN_LEN + 1)).is_err());
        assert!(compile_pattern("(a{1000}){1000}").is_err(), "size limit");
        let mut matcher = Matcher::new();
        let broken = monitor("(unclosed", GroupMatch::Regex, &[], None);
        assert!(!matcher.covers_group(&broken, "(unclosed"));
    }
}
