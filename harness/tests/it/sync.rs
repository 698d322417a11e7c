//! Product sync: the outbox of every entity, the ordered dispatcher on the test clock, the product
//! mocks with their faults, the reconciler and convergence, against real HTTP servers.

use std::sync::Arc;

use billing_harness::TestEnv;
use billing_harness::builders::{Day, Org, Tenant};
use billing_harness::platform::SyncPolicy;
use billing_harness::products::{Fault, ProductMock, redacted};
use chrono::{NaiveDate, TimeDelta};

use crate::support::member;

async fn env_on(today: &str, seed: u64) -> TestEnv {
    TestEnv::builder()
        .today(today.parse::<NaiveDate>().unwrap())
        .seed(seed)
        .build()
        .await
        .unwrap()
}

/// [`env_on`] the same day, with product sync giving a row up at its first failure `horizon`
/// after its first: 1 s gives two attempts (when queued, then at the horizon, before the first
/// backoff of 2 to 3 s ends), 5 s three (the second backoff ends after 6 s).
async fn env_giving_up_after(seed: u64, horizon: TimeDelta) -> TestEnv {
    TestEnv::builder()
        .today("2026-11-24".parse::<NaiveDate>().unwrap())
        .seed(seed)
        .sync_policy(SyncPolicy {
            horizon,
            ..SyncPolicy::default()
        })
        .build()
        .await
        .unwrap()
}

async fn analytics(env: &TestEnv) -> Arc<ProductMock> {
    env.product("analytics").await.unwrap()
}

#[tokio::test]
async fn subscribe_syncs_user_then_tenant_then_subscription() {
    let env = env_on("2026-11-24", 7).await;
    let t = env
        .build()
        .tenant()
        .plan("pro")
        .subscribed_on(env.this_month().day(10))
        .create()
        .await
        .unwrap();
    let converged = env.assert_converged().await;
    assert!(converged.repaired.is_empty(), "nothing needed repair");
    let mock = analytics(&env).await;
    let journal = mock.journal();
    let routes: Vec<(&str, &str)> = journal
        .iter()
        .map(|r| (r.method.as_str(), r.route.as_str()))
        .collect();
    assert_eq!(
        routes[..3],
        [
            ("PUT", "/v1/users/{user}"),
            ("PUT", "/v1/tenants/{tenant}"),
            ("PUT", "/v1/tenants/{tenant}/subscription"),
        ],
        "user, then tenant, then subscription; then the reconciler's read-back"
    );
    assert_eq!(routes[3], ("GET", "/v1/state"));
    let held = mock.tenant(t.id().0).expect("the product has the tenant");
    let sub = held.subscription.expect("and its subscription");
    assert_eq!((sub.plan.as_str(), sub.status.as_str()), ("pro", "active"));
    assert_eq!(sub.limits.get("seats"), Some(&10));
    insta::with_settings!({
        snapshot_path => "../../../snapshots/sync",
        prepend_module_to_snapshot => false,
    }, {
        insta::assert_yaml_snapshot!("subscribe_sync_journal", redacted(&journal));
    });
}

