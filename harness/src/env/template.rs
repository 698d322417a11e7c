//! Migrated templates: which migrations, their hash (the template's name), and how a template is
//! built so that clones of it are ready to use.

use sha2::{Digest, Sha256};
use sqlx::Executor;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;

use super::EnvError;
use super::config::MigrationSource;
use super::endpoint::Endpoint;

/// The reference platform schema, compiled into the crate.
pub(crate) static BUNDLED: Migrator = sqlx::migrate!("./migrations");

/// The test clock's table and `harness_now()`, installed before any migration.
pub(crate) const CLOCK_SQL: &str = include_str!("clock.sql");

/// A set of migrations and the name of the template built from it.
#[derive(Debug)]
pub(crate) struct Migrations {
    pub(crate) source: MigrationSource,
    migrator: Loaded,
    /// First 12 hex digits of the SHA-256 over the clock SQL and every migration.
    pub(crate) hash: String,
}

impl Migrations {
    /// Loads the migrations of `source` and hashes them.
    pub(crate) async fn load(source: &MigrationSource) -> Result<Migrations, EnvError> {
        let migrator = match source {
            MigrationSource::Bundled => Loaded::Bundled,
            MigrationSource::Dir(dir) => {
                if !dir.is_dir() {
                    return Err(EnvError::BadVariable {
                        var: "HARNESS_MIGRATIONS",
                        value: dir.display().to_string(),
                        reason: "not a folder of sqlx migrations".into(),
                    });
                }
                Loaded::Owned(
                    Migrator::new(dir.as_path())
                        .await
                        .map_err(EnvError::migrate(dir.display().to_string()))?,
                )
            }
        };
        let mut digest = Sha256::new();
        digest.update(CLOCK_SQL.as_bytes());
        for m in migrator.get().iter() {
            digest.update(m.version.to_le_bytes());
            digest.update(m.description.as_bytes());
            digest.update(&*m.checksum);
        }
        let hash: String = digest
            .finalize()
            .iter()
            .take(6)
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(Migrations {
            source: source.clone(),
            migrator,
            hash,
        })
    }

    /// The template database's name.
    pub(crate) fn template_name(&self) -> String {
        format!("bh_tpl_{}", self.hash)
    }

    /// A 32-bit key for the advisory lock that marks this template as in use.
    pub(crate) fn lock_key(&self) -> i32 {
        lock_key_of(&self.hash)
    }

    /// Where the migrations come from, for messages.
    pub(crate) fn origin(&self) -> String {
        match &self.source {
            MigrationSource::Bundled => "the bundled platform schema".into(),
            MigrationSource::Dir(dir) => dir.display().to_string(),
        }
    }

    /// Runs the clock SQL and the migrations into the (new, empty) database `name`.
    pub(crate) async fn apply(&self, endpoint: &Endpoint, name: &str) -> Result<(), EnvError> {
        // A one-connection pool: `Migrator::run` on a bare connection is not `Send` enough to
        // run inside a spawned task.
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(endpoint.options(name))
            .await
            .map_err(EnvError::db(format!("connect to the new database {name}")))?;
        let result = async {
            pool.execute(CLOCK_SQL)
                .await
                .map_err(EnvError::db("install harness_now() into the template"))?;
            self.migrator
                .get()
                .run(&pool)
                .await
                .map_err(EnvError::migrate(self.origin()))
        }
        .await;
        pool.close().await;
        result
    }
}

/// A migrator compiled in, or loaded from a folder at run time.
#[derive(Debug)]
enum Loaded {
    Bundled,
    Owned(Migrator),
}

impl Loaded {
    fn get(&self) -> &Migrator {
        match self {
            Loaded::Bundled => &BUNDLED,
            Loaded::Owned(migrator) => migrator,
        }
    }
}

/// The advisory-lock key of a template hash (its first 8 hex digits).
pub(crate) fn lock_key_of(hash: &str) -> i32 {
    u32::from_str_radix(hash.get(..8).unwrap_or("0"), 16).unwrap_or(0) as i32
}
