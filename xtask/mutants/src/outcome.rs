//! How each mutant ended, and the report of a run: the rate per target and kind against its
//! goal, the accepted survivors with their reasons, the others, and the closing line.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use crate::accepted::{self, Accepted};
use crate::sql;
use crate::targets::{TARGETS, slashed};

/// How one mutant ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
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
pub(crate) enum Kind {
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
pub(crate) struct Outcome {
    /// Its mutator.
    pub(crate) kind: Kind,
    /// The target it belongs to (index into [`TARGETS`]).
    pub(crate) target: usize,
    /// The file, relative to the workspace root, with `/`.
    pub(crate) file: String,
    /// The line of the change.
    pub(crate) line: usize,
    /// The change, without location.
    pub(crate) change: String,
    /// cargo-mutants' name of the mutant (file, line, column and change), empty for SQL.
    pub(crate) name: String,
    /// How it ended.
    pub(crate) status: Status,
    /// Build and test time.
    pub(crate) took: Duration,
}

impl Outcome {
    /// The outcome `status` of the SQL mutant `mutant` of `file` in `target`, with no time.
    pub(crate) fn sql(
        target: usize,
        file: &Path,
        mutant: &sql::SqlMutant,
        status: Status,
    ) -> Outcome {
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

/// The progress line of an accepted survivor counted without a run.
pub(crate) fn print_not_run(outcome: &Outcome) {
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
pub(crate) fn status_label(status: Status) -> &'static str {
    match status {
        Status::Caught => "caught",
        Status::Timeout => "timeout",
        Status::Unviable => "unviable",
        Status::Survived => "SURVIVED",
    }
}

/// Prints the per-target rates, the survivors and the closing line; exit 1 when a survivor is
/// not accepted.
pub(crate) fn report(outcomes: &[Outcome], accepted: &Accepted, elapsed: Duration) -> ExitCode {
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
