//! The billing rules per tenant in a database shared by several organizations and tenants, each
//! with usage, plan periods, invoices and payments of its own, and with ids that differ from
//! table to table ([`crate::support::distinct_ids`]): a query that reads another tenant's rows,
//! joins on the wrong key or binds one id for another fails here. Every expected amount is
//! computed by hand in a comment.

use billing_harness::model::{Month, TenantId};
use billing_harness::platform::close_month;
use billing_harness::prelude::*;

use crate::rules::{env_with_catalog, invoice_of, kst, midnight, refused, show};
use crate::support::day;

/// Attempts of a tenant's timeline, one line each: period, day, attempt, amount, outcome and
/// failure code.
async fn attempts(tenant: &Tenant<'_>) -> Vec<String> {
    tenant
        .timeline()
        .await
        .unwrap()
        .attempts
        .iter()
        .map(|a| {
            format!(
                "{} on {} #{} {} {} {}",
                a.period,
                a.on,
                a.attempt,
                a.amount,
                a.outcome,
                a.failure_code.as_deref().unwrap_or("-")
            )
        })
        .collect()
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
    let p = env.platform();
    let org_a = env.org().card(TestCard::Ok).create().await.unwrap();
    let org_b = env.org().card(TestCard::Declined).create().await.unwrap();
    let (a1, a2) = (
        env.tenant().org(&org_a).create().await.unwrap(),
        env.tenant().org(&org_a).create().await.unwrap(),
    );
    let (b1, c1) = (
        env.tenant().org(&org_b).create().await.unwrap(),
        env.tenant().org(&org_b).create().await.unwrap(),
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
        ["2026-10 on 2026-11-05 #1 99500 succeeded -"],
        "{rule} (a1)"
    );
    assert_eq!(
        attempts(&a2).await,
        ["2026-10 on 2026-11-05 #1 179444 succeeded -"],
        "{rule} (a2)"
    );
    assert_eq!(
        attempts(&b1).await,
        ["2026-10 on 2026-11-05 #1 70758 failed declined"],
        "{rule} (b1)"
    );
    assert_eq!(
        attempts(&c1).await,
        ["2026-10 on 2026-11-05 #1 145912 failed declined"],
        "{rule} (c1)"
    );

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
    assert_eq!(
        invoiced_months(&c1).await,
        [Month::new(2026, 10).unwrap()],
        "rule: a subscription cancelled in October has no November invoice"
    );
}

#[tokio::test]
async fn usage_of_one_tenant_does_not_wait_for_another_tenants_plan_change() {
    let env = env_with_catalog(midnight(2026, 10, 1), "0").await;
    let a = env.tenant().plan("pro").create().await.unwrap();
    let b = env.tenant().plan("pro").create().await.unwrap();
    // A plan change of b in progress holds b's row until it commits.
    let mut change = env.pool().begin().await.unwrap();
    sqlx::query("select id from tenants where id = $1 for update")
        .bind(b.id())
        .execute(&mut *change)
        .await
        .unwrap();
    let usage = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        a.usage("api_calls", 5).on(env.day(day(2026, 10, 2))),
    )
    .await;
    change.rollback().await.unwrap();
    assert!(
        usage.is_ok_and(|r| r.is_ok()),
        "rule: usage locks only its own tenant, so it does not wait for another tenant's change"
    );
}

#[tokio::test]
async fn a_reclosed_month_invoices_only_what_it_has_not_invoiced() {
    let env = env_with_catalog(midnight(2026, 10, 1), "0").await;
    let early = env.tenant().plan("pro").create().await.unwrap();
    env.clock().advance_to(midnight(2026, 11, 2)).await.unwrap();
    // A subscription written into October after its close, as a later seed writes into the
    // past of a shared database: 12 days from the 20th, floor(99,000 × 12 / 31) = 38,322.
    let late = env.tenant().create().await.unwrap();
    env.platform()
        .subscribe(late.id(), "pro", midnight(2026, 10, 20))
        .await
        .unwrap();
    let october = Month::new(2026, 10).unwrap();
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
        [october],
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
    assert_eq!(
        counts,
        [(day(2026, 10, 1), 2)],
        "rule: a close counts its invoices in its own month"
    );
}
