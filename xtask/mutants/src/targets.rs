//! What is mutated and what tests it: the targets (a file or folder of a package, the tiers of
//! tests that cover it, the goals), and the plan of a run (its files, by target).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// The reference platform: the billing rules, the operations and their SQL, payments, products,
/// purge.
pub(crate) const PLATFORM: &str = "billing-platform";
/// QA's scenarios: the validator.
pub(crate) const SCENARIOS: &str = "billing-scenarios";
/// The throwaway database: its decisions.
pub(crate) const THROWAWAY_PG: &str = "throwaway-pg";

/// Where the migrations declaring the tables (and so the column siblings) are.
pub(crate) const MIGRATIONS: &str = "harness/platform/migrations";

/// The source folders of the library the tests link (the crates that were `harness/src`
/// before the split): a SQL mutant's literal is rewritten at run time only when no other
/// literal of theirs sends the same text.
pub(crate) const LIBRARY_SOURCES: &[&str] = &[
    "harness/throwaway-pg/src",
    "harness/platform/src",
    "harness/billing-harness/src",
    "harness/scenarios/src",
    "harness/product-mock/src",
];

/// A test binary that a tier builds and runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Binary {
    /// The platform's unit tests: `billing-platform`'s library, `--lib`.
    PlatformLib,
    /// The scenarios' unit tests: `billing-scenarios`' library, `--lib`.
    ScenariosLib,
    /// The throwaway database's unit tests: `throwaway-pg`'s library, `--lib`.
    ThrowawayPgLib,
    /// The integration tests: `harness-tests`' `--test it`, which links every crate of
    /// `harness/`.
    It,
}

impl Binary {
    /// Every test binary a tier may name: what the frozen unmutated build holds.
    pub(crate) const ALL: &[Binary] = &[
        Binary::PlatformLib,
        Binary::ScenariosLib,
        Binary::ThrowawayPgLib,
        Binary::It,
    ];

    /// Its package.
    pub(crate) fn package(self) -> &'static str {
        match self {
            Binary::PlatformLib => PLATFORM,
            Binary::ScenariosLib => SCENARIOS,
            Binary::ThrowawayPgLib => THROWAWAY_PG,
            Binary::It => "harness-tests",
        }
    }

    /// The cargo option that selects its test target in its package.
    pub(crate) fn cargo_target(self) -> &'static str {
        match self {
            Binary::PlatformLib | Binary::ScenariosLib | Binary::ThrowawayPgLib => "--lib",
            Binary::It => "--test=it",
        }
    }

    /// nextest's binary id of it (`binary_id(...)` in a filterset, the first word of a
    /// listing's line).
    pub(crate) fn binary_id(self) -> &'static str {
        match self {
            Binary::PlatformLib => PLATFORM,
            Binary::ScenariosLib => SCENARIOS,
            Binary::ThrowawayPgLib => THROWAWAY_PG,
            Binary::It => "harness-tests::it",
        }
    }
}

/// The cargo options that build `binaries`: each package and each test target once. (Cargo
/// applies the targets to every package given, and builds each where it has it: `--lib` with
/// `harness-tests` among the packages also builds its library tests, which hold none.)
pub(crate) fn build_args(binaries: &[Binary]) -> Vec<String> {
    let mut packages: Vec<String> = Vec::new();
    let mut targets: Vec<String> = Vec::new();
    for b in binaries {
        let package = format!("--package={}", b.package());
        if !packages.contains(&package) {
            packages.push(package);
        }
        if !targets.iter().any(|t| t == b.cargo_target()) {
            targets.push(b.cargo_target().to_owned());
        }
    }
    packages.extend(targets);
    packages
}

/// The platform's unit tests only.
pub(crate) const LIB: &[Binary] = &[Binary::PlatformLib];
/// The scenarios' unit tests only.
pub(crate) const SCENARIOS_LIB: &[Binary] = &[Binary::ScenariosLib];
/// The throwaway database's unit tests only.
pub(crate) const THROWAWAY_PG_LIB: &[Binary] = &[Binary::ThrowawayPgLib];
/// The integration tests only.
pub(crate) const IT: &[Binary] = &[Binary::It];
/// Both.
pub(crate) const LIB_AND_IT: &[Binary] = &[Binary::PlatformLib, Binary::It];

