//! The Prometheus text exposition format (0.0.4), as served by the
//! Prometheus JMX exporter, and its mapping to broker metrics.
//!
//! The parser is line-tolerant: a malformed line is counted and reported,
//! the rest of the page is still used.

use std::collections::HashMap;

use super::scrape::{Family, Scrape};
use super::spec::PrometheusSpec;

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct PromSample {
    pub name: String,
    pub labels: Labels,
    pub value: f64,
    /// Milliseconds since the epoch, when the line carries one.
    pub timestamp_ms: Option<i64>,
}

impl PromSample {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A parsed page: the samples and the lines that could not be parsed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Exposition {
    pub samples: Vec<PromSample>,
    /// `(line number, reason)` of each malformed line.
    pub errors: Vec<(usize, String)>,
}

/// Parses a page in text format 0.0.4. `# HELP`, `# TYPE` and other
/// comments are skipped (the mapping works on series names alone).
pub fn parse(text: &str) -> Exposition {
    let mut page = Exposition::default();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match parse_line(line) {
            Ok(sample) => page.samples.push(sample),
            Err(reason) => page.errors.push((index + 1, reason)),
        }
    }
    page
}

fn parse_line(line: &str) -> Result<PromSample, String> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .ok_or("no value")?;
    let name = &line[..name_end];
    if !is_metric_name(name) {
        return Err(format!("bad metric name {name:?}"));
    }
    // Blanks may separate the name from the label set.
    let mut rest = line[name_end..].trim_start();
    let labels = if rest.starts_with('{') {
        let (labels, after) = parse_labels(&rest[1..])?;
        rest = after;
        labels
    } else {
        Vec::new()
    };
    let mut fields = rest.split_whitespace();
    let value = fields.next().ok_or("no value")?;
    let value = parse_value(value).ok_or_else(|| format!("bad value {value:?}"))?;
    let timestamp_ms = match fields.next() {
        Some(ts) => Some(
            ts.parse::<i64>()
                .map_err(|_| format!("bad timestamp {ts:?}"))?,
        ),
        None => None,
    };
    if let Some(extra) = fields.next() {
        return Err(format!("unexpected {extra:?} after the timestamp"));
    }
    Ok(PromSample {
        name: name.to_string(),
        labels,
        value,
        timestamp_ms,
    })
}

/// Label names and values of one sample, in page order.
pub type Labels = Vec<(String, String)>;

/// Parses `name="value",...}` and returns the labels and the text after
/// the closing brace.
fn parse_labels(mut text: &str) -> Result<(Labels, &str), String> {
    let mut labels = Vec::new();
    loop {
        text = text.trim_start();
        if let Some(after) = text.strip_prefix('}') {
            return Ok((labels, after));
        }
        let name_end = text
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .ok_or("unterminated label set")?;
        let name = &text[..name_end];
        if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(format!("bad label name at {:?}", preview(text)));
        }
        text = text[name_end..].trim_start();
        text = text
            .strip_prefix('=')
            .ok_or_else(|| format!("expected '=' after label {name}"))?
            .trim_start();
        text = text
            .strip_prefix('"')
            .ok_or_else(|| format!("expected '\"' to open the value of label {name}"))?;
        let mut value = String::new();
        let mut chars = text.char_indices();
        let close = loop {
            match chars.next() {
                None => return Err(format!("unterminated value of label {name}")),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, other)) => {
                        value.push('\\');
                        value.push(other);
                    }
                    None => return Err(format!("unterminated value of label {name}")),
                },
                Some((_, c)) => value.push(c),
            }
        };
        labels.push((name.to_string(), value));
        text = text[close + 1..].trim_start();
        if let Some(after) = text.strip_prefix(',') {
            text = after;
        } else if !text.starts_with('}') {
            return Err(format!("expected ',' or '}}' after label {name}"));
        }
    }
}

/// Go's float syntax as used by the format: plain numbers, `NaN`, `+Inf`,
/// `-Inf`.
fn parse_value(text: &str) -> Option<f64> {
    match text {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => text.parse::<f64>().ok(),
    }
}

/// Whether `name` is a valid Prometheus metric name.
pub fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn preview(text: &str) -> String {
    text.chars().take(40).collect()
}

