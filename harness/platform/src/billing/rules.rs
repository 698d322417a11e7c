//! The billing rules of the platform, in words, with worked examples.
//!
//! This page is the contract of the monthly invoice, written for QA and backend engineers.
//! [`invoice`](super::invoice) implements it as a pure function: given one subscription's plan
//! periods and usage for one month, it returns the lines, the subtotal, the tax and the total.
//! Every example below is a doctest, so the numbers here are checked on every `cargo test`.
//!
//! # The rules
//!
//! ## 1. Days
//!
//! Billing counts whole **calendar days in the catalog's time zone**, `Asia/Seoul` unless the
//! catalog says otherwise. A timestamp is turned into a day in that zone *before* it reaches the
//! invoice: 2025-10-31 16:00 UTC is 2025-11-01 01:00 in Seoul, so usage at that instant belongs
//! to November. [`invoice`](super::invoice) only ever sees such days ([`NaiveDate`]).
//!
//! The billing period is one calendar month, with 28, 29, 30 or 31 days (`days_in_month`).
//!
//! ## 2. Plan periods
//!
//! A subscription is a sequence of plan periods. A period covers the days **`[from, until)`**:
//!
//! - the day it starts (subscription or plan change) **is** part of it;
//! - the day it ends (plan change or cancellation) **is not**: that day belongs to the next
//!   period, or, for a cancellation, to nobody. A cancellation is effective from its day, so the
//!   cancel day is not billed;
//! - an open period (`until = None`) runs past the end of the month.
//!
//! Only the part of a period inside the billed month counts: `days` is the number of days of
//! `[from, until)` that fall in the month. A period with **zero days** in the month (for
//! instance the old plan of a change made on the 1st) gets **no line at all**, not a line of 0.
//!
//! ## 3. Money
//!
//! | currency | minor unit | amounts are written as |
//! | --- | --- | --- |
//! | KRW | none | `70258` |
//! | USD | cent (2 decimals) | `9.99`, `20.00` |
//!
//! Every amount on an invoice (each line, the subtotal, the tax and the total) carries
//! exactly the currency's number of decimals. Whenever a rule says *floor*, it means rounding
//! **down** to the currency's minor unit (whole won, whole cents), never to the nearest.
//!
//! An invoice is in **one currency**, its subscription's: a subscription keeps the currency of
//! the plan it started on, so that its plan periods of a month never add won to dollars. A plan
//! change, or a contract over a base plan, to a plan of another currency is refused with
//! `currency_mismatch` and writes nothing. To move to another currency, cancel and subscribe
//! again: the new subscription has invoices of its own, in its own currency.
//!
//! ## 4. Base fee
//!
//! Each plan period with at least one day in the month gets one base line:
//!
//! ```text
//! base = floor(base_fee × days / days_in_month)
//! ```
//!
//! A plan held for the whole month is therefore billed its base fee exactly. A month split into
//! several periods loses at most one minor unit per period to flooring, never more, and is never
//! billed more than the fee.
//!
//! ## 5. Included quota and overage
//!
//! For every metric of the period's plan:
//!
//! ```text
//! included = floor(quota × days / days_in_month)        (whole units, rounded down)
//! used     = sum of the usage of that metric on the days of the period in the month
//! overage  = max(0, used − included)                     (units)
//! amount   = ceil(overage / block) × price                (a started block is a whole block)
//! ```
//!
//! - A usage event counts in the one period that contains its day, so usage on a plan change
//!   day counts against the **new** plan, and usage on a cancel day counts against nobody.
//! - Usage on days outside the billed month is ignored (it belongs to another invoice).
//! - Quotas do not carry over between periods: each period has its own prorated quota.
//! - A metric with no overage price is **never charged**, whatever its usage and quota.
//! - A metric with a price but no included quota has a quota of 0.
//! - An overage line is written only when the overage is above zero: usage exactly at the quota
//!   gives no line.
//!
//! ## 6. Totals
//!
//! ```text
//! subtotal = sum of all line amounts
//! tax      = floor(subtotal × tax_rate)
//! total    = subtotal + tax
//! ```
//!
//! The tax rate is the catalog's (`0.1` for 10%, `0` by default).
//!
//! ## 7. Late usage and the close
//!
//! Usage for month M that the platform **accepts** is billed in M's invoice; usage for M that
//! arrives after M's close is **refused** with `period_closed`. Never accepted and then lost:
//! the close and the usage write wait for each other, so every usage call is on one side of the
//! close or the other, however close to midnight it comes.
//!
//! Worked example: a tenant on a metered plan sends 39 usage reports for October 31st at 00:00
//! on November 1st, while the October close runs at that same instant. Say 25 of them are
//! accepted, 14,000 units in all, and 14 are refused with `period_closed`. The October invoice
//! then bills exactly those 14,000 units; the 14 refused reports are the sender's to re-file,
//! and no report is both accepted and missing from the invoice.
//!
//! The one way accepted usage goes unbilled is the rule of section 5: a cancellation effective
//! from the usage's own day (the cancel day is not billed).
//!
//! ## 8. Order of the lines
//!
//! Lines are ordered by period start; within a period the base line comes first, then the
//! overage lines in metric name order.
//!
//! # Worked examples
//!
//! October 2025 has 31 days; November 2025 has 30. All examples use a plan `pro` at 99,000 KRW
//! a month and, where there is an upgrade, `business` at 290,000 KRW a month.
//!
//! ## Subscribing in the middle of the month
//!
//! Subscribed to `pro` on October 10 and still subscribed at the end of the month: the period
//! is October 10 to 31, 22 days. `floor(99,000 × 22 / 31) = floor(70,258.06…) = 70,258`.
//!
//! ```
//! use std::collections::BTreeMap;
//!
//! use billing_platform::billing::{invoice, InvoiceInput, PlanPeriod};
//! use billing_platform::model::{Currency, Month, Terms};
//! use chrono::NaiveDate;
//! use rust_decimal::Decimal;
//!
//! let pro = Terms {
//!     base_fee: Decimal::from(99_000),
//!     included: BTreeMap::new(),
//!     overage: BTreeMap::new(),
//! };
//! let inv = invoice(&InvoiceInput {
//!     month: Month::new(2025, 10).unwrap(),
//!     currency: Currency::Krw,
//!     tax_rate: Decimal::ZERO,
//!     periods: vec![PlanPeriod {
//!         plan: "pro".into(),
//!         from: NaiveDate::from_ymd_opt(2025, 10, 10).unwrap(),
//!         until: None,
//!         terms: pro,
//!     }],
//!     usage: vec![],
//! });
//! assert_eq!(inv.lines.len(), 1);
//! assert_eq!(inv.lines[0].days, 22);
//! assert_eq!(inv.lines[0].amount, Decimal::from(70_258));
//! assert_eq!(inv.total, Decimal::from(70_258));
//! ```
//!
//! ## Upgrading on the 20th, with 10% tax
//!
//! Subscribed to `pro` on October 10, upgraded to `business` on October 20. The 20th is the
//! first day of `business` and is not part of `pro`:
//!
//! | period | days | base line |
//! | --- | --- | --- |
//! | `pro`, Oct 10 to Oct 20 (exclusive) | 10 | floor(99,000 × 10 / 31) = floor(31,935.48…) = 31,935 |
//! | `business`, Oct 20 to Nov 1 (exclusive) | 12 | floor(290,000 × 12 / 31) = floor(112,258.06…) = 112,258 |
//!
//! Subtotal 144,193; tax floor(14,419.3) = 14,419; total 158,612.
//!
//! ```
//! use std::collections::BTreeMap;
//!
//! use billing_platform::billing::{invoice, InvoiceInput, PlanPeriod};
//! use billing_platform::model::{Currency, Month, Terms};
//! use chrono::NaiveDate;
//! use rust_decimal::Decimal;
//!
//! let day = |d| NaiveDate::from_ymd_opt(2025, 10, d).unwrap();
//! let fee = |won: i64| Terms {
//!     base_fee: Decimal::from(won),
//!     included: BTreeMap::new(),
//!     overage: BTreeMap::new(),
//! };
//! let inv = invoice(&InvoiceInput {
//!     month: Month::new(2025, 10).unwrap(),
//!     currency: Currency::Krw,
//!     tax_rate: "0.1".parse::<Decimal>().unwrap(),
//!     periods: vec![
//!         PlanPeriod { plan: "pro".into(), from: day(10), until: Some(day(20)), terms: fee(99_000) },
//!         PlanPeriod { plan: "business".into(), from: day(20), until: None, terms: fee(290_000) },
//!     ],
//!     usage: vec![],
//! });
//! let lines: Vec<(&str, u32, Decimal)> =
//!     inv.lines.iter().map(|l| (l.plan.as_str(), l.days, l.amount)).collect();
//! assert_eq!(
//!     lines,
//!     [("pro", 10, Decimal::from(31_935)), ("business", 12, Decimal::from(112_258))]
//! );
//! assert_eq!(inv.subtotal, Decimal::from(144_193));
//! assert_eq!(inv.tax, Decimal::from(14_419));
//! assert_eq!(inv.total, Decimal::from(158_612));
//! ```
//!
//! ## Overage with a prorated quota and a partial block
//!
//! `pro` includes 10,000 `api_calls` a month; above that, 5,000 KRW per started block of 1,000
//! calls. It also includes 50 GB of `storage`, with no overage price. Subscribed on October 10
//! (22 days), the tenant makes 9,000 calls and stores 80 GB:
//!
//! - included calls: floor(10,000 × 22 / 31) = floor(7,096.77…) = 7,096;
//! - overage: 9,000 − 7,096 = 1,904 calls, that is 1.904 blocks, charged as 2 blocks: 10,000;
//! - `storage` has no overage price, so the 80 GB cost nothing extra;
//! - usage on November 1 belongs to November's invoice and is ignored here.
//!
//! Subtotal 70,258 + 10,000 = 80,258.
//!
//! ```
//! use std::collections::BTreeMap;
//!
//! use billing_platform::billing::{invoice, InvoiceInput, LineKind, PlanPeriod, Usage};
//! use billing_platform::model::{Currency, Month, Overage, Terms};
//! use chrono::NaiveDate;
//! use rust_decimal::Decimal;
//!
//! let pro = Terms {
//!     base_fee: Decimal::from(99_000),
//!     included: BTreeMap::from([("api_calls".to_string(), 10_000), ("storage".to_string(), 50)]),
//!     overage: BTreeMap::from([(
//!         "api_calls".to_string(),
//!         Overage { block: 1_000, price: Decimal::from(5_000) },
//!     )]),
//! };
//! let use_ = |y, m, d, metric: &str, quantity| Usage {
//!     day: NaiveDate::from_ymd_opt(y, m, d).unwrap(),
//!     metric: metric.to_string(),
//!     quantity,
//! };
//! let inv = invoice(&InvoiceInput {
//!     month: Month::new(2025, 10).unwrap(),
//!     currency: Currency::Krw,
//!     tax_rate: Decimal::ZERO,
//!     periods: vec![PlanPeriod {
//!         plan: "pro".into(),
//!         from: NaiveDate::from_ymd_opt(2025, 10, 10).unwrap(),
//!         until: None,
//!         terms: pro,
//!     }],
//!     usage: vec![
//!         use_(2025, 10, 12, "api_calls", 4_000),
//!         use_(2025, 10, 31, "api_calls", 5_000),
//!         use_(2025, 11, 1, "api_calls", 1_000_000), // next month: ignored
//!         use_(2025, 10, 15, "storage", 80),         // no overage price: not charged
//!     ],
//! });
//! assert_eq!(inv.lines.len(), 2);
//! let over = &inv.lines[1];
//! assert_eq!(over.kind, LineKind::Overage);
//! assert_eq!(over.metric.as_deref(), Some("api_calls"));
//! assert_eq!((over.used, over.included, over.overage), (Some(9_000), Some(7_096), Some(1_904)));
//! assert_eq!(over.amount, Decimal::from(10_000));
//! assert_eq!(inv.total, Decimal::from(80_258));
//! ```
//!
//! ## Cents: a USD plan
//!
//! A plan at 19.99 USD a month, subscribed on November 16 (15 of 30 days):
//! 19.99 × 15 / 30 = 9.995, floored to the cent: **9.99** (not 10.00). With 10% tax:
//! floor(0.999) = 0.99, total 10.98. Amounts always carry two decimals, even when whole.
//!
//! ```
//! use std::collections::BTreeMap;
//!
//! use billing_platform::billing::{invoice, InvoiceInput, PlanPeriod};
//! use billing_platform::model::{Currency, Month, Terms};
//! use chrono::NaiveDate;
//! use rust_decimal::Decimal;
//!
//! let starter = Terms {
//!     base_fee: "19.99".parse::<Decimal>().unwrap(),
//!     included: BTreeMap::new(),
//!     overage: BTreeMap::new(),
//! };
//! let inv = invoice(&InvoiceInput {
//!     month: Month::new(2025, 11).unwrap(),
//!     currency: Currency::Usd,
//!     tax_rate: "0.1".parse::<Decimal>().unwrap(),
//!     periods: vec![PlanPeriod {
//!         plan: "starter".into(),
//!         from: NaiveDate::from_ymd_opt(2025, 11, 16).unwrap(),
//!         until: None,
//!         terms: starter,
//!     }],
//!     usage: vec![],
//! });
//! assert_eq!(inv.lines[0].amount.to_string(), "9.99");
//! assert_eq!(inv.subtotal.to_string(), "9.99");
//! assert_eq!(inv.tax.to_string(), "0.99");
//! assert_eq!(inv.total.to_string(), "10.98");
//! ```
//!
//! ## Cancelling, and changing plan on the 1st
//!
//! - Cancelled on October 15: the period is October 1 to 15 *exclusive*, 14 days:
//!   floor(99,000 × 14 / 31) = floor(44,709.67…) = 44,709. The 15th is not billed, and usage
//!   on the 15th is not counted.
//! - Changed from `pro` to `business` on November 1: in November the `pro` period has zero
//!   days and gets no line; `business` is billed its full fee, 290,000.
//!
//! ```
//! use std::collections::BTreeMap;
//!
//! use billing_platform::billing::{invoice, InvoiceInput, PlanPeriod, Usage};
//! use billing_platform::model::{Currency, Month, Overage, Terms};
//! use chrono::NaiveDate;
//! use rust_decimal::Decimal;
//!
//! let day = |m, d| NaiveDate::from_ymd_opt(2025, m, d).unwrap();
//! let terms = |won: i64| Terms {
//!     base_fee: Decimal::from(won),
//!     included: BTreeMap::new(),
//!     overage: BTreeMap::from([(
//!         "api_calls".to_string(),
//!         Overage { block: 1_000, price: Decimal::from(5_000) },
//!     )]),
//! };
//!
//! // Cancelled on October 15; 50,000 calls on the cancel day are not counted.
//! let cancelled = invoice(&InvoiceInput {
//!     month: Month::new(2025, 10).unwrap(),
//!     currency: Currency::Krw,
//!     tax_rate: Decimal::ZERO,
//!     periods: vec![PlanPeriod {
//!         plan: "pro".into(),
//!         from: day(9, 1),
//!         until: Some(day(10, 15)),
//!         terms: terms(99_000),
//!     }],
//!     usage: vec![Usage { day: day(10, 15), metric: "api_calls".into(), quantity: 50_000 }],
//! });
//! assert_eq!(cancelled.lines.len(), 1);
//! assert_eq!(cancelled.lines[0].days, 14);
//! assert_eq!(cancelled.total, Decimal::from(44_709));
//!
//! // Changed plan on November 1: no line for the old plan in November.
//! let changed = invoice(&InvoiceInput {
//!     month: Month::new(2025, 11).unwrap(),
//!     currency: Currency::Krw,
//!     tax_rate: Decimal::ZERO,
//!     periods: vec![
//!         PlanPeriod { plan: "pro".into(), from: day(9, 1), until: Some(day(11, 1)), terms: terms(99_000) },
//!         PlanPeriod { plan: "business".into(), from: day(11, 1), until: None, terms: terms(290_000) },
//!     ],
//!     usage: vec![],
//! });
//! assert_eq!(changed.lines.len(), 1);
//! assert_eq!(changed.lines[0].plan, "business");
//! assert_eq!(changed.total, Decimal::from(290_000));
//! ```
//!
//! ## Which day is it? The time zone
//!
//! Convert instants to Seoul calendar days before billing, with
//! [`calendar::local_day`](crate::calendar::local_day): 16:00 UTC on October 31 is already
//! November 1 in Seoul.
//!
//! ```
//! use billing_platform::calendar::local_day;
//! use chrono::{NaiveDate, TimeZone, Utc};
//!
//! let at = Utc.with_ymd_and_hms(2025, 10, 31, 16, 0, 0).unwrap();
//! assert_eq!(local_day(chrono_tz::Asia::Seoul, at), NaiveDate::from_ymd_opt(2025, 11, 1).unwrap());
//! ```
//!
//! # The rules as functions
//!
//! Each arithmetic rule above is one named function here, which [`invoice`](super::invoice)
//! calls: [`prorate`] (rule 4), [`prorated_quota`], [`overage`] and [`overage_amount`] (rule 5),
//! and [`tax`] (rule 6).
//!
//! [`NaiveDate`]: chrono::NaiveDate

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use crate::model::{Currency, Overage};

