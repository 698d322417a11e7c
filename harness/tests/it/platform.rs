//! The platform's operations against real PostgreSQL: every rule's error code, nothing written on
//! refusal, and invoices from the monthly close that match the hand-computed reference.

use billing_harness::calendar::{Calendar, Job};
use billing_harness::model::Month;
use chrono::TimeDelta;
use rstest::rstest;

use crate::support::{dec, fingerprint, seoul, world};

#[tokio::test]
async fn a_pro_plan_from_october_10th_bills_22_of_31_days() {
    let (env, tenant) = world(seoul(2026, 10, 10), true).await;
    let p = env.platform();
    p.subscribe(tenant, "pro", env.clock().now()).await.unwrap();
    let runs = env.clock().advance_to(seoul(2026, 11, 1)).await.unwrap();
    // Every midnight on the way has its retry and reconcile runs; the close comes first on the 1st.
    let at_first: Vec<_> = runs
        .iter()
        .filter(|r| r.at == seoul(2026, 11, 1))
        .map(|r| (r.job, r.effects))
        .collect();
    assert_eq!(
        at_first,
        vec![
            (Job::Close(Month::new(2026, 10).unwrap()), 1),
            (Job::Retry, 0),
            (Job::Reconcile, 0)
        ]
    );
    assert_eq!(
        runs.iter().filter(|r| r.job != Job::Sync).count(),
        45,
        "retries and a reconcile at each midnight from October 11th, and the close on the 1st"
    );
    let invoices = p.invoices(tenant).await.unwrap();
    assert_eq!(invoices.len(), 1);
    let invoice = &invoices[0];
    assert_eq!(
        (invoice.status.as_str(), invoice.invoice.total),
        ("finalized", dec("70258"))
    );
    assert_eq!(invoice.invoice.lines[0].days, 22);
}

#[tokio::test]
async fn an_upgrade_on_the_20th_bills_both_plans_and_the_overage_of_each_period() {
    let (env, tenant) = world(seoul(2026, 10, 10), true).await;
    let p = env.platform();
    let clock = env.clock();
    p.subscribe(tenant, "pro", clock.now()).await.unwrap();
    clock.advance_to(seoul(2026, 10, 15)).await.unwrap();
    // pro quota for 10 days: floor(100000 × 10 / 31) = 32258; 33259 used → 1001 over → 2 blocks.
    p.record_usage(
        tenant,
        "api_calls",
        33_259,
        Calendar::platform().local_day(clock.now()),
        clock.now(),
    )
    .await
    .unwrap();
    clock.advance_to(seoul(2026, 10, 20)).await.unwrap();
    p.change_plan(tenant, "business", clock.now())
        .await
        .unwrap();
    clock.advance_to(seoul(2026, 11, 1)).await.unwrap();
    let invoice = &p.invoices(tenant).await.unwrap()[0];
    let amounts: Vec<_> = invoice
        .invoice
        .lines
        .iter()
        .map(|l| (l.kind.as_str(), l.plan.as_str(), l.days, l.amount))
        .collect();
    assert_eq!(
        amounts,
        vec![
            ("base", "pro", 10, dec("31935")),
            ("overage", "pro", 10, dec("1000")),
            ("base", "business", 12, dec("112258")),
        ]
    );
    assert_eq!(invoice.invoice.total, dec("145193"));
}

#[tokio::test]
async fn a_zero_total_invoice_is_paid_at_once_and_a_month_closes_once() {
    let (env, tenant) = world(seoul(2026, 2, 3), false).await;
    let p = env.platform();
    p.subscribe(tenant, "free", env.clock().now())
        .await
        .unwrap();
    env.clock().advance_to(seoul(2026, 3, 1)).await.unwrap();
    let again = p
        .close_month(Month::new(2026, 2).unwrap(), env.clock().now())
        .await
        .unwrap();
    assert!(again.already_closed);
    let invoices = p.invoices(tenant).await.unwrap();
    assert_eq!(invoices.len(), 1);
    assert_eq!(
        (invoices[0].status.as_str(), invoices[0].invoice.total),
        ("paid", dec("0"))
    );
}

