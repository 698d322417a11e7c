//! The pure half of the monthly close: the rows the close read (plan periods, their terms, usage
//! summed per period) in, one invoice per subscription out. No database here.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use rust_decimal::Decimal;

use crate::billing::{self, Invoice, InvoiceInput, PlanPeriod, Usage};
use crate::model::{Currency, InvoiceStatus, Month, Overage, Terms};

/// A billing (plan period) of a subscription with at least one day in the month.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub(crate) struct PeriodRow {
    pub(crate) billing: i64,
    pub(crate) subscription: i64,
    pub(crate) tenant: i64,
    pub(crate) plan_id: i64,
    pub(crate) plan: String,
    pub(crate) currency: Currency,
    pub(crate) base_fee: Decimal,
    pub(crate) starts_on: NaiveDate,
    pub(crate) ends_on: Option<NaiveDate>,
}

/// One metric's terms of a billing (its billing detail).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DetailRow {
    pub(crate) billing: i64,
    pub(crate) metric: String,
    pub(crate) included: u64,
    pub(crate) overage: Option<Overage>,
}

/// Usage of a metric summed over the days of one billing inside the month.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct UsedRow {
    pub(crate) billing: i64,
    pub(crate) metric: String,
    pub(crate) quantity: u64,
}

/// A subscription's invoice for the month, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Closing {
    pub(crate) subscription: i64,
    pub(crate) tenant: i64,
    /// `paid` at once for a zero total, else `finalized`.
    pub(crate) status: InvoiceStatus,
    pub(crate) invoice: Invoice,
    /// The id of each plan named on a line.
    pub(crate) plan_ids: HashMap<String, i64>,
}

/// The invoices of `month`, in subscription order: one per subscription with a service day in the
/// month, from its periods, their terms and the usage summed per period.
pub(crate) fn assemble(
    month: Month,
    tax_rate: Decimal,
    periods: Vec<PeriodRow>,
    details: Vec<DetailRow>,
    used: Vec<UsedRow>,
) -> Vec<Closing> {
    let mut terms: HashMap<i64, Terms> = HashMap::new();
    for d in details {
        let t = terms.entry(d.billing).or_insert_with(no_terms);
        t.included.insert(d.metric.clone(), d.included);
        if let Some(overage) = d.overage {
            t.overage.insert(d.metric, overage);
        }
    }
    let mut usage: HashMap<i64, Vec<(String, u64)>> = HashMap::new();
    for u in used {
        usage
            .entry(u.billing)
            .or_default()
            .push((u.metric, u.quantity));
    }

    struct Draft {
        tenant: i64,
        currency: Currency,
        periods: Vec<PlanPeriod>,
        usage: Vec<Usage>,
        plan_ids: HashMap<String, i64>,
    }
    let mut drafts: BTreeMap<i64, Draft> = BTreeMap::new();
    for row in periods {
        let draft = drafts.entry(row.subscription).or_insert_with(|| Draft {
            tenant: row.tenant,
            currency: row.currency,
            periods: Vec::new(),
            usage: Vec::new(),
            plan_ids: HashMap::new(),
        });
        let mut period_terms = terms.remove(&row.billing).unwrap_or_else(no_terms);
        period_terms.base_fee = row.base_fee;
        // Usage is already summed per period: date it on the period's first day in the month.
        let day = row.starts_on.max(month.first_day());
        for (metric, quantity) in usage.remove(&row.billing).unwrap_or_default() {
            draft.usage.push(Usage {
                day,
                metric,
                quantity,
            });
        }
        draft.plan_ids.insert(row.plan.clone(), row.plan_id);
        draft.periods.push(PlanPeriod {
            plan: row.plan,
            from: row.starts_on,
            until: row.ends_on,
            terms: period_terms,
        });
    }

    drafts
        .into_iter()
        .filter_map(|(subscription, draft)| {
            let invoice = billing::invoice(&InvoiceInput {
                month,
                currency: draft.currency,
                tax_rate,
                periods: draft.periods,
                usage: draft.usage,
            });
            invoice.has_service().then(|| Closing {
                subscription,
                tenant: draft.tenant,
                status: if invoice.total.is_zero() {
                    InvoiceStatus::Paid
                } else {
                    InvoiceStatus::Finalized
                },
                invoice,
                plan_ids: draft.plan_ids,
            })
        })
        .collect()
}

fn no_terms() -> Terms {
    Terms {
        base_fee: Decimal::ZERO,
        included: BTreeMap::new(),
        overage: BTreeMap::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().expect("a test date")
    }

    fn period(billing: i64, plan: &str, fee: i64, from: &str, until: Option<&str>) -> PeriodRow {
        PeriodRow {
            billing,
            subscription: 7,
            tenant: 3,
            plan_id: billing * 10,
            plan: plan.into(),
            currency: Currency::Krw,
            base_fee: Decimal::from(fee),
            starts_on: day(from),
            ends_on: until.map(day),
        }
    }

    #[test]
    fn each_period_gets_its_own_terms_and_usage() {
        let month = Month::new(2026, 10).expect("a month");
        let closings = assemble(
            month,
            Decimal::ZERO,
            vec![
                period(1, "pro", 99_000, "2026-09-01", Some("2026-10-20")),
                period(2, "business", 290_000, "2026-10-20", None),
            ],
            vec![DetailRow {
                billing: 1,
                metric: "api_calls".into(),
                included: 100_000,
                overage: Some(Overage {
                    block: 1_000,
                    price: Decimal::from(500),
                }),
            }],
            vec![UsedRow {
                billing: 1,
                metric: "api_calls".into(),
                quantity: 62_000,
            }],
        );
        assert_eq!(closings.len(), 1);
        let c = &closings[0];
        assert_eq!(
            (c.subscription, c.tenant, c.status),
            (7, 3, InvoiceStatus::Finalized)
        );
        // pro: 19 days, floor(99000 × 19 / 31) = 60677; quota floor(100000 × 19 / 31) = 61290,
        // 710 over = 1 block of 500. business: 12 days, floor(290000 × 12 / 31) = 112258.
        let amounts: Vec<String> = c
            .invoice
            .lines
            .iter()
            .map(|l| l.amount.to_string())
            .collect();
        assert_eq!(amounts, ["60677", "500", "112258"]);
        assert_eq!(c.plan_ids["business"], 20);
    }

    #[test]
    fn a_subscription_without_a_service_day_gets_no_invoice() {
        let month = Month::new(2026, 10).expect("a month");
        let closings = assemble(
            month,
            Decimal::ZERO,
            vec![period(1, "pro", 99_000, "2026-09-01", Some("2026-10-01"))],
            Vec::new(),
            Vec::new(),
        );
        assert!(closings.is_empty());
    }

    #[test]
    fn a_zero_total_is_paid_at_once() {
        let month = Month::new(2026, 10).expect("a month");
        let closings = assemble(
            month,
            Decimal::ZERO,
            vec![period(1, "free", 0, "2026-10-05", None)],
            Vec::new(),
            Vec::new(),
        );
        assert_eq!(closings[0].status, InvoiceStatus::Paid);
    }
}
