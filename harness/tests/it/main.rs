//! The harness's one integration-test binary: every test here talks to a real PostgreSQL. Each
//! module is compiled with the Cargo features it needs, so that `cargo test --no-default-features`
//! runs the database tests and each feature adds its own.

mod accounts;
// Its failure-note tests draw fake data through the builders.
mod adopters;
mod architecture;
mod builders;
mod concurrency;
mod conformance;
mod contracts;
mod databases;
mod invariants;
mod keep_cap;
mod ownership;
mod payment_rules;
mod payments;
mod platform;
mod product_mocks;
mod purge;
mod report;
mod rules;
mod scenario_errors;
mod scenarios;
mod schema;
mod security;
mod shared_db;
mod story;
mod support;
mod sync;
mod sync_property;
mod tenant_rules;
mod test_macro;

use billing_harness::TestEnv;
use rstest::fixture;

/// A fresh database per test: the fixture every database test starts from.
#[fixture]
pub(crate) async fn env() -> TestEnv {
    TestEnv::start().await
}
