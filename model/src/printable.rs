//! Names shown to people, with control characters made visible.
//!
//! Consumer group ids come from Kafka and may hold any character, a CRLF
//! included. In a one-line summary (an e-mail subject, a Slack or PagerDuty
//! title) or a `name: value` line of a mail body, a raw line break would let
//! a group's name draw lines of its own (`Runbook: http://evil`), so every
//! control character is shown escaped (`\r`, `\n`, `\u{1b}`). Everything
//! else, quotes and unicode included, is shown as it is.

use std::borrow::Cow;

/// `text` with its control characters escaped; borrowed when it has none.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut shown = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            shown.extend(c.escape_default());
        } else {
            shown.push(c);
        }
    }
    Cow::Owned(shown)
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn control_characters_are_shown_escaped_and_the_rest_as_is() {
        assert_eq!(
            printable("evil\r\nBcc: attacker@evil.example"),
            "evil\\r\\nBcc: attacker@evil.example"
        );
        assert_eq!(printable("a\u{1b}[31mred\u{7}"), "a\\u{1b}[31mred\\u{7}");
        let plain = "o'brien \\ \" ünï 💥";
        assert!(matches!(printable(plain), std::borrow::Cow::Borrowed(p) if p == plain));
    }
}
