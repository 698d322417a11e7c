//! `cargo xtask bench sync`: deliveries per second through the product-sync dispatcher to the
//! test's product mocks over HTTP on 127.0.0.1, fault-free and at a drawn fault rate.
//!
//! The outbox rows are seeded with set-based SQL (not timed); only the dispatch to idle is timed.
//! The faulty run jumps from one backoff to the next with `next_due` instead of sleeping, so
//! its time is the work plus the real waits of held (timed-out) requests.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use billing_harness::TestEnv;
use billing_harness::builders::default_catalog;
use billing_harness::platform::SyncPolicy;
use billing_harness::platform::sync::{dispatch, next_due};
use billing_harness::products::{Fault, SyncClient};
use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

/// Organizations, each with one tenant (every fourth on `crm`, the rest on `analytics`).
const TENANTS: i64 = 1_000;
/// Users per organization: each is synced to the organization's tenant.
const USERS_PER_ORG: i64 = 2;
/// The share of writes that get a drawn fault in the faulty run.
const FAULT_RATE: f64 = 0.3;
/// The seed of the drawn faults.
const FAULT_SEED: u64 = 30;
/// How long the dispatcher waits for an answer: short, since a `timeout` fault holds the
/// request past it and every held request costs this much real time.
const TIMEOUT: Duration = Duration::from_millis(100);

/// How often the dispatcher runs, in the test clock's time: as a production poller would, it
/// delivers every row whose backoff ended since its last run, instead of one run per jittered
/// instant. Idle time between runs is skipped with `next_due`, never waited for.
const POLL: TimeDelta = TimeDelta::seconds(1);

/// One timed dispatch to idle.
#[derive(Debug, Serialize)]
struct Run {
    /// Rows delivered (answered `2xx`), each counted once.
    delivered: usize,
    /// Attempts that failed (and were retried after a backoff).
    failed: usize,
    /// Rows given up on.
    dead_lettered: usize,
    /// Dispatcher runs, one per instant of the test clock's time it was run at.
    dispatches: usize,
    /// Wall time of the run.
    seconds: f64,
    /// `delivered / seconds`.
    deliveries_per_second: f64,
}

/// What `bench sync --json` prints.
#[derive(Debug, Serialize)]
pub(super) struct SyncBenchReport {
    /// Successful deliveries per second, fault-free.
    deliveries_per_second: f64,
    /// Successful deliveries per second with [`FAULT_RATE`] of the writes faulted.
    deliveries_per_second_faulty: f64,
    /// Outbox rows of each run.
    rows: i64,
    /// Tenants, each its own ordering key.
    tenants: i64,
    /// The products the rows go to.
    products: Vec<String>,
    /// The most rows a dispatcher round claims.
    batch: i64,
    /// The dispatcher's limit per request, in milliseconds.
    timeout_ms: u64,
    /// Always `null`: a row is no longer given up after a number of attempts but after its retry
    /// horizon (`retry_horizon_hours`); the field stays for readers of earlier reports.
    max_attempts: Option<u32>,
    /// How long a failing row is retried before it is dead-lettered, in hours of the test clock.
    retry_horizon_hours: i64,
    /// How often the dispatcher runs, in seconds of the test clock.
    poll_seconds: i64,
    /// The share of writes faulted in the faulty run.
    fault_rate: f64,
    /// The seed of the first product's drawn faults; each next product's is one more.
    fault_seed: u64,
    /// The faults the mocks drew in the faulty run, by name (every fault equally likely).
    faults: BTreeMap<String, u64>,
    /// The run without faults.
    fault_free: Run,
    /// The run with drawn faults.
    faulty: Run,
}

/// Runs the bench.
pub(super) fn run() -> anyhow::Result<SyncBenchReport> {
    // Two workers: the dispatcher's deliveries and the mocks' servers share the machine's cores.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(bench())
}

