//! The `lagwatch` binary as a user runs it: config checks and monitor
//! management (no services needed).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn lagwatch(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lagwatch"));
    command.args(args).env_remove("LAGWATCH_CONFIG");
    for (key, value) in envs {
        command.env(key, value);
    }
    command.output().expect("run lagwatch")
}

fn example_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/lagwatch.example.toml")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn check_config_accepts_the_example() {
    let config = example_config();
    let output = lagwatch(
        &["check-config", "--config", config.to_str().expect("utf8")],
        &[],
    );
    assert!(output.status.success(), "{}", text(&output));
    assert!(text(&output).contains("ok"));
}

#[test]
fn check_config_names_the_unknown_key_and_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.toml");
    let example = std::fs::read_to_string(example_config()).expect("example");
    std::fs::write(
        &path,
        example.replace("interval = \"10s\"", "intervall = \"10s\""),
    )
    .expect("write");
    let output = lagwatch(
        &["check-config", "--config", path.to_str().expect("utf8")],
        &[],
    );
    assert!(!output.status.success());
    let message = text(&output);
    assert!(message.contains("intervall"), "{message}");
    assert!(message.contains("bad.toml"), "{message}");
}

#[test]
fn check_config_rejects_bad_values_from_the_environment() {
    let config = example_config();
    let output = lagwatch(
        &["check-config", "--config", config.to_str().expect("utf8")],
        &[("LAGWATCH__METRICS_TOPIC__TOPIC", "bad topic name")],
    );
    assert!(!output.status.success());
    assert!(
        text(&output).contains("metrics_topic.topic"),
        "{}",
        text(&output)
    );
}

#[test]
fn missing_config_file_explains_the_fix() {
    let output = lagwatch(
        &["check-config", "--config", "/nonexistent/lagwatch.toml"],
        &[],
    );
    assert!(!output.status.success());
    assert!(text(&output).contains("not found"), "{}", text(&output));
}

/// A configuration with one cluster `local`, no ClickHouse and its SQLite
/// store in `dir` (not created).
fn local_config(dir: &Path) -> PathBuf {
    let path = dir.join("lagwatch.toml");
    std::fs::write(
        &path,
        format!(
            "version = 1\n[store]\nurl = \"sqlite://{}\"\n[clusters.local]\nbootstrap_servers = \"127.0.0.1:1\"\n[metrics_topic]\ncluster = \"local\"\n",
            dir.join("monitors.db").display()
        ),
    )
    .expect("write config");
    path
}

#[test]
fn store_commands_refuse_a_missing_store_and_name_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = local_config(dir.path());
    let config = config.to_str().expect("utf8");
    for args in [
        &["monitors", "list"][..],
        &["silences", "list", "--team", "demo"],
        &["tokens", "list"],
    ] {
        let output = lagwatch(&[args, &["--config", config]].concat(), &[]);
        assert!(!output.status.success(), "{args:?}: {}", text(&output));
        let message = text(&output);
        let db = dir.path().join("monitors.db");
        assert!(
            message.contains(&format!(
                "the monitor store {} does not exist",
                db.display()
            )),
            "{message}"
        );
        assert!(message.contains("lagwatch migrate --config"), "{message}");
        assert!(!db.exists(), "{args:?} created the store");
    }
    let migrated = lagwatch(&["migrate", "--config", config], &[]);
    assert!(migrated.status.success(), "{}", text(&migrated));
    assert!(dir.path().join("monitors.db").is_file());
}

#[test]
fn the_user_configuration_is_found_without_config() {
    let home = tempfile::tempdir().expect("tempdir");
    let work = tempfile::tempdir().expect("tempdir");
    let env = [
        ("HOME", home.path().to_str().expect("utf8")),
        ("XDG_CONFIG_HOME", ""),
    ];
    let run = |args: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_lagwatch"));
        command
            .args(args)
            .current_dir(work.path())
            .env_remove("LAGWATCH_CONFIG");
        for (key, value) in env {
            command.env(key, value);
        }
        command.output().expect("run lagwatch")
    };
    let missing = run(&["check-config"]);
    assert!(!missing.status.success());
    let user = home.path().join(".config/lagwatch/lagwatch.toml");
    assert!(
        text(&missing).contains(&format!(
            "no configuration file found (looked for lagwatch.toml, {})",
            user.display()
        )),
        "{}",
        text(&missing)
    );
    std::fs::create_dir_all(user.parent().expect("parent")).expect("mkdir");
    std::fs::copy(local_config(home.path()), &user).expect("copy");
    let found = run(&["check-config"]);
    assert!(found.status.success(), "{}", text(&found));
    assert!(
        text(&found).starts_with(&format!("{}: ok", user.display())),
        "{}",
        text(&found)
    );
}

