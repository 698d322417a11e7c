//! Throwaway PostgreSQL for tests: the only module that starts processes, opens sockets or
//! administers a server. It knows databases only, nothing of the billing domain (the product-mock
//! container it starts serves mocks it knows nothing about).
//!
//! A process gets a server from one backend (`url`, `local` or `container`, see [`Config`]),
//! builds one migrated template per [`Schema`] (keyed by the migrations' content), and hands each
//! test a database of its own ([`Database`]), taken from a warm pool of clones made ahead in the
//! server. Processes that share a state directory share the server; the templates, the warm
//! pools, the reaping of what ended processes left, and the connection budget are coordinated
//! through advisory locks in the server itself ([`Broker`]).

mod admin;
mod broker;
mod budget;
mod config;
mod conninfo;
mod container;
mod database;
mod decide;
mod disk;
mod endpoint;
mod error;
mod instance;
mod lease;
mod local;
mod lock;
mod maintenance;
mod mark;
mod mock_container;
mod note;
mod os;
mod password;
mod pool;
mod private;
mod reaper;
mod secret;
mod server;
mod session;
mod stop;
mod template;
mod wall_clock;

pub use broker::{Broker, Released};
pub use config::{
    BackendChoice, CloneStrategy, Config, Footprint, MigrationSource, ProductsChoice,
};
pub use conninfo::{UrlError, parse_url, redact as redact_url, redact_passwords};
pub use database::{Database, DatabaseBuilder};
pub use error::EnvError;
pub use error::with_causes;
pub use lease::Lease;
pub use mark::{mark, marker};
pub use mock_container::{MockContainer, product_mock_container, reap_dead as reap_product_mocks};
pub use secret::Secret;
pub use server::{
    Backend, BackendStatus, KeptDatabase, SpaceReport, doctor, kept_databases, space_report,
};
pub use session::KeptBy;
pub use template::Schema;
pub use wall_clock::wall_now;

/// A folder for a unit test, `<temporary folder>/bh-<name>-<pid>`, removed first if a run
/// before left it.
#[cfg(test)]
pub(crate) fn scratch_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("bh-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Drops the databases this operating-system user kept for failed tests on the configured server
/// (the one `HARNESS_*` selects): all of them, or only the one named `only`. Those another user
/// kept (its uid is in their mark) stay: [`drop_kept_by`] with [`KeptBy::AnyUser`] drops them
/// too. An idle throwaway server then stops once its linger time has passed. Returns the names
/// dropped. `HARNESS_DROP_KEPT=1` does the same from the command line, as a test run starts.
///
/// ```no_run
/// # async fn f() -> Result<(), throwaway_pg::EnvError> {
/// let dropped = throwaway_pg::drop_kept(None).await?;
/// println!("dropped {dropped:?}");
/// # Ok(()) }
/// ```
///
/// # Errors
/// The configuration is invalid, or the server cannot be reached.
pub async fn drop_kept(only: Option<&str>) -> Result<Vec<String>, EnvError> {
    drop_kept_by(only, KeptBy::ThisUser).await
}

/// [`drop_kept`] for the kept databases of whom `by` says.
///
/// # Errors
/// As [`drop_kept`].
pub async fn drop_kept_by(only: Option<&str>, by: KeptBy) -> Result<Vec<String>, EnvError> {
    Broker::global()?.drop_kept(only, by).await
}

/// Stops the throwaway server under `state_dir` now if no process uses it, forgetting kept
/// databases. Returns which backends' servers were stopped.
///
/// # Errors
/// A lock file could not be opened.
pub fn stop_unused(state_dir: &std::path::Path) -> Result<Vec<&'static str>, EnvError> {
    let mut stopped = Vec::new();
    for backend in ["local", "container"] {
        if instance::stop_if_unused(&state_dir.join(backend))? {
            stopped.push(backend);
        }
    }
    Ok(stopped)
}

/// Every row the current transaction on `conn` wrote or changed, per table of the `public`
/// schema, as JSON objects (read from each row's `xmin`): what a transaction will commit, shown
/// before it does. Tables without such rows are left out.
///
/// # Errors
/// The database failed.
pub async fn rows_written(
    conn: &mut sqlx::PgConnection,
) -> Result<std::collections::BTreeMap<String, Vec<serde_json::Value>>, sqlx::Error> {
    let tables: Vec<String> = sqlx::query_scalar(
        "select tablename::text from pg_tables where schemaname = 'public' order by 1",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut written = std::collections::BTreeMap::new();
    for table in tables {
        let rows: Vec<serde_json::Value> = sqlx::query_scalar(&format!(
            "select to_jsonb(t) from public.\"{table}\" t \
             where t.xmin = pg_current_xact_id()::xid order by 1::text"
        ))
        .fetch_all(&mut *conn)
        .await?;
        if !rows.is_empty() {
            written.insert(table, rows);
        }
    }
    Ok(written)
}
