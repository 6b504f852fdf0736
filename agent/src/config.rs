//! The agent's configuration: one TOML file layered with environment
//! variables (`LAGWATCH__SECTION__KEY`), validated before anything starts.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use lagwatch_collector::{CollectorConfig, MetricsTopicConfig, SampledCluster};
use lagwatch_evaluator::EvaluatorConfig;
use lagwatch_history::ClickHouseConfig;
use lagwatch_sinks::{
    DestinationPolicy, EmailConfig, PagerDutyConfig, SinksConfig, SlackConfig, WebhookConfig,
};
use serde::{Deserialize, Serialize};

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {path} not found (pass --config or set LAGWATCH_CONFIG)")]
    Missing { path: String },
    #[error("invalid configuration in {path}: {message}")]
    Invalid { path: String, message: String },
}

/// Top-level configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    /// Format version of this file; only 1 exists.
    #[serde(default = "default_version")]
    pub version: u32,
    /// Where monitors are stored.
    #[serde(default)]
    pub store: StoreConfig,
    /// Kafka clusters by name; monitors refer to these names.
    pub clusters: BTreeMap<String, SampledCluster>,
    /// The topic samples travel on between collector and evaluator.
    pub metrics_topic: MetricsTopicConfig,
    #[serde(default)]
    pub collector: CollectorConfig,
    #[serde(default)]
    pub evaluator: EvaluatorConfig,
    /// Sample and alert history; history is off when absent.
    #[serde(default)]
    pub clickhouse: Option<ClickHouseConfig>,
    /// E-mail notifications; off when absent.
    #[serde(default)]
    pub email: Option<EmailConfig>,
    /// Generic JSON webhooks (`[[webhooks]]`), each posted every alert.
    #[serde(default)]
    pub webhooks: Vec<WebhookConfig>,
    /// Slack incoming-webhook messages; off when absent.
    #[serde(default)]
    pub slack: Option<SlackConfig>,
    /// PagerDuty Events API v2 incidents; off when absent.
    #[serde(default)]
    pub pagerduty: Option<PagerDutyConfig>,
    /// Shared sink settings (`[sinks]`): `allow_private`, the internal
    /// networks and host names team webhooks may reach (none by default).
    #[serde(default)]
    pub sinks: SinksConfig,
    #[serde(default)]
    pub http: HttpConfig,
    /// Longest a graceful shutdown (flush history, record delivery state,
    /// commit) may take before the process stops anyway.
    #[serde(with = "humantime_serde", default = "crate::shutdown::default_timeout")]
    pub shutdown_timeout: std::time::Duration,
    /// Alerts about lagwatch itself and the watchdog heartbeat
    /// (`[self_alerts]`).
    #[serde(default)]
    pub self_alerts: crate::self_alerts::SelfAlertsConfig,
    /// The team REST API and web page (`lagwatch api`, `lagwatch all`).
    #[serde(default)]
    pub api: ApiConfig,
    /// What each team owns (`[teams.<name>]`: clusters, groups, topics,
    /// routes to the shared sinks, quota overrides). Absent: no
    /// restriction; present: a team without its own section owns nothing.
    #[serde(default)]
    pub teams: Option<BTreeMap<String, lagwatch_model::TeamScope>>,
    /// Per-team quota defaults (`[quotas]`).
    #[serde(default)]
    pub quotas: lagwatch_model::Quotas,
}

const fn default_version() -> u32 {
    1
}

/// Monitor store location.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite://<file>` (embedded default) or `mysql://user:pass@host:port/db`.
    #[serde(default = "default_store_url")]
    pub url: String,
}

fn default_store_url() -> String {
    "sqlite://lagwatch.db".to_string()
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            url: default_store_url(),
        }
    }
}

