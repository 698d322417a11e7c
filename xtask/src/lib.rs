//! The workspace's commands for people and CI (databases, diagnosis, benchmarks), behind
//! `cargo xtask`, and their QA part an adopter installs as `cargo billing-harness`.

mod bench;
#[cfg(test)]
mod cli_values;
mod clock;
mod conformance;
mod contract;
mod db;
mod docs;
mod errors;
mod fixtures;
mod format;
mod images;
mod pact;
mod parallel;
mod partition;
mod products;
mod purge;
mod scenario;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The workspace's commands for people and CI: throwaway databases, diagnosis, scenarios and
/// benchmarks.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

/// The QA commands of a team that adopts the harness: throwaway and marked databases, scenarios,
/// contracts, the clock, purges and product mocks.
#[derive(Debug, Parser)]
#[command(
    name = "cargo billing-harness",
    bin_name = "cargo billing-harness",
    version
)]
struct QaCli {
    #[command(subcommand)]
    command: Option<Qa>,
}

/// The commands `cargo billing-harness` and `cargo xtask` share.
#[derive(Debug, Subcommand)]
enum Qa {
    /// Throwaway databases for people, and marking a database the harness did not create.
    #[command(subcommand)]
    Db(db::Command),
    /// Say which PostgreSQL backends work here, and why the others do not.
    Doctor(format::Output),
    /// List, run, create, seed and report the QA team's scenario files.
    #[command(subcommand)]
    Scenario(scenario::Command),
    /// Apply a sales contract file to a marked QA database (`--dry-run` shows it only).
    #[command(subcommand)]
    Contract(contract::Command),
    /// Purge a user, an organization or a scenario run from a marked QA database
    /// (`--dry-run` shows the plan only).
    Purge(purge::PurgeOpts),
    /// Show or move a marked QA database's clock, running the jobs due on the way.
    #[command(subcommand)]
    Clock(clock::Command),
    /// Product mocks for a person, served where HARNESS_PRODUCTS says.
    #[command(subcommand)]
    Products(products::Command),
}

/// `cargo xtask`'s commands: the QA ones, and those of this repository.
#[derive(Debug, Subcommand)]
enum Command {
    #[command(flatten)]
    Qa(Qa),
    /// Build the container images (PostgreSQL, the product mock) from this machine's files;
    /// skips those the engine has, and prints their names.
    Images(format::Output),
    /// Measure the workspace's speed goals.
    #[command(subcommand)]
    Bench(bench::Command),
    /// Mutation testing of billing, platform and payments: cargo-mutants for the Rust code and a
    /// SQL mutator for the queries; exits 1 when a survivor is not in mutants-accepted.toml.
    Mutants(xtask_mutants::Opts),
    /// Contracts for product teams: the sync API calls the scenarios made, as Pact V4 files.
    #[command(subcommand)]
    Pact(pact::Command),
    /// Write the book's command reference (docs/reference/cli.md) from these commands' help;
    /// `--check` only compares.
    Docs(docs::Opts),
}

