//! Every validation rule of the monitor API: the request is refused with
//! 400 naming the field as the JSON spells it, and nothing is stored.

use anyhow::ensure;
use lagwatch_store::MonitorStore;
use serde_json::{json, Value};

use crate::client::{expect, monitor_body, Api};

/// Every validation rule: the request is refused with 400, the `field`
/// named, and the stored monitor left as it was.
pub(crate) async fn validation(
    api: &Api,
    token: &str,
    store: &MonitorStore,
    id: i64,
) -> anyhow::Result<()> {
    let before = store.list().await?;
    type Spoil = fn(&mut Value);
    let cases: Vec<(&str, Spoil, &str)> = vec![
        (
            "missing cluster",
            |m| {
                if let Some(o) = m.as_object_mut() {
                    o.remove("cluster");
                }
            },
            "cluster",
        ),
        (
            "unknown cluster",
            |m| m["cluster"] = json!("nope"),
            "cluster",
        ),
        (
            "blank group",
            |m| m["consumer_group"] = json!(""),
            "consumer_group",
        ),
        (
            "long group",
            |m| m["consumer_group"] = json!("g".repeat(256)),
            "consumer_group",
        ),
        (
            "control char in group",
            |m| m["consumer_group"] = json!("a\u{1}b"),
            "consumer_group",
        ),
        (
            "bad group regex",
            |m| {
                m["group_match"] = json!("regex");
                m["consumer_group"] = json!("billing-(");
            },
            "consumer_group",
        ),
        (
            "huge group regex",
            |m| {
                m["group_match"] = json!("regex");
                m["consumer_group"] = json!("(a{1000}){1000}");
            },
            "consumer_group",
        ),
        (
            "bad group_match",
            |m| m["group_match"] = json!("glob"),
            "group_match",
        ),
        (
            "bad topic regex",
            |m| m["topic_regex"] = json!("[z-a]"),
            "topic_regex",
        ),
        (
            "long topic regex",
            |m| m["topic_regex"] = json!("a".repeat(1_001)),
            "topic_regex",
        ),
        (
            "bad topic name",
            |m| m["topics"] = json!(["has space"]),
            "topics",
        ),
        ("topic ..", |m| m["topics"] = json!([".."]), "topics"),
        (
            "long topic",
            |m| m["topics"] = json!(["t".repeat(250)]),
            "topics",
        ),
        (
            "51 topics",
            |m| m["topics"] = json!((0..51).map(|i| format!("t{i}")).collect::<Vec<_>>()),
            "topics",
        ),
        (
            "duplicate topic",
            |m| m["topics"] = json!(["a", "a"]),
            "topics",
        ),
        (
            "topic not a string",
            |m| m["topics"] = json!(["a", 7]),
            "topics[1]",
        ),
        (
            "zero threshold",
            |m| m["lag_threshold"] = json!(0),
            "lag_threshold",
        ),
        (
            "negative threshold",
            |m| m["lag_threshold"] = json!(-5),
            "lag_threshold",
        ),
        (
            "string threshold",
            |m| m["lag_threshold"] = json!("500"),
            "lag_threshold",
        ),
        ("negative for", |m| m["for_secs"] = json!(-1), "for_secs"),
        (
            "for over 7 days",
            |m| m["for_secs"] = json!(604_801),
            "for_secs",
        ),
        (
            "bad e-mail",
            |m| m["emails"] = json!(["not-an-address"]),
            "emails",
        ),
        (
            "e-mail without tld",
            |m| m["emails"] = json!(["a@b"]),
            "emails",
        ),
        (
            "51 e-mails",
            |m| {
                m["emails"] = json!((0..51)
                    .map(|i| format!("u{i}@example.com"))
                    .collect::<Vec<_>>())
            },
            "emails",
        ),
        (
            "bad isolation",
            |m| m["isolation"] = json!("serializable"),
            "isolation",
        ),
        (
            "bad time_lag",
            |m| m["time_lag"] = json!("guess"),
            "time_lag",
        ),
        (
            "webhook scheme",
            |m| m["alerting"]["webhooks"] = json!(["ftp://hooks.example.com"]),
            "alerting.webhooks",
        ),
        (
            "webhook without host",
            |m| m["alerting"]["webhooks"] = json!(["https:///x"]),
            "alerting.webhooks",
        ),
        (
            "51 webhooks",
            |m| {
                m["alerting"]["webhooks"] = json!((0..51)
                    .map(|i| format!("https://h{i}.example.com"))
                    .collect::<Vec<_>>())
            },
            "alerting.webhooks",
        ),
        (
            "zero total threshold",
            |m| m["alerting"]["total_lag_threshold"] = json!(0),
            "alerting.total_lag_threshold",
        ),
        (
            "negative topic threshold",
            |m| m["alerting"]["topic_lag_threshold"] = json!(-1),
            "alerting.topic_lag_threshold",
        ),
        (
            "zero time-lag threshold",
            |m| m["alerting"]["time_lag_threshold_secs"] = json!(0),
            "alerting.time_lag_threshold_secs",
        ),
        (
            "short repeat",
            |m| m["alerting"]["repeat_interval_secs"] = json!(59),
            "alerting.repeat_interval_secs",
        ),
        (
            "alerting as an array",
            |m| m["alerting"] = json!([null, 5]),
            "alerting",
        ),
        ("alerting null", |m| m["alerting"] = Value::Null, "alerting"),
        (
            "unknown alerting key",
            |m| m["alerting"]["severity"] = json!("high"),
            "alerting.severity",
        ),
        (
            "unknown key",
            |m| m["lag_treshold"] = json!(5),
            "lag_treshold",
        ),
        ("id in body", |m| m["id"] = json!(5), "id"),
        ("bad team name", |m| m["team"] = json!("pay ments"), "team"),
    ];
    let mut checked = 0;
    for (what, spoil, field) in cases {
        let mut body = monitor_body("billing");
        spoil(&mut body);
        for (method, path) in [
            ("POST", "/api/v1/monitors".to_string()),
            ("PUT", format!("/api/v1/monitors/{id}")),
        ] {
            let reply = api.send(method, &path, token, &body).await?;
            // A team token naming another team is 403 before any check.
            if field == "team" {
                expect(&reply, 403, what)?;
                continue;
            }
            expect(&reply, 400, &format!("{method} {what}"))?;
            assert_eq!(reply.error_code(), Some("invalid_field"), "{what}");
            assert_eq!(reply.error_field(), Some(field), "{what}: {}", reply.body);
            let message = reply.json["error"]["message"].as_str().unwrap_or_default();
            ensure!(message.len() > 5, "{what}: empty message");
            checked += 1;
        }
    }
    // The admin gets the team-name rule itself.
    let mut body = monitor_body("billing");
    body["team"] = json!("pay ments");
    let reply = api
        .send("POST", "/api/v1/monitors", &api.admin, &body)
        .await?;
    expect(&reply, 400, "admin bad team")?;
    assert_eq!(reply.error_field(), Some("team"));
    let reply = api
        .send(
            "POST",
            "/api/v1/monitors",
            &api.admin,
            &monitor_body("billing"),
        )
        .await?;
    expect(&reply, 400, "admin without team")?;
    assert_eq!(reply.error_field(), Some("team"));
    for (what, body) in [
        ("broken JSON", "{\"cluster\": "),
        ("an array", "[1, 2]"),
        ("empty", ""),
    ] {
        let reply = api
            .request("POST", "/api/v1/monitors", Some(token), Some(body))
            .await?;
        expect(&reply, 400, what)?;
        assert_eq!(reply.error_code(), Some("invalid_json"), "{what}");
    }
    let huge = format!("{{\"comment\": \"{}\"}}", "x".repeat(70_000));
    let reply = api
        .request("POST", "/api/v1/monitors", Some(token), Some(&huge))
        .await?;
    expect(&reply, 413, "huge body")?;
    ensure!(checked >= 70, "only {checked} validation requests");
    assert_eq!(store.list().await?, before, "no rejected change was stored");
    Ok(())
}
