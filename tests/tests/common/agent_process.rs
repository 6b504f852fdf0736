//! The real `lagwatch` binary as a child process, for tests that need a
//! process of its own: one killed with SIGKILL (no shutdown code runs),
//! several agents side by side, or the binary exactly as deployed. The
//! binary is the workspace's own, built by cargo (or `LAGWATCH_BIN`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context};

/// Variables `cargo test` sets for a test process besides `CARGO_PKG_*`
/// and `CARGO_MANIFEST_*`, none of which a build of the binary should see.
const TEST_RUN_VARIABLES: [&str; 5] = [
    "CARGO_CRATE_NAME",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_TARGET_TMPDIR",
    "CARGO_BIN_NAME",
    "OUT_DIR",
];

/// The `lagwatch` binary of this workspace, built (or found up to date)
/// by cargo; `LAGWATCH_BIN` overrides it.
pub fn lagwatch_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("LAGWATCH_BIN") {
        return Ok(PathBuf::from(path));
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let mut build = Command::new(cargo);
    // `cargo test` gives this process the test crate's CARGO_PKG_*,
    // CARGO_MANIFEST_* etc.; build scripts (ring's) rerun when those
    // change, so passing them on would rebuild half the dependency tree
    // here and again at the next `cargo test`.
    for (name, _) in std::env::vars_os() {
        let name_text = name.to_string_lossy();
        if name_text.starts_with("CARGO_PKG_")
            || name_text.starts_with("CARGO_MANIFEST_")
            || TEST_RUN_VARIABLES.contains(&name_text.as_ref())
        {
            build.env_remove(&name);
        }
    }
    let output = build
        .args(["build", "-p", "lagwatch", "--bin", "lagwatch"])
        .arg("--message-format=json-render-diagnostics")
        .current_dir(super::repo_root())
        .stderr(Stdio::inherit())
        .output()
        .context("cargo build --bin lagwatch")?;
    anyhow::ensure!(output.status.success(), "cargo build --bin lagwatch failed");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "lagwatch")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .context("cargo build reported no lagwatch executable")
}

/// `lagwatch --config <config> <command>` (`all`, `evaluator`, ...) with
/// its output in a log file; SIGKILLed on drop at the latest.
pub struct AgentProcess {
    child: Child,
    log: PathBuf,
}

impl AgentProcess {
    pub fn start(binary: &Path, config: &Path, command: &str, log: &Path) -> anyhow::Result<Self> {
        Self::start_with_env(binary, config, command, log, &[])
    }

    /// [`AgentProcess::start`] with extra environment variables (an admin
    /// token in `LAGWATCH__API__ADMIN_TOKEN`, for example).
    pub fn start_with_env(
        binary: &Path,
        config: &Path,
        command: &str,
        log: &Path,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let file = std::fs::File::create(log)?;
        let child = Command::new(binary)
            .arg("--config")
            .arg(config)
            .arg(command)
            .env("LAGWATCH_LOG", "info,lagwatch=debug")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()
            .with_context(|| format!("start {} {command}", binary.display()))?;
        Ok(AgentProcess {
            child,
            log: log.to_path_buf(),
        })
    }

    /// Fails when the process has exited.
    pub fn still_running(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("lagwatch exited during the test: {status}");
        }
        Ok(())
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// The last `lines` lines of the process's log, for a failure report.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(lines).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
