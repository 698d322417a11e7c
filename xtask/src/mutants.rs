//! `cargo xtask mutants`: mutation testing of the billing, platform and payments code, two kinds.
//!
//! Rust mutants come from cargo-mutants (pinned, installed when missing), SQL mutants from the
//! project's own mutator ([`sql`]) over the queries in the same files. Each target in
//! [`TARGETS`] names the tests that cover it; every mutant builds only those test targets and
//! runs only those tests under nextest, failing fast. Survivors are listed with file, line and
//! change; one not in `mutants-accepted.toml` makes the command fail.

mod accepted;
mod guard;
mod process;
mod schema;
mod sql;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use accepted::Accepted;
use guard::Backup;
use process::{Ended, Interrupted, Signals};
use schema::Schema;

/// The cargo-mutants release the command installs and expects.
pub(crate) const CARGO_MUTANTS_VERSION: &str = "27.1.0";

/// The package whose code is mutated and whose tests run.
const PACKAGE: &str = "billing-harness";

/// Where the migrations declaring the tables (and so the column siblings) are.
const MIGRATIONS: &str = "harness/migrations";

/// The command's own files (backup, logs, cargo-mutants output), under the workspace root.
const STATE_DIR: &str = "target/xtask-mutants";

/// Build the library's unit tests only.
const LIB: &[&str] = &["--lib"];
/// Build the integration-test binary only.
const IT: &[&str] = &["--test=it"];
/// Build both.
const LIB_AND_IT: &[&str] = &["--lib", "--test=it"];

/// The code under mutation and the tests that cover it. A file belongs to the first target
/// whose path matches it, so specific files come before their directory. Moving a file is a
/// change of its line here.
pub(crate) const TARGETS: &[Target] = &[
    Target {
        path: "harness/src/billing/",
        build: LIB,
        tests: "test(/^billing::/)",
        rust_goal: 100,
        sql_goal: 100,
    },
    Target {
        path: "harness/src/platform/close.rs",
        build: IT,
        tests: "test(/^(platform|scenarios|payments)::/)",
        rust_goal: 90,
        sql_goal: 100,
    },
    Target {
        path: "harness/src/platform/usage.rs",
        build: IT,
        tests: "test(/^(platform|scenarios|build)::/)",
        rust_goal: 90,
        sql_goal: 100,
    },
    Target {
        path: "harness/src/platform/subscriptions.rs",
        build: IT,
        tests: "test(/^(platform|scenarios|payments|build)::/)",
        rust_goal: 90,
        sql_goal: 100,
    },
    Target {
        path: "harness/src/payments/charge.rs",
        build: IT,
        tests: "test(/^(payments|scenarios)::/)",
        rust_goal: 90,
        sql_goal: 100,
    },
    Target {
        path: "harness/src/platform/",
        build: IT,
        tests: "test(/^(platform|scenarios|payments|build)::/)",
        rust_goal: 90,
        sql_goal: 90,
    },
    Target {
        path: "harness/src/payments/",
        build: LIB_AND_IT,
        tests: "test(/^(payments|scenarios)::/)",
        rust_goal: 90,
        sql_goal: 90,
    },
];

/// Files under a target directory that are never mutated: test modules.
const NOT_MUTATED: &[&str] = &["tests.rs"];

/// A group of files under mutation and the tests that cover them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Target {
    /// A file, or a directory ending in `/` (its `.rs` files, recursively), relative to the
    /// workspace root.
    pub(crate) path: &'static str,
    /// The test targets of the package to build and run (`--lib`, `--test=it`).
    pub(crate) build: &'static [&'static str],
    /// The nextest filterset of the tests that cover the files.
    pub(crate) tests: &'static str,
    /// Share of Rust mutants to catch, in percent (accepted survivors count as caught).
    pub(crate) rust_goal: u32,
    /// Share of SQL mutants to catch, in percent.
    pub(crate) sql_goal: u32,
}

/// Which kinds of mutant to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kinds {
    /// cargo-mutants only.
    Rust,
    /// The SQL mutator only.
    Sql,
    /// Both, Rust first.
    Both,
}

impl Kinds {
    /// Whether the Rust mutants run.
    fn rust(self) -> bool {
        self != Kinds::Sql
    }

    /// Whether the SQL mutants run.
    fn sql(self) -> bool {
        self != Kinds::Rust
    }
}