/// Maps a page onto the configured metrics. A page that is not text format
/// at all still yields a [`Scrape`], whose failures say so.
pub fn to_scrape(specs: &[PrometheusSpec], text: &str) -> Scrape {
    let page = parse(text);
    let mut by_name: HashMap<&str, Vec<&PromSample>> = HashMap::new();
    for sample in &page.samples {
        by_name
            .entry(sample.name.as_str())
            .or_default()
            .push(sample);
    }
    let mut scrape = Scrape::default();
    for spec in specs {
        let series: Vec<&PromSample> = spec
            .names
            .iter()
            .filter_map(|name| by_name.get(name.as_str()))
            .flatten()
            .copied()
            .collect();
        if series.is_empty() {
            if !spec.optional {
                scrape.failures.push(format!(
                    "{}: the exporter has no series {}",
                    spec.metric,
                    spec.names.join(" or ")
                ));
            }
            continue;
        }
        let mut family = Family::new(spec.metric, spec.kind, spec.scale);
        for sample in series {
            if !spec
                .labels
                .iter()
                .all(|(name, value)| sample.label(name) == Some(value.as_str()))
            {
                continue;
            }
            let topic = spec
                .topic_label
                .as_deref()
                .and_then(|label| sample.label(label))
                .filter(|t| !t.is_empty());
            if let Some(t) = topic {
                if !spec.only.is_empty() && !spec.only.iter().any(|o| o == t) {
                    continue;
                }
            }
            family.push(topic.map(String::from), sample.value);
        }
        scrape.families.push(family);
    }
    if let Some((line, reason)) = page.errors.first() {
        scrape.failures.push(format!(
            "{} malformed exporter line(s), first at line {line}: {reason}",
            page.errors.len()
        ));
    }
    scrape
}

#[cfg(test)]
mod tests {
    use lagwatch_model::broker::metric;

    use super::*;
    use crate::jmx::config::JmxConfig;
    use crate::jmx::spec::{MetricPlan, ValueKind};

