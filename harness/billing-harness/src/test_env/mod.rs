//! `TestEnv`: what a test gets, and the one place that wires the parts together: its own
//! database (from [`crate::env`]) and the test clock; with the `domain` feature the platform's
//! jobs registered with the clock and the mock payment gateway (`domain.rs`), with `products` a
//! mock per product (`products.rs`), and with `builders` the builders' per-test state.

mod domain;
mod products;

pub use products::{Convergence, SyncError};

use std::path::PathBuf;

use chrono::NaiveDate;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use sqlx::PgPool;
use sqlx::migrate::Migrator;

use crate::clock::{self, Clock};
use crate::dates::{Day, MonthOf};
use crate::env::ProductsChoice;
use crate::env::{Backend, Database, DatabaseBuilder, EnvError};
use crate::fakes::Locale;
use crate::model::Month;
use crate::platform::SyncPolicy;
use crate::world::World;

/// One test's world: a fresh database cloned from the migrated template, a pool on it, and the
/// test clock.
///
/// Dropped normally, it drops its database (in the background: the test does not wait).
/// Dropped while the test panics (a failed assertion), it **keeps** the database and prints a
/// `psql` command to open it, and how to drop kept databases ([`crate::env::drop_kept`] or
/// `HARNESS_DROP_KEPT=1`).
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
pub struct TestEnv {
    /// Declared before `db`: the clock's, the gateway's and the mocks' handles go before the
    /// database drops.
    open: Open,
    world: World,
    db: Database,
}

/// Written by hand so that no password reaches a log: the database shows its URL redacted,
/// and the parts holding connections are left out.
impl std::fmt::Debug for TestEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestEnv")
            .field("db", &self.db)
            .field("today", &self.world.today)
            .field("tz", &self.world.tz)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Open {
    clock: Clock,
    domain: domain::Parts,
}

/// Options for a [`TestEnv`]; every setter documents its default.
#[derive(Debug, Default)]
#[must_use]
pub struct TestEnvBuilder {
    db: DatabaseBuilder,
    start: Option<DateTime<Utc>>,
    time_zone: Option<Tz>,
    today: Option<NaiveDate>,
    seed: Option<u64>,
    locale: Locale,
    gateway_over_http: bool,
    sync_policy: Option<SyncPolicy>,
    products: Option<ProductsChoice>,
}

impl TestEnvBuilder {
    /// Builds the template from this folder of sqlx migrations instead of the bundled platform
    /// schema (default: `HARNESS_MIGRATIONS`, else the bundled schema). A relative path is taken
    /// from the crate's folder (`CARGO_MANIFEST_DIR`), as [`DatabaseBuilder::migrations`] says.
    /// The template is keyed by the migrations' content, so editing one builds a new template,
    /// and it is shared by every test process of the run.
    pub fn migrations(mut self, dir: impl Into<PathBuf>) -> Self {
        self.db = self.db.migrations(dir);
        self
    }

    /// Builds the template from migrations compiled into the test binary
    /// (`sqlx::migrate!()`); see [`DatabaseBuilder::migrator`].
    pub fn migrator(mut self, migrator: &'static Migrator) -> Self {
        self.db = self.db.migrator(migrator);
        self
    }

    /// Leaves your schema untouched: no `harness_clock` table and no `harness_now()` (default:
    /// they go in before your migrations). SQL then reads the server's own time, and
    /// [`TestEnv::clock`] moves the application's time only. See
    /// [`DatabaseBuilder::without_db_clock`].
    pub fn without_db_clock(mut self) -> Self {
        self.db = self.db.without_db_clock();
        self
    }

    /// Counts a pool of the test's own, of up to `connections` connections to this database, in
    /// the connection budget every test process shares (default 0). See
    /// [`DatabaseBuilder::app_pool`].
    pub fn app_pool(mut self, connections: u32) -> Self {
        self.db = self.db.app_pool(connections);
        self
    }

    /// On an attached database ([`TestEnvBuilder::attach`]), records every row this
    /// environment's connections insert as the scenario run `run_id`'s (a `harness_runs` row the
    /// caller wrote first), in the insert's own transaction (default: nothing recorded). What a
    /// run recorded is what `purge --run` takes.
    pub fn record_run(mut self, run_id: impl Into<String>) -> Self {
        self.db = std::mem::take(&mut self.db).session_setting("harness.run_id", run_id);
        self
    }

    /// Starts the clock at `instant` (default: with the `domain` feature the start of
    /// [`TestEnvBuilder::today`] if set; else the wall clock, read once, to the second).
    pub fn start_at(mut self, instant: DateTime<Utc>) -> Self {
        self.start = Some(instant);
        self
    }

    /// The time zone whose calendar days `today`, `months_ago` and the builders' days are in
    /// (default: the platform's, [`crate::calendar::DEFAULT_TIME_ZONE`]). Install a catalog in
    /// the same zone.
    pub fn time_zone(mut self, time_zone: Tz) -> Self {
        self.time_zone = Some(time_zone);
        self
    }

