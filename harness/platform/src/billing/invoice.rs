//! One month's invoice for one subscription, from its plan periods and usage.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Serialize;

use super::rules;
use crate::model::{Currency, Month, Terms};

/// One plan period of a subscription: the days `[from, until)` on one plan's terms. The start or
/// change day belongs to the new period; a change or cancel day is not part of the old one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanPeriod {
    /// The plan's key.
    pub plan: String,
    /// First day of service.
    pub from: NaiveDate,
    /// First day no longer served; `None` while the period is open.
    pub until: Option<NaiveDate>,
    /// The prices agreed for the period.
    pub terms: Terms,
}

/// Units of a metric used on one calendar day (in the catalog's time zone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    /// The calendar day.
    pub day: NaiveDate,
    /// The metric, e.g. `api_calls`.
    pub metric: String,
    /// Units used; positive.
    pub quantity: u64,
}

/// Everything one month's invoice depends on.
#[derive(Debug, Clone)]
pub struct InvoiceInput {
    /// The month billed.
    pub month: Month,
    /// The currency of every amount.
    pub currency: Currency,
    /// The catalog-wide tax rate, e.g. `0.1`.
    pub tax_rate: Decimal,
    /// The subscription's plan periods, in any order; only their days in `month` count.
    pub periods: Vec<PlanPeriod>,
    /// Usage; only days in `month` count, each in the period that contains it.
    pub usage: Vec<Usage>,
}

/// What a line charges for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LineKind {
    /// The prorated base fee of a plan period.
    Base,
    /// Usage above a plan period's prorated included quota.
    Overage,
}

impl LineKind {
    /// The name stored in `invoice_lines.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            LineKind::Base => "base",
            LineKind::Overage => "overage",
        }
    }
}

/// One line of an invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Line {
    /// Base fee or overage.
    pub kind: LineKind,
    /// The plan period's plan.
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
    /// Overage lines: the prorated included quota.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub included: Option<u64>,
    /// Overage lines: units above the quota.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overage: Option<u64>,
    /// The amount, in the currency's minor unit.
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
}

/// A month's invoice: lines, subtotal, tax and total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Invoice {
    /// The month billed.
    pub month: Month,
    /// The currency.
    pub currency: Currency,
    /// Base lines and overage lines, by period start, base first, metrics in name order.
    pub lines: Vec<Line>,
    /// Sum of the lines.
    #[serde(with = "rust_decimal::serde::str")]
    pub subtotal: Decimal,
    /// floor(subtotal × tax rate) to the minor unit.
    #[serde(with = "rust_decimal::serde::str")]
    pub tax: Decimal,
    /// subtotal + tax.
    #[serde(with = "rust_decimal::serde::str")]
    pub total: Decimal,
}

impl Invoice {
    /// Whether the subscription had at least one service day in the month.
    pub fn has_service(&self) -> bool {
        self.lines.iter().any(|l| l.days > 0)
    }
}

/// The invoice of `input.month` (see [`super::rules`] for the rules and worked examples).
pub fn invoice(input: &InvoiceInput) -> Invoice {
    let month = input.month;
    let days_in_month = month.days();
    let currency = input.currency;
    let mut periods: Vec<(&PlanPeriod, NaiveDate, NaiveDate)> = input
        .periods
        .iter()
        .filter_map(|p| {
            let from = p.from.max(month.first_day());
            let until = p.until.unwrap_or(month.end()).min(month.end());
            (from < until).then_some((p, from, until))
        })
        .collect();
    periods.sort_by_key(|(p, from, _)| (*from, p.plan.clone()));

    let mut lines = Vec::new();
    for (period, from, until) in periods {
        let days = u32::try_from((until - from).num_days()).unwrap_or(0);
        lines.push(Line {
            kind: LineKind::Base,
            plan: period.plan.clone(),
            metric: None,
            from,
            until,
            days,
            used: None,
            included: None,
            overage: None,
            amount: rules::prorate(period.terms.base_fee, days, days_in_month, currency),
        });
        let mut used: BTreeMap<&str, u64> = BTreeMap::new();
        for u in input
            .usage
            .iter()
            .filter(|u| from <= u.day && u.day < until)
        {
            *used.entry(u.metric.as_str()).or_default() += u.quantity;
        }
        for (metric, price) in &period.terms.overage {
            let used = used.get(metric.as_str()).copied().unwrap_or(0);
            let quota = period.terms.included.get(metric).copied().unwrap_or(0);
            let included = rules::prorated_quota(quota, days, days_in_month);
            let over = rules::overage(used, included);
            if over == 0 {
                continue;
            }
            lines.push(Line {
                kind: LineKind::Overage,
                plan: period.plan.clone(),
                metric: Some(metric.clone()),
                from,
                until,
                days,
                used: Some(used),
                included: Some(included),
                overage: Some(over),
                amount: rules::overage_amount(over, price, currency),
            });
        }
    }
    let subtotal = currency.exact(lines.iter().map(|l| l.amount).sum());
    let tax = rules::tax(subtotal, input.tax_rate, currency);
    Invoice {
        month,
        currency,
        lines,
        subtotal,
        tax,
        total: currency.exact(subtotal + tax),
    }
}
