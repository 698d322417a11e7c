//! Every file under `scenarios/` runs through the one runner, holds, and matches its snapshot
//! under `snapshots/scenarios/`; the journal of each product that received a write matches its
//! snapshot under `snapshots/sync/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use billing_harness::TestEnv;
use billing_harness::products::RedactedRequest;
use billing_scenarios::{self as scenario, Outcome};

/// Scenarios played at once: each waits on its database far more than on the CPU.
const AT_ONCE: usize = 3;

/// What one scenario's run shows: its outcome, and the redacted journal of each product that
/// received a write.
type Played = (Outcome, Vec<(String, Vec<RedactedRequest>)>);

/// Plays every scenario file of `dir` on a database of its own, [`AT_ONCE`] at a time; by file
/// name, what it showed or why there is nothing.
async fn play_all(dir: &Path) -> BTreeMap<String, Result<Played, String>> {
    let slots = Arc::new(tokio::sync::Semaphore::new(AT_ONCE));
    let mut plays = tokio::task::JoinSet::new();
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml") && !p.ends_with("catalog.toml"))
        .collect();
    for path in files {
        let slots = Arc::clone(&slots);
        plays.spawn(async move {
            let _slot = slots.acquire_owned().await.unwrap();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, play(&path).await)
        });
    }
    plays.join_all().await.into_iter().collect()
}

/// One scenario on a fresh database with [`crate::support::distinct_ids`].
async fn play(path: &Path) -> Result<Played, String> {
    let scenario = scenario::load(path, None).map_err(|e| e.render())?;
    let env = scenario
        .test_env()
        .build()
        .await
        .map_err(|e| e.to_string())?;
    crate::support::distinct_ids(&env).await;
    let outcome = scenario::run(&scenario, &env)
        .await
        .map_err(|e| e.to_string())?;
    let journals = scenario::snapshot::journals(&env)
        .await
        .map_err(|e| e.to_string())?;
    Ok((outcome, journals))
}

/// A fresh database whose clock starts where `scenario` starts, with the seed every scenario
/// run uses.
pub(crate) async fn scenario_env(scenario: &scenario::Scenario) -> TestEnv {
    scenario.test_env().build().await.unwrap()
}

#[test]
fn every_scenario_holds_and_matches_its_snapshot() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios");
    let mut outcomes = runtime.block_on(play_all(&dir));
    let with_expectations: Vec<String> = outcomes
        .keys()
        .filter(|name| {
            scenario::load(&dir.join(name.as_str()), None).is_ok_and(|s| !s.expectations.is_empty())
        })
        .cloned()
        .collect();
    assert!(
        with_expectations.len() >= 10,
        "at least ten scenarios carry [[expect]] tables worked out by hand: {with_expectations:?}"
    );
    insta::glob!("../../../scenarios", "*.toml", |path| {
        if path.file_name().is_some_and(|n| n == "catalog.toml") {
            return;
        }
        let name = path.file_name().unwrap().to_string_lossy();
        let (outcome, journals) = outcomes
            .remove(name.as_ref())
            .unwrap_or_else(|| panic!("{name} was not played"))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(outcome.holds, "{}", outcome.to_text());
        if path
            .file_stem()
            .is_some_and(|s| s.to_string_lossy().starts_with("sync-"))
        {
            assert!(
                outcome
                    .products
                    .iter()
                    .any(|p| p.faults_applied > 0 || !p.repaired.is_empty()),
                "a sync- scenario puts faults on a product or makes it drift:\n{}",
                outcome.to_text()
            );
        }
        assert!(
            outcome.products.iter().all(|p| p.converged) && !outcome.products.is_empty(),
            "{}",
            outcome.to_text()
        );
        insta::with_settings!({
            snapshot_path => "../../../snapshots/scenarios",
            prepend_module_to_snapshot => false,
            omit_expression => true,
        }, {
            insta::assert_snapshot!(scenario::snapshot::outcome_body(&outcome));
        });
        insta::with_settings!({
            snapshot_path => "../../../snapshots/sync",
            prepend_module_to_snapshot => false,
            omit_expression => true,
        }, {
            for (product, journal) in &journals {
                insta::assert_snapshot!(
                    product.as_str(),
                    scenario::snapshot::journal_body(journal)
                );
            }
        });
    });
}

/// Wrong `[[expect]]` tables fail the run, each with a problem at its own field (file, line,
/// column), expected vs got, and what the run wrote; the right ones stay quiet.
#[tokio::test]
async fn a_wrong_expectation_fails_the_run_with_a_diagnostic_at_the_expectation() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios");
    let catalog = scenario::parse_catalog(
        "catalog.toml",
        &std::fs::read_to_string(dir.join("catalog.toml")).unwrap(),
    )
    .unwrap();
    let source = std::fs::read_to_string(dir.join("charged-on-the-5th.toml"))
        .unwrap()
        .replace(
            r#"period = "2026-10", total = "99000""#,
            r#"period = "2026-10", total = "99001""#,
        )
        .replace(
            r#"on = "2026-11-05", outcome = "succeeded""#,
            r#"on = "2026-11-06", outcome = "succeeded""#,
        );
    let s = scenario::parse("wrong.toml", &source, Some(&catalog)).unwrap();
    let env = scenario_env(&s).await;
    let outcome = scenario::run(&s, &env).await.unwrap();
    assert!(!outcome.holds);
    let mismatches = s.check(&outcome).unwrap_err();
    let found: Vec<(usize, usize, &str)> = mismatches
        .problems()
        .iter()
        .map(|p| (p.line(), p.column(), p.message()))
        .collect();
    let line_of = |needle: &str| source.lines().position(|l| l.contains(needle)).unwrap() + 1;
    let column_of = |needle: &str, value: &str| {
        let line = source.lines().nth(line_of(needle) - 1).unwrap();
        line.find(value).unwrap() + 1
    };
    assert_eq!(
        found,
        vec![
            (
                line_of("total = \"99001\""),
                column_of("total = \"99001\"", "\"99001\""),
                "invoice of acme-analytics for 2026-10: expected total 99001, got 99000"
            ),
            (
                line_of("on = \"2026-11-06\""),
                column_of("on = \"2026-11-06\"", "{"),
                "expected a payment attempt of acme-analytics on 2026-11-06, got none"
            ),
        ]
    );
    assert_eq!(
        mismatches.problems()[1].hint(),
        Some("acme-analytics's attempts: 2026-11-05 (succeeded)")
    );
    let at = format!(
        "wrong.toml:{}:{}: invoice of acme-analytics for 2026-10: expected total 99001, got 99000",
        found[0].0, found[0].1
    );
    assert!(outcome.failures.contains(&at), "{:?}", outcome.failures);
}
