//! `[[expect]]` tables: what a QA engineer knows a scenario must bill, charge and leave,
//! written into the file and checked against the outcome with a diagnostic at the expectation.
//!
//! ```toml
//! [[expect]]
//! invoice = { tenant = "acme-analytics", period = "2026-10", total = "70258", status = "paid" }
//!
//! [[expect]]
//! payment = { tenant = "acme-analytics", on = "2026-11-05", outcome = "succeeded" }
//!
//! [[expect]]
//! subscription = { tenant = "acme-analytics", plan = "pro", status = "active" }
//! ```
//!
//! An invoice expectation may also name `subtotal` and `tax`; a payment one `attempt`,
//! `amount` and `failure_code`. A field left out is not checked.

use std::ops::Range;
use std::str::FromStr;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use toml::Spanned;

use super::diagnostic::{Problems, ScenarioError};
use super::outcome::{Outcome, OutcomeInvoice};
use super::raw::RawExpect;
use billing_harness::model::{InvoiceStatus, PaymentOutcome, SubscriptionStatus};

/// One checked `[[expect]]` table, with where it is written.
#[derive(Debug, Clone, PartialEq)]
pub struct Expectation {
    /// What must hold.
    pub expected: Expected,
    /// The inline table (`invoice = { .. }`), where a missing invoice or attempt is shown.
    span: Range<usize>,
    /// Each field's value, where a field that differs is shown.
    fields: Vec<(&'static str, Range<usize>)>,
}

/// What one `[[expect]]` table asks of the outcome; fields left out are `None` and not checked.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Expected {
    /// `invoice = { tenant, period, total, subtotal, tax, status }`.
    Invoice {
        /// The tenant's key.
        tenant: String,
        /// The month billed, `YYYY-MM`.
        period: String,
        /// The amount charged, tax included.
        total: Option<Decimal>,
        /// The amount before tax.
        subtotal: Option<Decimal>,
        /// The tax.
        tax: Option<Decimal>,
        /// Its status at `until`.
        status: Option<InvoiceStatus>,
    },
    /// `payment = { tenant, on, outcome, attempt, amount, failure_code }`.
    Payment {
        /// The tenant's key.
        tenant: String,
        /// The day of the attempt, in the catalog's time zone.
        on: NaiveDate,
        /// What the gateway answered.
        outcome: PaymentOutcome,
        /// The attempt's number for its invoice (1 to 4).
        attempt: Option<i16>,
        /// The amount asked for.
        amount: Option<Decimal>,
        /// The gateway's failure code.
        failure_code: Option<String>,
    },
    /// `subscription = { tenant, plan, status }`: the tenant's last subscription at `until`.
    Subscription {
        /// The tenant's key.
        tenant: String,
        /// Its plan's key.
        plan: Option<String>,
        /// Its status.
        status: Option<SubscriptionStatus>,
    },
}

fn span<T>(s: &Spanned<T>) -> Range<usize> {
    s.span()
}

fn parsed<T: FromStr>(
    problems: &mut Problems<'_>,
    value: Option<&Spanned<String>>,
    what: &str,
    help: &str,
) -> Option<T> {
    let value = value?;
    match value.get_ref().parse::<T>() {
        Ok(v) => Some(v),
        Err(_) => {
            problems.add(
                span(value),
                format!("{what} {:?} is not valid here", value.get_ref()),
                format!("invalid {what}"),
                Some(help.to_owned()),
            );
            None
        }
    }
}

fn options(values: &[impl std::fmt::Display]) -> String {
    let names: Vec<String> = values.iter().map(ToString::to_string).collect();
    format!("one of: {}", names.join(", "))
}

