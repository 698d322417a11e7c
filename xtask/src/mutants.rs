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
mod proxy;
mod rewrite;
mod schema;
mod sql;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use accepted::Accepted;
use billing_harness::TestEnv;
use guard::Backup;
use process::{Ended, Interrupted, Signals};
use proxy::Proxy;
use rewrite::Rewrite;
use schema::Schema;

/// The cargo-mutants release the command installs and expects.
pub(crate) const CARGO_MUTANTS_VERSION: &str = "27.1.0";

/// The package whose code is mutated and whose tests run.
const PACKAGE: &str = "billing-harness";

/// The cargo profile every mutant builds in (the workspace's `Cargo.toml`): the test profile
/// without debug information, for a quicker incremental build and link.
const PROFILE: &str = "mutants";

/// Where the migrations declaring the tables (and so the column siblings) are.
const MIGRATIONS: &str = "harness/migrations";

/// The command's own files (backup, logs, cargo-mutants output), under the workspace root.
const STATE_DIR: &str = "target/xtask-mutants";

/// The workspace's twin under the state directory: a copy of its files (and, once, of the
/// `mutants` profile's build) where a second cargo-mutants side mutates in place.
const TWIN: &str = "twin";

/// Build the library's unit tests only.
const LIB: &[&str] = &["--lib"];
/// Build the integration-test binary only.
const IT: &[&str] = &["--test=it"];
/// Build both.
const LIB_AND_IT: &[&str] = &["--lib", "--test=it"];

/// The outbox's tests: the sync tests and property, the mocks' own, and the scenarios' snapshots;
/// then, for what they miss, the outbox's unit tests (the backoff's pinned waits, the reconciler's
/// comparison).
const SYNC_TESTS: &[Tests] = &[
    Tests {
        build: IT,
        filter: "test(/^(sync|sync_property|product_mocks|purge|scenarios|platform)::/)",
        // The outbox's own tests and the purge (which syncs deletions) catch most.
        first: &["test(/^sync::/)", "test(/^purge::/)"],
    },
    Tests {
        build: LIB,
        filter: "test(/^platform::sync::/)",
        first: &[],
    },
];

/// The code under mutation and the tests that cover it. A file belongs to the first target
/// whose path matches it, so specific files come before their directory. Moving a file is a
/// change of its line here.
pub(crate) const TARGETS: &[Target] = &[
    Target {
        path: "harness/src/billing/",
        // The rules' unit tests first (a 5 s build); the close and the scenarios, which store
        // what the rules compute, only for what they miss.
        tiers: &[
            Tests {
                build: LIB,
                filter: "test(/^billing::/)",
                first: &[],
            },
            Tests {
                build: IT,
                filter: "test(/^(platform|scenarios|rules|payment_rules)::/)",
                first: &[],
            },
        ],
        rust_goal: 100,
        sql_goal: 100,
    },
    Target {
        path: "harness/src/platform/close.rs",
        tiers: &[Tests {
            build: IT,
            filter: "test(/^(platform|scenarios|payments|rules|payment_rules|tenant_rules|concurrency)::/)",
            first: &[],
        }],
        rust_goal: 90,
        sql_goal: 100,
    },
    Target {
        path: "harness/src/platform/usage.rs",
        tiers: &[Tests {
            build: IT,
            filter: "test(/^(platform|scenarios|builders|rules|tenant_rules|concurrency)::/)",
            first: &[],
        }],
        rust_goal: 90,
        sql_goal: 100,
    },
    Target {
        path: "harness/src/platform/subscriptions.rs",
        tiers: &[Tests {
            build: IT,
            filter: "test(/^(platform|scenarios|payments|builders|rules|payment_rules|tenant_rules|concurrency)::/)",
            first: &[],
        }],
        rust_goal: 90,
        sql_goal: 100,
    },
    Target {
        path: "harness/src/platform/charge.rs",
        tiers: &[Tests {
            build: IT,
            filter: "test(/^(payments|payment_rules|tenant_rules|scenarios|concurrency)::/)",
            first: &[],
        }],
        rust_goal: 90,
        sql_goal: 100,
    },
    Target {
        path: "harness/src/platform/catalog.rs",
        // A plan is read back for a contract's base: the contract rules' tests read it.
        tiers: &[Tests {
            build: IT,
            filter: "test(/^(contracts|platform|scenarios|builders|rules|tenant_rules)::/)",
            first: &[],
        }],
        rust_goal: 90,
        sql_goal: 90,
    },
    Target {
        path: "harness/src/platform/contracts.rs",
        // The contract rules' own tests besides the platform's (the daily run ends terms).
        tiers: &[Tests {
            build: IT,
            filter: "test(/^(contracts|platform|scenarios|payments|builders|rules|payment_rules|tenant_rules|concurrency)::/)",
            first: &[],
        }],
        rust_goal: 90,
        sql_goal: 90,
    },
    Target {
        path: "harness/src/platform/accounts.rs",
        // Sign-ups, members and owners: what the builders make, purges remove and sync sends.
        tiers: &[Tests {
            build: IT,
            filter: "test(/^(accounts|platform|builders|purge|sync|scenarios|tenant_rules)::/)",
            first: &[],
        }],
        rust_goal: 90,
        sql_goal: 90,
    },
    Target {
        path: "harness/src/platform/sync.rs",
        tiers: SYNC_TESTS,
        rust_goal: 90,
        sql_goal: 90,
    },
    Target {
        path: "harness/src/platform/sync/",
        tiers: SYNC_TESTS,
        rust_goal: 90,
        sql_goal: 90,
    },
    Target {
        path: "harness/src/platform/invariants.rs",
        // Only these run the checker: its own tests, and the rule and stress tests reading it.
        tiers: &[Tests {
            build: IT,
            filter: "test(/^(invariants|tenant_rules|concurrency)::/)",
            first: &[],
        }],
        rust_goal: 90,
        sql_goal: 90,
    },
    Target {
        path: "harness/src/platform/jobs.rs",
        // The calendar's jobs as the clock runs them: what each run counts is checked by the
        // contract rules (a daily run that ends a term) and the sync tests (a sync run).
        tiers: &[Tests {
            build: IT,
            filter: "test(/^(platform|scenarios|contracts|sync|payments|rules|payment_rules|tenant_rules|concurrency)::/)",
            first: &[],
        }],
        rust_goal: 90,
        sql_goal: 90,
    },
    Target {
        path: "harness/src/platform/",
        tiers: &[Tests {
            build: IT,
            filter: "test(/^(platform|scenarios|payments|builders|rules|payment_rules|tenant_rules|concurrency)::/)",
            first: &[],
        }],
        rust_goal: 90,
        sql_goal: 90,
    },
    Target {
        path: "harness/src/payments/",
        tiers: &[Tests {
            build: LIB_AND_IT,
            filter: "test(/^(payments|payment_rules|tenant_rules|scenarios|concurrency)::/)",
            first: &[],
        }],
        rust_goal: 90,
        sql_goal: 90,
    },
];

/// The state folder's subfolder of one cargo-mutants run: tier `tier` of target `target` (its
/// `mutants.out`, its nextest profile and its listings).
fn run_folder(target: usize, tier: usize) -> String {
    format!("rust-{target}-{tier}")
}

/// Files under a target directory that are never mutated: test modules.
const NOT_MUTATED: &[&str] = &["tests.rs"];

/// A group of files under mutation and the tests that cover them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Target {
    /// A file, or a directory ending in `/` (its `.rs` files, recursively), relative to the
    /// workspace root.
    pub(crate) path: &'static str,
    /// The covering tests in the order to try them (the likeliest to catch a mutant soonest
    /// first): a mutant that survives one tier meets the next.
    pub(crate) tiers: &'static [Tests],
    /// Share of Rust mutants to catch, in percent (accepted survivors count as caught).
    pub(crate) rust_goal: u32,
    /// Share of SQL mutants to catch, in percent.
    pub(crate) sql_goal: u32,
}

/// Tests to run against a mutant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tests {
    /// The test targets of the package to build and run (`--lib`, `--test=it`).
    pub(crate) build: &'static [&'static str],
    /// The nextest filterset of the tests.
    pub(crate) filter: &'static str,
    /// Filtersets of the tests among them that run first, in this order (nextest's highest
    /// priorities), for the Rust mutants: they catch most, and a mutant stops at its first
    /// failing test. The others follow in nextest's order.
    pub(crate) first: &'static [&'static str],
}

/// Which kinds of mutant to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kinds {
    /// cargo-mutants only.
    Rust,
    /// The SQL mutator only.
    Sql,
    /// Both: the baselines first (they serve both kinds), then the two side by side.
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
    /// Run the SQL mutants that `mutants-accepted.toml` lists too (by default they are counted
    /// as accepted without a run).
    pub(crate) run_accepted: bool,
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

