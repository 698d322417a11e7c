//! Every billing rule of `billing_harness::billing::rules` at its edges, through the platform's
//! operations and the clock's jobs: one test per rule, named after it, each with a lower and an
//! upper bound. Every expected amount is computed by hand in a comment; none is copied from a
//! run. A failure names the rule it broke.

use billing_harness::model::{Catalog, ContractTerms, Currency, Overage, Plan, Terms};
use billing_harness::platform::StoredInvoice;
use billing_harness::prelude::*;
use chrono::{DateTime, TimeZone, Utc};
use std::collections::BTreeMap;

use crate::support::{dec, distinct_ids, plan};

/// An instant given as a wall-clock time in Seoul, the billing time zone.
pub(crate) fn kst(y: i32, m: u32, d: u32, h: u32, min: u32, s: u32) -> DateTime<Utc> {
    chrono_tz::Asia::Seoul
        .with_ymd_and_hms(y, m, d, h, min, s)
        .unwrap()
        .with_timezone(&Utc)
}

/// 00:00 of a day in Seoul.
pub(crate) fn midnight(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    kst(y, m, d, 0, 0, 0)
}

/// A fresh database with [`distinct_ids`] whose clock starts at `start`.
pub(crate) async fn env_at(start: DateTime<Utc>) -> TestEnv {
    let env = TestEnv::builder().start_at(start).build().await.unwrap();
    distinct_ids(&env).await;
    env
}

/// The month `y-m`.
pub(crate) fn month(y: i32, m: u32) -> Month {
    Month::new(y, m).unwrap()
}

/// Every line of an invoice in one line of text each, then its totals: what the rules page
/// computes, in the order it lists them.
pub(crate) fn show(invoice: &StoredInvoice) -> Vec<String> {
    let i = &invoice.invoice;
    let mut out: Vec<String> = i
        .lines
        .iter()
        .map(|l| match &l.metric {
            None => format!(
                "base {} {}..{} {}d {}",
                l.plan, l.from, l.until, l.days, l.amount
            ),
            Some(metric) => format!(
                "overage {} {metric} used {} included {} over {} = {}",
                l.plan,
                l.used.unwrap_or_default(),
                l.included.unwrap_or_default(),
                l.overage.unwrap_or_default(),
                l.amount
            ),
        })
        .collect();
    out.push(format!(
        "subtotal {} tax {} total {}",
        i.subtotal, i.tax, i.total
    ));
    out
}

/// The invoice of `tenant` for the month `y-m`, which must have been closed.
pub(crate) async fn invoice_of(tenant: &Tenant<'_>, y: i32, m: u32) -> StoredInvoice {
    tenant
        .invoice(month(y, m))
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no invoice for {y}-{m:02}"))
}

/// The code of a refused operation; panics naming `rule` when it was accepted.
pub(crate) fn refused<T: std::fmt::Debug>(
    result: Result<T, DomainError>,
    rule: &str,
) -> &'static str {
    match result {
        Ok(accepted) => panic!("{rule}: it was accepted ({accepted:?})"),
        Err(e) => e.code(),
    }
}

/// A subscribed tenant of the default organization (card `ok`), subscribed at the clock's now.
async fn subscribed<'e>(env: &'e TestEnv, plan: &str) -> Tenant<'e> {
    env.build().tenant().plan(plan).create().await.unwrap()
}

/// The default plans (pro 99,000 KRW with 100,000 calls then 500 per 1,000; business 290,000
/// KRW with 1,000,000 calls then 300 per 1,000; free) plus:
///
/// - `meter`, 1,000 KRW: `sms` 10 included then 20 per unit (a block of 1); `storage` 50
///   included and no overage price; `exports` no quota, 100 per started block of 5;
/// - `tiny`, the smallest paid plan: 1 KRW a month;
/// - `team-usd`, 19.99 USD: 5,000 calls then 0.75 per 1,000.
pub(crate) fn catalog(tax_rate: &str) -> Catalog {
    let mut catalog = crate::support::catalog();
    catalog.tax_rate = dec(tax_rate);
    catalog.plans.push(Plan {
        key: "meter".into(),
        product: "analytics".into(),
        currency: Currency::Krw,
        terms: Terms {
            base_fee: dec("1000"),
            included: BTreeMap::from([("sms".to_owned(), 10), ("storage".to_owned(), 50)]),
            overage: BTreeMap::from([
                (
                    "sms".to_owned(),
                    Overage {
                        block: 1,
                        price: dec("20"),
                    },
                ),
                (
                    "exports".to_owned(),
                    Overage {
                        block: 5,
                        price: dec("100"),
                    },
                ),
            ]),
        },
        limits: BTreeMap::new(),
    });
    catalog
        .plans
        .push(plan("tiny", "analytics", "1", 0, 1000, "0"));
    let mut team = plan("team-usd", "analytics", "19.99", 5000, 1000, "0.75");
    team.currency = Currency::Usd;
    catalog.plans.push(team);
    catalog
}