async fn bench() -> anyhow::Result<SyncBenchReport> {
    let start = crate::fixtures::seoul(2026, 10, 1);
    let policy = SyncPolicy {
        timeout: TIMEOUT,
        seed: 1,
        ..SyncPolicy::default()
    };
    // The mocks hold a `timeout` fault for the env's policy timeout plus a margin.
    let env = TestEnv::builder()
        .start_at(start)
        .seed(1)
        .sync_policy(policy.clone())
        .build()
        .await?;
    env.platform()
        .install_catalog(&default_catalog(), start)
        .await?;
    let products = vec!["analytics".to_owned(), "crm".to_owned()];
    let mut mocks = Vec::new();
    for key in &products {
        mocks.push(env.product(key).await?);
    }
    eprintln!(
        "seeding {TENANTS} tenants with {USERS_PER_ORG} users each and their outbox rows ..."
    );
    for statement in seed_statements() {
        sqlx::query(&statement)
            .bind(start)
            .execute(env.pool())
            .await?;
    }
    let client = SyncClient::new(policy.timeout);

    let rows = queue(&env, start).await?;
    let fault_free = dispatch_to_idle(&env, &client, &policy, start).await?;
    // A fault-free run can still see a failure: an answer slower than the short timeout on a
    // busy machine. It is retried and reported, not hidden.
    anyhow::ensure!(
        fault_free.delivered as i64 == rows,
        "the fault-free run delivered {} of {rows} rows",
        fault_free.delivered
    );

    for (n, mock) in mocks.iter().enumerate() {
        mock.fault_rate(FAULT_RATE, FAULT_SEED + n as u64);
    }
    let later = start + TimeDelta::days(1);
    let queued = queue(&env, later).await?;
    anyhow::ensure!(queued == rows, "queued {queued} rows, then {rows}");
    let faulty = dispatch_to_idle(&env, &client, &policy, later).await?;
    anyhow::ensure!(
        faulty.delivered + faulty.dead_lettered == rows as usize,
        "the faulty run delivered {} and gave up {} of {rows} rows",
        faulty.delivered,
        faulty.dead_lettered
    );
    let mut faults = BTreeMap::new();
    for mock in &mocks {
        for request in mock.journal() {
            if let Some(fault) = request.fault {
                *faults.entry(fault.as_str().to_owned()).or_insert(0) += 1;
            }
        }
    }
    for fault in Fault::ALL {
        faults.entry(fault.as_str().to_owned()).or_insert(0);
    }
    Ok(SyncBenchReport {
        deliveries_per_second: fault_free.deliveries_per_second,
        deliveries_per_second_faulty: faulty.deliveries_per_second,
        rows,
        tenants: TENANTS,
        products,
        batch: policy.batch,
        timeout_ms: u64::try_from(policy.timeout.as_millis()).unwrap_or(u64::MAX),
        max_attempts: None,
        retry_horizon_hours: policy.horizon.num_hours(),
        poll_seconds: POLL.num_seconds(),
        fault_rate: FAULT_RATE,
        fault_seed: FAULT_SEED,
        faults,
        fault_free,
        faulty,
    })
}

/// Queues, at `at`, an upsert of every user, tenant and subscription for its product, in the
/// platform's order per tenant (users, the tenant, the subscription); returns how many rows.
async fn queue(env: &TestEnv, at: DateTime<Utc>) -> anyhow::Result<i64> {
    let done = sqlx::query(
        "insert into sync_outbox (product_id, tenant_id, entity, operation, entity_id, payload, created_at, available_at) \
         select product_id, tenant_id, entity, 'upsert', entity_id, payload, $1, $1 from ( \
           select product_id, tenant_id, 'user' as entity, entity_id, payload, 0 as rank from sync_users \
           union all select product_id, tenant_id, 'tenant', entity_id, payload, 1 from sync_tenants \
           union all select product_id, tenant_id, 'subscription', entity_id, payload, 2 from sync_subscriptions \
         ) r order by tenant_id, rank, entity_id",
    )
    .bind(at)
    .execute(env.pool())
    .await?;
    sqlx::query("analyze sync_outbox")
        .execute(env.pool())
        .await?;
    Ok(i64::try_from(done.rows_affected())?)
}

/// Runs the dispatcher from `at` until no live row is left, moving through each backoff as the
/// clock would (without waiting for it); times the lot.
async fn dispatch_to_idle(
    env: &TestEnv,
    client: &SyncClient,
    policy: &SyncPolicy,
    mut at: DateTime<Utc>,
) -> anyhow::Result<Run> {
    let horizon = TimeDelta::days(1);
    let (mut delivered, mut failed, mut dead_lettered, mut dispatches) = (0, 0, 0, 0);
    let began = Instant::now();
    loop {
        let report = dispatch(env.pool(), client, policy, at).await?;
        dispatches += 1;
        delivered += report.delivered;
        failed += report.failed;
        dead_lettered += report.dead_lettered;
        match next_due(env.pool(), at, at + horizon).await? {
            Some(next) if next > at => at = next.max(at + POLL),
            _ => break,
        }
    }
    let seconds = began.elapsed().as_secs_f64();
    Ok(Run {
        delivered,
        failed,
        dead_lettered,
        dispatches,
        seconds: (seconds * 1000.0).round() / 1000.0,
        deliveries_per_second: (delivered as f64 / seconds).round(),
    })
}