#[tokio::test]
async fn a_poison_row_dead_letters_at_its_horizon_and_the_daily_reconcile_requeues_it_once_taken() {
    use billing_harness::calendar::Job;
    use billing_harness::platform::sync::{dead_letters, undelivered};
    let env = env_giving_up_after(1, TimeDelta::seconds(5)).await;
    let a = env.build().tenant().plan("pro").create().await.unwrap();
    let mock = analytics(&env).await;
    mock.reject_tenant(a.id().0, 422);
    env.sync_to_idle().await.unwrap();
    let b = env.build().tenant().plan("pro").create().await.unwrap();
    env.sync_to_idle().await.unwrap();

    assert!(
        mock.tenant(b.id().0).is_some(),
        "the other tenant went through"
    );
    assert!(
        mock.tenant(a.id().0).is_none(),
        "the poisoned tenant did not"
    );
    let dead = dead_letters(env.pool()).await.unwrap();
    assert_eq!(dead.len(), 1, "only the head row dies: {dead:?}");
    assert_eq!(
        (dead[0].entity.as_str(), dead[0].attempts),
        ("tenant", 3),
        "rule: tried when queued, after its backoff, and at its horizon (5 s), then given up"
    );
    let of_a = |rows: Vec<billing_harness::platform::OutboxRow>| -> Vec<(String, i32)> {
        rows.into_iter()
            .filter(|r| r.tenant_id == Some(a.id().0))
            .map(|r| (r.entity, r.attempts))
            .collect()
    };
    assert_eq!(
        of_a(undelivered(env.pool()).await.unwrap()),
        [("tenant".to_owned(), 3), ("subscription".to_owned(), 0)],
        "the subscription waits behind its dead tenant row"
    );

    // The product answers but still refuses the tenant: a reconcile re-queues the row with a
    // whole horizon again, and it fails again.
    let found = env.reconcile().await.unwrap();
    assert_eq!(
        (
            found.requeued,
            found.busy.clone(),
            found.unreachable.clone()
        ),
        (1, vec!["analytics".to_owned()], vec![]),
        "rule: a reconcile re-queues the dead letter of a product that answers"
    );
    assert!(dead_letters(env.pool()).await.unwrap().is_empty());
    assert_eq!(
        of_a(undelivered(env.pool()).await.unwrap()),
        [("tenant".to_owned(), 1), ("subscription".to_owned(), 0)],
        "re-queued from no attempt, tried once"
    );
    let report = env.converge().await.unwrap();
    assert!(!report.is_converged());
    assert!(
        report
            .to_string()
            .contains("analytics: rows still undelivered"),
        "{report}"
    );

    // Taken at last: the next daily reconcile delivers it, in order, with no one re-queuing.
    env.sync_to_idle().await.unwrap();
    assert_eq!(dead_letters(env.pool()).await.unwrap().len(), 1);
    mock.accept_tenant(a.id().0);
    let runs = env.clock().advance(TimeDelta::days(1)).await.unwrap();
    assert_eq!(
        runs.iter()
            .filter(|r| r.job == Job::Reconcile)
            .map(|r| r.effects)
            .collect::<Vec<_>>(),
        [1],
        "the daily reconcile re-queued the one dead letter"
    );
    let applied: Vec<String> = mock
        .journal()
        .iter()
        .filter(|r| r.applied && r.path.starts_with(&format!("/v1/tenants/{}", a.id().0)))
        .map(|r| r.route.clone())
        .collect();
    assert_eq!(
        applied,
        ["/v1/tenants/{tenant}", "/v1/tenants/{tenant}/subscription"],
        "the tenant, then its subscription"
    );
    env.assert_converged().await;
}

#[tokio::test]
async fn drift_in_a_product_is_found_and_repaired() {
    let env = env_on("2026-11-24", 2).await;
    let t = env.build().tenant().plan("pro").create().await.unwrap();
    env.assert_converged().await;
    let mock = analytics(&env).await;
    let what = mock.drift(t.id().0).unwrap();
    assert!(what.contains("plan pro -> drifted"), "{what}");
    let found = billing_harness::platform::sync::reconcile(
        env.pool(),
        &billing_harness::products::SyncClient::new(std::time::Duration::from_secs(2)),
        &SyncPolicy::default(),
        false,
        env.clock().now(),
    )
    .await
    .unwrap();
    assert_eq!(found.drift.len(), 1);
    let line = found.drift[0].to_string();
    assert_eq!(
        line,
        format!(
            "analytics: the subscription of tenant {} differs: plan is \"drifted\" in the product, \"pro\" on the platform;",
            t.id().0
        )
    );
    let converged = env.assert_converged().await;
    assert_eq!(converged.repaired.len(), 1, "repaired once");
    assert_eq!(
        mock.tenant(t.id().0).unwrap().subscription.unwrap().plan,
        "pro"
    );
}

#[tokio::test]
async fn faults_are_retried_with_backoff_on_the_test_clock() {
    let env = env_on("2026-11-24", 3).await;
    let mock = analytics(&env).await;
    mock.fail_next(Fault::Status503, 2);
    let start = env.clock().now();
    env.build().tenant().plan("pro").create().await.unwrap();
    env.assert_converged().await;
    let journal = mock.journal();
    assert_eq!(journal[0].status, Some(503));
    assert_eq!(journal[1].status, Some(503));
    assert_eq!(journal[2].status, Some(200));
    assert_eq!(
        journal[0].idempotency_key, journal[2].idempotency_key,
        "a retry sends the same key"
    );
    let waited = env.clock().now() - start;
    // 2 s then 4 s, each with up to half again of jitter: for seed 3 and this outbox row,
    // 701 ms of it in all, the same in every run (the clock moves to each due time exactly).
    assert_eq!(waited, TimeDelta::milliseconds(6_701), "{waited}");
}