/// A fresh database at `start` with [`catalog`] installed.
pub(crate) async fn env_with_catalog(start: DateTime<Utc>, tax_rate: &str) -> TestEnv {
    let env = env_at(start).await;
    env.platform()
        .install_catalog(&catalog(tax_rate), start)
        .await
        .unwrap();
    env
}

#[tokio::test]
async fn the_base_fee_is_prorated_by_the_days_of_28_30_and_31_day_months() {
    let env = env_at(midnight(2026, 11, 21)).await;
    // November 2026 has 30 days: from the 21st, 10 of 30: floor(99,000 × 10 / 30) = 33,000.
    let november = subscribed(&env, "pro").await;
    env.clock()
        .advance_to(midnight(2026, 12, 22))
        .await
        .unwrap();
    // December 2026 has 31 days: from the 22nd, 10 of 31: floor(99,000 × 10 / 31)
    // = floor(31,935.48…) = 31,935.
    let december = subscribed(&env, "pro").await;
    env.clock().advance_to(midnight(2027, 2, 19)).await.unwrap();
    // February 2027 has 28 days: from the 19th, 10 of 28: floor(99,000 × 10 / 28)
    // = floor(35,357.14…) = 35,357.
    let february = subscribed(&env, "pro").await;
    env.clock().advance_to(midnight(2027, 3, 1)).await.unwrap();

    let rule = "rule: base = floor(base_fee × days / days_in_month)";
    assert_eq!(
        show(&invoice_of(&november, 2026, 11).await),
        [
            "base pro 2026-11-21..2026-12-01 10d 33000",
            "subtotal 33000 tax 0 total 33000"
        ],
        "{rule}, 30-day month"
    );
    assert_eq!(
        show(&invoice_of(&december, 2026, 12).await),
        [
            "base pro 2026-12-22..2027-01-01 10d 31935",
            "subtotal 31935 tax 0 total 31935"
        ],
        "{rule}, 31-day month"
    );
    assert_eq!(
        show(&invoice_of(&february, 2027, 2).await),
        [
            "base pro 2027-02-19..2027-03-01 10d 35357",
            "subtotal 35357 tax 0 total 35357"
        ],
        "{rule}, 28-day February"
    );
    // A plan held for the whole month is billed its fee exactly, whatever the month's length:
    // 31 days of December and 28 of February are both 99,000.
    for (y, m, days) in [(2026, 12, 31), (2027, 2, 28)] {
        assert_eq!(
            show(&invoice_of(&november, y, m).await)[0],
            format!(
                "base pro {}..{} {days}d 99000",
                month(y, m).first_day(),
                month(y, m).end()
            ),
            "rule: a plan held for the whole month is billed its base fee exactly"
        );
    }
}

#[tokio::test]
async fn a_leap_february_has_29_days_and_its_29th_is_billed() {
    let env = env_at(midnight(2028, 2, 20)).await;
    // From February 20th, 2028: 10 of 29 days: floor(99,000 × 10 / 29) = floor(34,137.93…)
    // = 34,137 (with 28 days it would be 35,357).
    let twentieth = subscribed(&env, "pro").await;
    env.clock().advance_to(midnight(2028, 2, 29)).await.unwrap();
    // From the 29th, the last day: 1 of 29: floor(99,000 / 29) = floor(3,413.79…) = 3,413.
    let leap_day = subscribed(&env, "pro").await;
    env.clock().advance_to(midnight(2028, 3, 1)).await.unwrap();
    assert_eq!(
        show(&invoice_of(&twentieth, 2028, 2).await)[0],
        "base pro 2028-02-20..2028-03-01 10d 34137",
        "rule: a leap February has 29 days"
    );
    assert_eq!(
        show(&invoice_of(&leap_day, 2028, 2).await)[0],
        "base pro 2028-02-29..2028-03-01 1d 3413",
        "rule: the 29th of a leap February is a billed day"
    );
}

#[tokio::test]
async fn the_start_day_is_billed() {
    let env = env_at(midnight(2026, 10, 1)).await;
    // From the 1st: all 31 days, the fee exactly: 99,000.
    let first = subscribed(&env, "pro").await;
    env.clock()
        .advance_to(midnight(2026, 10, 31))
        .await
        .unwrap();
    // From the 31st, the last day: 1 of 31 days: floor(99,000 / 31) = floor(3,193.5…) = 3,193.
    let last = subscribed(&env, "pro").await;
    env.clock().advance_to(midnight(2026, 11, 1)).await.unwrap();
    assert_eq!(
        show(&invoice_of(&first, 2026, 10).await)[0],
        "base pro 2026-10-01..2026-11-01 31d 99000",
        "rule: the day a period starts is part of it (subscribed on the 1st)"
    );
    assert_eq!(
        show(&invoice_of(&last, 2026, 10).await)[0],
        "base pro 2026-10-31..2026-11-01 1d 3193",
        "rule: the day a period starts is part of it (subscribed on the last day)"
    );
}

