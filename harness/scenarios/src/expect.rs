//! `[[expect]]` tables checked against an outcome: what a QA engineer knows a scenario must
//! bill, charge and leave, written into the file (and checked into an [`Expectation`] by
//! [`super::validate`]), compared with what the run gave, with a diagnostic at the
//! expectation.
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

use chrono::NaiveDate;

use super::diagnostic::{Problems, ScenarioError};
use super::outcome::{Outcome, OutcomeInvoice, OutcomePayment};
use super::validate::{Expectation, Expected, Scenario};

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
            l.kind.as_str(),
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
                let got = match invoice_of(outcome, tenant, period) {
                    Ok(got) => got,
                    Err((message, hint)) => return Some((message, hint, None)),
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
                let got = match attempt_of(outcome, tenant, *on) {
                    Ok(got) => got,
                    Err((message, hint)) => return Some((message, hint, None)),
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

/// A message and its hint.
type Said = (String, Option<String>);

/// The invoice of `tenant` for `period` in `outcome`, or why there is none, with the periods
/// it has.
fn invoice_of<'a>(
    outcome: &'a Outcome,
    tenant: &str,
    period: &str,
) -> Result<&'a OutcomeInvoice, Said> {
    if let Some(got) = outcome
        .invoices
        .iter()
        .find(|i| i.tenant == tenant && i.period == period)
    {
        return Ok(got);
    }
    let periods: Vec<&str> = outcome
        .invoices
        .iter()
        .filter(|i| i.tenant == tenant)
        .map(|i| i.period.as_str())
        .collect();
    Err((
        format!("expected an invoice of {tenant} for {period}, got none"),
        Some(format!("{tenant}'s invoices: {}", listed(&periods))),
    ))
}

/// The payment attempt of `tenant` on `on` in `outcome`, or why there is none, with the days
/// it was attempted on.
fn attempt_of<'a>(
    outcome: &'a Outcome,
    tenant: &str,
    on: NaiveDate,
) -> Result<&'a OutcomePayment, Said> {
    let tried: Vec<_> = outcome
        .payments
        .iter()
        .filter(|p| p.tenant == tenant)
        .collect();
    if let Some(got) = tried.iter().find(|p| p.on == on) {
        return Ok(got);
    }
    let days: Vec<String> = tried
        .iter()
        .map(|p| format!("{} ({})", p.on, p.outcome))
        .collect();
    Err((
        format!("expected a payment attempt of {tenant} on {on}, got none"),
        Some(format!("{tenant}'s attempts: {}", listed(&days))),
    ))
}

/// `items` joined with commas, or `none`.
fn listed(items: &[impl AsRef<str>]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items
            .iter()
            .map(AsRef::as_ref)
            .collect::<Vec<&str>>()
            .join(", ")
    }
}

fn said(differs: &Differs) -> String {
    let parts: Vec<String> = differs
        .iter()
        .map(|(name, want, got)| format!("expected {name} {want}, got {got}"))
        .collect();
    parts.join("; ")
}

impl Scenario {
    /// Checks `outcome` against the `[[expect]]` tables.
    ///
    /// # Errors
    /// One diagnostic with a problem at each expectation that does not hold (file, line and
    /// column; expected vs got; what the run wrote instead).
    pub fn check(&self, outcome: &Outcome) -> Result<(), ScenarioError> {
        let mut problems = Problems::new(self.path(), self.source());
        for e in &self.expectations {
            if let Some((message, hint, field)) = e.differs(outcome) {
                let at = field
                    .and_then(|f| e.fields.iter().find(|(name, _)| *name == f))
                    .map_or_else(|| e.span.clone(), |(_, span)| span.clone());
                problems.add(at, message, "expected here", hint);
            }
        }
        problems.finish()
    }
}
