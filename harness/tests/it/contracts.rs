//! Sales-led contracts without SQL: the invoice of a contract against the pure invoice function,
//! a month split between a catalog plan and a contract, the once-a-day rule, the term's end, and
//! the product receiving the new spec and terms.

use std::collections::BTreeMap;

use billing_harness::TestEnv;
use billing_harness::billing::{InvoiceInput, PlanPeriod, Usage, invoice};
use billing_harness::model::{Currency, Month, Overage, Terms};
use chrono::NaiveDate;
use rust_decimal::Decimal;

use crate::support::{dec, fingerprint, pro_since_last_month};

async fn env() -> TestEnv {
    TestEnv::builder()
        .today("2026-11-24".parse::<NaiveDate>().unwrap())
        .seed(5)
        .build()
        .await
        .unwrap()
}

fn october() -> Month {
    Month::new(2026, 10).unwrap()
}

fn d(day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 10, day).unwrap()
}

fn contract_terms() -> Terms {
    Terms {
        base_fee: dec("1500000"),
        included: BTreeMap::from([("api_calls".into(), 5_000_000)]),
        overage: BTreeMap::from([(
            "api_calls".into(),
            Overage {
                block: 1000,
                price: dec("200"),
            },
        )]),
    }
}

#[tokio::test]
async fn a_contract_from_the_15th_bills_its_own_fee_quota_and_overage_prorated() {
    let env = env().await;
    let t = env.tenant().product("analytics").create().await.unwrap();
    let applied = t
        .contract()
        .plan("pro")
        .base_fee("1500000")
        .included("api_calls", 5_000_000)
        .overage("api_calls", 1000, "200")
        .limit("seats", 200)
        .on(env.last_month().day(15))
        .await
        .unwrap();
    assert_eq!(applied.base, "pro");
    t.usage("api_calls", 5_200_001)
        .on(env.last_month().day(20))
        .await
        .unwrap();
    env.clock()
        .advance_to(env.this_month().day(1))
        .await
        .unwrap();
    let stored = t.invoice(env.last_month()).await.unwrap().unwrap();
    // By hand: 17 of 31 days. Fee floor(1,500,000 × 17 / 31) = 822,580; quota
    // floor(5,000,000 × 17 / 31) = 2,741,935; over by 2,458,066 = 2,459 blocks × 200 = 491,800.
    let lines: Vec<(String, Decimal)> = stored
        .invoice
        .lines
        .iter()
        .map(|l| (l.kind.as_str().to_owned(), l.amount))
        .collect();
    assert_eq!(
        lines,
        [
            ("base".to_owned(), dec("822580")),
            ("overage".to_owned(), dec("491800"))
        ]
    );
    assert_eq!(stored.invoice.total, dec("1314380"));
    let expected = invoice(&InvoiceInput {
        month: october(),
        currency: Currency::Krw,
        tax_rate: Decimal::ZERO,
        periods: vec![PlanPeriod {
            plan: applied.plan.clone(),
            from: d(15),
            until: None,
            terms: contract_terms(),
        }],
        usage: vec![Usage {
            day: d(20),
            metric: "api_calls".into(),
            quantity: 5_200_001,
        }],
    });
    assert_eq!(
        stored.invoice, expected,
        "the close equals the pure function"
    );
    insta::with_settings!({
        snapshot_path => "../../../snapshots/invoices",
        prepend_module_to_snapshot => false,
    }, {
        insta::assert_yaml_snapshot!("contract_from_the_15th", stored.invoice);
    });
}