#[tokio::test]
async fn the_change_day_belongs_to_the_new_plan() {
    let env = env_at(midnight(2026, 10, 1)).await;
    let second = subscribed(&env, "pro").await;
    let last = subscribed(&env, "pro").await;
    let first = subscribed(&env, "pro").await;
    second
        .change_plan("business")
        .on(env.day(crate::support::day(2026, 10, 2)))
        .await
        .unwrap();
    last.change_plan("business")
        .on(env.day(crate::support::day(2026, 10, 31)))
        .await
        .unwrap();
    first
        .change_plan("business")
        .on(env.day(crate::support::day(2026, 11, 1)))
        .await
        .unwrap();
    env.clock().advance_to(midnight(2026, 12, 1)).await.unwrap();
    let rule = "rule: the change day is the new plan's first day and not the old plan's";
    // Changed on the 2nd: pro for the 1st only, floor(99,000 / 31) = 3,193; business for 30
    // days, floor(290,000 × 30 / 31) = floor(280,645.16…) = 280,645.
    assert_eq!(
        show(&invoice_of(&second, 2026, 10).await),
        [
            "base pro 2026-10-01..2026-10-02 1d 3193",
            "base business 2026-10-02..2026-11-01 30d 280645",
            "subtotal 283838 tax 0 total 283838"
        ],
        "{rule} (changed on the 2nd)"
    );
    // Changed on the 31st: pro for 30 days, floor(99,000 × 30 / 31) = floor(95,806.45…)
    // = 95,806; business for the 31st, floor(290,000 / 31) = floor(9,354.83…) = 9,354.
    assert_eq!(
        show(&invoice_of(&last, 2026, 10).await),
        [
            "base pro 2026-10-01..2026-10-31 30d 95806",
            "base business 2026-10-31..2026-11-01 1d 9354",
            "subtotal 105160 tax 0 total 105160"
        ],
        "{rule} (changed on the last day)"
    );
    // Changed on November 1st: October is all pro (99,000); November has no pro line at all
    // (a period with zero days in the month gets no line) and is all business (290,000).
    assert_eq!(
        show(&invoice_of(&first, 2026, 10).await),
        [
            "base pro 2026-10-01..2026-11-01 31d 99000",
            "subtotal 99000 tax 0 total 99000"
        ],
        "{rule} (changed on the 1st of the next month)"
    );
    assert_eq!(
        show(&invoice_of(&first, 2026, 11).await),
        [
            "base business 2026-11-01..2026-12-01 30d 290000",
            "subtotal 290000 tax 0 total 290000"
        ],
        "{rule} (changed on the 1st: no line for the old plan's zero days)"
    );
}

#[tokio::test]
async fn the_cancel_day_is_not_billed() {
    let env = env_at(midnight(2026, 10, 1)).await;
    let second = subscribed(&env, "pro").await;
    let last = subscribed(&env, "pro").await;
    let first = subscribed(&env, "pro").await;
    second
        .cancel()
        .on(env.day(crate::support::day(2026, 10, 2)))
        .await
        .unwrap();
    last.cancel()
        .on(env.day(crate::support::day(2026, 10, 31)))
        .await
        .unwrap();
    first
        .cancel()
        .on(env.day(crate::support::day(2026, 11, 1)))
        .await
        .unwrap();
    env.clock().advance_to(midnight(2026, 12, 1)).await.unwrap();
    let rule = "rule: a cancellation is effective from its day, which is not billed";
    let cancelled_on = second
        .timeline()
        .await
        .unwrap()
        .subscription
        .and_then(|s| s.cancelled_on);
    assert_eq!(
        cancelled_on,
        Some(crate::support::day(2026, 10, 2)),
        "{rule}: the subscription's first day not served is the cancel day"
    );
    // Cancelled on the 2nd: the 1st only, floor(99,000 / 31) = 3,193.
    assert_eq!(
        show(&invoice_of(&second, 2026, 10).await)[0],
        "base pro 2026-10-01..2026-10-02 1d 3193",
        "{rule} (cancelled on the 2nd)"
    );
    // Cancelled on the 31st: 30 days, floor(99,000 × 30 / 31) = 95,806.
    assert_eq!(
        show(&invoice_of(&last, 2026, 10).await)[0],
        "base pro 2026-10-01..2026-10-31 30d 95806",
        "{rule} (cancelled on the last day)"
    );
    // Cancelled on November 1st: October in full, and no November invoice at all.
    assert_eq!(
        show(&invoice_of(&first, 2026, 10).await)[0],
        "base pro 2026-10-01..2026-11-01 31d 99000",
        "{rule} (cancelled on the 1st of the next month)"
    );
    let months: Vec<Month> = first
        .invoices()
        .await
        .unwrap()
        .iter()
        .map(|i| i.invoice.month)
        .collect();
    assert_eq!(
        months,
        [month(2026, 10)],
        "{rule}: cancelled on November 1st, November has no service day and no invoice"
    );
}

