//! `Database`: one test's throwaway database (a clone of the migrated template) or an existing
//! database attached by URL, with a pool on it. Dropped on success, kept for inspection when the
//! test fails. Knows databases only: the domain is wired on top, in [`crate::TestEnv`].

use std::path::PathBuf;

use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::EnvError;
use super::broker::Broker;
use super::config::MigrationSource;
use super::conninfo;
use super::lease::Lease;
use super::secret::Secret;
use super::server::Backend;
use super::template::Schema;

/// A database for one test: a fresh clone of the migrated template, or an attached one.
///
/// ```no_run
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// let db = throwaway_pg::Database::builder().migrations("migrations").build().await?;
/// let n: i64 = sqlx::query_scalar("select count(*) from tenants").fetch_one(db.pool()).await?;
/// # Ok(()) }
/// ```
pub struct Database {
    /// `None` only while dropping: the connections close before the database is dropped.
    pool: Option<PgPool>,
    target: Target,
    /// Whether the schema has `harness_clock` and `harness_now()`.
    db_clock: bool,
    broker: &'static Broker,
}

/// Written by hand so that no password reaches a log: the URL is redacted and the driver's
/// options (which hold the password) are left out.
impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("name", &self.name())
            .field("url", &conninfo::redact(&self.url()))
            .field("backend", &self.backend())
            .field("marked_for", &self.marked_for())
            .field("db_clock", &self.db_clock)
            .finish_non_exhaustive()
    }
}

/// Whose database a [`Database`] uses.
enum Target {
    /// A database the broker gave this test: dropped (or kept) at the end.
    Leased(Lease),
    /// An existing database ([`DatabaseBuilder::attach`]): never dropped.
    Attached {
        name: String,
        /// The URL as given, password and all.
        given: Secret,
        url: String,
        options: Box<PgConnectOptions>,
        /// The environment its harness marker names.
        marked: String,
    },
}

/// Options for a [`Database`]; every setter documents its default.
#[derive(Debug, Default)]
#[must_use]
pub struct DatabaseBuilder {
    migrations: Option<MigrationSource>,
    default_migrations: Option<MigrationSource>,
    without_db_clock: bool,
    app_pool: u32,
    /// Settings every connection to an attached database starts with.
    settings: Vec<(String, String)>,
}

impl DatabaseBuilder {
    /// Builds the template from this folder of sqlx migrations (default: `HARNESS_MIGRATIONS`,
    /// else [`DatabaseBuilder::default_migrations`]). A relative path is taken
    /// from the folder of the crate whose tests run (`CARGO_MANIFEST_DIR`; cargo and
    /// cargo-nextest set it), so `.migrations("migrations")` finds the crate's own wherever the
    /// tests are started; `concat!(env!("CARGO_MANIFEST_DIR"), "/migrations")` fixes it at
    /// compile time for binaries started without cargo. The template is keyed by the folder's
    /// content, so editing a migration builds a new one.
    pub fn migrations(mut self, dir: impl Into<PathBuf>) -> Self {
        self.migrations = Some(MigrationSource::dir(dir));
        self
    }

    /// Builds the template from migrations compiled into the test binary (`static MIGRATOR:
    /// Migrator = sqlx::migrate!();`) instead of a folder. The same
    /// migrations read from a folder share the template.
    pub fn migrator(mut self, migrator: &'static Migrator) -> Self {
        self.migrations = Some(MigrationSource::Embedded(migrator));
        self
    }

    /// The migrations to use when neither [`DatabaseBuilder::migrations`],
    /// [`DatabaseBuilder::migrator`] nor `HARNESS_MIGRATIONS` names any (default: none, and
    /// [`DatabaseBuilder::build`] says so). A library that ships a schema sets it.
    pub fn default_migrations(mut self, migrations: MigrationSource) -> Self {
        self.default_migrations = Some(migrations);
        self
    }

    /// Leaves the schema untouched by the harness: no `harness_clock` table and no
    /// `harness_now()` function go in before the migrations (default: they do). The database's
    /// time is then the server's own (`now()`), and a test clock moves the application's time
    /// only. Migrations that call `harness_now()` need them (a
    /// [`MigrationSource::Named`] says so with `needs_db_clock`).
    pub fn without_db_clock(mut self) -> Self {
        self.without_db_clock = true;
        self
    }

