//! `clock show` and `clock advance`: a marked QA database's test clock, moved forward with every
//! job that falls due on the way (close, charge, retries, sync) run in order, a line per job.

use std::process::ExitCode;

use billing_harness::TestEnv;
use billing_harness::calendar::Job;
use billing_harness::clock::{self, ClockLock};
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};

/// `cargo xtask clock ...`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Print the database's clock (`harness_clock`) and its local day.
    Show {
        /// The database, as postgres://USER:PASSWORD@HOST:PORT/DATABASE.
        #[arg(long, value_name = "URL")]
        database_url: String,
    },
    /// Move the database's clock forward, running every job due on the way; never backwards.
    /// Seeds and advances on one database take turns: this waits while another moves it.
    Advance {
        /// The day to move to (00:00 of it, in the platform's time zone), as YYYY-MM-DD.
        #[arg(
            long,
            value_name = "DATE",
            conflicts_with = "by",
            required_unless_present = "by"
        )]
        to: Option<NaiveDate>,
        /// How far to move: a number of days (`3d`) or hours (`12h`).
        #[arg(long, value_name = "DURATION")]
        by: Option<String>,
        /// The database, as postgres://USER:PASSWORD@HOST:PORT/DATABASE (marked with `db mark`).
        #[arg(long, value_name = "URL")]
        database_url: String,
    },
}

/// Runs one `clock` command.
pub(crate) fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Show { database_url } => show(&database_url),
        Command::Advance {
            to,
            by,
            database_url,
        } => advance(to, by.as_deref(), &database_url),
    }
}

fn show(url: &str) -> anyhow::Result<ExitCode> {
    let runtime = crate::runtime()?;
    runtime.block_on(async {
        let db = billing_harness::env::Database::builder()
            .attach(url)
            .await?;
        let now = crate::db::harness_now(db.pool()).await?;
        let platform = billing_harness::platform::Platform::new(db.pool().clone());
        match platform.settings().await {
            Ok(settings) => println!(
                "clock: {} ({} in {})",
                now.to_rfc3339(),
                settings.calendar.local_day(now),
                settings.calendar.time_zone()
            ),
            Err(_) => println!("clock: {} (no catalog installed)", now.to_rfc3339()),
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// The longest move `--by` takes: 20 years of days.
const MAX_DAYS: i64 = 20 * 366;

/// `3d` or `12h`, at most [`MAX_DAYS`] either way; any other text is an error, never a panic
/// (a unit of several bytes, a number past what a duration holds).
fn duration(text: &str) -> anyhow::Result<TimeDelta> {
    let text = text.trim();
    let wrong =
        || anyhow::anyhow!("--by {text:?}: expected a number of days or hours, like 3d or 12h");
    let (at, unit) = text.char_indices().last().ok_or_else(wrong)?;
    let n: i64 = text[..at].parse().map_err(|_| wrong())?;
    let span = match unit {
        'd' => TimeDelta::try_days(n),
        'h' => TimeDelta::try_hours(n),
        _ => return Err(wrong()),
    };
    match span {
        Some(span) if span.abs() <= TimeDelta::days(MAX_DAYS) => Ok(span),
        _ => anyhow::bail!("--by {text:?}: at most {MAX_DAYS} days (20 years) either way"),
    }
}

/// `clock advance`: under the clock lock (another seed or advance waits, and this waits for
/// them), from the database's clock to the target, every job due on the way run in order.
fn advance(to: Option<NaiveDate>, by: Option<&str>, url: &str) -> anyhow::Result<ExitCode> {
    let by = by.map(duration).transpose()?;
    let runtime = crate::runtime()?;
    runtime.block_on(async {
        let probe = billing_harness::env::Database::builder().attach(url).await?;
        let marked = probe.marked_for().unwrap_or("marked").to_owned();
        let calendar = billing_harness::platform::Platform::new(probe.pool().clone())
            .settings()
            .await?
            .calendar;
        let mut lock = ClockLock::acquire(probe.pool(), || {
            eprintln!("waiting for another seed or clock advance on this database to finish");
        })
        .await?;
        let now = match clock::database_now(lock.connection()).await? {
            Some(now) => now,
            None => {
                let now = clock::wall_now();
                clock::move_forward(lock.connection(), now).await?;
                now
            }
        };
        let target: DateTime<Utc> = match (to, by) {
            (Some(day), _) => calendar.start_of_day(day),
            (None, Some(by)) => now + by,
            (None, None) => anyhow::bail!("say where to: --to DATE or --by DURATION"),
        };
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
        println!(
            "moving the {marked} database's clock from {} to {}",
            calendar.local_day(now),
            calendar.local_day(target)
        );
        let runs = env.clock().advance_to(target).await;
        lock.release().await?;
        let runs = runs?;
        for run in &runs {
            let what = match run.job {
                Job::Close(_) => format!("{} invoice(s) closed", run.effects),
                Job::Charge | Job::Retry => format!("{} payment attempt(s)", run.effects),
                Job::Sync => format!("{} delivery attempt(s)", run.effects),
            };
            println!("  {} {}: {what}", calendar.local_day(run.at), run.job);
        }
        println!(
            "clock at {} ({}); {} job run(s)",
            env.clock().now().to_rfc3339(),
            calendar.local_day(env.clock().now()),
            runs.len()
        );
        Ok(ExitCode::SUCCESS)
    })
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
            ("3일", "3d or 12h"),
            ("일", "3d or 12h"),
            ("", "3d or 12h"),
            ("d", "3d or 12h"),
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
