//! Waits on an agent's own counters before a negative assertion ("nothing
//! more happened"): a fixed sleep says nothing about whether the agent was
//! able to act in that time on a loaded machine; a counter that moved says
//! it did (the collector published more samples, the evaluator judged
//! them, no delivery it knows of is outstanding).

use std::time::Duration;

use anyhow::Context;

use super::http::HttpClient;

/// The evaluator's count of samples read from the metrics topic.
pub const SAMPLES_CONSUMED: &str = "lagwatch_evaluator_samples_consumed_total";
/// Unix time (s) of the newest sample the evaluator judged.
pub const JUDGED_UNTIL: &str = "lagwatch_evaluator_judged_until_timestamp_seconds";
/// Alerts whose latest notification no destination has confirmed yet.
pub const NOTIFICATIONS_OWED: &str = "lagwatch_notifications_owed";
/// The collector's finished sampling cycles (one series per cluster).
pub const COLLECTOR_CYCLES: &str = "lagwatch_collector_cycle_duration_seconds_count";
/// Group samples the metrics topic acknowledged to the collector.
pub const SAMPLES_PUBLISHED: &str = "lagwatch_collector_samples_published_total";

/// The sum of every series of metric `name` in a Prometheus text page
/// (`None` when the page has no such series).
pub fn metric_value(page: &str, name: &str) -> Option<f64> {
    let values: Vec<f64> = page
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            // `name value` or `name{labels} value`, not `name_suffix ...`.
            if !(rest.starts_with(' ') || rest.starts_with('{')) {
                return None;
            }
            rest.rsplit(' ').next()?.parse::<f64>().ok()
        })
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

/// The agent's `/metrics` page, read through `client`.
pub async fn metrics_page(client: &HttpClient) -> anyhow::Result<String> {
    client.get_ok("/metrics", None).await
}

/// Metric `name` on the agent behind `client`, now.
pub async fn metric(client: &HttpClient, name: &str) -> anyhow::Result<f64> {
    let page = metrics_page(client).await?;
    metric_value(&page, name).with_context(|| format!("no {name} on /metrics"))
}

/// Waits until the evaluator behind `client` has read `more` samples past
/// the count it shows now and reports no notification owed. A page decided
/// on any but the last of those samples had at least one collector
/// interval to reach its destination, so pick `more` with one to spare.
/// (The owed gauge moves on delivery reports: it shows re-sends still
/// pending, not a notification handed over a moment ago.) Returns the
/// consumed count reached.
pub async fn evaluator_judged_more(
    client: &HttpClient,
    more: u32,
    timeout: Duration,
) -> anyhow::Result<f64> {
    let start = metric(client, SAMPLES_CONSUMED).await?;
    let target = start + f64::from(more);
    super::eventually_async(
        &format!("{more} more samples judged (from {start}) and nothing owed"),
        timeout,
        || async {
            let page = metrics_page(client).await.ok()?;
            let consumed = metric_value(&page, SAMPLES_CONSUMED)?;
            let owed = metric_value(&page, NOTIFICATIONS_OWED)?;
            (consumed >= target && owed == 0.0).then_some(consumed)
        },
    )
    .await
}

/// Waits until the evaluator behind `client` has judged a sample taken at
/// or after `unix_seconds` and owes no notification.
pub async fn evaluator_judged_until(
    client: &HttpClient,
    unix_seconds: i64,
    timeout: Duration,
) -> anyhow::Result<()> {
    super::eventually_async(
        &format!("a sample at or after {unix_seconds} judged and nothing owed"),
        timeout,
        || async {
            let page = metrics_page(client).await.ok()?;
            let judged = metric_value(&page, JUDGED_UNTIL)?;
            let owed = metric_value(&page, NOTIFICATIONS_OWED)?;
            (judged >= unix_seconds as f64 && owed == 0.0).then_some(())
        },
    )
    .await
}

/// For an agent running both the collector and the evaluator (one
/// `/metrics` page): waits until the collector finished `cycles` more
/// sampling cycles and the evaluator has read as many samples as the
/// collector published meanwhile, with no notification reported owed.
/// Works when the collector publishes nothing (every group gone): the
/// cycles still count.
pub async fn collector_cycles_judged(
    client: &HttpClient,
    cycles: u32,
    timeout: Duration,
) -> anyhow::Result<()> {
    let page = metrics_page(client).await?;
    let read = |page: &str, name: &str| {
        metric_value(page, name).with_context(|| format!("no {name} on /metrics"))
    };
    let (cycles_before, published_before, consumed_before) = (
        read(&page, COLLECTOR_CYCLES)?,
        read(&page, SAMPLES_PUBLISHED)?,
        read(&page, SAMPLES_CONSUMED)?,
    );
    let target_cycles = cycles_before + f64::from(cycles);
    super::eventually_async(
        &format!("{cycles} more collector cycles"),
        timeout,
        || async {
            let page = metrics_page(client).await.ok()?;
            (metric_value(&page, COLLECTOR_CYCLES)? >= target_cycles).then_some(())
        },
    )
    .await?;
    let published = metric(client, SAMPLES_PUBLISHED).await? - published_before;
    super::eventually_async(
        &format!("the evaluator to read the {published} samples published meanwhile"),
        timeout,
        || async {
            let page = metrics_page(client).await.ok()?;
            let consumed = metric_value(&page, SAMPLES_CONSUMED)? - consumed_before;
            let owed = metric_value(&page, NOTIFICATIONS_OWED)?;
            (consumed >= published && owed == 0.0).then_some(())
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::metric_value;

    #[test]
    fn sums_series_and_ignores_longer_names() {
        let page = "# HELP x_total help\n# TYPE x_total counter\nx_total 3\nx_total_more 7\nx{a=\"1\"} 2\nx{a=\"2\"} 5\n";
        assert_eq!(metric_value(page, "x_total"), Some(3.0));
        assert_eq!(metric_value(page, "x"), Some(7.0));
        assert_eq!(metric_value(page, "y"), None);
    }
}
