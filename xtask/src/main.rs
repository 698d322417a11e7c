//! `cargo xtask`: the workspace's commands for people and CI (databases, diagnosis, benchmarks).

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

#[derive(Debug, Subcommand)]
enum Command {
    /// Throwaway databases for people, and marking a database the harness did not create.
    #[command(subcommand)]
    Db(db::Command),
    /// Say which PostgreSQL backends work here, and why the others do not.
    Doctor,
    /// List, run, create, seed and report the QA team's scenario files.
    #[command(subcommand)]
    Scenario(scenario::Command),
    /// Apply a sales contract file to a marked QA database (`--dry-run` shows it only).
    #[command(subcommand)]
    Contract(contract::Command),
    /// Build the container images (PostgreSQL, the product mock) from this machine's files;
    /// skips those the engine has, and prints their names.
    Images,
    /// Purge a user, an organization or a scenario run from a marked QA database
    /// (`--dry-run` shows the plan only).
    Purge(purge::PurgeOpts),
    /// Show or move a marked QA database's clock, running the jobs due on the way.
    #[command(subcommand)]
    Clock(clock::Command),
    /// Product mocks for a person, served where HARNESS_PRODUCTS says.
    #[command(subcommand)]
    Products(products::Command),
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

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return errors::usage_error(&e),
    };
    let result = match cli.command {
        Some(Command::Db(command)) => db::run(command),
        Some(Command::Doctor) => db::doctor(),
        Some(Command::Scenario(command)) => scenario::run(command),
        Some(Command::Contract(command)) => contract::run(command),
        Some(Command::Images) => images::run(),
        Some(Command::Purge(opts)) => purge::run(opts),
        Some(Command::Clock(command)) => clock::run(command),
        Some(Command::Bench(command)) => bench::run(command),
        Some(Command::Products(command)) => products::run(command),
        Some(Command::Pact(command)) => pact::run(command),
        Some(Command::Docs(opts)) => docs::run(&opts),
        Some(Command::Mutants(opts)) => xtask_mutants::run(&(&opts).into()),
        None => {
            // No command: the overview, as `--help` gives it.
            let mut cli = <Cli as clap::CommandFactory>::command();
            print!("{}", cli.render_help());
            return ExitCode::SUCCESS;
        }
    };
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
    fn the_command_tree_is_consistent() {
        <Cli as clap::CommandFactory>::command().debug_assert();
    }
}
