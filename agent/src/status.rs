//! `lagwatch status`: what lagwatch sees now, per consumer group, in the
//! terminal.
//!
//! The evaluator keeps its `lag_status` windows in memory and stores no
//! status word per sample, so this command derives one: it reads the newest
//! samples of every watched partition from the ClickHouse history (the same
//! samples the evaluator judged) and replays them through the evaluator's
//! window rules with [`lagwatch_history::status_replay`], the replay the API
//! and the web page use too. Lag is the monitor's own (against the last
//! stable offset for read_committed monitors). With fewer samples than the rules need, or none in the last five
//! minutes, the status is UNKNOWN. Firing alerts come from the alert
//! history.

use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use lagwatch_history::reader::{firing_alerts, AlertView, STATUS_WINDOW_SECS};
use lagwatch_history::status_reader::{recent_points, PartitionPoint};
use lagwatch_history::status_replay::{replay, status_word, REPLAY_POINTS};
use lagwatch_model::{now_ms, Monitor};
use lagwatch_rules::{RuleSet, Status};
use serde::Serialize;

use crate::cli::{OutputFormat, StatusArgs};
use crate::config::AppConfig;
use crate::table::{plain, stdout_wants_colour, Table};

/// One partition as `status` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionStatus {
    pub topic: String,
    pub partition: i32,
    /// Upper-case status word (OK, WARN, STALL, STOP, REWIND, UNKNOWN).
    pub status: String,
    pub lag: Option<i64>,
    pub time_lag_ms: Option<i64>,
    pub committed_offset: Option<i64>,
    pub end_offset: i64,
    /// Last stable offset, when sampled (groups of read_committed monitors).
    pub lso_offset: Option<i64>,
    /// How many samples the status was judged from.
    pub samples: usize,
}

/// One consumer group of one monitor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupStatusView {
    pub monitor_id: i64,
    pub team: String,
    pub cluster: String,
    pub consumer_group: String,
    /// Worst partition status; UNKNOWN without recent samples.
    pub status: String,
    pub max_lag: Option<i64>,
    pub total_lag: Option<i64>,
    pub max_time_lag_ms: Option<i64>,
    pub members: Option<u32>,
    pub group_state: Option<String>,
    /// Time of the newest sample, ms since the epoch.
    pub sampled_at_ms: Option<i64>,
    /// Rules with a firing alert for this group.
    pub firing: Vec<String>,
    pub partitions: Vec<PartitionStatus>,
}

pub async fn run(config: &AppConfig, config_path: &Path, args: StatusArgs) -> anyhow::Result<()> {
    let Some(clickhouse) = &config.clickhouse else {
        anyhow::bail!(
            "lagwatch status reads the ClickHouse history, and {} has no [clickhouse] section",
            config_path.display()
        );
    };
    let rules = config.evaluator.load_rules()?;
    let store = crate::store_open::open_existing(config, config_path).await?;
    let monitors = store.list().await;
    store.close().await;
    let monitors: Vec<Monitor> = monitors?
        .into_iter()
        .filter(|m| args.team.as_deref().is_none_or(|t| m.team == t))
        .collect();
    let firing = firing_alerts(clickhouse, args.team.as_deref()).await?;
    let mut groups = Vec::new();
    for monitor in &monitors {
        let points = recent_points(clickhouse, monitor, REPLAY_POINTS).await?;
        groups.extend(judge(monitor, &points, &rules, &firing));
    }
    if let Some(group) = &args.group {
        groups.retain(|g| &g.consumer_group == group);
    }
    match args.output.format() {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&groups)?),
        OutputFormat::Table => print!(
            "{}",
            render(&groups, args.verbose, stdout_wants_colour(), now_ms())
        ),
    }
    Ok(())
}