/// The usage line of the command.
pub(crate) const USAGE: &str = "mutants [--kind rust|sql|both] [--file PATH] [--shard K/N] [--list] [--timeout SECS] \
     [--run-accepted]";

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
            "--run-accepted" => args.run_accepted = true,
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
    /// cargo-mutants' name of the mutant (file, line, column and change), empty for SQL.
    name: String,
    /// How it ended.
    status: Status,
    /// Build and test time.
    took: Duration,
}

impl Outcome {
    /// The outcome `status` of the SQL mutant `mutant` of `file` in `target`, with no time.
    fn sql(target: usize, file: &Path, mutant: &sql::SqlMutant, status: Status) -> Outcome {
        Outcome {
            kind: Kind::Sql,
            target,
            file: slashed(file),
            line: mutant.line,
            change: mutant.description.clone(),
            name: String::new(),
            status,
            took: Duration::ZERO,
        }
    }
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
            accepted: &accepted,
            backup,
            signals: &mut signals,
            outcomes: Vec::new(),
            db_env: Vec::new(),
            server: None,
            proxy: None,
            baselines: BTreeMap::new(),
            caught_by: BTreeMap::new(),
            frozen: None,
        };
        // Read before any mutant is written: the Rust mutants change the files in place.
        let planned = if args.kinds.sql() {
            run.sql_plan(&plan)?
        } else {
            Vec::new()
        };
        if args.kinds.rust() {
            // Blocking, and before anything else runs on this thread (the proxy among them).
            ensure_cargo_mutants()?;
        }
        let (timeouts_tx, timeouts) = tokio::sync::watch::channel(BTreeMap::new());
        let queue = RefCell::new(plan.clone().into_iter().collect::<VecDeque<_>>());
        let mut rust = RustRun::start(
            &root,
            None,
            "backup-rust",
            &state,
            args,
            &accepted,
            timeouts.clone(),
        )?;
        let mut twin = None;
        if args.kinds.rust() && !args.list && plan.len() > 1 {
            // The targets with the most mutants first: the sides then end close together,
            // instead of one building a big target alone at the end.
            let counts = rust.counts(&plan).await?;
            largest_first(queue.borrow_mut().make_contiguous(), &counts);
        }
        if args.list {
            list_sql(&planned);
            if args.kinds.rust() {
                rust.run(&queue).await?;
            }
        } else {
            // One build of the unmutated tree, before any mutant: every baseline and every
            // run-time SQL mutant runs it.
            run.freeze().await?;
            // A second tree for a second cargo-mutants side: one build of a mutant keeps about
            // one core busy, so two sides use both. Made after the freeze, which built what it
            // copies.
            if args.kinds.rust() && plan.len() > 1 {
                let dir = state.join(TWIN);
                // Its backup first puts back what a killed run left mutated; then the sync.
                twin = Some(RustRun::start(
                    &dir,
                    Some(dir.join("target")),
                    "backup-twin",
                    &state,
                    args,
                    &accepted,
                    timeouts,
                )?);
                sync_twin(&root, &dir)?;
            }
            let mut needed: Vec<(usize, usize)> = planned
                .iter()
                .flat_map(|(t, _)| (0..TARGETS[*t].tiers.len()).map(move |tier| (*t, tier)))
                .collect();
            if args.kinds.rust() {
                needed.extend(
                    plan.keys()
                        .flat_map(|&t| (0..TARGETS[t].tiers.len()).map(move |tier| (t, tier))),
                );
            }
            needed.sort_unstable();
            needed.dedup();
            // All sides at once. The SQL side runs every baseline, handing each timeout to the
            // Rust sides as it ends, then the SQL mutants on the frozen binaries; one that needs
            // a build waits until the Rust sides, building theirs in place, are done.
            let sql_side = async {
                let timeouts = timeouts_tx;
                run.baselines_of(&needed).await?;
                timeouts.send_modify(|known| {
                    for key in needed {
                        known.insert(key, run.baselines[&key].timeout);
                    }
                });
                drop(timeouts);
                run.sql(planned, args.kinds.rust()).await
            };
            let rust_side = async {
                if args.kinds.rust() {
                    rust.run(&queue).await
                } else {
                    Ok(())
                }
            };
            let twin_side = async {
                match twin.as_mut() {
                    Some(twin) => twin.run(&queue).await,
                    None => Ok(()),
                }
            };
            // The first error stops the other sides (their children are stopped as they drop).
            let (deferred, (), ()) = tokio::try_join!(sql_side, rust_side, twin_side)?;
            run.sql(deferred, false).await?;
        }
        if let Some(twin) = twin {
            twin.backup.finish()?;
            rust.outcomes.extend(twin.outcomes);
        }
        rust.backup.finish()?;
        run.backup.finish()?;
        let mut outcomes = run.outcomes;
        outcomes.extend(rust.outcomes);
        anyhow::Ok(outcomes)
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

/// nextest's exit code when a test failed (`NextestExitCode::TEST_RUN_FAILED`).
const TEST_RUN_FAILED: i32 = 100;

/// How a test run of a mutant ended, as its status: a failed test catches it, anything else
/// but a pass (no test selected, tests that could not be listed or started) is an error, never
/// a catch.
///
/// # Errors
/// The run ended with another code than a pass or a failed test; `log` tells why.
fn tested_status(ended: Ended, log: &Path) -> anyhow::Result<Status> {
    match ended {
        Ended::Exited(Some(0)) => Ok(Status::Survived),
        Ended::Exited(Some(TEST_RUN_FAILED)) => Ok(Status::Caught),
        Ended::TimedOut => Ok(Status::Timeout),
        Ended::Exited(code) => {
            bail!(
                "a test run ended with {code:?} instead of a pass or a failed test; see {}",
                log.display()
            )
        }
    }
}

/// Every SQL literal of the library as the program sends it: its file, its range, its text.
fn all_literals(root: &Path) -> anyhow::Result<Vec<(PathBuf, std::ops::Range<usize>, String)>> {
    let mut files = Vec::new();
    collect_rs(&root.join("harness/src"), &mut files)?;
    let mut out = Vec::new();
    for path in files {
        let source = std::fs::read_to_string(&path)?;
        let file = path.strip_prefix(root)?.to_owned();
        for (range, text) in sql::sql_literals(&source)
            .into_iter()
            .zip(rewrite::literals_as_run(&source, None))
        {
            out.push((file.clone(), range, text));
        }
    }
    Ok(out)
}

/// `mutant`'s rewrite at run time, unless another literal of the library would match it too.
fn run_time_rewrite(
    source: &str,
    file: &Path,
    mutant: &sql::SqlMutant,
    literals: &[(PathBuf, std::ops::Range<usize>, String)],
) -> Option<Rewrite> {
    let own = rewrite::literal_of(source, mutant)?;
    let others: Vec<String> = literals
        .iter()
        .filter(|(f, r, _)| !(f == file && *r == own))
        .map(|(_, _, text)| text.clone())
        .collect();
    rewrite::rewrite(source, own, mutant, &others)
}

/// `url` (`postgres://USER[:PASSWORD]@HOST:PORT/DATABASE[?...]`) pointed at the proxy on
/// 127.0.0.1:`port` and its `postgres` database, without TLS.
fn proxied_url(url: &str, port: u16) -> anyhow::Result<String> {
    let (scheme, rest) = url
        .split_once("://")
        .context("a database URL without a scheme")?;
    let (user, rest) = rest
        .rsplit_once('@')
        .context("a database URL without a user")?;
    let (_, path) = rest.split_once('/').unwrap_or((rest, ""));
    let database = path
        .split('?')
        .next()
        .filter(|d| !d.is_empty() && !d.starts_with("bh_"));
    Ok(format!(
        "{scheme}://{user}@127.0.0.1:{port}/{}?sslmode=disable",
        database.unwrap_or("postgres")
    ))
}