#[tokio::test]
async fn a_cancelled_subscription_gets_its_last_invoice_at_the_next_close_only() {
    let (env, tenant) = world(seoul(2026, 9, 1), true).await;
    let p = env.platform();
    let clock = env.clock();
    p.subscribe(tenant, "pro", clock.now()).await.unwrap();
    clock.advance_to(seoul(2026, 10, 16)).await.unwrap();
    p.cancel(tenant, clock.now()).await.unwrap();
    clock.advance_to(seoul(2026, 12, 2)).await.unwrap();
    let invoices = p.invoices(tenant).await.unwrap();
    let periods: Vec<_> = invoices
        .iter()
        .map(|i| {
            (
                i.invoice.month.to_string(),
                i.invoice.lines[0].days,
                i.invoice.total,
            )
        })
        .collect();
    // October: the 1st to the 15th; the cancel day is not billed. November: nothing.
    assert_eq!(
        periods,
        vec![
            ("2026-09".into(), 30, dec("99000")),
            ("2026-10".into(), 15, dec("47903"))
        ]
    );
}

/// Sets up a case, runs one refused operation and returns its code, checking that nothing at all
/// was written.
async fn refused(case: &str) -> String {
    let (env, tenant) = world(seoul(2026, 10, 10), !matches!(case, "card_required")).await;
    let p = env.platform();
    let clock = env.clock();
    let now = clock.now();
    let today = Calendar::platform().local_day(now);
    if case == "currency_mismatch" {
        // The same plans, and team-usd (analytics, in USD).
        p.install_catalog(&crate::rules::catalog("0"), now)
            .await
            .unwrap();
    }
    match case {
        "no_active_subscription" | "invalid_quantity" => {}
        "period_closed" => {
            p.subscribe(tenant, "pro", now).await.unwrap();
            clock.advance_to(seoul(2026, 11, 1)).await.unwrap();
        }
        _ => {
            let plan = if case == "card_required" {
                "free"
            } else {
                "pro"
            };
            p.subscribe(tenant, plan, now).await.unwrap();
        }
    }
    if case == "plan_change_limit" {
        p.change_plan(tenant, "business", clock.now() + TimeDelta::hours(3))
            .await
            .unwrap();
    }
    let before = fingerprint(&env).await;
    let at = clock.now() + TimeDelta::hours(20);
    let err = match case {
        "invalid_quantity" => p.record_usage(tenant, "api_calls", 0, today, at).await,
        "period_closed" => {
            p.record_usage(tenant, "api_calls", 5, today, clock.now())
                .await
        }
        "no_active_subscription" => p.record_usage(tenant, "api_calls", 5, today, at).await,
        "already_subscribed" => p.subscribe(tenant, "business", at).await.map(drop),
        "plan_product_mismatch" => p.change_plan(tenant, "crm-basic", at).await,
        "currency_mismatch" => p.change_plan(tenant, "team-usd", at).await,
        "same_plan" => p.change_plan(tenant, "pro", at).await,
        "plan_change_limit" => p.change_plan(tenant, "pro", at).await,
        "card_required" => p.change_plan(tenant, "pro", at).await,
        other => panic!("no case {other}"),
    }
    .unwrap_err();
    assert_eq!(fingerprint(&env).await, before, "{case} wrote something");
    if let billing_harness::platform::DomainError::PlanChangeLimit { next_allowed } = &err {
        assert_eq!(*next_allowed, seoul(2026, 10, 11));
    }
    err.code().to_owned()
}

#[rstest]
#[case::invalid_quantity("invalid_quantity")]
#[case::period_closed("period_closed")]
#[case::no_active_subscription("no_active_subscription")]
#[case::already_subscribed("already_subscribed")]
#[case::plan_product_mismatch("plan_product_mismatch")]
#[case::currency_mismatch("currency_mismatch")]
#[case::same_plan("same_plan")]
#[case::plan_change_limit("plan_change_limit")]
#[case::card_required("card_required")]
#[tokio::test]
async fn every_rule_refuses_with_its_code_and_writes_nothing(#[case] code: &str) {
    assert_eq!(refused(code).await, code);
}