/// A new organization with a card that pays.
async fn org_with_card(env: &TestEnv) -> Org {
    env.build()
        .org()
        .card(billing_harness::payments::TestCard::Ok)
        .create()
        .await
        .unwrap()
}

/// A tenant on `plan` subscribed on `on`: of `org`, or of a new organization.
async fn tenant_on<'e>(env: &'e TestEnv, org: Option<&Org>, plan: &str, on: Day) -> Tenant<'e> {
    let builder = match org {
        Some(org) => env.build().tenant().org(org),
        None => env.build().tenant(),
    };
    builder.plan(plan).subscribed_on(on).create().await.unwrap()
}

#[tokio::test]
async fn a_member_who_leaves_is_deleted_by_the_products_of_their_organizations_live_tenants_only() {
    let env = env_on("2026-11-24", 4).await;
    let on = env.this_month().day(10);
    // Another organization's tenant on the same product.
    tenant_on(&env, None, "pro", on).await;
    let org = org_with_card(&env).await;
    tenant_on(&env, Some(&org), "pro", on).await;
    tenant_on(&env, Some(&org), "crm-basic", on).await;
    let gone = tenant_on(&env, Some(&org), "business", on).await;
    gone.delete().await.unwrap();
    let now = env.clock().now();
    let jo = env
        .platform()
        .create_user(org.id, &member("jo@acme.test"), now)
        .await
        .unwrap();
    env.sync_to_idle().await.unwrap();
    let products = [
        env.product("analytics").await.unwrap(),
        env.product("crm").await.unwrap(),
    ];
    let holds = |mock: &ProductMock| mock.read_state().users.iter().any(|u| u.id == jo.0);
    assert!(products.iter().all(|m| holds(m)), "both products hold jo");

    env.platform().leave_org(jo, now).await.unwrap();
    // The outbox alone, before any reconciler could repair what it missed.
    env.sync_to_idle().await.unwrap();
    let path = format!("/v1/users/{}", jo.0);
    for mock in &products {
        let deletes = mock
            .journal()
            .iter()
            .filter(|r| r.method == "DELETE" && r.path == path)
            .count();
        assert_eq!(
            (deletes, holds(mock)),
            (1, false),
            "rule: a member who leaves is deleted once by each product of the organization's live \
             tenants ({})",
            mock.key()
        );
    }
}

/// The users a product was told to delete since its `seen`-th request.
fn user_deletes(mock: &ProductMock, seen: usize) -> Vec<i64> {
    let mut ids: Vec<i64> = mock.journal()[seen..]
        .iter()
        .filter(|r| r.method == "DELETE")
        .filter_map(|r| r.path.strip_prefix("/v1/users/")?.parse().ok())
        .collect();
    ids.sort_unstable();
    ids
}

#[tokio::test]
async fn a_deleted_tenant_takes_from_its_product_the_users_no_other_live_tenant_keeps_there() {
    let env = env_on("2026-11-24", 6).await;
    let on = env.this_month().day(10);
    // Other organizations on both products first (which installs the catalog).
    for plan in ["pro", "crm-basic"] {
        tenant_on(&env, None, plan, on).await;
    }
    // And one on analytics only, whose users crm never held.
    let analytics_only = env.build().org().create().await.unwrap();
    tenant_on(&env, Some(&analytics_only), "free", on).await;
    let org = org_with_card(&env).await;
    let first = tenant_on(&env, Some(&org), "pro", on).await;
    tenant_on(&env, Some(&org), "business", on).await;
    let crm = tenant_on(&env, Some(&org), "crm-basic", on).await;
    let now = env.clock().now();
    let p = env.platform();
    let jo = p
        .create_user(org.id, &member("jo@acme.test"), now)
        .await
        .unwrap();
    let kim = p
        .create_user(org.id, &member("kim@acme.test"), now)
        .await
        .unwrap();
    p.leave_org(kim, now).await.unwrap();
    env.sync_to_idle().await.unwrap();
    let (analytics, crm_mock) = (
        env.product("analytics").await.unwrap(),
        env.product("crm").await.unwrap(),
    );
    let mut live = vec![org.owner.0, jo.0];
    live.sort_unstable();

    // The organization's only crm tenant: crm forgets its live users, and no one else.
    let seen = (analytics.journal().len(), crm_mock.journal().len());
    crm.delete().await.unwrap();
    env.sync_to_idle().await.unwrap();
    assert_eq!(
        (
            user_deletes(&crm_mock, seen.1),
            user_deletes(&analytics, seen.0)
        ),
        (live.clone(), vec![]),
        "rule: a deleted tenant's product deletes the organization's live users that no other \
         live tenant keeps there (crm: the owner and jo; not kim, gone already, nor other \
         organizations' users), and no other product deletes anyone"
    );

    // Another analytics tenant of the organization keeps them on analytics.
    let seen = (analytics.journal().len(), crm_mock.journal().len());
    first.delete().await.unwrap();
    env.sync_to_idle().await.unwrap();
    assert_eq!(
        (
            user_deletes(&analytics, seen.0),
            user_deletes(&crm_mock, seen.1)
        ),
        (vec![], vec![]),
        "rule: users another live tenant keeps on the product stay there"
    );
}