/// The command's options.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MutantsArgs {
    /// Run shard `k` of `n` (0-based, as cargo-mutants counts), the same split on every machine.
    pub(crate) shard: Option<(u32, u32)>,
    /// Only this file (or directory), relative to the workspace root.
    pub(crate) file: Option<PathBuf>,
    /// Which kinds of mutant.
    pub(crate) kinds: Kinds,
    /// List the mutants and run nothing.
    pub(crate) list: bool,
    /// Fixed test timeout per mutant, instead of one derived from the unmutated run.
    pub(crate) timeout: Option<Duration>,
}

impl Default for MutantsArgs {
    fn default() -> Self {
        MutantsArgs {
            shard: None,
            file: None,
            kinds: Kinds::Both,
            list: false,
            timeout: None,
        }
    }
}

/// The usage line of the command.
pub(crate) const USAGE: &str =
    "mutants [--kind rust|sql|both] [--file PATH] [--shard K/N] [--list] [--timeout SECS]";

/// Reads the arguments after `mutants`.
///
/// # Errors
/// An unknown option or a malformed value.
pub(crate) fn parse_args(rest: &[&str]) -> anyhow::Result<MutantsArgs> {
    let mut args = MutantsArgs::default();
    let mut rest = rest.iter().flat_map(|a| match a.split_once('=') {
        Some((k, v)) if k.starts_with("--") => vec![k, v],
        _ => vec![*a],
    });
    while let Some(arg) = rest.next() {
        let mut value = || {
            rest.next()
                .with_context(|| format!("{arg} needs a value (usage: cargo xtask {USAGE})"))
        };
        match arg {
            "--kind" => {
                args.kinds = match value()? {
                    "rust" => Kinds::Rust,
                    "sql" => Kinds::Sql,
                    "both" => Kinds::Both,
                    other => bail!("--kind takes rust, sql or both, not `{other}`"),
                }
            }
            "--file" => args.file = Some(PathBuf::from(value()?.trim_end_matches('/'))),
            "--shard" => {
                let v = value()?;
                let parsed = v
                    .split_once('/')
                    .and_then(|(k, n)| Some((k.parse().ok()?, n.parse().ok()?)))
                    .filter(|&(k, n): &(u32, u32)| n > 0 && k < n);
                args.shard = Some(parsed.with_context(|| {
                    format!("--shard takes K/N with 0 <= K < N (like 0/4), not `{v}`")
                })?);
            }
            "--timeout" => {
                let v = value()?;
                let secs: u64 = v
                    .parse()
                    .ok()
                    .filter(|&s| s > 0)
                    .with_context(|| format!("--timeout takes whole seconds, not `{v}`"))?;
                args.timeout = Some(Duration::from_secs(secs));
            }
            "--list" | "--dry-run" => args.list = true,
            other => bail!("unexpected argument `{other}` (usage: cargo xtask {USAGE})"),
        }
    }
    Ok(args)
}

/// How one mutant ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    /// A test failed.
    Caught,
    /// The tests ran past the timeout: counted as caught.
    Timeout,
    /// It did not build.
    Unviable,
    /// Every test passed.
    Survived,
}

/// Which mutator made a mutant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// cargo-mutants.
    Rust,
    /// The SQL mutator.
    Sql,
}

impl Kind {
    /// Its label in the survivor list.
    fn label(self) -> &'static str {
        match self {
            Kind::Rust => "rust",
            Kind::Sql => "sql",
        }
    }
}

/// One tested mutant.
#[derive(Debug, Clone)]
struct Outcome {
    /// Its mutator.
    kind: Kind,
    /// The target it belongs to (index into [`TARGETS`]).
    target: usize,
    /// The file, relative to the workspace root, with `/`.
    file: String,
    /// The line of the change.
    line: usize,
    /// The change, without location.
    change: String,
    /// How it ended.
    status: Status,
    /// Build and test time.
    took: Duration,
}

