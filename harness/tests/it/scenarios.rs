//! Every file under `scenarios/` runs through the one runner, holds, and matches its snapshot
//! under `snapshots/scenarios/`.

use billing_harness::TestEnv;
use billing_harness::scenario;

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
        let outcome = runtime.block_on(async {
            let env = TestEnv::builder()
                .start_at(scenario.start_instant())
                .seed(1)
                .build()
                .await
                .unwrap();
            crate::support::distinct_ids(&env).await;
            scenario::run(&scenario, &env).await.unwrap()
        });
        assert!(outcome.holds, "{}", outcome.to_text());
        insta::with_settings!({
            snapshot_path => "../../../snapshots/scenarios",
            prepend_module_to_snapshot => false,
            omit_expression => true,
        }, {
            insta::assert_yaml_snapshot!(outcome);
        });
    });
}
