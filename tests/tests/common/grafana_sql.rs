//! Grafana's side of a dashboard query, for tests that run the dashboards'
//! SQL on the real ClickHouse engine: the scanner that finds `$var`,
//! `${var:format}` references and `$__macro` names, and the expansion that
//! interpolates variable values (Grafana's template service) and then the
//! ClickHouse plugin's macros. Kept apart from `dashboards.rs` so the test
//! file holds the checks and this module the emulation they rely on.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::{bail, ensure, Context, Result};

/// Macros of the Grafana ClickHouse plugin that [`expand`] implements.
pub const MACROS: &[&str] = &[
    "timeFilter",
    "timeFilter_ms",
    "dateFilter",
    "timeInterval",
    "timeInterval_ms",
    "fromTime",
    "toTime",
    "fromTime_ms",
    "toTime_ms",
    "interval_s",
];

/// A `$name`, `${name}` or `${name:format}` reference in SQL.
#[derive(Debug)]
pub struct VarRef {
    pub name: String,
    pub format: Option<String>,
    /// Byte range in the SQL.
    pub start: usize,
    pub end: usize,
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Variable references (`$__` macros excluded) and macro names in `sql`.
pub fn scan(sql: &str) -> Result<(Vec<VarRef>, Vec<String>)> {
    let mut vars = Vec::new();
    let mut macros = Vec::new();
    let mut rest = sql;
    let mut offset = 0;
    while let Some(i) = rest.find('$') {
        let start = offset + i;
        let after = &sql[start + 1..];
        if let Some(body) = after.strip_prefix('{') {
            let close = body
                .find('}')
                .with_context(|| format!("unclosed ${{ in {sql}"))?;
            let inner = &body[..close];
            let (name, format) = match inner.split_once(':') {
                Some((n, f)) => (n, Some(f.to_string())),
                None => (inner, None),
            };
            ensure!(
                !name.is_empty() && name.chars().all(is_ident),
                "bad variable reference ${{{inner}}}"
            );
            let end = start + 2 + close + 1;
            vars.push(VarRef {
                name: name.to_string(),
                format,
                start,
                end,
            });
            offset = end;
        } else {
            let len = after.find(|c: char| !is_ident(c)).unwrap_or(after.len());
            let name = &after[..len];
            let end = start + 1 + len;
            if let Some(macro_name) = name.strip_prefix("__") {
                macros.push(macro_name.to_string());
            } else if !name.is_empty() {
                vars.push(VarRef {
                    name: name.to_string(),
                    format: None,
                    start,
                    end,
                });
            }
            offset = end.max(start + 1);
        }
        rest = &sql[offset..];
    }
    Ok((vars, macros))
}

/// The dashboard time range and interval, as Grafana passes them.
#[derive(Debug, Clone, Copy)]
pub struct Range {
    pub from: i64,
    pub to: i64,
    pub interval_s: i64,
}

/// `YYYY-MM-DD` of a Unix time (UTC).
pub fn civil_date(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// What ClickHouse's `hex()` makes of a string: upper-case hex of its bytes.
/// The dashboards' variable values.
pub fn hex(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02X}")).collect()
}

/// Grafana's `encodeURIComponentStrict` (the `percentencode` format):
/// every UTF-8 byte but `A-Z a-z 0-9 - _ . ~` as `%XX`. Its output cannot
/// end a ClickHouse string literal or escape anything in it.
pub fn percent_encode_strict(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Interpolates variables the way Grafana's template service does
/// (`${name:singlequote}` → `'v1','v2'`, `${name:percentencode}` →
/// `%7Bv1%2Cv2%7D`, All = every option, nothing selected → empty), then
/// expands the ClickHouse plugin's macros.
pub fn expand(sql: &str, range: &Range, vars: &BTreeMap<String, Vec<String>>) -> Result<String> {
    let (refs, _) = scan(sql)?;
    let mut interpolated = String::new();
    let mut last = 0;
    for var in refs {
        let values = vars
            .get(&var.name)
            .with_context(|| format!("${} has no value", var.name))?;
        interpolated.push_str(&sql[last..var.start]);
        let text = match var.format.as_deref() {
            Some("singlequote") => values
                .iter()
                .map(|v| format!("'{}'", v.replace('\'', "\\'")))
                .collect::<Vec<_>>()
                .join(","),
            // Grafana: encodeURIComponentStrict('{' + values.join(',') + '}').
            Some("percentencode") => percent_encode_strict(&format!("{{{}}}", values.join(","))),
            Some("csv") | None => values.join(","),
            Some(other) => bail!("format {other} not supported"),
        };
        interpolated.push_str(&text);
        last = var.end;
    }
    interpolated.push_str(&sql[last..]);

    let sql = interpolated;
    let (from, to) = (range.from, range.to);
    let interval = range.interval_s.max(1);
    let mut out = String::new();
    let mut rest = sql.as_str();
    while let Some(i) = rest.find("$__") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 3..];
        let len = after.find(|c: char| !is_ident(c)).unwrap_or(after.len());
        let name = &after[..len];
        let mut tail = &after[len..];
        let mut arg = None;
        if let Some(args) = tail.strip_prefix('(') {
            let mut depth = 1;
            let close = args
                .char_indices()
                .find(|&(_, c)| {
                    match c {
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        _ => {}
                    }
                    depth == 0
                })
                .map(|(j, _)| j)
                .with_context(|| format!("unclosed $__{name}("))?;
            arg = Some(args[..close].trim());
            tail = &args[close + 1..];
        }
        let column = || arg.with_context(|| format!("$__{name} needs a column"));
        match name {
            "timeFilter" => {
                let c = column()?;
                write!(out, "{c} >= toDateTime({from}) AND {c} <= toDateTime({to})")?;
            }
            "timeFilter_ms" => {
                let c = column()?;
                write!(
                    out,
                    "{c} >= fromUnixTimestamp64Milli({}) AND {c} <= fromUnixTimestamp64Milli({})",
                    from * 1000,
                    to * 1000
                )?;
            }
            "dateFilter" => {
                let c = column()?;
                write!(
                    out,
                    "{c} >= toDate('{}') AND {c} <= toDate('{}')",
                    civil_date(from),
                    civil_date(to)
                )?;
            }
            "timeInterval" => write!(
                out,
                "toStartOfInterval(toDateTime({}), INTERVAL {interval} second)",
                column()?
            )?,
            "timeInterval_ms" => write!(
                out,
                "toStartOfInterval(toDateTime64({}, 3), INTERVAL {} millisecond)",
                column()?,
                interval * 1000
            )?,
            "fromTime" => write!(out, "toDateTime({from})")?,
            "toTime" => write!(out, "toDateTime({to})")?,
            "fromTime_ms" => write!(out, "fromUnixTimestamp64Milli({})", from * 1000)?,
            "toTime_ms" => write!(out, "fromUnixTimestamp64Milli({})", to * 1000)?,
            "interval_s" => write!(out, "{interval}")?,
            other => bail!("unknown macro $__{other}"),
        }
        rest = tail;
    }
    out.push_str(rest);
    Ok(out)
}
