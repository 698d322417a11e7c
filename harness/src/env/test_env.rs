//! `TestEnv`: what a test gets: its own freshly cloned, migrated database and a clock.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use super::EnvError;
use super::broker::{Broker, CloneStrategy, Lease};
use super::config::MigrationSource;
use super::server::Backend;
use crate::build::{Locale, World};
use crate::clock::{self, Clock};
use crate::payments::{Gateway, GatewayServer, HttpGateway, MockGateway};

/// One test's world: a fresh database cloned from the migrated template, a pool on it, and the
/// test clock.
///
/// Dropped normally, it drops its database. Dropped while the test panics (a failed assertion),
/// it **keeps** the database and prints a `psql` command to open it; `cargo xtask db clean`
/// removes kept databases.
///
/// ```no_run
/// use billing_harness::TestEnv;
///
/// #[tokio::test]
/// async fn writes_are_isolated() {
///     let env = TestEnv::start().await;
///     sqlx::query("insert into products (key, name, created_at) values ('a', 'A', now())")
///         .execute(env.pool())
///         .await
///         .unwrap();
/// }
/// ```
///
/// With rstest:
///
/// ```no_run
/// use billing_harness::TestEnv;
/// use rstest::{fixture, rstest};
///
/// #[fixture]
/// async fn env() -> TestEnv {
///     TestEnv::start().await
/// }
///
/// #[rstest]
/// #[tokio::test]
/// async fn starts_empty(#[future] env: TestEnv) {
///     let env = env.await;
///     let n: i64 = sqlx::query_scalar("select count(*) from tenants")
///         .fetch_one(env.pool())
///         .await
///         .unwrap();
///     assert_eq!(n, 0);
/// }
/// ```
#[derive(Debug)]
pub struct TestEnv {
    /// `None` only while dropping: the connections close before the database is dropped.
    open: Option<Open>,
    world: World,
    target: Target,
    broker: &'static Broker,
}

/// Whose database a [`TestEnv`] uses.
#[derive(Debug)]
enum Target {
    /// A clone the broker made for this test: dropped (or kept) at the end.
    Leased(Lease),
    /// An existing database (`TestEnv::attach`): never dropped.
    Attached { name: String, url: String },
}

#[derive(Debug)]
struct Open {
    pool: PgPool,
    clock: Clock,
    gateway: Arc<MockGateway>,
    _gateway_server: Option<GatewayServer>,
}

/// Options for a [`TestEnv`]; every setter documents its default.
#[derive(Debug, Default)]
#[must_use]
pub struct TestEnvBuilder {
    migrations: Option<MigrationSource>,
    start: Option<DateTime<Utc>>,
    today: Option<NaiveDate>,
    seed: Option<u64>,
    locale: Locale,
    gateway_over_http: bool,
}

impl TestEnvBuilder {
    /// Builds the template from this folder of sqlx migrations instead of the bundled platform
    /// schema (default: `HARNESS_MIGRATIONS`, else the bundled schema). The template is keyed by
    /// the folder's content, so editing a migration builds a new one.
    pub fn migrations(mut self, dir: impl Into<PathBuf>) -> Self {
        self.migrations = Some(MigrationSource::Dir(dir.into()));
        self
    }

    /// Starts the clock at `instant` (default: the wall clock, read once, to the second).
    pub fn start_at(mut self, instant: DateTime<Utc>) -> Self {
        self.start = Some(instant);
        self
    }

    /// Relative dates (`months_ago`, `last_month`) count from this day, and the clock starts at
    /// its 00:00 in Seoul (default: `HARNESS_TODAY` if set, else the day the clock starts on).
    pub fn today(mut self, day: NaiveDate) -> Self {
        self.today = Some(day);
        self
    }

    /// Seeds the fake data (default: `HARNESS_SEED` if set, else a random seed, printed when
    /// the test fails).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The language of generated names (default: English).
    pub fn locale(mut self, locale: Locale) -> Self {
        self.locale = locale;
        self
    }

