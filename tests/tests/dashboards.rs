//! The Grafana dashboards in `dashboards/grafana`: static consistency checks,
//! and every panel, variable and annotation query run on the real ClickHouse
//! engine against deterministic seeded data, the way Grafana's ClickHouse
//! plugin would run it (variables interpolated, then the plugin's macros
//! expanded).
//!
//! Needs `tests/infra/up.sh` (the ClickHouse engine front).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, ensure, Context, Result};
use common::grafana_sql::{expand, hex, percent_encode_strict, scan, Range, MACROS};
use lagwatch_history::ClickHouseConfig;
use serde_json::{json, Value};

const DS_UID: &str = "lagwatch-clickhouse";
const DS_TYPE: &str = "grafana-clickhouse-datasource";
const GROUP_UID: &str = "lagwatch-group";
const BROKER_UID: &str = "lagwatch-brokers";

// ------------------------------------------------------------ dashboards --

struct Dashboard {
    file: String,
    json: Value,
}

impl Dashboard {
    fn uid(&self) -> &str {
        self.json["uid"].as_str().unwrap_or_default()
    }

    /// Every panel, including those nested in collapsed rows.
    fn panels(&self) -> Vec<&Value> {
        let mut out = Vec::new();
        for panel in self.json["panels"].as_array().into_iter().flatten() {
            out.push(panel);
            out.extend(panel["panels"].as_array().into_iter().flatten());
        }
        out
    }

    fn variables(&self) -> Vec<&Value> {
        self.json["templating"]["list"]
            .as_array()
            .into_iter()
            .flatten()
            .collect()
    }

    /// Annotation queries, without Grafana's built-in one.
    fn annotations(&self) -> Vec<&Value> {
        self.json["annotations"]["list"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["builtIn"].as_i64() != Some(1))
            .collect()
    }

    fn panel(&self, title: &str) -> Result<&Value> {
        self.panels()
            .into_iter()
            .find(|p| p["title"].as_str() == Some(title))
            .with_context(|| format!("{}: no panel titled {title:?}", self.file))
    }

    /// Every SQL text: (where, sql, format), format 0 = time series.
    fn queries(&self) -> Result<Vec<(String, String, i64)>> {
        let mut out = Vec::new();
        for panel in self.panels() {
            for target in panel["targets"].as_array().into_iter().flatten() {
                out.push((
                    format!(
                        "panel {:?} target {}",
                        panel["title"].as_str().unwrap_or_default(),
                        target["refId"].as_str().unwrap_or_default()
                    ),
                    target_sql(target)?,
                    target["format"].as_i64().unwrap_or(1),
                ));
            }
        }
        for variable in self.variables() {
            out.push((
                format!("variable {}", variable["name"].as_str().unwrap_or_default()),
                variable_sql(variable)?,
                1,
            ));
        }
        for annotation in self.annotations() {
            out.push((
                format!(
                    "annotation {:?}",
                    annotation["name"].as_str().unwrap_or_default()
                ),
                target_sql(&annotation["target"])?,
                1,
            ));
        }
        Ok(out)
    }
}

fn target_sql(target: &Value) -> Result<String> {
    target["rawSql"]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("target without rawSql: {target}"))
}

fn variable_sql(variable: &Value) -> Result<String> {
    match &variable["query"] {
        Value::String(sql) => Ok(sql.clone()),
        Value::Object(query) => query
            .get("rawSql")
            .or_else(|| query.get("query"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .with_context(|| format!("variable query without SQL: {variable}")),
        other => bail!("variable query is not SQL: {other}"),
    }
}

fn dashboards_dir() -> PathBuf {
    common::repo_root().join("dashboards/grafana")
}

fn load_dashboards() -> Result<Vec<Dashboard>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dashboards_dir()).context("dashboards/grafana")? {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let text = std::fs::read_to_string(&path)?;
        let json: Value =
            serde_json::from_str(&text).with_context(|| format!("{}", path.display()))?;
        let file = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        out.push(Dashboard { file, json });
    }
    out.sort_by(|a, b| a.file.cmp(&b.file));
    ensure!(!out.is_empty(), "no dashboards in dashboards/grafana");
    Ok(out)
}

fn dashboard<'a>(dashboards: &'a [Dashboard], uid: &str) -> Result<&'a Dashboard> {
    dashboards
        .iter()
        .find(|d| d.uid() == uid)
        .with_context(|| format!("no dashboard with uid {uid}"))
}

// ------------------------------------------------------- static checks --