    /// Relative dates (`months_ago`, `last_month`) count from this day, and the clock starts at
    /// its start in the time zone (default: `HARNESS_TODAY` if set, else the day the clock starts
    /// on).
    pub fn today(mut self, day: NaiveDate) -> Self {
        self.today = Some(day);
        self
    }

    /// Seeds the fake data and the product sync jitter (default: `HARNESS_SEED` if set, else a
    /// random seed, printed when the test fails).
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

    /// Product sync retries under `policy`: its backoff, and the retry horizon after which a row
    /// is a dead letter (default: [`SyncPolicy::default`], 3 days, with the jitter seeded by the
    /// test's seed).
    pub fn sync_policy(mut self, policy: SyncPolicy) -> Self {
        self.sync_policy = Some(policy);
        self
    }

    /// Where the product mocks run (default: `HARNESS_PRODUCTS`, else in process). In a
    /// container (the `containers` feature), [`TestEnv::product`] gives a remote mock with the
    /// same methods.
    pub fn products(mut self, products: ProductsChoice) -> Self {
        self.products = Some(products);
        self
    }

    /// Gets the database.
    ///
    /// # Errors
    /// See [`EnvError`]: misconfiguration, no backend, a server that fails to start, failing
    /// migrations.
    pub async fn build(mut self) -> Result<TestEnv, EnvError> {
        let db = std::mem::take(&mut self.db)
            .default_migrations(crate::schema::platform_schema())
            .build()
            .await?;
        self.open(db).await
    }

    /// Opens the harness's view of an existing database (a QA database marked with `cargo
    /// xtask db mark`): the clock, the gateway mock and the builders, with nothing dropped at
    /// the end. The database is shared, so its clock (`harness_clock`) is never moved back: a
    /// start ahead of it moves it forward (under the [`crate::clock::ClockLock`]), a start
    /// behind it leaves it where it is (see [`crate::clock::Clock::attach_shared`]).
    ///
    /// # Errors
    /// The URL is invalid, the database cannot be reached, or it has no harness marker
    /// ([`EnvError::NotMarked`]: mark it with `cargo xtask db mark`).
    pub async fn attach(mut self, url: &str) -> Result<TestEnv, EnvError> {
        let db = std::mem::take(&mut self.db).attach(url).await?;
        self.open(db).await
    }

    async fn open(self, db: Database) -> Result<TestEnv, EnvError> {
        // The seed resolved once, for the builders' fake data and the product sync jitter.
        let (seed, builder) = {
            let seed = match self.seed {
                Some(seed) => seed,
                None => env_var("HARNESS_SEED")?.unwrap_or_else(rand::random),
            };
            (
                seed,
                TestEnvBuilder {
                    seed: Some(seed),
                    ..self
                },
            )
        };
        let (start, today, tz) = {
            let today = match builder.today {
                Some(day) => Some(day),
                None => env_var("HARNESS_TODAY")?,
            };
            let tz = builder
                .time_zone
                .unwrap_or(crate::calendar::DEFAULT_TIME_ZONE);
            let start = match (builder.start, today) {
                (Some(start), _) => start,
                (None, Some(day)) => crate::calendar::start_of_day(tz, day),
                (None, None) => clock::wall_now(),
            };
            (
                start,
                today.unwrap_or_else(|| crate::calendar::local_day(tz, start)),
                tz,
            )
        };
        let clock = if !db.is_owned() {
            Clock::attach_shared(db.pool().clone(), start)
                .await
                .map_err(EnvError::db(format!("set the clock of {}", db.name())))?
        } else if db.has_db_clock() {
            Clock::attach(db.pool().clone(), start)
                .await
                .map_err(EnvError::db(format!("set the clock of {}", db.name())))?
        } else {
            Clock::without_database(start)
        };
        let (clock, domain) = domain::Parts::open(&builder, &db, clock).await?;
        let world = World::new(seed, builder.locale, today, tz);
        Ok(TestEnv {
            open: Open { clock, domain },
            world,
            db,
        })
    }
}

/// The builders' entry point, borrowed from a [`TestEnv`] ([`TestEnv::build`]): the test's
/// database, clock and world, for `.tenant()`, `.org()` and `.user()`.
#[derive(Debug, Clone, Copy)]
pub struct Build<'e> {
    env: &'e TestEnv,
}

