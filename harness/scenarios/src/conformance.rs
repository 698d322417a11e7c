//! Conformance: scenarios run through any [`Driver`] and through the reference platform in the
//! same run, every result compared, each difference shown with the rule that applies.

use std::fmt;
use std::path::Path;

use serde::Serialize;

use super::driver::{Driver, DriverError};
use super::load::load;
use super::outcome::{
    Outcome, OutcomeInvoice, OutcomeLine, OutcomePayment, OutcomeProduct, OutcomePurge,
    OutcomeSubscription,
};
use super::run::{Reference, RunError, play};
use super::validate::Scenario;
use billing_harness::billing::LineKind;

/// What a conformance run found, scenario by scenario.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conformance {
    /// The driver's name.
    pub driver: String,
    /// Each scenario, in the order given.
    pub scenarios: Vec<ScenarioConformance>,
}

/// One scenario through a driver, against the reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScenarioConformance {
    /// The file, as named in diagnostics.
    pub path: String,
    /// The scenario's name.
    pub name: String,
    /// Whether the driver did what the reference did (in JSON: `"verdict": "conforms"`, and
    /// `"what"` beside it for `unsupported`).
    #[serde(flatten)]
    pub verdict: Verdict,
    /// Where the driver's results differ from the reference's.
    pub differences: Vec<Difference>,
    /// What did not hold in the driver's run: its `[[expect]]` tables and `expect_error` steps,
    /// as `file:line:col: ...` or `step N on DAY: ...`.
    pub failures: Vec<String>,
}

/// A scenario's verdict for a driver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// Every result is the reference's and every expectation holds.
    Conforms,
    /// At least one difference or failure.
    Differs,
    /// The driver lacks what the scenario needs: neither passed nor failed.
    Unsupported {
        /// What it lacks.
        what: String,
    },
}

/// One result that differs: where, which field, the reference's value, the driver's, and the
/// rule that decides it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// Where: `invoice acme-analytics 2026-10, line 1 (base pro)`, `payment ...`, `step 3`.
    pub at: String,
    /// The field: `amount`, `status`, `on`, ...
    pub field: String,
    /// The reference's value (`none` when it has no such result).
    pub expected: String,
    /// The driver's value (`none` when it has no such result).
    pub got: String,
    /// The rule that decides the value, in words.
    pub rule: &'static str,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}: expected {}, got {}\n    rule: {}",
            self.at, self.field, self.expected, self.got, self.rule
        )
    }
}

impl Conformance {
    /// Whether no scenario differs (unsupported ones are not failures, but are counted).
    pub fn conforms(&self) -> bool {
        self.scenarios
            .iter()
            .all(|s| !matches!(s.verdict, Verdict::Differs))
    }

    /// How many scenarios conform, differ and are not supported.
    pub fn counts(&self) -> (usize, usize, usize) {
        let count =
            |f: fn(&Verdict) -> bool| self.scenarios.iter().filter(|s| f(&s.verdict)).count();
        (
            count(|v| matches!(v, Verdict::Conforms)),
            count(|v| matches!(v, Verdict::Differs)),
            count(|v| matches!(v, Verdict::Unsupported { .. })),
        )
    }

    /// The report for people at a terminal: one line per scenario, then each difference under
    /// the scenario it belongs to, and a summary line.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for s in &self.scenarios {
            let verdict = match &s.verdict {
                Verdict::Conforms => "conforms".to_owned(),
                Verdict::Differs => "DIFFERS".to_owned(),
                Verdict::Unsupported { what } => {
                    format!("not supported ({} has no {what})", self.driver)
                }
            };
            out.push_str(&format!("{}: {verdict}\n", s.path));
            for d in &s.differences {
                out.push_str(&format!("  {d}\n"));
            }
            for f in &s.failures {
                out.push_str(&format!("  - {f}\n"));
            }
        }
        let (conforms, differs, unsupported) = self.counts();
        out.push_str(&format!(
            "{}: {conforms} conform, {differs} differ, {unsupported} not supported, of {} scenarios\n",
            self.driver,
            self.scenarios.len()
        ));
        out
    }
}

