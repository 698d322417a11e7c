//! billing-harness: test subscription billing, product sync and data deletion against real
//! PostgreSQL, without editing a row by hand.
//!
//! Start with [`TestEnv`]: every test gets its own database, cloned in milliseconds from a
//! template migrated once per run, shared by every test thread and every `cargo nextest` process.
//! See `ARCHITECTURE.md` for the map of the crate.

pub mod billing;
pub mod build;
pub mod clock;
pub mod env;
pub mod model;
pub mod payments;
pub mod platform;
pub mod prelude;
pub mod scenario;

pub use env::{EnvError, TestEnv};
