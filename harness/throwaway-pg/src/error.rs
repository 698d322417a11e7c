//! The one error type of the `env` module: what went wrong getting a database, and how to fix it.
//!
//! A server that runs out of room for its files says so in words: [`EnvError::OutOfSpace`] names
//! the state folder, its size and free space, and `HARNESS_STATE_DIR`, whichever step it hit.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::disk::{self, human_bytes};

/// Why the harness could not provide a database.
///
/// Every message is a lowercase fragment that reads after "failed to get a test database:", and
/// the variants that stem from the machine's set-up name the fix. `{:?}` prints the same words
/// as `{}`, so that a test's `.unwrap()` shows the message, not a dump of the driver's error.
#[derive(Clone, thiserror::Error)]
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
    /// Talking to PostgreSQL failed: what the harness was doing, then the server's own message.
    #[error("could not {action}: {}", describe(cause))]
    Database {
        /// What the harness was doing, e.g. `clone the template into bh_..`.
        action: String,
        /// The driver's error (its message is part of this error's; it is not a `source()`).
        cause: Arc<sqlx::Error>,
    },
    /// Running the migrations into the template failed.
    #[error(
        "could not migrate the template from {origin}: {}",
        describe_migrate(source)
    )]
    Migrate {
        /// Where the migrations came from.
        origin: String,
        /// The migrator's error.
        #[source]
        source: Arc<sqlx::migrate::MigrateError>,
    },
    /// A file or process operation in the state directory failed.
    #[error("could not {action}: {cause}")]
    Io {
        /// What the harness was doing, with the path.
        action: String,
        /// The operating system's error (its message is part of this error's).
        cause: Arc<std::io::Error>,
    },
    /// The server could not write a file for lack of space: a full disk or tmpfs (SQLSTATE 53100
    /// `disk_full`, "No space left on device", "could not extend file", a failed checkpoint).
    #[error("could not {action}: the server ran out of space ({message})\n  {}", room(folder.as_deref(), *size, *free, *needed))]
    OutOfSpace {
        /// What the harness was doing.
        action: String,
        /// What the server or the program said.
        message: String,
        /// The state folder of the throwaway server that ran out of space; `None` for a server
        /// given by URL or a container, whose disk the harness does not choose.
        folder: Option<PathBuf>,
        /// The size of the folder's file system, in bytes, when known.
        size: Option<u64>,
        /// The bytes free there when the error was seen, when known.
        free: Option<u64>,
        /// What the harness needs there (the [`super::Footprint`]), in bytes.
        needed: u64,
    },
    /// The connection budget had no room for a test's connections in time.
    #[error(
        "no room for {wanted} more connections within {seconds} s: the server gives tests {budget} connections in all, and other test databases hold the rest\n  fix: run fewer test processes at once, lower HARNESS_POOL_SIZE or app_pool, or raise the server's max_connections"
    )]
    Budget {
        /// How long the harness waited (0: more than the whole budget was asked for).
        seconds: u64,
        /// Connections asked for: the test database's pools, plus the process's own connections
        /// with its first database.
        wanted: u32,
        /// Connections the server gives tests (`max_connections` less the reserved ones and a
        /// spare).
        budget: u32,
    },
    /// The folder of migrations to build a template from is missing.
    #[error(
        "the migrations folder {} {problem}\n  note: a relative path is taken from the crate's folder (CARGO_MANIFEST_DIR) when cargo runs the tests, else from the working directory",
        path.display()
    )]
    NoMigrations {
        /// The folder, resolved.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// A state folder that is not private to this user (another user's, or one others may write
    /// in): the harness reads nothing in it and runs nothing from it.
    #[error(
        "the state folder {} is not private to this user: {problem}; it belongs to {owner}, mode {mode:o}\n  fix: {fix}",
        folder.display()
    )]
    NotPrivate {
        /// The folder refused.
        folder: PathBuf,
        /// Who owns it: `name (uid N)`.
        owner: String,
        /// Its permission bits.
        mode: u32,
        /// What is wrong with it.
        problem: String,
        /// How to make way for a private one.
        fix: String,
    },
    /// Options that cannot go together.
    #[error("{0}")]
    Conflict(String),
    /// An existing database given by URL has no harness marker: the harness did not create it
    /// and nobody marked it for tests, so it writes nothing there.
    #[error(
        "refusing to write: the database {database} has no harness marker, so the harness did not create it and nobody marked it for tests\n  fix: cargo xtask db mark --env qa --database-url '{url}'"
    )]
    NotMarked {
        /// The database's name.
        database: String,
        /// Its URL, the password hidden.
        url: String,
    },
    /// The process-wide database broker has stopped.
    #[error("the harness's database broker has stopped")]
    BrokerGone,
}

