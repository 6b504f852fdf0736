//! The Jolokia protocol: one bulk `read` request per broker and cycle, and
//! the parsing of its answer.
//!
//! A bulk request is a JSON array of `read` requests; the agent answers with
//! an array in the same order, each entry with its own `status`, so one
//! missing MBean fails only its own metric. A read of an MBean pattern
//! answers with a map of full MBean names to attribute maps, a read of a
//! plain MBean with the attribute value itself.

use serde_json::{json, Value};

use super::scrape::{Family, Scrape};
use super::spec::JolokiaSpec;

/// Internal read of the node's Kafka version (for the idle correction).
const VERSION_MBEAN: &str = "kafka.server:type=app-info,id=*";
const VERSION_ATTRIBUTE: &str = "Version";

/// The bulk request body: one read per spec, then (with `probe_version`) the
/// version read.
pub fn request_body(specs: &[JolokiaSpec], probe_version: bool) -> Vec<u8> {
    let mut reads: Vec<Value> = specs
        .iter()
        .map(|spec| read(&spec.mbean, &spec.attribute))
        .collect();
    if probe_version {
        reads.push(read(VERSION_MBEAN, VERSION_ATTRIBUTE));
    }
    serde_json::to_vec(&reads).unwrap_or_default()
}

fn read(mbean: &str, attribute: &str) -> Value {
    let mut request = json!({ "type": "read", "mbean": mbean, "attribute": attribute });
    if is_pattern(mbean) {
        // Skip matching MBeans that lack the attribute instead of failing
        // the whole pattern read.
        request["config"] = json!({ "ignoreErrors": true });
    }
    request
}

/// Whether `mbean` is an ObjectName pattern (the agent then answers with a
/// map keyed by MBean name).
pub fn is_pattern(mbean: &str) -> bool {
    mbean.contains('*') || mbean.contains('?')
}

/// Parses the agent's answer to [`request_body`]. `Err` only when the answer
/// as a whole is unusable; per-read errors land in [`Scrape::failures`].
pub fn parse_response(
    specs: &[JolokiaSpec],
    probe_version: bool,
    body: &[u8],
) -> Result<Scrape, String> {
    let answer: Value = serde_json::from_slice(body).map_err(|e| {
        format!(
            "answer is not JSON ({e}): {}",
            snippet(&String::from_utf8_lossy(body))
        )
    })?;
    let entries = match answer {
        Value::Array(entries) => entries,
        // The agent refuses a whole bulk request with a single error object.
        Value::Object(ref object) => {
            let status = object.get("status").and_then(Value::as_i64).unwrap_or(0);
            return Err(format!(
                "agent refused the request (status {status}): {}",
                error_text(&answer)
            ));
        }
        _ => {
            return Err(format!(
                "unexpected answer: {}",
                snippet(&answer.to_string())
            ))
        }
    };
    let expected = specs.len() + usize::from(probe_version);
    if entries.len() != expected {
        return Err(format!(
            "agent answered {} reads, {expected} were sent",
            entries.len()
        ));
    }
    let mut scrape = Scrape::default();
    for (spec, entry) in specs.iter().zip(&entries) {
        match parse_entry(spec, entry) {
            Ok(Some(family)) => scrape.families.push(family),
            Ok(None) => {}
            Err(failure) => scrape.failures.push(format!("{}: {failure}", spec.metric)),
        }
    }
    if probe_version {
        scrape.version = entries.last().and_then(version_of);
    }
    Ok(scrape)
}

/// One read's result: a family, nothing (an optional MBean that is not
/// there), or why it failed.
fn parse_entry(spec: &JolokiaSpec, entry: &Value) -> Result<Option<Family>, String> {
    let status = entry.get("status").and_then(Value::as_i64).unwrap_or(0);
    if status != 200 {
        let error_type = entry
            .get("error_type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if spec.optional && error_type.ends_with("InstanceNotFoundException") {
            return Ok(None);
        }
        let short_type = error_type.rsplit('.').next().unwrap_or(error_type);
        return Err(format!(
            "{short_type} (status {status}): {}",
            error_text(entry)
        ));
    }
    let value = entry.get("value").unwrap_or(&Value::Null);
    let mut family = Family::new(spec.metric, spec.kind, spec.scale);
    if is_pattern(&spec.mbean) {
        let Value::Object(by_mbean) = value else {
            return Err(format!(
                "expected a map of MBeans, got {}",
                snippet(&value.to_string())
            ));
        };
        for (mbean, attributes) in by_mbean {
            let topic = topic_of(spec, mbean);
            if !wanted(spec, topic.as_deref()) {
                continue;
            }
            // An MBean of the pattern without a numeric value is skipped; an
            // empty match already answered 404.
            if let Some(v) = attribute_value(attributes, &spec.attribute) {
                family.push(topic, v);
            }
        }
    } else {
        let topic = topic_of(spec, &spec.mbean);
        if let Some(v) = attribute_value(value, &spec.attribute) {
            if wanted(spec, topic.as_deref()) {
                family.push(topic, v);
            }
        } else {
            return Err(format!(
                "{} is not a number: {}",
                spec.attribute,
                snippet(&value.to_string())
            ));
        }
    }
    Ok(Some(family))
}

