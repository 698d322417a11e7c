//! `db up`, `db clean`, `db mark` and `doctor`: throwaway databases for people, marking a QA
//! database, and what works here.

use std::process::ExitCode;

use billing_harness::TestEnv;
use billing_harness::env::{self, Config, KeptBy};
use serde_json::json;

use crate::format::Output;

/// `cargo xtask db ...`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Start a throwaway migrated database, print its URL, keep it until Ctrl-C.
    Up(Output),
    /// Drop the databases your failed tests kept and let idle servers stop.
    Clean {
        /// Drop those other users kept too (on a shared server), and those of an older harness
        /// that recorded no user.
        #[arg(long)]
        all_users: bool,
        #[command(flatten)]
        output: Output,
    },
    /// Let the harness write to a database it did not create (a shared QA database): installs
    /// the clock and the schema if missing and records a marker. Marking twice is harmless.
    Mark {
        /// The environment the database serves, recorded in the marker (e.g. `qa`).
        #[arg(long, value_name = "NAME", value_parser = clap::builder::NonEmptyStringValueParser::new())]
        env: String,
        /// The database, as postgres://USER:PASSWORD@HOST:PORT/DATABASE;
        /// default: HARNESS_DATABASE_URL, then DATABASE_URL.
        #[arg(long, value_name = "URL", value_parser = database_url, env = "HARNESS_DATABASE_URL", hide_env_values = true)]
        database_url: String,
        #[command(flatten)]
        output: Output,
    },
}

/// Runs one `db` command.
pub(crate) fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Up(output) => up(output),
        Command::Clean { all_users, output } => clean(all_users, output),
        Command::Mark {
            env,
            database_url,
            output,
        } => mark(&env, &database_url, output),
    }
}

/// Starts a migrated database and keeps it until Ctrl-C.
fn up(output: Output) -> anyhow::Result<ExitCode> {
    crate::runtime()?.block_on(async {
        let env = TestEnv::new().await?;
        let mut ctrl_c = crate::listen_for_ctrl_c()?;
        eprintln!(
            "billing-harness: database {} on the {} backend is ready; Ctrl-C drops it",
            env.database_name(),
            env.backend()
        );
        eprintln!("  open it with: {}", env.psql_command());
        let url = env.url();
        let up = json!({
            "url": url,
            "database": env.database_name(),
            "backend": env.backend().to_string(),
        });
        output.emit(&up, |_| format!("{url}\n"))?;
        ctrl_c.recv().await;
        eprintln!("billing-harness: dropping {}", env.database_name());
        drop(env);
        // Dropping happens in the background: wait for it before the process ends.
        billing_harness::env::Broker::global()?
            .settle_drops()
            .await?;
        Ok(ExitCode::SUCCESS)
    })
}