/// What the dispatcher waits for, read back from the outbox: `(entity, attempts, last_error)`
/// of the undelivered rows of a tenant.
async fn waiting(env: &TestEnv, tenant: i64) -> Vec<(String, i32, Option<String>)> {
    billing_harness::platform::sync::undelivered(env.pool())
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.tenant_id == Some(tenant))
        .map(|r| (r.entity, r.attempts, r.last_error))
        .collect()
}

#[tokio::test]
async fn next_due_is_the_earliest_live_head_of_a_product_with_a_url_within_the_horizon() {
    use billing_harness::platform::sync::next_due;
    let env = env_giving_up_after(5, TimeDelta::seconds(1)).await;
    let pool = env.pool();
    let mock = analytics(&env).await;
    let crm_mock = env.product("crm").await.unwrap();

    // A key whose head is dead-lettered: it holds its subscription back and is never due.
    let dead = env.build().tenant().plan("pro").create().await.unwrap();
    mock.reject_tenant(dead.id().0, 422);
    env.sync_to_idle().await.unwrap();
    assert_eq!(
        waiting(&env, dead.id().0)
            .await
            .iter()
            .map(|(e, n, _)| (e.as_str(), *n))
            .collect::<Vec<_>>(),
        [("tenant", 2), ("subscription", 0)]
    );

    // A product without a `sync_url`: its rows wait, untried, until it has one. (The test
    // environment's sync job gives such a product a mock first, so the platform's own
    // functions are called here.)
    let unreachable = env
        .build()
        .tenant()
        .plan("crm-basic")
        .create()
        .await
        .unwrap();
    sqlx::query("update products set sync_url = null where key = 'crm'")
        .execute(pool)
        .await
        .unwrap();
    let now = env.clock().now();
    assert_eq!(
        next_due(pool, now, now + TimeDelta::days(1)).await.unwrap(),
        None,
        "rule: neither a dead-lettered head nor a product without a URL has work"
    );
    let policy = SyncPolicy {
        horizon: TimeDelta::seconds(1),
        ..SyncPolicy::default()
    };
    let client = billing_harness::products::SyncClient::new(policy.timeout);
    let sent = billing_harness::platform::sync::dispatch(pool, &client, &policy, now)
        .await
        .unwrap();
    assert_eq!((sent.delivered, sent.failed), (0, 0), "{sent:?}");
    assert_eq!(
        waiting(&env, unreachable.id().0).await,
        [
            ("user".to_owned(), 0, None),
            ("tenant".to_owned(), 0, None),
            ("subscription".to_owned(), 0, None),
        ],
        "rule: the rows of a product without a URL are not tried"
    );
    assert_eq!(crm_mock.requests(), 0);

    // A live head backing off: due when its backoff ends (2 s, up to half again of jitter), but
    // never after its horizon ends (1 s here).
    mock.fail_next(Fault::Status503, 1);
    let backing_off = env.build().tenant().plan("pro").create().await.unwrap();
    let runs = env.clock().settle().await.unwrap();
    assert_eq!(
        runs.iter().map(|r| (r.job, r.effects)).collect::<Vec<_>>(),
        [(billing_harness::calendar::Job::Sync, 4)],
        "the sync run counts every delivery it tried, failed or not: the backing-off key's \
         user (failed) and crm's three rows (the test environment's sync job points a product \
         without a URL at its mock first)"
    );
    assert_eq!(
        waiting(&env, backing_off.id().0).await[0].1,
        1,
        "one failure"
    );
    let now = env.clock().now();
    let due = next_due(pool, now, now + TimeDelta::days(1))
        .await
        .unwrap()
        .expect("the backing-off head is due within a day");
    assert_eq!(
        due,
        now + TimeDelta::seconds(1),
        "rule: a failed row is tried again after its backoff (2 to 3 s) or at its horizon's end \
         (1 s), whichever comes first"
    );
    assert_eq!(
        next_due(pool, now, now).await.unwrap(),
        None,
        "rule: nothing is due while the live head backs off"
    );
    assert_eq!(
        next_due(pool, now, due).await.unwrap(),
        Some(due),
        "rule: a head due exactly at the horizon is within it"
    );
    assert_eq!(
        next_due(pool, now, due - TimeDelta::microseconds(1))
            .await
            .unwrap(),
        None,
        "rule: a head due after the horizon is not"
    );
    let later = due + TimeDelta::seconds(1);
    assert_eq!(
        next_due(pool, later, later).await.unwrap(),
        Some(later),
        "rule: a head already due counts as due at `after`"
    );

    // Once it has a URL, the waiting product's rows go on their first attempt.
    env.sync_to_idle().await.unwrap();
    assert_eq!(waiting(&env, unreachable.id().0).await, []);
    assert_eq!(waiting(&env, backing_off.id().0).await, []);
    let statuses: Vec<Option<u16>> = crm_mock.journal().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [Some(200); 3], "each row sent once, accepted");
}

