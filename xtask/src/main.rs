//! `cargo xtask`: the workspace's commands for people and CI (databases, diagnosis, benchmarks).

mod bench;
mod db;
mod errors;
mod fixtures;
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
    /// Measure the workspace's speed goals.
    #[command(subcommand)]
    Bench(bench::Command),
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
        Some(Command::Bench(command)) => bench::run(command),
        None => {
            // No command: the overview, as `--help` gives it.
            let mut cli = <Cli as clap::CommandFactory>::command();
            print!("{}", cli.render_help());
            return ExitCode::SUCCESS;
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprint!("{}", errors::error_chain(&e));
            ExitCode::FAILURE
        }
    }
}

/// A current-thread runtime for one command.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_tree_is_consistent() {
        <Cli as clap::CommandFactory>::command().debug_assert();
    }
}
