//! `db up`, `db clean`, `db mark` and `doctor`: throwaway databases for people, marking a QA
//! database, and what works here.

use std::process::ExitCode;

use billing_harness::TestEnv;
use billing_harness::env::{self, Config, KeptBy};

/// `cargo xtask db ...`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Start a throwaway migrated database, print its URL, keep it until Ctrl-C.
    Up,
    /// Drop the databases your failed tests kept and let idle servers stop.
    Clean {
        /// Drop those other users kept too (on a shared server), and those of an older harness
        /// that recorded no user.
        #[arg(long)]
        all_users: bool,
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
    },
}

/// Runs one `db` command.
pub(crate) fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Up => up(),
        Command::Clean { all_users } => clean(all_users),
        Command::Mark { env, database_url } => mark(&env, &database_url),
    }
}

/// Starts a migrated database and keeps it until Ctrl-C.
fn up() -> anyhow::Result<ExitCode> {
    crate::runtime()?.block_on(async {
        let env = TestEnv::new().await?;
        let mut ctrl_c = crate::listen_for_ctrl_c()?;
        eprintln!(
            "billing-harness: database {} on the {} backend is ready; Ctrl-C drops it",
            env.database_name(),
            env.backend()
        );
        eprintln!("  open it with: {}", env.psql_command());
        println!("{}", env.url());
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
fn clean(all_users: bool) -> anyhow::Result<ExitCode> {
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
    Ok(ExitCode::SUCCESS)
}

/// Prints which backends are available and which one `auto` picks, the state folder with its
/// room and the footprint a local server needs there, and the databases kept for failed tests.
pub(crate) fn doctor() -> anyhow::Result<ExitCode> {
    let config = Config::from_env()?;
    let runtime = crate::runtime()?;
    let (statuses, chosen) = runtime.block_on(env::doctor(&config));
    println!("backend     status");
    for s in &statuses {
        match &s.status {
            Ok(what) => println!("{:<11} available: {what}", s.backend.to_string()),
            Err(why) => println!("{:<11} not available: {why}", s.backend.to_string()),
        }
    }
    let space = env::space_report(&config);
    println!(
        "state dir   {} ({})",
        space.state_dir.display(),
        space.choice
    );
    match (space.free, space.size) {
        (Some(free), Some(size)) => println!(
            "free        {} of {}{}",
            bytes(free),
            bytes(size),
            if free < space.footprint.bytes() {
                "; too little for a local server: set HARNESS_STATE_DIR to a folder with more room"
            } else {
                ""
            }
        ),
        _ => println!("free        unknown (`df` could not tell)"),
    }
    println!("footprint   {} for a local server", space.footprint);
    println!("in use      {} in the state dir now", bytes(space.in_use));
    let kept = if chosen.is_ok() {
        runtime.block_on(env::kept_databases(&config))
    } else {
        Ok(None)
    };
    match kept {
        Ok(None) => println!("kept        no server runs, so none"),
        Ok(Some(kept)) if kept.is_empty() => println!("kept        none"),
        Ok(Some(kept)) => {
            let total: u64 = kept.iter().map(|k| k.bytes).sum();
            println!(
                "kept        {} database(s), {} (limit HARNESS_KEEP_FAILED={}; `cargo xtask db clean` drops them)",
                kept.len(),
                bytes(total),
                config.keep_failed
            );
            for k in &kept {
                let by = k.user.as_deref().unwrap_or("an unknown user");
                println!("  {}  {}  by {by}: {}", k.name, bytes(k.bytes), k.reason);
            }
        }
        Err(e) => println!("kept        could not list them: {e}"),
    }
    match chosen {
        Ok(backend) => {
            println!("HARNESS_POSTGRES={} uses: {backend}", config.backend);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            let why = crate::errors::inline(&anyhow::Error::from(e));
            println!("HARNESS_POSTGRES={} fails: {why}", config.backend);
            Ok(ExitCode::FAILURE)
        }
    }
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
fn mark(env: &str, url: &str) -> anyhow::Result<ExitCode> {
    crate::runtime()?.block_on(env::mark(url, env, &billing_harness::platform_schema()))?;
    eprintln!("marked the database for {env}: `cargo xtask scenario seed` may write to it now");
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