#[tokio::test]
async fn the_first_broken_rule_in_the_documented_order_wins() {
    let (env, tenant) = world(seoul(2026, 10, 10), true).await;
    let p = env.platform();
    p.subscribe(tenant, "pro", env.clock().now()).await.unwrap();
    // Subscribing again to another product's plan breaks already_subscribed and
    // plan_product_mismatch: already_subscribed comes first.
    let err = p
        .subscribe(tenant, "crm-basic", env.clock().now())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "already_subscribed");
    // Changing to the same plan twice a day breaks same_plan first.
    let err = p
        .change_plan(tenant, "pro", env.clock().now())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "same_plan");
    // A negative quantity for a closed month: invalid_quantity first.
    env.clock().advance_to(seoul(2026, 11, 1)).await.unwrap();
    let err = p
        .record_usage(
            tenant,
            "api_calls",
            -1,
            crate::support::day(2026, 10, 12),
            env.clock().now(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_quantity");
}

#[tokio::test]
async fn subscribing_is_not_a_change_so_the_plan_may_change_the_same_day() {
    let (env, tenant) = world(seoul(2026, 10, 10), true).await;
    let p = env.platform();
    p.subscribe(tenant, "pro", env.clock().now()).await.unwrap();
    p.change_plan(tenant, "business", env.clock().now() + TimeDelta::hours(1))
        .await
        .unwrap();
    env.clock().advance_to(seoul(2026, 11, 1)).await.unwrap();
    let invoice = &p.invoices(tenant).await.unwrap()[0];
    // The zero-day pro period makes no line.
    let plans: Vec<_> = invoice
        .invoice
        .lines
        .iter()
        .map(|l| (l.plan.as_str(), l.days))
        .collect();
    assert_eq!(plans, vec![("business", 22)]);
}

#[tokio::test]
async fn contracts_and_billings_agree_with_the_subscription_after_changes() {
    let (env, tenant) = world(seoul(2026, 10, 10), true).await;
    let p = env.platform();
    let clock = env.clock();
    p.subscribe(tenant, "pro", clock.now()).await.unwrap();
    clock.advance_to(seoul(2026, 10, 20)).await.unwrap();
    p.change_plan(tenant, "business", clock.now())
        .await
        .unwrap();
    let rows: Vec<(String, chrono::NaiveDate, Option<chrono::NaiveDate>, rust_decimal::Decimal, i64, i64)> =
        sqlx::query_as(
            "select p.key, c.starts_on, c.ends_on, b.base_fee, \
                    (select count(*) from contract_details d where d.contract_id = c.id), \
                    (select count(*) from billing_details d where d.billing_id = b.id) \
             from contracts c join billings b on b.contract_id = c.id join plans p on p.id = c.plan_id \
             order by c.starts_on",
        )
        .fetch_all(env.pool())
        .await
        .unwrap();
    use crate::support::day;
    assert_eq!(
        rows,
        vec![
            (
                "pro".into(),
                day(2026, 10, 10),
                Some(day(2026, 10, 20)),
                dec("99000"),
                1,
                1
            ),
            (
                "business".into(),
                day(2026, 10, 20),
                None,
                dec("290000"),
                1,
                1
            ),
        ]
    );
    let outbox: i64 =
        sqlx::query_scalar("select count(*) from sync_outbox where entity = 'subscription'")
            .fetch_one(env.pool())
            .await
            .unwrap();
    assert_eq!(outbox, 2, "subscribe and change each queue a sync event");
}

/// Snapshots of stored invoices: ids and timestamps redacted, amounts as exact decimal strings.
fn assert_invoices(name: &str, invoices: &[billing_harness::platform::StoredInvoice]) {
    insta::with_settings!({
        snapshot_path => "../../../snapshots/invoices",
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_yaml_snapshot!(name, invoices, {
            "[].id" => "[id]",
            "[].finalized_at" => "[timestamp]",
        });
    });
}

#[tokio::test]
async fn snapshot_of_a_quarter_with_an_upgrade_overage_and_a_cancellation() {
    let (env, tenant) = world(seoul(2026, 10, 10), true).await;
    let p = env.platform();
    let clock = env.clock();
    p.subscribe(tenant, "pro", clock.now()).await.unwrap();
    clock.advance_to(seoul(2026, 10, 20)).await.unwrap();
    p.change_plan(tenant, "business", clock.now())
        .await
        .unwrap();
    clock.advance_to(seoul(2026, 10, 25)).await.unwrap();
    p.record_usage(
        tenant,
        "api_calls",
        420_000,
        crate::support::day(2026, 10, 25),
        clock.now(),
    )
    .await
    .unwrap();
    clock.advance_to(seoul(2026, 11, 28)).await.unwrap();
    p.record_usage(
        tenant,
        "api_calls",
        1_200_001,
        crate::support::day(2026, 11, 28),
        clock.now(),
    )
    .await
    .unwrap();
    clock.advance_to(seoul(2026, 12, 12)).await.unwrap();
    p.cancel(tenant, clock.now()).await.unwrap();
    clock.advance_to(seoul(2027, 1, 2)).await.unwrap();
    assert_invoices(
        "quarter_upgrade_overage_cancel",
        &p.invoices(tenant).await.unwrap(),
    );
}

#[tokio::test]
async fn snapshot_of_a_usd_plan_with_tax() {
    use billing_harness::model::Currency;
    let start = seoul(2028, 2, 10);
    let env = billing_harness::TestEnv::builder()
        .start_at(start)
        .build()
        .await
        .unwrap();
    let p = env.platform();
    let mut catalog = crate::support::catalog();
    catalog.tax_rate = dec("0.1");
    let mut team = crate::support::plan("team-usd", "analytics", "19.99", 5000, 1000, "0.75");
    team.currency = Currency::Usd;
    catalog.plans.push(team);
    p.install_catalog(&catalog, start).await.unwrap();
    let org = p.create_org("globex", start).await.unwrap();
    p.register_card(org, billing_harness::payments::TestCard::Ok, start)
        .await
        .unwrap();
    let tenant = p
        .create_tenant(org, "analytics", "globex-analytics", start)
        .await
        .unwrap();
    p.subscribe(tenant, "team-usd", start).await.unwrap();
    p.record_usage(
        tenant,
        "api_calls",
        4001,
        crate::support::day(2028, 2, 28),
        start,
    )
    .await
    .unwrap();
    env.clock().advance_to(seoul(2028, 3, 1)).await.unwrap();
    let invoices = p.invoices(tenant).await.unwrap();
    // Leap February: 20 of 29 days. base floor(19.99 × 20 / 29) = 13.78; quota floor(5000 × 20
    // / 29) = 3448, 553 over → 1 block 0.75; subtotal 14.53; tax floor(1.453) = 1.45.
    assert_eq!(invoices[0].invoice.total, dec("15.98"));
    assert_invoices("usd_plan_with_tax", &invoices);
}

/// A random month of activity: start day, an optional change day, usage days and amounts.
#[derive(Debug, Clone)]
struct Story {
    year: i32,
    month: u32,
    start: u32,
    change: Option<u32>,
    usage: Vec<(u32, i64)>,
}

fn story() -> impl proptest::strategy::Strategy<Value = Story> {
    use proptest::prelude::*;
    (
        2024i32..=2028,
        1u32..=12,
        1u32..=28,
        proptest::option::of(1u32..=27),
    )
        .prop_flat_map(|(year, month, start, change)| {
            let usage = proptest::collection::vec((0u32..28, 1i64..400_000), 0..4);
            (Just(year), Just(month), Just(start), Just(change), usage)
        })
        .prop_map(|(year, month, start, change, usage)| Story {
            year,
            month,
            start,
            change: change.map(|c| (start + c).min(28)).filter(|&c| c > start),
            usage: usage
                .into_iter()
                .map(|(d, q)| ((start + d).min(28), q))
                .collect(),
        })
}

/// Plays `story` with the clock moving one day at a time, or in one jump per event, and returns
/// the invoices of the month and the next.
async fn play(story: &Story, day_by_day: bool) -> Vec<billing_harness::platform::StoredInvoice> {
    let at = |d: u32| seoul(story.year, story.month, d);
    let (env, tenant) = world(at(story.start), true).await;
    let p = env.platform();
    let clock = env.clock();
    let go = |target: chrono::DateTime<chrono::Utc>| async move {
        if day_by_day {
            while clock.now() + TimeDelta::days(1) <= target {
                clock.advance(TimeDelta::days(1)).await.unwrap();
            }
        }
        clock.advance_to(target).await.unwrap();
    };
    p.subscribe(tenant, "pro", clock.now()).await.unwrap();
    let mut events: Vec<(u32, Option<i64>)> =
        story.usage.iter().map(|&(d, q)| (d, Some(q))).collect();
    events.extend(story.change.map(|d| (d, None)));
    events.sort();
    for (d, quantity) in events {
        go(at(d)).await;
        match quantity {
            Some(q) => {
                let day = crate::support::day(story.year, story.month, d);
                p.record_usage(tenant, "api_calls", q, day, clock.now())
                    .await
                    .unwrap();
            }
            None => p
                .change_plan(tenant, "business", clock.now())
                .await
                .unwrap(),
        }
    }
    let first = Month::new(story.year, story.month).unwrap();
    let end = first.next().next().first_day();
    go(seoul(end.year(), end.month(), 1) + TimeDelta::hours(1)).await;
    let mut invoices = p.invoices(tenant).await.unwrap();
    for invoice in &mut invoices {
        invoice.id = billing_harness::model::InvoiceId(0);
    }
    invoices
}

use chrono::Datelike;

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(6))]
    #[test]
    fn day_by_day_and_one_jump_give_identical_invoices(story in story()) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let (stepped, jumped) = runtime.block_on(async {
            (play(&story, true).await, play(&story, false).await)
        });
        proptest::prop_assert_eq!(stepped.len(), 2, "two months billed: {:?}", story);
        proptest::prop_assert_eq!(stepped, jumped);
    }
}