/// The HTTP endpoint serving `/metrics`, `/healthz` and `/readyz`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// When set, `/metrics` is served only here (keep it internal: it
    /// shows every monitored group), not on `listen`.
    #[serde(default)]
    pub metrics_listen: Option<SocketAddr>,
    /// `/readyz` fails a sink destination whose oldest undelivered
    /// notification waits longer than this.
    #[serde(with = "humantime_serde", default = "default_ready_undelivered")]
    pub ready_undelivered: std::time::Duration,
    /// `/readyz` fails history when it has a backlog and its newest stored
    /// sample is older than this.
    #[serde(with = "humantime_serde", default = "default_ready_history_behind")]
    pub ready_history_behind: std::time::Duration,
    /// A client must send a request's complete headers within this long
    /// (it also bounds an idle keep-alive connection); a client trickling
    /// its headers (slowloris) is disconnected.
    #[serde(with = "humantime_serde", default = "default_header_read_timeout")]
    pub header_read_timeout: std::time::Duration,
    /// An API request not answered within this long gets 503
    /// `request_timeout`, and its slot is free again.
    #[serde(with = "humantime_serde", default = "default_request_timeout")]
    pub request_timeout: std::time::Duration,
    /// API requests served at once; beyond that a request gets 503
    /// `overloaded` with `Retry-After` at once instead of waiting in a
    /// queue. `/healthz`, `/readyz` and `/metrics` are not counted.
    #[serde(default = "default_max_concurrent_requests")]
    pub max_concurrent_requests: usize,
    /// On shutdown, requests in flight get this long to finish; then their
    /// connections are dropped and the process goes on stopping. Shorter
    /// than `shutdown_timeout`.
    #[serde(with = "humantime_serde", default = "default_shutdown_grace")]
    pub shutdown_grace: std::time::Duration,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9464))
}
const fn default_ready_undelivered() -> std::time::Duration {
    std::time::Duration::from_secs(300)
}
const fn default_ready_history_behind() -> std::time::Duration {
    std::time::Duration::from_secs(300)
}
const fn default_header_read_timeout() -> std::time::Duration {
    std::time::Duration::from_secs(10)
}
const fn default_request_timeout() -> std::time::Duration {
    std::time::Duration::from_secs(30)
}
const fn default_max_concurrent_requests() -> usize {
    256
}
const fn default_shutdown_grace() -> std::time::Duration {
    std::time::Duration::from_secs(10)
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: default_listen(),
            metrics_listen: None,
            ready_undelivered: default_ready_undelivered(),
            ready_history_behind: default_ready_history_behind(),
            header_read_timeout: default_header_read_timeout(),
            request_timeout: default_request_timeout(),
            max_concurrent_requests: default_max_concurrent_requests(),
            shutdown_grace: default_shutdown_grace(),
        }
    }
}

impl HttpConfig {
    /// The server's protections as the HTTP module takes them.
    pub fn hardening(&self) -> crate::http::Hardening {
        crate::http::Hardening {
            header_read_timeout: self.header_read_timeout,
            request_timeout: self.request_timeout,
            max_concurrent_requests: self.max_concurrent_requests,
            shutdown_grace: self.shutdown_grace,
        }
    }

    /// The limits are usable, and a graceful HTTP shutdown fits in the
    /// process's `shutdown_timeout`.
    fn check(&self, shutdown_timeout: std::time::Duration) -> Result<(), String> {
        if self.header_read_timeout.is_zero() {
            return Err("`http.header_read_timeout` must be greater than 0".into());
        }
        if self.request_timeout.is_zero() {
            return Err("`http.request_timeout` must be greater than 0".into());
        }
        if self.max_concurrent_requests == 0 {
            return Err("`http.max_concurrent_requests` must be at least 1".into());
        }
        if self.shutdown_grace >= shutdown_timeout {
            return Err(format!(
                "`http.shutdown_grace` ({}) must be shorter than `shutdown_timeout` ({}): the process would stop before the requests' grace ends",
                humantime::format_duration(self.shutdown_grace),
                humantime::format_duration(shutdown_timeout)
            ));
        }
        Ok(())
    }
}