#[tokio::test]
async fn requeue_puts_back_the_dead_letter_named_due_from_the_given_instant_never_before_it_was_queued()
 {
    use billing_harness::platform::sync::{dead_letters, next_due, requeue};
    let env = env_giving_up_after(8, TimeDelta::seconds(1)).await;
    let pool = env.pool();
    let a = env.build().tenant().plan("pro").create().await.unwrap();
    let b = env.build().tenant().plan("pro").create().await.unwrap();
    let mock = analytics(&env).await;
    mock.reject_tenant(a.id().0, 422);
    mock.reject_tenant(b.id().0, 422);
    env.sync_to_idle().await.unwrap();
    // A display name other than the key: the rows name their product by its key.
    sqlx::query("update products set name = 'Analytics' where key = 'analytics'")
        .execute(pool)
        .await
        .unwrap();
    let dead = dead_letters(pool).await.unwrap();
    assert_eq!(
        dead.iter()
            .map(|r| (
                r.product.as_str(),
                r.tenant_id,
                r.entity.as_str(),
                r.attempts
            ))
            .collect::<Vec<_>>(),
        [
            ("analytics", Some(a.id().0), "tenant", 2),
            ("analytics", Some(b.id().0), "tenant", 2),
        ]
    );

    let queued: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("select created_at from sync_outbox where id = $1")
            .bind(dead[0].id)
            .fetch_one(pool)
            .await
            .unwrap();
    let before = queued - TimeDelta::hours(1);
    assert_eq!(
        requeue(pool, Some(dead[0].id), before).await.unwrap(),
        1,
        "rule: requeue by id puts back that row only"
    );
    assert_eq!(
        dead_letters(pool)
            .await
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect::<Vec<_>>(),
        [dead[1].id]
    );
    assert_eq!(
        next_due(pool, before, before + TimeDelta::days(1))
            .await
            .unwrap(),
        Some(queued),
        "rule: a requeued row is due from the given instant, but never before it was queued"
    );
    mock.accept_tenant(a.id().0);
    env.sync_to_idle().await.unwrap();
    assert!(mock.tenant(a.id().0).is_some(), "the requeued row went");
    assert!(mock.tenant(b.id().0).is_none(), "the other stays dead");

    let later = env.clock().now() + TimeDelta::hours(1);
    assert_eq!(requeue(pool, None, later).await.unwrap(), 1);
    let now = env.clock().now();
    assert_eq!(
        next_due(pool, now, now + TimeDelta::days(1)).await.unwrap(),
        Some(later),
        "rule: a row requeued from a later instant is due then"
    );
}

/// What a reconciliation found, as `(products with drift, busy products)`, each named as the
/// drift lines name them.
fn found(r: &billing_harness::platform::sync::Reconciliation) -> (Vec<String>, Vec<String>) {
    let mut products: Vec<String> = r.drift.iter().map(|d| d.product.clone()).collect();
    products.dedup();
    (products, r.busy.clone())
}