/// `cargo xtask`: parses the command line and runs the command.
pub fn xtask_main() -> ExitCode {
    let cli: Cli = match parse(std::env::args_os()) {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    finish(match cli.command {
        Some(Command::Qa(qa)) => run_qa(qa),
        Some(Command::Images(output)) => images::run(output),
        Some(Command::Bench(command)) => bench::run(command),
        Some(Command::Pact(command)) => pact::run(command),
        Some(Command::Docs(opts)) => docs::run(&opts),
        Some(Command::Mutants(opts)) => xtask_mutants::run(&(&opts).into()),
        None => return overview::<Cli>(),
    })
}

/// `cargo billing-harness` (or `cargo-billing-harness`): parses the command line and runs the
/// command, with the scenarios of `./scenarios`, else those bundled in the binary.
pub fn qa_main() -> ExitCode {
    // `cargo billing-harness ARGS` runs `cargo-billing-harness billing-harness ARGS`.
    let args = std::env::args_os()
        .enumerate()
        .filter(|(i, arg)| *i != 1 || arg != "billing-harness")
        .map(|(_, arg)| arg);
    let cli: QaCli = match parse(args) {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    scenario::use_bundled();
    finish(match cli.command {
        Some(qa) => run_qa(qa),
        None => return overview::<QaCli>(),
    })
}

/// The command line as `C` reads it, `--database-url` falling back to the variables; a usage
/// error is printed and its exit code returned.
fn parse<C: Parser>(args: impl IntoIterator<Item = std::ffi::OsString>) -> Result<C, ExitCode> {
    db::database_url_fallback(C::command())
        .try_get_matches_from(args)
        .and_then(|matches| C::from_arg_matches(&matches))
        .map_err(|e| errors::usage_error(&e))
}

/// Runs one of the shared commands.
fn run_qa(qa: Qa) -> anyhow::Result<ExitCode> {
    match qa {
        Qa::Db(command) => db::run(command),
        Qa::Doctor(output) => db::doctor(output),
        Qa::Scenario(command) => scenario::run(command),
        Qa::Contract(command) => contract::run(command),
        Qa::Purge(opts) => purge::run(opts),
        Qa::Clock(command) => clock::run(command),
        Qa::Products(command) => products::run(command),
    }
}

/// No command: the overview, as `--help` gives it.
fn overview<C: clap::CommandFactory>() -> ExitCode {
    print!("{}", C::command().render_help());
    ExitCode::SUCCESS
}

/// Waits for dropped databases, then turns a command's result into the exit code, printing its
/// error.
fn finish(result: anyhow::Result<ExitCode>) -> ExitCode {
    settle_drops();
    match result {
        Ok(code) => code,
        Err(e) => {
            eprint!("{}", errors::error_chain(&e));
            ExitCode::FAILURE
        }
    }
}

/// Waits for the databases the command's tests environments released to be dropped: the harness
/// drops them in the background, and a process that exits first leaves them to the next one's
/// reaper.
fn settle_drops() {
    if let Some(broker) = billing_harness::env::Broker::global_if_used()
        && let Ok(runtime) = runtime()
    {
        let _ = runtime.block_on(broker.settle_drops());
    }
}

/// The workspace's root folder.
fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| std::path::PathBuf::from("."), std::path::Path::to_owned)
}

/// A `cargo` command (`$CARGO` under `cargo xtask`) without [`xtask_mutants::package_vars`].
fn cargo_command() -> std::process::Command {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = std::process::Command::new(cargo);
    for name in xtask_mutants::package_vars() {
        command.env_remove(name);
    }
    command
}

/// A current-thread runtime for one command.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// Listens for Ctrl-C from now on. Call it before printing what a caller waits for: a signal
/// that arrives before the listener exists would kill the process with its default action.
fn listen_for_ctrl_c() -> anyhow::Result<tokio::signal::unix::Signal> {
    Ok(tokio::signal::unix::signal(
        tokio::signal::unix::SignalKind::interrupt(),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_trees_are_consistent() {
        <Cli as clap::CommandFactory>::command().debug_assert();
        <QaCli as clap::CommandFactory>::command().debug_assert();
    }

    #[test]
    fn mutants_takes_run_accepted_with_list() {
        let cli = Cli::try_parse_from(["cargo xtask", "mutants", "--run-accepted", "--list"]);
        match cli.map(|cli| cli.command) {
            Ok(Some(Command::Mutants(opts))) => {
                let args = xtask_mutants::MutantsArgs::from(&opts);
                assert!(args.run_accepted && args.list, "{args:?}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_installed_binary_has_the_qa_commands_only() {
        let names: Vec<_> = <QaCli as clap::CommandFactory>::command()
            .get_subcommands()
            .map(|c| c.get_name().to_owned())
            .collect();
        assert_eq!(
            names,
            [
                "db", "doctor", "scenario", "contract", "purge", "clock", "products"
            ]
        );
    }
}