/// Runs each scenario file through `driver` and through the reference platform, and compares
/// every invoice (each line and amount), payment attempt, subscription state, step refusal and,
/// when the driver reports them, what the products hold. Each file's default catalog is the
/// `catalog.toml` beside it.
///
/// # Errors
/// A file is not a valid scenario ([`RunError::Invalid`]), the reference failed, or the driver
/// failed (not: lacked something, which is [`Verdict::Unsupported`]).
pub async fn run_with<D: Driver>(
    driver: &D,
    files: &[impl AsRef<Path>],
) -> Result<Conformance, RunError> {
    // Every file is read before any is played: an invalid one fails the run at once.
    let loaded = files
        .iter()
        .map(|file| load(file.as_ref(), None).map_err(Box::new))
        .collect::<Result<Vec<Scenario>, _>>()?;
    let mut scenarios = Vec::new();
    for scenario in &loaded {
        scenarios.push(conform(driver, scenario).await?);
    }
    Ok(Conformance {
        driver: driver.name().to_owned(),
        scenarios,
    })
}

/// One scenario through the reference and through `driver`, compared: what [`run_with`] does
/// for each file, for a caller that plays several at once.
///
/// # Errors
/// The reference failed, or the driver failed (not: lacked something, which is
/// [`Verdict::Unsupported`]).
pub async fn conform<D: Driver>(
    driver: &D,
    scenario: &Scenario,
) -> Result<ScenarioConformance, RunError> {
    let expected = through(&Reference, scenario)
        .await?
        .map_err(|what| RunError::Driver(DriverError::unsupported(what)))?;
    let got = through(driver, scenario).await?;
    let (verdict, differences, failures) = match got {
        Err(what) => (Verdict::Unsupported { what }, Vec::new(), Vec::new()),
        Ok(got) => {
            let differences = compare(&expected, &got);
            // What the reference does not hold either is the scenario's fault, said as such;
            // the driver answers for the rest.
            let mut failures: Vec<String> = expected
                .failures
                .iter()
                .map(|f| format!("the reference does not hold this either: {f}"))
                .collect();
            failures.extend(
                got.failures
                    .into_iter()
                    .filter(|f| !expected.failures.contains(f)),
            );
            let verdict = if differences.is_empty() && failures.is_empty() {
                Verdict::Conforms
            } else {
                Verdict::Differs
            };
            (verdict, differences, failures)
        }
    };
    Ok(ScenarioConformance {
        path: scenario.path().to_owned(),
        name: scenario.name.clone(),
        verdict,
        differences,
        failures,
    })
}

/// The outcome of `scenario` through `driver`, or what the driver lacks for it.
async fn through<D: Driver>(
    driver: &D,
    scenario: &Scenario,
) -> Result<Result<Outcome, String>, RunError> {
    let played = match driver.start(scenario).await {
        Ok(mut session) => play(scenario, &mut session, None).await,
        Err(e) => Err(e),
    };
    match played {
        Ok(outcome) => Ok(Ok(outcome)),
        Err(DriverError::Unsupported { what }) => Ok(Err(what)),
        Err(e) => Err(RunError::InScenario {
            path: scenario.path().to_owned(),
            side: driver.name().to_owned(),
            source: Box::new(RunError::from_driver(e)),
        }),
    }
}

const INVOICE: &str =
    "month M is finalised on the 1st of M+1: one invoice per subscription with a service day in M";
const PERIOD: &str = "a plan period covers [from, until): a change day belongs to the new plan, a cancel day to nobody";
const BASE: &str = "the base fee is prorated: fee × days used / days in the month, rounded down to the currency's unit";
const QUOTA: &str = "the included quota is prorated like the base fee: included × days / days in the month, rounded down";
const USED: &str = "usage counts once, in the plan period of the day it was used";
const OVERAGE: &str =
    "usage above the prorated quota is billed per started block; usage at the quota bills nothing";
const TOTALS: &str = "subtotal = the sum of the lines; tax = subtotal × the tax rate, rounded down to the currency's unit; total = subtotal + tax";
const INVOICE_STATUS: &str = "a zero total is paid at the close; a captured charge pays an invoice; a failed one makes it past_due, and the last failed attempt uncollectible";
const ATTEMPTS: &str = "month M is charged on the charge day (the 5th) of M+1; a failed charge is retried daily for up to 3 days (4 attempts in all)";
const AMOUNT: &str = "a charge captures the invoice's total, tax included";
const OUTCOME: &str = "the card decides an attempt's outcome; a lost reply is looked up by its key, never charged twice";
const SUBSCRIPTION: &str = "after the last failed attempt the subscription is cancelled; a paid invoice renews it; a plan change or cancel takes effect on its day";
const REFUSAL: &str =
    "a rule's refusal: see the error codes of the platform (billing_scenarios::ERROR_CODES)";
const PURGE: &str = "a purge deletes what only its target owns, and tells each product of the users and tenants it deleted";
const PRODUCT: &str =
    "every product holds the platform's users, tenants and subscriptions once sync is idle";

