//! The invoice of one subscription for one calendar month, as a pure function of its plan
//! periods and usage: no database, no clock.
//!
//! The rules, in Asia/Seoul calendar days, are the reference platform's:
//! - a plan period covers the days `[from, until)`: a plan change day belongs to the new plan, a
//!   cancel day to nobody;
//! - base fee: `floor(monthly_fee × days / days_in_month)` per plan period with days in the
//!   month;
//! - included quota: `floor(included × days / days_in_month)` units per period;
//! - overage: the period's usage above its quota, billed `block_price` per started block of
//!   `block_size` units; usage exactly at the quota bills nothing, and a plan without a block
//!   price never bills overage;
//! - tax: `floor(subtotal × tax_rate)`; total = subtotal + tax.
//!
//! An invoice is in one [`Currency`]; *floor* rounds down to its minor unit (whole won, whole
//! cents), and every amount is written with exactly its decimals (`70258`, `9.99`, `20.00`).

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use crate::calendar::Month;

/// A currency of the price list, with its minor unit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Currency {
    /// Korean won: no minor unit. The default.
    #[default]
    #[serde(rename = "KRW")]
    Krw,
    /// US dollar: cents.
    #[serde(rename = "USD")]
    Usd,
}

impl Currency {
    /// The ISO 4217 code, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Currency::Krw => "KRW",
            Currency::Usd => "USD",
        }
    }

    /// Decimals of the minor unit: 0 for KRW, 2 for USD.
    pub fn minor_units(self) -> u32 {
        match self {
            Currency::Krw => 0,
            Currency::Usd => 2,
        }
    }

    /// `amount` rounded down to the minor unit, with exactly the currency's decimals.
    ///
    /// ```
    /// use example_billing_service::billing::Currency;
    ///
    /// assert_eq!(Currency::Usd.floor("9.995".parse().unwrap()).to_string(), "9.99");
    /// assert_eq!(Currency::Usd.floor("20".parse().unwrap()).to_string(), "20.00");
    /// assert_eq!(Currency::Krw.floor("70258.06".parse().unwrap()).to_string(), "70258");
    /// ```
    pub fn floor(self, amount: Decimal) -> Decimal {
        self.exact(
            amount.round_dp_with_strategy(self.minor_units(), RoundingStrategy::ToNegativeInfinity),
        )
    }

    /// `amount`, which has no more decimals than the minor unit, written with exactly them.
    pub fn exact(self, mut amount: Decimal) -> Decimal {
        amount.rescale(self.minor_units());
        amount
    }

    /// Whether `amount` is a whole number of minor units.
    pub fn fits(self, amount: Decimal) -> bool {
        amount.normalize().scale() <= self.minor_units()
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Currency {
    type Err = String;

    fn from_str(s: &str) -> Result<Currency, String> {
        match s {
            "KRW" => Ok(Currency::Krw),
            "USD" => Ok(Currency::Usd),
            other => Err(format!("unknown currency {other:?} (expected KRW or USD)")),
        }
    }
}

impl TryFrom<String> for Currency {
    type Error = String;

    fn try_from(s: String) -> Result<Currency, String> {
        s.parse()
    }
}

/// A plan of the price list; every plan meters one metric (as every plan of the platform's
/// catalogs does).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Plan {
    /// Unique key, e.g. `pro`.
    pub key: String,
    /// Name shown to customers.
    pub name: String,
    /// The product it is for (`None`: any); a customer's account for another product cannot
    /// take it.
    #[serde(default)]
    pub product: Option<String>,
    /// The currency of its prices, and of the subscriptions that start on it (default KRW).
    #[serde(default)]
    #[sqlx(try_from = "String")]
    pub currency: Currency,
    /// Monthly base fee, prorated by days.
    pub monthly_fee: Decimal,
    /// The metered metric, e.g. `api_calls`.
    pub metric: String,
    /// Units of the metric included each month, prorated by days.
    pub included: i64,
    /// Units per overage block; a started block is billed whole.
    pub block_size: i64,
    /// Price of one overage block; `None`: overage is never charged.
    pub block_price: Option<Decimal>,
}

impl Plan {
    /// Why the plan cannot be priced as it is: an amount negative or finer than its currency's
    /// minor unit (a fraction of a won, of a cent), a negative quota, or a block of fewer than 1
    /// unit.
    ///
    /// # Errors
    /// What is wrong, as a sentence fragment.
    pub fn check(&self) -> Result<(), String> {
        let currency = self.currency;
        let mut amounts = std::iter::once(self.monthly_fee).chain(self.block_price);
        if amounts.any(|a| a.is_sign_negative() || !currency.fits(a))
            || self.included < 0
            || self.block_size < 1
        {
            return Err(format!(
                "plan {}: amounts must be whole {currency} minor units and not negative, the \
                 quota not negative, blocks at least 1 unit",
                self.key
            ));
        }
        Ok(())
    }
}