#[tokio::test]
async fn a_month_from_a_catalog_plan_to_a_contract_is_prorated_between_both() {
    let env = env().await;
    let t = pro_since_last_month(&env).await;
    let applied = t
        .contract()
        .base_fee("1500000")
        .on(env.last_month().day(20))
        .await
        .unwrap();
    assert_eq!(
        applied.base, "pro",
        "the base defaults to the tenant's plan"
    );
    env.clock()
        .advance_to(env.this_month().day(1))
        .await
        .unwrap();
    let stored = t.invoice(env.last_month()).await.unwrap().unwrap();
    let base: Vec<(String, u32, Decimal)> = stored
        .invoice
        .lines
        .iter()
        .map(|l| (l.plan.clone(), l.days, l.amount))
        .collect();
    // pro for the 1st to the 19th: floor(99,000 × 19 / 31) = 60,677; the contract from the
    // 20th: floor(1,500,000 × 12 / 31) = 580,645.
    assert_eq!(
        base,
        [
            ("pro".to_owned(), 19, dec("60677")),
            (applied.plan.clone(), 12, dec("580645"))
        ]
    );
    // A later plan change leaves the contract for the catalog plan.
    t.change_plan("business").await.unwrap();
    let plan: String = sqlx::query_scalar(
        "select p.key from subscriptions s join plans p on p.id = s.plan_id where s.tenant_id = $1",
    )
    .bind(t.id())
    .fetch_one(env.pool())
    .await
    .unwrap();
    assert_eq!(plan, "business");
}

#[tokio::test]
async fn applying_a_contract_twice_on_one_day_is_refused_and_writes_nothing() {
    let env = env().await;
    let t = pro_since_last_month(&env).await;
    t.contract()
        .base_fee("500000")
        .on(env.last_month().day(10))
        .await
        .unwrap();
    let before = fingerprint(&env).await;
    let again = t.contract().base_fee("600000").await.unwrap_err();
    assert_eq!(again.code(), "plan_change_limit");
    assert_eq!(fingerprint(&env).await, before, "nothing written");
    // The next day is allowed.
    t.contract()
        .base_fee("600000")
        .on(env.last_month().day(11))
        .await
        .unwrap();
}

#[tokio::test]
async fn bad_terms_are_refused_with_the_term_named() {
    let env = env().await;
    let t = env.tenant().plan("pro").create().await.unwrap();
    let before = fingerprint(&env).await;
    let cases = [
        (t.contract().included("storage_gb", 10), "storage_gb"),
        (t.contract().overage("api_calls", 0, "10"), "block"),
        (t.contract().overage("api_calls", 10, "-1"), "negative"),
        (t.contract().limit("seats", -3), "seats"),
        (t.contract().base_fee("-5"), "base fee"),
    ];
    for (builder, named) in cases {
        let e = builder.await.unwrap_err();
        assert_eq!(e.code(), "invalid_terms");
        assert!(e.to_string().contains(named), "{e}");
    }
    assert_eq!(fingerprint(&env).await, before, "nothing written");
    let none = env.tenant().create().await.unwrap();
    assert_eq!(
        none.contract().await.unwrap_err().code(),
        "no_active_subscription",
        "no plan named and none to default to"
    );
}

#[tokio::test]
async fn a_contract_ends_on_its_term_and_the_product_gets_spec_and_terms() {
    let env = env().await;
    let t = env.tenant().plan("business").create().await.unwrap();
    env.assert_converged().await;
    t.contract()
        .limit("seats", 200)
        .spec(serde_json::json!({ "cpu": 16, "memory_gb": 64 }))
        .ends_on(env.today().plus_days(10))
        .on(env.today().plus_days(1))
        .await
        .unwrap();
    env.assert_converged().await;
    let analytics = env.product("analytics").await.unwrap();
    let held = analytics.tenant(t.id().0).unwrap();
    assert_eq!(held.tenant.spec["cpu"], 16);
    let sub = held.subscription.unwrap();
    assert!(sub.plan.starts_with("business~"), "{}", sub.plan);
    assert_eq!(sub.limits.get("seats"), Some(&200));
    env.clock()
        .advance_to(env.today().plus_days(10))
        .await
        .unwrap();
    env.assert_converged().await;
    let (status, reason, cancelled_on): (String, Option<String>, Option<NaiveDate>) =
        sqlx::query_as(
            "select status, cancel_reason, cancelled_on from subscriptions where tenant_id = $1",
        )
        .bind(t.id())
        .fetch_one(env.pool())
        .await
        .unwrap();
    assert_eq!(
        (status.as_str(), reason.as_deref(), cancelled_on),
        (
            "cancelled",
            Some("contract_ended"),
            Some(env.today().plus_days(10).date())
        )
    );
    let sub = analytics.tenant(t.id().0).unwrap().subscription.unwrap();
    assert_eq!(sub.status, "cancelled", "the product is told");
}
