//! `cargo xtask bench sync`: deliveries per second through the product-sync dispatcher to the
//! test's product mocks over HTTP on 127.0.0.1, fault-free, at a drawn fault rate, and through a
//! 6-hour outage of every product followed by the catch-up.
//!
//! The outbox rows are seeded with set-based SQL (not timed); only the dispatch to idle is timed.
//! The faulty and outage runs jump from one backoff to the next with `next_due` instead of
//! sleeping, so their time is the work plus the real waits of held (timed-out) requests.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use billing_harness::TestEnv;
use billing_harness::builders::default_catalog;
use billing_harness::platform::SyncPolicy;
use billing_harness::platform::sync::{SyncReport, dispatch, next_due};
use billing_harness::products::{Fault, Outage, SyncClient};
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

/// How long every product is down in the outage run, from when its rows are queued.
const OUTAGE_HOURS: i64 = 6;

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

/// The outage run: every row queued when the products go down, retried through the outage, and
/// delivered once they answer again.
#[derive(Debug, Serialize)]
struct OutageRun {
    /// Hours of test time every product was down, from when the rows were queued.
    hours: i64,
    /// Rows delivered (answered `2xx`), each counted once: all after the outage.
    delivered: usize,
    /// Attempts that failed: every attempt during the outage.
    failed: usize,
    /// Rows given up on (none: the outage is shorter than the retry horizon).
    dead_lettered: usize,
    /// Dispatcher runs, one per instant of the test clock's time it was run at.
    dispatches: usize,
    /// The catch-up in test time: from the outage's end to the last delivery, in seconds. The
    /// backoff has grown to its cap (an hour, plus up to half of it in jitter) by then, so each
    /// key waits up to that long for its next attempt.
    catch_up_seconds: f64,
    /// Wall time of the whole run, the outage's failed attempts included.
    seconds: f64,
    /// Wall time of the catch-up: the dispatcher runs from the outage's end on.
    catch_up_wall_seconds: f64,
    /// `delivered / catch_up_wall_seconds`: deliveries per second of wall time in the catch-up.
    deliveries_per_second: f64,
}

/// What `bench sync --json` prints.
#[derive(Debug, Serialize)]
pub(super) struct SyncBenchReport {
    /// Successful deliveries per second, fault-free.
    deliveries_per_second: f64,
    /// Successful deliveries per second with [`FAULT_RATE`] of the writes faulted.
    deliveries_per_second_faulty: f64,
    /// Successful deliveries per second of wall time in the catch-up after the outage.
    deliveries_per_second_outage: f64,
    /// The catch-up after the outage in test time, in seconds: from its end to the last delivery.
    outage_catch_up_seconds: f64,
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
    /// The run through a [`OUTAGE_HOURS`]-hour outage of every product, and its catch-up.
    outage: OutageRun,
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