/// Brings the twin at `twin` up to the workspace at `root`: every file but `target/` and
/// `.git/` written where its text differs (an unchanged file keeps its time, so cargo rebuilds
/// only what changed), and, the first time, the `mutants` profile's build copied in, so only
/// the workspace's own crates build there from scratch.
fn sync_twin(root: &Path, twin: &Path) -> anyhow::Result<()> {
    fn copy_tree(from: &Path, to: &Path, top: bool) -> anyhow::Result<()> {
        std::fs::create_dir_all(to)?;
        for entry in std::fs::read_dir(from)? {
            let entry = entry?;
            let name = entry.file_name();
            if top && (name == "target" || name == ".git") {
                continue;
            }
            let (from, to) = (entry.path(), to.join(&name));
            if entry.file_type()?.is_dir() {
                copy_tree(&from, &to, false)?;
            } else if entry.file_type()?.is_file() {
                let text = std::fs::read(&from)?;
                if std::fs::read(&to).ok().as_deref() != Some(text.as_slice()) {
                    std::fs::write(&to, text)
                        .with_context(|| format!("writing {}", to.display()))?;
                }
            }
        }
        Ok(())
    }
    copy_tree(root, twin, true)?;
    let build = twin.join("target").join(PROFILE);
    if !build.exists() && root.join("target").join(PROFILE).exists() {
        std::fs::create_dir_all(twin.join("target"))?;
        let status = std::process::Command::new("cp")
            .arg("-a")
            .arg(root.join("target").join(PROFILE))
            .arg(twin.join("target"))
            .status()
            .context("copying the mutants build into the twin")?;
        anyhow::ensure!(
            status.success(),
            "copying the mutants build into the twin failed"
        );
    }
    Ok(())
}

/// Whether mutant number `index` of a stable list is in the shard.
fn in_shard(shard: Option<(u32, u32)>, index: usize) -> bool {
    shard.is_none_or(|(k, n)| index % n as usize == k as usize)
}

/// A SQL mutant chosen to run.
struct Chosen {
    /// Its file, relative to the workspace root.
    file: PathBuf,
    /// The change.
    mutant: sql::SqlMutant,
    /// The change as a rewrite of the queries sent, when it can be told as one.
    rewrite: Option<Rewrite>,
}

/// The SQL mutants of one target (index into [`TARGETS`]).
type SqlPlan = (usize, Vec<Chosen>);

/// Prints the planned SQL mutants.
fn list_sql(planned: &[SqlPlan]) {
    for (_, chosen) in planned {
        for c in chosen {
            let how = if c.rewrite.is_some() { "" } else { ", built" };
            println!(
                "{}:{}: [sql{how}] {}",
                slashed(&c.file),
                c.mutant.line,
                c.mutant.description
            );
        }
    }
}

/// The state of one run of the command.
struct Run<'a> {
    /// The workspace root.
    root: &'a Path,
    /// `target/xtask-mutants`.
    state: &'a Path,
    /// The options.
    args: &'a MutantsArgs,
    /// The accepted survivors.
    accepted: &'a Accepted,
    /// The original text of every file mutated so far.
    backup: Backup,
    /// Ctrl-C and SIGTERM.
    signals: &'a mut Signals,
    /// What ran.
    outcomes: Vec<Outcome>,
    /// What test runs add to their environment to reach the database (through the proxy).
    db_env: Vec<(String, String)>,
    /// The database server the tests use, kept up while the command runs, once started.
    server: Option<TestEnv>,
    /// The proxy in front of it, once started.
    proxy: Option<Arc<Proxy>>,
    /// Per target and tier: the test timeout for mutants, the queries the unmutated tests sent
    /// and the tier's tests, from one baseline run of the tests of every tier, shared by both
    /// kinds of mutant.
    baselines: BTreeMap<(usize, usize), Baseline>,
    /// Per test: how many SQL mutants of the whole run it caught first.
    caught_by: BTreeMap<String, usize>,
    /// The unmutated test binaries the run-time SQL mutants run, once [frozen](Run::freeze).
    frozen: Option<PathBuf>,
}

/// What the run of the unmutated tree tells of a tier.
struct Baseline {
    /// The test timeout for a mutant.
    timeout: Duration,
    /// Every query text the tests of the baseline sent (those of every tier that ran with it).
    queries: Arc<BTreeSet<String>>,
    /// The names of the tier's tests.
    tests: Arc<BTreeSet<String>>,
}

