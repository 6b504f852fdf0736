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

#[test]
fn monitors_add_list_rm_with_env_override_of_the_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = format!("sqlite://{}", dir.path().join("monitors.db").display());
    let config = example_config();
    let config = config.to_str().expect("utf8");
    let env = [("LAGWATCH__STORE__URL", store.as_str())];
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

    let listed = lagwatch(&["monitors", "list", "--json", "--config", config], &env);
    assert!(listed.status.success(), "{}", text(&listed));
    let monitors: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("json");
    assert_eq!(monitors[0]["consumer_group"], "billing");
    assert_eq!(monitors[0]["for_secs"], 120);
    assert_eq!(monitors[0]["topics"][0], "orders");

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