/// Checks the `[[expect]]` tables of a scenario whose tenants and plans are `tenants` and
/// `plans`; problems go to `problems`.
pub(crate) fn expectations(
    problems: &mut Problems<'_>,
    raw: &[Spanned<RawExpect>],
    tenants: &[&str],
    plans: &[&str],
) -> Vec<Expectation> {
    let mut out = Vec::new();
    for table in raw {
        let r = table.get_ref();
        let given = [
            r.invoice.is_some(),
            r.payment.is_some(),
            r.subscription.is_some(),
        ]
        .iter()
        .filter(|x| **x)
        .count();
        if given != 1 {
            problems.add(
                span(table),
                format!("an [[expect]] table names {given} things to check"),
                "exactly one of invoice, payment, subscription",
                Some(
                    "write one per table: invoice = { .. }, payment = { .. } or subscription = { .. }"
                        .into(),
                ),
            );
            continue;
        }
        let tenant = |problems: &mut Problems<'_>, key: &Spanned<String>| {
            if !tenants.contains(&key.get_ref().as_str()) {
                problems.add(
                    span(key),
                    format!("unknown tenant {:?}", key.get_ref()),
                    "not a [[tenant]] of this scenario",
                    Some(format!("one of: {}", tenants.join(", "))),
                );
            }
            key.get_ref().clone()
        };
        let money = "an amount is a quoted decimal, like \"70258\" or \"12.50\"";
        let mut fields: Vec<(&'static str, Range<usize>)> = Vec::new();
        let mut at = |name: &'static str, value: Option<Range<usize>>| {
            if let Some(value) = value {
                fields.push((name, value));
            }
        };
        let inline = r
            .invoice
            .as_ref()
            .map(span)
            .or(r.payment.as_ref().map(span))
            .or(r.subscription.as_ref().map(span))
            .unwrap_or_else(|| span(table));
        let expected = if let Some(i) = &r.invoice {
            let i = i.get_ref();
            at("total", i.total.as_ref().map(span));
            at("subtotal", i.subtotal.as_ref().map(span));
            at("tax", i.tax.as_ref().map(span));
            at("status", i.status.as_ref().map(span));
            let period = i.period.get_ref();
            if NaiveDate::parse_from_str(&format!("{period}-01"), "%Y-%m-%d").is_err() {
                problems.add(
                    span(&i.period),
                    format!("period {period:?} is not a month"),
                    "not YYYY-MM",
                    Some("write the month billed as \"2026-10\"".into()),
                );
            }
            Expected::Invoice {
                tenant: tenant(problems, &i.tenant),
                period: period.clone(),
                total: parsed(problems, i.total.as_ref(), "total", money),
                subtotal: parsed(problems, i.subtotal.as_ref(), "subtotal", money),
                tax: parsed(problems, i.tax.as_ref(), "tax", money),
                status: parsed(
                    problems,
                    i.status.as_ref(),
                    "invoice status",
                    &options(InvoiceStatus::ALL),
                ),
            }
        } else if let Some(p) = &r.payment {
            let p = p.get_ref();
            at("outcome", Some(span(&p.outcome)));
            at("attempt", p.attempt.as_ref().map(span));
            at("amount", p.amount.as_ref().map(span));
            at("failure_code", p.failure_code.as_ref().map(span));
            let attempt = p.attempt.as_ref().and_then(|a| {
                let n = *a.get_ref();
                if (1..=4).contains(&n) {
                    i16::try_from(n).ok()
                } else {
                    problems.add(
                        span(a),
                        format!("attempt {n} cannot happen"),
                        "not 1 to 4",
                        Some("an invoice is attempted on the charge day and retried up to 3 times: attempts 1 to 4".into()),
                    );
                    None
                }
            });
            Expected::Payment {
                tenant: tenant(problems, &p.tenant),
                on: parsed(
                    problems,
                    Some(&p.on),
                    "day",
                    "write a day as \"2026-11-05\"",
                )
                .unwrap_or(NaiveDate::MIN),
                outcome: parsed(
                    problems,
                    Some(&p.outcome),
                    "payment outcome",
                    &options(PaymentOutcome::ALL),
                )
                .unwrap_or(PaymentOutcome::ALL[0]),
                attempt,
                amount: parsed(problems, p.amount.as_ref(), "amount", money),
                failure_code: p.failure_code.as_ref().map(|c| c.get_ref().clone()),
            }
        } else if let Some(s) = &r.subscription {
            let s = s.get_ref();
            at("plan", s.plan.as_ref().map(span));
            at("status", s.status.as_ref().map(span));
            if let Some(plan) = &s.plan
                && !plans.contains(&plan.get_ref().trim_end_matches(" (contract)").trim_end())
            {
                problems.add(
                    span(plan),
                    format!("unknown plan {:?}", plan.get_ref()),
                    "not a plan of the catalog",
                    Some(format!(
                        "one of: {} (a contract's plan is \"BASE (contract)\")",
                        plans.join(", ")
                    )),
                );
            }
            Expected::Subscription {
                tenant: tenant(problems, &s.tenant),
                plan: s.plan.as_ref().map(|p| p.get_ref().clone()),
                status: parsed(
                    problems,
                    s.status.as_ref(),
                    "subscription status",
                    &options(SubscriptionStatus::ALL),
                ),
            }
        } else {
            continue;
        };
        out.push(Expectation {
            expected,
            span: inline,
            fields,
        });
    }
    out
}