#[tokio::test]
async fn the_included_quota_is_prorated_and_floored() {
    let env = env_at(midnight(2026, 10, 10)).await;
    let at_quota = subscribed(&env, "pro").await;
    let one_over = subscribed(&env, "pro").await;
    // From October 10th, 22 of 31 days: included = floor(100,000 × 22 / 31)
    // = floor(70,967.74…) = 70,967 (rounding would give 70,968).
    at_quota.usage("api_calls", 70_967).await.unwrap();
    one_over.usage("api_calls", 70_968).await.unwrap();
    env.clock().advance_to(midnight(2026, 11, 1)).await.unwrap();
    let rule = "rule: included = floor(quota × days / days_in_month), and usage at the quota has no overage line";
    assert_eq!(
        show(&invoice_of(&at_quota, 2026, 10).await),
        [
            "base pro 2026-10-10..2026-11-01 22d 70258",
            "subtotal 70258 tax 0 total 70258"
        ],
        "{rule}"
    );
    // One unit over: 1 started block of 1,000 at 500.
    assert_eq!(
        show(&invoice_of(&one_over, 2026, 10).await),
        [
            "base pro 2026-10-10..2026-11-01 22d 70258",
            "overage pro api_calls used 70968 included 70967 over 1 = 500",
            "subtotal 70758 tax 0 total 70758"
        ],
        "{rule}"
    );
}

#[tokio::test]
async fn overage_is_charged_per_started_block() {
    let env = env_at(midnight(2026, 10, 1)).await;
    // A full month of pro: 100,000 calls included, 500 per started block of 1,000.
    let one = subscribed(&env, "pro").await;
    let block = subscribed(&env, "pro").await;
    let block_and_one = subscribed(&env, "pro").await;
    one.usage("api_calls", 100_001).await.unwrap();
    block.usage("api_calls", 101_000).await.unwrap();
    block_and_one.usage("api_calls", 101_001).await.unwrap();
    env.clock().advance_to(midnight(2026, 11, 1)).await.unwrap();
    let rule = "rule: amount = ceil(overage / block) × price";
    let overage = |invoice: StoredInvoice| show(&invoice)[1].clone();
    // 1 over: ceil(1 / 1,000) = 1 block = 500.
    assert_eq!(
        overage(invoice_of(&one, 2026, 10).await),
        "overage pro api_calls used 100001 included 100000 over 1 = 500",
        "{rule}"
    );
    // 1,000 over: exactly 1 block = 500, not 2.
    assert_eq!(
        overage(invoice_of(&block, 2026, 10).await),
        "overage pro api_calls used 101000 included 100000 over 1000 = 500",
        "{rule}"
    );
    // 1,001 over: ceil(1.001) = 2 blocks = 1,000.
    assert_eq!(
        overage(invoice_of(&block_and_one, 2026, 10).await),
        "overage pro api_calls used 101001 included 100000 over 1001 = 1000",
        "{rule}"
    );
}

#[tokio::test]
async fn a_block_of_one_charges_each_unit_over_the_quota() {
    let env = env_with_catalog(midnight(2026, 10, 1), "0").await;
    let at_quota = subscribed(&env, "meter").await;
    let over = subscribed(&env, "meter").await;
    // meter for all of October: 10 sms included, then 20 per unit.
    at_quota.usage("sms", 10).await.unwrap();
    over.usage("sms", 17).await.unwrap();
    env.clock().advance_to(midnight(2026, 11, 1)).await.unwrap();
    let rule = "rule: with a block of 1 every unit over the quota is one block";
    assert_eq!(
        show(&invoice_of(&at_quota, 2026, 10).await),
        [
            "base meter 2026-10-01..2026-11-01 31d 1000",
            "subtotal 1000 tax 0 total 1000"
        ],
        "{rule}: 10 of 10 is no overage"
    );
    // 17 − 10 = 7 units = 7 blocks × 20 = 140; subtotal 1,000 + 140 = 1,140.
    assert_eq!(
        show(&invoice_of(&over, 2026, 10).await),
        [
            "base meter 2026-10-01..2026-11-01 31d 1000",
            "overage meter sms used 17 included 10 over 7 = 140",
            "subtotal 1140 tax 0 total 1140"
        ],
        "{rule}"
    );
}

#[tokio::test]
async fn a_metric_without_an_overage_price_is_never_charged() {
    let env = env_with_catalog(midnight(2026, 10, 1), "0").await;
    let t = subscribed(&env, "meter").await;
    // storage: 50 included and no price; 80 used costs nothing. exports: a price and no quota,
    // so its quota is 0 and 1 unit is 1 started block of 5: 100. Subtotal 1,000 + 100 = 1,100.
    t.usage("storage", 80).await.unwrap();
    t.usage("exports", 1).await.unwrap();
    env.clock().advance_to(midnight(2026, 11, 1)).await.unwrap();
    assert_eq!(
        show(&invoice_of(&t, 2026, 10).await),
        [
            "base meter 2026-10-01..2026-11-01 31d 1000",
            "overage meter exports used 1 included 0 over 1 = 100",
            "subtotal 1100 tax 0 total 1100"
        ],
        "rule: a metric with no overage price is never charged; one with a price and no quota has a quota of 0"
    );
}