/// The days `[from, until)` a subscription spent on one plan; `until` is `None` while open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanPeriod {
    /// The plan of the period.
    pub plan: Plan,
    /// First day on the plan.
    pub from: NaiveDate,
    /// First day no longer on the plan.
    pub until: Option<NaiveDate>,
}

/// Units of a metric used on one Seoul day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    /// The day.
    pub day: NaiveDate,
    /// The metric.
    pub metric: String,
    /// Units used.
    pub quantity: u64,
}

/// What an invoice line bills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LineKind {
    /// The prorated base fee of a plan period.
    Base,
    /// Usage above a plan period's prorated quota.
    Overage,
}

impl LineKind {
    /// The text stored in `invoice_lines.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            LineKind::Base => "base",
            LineKind::Overage => "overage",
        }
    }
}

/// One line of an invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    /// Base fee or overage.
    pub kind: LineKind,
    /// The plan period's plan key.
    pub plan: String,
    /// The metric of an overage line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    /// First day of the period within the month.
    pub from: NaiveDate,
    /// First day after the period within the month.
    pub until: NaiveDate,
    /// Days of the period within the month.
    pub days: u32,
    /// Overage lines: units used in the period.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used: Option<u64>,
    /// Overage lines: the period's prorated quota.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub included: Option<u64>,
    /// Overage lines: units above the quota.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overage: Option<u64>,
    /// The amount, in the invoice's currency.
    pub amount: Decimal,
}

/// An invoice before it is stored: its lines and totals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Draft {
    /// The month billed.
    pub month: Month,
    /// The currency of every amount.
    pub currency: Currency,
    /// Base and overage lines by period start, base first.
    pub lines: Vec<Line>,
    /// Sum of the lines.
    pub subtotal: Decimal,
    /// `floor(subtotal × tax_rate)`.
    pub tax: Decimal,
    /// Subtotal plus tax.
    pub total: Decimal,
}

/// The invoice of `month` in `currency` for a subscription with these plan periods and this
/// usage, at `tax_rate` (e.g. `0.1`). Usage outside the month, or on a day no period covers, is
/// not billed.
pub fn draft_invoice(
    month: Month,
    currency: Currency,
    periods: &[PlanPeriod],
    usage: &[Usage],
    tax_rate: Decimal,
) -> Draft {
    prorated_draft(month, month.days(), currency, periods, usage, tax_rate)
}

