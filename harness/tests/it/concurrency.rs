//! The platform under concurrent calls: the three races found by hand (usage against the close,
//! subscribe against subscribe, charge job against charge job), the month lock held on either
//! side (each wait seen in the database, no timing), and a seeded stress suite that mixes every
//! operation and job across tasks, then checks the invariants from the database.

use std::collections::BTreeMap;
use std::sync::Arc;

use billing_harness::TestEnv;
use billing_harness::calendar::Job;
use billing_harness::model::{Month, TenantId};
use billing_harness::payments::{
    Approval, BoxFuture, ChargeRequest, Gateway, GatewayError, MockGateway, TestCard,
};
use billing_harness::platform::sync::dispatch;
use billing_harness::platform::{
    Attempt, CloseReport, DomainError, Platform, SyncPolicy, charge_due, close_month,
    invariant_violations, retry_due,
};
use chrono::{DateTime, TimeDelta, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::support::{day, hold_tenant, metered_catalog, seoul};

/// A database with the metered catalog and `tenants` tenants of one org whose card is `card`.
async fn metered_world(
    start: DateTime<Utc>,
    tenants: usize,
    card: TestCard,
) -> (TestEnv, Vec<TenantId>) {
    let env = TestEnv::builder().start_at(start).build().await.unwrap();
    crate::support::distinct_ids(&env).await;
    let p = env.platform();
    p.install_catalog(&metered_catalog(), start).await.unwrap();
    let org = p.create_org("acme", start).await.unwrap();
    p.register_card(org, card, start).await.unwrap();
    let mut ids = Vec::new();
    for n in 0..tenants {
        ids.push(
            p.create_tenant(org, "analytics", &format!("t{n}"), start)
                .await
                .unwrap(),
        );
    }
    (env, ids)
}

/// Units billed as `calls` on the tenant's invoice of `month`.
async fn billed_calls(p: &Platform, tenant: TenantId, month: Month) -> u64 {
    p.invoices(tenant)
        .await
        .unwrap()
        .iter()
        .filter(|i| i.invoice.month == month)
        .flat_map(|i| i.invoice.lines.iter())
        .filter_map(|l| l.used)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn usage_racing_the_close_is_billed_or_refused_never_lost() {
    let october = Month::new(2026, 10).unwrap();
    for round in 0..5 {
        let (env, tenants) = metered_world(seoul(2026, 10, 1), 1, TestCard::Ok).await;
        let tenant = tenants[0];
        let p = env.platform();
        p.subscribe(tenant, "small", seoul(2026, 10, 1))
            .await
            .unwrap();
        let midnight = seoul(2026, 11, 1);
        env.clock().set(midnight).await.unwrap();
        let mut tasks = Vec::new();
        for n in 0..39_i64 {
            let p = p.clone();
            tasks.push(tokio::spawn(async move {
                let quantity = 1_000 + n;
                p.record_usage(tenant, "calls", quantity, day(2026, 10, 31), midnight)
                    .await
                    .map(|()| quantity)
            }));
        }
        let close = spawn_close(&env, october, midnight);
        let mut accepted = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(quantity) => accepted += quantity,
                Err(e) => assert_eq!(e.code(), "period_closed", "round {round}: {e}"),
            }
        }
        close.await.unwrap().unwrap();
        let billed = billed_calls(&p, tenant, october).await;
        assert_eq!(
            billed,
            u64::try_from(accepted).unwrap(),
            "round {round}: accepted usage must be billed in the month's invoice, refused usage never"
        );
    }
}

/// `month`'s close at `at`, on a task of its own.
fn spawn_close(
    env: &TestEnv,
    month: Month,
    at: DateTime<Utc>,
) -> tokio::task::JoinHandle<Result<CloseReport, DomainError>> {
    let pool = env.pool().clone();
    tokio::spawn(async move { close_month(&pool, month, at).await })
}

/// 7 calls of `tenant` on October 31, recorded at `at` on a task of their own.
fn spawn_late_usage(
    p: Platform,
    tenant: TenantId,
    at: DateTime<Utc>,
) -> tokio::task::JoinHandle<Result<(), DomainError>> {
    tokio::spawn(async move {
        p.record_usage(tenant, "calls", 7, day(2026, 10, 31), at)
            .await
    })
}