#[tokio::test]
async fn tax_is_floored_to_the_currency_minor_unit() {
    let env = env_with_catalog(midnight(2026, 10, 10), "0.1").await;
    let won = subscribed(&env, "pro").await;
    let cents = subscribed(&env, "team-usd").await;
    env.clock().advance_to(midnight(2026, 11, 1)).await.unwrap();
    // KRW, no minor unit: 22 of 31 days, floor(99,000 × 22 / 31) = 70,258; tax
    // floor(7,025.8) = 7,025 (not 7,026); total 77,283, written without decimals.
    assert_eq!(
        show(&invoice_of(&won, 2026, 10).await),
        [
            "base pro 2026-10-10..2026-11-01 22d 70258",
            "subtotal 70258 tax 7025 total 77283"
        ],
        "rule: tax = floor(subtotal × rate) to the whole won"
    );
    // USD, cents: floor(19.99 × 22 / 31) = floor(14.1864…) = 14.18; tax floor(1.418) = 1.41
    // (not 1.42); total 15.59, written with two decimals.
    assert_eq!(
        show(&invoice_of(&cents, 2026, 10).await),
        [
            "base team-usd 2026-10-10..2026-11-01 22d 14.18",
            "subtotal 14.18 tax 1.41 total 15.59"
        ],
        "rule: amounts and tax are floored to the cent"
    );
}

#[tokio::test]
async fn a_zero_total_invoice_is_paid_at_once_and_never_charged() {
    let env = env_with_catalog(midnight(2026, 10, 1), "0").await;
    let free = subscribed(&env, "free").await;
    // tiny costs 1 KRW a month: held all October its total is 1, the least above zero.
    let one_won = subscribed(&env, "tiny").await;
    env.clock()
        .advance_to(midnight(2026, 10, 10))
        .await
        .unwrap();
    // From the 10th it is floor(1 × 22 / 31) = floor(0.709…) = 0: a paid plan, a zero total.
    let floored = subscribed(&env, "tiny").await;
    env.clock().advance_to(midnight(2026, 11, 1)).await.unwrap();
    let status = |i: StoredInvoice| (i.status.to_string(), i.invoice.total);
    for (t, plan) in [(&free, "free"), (&floored, "tiny from the 10th")] {
        assert_eq!(
            status(invoice_of(t, 2026, 10).await),
            ("paid".to_owned(), dec("0")),
            "rule: a zero-total invoice is paid at the close ({plan})"
        );
    }
    assert_eq!(
        status(invoice_of(&one_won, 2026, 10).await),
        ("finalized".to_owned(), dec("1")),
        "rule: an invoice of 1 KRW waits for the charge"
    );
    env.clock().advance_to(midnight(2026, 11, 6)).await.unwrap();
    for t in [&free, &floored] {
        assert!(
            t.timeline().await.unwrap().attempts.is_empty(),
            "rule: a zero-total invoice is never charged"
        );
    }
    let captured: Vec<_> = env.gateway().ledger().iter().map(|c| c.amount).collect();
    assert_eq!(
        captured,
        [dec("1")],
        "rule: the invoice of 1 KRW is charged, and only it"
    );
}

#[tokio::test]
async fn a_day_is_a_calendar_day_in_seoul() {
    let env = env_at(midnight(2026, 10, 9)).await;
    let late = env.build().tenant().create().await.unwrap();
    let midnight_tenant = env.build().tenant().create().await.unwrap();
    let p = env.platform();
    // 23:59 on October 9th in Seoul is 14:59 UTC: still the 9th. 23 of 31 days:
    // floor(99,000 × 23 / 31) = floor(73,451.61…) = 73,451.
    env.clock()
        .advance_to(kst(2026, 10, 9, 23, 59, 0))
        .await
        .unwrap();
    p.subscribe(late.id(), "pro", env.clock().now())
        .await
        .unwrap();
    // 00:00 on October 10th in Seoul is 15:00 UTC on the 9th: already the 10th. 22 of 31 days:
    // floor(99,000 × 22 / 31) = 70,258.
    env.clock()
        .advance_to(midnight(2026, 10, 10))
        .await
        .unwrap();
    p.subscribe(midnight_tenant.id(), "pro", env.clock().now())
        .await
        .unwrap();
    env.clock().advance_to(midnight(2026, 11, 1)).await.unwrap();
    assert_eq!(
        show(&invoice_of(&late, 2026, 10).await)[0],
        "base pro 2026-10-09..2026-11-01 23d 73451",
        "rule: days are calendar days in Asia/Seoul (23:59 is still the 9th)"
    );
    assert_eq!(
        show(&invoice_of(&midnight_tenant, 2026, 10).await)[0],
        "base pro 2026-10-10..2026-11-01 22d 70258",
        "rule: days are calendar days in Asia/Seoul (00:00 is already the 10th)"
    );
}