/// The team REST API served on `http.listen` by the `api` role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// Serve the API in `lagwatch all` (`lagwatch api` always serves it).
    #[serde(default = "default_api_enabled")]
    pub enabled: bool,
    /// File holding the admin token (first line); the admin manages team
    /// tokens and sees every team.
    #[serde(default)]
    pub admin_token_file: Option<std::path::PathBuf>,
    /// The admin token itself, normally from `LAGWATCH__API__ADMIN_TOKEN`.
    #[serde(default)]
    pub admin_token: Option<lagwatch_model::Secret>,
    /// Grafana base URL the web page links to.
    #[serde(default)]
    pub grafana_url: Option<String>,
    /// API requests per token and minute (bursts up to that many); 0: no
    /// limit.
    #[serde(default = "default_rate_limit_per_token")]
    pub rate_limit_per_token: u32,
    /// API requests per client address and minute; 0: no limit (behind a
    /// reverse proxy every client shares its address).
    #[serde(default = "default_rate_limit_per_address")]
    pub rate_limit_per_address: u32,
    /// Failed authentications per client address and minute before that
    /// address gets 429 without its tokens being checked; 0: no limit.
    #[serde(default = "default_auth_failures_per_minute")]
    pub auth_failures_per_minute: u32,
    /// Connections of the API's own monitor-store pool (apart from the
    /// monitor watcher's, so API load cannot starve it).
    #[serde(default = "default_store_max_connections")]
    pub store_max_connections: u32,
    /// How long an API request waits for a free store connection before it
    /// fails with 500.
    #[serde(with = "humantime_serde", default = "default_store_acquire_timeout")]
    pub store_acquire_timeout: std::time::Duration,
}

const fn default_api_enabled() -> bool {
    true
}
fn default_rate_limit_per_token() -> u32 {
    lagwatch_api::limits::RateLimits::default().per_token
}
fn default_rate_limit_per_address() -> u32 {
    lagwatch_api::limits::RateLimits::default().per_address
}
fn default_auth_failures_per_minute() -> u32 {
    lagwatch_api::limits::RateLimits::default().auth_failures
}
const fn default_store_max_connections() -> u32 {
    4
}
const fn default_store_acquire_timeout() -> std::time::Duration {
    std::time::Duration::from_secs(5)
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            enabled: default_api_enabled(),
            admin_token_file: None,
            admin_token: None,
            grafana_url: None,
            rate_limit_per_token: default_rate_limit_per_token(),
            rate_limit_per_address: default_rate_limit_per_address(),
            auth_failures_per_minute: default_auth_failures_per_minute(),
            store_max_connections: default_store_max_connections(),
            store_acquire_timeout: default_store_acquire_timeout(),
        }
    }
}

/// Shortest admin token accepted.
const MIN_ADMIN_TOKEN_LEN: usize = 16;

impl ApiConfig {
    /// The API's own monitor-store pool.
    pub fn store_pool(&self) -> lagwatch_store::PoolSettings {
        lagwatch_store::PoolSettings {
            max_connections: self.store_max_connections,
            acquire_timeout: self.store_acquire_timeout,
        }
    }

    /// The request and failed-authentication limits.
    pub fn rate_limits(&self) -> lagwatch_api::limits::RateLimits {
        lagwatch_api::limits::RateLimits {
            per_token: self.rate_limit_per_token,
            per_address: self.rate_limit_per_address,
            auth_failures: self.auth_failures_per_minute,
        }
    }

    /// The admin token from `admin_token` or `admin_token_file`, if any;
    /// the error names the key, never the value.
    pub fn resolve_admin_token(&self) -> Result<Option<lagwatch_model::Secret>, String> {
        let token = match (&self.admin_token, &self.admin_token_file) {
            (Some(_), Some(_)) => {
                return Err("set only one of `api.admin_token` and `api.admin_token_file`".into())
            }
            (Some(token), None) => token.expose().trim().to_string(),
            (None, Some(path)) => std::fs::read_to_string(path)
                .map_err(|e| format!("`api.admin_token_file` {}: {e}", path.display()))?
                .lines()
                .next()
                .unwrap_or_default()
                .trim()
                .to_string(),
            (None, None) => return Ok(None),
        };
        if token.len() < MIN_ADMIN_TOKEN_LEN {
            return Err(format!(
                "the admin token (`api.admin_token` / `api.admin_token_file`) must be at least {MIN_ADMIN_TOKEN_LEN} characters"
            ));
        }
        Ok(Some(lagwatch_model::Secret::new(token)))
    }
}