impl<'e> Build<'e> {
    /// The test environment the builders write to.
    pub fn env(self) -> &'e TestEnv {
        self.env
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
        expect_env(Self::new().await)
    }

    /// A pool of connections to this test's database.
    pub fn pool(&self) -> &PgPool {
        self.db.pool()
    }

    /// The test's database: its name, URL and `psql` command.
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// The test clock; `harness_now()` in this database follows it. With the `domain` feature,
    /// moving it forward runs the platform's jobs due on the way.
    pub fn clock(&self) -> &Clock {
        &self.open.clock
    }

    /// What a failed test prints: where its kept database is, how to open it and drop kept
    /// databases, and, when the test drew fake data, the seed that replays it.
    pub fn failure_note(&self) -> String {
        match self.seed_note() {
            Some(seed) => format!("{}\n  {seed}", self.db.failure_note()),
            None => self.db.failure_note(),
        }
    }

    /// The seed of the fake data, if the test drew any.
    fn seed_note(&self) -> Option<String> {
        {
            let fakes = &self.world.fakes;
            let seed = fakes.seed();
            fakes
                .drawn()
                .then(|| format!("fake data seed: {seed} (HARNESS_SEED={seed} replays it)"))
        }
    }

    pub(crate) fn world(&self) -> &World {
        &self.world
    }

    /// The builders, borrowed from this test's world: `env.build().tenant()`, `.org()`,
    /// `.user()` (see [`crate::builders`]).
    pub fn build(&self) -> Build<'_> {
        Build { env: self }
    }

    /// The day relative dates count from: `HARNESS_TODAY`, the builder's `today`, or the day the
    /// clock started on.
    pub fn today(&self) -> Day {
        Day::new(self.world.today, self.world.tz)
    }

    /// The month of [`TestEnv::today`].
    pub fn this_month(&self) -> MonthOf {
        MonthOf::new(Month::of(self.world.today), self.world.tz)
    }

    /// The month before [`TestEnv::this_month`].
    pub fn last_month(&self) -> MonthOf {
        self.months_ago(1)
    }

    /// The month `n` months before [`TestEnv::this_month`].
    pub fn months_ago(&self, n: u32) -> MonthOf {
        self.this_month().minus(n)
    }

    /// The seed of this test's fake data (`HARNESS_SEED` replays it).
    pub fn seed(&self) -> u64 {
        self.world.fakes.seed()
    }

    /// A calendar day in the billing time zone, for the builders.
    pub fn day(&self, date: NaiveDate) -> Day {
        Day::new(date, self.world.tz)
    }

    /// The database's name (`bh_...`): with [`TestEnv::host`], [`TestEnv::port`],
    /// [`TestEnv::user`] and [`TestEnv::password`], the parts an application that builds its own
    /// connection needs.
    pub fn database_name(&self) -> &str {
        self.db.name()
    }

    /// The user this database is reached as.
    pub fn user(&self) -> String {
        self.db.user()
    }

    /// The user's password. It prints as `***`; [`Secret::expose`](crate::env::Secret::expose)
    /// gives it (empty when the server takes none):
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
    /// use billing_harness::TestEnv;
    /// use sqlx::postgres::PgConnectOptions;
    ///
    /// let env = TestEnv::start().await;
    /// let options = PgConnectOptions::new()
    ///     .host(&env.host())
    ///     .port(env.port())
    ///     .username(&env.user())
    ///     .password(env.password().expose())
    ///     .database(env.database_name());
    /// # drop(options);
    /// # Ok(()) }
    /// ```
    pub fn password(&self) -> crate::env::Secret {
        self.db.password()
    }

    /// The database's URL with the password in it, on every backend: what the program under
    /// test connects with (`DATABASE_URL`, say). It prints as `***`;
    /// [`Secret::expose`](crate::env::Secret::expose) gives the URL.
    pub fn url_with_password(&self) -> crate::env::Secret {
        self.db.url_with_password()
    }

    /// The database's URL. On a server given by `HARNESS_DATABASE_URL` its password shows as
    /// `***`, so this URL does not connect there; a throwaway server's carries its password.
    /// Pass [`TestEnv::url_with_password`] to the program under test instead.
    pub fn url(&self) -> String {
        self.db.url()
    }

    /// Driver options for this database, for a pool of your own (declare its size with
    /// [`TestEnvBuilder::app_pool`] so the connection budget counts it):
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
    /// use billing_harness::TestEnv;
    /// use sqlx::postgres::PgPoolOptions;
    ///
    /// let env = TestEnv::builder().app_pool(5).build().await?;
    /// let app_pool = PgPoolOptions::new()
    ///     .max_connections(5)
    ///     .connect_with(env.connect_options())
    ///     .await?;
    /// # drop(app_pool);
    /// # Ok(()) }
    /// ```
    pub fn connect_options(&self) -> sqlx::postgres::PgConnectOptions {
        self.db.connect_options()
    }

    /// The host other programs reach this database's server at over TCP (`127.0.0.1` for a
    /// throwaway server).
    pub fn host(&self) -> String {
        self.db.host()
    }

    /// The server's TCP port.
    pub fn port(&self) -> u16 {
        self.db.port()
    }

    /// A ready-to-paste `psql` command that opens this database.
    pub fn psql_command(&self) -> String {
        self.db.psql_command()
    }

    /// The backend serving this database.
    pub fn backend(&self) -> Backend {
        self.db.backend()
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Some(seed) = self.seed_note()
        {
            eprintln!("billing-harness: the failed test's {seed}");
        }
    }
}

/// The environment, or a panic with the error's message alone, which names the fix: what a test
/// or a fixture does with a failure to get one.
pub(crate) fn expect_env(built: Result<TestEnv, EnvError>) -> TestEnv {
    match built {
        Ok(env) => env,
        Err(e) => panic!(
            "billing-harness: failed to get a test database: {}",
            crate::env::with_causes(&e)
        ),
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
