//! The test clock: the one place that may read wall time, and the instant that platform code and
//! the database (`harness_now()`) both follow.
//!
//! The clock keeps and moves time. It knows no job itself: whoever wires it (the platform, in a
//! `billing-harness`'s `TestEnv`) gives it [`Jobs`], a schedule that says what falls
//! due and a runner for each job. Advancing the clock stops at every instant a job is due on the
//! way, in time order, and runs it there before anything that happens at the new instant. A clock
//! given no jobs (always so without the `domain` feature) moves application and database time only.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use sqlx::PgPool;

/// A job the clock can run: the platform's, as its calendar names them.
pub use crate::calendar::Job;

/// The instants at which jobs fall due, in time order, each with its jobs in the order they run.
pub type Schedule = Vec<(DateTime<Utc>, Vec<Job>)>;

/// Work off the schedule that is due: when, and the job that does it.
pub type Due = (DateTime<Utc>, Job);

/// A boxed future, as [`Jobs`] returns them.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a job that failed returns.
pub type JobError = Box<dyn std::error::Error + Send + Sync>;

/// The work the clock runs as it moves: registered by whoever wires the clock (the platform).
pub trait Jobs: Send + Sync + fmt::Debug {
    /// The scheduled jobs due in `(after, until]` (see [`Schedule`]); empty when nothing is
    /// scheduled (no catalog installed yet, say). Read once per move of the clock.
    fn due_between(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Schedule, JobError>>;

    /// Runs `job` with the clock at `at`; returns how many things it did (invoices finalised,
    /// attempts made).
    fn run(&self, job: Job, at: DateTime<Utc>) -> BoxFuture<'_, Result<usize, JobError>>;

    /// Work off the schedule (a product sync row's turn): the first instant from `after` to
    /// `until` at which some is due (work already due counts as due at `after`), and the job that
    /// does it. Such work never stops the clock from moving back before it. Default: none.
    fn next_due(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Option<Due>, JobError>> {
        let _ = (after, until);
        Box::pin(async { Ok(None) })
    }
}

/// A job that ran, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobRun {
    /// When it ran.
    pub at: DateTime<Utc>,
    /// What ran.
    pub job: Job,
    /// What it did: invoices finalised, charge attempts made, deliveries tried.
    pub effects: usize,
}

pub use throwaway_pg::wall_now;

/// A test clock, usually bound to one database: moving it moves `harness_now()` there too. A
/// clock [`Clock::without_database`] moves the application's time only.
#[derive(Debug)]
pub struct Clock {
    now: Mutex<DateTime<Utc>>,
    /// The last instant a scheduled job did something (finalised, charged): the clock never
    /// rewinds past it.
    last_effect: Mutex<Option<DateTime<Utc>>>,
    /// The database whose `harness_clock` follows the clock, if any.
    pool: Option<PgPool>,
    /// A shared database's clock ([`Clock::attach_shared`]): `harness_clock` only ever moves
    /// forward; a move behind it is the application's time only.
    forward_only: bool,
    jobs: Option<Arc<dyn Jobs>>,
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
    /// A job failed; the clock stays at the instant it ran.
    #[error("the {job} job at {at} failed")]
    Job {
        /// The job.
        job: Job,
        /// When it ran.
        at: DateTime<Utc>,
        /// Why it failed.
        #[source]
        source: JobError,
    },
    /// The registered jobs could not say what is due (the calendar could not be read).
    #[error("could not read the calendar")]
    Calendar(#[source] JobError),
    /// Writing the clock to the database failed.
    #[error("could not write the clock to the database")]
    Database(#[from] sqlx::Error),
}

/// Reads a mutex whose data cannot be left half-written (plain copies), even after a panic.
fn read<T: Copy>(m: &Mutex<T>) -> T {
    *m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn write_cell<T>(m: &Mutex<T>, value: T) {
    *m.lock().unwrap_or_else(PoisonError::into_inner) = value;
}

impl Clock {
    /// A clock at `start` for the database behind `pool`, written to its `harness_clock`. It runs
    /// no job until given some with [`Clock::with_jobs`].
    ///
    /// # Errors
    /// The database refused the write (no `harness_clock` table, say).
    pub async fn attach(pool: PgPool, start: DateTime<Utc>) -> Result<Clock, sqlx::Error> {
        write(Some(&pool), start, false).await?;
        Ok(Clock {
            pool: Some(pool),
            ..Clock::without_database(start)
        })
    }

    /// A clock at `start` for a database others share (a QA database): its `harness_clock` is
    /// never moved back. A `start` ahead of it (or a database with no clock yet) moves it there,
    /// under the [`ClockLock`] for the write; a `start` behind it leaves it alone, and the clock
    /// then moves the application's time only until it passes the database's. Every later
    /// write moves `harness_clock` forward only.
    ///
    /// # Errors
    /// The database refused the write (no `harness_clock` table, say).
    pub async fn attach_shared(pool: PgPool, start: DateTime<Utc>) -> Result<Clock, sqlx::Error> {
        let mut tx = pool.begin().await?;
        if database_now(&mut tx).await?.is_none_or(|now| now < start) {
            sqlx::query("select pg_advisory_xact_lock($1, 0)")
                .bind(ClockLock::CLASS)
                .execute(&mut *tx)
                .await?;
            write_on(&mut tx, start, true).await?;
        }
        tx.commit().await?;
        Ok(Clock {
            pool: Some(pool),
            forward_only: true,
            ..Clock::without_database(start)
        })
    }

    /// A clock at `start` that no database follows: for a schema without `harness_clock`, whose
    /// SQL reads the server's own time. It moves the application's time, and runs jobs, only.
    pub fn without_database(start: DateTime<Utc>) -> Clock {
        Clock {
            now: Mutex::new(start),
            last_effect: Mutex::new(None),
            pool: None,
            forward_only: false,
            jobs: None,
        }
    }

    /// The clock with `jobs` to run as it moves.
    #[must_use]
    pub fn with_jobs(mut self, jobs: Arc<dyn Jobs>) -> Clock {
        self.jobs = Some(jobs);
        self
    }

    /// The clock's instant.
    pub fn now(&self) -> DateTime<Utc> {
        read(&self.now)
    }

    /// Moves the clock to `instant`, forwards or backwards, in memory and in the database,
    /// without running any job (for setting the scene).
    ///
    /// # Errors
    /// The database refused the write.
    pub async fn set(&self, instant: DateTime<Utc>) -> Result<(), sqlx::Error> {
        write(self.pool.as_ref(), instant, self.forward_only).await?;
        write_cell(&self.now, instant);
        Ok(())
    }

    /// Moves the clock forward by `by`, running the jobs due on the way (see
    /// [`Clock::advance_to`]).
    ///
    /// # Errors
    /// A job or the database failed; the clock stays at the failing job's instant.
    pub async fn advance(&self, by: TimeDelta) -> Result<Vec<JobRun>, ClockError> {
        self.advance_to(self.now() + by).await
    }

    /// Moves the clock to `target`: forwards as [`Clock::advance_to`] does, running the jobs on
    /// the way; backwards only while no job has acted after `target` (to set a scene in the past
    /// before anything happened there).
    ///
    /// # Errors
    /// [`ClockError::Rewind`] when a job acted after `target`, or a job or database error.
    pub async fn travel_to(
        &self,
        target: impl Into<DateTime<Utc>>,
    ) -> Result<Vec<JobRun>, ClockError> {
        let target = target.into();
        if target >= self.now() {
            return self.advance_to(target).await;
        }
        if let Some(acted) = read(&self.last_effect)
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
    ) -> Result<Vec<JobRun>, ClockError> {
        let target = target.into();
        if target <= self.now() {
            return Ok(Vec::new());
        }
        let mut runs = Vec::new();
        if let Some(jobs) = &self.jobs {
            let stops = jobs
                .due_between(self.now(), target)
                .await
                .map_err(ClockError::Calendar)?;
            let mut stops = stops.into_iter().peekable();
            // The instant of off-schedule work that did nothing (another worker holds the rows):
            // not run again there, so that the clock never spins.
            let mut idle_at = None;
            loop {
                // Work off the schedule that falls before the next scheduled stop runs first, at
                // its own instant.
                let horizon = stops.peek().map_or(target, |(at, _)| *at);
                let pending = jobs
                    .next_due(self.now(), horizon)
                    .await
                    .map_err(ClockError::Calendar)?;
                if let Some((at, job)) = pending
                    && idle_at != Some(at)
                    && stops.peek().is_none_or(|(stop, _)| at < *stop)
                {
                    if self
                        .run_job(jobs.as_ref(), job, at, false, &mut runs)
                        .await?
                        == 0
                    {
                        idle_at = Some(at);
                    }
                    continue;
                }
                let Some((at, due)) = stops.next() else { break };
                for job in due {
                    self.run_job(jobs.as_ref(), job, at, true, &mut runs)
                        .await?;
                }
            }
        }
        if target > self.now() {
            self.set(target).await?;
        }
        Ok(runs)
    }

    /// Runs the work that is due at the clock's instant and off the schedule (product sync),
    /// without moving; returns what ran.
    ///
    /// # Errors
    /// A job or the database failed.
    pub async fn settle(&self) -> Result<Vec<JobRun>, ClockError> {
        let mut runs = Vec::new();
        if let Some(jobs) = &self.jobs {
            let now = self.now();
            while let Some((_, job)) = jobs
                .next_due(now, now)
                .await
                .map_err(ClockError::Calendar)?
            {
                if self
                    .run_job(jobs.as_ref(), job, now, false, &mut runs)
                    .await?
                    == 0
                {
                    break;
                }
            }
        }
        Ok(runs)
    }

    /// Runs `job` at `at`; a `scheduled` one that did something pins the clock there (see
    /// [`Clock::travel_to`]), while off-schedule work (a delivery to a product) leaves scenes set
    /// in the past possible.
    async fn run_job(
        &self,
        jobs: &dyn Jobs,
        job: Job,
        at: DateTime<Utc>,
        scheduled: bool,
        runs: &mut Vec<JobRun>,
    ) -> Result<usize, ClockError> {
        if at > self.now() {
            self.set(at).await?;
        }
        let effects =
            jobs.run(job, at)
                .await
                .map_err(|source| ClockError::Job { job, at, source })?;
        if effects > 0 && scheduled {
            write_cell(&self.last_effect, Some(at));
        }
        runs.push(JobRun { at, job, effects });
        Ok(effects)
    }
}

async fn write(
    pool: Option<&PgPool>,
    instant: DateTime<Utc>,
    forward_only: bool,
) -> Result<(), sqlx::Error> {
    let Some(pool) = pool else {
        return Ok(());
    };
    let mut conn = pool.acquire().await?;
    write_on(&mut conn, instant, forward_only).await
}

/// Writes `instant` to `harness_clock`; `forward_only`, only when it is later than the row's.
async fn write_on(
    conn: &mut sqlx::PgConnection,
    instant: DateTime<Utc>,
    forward_only: bool,
) -> Result<(), sqlx::Error> {
    let only_forward = if forward_only {
        " where harness_clock.now < excluded.now"
    } else {
        ""
    };
    sqlx::query(&format!(
        "insert into harness_clock (id, now) values (true, $1) \
         on conflict (id) do update set now = excluded.now{only_forward}"
    ))
    .bind(instant)
    .execute(conn)
    .await
    .map(drop)
}

/// Moves a database's `harness_clock` to `instant` on `conn` (the caller's transaction, say) if
/// it is behind it or unset; never back. Call it holding the [`ClockLock`].
///
/// # Errors
/// The database failed.
pub async fn move_forward(
    conn: &mut sqlx::PgConnection,
    instant: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    write_on(conn, instant, true).await
}

/// The instant of a database's `harness_clock`, `None` when it has no row yet.
///
/// # Errors
/// The database failed (no `harness_clock` table, say).
pub async fn database_now(
    conn: &mut sqlx::PgConnection,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar("select now from harness_clock")
        .fetch_optional(conn)
        .await
}

/// The lock that serializes the movers of one database's clock: `clock advance`, `scenario
/// seed`, and [`Clock::attach_shared`] when it moves `harness_clock`. A session-level advisory
/// lock on a connection of its own, held until [`ClockLock::release`] or the guard is dropped
/// (the connection closes, and the server lets the lock go; a killed process's too).
///
/// Holding it, do not attach a clock with a start ahead of the database's: that write waits for
/// this very lock.
#[derive(Debug)]
pub struct ClockLock {
    conn: Option<sqlx::PgConnection>,
}

impl ClockLock {
    /// The advisory lock's class (`pg_advisory_lock(CLASS, 0)`) in the database.
    pub const CLASS: i32 = 0x6268_0101;

    /// Takes the lock on the database behind `pool`, calling `waiting` once if another mover
    /// holds it and this has to wait.
    ///
    /// # Errors
    /// The database failed.
    pub async fn acquire(pool: &PgPool, waiting: impl FnOnce()) -> Result<ClockLock, sqlx::Error> {
        let mut conn = pool.acquire().await?.detach();
        let free: bool = sqlx::query_scalar("select pg_try_advisory_lock($1, 0)")
            .bind(Self::CLASS)
            .fetch_one(&mut conn)
            .await?;
        if !free {
            waiting();
            sqlx::query("select pg_advisory_lock($1, 0)")
                .bind(Self::CLASS)
                .execute(&mut conn)
                .await?;
        }
        Ok(ClockLock { conn: Some(conn) })
    }

    /// The connection that holds the lock: for reads and writes made under it.
    pub fn connection(&mut self) -> &mut sqlx::PgConnection {
        self.conn
            .as_mut()
            .expect("the connection is only taken by release")
    }

    /// Lets the lock go and closes its connection.
    ///
    /// # Errors
    /// The database failed; the lock goes with the connection all the same.
    pub async fn release(mut self) -> Result<(), sqlx::Error> {
        let Some(mut conn) = self.conn.take() else {
            return Ok(());
        };
        sqlx::query("select pg_advisory_unlock($1, 0)")
            .bind(Self::CLASS)
            .execute(&mut conn)
            .await?;
        sqlx::Connection::close(conn).await
    }
}