/// The text `bench sync` prints for people.
pub(super) fn text(r: &SyncBenchReport) -> String {
    let mix: Vec<String> = r.faults.iter().map(|(f, n)| format!("{f} {n}")).collect();
    format!(
        "product sync: {rows} outbox rows (users, tenants, subscriptions) of {tenants} tenants to \
         the {products} mocks over HTTP, {batch} rows a round\n\
         \x20 fault-free   {ok:>7.0} deliveries/s  ({d1} delivered in {s1:.3} s; dispatcher runs: {n1}, \
         failed attempts: {f1})\n\
         \x20 {pct:.0}% faults   {bad:>7.0} deliveries/s  ({d2} delivered in {s2:.3} s; dispatcher runs: {n2}, \
         failed attempts retried: {f2}, dead-lettered: {x2})\n\
         faults drawn with probability {rate} per write (seed {seed} for the first product, one more for each next), each of the {kinds} kinds equally \
         likely: {mix}.\n\
         status_500, status_503, reset and timeout apply nothing; reply_lost applies but loses the \
         answer; delay and duplicate succeed. A timeout holds the request past the dispatcher's \
         limit, set to {timeout} ms for this bench (the default is 2 s), so each one costs that much \
         real time. The dispatcher runs every {poll} s of the test clock; backoffs and idle time \
         are skipped over with next_due, not waited for; only the dispatch is timed.",
        rows = r.rows,
        tenants = r.tenants,
        products = r.products.join(" and "),
        batch = r.batch,
        ok = r.deliveries_per_second,
        d1 = r.fault_free.delivered,
        s1 = r.fault_free.seconds,
        n1 = r.fault_free.dispatches,
        f1 = r.fault_free.failed,
        pct = r.fault_rate * 100.0,
        bad = r.deliveries_per_second_faulty,
        d2 = r.faulty.delivered,
        s2 = r.faulty.seconds,
        n2 = r.faulty.dispatches,
        f2 = r.faulty.failed,
        x2 = r.faulty.dead_lettered,
        rate = r.fault_rate,
        seed = r.fault_seed,
        kinds = Fault::ALL.len(),
        mix = mix.join(", "),
        timeout = r.timeout_ms,
        poll = r.poll_seconds,
    )
}

/// Set-based seed: organizations with their users, one tenant each, an active subscription with
/// its contract and limits. `$1` is the instant the rows are created at.
fn seed_statements() -> Vec<String> {
    vec![
        format!(
            "insert into organizations (name, created_at) \
             select 'sync-bench-' || g, $1 from generate_series(1, {TENANTS}) g"
        ),
        format!(
            "insert into users (organization_id, email, name, role, locale, created_at) \
             select o.id, 'user' || n || '.' || o.id || '@sync-bench.example', 'User ' || n || ' of ' || o.name, \
                    case when n = 1 then 'owner' else 'member' end, 'ko-KR', $1 \
             from organizations o cross join generate_series(1, {USERS_PER_ORG}) n"
        ),
        "insert into tenants (organization_id, product_id, name, slug, status, created_at) \
         select o.id, p.id, o.name, o.name, 'active', $1 from organizations o \
         join products p on p.key = case when o.id % 4 = 0 then 'crm' else 'analytics' end"
            .to_owned(),
        "insert into subscriptions (tenant_id, plan_id, status, started_on, current_period_start, current_period_end, created_at, updated_at) \
         select t.id, pl.id, 'active', date '2026-10-01', date '2026-10-01', date '2026-11-01', $1, $1 \
         from tenants t join plans pl on pl.product_id = t.product_id and pl.key in ('pro', 'crm-basic')"
            .to_owned(),
        "insert into contracts (subscription_id, plan_id, kind, starts_on, created_at) \
         select id, plan_id, 'plan', started_on, $1 from subscriptions"
            .to_owned(),
        "insert into contract_details (contract_id, option_key, value) \
         select c.id, l.option_key, l.value from contracts c join plan_limits l on l.plan_id = c.plan_id \
         where $1 is not null"
            .to_owned(),
        "analyze".to_owned(),
    ]
}
