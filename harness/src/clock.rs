//! The test clock: the one place that may read wall time, the instant that platform code and the
//! database (`harness_now()`) both follow, and the schedule of the platform's jobs.
//!
//! Advancing the clock runs every job due on the way, in time order, before anything that
//! happens at the new instant. Jobs fall at 00:00 in the billing time zone: on the 1st the
//! close of the month before; the charge, retries and product sync join the same schedule.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Datelike, DurationRound, TimeDelta, Utc};
use serde::Serialize;
use sqlx::PgPool;

use crate::model::Month;
use crate::payments::{self, Gateway};
use crate::platform::{self, Platform, Settings};

/// A scheduled job of the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "job", content = "month", rename_all = "snake_case")]
pub enum Job {
    /// Finalise the month: runs at 00:00 on the 1st of the next one.
    Close(Month),
    /// Charge every finalised invoice: runs at 00:00 on the charge day (the 5th by default).
    Charge,
    /// Retry every past-due invoice with attempts left: runs at 00:00 every day.
    Retry,
}

impl std::fmt::Display for Job {
    /// For people: `close of 2026-11`, `charge`, `retries`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Job::Close(month) => write!(f, "close of {month}"),
            Job::Charge => f.write_str("charge"),
            Job::Retry => f.write_str("retries"),
        }
    }
}

/// The jobs due at `instant`, in the order they run. Only midnights (billing time zone) have
/// jobs.
pub fn jobs_due(instant: DateTime<Utc>, settings: &Settings) -> Vec<Job> {
    let day = settings.day_of(instant);
    if settings.midnight(day) != instant {
        return Vec::new();
    }
    let mut jobs = Vec::new();
    if day.day() == 1 {
        jobs.push(Job::Close(Month::of(day).prev()));
    }
    if day.day() == settings.charge_day {
        jobs.push(Job::Charge);
    }
    jobs.push(Job::Retry);
    jobs
}

/// A job that ran, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobRun {
    /// When it ran.
    pub at: DateTime<Utc>,
    /// What ran.
    pub job: Job,
    /// What it did: invoices finalised, or charge attempts made.
    pub effects: usize,
}

/// The wall clock, to the second: read when a clock starts without an explicit instant, and by
/// tools that must know the present (seeding a QA database). Nothing else in the workspace may
/// read wall time (clippy's `disallowed-methods`).
pub fn wall_now() -> DateTime<Utc> {
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
    /// The last instant a job did something (finalised, charged): the clock never rewinds past it.
    last_effect: Mutex<Option<DateTime<Utc>>>,
    pool: PgPool,
    gateway: Arc<dyn Gateway>,
}

/// Why the clock could not move.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClockError {
    /// Moving back past an instant at which a job already acted would contradict what it did.
    #[error("cannot move the clock back to {to}: a job already acted at {acted}")]
    Rewind {
        /// Where the clock was asked to go.
        to: DateTime<Utc>,
        /// When a job last acted.
        acted: DateTime<Utc>,
    },
    /// A job or the clock's write failed.
    #[error("database error while moving the clock")]
    Database(#[from] sqlx::Error),
}

impl Clock {
    /// A clock at `start` for the database behind `pool`, written to its `harness_clock`; its
    /// charge and retry jobs go through `gateway`.
    ///
    /// # Errors
    /// The database refused the write (no `harness_clock` table, say).
    pub async fn attach(
        pool: PgPool,
        start: DateTime<Utc>,
        gateway: Arc<dyn Gateway>,
    ) -> Result<Clock, sqlx::Error> {
        write(&pool, start).await?;
        Ok(Clock {
            now: Mutex::new(start),
            last_effect: Mutex::new(None),
            pool,
            gateway,
        })
    }

    /// The clock's instant.
    pub fn now(&self) -> DateTime<Utc> {
        *self.now.lock().expect("clock lock")
    }

    /// Moves the clock to `instant`, forwards or backwards, in memory and in the database,
    /// without running any job (for setting the scene).
    ///
    /// # Errors
    /// The database refused the write.
    pub async fn set(&self, instant: DateTime<Utc>) -> Result<(), sqlx::Error> {
        write(&self.pool, instant).await?;
        *self.now.lock().expect("clock lock") = instant;
        Ok(())
    }

    /// Moves the clock forward by `by`, running the jobs due on the way (see
    /// [`Clock::advance_to`]).
    ///
    /// # Errors
    /// A job or the database failed; the clock stays at the failing job's instant.
    pub async fn advance(&self, by: TimeDelta) -> Result<Vec<JobRun>, sqlx::Error> {
        self.advance_to(self.now() + by).await
    }

    /// Moves the clock to `target`: forwards as [`Clock::advance_to`] does, running the jobs on
    /// the way; backwards only while no job has acted after `target` (to set a scene in the past
    /// before anything happened there).
    ///
    /// # Errors
    /// [`ClockError::Rewind`] when a job acted after `target`, or a database error.
    pub async fn travel_to(
        &self,
        target: impl Into<DateTime<Utc>>,
    ) -> Result<Vec<JobRun>, ClockError> {
        let target = target.into();
        if target >= self.now() {
            return Ok(self.advance_to(target).await?);
        }
        let last_effect = *self.last_effect.lock().expect("clock lock");
        if let Some(acted) = last_effect
            && acted > target
        {
            return Err(ClockError::Rewind { to: target, acted });
        }
        self.set(target).await?;
        Ok(Vec::new())
    }

    /// Moves the clock forward to `target`, stopping at every instant a job is due on the way
    /// (including `target` itself) to run it with the clock set there. A target in the past
    /// leaves the clock where it is.
    ///
    /// # Errors
    /// A job or the database failed; the clock stays at the failing job's instant.
    pub async fn advance_to(
        &self,
        target: impl Into<DateTime<Utc>>,
    ) -> Result<Vec<JobRun>, sqlx::Error> {
        let target = target.into();
        if target <= self.now() {
            return Ok(Vec::new());
        }
        let settings = self.platform().settings().await?;
        let mut runs = Vec::new();
        let mut now = self.now();
        loop {
            let next = settings.midnight(settings.day_of(now).succ_opt().expect("a next day"));
            if next > target {
                break;
            }
            self.set(next).await?;
            for job in jobs_due(next, &settings) {
                let effects = self.run(job, next).await?;
                if effects > 0 {
                    *self.last_effect.lock().expect("clock lock") = Some(next);
                }
                runs.push(JobRun {
                    at: next,
                    job,
                    effects,
                });
            }
            now = next;
        }
        if target > self.now() {
            self.set(target).await?;
        }
        Ok(runs)
    }

    fn platform(&self) -> Platform {
        Platform::new(self.pool.clone())
    }

    async fn run(&self, job: Job, at: DateTime<Utc>) -> Result<usize, sqlx::Error> {
        let gateway = self.gateway.as_ref();
        Ok(match job {
            Job::Close(month) => platform::close_month(&self.pool, month, at).await?.invoices,
            Job::Charge => payments::charge_due(&self.pool, gateway, at).await?.len(),
            Job::Retry => payments::retry_due(&self.pool, gateway, at).await?.len(),
        })
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
