//! The executable reference of the billing platform: what the real backend must do, written so
//! that a test can run it and compare.
//!
//! The modules, from the bottom up:
//! - [`model`] and [`calendar`]: plain data of the domain and the platform's calendar (which
//!   jobs fall due when, in the billing time zone). No I/O.
//! - [`billing`]: the billing rules as pure functions, the expected value of any billing code.
//! - [`payments`]: the payment gateway interface, its in-process mock and the mock served over
//!   HTTP; knows no platform.
//! - [`products`]: the product sync API, its client, and product mocks with faults; knows no
//!   platform.
//! - [`clock`]: the test clock, which moves application and database time together and runs the
//!   jobs registered with it.
//! - [`platform`] and [`purge`]: the platform's operations and jobs over PostgreSQL, and the
//!   proven purge of a user's data.
//!
//! The schema these run against is [`MIGRATOR`] (the crate's `migrations/`). A database to run it
//! in comes from `throwaway-pg`; the test-facing wiring (`TestEnv`, builders) is `billing-harness`,
//! which this crate never sees.

pub mod billing;
pub mod calendar;
pub mod clock;
pub(crate) mod http;
pub mod model;
pub mod payments;
pub mod platform;
pub mod products;
pub mod purge;

/// The platform's schema: the migrations in this crate's `migrations/`, which call
/// `harness_now()` (the database clock `throwaway-pg` installs before them).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");
