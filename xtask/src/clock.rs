//! `clock show` and `clock advance`: a marked QA database's test clock, moved forward with every
//! job that falls due on the way (close, charge, retries, sync) run in order, a line per job.

use std::process::ExitCode;

use billing_harness::TestEnv;
use billing_harness::calendar::Job;
use billing_harness::clock::{self, ClockLock};
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use serde_json::json;

use crate::format::Output;

/// `cargo xtask clock ...`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Print the database's clock (`harness_clock`) and its local day.
    Show {
        /// The database, as postgres://USER:PASSWORD@HOST:PORT/DATABASE;
        /// default: HARNESS_DATABASE_URL, then DATABASE_URL.
        #[arg(long, value_name = "URL", value_parser = crate::db::database_url, env = "HARNESS_DATABASE_URL", hide_env_values = true)]
        database_url: String,
        #[command(flatten)]
        output: Output,
    },
    /// Move the database's clock forward, running every job due on the way; never backwards.
    /// Seeds and advances on one database take turns: this waits while another moves it.
    Advance {
        /// The day to move to (00:00 of it, in the platform's time zone), as YYYY-MM-DD, within
        /// 20 years of today.
        #[arg(
            long,
            value_name = "DATE",
            value_parser = day,
            conflicts_with = "by",
            required_unless_present = "by"
        )]
        to: Option<NaiveDate>,
        /// How far to move: a number of days (`3d`) or hours (`12h`), at most 20 years.
        #[arg(long, value_name = "DURATION", value_parser = duration)]
        by: Option<TimeDelta>,
        /// The database, as postgres://USER:PASSWORD@HOST:PORT/DATABASE (marked with `db mark`);
        /// default: HARNESS_DATABASE_URL, then DATABASE_URL.
        #[arg(long, value_name = "URL", value_parser = crate::db::database_url, env = "HARNESS_DATABASE_URL", hide_env_values = true)]
        database_url: String,
        #[command(flatten)]
        output: Output,
    },
}

/// Runs one `clock` command.
pub(crate) fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Show {
            database_url,
            output,
        } => show(&database_url, output),
        Command::Advance {
            to,
            by,
            database_url,
            output,
        } => advance(to, by, &database_url, output),
    }
}

fn show(url: &str, output: Output) -> anyhow::Result<ExitCode> {
    let runtime = crate::runtime()?;
    runtime.block_on(async {
        let db = billing_harness::env::Database::builder()
            .attach(url)
            .await?;
        let now = crate::db::harness_now(db.pool()).await?;
        let platform = billing_harness::platform::Platform::new(db.pool().clone());
        let calendar = platform.settings().await.ok().map(|s| s.calendar);
        let shown = json!({
            "clock": now.to_rfc3339(),
            "local_day": calendar.as_ref().map(|c| c.local_day(now).to_string()),
            "time_zone": calendar.as_ref().map(|c| c.time_zone().to_string()),
        });
        output.emit(&shown, |_| match &calendar {
            Some(c) => format!(
                "clock: {} ({} in {})\n",
                now.to_rfc3339(),
                c.local_day(now),
                c.time_zone()
            ),
            None => format!("clock: {} (no catalog installed)\n", now.to_rfc3339()),
        })?;
        Ok(ExitCode::SUCCESS)
    })
}

/// The longest move: 20 years of days, for `--by`, for `--to` from today, and for the move
/// itself. Bounded so that no date arithmetic after it can overflow.
pub(crate) const MAX_DAYS: i64 = 20 * 366;