impl Run<'_> {
    /// The SQL mutants of the planned files in the shard, per target, each with its rewrite at
    /// run time when it can be told as one. Reads the files as they are now.
    fn sql_plan(&self, plan: &BTreeMap<usize, Vec<PathBuf>>) -> anyhow::Result<Vec<SqlPlan>> {
        let schema = Schema::from_migrations(&self.root.join(MIGRATIONS))?;
        let literals = all_literals(self.root)?;
        let mut index = 0;
        let mut planned = Vec::new();
        for (&target, files) in plan {
            let mut chosen = Vec::new();
            for file in files {
                let source = std::fs::read_to_string(self.root.join(file))?;
                for mutant in sql::mutants(&source, &schema) {
                    if in_shard(self.args.shard, index) {
                        let rewrite = run_time_rewrite(&source, file, &mutant, &literals);
                        chosen.push(Chosen {
                            file: file.clone(),
                            mutant,
                            rewrite,
                        });
                    }
                    index += 1;
                }
            }
            if !chosen.is_empty() {
                planned.push((target, chosen));
            }
        }
        Ok(planned)
    }

    /// Runs the planned SQL mutants, each alone. The tests reach Postgres through a [`Proxy`]:
    /// a mutant whose literal can be told as a rewrite of the queries the baseline sent runs
    /// without a rebuild, on the [frozen](Run::freeze) test binaries; any other is written into
    /// the file and built, unless `defer_built`, which returns those instead (the tree is not
    /// ours while the Rust mutants run).
    async fn sql(
        &mut self,
        planned: Vec<SqlPlan>,
        defer_built: bool,
    ) -> anyhow::Result<Vec<SqlPlan>> {
        let logs = self.state.join("sql-logs");
        std::fs::create_dir_all(&logs)?;
        let mut deferred = Vec::new();
        for (target, chosen) in planned {
            let t = &TARGETS[target];
            eprintln!(
                "mutants: {} SQL mutant(s) in {} (tests: {}), {} rewritten at run time",
                chosen.len(),
                t.path,
                tiers_text(t),
                chosen.iter().filter(|c| c.rewrite.is_some()).count()
            );
            let proxy = self.proxy().await?;
            // The tests that caught this target's latest mutants, newest first, per tier: a
            // mutant meets them before its whole tier, as neighbouring mutants of one query
            // mostly fail the same test.
            let mut catchers: Vec<Vec<String>> = vec![Vec::new(); t.tiers.len()];
            let mut later = Vec::new();
            for (n, c) in chosen.into_iter().enumerate() {
                let Chosen {
                    file,
                    mutant,
                    rewrite,
                } = &c;
                // An accepted SQL survivor is known to survive (the run-time rewrite makes the
                // same text every time): it is counted, not run, unless asked for.
                if !self.args.run_accepted
                    && self
                        .accepted
                        .find(&slashed(file), &mutant.description)
                        .is_some()
                {
                    let outcome = Outcome::sql(target, file, mutant, Status::Survived);
                    print_not_run(&outcome);
                    self.outcomes.push(outcome);
                    continue;
                }
                let log = logs.join(format!(
                    "{}-{}-{n}.log",
                    file.file_stem().unwrap_or_default().to_string_lossy(),
                    mutant.line
                ));
                let _ = std::fs::remove_file(&log);
                let mut status = Status::Survived;
                let mut took = Duration::ZERO;
                let mut built = false;
                let mut rewrote = 0;
                let mut waits = false;
                // Whether the baseline's tests sent the literal's query: one answer for every
                // tier, as one baseline run recorded the queries of them all.
                self.baseline(target, 0).await?;
                let reached = rewrite.as_ref().filter(|r| {
                    self.baselines[&(target, 0)]
                        .queries
                        .iter()
                        .any(|q| r.matches(q))
                });
                for (tier, tests) in t.tiers.iter().enumerate() {
                    let timeout = self.baseline(target, tier).await?;
                    let result = if let Some(rewrite) = reached {
                        proxy.set(Some(rewrite.clone()));
                        let result = self
                            .catchers_then_tier((target, tier), &mut catchers[tier], &log, timeout)
                            .await;
                        rewrote += proxy.hits();
                        proxy.set(None);
                        result
                    } else if defer_built {
                        waits = true;
                        break;
                    } else {
                        built = true;
                        let original = self.backup.hold(file)?.to_owned();
                        std::fs::write(self.root.join(file), sql::apply(&original, mutant))?;
                        let result = self.sql_one(tests, &log, timeout).await;
                        self.backup.restore(file)?;
                        result
                    };
                    let (tier_status, tier_took) = result?;
                    took += tier_took;
                    status = tier_status;
                    if status != Status::Survived {
                        break;
                    }
                }
                if waits {
                    eprintln!(
                        "  {:<9} {}:{}: {}  (needs a build: after the Rust mutants)",
                        "waiting",
                        slashed(file),
                        mutant.line,
                        mutant.description,
                    );
                    later.push(c);
                    continue;
                }
                eprintln!(
                    "  {:<9} {}:{}: {}  ({:.0} s{})",
                    status_label(status),
                    slashed(file),
                    mutant.line,
                    mutant.description,
                    took.as_secs_f64(),
                    if built {
                        ", built".to_owned()
                    } else {
                        format!(", {rewrote} queries rewritten")
                    }
                );
                self.outcomes.push(Outcome {
                    took,
                    ..Outcome::sql(target, file, mutant, status)
                });
            }
            if !later.is_empty() {
                deferred.push((target, later));
            }
        }
        Ok(deferred)
    }

    /// Tests the mutant now in effect with `catchers` (the tests that caught this target's
    /// latest mutants, newest first), then with the run's most frequent catchers among the
    /// tier's tests, before the whole of `tests` (tier `tier` of `target`), and puts the test
    /// that catches it first in `catchers`. Most mutants fail one of the first few tests; the
    /// whole tier runs only for those that none of them catches.
    async fn catchers_then_tier(
        &mut self,
        (target, tier): (usize, usize),
        catchers: &mut Vec<String>,
        log: &Path,
        timeout: Duration,
    ) -> anyhow::Result<(Status, Duration)> {
        let tests = &TARGETS[target].tiers[tier];
        let mut took = Duration::ZERO;
        let mut filters = Vec::new();
        if !catchers.is_empty() {
            filters.push(catchers_filter(tests.filter, catchers));
        }
        let frequent = frequent_catchers(
            &self.caught_by,
            &self.baselines[&(target, tier)].tests,
            catchers,
        );
        if !frequent.is_empty() {
            filters.push(catchers_filter(tests.filter, &frequent));
        }
        filters.push(tests.filter.to_owned());
        let mut status = Status::Survived;
        for filter in filters {
            let start = std::fs::metadata(log).map_or(0, |m| m.len());
            let (ended, run_took) = self
                .nextest_of(
                    &[],
                    &selection(tests, &filter),
                    Build::Frozen,
                    log,
                    Some(timeout),
                )
                .await?;
            took += run_took;
            status = tested_status(ended, log)?;
            if status != Status::Survived {
                if let Some(name) = first_failure(log, start) {
                    *self.caught_by.entry(name.clone()).or_default() += 1;
                    catchers.retain(|c| *c != name);
                    catchers.insert(0, name);
                    catchers.truncate(CATCHERS);
                }
                break;
            }
        }
        Ok((status, took))
    }

    /// The proxy the tests reach the database through, started with its server when first
    /// needed (the server the environment selects, kept up by holding a database in it); from
    /// then on every test run of the command reaches the server through it, as the `url`
    /// backend.
    async fn proxy(&mut self) -> anyhow::Result<Arc<Proxy>> {
        if let Some(proxy) = &self.proxy {
            return Ok(Arc::clone(proxy));
        }
        let server = TestEnv::new()
            .await
            .context("starting a database server for the mutants' tests")?;
        let proxy = Arc::new(Proxy::start(format!("{}:{}", server.host(), server.port())).await?);
        // An existing server's URL carries its password; a throwaway server's prints it.
        let given = match server.backend() {
            billing_harness::env::Backend::Url => {
                billing_harness::env::Config::from_env()?.database_url
            }
            _ => None,
        };
        let base = given.unwrap_or_else(|| server.url());
        let url = proxied_url(&base, proxy.port())?;
        self.db_env = vec![
            ("HARNESS_POSTGRES".to_owned(), "url".to_owned()),
            ("HARNESS_DATABASE_URL".to_owned(), url),
        ];
        self.server = Some(server);
        self.proxy = Some(Arc::clone(&proxy));
        Ok(proxy)
    }

    /// Archives the unmutated test binaries (nextest's reuse of a build) and extracts them under
    /// the state directory: from then on a run-time SQL mutant runs them without cargo, so
    /// neither a build nor a Rust mutant written into the tree meanwhile changes what it tests.
    async fn freeze(&mut self) -> anyhow::Result<()> {
        let dir = self.state.join("unmutated");
        let archive = self.state.join("unmutated.tar.zst");
        let logs = self.state.join("baselines");
        std::fs::create_dir_all(&logs)?;
        let log = logs.join("freeze.log");
        let _ = std::fs::remove_file(&log);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let mut archive_args: Vec<String> = vec![
            "nextest".into(),
            "archive".into(),
            format!("--package={PACKAGE}"),
            format!("--cargo-profile={PROFILE}"),
        ];
        archive_args.extend(LIB_AND_IT.iter().map(|s| (*s).to_owned()));
        archive_args.push(format!("--archive-file={}", archive.display()));
        let extract_args: Vec<String> = vec![
            "nextest".into(),
            "list".into(),
            format!("--archive-file={}", archive.display()),
            format!("--extract-to={}", dir.display()),
            "--extract-overwrite".into(),
            format!("--workspace-remap={}", self.root.display()),
            "-E".into(),
            "none()".into(),
        ];
        for args in [archive_args, extract_args] {
            let ended = self.cargo_logged(&args, &log, &[]).await?;
            anyhow::ensure!(
                ended == Ended::Exited(Some(0)),
                "freezing the unmutated test binaries failed; see {}",
                log.display()
            );
        }
        self.frozen = Some(dir);
        Ok(())
    }

    /// The test timeout for mutants of tier `tier` of `target`, from the tier's [`Baseline`],
    /// run first if it has not run yet.
    async fn baseline(&mut self, target: usize, tier: usize) -> anyhow::Result<Duration> {
        self.baselines_of(&[(target, tier)]).await?;
        Ok(self.baselines[&(target, tier)].timeout)
    }

    /// Runs the tests of every tier in `tiers` (target and tier) that has no [`Baseline`] yet,
    /// all at once on the [frozen](Run::freeze) unmutated binaries: they must pass. The run
    /// records the queries the tests send; then each distinct tier's tests are listed, and
    /// their times in the run set the tier's test timeout for mutants (`--timeout`, or three
    /// times the [tier's time](tier_time), at least 60 s).
    /// One run of the union costs far less than one per tier: the slowest tests (the
    /// scenarios, the day-by-day comparison) are in nearly every tier.
    async fn baselines_of(&mut self, tiers: &[(usize, usize)]) -> anyhow::Result<()> {
        let missing: Vec<(usize, usize)> = tiers
            .iter()
            .filter(|key| !self.baselines.contains_key(key))
            .copied()
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let mut distinct: Vec<Tests> = Vec::new();
        for &(target, tier) in &missing {
            let tests = TARGETS[target].tiers[tier];
            if !distinct.contains(&tests) {
                distinct.push(tests);
            }
        }
        let union = distinct
            .iter()
            .map(|tests| format!("({})", selection(tests, tests.filter)))
            .collect::<Vec<_>>()
            .join(" | ");
        let logs = self.state.join("baselines");
        std::fs::create_dir_all(&logs)?;
        let log = logs.join(format!("baseline-{}.log", self.baselines.len()));
        let _ = std::fs::remove_file(&log);
        let proxy = self.proxy().await?;
        self.backup.restore_all()?;
        proxy.record();
        let ran = self
            .nextest_of(&[], &union, Build::Frozen, &log, None)
            .await;
        let queries = Arc::new(proxy.recorded());
        let (tested, test_time) = ran?;
        anyhow::ensure!(
            tested == Ended::Exited(Some(0)),
            "the covering tests fail on the unmutated tree; see {}",
            log.display()
        );
        let times = passed_tests(&std::fs::read_to_string(&log)?);
        eprintln!(
            "mutants: baseline of {} tier(s), {} tests, tested in {:.0} s",
            distinct.len(),
            times.len(),
            test_time.as_secs_f64(),
        );
        let mut listed: Vec<(Tests, Duration, Arc<BTreeSet<String>>)> = Vec::new();
        for tests in distinct {
            let names = self.list(&selection(&tests, tests.filter)).await?;
            let timeout = self
                .args
                .timeout
                .unwrap_or_else(|| Duration::from_secs(60).max(tier_time(&times, &names) * 3));
            eprintln!(
                "mutants: {} test(s) of `{}`; test timeout {} s",
                names.len(),
                tests.filter,
                timeout.as_secs()
            );
            listed.push((tests, timeout, Arc::new(names)));
        }
        for (target, tier) in missing {
            let tests = TARGETS[target].tiers[tier];
            if let Some((_, timeout, names)) = listed.iter().find(|(t, ..)| *t == tests) {
                self.baselines.insert(
                    (target, tier),
                    Baseline {
                        timeout: *timeout,
                        queries: Arc::clone(&queries),
                        tests: Arc::clone(names),
                    },
                );
            }
        }
        Ok(())
    }

    /// The names of the tests of the [frozen](Run::freeze) binaries that `selection` selects.
    async fn list(&mut self, selection: &str) -> anyhow::Result<BTreeSet<String>> {
        let log = self.state.join("baselines/list.log");
        let _ = std::fs::remove_file(&log);
        let mut args: Vec<String> = vec!["nextest".into(), "list".into()];
        args.extend(self.frozen_args()?);
        args.extend([
            "--message-format=oneline".to_owned(),
            "-E".to_owned(),
            selection.to_owned(),
        ]);
        let ended = self.cargo_logged(&args, &log, TEST_ENV).await?;
        let output = std::fs::read_to_string(&log).unwrap_or_default();
        anyhow::ensure!(
            ended == Ended::Exited(Some(0)),
            "listing the tests of `{selection}` failed: {output}"
        );
        Ok(listed_tests(&output))
    }

    /// Runs cargo with `args` in the workspace, its output in `log`, with no timeout.
    async fn cargo_logged(
        &mut self,
        args: &[String],
        log: &Path,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Ended> {
        let (ended, _) = process::run(
            self.signals,
            &cargo(),
            args,
            self.root,
            Some(log),
            None,
            env,
        )
        .await?;
        Ok(ended)
    }

    /// The options that make nextest run the [frozen](Run::freeze) binaries without cargo.
    fn frozen_args(&self) -> anyhow::Result<Vec<String>> {
        let dir = self
            .frozen
            .as_ref()
            .context("the unmutated test binaries are not frozen yet")?;
        let metadata = dir.join("target/nextest");
        Ok(vec![
            format!(
                "--binaries-metadata={}",
                metadata.join("binaries-metadata.json").display()
            ),
            format!(
                "--cargo-metadata={}",
                metadata.join("cargo-metadata.json").display()
            ),
            format!("--target-dir-remap={}", dir.join("target").display()),
            format!("--workspace-remap={}", self.root.display()),
        ])
    }

    /// Builds, then tests, the mutant now written into the tree.
    async fn sql_one(
        &mut self,
        tests: &Tests,
        log: &Path,
        timeout: Duration,
    ) -> anyhow::Result<(Status, Duration)> {
        let (built, build_time) = self.nextest(tests, true, log, None).await?;
        if built != Ended::Exited(Some(0)) {
            return Ok((Status::Unviable, build_time));
        }
        let (tested, test_time) = self.nextest(tests, false, log, Some(timeout)).await?;
        Ok((tested_status(tested, log)?, build_time + test_time))
    }

    /// `cargo nextest run` of `tests` (`--no-run` when `build_only`), stopping at the first
    /// failure.
    async fn nextest(
        &mut self,
        tests: &Tests,
        build_only: bool,
        log: &Path,
        timeout: Option<Duration>,
    ) -> anyhow::Result<(Ended, Duration)> {
        let build = if build_only { Build::Only } else { Build::Tree };
        self.nextest_of(
            tests.build,
            &selection(tests, tests.filter),
            build,
            log,
            timeout,
        )
        .await
    }

    /// [`Run::nextest`] of the tests that `selection` selects, the test targets `targets`
    /// built as `build` says (none to build for the frozen binaries).
    async fn nextest_of(
        &mut self,
        targets: &[&str],
        selection: &str,
        build: Build,
        log: &Path,
        timeout: Option<Duration>,
    ) -> anyhow::Result<(Ended, Duration)> {
        let mut args: Vec<String> = vec!["nextest".into(), "run".into()];
        if build == Build::Frozen {
            args.extend(self.frozen_args()?);
        } else {
            args.push(format!("--package={PACKAGE}"));
            args.push(format!("--cargo-profile={PROFILE}"));
            args.extend(targets.iter().map(|s| (*s).to_owned()));
        }
        if build == Build::Only {
            args.push("--no-run".into());
        } else {
            args.extend([
                STOP_AT_FIRST_FAILURE.into(),
                "--no-tests=fail".into(),
                "-E".into(),
                selection.to_owned(),
            ]);
        }
        let env: Vec<(&str, &str)> = TEST_ENV
            .iter()
            .copied()
            .chain(self.db_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .collect();
        process::run(
            self.signals,
            &cargo(),
            &args,
            self.root,
            Some(log),
            timeout,
            &env,
        )
        .await
    }
}

/// The Rust mutants' side of a run: cargo-mutants in place, with a backup of its own so that
/// it can run beside the SQL mutants.
struct RustRun<'a> {
    /// The tree it mutates: the workspace, or its [twin](sync_twin).
    root: PathBuf,
    /// The cargo target directory of a twin (else cargo's own).
    target_dir: Option<PathBuf>,
    /// `target/xtask-mutants`.
    state: &'a Path,
    /// The options.
    args: &'a MutantsArgs,
    /// The accepted survivors.
    accepted: &'a Accepted,
    /// The original text of the files cargo-mutants mutates.
    backup: Backup,
    /// Ctrl-C and SIGTERM.
    signals: Signals,
    /// The test timeout per target and tier, from each baseline as it ends.
    timeouts: tokio::sync::watch::Receiver<BTreeMap<(usize, usize), Duration>>,
    /// What ran.
    outcomes: Vec<Outcome>,
}

