//! `db up`, `db clean`, `db mark` and `doctor`: throwaway databases for people, marking a QA
//! database, and what works here.

use std::process::ExitCode;

use billing_harness::TestEnv;
use billing_harness::env::{self, Config};

/// `cargo xtask db ...`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Start a throwaway migrated database, print its URL, keep it until Ctrl-C.
    Up,
    /// Drop databases kept by failed tests and let idle servers stop.
    Clean,
    /// Let the harness write to a database it did not create (a shared QA database): installs
    /// the clock and the schema if missing and records a marker. Marking twice is harmless.
    Mark {
        /// The environment the database serves, recorded in the marker (e.g. `qa`).
        #[arg(long, value_name = "NAME")]
        env: String,
        /// The database, as postgres://USER:PASSWORD@HOST:PORT/DATABASE.
        #[arg(long, value_name = "URL")]
        database_url: String,
    },
}

/// Runs one `db` command.
pub(crate) fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Up => up(),
        Command::Clean => clean(),
        Command::Mark { env, database_url } => mark(&env, &database_url),
    }
}

/// Starts a migrated database and keeps it until Ctrl-C.
fn up() -> anyhow::Result<ExitCode> {
    crate::runtime()?.block_on(async {
        let env = TestEnv::new().await?;
        eprintln!(
            "billing-harness: database {} on the {} backend is ready; Ctrl-C drops it",
            env.database_name(),
            env.backend()
        );
        eprintln!("  open it with: {}", env.psql_command());
        println!("{}", env.url());
        tokio::signal::ctrl_c().await?;
        eprintln!("billing-harness: dropping {}", env.database_name());
        drop(env);
        Ok(ExitCode::SUCCESS)
    })
}

/// Drops kept databases and stops idle throwaway servers.
fn clean() -> anyhow::Result<ExitCode> {
    let config = Config::from_env()?;
    let dropped = crate::runtime()?.block_on(env::drop_kept(None))?;
    for name in &dropped {
        eprintln!("dropped kept database {name}");
    }
    eprintln!(
        "{} kept database(s) dropped; an idle throwaway server stops {} s after its last user",
        dropped.len(),
        config.linger.as_secs()
    );
    Ok(ExitCode::SUCCESS)
}

/// Prints which backends are available and which one `auto` picks.
pub(crate) fn doctor() -> anyhow::Result<ExitCode> {
    let config = Config::from_env()?;
    let (statuses, chosen) = crate::runtime()?.block_on(env::doctor(&config));
    println!("backend     status");
    for s in &statuses {
        match &s.status {
            Ok(what) => println!("{:<11} available: {what}", s.backend.to_string()),
            Err(why) => println!("{:<11} not available: {why}", s.backend.to_string()),
        }
    }
    println!("state dir   {}", config.state_dir.display());
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

/// `db mark --env NAME --database-url URL`: lets the harness write to a database it did not
/// create (installs the clock and the schema if missing, and records the marker).
fn mark(env: &str, url: &str) -> anyhow::Result<ExitCode> {
    crate::runtime()?.block_on(env::mark(url, env))?;
    eprintln!("marked the database for {env}: `cargo xtask scenario seed` may write to it now");
    Ok(ExitCode::SUCCESS)
}