    /// Declares that the test opens a pool of its own with up to `connections` connections to
    /// this database (the application under test, say), so that the connection budget shared
    /// by every test process counts them (default 0: only the harness's pool of
    /// `HARNESS_POOL_SIZE`).
    pub fn app_pool(mut self, connections: u32) -> Self {
        self.app_pool = connections;
        self
    }

    /// Starts every connection to an attached database ([`DatabaseBuilder::attach`]) with the
    /// setting `name` = `value` (`-c name=value`), as triggers of the schema may read it with
    /// `current_setting` (default: none but `harness.require_marker = on`, which every attached
    /// connection carries).
    pub fn session_setting(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.settings.push((name.into(), value.into()));
        self
    }

    /// A database for the test: one the server cloned ahead (the warm pool), or a fresh clone.
    ///
    /// # Errors
    /// See [`EnvError`]: misconfiguration, no backend, a server that fails to start, failing
    /// migrations; [`EnvError::Conflict`] when no migrations are given, or for migrations that
    /// need the database clock without it.
    pub async fn build(self) -> Result<Database, EnvError> {
        let broker = Broker::global()?;
        let migrations = self
            .migrations
            .or_else(|| broker.config().migrations.clone())
            .or(self.default_migrations)
            .ok_or_else(|| {
                EnvError::Conflict(
                    "no migrations to build the template from: give DatabaseBuilder::migrations(DIR) or ::migrator(&MIGRATOR), or set HARNESS_MIGRATIONS".into(),
                )
            })?;
        if let MigrationSource::Named {
            name,
            needs_db_clock: true,
            ..
        } = migrations
            && self.without_db_clock
        {
            return Err(EnvError::Conflict(format!(
                "{name} calls harness_now(), so it cannot go without the database clock: give your own migrations, or leave the clock in"
            )));
        }
        let schema = Schema::new(migrations).with_db_clock(!self.without_db_clock);
        let pool_size = broker.config().pool_size;
        let lease = broker.claim(&schema, pool_size + self.app_pool).await?;
        let pool = PgPoolOptions::new()
            .max_connections(pool_size)
            .connect_with(lease.connect_options())
            .await
            .map_err(EnvError::db(format!("connect to {}", lease.name)));
        match pool {
            Ok(pool) => Ok(Database {
                pool: Some(pool),
                target: Target::Leased(lease),
                db_clock: schema.db_clock(),
                broker,
            }),
            Err(e) => {
                let _ = broker.release(&lease, None).await;
                Err(e)
            }
        }
    }

