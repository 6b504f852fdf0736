//! Silences through the API: create, list, expire, another team's refused,
//! and the query parameters that are checked.

use anyhow::{ensure, Context};
use serde_json::json;

use crate::client::{expect, Api};

pub(crate) async fn silences(
    api: &Api,
    payments: &str,
    search: &str,
    our_monitor: i64,
    their_monitor: i64,
) -> anyhow::Result<()> {
    let created = api
        .send(
            "POST",
            "/api/v1/silences",
            payments,
            &json!({"monitor_id": our_monitor, "rule": "lag_threshold", "duration_secs": 3600, "comment": "deploy"}),
        )
        .await?;
    expect(&created, 201, "silence")?;
    let silence_id = created.json["id"].as_i64().context("silence id")?;
    assert_eq!(created.json["team"], json!("payments"));
    assert_eq!(created.json["monitor_id"], json!(our_monitor));
    let span = created.json["ends_at_ms"].as_i64().unwrap_or_default()
        - created.json["starts_at_ms"].as_i64().unwrap_or_default();
    assert_eq!(span, 3_600_000);
    ensure!(
        created.json["created_by"]
            .as_str()
            .is_some_and(|c| c.starts_with("team:payments:token:")),
        "{}",
        created.body
    );
    for (body, field) in [
        (json!({"duration_secs": 0}), "duration_secs"),
        (json!({"duration_secs": 7_776_001}), "duration_secs"),
        (json!({"comment": "x"}), "duration_secs"),
        (json!({"duration_secs": 60, "rule": ""}), "rule"),
        (
            json!({"duration_secs": 60, "comment": "c".repeat(1025)}),
            "comment",
        ),
        (
            json!({"duration_secs": 60, "monitor_id": their_monitor}),
            "monitor_id",
        ),
        (json!({"duration_secs": 60, "matchers": []}), "matchers"),
    ] {
        let reply = api
            .send("POST", "/api/v1/silences", payments, &body)
            .await?;
        expect(&reply, 400, &format!("silence {body}"))?;
        assert_eq!(reply.error_field(), Some(field), "{}", reply.body);
    }
    let reply = api
        .send(
            "POST",
            "/api/v1/silences",
            payments,
            &json!({"team": "search", "duration_secs": 60}),
        )
        .await?;
    expect(&reply, 403, "silence for another team")?;

    let theirs = api.get("/api/v1/silences", Some(search)).await?;
    assert_eq!(theirs.json, json!({"silences": []}));
    let reply = api
        .request(
            "DELETE",
            &format!("/api/v1/silences/{silence_id}"),
            Some(search),
            None,
        )
        .await?;
    expect(&reply, 404, "search expires payments' silence")?;
    let ours = api.get("/api/v1/silences", Some(payments)).await?;
    let listed = ours.json["silences"].as_array().context("silences")?;
    assert_eq!(listed.len(), 1, "still active");
    assert_eq!(listed[0], created.json);

    let expired = api
        .request(
            "DELETE",
            &format!("/api/v1/silences/{silence_id}"),
            Some(payments),
            None,
        )
        .await?;
    expect(&expired, 200, "expire")?;
    ensure!(
        expired.json["ends_at_ms"].as_i64() <= Some(lagwatch_model::now_ms()),
        "{}",
        expired.body
    );
    let active = api.get("/api/v1/silences", Some(payments)).await?;
    assert_eq!(active.json, json!({"silences": []}));
    let all = api.get("/api/v1/silences?all=true", Some(payments)).await?;
    assert_eq!(all.json["silences"].as_array().map(Vec::len), Some(1));
    let reply = api
        .get("/api/v1/silences?all=maybe", Some(payments))
        .await?;
    expect(&reply, 400, "all=maybe")?;
    assert_eq!(reply.error_field(), Some("all"));
    Ok(())
}
