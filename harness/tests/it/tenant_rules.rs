//! The billing rules per tenant in a database shared by several organizations and tenants, each
//! with usage, plan periods, invoices and payments of its own, and with ids that differ from
//! table to table ([`crate::support::distinct_ids`]): a query that reads another tenant's rows,
//! joins on the wrong key or binds one id for another fails here. Every expected amount is
//! computed by hand in a comment.

use std::time::Duration;

use billing_harness::model::{ContractTerms, Month, TenantId};
use billing_harness::platform::{charge_due, close_month, invariant_violations};
use billing_harness::prelude::*;
use serde_json::json;

use crate::rules::{env_with_catalog, invoice_of, kst, midnight, refused, show};
use crate::support::{day, display_names, hold_tenant};

/// How long an operation that must not wait may take, far more than it needs.
const WAIT: Duration = Duration::from_secs(10);

/// Each tenant's subscription at the end: plan, status, cancel day and reason.
async fn states(tenants: &[&Tenant<'_>]) -> Vec<String> {
    let mut out = Vec::new();
    for t in tenants {
        let s = t
            .timeline()
            .await
            .unwrap()
            .subscription
            .expect("a subscription");
        out.push(format!(
            "{} {} {} {}",
            s.plan,
            s.status,
            s.cancelled_on.map_or("-".to_owned(), |d| d.to_string()),
            s.cancel_reason.map_or("-".to_owned(), |r| r.to_string())
        ));
    }
    out
}

/// Attempts of a tenant's timeline, one line each (see [`crate::payment_rules::attempts`]).
async fn attempts(tenant: &Tenant<'_>) -> Vec<String> {
    crate::payment_rules::attempts(&tenant.timeline().await.unwrap())
}

/// The months of a tenant's invoices, oldest first.
async fn invoiced_months(tenant: &Tenant<'_>) -> Vec<Month> {
    tenant
        .invoices()
        .await
        .unwrap()
        .iter()
        .map(|i| i.invoice.month)
        .collect()
}

#[tokio::test]
async fn each_tenant_is_billed_and_charged_for_its_own_periods_and_usage_only() {
    let env = env_with_catalog(midnight(2026, 10, 1), "0").await;
    display_names(&env).await;
    let p = env.platform();
    let org_a = env.build().org().card(TestCard::Ok).create().await.unwrap();
    let org_b = env
        .build()
        .org()
        .card(TestCard::Declined)
        .create()
        .await
        .unwrap();
    let (a1, a2) = (
        env.build().tenant().org(&org_a).create().await.unwrap(),
        env.build().tenant().org(&org_a).create().await.unwrap(),
    );
    let (b1, c1) = (
        env.build().tenant().org(&org_b).create().await.unwrap(),
        env.build().tenant().org(&org_b).create().await.unwrap(),
    );
    // Written in this order with the clock on October 1st, so that the latest subscription is
    // another tenant's and was cancelled: usage looked up among every tenant's subscriptions
    // would land on it.
    let at = |d| midnight(2026, 10, d);
    p.subscribe(a1.id(), "pro", at(1)).await.unwrap();
    p.subscribe(a2.id(), "business", at(5)).await.unwrap();
    p.change_plan(a2.id(), "pro", at(20)).await.unwrap();
    p.subscribe(b1.id(), "pro", at(10)).await.unwrap();
    p.subscribe(c1.id(), "business", at(12)).await.unwrap();
    p.cancel(c1.id(), at(25)).await.unwrap();

    let now = env.clock().now();
    let usage = [
        // a1: the first and the last day of October, and November 1st, reported in advance.
        (&a1, 60_000, day(2026, 10, 1)),
        (&a1, 40_001, day(2026, 10, 31)),
        (&a1, 100_001, day(2026, 11, 1)),
        // a2: the last business day and the change day, which is pro's, each 1 over its quota.
        (&a2, 483_871, day(2026, 10, 19)),
        (&a2, 38_710, day(2026, 10, 20)),
        (&b1, 70_968, day(2026, 10, 10)),
        (&c1, 500_000, day(2026, 10, 12)),
    ];
    for (tenant, quantity, on) in usage {
        p.record_usage(tenant.id(), "api_calls", quantity, on, now)
            .await
            .unwrap();
    }
    let rule = "rule: usage before the subscription starts is refused";
    let early = p
        .record_usage(b1.id(), "api_calls", 1, day(2026, 10, 9), now)
        .await;
    assert_eq!(refused(early, rule), "no_active_subscription", "{rule}");
    let rule = "rule: usage of an unknown tenant is refused as such, whatever other tenants exist";
    let unknown = p
        .record_usage(TenantId(999_999), "api_calls", 1, day(2026, 10, 9), now)
        .await;
    assert_eq!(refused(unknown, rule), "unknown_tenant", "{rule}");

    env.clock()
        .advance_to(kst(2026, 11, 5, 12, 0, 0))
        .await
        .unwrap();
    let rule = "rule: an invoice counts its own tenant's usage on the days of its own periods";
    // 60,000 + 40,001 = 100,001 calls, 1 over the month's 100,000: one block, 500. The calls
    // of November 1st are November's.
    assert_eq!(
        show(&invoice_of(&a1, 2026, 10).await),
        [
            "base pro 2026-10-01..2026-11-01 31d 99000",
            "overage pro api_calls used 100001 included 100000 over 1 = 500",
            "subtotal 99500 tax 0 total 99500"
        ],
        "{rule} (a1: the first and last day of the month)"
    );
    // business for 15 days: floor(290,000 × 15 / 31) = floor(140,322.58…) = 140,322, quota
    // floor(1,000,000 × 15 / 31) = 483,870; pro for 12 days: floor(99,000 × 12 / 31)
    // = floor(38,322.58…) = 38,322, quota floor(100,000 × 12 / 31) = 38,709. The lines keep
    // the order of the periods although pro is the older plan. Each is 1 call over: 300 + 500.
    assert_eq!(
        show(&invoice_of(&a2, 2026, 10).await),
        [
            "base business 2026-10-05..2026-10-20 15d 140322",
            "overage business api_calls used 483871 included 483870 over 1 = 300",
            "base pro 2026-10-20..2026-11-01 12d 38322",
            "overage pro api_calls used 38710 included 38709 over 1 = 500",
            "subtotal 179444 tax 0 total 179444"
        ],
        "{rule} (a2: a plan change back to an older plan)"
    );
    // 22 days: floor(99,000 × 22 / 31) = 70,258, quota floor(100,000 × 22 / 31) = 70,967: 1 over.
    assert_eq!(
        show(&invoice_of(&b1, 2026, 10).await),
        [
            "base pro 2026-10-10..2026-11-01 22d 70258",
            "overage pro api_calls used 70968 included 70967 over 1 = 500",
            "subtotal 70758 tax 0 total 70758"
        ],
        "{rule} (b1)"
    );
    // 13 days (the 12th to the 24th): floor(290,000 × 13 / 31) = floor(121,612.90…) = 121,612,
    // quota floor(1,000,000 × 13 / 31) = 419,354; 80,646 over: 81 started blocks × 300 = 24,300.
    assert_eq!(
        show(&invoice_of(&c1, 2026, 10).await),
        [
            "base business 2026-10-12..2026-10-25 13d 121612",
            "overage business api_calls used 500000 included 419354 over 80646 = 24300",
            "subtotal 145912 tax 0 total 145912"
        ],
        "{rule} (c1, cancelled)"
    );

    let rule = "rule: each invoice is charged its total on the 5th to its own organization's card";
    assert_eq!(
        attempts(&a1).await,
        ["2026-10 on 2026-11-05 #1 99500 succeeded - 4242"],
        "{rule} (a1)"
    );
    assert_eq!(
        attempts(&a2).await,
        ["2026-10 on 2026-11-05 #1 179444 succeeded - 4242"],
        "{rule} (a2)"
    );
    assert_eq!(
        attempts(&b1).await,
        ["2026-10 on 2026-11-05 #1 70758 failed declined 0002"],
        "{rule} (b1)"
    );
    assert_eq!(
        attempts(&c1).await,
        ["2026-10 on 2026-11-05 #1 145912 failed declined 0002"],
        "{rule} (c1)"
    );

    env.clock()
        .advance_to(midnight(2026, 11, 15))
        .await
        .unwrap();
    p.cancel(a2.id(), env.clock().now()).await.unwrap();
    env.clock().advance_to(midnight(2026, 12, 1)).await.unwrap();
    // November: the whole month of pro, with the calls of its 1st and none of October's.
    assert_eq!(
        show(&invoice_of(&a1, 2026, 11).await),
        [
            "base pro 2026-11-01..2026-12-01 30d 99000",
            "overage pro api_calls used 100001 included 100000 over 1 = 500",
            "subtotal 99500 tax 0 total 99500"
        ],
        "rule: usage on the 1st counts in its own month only"
    );
    // a2 cancelled on the 15th: pro for 14 days, floor(99,000 × 14 / 30) = 46,200, and no line
    // of the business period that ended in October.
    assert_eq!(
        show(&invoice_of(&a2, 2026, 11).await),
        [
            "base pro 2026-11-01..2026-11-15 14d 46200",
            "subtotal 46200 tax 0 total 46200"
        ],
        "rule: a cancel ends only the open period of its own subscription"
    );
    // b1's card failed on the 5th to the 8th: cancelled from the 8th, 7 days billed,
    // floor(99,000 × 7 / 30) = 23,100.
    assert_eq!(
        show(&invoice_of(&b1, 2026, 11).await)[0],
        "base pro 2026-11-01..2026-11-08 7d 23100",
        "rule: the subscription of an uncollectible invoice ends on the day of the last attempt"
    );
    assert_eq!(
        invoiced_months(&c1).await,
        [Month::new(2026, 10).unwrap()],
        "rule: a subscription cancelled in October has no November invoice"
    );
    assert_eq!(
        states(&[&a1, &a2, &b1, &c1]).await,
        [
            "pro active - -",
            "pro cancelled 2026-11-15 requested",
            "pro cancelled 2026-11-08 payment_failed",
            "business cancelled 2026-10-25 requested",
        ],
        "rule: each operation and each payment changes its own subscription only"
    );
    assert_eq!(
        invariant_violations(env.pool()).await.unwrap(),
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn usage_and_plan_changes_of_one_tenant_do_not_wait_for_another_tenants_operation() {
    let env = env_with_catalog(midnight(2026, 10, 1), "0").await;
    let a = env.build().tenant().plan("pro").create().await.unwrap();
    let b = env.build().tenant().plan("pro").create().await.unwrap();
    // A plan change of b in progress holds b's row until it commits.
    let held = hold_tenant(&env, b.id()).await;
    let on = env.day(day(2026, 10, 2));
    let usage = tokio::time::timeout(WAIT, a.usage("api_calls", 5).on(on)).await;
    let change = tokio::time::timeout(WAIT, a.change_plan("business").on(on)).await;
    held.rollback().await.unwrap();
    let rule = "rule: an operation locks only its own tenant, so it does not wait for another's";
    assert!(usage.is_ok_and(|r| r.is_ok()), "{rule} (usage)");
    assert!(change.is_ok_and(|r| r.is_ok()), "{rule} (plan change)");
}

#[tokio::test]
async fn a_reclosed_month_invoices_only_what_it_has_not_invoiced() {
    let env = env_with_catalog(midnight(2026, 10, 1), "0").await;
    let early = env.build().tenant().plan("pro").create().await.unwrap();
    env.clock().advance_to(midnight(2026, 12, 2)).await.unwrap();
    // A subscription written into October after its close, as a later seed writes into the
    // past of a shared database: 12 days from the 20th, floor(99,000 × 12 / 31) = 38,322.
    let late = env.build().tenant().create().await.unwrap();
    env.platform()
        .subscribe(late.id(), "pro", midnight(2026, 10, 20))
        .await
        .unwrap();
    let (october, november) = (Month::new(2026, 10).unwrap(), Month::new(2026, 11).unwrap());
    let report = close_month(env.pool(), october, env.clock().now())
        .await
        .unwrap();
    let rule = "rule: closing a month again invoices only the subscriptions it has not invoiced";
    assert_eq!(
        (report.invoices, report.already_closed),
        (1, true),
        "{rule}"
    );
    assert_eq!(
        invoiced_months(&early).await,
        [october, november],
        "{rule} (one invoice per subscription and month)"
    );
    assert_eq!(
        show(&invoice_of(&late, 2026, 10).await),
        [
            "base pro 2026-10-20..2026-11-01 12d 38322",
            "subtotal 38322 tax 0 total 38322"
        ],
        "{rule} (the late subscription)"
    );
    let counts: Vec<(chrono::NaiveDate, i32)> =
        sqlx::query_as("select month, invoices from month_closes order by month")
            .fetch_all(env.pool())
            .await
            .unwrap();
    // November's close ran before late was written: it invoiced early alone, and stays at one.
    assert_eq!(
        counts,
        [(day(2026, 10, 1), 2), (day(2026, 11, 1), 1)],
        "rule: a close counts its invoices in its own month"
    );
}

#[tokio::test]
async fn a_charge_holds_its_own_tenant_and_no_other() {
    let env = env_with_catalog(midnight(2026, 10, 1), "0").await;
    let a = env.build().tenant().plan("pro").create().await.unwrap();
    let b = env.build().tenant().plan("pro").create().await.unwrap();
    env.clock().advance_to(midnight(2026, 11, 4)).await.unwrap();
    // b's row is held by an operation of b: a's charge goes ahead, b's waits for it.
    let held = hold_tenant(&env, b.id()).await;
    let charged = |tenant: TenantId| {
        sqlx::query_scalar::<_, bool>(
            "select exists (select 1 from payments p join invoices i on i.id = p.invoice_id \
             where i.tenant_id = $1)",
        )
        .bind(tenant)
        .fetch_one(env.pool())
    };
    let waiting = || {
        sqlx::query_scalar::<_, bool>(
            "select exists (select 1 from pg_stat_activity \
             where datname = current_database() and wait_event_type = 'Lock')",
        )
        .fetch_one(env.pool())
    };
    let watch = async {
        let until = tokio::time::Instant::now() + WAIT;
        loop {
            if charged(a.id()).await.unwrap() && waiting().await.unwrap() {
                break Ok((
                    charged(b.id()).await.unwrap(),
                    env.gateway().journal().len(),
                ));
            }
            if tokio::time::Instant::now() > until {
                break Err("a not charged, or b's charge not waiting");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let job = charge_due(env.pool(), env.gateway(), midnight(2026, 11, 5));
    let release = async {
        let seen = watch.await;
        held.rollback().await.unwrap();
        seen
    };
    let (attempts, seen) = tokio::join!(job, release);
    let rule =
        "rule: a charge holds its tenant, as every operation that ends or renews a subscription";
    assert_eq!(
        seen,
        Ok((false, 1)),
        "{rule}: a's charge does not wait for b, b's waits before it asks the gateway"
    );
    assert_eq!(
        attempts.unwrap().len(),
        2,
        "{rule}: both are charged once b is free"
    );
}

#[tokio::test]
async fn each_subscription_change_queues_its_own_state_for_its_product() {
    let env = env_with_catalog(midnight(2026, 10, 1), "0").await;
    display_names(&env).await;
    let p = env.platform();
    let analytics = env.build().tenant().create().await.unwrap();
    let crm = env.build().tenant().product("crm").create().await.unwrap();
    let at = |d| midnight(2026, 10, d);
    p.subscribe(analytics.id(), "pro", at(3)).await.unwrap();
    p.subscribe(crm.id(), "crm-basic", at(4)).await.unwrap();
    p.change_plan(analytics.id(), "business", at(10))
        .await
        .unwrap();
    p.cancel(crm.id(), at(12)).await.unwrap();
    let rows: Vec<(String, i64, i64, serde_json::Value)> = sqlx::query_as(
        "select p.key, o.tenant_id, o.entity_id, o.payload from sync_outbox o \
         join products p on p.id = o.product_id where o.entity = 'subscription' order by o.id",
    )
    .fetch_all(env.pool())
    .await
    .unwrap();
    let subscription = |t: &Tenant<'_>| rows.iter().find(|r| r.1 == t.id().0).expect("an event").2;
    let (a, c) = (analytics.id().0, crm.id().0);
    let (sa, sc) = (subscription(&analytics), subscription(&crm));
    let event = |product: &str, tenant, sub, plan: &str, status: &str, cancelled: Option<&str>| {
        (
            product.to_owned(),
            tenant,
            sub,
            json!({"id": sub, "tenant_id": tenant, "plan": plan, "status": status,
                   "started_on": if tenant == a { "2026-10-03" } else { "2026-10-04" },
                   "cancelled_on": cancelled, "limits": {"seats": 10}}),
        )
    };
    assert_eq!(
        rows,
        [
            event("analytics", a, sa, "pro", "active", None),
            event("crm", c, sc, "crm-basic", "active", None),
            event("analytics", a, sa, "business", "active", None),
            event("crm", c, sc, "crm-basic", "cancelled", Some("2026-10-12")),
        ],
        "rule: every subscription change queues the subscription's own state for its product"
    );
    assert_ne!(sa, sc, "two subscriptions");
}

/// `code: message` of a refused operation; panics naming `rule` when it was accepted.
fn refusal<T: std::fmt::Debug>(result: Result<T, DomainError>, rule: &str) -> String {
    match result {
        Ok(accepted) => panic!("{rule}: it was accepted ({accepted:?})"),
        Err(e) => format!("{}: {e}", e.code()),
    }
}

#[tokio::test]
async fn each_tenant_takes_only_its_own_products_catalog_plans_named_by_key() {
    let env = env_with_catalog(midnight(2026, 10, 1), "0").await;
    let p = env.platform();
    let now = env.clock().now();
    // An analytics tenant first, and products and plans all named alike: a query that reads the
    // first tenant or product instead of the one asked for, or a name for a key, shows here.
    let org_a = p.create_org("a", now).await.unwrap();
    let org_b = p.create_org("b", now).await.unwrap();
    for org in [org_a, org_b] {
        p.register_card(org, TestCard::Ok, now).await.unwrap();
    }
    let first = p
        .create_tenant(org_a, "analytics", "a-first", now)
        .await
        .unwrap();
    let analytics = p
        .create_tenant(org_a, "analytics", "a-second", now)
        .await
        .unwrap();
    let crm = p.create_tenant(org_b, "crm", "b-first", now).await.unwrap();
    let new_crm = p
        .create_tenant(org_b, "crm", "b-second", now)
        .await
        .unwrap();
    display_names(&env).await;
    p.subscribe(first, "pro", now).await.unwrap();
    p.subscribe(crm, "crm-basic", now).await.unwrap();
    let rule = "rule: a tenant takes only its own product's plans";
    let cases = [
        (
            "a crm tenant's change",
            p.change_plan(crm, "pro", now).await,
            "pro",
            "analytics",
            "crm",
        ),
        (
            "an analytics tenant's change",
            p.change_plan(first, "crm-basic", now).await,
            "crm-basic",
            "crm",
            "analytics",
        ),
        (
            "a crm tenant subscribing",
            p.subscribe(new_crm, "pro", now).await.map(drop),
            "pro",
            "analytics",
            "crm",
        ),
        (
            "an analytics tenant subscribing",
            p.subscribe(analytics, "crm-basic", now).await.map(drop),
            "crm-basic",
            "crm",
            "analytics",
        ),
    ];
    for (case, result, plan, plan_product, tenant_product) in cases {
        assert_eq!(
            refusal(result, rule),
            format!(
                "plan_product_mismatch: plan {plan} belongs to product {plan_product}, \
                 the tenant to {tenant_product}"
            ),
            "{rule} ({case})"
        );
    }
    let rule = "rule: a contract's plan is its tenant's own, never a catalog plan";
    let terms = ContractTerms {
        base_fee: Some(crate::support::dec("500000")),
        ..ContractTerms::default()
    };
    let custom = p.apply_contract(first, &terms, now).await.unwrap().plan;
    assert_eq!(
        refused(p.subscribe(analytics, &custom, now).await, rule),
        "unknown_plan",
        "{rule} (subscribing another tenant of the org to it)"
    );
    p.subscribe(analytics, "free", now).await.unwrap();
    assert_eq!(
        refused(p.change_plan(analytics, &custom, now).await, rule),
        "unknown_plan",
        "{rule} (changing another tenant of the org to it)"
    );
    // The refusals moved nobody: each tenant is on the plan it subscribed to or contracted.
    let plans: Vec<(String, String)> = sqlx::query_as(
        "select t.slug, p.key from subscriptions s join tenants t on t.id = s.tenant_id \
         join plans p on p.id = s.plan_id order by t.slug",
    )
    .fetch_all(env.pool())
    .await
    .unwrap();
    assert_eq!(
        plans,
        [
            ("a-first".to_owned(), custom),
            ("a-second".to_owned(), "free".to_owned()),
            ("b-first".to_owned(), "crm-basic".to_owned()),
        ]
    );
}