#[test]
fn dashboards_are_consistent() -> Result<()> {
    let dashboards = load_dashboards()?;
    let mut uids = BTreeSet::new();
    for d in &dashboards {
        ensure!(!d.uid().is_empty(), "{}: no uid", d.file);
        ensure!(
            uids.insert(d.uid().to_string()),
            "duplicate uid {}",
            d.uid()
        );
        ensure!(
            d.json["title"].as_str().is_some_and(|t| !t.is_empty()),
            "{}: no title",
            d.file
        );
    }
    // Mails link to /d/lagwatch-group?var-cluster=..&var-group=..
    let group = dashboard(&dashboards, GROUP_UID)?;
    let group_vars: BTreeSet<_> = group
        .variables()
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    for name in ["cluster", "team", "group", "topic"] {
        ensure!(group_vars.contains(name), "group dashboard lacks ${name}");
    }
    dashboard(&dashboards, BROKER_UID)?;

    let is_ours = |ds: &Value| ds["uid"].as_str() == Some(DS_UID) && ds["type"] == DS_TYPE;
    for d in &dashboards {
        let file = &d.file;
        let mut ids = BTreeSet::new();
        for panel in d.panels() {
            let title = panel["title"].as_str().unwrap_or_default();
            let id = panel["id"]
                .as_i64()
                .with_context(|| format!("{file}: panel {title:?} has no id"))?;
            ensure!(ids.insert(id), "{file}: duplicate panel id {id}");
            ensure!(
                panel["gridPos"]["w"].as_i64().is_some(),
                "{file}: panel {title:?} has no gridPos"
            );
            if panel["type"] == "row" {
                ensure!(
                    panel["targets"].is_null(),
                    "{file}: row {title:?} has queries"
                );
                continue;
            }
            ensure!(
                is_ours(&panel["datasource"]),
                "{file}: panel {title:?} datasource {}",
                panel["datasource"]
            );
            let targets = panel["targets"].as_array().map(Vec::as_slice);
            ensure!(
                targets.is_some_and(|t| !t.is_empty()),
                "{file}: panel {title:?} has no query"
            );
            let mut ref_ids = BTreeSet::new();
            for target in targets.into_iter().flatten() {
                ensure!(
                    is_ours(&target["datasource"]),
                    "{file}: panel {title:?} target datasource {}",
                    target["datasource"]
                );
                ensure!(
                    target["queryType"] == "sql" && target["editorType"] == "sql",
                    "{file}: panel {title:?}: queryType/editorType must be sql"
                );
                let format = target["format"].as_i64();
                ensure!(
                    matches!(format, Some(0 | 1)),
                    "{file}: panel {title:?}: format {format:?}"
                );
                ensure!(
                    (format == Some(0)) == (panel["type"] == "timeseries"),
                    "{file}: panel {title:?}: time series panels (only) use format 0"
                );
                ensure!(
                    ref_ids.insert(target["refId"].as_str().unwrap_or_default()),
                    "{file}: panel {title:?}: duplicate refId"
                );
            }
        }
        for variable in d.variables() {
            let name = variable["name"].as_str().unwrap_or_default();
            ensure!(
                variable["type"] == "query" && is_ours(&variable["datasource"]),
                "{file}: variable {name} must be a query on {DS_UID}"
            );
            ensure!(
                variable["multi"] == true && variable["includeAll"] == true,
                "{file}: variable {name} must be multi-select with All"
            );
        }
        for annotation in d.annotations() {
            let name = annotation["name"].as_str().unwrap_or_default();
            ensure!(
                is_ours(&annotation["datasource"]),
                "{file}: annotation {name:?} datasource"
            );
            let target = &annotation["target"];
            ensure!(
                target["queryType"] == "sql" && target["format"] == 1,
                "{file}: annotation {name:?} must be a table SQL query"
            );
        }

        // Variable references: defined (variable queries: defined earlier,
        // so the chain resolves in order), always quoted; macros known;
        // every variable used.
        let defined: Vec<String> = d
            .variables()
            .iter()
            .filter_map(|v| v["name"].as_str().map(str::to_string))
            .collect();
        let unique_names: BTreeSet<_> = defined.iter().collect();
        ensure!(
            unique_names.len() == defined.len(),
            "{file}: duplicate variable names"
        );
        let mut used = BTreeSet::new();
        for (place, sql, _) in d.queries()? {
            ensure!(
                !sql.to_ascii_uppercase().contains("FORMAT ") && !sql.trim_end().ends_with(';'),
                "{file}: {place}: no FORMAT clause or ';' (the plugin adds its own)"
            );
            let (vars, macros) = scan(&sql)?;
            if place.starts_with("variable ") {
                ensure!(
                    sql.starts_with("SELECT DISTINCT hex("),
                    "{file}: {place}: the values must be `hex(..)` (the text comes second)"
                );
            }
            let visible: &[String] = match place.strip_prefix("variable ") {
                Some(own) => {
                    let i = defined.iter().position(|n| n == own).unwrap_or(0);
                    &defined[..i]
                }
                None => &defined,
            };
            for var in vars {
                ensure!(
                    visible.contains(&var.name),
                    "{file}: {place}: ${} is not defined (before it)",
                    var.name
                );
                // The filter form that is safe for any bytes (see filter_for).
                let form = filter_for("", &var.name);
                let reference = format!("${{{}:percentencode}}", var.name);
                let (before, after) = form.split_once(&reference).unwrap_or_default();
                ensure!(
                    var.format.as_deref() == Some("percentencode")
                        && sql[..var.start].ends_with(before)
                        && sql[var.end..].starts_with(after),
                    "{file}: {place}: use `<column>{form}` (hex values, percent-encoded)"
                );
                used.insert(var.name);
            }
            for m in macros {
                ensure!(
                    MACROS.contains(&m.as_str()),
                    "{file}: {place}: unknown macro $__{m}"
                );
            }
        }
        for name in &defined {
            ensure!(used.contains(name), "{file}: variable {name} is never used");
        }
    }

    // Provisioning: the datasource with the uid every dashboard refers to.
    let provisioning = common::repo_root().join("dashboards/provisioning");
    let datasources =
        std::fs::read_to_string(provisioning.join("datasources/lagwatch-clickhouse.yaml"))?;
    let lines: Vec<&str> = datasources.lines().map(str::trim).collect();
    for line in [
        format!("uid: {DS_UID}"),
        format!("type: {DS_TYPE}"),
        "defaultDatabase: lagwatch".to_string(),
    ] {
        ensure!(
            lines.contains(&line.as_str()),
            "datasource provisioning lacks `{line}`"
        );
    }
    let providers = std::fs::read_to_string(provisioning.join("dashboards/lagwatch.yaml"))?;
    ensure!(
        providers.contains("type: file") && providers.contains("path:"),
        "dashboard provider must load the JSON files"
    );
    Ok(())
}

#[test]
fn scanner_and_expander_follow_grafana() -> Result<()> {
    let range = Range {
        from: 1_700_000_000,
        to: 1_700_003_600,
        interval_s: 30,
    };
    let vars = BTreeMap::from([
        (
            "cluster".to_string(),
            vec!["a".to_string(), "o'k".to_string()],
        ),
        ("group".to_string(), vec![]),
    ]);
    let sql = expand(
        "SELECT $__timeInterval(ts) AS t FROM x WHERE $__timeFilter(ts) AND c IN (${cluster:singlequote}) \
         AND g IN (${group:singlequote}) AND d = $__interval_s AND $__fromTime < $__toTime_ms \
         AND $__dateFilter(day) AND p = '${cluster:percentencode}'",
        &range,
        &vars,
    )?;
    assert_eq!(
        sql,
        "SELECT toStartOfInterval(toDateTime(ts), INTERVAL 30 second) AS t FROM x \
         WHERE ts >= toDateTime(1700000000) AND ts <= toDateTime(1700003600) \
         AND c IN ('a','o\\'k') AND g IN () AND d = 30 \
         AND toDateTime(1700000000) < fromUnixTimestamp64Milli(1700003600000) \
         AND day >= toDate('2023-11-14') AND day <= toDate('2023-11-14') \
         AND p = '%7Ba%2Co%27k%7D'"
    );
    assert_eq!(hex("a\\é"), "615CC3A9");
    assert_eq!(
        percent_encode_strict("{a\\'(é) ~,}"),
        "%7Ba%5C%27%28%C3%A9%29%20~%2C%7D"
    );
    assert!(expand("SELECT $__nope", &range, &vars).is_err());
    assert!(expand("SELECT ${team:singlequote}", &range, &vars).is_err());
    Ok(())
}

// ------------------------------------------------------------ variables --

/// The only way a dashboard may use variable `name`: its values are
/// hex-encoded names (the variable query's first column is `hex(..)`),
/// passed percent-encoded inside a string literal and decoded by
/// ClickHouse. Whatever the values (even forged in a URL), the literal holds
/// only `[A-Za-z0-9%._~-]` and the filter compares whole decoded names.
fn filter_for(column: &str, name: &str) -> String {
    format!(
        "{column} IN (SELECT unhex(arrayJoin(extractAll(decodeURLComponent('${{{name}:percentencode}}'), '[0-9A-F]+'))))"
    )
}

// ------------------------------------------------------------ ClickHouse --

/// A query result: column names and rows.
#[derive(Debug)]
struct Table {
    columns: Vec<String>,
    rows: Vec<Vec<Value>>,
}

impl Table {
    fn col(&self, name: &str) -> Result<usize> {
        self.columns
            .iter()
            .position(|c| c == name)
            .with_context(|| format!("no column {name} in {:?}", self.columns))
    }

    fn get<'a>(&self, row: &'a [Value], name: &str) -> Result<&'a Value> {
        Ok(&row[self.col(name)?])
    }

    fn f64(&self, row: &[Value], name: &str) -> Result<f64> {
        number(self.get(row, name)?).with_context(|| format!("column {name}"))
    }

    fn str<'a>(&self, row: &'a [Value], name: &str) -> Result<&'a str> {
        self.get(row, name)?
            .as_str()
            .with_context(|| format!("column {name} is not a string"))
    }

    /// The rows whose column `name` equals `value`.
    fn rows_where<'a>(&'a self, name: &str, value: &str) -> Result<Vec<&'a [Value]>> {
        let i = self.col(name)?;
        Ok(self
            .rows
            .iter()
            .filter(|r| r[i].as_str() == Some(value))
            .map(Vec::as_slice)
            .collect())
    }

    /// (value, text) of every row, as the ClickHouse plugin turns a
    /// variable query into options: one column is both, otherwise the first
    /// column is the value and the second the text.
    fn options(&self) -> Vec<(String, String)> {
        let cell = |v: &Value| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        self.rows
            .iter()
            .filter_map(|r| {
                let value = cell(r.first()?);
                let text = r.get(1).map_or_else(|| value.clone(), cell);
                Some((value, text))
            })
            .collect()
    }
}

fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * b.abs().max(1.0)
}

#[derive(Clone)]
struct Ch {
    client: clickhouse::Client,
}

impl Ch {
    async fn execute(&self, sql: &str) -> Result<()> {
        self.client
            .query_raw(sql)
            .execute()
            .await
            .with_context(|| format!("ClickHouse failed on: {}", head(sql)))
    }

    async fn select(&self, sql: &str) -> Result<Table> {
        let bytes = self
            .client
            .query_raw(sql)
            .fetch_bytes("JSONCompactEachRowWithNames")?
            .collect()
            .await
            .with_context(|| format!("ClickHouse failed on:\n{sql}"))?;
        let text = std::str::from_utf8(&bytes)?;
        let mut lines = text.lines().filter(|l| !l.is_empty());
        let columns: Vec<String> = match lines.next() {
            Some(header) => serde_json::from_str(header)?,
            None => Vec::new(),
        };
        let rows = lines
            .map(serde_json::from_str)
            .collect::<Result<Vec<Vec<Value>>, _>>()?;
        Ok(Table { columns, rows })
    }
}

fn head(sql: &str) -> String {
    sql.chars().take(300).collect()
}

/// Variable values: Grafana's All (every option) unless overridden.
type Selection = BTreeMap<String, Vec<String>>;

/// Resolves a dashboard's chained variables in order, as Grafana does:
/// each variable's query runs with the values chosen for the ones before.
/// `overrides` name options by their text. Returns (option texts,
/// selected values).
async fn resolve(
    ch: &Ch,
    d: &Dashboard,
    range: &Range,
    overrides: &[(&str, &[&str])],
) -> Result<(Selection, Selection)> {
    let mut options = Selection::new();
    let mut selected = Selection::new();
    for variable in d.variables() {
        let name = variable["name"].as_str().unwrap_or_default().to_string();
        let sql = expand(&variable_sql(variable)?, range, &selected)?;
        let found = ch
            .select(&sql)
            .await
            .with_context(|| format!("{}: variable {name}", d.file))?
            .options();
        for (value, text) in &found {
            ensure!(
                *value == hex(text),
                "{}: ${name} option {text:?} has value {value:?}, not hex(text)",
                d.file
            );
        }
        let choice = match overrides.iter().find(|(n, _)| *n == name) {
            Some((_, texts)) => {
                let mut values = Vec::new();
                for t in *texts {
                    let (value, _) =
                        found.iter().find(|(_, text)| text == t).with_context(|| {
                            format!("{}: {t:?} is not an option of ${name}: {found:?}", d.file)
                        })?;
                    values.push(value.clone());
                }
                values
            }
            None => found.iter().map(|(value, _)| value.clone()).collect(),
        };
        options.insert(
            name.clone(),
            found.into_iter().map(|(_, text)| text).collect(),
        );
        selected.insert(name, choice);
    }
    Ok((options, selected))
}

/// Runs the first query of the panel titled `title`.
async fn panel(
    ch: &Ch,
    d: &Dashboard,
    title: &str,
    range: &Range,
    vars: &Selection,
) -> Result<Table> {
    let sql = target_sql(&d.panel(title)?["targets"][0])?;
    let sql = expand(&sql, range, vars)?;
    ch.select(&sql)
        .await
        .with_context(|| format!("{}: panel {title:?}", d.file))
}

/// Runs every query of every dashboard; checks time series come out with a
/// leading, ascending `time` column.
async fn run_everything(ch: &Ch, dashboards: &[Dashboard], range: &Range) -> Result<usize> {
    let mut count = 0;
    for d in dashboards {
        let (_, vars) = resolve(ch, d, range, &[]).await?;
        for (place, sql, format) in d.queries()? {
            let expanded = expand(&sql, range, &vars)?;
            let table = ch
                .select(&expanded)
                .await
                .with_context(|| format!("{}: {place} over {range:?}", d.file))?;
            if format == 0 && !table.columns.is_empty() {
                ensure!(
                    table.columns[0] == "time",
                    "{}: {place}: time series must start with `time`",
                    d.file
                );
                let times: Vec<f64> = table.rows.iter().filter_map(|r| number(&r[0])).collect();
                ensure!(
                    times.len() == table.rows.len() && times.windows(2).all(|w| w[0] <= w[1]),
                    "{}: {place}: time must be numeric and ascending",
                    d.file
                );
            }
            count += 1;
        }
    }
    Ok(count)
}

// ------------------------------------------------------------ seed data --

const SAMPLE_EVERY_S: i64 = 30;
const SAMPLES: i64 = 240; // two hours
const END0: i64 = 1_000_000;

/// One partition of one group: end offset grows by `rate` msg/s, lag is
/// `lag0 + growth * i` at sample i; `committed: false` = never committed.
struct Part {
    cluster: &'static str,
    group: &'static str,
    topic: &'static str,
    partition: i32,
    rate: i64,
    lag0: i64,
    growth: i64,
    committed: bool,
}

const fn part(
    cluster: &'static str,
    group: &'static str,
    topic: &'static str,
    partition: i32,
    rate: i64,
    lag0: i64,
    growth: i64,
) -> Part {
    Part {
        cluster,
        group,
        topic,
        partition,
        rate,
        lag0,
        growth,
        committed: true,
    }
}

const PARTS: &[Part] = &[
    part("east", "orders-svc", "orders", 0, 50, 100, 0),
    part("east", "orders-svc", "orders", 1, 40, 200, 30),
    part("east", "orders-svc", "orders", 2, 30, 50, 0),
    part("east", "orders-svc", "payments", 0, 10, 10, 0),
    part("east", "orders-svc", "payments", 1, 10, 5, 0),
    part("east", "billing", "orders", 0, 50, 1000, 0),
    part("east", "billing", "orders", 1, 40, 0, 0),
    part("east", "billing", "orders", 2, 30, 0, 0),
    part("west", "audit", "audit-log", 0, 5, 300, 0),
    Part {
        committed: false,
        ..part("west", "audit", "audit-log", 1, 5, 0, 0)
    },
];

impl Part {
    fn end(&self, i: i64) -> i64 {
        END0 + self.rate * SAMPLE_EVERY_S * i
    }
    fn lag(&self, i: i64) -> Option<i64> {
        self.committed.then(|| self.lag0 + self.growth * i)
    }
    fn committed_offset(&self, i: i64) -> Option<i64> {
        self.lag(i).map(|lag| self.end(i) - lag)
    }
    fn time_lag_ms(&self, i: i64) -> Option<i64> {
        self.lag(i).map(|lag| lag * 1000 / self.rate)
    }
    fn series(&self) -> String {
        format!("{}/{}", self.cluster, self.group)
    }
}

/// (state, members) of a group at sample i.
fn group_state(group: &str, i: i64) -> (&'static str, u32) {
    match group {
        "orders-svc" if i < 200 => ("PreparingRebalance", 2),
        "orders-svc" => ("Stable", 3),
        "billing" => ("Empty", 0),
        _ => ("Stable", 2),
    }
}

fn sql_opt(v: Option<i64>) -> String {
    v.map_or("NULL".to_string(), |v| v.to_string())
}

/// Rows written straight into a rollup (no raw samples behind them), to
/// prove which branch of a tiered query answered.
const MARKER_1M_AGO_S: i64 = 3 * 86_400;
const MARKER_1M_LAG: i64 = 999;
const MARKER_1H_AGO_S: i64 = 35 * 86_400;
const MARKER_1H_LAG: i64 = 4242;

