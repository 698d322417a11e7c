//! Currencies like the platform's: a USD plan is billed in cents, floored, with tax floored to
//! the cent and charged in dollars (`usd-with-tax`); a subscription keeps its currency, so a
//! plan change to another currency is refused (`plan-change-across-currencies`); and a price
//! finer than its currency's minor unit is refused.

use billing_harness::model::Currency as HarnessCurrency;
use billing_harness::payments::TestCard;
use example_billing_service::billing::{Currency, Plan};
use example_billing_service::calendar::Month;
use example_billing_service::service::NewUsage;
use rust_decimal::Decimal;

use crate::support::{METRIC, World, date, seoul};

/// `team`: 19.99 USD a month, 5,000 calls included, 0.75 a started block of 1,000.
fn team() -> Plan {
    Plan {
        key: "team".into(),
        name: "Team".into(),
        product: None,
        currency: Currency::Usd,
        monthly_fee: "19.99".parse().unwrap(),
        metric: METRIC.into(),
        included: 5_000,
        block_size: 1_000,
        block_price: Some("0.75".parse().unwrap()),
    }
}

#[tokio::test]
async fn a_usd_invoice_is_floored_to_the_cent_and_charged_in_dollars() {
    let world = World::start(seoul(2028, 2, 10)).await;
    world.service.put_plan(&team()).await.unwrap();
    let (customer, id) = world.subscriber_with(Some(TestCard::Ok), "team").await;
    world.at(seoul(2028, 2, 28)).await;
    let usage = NewUsage {
        metric: METRIC.into(),
        quantity: 4_001,
        occurred_at: None,
    };
    world.service.record_usage(id, &usage).await.unwrap();
    world.live_days(date(2028, 3, 1), date(2028, 3, 5)).await;
    let invoice = &world.service.invoices(customer.id).await.unwrap()[0];
    // 20 of 29 days: floor(13.786…) = 13.78; quota floor(3,448.2…) = 3,448, 553 over: one
    // block; tax floor(1.453) = 1.45.
    let amounts: Vec<String> = invoice.lines.iter().map(|l| l.amount.to_string()).collect();
    assert_eq!(amounts, ["13.78", "0.75"]);
    assert_eq!(
        (
            invoice.currency,
            invoice.subtotal.to_string(),
            invoice.tax.to_string(),
            invoice.total.to_string()
        ),
        (Currency::Usd, "14.53".into(), "1.45".into(), "15.98".into())
    );
    let ledger = world.gateway.ledger();
    assert_eq!(
        (ledger[0].amount.to_string(), ledger[0].currency),
        ("15.98".into(), HarnessCurrency::Usd)
    );
    let payments = world
        .service
        .payments(Month::new(2028, 2).unwrap())
        .await
        .unwrap();
    assert_eq!(payments[0].amount.to_string(), "15.98");
}

#[tokio::test]
async fn a_subscription_keeps_the_currency_it_started_in() {
    let world = World::start(seoul(2026, 10, 1)).await;
    world.service.put_plan(&team()).await.unwrap();
    let (_, won) = world.subscriber("pro").await;
    let (_, dollars) = world.subscriber("team").await;
    world.at(seoul(2026, 10, 10)).await;
    for (subscription, plan) in [(won, "team"), (dollars, "pro")] {
        let refused = world.service.change_plan(subscription, plan).await;
        assert_eq!(
            refused.map_err(|e| e.code()).err(),
            Some("currency_mismatch")
        );
        let periods = world
            .service
            .subscription(subscription)
            .await
            .unwrap()
            .periods;
        assert_eq!(periods.len(), 1, "nothing written by the refusal");
    }
    world.service.change_plan(won, "business").await.unwrap();
    // Refused for its currency before the one-change-a-day rule, as the platform does.
    let again = world.service.change_plan(won, "team").await;
    assert_eq!(again.map_err(|e| e.code()).err(), Some("currency_mismatch"));
}

#[tokio::test]
async fn a_price_finer_than_the_minor_unit_is_refused() {
    let world = World::start(seoul(2026, 10, 1)).await;
    let cases = [
        (Currency::Usd, "19.999", Some("0.75")),
        (Currency::Usd, "19.99", Some("0.755")),
        (Currency::Krw, "99000.5", None),
    ];
    for (currency, fee, price) in cases {
        let plan = Plan {
            currency,
            monthly_fee: fee.parse().unwrap(),
            block_price: price.map(|p| p.parse::<Decimal>().unwrap()),
            ..team()
        };
        let refused = world.service.put_plan(&plan).await;
        assert_eq!(
            refused.map_err(|e| e.code()).err(),
            Some("invalid"),
            "{currency} {fee} {price:?}"
        );
    }
    let plans = world.service.plans().await.unwrap();
    assert!(plans.iter().all(|p| p.key != "team"), "nothing written");
}

#[tokio::test]
async fn a_zero_usd_amount_reads_back_with_its_cents() {
    let world = World::start(seoul(2026, 10, 1)).await;
    world.service.put_plan(&team()).await.unwrap();
    let (customer, _) = world.subscriber("team").await;
    let untaxed = world.service.clone().with_tax_rate(Decimal::ZERO);
    world.at(seoul(2026, 11, 1)).await;
    untaxed
        .close_month(Month::new(2026, 10).unwrap())
        .await
        .unwrap();
    let invoice = &untaxed.invoices(customer.id).await.unwrap()[0];
    // A whole month of 19.99, and no tax: written 0.00, as every USD amount has two decimals.
    assert_eq!(
        [invoice.subtotal, invoice.tax, invoice.total].map(|d| d.to_string()),
        ["19.99", "0.00", "19.99"]
    );
}
