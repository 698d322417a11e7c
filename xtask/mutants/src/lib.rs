//! Mutation testing of the code that decides something, two kinds: `cargo xtask mutants`.
//!
//! Rust mutants come from cargo-mutants (pinned, installed when missing), SQL mutants from the
//! project's own mutator (`sql`) over the queries in the same files. Each target (`TARGETS` in
//! `targets.rs`) names the tests that cover it; every mutant builds only those test targets and
//! runs only those tests under nextest, failing fast. Survivors are listed with file, line and
//! change; one not in `mutants-accepted.toml` makes the command fail.
//!
//! The entry point is [`run()`], with the options [`MutantsArgs`] (from the command line through
//! [`Opts`]). `xtask` wires it as `cargo xtask mutants`; see this crate's `README.md`.

mod accepted;
mod args;
mod guard;
mod nextest;
mod outcome;
mod process;
mod proxy;
mod rewrite;
mod run;
mod rust_side;
mod schema;
mod sql;
mod targets;

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use accepted::Accepted;
use guard::Backup;
use outcome::Outcome;
use process::{Interrupted, Signals};
use run::{Run, SqlPlan};
use rust_side::RustRun;
use targets::TARGETS;

pub use args::{Kinds, MutantsArgs, Opts};
pub use process::package_vars;

/// The cargo-mutants release the command installs and expects.
pub const CARGO_MUTANTS_VERSION: &str = "27.1.0";

/// The cargo profile every mutant builds in (the workspace's `Cargo.toml`): the test profile
/// without debug information, for a quicker incremental build and link.
const PROFILE: &str = "mutants";

/// The command's own files (backup, logs, cargo-mutants output), under the workspace root.
const STATE_DIR: &str = "target/xtask-mutants";

/// The workspace's twin under the state directory: a copy of its files (and, once, of the
/// `mutants` profile's build) where a second cargo-mutants side mutates in place.
const TWIN: &str = "twin";

/// The planned files, by target (index into `TARGETS`).
type Plan = BTreeMap<usize, Vec<PathBuf>>;

/// The targets the Rust sides take one at a time, shared between them.
type Queue = RefCell<VecDeque<(usize, Vec<PathBuf>)>>;

/// Runs (or lists) the mutants of the workspace this crate is in; exit 1 when a survivor is not
/// accepted, 130 when interrupted.
///
/// # Errors
/// A setup step failed (install, baseline, a file), or a side failed (its files are restored
/// first).
pub fn run(args: &MutantsArgs) -> anyhow::Result<ExitCode> {
    let root = workspace_root();
    let accepted = Accepted::load(&root.join(accepted::FILE))?;
    let plan = targets::plan(&root, args.file.as_deref())?;
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
    let result = runtime()?.block_on(async {
        let mut signals = Signals::listen()?;
        let run = Run::new(&root, &state, args, &accepted, backup, &mut signals);
        run_all(run, &plan).await
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
    Ok(outcome::report(&outcomes, &accepted, started.elapsed()))
}

/// Lists, or runs, the mutants of `plan`: the SQL side (`run`) and the Rust sides; their
/// outcomes, every mutated file restored.
async fn run_all(mut run: Run<'_>, plan: &Plan) -> anyhow::Result<Vec<Outcome>> {
    let args = run.args;
    // Read before any mutant is written: the Rust mutants change the files in place.
    let planned = if args.kinds.sql() {
        run.sql_plan(plan)?
    } else {
        Vec::new()
    };
    if args.kinds.rust() {
        // Blocking, and before anything else runs on this thread (the proxy among them).
        rust_side::ensure_cargo_mutants()?;
    }
    let (timeouts_tx, timeouts) = tokio::sync::watch::channel(BTreeMap::new());
    let queue: Queue = RefCell::new(plan.clone().into_iter().collect());
    let mut rust = RustRun::start(
        run.root,
        None,
        "backup-rust",
        run.state,
        args,
        run.accepted,
        timeouts.clone(),
    )?;
    if args.kinds.rust() && !args.list && plan.len() > 1 {
        // The targets with the most mutants first: the sides then end close together,
        // instead of one building a big target alone at the end.
        let counts = rust.counts(plan).await?;
        rust_side::largest_first(queue.borrow_mut().make_contiguous(), &counts);
    }
    let mut twin = None;
    if args.list {
        run::list_sql(&planned);
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
            let dir = run.state.join(TWIN);
            // Its backup first puts back what a killed run left mutated; then the sync.
            twin = Some(RustRun::start(
                &dir,
                Some(dir.join("target")),
                "backup-twin",
                run.state,
                args,
                run.accepted,
                timeouts,
            )?);
            rust_side::sync_twin(run.root, &dir)?;
        }
        let needed = needed_baselines(plan, &planned, args.kinds.rust());
        all_sides(
            &mut run,
            &mut rust,
            twin.as_mut(),
            planned,
            needed,
            &queue,
            timeouts_tx,
        )
        .await?;
    }
    if let Some(twin) = twin {
        twin.backup.finish()?;
        rust.outcomes.extend(twin.outcomes);
    }
    rust.backup.finish()?;
    run.backup.finish()?;
    let mut outcomes = run.outcomes;
    outcomes.extend(rust.outcomes);
    Ok(outcomes)
}

/// Every tier (target and tier) whose baseline the run needs: those of the targets with SQL
/// mutants in `planned`, and, when `rust`, those of every target of `plan`.
fn needed_baselines(plan: &Plan, planned: &[SqlPlan], rust: bool) -> Vec<(usize, usize)> {
    let tiers_of = |t: usize| (0..TARGETS[t].tiers.len()).map(move |tier| (t, tier));
    let mut needed: Vec<(usize, usize)> = planned.iter().flat_map(|(t, _)| tiers_of(*t)).collect();
    if rust {
        needed.extend(plan.keys().flat_map(|&t| tiers_of(t)));
    }
    needed.sort_unstable();
    needed.dedup();
    needed
}

/// All sides at once. The SQL side runs every baseline in `needed`, handing each timeout to
/// the Rust sides as it ends, then the SQL mutants on the frozen binaries; one that needs a
/// build waits until the Rust sides, building theirs in place, are done.
async fn all_sides(
    run: &mut Run<'_>,
    rust: &mut RustRun<'_>,
    twin: Option<&mut RustRun<'_>>,
    planned: Vec<SqlPlan>,
    needed: Vec<(usize, usize)>,
    queue: &Queue,
    timeouts: tokio::sync::watch::Sender<BTreeMap<(usize, usize), Duration>>,
) -> anyhow::Result<()> {
    let with_rust = run.args.kinds.rust();
    let sql_side = async {
        run.baselines_of(&needed).await?;
        timeouts.send_modify(|known| {
            for key in needed {
                known.insert(key, run.baseline_timeout(key));
            }
        });
        drop(timeouts);
        run.sql(planned, with_rust).await
    };
    let rust_side = async {
        if with_rust {
            rust.run(queue).await
        } else {
            Ok(())
        }
    };
    let twin_side = async {
        match twin {
            Some(twin) => twin.run(queue).await,
            None => Ok(()),
        }
    };
    // The first error stops the other sides (their children are stopped as they drop).
    let (deferred, (), ()) = tokio::try_join!(sql_side, rust_side, twin_side)?;
    run.sql(deferred, false).await?;
    Ok(())
}

/// The workspace root: two folders above this crate's (`xtask/mutants`).
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map_or_else(|| PathBuf::from("."), Path::to_owned)
}

/// A current-thread runtime for the command.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// The cargo binary that runs us (`$CARGO` under `cargo xtask`).
fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}
