//! The webhook body template: JSON text with `{{field}}` placeholders.
//!
//! Text fields (`summary`, `state`, `cluster`, ...) are inserted
//! JSON-escaped without quotes, so they belong inside a JSON string:
//! `"text": "{{summary}}"`. Numbers (`max_lag`, `threshold`, ...) are
//! plain digits. `partitions_json` and `alert_json` are complete JSON values
//! (an array, an object) and go outside quotes. There are no conditionals,
//! loops or filters, and no way to write a literal `{{`.
//!
//! A template is checked when the sink is built: unknown fields, an
//! unclosed `{{`, or a result that is not valid JSON (for instance a text
//! field outside quotes) is a configuration error.

use std::fmt::Write as _;

use lagwatch_model::{AlertEvent, AlertState, LaggingPartition, Notification};

use crate::SinkError;

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pieces: Vec<Piece>,
}

#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(String),
    Field(Field),
}

/// The placeholders a template may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Summary,
    State,
    Rule,
    Fingerprint,
    Team,
    Cluster,
    ConsumerGroup,
    MonitorId,
    MaxLag,
    TotalLag,
    Threshold,
    TsMs,
    PartitionsJson,
    AlertJson,
    Status,
}

impl Field {
    const ALL: [(&'static str, Field); 15] = [
        ("summary", Field::Summary),
        ("state", Field::State),
        ("rule", Field::Rule),
        ("fingerprint", Field::Fingerprint),
        ("team", Field::Team),
        ("cluster", Field::Cluster),
        ("consumer_group", Field::ConsumerGroup),
        ("monitor_id", Field::MonitorId),
        ("max_lag", Field::MaxLag),
        ("total_lag", Field::TotalLag),
        ("threshold", Field::Threshold),
        ("ts_ms", Field::TsMs),
        ("partitions_json", Field::PartitionsJson),
        ("alert_json", Field::AlertJson),
        ("status", Field::Status),
    ];

    fn parse(name: &str) -> Option<Field> {
        Field::ALL
            .iter()
            .find(|(known, _)| *known == name)
            .map(|(_, field)| *field)
    }

    fn names() -> String {
        Field::ALL
            .iter()
            .map(|(name, _)| *name)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Template {
    /// Parses `text` and checks that it renders to valid JSON.
    pub fn parse(text: &str) -> Result<Self, SinkError> {
        let mut pieces = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 2..];
            let Some(close) = after.find("}}") else {
                return Err(SinkError::Config(format!(
                    "webhook template: `{{{{` at byte {} is not closed by `}}}}`",
                    text.len() - rest.len() + open
                )));
            };
            let name = after[..close].trim();
            let field = Field::parse(name).ok_or_else(|| {
                SinkError::Config(format!(
                    "webhook template: unknown field `{name}` (known: {})",
                    Field::names()
                ))
            })?;
            pieces.push(Piece::Field(field));
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        let template = Template { pieces };
        let sample = template.render(&Notification::new(sample_alert()))?;
        serde_json::from_str::<serde_json::Value>(&sample).map_err(|e| {
            SinkError::Config(format!(
                "webhook template does not render to valid JSON ({e}); text fields go inside quotes, \
                 partitions_json and alert_json outside"
            ))
        })?;
        Ok(template)
    }

    /// The body for `notification`.
    pub fn render(&self, notification: &Notification) -> Result<String, SinkError> {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Field(field) => render_field(&mut out, *field, notification)?,
            }
        }
        Ok(out)
    }
}

fn render_field(
    out: &mut String,
    field: Field,
    notification: &Notification,
) -> Result<(), SinkError> {
    let alert = &notification.alert;
    match field {
        Field::Summary => push_escaped(out, &notification.summary()),
        Field::State => push_escaped(out, alert.state.as_str()),
        Field::Rule => push_escaped(out, &alert.rule.to_string()),
        Field::Fingerprint => push_escaped(out, &alert.fingerprint),
        Field::Team => push_escaped(out, &alert.team),
        Field::Cluster => push_escaped(out, &alert.cluster),
        Field::ConsumerGroup => push_escaped(out, &alert.consumer_group),
        Field::MonitorId => push_number(out, alert.monitor_id),
        Field::MaxLag => push_number(out, alert.max_lag),
        Field::TotalLag => push_number(out, alert.total_lag),
        Field::Threshold => push_number(out, alert.threshold),
        Field::TsMs => push_number(out, alert.ts_ms),
        Field::Status => push_escaped(
            out,
            &crate::status_word::status_word(alert).unwrap_or_default(),
        ),
        Field::PartitionsJson => out.push_str(
            &serde_json::to_string(&alert.partitions)
                .map_err(|e| SinkError::Build(format!("webhook partitions: {e}")))?,
        ),
        Field::AlertJson => out.push_str(
            &serde_json::to_string(notification)
                .map_err(|e| SinkError::Build(format!("webhook alert: {e}")))?,
        ),
    }
    Ok(())
}

