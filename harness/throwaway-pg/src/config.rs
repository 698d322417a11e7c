//! Settings of the `env` module, read from `HARNESS_*` environment variables or set in code.

use std::path::{Path, PathBuf};
use std::sync::Once;
use std::time::Duration;

use super::EnvError;
use super::disk::{self, human_bytes};
use super::os;

/// Which PostgreSQL server the harness uses (`HARNESS_POSTGRES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendChoice {
    /// `url` if `HARNESS_DATABASE_URL` is set, else `container` if Docker answers, else `local`
    /// if PostgreSQL server binaries are found.
    Auto,
    /// An existing server at `HARNESS_DATABASE_URL`.
    Url,
    /// A throwaway cluster from the machine's `initdb` and `postgres`.
    Local,
    /// A throwaway container started with testcontainers.
    Container,
}

impl std::fmt::Display for BackendChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Url => "url",
            Self::Local => "local",
            Self::Container => "container",
        })
    }
}

impl BackendChoice {
    fn parse(value: &str) -> Result<Self, EnvError> {
        parse_choice(
            "HARNESS_POSTGRES",
            value,
            &[
                ("", Self::Auto),
                ("auto", Self::Auto),
                ("url", Self::Url),
                ("local", Self::Local),
                ("container", Self::Container),
            ],
            "expected one of auto, url, local, container",
        )
    }
}

/// How a clone is copied from its template (PostgreSQL 15+; older servers have one way only).
/// The harness picks by the server's `fsync` unless `HARNESS_CLONE_STRATEGY` names one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloneStrategy {
    /// `STRATEGY FILE_COPY`: copies the files after a checkpoint. The fastest with fsync off
    /// (the throwaway servers), where a checkpoint is cheap; the harness's choice there.
    FileCopy,
    /// `STRATEGY WAL_LOG` (PostgreSQL's own default): copies block by block through the WAL,
    /// forcing no checkpoint. The harness's choice on a server with fsync on.
    WalLog,
}

impl CloneStrategy {
    /// The `CREATE DATABASE` clause of `strategy` (none for `None`: a server older than 15).
    pub(crate) fn clause(strategy: Option<CloneStrategy>) -> &'static str {
        match strategy {
            None => "",
            Some(CloneStrategy::FileCopy) => " strategy file_copy",
            Some(CloneStrategy::WalLog) => " strategy wal_log",
        }
    }
}

/// Where product mocks run (`HARNESS_PRODUCTS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProductsChoice {
    /// Each test's mocks are served by the test process on 127.0.0.1.
    #[default]
    InProcess,
    /// Every test of a process has its mocks served by one container from
    /// `HARNESS_PRODUCT_MOCK_IMAGE`, each test in its own namespace.
    Container,
}

impl std::fmt::Display for ProductsChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::InProcess => "in-process",
            Self::Container => "container",
        })
    }
}

impl ProductsChoice {
    fn parse(value: &str) -> Result<Self, EnvError> {
        parse_choice(
            "HARNESS_PRODUCTS",
            value,
            &[
                ("", Self::InProcess),
                ("in-process", Self::InProcess),
                ("container", Self::Container),
            ],
            "expected in-process or container",
        )
    }
}

/// Where the template's migrations come from. The template is named after their content, not
/// their source: the same migrations from a folder, from `HARNESS_MIGRATIONS` or compiled in
/// with `sqlx::migrate!` share one template.
#[derive(Debug, Clone)]
pub enum MigrationSource {
    /// Migrations compiled into a library that depends on this crate, under a name for
    /// messages (a reference schema, say), and whether they call `harness_now()` (then they
    /// cannot go without the database clock).
    Named {
        /// What messages call them: `the bundled platform schema`.
        name: &'static str,
        /// The migrations.
        migrator: &'static sqlx::migrate::Migrator,
        /// Whether they need the database clock installed before them.
        needs_db_clock: bool,
    },
    /// A folder of sqlx migrations, e.g. a backend repository's own (`HARNESS_MIGRATIONS`).
    /// [`MigrationSource::dir`] resolves a relative path first.
    Dir(PathBuf),
    /// Migrations compiled into the test binary: `static M: Migrator = sqlx::migrate!();`.
    Embedded(&'static sqlx::migrate::Migrator),
}

impl MigrationSource {
    /// What messages call these migrations: a name, `the embedded migrations`, or the folder.
    pub fn origin(&self) -> String {
        match self {
            MigrationSource::Named { name, .. } => (*name).to_owned(),
            MigrationSource::Embedded(_) => "the embedded migrations".into(),
            MigrationSource::Dir(dir) => dir.display().to_string(),
        }
    }