#[test]
fn monitors_add_list_rm_with_env_override_of_the_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = local_config(dir.path());
    let config = config.to_str().expect("utf8");
    let store = format!("sqlite://{}", dir.path().join("other.db").display());
    let env = [("LAGWATCH__STORE__URL", store.as_str())];
    let migrated = lagwatch(&["migrate", "--config", config], &env);
    assert!(migrated.status.success(), "{}", text(&migrated));
    assert!(dir.path().join("other.db").is_file());
    let added = lagwatch(
        &[
            "monitors",
            "add",
            "--config",
            config,
            "--team",
            "payments",
            "--cluster",
            "local",
            "--group",
            "billing",
            "--topic",
            "orders",
            "--threshold",
            "500",
            "--for",
            "2m",
            "--email",
            "oncall@example.com",
        ],
        &env,
    );
    assert!(added.status.success(), "{}", text(&added));
    assert!(text(&added).contains("added monitor 1"));
    let regex = lagwatch(
        &[
            "monitors",
            "add",
            "--config",
            config,
            "--team",
            "demo",
            "--cluster",
            "local",
            "--group",
            "billing-.*",
            "--group-regex",
            "--topic-regex",
            "orders\\..*",
            "--threshold",
            "5000",
            "--for",
            "5m",
            "--total-threshold",
            "20000",
            "--time-lag",
            "exact",
        ],
        &env,
    );
    assert!(regex.status.success(), "{}", text(&regex));

    let listed = lagwatch(&["monitors", "list", "--json", "--config", config], &env);
    assert!(listed.status.success(), "{}", text(&listed));
    let monitors: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("json");
    assert_eq!(monitors[0]["consumer_group"], "billing");
    assert_eq!(monitors[0]["for_secs"], 120);
    assert_eq!(monitors[0]["topics"][0], "orders");

    let table = lagwatch(
        &["monitors", "list", "--team", "demo", "--config", config],
        &env,
    );
    assert!(table.status.success(), "{}", text(&table));
    assert_eq!(
        String::from_utf8_lossy(&table.stdout),
        "id  team  cluster  group         topics         lag  for  topic-lag  total-lag  time-lag  repeat  reads           notify\n\
         2   demo  local    /billing-.*/  /orders\\..*/  5000   5m          -      20000         -       -  exact-time-lag  -\n"
    );

    let unknown_cluster = lagwatch(
        &[
            "monitors",
            "add",
            "--config",
            config,
            "--team",
            "t",
            "--cluster",
            "nope",
            "--group",
            "g",
            "--threshold",
            "1",
        ],
        &env,
    );
    assert!(!unknown_cluster.status.success());
    assert!(text(&unknown_cluster).contains("cluster `nope` is not configured"));

    let removed = lagwatch(&["monitors", "rm", "1", "--config", config], &env);
    assert!(removed.status.success(), "{}", text(&removed));
    let again = lagwatch(&["monitors", "rm", "1", "--config", config], &env);
    assert!(!again.status.success());
    assert!(text(&again).contains("no monitor with id 1"));
}

#[test]
fn silences_and_tokens_take_team_and_output_alike() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = local_config(dir.path());
    let config = config.to_str().expect("utf8");
    assert!(lagwatch(&["migrate", "--config", config], &[])
        .status
        .success());
    let added = lagwatch(
        &[
            "silences",
            "add",
            "--team",
            "demo",
            "--for",
            "2h",
            "--group",
            "demo-billing",
            "--config",
            config,
        ],
        &[],
    );
    assert!(added.status.success(), "{}", text(&added));
    for (team, expected) in [("demo", 1), ("payments", 0)] {
        let listed = lagwatch(
            &[
                "silences", "list", "--team", team, "--output", "json", "--config", config,
            ],
            &[],
        );
        assert!(listed.status.success(), "{}", text(&listed));
        let silences: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("json");
        assert_eq!(silences.as_array().map(Vec::len), Some(expected), "{team}");
    }
    let token = lagwatch(
        &["tokens", "add", "--team", "demo", "--config", config],
        &[],
    );
    assert!(token.status.success(), "{}", text(&token));
    let tokens = lagwatch(
        &[
            "tokens", "list", "--team", "demo", "--json", "--config", config,
        ],
        &[],
    );
    let tokens: serde_json::Value = serde_json::from_slice(&tokens.stdout).expect("json");
    assert_eq!(tokens[0]["team"], "demo");
}