/// The groups of one monitor, judged from their samples (oldest first)
/// by the shared replay ([`lagwatch_history::status_replay`], the one the
/// API and the page use). An exact-name monitor without samples still gets
/// a row, UNKNOWN.
pub fn judge(
    monitor: &Monitor,
    points: &[PartitionPoint],
    rules: &RuleSet,
    firing: &[AlertView],
) -> Vec<GroupStatusView> {
    replay(monitor, points, rules)
        .into_iter()
        .map(|group| {
            let lags: Vec<i64> = group.partitions.iter().filter_map(|p| p.lag).collect();
            let mut rules_firing: Vec<String> = firing
                .iter()
                .filter(|a| a.monitor_id == monitor.id && a.consumer_group == group.consumer_group)
                .map(|a| a.rule.clone())
                .collect();
            rules_firing.sort();
            rules_firing.dedup();
            GroupStatusView {
                monitor_id: monitor.id,
                team: monitor.team.clone(),
                cluster: monitor.cluster.clone(),
                status: word(group.status).to_string(),
                max_lag: lags.iter().copied().max(),
                total_lag: (!lags.is_empty()).then(|| lags.iter().sum()),
                max_time_lag_ms: group
                    .partitions
                    .iter()
                    .filter_map(|p| p.newest.time_lag_ms)
                    .max(),
                members: group.members,
                group_state: group.group_state,
                sampled_at_ms: group.newest_ts_ms,
                firing: rules_firing,
                consumer_group: group.consumer_group,
                partitions: group
                    .partitions
                    .into_iter()
                    .map(|p| PartitionStatus {
                        status: word(p.status).to_string(),
                        lag: p.lag,
                        time_lag_ms: p.newest.time_lag_ms,
                        committed_offset: p.newest.committed_offset,
                        end_offset: p.newest.end_offset,
                        lso_offset: p.newest.lso_offset,
                        samples: p.samples,
                        topic: p.newest.topic,
                        partition: p.newest.partition,
                    })
                    .collect(),
            }
        })
        .collect()
}

/// The upper-case word for a status.
pub fn word(status: Status) -> &'static str {
    status_word(status)
}

/// ANSI colour of a status word.
fn status_colour(word: &str) -> Option<&'static str> {
    match word {
        "OK" => Some("32"),
        "WARN" => Some("33"),
        "STALL" | "STOP" | "REWIND" => Some("1;31"),
        "UNKNOWN" => Some("2"),
        _ => None,
    }
}

/// The table(s) for people: one line per group, with `verbose` a second
/// table with every partition.
pub fn render(groups: &[GroupStatusView], verbose: bool, colour: bool, now_ms: i64) -> String {
    if groups.is_empty() {
        return "no monitors (lagwatch monitors add ...)\n".to_string();
    }
    let mut table = Table::new(&[
        "monitor",
        "team",
        "cluster",
        "group",
        "status",
        ">max lag",
        ">time lag",
        ">members",
        "state",
        ">sampled",
        "firing",
    ]);
    for g in groups {
        table.row(vec![
            g.monitor_id.to_string(),
            g.team.clone(),
            g.cluster.clone(),
            g.consumer_group.clone(),
            g.status.clone(),
            or_dash(g.max_lag),
            g.max_time_lag_ms
                .map_or_else(|| "-".into(), format_time_lag),
            or_dash(g.members),
            g.group_state.clone().unwrap_or_else(|| "-".into()),
            g.sampled_at_ms.map_or_else(
                || format!("none in {}m", STATUS_WINDOW_SECS / 60),
                |ts| format_age(now_ms - ts),
            ),
            if g.firing.is_empty() {
                "-".into()
            } else {
                g.firing.join(",")
            },
        ]);
    }
    let paint = |_row: usize, column: usize, cell: &str| match column {
        4 => status_colour(cell),
        10 if cell != "-" => Some("1;31"),
        _ => None,
    };
    let mut out = table.render(if colour { &paint } else { &plain });
    if verbose {
        let mut parts = Table::new(&[
            "monitor",
            "group",
            "topic",
            ">partition",
            "status",
            ">lag",
            ">time lag",
            ">committed",
            ">end",
            ">samples",
        ]);
        for g in groups {
            for p in &g.partitions {
                parts.row(vec![
                    g.monitor_id.to_string(),
                    g.consumer_group.clone(),
                    p.topic.clone(),
                    p.partition.to_string(),
                    p.status.clone(),
                    or_dash(p.lag),
                    p.time_lag_ms.map_or_else(|| "-".into(), format_time_lag),
                    or_dash(p.committed_offset),
                    p.end_offset.to_string(),
                    p.samples.to_string(),
                ]);
            }
        }
        if !parts.is_empty() {
            let paint = |_row: usize, column: usize, cell: &str| match column {
                4 => status_colour(cell),
                _ => None,
            };
            out.push('\n');
            out.push_str(&parts.render(if colour { &paint } else { &plain }));
        }
    }
    out
}