/// Rule 4: `floor(amount × days / days_in_month)` to the currency's minor unit.
///
/// ```
/// use billing_platform::billing::rules::prorate;
/// use billing_platform::model::Currency;
/// use rust_decimal::Decimal;
///
/// // pro at 99,000 KRW from October 10: 22 of 31 days.
/// assert_eq!(prorate(Decimal::from(99_000), 22, 31, Currency::Krw), Decimal::from(70_258));
/// // A whole month is billed exactly.
/// assert_eq!(prorate(Decimal::from(99_000), 31, 31, Currency::Krw), Decimal::from(99_000));
/// // 9.99 USD for 10 of 30 days: 3.33.
/// assert_eq!(prorate("9.99".parse().unwrap(), 10, 30, Currency::Usd).to_string(), "3.33");
/// ```
pub fn prorate(amount: Decimal, days: u32, days_in_month: u32, currency: Currency) -> Decimal {
    currency.floor(share(amount, days, days_in_month))
}

/// Rule 5: the included quota of a period of `days` of `days_in_month`, in whole units rounded
/// down.
///
/// ```
/// use billing_platform::billing::rules::prorated_quota;
///
/// // 100,000 calls a month, 22 of 31 days: floor(70,967.7…) = 70,967.
/// assert_eq!(prorated_quota(100_000, 22, 31), 70_967);
/// assert_eq!(prorated_quota(100_000, 31, 31), 100_000);
/// assert_eq!(prorated_quota(100_000, 0, 31), 0);
/// ```
pub fn prorated_quota(quota: u64, days: u32, days_in_month: u32) -> u64 {
    share(Decimal::from(quota), days, days_in_month)
        .floor()
        .to_u64()
        .unwrap_or(u64::MAX)
}