fn wanted(spec: &JolokiaSpec, topic: Option<&str>) -> bool {
    match topic {
        Some(t) if !spec.only.is_empty() => spec.only.iter().any(|o| o == t),
        _ => true,
    }
}

fn topic_of(spec: &JolokiaSpec, mbean: &str) -> Option<String> {
    spec.topic_key
        .as_deref()
        .and_then(|key| key_property(mbean, key))
}

/// The numeric value of `attribute` in `value`: the value itself, or the
/// attribute's entry when the agent answered with an attribute map.
fn attribute_value(value: &Value, attribute: &str) -> Option<f64> {
    match value {
        Value::Object(map) => map.get(attribute).and_then(number),
        other => number(other),
    }
}

/// JSON numbers, and numbers the agent wrote as strings (`"NaN"`, large
/// longs); non-finite values count as absent.
fn number(value: &Value) -> Option<f64> {
    let n = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }?;
    n.is_finite().then_some(n)
}

fn version_of(entry: &Value) -> Option<String> {
    if entry.get("status").and_then(Value::as_i64) != Some(200) {
        return None;
    }
    match entry.get("value")? {
        Value::Object(by_mbean) => by_mbean.values().find_map(|attributes| match attributes {
            Value::Object(map) => map.get(VERSION_ATTRIBUTE)?.as_str().map(String::from),
            Value::String(s) => Some(s.clone()),
            _ => None,
        }),
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

fn error_text(entry: &Value) -> String {
    let text = entry
        .get("error")
        .and_then(Value::as_str)
        .unwrap_or("no error text");
    snippet(text)
}

fn snippet(text: &str) -> String {
    const MAX: usize = 200;
    let text = text.trim();
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}

/// Splits an ObjectName key-property list at the commas outside quoted
/// values. `None` when a quoted value is not terminated.
pub fn split_properties(properties: &str) -> Option<Vec<&str>> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in properties.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            ',' if !in_quotes => {
                parts.push(&properties[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if in_quotes {
        return None;
    }
    if start < properties.len() {
        parts.push(&properties[start..]);
    }
    Some(parts.into_iter().filter(|p| !p.is_empty()).collect())
}

/// The value of `key` in the ObjectName `mbean`, unquoted.
pub fn key_property(mbean: &str, key: &str) -> Option<String> {
    let (_, properties) = mbean.split_once(':')?;
    split_properties(properties)?
        .into_iter()
        .filter_map(|part| part.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, value)| unquote(value))
}

/// Undoes `ObjectName.quote`: `"a\"b"` → `a"b`.
fn unquote(value: &str) -> String {
    let Some(inner) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) else {
        return value.to_string();
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some(other) => out.push(other),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use lagwatch_model::broker::metric;

    use super::*;
    use crate::jmx::config::JmxConfig;
    use crate::jmx::spec::{MetricPlan, ValueKind};

    fn specs() -> Vec<JolokiaSpec> {
        let config = JmxConfig::new(Vec::new());
        let endpoint = crate::jmx::BrokerEndpoint {
            broker: 1,
            kind: crate::jmx::EndpointKind::Jolokia,
            url: "http://h/jolokia".into(),
            username: None,
            password: None,
            metrics: None,
        };
        MetricPlan::for_endpoint(&config, &endpoint).jolokia
    }

    #[test]
    fn builds_one_bulk_request_with_every_read() {
        let specs = specs();
        let body: Value = serde_json::from_slice(&request_body(&specs, true)).expect("json");
        let reads = body.as_array().expect("array");
        assert_eq!(reads.len(), specs.len() + 1);
        assert_eq!(reads[0]["type"], "read");
        assert_eq!(
            reads[0]["mbean"],
            "kafka.server:type=ReplicaManager,name=UnderReplicatedPartitions"
        );
        assert_eq!(reads[0]["attribute"], "Value");
        assert!(reads[0].get("config").is_none());
        let bytes_in = &reads[6];
        assert_eq!(
            bytes_in["mbean"],
            "kafka.server:type=BrokerTopicMetrics,name=BytesInPerSec,*"
        );
        assert_eq!(bytes_in["config"]["ignoreErrors"], true);
        assert_eq!(reads[11]["mbean"], VERSION_MBEAN);
    }

    /// A real Kafka 4.1 answer (shortened), with a failing read in the middle.
    fn answer() -> String {
        let ok = |mbean: &str, value: Value| {
            json!({"request": {"mbean": mbean, "type": "read"}, "value": value,
                   "status": 200, "timestamp": 1_796_013_355})
        };
        let entries = vec![
            ok(
                "kafka.server:type=ReplicaManager,name=UnderReplicatedPartitions",
                json!(0),
            ),
            json!({"request": {"mbean": "kafka.server:type=ReplicaManager,name=UnderMinIsrPartitionCount",
                               "attribute": "Value", "type": "read"},
                   "error_type": "javax.management.InstanceNotFoundException", ".error": true,
                   "error_type_jmx": "javax.management.InstanceNotFoundException",
                   "error": "kafka.server:type=ReplicaManager,name=UnderMinIsrPartitionCount",
                   "status": 404}),
            ok(
                "kafka.controller:type=KafkaController,name=OfflinePartitionsCount",
                json!(0),
            ),
            ok(
                "kafka.controller:type=KafkaController,name=ActiveControllerCount",
                json!(1),
            ),
            ok(
                "kafka.server:type=KafkaRequestHandlerPool,name=RequestHandlerAvgIdlePercent",
                json!(1.9980641602808498),
            ),
            ok(
                "kafka.network:type=SocketServer,name=NetworkProcessorAvgIdlePercent",
                json!(1.0),
            ),
            ok(
                "kafka.server:name=BytesInPerSec,type=BrokerTopicMetrics,*",
                json!({
                    "kafka.server:type=BrokerTopicMetrics,name=BytesInPerSec": {"Count": 1_241_547},
                    "kafka.server:type=BrokerTopicMetrics,name=BytesInPerSec,topic=demo-orders": {"Count": 68_022},
                    "kafka.server:type=BrokerTopicMetrics,name=BytesInPerSec,topic=__consumer_offsets": {"Count": 18_083},
                }),
            ),
            ok(
                "kafka.server:name=BytesOutPerSec,type=BrokerTopicMetrics,*",
                json!({
                    "kafka.server:type=BrokerTopicMetrics,name=BytesOutPerSec": {"Count": 500},
                }),
            ),
            ok(
                "kafka.server:name=MessagesInPerSec,type=BrokerTopicMetrics,*",
                json!({
                    "kafka.server:type=BrokerTopicMetrics,name=MessagesInPerSec": {"Count": "12345"},
                    "kafka.server:type=BrokerTopicMetrics,name=MessagesInPerSec,topic=\"odd,name\"": {"Count": 7},
                }),
            ),
            ok(
                "kafka.server:type=ReplicaManager,name=IsrShrinksPerSec",
                json!(0),
            ),
            ok(
                "kafka.network:name=TotalTimeMs,request=*,type=RequestMetrics",
                json!({
                    "kafka.network:type=RequestMetrics,name=TotalTimeMs,request=Produce": {"99thPercentile": 2.0},
                    "kafka.network:type=RequestMetrics,name=TotalTimeMs,request=OffsetCommit": {"99thPercentile": 43.0},
                    "kafka.network:type=RequestMetrics,name=TotalTimeMs,request=FetchConsumer": {"99thPercentile": "NaN"},
                }),
            ),
            ok(
                "kafka.server:type=app-info,id=*",
                json!({
                    "kafka.server:type=app-info,id=1": {"Version": "4.1.2"},
                }),
            ),
        ];
        Value::Array(entries).to_string()
    }

    #[test]
    fn parses_a_bulk_answer_with_a_failed_read() {
        let specs = specs();
        let scrape = parse_response(&specs, true, answer().as_bytes()).expect("parses");
        assert_eq!(scrape.version.as_deref(), Some("4.1.2"));
        assert_eq!(scrape.failures.len(), 1, "{:?}", scrape.failures);
        let failure = &scrape.failures[0];
        assert!(
            failure
                .starts_with("UnderMinIsrPartitionCount: InstanceNotFoundException (status 404)"),
            "{failure}"
        );
        assert!(scrape
            .family(metric::UNDER_MIN_ISR_PARTITION_COUNT)
            .is_none());

        let urp = scrape
            .family(metric::UNDER_REPLICATED_PARTITIONS)
            .expect("urp");
        assert_eq!(urp.series, vec![(None, 0.0)]);
        assert_eq!(urp.kind, ValueKind::Gauge);

        let bytes_in = scrape.family(metric::BYTES_IN_PER_SEC).expect("bytes in");
        assert_eq!(bytes_in.kind, ValueKind::Counter);
        assert_eq!(bytes_in.total(), Some(1_241_547.0));
        assert!(bytes_in
            .series
            .contains(&(Some("demo-orders".to_string()), 68_022.0)));
        assert_eq!(bytes_in.series.len(), 3);

        // Numbers written as strings and quoted ObjectName values.
        let messages = scrape
            .family(metric::MESSAGES_IN_PER_SEC)
            .expect("messages in");
        assert_eq!(messages.total(), Some(12_345.0));
        assert!(messages
            .series
            .contains(&(Some("odd,name".to_string()), 7.0)));

        // Only the configured request types, NaN dropped.
        let requests = scrape
            .family(metric::REQUEST_TOTAL_TIME_MS)
            .expect("requests");
        assert_eq!(requests.series, vec![(Some("Produce".to_string()), 2.0)]);
    }

    #[test]
    fn optional_mbeans_may_be_missing() {
        let specs: Vec<JolokiaSpec> = specs()
            .into_iter()
            .filter(|s| s.metric == metric::ACTIVE_CONTROLLER_COUNT)
            .collect();
        assert!(specs[0].optional);
        let answer = json!([{"request": {}, "error_type": "javax.management.InstanceNotFoundException",
                             "error": "kafka.controller:type=KafkaController,name=ActiveControllerCount",
                             "status": 404}]);
        let scrape = parse_response(&specs, false, answer.to_string().as_bytes()).expect("parses");
        assert!(scrape.failures.is_empty());
        assert!(scrape.families.is_empty());

        // Other errors of optional reads are still reported.
        let answer = json!([{"error_type": "javax.management.AttributeNotFoundException",
                             "error": "No such attribute: Valu", "status": 404}]);
        let scrape = parse_response(&specs, false, answer.to_string().as_bytes()).expect("parses");
        assert_eq!(
            scrape.failures,
            ["ActiveControllerCount: AttributeNotFoundException (status 404): No such attribute: Valu"]
        );
    }

    #[test]
    fn whole_answer_errors() {
        let specs = specs();
        let refused = json!({"error_type": "java.lang.IllegalArgumentException",
                             "error": "Key properties cannot be empty", "status": 400});
        let error =
            parse_response(&specs, false, refused.to_string().as_bytes()).expect_err("refused");
        assert!(
            error.contains("status 400") && error.contains("Key properties"),
            "{error}"
        );

        let error = parse_response(&specs, false, b"<html>404 Not Found</html>").expect_err("html");
        assert!(
            error.contains("not JSON") && error.contains("404 Not Found"),
            "{error}"
        );

        let error = parse_response(&specs, false, b"[]").expect_err("short");
        assert!(error.contains("answered 0 reads, 11 were sent"), "{error}");
    }

    #[test]
    fn non_numeric_values_fail_their_metric_only() {
        let specs: Vec<JolokiaSpec> = specs().into_iter().take(2).collect();
        let answer = json!([
            {"value": "Running", "status": 200},
            {"value": 3, "status": 200},
        ]);
        let scrape = parse_response(&specs, false, answer.to_string().as_bytes()).expect("parses");
        assert_eq!(scrape.failures.len(), 1);
        assert!(
            scrape.failures[0].contains("Value is not a number"),
            "{:?}",
            scrape.failures
        );
        let under_min_isr = scrape
            .family(metric::UNDER_MIN_ISR_PARTITION_COUNT)
            .expect("second read");
        assert_eq!(under_min_isr.series, vec![(None, 3.0)]);
    }

    #[test]
    fn object_name_properties() {
        let name = "kafka.server:type=BrokerTopicMetrics,name=BytesInPerSec,topic=orders";
        assert_eq!(key_property(name, "topic").as_deref(), Some("orders"));
        assert_eq!(
            key_property(name, "type").as_deref(),
            Some("BrokerTopicMetrics")
        );
        assert_eq!(key_property(name, "request"), None);
        let quoted = r#"d:type=x,client="a,b=\"c\"",z=1"#;
        assert_eq!(
            key_property(quoted, "client").as_deref(),
            Some(r#"a,b="c""#)
        );
        assert_eq!(key_property(quoted, "z").as_deref(), Some("1"));
        assert_eq!(split_properties("a=1,*"), Some(vec!["a=1", "*"]));
        assert_eq!(split_properties("a=\"1"), None);
        assert!(
            is_pattern("d:type=x,*") && is_pattern("d:type=x,name=a?") && !is_pattern("d:type=x")
        );
    }
}
