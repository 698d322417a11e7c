//! Table tests with hand-computed invoices, and properties of [`invoice`] over random input.

use std::collections::BTreeMap;

use chrono::{Days, NaiveDate};
use proptest::prelude::*;
use rust_decimal::Decimal;

use super::{Invoice, InvoiceInput, LineKind, PlanPeriod, Usage, invoice};
use crate::model::{Currency, Month, Overage, Terms};

// ---------------------------------------------------------------------------------------------
// Builders
// ---------------------------------------------------------------------------------------------

fn dec(s: &str) -> Decimal {
    s.parse()
        .unwrap_or_else(|_| panic!("{s:?} is not a decimal"))
}

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap_or_else(|_| panic!("{s:?} is not a date"))
}

fn month(s: &str) -> Month {
    s.parse().unwrap()
}

/// Terms: base fee, included units per metric, and `(metric, block, price)` overage prices.
fn terms(base_fee: &str, included: &[(&str, u64)], overage: &[(&str, u64, &str)]) -> Terms {
    Terms {
        base_fee: dec(base_fee),
        included: included.iter().map(|&(m, q)| (m.to_string(), q)).collect(),
        overage: overage
            .iter()
            .map(|&(m, block, price)| {
                (
                    m.to_string(),
                    Overage {
                        block,
                        price: dec(price),
                    },
                )
            })
            .collect(),
    }
}

fn fee(base_fee: &str) -> Terms {
    terms(base_fee, &[], &[])
}

/// The period `[from, until)` on `plan`; an `until` of `""` leaves it open.
fn period(plan: &str, from: &str, until: &str, terms: Terms) -> PlanPeriod {
    PlanPeriod {
        plan: plan.to_string(),
        from: day(from),
        until: (!until.is_empty()).then(|| day(until)),
        terms,
    }
}

fn usage(on: &str, metric: &str, quantity: u64) -> Usage {
    Usage {
        day: day(on),
        metric: metric.to_string(),
        quantity,
    }
}

fn input(
    m: &str,
    currency: Currency,
    tax_rate: &str,
    periods: Vec<PlanPeriod>,
    usage: Vec<Usage>,
) -> InvoiceInput {
    InvoiceInput {
        month: month(m),
        currency,
        tax_rate: dec(tax_rate),
        periods,
        usage,
    }
}

/// `pro`: 99,000 KRW, 10,000 api_calls included, 5,000 KRW per started 1,000 calls.
fn pro() -> Terms {
    terms(
        "99000",
        &[("api_calls", 10_000)],
        &[("api_calls", 1_000, "5000")],
    )
}

/// `business`: 290,000 KRW, 100,000 api_calls included, 3,000 KRW per started 1,000 calls.
fn business() -> Terms {
    terms(
        "290000",
        &[("api_calls", 100_000)],
        &[("api_calls", 1_000, "3000")],
    )
}

// ---------------------------------------------------------------------------------------------
// Table
// ---------------------------------------------------------------------------------------------

/// One hand-computed invoice. Amounts are compared as text, so their number of decimals counts:
/// a USD amount must read `9.99` or `20.00`, a KRW one `70258`.
struct Case {
    name: &'static str,
    input: InvoiceInput,
    /// Each line as `"base pro"` or `"overage pro api_calls"`, with its amount, in order.
    lines: &'static [(&'static str, &'static str)],
    subtotal: &'static str,
    tax: &'static str,
    total: &'static str,
}

fn describe(inv: &Invoice) -> Vec<(String, String)> {
    inv.lines
        .iter()
        .map(|l| {
            let what = match l.kind {
                LineKind::Base => format!("base {}", l.plan),
                LineKind::Overage => {
                    format!("overage {} {}", l.plan, l.metric.as_deref().unwrap_or("?"))
                }
            };
            (what, l.amount.to_string())
        })
        .collect()
}

/// Compares `invoice(input)` with the expected lines and totals; `Err` describes the difference.
fn check(
    input: &InvoiceInput,
    lines: &[(&str, &str)],
    subtotal: &str,
    tax: &str,
    total: &str,
) -> Result<(), String> {
    let inv = invoice(input);
    let got = (
        describe(&inv),
        inv.subtotal.to_string(),
        inv.tax.to_string(),
        inv.total.to_string(),
    );
    let want = (
        lines
            .iter()
            .map(|&(w, a)| (w.to_string(), a.to_string()))
            .collect::<Vec<_>>(),
        subtotal.to_string(),
        tax.to_string(),
        total.to_string(),
    );
    if got == want {
        Ok(())
    } else {
        Err(format!("expected {want:?}\n     got {got:?}"))
    }
}