#[tokio::test]
async fn reconcile_reads_each_product_with_a_url_and_nothing_on_its_way_in_key_order() {
    use billing_harness::platform::sync::reconcile;
    let env = env_on("2026-11-24", 9).await;
    let pool = env.pool();
    let on_analytics = env.build().tenant().plan("pro").create().await.unwrap();
    let on_crm = env
        .build()
        .tenant()
        .plan("crm-basic")
        .create()
        .await
        .unwrap();
    env.assert_converged().await;
    let crm = env.product("crm").await.unwrap();
    // Display names that sort the other way round from the keys.
    sqlx::query(
        "update products set name = case key when 'analytics' then 'Zeta' else 'Alpha' end",
    )
    .execute(pool)
    .await
    .unwrap();
    analytics(&env).await.drift(on_analytics.id().0).unwrap();
    crm.drift(on_crm.id().0).unwrap();
    let client = billing_harness::products::SyncClient::new(std::time::Duration::from_secs(2));
    let policy = SyncPolicy::default();
    let now = env.clock().now();
    let read = reconcile(pool, &client, &policy, false, now).await.unwrap();
    assert_eq!(
        found(&read),
        (vec!["analytics".to_owned(), "crm".to_owned()], vec![]),
        "rule: every product is read back, in key order, and named by its key"
    );
    assert!(
        read.drift[0].to_string().starts_with("analytics: "),
        "{}",
        read.drift[0]
    );

    // A new analytics tenant's rows are on their way: analytics is busy, crm still read.
    env.build().tenant().plan("pro").create().await.unwrap();
    let read = reconcile(pool, &client, &policy, false, now).await.unwrap();
    assert_eq!(
        found(&read),
        (vec!["crm".to_owned()], vec!["analytics".to_owned()]),
        "rule: a product with undelivered rows is skipped as busy, and only that product"
    );

    sqlx::query("update products set sync_url = null where key = 'crm'")
        .execute(pool)
        .await
        .unwrap();
    let read = reconcile(pool, &client, &policy, false, now).await.unwrap();
    assert_eq!(
        found(&read),
        (vec![], vec!["analytics".to_owned()]),
        "rule: a product without a URL is not read"
    );
    assert!(read.unreachable.is_empty());

    // A product that does not answer is listed, not an error; the others are still read.
    sqlx::query("update products set sync_url = 'http://127.0.0.1:1' where key = 'crm'")
        .execute(pool)
        .await
        .unwrap();
    let read = reconcile(pool, &client, &policy, true, now).await.unwrap();
    assert_eq!(
        (read.unreachable.clone(), read.busy.clone(), read.requeued),
        (vec!["crm".to_owned()], vec![], 0),
        "rule: a product that does not answer its read-back is unreachable and left alone; one \
         that answers gets its waiting rows delivered"
    );
}

