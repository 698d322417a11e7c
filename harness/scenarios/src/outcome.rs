//! What a scenario run produced: the [`Outcome`] the runner builds from what an implementation
//! reads back, that expectations are checked against, and that snapshots, the report and
//! `cargo xtask scenario run --format json` show. Plain data: nothing here touches a database.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset, NaiveDate, TimeDelta};
use rust_decimal::Decimal;
use serde::{Serialize, Serializer};

use billing_harness::billing::Line;
use billing_harness::model::{InvoiceStatus, PaymentOutcome, SubscriptionStatus};
use billing_harness::products::ProductMock;

/// What a scenario run produced: the JSON of `cargo xtask scenario run --format json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// The scenario's name.
    pub scenario: String,
    /// Whether every step gave exactly the error it expected (or none).
    pub holds: bool,
    /// Why it does not hold.
    pub failures: Vec<String>,
    /// Every invoice finalised by the end of the run.
    pub invoices: Vec<OutcomeInvoice>,
    /// Every charge attempt.
    pub payments: Vec<OutcomePayment>,
    /// The last subscription of each tenant.
    pub subscriptions: Vec<OutcomeSubscription>,
    /// Every step that returned an error.
    pub errors: Vec<OutcomeError>,
    /// Each product of the catalog after sync ran to idle at `until`: whether it converged with
    /// the platform, what its mock saw, and what it holds. Empty on a database without product
    /// mocks (an attached QA database) or for a run stopped before `until`.
    pub products: Vec<OutcomeProduct>,
    /// Steps and jobs not applied because they fall after
    /// [`RunOptions::stop_at`](crate::RunOptions::stop_at).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub later: Vec<String>,
    /// Every purge step: what it deleted, per table, and the deletions products were told of.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub purges: Vec<OutcomePurge>,
}

/// A purge step in an [`Outcome`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutcomePurge {
    /// The step's number.
    pub step: usize,
    /// The step in words (`purge organization acme`).
    pub purged: String,
    /// How far it reached (`organization`, `owner_data`, `user_left`).
    pub scope: billing_harness::purge::Scope,
    /// Rows deleted per table.
    pub rows: BTreeMap<String, u64>,
    /// Deletions queued for products: `product entity` and how many.
    pub told: BTreeMap<String, usize>,
}

/// An invoice in an [`Outcome`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutcomeInvoice {
    /// The tenant's key.
    pub tenant: String,
    /// `YYYY-MM`.
    pub period: String,
    /// `finalized`, `paid`, `past_due` or `uncollectible`.
    pub status: InvoiceStatus,
    /// `KRW` or `USD`.
    pub currency: String,
    /// Base and overage lines.
    pub lines: Vec<OutcomeLine>,
    /// Sum of the lines.
    #[serde(with = "rust_decimal::serde::str")]
    pub subtotal: Decimal,
    /// Tax.
    #[serde(with = "rust_decimal::serde::str")]
    pub tax: Decimal,
    /// Subtotal plus tax.
    #[serde(with = "rust_decimal::serde::str")]
    pub total: Decimal,
}

/// An invoice line in an [`Outcome`]: the platform's own [`Line`], every quantity its amount
/// was computed from (`kind` is `base` or `overage` in JSON), so that an outcome shows the very
/// lines the billing rules produce. A driver builds it from its implementation's lines.
pub type OutcomeLine = Line;

/// A charge attempt in an [`Outcome`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutcomePayment {
    /// The tenant's key.
    pub tenant: String,
    /// The invoice's month, `YYYY-MM`.
    pub period: String,
    /// The day of the attempt, `YYYY-MM-DD` (billing time zone).
    pub on: NaiveDate,
    /// 1 for the charge on the charge day, 2 to 4 for the daily retries.
    pub attempt: i16,
    /// The amount asked of the card: the invoice's total, tax included.
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
    /// `succeeded` or `failed`.
    pub outcome: PaymentOutcome,
    /// Why it failed (`declined`, `insufficient_funds`, `expired_card`, `no_card`, ...); `null`
    /// when it succeeded, always present.
    pub failure_code: Option<String>,
}