    /// Charges through the mock gateway served over HTTP on 127.0.0.1 instead of calling it in
    /// process (default: in process). Either way [`TestEnv::gateway`] is the same mock.
    pub fn gateway_over_http(mut self) -> Self {
        self.gateway_over_http = true;
        self
    }

    /// Gets the database.
    ///
    /// # Errors
    /// See [`EnvError`]: misconfiguration, no backend, a server that fails to start, failing
    /// migrations.
    pub async fn build(self) -> Result<TestEnv, EnvError> {
        let broker = Broker::global()?;
        let source = self
            .migrations
            .clone()
            .unwrap_or_else(|| broker.config().migrations.clone());
        let lease = broker.acquire(&source, CloneStrategy::FileCopy).await?;
        let opened = async {
            let pool = PgPoolOptions::new()
                .max_connections(broker.config().pool_size)
                .connect_with(lease.connect_options())
                .await
                .map_err(EnvError::db(format!("connect to {}", lease.name)))?;
            self.open(pool, &lease.name).await
        }
        .await;
        match opened {
            Ok((open, world)) => Ok(TestEnv {
                open: Some(open),
                world,
                target: Target::Leased(lease),
                broker,
            }),
            Err(e) => {
                let _ = broker.release(&lease, None).await;
                Err(e)
            }
        }
    }

    /// Opens the harness's view of an existing database (a QA database marked with `cargo
    /// xtask db mark`): the clock, the gateway mock and the builders, with nothing dropped at
    /// the end. The clock row of the database is set to the clock's start.
    ///
    /// # Errors
    /// The URL is invalid or the database cannot be reached.
    pub async fn attach(self, url: &str) -> Result<TestEnv, EnvError> {
        let broker = Broker::global()?;
        let options: sqlx::postgres::PgConnectOptions =
            url.parse()
                .map_err(|e: sqlx::Error| EnvError::BadVariable {
                    var: "--database-url",
                    value: crate::env::endpoint_redact(url),
                    reason: e.to_string(),
                })?;
        let name = options.get_database().unwrap_or("postgres").to_owned();
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(EnvError::db(format!(
                "connect to {}",
                crate::env::endpoint_redact(url)
            )))?;
        let (open, world) = self.open(pool, &name).await?;
        Ok(TestEnv {
            open: Some(open),
            world,
            target: Target::Attached {
                name,
                url: crate::env::endpoint_redact(url),
            },
            broker,
        })
    }

    async fn open(self, pool: PgPool, name: &str) -> Result<(Open, World), EnvError> {
        let gateway = MockGateway::new();
        let (used, server): (Arc<dyn Gateway>, _) = if self.gateway_over_http {
            let server = GatewayServer::start(gateway.clone())
                .await
                .map_err(EnvError::io("serve the mock gateway on 127.0.0.1"))?;
            (Arc::new(HttpGateway::new(server.url())), Some(server))
        } else {
            (gateway.clone(), None)
        };
        let today = match self.today {
            Some(day) => Some(day),
            None => env_var("HARNESS_TODAY")?,
        };
        let tz = chrono_tz::Asia::Seoul;
        let start = match (self.start, today) {
            (Some(start), _) => start,
            (None, Some(day)) => crate::build::Day::new(day, tz).midnight(),
            (None, None) => clock::wall_now(),
        };
        let today = today.unwrap_or_else(|| start.with_timezone(&tz).date_naive());
        let seed = match self.seed {
            Some(seed) => seed,
            None => env_var("HARNESS_SEED")?.unwrap_or_else(rand::random),
        };
        let world = World::new(seed, self.locale, today);
        let clock = Clock::attach(pool.clone(), start, used)
            .await
            .map_err(EnvError::db(format!("set the clock of {}", name)))?;
        Ok((
            Open {
                pool,
                clock,
                gateway,
                _gateway_server: server,
            },
            world,
        ))
    }
}

impl TestEnv {
    /// Options for a test environment.
    pub fn builder() -> TestEnvBuilder {
        TestEnvBuilder::default()
    }

    /// A fresh database from the configured migrations.
    ///
    /// # Errors
    /// See [`TestEnvBuilder::build`].
    pub async fn new() -> Result<TestEnv, EnvError> {
        Self::builder().build().await
    }