impl std::fmt::Debug for EnvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl EnvError {
    /// A database error while doing `action` (a phrase that reads after "could not"); out of
    /// space, it becomes [`EnvError::OutOfSpace`].
    pub fn db(action: impl Into<String>) -> impl FnOnce(sqlx::Error) -> EnvError {
        let action = action.into();
        move |cause| match out_of_space(&cause).or_else(|| crashed_for_space(&cause)) {
            Some(message) => EnvError::out_of_space(action, message),
            None => EnvError::Database {
                action,
                cause: Arc::new(cause),
            },
        }
    }

    /// A migration error from `origin`; out of space, it becomes [`EnvError::OutOfSpace`].
    pub(crate) fn migrate(
        origin: impl Into<String>,
    ) -> impl FnOnce(sqlx::migrate::MigrateError) -> EnvError {
        let origin = origin.into();
        move |cause| {
            use sqlx::migrate::MigrateError;
            let space = match &cause {
                MigrateError::Execute(e) | MigrateError::ExecuteMigration(e, _) => out_of_space(e),
                _ => None,
            };
            match space {
                Some(message) => {
                    EnvError::out_of_space(format!("migrate the template from {origin}"), message)
                }
                None => EnvError::Migrate {
                    origin,
                    source: Arc::new(cause),
                },
            }
        }
    }

    /// A file or process error while doing `action`; out of space, it becomes
    /// [`EnvError::OutOfSpace`].
    pub fn io(action: impl Into<String>) -> impl FnOnce(std::io::Error) -> EnvError {
        let action = action.into();
        move |cause| {
            if cause.kind() == std::io::ErrorKind::StorageFull {
                EnvError::out_of_space(action, cause.to_string())
            } else {
                EnvError::Io {
                    action,
                    cause: Arc::new(cause),
                }
            }
        }
    }

    /// [`EnvError::OutOfSpace`] for the state folder of this process's throwaway server, with
    /// its size and free space measured now.
    pub(crate) fn out_of_space(action: impl Into<String>, message: impl Into<String>) -> EnvError {
        let place = SPACE_PLACE.lock().map(|p| p.clone()).unwrap_or_default();
        let space = place.folder.as_deref().and_then(disk::space);
        EnvError::OutOfSpace {
            action: action.into(),
            message: message.into(),
            folder: place.folder,
            size: space.map(|s| s.size),
            free: space.map(|s| s.free),
            needed: place.needed,
        }
    }

    /// Whether this error is about a lack of space.
    pub fn is_out_of_space(&self) -> bool {
        matches!(self, EnvError::OutOfSpace { .. })
    }
}

/// Where this process's throwaway server keeps its files, for out-of-space messages.
#[derive(Debug, Clone, Default)]
struct Place {
    folder: Option<PathBuf>,
    needed: u64,
}

static SPACE_PLACE: Mutex<Place> = Mutex::new(Place {
    folder: None,
    needed: 0,
});

/// Records the state folder of the local server this process uses (and what the harness needs
/// there), so that an out-of-space error anywhere can name it.
pub(crate) fn set_space_folder(folder: &Path, needed: u64) {
    if let Ok(mut place) = SPACE_PLACE.lock() {
        *place = Place {
            folder: Some(folder.to_owned()),
            needed,
        };
    }
}

/// The state folder recorded by [`set_space_folder`], if any.
pub(crate) fn space_folder() -> Option<PathBuf> {
    SPACE_PLACE.lock().ok().and_then(|p| p.folder.clone())
}

/// Words that servers and programs use when a write fails for lack of space.
const SPACE_WORDS: [&str; 4] = [
    "No space left on device",
    "could not extend file",
    "checkpoint request failed",
    "Disk quota exceeded",
];

/// Whether `text` (a message or a log) says a write failed for lack of space.
pub(crate) fn mentions_no_space(text: &str) -> bool {
    SPACE_WORDS.iter().any(|w| text.contains(w))
}