/// One field that differs: its name, what the file says, what the run gave.
type Differs = Vec<(&'static str, String, String)>;

fn compare<T: PartialEq + ToString>(
    out: &mut Differs,
    name: &'static str,
    want: Option<&T>,
    got: &T,
) {
    if let Some(want) = want
        && want != got
    {
        out.push((name, want.to_string(), got.to_string()));
    }
}

fn lines_of(invoice: &OutcomeInvoice) -> String {
    let mut text = String::from("the invoice the run wrote:");
    for l in &invoice.lines {
        text.push_str(&format!(
            "\n  {} {} {}{} to {} ({} days) {}",
            l.kind,
            l.plan,
            l.metric
                .as_deref()
                .map_or(String::new(), |m| format!("{m} ")),
            l.from,
            l.until,
            l.days,
            l.amount
        ));
    }
    text.push_str(&format!(
        "\n  subtotal {}, tax {}, total {}",
        invoice.subtotal, invoice.tax, invoice.total
    ));
    text
}

impl Expectation {
    /// What this expectation finds wrong in `outcome`: `(message, hint)`, or `None` when it
    /// holds.
    pub fn mismatch(&self, outcome: &Outcome) -> Option<(String, Option<String>)> {
        self.differs(outcome)
            .map(|(message, hint, _)| (message, hint))
    }

    /// [`Expectation::mismatch`] and the first field that differs (none when nothing matched
    /// the invoice or attempt at all).
    fn differs(&self, outcome: &Outcome) -> Option<(String, Option<String>, Option<&'static str>)> {
        let mut differs = Differs::new();
        let found = match &self.expected {
            Expected::Invoice {
                tenant,
                period,
                total,
                subtotal,
                tax,
                status,
            } => {
                let Some(got) = outcome
                    .invoices
                    .iter()
                    .find(|i| &i.tenant == tenant && &i.period == period)
                else {
                    let periods: Vec<&str> = outcome
                        .invoices
                        .iter()
                        .filter(|i| &i.tenant == tenant)
                        .map(|i| i.period.as_str())
                        .collect();
                    return Some((
                        format!("expected an invoice of {tenant} for {period}, got none"),
                        Some(format!(
                            "{tenant}'s invoices: {}",
                            if periods.is_empty() {
                                "none".to_owned()
                            } else {
                                periods.join(", ")
                            }
                        )),
                        None,
                    ));
                };
                compare(&mut differs, "total", total.as_ref(), &got.total);
                compare(&mut differs, "subtotal", subtotal.as_ref(), &got.subtotal);
                compare(&mut differs, "tax", tax.as_ref(), &got.tax);
                compare(&mut differs, "status", status.as_ref(), &got.status);
                (!differs.is_empty()).then(|| {
                    (
                        format!("invoice of {tenant} for {period}: {}", said(&differs)),
                        Some(lines_of(got)),
                    )
                })
            }
            Expected::Payment {
                tenant,
                on,
                outcome: want,
                attempt,
                amount,
                failure_code,
            } => {
                let tried: Vec<_> = outcome
                    .payments
                    .iter()
                    .filter(|p| &p.tenant == tenant)
                    .collect();
                let Some(got) = tried.iter().find(|p| &p.on == on) else {
                    let days: Vec<String> = tried
                        .iter()
                        .map(|p| format!("{} ({})", p.on, p.outcome))
                        .collect();
                    return Some((
                        format!("expected a payment attempt of {tenant} on {on}, got none"),
                        Some(format!(
                            "{tenant}'s attempts: {}",
                            if days.is_empty() {
                                "none".to_owned()
                            } else {
                                days.join(", ")
                            }
                        )),
                        None,
                    ));
                };
                compare(&mut differs, "outcome", Some(want), &got.outcome);
                compare(&mut differs, "attempt", attempt.as_ref(), &got.attempt);
                compare(&mut differs, "amount", amount.as_ref(), &got.amount);
                if let Some(code) = failure_code
                    && got.failure_code.as_ref() != Some(code)
                {
                    differs.push((
                        "failure_code",
                        code.clone(),
                        got.failure_code.clone().unwrap_or_else(|| "none".into()),
                    ));
                }
                (!differs.is_empty()).then(|| {
                    (
                        format!("payment attempt of {tenant} on {on}: {}", said(&differs)),
                        Some(format!(
                            "the attempt the run made: invoice {}, attempt {}, amount {}, {}",
                            got.period, got.attempt, got.amount, got.outcome
                        )),
                    )
                })
            }
            Expected::Subscription {
                tenant,
                plan,
                status,
            } => {
                let Some(got) = outcome.subscriptions.iter().find(|s| &s.tenant == tenant) else {
                    return Some((
                        format!("expected a subscription of {tenant}, got none"),
                        None,
                        None,
                    ));
                };
                compare(&mut differs, "plan", plan.as_ref(), &got.plan);
                compare(&mut differs, "status", status.as_ref(), &got.status);
                (!differs.is_empty()).then(|| {
                    let changes: Vec<String> = got
                        .changes
                        .iter()
                        .map(|c| format!("{} {}", c.on, c.status))
                        .collect();
                    (
                        format!("subscription of {tenant}: {}", said(&differs)),
                        Some(format!("its status changes: {}", changes.join(", "))),
                    )
                })
            }
        };
        found.map(|(message, hint)| (message, hint, differs.first().map(|d| d.0)))
    }
}

fn said(differs: &Differs) -> String {
    let parts: Vec<String> = differs
        .iter()
        .map(|(name, want, got)| format!("expected {name} {want}, got {got}"))
        .collect();
    parts.join("; ")
}

/// Every expectation of a scenario that `outcome` does not meet, as one diagnostic pointing at
/// each (`path` and `source` are the scenario file's).
pub(crate) fn check(
    path: &str,
    source: &str,
    expectations: &[Expectation],
    outcome: &Outcome,
) -> Result<(), ScenarioError> {
    let mut problems = Problems::new(path, source);
    for e in expectations {
        if let Some((message, hint, field)) = e.differs(outcome) {
            let at = field
                .and_then(|f| e.fields.iter().find(|(name, _)| *name == f))
                .map_or_else(|| e.span.clone(), |(_, span)| span.clone());
            problems.add(at, message, "expected here", hint);
        }
    }
    problems.finish()
}