async fn seed(ch: &Ch, start: i64) -> Result<()> {
    // Raw samples; the materialized views fill both rollups.
    let mut values = Vec::new();
    for i in 0..SAMPLES {
        let ts_ms = (start + SAMPLE_EVERY_S * i) * 1000;
        for p in PARTS {
            let (state, members) = group_state(p.group, i);
            values.push(format!(
                "({ts_ms},'{}','{}','{}',{},{},{},{},{},'{state}',{members})",
                p.cluster,
                p.group,
                p.topic,
                p.partition,
                sql_opt(p.committed_offset(i)),
                p.end(i),
                sql_opt(p.lag(i)),
                sql_opt(p.time_lag_ms(i)),
            ));
        }
    }
    ch.execute(&format!(
        "INSERT INTO lag_samples (ts, cluster, consumer_group, topic, partition, \
         committed_offset, end_offset, time_lag_ms, group_state, members) \
         SELECT fromUnixTimestamp64Milli(ts_ms, 'UTC'), cluster, \
         consumer_group, topic, partition, committed_offset, end_offset, time_lag_ms, \
         group_state, members FROM values('ts_ms Int64, cluster String, consumer_group String, \
         topic String, partition Int32, committed_offset Nullable(Int64), end_offset Int64, \
         lag Nullable(Int64), time_lag_ms Nullable(Int64), group_state String, members UInt32', {})",
        values.join(",")
    ))
    .await?;

    // Markers: partition 9 has no raw samples.
    ch.execute(&format!(
        "INSERT INTO lag_samples_1m VALUES ({}, 'east', 'orders-svc', 'orders', 9, \
         {MARKER_1M_LAG}, {}, 2, 1000, 500, 400)",
        start - MARKER_1M_AGO_S,
        2 * MARKER_1M_LAG
    ))
    .await?;
    ch.execute(&format!(
        "INSERT INTO lag_samples_1h VALUES ({}, 'east', 'orders-svc', 'orders', 9, \
         {MARKER_1H_LAG}, {}, 3, 1000, 500, 400)",
        start - MARKER_1H_AGO_S,
        3 * MARKER_1H_LAG
    ))
    .await?;

    // Alerts: orders-svc fires, resolves, fires again (firing at the end);
    // billing fires and resolves; audit fired and resolved before the range.
    let alerts = [
        (
            start + 1800,
            "fp-orders",
            "orders-lag",
            "firing",
            "team-a",
            "orders-svc",
        ),
        (
            start + 3600,
            "fp-orders",
            "orders-lag",
            "resolved",
            "team-a",
            "orders-svc",
        ),
        (
            start + 5400,
            "fp-orders",
            "orders-lag",
            "firing",
            "team-a",
            "orders-svc",
        ),
        (
            start + 600,
            "fp-billing",
            "billing-lag",
            "firing",
            "team-b",
            "billing",
        ),
        (
            start + 1200,
            "fp-billing",
            "billing-lag",
            "resolved",
            "team-b",
            "billing",
        ),
        (
            start - 2 * 86_400,
            "fp-audit",
            "audit-lag",
            "firing",
            "team-b",
            "audit",
        ),
        (
            start - 86_400,
            "fp-audit",
            "audit-lag",
            "resolved",
            "team-b",
            "audit",
        ),
    ];
    let values: Vec<String> = alerts
        .iter()
        .map(|(ts, fp, rule, state, team, group)| {
            let cluster = if *group == "audit" { "west" } else { "east" };
            format!(
                "(fromUnixTimestamp64Milli({}, 'UTC'), '{fp}', '{rule}', '{state}', 1, '{team}', \
                 '{cluster}', '{group}', 5000, 7000, 1000, '[]')",
                ts * 1000
            )
        })
        .collect();
    ch.execute(&format!(
        "INSERT INTO alert_events (ts, fingerprint, rule, state, monitor_id, team, cluster, consumer_group, max_lag, total_lag, threshold, partitions) VALUES {}",
        values.join(",")
    ))
    .await?;

    // Team ↔ group snapshots: billing moved from team-a to team-b.
    let old = (start - 86_400) * 1000;
    let now = start * 1000;
    ch.execute(&format!(
        "INSERT INTO monitor_groups SELECT team, cluster, consumer_group, monitor_id, \
         fromUnixTimestamp64Milli(at, 'UTC') FROM values('team String, cluster String, \
         consumer_group String, monitor_id Int64, at Int64', \
         ('team-a','east','orders-svc',1,{old}), ('team-a','east','billing',2,{old}), \
         ('team-b','west','audit',3,{old}), \
         ('team-a','east','orders-svc',1,{now}), ('team-b','east','billing',2,{now}), \
         ('team-b','west','audit',3,{now}))"
    ))
    .await?;

    // Broker metrics every minute over the second hour.
    let mut values = Vec::new();
    for j in 0..60_i64 {
        let ts_ms = (start + 3600 + 60 * j) * 1000;
        for (cluster, brokers, topics) in [
            ("east", 3, &[("orders", 0.6), ("payments", 0.4)][..]),
            ("west", 2, &[("audit-log", 1.0)][..]),
        ] {
            for broker in 1..=brokers {
                let b = f64::from(broker);
                let hot = cluster == "east" && broker == 2;
                let mut metric = |name: &str, topic: &str, value: f64| {
                    values.push(format!(
                        "({ts_ms},'{cluster}',{broker},'{name}','{topic}',{value})"
                    ));
                };
                metric(
                    "UnderReplicatedPartitions",
                    "",
                    if hot && j >= 40 { 4.0 } else { 0.0 },
                );
                metric(
                    "UnderMinIsrPartitionCount",
                    "",
                    if hot && j >= 55 { 1.0 } else { 0.0 },
                );
                metric("OfflinePartitionsCount", "", 0.0);
                metric(
                    "ActiveControllerCount",
                    "",
                    if broker == 1 { 1.0 } else { 0.0 },
                );
                metric("RequestHandlerAvgIdlePercent", "", 1.0 - 0.1 * b);
                metric("NetworkProcessorAvgIdlePercent", "", 0.95);
                metric(
                    "IsrShrinksPerSec",
                    "",
                    if hot && j >= 40 { 0.5 } else { 0.0 },
                );
                for (topic, share) in [("", 1.0)].iter().chain(topics) {
                    metric("BytesInPerSec", topic, 1000.0 * b * share);
                    metric("BytesOutPerSec", topic, 2000.0 * b * share);
                    metric("MessagesInPerSec", topic, 10.0 * b * share);
                }
            }
        }
    }
    ch.execute(&format!(
        "INSERT INTO broker_metrics SELECT fromUnixTimestamp64Milli(ts_ms, 'UTC'), cluster, \
         broker, metric, topic, value FROM values('ts_ms Int64, cluster String, broker Int32, \
         metric String, topic String, value Float64', {})",
        values.join(",")
    ))
    .await?;
    Ok(())
}

/// Expected "Total lag per group": per bucket of `bucket_s`, the sum over
/// partitions of their average lag (a missing lag counts as 0, as in the
/// rollups).
fn expected_total_lag(start: i64, bucket_s: i64) -> BTreeMap<(String, i64), f64> {
    let mut per_partition: BTreeMap<(String, i64, &str, i32), (f64, f64)> = BTreeMap::new();
    for i in 0..SAMPLES {
        let t = start + SAMPLE_EVERY_S * i;
        let bucket = t - t.rem_euclid(bucket_s);
        for p in PARTS {
            let entry = per_partition
                .entry((p.series(), bucket, p.topic, p.partition))
                .or_default();
            entry.0 += p.lag(i).unwrap_or(0) as f64;
            entry.1 += 1.0;
        }
    }
    let mut out = BTreeMap::new();
    for ((series, bucket, _, _), (sum, n)) in per_partition {
        *out.entry((series, bucket)).or_default() += sum / n;
    }
    out
}

