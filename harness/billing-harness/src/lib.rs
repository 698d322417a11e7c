//! billing-harness: test subscription billing, product sync and data deletion against real
//! PostgreSQL, without editing a row by hand.
//!
//! Start with [`TestEnv`]: every test gets its own database, cloned in milliseconds from a
//! template migrated once per run, shared by every test thread and every `cargo nextest` process,
//! with a test clock that runs the platform's jobs as it moves. `use billing_harness::prelude::*`
//! brings what a test usually needs. See `ARCHITECTURE.md` for the map of the crate.
//!
//! This crate is the test-facing layer: [`TestEnv`] and its builder, the clock handle, the
//! builders with seeded fake data, and the prelude. It re-exports the crates below it, so one
//! dependency serves a test:
//! - [`env`](mod@env): the throwaway PostgreSQL (`throwaway-pg`); knows no domain.
//! - `model`, `calendar`, `billing`, `payments`, `products`, `clock`, `platform` and `purge`:
//!   the reference platform (`billing-platform`).
//!
//! QA's TOML scenarios are the `billing-scenarios` crate, built on this one.

pub mod builders;
mod dates;
mod fakes;
pub mod prelude;
mod schema;
mod test_env;
mod world;

pub use billing_platform::{billing, calendar, clock, model, payments, platform, products, purge};
/// The throwaway PostgreSQL under every [`TestEnv`]: the `throwaway-pg` crate.
pub use throwaway_pg as env;

pub use env::EnvError;
pub use schema::platform_schema;
pub use test_env::{Build, TestEnv, TestEnvBuilder};
pub use test_env::{Convergence, SyncError};
