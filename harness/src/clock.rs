//! The test clock: the one place that may read wall time, and the instant that platform code and
//! the database (`harness_now()`) both follow.

use std::sync::Mutex;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use sqlx::PgPool;

/// The wall clock, read once when a clock starts without an explicit instant. Nothing else in
/// the workspace may read wall time (clippy's `disallowed-methods`).
pub(crate) fn wall_now() -> DateTime<Utc> {
    #[expect(
        clippy::disallowed_methods,
        reason = "the clock is the one reader of wall time"
    )]
    let now = Utc::now();
    now.duration_trunc(TimeDelta::seconds(1)).unwrap_or(now)
}

/// A test clock bound to one database: moving it moves `harness_now()` there too.
#[derive(Debug)]
pub struct Clock {
    now: Mutex<DateTime<Utc>>,
    pool: PgPool,
}

impl Clock {
    /// A clock at `start` for the database behind `pool`, written to its `harness_clock`.
    ///
    /// # Errors
    /// The database refused the write (no `harness_clock` table, say).
    pub async fn attach(pool: PgPool, start: DateTime<Utc>) -> Result<Clock, sqlx::Error> {
        write(&pool, start).await?;
        Ok(Clock {
            now: Mutex::new(start),
            pool,
        })
    }

    /// The clock's instant.
    pub fn now(&self) -> DateTime<Utc> {
        *self.now.lock().expect("clock lock")
    }

    /// Moves the clock to `instant`, forwards or backwards, in memory and in the database.
    ///
    /// # Errors
    /// The database refused the write.
    pub async fn set(&self, instant: DateTime<Utc>) -> Result<(), sqlx::Error> {
        write(&self.pool, instant).await?;
        *self.now.lock().expect("clock lock") = instant;
        Ok(())
    }
}

async fn write(pool: &PgPool, instant: DateTime<Utc>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into harness_clock (id, now) values (true, $1) \
         on conflict (id) do update set now = excluded.now",
    )
    .bind(instant)
    .execute(pool)
    .await
    .map(drop)
}