/// The (series, time) → column map of a time-series result.
fn series_values(table: &Table, column: &str) -> Result<BTreeMap<(String, i64), f64>> {
    let mut out = BTreeMap::new();
    for row in &table.rows {
        let time = table.f64(row, "time")? as i64;
        let series = table.str(row, "series")?.to_string();
        ensure!(
            out.insert((series, time), table.f64(row, column)?)
                .is_none(),
            "duplicate point"
        );
    }
    Ok(out)
}

fn assert_series_eq(
    what: &str,
    got: &BTreeMap<(String, i64), f64>,
    want: &BTreeMap<(String, i64), f64>,
) -> Result<()> {
    let got_keys: Vec<_> = got.keys().collect();
    let want_keys: Vec<_> = want.keys().collect();
    ensure!(
        got_keys == want_keys,
        "{what}: points differ\n got: {got_keys:?}\nwant: {want_keys:?}"
    );
    for (key, w) in want {
        let g = got[key];
        ensure!(close(g, *w), "{what}: {key:?} = {g}, want {w}");
    }
    Ok(())
}

// ------------------------------------------------------------------ test --

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_query_runs_and_shows_the_seeded_data() -> Result<()> {
    in_fresh_database("lagwatch_dash", checks).await
}

/// Runs `body` against a freshly migrated database, dropped afterwards
/// (kept on failure with `LAGWATCH_KEEP_DB`).
async fn in_fresh_database<F, Fut>(prefix: &str, body: F) -> Result<()>
where
    F: FnOnce(Ch, Vec<Dashboard>) -> Fut,
    Fut: std::future::Future<Output = Result<()>> + Send + 'static,
{
    let dashboards = load_dashboards()?;
    let database = common::unique(prefix);
    let config: ClickHouseConfig = serde_json::from_value(json!({
        "url": common::clickhouse_url(),
        "database": database,
    }))?;
    lagwatch_history::migrate(&config).await.with_context(|| {
        format!(
            "ClickHouse at {} (run tests/infra/up.sh)",
            common::clickhouse_url()
        )
    })?;
    let ch = Ch {
        client: clickhouse::Client::default()
            .with_url(common::clickhouse_url())
            .with_database(&database)
            .with_compression(clickhouse::Compression::None)
            .with_validation(false)
            .with_setting("output_format_json_quote_64bit_integers", "0")
            .with_setting("date_time_output_format", "unix_timestamp"),
    };
    // Checks run in a task so that a failed assertion (a panic) still
    // reaches the clean-up below.
    let task = tokio::spawn(body(ch.clone(), dashboards));
    let result = match task.await {
        Ok(result) => result,
        Err(e) => Err(anyhow::anyhow!("checks panicked: {e}")),
    };
    if result.is_ok() || std::env::var_os("LAGWATCH_KEEP_DB").is_none() {
        ch.execute(&format!("DROP DATABASE IF EXISTS {database}"))
            .await?;
    } else {
        eprintln!("kept database {database}");
    }
    result
}

