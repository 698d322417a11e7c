//! The command's options: [`Opts`] as the command line gives them (`cargo xtask mutants
//! --help`), [`MutantsArgs`] as a run reads them.

use std::path::PathBuf;
use std::time::Duration;

/// Which kinds of mutant to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kinds {
    /// cargo-mutants only.
    Rust,
    /// The SQL mutator only.
    Sql,
    /// Both: the baselines first (they serve both kinds), then the two side by side.
    Both,
}

impl Kinds {
    /// Whether the Rust mutants run.
    pub(crate) fn rust(self) -> bool {
        self != Kinds::Sql
    }

    /// Whether the SQL mutants run.
    pub(crate) fn sql(self) -> bool {
        self != Kinds::Rust
    }
}

/// The options of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct MutantsArgs {
    /// Run shard `k` of `n` (0-based, as cargo-mutants counts), the same split on every machine.
    pub shard: Option<(u32, u32)>,
    /// Only this file (or directory), relative to the workspace root.
    pub file: Option<PathBuf>,
    /// Which kinds of mutant.
    pub kinds: Kinds,
    /// List the mutants and run nothing.
    pub list: bool,
    /// Fixed test timeout per mutant, instead of one derived from the unmutated run.
    pub timeout: Option<Duration>,
    /// Run the mutants that `mutants-accepted.toml` lists too (by default they are counted as
    /// accepted without a run).
    pub run_accepted: bool,
}

impl Default for MutantsArgs {
    fn default() -> Self {
        MutantsArgs {
            shard: None,
            file: None,
            kinds: Kinds::Both,
            list: false,
            timeout: None,
            run_accepted: false,
        }
    }
}

/// The options of `cargo xtask mutants`, for a clap command to flatten or nest.
#[derive(Debug, Clone, clap::Args)]
pub struct Opts {
    /// Which mutants: `rust` (cargo-mutants), `sql` (the SQL mutator) or `both`.
    #[arg(
        long,
        value_enum,
        value_name = "rust|sql|both",
        default_value = "both",
        hide_possible_values = true
    )]
    pub kind: Kinds,
    /// Only this file or folder, relative to the workspace root.
    #[arg(long, value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// Run shard K of N (0-based), the same split on every machine of a CI matrix.
    #[arg(long, value_name = "K/N", value_parser = parse_shard)]
    pub shard: Option<(u32, u32)>,
    /// List the mutants and run nothing.
    #[arg(long, visible_alias = "dry-run")]
    pub list: bool,
    /// A fixed test timeout per mutant, in seconds, at most a day (default: from the unmutated
    /// run).
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub timeout: Option<u64>,
    /// Run the survivors that mutants-accepted.toml lists too (by default they are counted as
    /// accepted without a run), to see whether a new test kills one.
    #[arg(long)]
    pub run_accepted: bool,
}

impl From<&Opts> for MutantsArgs {
    fn from(opts: &Opts) -> Self {
        MutantsArgs {
            shard: opts.shard,
            file: opts
                .file
                .as_ref()
                .map(|f| PathBuf::from(f.to_string_lossy().trim_end_matches('/'))),
            kinds: opts.kind,
            list: opts.list,
            timeout: opts.timeout.map(Duration::from_secs),
            run_accepted: opts.run_accepted,
        }
    }
}

/// `K/N` with `0 <= K < N`, as `--shard` takes it.
fn parse_shard(v: &str) -> Result<(u32, u32), String> {
    v.split_once('/')
        .and_then(|(k, n)| Some((k.parse().ok()?, n.parse().ok()?)))
        .filter(|&(k, n): &(u32, u32)| n > 0 && k < n)
        .ok_or_else(|| format!("--shard takes K/N with 0 <= K < N (like 0/4), not `{v}`"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// The options as a command of their own.
    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        opts: Opts,
    }

    fn parse(args: &[&str]) -> Result<MutantsArgs, clap::Error> {
        let cli = Cli::try_parse_from(std::iter::once("mutants").chain(args.iter().copied()))?;
        Ok(MutantsArgs::from(&cli.opts))
    }

    #[test]
    fn parses_the_options() {
        let args = parse(&[
            "--kind",
            "sql",
            "--file=harness/platform/src/platform/close.rs",
            "--shard",
            "1/4",
            "--timeout",
            "90",
            "--list",
            "--run-accepted",
        ])
        .unwrap();
        assert_eq!(
            args,
            MutantsArgs {
                shard: Some((1, 4)),
                file: Some(PathBuf::from("harness/platform/src/platform/close.rs")),
                kinds: Kinds::Sql,
                list: true,
                timeout: Some(Duration::from_secs(90)),
                run_accepted: true,
            }
        );
        assert_eq!(parse(&[]).unwrap(), MutantsArgs::default());
        assert_eq!(
            parse(&["--dry-run", "--file", "harness/platform/src/billing/"])
                .unwrap()
                .file,
            Some(PathBuf::from("harness/platform/src/billing"))
        );
        for bad in [
            &["--shard", "4/4"][..],
            &["--shard", "1"],
            &["--kind", "go"],
            &["--timeout", "0"],
            &["--timeout", "86401"],
            &["--timeout", "18446744073709551615"],
            &["--shard", "99999999999/99999999999"],
            &["--file"],
            &["--frobnicate"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_options_are_a_consistent_command() {
        <Cli as clap::CommandFactory>::command().debug_assert();
    }
}