    /// A folder of migrations. A relative path is taken relative to the folder of the crate
    /// whose tests run (`CARGO_MANIFEST_DIR`, which cargo and cargo-nextest set for a test
    /// binary), else to the working directory; an absolute path stays as it is.
    pub fn dir(path: impl Into<PathBuf>) -> MigrationSource {
        let manifest = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from);
        MigrationSource::Dir(resolve(path.into(), manifest.as_deref()))
    }
}

/// `path` made absolute against `base` (the crate's folder), else the working directory.
fn resolve(path: PathBuf, base: Option<&Path>) -> PathBuf {
    if path.is_absolute() {
        return path;
    }
    match base {
        Some(base) => base.join(path),
        None => std::env::current_dir().map_or(path.clone(), |cwd| cwd.join(&path)),
    }
}

impl PartialEq for MigrationSource {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Named { migrator: a, .. }, Self::Named { migrator: b, .. }) => {
                std::ptr::eq(*a, *b)
            }
            (Self::Dir(a), Self::Dir(b)) => a == b,
            (Self::Embedded(a), Self::Embedded(b)) => std::ptr::eq(*a, *b),
            _ => false,
        }
    }
}

impl Eq for MigrationSource {}

impl std::hash::Hash for MigrationSource {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        std::mem::discriminant(self).hash(state);
        match self {
            Self::Named { migrator, .. } => std::ptr::hash(*migrator, state),
            Self::Dir(dir) => dir.hash(state),
            Self::Embedded(migrator) => std::ptr::hash(*migrator, state),
        }
    }
}

/// Everything the harness needs to know to provide databases.
///
/// [`Config::from_env`] reads it from the environment; every field documents its variable and
/// default.
#[derive(Clone)]
#[non_exhaustive]
pub struct Config {
    /// `HARNESS_POSTGRES`: `auto` (default), `url`, `local` or `container`.
    pub backend: BackendChoice,
    /// `HARNESS_DATABASE_URL`: the server for the `url` backend. The harness connects to the
    /// database it names (usually `postgres`) for administration and creates only databases
    /// whose names start with `bh_`.
    pub database_url: Option<String>,
    /// `HARNESS_POSTGRES_IMAGE`: the image of the `container` backend (default
    /// `postgres:16-alpine`).
    pub image: String,
    /// `HARNESS_PRODUCTS`: where product mocks run, `in-process` (default) or `container`.
    pub products: ProductsChoice,
    /// `HARNESS_PRODUCT_MOCK_IMAGE`: the image of product mocks in containers, as `cargo xtask
    /// images` names it (no default: the name carries the content's hash).
    pub product_mock_image: Option<String>,
    /// `HARNESS_PG_BIN`: the folder holding `initdb`, `pg_ctl` and `postgres` for the `local`
    /// backend (default: found on `PATH`, else the newest `/usr/lib/postgresql/*/bin`).
    pub pg_bin: Option<PathBuf>,
    /// `HARNESS_STATE_DIR`: where clusters, locks and logs live, used as given. By default
    /// `/dev/shm/billing-harness-$UID` when `/dev/shm` has room for the local server's
    /// [`Footprint`], else `$TMPDIR/billing-harness-$UID` (`/tmp` without `TMPDIR`), with one line
    /// on standard error saying why. Every process that shares it shares one server.
    pub state_dir: PathBuf,
    /// `HARNESS_LINGER_SECS`: how long a throwaway server stays up after its last user is done,
    /// so that the next test process reuses it (default 30: long enough to bridge the gaps left
    /// by test binaries and nextest processes that use no database).
    pub linger: Duration,
    /// `HARNESS_POOL_SIZE`: connections per test database (default 4). Each test database takes
    /// this many connections of the server's budget (`max_connections`), plus those the test
    /// declares for its own pool (`app_pool`).
    pub pool_size: u32,
    /// `HARNESS_MIGRATIONS`: a folder of sqlx migrations to build the template from instead of
    /// the caller's default ([`crate::DatabaseBuilder::default_migrations`]); a relative path is
    /// resolved as [`MigrationSource::dir`] says.
    pub migrations: Option<MigrationSource>,
    /// `HARNESS_KEEP_FAILED`: how many databases of failed tests a server keeps at once (default
    /// 3, 0 keeps none). A failed test past the cap has its database dropped, and its note says
    /// so; [`super::drop_kept`] makes room again.
    pub keep_failed: u32,
    /// `HARNESS_WARM_POOL`: how many databases of each template wait in the server, cloned ahead,
    /// for the next test to take (default: the machine's threads, 2 to 8; 0 clones each test's
    /// database when it asks).
    pub warm_pool: u32,
    /// `HARNESS_DROP_KEPT=1`: each test process drops the databases kept for failed tests when it
    /// first connects, and keeps none of its own (a clean run; default off).
    pub drop_kept: bool,
    /// `HARNESS_CLONE_STRATEGY`: how templates are cloned on PostgreSQL 15+, `file_copy`,
    /// `wal_log`, or `auto` (default, `None`): `FILE_COPY` on a server with fsync off (the
    /// throwaway ones), `WAL_LOG` on one with fsync on, whose checkpoints wait for the disk.
    pub clone_strategy: Option<CloneStrategy>,
    /// How the state directory was chosen, for `cargo xtask doctor`.
    state_dir_choice: String,
}