#[tokio::test]
async fn usage_on_a_change_day_counts_once_against_the_new_plan() {
    let env = env_at(midnight(2026, 10, 1)).await;
    let t = subscribed(&env, "pro").await;
    let day = |d| env.day(crate::support::day(2026, 10, d));
    // The day before the change belongs to pro: pro's quota for 15 days is
    // floor(100,000 × 15 / 31) = floor(48,387.09…) = 48,387, so 48,388 is 1 over: 500.
    t.usage("api_calls", 48_388).on(day(15)).await.unwrap();
    // The change day belongs to business, even for usage reported before the change that day:
    // business's quota for 16 days is floor(1,000,000 × 16 / 31) = floor(516,129.03…) =
    // 516,129, so 516,130 is 1 over: 300; on pro it would be far over.
    t.usage("api_calls", 516_130).on(day(16)).await.unwrap();
    t.change_plan("business").on(day(16)).await.unwrap();
    env.clock().advance_to(midnight(2026, 11, 1)).await.unwrap();
    // pro: floor(99,000 × 15 / 31) = 47,903; business: floor(290,000 × 16 / 31) = 149,677.
    // Subtotal 47,903 + 500 + 149,677 + 300 = 198,380.
    assert_eq!(
        show(&invoice_of(&t, 2026, 10).await),
        [
            "base pro 2026-10-01..2026-10-16 15d 47903",
            "overage pro api_calls used 48388 included 48387 over 1 = 500",
            "base business 2026-10-16..2026-11-01 16d 149677",
            "overage business api_calls used 516130 included 516129 over 1 = 300",
            "subtotal 198380 tax 0 total 198380"
        ],
        "rule: usage on a plan change day counts once, against the new plan"
    );
}

#[tokio::test]
async fn usage_on_the_cancel_day_is_not_billed_and_usage_after_the_cancellation_is_refused() {
    let env = env_at(midnight(2026, 10, 1)).await;
    let t = subscribed(&env, "pro").await;
    let p = env.platform();
    let day = |d| crate::support::day(2026, 10, d);
    // The last day served: 48,388 calls are 1 over the 15-day quota of 48,387: 500.
    t.usage("api_calls", 48_388)
        .on(env.day(day(15)))
        .await
        .unwrap();
    // On the 16th, usage reported in the morning is accepted (the subscription still serves),
    // then the tenant cancels at noon: the cancellation is effective from the 16th.
    env.clock()
        .advance_to(kst(2026, 10, 16, 9, 0, 0))
        .await
        .unwrap();
    p.record_usage(t.id(), "api_calls", 1_000_000, day(16), env.clock().now())
        .await
        .unwrap();
    env.clock()
        .advance_to(kst(2026, 10, 16, 12, 0, 0))
        .await
        .unwrap();
    p.cancel(t.id(), env.clock().now()).await.unwrap();
    // After the cancellation, usage for the cancel day and after it is refused.
    for d in [16, 17] {
        let rule = format!("rule: usage on or after the cancel day is refused (October {d})");
        let usage = p
            .record_usage(t.id(), "api_calls", 5, day(d), env.clock().now())
            .await;
        assert_eq!(refused(usage, &rule), "no_active_subscription", "{rule}");
    }
    env.clock().advance_to(midnight(2026, 11, 1)).await.unwrap();
    // floor(99,000 × 15 / 31) = 47,903, plus 500; the 1,000,000 calls of the 16th count
    // against nobody.
    assert_eq!(
        show(&invoice_of(&t, 2026, 10).await),
        [
            "base pro 2026-10-01..2026-10-16 15d 47903",
            "overage pro api_calls used 48388 included 48387 over 1 = 500",
            "subtotal 48403 tax 0 total 48403"
        ],
        "rule: usage on a cancel day counts against nobody"
    );
}

