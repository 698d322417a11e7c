//! billing-harness: test subscription billing, product sync and data deletion against real
//! PostgreSQL, without editing a row by hand.
//!
//! Start with [`TestEnv`]: every test gets its own database, cloned in milliseconds from a
//! template migrated once per run, shared by every test thread and every `cargo nextest` process,
//! with a test clock that runs the platform's jobs as it moves. `use billing_harness::prelude::*`
//! brings what a test usually needs. See `ARCHITECTURE.md` for the map of the crate.
//!
//! The modules, from the bottom up, with the Cargo feature that brings each (all are on by
//! default; `default-features = false` keeps `env`, `clock` and `TestEnv`):
//! - [`env`](mod@env): throwaway PostgreSQL (a [`env::Database`] per test); knows no domain.
//! - `model` and `calendar` (`domain`): plain data of the domain and the platform's calendar.
//! - `billing` (`domain`): the billing rules as pure functions, the expected value of any
//!   billing code.
//! - `payments` (`domain`; its HTTP server with `gateway-http`): the payment gateway interface
//!   and its mock; knows no platform.
//! - `products` (`products`; the payload shapes in `products::api` with `domain`): the product
//!   sync API, its client, and a product mock; knows no platform.
//! - `platform` and `purge` (`domain`): the executable reference of the platform's operations
//!   and jobs, and the proven purge.
//! - [`clock`]: the test clock, which runs the jobs the platform registers (none without
//!   `domain`: then it moves application and database time only).
//! - `builders` (`builders`): test data in typed chains; `scenario` (`scenarios`): QA's TOML
//!   scenarios.

#[cfg(feature = "domain")]
pub mod billing;
#[cfg(feature = "builders")]
pub mod builders;
#[cfg(feature = "domain")]
pub mod calendar;
pub mod clock;
pub mod env;
#[cfg(feature = "domain")]
pub mod model;
#[cfg(feature = "domain")]
pub mod payments;
#[cfg(feature = "domain")]
pub mod platform;
pub mod prelude;
#[cfg(feature = "domain")]
pub mod products;
#[cfg(feature = "domain")]
pub mod purge;
#[cfg(feature = "scenarios")]
pub mod scenario;
mod test_env;

pub use env::EnvError;
#[cfg(feature = "products")]
pub use test_env::{Convergence, SyncError};
pub use test_env::{TestEnv, TestEnvBuilder};

/// The README's examples, compiled as doctests so that they stay true (all but the first need
/// every feature: the default set).
#[cfg(all(doctest, feature = "full"))]
#[doc = include_str!("../README.md")]
mod readme {}
