//! The one test of the adopter check: a database of its own from the crate's migrations (found
//! by `#[billing_harness::test]` in `./migrations`), a query, and the clock moved so that SQL
//! follows it.

use billing_harness::TestEnv;
use chrono::{TimeDelta, TimeZone, Utc};

#[billing_harness::test(start_at = "2026-01-31T23:00:00Z")]
async fn orders_are_dated_by_the_test_clock(
    env: TestEnv,
) -> Result<(), Box<dyn std::error::Error>> {
    let start = Utc.with_ymd_and_hms(2026, 1, 31, 23, 0, 0).unwrap();
    assert_eq!(env.clock().now(), start);
    adopter::place(env.pool(), "january").await?;
    env.clock().advance(TimeDelta::hours(2)).await?;
    adopter::place(env.pool(), "february").await?;
    let now: chrono::DateTime<Utc> = sqlx::query_scalar("select harness_now()")
        .fetch_one(env.pool())
        .await?;
    assert_eq!(now, start + TimeDelta::hours(2));
    assert_eq!(env.clock().now(), now);
    let cutoff = Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap();
    assert_eq!(
        adopter::placed_before(env.pool(), cutoff).await?,
        ["january"]
    );
    Ok(())
}