    /// An existing database (a QA database marked with `cargo xtask db mark`), never dropped.
    /// `url` is read as libpq reads it (see [`parse_url`](crate::parse_url)): a password with
    /// an `@` is written `%40`.
    ///
    /// An unmarked database is refused ([`EnvError::NotMarked`]): the harness writes only to
    /// databases it created or that somebody marked for tests. Every connection carries
    /// `harness.require_marker = on` (and the [`DatabaseBuilder::session_setting`]s), so that a
    /// schema whose triggers read it (the platform's do) checks the marker again in the
    /// transaction of every write: a marker removed after this check lets no write through.
    ///
    /// # Errors
    /// The URL is invalid, the database cannot be reached, or it has no marker.
    pub async fn attach(self, url: &str) -> Result<Database, EnvError> {
        let broker = Broker::global()?;
        let shown = conninfo::redact(url);
        let options = conninfo::parse_given(url, "--database-url")?
            .options([("harness.require_marker", "on")])
            .options(self.settings.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let name = options.get_database().unwrap_or("postgres").to_owned();
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .connect_with(options.clone())
            .await
            .map_err(EnvError::db(format!("connect to {shown}")))?;
        let marked = match super::mark::require(&pool, &name, &shown).await {
            Ok(marked) => marked,
            Err(e) => {
                pool.close().await;
                return Err(e);
            }
        };
        Ok(Database {
            pool: Some(pool),
            target: Target::Attached {
                name,
                given: Secret::new(url),
                url: shown,
                options: Box::new(options),
                marked,
            },
            // `cargo xtask db mark` installs it.
            db_clock: true,
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

    /// Driver options for this database, for a pool of the test's own (declare its size with
    /// [`DatabaseBuilder::app_pool`]): `PgPoolOptions::new().connect_with(db.connect_options())`.
    /// On a local server they go through its unix socket.
    pub fn connect_options(&self) -> PgConnectOptions {
        match &self.target {
            Target::Leased(lease) => lease.connect_options(),
            Target::Attached { options, .. } => (**options).clone(),
        }
    }

    /// The host other programs reach the database's server at over TCP (`127.0.0.1` for a
    /// throwaway server).
    pub fn host(&self) -> String {
        match &self.target {
            Target::Leased(lease) => lease.host(),
            Target::Attached { options, .. } => options.get_host().to_owned(),
        }
    }

    /// The server's TCP port.
    pub fn port(&self) -> u16 {
        match &self.target {
            Target::Leased(lease) => lease.port(),
            Target::Attached { options, .. } => options.get_port(),
        }
    }

    /// The user the database is reached as.
    pub fn user(&self) -> String {
        match &self.target {
            Target::Leased(lease) => lease.user(),
            Target::Attached { options, .. } => options.get_username().to_owned(),
        }
    }

    /// The user's password, which prints as `***` ([`Secret::expose`] gives it); empty when the
    /// server takes none.
    pub fn password(&self) -> Secret {
        match &self.target {
            Target::Leased(lease) => lease.password(),
            Target::Attached { given, .. } => Secret::new(
                conninfo::password_in(given.expose())
                    .ok()
                    .flatten()
                    .unwrap_or_default(),
            ),
        }
    }

    /// The database's URL with the password in it, on every backend: what the program under
    /// test connects with. It prints as `***`; [`Secret::expose`] gives the URL.
    pub fn url_with_password(&self) -> Secret {
        match &self.target {
            Target::Leased(lease) => lease.url_with_password(),
            Target::Attached { given, .. } => given.clone(),
        }
    }

    /// The database's name (`bh_...`).
    pub fn name(&self) -> &str {
        match &self.target {
            Target::Leased(lease) => &lease.name,
            Target::Attached { name, .. } => name,
        }
    }

    /// The database's URL, safe to print only on a server given by URL: there its password is
    /// `***`, while a throwaway server's URL carries its password (which dies with the server).
    /// The program under test takes [`Database::url_with_password`], on every backend.
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

    /// Whether the schema has the harness's database clock (`harness_clock` and
    /// `harness_now()`); see [`DatabaseBuilder::without_db_clock`].
    pub fn has_db_clock(&self) -> bool {
        self.db_clock
    }

    /// The environment an attached database was marked for (`qa`, say, as `cargo xtask db mark
    /// --env` recorded it); `None` for a throwaway clone.
    pub fn marked_for(&self) -> Option<&str> {
        match &self.target {
            Target::Leased(_) => None,
            Target::Attached { marked, .. } => Some(marked),
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

    /// What a failed test prints: where its kept database is, how to open it, and how to drop
    /// kept databases.
    pub fn failure_note(&self) -> String {
        super::note::kept(self.name(), &self.psql_command())
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        // Dropping the last pool handle closes its idle connections at once.
        drop(self.pool.take());
        let Target::Leased(lease) = &self.target else {
            return;
        };
        if !std::thread::panicking() {
            // Off the test's path: the broker drops it in the background.
            self.broker.release_in_background(lease);
            return;
        }
        let thread = std::thread::current();
        let keep = format!("failed test {}", thread.name().unwrap_or("(unnamed)"));
        let released = self
            .broker
            .release_blocking(lease, Some(keep))
            .inspect_err(|e| {
                eprintln!(
                    "billing-harness: could not release {}: {}",
                    lease.name,
                    super::error::with_causes(e)
                );
            })
            .ok();
        match released.and_then(|r| r.dropped_note(&lease.name)) {
            Some(note) => eprintln!("{note}"),
            None => eprintln!("{}", self.failure_note()),
        }
        if let Some(warning) = self.broker.space_warning() {
            eprintln!("{warning}");
        }
    }
}