/// What the `local` backend's throwaway server needs in its state directory, measured with
/// `du` on the platform schema (see docs/ci.md): the cluster, one template, the
/// clones the test threads use at once, and the databases kept for failed tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footprint {
    /// Clones alive at once: two per test thread (`available_parallelism`), since a test may hold
    /// an observer database too.
    pub live_clones: u32,
    /// Databases kept for failed tests (`HARNESS_KEEP_FAILED`).
    pub kept: u32,
    /// Databases of the warm pool (`HARNESS_WARM_POOL`).
    pub warm: u32,
}

impl Footprint {
    /// The cluster without any harness database: three stock databases of 7.3 MB, the WAL in
    /// 1 MB segments between `min_wal_size` and `max_wal_size` (2 and 8 MB), and the dynamic
    /// shared memory files: 25 MB after a start, 32 MB at most (plus what a checkpoint that is
    /// late lets the WAL grow beyond `max_wal_size`).
    pub const CLUSTER_BYTES: u64 = 36 << 20;
    /// One template of the platform schema, or one clone of it: 8.8 MB.
    pub const DATABASE_BYTES: u64 = 9 << 20;

    /// The footprint of a run on this machine with `keep_failed` kept databases and a warm pool
    /// of `warm`.
    pub fn for_this_machine(keep_failed: u32, warm: u32) -> Footprint {
        Footprint {
            live_clones: 2 * threads(),
            kept: keep_failed,
            warm,
        }
    }

    /// The total in bytes.
    pub fn bytes(&self) -> u64 {
        Self::CLUSTER_BYTES
            + Self::DATABASE_BYTES * u64::from(1 + self.live_clones + self.kept + self.warm)
    }
}

/// The threads tests run on here (`available_parallelism`), at least 1.
fn threads() -> u32 {
    std::thread::available_parallelism().map_or(2, |n| n.get() as u32)
}

/// The warm pool's default size: a database ahead for each test thread, from 2 to 8.
fn default_warm_pool() -> u32 {
    threads().clamp(2, 8)
}

impl std::fmt::Display for Footprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (cluster {}, a template and {} databases of {} each: {} live clones, {} kept, {} warm)",
            human_bytes(self.bytes()),
            human_bytes(Self::CLUSTER_BYTES),
            1 + self.live_clones + self.kept + self.warm,
            human_bytes(Self::DATABASE_BYTES),
            self.live_clones,
            self.kept,
            self.warm,
        )
    }
}