#[tokio::test]
async fn reconcile_queues_a_missing_user_and_the_deletion_of_extras_for_their_product() {
    use billing_harness::platform::sync::reconcile;
    let env = env_on("2026-11-24", 10).await;
    let pool = env.pool();
    let on = env.this_month().day(10);
    // Another organization's tenant first (which installs the catalog).
    tenant_on(&env, None, "free", on).await;
    let org = org_with_card(&env).await;
    // The organization's crm tenant first: the lowest tenant id of the organization.
    let on_crm = tenant_on(&env, Some(&org), "crm-basic", on).await;
    let first = tenant_on(&env, Some(&org), "pro", on).await;
    tenant_on(&env, Some(&org), "business", on).await;
    env.assert_converged().await;
    let mock = analytics(&env).await;
    let (owner, crm_id) = (org.owner.0, on_crm.id().0);
    mock.edit(|s| {
        let mut stranger = s.users.iter().find(|u| u.id == owner).unwrap().clone();
        stranger.id = 9_999;
        s.users.retain(|u| u.id != owner);
        s.users.push(stranger);
        for id in [crm_id, 8_888] {
            let mut extra = s.tenants[0].clone();
            extra.id = id;
            s.tenants.push(extra);
        }
    });

    let client = billing_harness::products::SyncClient::new(std::time::Duration::from_secs(2));
    let seen: i64 = sqlx::query_scalar("select max(id) from sync_outbox")
        .fetch_one(pool)
        .await
        .unwrap();
    let read = reconcile(
        pool,
        &client,
        &SyncPolicy::default(),
        true,
        env.clock().now(),
    )
    .await
    .unwrap();
    assert_eq!(read.repairs, 4, "{:?}", read.drift);
    let mut queued: Vec<(String, Option<i64>, String, String, i64)> = sqlx::query_as(
        "select p.key, o.tenant_id, o.entity, o.operation, o.entity_id from sync_outbox o \
         join products p on p.id = o.product_id where o.id > $1 and o.dispatched_at is not null",
    )
    .bind(seen)
    .fetch_all(pool)
    .await
    .unwrap();
    queued.sort();
    let row = |tenant: Option<i64>, entity: &str, operation: &str, id: i64| {
        let (entity, operation) = (entity.to_owned(), operation.to_owned());
        ("analytics".to_owned(), tenant, entity, operation, id)
    };
    let mut expected = vec![
        row(Some(first.id().0), "user", "upsert", owner),
        row(None, "user", "delete", 9_999),
        row(Some(crm_id), "tenant", "delete", crm_id),
        row(None, "tenant", "delete", 8_888),
    ];
    expected.sort();
    assert_eq!(
        queued, expected,
        "rule: a missing user is sent again with the organization's first tenant on that \
         product; an extra user or tenant is deleted, ordered with its tenant when the platform \
         has it; each repair is delivered by the reconcile itself"
    );
    env.assert_converged().await;
    let state = mock.read_state();
    let users: Vec<i64> = state.users.iter().map(|u| u.id).collect();
    assert!(
        users.contains(&owner) && !users.contains(&9_999),
        "{users:?}"
    );
    assert!(
        !state
            .tenants
            .iter()
            .any(|t| t.id == crm_id || t.id == 8_888),
        "the extras are gone"
    );
}

#[tokio::test]
async fn a_dispatch_reports_what_it_delivered_what_failed_and_what_it_gave_up_on() {
    use billing_harness::platform::sync::dispatch;
    let env = env_on("2026-11-24", 11).await;
    let t = env.build().tenant().plan("pro").create().await.unwrap();
    analytics(&env).await.reject_tenant(t.id().0, 422);
    let policy = SyncPolicy {
        horizon: TimeDelta::zero(),
        ..SyncPolicy::default()
    };
    let client = billing_harness::products::SyncClient::new(policy.timeout);
    let report = dispatch(env.pool(), &client, &policy, env.clock().now())
        .await
        .unwrap();
    assert_eq!(
        (report.delivered, report.failed, report.dead_lettered),
        (1, 1, 1),
        "the user delivered, the tenant refused at its last attempt; the subscription waits"
    );
}

/// When each write to `mock` was sent, and whether it was applied, in order.
fn writes(mock: &ProductMock) -> Vec<(chrono::DateTime<chrono::Utc>, bool)> {
    mock.journal()
        .iter()
        .filter(|r| r.method != "GET")
        .map(|r| (r.sent_at.expect("the dispatcher says when"), r.applied))
        .collect()
}

#[tokio::test]
async fn a_product_down_two_hours_is_caught_up_by_retries_before_the_next_reconcile() {
    use billing_harness::calendar::Job;
    let env = env_on("2026-11-24", 12).await;
    let start = env.clock().now();
    let outage = env
        .build()
        .outage("analytics")
        .from(start + TimeDelta::minutes(30))
        .lasting(TimeDelta::hours(2))
        .create()
        .await
        .unwrap();
    env.clock().advance_to(outage.from()).await.unwrap();
    let t = env.build().tenant().plan("pro").create().await.unwrap();
    let runs = env.clock().advance(TimeDelta::hours(6)).await.unwrap();
    let mock = analytics(&env).await;
    let sent = writes(&mock);
    let failed: Vec<_> = sent.iter().filter(|(_, applied)| !applied).collect();
    assert!(
        failed.len() > 6 && failed.iter().all(|(at, _)| outage.covers(*at)),
        "rule: every write in the window fails, and the row is retried past the old 6 attempts: \
         {failed:?}"
    );
    let applied: Vec<_> = sent.iter().filter(|(_, applied)| *applied).collect();
    assert_eq!(applied.len(), 3, "user, tenant, subscription once each");
    let caught_up = applied[0].0;
    assert!(
        caught_up >= outage.until() && caught_up <= outage.until() + TimeDelta::minutes(90),
        "rule: retried by backoff (at most an hour plus half) until it answers: {caught_up}"
    );
    assert!(
        runs.iter().all(|r| r.job != Job::Reconcile),
        "no reconcile was needed (none was due)"
    );
    assert!(mock.tenant(t.id().0).is_some());
    assert!(
        billing_harness::platform::sync::dead_letters(env.pool())
            .await
            .unwrap()
            .is_empty()
    );
    env.assert_converged().await;
}