#[tokio::test]
async fn usage_for_a_closed_month_is_refused_with_period_closed() {
    let env = env_at(midnight(2026, 10, 1)).await;
    let t = subscribed(&env, "pro").await;
    let p = env.platform();
    let (oct_31, nov_1) = (
        crate::support::day(2026, 10, 31),
        crate::support::day(2026, 11, 1),
    );
    // One second before the close October is open: 100,001 calls for the 31st count, 1 over
    // the full month's 100,000: one block, 500.
    env.clock()
        .advance_to(kst(2026, 10, 31, 23, 59, 59))
        .await
        .unwrap();
    p.record_usage(t.id(), "api_calls", 100_001, oct_31, env.clock().now())
        .await
        .unwrap();
    env.clock().advance_to(midnight(2026, 11, 1)).await.unwrap();
    let rule = "rule: usage for a closed month is refused";
    let late = p
        .record_usage(t.id(), "api_calls", 5, oct_31, env.clock().now())
        .await;
    assert_eq!(refused(late, rule), "period_closed", "{rule}");
    p.record_usage(t.id(), "api_calls", 5, nov_1, env.clock().now())
        .await
        .unwrap_or_else(|e| panic!("rule: usage for the open month is accepted, got {e}"));
    assert_eq!(
        show(&invoice_of(&t, 2026, 10).await),
        [
            "base pro 2026-10-01..2026-11-01 31d 99000",
            "overage pro api_calls used 100001 included 100000 over 1 = 500",
            "subtotal 99500 tax 0 total 99500"
        ],
        "rule: usage for the last day recorded before the close is billed"
    );
}

#[tokio::test]
async fn the_plan_changes_at_most_once_per_local_day() {
    let env = env_at(midnight(2026, 10, 1)).await;
    let t = subscribed(&env, "pro").await;
    let p = env.platform();
    let change = |plan: &'static str, at: DateTime<Utc>| {
        let (p, env, id) = (p.clone(), &env, t.id());
        async move {
            env.clock().advance_to(at).await.unwrap();
            p.change_plan(id, plan, at).await
        }
    };
    // 08:00 on October 10th in Seoul is 23:00 UTC on the 9th; 23:59:59 is 14:59:59 UTC on the
    // 10th: two UTC days, one Seoul day.
    change("business", kst(2026, 10, 10, 8, 0, 0))
        .await
        .unwrap();
    match change("pro", kst(2026, 10, 10, 23, 59, 59)).await {
        Err(DomainError::PlanChangeLimit { next_allowed }) => assert_eq!(
            next_allowed,
            midnight(2026, 10, 11),
            "rule: the next change is allowed from 00:00 the next day"
        ),
        other => panic!("rule: a second change the same local day is refused, got {other:?}"),
    }
    change("pro", midnight(2026, 10, 11))
        .await
        .unwrap_or_else(|e| panic!("rule: a change at 00:00 the next day is allowed, got {e}"));
    let again = change("business", kst(2026, 10, 11, 0, 0, 1)).await;
    assert_eq!(
        again.map_err(|e| e.code()).err(),
        Some("plan_change_limit"),
        "rule: the change at 00:00 counts for its own day"
    );
    env.clock().advance_to(midnight(2026, 11, 1)).await.unwrap();
    // pro 9 days: floor(99,000 × 9 / 31) = floor(28,741.93…) = 28,741; business 1 day:
    // floor(290,000 / 31) = 9,354; pro 21 days: floor(99,000 × 21 / 31) = floor(67,064.51…) =
    // 67,064. Subtotal 105,159: the refused changes left no trace.
    assert_eq!(
        show(&invoice_of(&t, 2026, 10).await),
        [
            "base pro 2026-10-01..2026-10-10 9d 28741",
            "base business 2026-10-10..2026-10-11 1d 9354",
            "base pro 2026-10-11..2026-11-01 21d 67064",
            "subtotal 105159 tax 0 total 105159"
        ],
        "rule: a plan may change at most once per day"
    );
}

#[tokio::test]
async fn a_paid_plan_needs_a_card_and_a_free_plan_does_not() {
    let env = env_with_catalog(midnight(2026, 10, 1), "0").await;
    // Another organization's card does not count.
    env.build().org().card(TestCard::Ok).create().await.unwrap();
    let org = env.build().org().without_card().create().await.unwrap();
    let t = env.build().tenant().org(&org).create().await.unwrap();
    let p = env.platform();
    let now = || env.clock().now();
    let code = |r: Result<(), DomainError>| r.map_err(|e| e.code()).err();
    // tiny costs 1 KRW a month, the least a paid plan can cost.
    assert_eq!(
        code(p.subscribe(t.id(), "tiny", now()).await.map(drop)),
        Some("card_required"),
        "rule: subscribing to a paid plan needs a card"
    );
    assert_eq!(
        code(p.subscribe(t.id(), "free", now()).await.map(drop)),
        None,
        "rule: the free plan needs no card"
    );
    env.clock().advance_to(midnight(2026, 10, 2)).await.unwrap();
    assert_eq!(
        code(p.change_plan(t.id(), "tiny", now()).await),
        Some("card_required"),
        "rule: changing to a paid plan needs a card"
    );
    p.register_card(org.id, TestCard::Ok, now()).await.unwrap();
    assert_eq!(
        code(p.change_plan(t.id(), "tiny", now()).await),
        None,
        "rule: with a card the paid plan is accepted"
    );
    // Only an active card counts: one its organization removed (in the card service) does not.
    let removed = env.build().org().card(TestCard::Ok).create().await.unwrap();
    sqlx::query("update cards set status = 'removed', removed_at = $2 where organization_id = $1")
        .bind(removed.id.0)
        .bind(now())
        .execute(env.pool())
        .await
        .unwrap();
    let t = env.build().tenant().org(&removed).create().await.unwrap();
    assert_eq!(
        code(p.subscribe(t.id(), "tiny", now()).await.map(drop)),
        Some("card_required"),
        "rule: only an active card counts for a paid plan; a removed one does not"
    );
    p.subscribe(t.id(), "free", now()).await.unwrap();
    env.clock().advance_to(midnight(2026, 10, 3)).await.unwrap();
    assert_eq!(
        code(p.change_plan(t.id(), "tiny", now()).await),
        Some("card_required"),
        "rule: only an active card counts for a paid plan; a removed one does not"
    );
}

