//! The charge step through the harness's mock gateway and its test cards: an `ok` card pays, a
//! declined card and a customer without a card fail, a second charge run charges nobody twice,
//! a zero total is paid at the close and never reaches the gateway, and a lost reply is found
//! by its idempotency key rather than charged again.

use billing_harness::payments::TestCard;
use example_billing_service::calendar::Month;
use example_billing_service::service::{InvoiceStatus, PaymentOutcome, SubscriptionStatus};
use rust_decimal::Decimal;

use crate::support::{World, date, seoul};

#[tokio::test]
async fn the_charge_step_pays_ok_cards_and_fails_the_others() {
    let world = World::start(seoul(2026, 10, 1)).await;
    let service = &world.service;
    let mut customers = Vec::new();
    for (card, plan) in [
        (Some(TestCard::Ok), "pro"),
        (Some(TestCard::Declined), "pro"),
        (None, "pro"),
        (Some(TestCard::Ok), "starter"),
    ] {
        // A paid plan needs a card to subscribe: the cardless one removes it afterwards.
        let customer = world.customer(card.or(Some(TestCard::Ok))).await;
        service.subscribe(customer.id, plan).await.unwrap();
        if card.is_none() {
            service.set_card(customer.id, None).await.unwrap();
        }
        customers.push(customer);
    }
    let october = Month::new(2026, 10).unwrap();
    world.at(seoul(2026, 11, 1)).await;
    let invoices = service.close_month(october).await.unwrap();
    let statuses: Vec<InvoiceStatus> = invoices.iter().map(|i| i.status).collect();
    assert_eq!(
        statuses,
        [
            InvoiceStatus::Finalized,
            InvoiceStatus::Finalized,
            InvoiceStatus::Finalized,
            InvoiceStatus::Paid
        ],
        "a zero total (starter) is paid at the close"
    );

    world.at(seoul(2026, 11, 5)).await;
    let payments = service.charge(october).await.unwrap();
    let outcomes: Vec<(PaymentOutcome, Option<&str>)> = payments
        .iter()
        .map(|p| (p.outcome, p.failure_code.as_deref()))
        .collect();
    assert_eq!(
        outcomes,
        [
            (PaymentOutcome::Succeeded, None),
            (PaymentOutcome::Failed, Some("declined")),
            (PaymentOutcome::Failed, Some("no_card")),
        ]
    );
    let ledger = world.gateway.ledger();
    assert_eq!(ledger.len(), 1, "one capture: {ledger:#?}");
    assert_eq!(ledger[0].amount, Decimal::from(108_900));
    assert_eq!(
        ledger[0].idempotency_key,
        format!("invoice-{}-attempt-1", invoices[0].id),
        "one key per attempt, so that a retry is a new charge"
    );

    let again = service.charge(october).await.unwrap();
    assert_eq!(again, payments, "a second run charges nobody again");
    assert_eq!(
        world.gateway.journal().len(),
        2,
        "two requests reached the gateway"
    );
    let paid = &service.invoices(customers[0].id).await.unwrap()[0];
    assert_eq!(
        (paid.status, paid.paid_at),
        (InvoiceStatus::Paid, Some(seoul(2026, 11, 5)))
    );
}

#[tokio::test]
async fn a_zero_total_is_paid_at_the_close_and_never_charged() {
    // free-plan-paid-at-once: the platform records the close's instant as paid_at.
    let world = World::start(seoul(2026, 10, 3)).await;
    let (customer, id) = world.subscriber_with(Some(TestCard::Ok), "starter").await;
    world.live_days(date(2026, 11, 1), date(2026, 11, 10)).await;
    let invoice = &world.service.invoices(customer.id).await.unwrap()[0];
    assert_eq!(
        (invoice.total, invoice.status, invoice.paid_at),
        (Decimal::ZERO, InvoiceStatus::Paid, Some(seoul(2026, 11, 1)))
    );
    assert_eq!(invoice.paid_at, Some(invoice.closed_at));
    let october = Month::new(2026, 10).unwrap();
    assert!(world.service.payments(october).await.unwrap().is_empty());
    assert!(
        world.gateway.journal().is_empty(),
        "the gateway is never asked"
    );
    let status = world.service.subscription(id).await.unwrap().status;
    assert_eq!(status, SubscriptionStatus::Active);
}

#[tokio::test]
async fn a_lost_reply_is_found_by_its_key_and_captured_once() {
    // timeout-charged-once: the gateway captures but the reply is lost; the service asks by the
    // attempt's idempotency key and records the capture it finds.
    let world = World::start(seoul(2026, 10, 1)).await;
    let (customer, id) = world.subscriber_with(Some(TestCard::Timeout), "pro").await;
    world.live_days(date(2026, 11, 1), date(2026, 11, 10)).await;
    let invoice = &world.service.invoices(customer.id).await.unwrap()[0];
    assert_eq!(
        world.attempts((2026, 10)).await,
        [(1, PaymentOutcome::Succeeded)]
    );
    assert_eq!(invoice.status, InvoiceStatus::Paid);
    let key = format!("invoice-{}-attempt-1", invoice.id);
    let answers: Vec<(String, String, String)> = world
        .gateway
        .journal()
        .into_iter()
        .map(|j| (j.call.to_owned(), j.idempotency_key, j.answer))
        .collect();
    assert_eq!(
        answers,
        [
            ("charge".to_owned(), key.clone(), "timeout".to_owned()),
            ("find".to_owned(), key, "found".to_owned()),
        ]
    );
    assert_eq!(world.gateway.ledger().len(), 1, "captured once");
    let status = world.service.subscription(id).await.unwrap().status;
    assert_eq!(status, SubscriptionStatus::Active);
}
