//! What a story leaves behind, in one shape for both sides: the model fills a [`Record`] from the
//! steps alone, the platform's run fills one from the database, and the property compares them.
//! On a mismatch [`diff`] prints, section by section, the lines only the model has (`-`) and the
//! lines only the platform wrote (`+`).

use billing_harness::billing::{Invoice, Line, LineKind};
use billing_harness::model::{Currency, Month};
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Asia::Seoul;
use rust_decimal::Decimal;

use super::model::Story;

/// Everything compared after a story: each step's outcome, the invoices with every line, the
/// charge attempts, the gateway's captures, and the subscriptions with their plan periods and
/// the history of their states (the sync events, one per change, with its instant).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Record {
    /// Per step: `None` when it succeeded, else its error code.
    pub(crate) steps: Vec<Option<String>>,
    /// By tenant, then month.
    pub(crate) invoices: Vec<InvoiceRec>,
    /// In the order they were made.
    pub(crate) payments: Vec<PaymentRec>,
    /// The amounts the gateway captured, in order.
    pub(crate) captures: Vec<Decimal>,
    /// In creation order; `SubscriptionRec::index` numbers them from 0.
    pub(crate) subscriptions: Vec<SubscriptionRec>,
    /// Every plan period (billing row), in creation order.
    pub(crate) periods: Vec<PeriodRec>,
    /// Every state a subscription was put in, in order.
    pub(crate) history: Vec<HistoryRec>,
}

/// An invoice, as [`billing_harness::platform::StoredInvoice`] holds it plus its due day; the
/// amounts of the platform's are read raw from the database (4 decimals), not rescaled.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct InvoiceRec {
    pub(crate) tenant: usize,
    pub(crate) status: String,
    pub(crate) due_on: NaiveDate,
    pub(crate) invoice: Invoice,
}

/// One charge attempt.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PaymentRec {
    pub(crate) tenant: usize,
    pub(crate) period: Month,
    pub(crate) at: DateTime<Utc>,
    pub(crate) attempt: i16,
    pub(crate) amount: Decimal,
    pub(crate) outcome: String,
    pub(crate) failure_code: Option<String>,
    /// The last four digits of the card charged; `None` when the org had no card.
    pub(crate) card: Option<String>,
}

/// A subscription at the end of the story.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SubscriptionRec {
    pub(crate) index: usize,
    pub(crate) tenant: usize,
    pub(crate) plan: String,
    pub(crate) status: String,
    pub(crate) started_on: NaiveDate,
    pub(crate) cancelled_on: Option<NaiveDate>,
    pub(crate) cancel_reason: Option<String>,
    pub(crate) current_period: (NaiveDate, NaiveDate),
    pub(crate) last_plan_change_at: Option<DateTime<Utc>>,
}

/// A plan period `[starts_on, ends_on)` of a subscription.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PeriodRec {
    pub(crate) subscription: usize,
    pub(crate) plan: String,
    pub(crate) starts_on: NaiveDate,
    pub(crate) ends_on: Option<NaiveDate>,
}

/// A state a subscription was put in, and when.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HistoryRec {
    pub(crate) subscription: usize,
    pub(crate) at: DateTime<Utc>,
    pub(crate) plan: String,
    pub(crate) status: String,
    pub(crate) started_on: NaiveDate,
    pub(crate) cancelled_on: Option<NaiveDate>,
}

/// An instant as a Seoul wall-clock time.
pub(crate) fn kst(at: DateTime<Utc>) -> String {
    at.with_timezone(&Seoul)
        .format("%Y-%m-%d %H:%M KST")
        .to_string()
}

/// An amount with exactly the currency's decimals when it has no more than those, else as
/// stored (so an unfloored `9.995` shows as such); equal amounts always print alike.
pub(crate) fn money(amount: Decimal, currency: Currency) -> String {
    let normal = amount.normalize();
    if normal.scale() <= currency.minor_units() {
        let mut exact = normal;
        exact.rescale(currency.minor_units());
        exact.to_string()
    } else {
        normal.to_string()
    }
}

fn opt<T: ToString>(value: &Option<T>) -> String {
    value.as_ref().map_or_else(|| "-".to_owned(), T::to_string)
}

fn line_text(tenant: usize, month: Month, currency: Currency, line: &Line) -> String {
    let head = format!("  t{tenant} {month} {} {}", line.kind.as_str(), line.plan);
    let span = format!("{}..{} {}d", line.from, line.until, line.days);
    match line.kind {
        LineKind::Base => format!("{head} {span}: {}", money(line.amount, currency)),
        LineKind::Overage => format!(
            "{head} {} {span} used {} included {} over {}: {}",
            opt(&line.metric),
            opt(&line.used),
            opt(&line.included),
            opt(&line.overage),
            money(line.amount, currency)
        ),
    }
}