#[tokio::test]
async fn a_plan_change_across_currencies_is_refused_and_one_within_a_currency_is_allowed() {
    let env = env_with_catalog(midnight(2026, 10, 1), "0").await;
    let won = subscribed(&env, "pro").await;
    let cents = subscribed(&env, "team-usd").await;
    let p = env.platform();
    env.clock()
        .advance_to(midnight(2026, 10, 10))
        .await
        .unwrap();
    let now = env.clock().now();
    p.change_plan(won.id(), "business", now)
        .await
        .unwrap_or_else(|e| panic!("rule: a change within the currency is allowed, got {e}"));
    let before = crate::support::fingerprint(&env).await;
    // Refused before plan_change_limit (won changed today): the currency is the plan's own.
    match p.change_plan(won.id(), "team-usd", now).await {
        Err(DomainError::CurrencyMismatch {
            plan,
            plan_currency,
            subscription_currency,
        }) => assert_eq!(
            (plan.as_str(), plan_currency, subscription_currency),
            ("team-usd", Currency::Usd, Currency::Krw)
        ),
        other => panic!("rule: a change from KRW to a USD plan is refused, got {other:?}"),
    }
    let usd_contract = ContractTerms {
        plan: Some("team-usd".into()),
        ..ContractTerms::default()
    };
    let rule = "rule: a subscription keeps its currency";
    assert_eq!(
        refused(p.apply_contract(won.id(), &usd_contract, now).await, rule),
        "currency_mismatch",
        "{rule}: a contract over a USD plan is refused to a KRW subscription"
    );
    assert_eq!(
        refused(p.change_plan(cents.id(), "pro", now).await, rule),
        "currency_mismatch",
        "{rule}: a change from USD to a KRW plan is refused"
    );
    assert_eq!(
        crate::support::fingerprint(&env).await,
        before,
        "{rule}: a refusal writes nothing"
    );
    let contract = cents
        .contract()
        .base_fee("10.00")
        .await
        .unwrap_or_else(|e| panic!("{rule}: a contract over its own USD plan is allowed, got {e}"));
    cents
        .cancel()
        .on(env.day(crate::support::day(2026, 10, 20)))
        .await
        .unwrap();
    p.subscribe(cents.id(), "pro", env.clock().now())
        .await
        .unwrap_or_else(|e| panic!("{rule}: a new subscription may take another, got {e}"));
    env.clock().advance_to(midnight(2026, 11, 1)).await.unwrap();
    // pro 9 days: floor(99,000 × 9 / 31) = floor(28,741.93…) = 28,741; business 22 days:
    // floor(290,000 × 22 / 31) = floor(205,806.45…) = 205,806.
    assert_eq!(
        show(&invoice_of(&won, 2026, 10).await),
        [
            "base pro 2026-10-01..2026-10-10 9d 28741",
            "base business 2026-10-10..2026-11-01 22d 205806",
            "subtotal 234547 tax 0 total 234547"
        ],
        "{rule}: the refused moves left no period"
    );
    // The USD subscription: team-usd 9 days, floor(19.99 × 9 / 31) = floor(5.8035…) = 5.80; the
    // contract 10 days, floor(10.00 × 10 / 31) = floor(3.2258…) = 3.22. The new KRW one: pro 12
    // days, floor(99,000 × 12 / 31) = floor(38,322.58…) = 38,322. Two invoices, one currency each.
    let invoices: Vec<(Currency, Vec<String>)> = p
        .invoices(cents.id())
        .await
        .unwrap()
        .iter()
        .map(|i| (i.invoice.currency, show(i)))
        .collect();
    assert_eq!(
        invoices,
        [
            (
                Currency::Usd,
                vec![
                    "base team-usd 2026-10-01..2026-10-10 9d 5.80".to_owned(),
                    format!("base {} 2026-10-10..2026-10-20 10d 3.22", contract.plan),
                    "subtotal 9.02 tax 0.00 total 9.02".to_owned(),
                ]
            ),
            (
                Currency::Krw,
                vec![
                    "base pro 2026-10-20..2026-11-01 12d 38322".to_owned(),
                    "subtotal 38322 tax 0 total 38322".to_owned(),
                ]
            ),
        ],
        "{rule}: each subscription is billed in its own currency"
    );
}