/// Written by hand so that the password of `HARNESS_DATABASE_URL` never reaches a log.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let database_url = self.database_url.as_deref().map(crate::conninfo::redact);
        f.debug_struct("Config")
            .field("backend", &self.backend)
            .field("database_url", &database_url)
            .field("image", &self.image)
            .field("products", &self.products)
            .field("product_mock_image", &self.product_mock_image)
            .field("pg_bin", &self.pg_bin)
            .field("state_dir", &self.state_dir)
            .field("linger", &self.linger)
            .field("pool_size", &self.pool_size)
            .field("migrations", &self.migrations)
            .field("keep_failed", &self.keep_failed)
            .field("warm_pool", &self.warm_pool)
            .field("drop_kept", &self.drop_kept)
            .field("clone_strategy", &self.clone_strategy)
            .field("state_dir_choice", &self.state_dir_choice)
            .finish()
    }
}

impl Config {
    /// Reads the configuration from `HARNESS_*` environment variables.
    ///
    /// # Errors
    /// [`EnvError::BadVariable`] when a variable has a value that cannot be used.
    pub fn from_env() -> Result<Self, EnvError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let backend = BackendChoice::parse(&var("HARNESS_POSTGRES").unwrap_or_default())?;
        let linger = match var("HARNESS_LINGER_SECS") {
            Some(v) => Duration::from_secs(parse_number("HARNESS_LINGER_SECS", &v, 0..=3600)?),
            None => Duration::from_secs(30),
        };
        let pool_size = match var("HARNESS_POOL_SIZE") {
            Some(v) => parse_number("HARNESS_POOL_SIZE", &v, 1..=64)? as u32,
            None => 4,
        };
        let migrations = var("HARNESS_MIGRATIONS").map(MigrationSource::dir);
        let drop_kept = match var("HARNESS_DROP_KEPT") {
            Some(v) => parse_number("HARNESS_DROP_KEPT", &v, 0..=1)? == 1,
            None => false,
        };
        let keep_failed = match var("HARNESS_KEEP_FAILED") {
            _ if drop_kept => 0,
            Some(v) => parse_number("HARNESS_KEEP_FAILED", &v, 0..=1000)? as u32,
            None => 3,
        };
        let warm_pool = match var("HARNESS_WARM_POOL") {
            Some(v) => parse_number("HARNESS_WARM_POOL", &v, 0..=64)? as u32,
            None => default_warm_pool(),
        };
        let (state_dir, state_dir_choice) = match var("HARNESS_STATE_DIR") {
            Some(dir) => (PathBuf::from(dir), "set by HARNESS_STATE_DIR".to_owned()),
            None => {
                let choice = default_state_dir(Footprint::for_this_machine(keep_failed, warm_pool));
                if let Some(line) = &choice.announce {
                    static ONCE: Once = Once::new();
                    ONCE.call_once(|| eprintln!("billing-harness: {line}"));
                }
                (choice.dir, choice.reason)
            }
        };
        Ok(Self {
            backend,
            database_url: var("HARNESS_DATABASE_URL"),
            image: var("HARNESS_POSTGRES_IMAGE").unwrap_or_else(|| "postgres:16-alpine".into()),
            products: ProductsChoice::parse(&var("HARNESS_PRODUCTS").unwrap_or_default())?,
            product_mock_image: var("HARNESS_PRODUCT_MOCK_IMAGE"),
            pg_bin: var("HARNESS_PG_BIN").map(PathBuf::from),
            state_dir,
            linger,
            pool_size,
            migrations,
            keep_failed,
            warm_pool,
            drop_kept,
            clone_strategy: parse_clone_strategy(
                &var("HARNESS_CLONE_STRATEGY").unwrap_or_default(),
            )?,
            state_dir_choice,
        })
    }

    /// The same configuration with another state directory: a separate server.
    #[must_use]
    pub fn with_state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = dir.into();
        self.state_dir_choice = "set in code".into();
        self
    }

    /// How the state directory was chosen: set by `HARNESS_STATE_DIR`, or why `/dev/shm` or the
    /// temporary folder.
    pub fn state_dir_choice(&self) -> &str {
        &self.state_dir_choice
    }

    /// The folder where state directories go when `HARNESS_STATE_DIR` is not set: `/dev/shm`
    /// when it has room for a local server's [`Footprint`], else the temporary folder. Tools and
    /// tests that start servers of their own put their state directories there too.
    pub fn default_state_base() -> PathBuf {
        let dir = default_state_dir(Footprint::for_this_machine(3, default_warm_pool())).dir;
        dir.parent().map_or_else(std::env::temp_dir, Path::to_owned)
    }

    /// What the local server needs in the state directory on this machine.
    pub fn footprint(&self) -> Footprint {
        Footprint::for_this_machine(self.keep_failed, self.warm_pool)
    }

    /// The same configuration with another backend.
    #[must_use]
    pub fn with_backend(mut self, backend: BackendChoice) -> Self {
        self.backend = backend;
        self
    }

    /// The same configuration with another migration source.
    #[must_use]
    pub fn with_migrations(mut self, migrations: MigrationSource) -> Self {
        self.migrations = Some(migrations);
        self
    }
}