fn push_number(out: &mut String, value: i64) {
    let _ = write!(out, "{value}");
}

/// Appends `text` escaped for the inside of a JSON string.
fn push_escaped(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
}

/// An alert that exercises every field, for checking templates.
fn sample_alert() -> AlertEvent {
    AlertEvent {
        fingerprint: "lag_threshold/1".into(),
        rule: lagwatch_model::Rule::LagThreshold,
        state: AlertState::Firing,
        monitor_id: 1,
        team: "team".into(),
        cluster: "cluster".into(),
        consumer_group: "group \"quoted\"".into(),
        max_lag: 2,
        total_lag: 3,
        threshold: 1,
        ts_ms: 0,
        partitions: vec![LaggingPartition {
            topic: "topic".into(),
            partition: 0,
            lag: 2,
        }],
        group_status: Some("stall".into()),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert() -> Notification {
        Notification::new(AlertEvent {
            consumer_group: "bill\"ing\\\n\u{1}<x>".into(),
            ..sample_alert()
        })
    }

    #[test]
    fn renders_fields_with_json_escaping() {
        let template = Template::parse(
            r#"{"text": "{{summary}}", "group": "{{ consumer_group }}", "lag": {{max_lag}}, "threshold": {{threshold}}, "state": "{{state}}", "parts": {{partitions_json}}}"#,
        )
        .expect("template");
        let body = template.render(&alert()).expect("render");
        let value: serde_json::Value = serde_json::from_str(&body).expect("valid JSON");
        assert_eq!(value["group"], "bill\"ing\\\n\u{1}<x>");
        assert_eq!(value["lag"], 2);
        assert_eq!(value["threshold"], 1);
        assert_eq!(value["state"], "firing");
        assert_eq!(value["parts"][0]["topic"], "topic");
        assert!(value["text"]
            .as_str()
            .expect("text")
            .starts_with("[FIRING] lag of group bill\"ing"));
        assert!(body.contains(r#"bill\"ing\\\n\u0001<x>"#), "{body}");
    }

    #[test]
    fn a_group_name_cannot_break_out_of_its_string() {
        let template = Template::parse(r#"{"group": "{{consumer_group}}", "x": 1}"#).expect("ok");
        let mut hostile = alert();
        hostile.alert.consumer_group = r#"", "x": 2, "y": ""#.into();
        let body = template.render(&hostile).expect("render");
        let value: serde_json::Value = serde_json::from_str(&body).expect("valid JSON");
        assert_eq!(value["x"], 1);
        assert_eq!(value["group"], r#"", "x": 2, "y": ""#);
    }

    #[test]
    fn status_field_is_the_upper_case_word() {
        let template = Template::parse(r#"{"status": "{{status}}"}"#).expect("ok");
        let mut alert = alert();
        alert.alert.status = Some("stop".into());
        assert_eq!(
            template.render(&alert).expect("render"),
            r#"{"status": "STOP"}"#
        );
        alert.alert.status = None;
        alert.alert.group_status = None;
        assert_eq!(
            template.render(&alert).expect("render"),
            r#"{"status": ""}"#
        );
    }

    #[test]
    fn whole_alert_field() {
        let template = Template::parse(r#"{"alert": {{alert_json}}}"#).expect("ok");
        let body = template.render(&alert()).expect("render");
        let value: serde_json::Value = serde_json::from_str(&body).expect("valid JSON");
        assert_eq!(value["alert"]["fingerprint"], "lag_threshold/1");
    }

    #[test]
    fn unknown_field_is_named() {
        let error = Template::parse(r#"{"a": "{{sumary}}"}"#)
            .expect_err("unknown")
            .to_string();
        assert!(
            error.contains("sumary") && error.contains("summary"),
            "{error}"
        );
    }

    #[test]
    fn unclosed_placeholder() {
        let error = Template::parse(r#"{"a": "{{summary"}"#)
            .expect_err("unclosed")
            .to_string();
        assert!(error.contains("not closed"), "{error}");
    }

    #[test]
    fn text_field_outside_quotes_is_not_json() {
        let error = Template::parse(r#"{"a": {{summary}}}"#)
            .expect_err("invalid")
            .to_string();
        assert!(error.contains("valid JSON"), "{error}");
    }

    #[test]
    fn text_without_placeholders() {
        let template = Template::parse(r#"{"fixed": true}"#).expect("ok");
        assert_eq!(
            template.render(&alert()).expect("render"),
            r#"{"fixed": true}"#
        );
    }
}