async fn checks(ch: Ch, dashboards: Vec<Dashboard>) -> Result<()> {
    let (ch, dashboards) = (&ch, &dashboards[..]);
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() as i64;
    // Hour-aligned, so 1 m, 10 m and 1 h buckets all hold whole data.
    let start = now - now.rem_euclid(3600) - 3 * 3600;
    seed(ch, start).await?;
    let to = start + 7200; // the end of the seeded data
    let raw = Range {
        from: to - 6 * 3600,
        to,
        interval_s: 60,
    };
    let week = Range {
        from: to - 7 * 86_400,
        to,
        interval_s: 600,
    };
    let forty_days = Range {
        from: to - 40 * 86_400,
        to,
        interval_s: 600,
    };

    // 1. Every query of every dashboard runs in each tier.
    for range in [&raw, &week, &forty_days] {
        let n = run_everything(ch, dashboards, range).await?;
        ensure!(n >= 20, "only {n} queries");
    }

    let group = dashboard(dashboards, GROUP_UID)?;
    let brokers = dashboard(dashboards, BROKER_UID)?;
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();

    // 2. Chained variables: cluster → team → group → topic.
    let (options, all) = resolve(ch, group, &raw, &[]).await?;
    assert_eq!(options["cluster"], strings(&["east", "west"]));
    assert_eq!(options["team"], strings(&["team-a", "team-b"]));
    assert_eq!(
        options["group"],
        strings(&["audit", "billing", "orders-svc"])
    );
    assert_eq!(
        options["topic"],
        strings(&["audit-log", "orders", "payments"])
    );
    // billing moved to team-b: the old snapshot must not count.
    let (options, team_a) = resolve(ch, group, &raw, &[("team", &["team-a"])]).await?;
    assert_eq!(options["group"], strings(&["orders-svc"]));
    assert_eq!(options["topic"], strings(&["orders", "payments"]));
    let (options, _) = resolve(ch, group, &raw, &[("team", &["team-b"])]).await?;
    assert_eq!(options["group"], strings(&["audit", "billing"]));
    let (options, _) = resolve(ch, group, &raw, &[("cluster", &["west"])]).await?;
    assert_eq!(options["team"], strings(&["team-b"]));
    assert_eq!(options["group"], strings(&["audit"]));
    assert_eq!(options["topic"], strings(&["audit-log"]));

    // 3. Group overview from the latest sample.
    let last = SAMPLES - 1;
    let overview = panel(ch, group, "Group overview", &raw, &all).await?;
    let order: Vec<&str> = overview
        .rows
        .iter()
        .map(|r| overview.str(r, "consumer_group"))
        .collect::<Result<_>>()?;
    assert_eq!(order, ["orders-svc", "audit", "billing"], "by max time lag");
    for (group_name, state, members, alert, partitions) in [
        ("orders-svc", "Stable", 3, "firing", 5),
        ("billing", "Empty", 0, "resolved", 3),
        ("audit", "Stable", 2, "resolved", 2),
    ] {
        let parts: Vec<&Part> = PARTS.iter().filter(|p| p.group == group_name).collect();
        let want_total: i64 = parts.iter().map(|p| p.lag(last).unwrap_or(0)).sum();
        let want_time_lag = parts
            .iter()
            .map(|p| p.time_lag_ms(last).unwrap_or(0))
            .max()
            .unwrap_or(0);
        let rows = overview.rows_where("consumer_group", group_name)?;
        ensure!(rows.len() == 1, "overview rows for {group_name}: {rows:?}");
        let row = rows[0];
        assert_eq!(overview.str(row, "state")?, state, "{group_name}");
        assert_eq!(overview.f64(row, "members")?, f64::from(members));
        assert_eq!(overview.str(row, "alert_status")?, alert, "{group_name}");
        assert_eq!(overview.f64(row, "total_lag")?, want_total as f64);
        assert!(close(
            overview.f64(row, "max_time_lag_s")?,
            want_time_lag as f64 / 1000.0
        ));
        assert_eq!(overview.f64(row, "partitions")?, f64::from(partitions));
        assert_eq!(
            overview.f64(row, "sampled_at")?,
            (start + SAMPLE_EVERY_S * last) as f64
        );
    }
    assert_eq!(
        overview.f64(&overview.rows[0], "max_time_lag_s")?,
        184.25,
        "orders-svc partition 1: lag 7370 at 40 msg/s"
    );
    let stat = |t: &Table| -> Result<f64> {
        let row = t.rows.first().context("stat without row")?;
        number(&row[0]).context("stat value")
    };
    let total_all: i64 = PARTS.iter().map(|p| p.lag(last).unwrap_or(0)).sum();
    assert_eq!(
        stat(&panel(ch, group, "Total lag", &raw, &all).await?)?,
        total_all as f64
    );
    assert_eq!(
        stat(&panel(ch, group, "Max time lag", &raw, &all).await?)?,
        184.25
    );
    assert_eq!(
        stat(&panel(ch, group, "Firing alerts", &raw, &all).await?)?,
        1.0
    );
    assert_eq!(
        stat(&panel(ch, group, "Groups not Stable", &raw, &all).await?)?,
        1.0,
        "billing is Empty"
    );
    // Filtered by team-a: only orders-svc.
    let overview_a = panel(ch, group, "Group overview", &raw, &team_a).await?;
    assert_eq!(overview_a.rows.len(), 1);
    assert_eq!(
        overview_a.str(&overview_a.rows[0], "consumer_group")?,
        "orders-svc"
    );

    // A mail link: /d/lagwatch-group?var-cluster=east&var-group=billing.
    let (_, mail) = resolve(
        ch,
        group,
        &raw,
        &[("cluster", &["east"]), ("group", &["billing"])],
    )
    .await?;
    let overview_b = panel(ch, group, "Group overview", &raw, &mail).await?;
    assert_eq!(overview_b.rows.len(), 1);
    assert_eq!(
        overview_b.str(&overview_b.rows[0], "consumer_group")?,
        "billing"
    );
    assert_eq!(overview_b.f64(&overview_b.rows[0], "total_lag")?, 1000.0);

    // 4. Top-N: the partition with the biggest lag first, exact values.
    let top = panel(ch, group, "Top 10 lagging partitions", &raw, &all).await?;
    let mut want: Vec<(i64, String)> = PARTS
        .iter()
        .map(|p| {
            (
                p.lag(last).unwrap_or(-1),
                format!("{}/{}/{}/{}", p.cluster, p.group, p.topic, p.partition),
            )
        })
        .collect();
    want.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    want.truncate(10);
    let got: Vec<(i64, String)> = top
        .rows
        .iter()
        .map(|r| -> Result<(i64, String)> {
            let lag = top.get(r, "lag")?;
            Ok((
                number(lag).map_or(-1, |l| l as i64),
                format!(
                    "{}/{}/{}/{}",
                    top.str(r, "cluster")?,
                    top.str(r, "consumer_group")?,
                    top.str(r, "topic")?,
                    top.f64(r, "partition")?
                ),
            ))
        })
        .collect::<Result<_>>()?;
    assert_eq!(got, want);
    assert_eq!(got[0], (7370, "east/orders-svc/orders/1".to_string()));

    // 5. Per-partition table: exact offsets.
    let table = panel(ch, group, "Partitions (latest sample)", &raw, &all).await?;
    assert_eq!(table.rows.len(), PARTS.len());
    for p in PARTS {
        let row = table
            .rows
            .iter()
            .find(|r| {
                table.str(r, "consumer_group").ok() == Some(p.group)
                    && table.str(r, "topic").ok() == Some(p.topic)
                    && table.f64(r, "partition").ok() == Some(f64::from(p.partition))
            })
            .with_context(|| format!("no row for {}/{}", p.group, p.partition))?;
        assert_eq!(table.f64(row, "end_offset")?, p.end(last) as f64);
        assert_eq!(
            number(table.get(row, "committed_offset")?),
            p.committed_offset(last).map(|v| v as f64)
        );
        assert_eq!(
            number(table.get(row, "lag")?),
            p.lag(last).map(|v| v as f64)
        );
        assert_eq!(
            number(table.get(row, "time_lag_s")?),
            p.time_lag_ms(last).map(|v| v as f64 / 1000.0)
        );
    }

    // 6. Lag over time in each tier: raw (6 h), 1-minute rollup (7 days),
    // 1-hour rollup (40 days); the markers show which table answered, the
    // exact sums show no branch double counts.
    let mut want_raw = expected_total_lag(start, 60);
    let got = series_values(
        &panel(ch, group, "Total lag per group", &raw, &all).await?,
        "total_lag",
    )?;
    assert_series_eq("total lag, raw", &got, &want_raw)?;
    let mut want_week = expected_total_lag(start, 600);
    want_week.insert(
        ("east/orders-svc".to_string(), start - MARKER_1M_AGO_S),
        MARKER_1M_LAG as f64,
    );
    let got = series_values(
        &panel(ch, group, "Total lag per group", &week, &all).await?,
        "total_lag",
    )?;
    assert_series_eq("total lag, 1m rollup", &got, &want_week)?;
    let mut want_40d = expected_total_lag(start, 3600);
    want_40d.insert(
        ("east/orders-svc".to_string(), start - MARKER_1H_AGO_S),
        MARKER_1H_LAG as f64,
    );
    let got = series_values(
        &panel(ch, group, "Total lag per group", &forty_days, &all).await?,
        "total_lag",
    )?;
    assert_series_eq("total lag, 1h rollup", &got, &want_40d)?;
    // Each tier reads only its own table: ClickHouse prunes the branches
    // whose constant guard is false.
    for (range, table) in [
        (&raw, "lag_samples"),
        (&week, "lag_samples_1m"),
        (&forty_days, "lag_samples_1h"),
    ] {
        for title in [
            "Total lag per group",
            "Max time lag per group",
            "Produce vs consume rate",
        ] {
            let sql = expand(
                &target_sql(&group.panel(title)?["targets"][0])?,
                range,
                &all,
            )?;
            let estimate = ch.select(&format!("EXPLAIN ESTIMATE {sql}")).await?;
            let mut reading = Vec::new();
            for row in &estimate.rows {
                if estimate.f64(row, "rows")? > 0.0 {
                    reading.push(estimate.str(row, "table")?.to_string());
                }
            }
            assert_eq!(reading, [table], "{title} over {range:?}");
        }
    }
    // Topic filter: payments only.
    let mut payments = all.clone();
    payments.insert("topic".into(), vec![hex("payments")]);
    let got = series_values(
        &panel(ch, group, "Total lag per group", &raw, &payments).await?,
        "total_lag",
    )?;
    want_raw.retain(|(series, _), _| series == "east/orders-svc");
    ensure!(got.len() == want_raw.len());
    ensure!(got.values().all(|v| close(*v, 15.0)), "payments lag 10 + 5");

    // Max partition lag and max time lag agree with the samples too.
    for range in [&raw, &week, &forty_days] {
        let lag = series_values(
            &panel(ch, group, "Max partition lag per group", range, &all).await?,
            "max_partition_lag",
        )?;
        let time_lag = series_values(
            &panel(ch, group, "Max time lag per group", range, &all).await?,
            "max_time_lag_s",
        )?;
        let max_of = |m: &BTreeMap<(String, i64), f64>, s: &str| {
            m.iter()
                .filter(|((series, time), _)| series == s && *time >= start)
                .map(|(_, v)| *v)
                .fold(f64::MIN, f64::max)
        };
        assert_eq!(max_of(&lag, "east/orders-svc"), 7370.0, "{range:?}");
        assert_eq!(max_of(&lag, "east/billing"), 1000.0);
        assert!(close(max_of(&time_lag, "east/orders-svc"), 184.25));
        assert!(close(max_of(&time_lag, "west/audit"), 60.0));
    }

    // 7. Produce vs consume: the seeded rates, in every tier.
    for (range, bucket_s) in [(&raw, 60), (&week, 600), (&forty_days, 3600)] {
        let table = panel(ch, group, "Produce vs consume rate", range, &all).await?;
        let produce = series_values(&table, "produce_rate")?;
        let consume = series_values(&table, "consume_rate")?;
        for (series, want_produce, want_consume) in [
            ("east/orders-svc", 140.0, 139.0),
            ("east/billing", 120.0, 120.0),
            ("west/audit", 10.0, 5.0),
        ] {
            let points: Vec<i64> = produce
                .keys()
                .filter(|(s, _)| s == series)
                .map(|(_, t)| *t)
                .collect();
            let want_points: Vec<i64> =
                (1..7200 / bucket_s).map(|k| start + k * bucket_s).collect();
            assert_eq!(points, want_points, "{series} over {range:?}");
            for t in points {
                let key = (series.to_string(), t);
                ensure!(
                    close(produce[&key], want_produce) && close(consume[&key], want_consume),
                    "{series} at {t} over {range:?}: produce {} consume {}",
                    produce[&key],
                    consume[&key]
                );
            }
        }
    }

    // 8. Alerts: table and annotations.
    let events = panel(ch, group, "Alert events", &raw, &all).await?;
    assert_eq!(events.rows.len(), 5);
    let annotation = |name: &str| -> Result<String> {
        let a = group
            .annotations()
            .into_iter()
            .find(|a| a["name"] == name)
            .with_context(|| format!("annotation {name}"))?;
        target_sql(&a["target"])
    };
    for (name, range, count) in [
        ("Alerts firing", &raw, 3),
        ("Alerts resolved", &raw, 2),
        ("Alerts firing", &week, 4),
        ("Alerts resolved", &week, 3),
    ] {
        let t = ch.select(&expand(&annotation(name)?, range, &all)?).await?;
        assert_eq!(t.rows.len(), count, "{name} over {range:?}");
        for column in ["time", "text", "tags"] {
            t.col(column)?;
        }
    }
    let firing = ch
        .select(&expand(&annotation("Alerts firing")?, &raw, &team_a)?)
        .await?;
    assert_eq!(firing.rows.len(), 2, "team-a: orders-svc only");
    assert!(firing.str(&firing.rows[0], "text")?.contains("orders-svc"));

    // 9. Broker health.
    let (options, all_b) = resolve(ch, brokers, &raw, &[]).await?;
    assert_eq!(options["cluster"], strings(&["east", "west"]));
    assert_eq!(options["broker"], strings(&["1", "2", "3"]));
    assert_eq!(
        options["topic"],
        strings(&["audit-log", "orders", "payments"])
    );
    let (options, _) = resolve(ch, brokers, &raw, &[("cluster", &["west"])]).await?;
    assert_eq!(options["broker"], strings(&["1", "2"]));
    let per_cluster = |t: &Table, column: &str| -> Result<Vec<(String, f64)>> {
        t.rows
            .iter()
            .map(|r| Ok((t.str(r, "cluster")?.to_string(), t.f64(r, column)?)))
            .collect()
    };
    let pairs = |v: &[(&str, f64)]| {
        v.iter()
            .map(|(c, x)| (c.to_string(), *x))
            .collect::<Vec<_>>()
    };
    for (title, column, want) in [
        (
            "Under-replicated partitions",
            "urp",
            pairs(&[("east", 4.0), ("west", 0.0)]),
        ),
        (
            "Under min ISR partitions",
            "under_min_isr",
            pairs(&[("east", 1.0), ("west", 0.0)]),
        ),
        (
            "Offline partitions",
            "offline",
            pairs(&[("east", 0.0), ("west", 0.0)]),
        ),
        (
            "Active controllers",
            "active_controllers",
            pairs(&[("east", 1.0), ("west", 1.0)]),
        ),
    ] {
        let t = panel(ch, brokers, title, &raw, &all_b).await?;
        assert_eq!(per_cluster(&t, column)?, want, "{title}");
    }
    // URP without the hot broker.
    let mut not_2 = all_b.clone();
    not_2.insert("broker".into(), vec![hex("1"), hex("3")]);
    let t = panel(ch, brokers, "Under-replicated partitions", &raw, &not_2).await?;
    assert_eq!(
        per_cluster(&t, "urp")?,
        pairs(&[("east", 0.0), ("west", 0.0)])
    );

    let t = panel(ch, brokers, "Brokers (latest values)", &raw, &all_b).await?;
    assert_eq!(t.rows.len(), 5);
    let east_2 = t
        .rows
        .iter()
        .find(|r| t.str(r, "cluster").ok() == Some("east") && t.f64(r, "broker").ok() == Some(2.0))
        .context("east broker 2")?;
    assert_eq!(t.f64(east_2, "urp")?, 4.0);
    assert_eq!(t.f64(east_2, "under_min_isr")?, 1.0);
    assert_eq!(t.f64(east_2, "request_idle_pct")?, 80.0);
    assert_eq!(t.f64(east_2, "network_idle_pct")?, 95.0);
    assert_eq!(t.f64(east_2, "bytes_in")?, 2000.0);
    assert_eq!(t.f64(east_2, "bytes_out")?, 4000.0);
    assert_eq!(t.f64(east_2, "messages_in")?, 20.0);
    assert_eq!(t.f64(east_2, "last_seen")?, (start + 3600 + 59 * 60) as f64);

    let urp = series_values(
        &panel(
            ch,
            brokers,
            "Under-replicated partitions per broker",
            &raw,
            &all_b,
        )
        .await?,
        "urp",
    )?;
    let hot: Vec<f64> = urp
        .iter()
        .filter(|((s, _), _)| s == "east/2")
        .map(|(_, v)| *v)
        .collect();
    assert_eq!(hot.len(), 60);
    assert_eq!(hot.iter().filter(|v| **v == 4.0).count(), 20);
    ensure!(
        urp.iter()
            .filter(|((s, _), _)| s != "east/2")
            .all(|(_, v)| *v == 0.0),
        "URP only on east/2"
    );
    let bytes = series_values(
        &panel(ch, brokers, "Bytes in per topic", &raw, &all_b).await?,
        "bytes_in",
    )?;
    for (series, want) in [
        ("east/orders", 3600.0),
        ("east/payments", 2400.0),
        ("west/audit-log", 3000.0),
    ] {
        let values: Vec<f64> = bytes
            .iter()
            .filter(|((s, _), _)| s == series)
            .map(|(_, v)| *v)
            .collect();
        ensure!(
            values.len() == 60 && values.iter().all(|v| close(*v, want)),
            "{series}: {values:?}"
        );
    }
    let idle = series_values(
        &panel(ch, brokers, "Request handler idle", &raw, &all_b).await?,
        "request_idle_pct",
    )?;
    ensure!(idle
        .iter()
        .filter(|((s, _), _)| s == "east/3")
        .all(|(_, v)| close(*v, 70.0)));
    Ok(())
}