/// `3d` or `12h` (a whole number, then the unit), at most [`MAX_DAYS`] either way, as `--by`
/// takes it. Any other text is an error that says what is wrong with it (a unit that is neither
/// `d` nor `h`, named, a number out of range), never a panic.
pub(crate) fn duration(text: &str) -> Result<TimeDelta, String> {
    const EXPECTED: &str = "expected a whole number of days or hours, like 3d or 12h";
    let too_long = || format!("at most {MAX_DAYS} days (20 years) either way");
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '-' || c == '+'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let span: fn(i64) -> Option<TimeDelta> = match unit {
        "d" => TimeDelta::try_days,
        "h" => TimeDelta::try_hours,
        "" if number.is_empty() => return Err(format!("empty: {EXPECTED}")),
        "" => return Err(format!("no unit after {number}: {EXPECTED}")),
        unit => return Err(format!("unknown unit {unit:?}: {EXPECTED}")),
    };
    let n: i64 = number
        .parse()
        .map_err(|e: std::num::ParseIntError| match e.kind() {
            std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => too_long(),
            std::num::IntErrorKind::Empty => format!("no number before {unit:?}: {EXPECTED}"),
            _ => format!("{number:?} is not a whole number: {EXPECTED}"),
        })?;
    match span(n) {
        Some(span) if span.abs() <= TimeDelta::days(MAX_DAYS) => Ok(span),
        _ => Err(too_long()),
    }
}

/// Today by the wall clock in the platform's default time zone: what `--to` is bounded from.
pub(crate) fn today() -> NaiveDate {
    billing_harness::calendar::local_day(
        billing_harness::calendar::DEFAULT_TIME_ZONE,
        billing_harness::clock::wall_now(),
    )
}

/// A day as YYYY-MM-DD within [`MAX_DAYS`] of today, as `--to` takes it.
pub(crate) fn day(text: &str) -> Result<NaiveDate, String> {
    day_from(text, today())
}

/// [`day`] seen from `today`.
pub(crate) fn day_from(text: &str, today: NaiveDate) -> Result<NaiveDate, String> {
    let day = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|e| format!("expected a day as YYYY-MM-DD: {e}"))?;
    if (day - today).num_days().abs() > MAX_DAYS {
        return Err(format!(
            "at most {MAX_DAYS} days (20 years) from today ({today})"
        ));
    }
    Ok(day)
}

/// The instant `--to DAY` or `--by SPAN` moves a clock that reads `now` to, in `time_zone`;
/// an error, never a panic, when it is out of the dates the clock can hold or more than
/// [`MAX_DAYS`] ahead. Moving backwards is the caller's to refuse (it says where the clock is).
pub(crate) fn target(
    now: DateTime<Utc>,
    time_zone: chrono_tz::Tz,
    to: Option<NaiveDate>,
    by: Option<TimeDelta>,
) -> anyhow::Result<DateTime<Utc>> {
    let target = match (to, by) {
        (Some(day), _) => billing_harness::calendar::start_of_day(time_zone, day),
        (None, Some(by)) => now.checked_add_signed(by).ok_or_else(|| {
            anyhow::anyhow!("the clock ({now}) moved by {by} is past the dates it can hold")
        })?,
        (None, None) => anyhow::bail!("say where to: --to DATE or --by DURATION"),
    };
    if target.signed_duration_since(now) > TimeDelta::days(MAX_DAYS) {
        anyhow::bail!(
            "refusing to move the clock more than {MAX_DAYS} days (20 years) ahead: it is at {}, {} is further",
            now.to_rfc3339(),
            target.to_rfc3339()
        );
    }
    Ok(target)
}

/// Takes the [`ClockLock`] of the database behind `pool`, saying so on stderr if another seed or
/// `clock advance` holds it and this has to wait.
pub(crate) async fn lock(pool: &sqlx::PgPool) -> anyhow::Result<ClockLock> {
    Ok(ClockLock::acquire(pool, || {
        eprintln!("waiting for another seed or clock advance on this database to finish");
    })
    .await?)
}