/// Every difference between the reference's outcome and a driver's.
fn compare(expected: &Outcome, got: &Outcome) -> Vec<Difference> {
    let mut out = Vec::new();
    // A tenant that subscribes again has two invoices of one period, written in an order of
    // each side's own: they pair by the first day they bill.
    let by_first_day = |invoices: &[OutcomeInvoice]| {
        let mut sorted = invoices.to_vec();
        sorted.sort_by_key(|i| {
            (
                i.tenant.clone(),
                i.period.clone(),
                i.lines.first().map(|l| l.from),
            )
        });
        sorted
    };
    matched(
        &mut out,
        &by_first_day(&expected.invoices),
        &by_first_day(&got.invoices),
        |i| (i.tenant.clone(), i.period.clone()),
        |i| format!("invoice {} {}", i.tenant, i.period),
        |i| format!("total {} ({})", i.total, i.status),
        INVOICE,
        compare_invoice,
    );
    matched(
        &mut out,
        &expected.payments,
        &got.payments,
        |p| {
            (
                p.tenant.clone(),
                format!("{} attempt {}", p.period, p.attempt),
            )
        },
        |p| format!("payment {} {} attempt {}", p.tenant, p.period, p.attempt),
        |p| format!("{} on {} ({})", p.outcome, p.on, p.amount),
        ATTEMPTS,
        compare_payment,
    );
    matched(
        &mut out,
        &expected.subscriptions,
        &got.subscriptions,
        |s| (s.tenant.clone(), String::new()),
        |s| format!("subscription of {}", s.tenant),
        |s| format!("{} {}", s.plan, s.status),
        SUBSCRIPTION,
        compare_subscription,
    );
    matched(
        &mut out,
        &expected.errors,
        &got.errors,
        |e| (e.step.to_string(), String::new()),
        |e| format!("step {}", e.step),
        |e| format!("refused with {}", e.code),
        REFUSAL,
        |out, at, e, g| field(out, at, "code", &e.code, &g.code, REFUSAL),
    );
    matched(
        &mut out,
        &expected.purges,
        &got.purges,
        |p| (p.step.to_string(), String::new()),
        |p| format!("step {} ({})", p.step, p.purged),
        |p| format!("purged {:?}", p.scope),
        PURGE,
        |out, at, e, g| {
            field(
                out,
                at,
                "scope",
                format!("{:?}", e.scope),
                format!("{:?}", g.scope),
                PURGE,
            );
            let told = |p: &OutcomePurge| format!("{:?}", p.told);
            field(out, at, "told the products", told(e), told(g), PURGE);
        },
    );
    // A driver that reports no products is not compared on them.
    if !got.products.is_empty() {
        matched(
            &mut out,
            &expected.products,
            &got.products,
            |p| (p.key.clone(), String::new()),
            |p| format!("product {}", p.key),
            |p| {
                format!(
                    "{} users, {} tenants",
                    p.state.users.len(),
                    p.state.tenants.len()
                )
            },
            PRODUCT,
            |out, at, e, g| {
                let state = |p: &OutcomeProduct| format!("{:?}", p.state);
                field(out, at, "state", state(e), state(g), PRODUCT);
            },
        );
    }
    out
}

/// Pairs `expected` and `got` by `key`, the n-th of a key on one side with the n-th of it on
/// the other: a result on one side only is a difference with `none` on the other; a pair is
/// compared by `each`.
#[expect(
    clippy::too_many_arguments,
    reason = "each argument is one of the few things that differ between the kinds of result"
)]
fn matched<T, K: Ord>(
    out: &mut Vec<Difference>,
    expected: &[T],
    got: &[T],
    key: impl Fn(&T) -> K,
    at: impl Fn(&T) -> String,
    summary: impl Fn(&T) -> String,
    rule: &'static str,
    each: impl Fn(&mut Vec<Difference>, &str, &T, &T),
) {
    // Each result with the number of results of its key before it on its side.
    let numbered = |side: &[T]| -> Vec<(K, usize)> {
        let mut seen = std::collections::BTreeMap::<K, usize>::new();
        side.iter()
            .map(|r| {
                let n = seen.entry(key(r)).or_default();
                *n += 1;
                (key(r), *n)
            })
            .collect()
    };
    let (expected_keys, got_keys) = (numbered(expected), numbered(got));
    for (e, k) in expected.iter().zip(&expected_keys) {
        match got_keys.iter().position(|g| g == k) {
            Some(i) => each(out, &at(e), e, &got[i]),
            None => out.push(Difference {
                at: at(e),
                field: "present".to_owned(),
                expected: summary(e),
                got: "none".to_owned(),
                rule,
            }),
        }
    }
    for (g, _) in got
        .iter()
        .zip(&got_keys)
        .filter(|(_, k)| !expected_keys.contains(k))
    {
        out.push(Difference {
            at: at(g),
            field: "present".to_owned(),
            expected: "none".to_owned(),
            got: summary(g),
            rule,
        });
    }
}