/// A tenant's last subscription in an [`Outcome`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutcomeSubscription {
    /// The tenant's key.
    pub tenant: String,
    /// Its plan.
    pub plan: String,
    /// `active`, `past_due` or `cancelled`.
    pub status: SubscriptionStatus,
    /// Every change of its status, oldest first, starting with `active` on the day it started.
    pub changes: Vec<OutcomeStatusChange>,
}

/// A change of a subscription's status in an [`Outcome`], read from the sync events the platform
/// queues in the same transaction as each change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutcomeStatusChange {
    /// The day it took effect, `YYYY-MM-DD` (billing time zone): the day the event was queued,
    /// or for `cancelled` the subscription's `cancelled_on`, its first day not served.
    pub on: NaiveDate,
    /// The status from that day: `active`, `past_due` or `cancelled`.
    pub status: String,
}

/// A step that returned an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutcomeError {
    /// 1-based index among the steps.
    pub step: usize,
    /// The error's code.
    pub code: String,
}

/// A product at the end of a run: convergence, its mock's figures, and what it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutcomeProduct {
    /// The product's key in the catalog.
    pub key: String,
    /// Whether it holds what the platform says, with nothing undelivered, no dead letter and
    /// (for a strict mock) no violation. A run with a product that did not converge fails.
    pub converged: bool,
    /// The drift left after repair, one line per entity, tenants named by their keys.
    pub drift: Vec<String>,
    /// The drift the reconciler found and repaired through the outbox on the way.
    pub repaired: Vec<String>,
    /// What its strict mock objected to (recorded for a lenient mock too).
    pub violations: Vec<String>,
    /// Requests its mock received: writes, replays and read-backs.
    pub requests: usize,
    /// Faults its mock put on writes, scripted or drawn.
    pub faults_applied: u64,
    /// Outbox rows to it given up on.
    pub dead_letters: usize,
    /// When it converged, in test time (the catalog's time zone): its last delivery, from which
    /// on it held the platform's data. `null` when it did not converge or was never written to
    /// (or the implementation does not say).
    pub converged_at: Option<DateTime<FixedOffset>>,
    /// The rows to it that waited longest from queued to delivered, and how long: an outage shows
    /// here. `null` when every row was delivered the instant it was queued.
    pub longest_wait: Option<LongestWait>,
    /// What it holds at the end.
    pub state: OutcomeProductState,
}

/// The rows to a product that waited longest, from queued to delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LongestWait {
    /// How many rows waited that long.
    pub rows: usize,
    /// How long, as an ISO 8601 duration of test time (`PT2H41M13.512S`).
    #[serde(serialize_with = "iso_duration")]
    pub wait: TimeDelta,
}

/// `wait` as an ISO 8601 duration in hours, minutes and seconds: `PT2H41M13.512S`, `PT0S`.
fn iso_duration<S: Serializer>(wait: &TimeDelta, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("PT{}", hms(*wait, ["H", "M", "S"], "")))
}

/// `wait` in hours, minutes and seconds (to the millisecond) named by `units`, each followed by
/// `sep`, zero parts left out: `2H41M13.512S` (or `0S`).
fn hms(wait: TimeDelta, units: [&str; 3], sep: &str) -> String {
    let ms = wait.num_milliseconds().max(0);
    let (h, m, s, frac) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}{}{sep}", units[0]));
    }
    if m > 0 {
        out.push_str(&format!("{m}{}{sep}", units[1]));
    }
    if s > 0 || frac > 0 || out.is_empty() {
        let seconds = if frac > 0 {
            format!("{s}.{frac:03}").trim_end_matches('0').to_owned()
        } else {
            s.to_string()
        };
        out.push_str(&format!("{seconds}{}{sep}", units[2]));
    }
    out.trim_end().to_owned()
}

impl LongestWait {
    /// The wait for people: `2h 41m 13.512s`.
    pub fn wait_text(&self) -> String {
        duration_text(self.wait)
    }
}

/// A length of time for people: `2h 41m 13.512s`.
pub(crate) fn duration_text(length: TimeDelta) -> String {
    hms(length, ["h", "m", "s"], " ")
}