/// [`draft_invoice`], prorating fees and quotas by `days / days_in_month` for the month's days
/// given (its own, but for a deliberate flaw).
pub(crate) fn prorated_draft(
    month: Month,
    days_in_month: u32,
    currency: Currency,
    periods: &[PlanPeriod],
    usage: &[Usage],
    tax_rate: Decimal,
) -> Draft {
    let mut in_month: Vec<(&PlanPeriod, NaiveDate, NaiveDate)> = periods
        .iter()
        .filter_map(|p| {
            let from = p.from.max(month.first_day());
            let until = p.until.map_or(month.end(), |u| u.min(month.end()));
            (from < until).then_some((p, from, until))
        })
        .collect();
    in_month.sort_by_key(|(_, from, _)| *from);

    let mut lines = Vec::new();
    for (period, from, until) in in_month {
        let plan = &period.plan;
        let days = u32::try_from((until - from).num_days()).unwrap_or(0);
        lines.push(Line {
            kind: LineKind::Base,
            plan: plan.key.clone(),
            metric: None,
            from,
            until,
            days,
            used: None,
            included: None,
            overage: None,
            amount: currency
                .floor(plan.monthly_fee * Decimal::from(days) / Decimal::from(days_in_month)),
        });
        let used: u64 = usage
            .iter()
            .filter(|u| u.metric == plan.metric && from <= u.day && u.day < until)
            .map(|u| u.quantity)
            .sum();
        let quota = u64::try_from(plan.included).unwrap_or(0);
        let included = quota * u64::from(days) / u64::from(days_in_month);
        let over = used.saturating_sub(included);
        if let Some(price) = plan.block_price.filter(|_| over > 0) {
            let blocks = over.div_ceil(u64::try_from(plan.block_size).unwrap_or(1).max(1));
            lines.push(Line {
                kind: LineKind::Overage,
                plan: plan.key.clone(),
                metric: Some(plan.metric.clone()),
                from,
                until,
                days,
                used: Some(used),
                included: Some(included),
                overage: Some(over),
                amount: currency.floor(Decimal::from(blocks) * price),
            });
        }
    }
    let subtotal = currency.exact(lines.iter().map(|l| l.amount).sum());
    let tax = currency.floor(subtotal * tax_rate);
    Draft {
        month,
        currency,
        lines,
        subtotal,
        tax,
        total: currency.exact(subtotal + tax),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pro() -> Plan {
        Plan {
            key: "pro".into(),
            name: "Pro".into(),
            product: None,
            currency: Currency::Krw,
            monthly_fee: Decimal::from(99_000),
            metric: "api_calls".into(),
            included: 100_000,
            block_size: 1_000,
            block_price: Some(Decimal::from(500)),
        }
    }

    fn day(m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, m, d).unwrap()
    }

    #[test]
    fn a_period_from_the_tenth_of_october_is_22_of_31_days() {
        let month = Month::new(2026, 10).unwrap();
        let periods = [PlanPeriod {
            plan: pro(),
            from: day(10, 10),
            until: None,
        }];
        let usage = [Usage {
            day: day(10, 31),
            metric: "api_calls".into(),
            quantity: 70_968,
        }];
        let draft = draft_invoice(month, Currency::Krw, &periods, &usage, Decimal::ZERO);
        // floor(99,000 × 22 / 31) = 70,258; quota floor(100,000 × 22 / 31) = 70,967; one over.
        let amounts: Vec<_> = draft.lines.iter().map(|l| l.amount).collect();
        assert_eq!(amounts, [Decimal::from(70_258), Decimal::from(500)]);
        assert_eq!(draft.lines[1].included, Some(70_967));
    }

    #[test]
    fn a_period_outside_the_month_has_no_line() {
        let month = Month::new(2026, 11).unwrap();
        let periods = [PlanPeriod {
            plan: pro(),
            from: day(10, 1),
            until: Some(day(11, 1)),
        }];
        assert!(
            draft_invoice(month, Currency::Krw, &periods, &[], Decimal::ZERO)
                .lines
                .is_empty()
        );
    }

    /// usd-with-tax: `team` at 19.99 USD from February 10, 2028 (20 of 29 days), 5,000 calls
    /// included, 0.75 a started block of 1,000, 4,001 calls used, 10% tax.
    #[test]
    fn a_usd_invoice_is_floored_to_the_cent() {
        let team = Plan {
            key: "team".into(),
            name: "Team".into(),
            product: None,
            currency: Currency::Usd,
            monthly_fee: "19.99".parse().unwrap(),
            metric: "api_calls".into(),
            included: 5_000,
            block_size: 1_000,
            block_price: Some("0.75".parse().unwrap()),
        };
        let periods = [PlanPeriod {
            plan: team,
            from: NaiveDate::from_ymd_opt(2028, 2, 10).unwrap(),
            until: None,
        }];
        let usage = [Usage {
            day: NaiveDate::from_ymd_opt(2028, 2, 28).unwrap(),
            metric: "api_calls".into(),
            quantity: 4_001,
        }];
        let month = Month::new(2028, 2).unwrap();
        let draft = draft_invoice(
            month,
            Currency::Usd,
            &periods,
            &usage,
            "0.1".parse().unwrap(),
        );
        // base floor(19.99 × 20 / 29) = floor(13.786…) = 13.78; quota floor(5,000 × 20 / 29) =
        // 3,448, so 553 over: one block, 0.75; subtotal 14.53, tax floor(1.453) = 1.45.
        let amounts: Vec<String> = draft.lines.iter().map(|l| l.amount.to_string()).collect();
        assert_eq!(amounts, ["13.78", "0.75"]);
        assert_eq!(
            [draft.subtotal, draft.tax, draft.total].map(|d| d.to_string()),
            ["14.53", "1.45", "15.98"]
        );
    }

    #[test]
    fn amounts_carry_the_currency_decimals_and_tax_is_floored() {
        // charged-with-tax: pro from October 10 (22 of 31 days), 10% tax.
        let periods = [PlanPeriod {
            plan: pro(),
            from: day(10, 10),
            until: None,
        }];
        let month = Month::new(2026, 10).unwrap();
        let draft = draft_invoice(month, Currency::Krw, &periods, &[], "0.1".parse().unwrap());
        assert_eq!(
            [draft.subtotal, draft.tax, draft.total].map(|d| d.to_string()),
            ["70258", "7025", "77283"]
        );
    }

    /// The `ProrateBy30Days` flaw's arithmetic: October from the 10th is 22 days, billed
    /// floor(99,000 × 22 / 30) = 72,600 instead of 70,258.
    #[cfg(feature = "flaws")]
    #[test]
    fn prorating_by_30_days_overbills_a_31_day_month() {
        let periods = [PlanPeriod {
            plan: pro(),
            from: day(10, 10),
            until: None,
        }];
        let month = Month::new(2026, 10).unwrap();
        let draft = prorated_draft(month, 30, Currency::Krw, &periods, &[], Decimal::ZERO);
        assert_eq!(draft.total, Decimal::from(72_600));
    }

    #[test]
    fn a_plan_without_a_block_price_never_bills_overage() {
        let free = Plan {
            monthly_fee: Decimal::ZERO,
            included: 1_000,
            block_price: None,
            ..pro()
        };
        let periods = [PlanPeriod {
            plan: free,
            from: day(10, 1),
            until: None,
        }];
        let usage = [Usage {
            day: day(10, 2),
            metric: "api_calls".into(),
            quantity: 50_000,
        }];
        let month = Month::new(2026, 10).unwrap();
        let draft = draft_invoice(month, Currency::Krw, &periods, &usage, Decimal::ZERO);
        assert_eq!((draft.lines.len(), draft.total), (1, Decimal::ZERO));
    }
}