/// An invoice as a head line (`head` says its status and due day, if known) and one line per
/// invoice line.
pub(crate) fn invoice_text(tenant: usize, head: &str, invoice: &Invoice) -> Vec<String> {
    let i = invoice;
    let head = if head.is_empty() {
        String::new()
    } else {
        format!(" {head}")
    };
    let mut out = vec![format!(
        "t{tenant} {}{head} {}: subtotal {} tax {} total {}",
        i.month,
        i.currency,
        money(i.subtotal, i.currency),
        money(i.tax, i.currency),
        money(i.total, i.currency)
    )];
    out.extend(
        i.lines
            .iter()
            .map(|l| line_text(tenant, i.month, i.currency, l)),
    );
    out
}

impl Record {
    /// The record as titled sections of one line per fact.
    pub(crate) fn sections(&self, story: &Story) -> Vec<(&'static str, Vec<String>)> {
        let steps = story
            .steps
            .iter()
            .zip(&self.steps)
            .enumerate()
            .map(|(i, (step, code))| {
                format!(
                    "step {} {}: {}",
                    i + 1,
                    step.describe(),
                    code.as_deref().unwrap_or("ok")
                )
            })
            .collect();
        let mut invoices = Vec::new();
        for rec in &self.invoices {
            let head = format!("{} due {}", rec.status, rec.due_on);
            invoices.extend(invoice_text(rec.tenant, &head, &rec.invoice));
        }
        let currency = story.catalog.currency;
        let payments = self
            .payments
            .iter()
            .map(|p| {
                format!(
                    "t{} {} attempt {} at {}: {} {} {} card {}",
                    p.tenant,
                    p.period,
                    p.attempt,
                    kst(p.at),
                    money(p.amount, currency),
                    p.outcome,
                    opt(&p.failure_code),
                    opt(&p.card)
                )
            })
            .collect();
        let captures = self.captures.iter().map(|c| money(*c, currency)).collect();
        let subscriptions = self
            .subscriptions
            .iter()
            .map(|s| {
                format!(
                    "sub{} t{} {} {} started {} cancelled {} ({}) current {}..{} last change {}",
                    s.index,
                    s.tenant,
                    s.plan,
                    s.status,
                    s.started_on,
                    opt(&s.cancelled_on),
                    opt(&s.cancel_reason),
                    s.current_period.0,
                    s.current_period.1,
                    s.last_plan_change_at.map_or_else(|| "-".to_owned(), kst)
                )
            })
            .collect();
        let periods = self
            .periods
            .iter()
            .map(|p| {
                format!(
                    "sub{} {} {}..{}",
                    p.subscription,
                    p.plan,
                    p.starts_on,
                    opt(&p.ends_on)
                )
            })
            .collect();
        let history = self
            .history
            .iter()
            .map(|h| {
                format!(
                    "{} sub{} {} {} started {} cancelled {}",
                    kst(h.at),
                    h.subscription,
                    h.plan,
                    h.status,
                    h.started_on,
                    opt(&h.cancelled_on)
                )
            })
            .collect();
        vec![
            ("step outcomes", steps),
            ("invoices", invoices),
            ("payments", payments),
            ("gateway captures", captures),
            ("subscriptions", subscriptions),
            ("plan periods", periods),
            ("subscription states (sync events)", history),
        ]
    }
}

/// The sections where `expected` and `actual` differ, each as a line diff: `-` only in the
/// model, `+` only in the platform, two spaces in both.
pub(crate) fn diff(story: &Story, expected: &Record, actual: &Record) -> String {
    let mut out =
        String::from("the platform disagrees with the story model (- model, + platform)\n");
    for ((title, want), (_, got)) in expected
        .sections(story)
        .into_iter()
        .zip(actual.sections(story))
    {
        if want != got {
            out.push_str(&format!("== {title}\n"));
            for line in diff_lines(&want, &got) {
                out.push_str(&line);
                out.push('\n');
            }
        }
    }
    if expected != actual && !out.contains("\n==") {
        // Equal text, unequal values: cannot happen with the formats above, but never hide it.
        out.push_str(&format!(
            "(no visible difference)\n{expected:#?}\n{actual:#?}\n"
        ));
    }
    out
}

/// A longest-common-subsequence line diff; sections are a few dozen lines at most.
pub(crate) fn diff_lines(want: &[String], got: &[String]) -> Vec<String> {
    let (n, m) = (want.len(), got.len());
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if want[i] == got[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < n || j < m {
        if i < n && j < m && want[i] == got[j] {
            out.push(format!("  {}", want[i]));
            i += 1;
            j += 1;
        } else if j == m || (i < n && lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push(format!("- {}", want[i]));
            i += 1;
        } else {
            out.push(format!("+ {}", got[j]));
            j += 1;
        }
    }
    out
}
