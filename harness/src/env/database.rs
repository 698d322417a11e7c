//! `Database`: one test's throwaway database (a clone of the migrated template) or an existing
//! database attached by URL, with a pool on it. Dropped on success, kept for inspection when the
//! test fails. Knows databases only: the domain is wired on top, in [`crate::TestEnv`].

use std::path::PathBuf;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::EnvError;
use super::broker::{Broker, CloneStrategy, Lease};
use super::config::MigrationSource;
use super::endpoint;
use super::server::Backend;

/// A database for one test: a fresh clone of the migrated template, or an attached one.
///
/// ```no_run
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// let db = billing_harness::env::Database::new().await?;
/// let n: i64 = sqlx::query_scalar("select count(*) from tenants").fetch_one(db.pool()).await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Database {
    /// `None` only while dropping: the connections close before the database is dropped.
    pool: Option<PgPool>,
    target: Target,
    broker: &'static Broker,
}

/// Whose database a [`Database`] uses.
#[derive(Debug)]
enum Target {
    /// A clone the broker made for this test: dropped (or kept) at the end.
    Leased(Lease),
    /// An existing database ([`DatabaseBuilder::attach`]): never dropped.
    Attached { name: String, url: String },
}

/// Options for a [`Database`]; every setter documents its default.
#[derive(Debug, Default)]
#[must_use]
pub struct DatabaseBuilder {
    migrations: Option<MigrationSource>,
}

impl DatabaseBuilder {
    /// Builds the template from this folder of sqlx migrations instead of the bundled platform
    /// schema (default: `HARNESS_MIGRATIONS`, else the bundled schema). The template is keyed by
    /// the folder's content, so editing a migration builds a new one.
    pub fn migrations(mut self, dir: impl Into<PathBuf>) -> Self {
        self.migrations = Some(MigrationSource::Dir(dir.into()));
        self
    }

    /// A fresh clone of the template.
    ///
    /// # Errors
    /// See [`EnvError`]: misconfiguration, no backend, a server that fails to start, failing
    /// migrations.
    pub async fn build(self) -> Result<Database, EnvError> {
        let broker = Broker::global()?;
        let source = self
            .migrations
            .unwrap_or_else(|| broker.config().migrations.clone());
        let lease = broker.acquire(&source, CloneStrategy::FileCopy).await?;
        let pool = PgPoolOptions::new()
            .max_connections(broker.config().pool_size)
            .connect_with(lease.connect_options())
            .await
            .map_err(EnvError::db(format!("connect to {}", lease.name)));
        match pool {
            Ok(pool) => Ok(Database {
                pool: Some(pool),
                target: Target::Leased(lease),
                broker,
            }),
            Err(e) => {
                let _ = broker.release(&lease, None).await;
                Err(e)
            }
        }
    }

    /// An existing database (a QA database marked with `cargo xtask db mark`), never dropped.
    ///
    /// # Errors
    /// The URL is invalid or the database cannot be reached.
    pub async fn attach(self, url: &str) -> Result<Database, EnvError> {
        let broker = Broker::global()?;
        let shown = endpoint::redact(url);
        let options: PgConnectOptions =
            url.parse()
                .map_err(|e: sqlx::Error| EnvError::BadVariable {
                    var: "--database-url",
                    value: shown.clone(),
                    reason: e.to_string(),
                })?;
        let name = options.get_database().unwrap_or("postgres").to_owned();
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(EnvError::db(format!("connect to {shown}")))?;
        Ok(Database {
            pool: Some(pool),
            target: Target::Attached { name, url: shown },
            broker,
        })
    }
}

impl Database {
    /// Options for a database.
    pub fn builder() -> DatabaseBuilder {
        DatabaseBuilder::default()
    }

    /// A fresh database from the configured migrations.
    ///
    /// # Errors
    /// See [`DatabaseBuilder::build`].
    pub async fn new() -> Result<Database, EnvError> {
        Self::builder().build().await
    }

    /// A pool of connections to the database.
    pub fn pool(&self) -> &PgPool {
        self.pool
            .as_ref()
            .expect("the pool is only taken by Drop, after which nothing can call this")
    }

    /// The database's name (`bh_...`).
    pub fn name(&self) -> &str {
        match &self.target {
            Target::Leased(lease) => &lease.name,
            Target::Attached { name, .. } => name,
        }
    }

    /// The database's URL, for other programs (a product under test, say). The password of a
    /// server given by URL is hidden.
    pub fn url(&self) -> String {
        match &self.target {
            Target::Leased(lease) => lease.url(),
            Target::Attached { url, .. } => url.clone(),
        }
    }

    /// A ready-to-paste `psql` command that opens the database.
    pub fn psql_command(&self) -> String {
        match &self.target {
            Target::Leased(lease) => lease.psql_command(),
            Target::Attached { url, .. } => format!("psql '{url}'"),
        }
    }

    /// Whether this is a throwaway clone (dropped after the test), not an attached database.
    pub fn is_owned(&self) -> bool {
        matches!(self.target, Target::Leased(_))
    }

    /// The backend serving the database.
    pub fn backend(&self) -> Backend {
        match &self.target {
            Target::Leased(lease) => lease.backend,
            Target::Attached { .. } => Backend::Url,
        }
    }

    /// What a failed test prints: where its kept database is and how to open it.
    pub fn failure_note(&self) -> String {
        format!(
            "billing-harness: kept database {} of the failed test; open it with:\n  {}\n  (`cargo xtask db clean` removes kept databases)",
            self.name(),
            self.psql_command(),
        )
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let failed = std::thread::panicking();
        let keep = failed.then(|| {
            let thread = std::thread::current();
            format!("failed test {}", thread.name().unwrap_or("(unnamed)"))
        });
        // Dropping the last pool handle closes its idle connections at once.
        drop(self.pool.take());
        let Target::Leased(lease) = &self.target else {
            return;
        };
        let released = self
            .broker
            .release_blocking(lease, keep)
            .inspect_err(|e| {
                eprintln!(
                    "billing-harness: could not release {}: {}",
                    lease.name,
                    super::error::with_causes(e)
                );
            })
            .ok();
        if failed {
            match released.and_then(|r| r.dropped_note(&lease.name)) {
                Some(note) => eprintln!("{note}"),
                None => eprintln!("{}", self.failure_note()),
            }
            if let Some(warning) = self.broker.space_warning() {
                eprintln!("{warning}");
            }
        }
    }
}