/// The lock waits (`pg_stat_activity.wait_event`, sorted) of the other sessions on `holder`'s
/// database, read in `holder`'s open transaction, once `wanted` of them wait or `task` has ended.
async fn lock_waits<T>(
    holder: &mut sqlx::PgConnection,
    wanted: usize,
    task: &tokio::task::JoinHandle<T>,
) -> Vec<String> {
    for _ in 0..3_000 {
        // Statistics are read once per transaction unless cleared.
        sqlx::query("select pg_stat_clear_snapshot()")
            .execute(&mut *holder)
            .await
            .unwrap();
        let waits: Vec<String> = sqlx::query_scalar(
            "select wait_event from pg_stat_activity where datname = current_database() \
             and wait_event_type = 'Lock' and pid <> pg_backend_pid() order by wait_event",
        )
        .fetch_all(&mut *holder)
        .await
        .unwrap();
        if waits.len() >= wanted || task.is_finished() {
            return waits;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("no session waited within 30 s");
}

/// A subscribed tenant and October's usage of 1,000 calls, at midnight of November 1.
async fn october_with_usage() -> (TestEnv, TenantId, DateTime<Utc>) {
    let (env, tenants) = metered_world(seoul(2026, 10, 1), 1, TestCard::Ok).await;
    let p = env.platform();
    p.subscribe(tenants[0], "small", seoul(2026, 10, 1))
        .await
        .unwrap();
    let midnight = seoul(2026, 11, 1);
    env.clock().set(midnight).await.unwrap();
    p.record_usage(tenants[0], "calls", 1_000, day(2026, 10, 31), midnight)
        .await
        .unwrap();
    (env, tenants[0], midnight)
}

/// The month lock as the close takes it: held exclusive by a close stopped just after taking
/// it, so that October's usage waits for the close and is then refused, never accepted into a
/// month being closed. No timing: the test sees the waits in `pg_stat_activity`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn usage_waits_for_a_close_under_way_and_is_then_refused() {
    let october = Month::new(2026, 10).unwrap();
    let (env, tenant, midnight) = october_with_usage().await;
    // The close inserts its `month_closes` row right after taking the month's lock: a table
    // lock held here stops it there.
    let mut holder = env.pool().begin().await.unwrap();
    sqlx::query("lock table month_closes in exclusive mode")
        .execute(&mut *holder)
        .await
        .unwrap();
    let close = spawn_close(&env, october, midnight);
    assert_eq!(lock_waits(&mut holder, 1, &close).await, ["relation"]);
    let usage = spawn_late_usage(env.platform(), tenant, midnight);
    assert_eq!(
        lock_waits(&mut holder, 2, &usage).await,
        ["advisory", "relation"],
        "October's usage must wait for October's month lock while the close holds it"
    );
    holder.commit().await.unwrap();
    close.await.unwrap().unwrap();
    let refused = usage.await.unwrap().unwrap_err();
    assert_eq!(refused.code(), "period_closed", "{refused}");
    assert_eq!(billed_calls(&env.platform(), tenant, october).await, 1_000);
}

/// The month lock as usage takes it: held shared by a usage write stopped just after taking
/// it, so that October's close waits for it and then bills it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_close_waits_for_usage_under_way_and_then_bills_it() {
    let october = Month::new(2026, 10).unwrap();
    let (env, tenant, midnight) = october_with_usage().await;
    // Usage locks its tenant's row right after taking the month's lock: a row lock held here
    // stops it there.
    let mut holder = hold_tenant(&env, tenant).await;
    let usage = spawn_late_usage(env.platform(), tenant, midnight);
    assert_eq!(lock_waits(&mut holder, 1, &usage).await.len(), 1);
    let close = spawn_close(&env, october, midnight);
    let waits = lock_waits(&mut holder, 2, &close).await;
    assert!(
        waits.iter().any(|w| w == "advisory"),
        "October's close must wait for October's month lock while usage holds it: {waits:?}"
    );
    holder.commit().await.unwrap();
    usage.await.unwrap().unwrap();
    close.await.unwrap().unwrap();
    assert_eq!(billed_calls(&env.platform(), tenant, october).await, 1_007);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_subscribes_give_one_subscription_and_already_subscribed_for_the_rest() {
    let (env, tenants) = metered_world(seoul(2026, 10, 1), 1, TestCard::Ok).await;
    let at = env.clock().now();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let p = env.platform();
            let tenant = tenants[0];
            tokio::spawn(async move { p.subscribe(tenant, "small", at).await })
        })
        .collect();
    let mut codes = BTreeMap::new();
    for task in tasks {
        let code = match task.await.unwrap() {
            Ok(_) => "ok",
            Err(e) => e.code(),
        };
        *codes.entry(code).or_insert(0) += 1;
    }
    assert_eq!(
        codes,
        BTreeMap::from([("already_subscribed", 19), ("ok", 1)])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_charge_jobs_at_once_attempt_each_invoice_once_and_both_succeed() {
    for _ in 0..3 {
        let (env, tenants) = metered_world(seoul(2026, 10, 1), 6, TestCard::Ok).await;
        let p = env.platform();
        for tenant in &tenants {
            p.subscribe(*tenant, "small", seoul(2026, 10, 1))
                .await
                .unwrap();
        }
        let october = Month::new(2026, 10).unwrap();
        close_month(env.pool(), october, seoul(2026, 11, 1))
            .await
            .unwrap();
        let fifth = seoul(2026, 11, 5);
        env.clock().set(fifth).await.unwrap();
        let env = Arc::new(env);
        let jobs: Vec<_> = (0..2)
            .map(|_| {
                let env = env.clone();
                tokio::spawn(async move { charge_due(env.pool(), env.gateway(), fifth).await })
            })
            .collect();
        let mut attempted = 0;
        for job in jobs {
            attempted += job
                .await
                .unwrap()
                .expect("no job fails because another ran")
                .len();
        }
        assert_eq!(
            attempted, 6,
            "each invoice attempted once between the two jobs"
        );
        let payments: i64 = sqlx::query_scalar("select count(*) from payments")
            .fetch_one(env.pool())
            .await
            .unwrap();
        assert_eq!(payments, 6);
        assert_eq!(env.gateway().ledger().len(), 6, "one capture per invoice");
    }
}

/// How many runs the stress suite makes: `HARNESS_STRESS_RUNS` (`.ci/run` makes 50), else 1.
fn stress_runs() -> u64 {
    std::env::var("HARNESS_STRESS_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

#[tokio::test]
async fn the_close_takes_a_tenant_before_its_subscription_as_a_plan_change_does() {
    let (env, tenants) = metered_world(seoul(2026, 9, 1), 1, TestCard::Ok).await;
    let p = env.platform();
    let subscription = p
        .subscribe(tenants[0], "small", seoul(2026, 9, 1))
        .await
        .unwrap();
    let first = seoul(2026, 10, 1);
    env.clock().set(first).await.unwrap();
    // A plan change's first two steps, held open: the tenant's row, then its subscription's.
    let mut change = hold_tenant(&env, tenants[0]).await;
    let close = spawn_close(&env, Month::new(2026, 9).unwrap(), first);
    assert_eq!(
        lock_waits(&mut change, 1, &close).await.len(),
        1,
        "the close never waited for the tenant locked by the plan change"
    );
    // Had the close locked the subscription before the tenant, this would wait for the close
    // while the close waits for this transaction: a deadlock, and one of them fails.
    let locked = sqlx::query("select id from subscriptions where id = $1 for update")
        .bind(subscription)
        .execute(&mut *change)
        .await;
    let committed = change.commit().await;
    let closed = close.await.unwrap();
    assert!(
        locked.is_ok() && committed.is_ok(),
        "rule: a close and a plan change of one tenant both go through, one after the other: \
         the plan change got {locked:?}, then {committed:?}"
    );
    assert_eq!(
        closed
            .map(|r| r.invoices)
            .map_err(|e| format!("{e}: {e:?}")),
        Ok(1),
        "rule: a close and a plan change of one tenant both go through, one after the other"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stress_every_operation_and_job_at_once_keeps_the_invariants() {
    let first_seed = std::env::var("HARNESS_STRESS_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed_u64);
    for seed in first_seed..first_seed + stress_runs() {
        stress(seed).await;
    }
}

/// One seeded run over six weeks, a day at a time: at the start of each day, 32 tasks call the
/// platform's operations on 6 tenants (half of them on one tenant) while two workers run the
/// close, charge and retry jobs due then, as several processes of a platform would; then the
/// invariants, from the database.
async fn stress(seed: u64) {
    let calendar = billing_harness::calendar::Calendar::platform();
    let start = seoul(2026, 9, 28);
    let end = seoul(2026, 11, 8);
    let (env, tenants) = metered_world(start, 6, TestCard::FailTimes(1)).await;
    let org: i64 = sqlx::query_scalar("select id from organizations")
        .fetch_one(env.pool())
        .await
        .unwrap();
    let env = Arc::new(env);
    // Product sync runs from both workers too: each row must reach the product once.
    let product = env.product("analytics").await.unwrap();
    let sync = billing_harness::products::SyncClient::new(std::time::Duration::from_secs(5));
    let mut raw = Vec::new();
    let mut at = start;
    let mut round = 0_u64;
    while at < end {
        env.clock().set(at).await.unwrap();
        let today = calendar.local_day(at);
        let mut tasks = Vec::new();
        for task in 0..32_u64 {
            let env = env.clone();
            let tenants = tenants.clone();
            tasks.push(tokio::spawn(async move {
                let mut rng = StdRng::seed_from_u64(seed ^ (round << 8) ^ task);
                let p = env.platform();
                // Half the tasks share tenant 0, the rest spread over the others.
                let tenant = if task % 2 == 0 {
                    tenants[0]
                } else {
                    tenants[rng.random_range(1..tenants.len())]
                };
                let result = match rng.random_range(0..12) {
                    0 | 1 => p.subscribe(tenant, "small", at).await.map(drop),
                    2 => p.change_plan(tenant, "large", at).await,
                    3 => p.change_plan(tenant, "small", at).await,
                    4 => p.cancel(tenant, at).await,
                    5 => p
                        .register_card(
                            billing_harness::model::OrgId(org),
                            TestCard::FailTimes(1),
                            at,
                        )
                        .await
                        .map(drop)
                        .map_err(DomainError::from),
                    n => {
                        // Late events for yesterday race the close on the 1st.
                        let on = if n % 2 == 0 {
                            today.pred_opt().unwrap()
                        } else {
                            today
                        };
                        p.record_usage(tenant, "calls", rng.random_range(1..500), on, at)
                            .await
                    }
                };
                result.map_err(|e| (e.code(), e.to_string()))
            }));
        }
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let env = env.clone();
                let sync = sync.clone();
                tokio::spawn(async move {
                    let mut errors = Vec::new();
                    for job in calendar.jobs_due(at).into_iter().chain([Job::Sync]) {
                        let done = match job {
                            Job::Close(month) => close_month(env.pool(), month, at).await.map(drop),
                            Job::Charge => {
                                charge_due(env.pool(), env.gateway(), at).await.map(drop)
                            }
                            Job::Retry => retry_due(env.pool(), env.gateway(), at).await.map(drop),
                            Job::Reconcile => {
                                let policy = SyncPolicy::default();
                                billing_harness::platform::sync::reconcile(
                                    env.pool(),
                                    &sync,
                                    &policy,
                                    true,
                                    at,
                                )
                                .await
                                .map(drop)
                            }
                            Job::Sync => {
                                let policy = SyncPolicy::default();
                                dispatch(env.pool(), &sync, &policy, at).await.map(drop)
                            }
                        };
                        if let Err(e) = done {
                            errors.push(format!("{job} job: {e}: {e:?}"));
                        }
                    }
                    errors
                })
            })
            .collect();
        for task in tasks {
            if let Err((code, message)) = task.await.unwrap()
                && !DomainError::RULE_CODES.contains(&code)
            {
                raw.push(format!("{code}: {message}"));
            }
        }
        for worker in workers {
            raw.extend(worker.await.unwrap());
        }
        at += TimeDelta::days(1);
        round += 1;
    }
    assert!(
        raw.is_empty(),
        "seed {seed}: errors that are not a rule's refusal:\n{}",
        raw.join("\n")
    );
    let mut violations = violations(&env).await;
    let mut keys: Vec<String> = product
        .journal()
        .into_iter()
        .filter_map(|r| r.idempotency_key)
        .collect();
    let sent = keys.len();
    keys.sort_unstable();
    keys.dedup();
    if keys.len() != sent {
        violations.push(format!(
            "each sync row delivered by one dispatcher: {sent} requests for {} rows",
            keys.len()
        ));
    }
    let converged = env.converge().await.unwrap();
    if !converged.is_converged() {
        violations.push(format!(
            "the product converges with the platform:\n{converged}"
        ));
    }
    assert!(
        violations.is_empty(),
        "seed {seed} (HARNESS_STRESS_SEED={seed} HARNESS_STRESS_RUNS=1 replays it) broke:\n{}",
        violations.join("\n")
    );
}

/// Every row that breaks an invariant, as `invariant: row`: the platform's, and one capture per
/// idempotency key at the gateway.
async fn violations(env: &TestEnv) -> Vec<String> {
    let mut found = invariant_violations(env.pool()).await.unwrap();
    let ledger = env.gateway().ledger();
    let mut keys: Vec<&str> = ledger.iter().map(|c| c.idempotency_key.as_str()).collect();
    keys.sort_unstable();
    let before = keys.len();
    keys.dedup();
    if keys.len() != before {
        found.push(format!(
            "one capture per idempotency key: {} captures for {} keys",
            before,
            keys.len()
        ));
    }
    found
}

/// A gateway that, on its second charge, runs a whole retry job of its own through the same mock
/// before it answers: the job that called it has attempted its first invoice, holds its second,
/// and is behind the other job for the rest of what it listed.
#[derive(Debug)]
struct RunsAJobOnItsSecondCharge<'g> {
    mock: &'g MockGateway,
    pool: sqlx::PgPool,
    at: DateTime<Utc>,
    charges: std::sync::atomic::AtomicUsize,
    /// What the job run inside attempted, once it has run.
    other: std::sync::Mutex<Option<Vec<Attempt>>>,
}

impl Gateway for RunsAJobOnItsSecondCharge<'_> {
    fn charge<'a>(
        &'a self,
        request: &'a ChargeRequest,
    ) -> BoxFuture<'a, Result<Approval, GatewayError>> {
        Box::pin(async move {
            let call = self
                .charges
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if call == 1 {
                let attempts = retry_due(&self.pool, self.mock, self.at).await.unwrap();
                *self.other.lock().unwrap() = Some(attempts);
            }
            self.mock.charge(request).await
        })
    }

    fn find<'a>(
        &'a self,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Approval>, GatewayError>> {
        self.mock.find(idempotency_key)
    }
}

