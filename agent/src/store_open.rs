//! Opens the monitor store for the management commands (`monitors`,
//! `silences`, `tokens`, `status`) without creating one.
//!
//! SQLite creates a missing file on connect; run against an example
//! configuration (`sqlite://lagwatch.db`), a listing would silently make an
//! empty `./lagwatch.db` and report no monitors. Only `lagwatch migrate`
//! and the long-running roles create the store; these commands refuse a
//! missing SQLite file and name the path and the fix instead.

use std::path::{Path, PathBuf};

use lagwatch_store::MonitorStore;

use crate::config::AppConfig;

/// The store named by `config` is missing.
#[derive(Debug, thiserror::Error)]
#[error(
    "the monitor store {} does not exist (store.url in {}); `lagwatch migrate --config {}` creates it",
    file.display(), config.display(), config.display()
)]
pub struct StoreMissing {
    pub file: PathBuf,
    pub config: PathBuf,
}

/// The file of a `sqlite:` store URL, absolute (relative ones are relative
/// to the working directory); `None` for in-memory and non-SQLite stores.
pub fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    let path = PathBuf::from(path);
    Some(match std::env::current_dir() {
        Ok(cwd) if path.is_relative() => cwd.join(path),
        _ => path,
    })
}

/// Connects to the existing store of `config` (loaded from `config_path`)
/// and brings its schema up to date.
pub async fn open_existing(config: &AppConfig, config_path: &Path) -> anyhow::Result<MonitorStore> {
    if let Some(file) = sqlite_file(&config.store.url) {
        if !file.is_file() {
            return Err(StoreMissing {
                file,
                config: config_path.to_path_buf(),
            }
            .into());
        }
        tracing::debug!(store = %file.display(), "monitor store");
    }
    let store = MonitorStore::connect(&config.store.url).await?;
    store.migrate().await?;
    Ok(store)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_name_their_file() {
        assert_eq!(
            sqlite_file("sqlite:///var/lib/lagwatch/db.sqlite?mode=rwc"),
            Some(PathBuf::from("/var/lib/lagwatch/db.sqlite"))
        );
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("mysql://u:p@h/db"), None);
        let relative = sqlite_file("sqlite://lagwatch.db").expect("file");
        assert!(relative.is_absolute() && relative.ends_with("lagwatch.db"));
    }
}
