//! Sales contracts, with the platform's rules: custom terms over a plan of the price list, each
//! term left out being the base plan's; applied from today as a plan change (prorated by days,
//! once a day, in the subscription's currency, a card for a fee); a term's end cancels the
//! subscription on its end day. Amounts are computed by hand from the rules, in the comments.

use billing_harness::payments::TestCard;
use example_billing_service::billing::{Currency, Plan};
use example_billing_service::contracts::{Contract, Overage};
use example_billing_service::service::{
    CustomerId, Invoice, NewUsage, Subscription, SubscriptionId, SubscriptionStatus,
};
use rust_decimal::Decimal;

use crate::support::{METRIC, World, catalog, date, seoul};

/// A contract over `base` at `fee` a month, every other term the base's.
fn at_fee(base: Option<&str>, fee: i64) -> Contract {
    Contract {
        base: base.map(str::to_owned),
        monthly_fee: Some(Decimal::from(fee)),
        ..Contract::default()
    }
}

/// An invoice line as `(plan, days, included, used, amount)`.
type LineView = (String, u32, Option<u64>, Option<u64>, String);

/// Each line of an invoice.
fn lines(invoice: &Invoice) -> Vec<LineView> {
    invoice
        .lines
        .iter()
        .map(|l| {
            let amount = l.amount.to_string();
            (l.plan.clone(), l.days, l.included, l.used, amount)
        })
        .collect()
}

/// Applies `contract` to `customer` now, which must be accepted; the subscription on it.
async fn sign(world: &World, customer: CustomerId, contract: &Contract) -> Subscription {
    let signed = world.service.apply_contract(customer, contract).await;
    signed.unwrap_or_else(|e| panic!("{contract:?} refused: {e}"))
}

/// Reports `quantity` units of the test metric now.
async fn usage(world: &World, subscription: SubscriptionId, quantity: i64) {
    let usage = NewUsage {
        metric: METRIC.into(),
        quantity,
        occurred_at: None,
    };
    world
        .service
        .record_usage(subscription, &usage)
        .await
        .unwrap();
}

/// The customer's October 2026 invoice, after the days up to November 1st.
async fn october(world: &World, customer: CustomerId) -> Invoice {
    world.live_days(date(2026, 10, 2), date(2026, 11, 1)).await;
    let invoices = world.service.invoices(customer).await.unwrap();
    assert_eq!(invoices.len(), 1, "one invoice: {invoices:#?}");
    invoices.into_iter().next().unwrap()
}

#[tokio::test]
async fn a_contract_over_the_current_plan_splits_the_month_and_keeps_the_terms_it_leaves_out() {
    let world = World::start(seoul(2026, 10, 1)).await;
    let (customer, id) = world.subscriber("pro").await;
    world.at(seoul(2026, 10, 20)).await;
    let contract = Contract {
        limits: [("seats".to_owned(), 40)].into(),
        ..at_fee(None, 600_000)
    };
    let moved = sign(&world, customer.id, &contract).await;
    let key = format!("pro~{}~2026-10-20", customer.id);
    assert_eq!(moved.id, id, "the subscription moves, as in a plan change");
    assert_eq!(moved.periods.last().unwrap().plan, key);
    world.at(seoul(2026, 10, 25)).await;
    usage(&world, id, 40_000).await;
    let invoice = october(&world, customer.id).await;
    // pro 19 days: floor(99,000 × 19 / 31) = 60,677; the contract 12 days:
    // floor(600,000 × 12 / 31) = 232,258; pro's quota floor(100,000 × 12 / 31) = 38,709, so
    // 1,291 over: 2 blocks at pro's 500 = 1,000.
    assert_eq!(
        lines(&invoice),
        [
            ("pro".into(), 19, None, None, "60677".into()),
            (key.clone(), 12, None, None, "232258".into()),
            (key, 12, Some(38_709), Some(40_000), "1000".into()),
        ]
    );
    // 293,935 and 10% VAT: floor(29,393.5) = 29,393.
    assert_eq!(
        (invoice.subtotal, invoice.tax, invoice.total),
        (293_935.into(), 29_393.into(), 323_328.into())
    );
}

