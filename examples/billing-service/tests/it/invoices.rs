//! The service's invoices against the harness's pure invoice function: each test is a story
//! (steps at instants in Seoul) played through the service and fed, as data, to the reference.
//! Proration at month boundaries, overage at the quota boundary, a plan change, a cancel day and
//! a leap February.

use rust_decimal::Decimal;

use crate::support::{Step, World, check, seoul, seoul_at};

#[tokio::test]
async fn a_whole_month_is_billed_its_fee() {
    let world = World::start(seoul(2026, 10, 1)).await;
    let invoice = check(
        &world,
        (2026, 10),
        &[
            (seoul(2026, 10, 1), Step::Subscribe("pro")),
            (seoul(2026, 10, 15), Step::Usage(60_000)),
        ],
    )
    .await
    .expect("October is billed");
    assert_eq!(invoice.lines.len(), 1, "within the quota: a base line only");
    assert_eq!(invoice.subtotal, Decimal::from(99_000));
    assert_eq!(invoice.total, Decimal::from(108_900), "with 10% VAT");
}

#[tokio::test]
async fn the_last_minute_of_a_month_in_seoul_bills_one_day() {
    // 23:59 on October 31 in Seoul is 14:59 UTC: still October there.
    let world = World::start(seoul(2026, 10, 1)).await;
    let invoice = check(
        &world,
        (2026, 10),
        &[(seoul_at(2026, 10, 31, 23, 59), Step::Subscribe("pro"))],
    )
    .await
    .expect("one day of October is billed");
    assert_eq!(invoice.lines[0].days, 1);
    assert_eq!(invoice.subtotal, Decimal::from(3_193), "floor(99,000 / 31)");
}

#[tokio::test]
async fn midnight_in_seoul_starts_the_next_month() {
    // 00:00 on November 1 in Seoul is still October 31 in UTC: nothing of October is billed.
    let world = World::start(seoul(2026, 10, 1)).await;
    let october = check(
        &world,
        (2026, 10),
        &[(seoul(2026, 11, 1), Step::Subscribe("pro"))],
    )
    .await;
    assert!(october.is_none(), "{october:#?}");
}

#[tokio::test]
async fn usage_exactly_at_the_quota_bills_no_overage() {
    let world = World::start(seoul(2026, 11, 1)).await;
    let invoice = check(
        &world,
        (2026, 11),
        &[
            (seoul(2026, 11, 1), Step::Subscribe("lite")),
            (seoul(2026, 11, 3), Step::Usage(400)),
            (seoul_at(2026, 11, 30, 23, 59), Step::Usage(600)),
        ],
    )
    .await
    .expect("November is billed");
    assert_eq!(invoice.lines.len(), 1, "1,000 used of 1,000 included");
}

#[tokio::test]
async fn one_unit_over_the_quota_bills_a_whole_block() {
    let world = World::start(seoul(2026, 11, 1)).await;
    let invoice = check(
        &world,
        (2026, 11),
        &[
            (seoul(2026, 11, 1), Step::Subscribe("lite")),
            (seoul(2026, 11, 30), Step::Usage(1_001)),
        ],
    )
    .await
    .expect("November is billed");
    let overage = &invoice.lines[1];
    assert_eq!(
        (overage.overage, overage.amount),
        (Some(1), Decimal::from(1_000))
    );
}

#[tokio::test]
async fn the_quota_is_prorated_with_the_fee() {
    // From October 10: 22 of 31 days, so 709 of lite's 1,000 calls are included; 800 used is
    // 91 over, one block.
    let world = World::start(seoul(2026, 10, 1)).await;
    let invoice = check(
        &world,
        (2026, 10),
        &[
            (seoul(2026, 10, 10), Step::Subscribe("lite")),
            (seoul(2026, 10, 20), Step::Usage(800)),
        ],
    )
    .await
    .expect("October is billed");
    assert_eq!(invoice.lines[1].included, Some(709));
}

#[tokio::test]
async fn a_plan_change_splits_the_month_and_its_usage() {
    // pro from the 10th, business from the 20th; the change day's usage counts for business.
    let world = World::start(seoul(2026, 10, 1)).await;
    let invoice = check(
        &world,
        (2026, 10),
        &[
            (seoul(2026, 10, 10), Step::Subscribe("pro")),
            (seoul(2026, 10, 12), Step::Usage(40_000)),
            (seoul_at(2026, 10, 19, 23, 59), Step::Usage(1_000)),
            (seoul_at(2026, 10, 20, 9, 30), Step::Change("business")),
            (seoul_at(2026, 10, 20, 10, 0), Step::Usage(500_000)),
        ],
    )
    .await
    .expect("October is billed");
    let plans: Vec<(&str, u32)> = invoice
        .lines
        .iter()
        .map(|l| (l.plan.as_str(), l.days))
        .collect();
    assert_eq!(
        plans,
        [("pro", 10), ("pro", 10), ("business", 12), ("business", 12)]
    );
    insta::assert_yaml_snapshot!("plan_change_splits_october", invoice, {
        ".id" => "[id]",
        ".subscription_id" => "[id]",
        ".customer_id" => "[id]",
        ".closed_at" => "[timestamp]",
    });
}

#[tokio::test]
async fn a_cancel_day_is_not_billed() {
    let world = World::start(seoul(2026, 11, 1)).await;
    let invoice = check(
        &world,
        (2026, 11),
        &[
            (seoul(2026, 11, 1), Step::Subscribe("pro")),
            (seoul(2026, 11, 14), Step::Usage(90_000)),
            (seoul_at(2026, 11, 15, 8, 0), Step::Cancel),
        ],
    )
    .await
    .expect("November is billed");
    assert_eq!(invoice.lines[0].days, 14, "the 1st to the 14th");
}

#[tokio::test]
async fn a_leap_february_has_29_days() {
    // February 2028: from the 15th is 15 of 29 days; 20,000 calls over a quota of 15 / 29 of
    // lite's 1,000.
    let world = World::start(seoul(2028, 2, 1)).await;
    let invoice = check(
        &world,
        (2028, 2),
        &[
            (seoul(2028, 2, 15), Step::Subscribe("lite")),
            (seoul_at(2028, 2, 29, 23, 0), Step::Usage(20_000)),
        ],
    )
    .await
    .expect("February is billed");
    assert_eq!(
        (invoice.lines[0].days, invoice.lines[0].amount),
        (15, Decimal::from(5_120)),
        "floor(9,900 × 15 / 29)"
    );
    assert_eq!(invoice.lines[1].included, Some(517));
}
