//! Where the configuration file is, when `--config` does not say.
//!
//! A new user runs `lagwatch monitors list` from wherever they are; the
//! quick start writes its configuration to the per-user location, so the
//! commands of the README work without `--config` in any directory. The
//! search order is: `--config` / `$LAGWATCH_CONFIG` (taken as given, never
//! searched), `./lagwatch.toml`, `$XDG_CONFIG_HOME/lagwatch/lagwatch.toml`
//! (`~/.config/lagwatch/lagwatch.toml` when `XDG_CONFIG_HOME` is unset).

use std::path::{Path, PathBuf};

/// File name looked for in the working directory and the user directory.
pub const FILE_NAME: &str = "lagwatch.toml";

/// No configuration file was given and none was found.
#[derive(Debug, thiserror::Error)]
#[error(
    "no configuration file found (looked for {}); pass --config <file>, set LAGWATCH_CONFIG, or run deploy/quickstart.sh, which writes {}",
    looked.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
    user.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "~/.config/lagwatch/lagwatch.toml".into())
)]
pub struct NotFound {
    pub looked: Vec<PathBuf>,
    pub user: Option<PathBuf>,
}

/// The per-user configuration file: `$XDG_CONFIG_HOME/lagwatch/lagwatch.toml`
/// or `$HOME/.config/lagwatch/lagwatch.toml`; `None` without either variable.
pub fn user_config() -> Option<PathBuf> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").filter(|v| !v.is_empty())?).join(".config"),
    };
    Some(base.join("lagwatch").join(FILE_NAME))
}

/// The file to load: `explicit` as given (a missing one is reported by the
/// loader, naming it), else the first existing candidate of the search.
pub fn resolve(explicit: Option<&Path>) -> Result<PathBuf, NotFound> {
    if let Some(path) = explicit {
        return Ok(path.to_path_buf());
    }
    let user = user_config();
    let looked: Vec<PathBuf> = std::iter::once(PathBuf::from(FILE_NAME))
        .chain(user.clone())
        .collect();
    match looked.iter().find(|p| p.is_file()) {
        Some(found) => Ok(found.clone()),
        None => Err(NotFound { looked, user }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_path_is_taken_as_given() {
        let path = Path::new("/nonexistent/x.toml");
        assert_eq!(resolve(Some(path)).ok(), Some(path.to_path_buf()));
    }
}
