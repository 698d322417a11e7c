//! Settings of the `env` module, read from `HARNESS_*` environment variables or set in code.

use std::path::PathBuf;
use std::time::Duration;

use super::EnvError;

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
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(Self::Auto),
            "url" => Ok(Self::Url),
            "local" => Ok(Self::Local),
            "container" => Ok(Self::Container),
            _ => Err(EnvError::BadVariable {
                var: "HARNESS_POSTGRES",
                value: value.to_owned(),
                reason: "expected one of auto, url, local, container".into(),
            }),
        }
    }
}

/// Where the template's migrations come from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MigrationSource {
    /// The reference platform schema shipped in `harness/migrations/`.
    Bundled,
    /// A folder of sqlx migrations, e.g. a backend repository's own (`HARNESS_MIGRATIONS`).
    Dir(PathBuf),
}

/// Everything the harness needs to know to provide databases.
///
/// [`Config::from_env`] reads it from the environment; every field documents its variable and
/// default.
#[derive(Debug, Clone)]
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
    /// `HARNESS_PG_BIN`: the folder holding `initdb`, `pg_ctl` and `postgres` for the `local`
    /// backend (default: found on `PATH`, else the newest `/usr/lib/postgresql/*/bin`).
    pub pg_bin: Option<PathBuf>,
    /// `HARNESS_STATE_DIR`: where clusters, locks and logs live (default
    /// `/dev/shm/billing-harness-$UID`, or under `$TMPDIR` where there is no `/dev/shm`). Every
    /// process that shares it shares one server.
    pub state_dir: PathBuf,
    /// `HARNESS_LINGER_SECS`: how long a throwaway server stays up after its last user is done,
    /// so that the next test process reuses it (default 30: long enough to bridge the gaps left
    /// by test binaries and nextest processes that use no database).
    pub linger: Duration,
    /// `HARNESS_POOL_SIZE`: connections per test database (default 4). The connection budget
    /// divides the server's `max_connections` by it.
    pub pool_size: u32,
    /// `HARNESS_MIGRATIONS`: a folder of sqlx migrations to build the template from instead of
    /// the bundled schema.
    pub migrations: MigrationSource,
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
        let migrations = match var("HARNESS_MIGRATIONS") {
            Some(dir) => MigrationSource::Dir(PathBuf::from(dir)),
            None => MigrationSource::Bundled,
        };
        Ok(Self {
            backend,
            database_url: var("HARNESS_DATABASE_URL"),
            image: var("HARNESS_POSTGRES_IMAGE").unwrap_or_else(|| "postgres:16-alpine".into()),
            pg_bin: var("HARNESS_PG_BIN").map(PathBuf::from),
            state_dir: var("HARNESS_STATE_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(default_state_dir),
            linger,
            pool_size,
            migrations,
        })
    }

    /// The same configuration with another state directory: a separate server.
    #[must_use]
    pub fn with_state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = dir.into();
        self
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
        self.migrations = migrations;
        self
    }
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

/// `/dev/shm` when it is there: creating files on a memory file system is what makes a clone
/// fast (measured here: 500 files in 7 ms on tmpfs, 430 ms on the ext4 root).
fn default_state_dir() -> PathBuf {
    let shm = std::path::Path::new("/dev/shm");
    let base = if shm.is_dir() && !std::fs::metadata(shm).is_ok_and(|m| m.permissions().readonly())
    {
        shm.to_owned()
    } else {
        std::env::temp_dir()
    };
    base.join(format!("billing-harness-{}", super::os::current_uid()))
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn numbers_outside_their_range_are_refused() {
        assert_eq!(parse_number("X", " 7 ", 1..=9).unwrap(), 7);
        assert!(parse_number("X", "0", 1..=9).is_err());
        assert!(parse_number("X", "seven", 1..=9).is_err());
    }
}
