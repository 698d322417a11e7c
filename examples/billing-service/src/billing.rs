//! The invoice of one subscription for one calendar month, as a pure function of its plan
//! periods and usage: no database, no clock.
//!
//! The rules, in Asia/Seoul calendar days:
//! - a plan period covers the days `[from, until)`: a plan change day belongs to the new plan, a
//!   cancel day to nobody;
//! - base fee: `floor(monthly_fee × days / days_in_month)` per plan period with days in the
//!   month, in whole won;
//! - included quota: `floor(included × days / days_in_month)` units per period;
//! - overage: the period's usage above its quota, billed `block_price` per started block of
//!   `block_size` units; usage exactly at the quota bills nothing;
//! - tax: `floor(subtotal × tax_rate)`; total = subtotal + tax.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::calendar::Month;

/// A plan of the price list; every plan meters one metric.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Plan {
    /// Unique key, e.g. `pro`.
    pub key: String,
    /// Name shown to customers.
    pub name: String,
    /// Monthly base fee in won, prorated by days.
    pub monthly_fee: Decimal,
    /// The metered metric, e.g. `api_calls`.
    pub metric: String,
    /// Units of the metric included each month, prorated by days.
    pub included: i64,
    /// Units per overage block; a started block is billed whole.
    pub block_size: i64,
    /// Price of one overage block in won.
    pub block_price: Decimal,
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
    /// The amount in won.
    pub amount: Decimal,
}

/// An invoice before it is stored: its lines and totals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Draft {
    /// The month billed.
    pub month: Month,
    /// Base and overage lines by period start, base first.
    pub lines: Vec<Line>,
    /// Sum of the lines.
    pub subtotal: Decimal,
    /// `floor(subtotal × tax_rate)`.
    pub tax: Decimal,
    /// Subtotal plus tax.
    pub total: Decimal,
}

/// The invoice of `month` for a subscription with these plan periods and this usage, at
/// `tax_rate` (e.g. `0.1`). Usage outside the month, or on a day no period covers, is not billed.
pub fn draft_invoice(
    month: Month,
    periods: &[PlanPeriod],
    usage: &[Usage],
    tax_rate: Decimal,
) -> Draft {
    let days_in_month = month.days();
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
            amount: (plan.monthly_fee * Decimal::from(days) / Decimal::from(days_in_month)).floor(),
        });
        let used: u64 = usage
            .iter()
            .filter(|u| u.metric == plan.metric && from <= u.day && u.day < until)
            .map(|u| u.quantity)
            .sum();
        let quota = u64::try_from(plan.included).unwrap_or(0);
        let included = quota * u64::from(days) / u64::from(days_in_month);
        let over = used.saturating_sub(included);
        if over > 0 {
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
                amount: Decimal::from(blocks) * plan.block_price,
            });
        }
    }
    let subtotal: Decimal = lines.iter().map(|l| l.amount).sum();
    let tax = (subtotal * tax_rate).floor();
    Draft {
        month,
        lines,
        subtotal,
        tax,
        total: subtotal + tax,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pro() -> Plan {
        Plan {
            key: "pro".into(),
            name: "Pro".into(),
            monthly_fee: Decimal::from(99_000),
            metric: "api_calls".into(),
            included: 100_000,
            block_size: 1_000,
            block_price: Decimal::from(500),
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
        let draft = draft_invoice(month, &periods, &usage, Decimal::ZERO);
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
            draft_invoice(month, &periods, &[], Decimal::ZERO)
                .lines
                .is_empty()
        );
    }
}