// --------------------------------------------------------- hostile names --

/// Consumer group names a team may register (Kafka allows any bytes but
/// control characters are rare; newlines are legal). Each must stay data.
const HOSTILE_GROUPS: &[&str] = &[
    "a\\",
    "o'brien",
    "x' OR 1=1 --",
    "line\nbreak",
    "grüße-日本",
    "with space",
    "\\'); DROP TABLE lag_samples; --",
    "a,b{c}",
];
const HOSTILE_TEAM: &str = "te'am\\";

/// Lag of hostile group `k` (distinct per group, so a leak shows).
fn hostile_lag(k: usize) -> i64 {
    100 * (k as i64 + 1)
}

/// A ClickHouse expression for `text` that needs no quoting rules.
fn unhex_sql(text: &str) -> String {
    format!("unhex('{}')", hex(text))
}

async fn seed_hostile(ch: &Ch, to: i64) -> Result<()> {
    let mut samples = Vec::new();
    let mut snapshot = Vec::new();
    let mut alerts = Vec::new();
    for (k, name) in HOSTILE_GROUPS.iter().enumerate() {
        let group = unhex_sql(name);
        for i in 0..10_i64 {
            let ts_ms = (to - 600 + 60 * i) * 1000;
            samples.push(format!(
                "SELECT fromUnixTimestamp64Milli({ts_ms}, 'UTC'), 'east', {group}, 't{k}', 0, \
                 {}, 5000, 1000, 'Stable', 1",
                5000 - hostile_lag(k)
            ));
        }
        snapshot.push(format!(
            "SELECT {}, 'east', {group}, {k}, fromUnixTimestamp64Milli({}, 'UTC')",
            unhex_sql(HOSTILE_TEAM),
            (to - 600) * 1000
        ));
        alerts.push(format!(
            "SELECT fromUnixTimestamp64Milli({}, 'UTC'), 'fp-{k}', 'r', 'firing', {k}, {}, \
             'east', {group}, {}, {}, 50, '[]'",
            (to - 300) * 1000,
            unhex_sql(HOSTILE_TEAM),
            hostile_lag(k),
            hostile_lag(k)
        ));
    }
    ch.execute(&format!(
        "INSERT INTO lag_samples (ts, cluster, consumer_group, topic, partition, \
         committed_offset, end_offset, time_lag_ms, group_state, members) {}",
        samples.join(" UNION ALL ")
    ))
    .await?;
    ch.execute(&format!(
        "INSERT INTO monitor_groups {}",
        snapshot.join(" UNION ALL ")
    ))
    .await?;
    ch.execute(&format!(
        "INSERT INTO alert_events (ts, fingerprint, rule, state, monitor_id, team, cluster, \
         consumer_group, max_lag, total_lag, threshold, partitions) {}",
        alerts.join(" UNION ALL ")
    ))
    .await
}

