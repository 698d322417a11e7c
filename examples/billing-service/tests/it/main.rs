//! The billing service's integration tests: one binary, a database per test.
//!
//! Each test gets its own migrated database from billing-harness (`TestEnv` with this crate's
//! `migrations/`), moves time with the harness's test clock, draws customers from its seeded fake
//! data, charges through its mock gateway, and checks the service's invoices against the
//! harness's pure invoice function. With `EXAMPLE_DB=own` the same tests run on the crate's own
//! set-up instead (see `own.rs`), which is what `cargo xtask bench adopt` compares.

mod api;
mod charge;
mod contracts;
mod currency;
mod dunning;
#[cfg(feature = "flaws")]
mod flaws;
mod invoices;
mod own;
mod purge;
mod support;
mod sync;