/// The server's message when `e` says a write failed for lack of space: SQLSTATE 53100
/// (`disk_full`), or the words above in its message or detail.
fn out_of_space(e: &sqlx::Error) -> Option<String> {
    let db = e.as_database_error()?;
    let pg = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>();
    let detail = pg.and_then(|p| p.detail()).unwrap_or("");
    let full = db.code().as_deref() == Some("53100")
        || mentions_no_space(db.message())
        || mentions_no_space(detail);
    full.then(|| describe(e))
}

/// When `e` is a lost connection or a server in recovery and the throwaway server's log says a
/// write failed for lack of space: what happened, with that log line. A server that cannot write
/// its WAL stops every session and restarts, so the first error a test sees is often this one.
fn crashed_for_space(e: &sqlx::Error) -> Option<String> {
    let lost = match e {
        sqlx::Error::Io(_) | sqlx::Error::Protocol(_) | sqlx::Error::PoolTimedOut => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|c| c.starts_with("57P")),
        _ => false,
    };
    if !lost {
        return None;
    }
    let log = space_folder()?
        .join("local")
        .join("cluster")
        .join("server.log");
    let tail = log_tail(&log, 16 * 1024)?;
    let line = tail.lines().rev().find(|l| mentions_no_space(l))?;
    Some(format!(
        "{}; the server log says: {}",
        describe(e),
        line.trim()
    ))
}

/// The last `bytes` of a file, if it can be read.
fn log_tail(path: &Path, bytes: u64) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(bytes))).ok()?;
    let mut buf = Vec::new();
    file.read_to_end(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf).into_owned())
}

/// An sqlx error in words: the server's message (with its detail) for a database error, the
/// driver's own words otherwise.
fn describe(e: &sqlx::Error) -> String {
    match e.as_database_error() {
        Some(db) => {
            let pg = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>();
            match pg.and_then(|p| p.detail()) {
                Some(detail) => format!("{} ({detail})", db.message()),
                None => db.message().to_owned(),
            }
        }
        None => e.to_string(),
    }
}

fn describe_migrate(e: &sqlx::migrate::MigrateError) -> String {
    use sqlx::migrate::MigrateError;
    match e {
        MigrateError::Execute(e) => describe(e),
        MigrateError::ExecuteMigration(e, version) => {
            format!("migration {version} failed: {}", describe(e))
        }
        other => other.to_string(),
    }
}

/// The second line of an out-of-space message: which folder, how full, and how to move it.
fn room(folder: Option<&Path>, size: Option<u64>, free: Option<u64>, needed: u64) -> String {
    let Some(folder) = folder else {
        return "fix: free space on the server's disk (the harness does not choose where a server given by URL or a container keeps its files)".into();
    };
    let fullness = match (free, size) {
        (Some(free), Some(size)) => {
            format!("has {} free of {}", human_bytes(free), human_bytes(size))
        }
        _ => "has too little room".into(),
    };
    format!(
        "the state folder {} {fullness}; the harness needs about {} there\n  fix: set HARNESS_STATE_DIR to a folder with more room (or free space in this one: {})",
        folder.display(),
        human_bytes(needed),
        super::note::drop_kept_hint(),
    )
}

/// `error` and its causes on one line, `a: b: c`, each cause added only if the text so far does
/// not already contain it (drivers' errors repeat their own source in their message).
pub fn with_causes(error: &(dyn std::error::Error + 'static)) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_space_names_the_folder_its_free_space_and_the_variable() {
        let e = EnvError::OutOfSpace {
            action: "clone the template into bh_x".into(),
            message: "could not write to file \"base/1/2\": No space left on device".into(),
            folder: Some("/tmp/small".into()),
            size: Some(48 << 20),
            free: Some(0),
            needed: 150 << 20,
        };
        let text = format!("{e:?}");
        assert_eq!(text, e.to_string(), "Debug reads like Display");
        assert!(text.starts_with("could not clone the template into bh_x: the server ran out of space (could not write"), "{text}");
        assert!(
            text.contains("the state folder /tmp/small has 0 kB free of 48 MB"),
            "{text}"
        );
        assert!(text.contains("HARNESS_STATE_DIR"), "{text}");
    }

    #[test]
    fn the_space_words_are_recognised() {
        assert!(mentions_no_space(
            "could not extend file \"base/16384/2619\": No space left on device"
        ));
        assert!(mentions_no_space("checkpoint request failed"));
        assert!(!mentions_no_space(
            "duplicate key value violates unique constraint"
        ));
    }
}