/// What a product holds, without raw ids: users by e-mail, tenants by their keys.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OutcomeProductState {
    /// Its users, in the order they were created.
    pub users: Vec<OutcomeProductUser>,
    /// Its tenants, in the order they were created.
    pub tenants: Vec<OutcomeProductTenant>,
    /// Its subscriptions, one per tenant that has one; a cancelled one stays, cancelled.
    pub subscriptions: Vec<OutcomeProductSubscription>,
}

/// A user a product holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutcomeProductUser {
    /// E-mail address (the login).
    pub email: String,
    /// `owner`, `admin` or `member` in its organization.
    pub role: String,
}

/// A tenant a product holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutcomeProductTenant {
    /// The tenant's key in the scenario (its name when it is not one of the scenario's).
    pub key: String,
    /// `provisioning`, `active` or `suspended`.
    pub status: String,
}

/// A subscription a product holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutcomeProductSubscription {
    /// The tenant's key in the scenario.
    pub tenant: String,
    /// The plan's key.
    pub plan: String,
    /// `active`, `past_due` or `cancelled`, the platform's words.
    pub status: String,
}

/// What an implementation's product sync says of one product once it ran to idle at `until`:
/// what [`OutcomeProduct::of`] joins with what the product's mock saw and holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProductSync {
    /// The drift left after repair, one line per entity, tenants named by their keys.
    pub drift: Vec<String>,
    /// The drift found and repaired on the way.
    pub repaired: Vec<String>,
    /// Whether rows to the product were still undelivered when it was compared.
    pub busy: bool,
    /// Rows to the product given up on.
    pub dead_letters: usize,
    /// Its last delivery, in the catalog's time zone (`None`: never written to, or unknown).
    pub last_delivery: Option<DateTime<FixedOffset>>,
    /// The rows that waited longest from queued to delivered (`None`: none waited, or unknown).
    pub longest_wait: Option<LongestWait>,
}

impl OutcomeProduct {
    /// A product at the end of a run: what `mock` saw and holds, with what the implementation's
    /// `sync` says of it. Tenants are named by `tenant` (the scenario's key for an id the run
    /// made; `None` keeps the name the product holds). It converged when no drift is left,
    /// nothing was in flight or given up on, and a strict mock saw no violation; then it
    /// converged at its last delivery.
    pub fn of(
        mock: &ProductMock,
        sync: ProductSync,
        tenant: impl Fn(i64) -> Option<String>,
    ) -> OutcomeProduct {
        let violations = mock.violations();
        let held = mock.read_state();
        let tenant_key = |id: i64, name: &str| tenant(id).unwrap_or_else(|| name.to_owned());
        let state = OutcomeProductState {
            users: held
                .users
                .iter()
                .map(|u| OutcomeProductUser {
                    email: u.email.clone(),
                    role: u.role.clone(),
                })
                .collect(),
            tenants: held
                .tenants
                .iter()
                .map(|t| OutcomeProductTenant {
                    key: tenant_key(t.id, &t.name),
                    status: t.status.clone(),
                })
                .collect(),
            subscriptions: held
                .subscriptions
                .iter()
                .map(|s| OutcomeProductSubscription {
                    tenant: tenant_key(s.tenant_id, &format!("tenant {}", s.tenant_id)),
                    plan: s.plan.clone(),
                    status: s.status.clone(),
                })
                .collect(),
        };
        let converged = sync.drift.is_empty()
            && !sync.busy
            && sync.dead_letters == 0
            && (violations.is_empty() || !mock.is_strict());
        OutcomeProduct {
            key: mock.key().to_owned(),
            converged,
            converged_at: sync.last_delivery.filter(|_| converged),
            longest_wait: sync.longest_wait.filter(|w| w.wait > TimeDelta::zero()),
            drift: sync.drift,
            repaired: sync.repaired,
            violations,
            requests: mock.requests(),
            faults_applied: mock.faults_applied(),
            dead_letters: sync.dead_letters,
            state,
        }
    }
}

