//! The deliberate flaws (feature `flaws`) do break what the other tests hold: a service with
//! `ProrateBy30Days` bills October differently from the reference, and one with
//! `RetrySkipsADay` attempts on the 5th, 7th, 8th and 9th instead of the 5th to the 8th.

use billing_harness::payments::TestCard;
use example_billing_service::Flaw;
use example_billing_service::calendar::{Month, start_of_day};
use rust_decimal::Decimal;

use crate::support::{World, date, seoul};

#[tokio::test]
async fn prorating_by_30_days_misbills_october() {
    let world = World::start(seoul(2026, 10, 10)).await;
    let service = world.service.clone().with_flaw(Flaw::ProrateBy30Days);
    let (customer, _) = world.subscriber("pro").await;
    world.at(seoul(2026, 11, 1)).await;
    service
        .close_month(Month::new(2026, 10).unwrap())
        .await
        .unwrap();
    let invoice = &service.invoices(customer.id).await.unwrap()[0];
    // floor(99,000 × 22 / 30) = 72,600, where the rules bill floor(99,000 × 22 / 31) = 70,258.
    assert_eq!(invoice.subtotal, Decimal::from(72_600));
}

#[tokio::test]
async fn a_retry_that_skips_a_day_attempts_on_other_days() {
    let world = World::start(seoul(2026, 10, 1)).await;
    let service = world.service.clone().with_flaw(Flaw::RetrySkipsADay);
    world.subscriber_with(Some(TestCard::Declined), "pro").await;
    for day in date(2026, 11, 1).iter_days().take(10) {
        world.at(start_of_day(day)).await;
        service.run_due_jobs().await.unwrap();
    }
    let payments = service
        .payments(Month::new(2026, 10).unwrap())
        .await
        .unwrap();
    let days: Vec<(u32, u8)> = payments
        .iter()
        .map(|p| {
            let day = example_billing_service::calendar::local_day(p.attempted_at);
            (chrono::Datelike::day(&day), p.attempt)
        })
        .collect();
    assert_eq!(days, [(5, 1), (7, 2), (8, 3), (9, 4)]);
}