impl<'a> RustRun<'a> {
    /// A side mutating `root` (the workspace, or a twin with its own `target_dir`), its backup
    /// in `backup`: restores what an earlier run left there and listens for signals.
    fn start(
        root: &Path,
        target_dir: Option<PathBuf>,
        backup: &str,
        state: &'a Path,
        args: &'a MutantsArgs,
        accepted: &'a Accepted,
        timeouts: tokio::sync::watch::Receiver<BTreeMap<(usize, usize), Duration>>,
    ) -> anyhow::Result<RustRun<'a>> {
        let (backup, restored) = Backup::start(root, &state.join(backup))?;
        for file in &restored {
            eprintln!(
                "mutants: restored {} from a previous run's backup",
                file.display()
            );
        }
        Ok(RustRun {
            root: root.to_owned(),
            target_dir,
            state,
            args,
            accepted,
            backup,
            signals: Signals::listen()?,
            timeouts,
            outcomes: Vec::new(),
        })
    }

    /// The Rust mutants of the targets in `queue`, taken one at a time (another side may take
    /// from the same queue).
    async fn run(
        &mut self,
        queue: &RefCell<VecDeque<(usize, Vec<PathBuf>)>>,
    ) -> anyhow::Result<()> {
        loop {
            let next = queue.borrow_mut().pop_front();
            let Some((target, files)) = next else {
                return Ok(());
            };
            self.run_target(target, &files).await?;
        }
    }

    /// The Rust mutants of `target`: one cargo-mutants run in place over its files with the
    /// first tier of tests, then one per further tier over the survivors of the one before.
    async fn run_target(&mut self, target: usize, files: &[PathBuf]) -> anyhow::Result<()> {
        {
            let t = &TARGETS[target];
            let mut common: Vec<String> = vec![
                "mutants".into(),
                "--in-place".into(),
                "--test-tool=nextest".into(),
                format!("--profile={PROFILE}"),
                "--no-shuffle".into(),
                "--colors=never".into(),
            ];
            for file in files {
                common.push(format!("--file={}", slashed(file)));
                // cargo-mutants restores after each mutant; this guard covers its being killed.
                self.backup.hold(file)?;
            }
            let mut first = common.clone();
            first.extend(self.test_args(target, 0)?);
            if let Some((k, n)) = self.args.shard {
                first.push(format!("--shard={k}/{n}"));
            }
            if self.args.list {
                return self.rust_list(target, first).await;
            }
            // An accepted survivor is known to survive: counted, not run, unless asked for.
            if !self.args.run_accepted {
                let patterns = accepted_patterns(self.accepted, files);
                if !patterns.is_empty() {
                    let mut list = first.clone();
                    list.extend(patterns.iter().map(|p| format!("--re={p}")));
                    list.push("--json".into());
                    let listing = self
                        .cargo_mutants_list(&run_folder(target, 0), list)
                        .await?;
                    for outcome in parse_listed(&listing, target)? {
                        print_not_run(&outcome);
                        self.outcomes.push(outcome);
                    }
                    first.extend(patterns.iter().map(|p| format!("--exclude-re={p}")));
                }
            }
            // The tier's baseline (shared with the SQL mutants) stands for cargo-mutants' own.
            first.extend(self.skip_baseline(target, 0).await?);
            let mut outcomes = self.cargo_mutants(target, 0, first).await?;
            for tier in 1..t.tiers.len() {
                let survivors: Vec<String> = outcomes
                    .iter()
                    .filter(|o| o.status == Status::Survived)
                    .map(|o| o.name.clone())
                    .collect();
                if survivors.is_empty() {
                    break;
                }
                let mut args = common.clone();
                args.extend(self.test_args(target, tier)?);
                args.extend(self.skip_baseline(target, tier).await?);
                // The survivors only, by their exact names (the shard is already applied).
                args.extend(
                    survivors
                        .iter()
                        .map(|name| format!("--re=^{}$", regex_escape(name))),
                );
                for again in self.cargo_mutants(target, tier, args).await? {
                    if let Some(o) = outcomes.iter_mut().find(|o| o.name == again.name) {
                        o.status = again.status;
                        o.took += again.took;
                    }
                }
            }
            self.outcomes.extend(outcomes);
        }
        Ok(())
    }

    /// The cargo-mutants options that skip its baseline and set the timeout from ours, once
    /// the baseline (of every tier of every planned target) has run.
    ///
    /// # Errors
    /// The baseline will never come: the SQL side stopped.
    async fn skip_baseline(&mut self, target: usize, tier: usize) -> anyhow::Result<Vec<String>> {
        let timeout = self
            .timeouts
            .wait_for(|known| known.contains_key(&(target, tier)))
            .await
            .map_err(|_| anyhow::anyhow!("the baseline of {} did not run", TARGETS[target].path))?
            [&(target, tier)];
        Ok(vec![
            "--baseline=skip".to_owned(),
            format!("--timeout={}", timeout.as_secs()),
        ])
    }

    /// The cargo-mutants options that run the tests of tier `tier` of `target`
    /// ([`cargo_mutants_test_args`]), and, when the tier names tests to run
    /// [`first`](Tests::first), a nextest profile that gives them priority.
    fn test_args(&self, target: usize, tier: usize) -> anyhow::Result<Vec<String>> {
        let tests = &TARGETS[target].tiers[tier];
        let mut args = cargo_mutants_test_args(tests);
        if !tests.first.is_empty() {
            let output = self.state.join(run_folder(target, tier));
            std::fs::create_dir_all(&output)?;
            let config = output.join("nextest.toml");
            std::fs::write(&config, first_profile(tests.first))?;
            args.extend([
                format!(
                    "--cargo-test-arg=--tool-config-file=xtask:{}",
                    config.display()
                ),
                format!("--cargo-test-arg=--profile={FIRST_PROFILE}"),
            ]);
        }
        Ok(args)
    }

    /// Runs cargo-mutants with `args` for tier `tier` of `target` and reads its outcomes.
    async fn cargo_mutants(
        &mut self,
        target: usize,
        tier: usize,
        mut args: Vec<String>,
    ) -> anyhow::Result<Vec<Outcome>> {
        let output = self.state.join(run_folder(target, tier));
        std::fs::create_dir_all(&output)?;
        let _ = std::fs::remove_dir_all(output.join("mutants.out"));
        args.push(format!("--output={}", output.display()));
        let side = if self.target_dir.is_some() {
            "twin"
        } else {
            "tree"
        };
        eprintln!("mutants: [{side}] cargo {}", args.join(" "));
        let env = cargo_mutants_env(self.target_dir.as_deref());
        let (ended, _) = process::run(
            &mut self.signals,
            &cargo(),
            &args,
            &self.root,
            None,
            None,
            &env,
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
        parse_outcomes(&json, target)
    }

    /// Prints what cargo-mutants would run for `target`.
    async fn rust_list(&mut self, target: usize, args: Vec<String>) -> anyhow::Result<()> {
        let listing = self
            .cargo_mutants_list(&run_folder(target, 0), args)
            .await?;
        for line in listing.lines() {
            println!("{line}  [rust]");
        }
        Ok(())
    }

    /// How many Rust mutants each target of `plan` has, from one listing of all their files.
    async fn counts(
        &mut self,
        plan: &BTreeMap<usize, Vec<PathBuf>>,
    ) -> anyhow::Result<BTreeMap<usize, usize>> {
        let mut args = vec!["mutants".to_owned(), "--json".to_owned()];
        args.extend(
            plan.values()
                .flatten()
                .map(|file| format!("--file={}", slashed(file))),
        );
        let listing = self.cargo_mutants_list("rust-all", args).await?;
        counts_by_target(&listing)
    }

    /// What `cargo mutants --list` with `args` prints, kept in the state folder's `folder`.
    async fn cargo_mutants_list(
        &mut self,
        folder: &str,
        mut args: Vec<String>,
    ) -> anyhow::Result<String> {
        args.push("--list".into());
        let output = self.state.join(folder);
        std::fs::create_dir_all(&output)?;
        let log = output.join("list.txt");
        let _ = std::fs::remove_file(&log);
        let env = cargo_mutants_env(self.target_dir.as_deref());
        let (ended, _) = process::run(
            &mut self.signals,
            &cargo(),
            &args,
            &self.root,
            Some(&log),
            None,
            &env,
        )
        .await?;
        let listing = std::fs::read_to_string(&log).unwrap_or_default();
        anyhow::ensure!(
            ended == Ended::Exited(Some(0)),
            "cargo mutants --list failed: {listing}"
        );
        Ok(listing)
    }
}