fn or_dash<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".into(), |v| v.to_string())
}

/// A time lag rounded to whole seconds (`0s`, `42s`, `3m 5s`, `2h 1m 3s`).
pub fn format_time_lag(ms: i64) -> String {
    let secs = u64::try_from(ms.max(0) / 1_000).unwrap_or(0);
    humantime::format_duration(Duration::from_secs(secs)).to_string()
}

/// How long ago, coarsely: `4s ago`, `3m ago`, `2h ago`, `5d ago`.
pub fn format_age(ms: i64) -> String {
    let secs = ms.max(0) / 1_000;
    match secs {
        0..60 => format!("{secs}s ago"),
        60..3_600 => format!("{}m ago", secs / 60),
        3_600..86_400 => format!("{}h ago", secs / 3_600),
        _ => format!("{}d ago", secs / 86_400),
    }
}

/// ISO 8601 UTC time of a ms timestamp, to the second (`2026-11-30T22:46:59Z`).
pub fn format_time_ms(ms: i64) -> String {
    let time = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    // RFC 3339 has four-digit years: clamp at 9999-12-31T23:59:59Z.
    let last = UNIX_EPOCH + Duration::from_secs(253_402_300_799);
    humantime::format_rfc3339_seconds(time.min(last)).to_string()
}

#[cfg(test)]
mod tests {
    use lagwatch_model::fixtures::MonitorBuilder;

    use super::*;

    fn monitor() -> Monitor {
        MonitorBuilder::new("billing")
            .id(7)
            .team("demo")
            .for_secs(10)
            .emails(&[])
            .build()
    }

    fn point(ts_ms: i64, committed: i64, end: i64) -> PartitionPoint {
        PartitionPoint {
            consumer_group: "billing".into(),
            topic: "orders".into(),
            partition: 0,
            ts_ms,
            committed_offset: Some(committed),
            end_offset: end,
            lso_offset: None,
            time_lag_ms: Some(65_000),
            group_state: "Empty".into(),
            members: 0,
        }
    }

    #[test]
    fn a_stuck_group_is_stall_and_a_moving_one_ok() {
        let rules = RuleSet::defaults();
        let stuck: Vec<_> = (0..6).map(|i| point(i * 5_000, 0, 1_000 + i)).collect();
        let groups = judge(&monitor(), &stuck, &rules, &[]);
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].status, "STALL");
        assert_eq!(groups[0].max_lag, Some(1_005));
        assert_eq!(groups[0].partitions[0].samples, 6);

        let moving: Vec<_> = (0..6).map(|i| point(i * 5_000, i * 200, 1_000)).collect();
        assert_eq!(judge(&monitor(), &moving, &rules, &[])[0].status, "OK");
    }

    #[test]
    fn too_few_or_no_samples_are_unknown() {
        let rules = RuleSet::defaults();
        let few = [point(0, 0, 10), point(5_000, 0, 20)];
        assert_eq!(judge(&monitor(), &few, &rules, &[])[0].status, "UNKNOWN");
        let none = judge(&monitor(), &[], &rules, &[]);
        assert_eq!(none[0].status, "UNKNOWN");
        assert_eq!(none[0].max_lag, None);
        let text = render(&none, false, false, 0);
        assert!(text.contains("none in 5m"), "{text}");
    }

    #[test]
    fn times_read_as_people_write_them() {
        assert_eq!(format_time_lag(185_400), "3m 5s");
        assert_eq!(format_age(3_000), "3s ago");
        assert_eq!(format_age(185_000), "3m ago");
        assert_eq!(format_time_ms(1_796_073_199_263), "2026-11-30T21:13:19Z");
    }
}