/// `HARNESS_CLONE_STRATEGY`'s value: `None` for `auto` (or empty).
fn parse_clone_strategy(value: &str) -> Result<Option<CloneStrategy>, EnvError> {
    parse_choice(
        "HARNESS_CLONE_STRATEGY",
        value,
        &[
            ("", None),
            ("auto", None),
            ("file_copy", Some(CloneStrategy::FileCopy)),
            ("file-copy", Some(CloneStrategy::FileCopy)),
            ("wal_log", Some(CloneStrategy::WalLog)),
            ("wal-log", Some(CloneStrategy::WalLog)),
        ],
        "expected one of auto, file_copy, wal_log",
    )
}

/// The value of the variable `var` among `choices`, named with any case and surrounding space,
/// or an error that says what was `expected`.
fn parse_choice<T: Copy>(
    var: &'static str,
    value: &str,
    choices: &[(&str, T)],
    expected: &str,
) -> Result<T, EnvError> {
    let named = value.trim().to_ascii_lowercase();
    choices
        .iter()
        .find(|(name, _)| *name == named)
        .map(|&(_, choice)| choice)
        .ok_or_else(|| EnvError::BadVariable {
            var,
            value: value.to_owned(),
            reason: expected.into(),
        })
}

fn parse_number(
    var: &'static str,
    value: &str,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, EnvError> {
    value
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| EnvError::BadVariable {
            var,
            value: value.to_owned(),
            reason: format!(
                "expected a whole number from {} to {}",
                range.start(),
                range.end()
            ),
        })
}

/// Where the state directory goes when `HARNESS_STATE_DIR` is not set, and why.
struct StateDirChoice {
    dir: PathBuf,
    reason: String,
    /// A line for standard error when the choice is not the fast one.
    announce: Option<String>,
}

