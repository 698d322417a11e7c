//! `#[billing_harness::test]`: each argument reaches the test's environment, and a test that
//! returns an `Err` fails with its database kept.

use billing_harness::TestEnv;
use chrono::{DateTime, TimeZone, Utc};
use tokio::runtime::{Handle, RuntimeFlavor};

use crate::databases::assert_a_failure_keeps_its_database;
use crate::support::fingerprint;

/// The tables of the test's database, in order.
async fn tables(env: &TestEnv) -> Vec<String> {
    sqlx::query_scalar(
        "select tablename::text from pg_tables where schemaname = 'public' order by 1",
    )
    .fetch_all(env.pool())
    .await
    .unwrap()
}

/// harness-tests has no `migrations` folder of its own, so the default is the builder's: the
/// bundled platform schema (`HARNESS_MIGRATIONS` is not set in this suite). The clock starts at
/// the wall clock, on a thread of its own.
#[billing_harness::test]
async fn without_arguments_the_crate_without_migrations_gets_the_platform_schema(env: TestEnv) {
    assert!(
        !std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .exists()
    );
    assert!(tables(env).await.contains(&"tenants".to_owned()));
    let off = (env.clock().now() - billing_harness::clock::wall_now()).abs();
    assert!(off < chrono::TimeDelta::minutes(5), "{off}");
    assert_eq!(
        Handle::current().runtime_flavor(),
        RuntimeFlavor::CurrentThread
    );
}

#[billing_harness::test(migrations = "bundled")]
async fn bundled_migrations_are_the_platform_schema(env: TestEnv) -> Result<(), sqlx::Error> {
    let platform = tables(env).await;
    assert!(platform.contains(&"tenants".to_owned()), "{platform:?}");
    let tenants: i64 = sqlx::query_scalar("select count(*) from tenants")
        .fetch_one(env.pool())
        .await?;
    assert_eq!(tenants, 0);
    Ok(())
}

/// A folder relative to the crate's: the adopter check's own schema, and nothing of the
/// platform's.
#[billing_harness::test(migrations = "../../.ci/adopter/migrations")]
async fn a_migrations_folder_is_taken_from_the_crate_folder(env: TestEnv) {
    assert_eq!(
        tables(env).await,
        ["_sqlx_migrations", "harness_clock", "orders"]
    );
}

/// `start_at` with an offset: the clock, and SQL through `harness_now()`, start at that
/// instant.
#[billing_harness::test(start_at = "2026-10-01T09:00:00+09:00")]
async fn start_at_sets_the_clock_that_sql_follows(env: &TestEnv) -> Result<(), sqlx::Error> {
    let start = Utc.with_ymd_and_hms(2026, 10, 1, 0, 0, 0).unwrap();
    assert_eq!(env.clock().now(), start);
    let sql: DateTime<Utc> = sqlx::query_scalar("select harness_now()")
        .fetch_one(env.pool())
        .await?;
    assert_eq!(sql, start);
    Ok(())
}

/// The same seed draws the same fake data as a builder given it; another seed does not.
#[billing_harness::test(start_at = "2026-11-24T00:00:00Z", seed = 42)]
async fn seed_gives_the_fake_data_of_the_builders_seed(env: TestEnv) {
    async fn draw(env: &TestEnv) -> String {
        let since = env.last_month().day(5);
        let tenant = env.build().tenant().plan("pro").subscribed_on(since);
        tenant.users(2).create().await.unwrap();
        env.build().org().invitations(2).create().await.unwrap();
        fingerprint(env).await
    }
    async fn seeded(seed: u64) -> TestEnv {
        let start = Utc.with_ymd_and_hms(2026, 11, 24, 0, 0, 0).unwrap();
        let builder = TestEnv::builder().start_at(start).seed(seed);
        builder.build().await.unwrap()
    }
    assert_eq!(env.seed(), 42);
    let ours = draw(env).await;
    assert_eq!(ours, draw(&seeded(42).await).await);
    assert_ne!(ours, draw(&seeded(43).await).await);
}

#[billing_harness::test(flavor = "multi_thread", worker_threads = 3)]
async fn multi_thread_runs_on_that_many_workers(env: TestEnv) {
    let runtime = Handle::current();
    assert_eq!(runtime.runtime_flavor(), RuntimeFlavor::MultiThread);
    assert_eq!(runtime.metrics().num_workers(), 3);
    assert!(env.pool().acquire().await.is_ok());
}

/// A test whose body returns `Err` fails, with the error in the panic's message, and keeps its
/// database as a panicking one does. The test runs as the expansion made it, in a thread, as a
/// failing test would; being nested, it is not a test of this suite.
#[tokio::test]
#[expect(
    unnameable_test_items,
    reason = "the expanded test is called by hand, below, not by the test runner"
)]
async fn a_test_returning_err_fails_and_keeps_its_database() {
    #[billing_harness::test]
    async fn pretend_failure(env: TestEnv) -> Result<(), String> {
        Err(format!(
            "an error's Display, then the database: {}",
            env.database_name()
        ))
    }
    let observer = TestEnv::start().await;
    let message = assert_a_failure_keeps_its_database(&observer, pretend_failure).await;
    assert!(
        message.starts_with("the test returned an error: an error's Display, then the database: "),
        "{message}"
    );
}