#[tokio::test]
async fn the_close_stores_exactly_what_the_pure_reference_computes() {
    use crate::support::{catalog, day};
    use billing_harness::billing::{InvoiceInput, PlanPeriod, Usage, invoice};
    use billing_harness::model::Currency;
    let (env, tenant) = world(seoul(2026, 10, 10), true).await;
    let p = env.platform();
    let clock = env.clock();
    p.subscribe(tenant, "pro", clock.now()).await.unwrap();
    p.record_usage(tenant, "api_calls", 64_000, day(2026, 10, 12), clock.now())
        .await
        .unwrap();
    clock.advance_to(seoul(2026, 10, 20)).await.unwrap();
    p.change_plan(tenant, "business", clock.now())
        .await
        .unwrap();
    p.record_usage(tenant, "api_calls", 900_000, day(2026, 10, 30), clock.now())
        .await
        .unwrap();
    clock.advance_to(seoul(2026, 11, 1)).await.unwrap();
    let terms = |key: &str| catalog().plan(key).unwrap().terms.clone();
    let expected = invoice(&InvoiceInput {
        month: Month::new(2026, 10).unwrap(),
        currency: Currency::Krw,
        tax_rate: dec("0"),
        periods: vec![
            PlanPeriod {
                plan: "pro".into(),
                from: day(2026, 10, 10),
                until: Some(day(2026, 10, 20)),
                terms: terms("pro"),
            },
            PlanPeriod {
                plan: "business".into(),
                from: day(2026, 10, 20),
                until: None,
                terms: terms("business"),
            },
        ],
        usage: vec![
            Usage {
                day: day(2026, 10, 12),
                metric: "api_calls".into(),
                quantity: 64_000,
            },
            Usage {
                day: day(2026, 10, 30),
                metric: "api_calls".into(),
                quantity: 900_000,
            },
        ],
    });
    let stored = p.invoices(tenant).await.unwrap().remove(0);
    assert_eq!(stored.invoice, expected);
}
