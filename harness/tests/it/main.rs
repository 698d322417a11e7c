//! The harness's one integration-test binary: every test here talks to a real PostgreSQL.

mod build;
mod databases;
mod keep_cap;
mod payments;
mod platform;
mod scenario_errors;
mod scenarios;
mod schema;
mod support;

use billing_harness::TestEnv;
use rstest::fixture;

/// A fresh database per test: the fixture every database test starts from.
#[fixture]
pub(crate) async fn env() -> TestEnv {
    TestEnv::start().await
}