/// Runs (or lists) the mutants; exit 1 when a survivor is not accepted.
///
/// # Errors
/// A setup step failed (install, baseline, a file), or the run was interrupted (its files are
/// restored first).
pub(crate) fn run(args: &MutantsArgs) -> anyhow::Result<ExitCode> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("xtask has no parent directory")?
        .to_owned();
    let accepted = Accepted::load(&root.join(accepted::FILE))?;
    let plan = plan(&root, args.file.as_deref())?;
    let state = root.join(STATE_DIR);
    std::fs::create_dir_all(&state)?;
    let (backup, restored) = Backup::start(&root, &state.join("backup"))?;
    for file in &restored {
        eprintln!(
            "mutants: restored {} from a previous run's backup",
            file.display()
        );
    }
    let started = Instant::now();
    let result = crate::runtime()?.block_on(async {
        let mut signals = Signals::listen()?;
        let mut run = Run {
            root: &root,
            state: &state,
            args,
            backup,
            signals: &mut signals,
            outcomes: Vec::new(),
        };
        if args.kinds.rust() {
            run.rust(&plan).await?;
        }
        if args.kinds.sql() {
            run.sql(&plan).await?;
        }
        run.backup.finish()?;
        anyhow::Ok(run.outcomes)
    });
    let outcomes = match result {
        Ok(outcomes) => outcomes,
        Err(e) if e.is::<Interrupted>() => {
            eprintln!("mutants: interrupted; the mutated files are restored");
            return Ok(ExitCode::from(130));
        }
        Err(e) => return Err(e),
    };
    if args.list {
        return Ok(ExitCode::SUCCESS);
    }
    Ok(report(&outcomes, &accepted, started.elapsed()))
}