#[tokio::test]
async fn a_product_down_past_its_horizon_is_caught_up_by_the_first_reconcile_after_it_answers() {
    use billing_harness::calendar::Job;
    use billing_harness::platform::sync::dead_letters;
    let env = env_on("2026-11-24", 13).await;
    let outage = env
        .build()
        .outage("analytics")
        .lasting(TimeDelta::days(4) + TimeDelta::hours(9))
        .fault(Fault::Reset)
        .create()
        .await
        .unwrap();
    let t = env.build().tenant().plan("pro").create().await.unwrap();
    let first = env.clock().now();
    env.clock()
        .advance_to(first + TimeDelta::days(3))
        .await
        .unwrap();
    let dead = dead_letters(env.pool()).await.unwrap();
    assert_eq!(
        dead.iter().map(|r| r.entity.as_str()).collect::<Vec<_>>(),
        ["user"],
        "rule: the head row is a dead letter once it has failed for the horizon (3 days), and \
         not before; the rows behind it wait"
    );
    let mock = analytics(&env).await;
    let last_try = writes(&mock).last().unwrap().0;
    assert_eq!(
        last_try,
        first + TimeDelta::days(3),
        "the last attempt at the horizon"
    );
    let reads = mock
        .journal()
        .iter()
        .filter(|r| r.method == "GET" && r.fault == Some(Fault::Reset))
        .count();
    assert_eq!(
        reads, 3,
        "each daily reconcile found the product down and left it alone"
    );

    // Back at 09:00 on the 28th: nothing is tried until the next reconcile, 00:00 on the 29th.
    env.clock().advance_to(outage.until()).await.unwrap();
    assert!(mock.tenant(t.id().0).is_none());
    let midnight = env.this_month().day(29).midnight();
    let runs = env.clock().advance_to(midnight).await.unwrap();
    assert_eq!(
        runs.iter()
            .filter(|r| r.job == Job::Reconcile)
            .map(|r| (r.at, r.effects))
            .collect::<Vec<_>>(),
        [(midnight, 1)],
        "rule: the first reconcile after the product answers re-queues the dead letter"
    );
    let sent = writes(&mock);
    let applied: Vec<_> = sent.iter().filter(|(_, a)| *a).map(|(at, _)| *at).collect();
    assert_eq!(
        applied, [midnight; 3],
        "user, tenant and subscription, in order, at that reconcile"
    );
    assert!(dead_letters(env.pool()).await.unwrap().is_empty());
    let converged = env.assert_converged().await;
    assert!(
        converged.repaired.is_empty(),
        "nothing drifted: only delivered"
    );
}

/// rule: a product's own retry horizon (`SyncPolicy::with_horizon`) is found by its key,
/// whatever the product is called.
#[tokio::test]
async fn a_products_own_horizon_is_found_by_its_key_not_its_name() {
    use billing_harness::platform::sync::dead_letters;
    let env = TestEnv::builder()
        .today("2026-11-24".parse::<NaiveDate>().unwrap())
        .seed(17)
        .sync_policy(SyncPolicy::default().with_horizon("analytics", TimeDelta::seconds(5)))
        .build()
        .await
        .unwrap();
    env.build().tenant().plan("pro").create().await.unwrap();
    env.sync_to_idle().await.unwrap();
    let renamed =
        sqlx::query("update products set name = 'Analytics (EU)' where key = 'analytics'")
            .execute(env.pool())
            .await
            .unwrap();
    assert_eq!(renamed.rows_affected(), 1);
    let a = env.build().tenant().plan("pro").create().await.unwrap();
    analytics(&env).await.reject_tenant(a.id().0, 422);
    env.sync_to_idle().await.unwrap();
    let dead = dead_letters(env.pool()).await.unwrap();
    assert_eq!(
        dead.iter()
            .map(|r| (r.entity.as_str(), r.attempts))
            .collect::<Vec<_>>(),
        [("tenant", 3)],
        "rule: analytics's own horizon (5 s), not the default (3 days): tried when queued, \
         after its backoff and at its horizon, then given up"
    );
}
