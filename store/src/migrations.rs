//! The monitor store's schema migrations, embedded in the binary.
//!
//! Built with `Migrator::with_migrations` from `include_str!` instead of
//! sqlx's `migrate!` macro: the macro is the only use of sqlx's `macros`
//! feature, which compiles a second copy of sqlx with both database drivers
//! (and SQLite's C source) for the compiler — about a quarter of the store's
//! release build. Checksums are sqlx's own (SHA-384 of the file), so
//! databases migrated by earlier builds validate unchanged. A test checks
//! that every file in `migrations/` is listed here, so a new migration
//! cannot be forgotten.

use std::borrow::Cow;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::SqlStr;

/// (version, file stem, SQL) of one migration file `NNNN_description.sql`.
type Embedded = (i64, &'static str, &'static str);

macro_rules! embedded {
    ($dialect:literal: $($version:literal $name:literal),+ $(,)?) => {
        &[$((
            $version,
            $name,
            include_str!(concat!("../migrations/", $dialect, "/", $name, ".sql")),
        )),+]
    };
}

const SQLITE: &[Embedded] = embedded!("sqlite":
    1 "0001_monitors",
    2 "0002_isolation",
    3 "0003_patterns",
    4 "0004_time_lag_mode",
    5 "0005_alerting_and_silences",
    6 "0006_api_tokens_and_audit",
    7 "0007_token_expiry_and_audit_subjects",
    8 "0008_team_locks",
);

const MYSQL: &[Embedded] = embedded!("mysql":
    1 "0001_monitors",
    2 "0002_isolation",
    3 "0003_patterns",
    4 "0004_time_lag_mode",
    5 "0005_alerting_and_silences",
    6 "0006_api_tokens_and_audit",
    7 "0007_token_expiry_and_audit_subjects",
    8 "0008_team_locks",
);

/// The SQLite migrations.
pub(crate) fn sqlite() -> Migrator {
    migrator(SQLITE)
}

/// The MySQL / MariaDB migrations.
pub(crate) fn mysql() -> Migrator {
    migrator(MYSQL)
}

fn migrator(files: &[Embedded]) -> Migrator {
    Migrator::with_migrations(
        files
            .iter()
            .map(|&(version, name, sql)| {
                // As sqlx names them: the file name after the version, `_`
                // as spaces.
                let description = name
                    .split_once('_')
                    .map_or(name, |(_, rest)| rest)
                    .replace('_', " ");
                Migration::new(
                    version,
                    Cow::Owned(description),
                    MigrationType::Simple,
                    SqlStr::from_static(sql),
                    sql.starts_with("-- no-transaction"),
                )
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `.sql` file of a dialect's directory, as (version, stem).
    fn on_disk(dialect: &str) -> Vec<(i64, String)> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(dialect);
        let mut files: Vec<(i64, String)> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .filter_map(|entry| {
                let name = entry.ok()?.file_name().to_string_lossy().to_string();
                let stem = name.strip_suffix(".sql")?.to_string();
                let version = stem.split('_').next()?.parse().ok()?;
                Some((version, stem))
            })
            .collect();
        files.sort();
        files
    }

    fn listed(files: &[Embedded]) -> Vec<(i64, String)> {
        files.iter().map(|&(v, n, _)| (v, n.to_string())).collect()
    }

    #[test]
    fn every_migration_file_is_embedded() {
        assert_eq!(listed(SQLITE), on_disk("sqlite"));
        assert_eq!(listed(MYSQL), on_disk("mysql"));
    }

    #[test]
    fn versions_descriptions_and_checksums_are_sqlx_own() {
        let migrator = sqlite();
        let first = migrator.iter().next().expect("migrations");
        assert_eq!((first.version, first.description.as_ref()), (1, "monitors"));
        // sqlx's checksum of a migration is SHA-384 of its file.
        assert_eq!(first.checksum.len(), 48);
        assert_eq!(migrator.iter().count(), SQLITE.len());
    }
}