/// A difference when `expected` and `got`, as shown to people, are not the same.
fn field(
    out: &mut Vec<Difference>,
    at: &str,
    name: &str,
    expected: impl fmt::Display,
    got: impl fmt::Display,
    rule: &'static str,
) {
    let (expected, got) = (expected.to_string(), got.to_string());
    if expected != got {
        out.push(Difference {
            at: at.to_owned(),
            field: name.to_owned(),
            expected,
            got,
            rule,
        });
    }
}

/// An optional value as shown: the value, or `none`.
fn opt<T: fmt::Display>(value: &Option<T>) -> String {
    value
        .as_ref()
        .map_or_else(|| "none".to_owned(), ToString::to_string)
}

fn compare_invoice(out: &mut Vec<Difference>, at: &str, e: &OutcomeInvoice, g: &OutcomeInvoice) {
    field(out, at, "currency", &e.currency, &g.currency, INVOICE);
    let line = |i: usize, l: &OutcomeLine| {
        format!(
            "{at}, line {} ({} {}{})",
            i + 1,
            l.kind.as_str(),
            l.plan,
            l.metric
                .as_deref()
                .map_or_else(String::new, |m| format!(" {m}"))
        )
    };
    for (i, (el, gl)) in e.lines.iter().zip(&g.lines).enumerate() {
        let at = line(i, el);
        field(out, &at, "kind", el.kind.as_str(), gl.kind.as_str(), PERIOD);
        field(out, &at, "plan", &el.plan, &gl.plan, PERIOD);
        field(out, &at, "metric", opt(&el.metric), opt(&gl.metric), PERIOD);
        field(out, &at, "from", el.from, gl.from, PERIOD);
        field(out, &at, "until", el.until, gl.until, PERIOD);
        field(out, &at, "days", el.days, gl.days, PERIOD);
        field(out, &at, "used", opt(&el.used), opt(&gl.used), USED);
        field(
            out,
            &at,
            "included",
            opt(&el.included),
            opt(&gl.included),
            QUOTA,
        );
        field(
            out,
            &at,
            "overage",
            opt(&el.overage),
            opt(&gl.overage),
            OVERAGE,
        );
        let amount_rule = match el.kind {
            LineKind::Base => BASE,
            LineKind::Overage => OVERAGE,
        };
        field(out, &at, "amount", el.amount, gl.amount, amount_rule);
    }
    for (i, l) in e.lines.iter().enumerate().skip(g.lines.len()) {
        out.push(Difference {
            at: line(i, l),
            field: "present".to_owned(),
            expected: l.amount.to_string(),
            got: "none".to_owned(),
            rule: PERIOD,
        });
    }
    for (i, l) in g.lines.iter().enumerate().skip(e.lines.len()) {
        out.push(Difference {
            at: line(i, l),
            field: "present".to_owned(),
            expected: "none".to_owned(),
            got: l.amount.to_string(),
            rule: PERIOD,
        });
    }
    field(out, at, "subtotal", e.subtotal, g.subtotal, TOTALS);
    field(out, at, "tax", e.tax, g.tax, TOTALS);
    field(out, at, "total", e.total, g.total, TOTALS);
    field(out, at, "status", e.status, g.status, INVOICE_STATUS);
}

fn compare_payment(out: &mut Vec<Difference>, at: &str, e: &OutcomePayment, g: &OutcomePayment) {
    field(out, at, "on", e.on, g.on, ATTEMPTS);
    field(out, at, "amount", e.amount, g.amount, AMOUNT);
    field(out, at, "outcome", e.outcome, g.outcome, OUTCOME);
    field(
        out,
        at,
        "failure_code",
        opt(&e.failure_code),
        opt(&g.failure_code),
        OUTCOME,
    );
}

fn compare_subscription(
    out: &mut Vec<Difference>,
    at: &str,
    e: &OutcomeSubscription,
    g: &OutcomeSubscription,
) {
    field(out, at, "plan", &e.plan, &g.plan, SUBSCRIPTION);
    field(out, at, "status", e.status, g.status, SUBSCRIPTION);
    let changes = |s: &OutcomeSubscription| {
        s.changes
            .iter()
            .map(|c| format!("{} {}", c.on, c.status))
            .collect::<Vec<_>>()
            .join(", ")
    };
    field(
        out,
        at,
        "status changes",
        changes(e),
        changes(g),
        SUBSCRIPTION,
    );
}