/// The outbox's tests: the sync tests and property, the mocks' own, and the scenarios' snapshots;
/// then, for what they miss, the outbox's unit tests (the backoff's pinned waits, the reconciler's
/// comparison).
pub(crate) const SYNC_TESTS: &[Tests] = &[
    Tests {
        binaries: IT,
        filter: "test(/^(sync|sync_property|product_mocks|purge|scenarios|platform)::/)",
        // The outbox's own tests and the purge (which syncs deletions) catch most.
        first: &["test(/^sync::/)", "test(/^purge::/)"],
    },
    Tests {
        binaries: LIB,
        filter: "test(/^platform::sync::/)",
        first: &[],
    },
];

/// The product mock's tests: its unit tests first (a 5 s build); then, for what they miss, the
/// mocks' own integration tests (served, remote, in a container's host) and the sync tests and
/// property, which drive the mock through the outbox with faults.
pub(crate) const PRODUCT_MOCK_TESTS: &[Tests] = &[
    Tests {
        binaries: LIB,
        filter: "test(/^products::/)",
        first: &[],
    },
    Tests {
        binaries: IT,
        filter: "test(/^(product_mocks|sync|sync_property)::/)",
        first: &["test(/^product_mocks::/)"],
    },
];

/// The code under mutation and the tests that cover it. A file belongs to the first target
/// whose path matches it, so specific files come before their directory. Moving a file is a
/// change of its line here.
pub(crate) const TARGETS: &[Target] = &[
    Target {
        package: PLATFORM,
        path: "harness/platform/src/billing/",
        // The rules' unit tests first (a 5 s build); the close and the scenarios, which store
        // what the rules compute, only for what they miss.
        tiers: &[
            Tests {
                binaries: LIB,
                filter: "test(/^billing::/)",
                first: &[],
            },
            Tests {
                binaries: IT,
                filter: "test(/^(platform|scenarios|rules|payment_rules)::/)",
                first: &[],
            },
        ],
        rust_goal: 100,
        sql_goal: 100,
    },
    Target {
        package: PLATFORM,
        path: "harness/platform/src/platform/close.rs",
        tiers: &[Tests {
            binaries: IT,
            filter: "test(/^(platform|scenarios|payments|rules|payment_rules|tenant_rules|concurrency)::/)",
            first: &[],
        }],
        rust_goal: 90,
        sql_goal: 100,
    },
    Target {
        package: PLATFORM,
        path: "harness/platform/src/platform/usage.rs",
        tiers: &[Tests {
            binaries: IT,
            filter: "test(/^(platform|scenarios|builders|rules|tenant_rules|concurrency)::/)",
            first: &[],
        }],
        rust_goal: 90,
        sql_goal: 100,
    },
    Target {
        package: PLATFORM,
        path: "harness/platform/src/platform/subscriptions.rs",
        tiers: &[Tests {
            binaries: IT,
            filter: "test(/^(platform|scenarios|payments|builders|rules|payment_rules|tenant_rules|concurrency)::/)",
            first: &[],
        }],
        rust_goal: 90,
        sql_goal: 100,
    },
    Target {
        package: PLATFORM,
        path: "harness/platform/src/platform/charge.rs",
        tiers: &[Tests {
            binaries: IT,
            filter: "test(/^(payments|payment_rules|tenant_rules|scenarios|concurrency)::/)",
            first: &[],
        }],
        rust_goal: 90,
        sql_goal: 100,
    },
    Target {
        package: PLATFORM,
        path: "harness/platform/src/platform/catalog.rs",
        // A plan is read back for a contract's base: the contract rules' tests read it.
        tiers: &[Tests {
            binaries: IT,
            filter: "test(/^(contracts|platform|scenarios|builders|rules|tenant_rules)::/)",
            first: &[],
        }],
        rust_goal: 90,
        sql_goal: 90,
    },
    Target {
        package: PLATFORM,
        path: "harness/platform/src/platform/contracts.rs",
        // The contract rules' own tests besides the platform's (the daily run ends terms).
        tiers: &[Tests {
            binaries: IT,
            filter: "test(/^(contracts|platform|scenarios|payments|builders|rules|payment_rules|tenant_rules|concurrency)::/)",
            first: &[],
        }],
        rust_goal: 90,
        sql_goal: 90,
    },
    Target {
        package: PLATFORM,
        path: "harness/platform/src/platform/accounts.rs",
        // Sign-ups, members and owners: what the builders make, purges remove and sync sends.
        tiers: &[Tests {
            binaries: IT,
            filter: "test(/^(accounts|platform|builders|purge|sync|scenarios|tenant_rules)::/)",
            first: &[],
        }],
        rust_goal: 90,
        sql_goal: 90,
    },
    Target {
        package: PLATFORM,
        path: "harness/platform/src/platform/sync/",
        tiers: SYNC_TESTS,
        rust_goal: 90,
        sql_goal: 90,
    },
    Target {
        package: PLATFORM,
        path: "harness/platform/src/platform/invariants.rs",
        // Only these run the checker: its own tests, and the rule and stress tests reading it.
        tiers: &[Tests {
            binaries: IT,
            filter: "test(/^(invariants|tenant_rules|concurrency)::/)",
            first: &[],
        }],
        rust_goal: 90,
        sql_goal: 90,
    },
    Target {
        package: PLATFORM,
        path: "harness/platform/src/platform/jobs.rs",
        // The calendar's jobs as the clock runs them: what each run counts is checked by the
        // contract rules (a daily run that ends a term) and the sync tests (a sync run).
        tiers: &[Tests {
            binaries: IT,
            filter: "test(/^(platform|scenarios|contracts|sync|payments|rules|payment_rules|tenant_rules|concurrency)::/)",
            first: &[],
        }],
        rust_goal: 90,
        sql_goal: 90,
    },
    Target {
        package: PLATFORM,
        path: "harness/platform/src/platform/",
        tiers: &[Tests {
            binaries: IT,
            filter: "test(/^(platform|scenarios|payments|builders|rules|payment_rules|tenant_rules|concurrency)::/)",
            first: &[],
        }],
        rust_goal: 90,
        sql_goal: 90,
    },
    Target {
        package: PLATFORM,
        path: "harness/platform/src/payments/",
        tiers: &[Tests {
            binaries: LIB_AND_IT,
            filter: "test(/^(payments|payment_rules|tenant_rules|scenarios|concurrency)::/)",
            first: &[],
        }],
        rust_goal: 90,
        sql_goal: 90,
    },
    Target {
        package: PLATFORM,
        path: "harness/platform/src/purge/",
        // Purge's own tests (the scope rule at each row, the catalog walk, the audit) first; a
        // run's purge on a shared database (`shared_db::`: what `run_rows` decides), the bundled
        // purge scenarios and the conformance of a backend without purge next; the deletion
        // order's unit test last.
        tiers: &[
            Tests {
                binaries: IT,
                filter: "test(/^(purge|shared_db|scenarios|conformance|report)::/)",
                first: &["test(/^purge::/)"],
            },
            Tests {
                binaries: LIB,
                filter: "test(/^purge::/)",
                first: &[],
            },
        ],
        rust_goal: 100,
        sql_goal: 100,
    },
    Target {
        package: PLATFORM,
        path: "harness/platform/src/products/mock.rs",
        tiers: PRODUCT_MOCK_TESTS,
        rust_goal: 100,
        sql_goal: 100,
    },
    Target {
        package: PLATFORM,
        path: "harness/platform/src/products/fault.rs",
        tiers: PRODUCT_MOCK_TESTS,
        rust_goal: 100,
        sql_goal: 100,
    },
    Target {
        package: PLATFORM,
        path: "harness/platform/src/products/journal.rs",
        tiers: PRODUCT_MOCK_TESTS,
        rust_goal: 100,
        sql_goal: 100,
    },
    Target {
        package: PLATFORM,
        path: "harness/platform/src/products/control.rs",
        tiers: PRODUCT_MOCK_TESTS,
        rust_goal: 100,
        sql_goal: 100,
    },
    Target {
        package: SCENARIOS,
        path: "harness/scenarios/src/validate.rs",
        // The malformed files first (each a located diagnostic, no database); the bundled
        // scenarios, which the validator must read as written, next; its unit tests last.
        tiers: &[
            Tests {
                binaries: IT,
                filter: "test(/^(scenario_errors|scenarios)::/)",
                first: &["test(/^scenario_errors::/)"],
            },
            Tests {
                binaries: SCENARIOS_LIB,
                filter: "all()",
                first: &[],
            },
        ],
        rust_goal: 100,
        sql_goal: 100,
    },
    Target {
        package: THROWAWAY_PG,
        path: "harness/throwaway-pg/src/decide/",
        // Pure functions of what the I/O found: their unit tests alone, no server, no Docker.
        tiers: &[Tests {
            binaries: THROWAWAY_PG_LIB,
            filter: "test(/^decide::/)",
            first: &[],
        }],
        rust_goal: 100,
        sql_goal: 100,
    },
];