#[tokio::test]
async fn a_contract_without_a_subscription_starts_one_on_its_own_terms() {
    let world = World::start(seoul(2026, 10, 15)).await;
    let customer = world.customer(Some(TestCard::Ok)).await;
    let contract = Contract {
        metric: Some(METRIC.into()),
        included: Some(5_000_000),
        overage: Some(Overage {
            block_size: 1_000,
            block_price: 200.into(),
        }),
        ..at_fee(Some("pro"), 1_500_000)
    };
    let started = sign(&world, customer.id, &contract).await;
    assert_eq!(started.started_on, date(2026, 10, 15));
    world.at(seoul(2026, 10, 20)).await;
    usage(&world, started.id, 5_200_001).await;
    let invoice = october(&world, customer.id).await;
    // 17 days: floor(1,500,000 × 17 / 31) = 822,580; quota floor(5,000,000 × 17 / 31) =
    // 2,741,935, so 2,458,066 over: 2,459 started blocks of 1,000 at 200 = 491,800.
    let key = format!("pro~{}~2026-10-15", customer.id);
    assert_eq!(
        lines(&invoice),
        [
            (key.clone(), 17, None, None, "822580".into()),
            (key, 17, Some(2_741_935), Some(5_200_001), "491800".into()),
        ]
    );
}

#[tokio::test]
async fn a_second_contract_is_made_from_the_base_plan_not_from_the_first_contract() {
    let world = World::start(seoul(2026, 10, 1)).await;
    let (customer, id) = world.subscriber("business").await;
    world.at(seoul(2026, 10, 10)).await;
    let first = Contract {
        included: Some(2_000_000),
        ..at_fee(None, 500_000)
    };
    sign(&world, customer.id, &first).await;
    world.at(seoul(2026, 10, 11)).await;
    sign(&world, customer.id, &at_fee(None, 450_000)).await;
    world.at(seoul(2026, 10, 20)).await;
    usage(&world, id, 1_000_000).await;
    let invoice = october(&world, customer.id).await;
    // business 9 days: floor(290,000 × 9 / 31) = 84,193; the first contract 1 day:
    // floor(500,000 / 31) = 16,129; the second 21 days: floor(450,000 × 21 / 31) = 304,838,
    // with business's quota, not the first contract's: floor(1,000,000 × 21 / 31) = 677,419,
    // so 322,581 over: 323 blocks at 300 = 96,900.
    let (first, second) = (
        format!("business~{}~2026-10-10", customer.id),
        format!("business~{}~2026-10-11", customer.id),
    );
    assert_eq!(
        lines(&invoice),
        [
            ("business".into(), 9, None, None, "84193".into()),
            (first, 1, None, None, "16129".into()),
            (second.clone(), 21, None, None, "304838".into()),
            (second, 21, Some(677_419), Some(1_000_000), "96900".into()),
        ]
    );
}

#[tokio::test]
async fn a_term_that_ends_cancels_the_subscription_on_its_end_day() {
    let world = World::start(seoul(2026, 10, 5)).await;
    let customer = world.customer(Some(TestCard::Ok)).await;
    let contract = Contract {
        term_ends_on: Some(date(2026, 10, 25)),
        ..at_fee(Some("business"), 310_000)
    };
    let started = sign(&world, customer.id, &contract).await;
    world
        .live_days(date(2026, 10, 24), date(2026, 10, 24))
        .await;
    let before = world.service.subscription(started.id).await.unwrap();
    assert_eq!(
        before.status,
        SubscriptionStatus::Active,
        "in force up to its end"
    );
    let invoice = october(&world, customer.id).await;
    let ended = world.service.subscription(started.id).await.unwrap();
    assert_eq!(
        (ended.status, ended.cancelled_on),
        (SubscriptionStatus::Cancelled, Some(date(2026, 10, 25)))
    );
    // The 20 days of the term: floor(310,000 × 20 / 31) = 200,000.
    let key = format!("business~{}~2026-10-05", customer.id);
    assert_eq!(lines(&invoice), [(key, 20, None, None, "200000".into())]);
}

#[tokio::test]
async fn a_plan_change_leaves_the_contract_and_its_term() {
    let world = World::start(seoul(2026, 10, 1)).await;
    let (customer, id) = world.subscriber("pro").await;
    let contract = Contract {
        term_ends_on: Some(date(2026, 10, 25)),
        ..at_fee(None, 200_000)
    };
    sign(&world, customer.id, &contract).await;
    world.at(seoul(2026, 10, 16)).await;
    world.service.change_plan(id, "business").await.unwrap();
    let invoice = october(&world, customer.id).await;
    let after = world.service.subscription(id).await.unwrap();
    assert_eq!(
        after.status,
        SubscriptionStatus::Active,
        "the term no longer applies"
    );
    // The contract 15 days: floor(200,000 × 15 / 31) = 96,774; business 16 days:
    // floor(290,000 × 16 / 31) = 149,677.
    let key = format!("pro~{}~2026-10-01", customer.id);
    assert_eq!(
        lines(&invoice),
        [
            (key, 15, None, None, "96774".into()),
            ("business".into(), 16, None, None, "149677".into()),
        ]
    );
}

