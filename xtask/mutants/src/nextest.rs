//! nextest as the command drives it: the options and environment of a test run of a mutant, what
//! its exit code means, and what its output tells (the tests that passed, with their times, the
//! first that failed, a listing's names).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use anyhow::bail;

use crate::outcome::Status;
use crate::process::Ended;
use crate::targets::Binary;

/// nextest's exit code when a test failed (`NextestExitCode::TEST_RUN_FAILED`).
pub(crate) const TEST_RUN_FAILED: i32 = 100;

/// How a test run of a mutant ended, as its status: a failed test catches it, anything else
/// but a pass (no test selected, tests that could not be listed or started) is an error, never
/// a catch.
///
/// # Errors
/// The run ended with another code than a pass or a failed test; `log` tells why.
pub(crate) fn tested_status(ended: Ended, log: &Path) -> anyhow::Result<Status> {
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

/// How many of the tests that caught a target's latest mutants a mutant meets first.
pub(crate) const CATCHERS: usize = 3;

/// How many of the run's most frequent catchers a mutant meets next, when those of its target
/// did not catch it.
pub(crate) const FREQUENT_CATCHERS: usize = 8;

/// At most [`FREQUENT_CATCHERS`] of the tests in `caught_by` (how many mutants each caught
/// first), the most frequent first, that are among `tests` and not in `local`.
pub(crate) fn frequent_catchers(
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
pub(crate) fn catchers_filter(filter: &str, catchers: &[String]) -> String {
    let names: Vec<String> = catchers.iter().map(|c| format!("test(={c})")).collect();
    format!("({filter}) & ({})", names.join(" | "))
}

/// The name of the first test that failed (or ran past its time) in the part of nextest's
/// `log` after byte `start`.
pub(crate) fn first_failure(log: &Path, start: u64) -> Option<String> {
    let bytes = std::fs::read(log).ok()?;
    let tail = bytes.get(usize::try_from(start).ok()?..)?;
    failed_test(&String::from_utf8_lossy(tail))
}

/// The names of the tests of the [binaries](Binary) in nextest's one-line listing `output`
/// (`binary-id name`).
pub(crate) fn listed_tests(output: &str) -> BTreeSet<String> {
    output
        .lines()
        .filter_map(
            |line| match line.split_whitespace().collect::<Vec<_>>()[..] {
                [id, name] if Binary::ALL.iter().any(|b| b.binary_id() == id) => {
                    Some(name.to_owned())
                }
                _ => None,
            },
        )
        .collect()
}

/// The tests that nextest's `output` reports as passed, each with its time.
pub(crate) fn passed_tests(output: &str) -> BTreeMap<String, Duration> {
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
pub(crate) fn tier_time(times: &BTreeMap<String, Duration>, names: &BTreeSet<String>) -> Duration {
    names.iter().filter_map(|n| times.get(n)).sum()
}

/// The first test that nextest's `output` reports as failed or timed out.
pub(crate) fn failed_test(output: &str) -> Option<String> {
    output.lines().find_map(|line| {
        let line = line.trim_start();
        let rest = line
            .strip_prefix("FAIL [")
            .or_else(|| line.strip_prefix("TIMEOUT ["))?;
        rest.split_whitespace().last().map(str::to_owned)
    })
}

/// How a test run gets its test binaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Build {
    /// Build them from the tree and stop (`--no-run`).
    Only,
    /// Build them from the tree, then run them.
    Tree,
    /// Run the frozen unmutated ones, when there are; else as [`Build::Tree`].
    Frozen,
}

/// nextest's option to stop at the first failing test, ending the tests still running (the
/// workspace's nextest profile runs them all): one failure is all a mutant needs.
pub(crate) const STOP_AT_FIRST_FAILURE: &str = "--max-fail=1:immediate";

/// What every test run gets: insta never writes or accepts snapshots while a mutant is in the
/// tree (as cargo-mutants does for its own runs), proptest writes no `proptest-regressions/`
/// file for a failure a mutant caused, the harness keeps no database of a test a mutant
/// failed, and a test over a glob of files (the scenarios) stops at the first file that fails.
pub(crate) const TEST_ENV: &[(&str, &str)] = &[
    ("INSTA_UPDATE", "no"),
    ("INSTA_FORCE_PASS", "0"),
    ("PROPTEST_DISABLE_FAILURE_PERSISTENCE", "1"),
    ("HARNESS_KEEP_FAILED", "0"),
    ("INSTA_GLOB_FAIL_FAST", "1"),
];

/// The nextest profile of [`first_profile`].
pub(crate) const FIRST_PROFILE: &str = "xtask-mutants-first";

/// A nextest tool config with a profile that runs the tests of each filterset of `first`
/// before those of the next and before the others (it inherits the workspace's `default`).
pub(crate) fn first_profile(first: &[&str]) -> String {
    let mut config = format!("[profile.{FIRST_PROFILE}]\n");
    for (filter, priority) in first.iter().zip((0..=100).rev()) {
        config.push_str(&format!(
            "\n[[profile.{FIRST_PROFILE}.overrides]]\nfilter = {}\npriority = {priority}\n",
            toml::Value::from(*filter)
        ));
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;

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
        PASS [   0.735s] (1/3) harness-tests::it purge::one
        PASS [   1.627s] (2/3) harness-tests::it sync::two
        FAIL [   0.100s] (3/3) harness-tests::it sync::three
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
        let output = "harness-tests::it platform::a_close
billing-platform billing::rules::tests::proration
harness-tests some_lib_test
warning: something else
";
        let listed: Vec<String> = listed_tests(output).into_iter().collect();
        assert_eq!(
            listed,
            ["billing::rules::tests::proration", "platform::a_close"]
        );
    }

    #[test]
    fn the_first_failing_test_is_read_from_nextest_output() {
        let output = "        PASS [   0.512s] (1/64) harness-tests::it platform::a\n\
                      \x20       FAIL [  11.675s] (2/64) harness-tests::it scenarios::every\n\
                      \x20    SIGTERM [   0.100s] (3/64) harness-tests::it platform::b\n\
                      \x20       FAIL [  11.675s] harness-tests::it scenarios::every\n";
        assert_eq!(failed_test(output).as_deref(), Some("scenarios::every"));
        assert_eq!(
            failed_test("     TIMEOUT [  60.000s] (1/1) harness-tests::it rules::slow\n")
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
}