/// `clock advance`: under the clock lock (another seed or advance waits, and this waits for
/// them), from the database's clock to the target, every job due on the way run in order.
fn advance(
    to: Option<NaiveDate>,
    by: Option<TimeDelta>,
    url: &str,
    output: Output,
) -> anyhow::Result<ExitCode> {
    let runtime = crate::runtime()?;
    runtime.block_on(async {
        let probe = billing_harness::env::Database::builder().attach(url).await?;
        let marked = probe.marked_for().unwrap_or("marked").to_owned();
        let calendar = billing_harness::platform::Platform::new(probe.pool().clone())
            .settings()
            .await?
            .calendar;
        let mut lock = lock(probe.pool()).await?;
        let now = match clock::database_now(lock.connection()).await? {
            Some(now) => now,
            None => {
                let now = clock::wall_now();
                clock::move_forward(lock.connection(), now).await?;
                now
            }
        };
        let target = target(now, calendar.time_zone(), to, by)?;
        if target < now {
            lock.release().await?;
            eprintln!(
                "error: refusing to move the clock backwards: it is at {} ({}), {} is before it\n  jobs already ran at those instants; advance only moves forward",
                now.to_rfc3339(),
                calendar.local_day(now),
                target.to_rfc3339()
            );
            return Ok(ExitCode::FAILURE);
        }
        // Started at the database's clock, the attach writes nothing (and so waits for no lock).
        let env = TestEnv::builder()
            .time_zone(calendar.time_zone())
            .start_at(now)
            .attach(url)
            .await?;
        let moving = format!(
            "moving the {marked} database's clock from {} to {}",
            calendar.local_day(now),
            calendar.local_day(target)
        );
        // Progress: on stdout for people, on stderr beside a JSON document.
        if output.json() {
            eprintln!("{moving}");
        } else {
            println!("{moving}");
        }
        let runs = env.clock().advance_to(target).await;
        lock.release().await?;
        let runs = runs?;
        let jobs: Vec<_> = runs
            .iter()
            .map(|run| {
                json!({
                    "day": calendar.local_day(run.at).to_string(),
                    "at": run.at.to_rfc3339(),
                    "job": run.job.to_string(),
                    "effects": run.effects,
                    "what": what(run),
                })
            })
            .collect();
        let at = env.clock().now();
        let moved = json!({
            "database": marked,
            "from": now.to_rfc3339(),
            "clock": at.to_rfc3339(),
            "local_day": calendar.local_day(at).to_string(),
            "jobs": jobs,
        });
        output.emit(&moved, |_| {
            let mut text: String = runs
                .iter()
                .map(|run| format!("  {} {}: {}\n", calendar.local_day(run.at), run.job, what(run)))
                .collect();
            text += &format!(
                "clock at {} ({}); {} job run(s)\n",
                at.to_rfc3339(),
                calendar.local_day(at),
                runs.len()
            );
            text
        })?;
        Ok(ExitCode::SUCCESS)
    })
}

/// What a job run did, for people: `3 invoice(s) closed`.
fn what(run: &clock::JobRun) -> String {
    match run.job {
        Job::Close(_) => format!("{} invoice(s) closed", run.effects),
        Job::Charge | Job::Retry => format!("{} payment attempt(s)", run.effects),
        Job::Reconcile => format!("{} row(s) re-queued or repaired", run.effects),
        Job::Sync => format!("{} delivery attempt(s)", run.effects),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_days_and_hours() {
        assert_eq!(duration("3d").unwrap(), TimeDelta::days(3));
        assert_eq!(duration("12h").unwrap(), TimeDelta::hours(12));
        assert!(
            duration("3w")
                .unwrap_err()
                .to_string()
                .contains("3d or 12h")
        );
    }

    #[test]
    fn a_unit_of_several_bytes_or_a_span_too_long_is_an_error_not_a_panic() {
        for (text, said) in [
            ("3일", "unknown unit \"일\""),
            ("일", "unknown unit \"일\""),
            ("", "empty"),
            ("d", "no number before \"d\""),
            ("3", "no unit after 3"),
            ("1-2d", "\"1-2\" is not a whole number"),
            ("3 d", "unknown unit \" d\""),
            ("99999999999999d", "at most 7320 days"),
            ("-99999999999999h", "at most 7320 days"),
            ("7321d", "at most 7320 days"),
        ] {
            let err = duration(text).unwrap_err().to_string();
            assert!(err.contains(said), "{text:?}: {err}");
        }
        assert_eq!(duration("7320d").unwrap(), TimeDelta::days(7320));
        assert_eq!(duration("-7320d").unwrap(), TimeDelta::days(-7320));
    }
}