/// The environment of a cargo-mutants run: [`TEST_ENV`], and a twin's target directory.
fn cargo_mutants_env(target_dir: Option<&Path>) -> Vec<(&'static str, &str)> {
    let mut env = TEST_ENV.to_vec();
    if let Some(dir) = target_dir.and_then(Path::to_str) {
        env.push(("CARGO_TARGET_DIR", dir));
    }
    env
}

/// cargo-mutants name patterns (`--re`) of the accepted survivors of `files`: the file, any
/// line and column, the change.
fn accepted_patterns(accepted: &Accepted, files: &[PathBuf]) -> Vec<String> {
    let files: Vec<String> = files.iter().map(|f| slashed(f)).collect();
    accepted
        .accepted
        .iter()
        .filter(|e| files.contains(&e.file))
        .map(|e| {
            format!(
                "^{}:[0-9]+:[0-9]+: {}$",
                regex_escape(&e.file),
                regex_escape(&e.change)
            )
        })
        .collect()
}

/// The mutants of `cargo mutants --list --json` output, as accepted survivors not run.
fn parse_listed(listing: &str, target: usize) -> anyhow::Result<Vec<Outcome>> {
    Ok(listed_mutants(listing)?
        .iter()
        .map(|mutant| rust_outcome(mutant, target, Status::Survived, Duration::ZERO))
        .collect())
}

/// How many mutants of each target `cargo mutants --list --json` printed.
fn counts_by_target(listing: &str) -> anyhow::Result<BTreeMap<usize, usize>> {
    let mut counts = BTreeMap::new();
    for mutant in listed_mutants(listing)? {
        if let Some(target) = mutant["file"]
            .as_str()
            .and_then(|f| target_of(Path::new(f)))
        {
            *counts.entry(target).or_default() += 1;
        }
    }
    Ok(counts)
}

/// Orders `queue` by its targets' mutant `counts`, the most first (a target without a count
/// last; ties keep their order).
fn largest_first(queue: &mut [(usize, Vec<PathBuf>)], counts: &BTreeMap<usize, usize>) {
    queue.sort_by_key(|(target, _)| std::cmp::Reverse(counts.get(target).copied()));
}

/// The mutants in what `cargo mutants --list --json` printed.
fn listed_mutants(listing: &str) -> anyhow::Result<Vec<serde_json::Value>> {
    let start = listing
        .find('[')
        .context("cargo mutants --list --json printed no list")?;
    let mut stream = serde_json::Deserializer::from_str(&listing[start..]).into_iter();
    let value: serde_json::Value = stream
        .next()
        .context("cargo mutants --list --json printed no list")??;
    match value {
        serde_json::Value::Array(mutants) => Ok(mutants),
        _ => bail!("cargo mutants --list --json printed no list"),
    }
}

/// How many of the tests that caught a target's latest mutants a mutant meets first.
const CATCHERS: usize = 3;

/// How many of the run's most frequent catchers a mutant meets next, when those of its target
/// did not catch it.
const FREQUENT_CATCHERS: usize = 8;

/// At most [`FREQUENT_CATCHERS`] of the tests in `caught_by` (how many mutants each caught
/// first), the most frequent first, that are among `tests` and not in `local`.
fn frequent_catchers(
    caught_by: &BTreeMap<String, usize>,
    tests: &BTreeSet<String>,
    local: &[String],
) -> Vec<String> {
    let mut found: Vec<(&String, usize)> = caught_by
        .iter()
        .filter(|(name, _)| tests.contains(*name) && !local.contains(name))
        .map(|(name, &n)| (name, n))
        .collect();
    found.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    found
        .into_iter()
        .take(FREQUENT_CATCHERS)
        .map(|(name, _)| name.clone())
        .collect()
}