#[test]
fn completions_are_printed_without_a_configuration() {
    for (shell, marker) in [
        ("bash", "_lagwatch()"),
        ("zsh", "#compdef lagwatch"),
        ("fish", "complete -c lagwatch"),
    ] {
        let output = lagwatch(
            &["completions", shell, "--config", "/nonexistent.toml"],
            &[],
        );
        assert!(output.status.success(), "{shell}: {}", text(&output));
        let script = String::from_utf8_lossy(&output.stdout);
        assert!(script.contains(marker), "{shell}");
        assert!(script.contains("status"), "{shell}");
    }
}

#[test]
fn logs_have_no_colour_codes_off_a_terminal_and_can_be_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = local_config(dir.path());
    let config = config.to_str().expect("utf8");
    let text_log = lagwatch(
        &["migrate", "--config", config],
        &[("LAGWATCH_LOG", "debug")],
    );
    let stderr = String::from_utf8_lossy(&text_log.stderr);
    assert!(stderr.contains("configuration loaded"), "{stderr}");
    assert!(!stderr.contains('\x1b'), "{stderr}");
    let json_log = lagwatch(
        &["migrate", "--config", config],
        &[("LAGWATCH_LOG", "debug"), ("LAGWATCH_LOG_FORMAT", "json")],
    );
    let stderr = String::from_utf8_lossy(&json_log.stderr);
    let line = stderr
        .lines()
        .find(|l| l.contains("configuration loaded"))
        .expect("log line");
    let record: serde_json::Value = serde_json::from_str(line).expect("json log line");
    assert_eq!(record["level"], "DEBUG");
    assert_eq!(record["fields"]["message"], "configuration loaded");
}

#[test]
fn check_config_names_file_and_line_of_a_bad_rules_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rules = dir.path().join("team.yaml");
    std::fs::write(&rules, "thresholds:\n  total_lag: 5000\n  totl_lag: 1\n").expect("write rules");
    let example = std::fs::read_to_string(example_config()).expect("example");
    let with_rules = |rules: &Path| {
        example.replace(
            "consumer_group = \"lagwatch-evaluator\"",
            &format!(
                "consumer_group = \"lagwatch-evaluator\"\nrules_files = [\"{}\"]",
                rules.display()
            ),
        )
    };
    let path = dir.path().join("lagwatch.toml");
    std::fs::write(&path, with_rules(&rules)).expect("write config");
    let output = lagwatch(
        &["check-config", "--config", path.to_str().expect("utf8")],
        &[],
    );
    assert!(!output.status.success());
    let message = text(&output);
    assert!(
        message.contains(&format!("{}:3:", rules.display())),
        "{message}"
    );
    assert!(message.contains("unknown field `totl_lag`"), "{message}");

    std::fs::write(&rules, "thresholds:\n  total_lag: 5000\n").expect("fix rules");
    let output = lagwatch(
        &["check-config", "--config", path.to_str().expect("utf8")],
        &[],
    );
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        text(&output).contains("1 rules file(s)"),
        "{}",
        text(&output)
    );
}

