//! Sales-led contracts without SQL: the invoice of a contract against the pure invoice function,
//! a month split between a catalog plan and a contract, the once-a-day rule, the term's end (on
//! its day, for its own subscription, and not after a plan change), the base of a contract over
//! a contract, and the product receiving the new spec and terms.

use std::collections::BTreeMap;

use billing_harness::TestEnv;
use billing_harness::billing::{InvoiceInput, PlanPeriod, Usage, invoice};
use billing_harness::builders::Day;
use billing_harness::calendar::Job;
use billing_harness::model::{Currency, Month, Overage, TenantId, Terms};
use chrono::NaiveDate;
use rust_decimal::Decimal;

use crate::support::{dec, display_names, distinct_ids, fingerprint, pro_since_last_month};

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
    let t = env
        .build()
        .tenant()
        .product("analytics")
        .create()
        .await
        .unwrap();
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
    let t = env.build().tenant().plan("pro").create().await.unwrap();
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
    let none = env.build().tenant().create().await.unwrap();
    assert_eq!(
        none.contract().await.unwrap_err().code(),
        "no_active_subscription",
        "no plan named and none to default to"
    );
}

#[tokio::test]
async fn a_contract_ends_on_its_term_and_the_product_gets_spec_and_terms() {
    let env = env().await;
    let t = env
        .build()
        .tenant()
        .plan("business")
        .create()
        .await
        .unwrap();
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
    assert_eq!(state(&env, t.id()).await, ended(env.today().plus_days(10)));
    let sub = analytics.tenant(t.id().0).unwrap().subscription.unwrap();
    assert_eq!(sub.status, "cancelled", "the product is told");
}

/// A subscription's status, cancel reason and cancel day: `tenant`'s newest.
async fn state(env: &TestEnv, tenant: TenantId) -> (String, Option<String>, Option<NaiveDate>) {
    sqlx::query_as(
        "select status, cancel_reason, cancelled_on from subscriptions where tenant_id = $1 \
         order by id desc limit 1",
    )
    .bind(tenant)
    .fetch_one(env.pool())
    .await
    .unwrap()
}

/// The [`state`] of a subscription whose contract's term ended on `day`.
fn ended(day: Day) -> (String, Option<String>, Option<NaiveDate>) {
    (
        "cancelled".to_owned(),
        Some("contract_ended".to_owned()),
        Some(day.date()),
    )
}

/// The [`state`] of a live subscription.
fn live() -> (String, Option<String>, Option<NaiveDate>) {
    ("active".to_owned(), None, None)
}

/// A tenant's slug and spec.
async fn slug_and_spec(env: &TestEnv, tenant: TenantId) -> (String, serde_json::Value) {
    sqlx::query_as("select slug, spec from tenants where id = $1")
        .bind(tenant)
        .fetch_one(env.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_term_ending_today_ends_at_todays_run_and_one_ending_tomorrow_at_tomorrows() {
    let env = env().await;
    distinct_ids(&env).await;
    let today = env.today();
    let ending = env.build().tenant().plan("pro").create().await.unwrap();
    let staying = env.build().tenant().plan("pro").create().await.unwrap();
    let (slug, spec) = slug_and_spec(&env, staying.id()).await;
    // The later term first: written to the other subscription's contract too, it would be
    // overwritten there by the earlier one.
    let later = staying
        .contract()
        .ends_on(today.plus_days(6))
        .on(today.plus_days(1))
        .await
        .unwrap();
    assert_eq!(
        later.plan,
        format!("pro~{slug}~{}", today.plus_days(1).date()),
        "rule: a contract's plan is named after its base, its tenant's slug and its first day"
    );
    ending
        .contract()
        .spec(serde_json::json!({ "cpu": 16 }))
        .ends_on(today.plus_days(5))
        .on(today.plus_days(1))
        .await
        .unwrap();
    assert_eq!(
        slug_and_spec(&env, staying.id()).await,
        (slug, spec),
        "rule: a contract's spec is its own tenant's only"
    );
    let runs = env.clock().advance_to(today.plus_days(5)).await.unwrap();
    assert_eq!(
        runs.iter()
            .filter(|r| r.at == today.plus_days(5).midnight() && r.job == Job::Retry)
            .map(|r| (r.job, r.effects))
            .collect::<Vec<_>>(),
        [(Job::Retry, 1)],
        "the daily run counts the term it ended (and no retry)"
    );
    assert_eq!(
        state(&env, ending.id()).await,
        ended(today.plus_days(5)),
        "rule: a term ending today is ended by today's run"
    );
    assert_eq!(
        state(&env, staying.id()).await,
        live(),
        "rule: a term ending tomorrow is not ended today"
    );
    env.clock().advance_to(today.plus_days(6)).await.unwrap();
    assert_eq!(
        state(&env, staying.id()).await,
        ended(today.plus_days(6)),
        "rule: ... but by tomorrow's"
    );
}

#[tokio::test]
async fn a_plan_change_before_the_term_ends_leaves_the_term_with_the_contract_it_ended() {
    let env = env().await;
    let today = env.today();
    let t = pro_since_last_month(&env).await;
    t.contract()
        .ends_on(today.plus_days(10))
        .on(today.plus_days(1))
        .await
        .unwrap();
    t.change_plan("business")
        .on(today.plus_days(3))
        .await
        .unwrap();
    env.clock().advance_to(today.plus_days(10)).await.unwrap();
    assert_eq!(
        state(&env, t.id()).await,
        live(),
        "rule: only the open contract's term ends a subscription"
    );
    let terms: Vec<(NaiveDate, Option<NaiveDate>)> = sqlx::query_as(
        "select c.starts_on, c.term_ends_on from contracts c \
         join subscriptions s on s.id = c.subscription_id where s.tenant_id = $1 order by c.id",
    )
    .bind(t.id())
    .fetch_all(env.pool())
    .await
    .unwrap();
    assert_eq!(
        terms,
        [
            (env.last_month().day(1).date(), None),
            (today.plus_days(1).date(), Some(today.plus_days(10).date())),
            (today.plus_days(3).date(), None),
        ],
        "rule: a term belongs to the contract it was agreed with"
    );
}

#[tokio::test]
async fn a_contract_without_a_plan_over_a_contract_is_made_over_its_catalog_plan() {
    let env = env().await;
    distinct_ids(&env).await;
    let today = env.today();
    let t = env
        .build()
        .tenant()
        .plan("business")
        .create()
        .await
        .unwrap();
    // Names are for people: the base is found by key.
    display_names(&env).await;
    t.contract()
        .base_fee("500000")
        .on(today.plus_days(1))
        .await
        .unwrap();
    let second = t
        .contract()
        .base_fee("600000")
        .on(today.plus_days(2))
        .await
        .unwrap();
    assert_eq!(
        second.base, "business",
        "rule: a contract over a contract is made over the first one's catalog plan"
    );
    let stored: (String, String) = sqlx::query_as(
        "select p.key, b.key from subscriptions s join plans p on p.id = s.plan_id \
         join plans b on b.id = p.base_plan_id where s.tenant_id = $1",
    )
    .bind(t.id())
    .fetch_one(env.pool())
    .await
    .unwrap();
    assert_eq!(
        stored,
        (second.plan.clone(), "business".to_owned()),
        "the subscription is on the plan reported, made over business"
    );
}