/// The nextest filterset of the tests named `catchers` among those of `filter`.
fn catchers_filter(filter: &str, catchers: &[String]) -> String {
    let names: Vec<String> = catchers.iter().map(|c| format!("test(={c})")).collect();
    format!("({filter}) & ({})", names.join(" | "))
}

/// The name of the first test that failed (or ran past its time) in the part of nextest's
/// `log` after byte `start`.
fn first_failure(log: &Path, start: u64) -> Option<String> {
    let bytes = std::fs::read(log).ok()?;
    let tail = bytes.get(usize::try_from(start).ok()?..)?;
    failed_test(&String::from_utf8_lossy(tail))
}

/// The nextest filterset of the tests of `tests` that `filter` selects: the frozen binaries
/// are all there, so it names the test targets too.
fn selection(tests: &Tests, filter: &str) -> String {
    format!("({filter}) & ({})", binaries_filter(tests))
}

/// The names of the tests in nextest's one-line listing `output` (`binary-id name`).
fn listed_tests(output: &str) -> BTreeSet<String> {
    output
        .lines()
        .filter(|line| line.starts_with(PACKAGE))
        .filter_map(
            |line| match line.split_whitespace().collect::<Vec<_>>()[..] {
                [_, name] => Some(name.to_owned()),
                _ => None,
            },
        )
        .collect()
}

/// The tests that nextest's `output` reports as passed, each with its time.
fn passed_tests(output: &str) -> BTreeMap<String, Duration> {
    output
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix("PASS ["))
        .filter_map(|rest| {
            let (time, rest) = rest.split_once("s]")?;
            let secs: f64 = time.trim().parse().ok()?;
            let name = rest.split_whitespace().last()?;
            Some((name.to_owned(), Duration::from_secs_f64(secs)))
        })
        .collect()
}

/// How long the tests `names` take at most, by their `times` in one run: one after another.
/// Spread over the threads they take less alone, but a tier run beside the builds takes up to
/// twice that, and a test stopped as too slow would count its mutant as caught. A mutant that
/// hangs waits on a lock, which leaves the processor to the other sides.
fn tier_time(times: &BTreeMap<String, Duration>, names: &BTreeSet<String>) -> Duration {
    names.iter().filter_map(|n| times.get(n)).sum()
}

/// The first test that nextest's `output` reports as failed or timed out.
fn failed_test(output: &str) -> Option<String> {
    output.lines().find_map(|line| {
        let line = line.trim_start();
        let rest = line
            .strip_prefix("FAIL [")
            .or_else(|| line.strip_prefix("TIMEOUT ["))?;
        rest.split_whitespace().last().map(str::to_owned)
    })
}

/// `text` with the regular-expression metacharacters escaped.
fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The tiers of `target` as text, for the progress lines.
fn tiers_text(target: &Target) -> String {
    target
        .tiers
        .iter()
        .map(|t| format!("{} {}", t.build.join(" "), t.filter))
        .collect::<Vec<_>>()
        .join(", then ")
}

/// nextest's option to stop at the first failing test, ending the tests still running (the
/// workspace's nextest profile runs them all): one failure is all a mutant needs.
/// How a test run gets its test binaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Build {
    /// Build them from the tree and stop (`--no-run`).
    Only,
    /// Build them from the tree, then run them.
    Tree,
    /// Run the frozen unmutated ones, when there are; else as [`Build::Tree`].
    Frozen,
}

