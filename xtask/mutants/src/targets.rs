//! What is mutated and what tests it: the targets (a file or folder of the platform, the tiers of
//! tests that cover it, the goals), and the plan of a run (its files, by target).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// The package whose code is mutated and whose tests run.
pub(crate) const PACKAGE: &str = "billing-harness";

/// Where the migrations declaring the tables (and so the column siblings) are.
pub(crate) const MIGRATIONS: &str = "harness/migrations";

/// Build the library's unit tests only.
pub(crate) const LIB: &[&str] = &["--lib"];
/// Build the integration-test binary only.
pub(crate) const IT: &[&str] = &["--test=it"];
/// Build both.
pub(crate) const LIB_AND_IT: &[&str] = &["--lib", "--test=it"];

/// The outbox's tests: the sync tests and property, the mocks' own, and the scenarios' snapshots;
/// then, for what they miss, the outbox's unit tests (the backoff's pinned waits, the reconciler's
/// comparison).
pub(crate) const SYNC_TESTS: &[Tests] = &[
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

/// Files under a target directory that are never mutated: test modules.
pub(crate) const NOT_MUTATED: &[&str] = &["tests.rs"];

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

/// Every file under mutation, grouped by target (index into [`TARGETS`]), in path order;
/// only those under `only` when given.
pub(crate) fn plan(
    root: &Path,
    only: Option<&Path>,
) -> anyhow::Result<BTreeMap<usize, Vec<PathBuf>>> {
    let mut files = Vec::new();
    for target in TARGETS {
        let path = root.join(target.path);
        if target.path.ends_with('/') {
            anyhow::ensure!(
                path.is_dir(),
                "{} does not exist: update TARGETS in xtask/mutants/src/targets.rs",
                target.path
            );
            collect_rs(&path, &mut files)?;
        } else {
            anyhow::ensure!(
                path.is_file(),
                "{} does not exist: update TARGETS in xtask/mutants/src/targets.rs",
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
pub(crate) fn target_of(file: &Path) -> Option<usize> {
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
pub(crate) fn collect_rs(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
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
pub(crate) fn slashed(file: &Path) -> String {
    file.to_string_lossy().replace('\\', "/")
}

/// The nextest filterset of the tests of `tests` that `filter` selects: the frozen binaries
/// are all there, so it names the test targets too.
pub(crate) fn selection(tests: &Tests, filter: &str) -> String {
    format!("({filter}) & ({})", binaries_filter(tests))
}

/// The tiers of `target` as text, for the progress lines.
pub(crate) fn tiers_text(target: &Target) -> String {
    target
        .tiers
        .iter()
        .map(|t| format!("{} {}", t.build.join(" "), t.filter))
        .collect::<Vec<_>>()
        .join(", then ")
}

/// The nextest filterset of the test binaries `tests` builds (`--lib`: the library's unit
/// tests; `--test=NAME`: that integration test).
pub(crate) fn binaries_filter(tests: &Tests) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn every_target_exists_in_the_workspace() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let planned = plan(root, None).unwrap();
        assert_eq!(planned.len(), TARGETS.len(), "each target has files");
        assert!(plan(root, Some(Path::new("harness/src/clock.rs"))).is_err());
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
}