#[tokio::test]
async fn a_retry_job_attempts_each_invoice_once_however_far_behind_another_it_runs() {
    let (env, tenants) = metered_world(seoul(2026, 10, 1), 3, TestCard::Declined).await;
    let p = env.platform();
    for tenant in &tenants {
        p.subscribe(*tenant, "small", seoul(2026, 10, 1))
            .await
            .unwrap();
    }
    // The three October invoices declined on November 5th: each past due after one attempt.
    env.clock().advance_to(seoul(2026, 11, 5)).await.unwrap();
    let sixth = seoul(2026, 11, 6);
    env.clock().set(sixth).await.unwrap();
    // This job lists all three and attempts the first. While it asks the gateway about the
    // second (holding it), the other job lists: the first was attempted today, the second is
    // held, the third is its own to attempt. Back in this job, the third has had an attempt since
    // it was listed: skipped, and not asked of the gateway again.
    let gateway = RunsAJobOnItsSecondCharge {
        mock: env.gateway(),
        pool: env.pool().clone(),
        at: sixth,
        charges: std::sync::atomic::AtomicUsize::new(0),
        other: std::sync::Mutex::new(None),
    };
    let behind = retry_due(env.pool(), &gateway, sixth).await.unwrap();
    let ahead = gateway.other.lock().unwrap().take().unwrap();
    let invoices: Vec<i64> = sqlx::query_scalar("select id from invoices order by id")
        .fetch_all(env.pool())
        .await
        .unwrap();
    let rule = "rule: a retry job attempts the invoices due for a retry, each once";
    let shown = |attempts: &[Attempt]| -> Vec<(i64, i16)> {
        attempts.iter().map(|a| (a.invoice.0, a.attempt)).collect()
    };
    assert_eq!(
        (shown(&behind), shown(&ahead)),
        (
            vec![(invoices[0], 2), (invoices[1], 2)],
            vec![(invoices[2], 2)]
        ),
        "{rule}: the job ahead takes the one neither attempted today nor held, whatever other \
         invoices had an attempt today"
    );
    let mut charges: BTreeMap<String, usize> = BTreeMap::new();
    for entry in env.gateway().journal() {
        if entry.call == "charge" {
            *charges.entry(entry.idempotency_key).or_default() += 1;
        }
    }
    let keys = |n: i16| invoices.iter().map(move |i| (format!("inv{i}-a{n}"), 1));
    assert_eq!(
        charges,
        keys(1).chain(keys(2)).collect::<BTreeMap<_, _>>(),
        "{rule}: the job behind skips what the other attempted since it listed it, so the \
         gateway is asked once per attempt"
    );
}
