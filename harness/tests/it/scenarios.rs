//! Every file under `scenarios/` runs through the one runner, holds, and matches its snapshot
//! under `snapshots/scenarios/`; the journal of each product that received a write matches its
//! snapshot under `snapshots/sync/`.

use billing_harness::TestEnv;
use billing_harness::products::redacted;
use billing_harness::scenario;

/// A fresh database whose clock starts where `scenario` starts, with the seed every scenario
/// run uses.
pub(crate) async fn scenario_env(scenario: &scenario::Scenario) -> TestEnv {
    scenario.test_env().build().await.unwrap()
}

#[test]
fn every_scenario_holds_and_matches_its_snapshot() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    insta::glob!("../../../scenarios", "*.toml", |path| {
        if path.file_name().is_some_and(|n| n == "catalog.toml") {
            return;
        }
        let scenario = scenario::load(path, None).unwrap_or_else(|e| panic!("{}", e.render()));
        let (outcome, journals) = runtime.block_on(async {
            let env = scenario_env(&scenario).await;
            let outcome = scenario::run(&scenario, &env).await.unwrap();
            let mut journals = Vec::new();
            for mock in env.products().await.unwrap() {
                let journal = mock.journal();
                if journal.iter().any(|r| r.method != "GET") {
                    journals.push((mock.key().to_owned(), redacted(&journal)));
                }
            }
            (outcome, journals)
        });
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
            insta::assert_yaml_snapshot!(outcome);
        });
        insta::with_settings!({
            snapshot_path => "../../../snapshots/sync",
            prepend_module_to_snapshot => false,
            omit_expression => true,
        }, {
            for (product, journal) in &journals {
                insta::assert_yaml_snapshot!(product.as_str(), journal);
            }
        });
    });
}