    // Down from the instant the rows are queued, answering 503 to every request.
    let down = start + TimeDelta::days(2);
    let up = down + TimeDelta::hours(OUTAGE_HOURS);
    for mock in &mocks {
        mock.clear_faults();
        mock.outage(Outage::new(down, up, Fault::Status503)?);
    }
    let queued = queue(&env, down).await?;
    anyhow::ensure!(queued == rows, "queued {queued} rows, then {rows}");
    let outage = outage_run(&env, &client, &policy, down, up).await?;
    anyhow::ensure!(
        outage.delivered == rows as usize,
        "the outage run delivered {} of {rows} rows",
        outage.delivered
    );
    Ok(SyncBenchReport {
        deliveries_per_second: fault_free.deliveries_per_second,
        deliveries_per_second_faulty: faulty.deliveries_per_second,
        deliveries_per_second_outage: outage.deliveries_per_second,
        outage_catch_up_seconds: outage.catch_up_seconds,
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
        outage,
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

/// One dispatcher run of a [`trace`]: its instant of test time, what it did, and the wall time
/// it took (with the look for the next due row).
struct Step {
    at: DateTime<Utc>,
    report: SyncReport,
    wall: Duration,
}

/// Runs the dispatcher from `at` until no live row is left, moving through each backoff as the
/// clock would (without waiting for it); each run with its wall time.
async fn trace(
    env: &TestEnv,
    client: &SyncClient,
    policy: &SyncPolicy,
    mut at: DateTime<Utc>,
) -> anyhow::Result<Vec<Step>> {
    let horizon = TimeDelta::days(1);
    let mut steps = Vec::new();
    loop {
        let began = Instant::now();
        let report = dispatch(env.pool(), client, policy, at).await?;
        let next = next_due(env.pool(), at, at + horizon).await?;
        steps.push(Step {
            at,
            report,
            wall: began.elapsed(),
        });
        match next {
            Some(next) if next > at => at = next.max(at + POLL),
            _ => break,
        }
    }
    Ok(steps)
}

/// Sums the runs of `steps`.
fn totals(steps: &[Step]) -> (usize, usize, usize, f64) {
    let wall: Duration = steps.iter().map(|s| s.wall).sum();
    (
        steps.iter().map(|s| s.report.delivered).sum(),
        steps.iter().map(|s| s.report.failed).sum(),
        steps.iter().map(|s| s.report.dead_lettered).sum(),
        wall.as_secs_f64(),
    )
}

/// A figure to the thousandth.
fn milli(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Runs the dispatcher from `at` until no live row is left, moving through each backoff as the
/// clock would (without waiting for it); times the lot.
async fn dispatch_to_idle(
    env: &TestEnv,
    client: &SyncClient,
    policy: &SyncPolicy,
    at: DateTime<Utc>,
) -> anyhow::Result<Run> {
    let steps = trace(env, client, policy, at).await?;
    let (delivered, failed, dead_lettered, seconds) = totals(&steps);
    Ok(Run {
        delivered,
        failed,
        dead_lettered,
        dispatches: steps.len(),
        seconds: milli(seconds),
        deliveries_per_second: (delivered as f64 / seconds).round(),
    })
}

/// Runs the dispatcher from `down`, when the rows were queued and the products went down, until
/// every row is delivered after they answer again at `up`; times the catch-up apart.
async fn outage_run(
    env: &TestEnv,
    client: &SyncClient,
    policy: &SyncPolicy,
    down: DateTime<Utc>,
    up: DateTime<Utc>,
) -> anyhow::Result<OutageRun> {
    let steps = trace(env, client, policy, down).await?;
    let (delivered, failed, dead_lettered, seconds) = totals(&steps);
    let dispatches = steps.len();
    let after: Vec<Step> = steps.into_iter().filter(|s| s.at >= up).collect();
    let (_, _, _, catch_up_wall) = totals(&after);
    let last = after
        .iter()
        .filter(|s| s.report.delivered > 0)
        .map(|s| s.at)
        .max()
        .unwrap_or(up);
    Ok(OutageRun {
        hours: (up - down).num_hours(),
        delivered,
        failed,
        dead_lettered,
        dispatches,
        catch_up_seconds: milli((last - up).as_seconds_f64()),
        seconds: milli(seconds),
        catch_up_wall_seconds: milli(catch_up_wall),
        deliveries_per_second: (delivered as f64 / catch_up_wall).round(),
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
         \x20 {oh} h outage {out:>7.0} deliveries/s  ({d3} delivered in {s3:.3} s of the catch-up; caught up \
         {catch} after the outage in test time; failed attempts during it: {f3}, dead-lettered: {x3}; \
         {s4:.3} s in all, dispatcher runs: {n3})\n\
         faults drawn with probability {rate} per write (seed {seed} for the first product, one more for each next), each of the {kinds} kinds equally \
         likely: {mix}.\n\
         status_500, status_503, reset and timeout apply nothing; reply_lost applies but loses the \
         answer; delay and duplicate succeed. A timeout holds the request past the dispatcher's \
         limit, set to {timeout} ms for this bench (the default is 2 s), so each one costs that much \
         real time. The outage run queues every row when both products go down (every request \
         answered 503) for {oh} hours; a row is retried with a backoff that doubles from 2 s to at \
         most an hour plus jitter, so after the outage each key waits up to that long for its next \
         attempt (the retry horizon, {horizon} h, is not reached). The dispatcher runs every {poll} s \
         of the test clock; backoffs and idle time are skipped over with next_due, not waited for; \
         only the dispatch is timed.",
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
        oh = r.outage.hours,
        out = r.deliveries_per_second_outage,
        d3 = r.outage.delivered,
        s3 = r.outage.catch_up_wall_seconds,
        catch = minutes(r.outage.catch_up_seconds),
        f3 = r.outage.failed,
        x3 = r.outage.dead_lettered,
        s4 = r.outage.seconds,
        n3 = r.outage.dispatches,
        horizon = r.retry_horizon_hours,
    )
}

/// Seconds as `83 min 12 s`.
fn minutes(seconds: f64) -> String {
    let whole = seconds.round() as i64;
    format!("{} min {} s", whole / 60, whole % 60)
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