/// Runs `sql` on the test ClickHouse front (HTTP, body = query).
fn clickhouse(url: &str, sql: &str) {
    let output = Command::new("curl")
        .args(["-fsS", url, "--data-binary", sql])
        .output()
        .expect("run curl");
    assert!(
        output.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `lagwatch status` against the real ClickHouse front and SQLite store:
/// a group whose committed offset has not moved over six samples while the
/// end grew is STALL, with its newest lag, time lag, members and firing
/// alert; a monitored group without samples is UNKNOWN.
#[test]
fn status_reads_the_history_and_judges_each_group() {
    let url = std::env::var("LAGWATCH_TEST_CLICKHOUSE_URL")
        .expect("LAGWATCH_TEST_CLICKHOUSE_URL (run tests/infra/up.sh and source its env.sh)");
    let dir = tempfile::tempdir().expect("tempdir");
    let database = format!("lagwatch_cli_status_{}", std::process::id());
    let config = dir.path().join("lagwatch.toml");
    std::fs::write(
        &config,
        format!(
            "version = 1\n[store]\nurl = \"sqlite://{}\"\n[clusters.local]\nbootstrap_servers = \"127.0.0.1:1\"\n[metrics_topic]\ncluster = \"local\"\n[clickhouse]\nurl = \"{url}\"\ndatabase = \"{database}\"\n",
            dir.path().join("monitors.db").display()
        ),
    )
    .expect("write config");
    let config = config.to_str().expect("utf8");
    let migrated = lagwatch(&["migrate", "--config", config], &[]);
    assert!(migrated.status.success(), "{}", text(&migrated));
    for (group, topic) in [("billing", "orders"), ("shipping", "parcels")] {
        let added = lagwatch(
            &[
                "monitors",
                "add",
                "--team",
                "demo",
                "--cluster",
                "local",
                "--group",
                group,
                "--topic",
                topic,
                "--threshold",
                "500",
                "--config",
                config,
            ],
            &[],
        );
        assert!(added.status.success(), "{}", text(&added));
    }
    // Six samples 5 s apart, newest now: committed 100 throughout, end
    // 1000..1500 on partition 0; partition 1 caught up at 50.
    clickhouse(
        &url,
        &format!(
            "INSERT INTO {database}.lag_samples (ts, cluster, consumer_group, topic, partition, \
             committed_offset, end_offset, time_lag_ms, group_state, members) \
             SELECT now64(3) - toIntervalSecond(5 * (5 - number)), 'local', 'billing', 'orders', 0, \
             100, 1000 + 100 * number, 65000 + 5000 * number, 'Empty', 0 FROM numbers(6)"
        ),
    );
    clickhouse(
        &url,
        &format!(
            "INSERT INTO {database}.lag_samples (ts, cluster, consumer_group, topic, partition, \
             committed_offset, end_offset, time_lag_ms, group_state, members) \
             SELECT now64(3) - toIntervalSecond(5 * (5 - number)), 'local', 'billing', 'orders', 1, \
             50, 50, 0, 'Empty', 0 FROM numbers(6)"
        ),
    );
    clickhouse(
        &url,
        &format!(
            "INSERT INTO {database}.alert_events (ts, fingerprint, rule, state, monitor_id, team, \
             cluster, consumer_group, max_lag, total_lag, threshold, partitions) \
             SELECT now64(3), 'lag_threshold/1/billing', 'lag_threshold', 'firing', 1, 'demo', \
             'local', 'billing', 1400, 1400, 500, '[]'"
        ),
    );

    let json = lagwatch(
        &["status", "--team", "demo", "--json", "--config", config],
        &[],
    );
    assert!(json.status.success(), "{}", text(&json));
    let groups: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    let billing = &groups[0];
    assert_eq!(billing["consumer_group"], "billing");
    assert_eq!(billing["status"], "STALL");
    assert_eq!(billing["max_lag"], 1400);
    assert_eq!(billing["total_lag"], 1400);
    assert_eq!(billing["max_time_lag_ms"], 90000);
    assert_eq!(billing["members"], 0);
    assert_eq!(billing["group_state"], "Empty");
    assert_eq!(billing["firing"], serde_json::json!(["lag_threshold"]));
    assert_eq!(billing["partitions"][0]["status"], "STALL");
    assert_eq!(billing["partitions"][0]["samples"], 6);
    assert_eq!(billing["partitions"][1]["status"], "OK");
    assert_eq!(groups[1]["consumer_group"], "shipping");
    assert_eq!(groups[1]["status"], "UNKNOWN");
    assert_eq!(groups[1]["max_lag"], serde_json::Value::Null);

    let table = lagwatch(&["status", "-v", "--config", config], &[]);
    assert!(table.status.success(), "{}", text(&table));
    let out = String::from_utf8_lossy(&table.stdout);
    assert!(!out.contains('\x1b'), "colour off a terminal: {out}");
    // The README's sample of `lagwatch status -v` is this output.
    println!("{out}");
    let rows: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows[0],
        [
            "monitor", "team", "cluster", "group", "status", "max", "lag", "time", "lag",
            "members", "state", "sampled", "firing"
        ]
    );
    assert_eq!(
        rows[1][..9],
        ["1", "demo", "local", "billing", "STALL", "1400", "1m", "30s", "0"]
    );
    assert_eq!(rows[1][9], "Empty");
    assert_eq!(rows[1][12], "lag_threshold");
    assert_eq!(
        rows[2],
        [
            "2", "demo", "local", "shipping", "UNKNOWN", "-", "-", "-", "-", "none", "in", "5m",
            "-"
        ]
    );
    assert_eq!(
        rows[5],
        ["1", "billing", "orders", "0", "STALL", "1400", "1m", "30s", "100", "1500", "6"]
    );
    assert_eq!(
        rows[6],
        ["1", "billing", "orders", "1", "OK", "0", "0s", "50", "50", "6"]
    );
    clickhouse(&url, &format!("DROP DATABASE IF EXISTS {database}"));
}