fn cases() -> Vec<Case> {
    use Currency::{Krw, Usd};
    vec![
        Case {
            // 22 days (Oct 10..=31) of 31: 99000 × 22 / 31 = 70258.06
            name: "subscribed on Oct 10",
            input: input(
                "2025-10",
                Krw,
                "0",
                vec![period("pro", "2025-10-10", "", fee("99000"))],
                vec![],
            ),
            lines: &[("base pro", "70258")],
            subtotal: "70258",
            tax: "0",
            total: "70258",
        },
        Case {
            // pro 10 days: 990000 / 31 = 31935.48; business 12 days: 3480000 / 31 = 112258.06
            name: "upgrade on the 20th",
            input: input(
                "2025-10",
                Krw,
                "0",
                vec![
                    period("business", "2025-10-20", "", fee("290000")),
                    period("pro", "2025-10-10", "2025-10-20", fee("99000")),
                ],
                vec![],
            ),
            lines: &[("base pro", "31935"), ("base business", "112258")],
            subtotal: "144193",
            tax: "0",
            total: "144193",
        },
        Case {
            // As above. pro quota: floor(10000 × 10 / 31) = 3225; usage Oct 10 + Oct 19 = 5000
            // → 1775 over → 2 blocks × 5000. The change day's 40000 calls count for business:
            // quota floor(100000 × 12 / 31) = 38709; 40000 + 1000 → 2291 over → 3 blocks × 3000.
            name: "upgrade on the 20th with usage on both sides",
            input: input(
                "2025-10",
                Krw,
                "0.1",
                vec![
                    period("pro", "2025-10-10", "2025-10-20", pro()),
                    period("business", "2025-10-20", "", business()),
                ],
                vec![
                    usage("2025-10-10", "api_calls", 2_000),
                    usage("2025-10-19", "api_calls", 3_000),
                    usage("2025-10-20", "api_calls", 40_000),
                    usage("2025-10-31", "api_calls", 1_000),
                ],
            ),
            lines: &[
                ("base pro", "31935"),
                ("overage pro api_calls", "10000"),
                ("base business", "112258"),
                ("overage business api_calls", "9000"),
            ],
            // 31935 + 10000 + 112258 + 9000 = 163193; tax floor(16319.3)
            subtotal: "163193",
            tax: "16319",
            total: "179512",
        },
        Case {
            // 2028-02 has 29 days; Feb 15..=29 is 15 days: 1485000 / 29 = 51206.89
            name: "leap February, from the 15th",
            input: input(
                "2028-02",
                Krw,
                "0",
                vec![period("pro", "2028-02-15", "", fee("99000"))],
                vec![],
            ),
            lines: &[("base pro", "51206")],
            subtotal: "51206",
            tax: "0",
            total: "51206",
        },
        Case {
            // The whole of a leap February is the whole fee.
            name: "leap February, whole month",
            input: input(
                "2028-02",
                Krw,
                "0",
                vec![period("pro", "2027-12-05", "", fee("99000"))],
                vec![],
            ),
            lines: &[("base pro", "99000")],
            subtotal: "99000",
            tax: "0",
            total: "99000",
        },
        Case {
            // 2027-02 has 28 days; Feb 15..=28 is 14 days: 99000 × 14 / 28 = 49500 exactly
            name: "non-leap February, from the 15th",
            input: input(
                "2027-02",
                Krw,
                "0",
                vec![period("pro", "2027-02-15", "", fee("99000"))],
                vec![],
            ),
            lines: &[("base pro", "49500")],
            subtotal: "49500",
            tax: "0",
            total: "49500",
        },
        Case {
            // Cancelled on Mar 1: all 28 days of February 2027.
            name: "non-leap February, cancelled on Mar 1",
            input: input(
                "2027-02",
                Krw,
                "0",
                vec![period("pro", "2027-01-20", "2027-03-01", fee("99000"))],
                vec![],
            ),
            lines: &[("base pro", "99000")],
            subtotal: "99000",
            tax: "0",
            total: "99000",
        },
        Case {
            // pro Oct 1..=30, 30 days: 2970000 / 31 = 95806.45;
            // business Oct 31 only, 1 day: 290000 / 31 = 9354.83
            name: "change on the last day of the month",
            input: input(
                "2025-10",
                Krw,
                "0",
                vec![
                    period("pro", "2025-09-10", "2025-10-31", fee("99000")),
                    period("business", "2025-10-31", "", fee("290000")),
                ],
                vec![],
            ),
            lines: &[("base pro", "95806"), ("base business", "9354")],
            subtotal: "105160",
            tax: "0",
            total: "105160",
        },
        Case {
            // The old period has zero days in October: no line, not a line of 0.
            name: "change on the 1st",
            input: input(
                "2025-10",
                Krw,
                "0",
                vec![
                    period("pro", "2025-09-10", "2025-10-01", fee("99000")),
                    period("business", "2025-10-01", "", fee("290000")),
                ],
                vec![],
            ),
            lines: &[("base business", "290000")],
            subtotal: "290000",
            tax: "0",
            total: "290000",
        },
        Case {
            // Quota floor(10000 × 22 / 31) = floor(7096.77) = 7096 and 7096 used: no overage.
            name: "usage exactly at the prorated quota",
            input: input(
                "2025-10",
                Krw,
                "0",
                vec![period("pro", "2025-10-10", "", pro())],
                vec![
                    usage("2025-10-10", "api_calls", 7_000),
                    usage("2025-10-31", "api_calls", 96),
                ],
            ),
            lines: &[("base pro", "70258")],
            subtotal: "70258",
            tax: "0",
            total: "70258",
        },
        Case {
            // 7097 used against 7096: one unit over, charged a whole block.
            name: "one unit over the prorated quota",
            input: input(
                "2025-10",
                Krw,
                "0",
                vec![period("pro", "2025-10-10", "", pro())],
                vec![usage("2025-10-11", "api_calls", 7_097)],
            ),
            lines: &[("base pro", "70258"), ("overage pro api_calls", "5000")],
            subtotal: "75258",
            tax: "0",
            total: "75258",
        },
        Case {
            // Whole month, quota 10000; 11000 used: exactly one block.
            name: "overage of exactly one block",
            input: input(
                "2025-10",
                Krw,
                "0",
                vec![period("pro", "2025-10-01", "", pro())],
                vec![usage("2025-10-05", "api_calls", 11_000)],
            ),
            lines: &[("base pro", "99000"), ("overage pro api_calls", "5000")],
            subtotal: "104000",
            tax: "0",
            total: "104000",
        },
        Case {
            // Whole month, quota 10000; 11001 used: one unit over a 1000-unit block, 2 blocks.
            name: "one unit over a 1,000-unit block",
            input: input(
                "2025-10",
                Krw,
                "0",
                vec![period("pro", "2025-10-01", "", pro())],
                vec![
                    usage("2025-10-05", "api_calls", 10_000),
                    usage("2025-10-06", "api_calls", 1_001),
                ],
            ),
            lines: &[("base pro", "99000"), ("overage pro api_calls", "10000")],
            subtotal: "109000",
            tax: "0",
            total: "109000",
        },
        Case {
            // Quota 1000 for 22 of 31 days: floor(709.67) = 709, not 710. 710 used → 1 over →
            // one 100-unit block at 300.
            name: "partial month quota is floored",
            input: input(
                "2025-10",
                Krw,
                "0",
                vec![period(
                    "mini",
                    "2025-10-10",
                    "",
                    terms(
                        "10000",
                        &[("api_calls", 1_000)],
                        &[("api_calls", 100, "300")],
                    ),
                )],
                vec![usage("2025-10-20", "api_calls", 710)],
            ),
            // 10000 × 22 / 31 = 7096.77
            lines: &[("base mini", "7096"), ("overage mini api_calls", "300")],
            subtotal: "7396",
            tax: "0",
            total: "7396",
        },
        Case {
            // November 2025 has 30 days; Nov 16..=30 is 15: 19.99 × 15 / 30 = 9.995 → 9.99
            name: "USD plan with cents",
            input: input(
                "2025-11",
                Usd,
                "0",
                vec![period("starter", "2025-11-16", "", fee("19.99"))],
                vec![],
            ),
            lines: &[("base starter", "9.99")],
            subtotal: "9.99",
            tax: "0.00",
            total: "9.99",
        },
        Case {
            // A whole USD fee still reads with cents.
            name: "USD whole fee written with cents",
            input: input(
                "2025-11",
                Usd,
                "0",
                vec![period("starter", "2025-10-01", "", fee("20"))],
                vec![],
            ),
            lines: &[("base starter", "20.00")],
            subtotal: "20.00",
            tax: "0.00",
            total: "20.00",
        },
        Case {
            // 70258 × 0.1 = 7025.8 → 7025
            name: "KRW tax of 10% is floored",
            input: input(
                "2025-10",
                Krw,
                "0.1",
                vec![period("pro", "2025-10-10", "", fee("99000"))],
                vec![],
            ),
            lines: &[("base pro", "70258")],
            subtotal: "70258",
            tax: "7025",
            total: "77283",
        },
        Case {
            // 9.99 × 0.1 = 0.999 → 0.99
            name: "USD tax of 10% is floored to the cent",
            input: input(
                "2025-11",
                Usd,
                "0.1",
                vec![period("starter", "2025-11-16", "", fee("19.99"))],
                vec![],
            ),
            lines: &[("base starter", "9.99")],
            subtotal: "9.99",
            tax: "0.99",
            total: "10.98",
        },
        Case {
            // 9.99 × 0.0875 = 0.874125 → 0.87
            name: "USD tax of 8.75% is floored to the cent",
            input: input(
                "2025-11",
                Usd,
                "0.0875",
                vec![period("starter", "2025-11-16", "", fee("19.99"))],
                vec![],
            ),
            lines: &[("base starter", "9.99")],
            subtotal: "9.99",
            tax: "0.87",
            total: "10.86",
        },
        Case {
            // Whole month: 49 → 49.00; quota 1000 gb_hours, 1250 used → 250 over → 3 blocks of 100
            // at 0.35 = 1.05. Subtotal 50.05; tax 5.005 → 5.00.
            name: "USD overage price with cents",
            input: input(
                "2025-11",
                Usd,
                "0.1",
                vec![period(
                    "team",
                    "2025-11-01",
                    "",
                    terms("49", &[("gb_hours", 1_000)], &[("gb_hours", 100, "0.35")]),
                )],
                vec![usage("2025-11-30", "gb_hours", 1_250)],
            ),
            lines: &[("base team", "49.00"), ("overage team gb_hours", "1.05")],
            subtotal: "50.05",
            tax: "5.00",
            total: "55.05",
        },
        Case {
            // storage has a quota but no overage price: never charged, whatever the usage.
            name: "metric with a quota but no overage price",
            input: input(
                "2025-10",
                Krw,
                "0",
                vec![period(
                    "pro",
                    "2025-10-01",
                    "",
                    terms(
                        "99000",
                        &[("api_calls", 10_000), ("storage", 50)],
                        &[("api_calls", 1_000, "5000")],
                    ),
                )],
                vec![
                    usage("2025-10-03", "storage", 5_000),
                    usage("2025-10-03", "unknown_metric", 5_000),
                ],
            ),
            lines: &[("base pro", "99000")],
            subtotal: "99000",
            tax: "0",
            total: "99000",
        },
        Case {
            // Quota 0; usage on Sep 30 and Nov 1 is another month's; 1 call on Oct 31 → 1 block.
            name: "usage outside the month is ignored",
            input: input(
                "2025-10",
                Krw,
                "0",
                vec![period(
                    "payg",
                    "2025-01-01",
                    "",
                    terms("0", &[], &[("api_calls", 1_000, "5000")]),
                )],
                vec![
                    usage("2025-09-30", "api_calls", 100_000),
                    usage("2025-11-01", "api_calls", 100_000),
                    usage("2025-10-31", "api_calls", 1),
                ],
            ),
            lines: &[("base payg", "0"), ("overage payg api_calls", "5000")],
            subtotal: "5000",
            tax: "0",
            total: "5000",
        },
        Case {
            // Cancelled on Oct 15: Oct 1..=14, 14 days: 1386000 / 31 = 44709.67. Quota
            // floor(10000 × 14 / 31) = 4516; 4517 used on Oct 14 → 1 block; the cancel day's
            // usage is not counted.
            name: "cancelled period ends before the cancel day",
            input: input(
                "2025-10",
                Krw,
                "0",
                vec![period("pro", "2025-08-01", "2025-10-15", pro())],
                vec![
                    usage("2025-10-14", "api_calls", 4_517),
                    usage("2025-10-15", "api_calls", 1_000_000),
                ],
            ),
            lines: &[("base pro", "44709"), ("overage pro api_calls", "5000")],
            subtotal: "49709",
            tax: "0",
            total: "49709",
        },
        Case {
            // Cancelled in September: nothing to bill in October.
            name: "cancelled before the month",
            input: input(
                "2025-10",
                Krw,
                "0.1",
                vec![period("pro", "2025-08-01", "2025-09-15", pro())],
                vec![usage("2025-10-02", "api_calls", 50_000)],
            ),
            lines: &[],
            subtotal: "0",
            tax: "0",
            total: "0",
        },
        Case {
            // Year end: Dec 20 → Jan 10 period billed in January: 9 days of 31 (Jan 1..=9):
            // 99000 × 9 / 31 = 28741.93
            name: "period across the year end, January part",
            input: input(
                "2026-01",
                Krw,
                "0",
                vec![period("pro", "2025-12-20", "2026-01-10", fee("99000"))],
                vec![],
            ),
            lines: &[("base pro", "28741")],
            subtotal: "28741",
            tax: "0",
            total: "28741",
        },
        Case {
            // ... and its December part: Dec 20..=31, 12 days: 1188000 / 31 = 38322.58
            name: "period across the year end, December part",
            input: input(
                "2025-12",
                Krw,
                "0",
                vec![period("pro", "2025-12-20", "2026-01-10", fee("99000"))],
                vec![],
            ),
            lines: &[("base pro", "38322")],
            subtotal: "38322",
            tax: "0",
            total: "38322",
        },
    ]
}