/// `/dev/shm` when it has room for `footprint`: creating files on a memory file system is what
/// makes a clone fast (measured here: 500 files in 7 ms on tmpfs, 430 ms on the ext4 root).
/// Otherwise the temporary folder, since a container's 64 MB `/dev/shm` fills up half-way through
/// a suite. A folder whose server runs already is kept, so every process of a run agrees.
fn default_state_dir(footprint: Footprint) -> StateDirChoice {
    let name = format!("billing-harness-{}", os::current_uid());
    let shm = Path::new("/dev/shm");
    let tmp = std::env::temp_dir().join(&name);
    let running = |dir: &Path| {
        ["local", "container"]
            .iter()
            .any(|backend| dir.join(backend).join("instance.json").exists())
    };
    let writable =
        shm.is_dir() && std::fs::metadata(shm).is_ok_and(|m| !m.permissions().readonly());
    if !writable {
        return StateDirChoice {
            dir: tmp,
            reason: "the temporary folder: there is no writable /dev/shm".into(),
            announce: None,
        };
    }
    let in_shm = shm.join(&name);
    if running(&in_shm) {
        return StateDirChoice {
            dir: in_shm,
            reason: "/dev/shm: a server runs there already".into(),
            announce: None,
        };
    }
    if running(&tmp) {
        return StateDirChoice {
            dir: tmp,
            reason: "the temporary folder: a server runs there already".into(),
            announce: None,
        };
    }
    let needed = footprint.bytes();
    match disk::space(shm) {
        Some(space) if space.free < needed => {
            let why = format!(
                "/dev/shm has {} free of {}, less than the {} a local server needs",
                human_bytes(space.free),
                human_bytes(space.size),
                human_bytes(needed)
            );
            StateDirChoice {
                announce: Some(format!(
                    "{why}: its state goes to {} instead (HARNESS_STATE_DIR chooses another folder)",
                    tmp.display()
                )),
                dir: tmp,
                reason: format!("the temporary folder: {why}"),
            }
        }
        Some(space) => StateDirChoice {
            dir: in_shm,
            reason: format!(
                "/dev/shm: it has {} free, room for the {} a local server needs",
                human_bytes(space.free),
                human_bytes(needed)
            ),
            announce: None,
        },
        None => StateDirChoice {
            dir: in_shm,
            reason: "/dev/shm (`df` could not tell its free space)".into(),
            announce: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_password_of_the_database_url() {
        let config = Config {
            backend: BackendChoice::Url,
            database_url: Some("postgres://qa:s3cret-pw@db.internal:5432/postgres".into()),
            image: "postgres:16-alpine".into(),
            products: ProductsChoice::InProcess,
            product_mock_image: None,
            pg_bin: None,
            state_dir: PathBuf::from("/tmp/x"),
            linger: Duration::from_secs(30),
            pool_size: 4,
            migrations: None,
            keep_failed: 3,
            warm_pool: 2,
            drop_kept: false,
            clone_strategy: None,
            state_dir_choice: "set in code".into(),
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cret-pw"), "{shown}");
        assert!(
            shown.contains("postgres://qa:***@db.internal:5432/postgres"),
            "{shown}"
        );
        let alternate = format!("{config:#?}");
        assert!(!alternate.contains("s3cret-pw"), "{alternate}");
    }

    #[test]
    fn backend_names_parse_and_bad_ones_name_the_choices() {
        assert_eq!(BackendChoice::parse("").unwrap(), BackendChoice::Auto);
        assert_eq!(BackendChoice::parse("Local").unwrap(), BackendChoice::Local);
        let err = BackendChoice::parse("docker").unwrap_err().to_string();
        assert_eq!(
            err,
            "HARNESS_POSTGRES=\"docker\" is not valid: expected one of auto, url, local, container"
        );
    }

    #[test]
    fn clone_strategies_parse_and_bad_ones_name_the_choices() {
        for (value, wanted) in [
            ("", None),
            ("auto", None),
            (" AUTO ", None),
            ("file_copy", Some(CloneStrategy::FileCopy)),
            ("FILE-COPY", Some(CloneStrategy::FileCopy)),
            ("wal_log", Some(CloneStrategy::WalLog)),
        ] {
            assert_eq!(parse_clone_strategy(value).unwrap(), wanted, "{value}");
        }
        assert_eq!(
            parse_clone_strategy("copy").unwrap_err().to_string(),
            "HARNESS_CLONE_STRATEGY=\"copy\" is not valid: expected one of auto, file_copy, wal_log"
        );
    }

    #[test]
    fn products_choices_parse_and_bad_ones_name_the_choices() {
        assert_eq!(
            ProductsChoice::parse("").unwrap(),
            ProductsChoice::InProcess
        );
        assert_eq!(
            ProductsChoice::parse("Container").unwrap(),
            ProductsChoice::Container
        );
        assert_eq!(
            ProductsChoice::parse("docker").unwrap_err().to_string(),
            "HARNESS_PRODUCTS=\"docker\" is not valid: expected in-process or container"
        );
    }

    #[test]
    fn the_footprint_counts_the_cluster_a_template_live_clones_and_kept_databases() {
        let footprint = Footprint {
            live_clones: 4,
            kept: 3,
            warm: 2,
        };
        assert_eq!(
            footprint.bytes(),
            Footprint::CLUSTER_BYTES + 10 * Footprint::DATABASE_BYTES
        );
        assert!(
            footprint
                .to_string()
                .contains("4 live clones, 3 kept, 2 warm")
        );
    }

    #[test]
    fn relative_migration_folders_resolve_against_the_crate_and_absolute_ones_stay() {
        let krate = Path::new("/work/backend");
        assert_eq!(
            resolve("migrations".into(), Some(krate)),
            Path::new("/work/backend/migrations")
        );
        assert_eq!(
            resolve("/srv/migrations".into(), Some(krate)),
            Path::new("/srv/migrations")
        );
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(resolve("m".into(), None), cwd.join("m"));
    }

    #[test]
    fn numbers_outside_their_range_are_refused() {
        assert_eq!(parse_number("X", " 7 ", 1..=9).unwrap(), 7);
        assert!(parse_number("X", "0", 1..=9).is_err());
        assert!(parse_number("X", "seven", 1..=9).is_err());
    }
}