#[tokio::test]
async fn a_contract_plan_is_off_the_price_list() {
    let world = World::start(seoul(2026, 10, 1)).await;
    let (customer, _) = world.subscriber("pro").await;
    sign(&world, customer.id, &at_fee(None, 1)).await;
    let key = format!("pro~{}~2026-10-01", customer.id);
    let listed: Vec<String> = world
        .service
        .plans()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.key)
        .collect();
    assert_eq!(listed, ["business", "lite", "pro", "starter"]);
    let other = world.customer(Some(TestCard::Ok)).await;
    let taken = world.service.subscribe(other.id, &key).await;
    assert_eq!(taken.map_err(|e| e.code()).err(), Some("no_plan"));
    let overwritten = world
        .service
        .put_plan(&Plan {
            key,
            ..catalog()[1].clone()
        })
        .await;
    assert_eq!(overwritten.map_err(|e| e.code()).err(), Some("invalid"));
}

#[tokio::test]
async fn a_contract_follows_the_plan_change_rules_and_a_refusal_writes_nothing() {
    let world = World::start(seoul(2026, 10, 1)).await;
    world
        .service
        .put_plan(&Plan {
            key: "team".into(),
            currency: Currency::Usd,
            monthly_fee: "19.99".parse().unwrap(),
            block_price: Some("0.75".parse().unwrap()),
            ..catalog()[0].clone()
        })
        .await
        .unwrap();
    let (customer, id) = world.subscriber("pro").await;
    let nobody = world.customer(Some(TestCard::Ok)).await;
    let no_card = world.customer(None).await;
    world.at(seoul(2026, 10, 10)).await;
    world.service.change_plan(id, "business").await.unwrap();
    let metric = |m: &str| Contract {
        metric: Some(m.into()),
        included: Some(10),
        ..at_fee(Some("pro"), 1)
    };
    let ends = |d: u32| Contract {
        term_ends_on: Some(date(2026, 10, d)),
        ..at_fee(Some("pro"), 1)
    };
    let finer_than_a_won = Contract {
        monthly_fee: Some("0.5".parse().unwrap()),
        ..at_fee(Some("pro"), 1)
    };
    let cases = [
        (nobody.id, Contract::default(), "not_subscribed"),
        (nobody.id, at_fee(Some("gold"), 1), "no_plan"),
        // Its currency is checked before the one-change-a-day rule, as the platform does.
        (customer.id, at_fee(Some("team"), 15), "currency_mismatch"),
        (customer.id, at_fee(None, 450_000), "plan_change_limit"),
        (no_card.id, at_fee(Some("pro"), 700_000), "card_required"),
        (nobody.id, metric("seats"), "invalid_terms"),
        (nobody.id, at_fee(Some("pro"), -1), "invalid_terms"),
        (nobody.id, finer_than_a_won, "invalid_terms"),
        (nobody.id, ends(10), "invalid_terms"),
        (nobody.id, ends(9), "invalid_terms"),
    ];
    for (who, contract, code) in cases {
        let refused = world.service.apply_contract(who, &contract).await;
        assert_eq!(
            refused.map_err(|e| e.code()).err(),
            Some(code),
            "{contract:?}"
        );
    }
    let periods = world.service.subscription(id).await.unwrap().periods;
    assert_eq!(
        periods.len(),
        2,
        "nothing written by the refusals: {periods:?}"
    );
    for who in [nobody.id, no_card.id] {
        let invoices = world.service.invoices(who).await.unwrap();
        assert!(invoices.is_empty());
    }
    // A contract at no fee needs no card.
    let free = at_fee(Some("pro"), 0);
    sign(&world, no_card.id, &free).await;
    // The next day the limit is lifted.
    world.at(seoul(2026, 10, 11)).await;
    sign(&world, customer.id, &at_fee(None, 450_000)).await;
}
