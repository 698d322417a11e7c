//! Throwaway PostgreSQL for tests: the only module that starts processes, opens sockets or
//! administers a server.
//!
//! A process gets a server from one backend (`url`, `local` or `container`, see [`Config`]),
//! builds one migrated template per set of migrations, and hands each test a clone of it
//! ([`TestEnv`]). Processes that share a state directory share the server; the template, the
//! reaping of what crashed runs left, and the connection budget are coordinated through advisory
//! locks in the server itself.

mod broker;
mod config;
mod container;
mod endpoint;
mod error;
pub(crate) mod http;
mod instance;
mod local;
mod mark;
mod os;
mod server;
mod template;
mod test_env;

pub use config::{BackendChoice, Config, Footprint, MigrationSource};
pub(crate) use endpoint::redact as endpoint_redact;
pub use error::EnvError;
pub use mark::{mark, marker};
pub use server::{
    Backend, BackendStatus, KeptDatabase, SpaceReport, doctor, kept_databases, space_report,
};
pub use test_env::{TestEnv, TestEnvBuilder};

/// Lower-level pieces for the workspace's own tools (`cargo xtask`): a broker of one's own, clone
/// strategies and raw leases. Not a stable API.
pub mod internals {
    pub use super::broker::{Broker, CloneStrategy, Lease, Released};

    /// Stops the throwaway server under `state_dir` now if no process uses it, forgetting kept
    /// databases. Returns which backends' servers were stopped.
    ///
    /// # Errors
    /// A lock file could not be opened.
    pub fn stop_unused(state_dir: &std::path::Path) -> Result<Vec<&'static str>, super::EnvError> {
        let mut stopped = Vec::new();
        for backend in ["local", "container"] {
            if super::instance::stop_if_unused(&state_dir.join(backend))? {
                stopped.push(backend);
            }
        }
        Ok(stopped)
    }
}
