//! billing-harness: test subscription billing, product sync and data deletion against real
//! PostgreSQL, without editing a row by hand.
//!
//! Start with [`TestEnv`]: every test gets its own database, cloned in milliseconds from a
//! template migrated once per run, shared by every test thread and every `cargo nextest` process,
//! with a test clock that runs the platform's jobs as it moves. `use billing_harness::prelude::*`
//! brings what a test usually needs. See `ARCHITECTURE.md` for the map of the crate.
//!
//! The modules, from the bottom up:
//! - [`env`]: throwaway PostgreSQL (a [`env::Database`] per test); knows no domain.
//! - [`model`] and [`calendar`]: plain data of the domain and the platform's calendar; no I/O.
//! - [`billing`]: the billing rules as pure functions, the expected value of any billing code.
//! - [`payments`]: the payment gateway interface and its mock; knows no platform.
//! - [`products`]: the product sync API, its client, and a product mock; knows no platform.
//! - [`platform`]: the executable reference of the platform's operations and jobs.
//! - [`clock`]: the test clock, which runs the jobs the platform registers.
//! - [`builders`]: test data in typed chains; [`scenario`]: QA's TOML scenarios.

pub mod billing;
pub mod builders;
pub mod calendar;
pub mod clock;
pub mod env;
pub mod model;
pub mod payments;
pub mod platform;
pub mod prelude;
pub mod products;
pub mod purge;
pub mod scenario;
mod test_env;

pub use env::EnvError;
pub use test_env::{Convergence, SyncError, TestEnv, TestEnvBuilder};

/// The README's examples, compiled as doctests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
mod readme {}