/// Files under a target directory that are never mutated: test modules.
pub(crate) const NOT_MUTATED: &[&str] = &["tests.rs"];

/// A group of files under mutation and the tests that cover them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Target {
    /// The package the files are in (cargo-mutants' `--package`): a mutant rebuilds it and the
    /// crates of the tiers' binaries that depend on it.
    pub(crate) package: &'static str,
    /// A file, or a directory ending in `/` (its `.rs` files, recursively), relative to the
    /// workspace root, under the package's `src/`.
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
    /// The test binaries to build and run.
    pub(crate) binaries: &'static [Binary],
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
        .map(|t| format!("{} {}", build_args(t.binaries).join(" "), t.filter))
        .collect::<Vec<_>>()
        .join(", then ")
}

/// The nextest filterset of the test binaries of `tests`.
pub(crate) fn binaries_filter(tests: &Tests) -> String {
    tests
        .binaries
        .iter()
        .map(|b| format!("binary_id({})", b.binary_id()))
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
            of("harness/platform/src/platform/close.rs"),
            Some("harness/platform/src/platform/close.rs")
        );
        assert_eq!(
            of("harness/platform/src/platform/accounts.rs"),
            Some("harness/platform/src/platform/accounts.rs")
        );
        assert_eq!(
            of("harness/platform/src/platform/sync/delivery.rs"),
            Some("harness/platform/src/platform/sync/")
        );
        assert_eq!(
            of("harness/platform/src/platform/jobs.rs"),
            Some("harness/platform/src/platform/jobs.rs")
        );
        assert_eq!(
            of("harness/platform/src/platform/mod.rs"),
            Some("harness/platform/src/platform/")
        );
        assert_eq!(
            of("harness/platform/src/billing/rules.rs"),
            Some("harness/platform/src/billing/")
        );
        assert_eq!(of("harness/platform/src/billing/tests.rs"), None);
        assert_eq!(of("harness/platform/src/clock.rs"), None);
        assert_eq!(
            of("harness/platform/src/purge/run.rs"),
            Some("harness/platform/src/purge/")
        );
        assert_eq!(
            of("harness/platform/src/products/fault.rs"),
            Some("harness/platform/src/products/fault.rs")
        );
        assert_eq!(of("harness/platform/src/products/server.rs"), None);
        assert_eq!(
            of("harness/scenarios/src/validate.rs"),
            Some("harness/scenarios/src/validate.rs")
        );
        assert_eq!(of("harness/scenarios/src/run.rs"), None);
        assert_eq!(
            of("harness/throwaway-pg/src/decide/keep.rs"),
            Some("harness/throwaway-pg/src/decide/")
        );
        assert_eq!(of("harness/throwaway-pg/src/broker.rs"), None);
    }

    #[test]
    fn every_target_exists_in_the_workspace() {
        let root = crate::workspace_root();
        let planned = plan(&root, None).unwrap();
        assert_eq!(planned.len(), TARGETS.len(), "each target has files");
        assert!(plan(&root, Some(Path::new("harness/platform/src/clock.rs"))).is_err());
    }

    /// The workspace's packages: name to folder, relative to the root, with their manifests.
    fn packages(root: &Path) -> BTreeMap<String, (String, toml::Table)> {
        let manifest: toml::Table = std::fs::read_to_string(root.join("Cargo.toml"))
            .unwrap()
            .parse()
            .unwrap();
        manifest["workspace"]["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|member| {
                let dir = member.as_str().unwrap().to_owned();
                let manifest: toml::Table =
                    std::fs::read_to_string(root.join(&dir).join("Cargo.toml"))
                        .unwrap()
                        .parse()
                        .unwrap();
                let name = manifest["package"]["name"].as_str().unwrap().to_owned();
                (name, (dir, manifest))
            })
            .collect()
    }

    #[test]
    fn the_targets_are_their_packages_code_and_the_binaries_their_tests() {
        let root = crate::workspace_root();
        let packages = packages(&root);
        for target in TARGETS {
            let (dir, _) = &packages[target.package];
            assert!(
                target.path.starts_with(&format!("{dir}/src/")),
                "{} is not in {}",
                target.path,
                target.package
            );
        }
        let (platform, _) = &packages[PLATFORM];
        assert!(MIGRATIONS.starts_with(&format!("{platform}/")));
        assert!(root.join(MIGRATIONS).is_dir());
        for dir in LIBRARY_SOURCES {
            assert!(root.join(dir).is_dir(), "{dir}");
        }
        for binary in Binary::ALL {
            let (_, manifest) = &packages[binary.package()];
            match binary.cargo_target().strip_prefix("--test=") {
                Some(name) => assert!(
                    manifest["test"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|t| t["name"].as_str() == Some(name)),
                    "{} has no test {name}",
                    binary.package()
                ),
                None => {
                    assert_eq!(binary.cargo_target(), "--lib");
                    assert_eq!(binary.binary_id(), binary.package(), "a library's tests");
                }
            }
        }
        // Every binary a tier names is frozen, and every frozen one serves a tier.
        let named: Vec<Binary> = TARGETS
            .iter()
            .flat_map(|t| t.tiers)
            .flat_map(|tests| tests.binaries.iter().copied())
            .collect();
        for binary in Binary::ALL {
            assert!(named.contains(binary), "{binary:?} serves no tier");
        }
    }

    #[test]
    fn a_tier_builds_each_package_and_test_target_once() {
        assert_eq!(
            build_args(LIB_AND_IT),
            [
                "--package=billing-platform",
                "--package=harness-tests",
                "--lib",
                "--test=it"
            ]
        );
        assert_eq!(build_args(IT), ["--package=harness-tests", "--test=it"]);
        assert_eq!(build_args(LIB), ["--package=billing-platform", "--lib"]);
        assert_eq!(
            build_args(Binary::ALL),
            [
                "--package=billing-platform",
                "--package=billing-scenarios",
                "--package=throwaway-pg",
                "--package=harness-tests",
                "--lib",
                "--test=it"
            ]
        );
    }

    #[test]
    fn frozen_runs_select_the_tiers_test_binaries() {
        assert_eq!(
            binaries_filter(&Tests {
                binaries: LIB_AND_IT,
                filter: "all()",
                first: &[],
            }),
            "binary_id(billing-platform) | binary_id(harness-tests::it)"
        );
        assert_eq!(
            binaries_filter(&Tests {
                binaries: IT,
                filter: "all()",
                first: &[],
            }),
            "binary_id(harness-tests::it)"
        );
    }
}
