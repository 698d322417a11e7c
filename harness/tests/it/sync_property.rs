//! Convergence under any fault plan: seeded random histories of users, tenants and subscriptions
//! on two products, delivered to product mocks that are down for an outage of 0 to 72 hours of
//! test time, fail scripted and drawn requests in every way they know (duplicates included) and
//! drift on their own. Once the faults end, one reconcile brings every product to what the
//! platform's sync views say it must hold, with no idempotency key applied twice and no tenant's
//! rows applied out of order: "once a product answers again, it holds the platform's data within
//! one reconcile".

use std::collections::BTreeMap;

use billing_harness::TestEnv;
use billing_harness::platform::SyncPolicy;
use billing_harness::products::api::{ProductState, SubscriptionDoc, TenantDoc, UserDoc};
use billing_harness::products::{Fault, Outage, ProductMock};
use chrono::TimeDelta;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// `HARNESS_SYNC_PLANS` fault plans (`.ci/run` asks for 500), else 24.
fn cases() -> u32 {
    std::env::var("HARNESS_SYNC_PLANS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(24)
}

/// The products of the default catalog, each with a plan to subscribe to.
const PRODUCTS: [(&str, &str); 2] = [("analytics", "pro"), ("crm", "crm-basic")];

/// One thing that happens on the platform or to a product.
#[derive(Debug, Clone)]
enum Step {
    /// A tenant on product `product` (an index of [`PRODUCTS`]), in the default organization or
    /// its own, subscribed or not.
    Tenant {
        product: usize,
        own_org: bool,
        subscribed: bool,
    },
    ChangePlan(usize, &'static str),
    Cancel(usize),
    Spec(usize, u8),
    Delete(usize),
    User,
    Rename(usize),
    Leave(usize),
    /// Tenant `n`'s product changes it behind the platform's back.
    Drift(usize),
    /// Time passes (hours), and the jobs due run.
    Wait(u8),
}

/// What goes wrong with one product.
#[derive(Debug, Clone)]
struct Faults {
    /// Percent of the requests that get a drawn fault.
    rate: u8,
    /// Scripted faults for the first requests.
    script: Vec<(Fault, u32)>,
    /// An outage: its start, in hours after the history begins, its length in hours (0: none)
    /// and its fault.
    outage: (u8, u8, Fault),
}

#[derive(Debug, Clone)]
struct Plan {
    seed: u64,
    /// The retry horizon, in hours: a short one makes dead letters of an outage's rows.
    horizon: u8,
    faults: Vec<Faults>,
    steps: Vec<Step>,
}

fn step() -> impl Strategy<Value = Step> {
    let plan = prop_oneof![Just("free"), Just("pro"), Just("business")];
    prop_oneof![
        3 => (0..PRODUCTS.len(), any::<bool>(), any::<bool>())
            .prop_map(|(product, own_org, subscribed)| Step::Tenant { product, own_org, subscribed }),
        2 => (0..5usize, plan).prop_map(|(n, p)| Step::ChangePlan(n, p)),
        1 => (0..5usize).prop_map(Step::Cancel),
        1 => (0..5usize, any::<u8>()).prop_map(|(n, v)| Step::Spec(n, v)),
        1 => (0..5usize).prop_map(Step::Delete),
        1 => Just(Step::User),
        1 => (0..4usize).prop_map(Step::Rename),
        1 => (0..4usize).prop_map(Step::Leave),
        1 => (0..5usize).prop_map(Step::Drift),
        2 => (1..6u8).prop_map(Step::Wait),
        1 => (6..48u8).prop_map(Step::Wait),
    ]
}

fn faults() -> impl Strategy<Value = Faults> {
    (
        prop_oneof![Just(0u8), Just(10), Just(30), Just(40)],
        proptest::collection::vec(
            (proptest::sample::select(Fault::ALL.to_vec()), 1..3u32),
            0..4,
        ),
        // A held request costs real time on every attempt: outages answer at once. Most start
        // with the history, so that its writes meet them.
        (
            prop_oneof![2 => Just(0u8), 1 => 0..48u8],
            prop_oneof![Just(0u8), 1..=72u8],
            proptest::sample::select(vec![Fault::Status500, Fault::Status503, Fault::Reset]),
        ),
    )
        .prop_map(|(rate, script, outage)| Faults {
            rate,
            script,
            outage,
        })
}

fn plan() -> impl Strategy<Value = Plan> {
    (
        any::<u64>(),
        prop_oneof![Just(1u8), Just(6), Just(72)],
        proptest::collection::vec(faults(), PRODUCTS.len()),
        proptest::collection::vec(step(), 1..12),
    )
        .prop_map(|(seed, horizon, faults, steps)| Plan {
            seed,
            horizon,
            faults,
            steps,
        })
}

#[test]
fn every_fault_plan_converges_within_one_reconcile_once_the_faults_end() {
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

/// Plays `plan`: the faults on each product, the history, then the faults' end, one reconcile
/// and the checks.
async fn play(plan: &Plan) -> Result<(), TestCaseError> {
    let env = TestEnv::builder()
        .today("2026-11-24".parse().unwrap())
        .seed(plan.seed)
        .sync_policy(SyncPolicy {
            horizon: TimeDelta::hours(i64::from(plan.horizon)),
            seed: plan.seed,
            batch: 64,
            timeout: std::time::Duration::from_millis(80),
            ..SyncPolicy::default()
        })
        .build()
        .await
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let start = env.clock().now();
    let mut mocks = Vec::new();
    let mut faults_end = start;
    for ((key, _), faults) in PRODUCTS.iter().zip(&plan.faults) {
        let mock = env.product(key).await.unwrap();
        mock.set_strict(true);
        mock.fault_rate(f64::from(faults.rate) / 100.0, plan.seed);
        for &(fault, times) in &faults.script {
            mock.fail_next(fault, times);
        }
        let (from, hours, fault) = faults.outage;
        if hours > 0 {
            let from = start + TimeDelta::hours(i64::from(from));
            let until = from + TimeDelta::hours(i64::from(hours));
            mock.outage(Outage::new(from, until, fault).unwrap());
            faults_end = faults_end.max(until);
        }
        mocks.push(mock);
    }
    history(&env, &plan.steps, &mocks).await;

    // The faults end: the outages are over, and nothing is drawn or scripted any more.
    env.clock().advance_to(faults_end).await.unwrap();
    for mock in &mocks {
        mock.clear_faults();
    }
    let reconciled = env
        .reconcile()
        .await
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert!(
        reconciled.busy.is_empty() && reconciled.unreachable.is_empty(),
        "one reconcile left rows undelivered (seed {}): {reconciled:?}",
        plan.seed
    );
    for (mock, (key, _)) in mocks.iter().zip(PRODUCTS) {
        prop_assert_eq!(
            holds(mock),
            must_hold(&env, key).await,
            "{} after one reconcile (seed {})",
            key,
            plan.seed
        );
        prop_assert_eq!(mock.applied_twice(), Vec::<String>::new());
        prop_assert_eq!(mock.violations(), Vec::<String>::new());
        prop_assert_eq!(out_of_order(&env, mock).await, Vec::<String>::new());
    }
    Ok(())
}

/// Plays the platform's history; operations the rules refuse are part of it.
async fn history(env: &TestEnv, steps: &[Step], mocks: &[std::sync::Arc<ProductMock>]) {
    let mut tenants: Vec<(usize, billing_harness::builders::Tenant<'_>)> = Vec::new();
    let mut users = Vec::new();
    let org = env.build().org().create().await.unwrap();
    for step in steps {
        match step {
            Step::Tenant {
                product,
                own_org,
                subscribed,
            } => {
                let (key, plan) = PRODUCTS[*product];
                let b = env.build().tenant().product(key);
                let b = if *own_org {
                    b.card(billing_harness::payments::TestCard::Ok)
                } else {
                    b.org(&org)
                };
                let t = if *subscribed {
                    b.plan(plan).create().await
                } else {
                    b.create().await
                };
                tenants.push((*product, t.unwrap()));
            }
            Step::ChangePlan(n, p) => {
                if let Some((_, t)) = tenants.get(*n) {
                    let _ = t.change_plan(*p).await;
                }
            }
            Step::Cancel(n) => {
                if let Some((_, t)) = tenants.get(*n) {
                    let _ = t.cancel().await;
                }
            }
            Step::Spec(n, v) => {
                if let Some((_, t)) = tenants.get(*n) {
                    let _ = t.set_spec(serde_json::json!({ "cpu": v })).await;
                }
            }
            Step::Delete(n) => {
                if let Some((_, t)) = tenants.get(*n) {
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
                if let Some((product, t)) = tenants.get(*n) {
                    // The product may not have it yet: then there is nothing to change.
                    let _ = mocks[*product].drift(t.id().0);
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
}

/// What `mock` holds, in the order [`must_hold`] gives.
fn holds(mock: &ProductMock) -> ProductState {
    let mut state = mock.read_state();
    state.users.sort_by_key(|u| u.id);
    state.tenants.sort_by_key(|t| t.id);
    state.subscriptions.sort_by_key(|s| s.tenant_id);
    state
}

/// What product `key` must hold, read straight from the platform's sync views (the definition
/// the outbox copies from), not through the reconciler under test.
async fn must_hold(env: &TestEnv, key: &str) -> ProductState {
    async fn docs<T: serde::de::DeserializeOwned>(env: &TestEnv, sql: &str, key: &str) -> Vec<T> {
        let rows: Vec<serde_json::Value> = sqlx::query_scalar(sql)
            .bind(key)
            .fetch_all(env.pool())
            .await
            .unwrap();
        rows.into_iter()
            .map(|doc| serde_json::from_value(doc).unwrap())
            .collect()
    }
    let of = "join products p on p.id = v.product_id where p.key = $1";
    ProductState {
        users: docs::<UserDoc>(
            env,
            &format!(
                "select distinct on (v.entity_id) v.payload from sync_users v {of} \
                 order by v.entity_id"
            ),
            key,
        )
        .await,
        tenants: docs::<TenantDoc>(
            env,
            &format!("select v.payload from sync_tenants v {of} order by v.entity_id"),
            key,
        )
        .await,
        subscriptions: docs::<SubscriptionDoc>(
            env,
            &format!("select v.payload from sync_subscriptions v {of} order by v.tenant_id"),
            key,
        )
        .await,
    }
}

/// The tenants whose rows `mock` applied out of outbox order: for each (product, tenant) key,
/// the rows it applied (by their idempotency keys, the outbox ids) must come in increasing order.
async fn out_of_order(env: &TestEnv, mock: &ProductMock) -> Vec<String> {
    let keys: BTreeMap<i64, Option<i64>> = sqlx::query_as::<_, (i64, Option<i64>)>(
        "select o.id, o.tenant_id from sync_outbox o join products p on p.id = o.product_id \
         where p.key = $1",
    )
    .bind(mock.key())
    .fetch_all(env.pool())
    .await
    .unwrap()
    .into_iter()
    .collect();
    let mut last: BTreeMap<i64, i64> = BTreeMap::new();
    let mut wrong = Vec::new();
    for request in mock.journal().iter().filter(|r| r.applied) {
        let Some(id) = request
            .idempotency_key
            .as_ref()
            .and_then(|k| k.parse().ok())
        else {
            continue;
        };
        // A repair's deletion of what the platform does not have is ordered with no tenant.
        let Some(Some(tenant)) = keys.get(&id) else {
            continue;
        };
        if let Some(before) = last.insert(*tenant, id)
            && before > id
        {
            wrong.push(format!(
                "tenant {tenant}: row {id} applied after row {before}"
            ));
        }
    }
    wrong
}