/// Row counts of every table of the database: an injected statement that
/// ran would change them (or drop a table).
async fn table_counts(ch: &Ch) -> Result<Vec<(String, f64)>> {
    let tables = ch
        .select("SELECT name FROM system.tables WHERE database = currentDatabase() ORDER BY name")
        .await?;
    let mut out = Vec::new();
    for row in &tables.rows {
        let name = tables.str(row, "name")?.to_string();
        if name.starts_with(".inner") {
            continue;
        }
        let count = ch
            .select(&format!("SELECT count() AS n FROM `{name}`"))
            .await?;
        out.push((name, count.f64(&count.rows[0], "n")?));
    }
    Ok(out)
}

/// Hostile consumer group (and team) names: every query of the group
/// dashboard, with one hostile group selected, returns exactly that group's
/// rows; no name reaches the SQL text; nothing but the queries runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_names_stay_data_in_every_dashboard_query() -> Result<()> {
    in_fresh_database("lagwatch_dash_hostile", hostile_checks).await
}

async fn hostile_checks(ch: Ch, dashboards: Vec<Dashboard>) -> Result<()> {
    let (ch, dashboards) = (&ch, &dashboards[..]);
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() as i64;
    let to = now - now.rem_euclid(60);
    seed_hostile(ch, to).await?;
    let range = Range {
        from: to - 3600,
        to,
        interval_s: 60,
    };
    let before = table_counts(ch).await?;
    let d = dashboard(dashboards, GROUP_UID)?;

    // The attack on the old form (`IN (${group:singlequote})`): Grafana
    // escapes ' but not \, so two forged values turn the filter into
    // "always true" (or a syntax error for a lone `a\`).
    let old = "SELECT count() AS n FROM lag_samples WHERE consumer_group IN (${group:singlequote})";
    let forged = Selection::from([(
        "group".to_string(),
        vec!["a\\".to_string(), ") OR 1=1 --".to_string()],
    )]);
    let injected = ch.select(&expand(old, &range, &forged)?).await?;
    let all_rows = (HOSTILE_GROUPS.len() * 10) as f64;
    assert_eq!(injected.f64(&injected.rows[0], "n")?, all_rows);
    // The same forged values against the dashboards' form match nothing.
    let new = format!(
        "SELECT count() AS n FROM lag_samples WHERE {}",
        filter_for("consumer_group", "group")
    );
    let safe = ch.select(&expand(&new, &range, &forged)?).await?;
    assert_eq!(safe.f64(&safe.rows[0], "n")?, 0.0);

    // Variables: the hostile names come back exactly as options.
    let (options, _) = resolve(ch, d, &range, &[]).await?;
    let mut want_groups: Vec<String> = HOSTILE_GROUPS.iter().map(|g| g.to_string()).collect();
    want_groups.sort();
    let mut got_groups = options["group"].clone();
    got_groups.sort();
    assert_eq!(got_groups, want_groups);
    assert_eq!(options["team"], [HOSTILE_TEAM]);

    for (k, name) in HOSTILE_GROUPS.iter().enumerate() {
        let (options, vars) = resolve(ch, d, &range, &[("group", &[name])]).await?;
        assert_eq!(options["topic"], [format!("t{k}")], "topics of {name:?}");
        let mut ran = 0;
        for (place, sql, _) in d.queries()? {
            let expanded = expand(&sql, &range, &vars)?;
            ensure!(
                !expanded.contains(name) && !expanded.contains(HOSTILE_TEAM),
                "{place}: a name reached the SQL text"
            );
            let table = ch
                .select(&expanded)
                .await
                .with_context(|| format!("{place} with group {name:?}"))?;
            ran += 1;
            if place.starts_with("variable ") {
                continue;
            }
            for row in &table.rows {
                if table.col("consumer_group").is_ok() {
                    assert_eq!(table.str(row, "consumer_group")?, *name, "{place}");
                }
                if table.col("series").is_ok() {
                    assert_eq!(table.str(row, "series")?, format!("east/{name}"), "{place}");
                }
                if place.starts_with("annotation") {
                    let text = table.str(row, "text")?;
                    assert!(text.contains(&format!("east/{name}:")), "{place}: {text:?}");
                }
            }
        }
        ensure!(ran >= 15, "only {ran} queries");

        let lag = hostile_lag(k) as f64;
        let overview = panel(ch, d, "Group overview", &range, &vars).await?;
        assert_eq!(overview.rows.len(), 1, "{name:?}");
        assert_eq!(overview.f64(&overview.rows[0], "total_lag")?, lag);
        assert_eq!(overview.str(&overview.rows[0], "alert_status")?, "firing");
        let total = panel(ch, d, "Total lag", &range, &vars).await?;
        assert_eq!(total.f64(&total.rows[0], "total_lag")?, lag, "{name:?}");
        let firing = panel(ch, d, "Firing alerts", &range, &vars).await?;
        assert_eq!(firing.f64(&firing.rows[0], "firing_alerts")?, 1.0);
        let parts = panel(ch, d, "Partitions (latest sample)", &range, &vars).await?;
        assert_eq!(parts.rows.len(), 1, "{name:?}");
        let series = panel(ch, d, "Total lag per group", &range, &vars).await?;
        ensure!(!series.rows.is_empty(), "{name:?}: no time series");
        ensure!(
            series
                .rows
                .iter()
                .all(|r| series.f64(r, "total_lag").ok() == Some(lag)),
            "{name:?}: total lag series"
        );
    }

    // Every group at once (All): each appears with its own lag.
    let (_, all) = resolve(ch, d, &range, &[]).await?;
    let overview = panel(ch, d, "Group overview", &range, &all).await?;
    assert_eq!(overview.rows.len(), HOSTILE_GROUPS.len());
    for (k, name) in HOSTILE_GROUPS.iter().enumerate() {
        let rows = overview.rows_where("consumer_group", name)?;
        assert_eq!(rows.len(), 1, "{name:?}");
        assert_eq!(overview.f64(rows[0], "total_lag")?, hostile_lag(k) as f64);
    }

    assert_eq!(
        table_counts(ch).await?,
        before,
        "something besides the queries ran"
    );
    Ok(())
}