/// The nextest filterset of the test binaries `tests` builds (`--lib`: the library's unit
/// tests; `--test=NAME`: that integration test).
fn binaries_filter(tests: &Tests) -> String {
    tests
        .build
        .iter()
        .map(|b| match b.strip_prefix("--test=") {
            Some(name) => format!("binary_id({PACKAGE}::{name})"),
            None => format!("binary_id({PACKAGE})"),
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

const STOP_AT_FIRST_FAILURE: &str = "--max-fail=1:immediate";

/// What every test run gets: insta never writes or accepts snapshots while a mutant is in the
/// tree (as cargo-mutants does for its own runs), proptest writes no `proptest-regressions/`
/// file for a failure a mutant caused, the harness keeps no database of a test a mutant
/// failed, and a test over a glob of files (the scenarios) stops at the first file that fails.
const TEST_ENV: &[(&str, &str)] = &[
    ("INSTA_UPDATE", "no"),
    ("INSTA_FORCE_PASS", "0"),
    ("PROPTEST_DISABLE_FAILURE_PERSISTENCE", "1"),
    ("HARNESS_KEEP_FAILED", "0"),
    ("INSTA_GLOB_FAIL_FAST", "1"),
];

/// The cargo binary that runs us (`$CARGO` under `cargo xtask`).
fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

/// The cargo-mutants options that build only the test targets of `tests` and run only its
/// tests, failing fast (the workspace's nextest profile does not).
fn cargo_mutants_test_args(tests: &Tests) -> Vec<String> {
    let mut args: Vec<String> = tests
        .build
        .iter()
        .map(|b| format!("--cargo-arg={b}"))
        .collect();
    args.extend([
        format!("--cargo-test-arg={STOP_AT_FIRST_FAILURE}"),
        "--cargo-test-arg=--no-tests=fail".to_owned(),
        "--cargo-test-arg=-E".to_owned(),
        format!("--cargo-test-arg={}", tests.filter),
    ]);
    args
}

/// The nextest profile of [`first_profile`].
const FIRST_PROFILE: &str = "xtask-mutants-first";

/// A nextest tool config with a profile that runs the tests of each filterset of `first`
/// before those of the next and before the others (it inherits the workspace's `default`).
fn first_profile(first: &[&str]) -> String {
    let mut config = format!("[profile.{FIRST_PROFILE}]\n");
    for (filter, priority) in first.iter().zip((0..=100).rev()) {
        config.push_str(&format!(
            "\n[[profile.{FIRST_PROFILE}.overrides]]\nfilter = {}\npriority = {priority}\n",
            toml::Value::from(*filter)
        ));
    }
    config
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
        let name = mutant["name"].as_str().unwrap_or_default();
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
        out.push(rust_outcome(mutant, target, status, took));
    }
    Ok(out)
}

/// The outcome `status` of a cargo-mutants mutant (as its JSON describes it).
fn rust_outcome(
    mutant: &serde_json::Value,
    target: usize,
    status: Status,
    took: Duration,
) -> Outcome {
    let file = mutant["file"].as_str().unwrap_or_default().to_owned();
    let line = mutant["span"]["start"]["line"].as_u64().unwrap_or(0) as usize;
    let column = mutant["span"]["start"]["column"].as_u64().unwrap_or(0);
    let name = mutant["name"].as_str().unwrap_or_default();
    let change = name
        .strip_prefix(&format!("{file}:{line}:{column}: "))
        .unwrap_or(name)
        .to_owned();
    Outcome {
        kind: Kind::Rust,
        target,
        file,
        line,
        change,
        name: name.to_owned(),
        status,
        took,
    }
}

/// The progress line of an accepted survivor counted without a run.
fn print_not_run(outcome: &Outcome) {
    eprintln!(
        "  {:<9} {}:{}: {}  (not run: {})",
        "accepted",
        outcome.file,
        outcome.line,
        outcome.change,
        accepted::FILE
    );
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
            "--run-accepted",
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
                run_accepted: true,
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
            Some("harness/src/platform/accounts.rs")
        );
        assert_eq!(
            of("harness/src/platform/sync/delivery.rs"),
            Some("harness/src/platform/sync/")
        );
        assert_eq!(
            of("harness/src/platform/jobs.rs"),
            Some("harness/src/platform/jobs.rs")
        );
        assert_eq!(
            of("harness/src/platform/mod.rs"),
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
    fn the_frequent_catchers_are_the_tiers_own_most_frequent_first_without_the_targets() {
        let caught_by: BTreeMap<String, usize> = [
            ("a::x", 5),
            ("a::y", 9),
            ("a::z", 5),
            ("b::w", 20),
            ("a::v", 1),
        ]
        .into_iter()
        .map(|(name, n)| (name.to_owned(), n))
        .collect();
        let tier: BTreeSet<String> = ["a::v", "a::x", "a::y", "a::z", "a::u"]
            .into_iter()
            .map(str::to_owned)
            .collect();
        // b::w is not among the tier's tests; a::y is the target's own catcher already.
        assert_eq!(
            frequent_catchers(&caught_by, &tier, &["a::y".to_owned()]),
            ["a::x", "a::z", "a::v"]
        );
        let many: BTreeMap<String, usize> = (0..20).map(|n| (format!("a::t{n:02}"), n)).collect();
        let all: BTreeSet<String> = many.keys().cloned().collect();
        let picked = frequent_catchers(&many, &all, &[]);
        assert_eq!(picked.len(), FREQUENT_CATCHERS);
        assert_eq!(picked[0], "a::t19");
    }

    #[test]
    fn a_baseline_knows_the_tests_that_passed() {
        let output = "    Starting 3 tests across 1 binary (5 skipped)
        PASS [   0.735s] (1/3) billing-harness::it purge::one
        PASS [   1.627s] (2/3) billing-harness::it sync::two
        FAIL [   0.100s] (3/3) billing-harness::it sync::three
     Summary [  11.392s] 3/3 tests run: 2 passed, 1 failed, 5 skipped
";
        let passed: Vec<(String, Duration)> = passed_tests(output).into_iter().collect();
        assert_eq!(
            passed,
            [
                ("purge::one".to_owned(), Duration::from_millis(735)),
                ("sync::two".to_owned(), Duration::from_millis(1627))
            ]
        );
        let times: BTreeMap<String, Duration> = [("a", 10), ("b", 4), ("c", 4), ("d", 100)]
            .into_iter()
            .map(|(n, s)| (n.to_owned(), Duration::from_secs(s)))
            .collect();
        let names = |list: &[&str]| list.iter().map(|n| (*n).to_owned()).collect();
        assert_eq!(
            tier_time(&times, &names(&["a", "b", "c"])),
            Duration::from_secs(18)
        );
        // A test the run did not pass (another binary's, say) adds nothing.
        assert_eq!(
            tier_time(&times, &names(&["b", "c", "x"])),
            Duration::from_secs(8)
        );
    }

    #[test]
    fn a_listing_names_the_selected_tests() {
        let output = "billing-harness::it platform::a_close
billing-harness billing::rules::tests::proration
warning: something else
";
        let listed: Vec<String> = listed_tests(output).into_iter().collect();
        assert_eq!(
            listed,
            ["billing::rules::tests::proration", "platform::a_close"]
        );
    }

    #[test]
    fn every_target_exists_in_the_workspace() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let planned = plan(root, None).unwrap();
        assert_eq!(planned.len(), TARGETS.len(), "each target has files");
        assert!(plan(root, Some(Path::new("harness/src/clock.rs"))).is_err());
    }

    #[test]
    fn tests_reach_the_server_through_the_proxy_with_its_credentials() {
        assert_eq!(
            proxied_url("postgres://harness:pw@127.0.0.1:41234/bh_7", 5000).unwrap(),
            "postgres://harness:pw@127.0.0.1:5000/postgres?sslmode=disable"
        );
        assert_eq!(
            proxied_url(
                "postgresql://ci@db.internal:5432/admin?sslmode=require",
                5001
            )
            .unwrap(),
            "postgresql://ci@127.0.0.1:5001/admin?sslmode=disable"
        );
        assert!(proxied_url("127.0.0.1:5432", 5002).is_err());
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
    fn the_first_failing_test_is_read_from_nextest_output() {
        let output = "        PASS [   0.512s] (1/64) billing-harness::it platform::a\n\
                      \x20       FAIL [  11.675s] (2/64) billing-harness::it scenarios::every\n\
                      \x20    SIGTERM [   0.100s] (3/64) billing-harness::it platform::b\n\
                      \x20       FAIL [  11.675s] billing-harness::it scenarios::every\n";
        assert_eq!(failed_test(output).as_deref(), Some("scenarios::every"));
        assert_eq!(
            failed_test("     TIMEOUT [  60.000s] (1/1) billing-harness::it rules::slow\n")
                .as_deref(),
            Some("rules::slow")
        );
        assert_eq!(
            failed_test("        PASS [   0.512s] (1/1) it platform::a\n"),
            None
        );
        assert_eq!(
            catchers_filter(
                "test(/^platform::/)",
                &["platform::a".into(), "rules::b".into()]
            ),
            "(test(/^platform::/)) & (test(=platform::a) | test(=rules::b))"
        );
    }

    #[test]
    fn only_a_failed_test_catches_a_mutant() {
        let log = Path::new("run.log");
        assert_eq!(
            tested_status(Ended::Exited(Some(0)), log).unwrap(),
            Status::Survived
        );
        assert_eq!(
            tested_status(Ended::Exited(Some(100)), log).unwrap(),
            Status::Caught
        );
        assert_eq!(
            tested_status(Ended::TimedOut, log).unwrap(),
            Status::Timeout
        );
        // No test selected (4), a setup error (96), a list that failed (104), a kill: errors.
        for code in [Some(4), Some(96), Some(104), None] {
            let error = tested_status(Ended::Exited(code), log).unwrap_err();
            assert!(error.to_string().contains("run.log"), "{error}");
        }
    }

    #[test]
    fn the_first_tests_get_a_profile_of_their_own_at_the_highest_priorities_in_order() {
        let config: toml::Table = first_profile(&["test(/^sync::/)", "test(/^purge::/)"])
            .parse()
            .unwrap();
        let overrides = config["profile"][FIRST_PROFILE]["overrides"]
            .as_array()
            .unwrap();
        let pairs: Vec<_> = overrides
            .iter()
            .map(|o| {
                (
                    o["filter"].as_str().unwrap(),
                    o["priority"].as_integer().unwrap(),
                )
            })
            .collect();
        assert_eq!(pairs, [("test(/^sync::/)", 100), ("test(/^purge::/)", 99)]);
    }

    #[test]
    fn the_targets_with_the_most_listed_mutants_come_first() {
        let listing = r#"Found 4 mutants
[{"file": "harness/src/payments/gateway.rs"}, {"file": "harness/src/platform/sync/delivery.rs"},
 {"file": "harness/src/platform/sync/delivery.rs"}, {"file": "harness/src/clock.rs"}]"#;
        let of = |path: &str| TARGETS.iter().position(|t| t.path == path).unwrap();
        let (sync, payments, billing) = (
            of("harness/src/platform/sync/"),
            of("harness/src/payments/"),
            of("harness/src/billing/"),
        );
        let counts = counts_by_target(listing).unwrap();
        assert_eq!(counts, BTreeMap::from([(sync, 2), (payments, 1)]));
        let mut queue: Vec<(usize, Vec<PathBuf>)> = [billing, payments, sync]
            .into_iter()
            .map(|t| (t, Vec::new()))
            .collect();
        largest_first(&mut queue, &counts);
        let order: Vec<usize> = queue.iter().map(|(t, _)| *t).collect();
        assert_eq!(order, [sync, payments, billing]);
    }

    #[test]
    fn frozen_runs_select_the_tiers_test_binaries() {
        assert_eq!(
            binaries_filter(&Tests {
                build: LIB_AND_IT,
                filter: "all()",
                first: &[],
            }),
            "binary_id(billing-harness) | binary_id(billing-harness::it)"
        );
        assert_eq!(
            binaries_filter(&Tests {
                build: IT,
                filter: "all()",
                first: &[],
            }),
            "binary_id(billing-harness::it)"
        );
    }

    #[test]
    fn accepted_rust_survivors_are_listed_by_file_and_change_at_any_line() {
        let accepted = Accepted::parse(
            r#"
[[accepted]]
file = "harness/src/billing/invoice.rs"
change = "replace > with >= in Invoice::has_service"
reason = "equal"

[[accepted]]
file = "harness/src/platform/close.rs"
change = "replace < with <= in close"
reason = "equal"
"#,
        )
        .unwrap();
        let patterns = accepted_patterns(
            &accepted,
            &[PathBuf::from("harness/src/billing/invoice.rs")],
        );
        assert_eq!(patterns.len(), 1, "only the files of the target");
        assert_eq!(
            patterns[0],
            "^harness/src/billing/invoice\\.rs:[0-9]+:[0-9]+: replace > with >= in Invoice::has_service$"
        );
        let listing = r#"warning: something
[{"file": "harness/src/billing/invoice.rs", "name": "harness/src/billing/invoice.rs:125:17: replace > with >= in Invoice::has_service", "span": {"start": {"line": 125, "column": 17}}}]"#;
        let listed = parse_listed(listing, 0).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].line, 125);
        assert_eq!(
            listed[0].change,
            "replace > with >= in Invoice::has_service"
        );
        assert_eq!(listed[0].status, Status::Survived);
        assert!(accepted.find(&listed[0].file, &listed[0].change).is_some());
    }

    #[test]
    fn escaped_names_match_only_themselves() {
        assert_eq!(
            regex_escape("a.rs:1:2: replace > with >= in f -> (u8)"),
            "a\\.rs:1:2: replace > with >= in f \\-> \\(u8\\)"
        );
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