/// Every file under mutation, grouped by target (index into [`TARGETS`]), in path order;
/// only those under `only` when given.
fn plan(root: &Path, only: Option<&Path>) -> anyhow::Result<BTreeMap<usize, Vec<PathBuf>>> {
    let mut files = Vec::new();
    for target in TARGETS {
        let path = root.join(target.path);
        if target.path.ends_with('/') {
            anyhow::ensure!(
                path.is_dir(),
                "{} does not exist: update TARGETS in xtask/src/mutants.rs",
                target.path
            );
            collect_rs(&path, &mut files)?;
        } else {
            anyhow::ensure!(
                path.is_file(),
                "{} does not exist: update TARGETS in xtask/src/mutants.rs",
                target.path
            );
            files.push(path);
        }
    }
    files.sort();
    files.dedup();
    let mut plan: BTreeMap<usize, Vec<PathBuf>> = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(root)?.to_owned();
        if only.is_some_and(|only| !relative.starts_with(only)) {
            continue;
        }
        let Some(target) = target_of(&relative) else {
            continue;
        };
        plan.entry(target).or_default().push(relative);
    }
    if plan.is_empty() {
        bail!(
            "no file under mutation matches `{}`; the targets are: {}",
            only.map(|p| p.display().to_string()).unwrap_or_default(),
            TARGETS
                .iter()
                .map(|t| t.path)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(plan)
}

/// The first target that `file` (relative, with `/`) belongs to.
fn target_of(file: &Path) -> Option<usize> {
    let name = file.file_name()?.to_str()?;
    if NOT_MUTATED.contains(&name) {
        return None;
    }
    TARGETS.iter().position(|t| {
        if t.path.ends_with('/') {
            file.starts_with(t.path.trim_end_matches('/'))
        } else {
            file == Path::new(t.path)
        }
    })
}

/// Adds the `.rs` files under `dir` to `out`.
fn collect_rs(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            collect_rs(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

/// `file` with `/` separators.
fn slashed(file: &Path) -> String {
    file.to_string_lossy().replace('\\', "/")
}

/// Whether mutant number `index` of a stable list is in the shard.
fn in_shard(shard: Option<(u32, u32)>, index: usize) -> bool {
    shard.is_none_or(|(k, n)| index % n as usize == k as usize)
}

/// The state of one run of the command.
struct Run<'a> {
    /// The workspace root.
    root: &'a Path,
    /// `target/xtask-mutants`.
    state: &'a Path,
    /// The options.
    args: &'a MutantsArgs,
    /// The original text of every file mutated so far.
    backup: Backup,
    /// Ctrl-C and SIGTERM.
    signals: &'a mut Signals,
    /// What ran.
    outcomes: Vec<Outcome>,
}

impl Run<'_> {
    /// The SQL mutants of the planned files: a baseline per target, then each mutant in turn.
    async fn sql(&mut self, plan: &BTreeMap<usize, Vec<PathBuf>>) -> anyhow::Result<()> {
        let schema = Schema::from_migrations(&self.root.join(MIGRATIONS))?;
        let logs = self.state.join("sql-logs");
        std::fs::create_dir_all(&logs)?;
        let mut index = 0;
        for (&target, files) in plan {
            let mut chosen = Vec::new();
            for file in files {
                let source = std::fs::read_to_string(self.root.join(file))?;
                for mutant in sql::mutants(&source, &schema) {
                    if in_shard(self.args.shard, index) {
                        chosen.push((file.clone(), mutant));
                    }
                    index += 1;
                }
            }
            if chosen.is_empty() {
                continue;
            }
            if self.args.list {
                for (file, m) in &chosen {
                    println!("{}:{}: [sql] {}", slashed(file), m.line, m.description);
                }
                continue;
            }
            let t = &TARGETS[target];
            eprintln!(
                "mutants: {} SQL mutant(s) in {} (tests: {})",
                chosen.len(),
                t.path,
                t.tests
            );
            let baseline_log = logs.join(format!("baseline-{target}.log"));
            let _ = std::fs::remove_file(&baseline_log);
            let (built, build_time) = self.nextest(t, true, &baseline_log, None).await?;
            anyhow::ensure!(
                built == Ended::Exited(Some(0)),
                "the unmutated tree does not build; see {}",
                baseline_log.display()
            );
            let (tested, test_time) = self.nextest(t, false, &baseline_log, None).await?;
            anyhow::ensure!(
                tested == Ended::Exited(Some(0)),
                "the covering tests fail on the unmutated tree; see {}",
                baseline_log.display()
            );
            let timeout = self
                .args
                .timeout
                .unwrap_or(Duration::from_secs(60).max(test_time * 3));
            eprintln!(
                "mutants: baseline built in {:.0} s, tested in {:.0} s; test timeout {} s",
                build_time.as_secs_f64(),
                test_time.as_secs_f64(),
                timeout.as_secs()
            );
            for (n, (file, mutant)) in chosen.iter().enumerate() {
                let original = self.backup.hold(file)?.to_owned();
                let log = logs.join(format!(
                    "{}-{}-{n}.log",
                    file.file_stem().unwrap_or_default().to_string_lossy(),
                    mutant.line
                ));
                let _ = std::fs::remove_file(&log);
                std::fs::write(self.root.join(file), sql::apply(&original, mutant))?;
                let result = self.sql_one(t, &log, timeout).await;
                self.backup.restore(file)?;
                let (status, took) = result?;
                eprintln!(
                    "  {:<9} {}:{}: {}  ({:.0} s)",
                    status_label(status),
                    slashed(file),
                    mutant.line,
                    mutant.description,
                    took.as_secs_f64()
                );
                self.outcomes.push(Outcome {
                    kind: Kind::Sql,
                    target,
                    file: slashed(file),
                    line: mutant.line,
                    change: mutant.description.clone(),
                    status,
                    took,
                });
            }
        }
        Ok(())
    }

    /// Builds, then tests, the mutant now written into the tree.
    async fn sql_one(
        &mut self,
        target: &Target,
        log: &Path,
        timeout: Duration,
    ) -> anyhow::Result<(Status, Duration)> {
        let (built, build_time) = self.nextest(target, true, log, None).await?;
        if built != Ended::Exited(Some(0)) {
            return Ok((Status::Unviable, build_time));
        }
        let (tested, test_time) = self.nextest(target, false, log, Some(timeout)).await?;
        let status = match tested {
            Ended::Exited(Some(0)) => Status::Survived,
            Ended::TimedOut => Status::Timeout,
            Ended::Exited(_) => Status::Caught,
        };
        Ok((status, build_time + test_time))
    }

    /// `cargo nextest run` of the target's tests (`--no-run` when `build_only`), failing fast.
    async fn nextest(
        &mut self,
        target: &Target,
        build_only: bool,
        log: &Path,
        timeout: Option<Duration>,
    ) -> anyhow::Result<(Ended, Duration)> {
        let mut args: Vec<String> = vec![
            "nextest".into(),
            "run".into(),
            format!("--package={PACKAGE}"),
        ];
        args.extend(target.build.iter().map(|s| (*s).to_owned()));
        if build_only {
            args.push("--no-run".into());
        } else {
            args.extend([
                "--fail-fast".into(),
                "--no-tests=fail".into(),
                "-E".into(),
                target.tests.into(),
            ]);
        }
        process::run(
            self.signals,
            &cargo(),
            &args,
            self.root,
            Some(log),
            timeout,
            TEST_ENV,
        )
        .await
    }

    /// The Rust mutants: one cargo-mutants run per target over its files, in place.
    async fn rust(&mut self, plan: &BTreeMap<usize, Vec<PathBuf>>) -> anyhow::Result<()> {
        ensure_cargo_mutants()?;
        for (&target, files) in plan {
            let t = &TARGETS[target];
            let output = self.state.join(format!("rust-{target}"));
            std::fs::create_dir_all(&output)?;
            let _ = std::fs::remove_dir_all(output.join("mutants.out"));
            let mut args: Vec<String> = vec![
                "mutants".into(),
                "--in-place".into(),
                "--test-tool=nextest".into(),
                "--no-shuffle".into(),
                "--colors=never".into(),
                format!("--output={}", output.display()),
            ];
            for file in files {
                args.push(format!("--file={}", slashed(file)));
                // cargo-mutants restores after each mutant; this guard covers its being killed.
                self.backup.hold(file)?;
            }
            args.extend(cargo_mutants_test_args(t));
            if let Some((k, n)) = self.args.shard {
                args.push(format!("--shard={k}/{n}"));
            }
            if let Some(timeout) = self.args.timeout {
                args.push(format!("--timeout={}", timeout.as_secs()));
            }
            if self.args.list {
                args.push("--list".into());
                let log = output.join("list.txt");
                let _ = std::fs::remove_file(&log);
                let (ended, _) = process::run(
                    self.signals,
                    &cargo(),
                    &args,
                    self.root,
                    Some(&log),
                    None,
                    TEST_ENV,
                )
                .await?;
                let listing = std::fs::read_to_string(&log).unwrap_or_default();
                anyhow::ensure!(
                    ended == Ended::Exited(Some(0)),
                    "cargo mutants --list failed: {listing}"
                );
                for line in listing.lines() {
                    println!("{line}  [rust]");
                }
                continue;
            }
            eprintln!("mutants: cargo {} (tests: {})", args.join(" "), t.tests);
            let (ended, _) = process::run(
                self.signals,
                &cargo(),
                &args,
                self.root,
                None,
                None,
                TEST_ENV,
            )
            .await?;
            self.backup.restore_all()?;
            // 0: all caught; 2: some missed; 3: some timed out. Anything else is no result.
            anyhow::ensure!(
                matches!(ended, Ended::Exited(Some(0 | 2 | 3))),
                "cargo mutants ended with {ended:?}; see {}",
                output.join("mutants.out").display()
            );
            let json = std::fs::read_to_string(output.join("mutants.out/outcomes.json"))
                .context("reading cargo-mutants' outcomes.json")?;
            self.outcomes.extend(parse_outcomes(&json, target)?);
        }
        Ok(())
    }
}

/// What every test run gets: insta never writes or accepts snapshots while a mutant is in the
/// tree (as cargo-mutants does for its own runs).
const TEST_ENV: &[(&str, &str)] = &[("INSTA_UPDATE", "no"), ("INSTA_FORCE_PASS", "0")];

/// The cargo binary that runs us (`$CARGO` under `cargo xtask`).
fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

/// The cargo-mutants options that build only the target's test targets and run only its
/// tests, failing fast (the workspace's nextest profile does not).
fn cargo_mutants_test_args(target: &Target) -> Vec<String> {
    let mut args: Vec<String> = target
        .build
        .iter()
        .map(|b| format!("--cargo-arg={b}"))
        .collect();
    args.extend([
        "--cargo-test-arg=--fail-fast".to_owned(),
        "--cargo-test-arg=--no-tests=fail".to_owned(),
        "--cargo-test-arg=-E".to_owned(),
        format!("--cargo-test-arg={}", target.tests),
    ]);
    args
}

/// Installs cargo-mutants [`CARGO_MUTANTS_VERSION`] unless that version is installed.
fn ensure_cargo_mutants() -> anyhow::Result<()> {
    let installed = std::process::Command::new(cargo())
        .args(["mutants", "--version"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    if installed.as_deref() == Some(&format!("cargo-mutants {CARGO_MUTANTS_VERSION}")) {
        return Ok(());
    }
    eprintln!("mutants: installing cargo-mutants {CARGO_MUTANTS_VERSION}");
    let status = std::process::Command::new(cargo())
        .args([
            "install",
            "--locked",
            "cargo-mutants",
            "--version",
            CARGO_MUTANTS_VERSION,
        ])
        // Build it in cargo's temporary directory, not in the workspace's target.
        .env_remove("CARGO_TARGET_DIR")
        .status()
        .context("running cargo install")?;
    anyhow::ensure!(
        status.success(),
        "cargo install cargo-mutants {CARGO_MUTANTS_VERSION} failed"
    );
    Ok(())
}

/// The mutants of cargo-mutants' `outcomes.json` (the baseline skipped).
fn parse_outcomes(json: &str, target: usize) -> anyhow::Result<Vec<Outcome>> {
    let value: serde_json::Value = serde_json::from_str(json)?;
    let mut out = Vec::new();
    for outcome in value["outcomes"]
        .as_array()
        .context("outcomes.json has no outcomes")?
    {
        let Some(mutant) = outcome["scenario"].get("Mutant") else {
            continue;
        };
        let file = mutant["file"].as_str().unwrap_or_default().to_owned();
        let line = mutant["span"]["start"]["line"].as_u64().unwrap_or(0) as usize;
        let column = mutant["span"]["start"]["column"].as_u64().unwrap_or(0);
        let name = mutant["name"].as_str().unwrap_or_default();
        let change = name
            .strip_prefix(&format!("{file}:{line}:{column}: "))
            .unwrap_or(name)
            .to_owned();
        let status = match outcome["summary"].as_str().unwrap_or_default() {
            "CaughtMutant" => Status::Caught,
            "MissedMutant" => Status::Survived,
            "Unviable" => Status::Unviable,
            "Timeout" => Status::Timeout,
            other => bail!("cargo-mutants reported `{other}` for {name}"),
        };
        let took = outcome["phase_results"]
            .as_array()
            .map(|phases| {
                phases
                    .iter()
                    .filter_map(|p| p["duration"].as_f64())
                    .map(Duration::from_secs_f64)
                    .sum()
            })
            .unwrap_or_default();
        out.push(Outcome {
            kind: Kind::Rust,
            target,
            file,
            line,
            change,
            status,
            took,
        });
    }
    Ok(out)
}

/// Its word in the progress and survivor lists.
fn status_label(status: Status) -> &'static str {
    match status {
        Status::Caught => "caught",
        Status::Timeout => "timeout",
        Status::Unviable => "unviable",
        Status::Survived => "SURVIVED",
    }
}

/// Prints the per-target rates, the survivors and the closing line; exit 1 when a survivor is
/// not accepted.
fn report(outcomes: &[Outcome], accepted: &Accepted, elapsed: Duration) -> ExitCode {
    let mut survivors = Vec::new();
    let mut excused = Vec::new();
    for o in outcomes.iter().filter(|o| o.status == Status::Survived) {
        match accepted.find(&o.file, &o.change) {
            Some(entry) => excused.push((o, &entry.reason)),
            None => survivors.push(o),
        }
    }
    let mut groups: BTreeMap<(usize, Kind), Vec<&Outcome>> = BTreeMap::new();
    for o in outcomes {
        groups.entry((o.target, o.kind)).or_default().push(o);
    }
    println!(
        "target                                   kind  ran  caught  unviable  accepted  survived  rate  goal"
    );
    for ((target, kind), group) in &groups {
        let t = &TARGETS[*target];
        let count = |s: Status| group.iter().filter(|o| o.status == s).count();
        let caught = count(Status::Caught) + count(Status::Timeout);
        let unviable = count(Status::Unviable);
        let excused_here = group
            .iter()
            .filter(|o| o.status == Status::Survived && accepted.find(&o.file, &o.change).is_some())
            .count();
        let survived = count(Status::Survived) - excused_here;
        let viable = group.len() - unviable;
        let rate = if viable == 0 {
            100.0
        } else {
            100.0 * (caught + excused_here) as f64 / viable as f64
        };
        let goal = match kind {
            Kind::Rust => t.rust_goal,
            Kind::Sql => t.sql_goal,
        };
        println!(
            "{:<40} {:<4} {:>4} {:>7} {:>9} {:>9} {:>9} {:>4.0}% {:>4}%{}",
            t.path,
            kind.label(),
            group.len(),
            caught,
            unviable,
            excused_here,
            survived,
            rate,
            goal,
            if rate + 1e-9 < f64::from(goal) {
                "  below goal"
            } else {
                ""
            }
        );
    }
    if !excused.is_empty() {
        println!("\naccepted survivors ({}):", accepted::FILE);
        for (o, reason) in &excused {
            println!(
                "  {}:{}: [{}] {}\n      because {reason}",
                o.file,
                o.line,
                o.kind.label(),
                o.change
            );
        }
    }
    if !survivors.is_empty() {
        println!(
            "\nsurvivors (a test should fail, or the mutant is equivalent and goes into {}):",
            accepted::FILE
        );
        for o in &survivors {
            println!("  {}:{}: [{}] {}", o.file, o.line, o.kind.label(), o.change);
        }
    }
    let timed: Vec<Duration> = outcomes.iter().map(|o| o.took).collect();
    if !timed.is_empty() {
        let total: Duration = timed.iter().sum();
        println!(
            "\ntime: {:.0} s in all, {:.1} s a mutant on average (build and tests)",
            elapsed.as_secs_f64(),
            total.as_secs_f64() / timed.len() as f64
        );
    }
    let count = |s: Status| outcomes.iter().filter(|o| o.status == s).count();
    println!(
        "mutants: {} ran, {} caught, {} unviable, {} accepted, {} survived",
        outcomes.len(),
        count(Status::Caught) + count(Status::Timeout),
        count(Status::Unviable),
        excused.len(),
        survivors.len()
    );
    if survivors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_options() {
        let args = parse_args(&[
            "--kind",
            "sql",
            "--file=harness/src/platform/close.rs",
            "--shard",
            "1/4",
            "--timeout",
            "90",
            "--list",
        ])
        .unwrap();
        assert_eq!(
            args,
            MutantsArgs {
                shard: Some((1, 4)),
                file: Some(PathBuf::from("harness/src/platform/close.rs")),
                kinds: Kinds::Sql,
                list: true,
                timeout: Some(Duration::from_secs(90)),
            }
        );
        assert_eq!(parse_args(&[]).unwrap(), MutantsArgs::default());
        for bad in [
            &["--shard", "4/4"][..],
            &["--shard", "1"],
            &["--kind", "go"],
            &["--timeout", "0"],
            &["--file"],
            &["--frobnicate"],
        ] {
            assert!(parse_args(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn files_belong_to_the_first_matching_target() {
        let of = |p: &str| target_of(Path::new(p)).map(|t| TARGETS[t].path);
        assert_eq!(
            of("harness/src/platform/close.rs"),
            Some("harness/src/platform/close.rs")
        );
        assert_eq!(
            of("harness/src/platform/accounts.rs"),
            Some("harness/src/platform/")
        );
        assert_eq!(
            of("harness/src/billing/rules.rs"),
            Some("harness/src/billing/")
        );
        assert_eq!(of("harness/src/billing/tests.rs"), None);
        assert_eq!(of("harness/src/clock.rs"), None);
    }

    #[test]
    fn every_target_exists_in_the_workspace() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let planned = plan(root, None).unwrap();
        assert_eq!(planned.len(), TARGETS.len(), "each target has files");
        assert!(plan(root, Some(Path::new("harness/src/clock.rs"))).is_err());
    }

    #[test]
    fn shards_split_a_list_without_overlap() {
        let picked: Vec<Vec<usize>> = (0..3)
            .map(|k| (0..10).filter(|&i| in_shard(Some((k, 3)), i)).collect())
            .collect();
        assert_eq!(picked, [vec![0, 3, 6, 9], vec![1, 4, 7], vec![2, 5, 8]]);
        assert!((0..10).all(|i| in_shard(None, i)));
    }

    #[test]
    fn reads_cargo_mutants_outcomes() {
        let json = r#"{"outcomes": [
            {"scenario": "Baseline", "summary": "Success", "phase_results": []},
            {"scenario": {"Mutant": {"name": "harness/src/billing/rules.rs:42:9: replace < with <= in prorate",
              "file": "harness/src/billing/rules.rs", "span": {"start": {"line": 42, "column": 9}}}},
             "summary": "MissedMutant", "phase_results": [{"duration": 1.5}, {"duration": 2.0}]}
        ]}"#;
        let outcomes = parse_outcomes(json, 0).unwrap();
        assert_eq!(outcomes.len(), 1);
        assert_eq!(outcomes[0].change, "replace < with <= in prorate");
        assert_eq!(outcomes[0].line, 42);
        assert_eq!(outcomes[0].status, Status::Survived);
        assert_eq!(outcomes[0].took, Duration::from_secs_f64(3.5));
    }
}