    #[test]
    fn parses_the_edge_cases_of_the_format() {
        let text = r#"
# HELP kafka_x Some help with "quotes" and \ backslash
# TYPE kafka_x gauge
kafka_x 1
kafka_y{a="1",b="two words"} 2.5 1700000000000
  kafka_z { a = "x" , } -3e2
esc{path="C:\\dir",quote="say \"hi\"",nl="a\nb",other="\d"} 4
nan NaN
pinf{le="+Inf"} +Inf
ninf -Inf
empty{} 0
colon:name 5
"#;
        let page = parse(text);
        assert!(page.errors.is_empty(), "{:?}", page.errors);
        let s = &page.samples;
        assert_eq!(s.len(), 9);
        assert_eq!(
            (s[0].name.as_str(), s[0].value, s[0].timestamp_ms),
            ("kafka_x", 1.0, None)
        );
        assert_eq!(s[1].label("b"), Some("two words"));
        assert_eq!(s[1].timestamp_ms, Some(1_700_000_000_000));
        assert_eq!(s[2].labels, vec![("a".to_string(), "x".to_string())]);
        assert_eq!(s[2].value, -300.0);
        assert_eq!(s[3].label("path"), Some(r"C:\dir"));
        assert_eq!(s[3].label("quote"), Some(r#"say "hi""#));
        assert_eq!(s[3].label("nl"), Some("a\nb"));
        assert_eq!(s[3].label("other"), Some(r"\d"));
        assert!(s[4].value.is_nan());
        assert_eq!(s[5].value, f64::INFINITY);
        assert_eq!(s[5].label("le"), Some("+Inf"));
        assert_eq!(s[6].value, f64::NEG_INFINITY);
        assert!(s[7].labels.is_empty());
        assert_eq!(s[8].name, "colon:name");
    }

    #[test]
    fn malformed_lines_are_reported_and_skipped() {
        let text = "ok 1\nno_value\nbad{a=\"x} 1\nbad{a=x} 1\n9bad 1\nok2 abc\nok3 1 2 3\nok4 1 x\nlast 2\n";
        let page = parse(text);
        assert_eq!(page.samples.len(), 2);
        assert_eq!(page.samples[1].name, "last");
        let lines: Vec<usize> = page.errors.iter().map(|(line, _)| *line).collect();
        assert_eq!(lines, [2, 3, 4, 5, 6, 7, 8]);
        assert!(
            page.errors[1].1.contains("unterminated"),
            "{:?}",
            page.errors
        );
    }

    /// What the exporter with the example Kafka rules serves (shortened).
    const PAGE: &str = r#"# HELP kafka_server_replicamanager_underreplicatedpartitions Attribute exposed for management kafka.server:name=UnderReplicatedPartitions,type=ReplicaManager,attribute=Value
# TYPE kafka_server_replicamanager_underreplicatedpartitions gauge
kafka_server_replicamanager_underreplicatedpartitions 0.0
kafka_server_replicamanager_underminisrpartitioncount 1.0
kafka_network_socketserver_networkprocessoravgidlepercent 0.9987
# TYPE kafka_server_kafkarequesthandlerpool_requesthandleravgidlepercent_count counter
kafka_server_kafkarequesthandlerpool_requesthandleravgidlepercent_count 4.128344860523E12
# TYPE kafka_server_brokertopicmetrics_bytesin_total counter
kafka_server_brokertopicmetrics_bytesin_total 1241547.0
kafka_server_brokertopicmetrics_bytesin_total{topic="orders",} 68022.0
kafka_server_brokertopicmetrics_bytesin_total{topic="__consumer_offsets",} 18083.0
kafka_server_brokertopicmetrics_bytesout_total 5.0
kafka_server_brokertopicmetrics_messagesin_total 100.0
kafka_server_replicamanager_isrshrinks_total 0.0
kafka_network_requestmetrics_totaltimems{request="Produce",quantile="0.50",} 0.0
kafka_network_requestmetrics_totaltimems{request="Produce",quantile="0.99",} 2.0
kafka_network_requestmetrics_totaltimems{request="OffsetCommit",quantile="0.99",} 43.0
kafka_network_requestmetrics_totaltimems_count{request="Produce",} 12054.0
"#;

    fn specs() -> Vec<PrometheusSpec> {
        let endpoint = crate::jmx::BrokerEndpoint {
            broker: 1,
            kind: crate::jmx::EndpointKind::Prometheus,
            url: "http://h/metrics".into(),
            username: None,
            password: None,
            metrics: None,
        };
        MetricPlan::for_endpoint(&JmxConfig::new(Vec::new()), &endpoint).prometheus
    }

    #[test]
    fn maps_exporter_series_to_metrics() {
        let scrape = to_scrape(&specs(), PAGE);
        // A broker-only node: no controller series, and they are optional.
        assert!(scrape.failures.is_empty(), "{:?}", scrape.failures);
        assert!(scrape.family(metric::ACTIVE_CONTROLLER_COUNT).is_none());
        let get = |m: &str| scrape.family(m).expect(m);
        assert_eq!(
            get(metric::UNDER_MIN_ISR_PARTITION_COUNT).series,
            vec![(None, 1.0)]
        );
        let idle = get(metric::REQUEST_HANDLER_AVG_IDLE_PERCENT);
        assert_eq!(idle.kind, ValueKind::Counter);
        assert_eq!(idle.scale, 1e-9);
        assert_eq!(idle.total(), Some(4.128_344_860_523e12));
        let bytes_in = get(metric::BYTES_IN_PER_SEC);
        assert_eq!(bytes_in.series.len(), 3);
        assert!(bytes_in.series.contains(&(Some("orders".into()), 68_022.0)));
        assert_eq!(bytes_in.total(), Some(1_241_547.0));
        // p99 only, configured request types only.
        assert_eq!(
            get(metric::REQUEST_TOTAL_TIME_MS).series,
            vec![(Some("Produce".to_string()), 2.0)]
        );
    }

    #[test]
    fn missing_series_fail_their_metric_only() {
        let page = PAGE.replace(
            "kafka_server_replicamanager_isrshrinks_total 0.0\n",
            "garbage line\n",
        );
        let scrape = to_scrape(&specs(), &page);
        assert_eq!(scrape.failures.len(), 2, "{:?}", scrape.failures);
        assert!(scrape.failures[0]
            .starts_with("IsrShrinksPerSec: the exporter has no series kafka_server_replicamanager_isrshrinks_total"));
        assert!(
            scrape.failures[1].starts_with("1 malformed exporter line(s), first at line 14"),
            "{:?}",
            scrape.failures
        );
        assert!(scrape.family(metric::BYTES_IN_PER_SEC).is_some());
    }

    /// Lines of the real exporter's page: `jmx_prometheus_javaagent` 1.0.1
    /// on the Kafka 4.1.2 test broker (combined KRaft node) with
    /// `tests/infra/up.sh`'s rules, which name series like the example
    /// `kafka-2_0_0.yml` rules. 1.x sorts labels, drops 0.x's trailing comma
    /// and appends `_total` to every counter.
    const PAGE_1_0_1: &str = r#"# HELP jmx_scrape_error Non-zero if this scrape failed.
# TYPE jmx_scrape_error gauge
jmx_scrape_error 0.0
jvm_memory_used_bytes{area="heap"} 2.1316392E8
kafka_controller_kafkacontroller_activebrokercount 1.0
kafka_controller_kafkacontroller_activecontrollercount 1.0
kafka_controller_kafkacontroller_offlinepartitionscount 0.0
# HELP kafka_network_requestmetrics_totaltimems Attribute exposed for management kafka.network:name=TotalTimeMs,type=RequestMetrics,attribute=50thPercentile
# TYPE kafka_network_requestmetrics_totaltimems gauge
kafka_network_requestmetrics_totaltimems{quantile="0.50",request="Produce"} 1.0
kafka_network_requestmetrics_totaltimems{quantile="0.99",request="FetchConsumer"} 0.0
kafka_network_requestmetrics_totaltimems{quantile="0.99",request="Metadata"} 153.0
kafka_network_requestmetrics_totaltimems{quantile="0.99",request="Produce"} 5.710000000000036
kafka_network_processor_idlepercent{networkProcessor="0"} 0.9880109452950009
kafka_network_socketserver_networkprocessoravgidlepercent 1.0
# HELP kafka_server_brokertopicmetrics_bytesin_total Attribute exposed for management kafka.server:name=BytesInPerSec,type=BrokerTopicMetrics,attribute=Count
# TYPE kafka_server_brokertopicmetrics_bytesin_total counter
kafka_server_brokertopicmetrics_bytesin_total 123170.0
kafka_server_brokertopicmetrics_bytesin_total{topic="jmx_agents_agree_7410_798928141"} 28390.0
kafka_server_brokertopicmetrics_bytesout_total 0.0
kafka_server_brokertopicmetrics_messagesin_total 1300.0
kafka_server_brokertopicmetrics_messagesin_total{topic="jmx_agents_agree_7410_798928141"} 300.0
kafka_server_kafkarequesthandlerpool_requesthandleravgidle_percent 1.961082116751684
# TYPE kafka_server_kafkarequesthandlerpool_requesthandleravgidlepercent_count_total counter
kafka_server_kafkarequesthandlerpool_requesthandleravgidlepercent_count_total 3.4088709613E11
kafka_server_replicamanager_isrshrinks_total 0.0
kafka_server_replicamanager_underminisrpartitioncount 0.0
kafka_server_replicamanager_underreplicatedpartitions 0.0
"#;

    #[test]
    fn the_real_exporter_1_0_1_page_gives_every_default_metric() {
        let scrape = to_scrape(&specs(), PAGE_1_0_1);
        assert!(scrape.failures.is_empty(), "{:?}", scrape.failures);
        assert_eq!(scrape.families.len(), metric::ALL.len());
        let get = |m: &str| scrape.family(m).expect(m);
        assert_eq!(
            get(metric::ACTIVE_CONTROLLER_COUNT).series,
            vec![(None, 1.0)]
        );
        assert_eq!(
            get(metric::UNDER_REPLICATED_PARTITIONS).series,
            vec![(None, 0.0)]
        );
        // The idle meter's count, not the MeanRate "_percent" gauge next to it.
        assert_eq!(
            get(metric::REQUEST_HANDLER_AVG_IDLE_PERCENT).total(),
            Some(3.408_870_961_3e11)
        );
        let topic = Some("jmx_agents_agree_7410_798928141".to_string());
        let messages = get(metric::MESSAGES_IN_PER_SEC);
        assert_eq!(messages.series, vec![(None, 1300.0), (topic, 300.0)]);
        // Labels in any order; the p99 of configured request types only.
        assert_eq!(
            get(metric::REQUEST_TOTAL_TIME_MS).series,
            vec![
                (Some("FetchConsumer".to_string()), 0.0),
                (Some("Produce".to_string()), 5.710000000000036),
            ]
        );
    }

    #[test]
    fn exporter_1x_counter_names_are_accepted() {
        let page =
            "kafka_server_kafkarequesthandlerpool_requesthandleravgidlepercent_count_total 5e9\n";
        let scrape = to_scrape(&specs(), page);
        let idle = scrape
            .family(metric::REQUEST_HANDLER_AVG_IDLE_PERCENT)
            .expect("idle");
        assert_eq!(idle.total(), Some(5e9));
    }
}