/// Rule 5: units used above the included quota, zero when within it.
///
/// ```
/// use billing_platform::billing::rules::overage;
///
/// assert_eq!(overage(120_000, 100_000), 20_000);
/// assert_eq!(overage(100_000, 100_000), 0); // exactly at the quota: no overage
/// assert_eq!(overage(5, 100_000), 0);
/// ```
pub fn overage(used: u64, included: u64) -> u64 {
    used.saturating_sub(included)
}

/// Rule 5: `ceil(overage / block) × price`, floored to the currency's minor unit: a started
/// block is a whole block.
///
/// ```
/// use billing_platform::billing::rules::overage_amount;
/// use billing_platform::model::{Currency, Overage};
/// use rust_decimal::Decimal;
///
/// let price = Overage { block: 1_000, price: Decimal::from(500) };
/// assert_eq!(overage_amount(20_000, &price, Currency::Krw), Decimal::from(10_000)); // 20 blocks
/// assert_eq!(overage_amount(20_001, &price, Currency::Krw), Decimal::from(10_500)); // 21 blocks
/// assert_eq!(overage_amount(1, &price, Currency::Krw), Decimal::from(500));         // 1 block
/// assert_eq!(overage_amount(0, &price, Currency::Krw), Decimal::ZERO);
/// ```
pub fn overage_amount(overage: u64, price: &Overage, currency: Currency) -> Decimal {
    let blocks = overage.div_ceil(price.block.max(1));
    currency.floor(Decimal::from(blocks) * price.price)
}

/// Rule 6: `floor(subtotal × tax_rate)` to the currency's minor unit.
///
/// ```
/// use billing_platform::billing::rules::tax;
/// use billing_platform::model::Currency;
/// use rust_decimal::Decimal;
///
/// assert_eq!(tax(Decimal::from(70_258), "0.1".parse().unwrap(), Currency::Krw), Decimal::from(7_025));
/// assert_eq!(tax("19.99".parse().unwrap(), "0.1".parse().unwrap(), Currency::Usd).to_string(), "1.99");
/// ```
pub fn tax(subtotal: Decimal, tax_rate: Decimal, currency: Currency) -> Decimal {
    currency.floor(subtotal * tax_rate)
}

/// `whole × days / days_in_month`, unrounded.
fn share(whole: Decimal, days: u32, days_in_month: u32) -> Decimal {
    whole * Decimal::from(days) / Decimal::from(days_in_month.max(1))
}
