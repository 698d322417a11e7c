//! Convergence under any fault plan: seeded random stories of users, tenants and subscriptions,
//! delivered to a product mock that fails scripted and drawn requests in every way it knows and
//! drifts on its own; after the dispatcher and the reconciler run to idle, the product equals the
//! platform and no idempotency key was applied twice.

use billing_harness::TestEnv;
use billing_harness::platform::SyncPolicy;
use billing_harness::products::Fault;
use chrono::TimeDelta;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// `HARNESS_SYNC_PLANS` fault plans (`.ci/run` asks for 500), else 48.
fn cases() -> u32 {
    std::env::var("HARNESS_SYNC_PLANS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(48)
}

/// One thing that happens on the platform or to the product.
#[derive(Debug, Clone)]
enum Step {
    /// A tenant in the default or its own organization, subscribed to a plan or not.
    Tenant {
        own_org: bool,
        plan: Option<&'static str>,
    },
    ChangePlan(usize, &'static str),
    Cancel(usize),
    Spec(usize, u8),
    Delete(usize),
    User,
    Rename(usize),
    Leave(usize),
    /// The product changes tenant `n` behind the platform's back.
    Drift(usize),
    /// Time passes (hours), and the jobs due run.
    Wait(u8),
}

#[derive(Debug, Clone)]
struct Plan {
    rate: u8,
    seed: u64,
    script: Vec<(Fault, u32)>,
    steps: Vec<Step>,
}

fn step() -> impl Strategy<Value = Step> {
    let plan = prop_oneof![Just("free"), Just("pro"), Just("business")];
    prop_oneof![
        3 => (any::<bool>(), proptest::option::of(plan.clone()))
            .prop_map(|(own_org, plan)| Step::Tenant { own_org, plan }),
        2 => (0..4usize, plan).prop_map(|(n, p)| Step::ChangePlan(n, p)),
        1 => (0..4usize).prop_map(Step::Cancel),
        1 => (0..4usize, any::<u8>()).prop_map(|(n, v)| Step::Spec(n, v)),
        1 => (0..4usize).prop_map(Step::Delete),
        1 => Just(Step::User),
        1 => (0..4usize).prop_map(Step::Rename),
        1 => (0..4usize).prop_map(Step::Leave),
        1 => (0..4usize).prop_map(Step::Drift),
        2 => (1..48u8).prop_map(Step::Wait),
    ]
}

fn plan() -> impl Strategy<Value = Plan> {
    (
        prop_oneof![Just(0u8), Just(10), Just(30), Just(40)],
        any::<u64>(),
        proptest::collection::vec(
            (proptest::sample::select(Fault::ALL.to_vec()), 1..3u32),
            0..4,
        ),
        proptest::collection::vec(step(), 1..10),
    )
        .prop_map(|(rate, seed, script, steps)| Plan {
            rate,
            seed,
            script,
            steps,
        })
}

#[test]
fn every_fault_plan_converges_with_no_key_applied_twice() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let mut config = Config::with_cases(cases());
    config.failure_persistence = None;
    config.max_shrink_iters = 256;
    let mut runner = TestRunner::new(config);
    let result = runner.run(&plan(), |plan| runtime.block_on(play(&plan)));
    if let Err(e) = result {
        panic!("a fault plan did not converge: {e}");
    }
}

async fn play(plan: &Plan) -> Result<(), TestCaseError> {
    let env = TestEnv::builder()
        .today("2026-11-24".parse().unwrap())
        .seed(plan.seed)
        .sync_policy(SyncPolicy {
            // A horizon no fault rate here outlasts, short waits.
            horizon: TimeDelta::days(3),
            horizons: Default::default(),
            base_backoff: TimeDelta::seconds(1),
            max_backoff: TimeDelta::seconds(30),
            seed: plan.seed,
            batch: 64,
            timeout: std::time::Duration::from_millis(80),
        })
        .build()
        .await
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let mock = env.product("analytics").await.unwrap();
    mock.set_strict(true);
    mock.fault_rate(f64::from(plan.rate) / 100.0, plan.seed);
    for &(fault, times) in &plan.script {
        mock.fail_next(fault, times);
    }
    let mut tenants = Vec::new();
    let mut users = Vec::new();
    let org = env.build().org().create().await.unwrap();
    for step in &plan.steps {
        match step {
            Step::Tenant { own_org, plan } => {
                let b = env.build().tenant().product("analytics");
                let b = if *own_org {
                    b.card(billing_harness::payments::TestCard::Ok)
                } else {
                    b.org(&org)
                };
                let t = match plan {
                    Some(p) => b.plan(*p).create().await,
                    None => b.create().await,
                };
                tenants.push(t.unwrap());
            }
            Step::ChangePlan(n, p) => {
                if let Some(t) = tenants.get(*n) {
                    let _ = t.change_plan(*p).await;
                }
            }
            Step::Cancel(n) => {
                if let Some(t) = tenants.get(*n) {
                    let _ = t.cancel().await;
                }
            }
            Step::Spec(n, v) => {
                if let Some(t) = tenants.get(*n) {
                    let _ = t.set_spec(serde_json::json!({ "cpu": v })).await;
                }
            }
            Step::Delete(n) => {
                if let Some(t) = tenants.get(*n) {
                    let _ = t.delete().await;
                }
            }
            Step::User => users.push(env.build().user().org(&org).create().await.unwrap()),
            Step::Rename(n) => {
                if let Some(u) = users.get(*n) {
                    let _ = u.rename(&format!("Renamed {n}")).await;
                }
            }
            Step::Leave(n) => {
                if let Some(u) = users.get(*n) {
                    let _ = u.leave().await;
                }
            }
            Step::Drift(n) => {
                if let Some(t) = tenants.get(*n) {
                    // The product may not have it yet: then there is nothing to change.
                    let _ = mock.drift(t.id().0);
                }
            }
            Step::Wait(hours) => {
                env.clock()
                    .advance(TimeDelta::hours(i64::from(*hours)))
                    .await
                    .unwrap();
            }
        }
    }
    let converged = env
        .converge()
        .await
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert!(
        converged.is_converged(),
        "not converged (seed {}):\n{converged}",
        plan.seed
    );
    prop_assert_eq!(mock.applied_twice(), Vec::<String>::new());
    Ok(())
}