/// Drops this user's kept databases (everyone's with `all_users`) and stops idle throwaway
/// servers; says how many other users' stay.
fn clean(all_users: bool, output: Output) -> anyhow::Result<ExitCode> {
    let config = Config::from_env()?;
    let by = if all_users {
        KeptBy::AnyUser
    } else {
        KeptBy::ThisUser
    };
    let runtime = crate::runtime()?;
    let dropped = runtime.block_on(env::drop_kept_by(None, by))?;
    for name in &dropped {
        eprintln!("dropped kept database {name}");
    }
    eprintln!(
        "{} kept database(s) dropped; an idle throwaway server stops {} s after its last user",
        dropped.len(),
        config.linger.as_secs()
    );
    let left = runtime
        .block_on(env::kept_databases(&config))
        .ok()
        .flatten()
        .unwrap_or_default();
    if !left.is_empty() {
        eprintln!(
            "{} kept database(s) of other users stay ({}); `cargo xtask db clean --all-users` drops them",
            left.len(),
            left.iter()
                .map(|k| format!(
                    "{} by {}",
                    k.name,
                    k.user.as_deref().unwrap_or("an unknown user")
                ))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let others: Vec<_> = left
        .iter()
        .map(|k| json!({"name": k.name, "user": k.user, "bytes": k.bytes}))
        .collect();
    // The text for people went to stderr above: stdout has only the JSON document.
    output.emit(&json!({"dropped": dropped, "others_kept": others}), |_| {
        String::new()
    })?;
    Ok(ExitCode::SUCCESS)
}

/// What `doctor` found: the backends, the state folder and its room, the kept databases, and
/// the backend HARNESS_POSTGRES gives.
#[derive(Debug, serde::Serialize)]
struct Doctor {
    backends: Vec<BackendLine>,
    state_dir: std::path::PathBuf,
    state_dir_choice: String,
    free_bytes: Option<u64>,
    size_bytes: Option<u64>,
    footprint: String,
    footprint_bytes: u64,
    in_use_bytes: u64,
    /// The kept databases; `null` when no server runs.
    kept: Option<Vec<KeptLine>>,
    /// Why the kept databases could not be listed.
    kept_error: Option<String>,
    keep_failed: u32,
    harness_postgres: String,
    /// The backend HARNESS_POSTGRES picks, if it works.
    uses: Option<String>,
    /// Why HARNESS_POSTGRES fails.
    fails: Option<String>,
}

/// One backend in [`Doctor`]: available or not, and what it would use or why not.
#[derive(Debug, serde::Serialize)]
struct BackendLine {
    backend: String,
    available: bool,
    detail: String,
}

/// One database kept for a failed test, in [`Doctor`].
#[derive(Debug, serde::Serialize)]
struct KeptLine {
    name: String,
    bytes: u64,
    user: Option<String>,
    reason: String,
}

/// Prints which backends are available and which one `auto` picks, the state folder with its
/// room and the footprint a local server needs there, and the databases kept for failed tests.
pub(crate) fn doctor(output: Output) -> anyhow::Result<ExitCode> {
    let config = Config::from_env()?;
    let runtime = crate::runtime()?;
    let (statuses, chosen) = runtime.block_on(env::doctor(&config));
    let space = env::space_report(&config);
    let kept = if chosen.is_ok() {
        runtime.block_on(env::kept_databases(&config))
    } else {
        Ok(None)
    };
    let (kept, kept_error) = match kept {
        Ok(kept) => (kept, None),
        Err(e) => (None, Some(e.to_string())),
    };
    let report = Doctor {
        backends: statuses
            .iter()
            .map(|s| BackendLine {
                backend: s.backend.to_string(),
                available: s.status.is_ok(),
                detail: s.status.clone().unwrap_or_else(|why| why),
            })
            .collect(),
        state_dir: space.state_dir.clone(),
        state_dir_choice: space.choice.clone(),
        free_bytes: space.free,
        size_bytes: space.size,
        footprint: space.footprint.to_string(),
        footprint_bytes: space.footprint.bytes(),
        in_use_bytes: space.in_use,
        kept: kept.map(|kept| {
            kept.into_iter()
                .map(|k| KeptLine {
                    name: k.name,
                    bytes: k.bytes,
                    user: k.user,
                    reason: k.reason,
                })
                .collect()
        }),
        kept_error,
        keep_failed: config.keep_failed,
        harness_postgres: config.backend.to_string(),
        uses: chosen.as_ref().ok().map(ToString::to_string),
        fails: chosen
            .err()
            .map(|e| crate::errors::inline(&anyhow::Error::from(e))),
    };
    output.emit(&report, doctor_text)?;
    Ok(if report.fails.is_none() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// [`doctor`]'s report for people: a line per finding.
fn doctor_text(d: &Doctor) -> String {
    use std::fmt::Write as _;
    let mut out = String::from("backend     status\n");
    for b in &d.backends {
        let not = if b.available { "" } else { "not " };
        let _ = writeln!(out, "{:<11} {not}available: {}", b.backend, b.detail);
    }
    let _ = writeln!(
        out,
        "state dir   {} ({})",
        d.state_dir.display(),
        d.state_dir_choice
    );
    let _ = match (d.free_bytes, d.size_bytes) {
        (Some(free), Some(size)) => writeln!(
            out,
            "free        {} of {}{}",
            bytes(free),
            bytes(size),
            if free < d.footprint_bytes {
                "; too little for a local server: set HARNESS_STATE_DIR to a folder with more room"
            } else {
                ""
            }
        ),
        _ => writeln!(out, "free        unknown (`df` could not tell)"),
    };
    let _ = writeln!(out, "footprint   {} for a local server", d.footprint);
    let _ = writeln!(
        out,
        "in use      {} in the state dir now",
        bytes(d.in_use_bytes)
    );
    let _ = match (&d.kept, &d.kept_error) {
        (_, Some(e)) => writeln!(out, "kept        could not list them: {e}"),
        (None, None) => writeln!(out, "kept        no server runs, so none"),
        (Some(kept), None) if kept.is_empty() => writeln!(out, "kept        none"),
        (Some(kept), None) => {
            let _ = writeln!(
                out,
                "kept        {} database(s), {} (limit HARNESS_KEEP_FAILED={}; `cargo xtask db clean` drops them)",
                kept.len(),
                bytes(kept.iter().map(|k| k.bytes).sum()),
                d.keep_failed
            );
            for k in kept {
                let by = k.user.as_deref().unwrap_or("an unknown user");
                let _ = writeln!(
                    out,
                    "  {}  {}  by {by}: {}",
                    k.name,
                    bytes(k.bytes),
                    k.reason
                );
            }
            Ok(())
        }
    };
    let _ = match (&d.uses, &d.fails) {
        (_, Some(why)) => writeln!(out, "HARNESS_POSTGRES={} fails: {why}", d.harness_postgres),
        (backend, None) => writeln!(
            out,
            "HARNESS_POSTGRES={} uses: {}",
            d.harness_postgres,
            backend.as_deref().unwrap_or_default()
        ),
    };
    out
}

/// Bytes for people, in powers of 1024 like `df -h`.
fn bytes(n: u64) -> String {
    let mb = n as f64 / (1024.0 * 1024.0);
    if mb >= 1024.0 {
        format!("{:.1} GB", mb / 1024.0)
    } else if mb >= 1.0 {
        format!("{mb:.0} MB")
    } else {
        format!("{:.0} kB", n as f64 / 1024.0)
    }
}

/// `db mark --env NAME --database-url URL`: lets the harness write to a database it did not
/// create (installs the clock and the schema if missing, and records the marker).
fn mark(env: &str, url: &str, output: Output) -> anyhow::Result<ExitCode> {
    crate::runtime()?.block_on(env::mark(url, env, &billing_harness::platform_schema()))?;
    eprintln!("marked the database for {env}: `cargo xtask scenario seed` may write to it now");
    output.emit(&json!({"marked": env}), |_| String::new())?;
    Ok(ExitCode::SUCCESS)
}

/// A database URL as `--database-url` takes it: a `postgres://` URL that reads as libpq reads
/// one (a password's `@` as `%40`), checked before anything runs. A libpq `key=value` string is
/// refused by name; clap's error echoes the value with every password hidden.
pub(crate) fn database_url(text: &str) -> Result<String, env::UrlError> {
    env::parse_url(text).map(|_| text.to_owned())
}

/// `command` with every `--database-url` reading `DATABASE_URL` when `HARNESS_DATABASE_URL` is
/// unset or empty: clap reads one variable per argument, and this is the second.
pub(crate) fn database_url_fallback(command: clap::Command) -> clap::Command {
    match std::env::var_os("HARNESS_DATABASE_URL") {
        Some(url) if !url.is_empty() => command,
        _ => read_url_from(command, "DATABASE_URL"),
    }
}

/// `command` and its subcommands with `--database-url` reading `variable`.
fn read_url_from(command: clap::Command, variable: &'static str) -> clap::Command {
    command
        .mut_args(|arg| {
            if arg.get_id() == "database_url" {
                arg.env(variable)
            } else {
                arg
            }
        })
        .mut_subcommands(|sub| read_url_from(sub, variable))
}

/// A QA database's own clock (`harness_clock`, what `harness_now()` reads), which `clock
/// advance` may have moved: `purge` dates its audit and deletions by it, `clock` starts from it.
/// The wall clock when the database has none yet.
pub(crate) async fn harness_now(
    pool: &sqlx::PgPool,
) -> anyhow::Result<chrono::DateTime<chrono::Utc>> {
    let now = billing_harness::clock::database_now(&mut *pool.acquire().await?).await?;
    Ok(now.unwrap_or_else(billing_harness::clock::wall_now))
}