    /// [`TestEnv::new`] for tests and fixtures: a failure panics with the error's message alone,
    /// which names the fix.
    pub async fn start() -> TestEnv {
        match Self::new().await {
            Ok(env) => env,
            Err(e) => panic!("billing-harness: failed to get a test database: {e}"),
        }
    }

    /// A pool of connections to this test's database.
    pub fn pool(&self) -> &PgPool {
        &self.open().pool
    }

    /// The test clock; `harness_now()` in this database follows it.
    pub fn clock(&self) -> &Clock {
        &self.open().clock
    }

    /// The mock payment gateway this test's charges go through: its ledger and journal.
    pub fn gateway(&self) -> &MockGateway {
        &self.open().gateway
    }

    /// What a failed test prints: where its kept database is and how to replay its data.
    pub fn failure_note(&self) -> String {
        let seed = self.world.fakes.seed();
        format!(
            "billing-harness: kept database {} of the failed test; open it with:\n  {}\n  (`cargo xtask db clean` removes kept databases)\n  fake data seed: {seed} (HARNESS_SEED={seed} replays it)",
            self.database_name(),
            self.psql_command(),
        )
    }

    pub(crate) fn world(&self) -> &World {
        &self.world
    }

    fn open(&self) -> &Open {
        self.open.as_ref().expect("a TestEnv is open until dropped")
    }

    /// The platform over this database; operations take their instant from the caller, usually
    /// `env.clock().now()`.
    pub fn platform(&self) -> crate::platform::Platform {
        crate::platform::Platform::new(self.pool().clone())
    }

    /// The database's name (`bh_...`).
    pub fn database_name(&self) -> &str {
        match &self.target {
            Target::Leased(lease) => &lease.name,
            Target::Attached { name, .. } => name,
        }
    }

    /// The database's URL, for other programs (a product under test, say).
    pub fn url(&self) -> String {
        match &self.target {
            Target::Leased(lease) => lease.url(),
            Target::Attached { url, .. } => url.clone(),
        }
    }

    /// A ready-to-paste `psql` command that opens this database.
    pub fn psql_command(&self) -> String {
        match &self.target {
            Target::Leased(lease) => lease.psql_command(),
            Target::Attached { url, .. } => format!("psql '{url}'"),
        }
    }

    /// The backend serving this database.
    pub fn backend(&self) -> Backend {
        match &self.target {
            Target::Leased(lease) => lease.backend,
            Target::Attached { .. } => Backend::Url,
        }
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        let failed = std::thread::panicking();
        let keep = failed.then(|| {
            let thread = std::thread::current();
            format!("failed test {}", thread.name().unwrap_or("(unnamed)"))
        });
        // Dropping the last pool handle closes its idle connections at once.
        drop(self.open.take());
        let released = match &self.target {
            Target::Leased(lease) => self
                .broker
                .release_blocking(lease, keep)
                .inspect_err(|e| {
                    eprintln!("billing-harness: could not release {}: {e}", lease.name)
                })
                .ok(),
            Target::Attached { .. } => None,
        };
        if failed {
            let seed = self.world.fakes.seed();
            match released.and_then(|r| r.dropped_note(self.database_name(), seed)) {
                Some(note) => eprintln!("{note}"),
                None => eprintln!("{}", self.failure_note()),
            }
            if let Some(warning) = self.broker.space_warning() {
                eprintln!("{warning}");
            }
        }
    }
}

/// Reads and parses a `HARNESS_*` variable, naming it when its value is bad.
fn env_var<T: std::str::FromStr>(var: &'static str) -> Result<Option<T>, EnvError>
where
    T::Err: std::fmt::Display,
{
    match std::env::var(var) {
        Ok(value) if !value.trim().is_empty() => {
            value
                .trim()
                .parse()
                .map(Some)
                .map_err(|e: T::Err| EnvError::BadVariable {
                    var,
                    value,
                    reason: e.to_string(),
                })
        }
        _ => Ok(None),
    }
}