#[test]
fn hand_computed_invoices() {
    let cases = cases();
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|c| {
            check(&c.input, c.lines, c.subtotal, c.tax, c.total)
                .err()
                .map(|e| format!("{}:\n     {e}", c.name))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn case_names_are_unique() {
    let cases = cases();
    let mut names: Vec<_> = cases.iter().map(|c| c.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), cases.len());
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

const METRICS: [&str; 3] = ["api_calls", "storage", "seats"];

fn arb_currency() -> impl Strategy<Value = Currency> {
    prop_oneof![Just(Currency::Krw), Just(Currency::Usd)]
}

/// Any month from 1999 to 2101, with extra weight on the year end and on February.
fn arb_month() -> impl Strategy<Value = Month> {
    let year = 1999i32..=2101;
    prop_oneof![
        (year.clone(), 1u32..=12),
        (year.clone(), Just(12u32)),
        (year.clone(), Just(1u32)),
        (year, Just(2u32)),
    ]
    .prop_map(|(y, m)| Month::new(y, m).expect("valid month"))
}

/// An amount of `currency` below `max_minor` minor units, written with 0 up to the currency's
/// decimals (`20`, `19.9`, `19.99` in USD).
fn arb_amount(currency: Currency, max_minor: i64) -> impl Strategy<Value = Decimal> {
    let minor = currency.minor_units();
    (0..=max_minor, 0..=minor).prop_map(move |(units, scale)| {
        // Drop the digits below `scale` so the amount is exact at that scale.
        let drop = 10i64.pow(minor - scale);
        Decimal::new(units / drop, scale)
    })
}

fn arb_terms(currency: Currency) -> impl Strategy<Value = Terms> {
    let metric = (
        0..METRICS.len(),
        proptest::option::of(0u64..=200_000),
        proptest::option::of((1u64..=10_000, arb_amount(currency, 1_000_000))),
    );
    (
        arb_amount(currency, 100_000_000),
        proptest::collection::vec(metric, 0..=3),
    )
        .prop_map(|(base_fee, metrics)| {
            let mut included = BTreeMap::new();
            let mut overage = BTreeMap::new();
            for (i, quota, price) in metrics {
                if let Some(q) = quota {
                    included.insert(METRICS[i].to_string(), q);
                }
                if let Some((block, price)) = price {
                    overage.insert(METRICS[i].to_string(), Overage { block, price });
                }
            }
            Terms {
                base_fee,
                included,
                overage,
            }
        })
}

fn arb_tax_rate() -> impl Strategy<Value = Decimal> {
    // 0% to 30%, with up to four decimals (8.75% is 0.0875).
    (0i64..=3_000).prop_map(|n| Decimal::new(n, 4))
}

/// The day `offset` days after the first day of `month` (negative: before it).
fn nth(month: Month, offset: i64) -> NaiveDate {
    let first = month.first_day();
    if offset >= 0 {
        first + Days::new(offset as u64)
    } else {
        first - Days::new(offset.unsigned_abs())
    }
}

/// Raw usage: day offset from the month's first day (a few days either side), metric, units.
fn arb_usage() -> impl Strategy<Value = Vec<(i64, usize, u64)>> {
    proptest::collection::vec((-5i64..36, 0..METRICS.len(), 1u64..=50_000), 0..=12)
}

fn build_usage(month: Month, raw: &[(i64, usize, u64)]) -> Vec<Usage> {
    raw.iter()
        .map(|&(offset, metric, quantity)| Usage {
            day: nth(month, offset),
            metric: METRICS[metric].to_string(),
            quantity,
        })
        .collect()
}

/// A subscription history around `month`: it starts up to 40 days before the month (or
/// within it), changes plan on some days of the month (possibly the 1st or the last day, possibly
/// twice on one day, which leaves a zero-day period), and is open or cancelled.
#[derive(Debug, Clone)]
struct History {
    month: Month,
    currency: Currency,
    tax_rate: Decimal,
    periods: Vec<PlanPeriod>,
    usage: Vec<Usage>,
}

impl History {
    fn input(&self) -> InvoiceInput {
        InvoiceInput {
            month: self.month,
            currency: self.currency,
            tax_rate: self.tax_rate,
            periods: self.periods.clone(),
            usage: self.usage.clone(),
        }
    }
}

fn arb_history() -> impl Strategy<Value = History> {
    (arb_month(), arb_currency()).prop_flat_map(|(month, currency)| {
        let days = month.days() as i64;
        (
            -40i64..days,
            proptest::collection::vec(0i64..days, 0..=3),
            proptest::option::of(0i64..days + 40),
            proptest::collection::vec(arb_terms(currency), 4),
            arb_tax_rate(),
            arb_usage(),
        )
            .prop_map(
                move |(start, mut changes, end, plans, tax_rate, raw_usage)| {
                    changes.retain(|&c| c > start);
                    changes.sort_unstable();
                    if let Some(end) = end {
                        changes.retain(|&c| c < end.max(start + 1));
                    }
                    let mut bounds = vec![start];
                    bounds.extend(changes);
                    let periods = bounds
                        .iter()
                        .enumerate()
                        .map(|(i, &from)| {
                            let until = match bounds.get(i + 1) {
                                Some(&next) => Some(next),
                                None => end.map(|e| e.max(from + 1)),
                            };
                            PlanPeriod {
                                plan: format!("plan{i}"),
                                from: nth(month, from),
                                until: until.map(|u| nth(month, u)),
                                terms: plans[i].clone(),
                            }
                        })
                        .collect();
                    History {
                        month,
                        currency,
                        tax_rate,
                        periods,
                        usage: build_usage(month, &raw_usage),
                    }
                },
            )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// (a) total = subtotal + tax, and subtotal = the sum of the lines.
    #[test]
    fn totals_add_up(h in arb_history()) {
        let inv = invoice(&h.input());
        let sum: Decimal = inv.lines.iter().map(|l| l.amount).sum();
        prop_assert_eq!(inv.subtotal, sum);
        prop_assert_eq!(inv.total, inv.subtotal + inv.tax);
        prop_assert_eq!(inv.tax, h.currency.floor(inv.subtotal * h.tax_rate));
        prop_assert!(inv.tax >= Decimal::ZERO && inv.tax <= inv.subtotal);
    }

    /// (b) A plan held the whole month is billed exactly its base fee.
    #[test]
    fn whole_month_is_the_whole_fee(
        month in arb_month(),
        (currency, terms) in arb_currency().prop_flat_map(|c| (Just(c), arb_terms(c))),
        before in 0u64..=400,
        after in proptest::option::of(0u64..=400),
        raw_usage in arb_usage(),
    ) {
        let input = InvoiceInput {
            month,
            currency,
            tax_rate: Decimal::ZERO,
            periods: vec![PlanPeriod {
                plan: "p".into(),
                from: month.first_day() - Days::new(before),
                until: after.map(|a| month.end() + Days::new(a)),
                terms: terms.clone(),
            }],
            usage: build_usage(month, &raw_usage),
        };
        let inv = invoice(&input);
        let base: Vec<_> = inv.lines.iter().filter(|l| l.kind == LineKind::Base).collect();
        prop_assert_eq!(base.len(), 1);
        prop_assert_eq!(base[0].days, month.days());
        prop_assert_eq!(base[0].amount, terms.base_fee);
    }

    /// (c) Splitting the month into consecutive periods of the same plan loses at most one minor
    /// unit per period to flooring, and never bills more than the fee.
    #[test]
    fn split_month_loses_at_most_a_minor_unit_per_period(
        month in arb_month(),
        (currency, terms) in arb_currency().prop_flat_map(|c| (Just(c), arb_terms(c))),
        cuts in proptest::collection::vec(0u32..=31, 0..=6),
        before in 0u64..=60,
        open in any::<bool>(),
    ) {
        let days = month.days();
        let mut cuts: Vec<u32> = cuts.into_iter().map(|c| c % days).filter(|&c| c > 0).collect();
        cuts.sort_unstable();
        let mut bounds = vec![month.first_day() - Days::new(before)];
        bounds.extend(cuts.iter().map(|&c| nth(month, i64::from(c))));
        let periods: Vec<PlanPeriod> = (0..bounds.len())
            .map(|i| PlanPeriod {
                plan: "same".into(),
                from: bounds[i],
                until: match bounds.get(i + 1) {
                    Some(&next) => Some(next),
                    None if open => None,
                    None => Some(month.end()),
                },
                terms: terms.clone(),
            })
            .collect();
        let n = periods.len();
        let inv = invoice(&InvoiceInput {
            month,
            currency,
            tax_rate: Decimal::ZERO,
            periods,
            usage: vec![],
        });
        let billed_days: u32 = inv.lines.iter().map(|l| l.days).sum();
        prop_assert_eq!(billed_days, days);
        let sum: Decimal = inv.lines.iter().map(|l| l.amount).sum();
        let unit = Decimal::new(1, currency.minor_units());
        prop_assert!(sum <= terms.base_fee, "{} > {}", sum, terms.base_fee);
        prop_assert!(
            sum >= terms.base_fee - Decimal::from(n) * unit,
            "{} < {} - {} × {}", sum, terms.base_fee, n, unit
        );
    }

    /// (d) Every amount has exactly the currency's number of decimals.
    #[test]
    fn amounts_have_the_currency_decimals(h in arb_history()) {
        let inv = invoice(&h.input());
        let minor = h.currency.minor_units();
        for l in &inv.lines {
            prop_assert_eq!(l.amount.scale(), minor, "line {:?}", l);
        }
        prop_assert_eq!(inv.subtotal.scale(), minor);
        prop_assert_eq!(inv.tax.scale(), minor);
        prop_assert_eq!(inv.total.scale(), minor);
    }

    /// (e) More usage never lowers the total.
    #[test]
    fn more_usage_never_lowers_the_total(
        h in arb_history(),
        extra in proptest::collection::vec((-5i64..36, 0..METRICS.len(), 1u64..=50_000), 1..=4),
    ) {
        let before = invoice(&h.input());
        let mut more = h.input();
        more.usage.extend(build_usage(h.month, &extra));
        let after = invoice(&more);
        prop_assert!(after.total >= before.total, "{} < {}", after.total, before.total);
        prop_assert!(after.subtotal >= before.subtotal);
    }

    /// Lines are in period order, each within the month, with a positive number of days.
    #[test]
    fn lines_lie_within_the_month(h in arb_history()) {
        let inv = invoice(&h.input());
        for l in &inv.lines {
            prop_assert!(h.month.first_day() <= l.from && l.until <= h.month.end());
            prop_assert!(l.days > 0);
            prop_assert_eq!(i64::from(l.days), (l.until - l.from).num_days());
        }
        prop_assert!(inv.lines.windows(2).all(|w| w[0].from <= w[1].from));
    }
}

/// A subscription whose periods have no day in the month has no service there (the close then
/// writes no invoice); one day of service is enough to have it, even on a free plan.
#[test]
fn service_in_a_month_needs_at_least_one_day_of_a_period() {
    let ended = invoice(&input(
        "2026-10",
        Currency::Krw,
        "0",
        vec![period("pro", "2026-09-01", "2026-10-01", pro())],
        vec![usage("2026-10-05", "api_calls", 50_000)],
    ));
    assert!(!ended.has_service(), "{ended:?}");
    assert!(ended.lines.is_empty());
    let last_day = invoice(&input(
        "2026-10",
        Currency::Krw,
        "0",
        vec![period("free", "2026-10-31", "", fee("0"))],
        vec![],
    ));
    assert!(last_day.has_service(), "{last_day:?}");
    assert_eq!(last_day.lines[0].days, 1);
}