impl Outcome {
    /// The invoices as text tables, for people at a terminal.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "scenario: {}\nresult:   {}\n",
            self.scenario,
            if self.holds { "holds" } else { "DOES NOT HOLD" }
        );
        for f in &self.failures {
            out.push_str(&format!("  - {f}\n"));
        }
        for i in &self.invoices {
            out.push_str(&format!(
                "\n{} {} ({}, {})\n",
                i.tenant, i.period, i.status, i.currency
            ));
            // The plan column fits its longest key (a contract's is long).
            let w = i
                .lines
                .iter()
                .map(|l| l.plan.len())
                .max()
                .unwrap_or(0)
                .max(12);
            out.push_str(&format!(
                "  {:<8} {:<w$} {:<12} {:>5} {:>14}\n",
                "kind", "plan", "metric", "days", "amount"
            ));
            for l in &i.lines {
                out.push_str(&format!(
                    "  {:<8} {:<w$} {:<12} {:>5} {:>14}\n",
                    l.kind.as_str(),
                    l.plan,
                    l.metric.as_deref().unwrap_or(""),
                    l.days,
                    l.amount
                ));
            }
            let label = 29 + w;
            out.push_str(&format!("  {:<label$} {:>14}\n", "subtotal", i.subtotal));
            out.push_str(&format!("  {:<label$} {:>14}\n", "tax", i.tax));
            out.push_str(&format!("  {:<label$} {:>14}\n", "total", i.total));
        }
        if !self.payments.is_empty() {
            out.push_str("\npayments\n");
            for p in &self.payments {
                out.push_str(&format!(
                    "  {} {} {} attempt {} {} {}{}\n",
                    p.on,
                    p.tenant,
                    p.period,
                    p.attempt,
                    p.amount,
                    p.outcome,
                    p.failure_code
                        .as_deref()
                        .map_or_else(String::new, |c| format!(" ({c})"))
                ));
            }
        }
        out.push_str("\nsubscriptions\n");
        for s in &self.subscriptions {
            let changes: Vec<String> = s
                .changes
                .iter()
                .map(|c| format!("{} {}", c.on, c.status))
                .collect();
            out.push_str(&format!(
                "  {} {} {} ({})\n",
                s.tenant,
                s.plan,
                s.status,
                changes.join(", ")
            ));
        }
        if !self.products.is_empty() {
            out.push_str("\nproducts\n");
        }
        for p in &self.products {
            out.push_str(&format!(
                "  {} {}: {} requests, {} faults, {} dead letters; holds {} users, {} tenants",
                p.key,
                match (p.converged, p.converged_at) {
                    (true, Some(at)) =>
                        format!("converged at {}", at.format("%Y-%m-%d %H:%M:%S%.3f")),
                    (true, None) => "converged".to_owned(),
                    (false, _) => "DID NOT CONVERGE".to_owned(),
                },
                p.requests,
                p.faults_applied,
                p.dead_letters,
                p.state.users.len(),
                p.state.tenants.len(),
            ));
            let subscriptions: Vec<String> = p
                .state
                .subscriptions
                .iter()
                .map(|s| format!("{} {} {}", s.tenant, s.plan, s.status))
                .collect();
            if !subscriptions.is_empty() {
                out.push_str(&format!(" ({})", subscriptions.join(", ")));
            }
            out.push('\n');
            if let Some(w) = &p.longest_wait {
                out.push_str(&format!(
                    "    longest wait: {} ({} row{})\n",
                    w.wait_text(),
                    w.rows,
                    if w.rows == 1 { "" } else { "s" }
                ));
            }
            for line in &p.repaired {
                out.push_str(&format!("    repaired: {line}\n"));
            }
            for line in &p.drift {
                out.push_str(&format!("    drift: {line}\n"));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_reads_in_hours_minutes_and_seconds() {
        let wait = |ms: i64| LongestWait {
            rows: 1,
            wait: TimeDelta::milliseconds(ms),
        };
        for (ms, iso, text) in [
            (0, "PT0S", "0s"),
            (1_500, "PT1.5S", "1.5s"),
            (9_673_512, "PT2H41M13.512S", "2h 41m 13.512s"),
            (97_200_000, "PT27H", "27h"),
            (3_600_040, "PT1H0.04S", "1h 0.04s"),
        ] {
            let json = serde_json::to_value(wait(ms)).unwrap();
            assert_eq!(json["wait"], iso, "{ms} ms");
            assert_eq!(wait(ms).wait_text(), text, "{ms} ms");
        }
    }
}