impl AppConfig {
    /// Loads `path` and applies `LAGWATCH__...` environment overrides.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let shown = path.display().to_string();
        if !path.exists() {
            return Err(ConfigError::Missing { path: shown });
        }
        let invalid = |message: String| ConfigError::Invalid {
            path: shown.clone(),
            message,
        };
        let loaded = config::Config::builder()
            .add_source(config::File::from(path).format(config::FileFormat::Toml))
            .add_source(
                config::Environment::with_prefix("LAGWATCH")
                    .prefix_separator("__")
                    .separator("__"),
            )
            .build()
            .map_err(|e| invalid(e.to_string()))?;
        let parsed: AppConfig = loaded
            .try_deserialize()
            .map_err(|e| invalid(e.to_string()))?;
        parsed.validate().map_err(invalid)?;
        Ok(parsed)
    }

    /// Cross-field checks serde cannot express.
    pub fn validate(&self) -> Result<(), String> {
        if self.version != 1 {
            return Err(format!(
                "`version` is {}, only 1 is supported",
                self.version
            ));
        }
        if self.clusters.is_empty() {
            return Err("`clusters` must define at least one cluster".into());
        }
        for (name, cluster) in &self.clusters {
            if cluster.connection.bootstrap_servers.trim().is_empty() {
                return Err(format!("`clusters.{name}.bootstrap_servers` is empty"));
            }
            cluster
                .connection
                .check_secrets()
                .map_err(|e| format!("`clusters.{name}`: {e}"))?;
        }
        if !self.clusters.contains_key(&self.metrics_topic.cluster) {
            return Err(format!(
                "`metrics_topic.cluster` is `{}`, which is not one of the configured clusters ({})",
                self.metrics_topic.cluster,
                self.clusters.keys().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        if !lagwatch_store::is_valid_topic_name(&self.metrics_topic.topic) {
            return Err(format!(
                "`metrics_topic.topic` `{}` is not a valid Kafka topic name",
                self.metrics_topic.topic
            ));
        }
        if self.metrics_topic.partitions < 1 {
            return Err("`metrics_topic.partitions` must be at least 1".into());
        }
        if self.collector.interval.is_zero() {
            return Err("`collector.interval` must be greater than 0".into());
        }
        if !self.evaluator.state_topic.is_empty()
            && !lagwatch_store::is_valid_topic_name(&self.evaluator.state_topic)
        {
            return Err(format!(
                "`evaluator.state_topic` `{}` is not a valid Kafka topic name",
                self.evaluator.state_topic
            ));
        }
        self.evaluator.load_rules().map_err(|e| e.to_string())?;
        if let Some(clickhouse) = &self.clickhouse {
            if clickhouse.batch_rows == 0 {
                return Err("`clickhouse.batch_rows` must be greater than 0".into());
            }
            if !clickhouse
                .database
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                return Err("`clickhouse.database` may only hold letters, digits and _".into());
            }
            // A missing or empty CA file fails the start, not every write.
            lagwatch_history::transport::check_tls(clickhouse)
                .map_err(|e| format!("`clickhouse.ca_file`: {e}"))?;
        }
        for (index, webhook) in self.webhooks.iter().enumerate() {
            webhook
                .check()
                .map_err(|e| format!("`webhooks[{index}]`: {e}"))?;
        }
        if let Some(slack) = &self.slack {
            slack.check().map_err(|e| format!("`slack`: {e}"))?;
        }
        if let Some(pagerduty) = &self.pagerduty {
            pagerduty.check().map_err(|e| format!("`pagerduty`: {e}"))?;
        }
        DestinationPolicy::new(&self.sinks).map_err(|e| e.to_string())?;
        self.api.resolve_admin_token()?;
        if self.api.store_max_connections == 0 {
            return Err("`api.store_max_connections` must be at least 1".into());
        }
        if self.api.store_acquire_timeout.is_zero() {
            return Err("`api.store_acquire_timeout` must be greater than 0".into());
        }
        self.http.check(self.shutdown_timeout)?;
        self.check_teams()?;
        Ok(())
    }

    /// Team ownership and quotas as the stages use them.
    pub fn tenancy(&self) -> lagwatch_model::Tenancy {
        lagwatch_model::Tenancy::new(self.teams.clone(), self.quotas)
    }

    /// `[teams]` names only configured clusters and `[[webhooks]]` names.
    fn check_teams(&self) -> Result<(), String> {
        self.tenancy().check()?;
        for (team, scope) in self.teams.iter().flatten() {
            if !lagwatch_store::is_valid_team_name(team) {
                return Err(format!("`teams.{team}` is not a valid team name"));
            }
            if let Some(unknown) = scope
                .clusters
                .iter()
                .flatten()
                .find(|c| !self.clusters.contains_key(*c))
            {
                return Err(format!(
                    "`teams.{team}.clusters` names `{unknown}`, which is not a configured cluster"
                ));
            }
            for route in &scope.routes {
                if let Some(name) = route.strip_prefix("webhook:") {
                    if !self
                        .webhooks
                        .iter()
                        .any(|w| w.name.as_deref() == Some(name))
                    {
                        return Err(format!(
                            "`teams.{team}.routes` names webhook `{name}`, but no `[[webhooks]]` entry has that name"
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    const VALID: &str = r#"
[store]
url = "sqlite://x.db"

[clusters.local]
bootstrap_servers = "127.0.0.1:9092"
properties = { "security.protocol" = "plaintext" }

[metrics_topic]
cluster = "local"

[collector]
interval = "5s"
"#;

    fn load(text: &str) -> Result<AppConfig, ConfigError> {
        let mut file = tempfile::NamedTempFile::new().expect("tempfile");
        file.write_all(text.as_bytes()).expect("write");
        AppConfig::load(file.path())
    }

    #[test]
    fn loads_valid_file_with_defaults() {
        let config = load(VALID).expect("valid");
        assert_eq!(config.collector.interval.as_secs(), 5);
        assert_eq!(config.metrics_topic.topic, "lagwatch-samples");
        assert_eq!(
            config.clusters["local"]
                .connection
                .properties
                .get("security.protocol")
                .map(String::as_str),
            Some("plaintext")
        );
        assert!(config.clickhouse.is_none());
    }

    #[test]
    fn unknown_cluster_settings_are_refused_by_name() {
        let text = VALID.replace(
            "properties = {",
            "bootstrap_server = \"x:1\"\nproperties = {",
        );
        let error = load(&text).expect_err("typo").to_string();
        assert!(error.contains("bootstrap_server"), "{error}");
    }

    #[test]
    fn committed_offsets_source_is_chosen_per_cluster() {
        use lagwatch_collector::CommittedOffsetsFrom;
        let config = load(VALID).expect("valid");
        assert_eq!(
            config.clusters["local"].committed_offsets,
            CommittedOffsetsFrom::AdminApi
        );
        let with = |value: &str| {
            VALID.replace(
                "properties = {",
                &format!("committed_offsets = \"{value}\"\nproperties = {{"),
            )
        };
        let config = load(&with("offsets_topic")).expect("offsets_topic");
        assert_eq!(
            config.clusters["local"].committed_offsets,
            CommittedOffsetsFrom::OffsetsTopic
        );
        let error = load(&with("offset_topic")).expect_err("typo");
        let text = error.to_string();
        assert!(
            text.contains("offset_topic") && text.contains("offsets_topic"),
            "{text}"
        );
    }

    #[test]
    fn unknown_key_is_named() {
        let error = load(&format!("{VALID}\nintervall = \"5s\"\n")).expect_err("unknown");
        let text = error.to_string();
        assert!(text.contains("intervall"), "{text}");
    }

    #[test]
    fn bad_duration_is_named() {
        let error = load(&VALID.replace("\"5s\"", "\"5 parsecs\"")).expect_err("bad duration");
        let text = error.to_string();
        assert!(
            text.contains("interval") || text.contains("parsecs"),
            "{text}"
        );
    }

    #[test]
    fn metrics_cluster_must_exist() {
        let error =
            load(&VALID.replace("cluster = \"local\"", "cluster = \"nope\"")).expect_err("bad");
        assert!(
            error.to_string().contains("metrics_topic.cluster"),
            "{error}"
        );
    }

    #[test]
    fn http_sinks_load_and_are_checked() {
        let text = format!(
            r#"{VALID}
[[webhooks]]
url = "http://127.0.0.1:8080/hook"
headers = {{ Authorization = "Bearer t0ken" }}
template = '{{"text": "{{{{summary}}}}"}}'
timeout = "3s"

[slack]
webhook_url = "https://hooks.slack.com/services/T0/B0/x"

[pagerduty]
routing_key = "0123456789abcdef0123456789abcdef"
severity = "critical"
"#
        );
        let config = load(&text).expect("valid");
        assert_eq!(config.webhooks.len(), 1);
        assert_eq!(config.webhooks[0].timeout.as_secs(), 3);
        assert!(
            config.webhooks[0].headers.contains_key("Authorization"),
            "{:?}",
            config.webhooks[0].headers.keys().collect::<Vec<_>>()
        );
        assert!(!format!("{config:?}").contains("t0ken"));
        let pagerduty = config.pagerduty.expect("pagerduty");
        assert_eq!(pagerduty.url, lagwatch_sinks::pagerduty::DEFAULT_EVENTS_URL);

        let bad = text.replace("{{summary}}", "{{nope}}");
        let error = load(&bad).expect_err("unknown template field").to_string();
        assert!(
            error.contains("webhooks[0]") && error.contains("nope"),
            "{error}"
        );
    }

    #[test]
    fn an_unreadable_clickhouse_ca_file_fails_the_start() {
        let text = format!(
            "{VALID}\n[clickhouse]\nurl = \"https://ch.example:8443\"\nca_file = \"/nonexistent/ca.pem\"\n"
        );
        let error = load(&text).expect_err("missing CA file").to_string();
        assert!(
            error.contains("clickhouse.ca_file") && error.contains("/nonexistent/ca.pem"),
            "{error}"
        );
    }

    #[test]
    fn api_section_reads_the_admin_token_file() {
        let mut token = tempfile::NamedTempFile::new().expect("tempfile");
        token.write_all(b"0123456789abcdef-admin\n").expect("write");
        let text = format!(
            "{VALID}\n[api]\nadmin_token_file = \"{}\"\ngrafana_url = \"http://g\"\n",
            token.path().display()
        );
        let config = load(&text).expect("valid");
        let admin = config.api.resolve_admin_token().expect("token");
        assert_eq!(
            admin.as_ref().map(|s| s.expose()),
            Some("0123456789abcdef-admin")
        );
        assert!(config.api.enabled);
        let short = format!("{VALID}\n[api]\nadmin_token = \"short\"\n");
        let error = load(&short).expect_err("too short").to_string();
        assert!(
            error.contains("at least 16") && !error.contains("short\""),
            "{error}"
        );
        assert!(load(&format!("{VALID}\n[api]\ntoken = 1\n")).is_err());
    }

    #[test]
    fn teams_quotas_and_limits_load_and_are_checked_by_key() {
        let text = format!(
            r#"{VALID}
[quotas]
max_monitors = 50

[teams.payments]
clusters = ["local"]
groups = ["pay-*"]
routes = ["slack"]
max_regex_monitors = 2

[api]
rate_limit_per_token = 30
auth_failures_per_minute = 5

[http]
metrics_listen = "127.0.0.1:9465"
"#
        );
        let config = load(&text).expect("valid");
        let tenancy = config.tenancy();
        assert!(tenancy.owns_group("payments", "local", "pay-eu"));
        assert!(!tenancy.owns_group("search", "local", "pay-eu"));
        assert_eq!(tenancy.quotas("payments").max_monitors, 50);
        assert_eq!(tenancy.quotas("payments").max_regex_monitors, 2);
        assert_eq!(config.api.rate_limits().per_token, 30);
        assert_eq!(config.api.rate_limits().per_address, 1_200);
        assert_eq!(config.api.rate_limits().auth_failures, 5);
        assert_eq!(
            config.http.metrics_listen,
            Some(SocketAddr::from(([127, 0, 0, 1], 9465)))
        );
        assert!(!load(VALID).expect("valid").tenancy().is_enforced());

        let error = load(&text.replace(r#"clusters = ["local"]"#, r#"clusters = ["prod"]"#))
            .expect_err("unknown cluster")
            .to_string();
        assert!(error.contains("teams.payments.clusters"), "{error}");
        let error = load(&text.replace(r#"routes = ["slack"]"#, r#"routes = ["webhook:ops"]"#))
            .expect_err("unknown webhook")
            .to_string();
        assert!(error.contains("teams.payments.routes"), "{error}");
        let error = load(&text.replace("groups = ", "group = "))
            .expect_err("unknown key")
            .to_string();
        assert!(error.contains("group"), "{error}");
    }

    #[test]
    fn http_hardening_has_defaults_and_refuses_unusable_limits() {
        let defaults = load(VALID).expect("valid");
        let hardening = defaults.http.hardening();
        assert_eq!(hardening.header_read_timeout.as_secs(), 10);
        assert_eq!(hardening.request_timeout.as_secs(), 30);
        assert_eq!(hardening.max_concurrent_requests, 256);
        assert_eq!(hardening.shutdown_grace.as_secs(), 10);
        assert_eq!(defaults.api.store_pool().max_connections, 4);
        assert_eq!(defaults.api.store_pool().acquire_timeout.as_secs(), 5);

        let set = load(&format!(
            "{VALID}\n[http]\nheader_read_timeout = \"2s\"\nrequest_timeout = \"1500ms\"\nmax_concurrent_requests = 8\nshutdown_grace = \"1s\"\n[api]\nstore_max_connections = 2\n"
        ))
        .expect("valid");
        assert_eq!(set.http.hardening().request_timeout.as_millis(), 1_500);
        assert_eq!(set.http.hardening().max_concurrent_requests, 8);
        assert_eq!(set.api.store_pool().max_connections, 2);

        for (setting, named) in [
            ("header_read_timeout = \"0s\"", "http.header_read_timeout"),
            ("request_timeout = \"0s\"", "http.request_timeout"),
            (
                "max_concurrent_requests = 0",
                "http.max_concurrent_requests",
            ),
            ("shutdown_grace = \"30s\"", "http.shutdown_grace"),
        ] {
            let error = load(&format!("{VALID}\n[http]\n{setting}\n"))
                .expect_err(setting)
                .to_string();
            assert!(error.contains(named), "{setting}: {error}");
        }
        let error = load(&format!("{VALID}\n[api]\nstore_max_connections = 0\n"))
            .expect_err("empty pool")
            .to_string();
        assert!(error.contains("api.store_max_connections"), "{error}");
    }

    #[test]
    fn missing_file_says_how_to_fix() {
        let error = AppConfig::load(Path::new("/nonexistent/lagwatch.toml")).expect_err("missing");
        assert!(error.to_string().contains("--config"), "{error}");
    }

    #[test]
    fn every_shipped_config_parses() {
        let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy");
        let mut seen = 0;
        for entry in std::fs::read_dir(&deploy).expect("deploy dir") {
            let path = entry.expect("entry").path();
            if path.extension().and_then(|e| e.to_str()) == Some("toml") {
                AppConfig::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                seen += 1;
            }
        }
        assert!(seen > 0, "no toml files in deploy/");
    }
}
