//! Dunning against the platform's rules, as data: customers with the harness's test cards live
//! the days of November 2026 through `run_due_jobs`, and each one's attempts (day, number,
//! outcome), invoice status and subscription status are compared with what the platform's
//! scenarios expect (`declined-dunning`, `fail-times-2`, `insufficient-funds`, `expired-card`,
//! `past-due-then-cancelled-by-hand`).

use billing_harness::payments::TestCard;
use chrono::Datelike;
use example_billing_service::calendar::{self, Month};
use example_billing_service::service::{
    CustomerId, InvoiceStatus, PaymentOutcome, SubscriptionId, SubscriptionStatus,
};
use rust_decimal::Decimal;

use crate::support::{World, date, seoul, seoul_at};

/// One attempt as the tests read it back: the November day, the attempt number, and the
/// failure code (`None`: captured).
type Attempt = (u32, u8, Option<&'static str>);

/// A customer on `pro` for the whole of October with `card`, and what October's dunning must
/// come to by `last` day of November.
struct Case {
    card: TestCard,
    attempts: Vec<Attempt>,
    invoice: InvoiceStatus,
    subscription: SubscriptionStatus,
}

fn case(
    card: TestCard,
    attempts: Vec<Attempt>,
    invoice: InvoiceStatus,
    subscription: SubscriptionStatus,
) -> Case {
    Case {
        card,
        attempts,
        invoice,
        subscription,
    }
}

/// Four failed attempts, on the 5th to the 8th, all failing with `code`.
fn all_fail(code: &'static str) -> Vec<Attempt> {
    (1..=4).map(|n| (4 + u32::from(n), n, Some(code))).collect()
}

/// Subscribes one customer per case on October 1, lives November 1 to `last`, and checks each.
async fn check(world: &World, last: u32, cases: &[Case]) -> Vec<(CustomerId, SubscriptionId)> {
    let mut subscribers = Vec::new();
    for case in cases {
        let (customer, subscription) = world.subscriber_with(Some(case.card), "pro").await;
        subscribers.push((customer.id, subscription));
    }
    world
        .live_days(date(2026, 11, 1), date(2026, 11, last))
        .await;
    let october = Month::new(2026, 10).unwrap();
    let payments = world.service.payments(october).await.unwrap();
    for (case, &(customer, subscription)) in cases.iter().zip(&subscribers) {
        let invoice = world.service.invoices(customer).await.unwrap().remove(0);
        let attempts: Vec<(u32, u8, Option<&str>)> = payments
            .iter()
            .filter(|p| p.invoice_id == invoice.id)
            .map(|p| {
                assert_eq!(
                    p.amount, invoice.total,
                    "every attempt asks the whole total"
                );
                assert_eq!(
                    p.outcome == PaymentOutcome::Succeeded,
                    p.failure_code.is_none()
                );
                let day = calendar::local_day(p.attempted_at).day();
                (day, p.attempt, p.failure_code.as_deref())
            })
            .collect();
        let status = world
            .service
            .subscription(subscription)
            .await
            .unwrap()
            .status;
        assert_eq!(
            (attempts, invoice.status, status),
            (case.attempts.clone(), case.invoice, case.subscription),
            "card {}",
            case.card
        );
    }
    subscribers
}

#[tokio::test]
async fn failed_charges_are_retried_daily_up_to_four_attempts() {
    use InvoiceStatus as I;
    use SubscriptionStatus as S;
    let world = World::start(seoul(2026, 10, 1)).await;
    let declined = Some("declined");
    let cases = [
        case(TestCard::Ok, vec![(5, 1, None)], I::Paid, S::Active),
        case(
            TestCard::FailTimes(2),
            vec![(5, 1, declined), (6, 2, declined), (7, 3, None)],
            I::Paid,
            S::Active,
        ),
        case(
            TestCard::Declined,
            all_fail("declined"),
            I::Uncollectible,
            S::Cancelled,
        ),
        case(
            TestCard::InsufficientFunds,
            all_fail("insufficient_funds"),
            I::Uncollectible,
            S::Cancelled,
        ),
        case(
            TestCard::Expired,
            all_fail("expired_card"),
            I::Uncollectible,
            S::Cancelled,
        ),
    ];
    check(&world, 10, &cases).await;
}

#[tokio::test]
async fn a_subscription_is_past_due_between_a_failure_and_the_payment() {
    let world = World::start(seoul(2026, 10, 1)).await;
    let (customer, id) = world
        .subscriber_with(Some(TestCard::FailTimes(2)), "pro")
        .await;
    world.live_days(date(2026, 11, 1), date(2026, 11, 3)).await;
    let mut seen = Vec::new();
    for day in 4..=7 {
        world
            .live_days(date(2026, 11, day), date(2026, 11, day))
            .await;
        let status = world.service.subscription(id).await.unwrap().status;
        let invoice = world.service.invoices(customer.id).await.unwrap().remove(0);
        seen.push((day, invoice.status, status));
    }
    use InvoiceStatus as I;
    use SubscriptionStatus as S;
    assert_eq!(
        seen,
        [
            (4, I::Finalized, S::Active),
            (5, I::PastDue, S::PastDue),
            (6, I::PastDue, S::PastDue),
            (7, I::Paid, S::Active),
        ]
    );
    let invoice = world.service.invoices(customer.id).await.unwrap().remove(0);
    assert_eq!(invoice.paid_at, Some(seoul(2026, 11, 7)));
}

#[tokio::test]
async fn an_uncollectible_invoice_cancels_the_subscription_that_day() {
    // declined-dunning: cancelled on November 8, so November bills the 1st to the 7th:
    // floor(99,000 × 7 / 30) = 23,100, and 10% VAT here.
    let world = World::start(seoul(2026, 10, 1)).await;
    let cases = [case(
        TestCard::Declined,
        all_fail("declined"),
        InvoiceStatus::Uncollectible,
        SubscriptionStatus::Cancelled,
    )];
    let (customer, id) = check(&world, 8, &cases).await[0];
    let subscription = world.service.subscription(id).await.unwrap();
    assert_eq!(subscription.cancelled_on, Some(date(2026, 11, 8)));
    assert_eq!(
        subscription.periods.last().and_then(|p| p.until),
        Some(date(2026, 11, 8))
    );
    world.live_days(date(2026, 11, 9), date(2026, 12, 1)).await;
    let november = world.service.invoices(customer).await.unwrap().remove(1);
    assert_eq!(
        (november.lines[0].days, november.subtotal, november.total),
        (7, Decimal::from(23_100), Decimal::from(25_410))
    );
}

#[tokio::test]
async fn a_past_due_subscription_cancelled_by_hand_stays_cancelled_when_paid() {
    // past-due-then-cancelled-by-hand: fail_times:3 fails on the 5th, 6th and 7th and pays on
    // the 8th; the subscription, cancelled on the 6th, is not renewed.
    let world = World::start(seoul(2026, 10, 1)).await;
    let (customer, id) = world
        .subscriber_with(Some(TestCard::FailTimes(3)), "pro")
        .await;
    world.live_days(date(2026, 11, 1), date(2026, 11, 6)).await;
    world.service.cancel(id).await.unwrap();
    world.live_days(date(2026, 11, 7), date(2026, 11, 10)).await;
    let invoice = world.service.invoices(customer.id).await.unwrap().remove(0);
    let payments = world
        .service
        .payments(Month::new(2026, 10).unwrap())
        .await
        .unwrap();
    let last = payments.last().expect("attempts");
    assert_eq!(
        (invoice.status, last.attempt, last.outcome),
        (InvoiceStatus::Paid, 4, PaymentOutcome::Succeeded)
    );
    let subscription = world.service.subscription(id).await.unwrap();
    assert_eq!(
        (subscription.status, subscription.cancelled_on),
        (SubscriptionStatus::Cancelled, Some(date(2026, 11, 6)))
    );
}

#[tokio::test]
async fn the_jobs_run_once_however_often_they_are_asked() {
    let world = World::start(seoul(2026, 10, 1)).await;
    let customer = world.customer(Some(TestCard::Declined)).await;
    world.service.subscribe(customer.id, "pro").await.unwrap();
    world.live_days(date(2026, 11, 1), date(2026, 11, 5)).await;
    for _ in 0..2 {
        world.service.run_due_jobs().await.unwrap();
        assert!(
            world.service.retry().await.unwrap().is_empty(),
            "attempted today"
        );
    }
    world
        .at(seoul(2026, 11, 5) + chrono::TimeDelta::hours(23))
        .await;
    world.service.run_due_jobs().await.unwrap();
    let payments = world
        .service
        .payments(Month::new(2026, 10).unwrap())
        .await
        .unwrap();
    assert_eq!(payments.len(), 1, "{payments:#?}");
    assert_eq!(world.gateway.journal().len(), 1);
    assert_eq!(
        world.service.invoices(customer.id).await.unwrap().len(),
        1,
        "October closed once"
    );
}

#[tokio::test]
async fn a_card_replaced_between_attempts_is_used_from_the_next_attempt_on() {
    // card-replaced-between-attempts: declined on the 5th, the card replaced that day, and the
    // retry on the 6th captures with the new card.
    let world = World::start(seoul(2026, 10, 1)).await;
    let (customer, id) = world.subscriber_with(Some(TestCard::Declined), "pro").await;
    world.live_days(date(2026, 11, 1), date(2026, 11, 5)).await;
    world.at(seoul_at(2026, 11, 5, 14, 0)).await;
    let new_key = world.new_customer(Some(TestCard::Ok)).billing_key;
    let updated = world
        .service
        .set_card(customer.id, new_key.clone())
        .await
        .unwrap();
    assert!(updated.has_card);
    world.live_days(date(2026, 11, 6), date(2026, 11, 10)).await;
    assert_eq!(
        world.attempts((2026, 10)).await,
        [(1, PaymentOutcome::Failed), (2, PaymentOutcome::Succeeded)]
    );
    let ledger = world.gateway.ledger();
    assert_eq!(
        (ledger.len(), Some(&ledger[0].billing_key)),
        (1, new_key.as_ref())
    );
    let status = world.service.subscription(id).await.unwrap().status;
    assert_eq!(status, SubscriptionStatus::Active);
}

#[tokio::test]
async fn a_card_is_set_only_for_a_customer() {
    let world = World::start(seoul(2026, 10, 1)).await;
    let missing = world.service.set_card(CustomerId(999_999), None).await;
    assert_eq!(missing.map_err(|e| e.code()).err(), Some("no_customer"));
    let customer = world.customer(Some(TestCard::Ok)).await;
    let removed = world.service.set_card(customer.id, None).await.unwrap();
    assert!(!removed.has_card);
}

#[tokio::test]
async fn retry_runs_at_once_attempt_each_invoice_once() {
    let world = World::start(seoul(2026, 10, 1)).await;
    for _ in 0..4 {
        world.subscriber_with(Some(TestCard::Declined), "pro").await;
    }
    world.live_days(date(2026, 11, 1), date(2026, 11, 5)).await;
    world.at(seoul(2026, 11, 6)).await;
    let (a, b) = tokio::join!(world.service.retry(), world.service.retry());
    let made = a.unwrap().len() + b.unwrap().len();
    assert_eq!(made, 4, "four invoices, one retry each");
    let seconds = world
        .attempts((2026, 10))
        .await
        .into_iter()
        .filter(|&(n, _)| n == 2)
        .count();
    assert_eq!(seconds, 4);
}
