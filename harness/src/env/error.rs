//! The one error type of the `env` module: what went wrong getting a database, and how to fix it.

use std::sync::Arc;

/// Why the harness could not provide a database.
///
/// Every message is a lowercase fragment that reads after "failed to get a test database:", and
/// the variants that stem from the machine's set-up name the fix. A variant with a cause states
/// only its own part and returns the cause from [`std::error::Error::source`]: print the whole
/// chain (anyhow's `{:#}`, or a walk over `source()`) to show both.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum EnvError {
    /// An environment variable has a value the harness does not understand.
    #[error("{var}={value:?} is not valid: {reason}")]
    BadVariable {
        /// The variable's name, e.g. `HARNESS_POSTGRES`.
        var: &'static str,
        /// The value found.
        value: String,
        /// What is accepted instead.
        reason: String,
    },
    /// No backend can run here; the message lists what to install or set.
    #[error(
        "no PostgreSQL is available to the harness: {details}\n  fix one of: install the PostgreSQL server binaries (Debian: `apt-get install postgresql`), start a Docker engine, or set HARNESS_DATABASE_URL=postgres://USER:PASSWORD@HOST:PORT/postgres"
    )]
    NoBackend {
        /// What was tried and why each backend is not available.
        details: String,
    },
    /// The backend asked for with `HARNESS_POSTGRES` cannot run here.
    #[error("the {backend} backend is not available: {reason}\n  fix: {fix}")]
    Unavailable {
        /// The backend asked for.
        backend: &'static str,
        /// Why it cannot run.
        reason: String,
        /// What to install or set.
        fix: String,
    },
    /// A server process or container did not start.
    #[error("could not start {what}: {reason}")]
    Start {
        /// What was being started.
        what: String,
        /// The cause, with the log tail where there is one.
        reason: String,
    },
    /// Talking to PostgreSQL failed.
    #[error("{action}")]
    Database {
        /// What the harness was doing.
        action: String,
        /// The driver's error.
        #[source]
        source: Arc<sqlx::Error>,
    },
    /// Running the migrations into the template failed.
    #[error("could not migrate the template from {origin}")]
    Migrate {
        /// Where the migrations came from.
        origin: String,
        /// The migrator's error.
        #[source]
        source: Arc<sqlx::migrate::MigrateError>,
    },
    /// A file or process operation in the state directory failed.
    #[error("{action}")]
    Io {
        /// What the harness was doing, with the path.
        action: String,
        /// The operating system's error.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// No connection slot came free in time.
    #[error(
        "no connection slot came free within {seconds} s ({slots} slots of {pool_size} connections each on this server)\n  fix: run fewer test processes at once, lower HARNESS_POOL_SIZE, or raise the server's max_connections"
    )]
    Budget {
        /// How long the harness waited.
        seconds: u64,
        /// How many slots the server's `max_connections` allows.
        slots: u32,
        /// Connections per test database.
        pool_size: u32,
    },
    /// The process-wide database broker has stopped.
    #[error("the harness's database broker has stopped")]
    BrokerGone,
}

impl EnvError {
    pub(crate) fn db(action: impl Into<String>) -> impl FnOnce(sqlx::Error) -> EnvError {
        let action = action.into();
        move |source| EnvError::Database {
            action,
            source: Arc::new(source),
        }
    }

    pub(crate) fn io(action: impl Into<String>) -> impl FnOnce(std::io::Error) -> EnvError {
        let action = action.into();
        move |source| EnvError::Io {
            action,
            source: Arc::new(source),
        }
    }
}

/// `error` and its causes on one line, `a: b: c`, each cause added only if the text so far does
/// not already contain it (drivers' errors repeat their own source in their message).
pub(crate) fn with_causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        let own = e.to_string();
        if !text.contains(&own) {
            text.push_str(": ");
            text.push_str(&own);
        }
        cause = e.source();
    }
    text
}
