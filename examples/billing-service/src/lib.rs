//! A small subscription billing service: customers subscribe to plans, report usage, and are
//! invoiced per calendar month in Asia/Seoul, then charged through a payment provider.
//!
//! It is the example backend of the billing-harness workspace: the kind of axum + sqlx service a
//! team runs, with its own schema (`migrations/`) and its own invoice code ([`billing`]), and
//! tests that use billing-harness the way an adopting repository would (`tests/it/`).
//!
//! - [`billing`]: the invoice of one subscription for one month, as a pure function.
//! - [`calendar`]: which Seoul day an instant is, and calendar months.
//! - [`dunning`]: what a charge attempt does to its invoice and subscription, and which days
//!   past-due invoices are retried, as pure functions.
//! - [`contracts`]: sales contracts, custom terms over a plan of the price list, applied as a
//!   plan change, and the end of their terms.
//! - [`clock`]: where the service reads the time from; injected, never read from the wall
//!   directly.
//! - [`payments`]: the payment provider as the service sees it.
//! - [`service`]: the operations over the database (subscribe, change plan, record usage,
//!   close a month, charge, retry, run the day's jobs), each at the clock's instant.
//! - [`accounts`]: organizations and their users, whom a customer (a tenant) belongs to.
//! - [`sync`]: product sync: the outbox every change queues, its delivery over HTTP with
//!   retries and dead letters, and the reconciler that repairs a product's copy.
//! - [`purge`]: deletes an organization or a user with what only it owns, and tells products.
//! - [`http`]: the JSON API over those operations, as an axum router.
//! - `flaws` (feature `flaws` only): deliberately broken variants of the rules, for
//!   conformance tests.
//! - `conformance` (feature `conformance` only): this service as a billing-harness scenario
//!   driver, so that the harness's scenario files run through its code.

pub mod accounts;
pub mod billing;
pub mod calendar;
mod charging;
pub mod clock;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod contracts;
pub mod dunning;
mod error;
#[cfg(feature = "flaws")]
pub mod flaws;
pub mod http;
mod ids;
mod outbox;
pub mod payments;
pub mod purge;
pub mod service;
pub mod sync;

pub use error::Error;
#[cfg(feature = "flaws")]
pub use flaws::Flaw;
pub use service::BillingService;

/// The service's schema, compiled in: `MIGRATOR.run(&pool)` brings a database up to date.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();
