//! The harness's one integration-test binary: every test here talks to a real PostgreSQL. Each
//! module is compiled with the Cargo features it needs, so that `cargo test --no-default-features`
//! runs the database tests and each feature adds its own.

#[cfg(feature = "builders")]
mod accounts;
// Its failure-note tests draw fake data through the builders.
#[cfg(feature = "builders")]
mod adopters;
mod architecture;
#[cfg(feature = "builders")]
mod builders;
#[cfg(all(feature = "builders", feature = "products"))]
mod concurrency;
#[cfg(feature = "scenarios")]
mod conformance;
#[cfg(all(feature = "builders", feature = "products"))]
mod contracts;
mod databases;
#[cfg(feature = "builders")]
mod invariants;
mod keep_cap;
#[cfg(feature = "builders")]
mod payment_rules;
#[cfg(feature = "builders")]
mod payments;
#[cfg(feature = "builders")]
mod platform;
#[cfg(all(feature = "builders", feature = "products"))]
mod product_mocks;
#[cfg(all(feature = "builders", feature = "products"))]
mod purge;
#[cfg(feature = "scenarios")]
mod report;
#[cfg(feature = "builders")]
mod rules;
#[cfg(feature = "scenarios")]
mod scenario_errors;
#[cfg(feature = "scenarios")]
mod scenarios;
mod schema;
#[cfg(feature = "scenarios")]
mod story;
#[cfg(feature = "builders")]
mod support;
#[cfg(all(feature = "builders", feature = "products"))]
mod sync;
#[cfg(all(feature = "builders", feature = "products"))]
mod sync_property;
#[cfg(feature = "builders")]
mod tenant_rules;

use billing_harness::TestEnv;
use rstest::fixture;

/// A fresh database per test: the fixture every database test starts from.
#[fixture]
pub(crate) async fn env() -> TestEnv {
    TestEnv::start().await
}
