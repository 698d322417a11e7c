//! billing-harness: test subscription billing, product sync and data deletion against real
//! PostgreSQL, without editing a row by hand.
//!
//! Start with [`#[billing_harness::test]`](macro@test) or [`TestEnv`]: every test gets its own database, cloned in milliseconds from a
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
mod test_macro;
mod world;

pub use billing_platform::{billing, calendar, clock, model, payments, platform, products, purge};
/// The throwaway PostgreSQL under every [`TestEnv`]: the `throwaway-pg` crate.
pub use throwaway_pg as env;

pub use env::EnvError;
pub use schema::platform_schema;
pub use test_env::{Build, TestEnv, TestEnvBuilder};
pub use test_env::{Convergence, SyncError};

/// Makes an `async fn(env: TestEnv)` a test with a database of its own and a test clock, as
/// `#[tokio::test]` would make it a test on a runtime: the one line an adopter writes.
///
/// ```no_run
/// use billing_harness::TestEnv;
///
/// #[billing_harness::test]
/// async fn starts_empty(env: TestEnv) -> Result<(), sqlx::Error> {
///     let n: i64 = sqlx::query_scalar("select count(*) from tenants")
///         .fetch_one(env.pool())
///         .await?;
///     assert_eq!(n, 0);
///     Ok(())
/// }
///
/// #[billing_harness::test(migrations = "bundled", start_at = "2026-10-01T00:00:00Z", seed = 42)]
/// async fn on_the_first_of_october(env: TestEnv) {
///     assert_eq!(env.clock().now().to_rfc3339(), "2026-10-01T00:00:00+00:00");
/// }
/// ```
///
/// Arguments, all optional, each checked at compile time:
/// - `migrations`: the template's migrations. Default: the crate's own `migrations` folder
///   (next to its `Cargo.toml`) when it has one, else [`TestEnvBuilder::migrations`]'s default
///   (`HARNESS_MIGRATIONS`, else the reference platform's schema). `"bundled"`: the reference
///   platform's schema. Any other string: a folder, relative to the crate's.
/// - `start_at`: the clock's start, RFC 3339 (`"2026-10-01T09:00:00+09:00"`); see
///   [`TestEnvBuilder::start_at`].
/// - `seed`: the fake data's seed; see [`TestEnvBuilder::seed`].
/// - `flavor`: the tokio runtime, `"current_thread"` (default) or `"multi_thread"`, and
///   `worker_threads = N` with the latter.
///
/// The function is `async`, takes one argument (`env: TestEnv`, or `env: &TestEnv`) and
/// returns `()` or `Result<(), E>` with `E: Display`. The body **borrows** the environment
/// (the macro passes `&TestEnv`): it lives until the body's result is known, so that a failed
/// test, whether it panicked or returned an `Err`, keeps its database and prints how to open it.
/// Options the macro has none for (a time zone, product mocks over HTTP) take
/// [`TestEnv::builder`] in a plain `#[tokio::test]`.
pub use billing_harness_macros::test;

/// What `#[billing_harness::test]` expands to; not a stable API.
#[doc(hidden)]
pub mod __private {
    pub use crate::test_macro::{Migrations, Options, Outcome, builder, run};
    pub use tokio;
}
