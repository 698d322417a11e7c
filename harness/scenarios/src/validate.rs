//! Stage two of reading a scenario: checking what the raw file means (dates, references, cards,
//! error codes, amounts, `[[expect]]` tables) and producing a [`Scenario`] that the runner can
//! trust.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::ops::Range;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use toml::Spanned;

use super::diagnostic::{Problems, ScenarioError};
use super::raw::{
    RawCatalog, RawContract, RawExpect, RawInvoice, RawOrg, RawOutage, RawPayment, RawProduct,
    RawProductDrift, RawProductFault, RawPurge, RawScenario, RawSetCard, RawStep, RawSubscription,
    RawTenant, RawUsage,
};
use billing_harness::model::{
    Catalog, Currency, InvoiceStatus, Overage, PaymentOutcome, Plan, SubscriptionStatus, Terms,
};
use billing_harness::payments::TestCard;
use billing_harness::products::{Fault, Outage};

/// The only format version this harness reads.
pub const VERSION: i64 = 1;

/// The error codes a step may expect: the platform's rule codes.
pub const ERROR_CODES: &[&str] = billing_harness::platform::DomainError::RULE_CODES;

const CARDS: &str =
    "ok, declined, insufficient_funds, expired, fail_times:N, timeout, or a test card number";

/// A checked scenario: every reference resolved, every date valid and in order.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Its name.
    pub name: String,
    /// What it shows, for people.
    pub description: Option<String>,
    /// The clock starts at 00:00 of this day.
    pub start: NaiveDate,
    /// After the last step the clock runs to 00:00 of this day.
    pub until: NaiveDate,
    /// The catalog: inline, or `scenarios/catalog.toml`.
    pub catalog: Catalog,
    /// Organizations, by key.
    pub orgs: Vec<OrgDef>,
    /// Tenants, by key.
    pub tenants: Vec<TenantDef>,
    /// How product mocks behave, from the `[[product]]` tables; a product without one gets a
    /// fault-free, lenient mock.
    pub products: Vec<ProductDef>,
    /// The steps, in file order.
    pub steps: Vec<Step>,
    /// The `[[expect]]` tables: what the outcome must show at `until`.
    pub expectations: Vec<Expectation>,
    /// The file it was read from, as named in diagnostics.
    path: String,
    /// The file's text, for diagnostics that point into it.
    source: String,
}

/// A `[[product]]` table: how the mock of one product of the catalog behaves from the start.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductDef {
    /// The product's key in the catalog.
    pub key: String,
    /// Strict mode: a request outside the API is a violation, and the run does not converge.
    pub strict: bool,
    /// Faults drawn for each unscripted write, if any.
    pub drawn: Option<DrawnFaults>,
    /// Faults put on the first writes, in order.
    pub faults: Vec<ScriptedFault>,
    /// A window of the test clock in which the product is down, every request failing with one
    /// fault (`outage = { from, until, fault }`, local times of the catalog's time zone).
    pub outage: Option<Outage>,
    /// How long a row to the product is retried before it is a dead letter (`retry_horizon =
    /// "6h"`); `None` for the platform's default, 3 days.
    pub retry_horizon: Option<TimeDelta>,
}

/// Faults drawn at a rate from a seeded stream (`fault_rate`, `fault_seed`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DrawnFaults {
    /// The probability of a fault on each write, from 0 to 1.
    pub rate: f64,
    /// The stream's seed (default 1).
    pub seed: u64,
}

/// A fault put on the next `times` writes (`{ fault = "status_500", times = 2 }`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScriptedFault {
    /// The fault.
    pub fault: Fault,
    /// How many writes in a row get it, at least 1.
    pub times: u32,
}

/// An organization of a scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgDef {
    /// Its key in the file.
    pub key: String,
    /// Its name (default: the key).
    pub name: Option<String>,
    /// Its card, if any.
    pub card: Option<TestCard>,
    /// Its owner's e-mail address (default: a fake one).
    pub owner: Option<String>,
    /// The e-mail addresses of the members signed up with it.
    pub members: Vec<String>,
}

/// A tenant of a scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantDef {
    /// Its key in the file, also its name.
    pub key: String,
    /// Index into [`Scenario::orgs`].
    pub org: usize,
    /// Its product.
    pub product: String,
}

/// One step: what happens on a day, and the error it must give, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// 1-based position among the steps.
    pub number: usize,
    /// The day.
    pub on: NaiveDate,
    /// What happens.
    pub action: Action,
    /// The error code the step must give.
    pub expect_error: Option<String>,
}

/// What a step does. Tenant and org fields index [`Scenario::tenants`] and [`Scenario::orgs`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Subscribe a tenant to a plan.
    Subscribe {
        /// The tenant.
        tenant: usize,
        /// The plan's key.
        plan: String,
    },
    /// Change a tenant's plan.
    ChangePlan {
        /// The tenant.
        tenant: usize,
        /// The plan's key.
        plan: String,
    },
    /// Cancel a tenant's subscription.
    Cancel {
        /// The tenant.
        tenant: usize,
    },
    /// Record usage, reported on the step's day.
    Usage {
        /// The tenant.
        tenant: usize,
        /// The metric.
        metric: String,
        /// The quantity, as written (the platform refuses one below 1).
        quantity: i64,
        /// The day the units were used: the step's day unless the file names an earlier one
        /// (usage reported late, e.g. for a month already closed).
        day: NaiveDate,
    },
    /// Register a new card for an organization.
    SetCard {
        /// The organization.
        org: usize,
        /// The card.
        card: TestCard,
    },
    /// Put a fault on a product's next writes, after those already scripted.
    ProductFault {
        /// The product's key.
        product: String,
        /// The fault and how many writes get it.
        fault: ScriptedFault,
    },
    /// Change a product's copy of a tenant behind the platform's back (drift).
    ProductDrift {
        /// The product's key.
        product: String,
        /// The tenant, one of that product.
        tenant: usize,
    },
    /// Apply a sales contract to a tenant from the step's day.
    Contract {
        /// The tenant.
        tenant: usize,
        /// The terms, over the base plan.
        terms: billing_harness::model::ContractTerms,
    },
    /// Purge an organization, or a user by e-mail address (see [`billing_harness::purge`]).
    Purge(PurgeStep),
}

/// What a `purge` step purges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PurgeStep {
    /// An organization, by its index.
    Org(usize),
    /// A user, by the e-mail address the file gave it.
    User(String),
}

impl Action {
    /// The action for people, with the keys of `scenario` (the scenario it belongs to, whose
    /// tenants and orgs its indices point into): `subscribe acme-analytics to pro`,
    /// `change acme-analytics to plan business`, `cancel acme-analytics`,
    /// `record 120000 api_calls for acme-analytics`, `register card declined for acme`,
    /// `put status_500 on the next 2 writes to analytics`, `drift acme-analytics in analytics`.
    pub fn display<'a>(&'a self, scenario: &'a Scenario) -> ActionDisplay<'a> {
        ActionDisplay {
            action: self,
            scenario,
        }
    }
}

/// An [`Action`] written for people with its scenario's keys; made by [`Action::display`].
#[derive(Debug, Clone, Copy)]
pub struct ActionDisplay<'a> {
    action: &'a Action,
    scenario: &'a Scenario,
}

impl fmt::Display for ActionDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // An index from another scenario has no key here: say so rather than panic.
        let tenant = |i: usize| {
            self.scenario
                .tenants
                .get(i)
                .map_or_else(|| format!("tenant #{i}"), |t| t.key.clone())
        };
        let org = |i: usize| {
            self.scenario
                .orgs
                .get(i)
                .map_or_else(|| format!("org #{i}"), |o| o.key.clone())
        };
        match self.action {
            Action::Subscribe { tenant: t, plan } => {
                write!(f, "subscribe {} to {plan}", tenant(*t))
            }
            Action::ChangePlan { tenant: t, plan } => {
                write!(f, "change {} to plan {plan}", tenant(*t))
            }
            Action::Cancel { tenant: t } => write!(f, "cancel {}", tenant(*t)),
            Action::Usage {
                tenant: t,
                metric,
                quantity,
                day,
            } => write!(f, "record {quantity} {metric} for {} on {day}", tenant(*t)),
            Action::SetCard { org: o, card } => write!(f, "register card {card} for {}", org(*o)),
            Action::ProductFault { product, fault } => write!(
                f,
                "put {} on the next {} to {product}",
                fault.fault,
                if fault.times == 1 {
                    "write".to_owned()
                } else {
                    format!("{} writes", fault.times)
                }
            ),
            Action::ProductDrift { product, tenant: t } => {
                write!(f, "drift {} in {product}", tenant(*t))
            }
            Action::Contract { tenant: t, terms } => write!(
                f,
                "apply a contract to {} over {}",
                tenant(*t),
                terms.plan.as_deref().unwrap_or("its plan")
            ),
            Action::Purge(PurgeStep::Org(o)) => write!(f, "purge organization {}", org(*o)),
            Action::Purge(PurgeStep::User(email)) => write!(f, "purge user {email}"),
        }
    }
}

/// One checked `[[expect]]` table, with where it is written.
#[derive(Debug, Clone, PartialEq)]
pub struct Expectation {
    /// What must hold.
    pub expected: Expected,
    /// The inline table (`invoice = { .. }`), where a missing invoice or attempt is shown.
    pub(crate) span: Range<usize>,
    /// Each field's value, where a field that differs is shown.
    pub(crate) fields: Vec<(&'static str, Range<usize>)>,
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

fn date(problems: &mut Problems<'_>, value: &Spanned<String>, what: &str) -> Option<NaiveDate> {
    match NaiveDate::parse_from_str(value.get_ref(), "%Y-%m-%d") {
        Ok(day) => Some(day),
        Err(_) => {
            problems.add(
                span(value),
                format!("{what} {:?} is not a date", value.get_ref()),
                "expected YYYY-MM-DD",
                Some("write dates as \"2026-10-01\"".into()),
            );
            None
        }
    }
}

fn decimal(problems: &mut Problems<'_>, value: &Spanned<String>, what: &str) -> Option<Decimal> {
    match value.get_ref().parse::<Decimal>() {
        Ok(d) if d >= Decimal::ZERO => Some(d),
        _ => {
            problems.add(
                span(value),
                format!("{what} {:?} is not a non-negative decimal", value.get_ref()),
                "expected a decimal string",
                Some("write amounts as strings, e.g. \"99000\" or \"19.99\"".into()),
            );
            None
        }
    }
}

fn currency(problems: &mut Problems<'_>, value: &Spanned<String>) -> Option<Currency> {
    match value.get_ref().parse() {
        Ok(c) => Some(c),
        Err(e) => {
            problems.add(
                span(value),
                e,
                "unknown currency",
                Some("use KRW or USD".into()),
            );
            None
        }
    }
}

/// Checks a raw catalog and builds it.
pub(crate) fn catalog(problems: &mut Problems<'_>, raw: &RawCatalog) -> Catalog {
    let mut catalog = Catalog::new(Vec::new());
    if let Some(c) = &raw.currency {
        catalog.currency = currency(problems, c).unwrap_or(catalog.currency);
    }
    if let Some(t) = &raw.tax_rate {
        match decimal(problems, t, "tax_rate") {
            Some(rate) if rate < Decimal::ONE => catalog.tax_rate = rate,
            Some(_) => problems.add(
                span(t),
                "tax_rate must be below 1",
                "a rate, e.g. \"0.1\" for 10%",
                None,
            ),
            None => {}
        }
    }
    if let Some(tz) = &raw.time_zone {
        match tz.get_ref().parse::<chrono_tz::Tz>() {
            Ok(zone) => catalog.time_zone = zone,
            Err(_) => problems.add(
                span(tz),
                format!("unknown time zone {:?}", tz.get_ref()),
                "not an IANA time zone",
                Some("e.g. \"Asia/Seoul\"".into()),
            ),
        }
    }
    if let Some(day) = &raw.charge_day {
        match u32::try_from(*day.get_ref()) {
            Ok(d) if (2..=28).contains(&d) => catalog.charge_day = d,
            _ => problems.add(
                span(day),
                "charge_day must be from 2 to 28",
                "out of range",
                None,
            ),
        }
    }
    let mut keys: HashMap<String, Range<usize>> = HashMap::new();
    for plan in &raw.plan {
        let p = plan.get_ref();
        if keys.insert(p.key.get_ref().clone(), span(&p.key)).is_some() {
            problems.add(
                span(&p.key),
                format!("plan {:?} is defined twice", p.key.get_ref()),
                "second definition",
                Some("plan keys are unique across the catalog".into()),
            );
        }
        let base_fee = decimal(problems, &p.base_fee, "base_fee").unwrap_or_default();
        let plan_currency = p
            .currency
            .as_ref()
            .and_then(|c| currency(problems, c))
            .unwrap_or(catalog.currency);
        let mut included = BTreeMap::new();
        for (metric, units) in &p.included {
            match u64::try_from(*units.get_ref()) {
                Ok(u) => {
                    included.insert(metric.clone(), u);
                }
                Err(_) => problems.add(
                    span(units),
                    format!("included {metric} must not be negative"),
                    "negative",
                    None,
                ),
            }
        }
        let mut overage = BTreeMap::new();
        for (metric, o) in &p.overage {
            let o = o.get_ref();
            let block = match u64::try_from(*o.block.get_ref()) {
                Ok(b) if b > 0 => b,
                _ => {
                    problems.add(
                        span(&o.block),
                        "an overage block must be at least 1 unit",
                        "not a positive block",
                        None,
                    );
                    1
                }
            };
            let price = decimal(problems, &o.price, "price").unwrap_or_default();
            overage.insert(metric.clone(), Overage { block, price });
        }
        let mut limits = BTreeMap::new();
        for (option, value) in &p.limits {
            if *value.get_ref() < 0 {
                problems.add(
                    span(value),
                    format!("limit {option} must not be negative"),
                    "negative",
                    None,
                );
            }
            limits.insert(option.clone(), *value.get_ref());
        }
        catalog.plans.push(Plan {
            key: p.key.get_ref().clone(),
            product: p.product.get_ref().clone(),
            currency: plan_currency,
            terms: Terms {
                base_fee,
                included,
                overage,
            },
            limits,
        });
    }
    catalog
}

/// A plan that meters every metric some plan of `product` meters: what a contract over the
/// tenant's plan (not known before the run) may price.
fn product_metrics(catalog: &Catalog, product: &str) -> billing_harness::model::Plan {
    let mut all = billing_harness::model::Plan {
        key: format!("any plan of {product}"),
        product: product.to_owned(),
        currency: catalog.currency,
        terms: billing_harness::model::Terms {
            base_fee: rust_decimal::Decimal::ZERO,
            included: std::collections::BTreeMap::new(),
            overage: std::collections::BTreeMap::new(),
        },
        limits: std::collections::BTreeMap::new(),
    };
    for plan in catalog.plans.iter().filter(|p| p.product == product) {
        all.terms.included.extend(plan.terms.included.clone());
        all.terms.overage.extend(plan.terms.overage.clone());
    }
    all
}

/// The index of `key` among `known`; a problem naming the known ones when it is not there.
fn lookup(
    problems: &mut Problems<'_>,
    key: &Spanned<String>,
    what: &str,
    known: &[&str],
) -> Option<usize> {
    let found = known.iter().position(|k| k == key.get_ref());
    if found.is_none() {
        problems.add(
            span(key),
            format!("unknown {what} {:?}", key.get_ref()),
            format!("no {what} has this key"),
            Some(one_of(known)),
        );
    }
    found
}

/// A test card by name or number; a problem listing the cards when it is neither.
fn card(problems: &mut Problems<'_>, value: &Spanned<String>) -> Option<TestCard> {
    let card = value.get_ref().parse::<TestCard>().ok();
    if card.is_none() {
        problems.add(
            span(value),
            format!("unknown card {:?}", value.get_ref()),
            "unknown card",
            Some(format!("cards: {CARDS}")),
        );
    }
    card
}

/// A fault by name; a problem listing the faults when it is none.
fn fault(problems: &mut Problems<'_>, name: &Spanned<String>) -> Option<Fault> {
    let fault = Fault::parse(name.get_ref());
    if fault.is_none() {
        let names: Vec<&str> = Fault::ALL.iter().map(|f| f.as_str()).collect();
        problems.add(
            span(name),
            format!("unknown fault {:?}", name.get_ref()),
            "not a fault the product mock knows",
            Some(format!("faults: {}", names.join(", "))),
        );
    }
    fault
}

/// A count of writes, at least 1.
fn times(problems: &mut Problems<'_>, times: &Spanned<i64>) -> Option<u32> {
    match u32::try_from(*times.get_ref()) {
        Ok(n) if n >= 1 => Some(n),
        _ => {
            problems.add(
                span(times),
                format!("times must be at least 1, not {}", times.get_ref()),
                "not a positive count",
                Some("the number of writes in a row that get the fault".into()),
            );
            None
        }
    }
}

/// A scripted fault: its name and count.
fn scripted(
    problems: &mut Problems<'_>,
    name: &Spanned<String>,
    count: &Spanned<i64>,
) -> Option<ScriptedFault> {
    let fault = fault(problems, name);
    let times = times(problems, count);
    Some(ScriptedFault {
        fault: fault?,
        times: times?,
    })
}

/// Checks a `[[product]]` table against the catalog's products; its outage's local times are in
/// `tz`, and it must end by `until` (00:00 of the scenario's `until`, when that is a date).
fn product(
    problems: &mut Problems<'_>,
    raw: &RawProduct,
    known: &[&str],
    tz: Tz,
    until: Option<DateTime<Utc>>,
) -> ProductDef {
    lookup(problems, &raw.key, "product", known);
    let rate = raw.fault_rate.as_ref().and_then(|rate| {
        let r = *rate.get_ref();
        if (0.0..=1.0).contains(&r) {
            Some(r)
        } else {
            problems.add(
                span(rate),
                format!("fault_rate {r} is outside 0 to 1"),
                "not a probability",
                Some("the share of writes that get a drawn fault, e.g. 0.3".into()),
            );
            None
        }
    });
    let seed = raw.fault_seed.as_ref().and_then(|seed| {
        let s = u64::try_from(*seed.get_ref()).ok();
        if s.is_none() {
            problems.add(
                span(seed),
                "fault_seed must not be negative",
                "negative",
                None,
            );
        }
        s
    });
    if let (Some(seed), None) = (&raw.fault_seed, &raw.fault_rate) {
        problems.add(
            span(seed),
            "fault_seed without fault_rate draws nothing",
            "no rate to draw at",
            Some("add fault_rate = 0.3 (say), or remove fault_seed".into()),
        );
    }
    let faults = raw
        .faults
        .iter()
        .filter_map(|f| scripted(problems, &f.get_ref().fault, &f.get_ref().times))
        .collect();
    ProductDef {
        key: raw.key.get_ref().clone(),
        strict: raw.strict.unwrap_or(false),
        drawn: rate.map(|rate| DrawnFaults {
            rate,
            seed: seed.unwrap_or(1),
        }),
        faults,
        outage: raw
            .outage
            .as_ref()
            .and_then(|o| outage(problems, o.get_ref(), tz, until)),
        retry_horizon: raw
            .retry_horizon
            .as_ref()
            .and_then(|h| retry_horizon(problems, h)),
    }
}

/// An outage's window and fault, checked: both ends local times that exist in `tz`, `from`
/// before `until`, no later than the scenario's `until`, and a fault that fails the request.
fn outage(
    problems: &mut Problems<'_>,
    raw: &RawOutage,
    tz: Tz,
    until: Option<DateTime<Utc>>,
) -> Option<Outage> {
    let from_at = local_time(problems, &raw.from, "outage from", tz);
    let until_at = local_time(problems, &raw.until, "outage until", tz);
    let fault = match &raw.fault {
        None => Some(Fault::Status503),
        Some(name) => fault(problems, name).filter(|f| {
            if !f.fails() {
                problems.add(
                    span(name),
                    format!("an outage's fault must fail every request, and {f} applies the write"),
                    "applies the write",
                    Some("status_500, status_503 (the default), timeout or reset".into()),
                );
            }
            f.fails()
        }),
    };
    let (from_at, until_at) = (from_at?, until_at?);
    if until_at <= from_at {
        problems.add(
            span(&raw.until),
            format!(
                "the outage ends at {} before it starts at {}",
                raw.until.get_ref(),
                raw.from.get_ref()
            ),
            "not after from",
            Some("the product is down from `from` until `until` (excluded)".into()),
        );
        return None;
    }
    if let Some(end) = until
        && until_at > end
    {
        problems.add(
            span(&raw.until),
            format!(
                "the outage lasts past the scenario's until ({})",
                calendar_day(tz, end)
            ),
            "after until",
            Some("products are compared with the platform at until: end the outage by then".into()),
        );
        return None;
    }
    Outage::new(from_at, until_at, fault?).ok()
}

/// The local day of `at` in `tz`.
fn calendar_day(tz: Tz, at: DateTime<Utc>) -> NaiveDate {
    billing_harness::calendar::local_day(tz, at)
}

/// A local time of `tz`, written `2026-10-10T09:30` (seconds optional) or `2026-10-10` (its
/// 00:00); a problem when it does not parse or a daylight-saving change skips it.
fn local_time(
    problems: &mut Problems<'_>,
    value: &Spanned<String>,
    what: &str,
    tz: Tz,
) -> Option<DateTime<Utc>> {
    let text = value.get_ref();
    if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Some(billing_harness::calendar::start_of_day(tz, day));
    }
    let Some(at) = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]
        .into_iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
    else {
        problems.add(
            span(value),
            format!("{what} {text:?} is not a day or a local time"),
            "expected YYYY-MM-DD or YYYY-MM-DDTHH:MM",
            Some(format!(
                "a local time in the catalog's time zone ({tz}), e.g. \"2026-10-10T09:30\""
            )),
        );
        return None;
    };
    let instant = billing_harness::calendar::local_instant(tz, at);
    if instant.is_none() {
        problems.add(
            span(value),
            format!("{what} {text} does not exist in {tz}: a daylight-saving change skips it"),
            "skipped by the clocks",
            Some("pick a time before or after the change".into()),
        );
    }
    instant
}

/// The longest retry horizon a scenario may set.
const MAX_HORIZON_DAYS: i64 = 30;

/// A retry horizon: a whole number and a unit (`s`, `m`, `h` or `d`), above 0 and at most
/// [`MAX_HORIZON_DAYS`] days.
fn retry_horizon(problems: &mut Problems<'_>, value: &Spanned<String>) -> Option<TimeDelta> {
    let text = value.get_ref().trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let seconds = match unit {
        "s" => Some(1),
        "m" => Some(60),
        "h" => Some(3600),
        "d" => Some(86_400),
        _ => None,
    };
    let length = seconds
        .zip(number.parse::<i64>().ok())
        .and_then(|(unit, n)| n.checked_mul(unit))
        .and_then(TimeDelta::try_seconds);
    match length {
        Some(h) if h > TimeDelta::zero() && h <= TimeDelta::days(MAX_HORIZON_DAYS) => Some(h),
        Some(_) => {
            problems.add(
                span(value),
                format!("retry_horizon {text} is not between 1 second and {MAX_HORIZON_DAYS} days"),
                "out of range",
                Some("how long a failing row is retried before it is a dead letter".into()),
            );
            None
        }
        None => {
            problems.add(
                span(value),
                format!("retry_horizon {text:?} is not a length of time"),
                "expected a number and a unit",
                Some("a whole number and s, m, h or d: \"3d\" (the default), \"6h\"".into()),
            );
            None
        }
    }
}

fn one_of(names: &[&str]) -> String {
    if names.is_empty() {
        "none are defined".into()
    } else {
        format!("known: {}", names.join(", "))
    }
}

/// Checks a raw scenario against its catalog (`default_catalog` when it has none inline), one
/// section after another: each may refer to the keys of those before it.
pub(crate) fn scenario(
    path: &str,
    source: &str,
    raw: RawScenario,
    default_catalog: Option<&Catalog>,
) -> Result<Scenario, ScenarioError> {
    let mut problems = Problems::new(path, source);
    let (start, until) = head(&mut problems, &raw);
    let catalog = scenario_catalog(&mut problems, &raw, default_catalog);
    let plans: Vec<&str> = catalog.plans.iter().map(|p| p.key.as_str()).collect();
    let mut products: Vec<&str> = catalog.plans.iter().map(|p| p.product.as_str()).collect();
    products.dedup();
    let orgs = orgs(&mut problems, &raw.org);
    let org_keys: Vec<&str> = orgs.iter().map(|o| o.key.as_str()).collect();
    let tenants = tenants(&mut problems, &raw.tenant, &org_keys, &products);
    let tenant_keys: Vec<&str> = tenants.iter().map(|t| t.key.as_str()).collect();
    let product_defs = product_tables(
        &mut problems,
        &raw.product,
        &products,
        catalog.time_zone,
        until,
    );
    let known = Known {
        catalog: &catalog,
        plans,
        products,
        orgs: &orgs,
        org_keys,
        tenants: &tenants,
        tenant_keys,
        contract_metrics: contract_metrics(&raw.step),
    };
    let steps = steps(&mut problems, &raw.step, &known, start.zip(until));
    let expectations = expectations(&mut problems, &raw.expect, &known);
    problems.finish()?;
    Ok(Scenario {
        expectations,
        path: path.to_owned(),
        source: source.to_owned(),
        name: raw.name.into_inner(),
        description: raw.description,
        start: start.expect("cannot fail: a start that is not a date added a problem above"),
        until: until.expect("cannot fail: an until that is not a date added a problem above"),
        catalog,
        orgs,
        tenants,
        products: product_defs,
        steps,
    })
}

/// What the steps and expectations may refer to: the keys the sections before them define.
struct Known<'a> {
    catalog: &'a Catalog,
    plans: Vec<&'a str>,
    products: Vec<&'a str>,
    orgs: &'a [OrgDef],
    org_keys: Vec<&'a str>,
    tenants: &'a [TenantDef],
    tenant_keys: Vec<&'a str>,
    /// The metrics the file's contracts meter, whichever tenant they are for.
    contract_metrics: Vec<&'a str>,
}

impl Known<'_> {
    /// The index of a tenant (0 after a problem, when it is unknown).
    fn tenant(&self, problems: &mut Problems<'_>, key: &Spanned<String>) -> usize {
        self.find_tenant(problems, key).unwrap_or(0)
    }

    /// The index of a tenant, `None` after a problem when it is unknown.
    fn find_tenant(&self, problems: &mut Problems<'_>, key: &Spanned<String>) -> Option<usize> {
        lookup(problems, key, "tenant", &self.tenant_keys)
    }

    /// The metrics a tenant's product meters: those its catalog plans include or bill as
    /// overage, and those the file's contracts name.
    fn metered(&self, tenant: usize) -> Vec<&str> {
        let product = &self.tenants[tenant].product;
        let mut metrics: Vec<&str> = self
            .catalog
            .plans
            .iter()
            .filter(|p| &p.product == product)
            .flat_map(|p| p.terms.included.keys().chain(p.terms.overage.keys()))
            .map(String::as_str)
            .chain(self.contract_metrics.iter().copied())
            .collect();
        metrics.sort_unstable();
        metrics.dedup();
        metrics
    }

    /// A plan's key, with a problem when the catalog has no such plan.
    fn plan(&self, problems: &mut Problems<'_>, key: &Spanned<String>) -> String {
        lookup(problems, key, "plan", &self.plans);
        key.get_ref().clone()
    }
}

/// Every metric a contract of the file includes or bills as overage.
fn contract_metrics(steps: &[Spanned<RawStep>]) -> Vec<&str> {
    steps
        .iter()
        .filter_map(|step| step.get_ref().contract.as_ref())
        .flat_map(|c| {
            c.get_ref()
                .included
                .keys()
                .chain(c.get_ref().overage.keys())
        })
        .map(String::as_str)
        .collect()
}

/// The head of the file: its version, name, and the days it starts and ends (`None` when one
/// is not a date).
fn head(problems: &mut Problems<'_>, raw: &RawScenario) -> (Option<NaiveDate>, Option<NaiveDate>) {
    if *raw.version.get_ref() != VERSION {
        problems.add(
            span(&raw.version),
            format!("unsupported scenario version {}", raw.version.get_ref()),
            "unsupported",
            Some(format!("this harness reads version {VERSION}")),
        );
    }
    if raw.name.get_ref().trim().is_empty() {
        problems.add(
            span(&raw.name),
            "the scenario has an empty name",
            "empty",
            None,
        );
    }
    let start = date(problems, &raw.start, "start");
    let until = date(problems, &raw.until, "until");
    if let (Some(s), Some(u)) = (start, until)
        && u <= s
    {
        problems.add(
            span(&raw.until),
            format!("until {u} is not after start {s}"),
            "must be later than start",
            None,
        );
    }
    (start, until)
}

/// The scenario's catalog: its `[catalog]` table, else `default_catalog`.
fn scenario_catalog(
    problems: &mut Problems<'_>,
    raw: &RawScenario,
    default_catalog: Option<&Catalog>,
) -> Catalog {
    match (&raw.catalog, default_catalog) {
        (Some(inline), _) => catalog(problems, inline.get_ref()),
        (None, Some(default)) => default.clone(),
        (None, None) => {
            problems.add(
                span(&raw.name),
                "the scenario has no [catalog] and there is no scenarios/catalog.toml",
                "no catalog",
                Some("add a [catalog] table with [[catalog.plan]] entries".into()),
            );
            Catalog::new(Vec::new())
        }
    }
}

/// The `[[org]]` tables: keys and e-mail addresses unique, cards known.
fn orgs(problems: &mut Problems<'_>, raw: &[Spanned<RawOrg>]) -> Vec<OrgDef> {
    let mut orgs: Vec<OrgDef> = Vec::new();
    for org in raw {
        let o = org.get_ref();
        if orgs.iter().any(|x| &x.key == o.key.get_ref()) {
            problems.add(
                span(&o.key),
                format!("org {:?} is defined twice", o.key.get_ref()),
                "second definition",
                None,
            );
        }
        let card = o.card.as_ref().and_then(|c| card(problems, c));
        for email in o.owner.iter().chain(&o.members) {
            let taken = orgs.iter().any(|x| {
                x.owner.as_ref() == Some(email.get_ref()) || x.members.contains(email.get_ref())
            });
            if !email.get_ref().contains('@') || taken {
                problems.add(
                    span(email),
                    format!("{:?} is not an e-mail address of its own", email.get_ref()),
                    if taken { "used twice" } else { "no @" },
                    Some(
                        "give each owner and member a different address, like jo@acme.test".into(),
                    ),
                );
            }
        }
        orgs.push(OrgDef {
            key: o.key.get_ref().clone(),
            name: o.name.clone(),
            card,
            owner: o.owner.as_ref().map(|e| e.get_ref().clone()),
            members: o.members.iter().map(|e| e.get_ref().clone()).collect(),
        });
    }
    orgs
}

/// The `[[tenant]]` tables: keys unique, each of a known org (`org_keys`) and of a product of
/// the catalog (`products`).
fn tenants(
    problems: &mut Problems<'_>,
    raw: &[Spanned<RawTenant>],
    org_keys: &[&str],
    products: &[&str],
) -> Vec<TenantDef> {
    let mut tenants: Vec<TenantDef> = Vec::new();
    for tenant in raw {
        let t = tenant.get_ref();
        if tenants.iter().any(|x| &x.key == t.key.get_ref()) {
            problems.add(
                span(&t.key),
                format!("tenant {:?} is defined twice", t.key.get_ref()),
                "second definition",
                None,
            );
        }
        let org = lookup(problems, &t.org, "org", org_keys);
        if !products.contains(&t.product.get_ref().as_str()) {
            problems.add(
                span(&t.product),
                format!("unknown product {:?}", t.product.get_ref()),
                "no plan of the catalog belongs to it",
                Some(one_of(products)),
            );
        }
        tenants.push(TenantDef {
            key: t.key.get_ref().clone(),
            org: org.unwrap_or(0),
            product: t.product.get_ref().clone(),
        });
    }
    tenants
}

/// The `[[product]]` tables: one at most per product of the catalog (`products`).
fn product_tables(
    problems: &mut Problems<'_>,
    raw: &[Spanned<RawProduct>],
    products: &[&str],
    tz: Tz,
    until: Option<NaiveDate>,
) -> Vec<ProductDef> {
    let until = until.map(|day| billing_harness::calendar::start_of_day(tz, day));
    let mut defs: Vec<ProductDef> = Vec::new();
    for raw_product in raw {
        let def = product(problems, raw_product.get_ref(), products, tz, until);
        if defs.iter().any(|p| p.key == def.key) {
            problems.add(
                span(&raw_product.get_ref().key),
                format!("product {:?} has two [[product]] tables", def.key),
                "second table",
                Some("put everything about a product's mock in one table".into()),
            );
        }
        defs.push(def);
    }
    defs
}

/// The `[[step]]` tables: each on a day within `bounds` (start and until, when both are
/// dates), in order, doing exactly one thing.
fn steps(
    problems: &mut Problems<'_>,
    raw: &[Spanned<RawStep>],
    known: &Known<'_>,
    bounds: Option<(NaiveDate, NaiveDate)>,
) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut previous: Option<(NaiveDate, usize)> = None;
    for (i, step) in raw.iter().enumerate() {
        let number = i + 1;
        let s: &RawStep = step.get_ref();
        let on = date(problems, &s.on, "on");
        if let Some(on) = on {
            step_day(problems, &s.on, (on, number), previous, bounds);
            previous = Some((on, number));
        }
        let actions = actions(problems, s, on, known);
        if let Some(code) = &s.expect_error
            && !ERROR_CODES.contains(&code.get_ref().as_str())
        {
            problems.add(
                span(code),
                format!("unknown error code {:?}", code.get_ref()),
                "not an error the platform gives",
                Some(format!("codes: {}", ERROR_CODES.join(", "))),
            );
        }
        let actions_len = [
            s.subscribe.is_some(),
            s.change_plan.is_some(),
            s.cancel.is_some(),
            s.usage.is_some(),
            s.set_card.is_some(),
            s.product_fault.is_some(),
            s.product_drift.is_some(),
            s.contract.is_some(),
            s.purge.is_some(),
        ]
        .iter()
        .filter(|x| **x)
        .count();
        if actions_len != 1 {
            problems.add(
                span(step),
                format!("step {number} has {actions_len} actions"),
                "a step does exactly one thing",
                Some(
                    "give it one of subscribe, change_plan, cancel, usage, set_card, \
                     product_fault, product_drift, contract, purge"
                        .into(),
                ),
            );
        }
        if let (Some(on), Some(action)) = (on, actions.into_iter().next())
            && actions_len == 1
        {
            steps.push(Step {
                number,
                on,
                action,
                expect_error: s.expect_error.as_ref().map(|c| c.get_ref().clone()),
            });
        }
    }
    steps
}

/// A step's day (`on`, written at `written`, of step `number`): not before the `previous`
/// step's, and within `bounds`.
fn step_day(
    problems: &mut Problems<'_>,
    written: &Spanned<String>,
    (on, number): (NaiveDate, usize),
    previous: Option<(NaiveDate, usize)>,
    bounds: Option<(NaiveDate, NaiveDate)>,
) {
    if let Some((before, n)) = previous
        && on < before
    {
        problems.add(
            span(written),
            format!("step {number} is on {on}, before step {n} on {before}"),
            "dates out of order",
            Some("steps run in file order: sort them by date".into()),
        );
    }
    if let Some((start, until)) = bounds
        && (on < start || on > until)
    {
        problems.add(
            span(written),
            format!("step {number} on {on} is outside {start} to {until}"),
            "outside the scenario",
            Some("move start or until, or the step".into()),
        );
    }
}

/// What a step on day `on` does: one action per kind it names (a step names exactly one, which
/// [`steps`] checks), in the order of [`RawStep`]'s fields.
fn actions(
    problems: &mut Problems<'_>,
    s: &RawStep,
    on: Option<NaiveDate>,
    known: &Known<'_>,
) -> Vec<Action> {
    let mut actions = Vec::new();
    if let Some(a) = &s.subscribe {
        let a = a.get_ref();
        actions.push(Action::Subscribe {
            tenant: known.tenant(problems, &a.tenant),
            plan: known.plan(problems, &a.plan),
        });
    }
    if let Some(a) = &s.change_plan {
        let a = a.get_ref();
        actions.push(Action::ChangePlan {
            tenant: known.tenant(problems, &a.tenant),
            plan: known.plan(problems, &a.plan),
        });
    }
    if let Some(a) = &s.cancel {
        actions.push(Action::Cancel {
            tenant: known.tenant(problems, &a.get_ref().tenant),
        });
    }
    if let Some(a) = &s.usage {
        actions.push(usage(problems, a.get_ref(), on, known));
    }
    if let Some(a) = &s.set_card {
        actions.extend(set_card(problems, a.get_ref(), known));
    }
    if let Some(a) = &s.product_fault {
        actions.extend(product_fault(problems, a.get_ref(), known));
    }
    if let Some(a) = &s.product_drift {
        actions.push(product_drift(problems, a.get_ref(), known));
    }
    if let Some(a) = &s.contract {
        actions.push(contract(problems, a.get_ref(), on, known));
    }
    if let Some(a) = &s.purge {
        actions.extend(purge(problems, a, known));
    }
    actions
}

/// `usage = { .. }` in a step on day `on`: the day the units were used is not after it.
fn usage(
    problems: &mut Problems<'_>,
    a: &RawUsage,
    on: Option<NaiveDate>,
    known: &Known<'_>,
) -> Action {
    let day = match &a.day {
        None => on,
        Some(written) => {
            let day = date(problems, written, "day");
            if let (Some(day), Some(on)) = (day, on)
                && day > on
            {
                problems.add(
                    span(written),
                    format!("usage of {day} is reported on {on}, before it happened"),
                    "after the step's day",
                    Some("usage is reported on or after its day: move `on` or `day`".into()),
                );
            }
            day
        }
    };
    let tenant = known.find_tenant(problems, &a.tenant);
    if let Some(tenant) = tenant {
        let metered = known.metered(tenant);
        if !metered.contains(&a.metric.get_ref().as_str()) {
            let product = &known.tenants[tenant].product;
            problems.add(
                span(&a.metric),
                format!(
                    "unknown metric {:?}: no plan of {product} meters it",
                    a.metric.get_ref()
                ),
                "unknown metric",
                Some(format!("metrics of {product}: {}", metered.join(", "))),
            );
        }
    }
    Action::Usage {
        tenant: tenant.unwrap_or(0),
        metric: a.metric.get_ref().clone(),
        quantity: *a.quantity.get_ref(),
        day: day.unwrap_or(NaiveDate::MIN),
    }
}

/// `set_card = { org, card }`: none when the card is unknown.
fn set_card(problems: &mut Problems<'_>, a: &RawSetCard, known: &Known<'_>) -> Option<Action> {
    let org = lookup(problems, &a.org, "org", &known.org_keys);
    let card = card(problems, &a.card)?;
    Some(Action::SetCard {
        org: org.unwrap_or(0),
        card,
    })
}

/// `product_fault = { product, fault, times }`: none when the fault or its count is wrong.
fn product_fault(
    problems: &mut Problems<'_>,
    a: &RawProductFault,
    known: &Known<'_>,
) -> Option<Action> {
    lookup(problems, &a.product, "product", &known.products);
    let fault = scripted(problems, &a.fault, &a.times)?;
    Some(Action::ProductFault {
        product: a.product.get_ref().clone(),
        fault,
    })
}

/// `product_drift = { product, tenant }`: the tenant is one of that product.
fn product_drift(problems: &mut Problems<'_>, a: &RawProductDrift, known: &Known<'_>) -> Action {
    let product = lookup(problems, &a.product, "product", &known.products);
    let t = lookup(problems, &a.tenant, "tenant", &known.tenant_keys);
    if let (Some(_), Some(t)) = (product, t)
        && known.tenants[t].product != *a.product.get_ref()
    {
        problems.add(
            span(&a.tenant),
            format!(
                "tenant {:?} is a tenant of product {}, not {}",
                a.tenant.get_ref(),
                known.tenants[t].product,
                a.product.get_ref()
            ),
            "of another product",
            Some(format!(
                "a product drifts only on its own tenants: product = {:?}, or another tenant",
                known.tenants[t].product
            )),
        );
    }
    Action::ProductDrift {
        product: a.product.get_ref().clone(),
        tenant: t.unwrap_or(0),
    }
}

/// `contract = { tenant, .. }` in a step on day `on`: the terms over the base plan, starting
/// on the step's day.
fn contract(
    problems: &mut Problems<'_>,
    a: &RawContract,
    on: Option<NaiveDate>,
    known: &Known<'_>,
) -> Action {
    let t = lookup(problems, &a.tenant, "tenant", &known.tenant_keys);
    if let Some(written) = &a.starts_on {
        problems.add(
            span(written),
            "a contract step starts on the step's day",
            "starts_on in a step",
            Some("remove starts_on: the step's `on` is the contract's first day".into()),
        );
    }
    // The base plan: the one named, else every plan of the tenant's product meters
    // what the contract may price.
    let base = match &a.plan {
        Some(key) => {
            lookup(problems, key, "plan", &known.plans);
            known.catalog.plan(key.get_ref()).cloned()
        }
        None => t.map(|t| product_metrics(known.catalog, &known.tenants[t].product)),
    };
    let terms = super::contract::terms(problems, a, base.as_ref(), on);
    Action::Contract {
        tenant: t.unwrap_or(0),
        terms,
    }
}

/// `purge = { org }` or `purge = { user }`: an org of the scenario, or an owner's or member's
/// address; none when it names neither or both.
fn purge(problems: &mut Problems<'_>, a: &Spanned<RawPurge>, known: &Known<'_>) -> Option<Action> {
    let written = a.get_ref();
    match (&written.org, &written.user) {
        (Some(org), None) => {
            let o = lookup(problems, org, "org", &known.org_keys);
            Some(Action::Purge(PurgeStep::Org(o.unwrap_or(0))))
        }
        (None, Some(user)) => {
            let emails: Vec<&str> = known
                .orgs
                .iter()
                .flat_map(|o| o.owner.iter().chain(&o.members))
                .map(String::as_str)
                .collect();
            if !emails.contains(&user.get_ref().as_str()) {
                problems.add(
                    span(user),
                    format!(
                        "no owner or member has the e-mail address {:?}",
                        user.get_ref()
                    ),
                    "unknown user",
                    Some(if emails.is_empty() {
                        "give an [[org]] an owner = \"EMAIL\" or members = [\"EMAIL\"]".into()
                    } else {
                        one_of(&emails)
                    }),
                );
            }
            Some(Action::Purge(PurgeStep::User(user.get_ref().clone())))
        }
        _ => {
            problems.add(
                span(a),
                "a purge names exactly one of org and user",
                "org or user",
                Some(
                    "write purge = { org = \"acme\" } or purge = { user = \"jo@acme.test\" }"
                        .into(),
                ),
            );
            None
        }
    }
}

/// `value` parsed as a `T`; a problem with `help` when it does not parse.
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

/// The hint listing the values a field may take.
fn options(values: &[impl std::fmt::Display]) -> String {
    let names: Vec<String> = values.iter().map(ToString::to_string).collect();
    format!("one of: {}", names.join(", "))
}

/// Where each field of an `[[expect]]` table is written, by name.
type Fields = Vec<(&'static str, Range<usize>)>;

/// The hint for an amount that does not parse.
const MONEY: &str = "an amount is a quoted decimal, like \"70258\" or \"12.50\"";

/// Adds where `value`, the field `name`, is written to `fields`, when the table has it.
fn written<T>(fields: &mut Fields, name: &'static str, value: Option<&Spanned<T>>) {
    if let Some(value) = value {
        fields.push((name, span(value)));
    }
}

/// The `[[expect]]` tables, each naming exactly one invoice, payment or subscription of the
/// scenario's tenants.
fn expectations(
    problems: &mut Problems<'_>,
    raw: &[Spanned<RawExpect>],
    known: &Known<'_>,
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
        let (inline, (expected, fields)) = if let Some(i) = &r.invoice {
            (span(i), expected_invoice(problems, i.get_ref(), known))
        } else if let Some(p) = &r.payment {
            (span(p), expected_payment(problems, p.get_ref(), known))
        } else if let Some(s) = &r.subscription {
            (span(s), expected_subscription(problems, s.get_ref(), known))
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

/// The tenant an expectation names, with a problem when it is not one of the scenario's.
fn expected_tenant(
    problems: &mut Problems<'_>,
    key: &Spanned<String>,
    known: &Known<'_>,
) -> String {
    let tenants = &known.tenant_keys;
    if !tenants.contains(&key.get_ref().as_str()) {
        problems.add(
            span(key),
            format!("unknown tenant {:?}", key.get_ref()),
            "not a [[tenant]] of this scenario",
            Some(format!("one of: {}", tenants.join(", "))),
        );
    }
    key.get_ref().clone()
}

/// `invoice = { tenant, period, total, subtotal, tax, status }`.
fn expected_invoice(
    problems: &mut Problems<'_>,
    i: &RawInvoice,
    known: &Known<'_>,
) -> (Expected, Fields) {
    let mut fields = Fields::new();
    written(&mut fields, "total", i.total.as_ref());
    written(&mut fields, "subtotal", i.subtotal.as_ref());
    written(&mut fields, "tax", i.tax.as_ref());
    written(&mut fields, "status", i.status.as_ref());
    let period = i.period.get_ref();
    if NaiveDate::parse_from_str(&format!("{period}-01"), "%Y-%m-%d").is_err() {
        problems.add(
            span(&i.period),
            format!("period {period:?} is not a month"),
            "not YYYY-MM",
            Some("write the month billed as \"2026-10\"".into()),
        );
    }
    let expected = Expected::Invoice {
        tenant: expected_tenant(problems, &i.tenant, known),
        period: period.clone(),
        total: parsed(problems, i.total.as_ref(), "total", MONEY),
        subtotal: parsed(problems, i.subtotal.as_ref(), "subtotal", MONEY),
        tax: parsed(problems, i.tax.as_ref(), "tax", MONEY),
        status: parsed(
            problems,
            i.status.as_ref(),
            "invoice status",
            &options(InvoiceStatus::ALL),
        ),
    };
    (expected, fields)
}

/// `payment = { tenant, on, outcome, attempt, amount, failure_code }`.
fn expected_payment(
    problems: &mut Problems<'_>,
    p: &RawPayment,
    known: &Known<'_>,
) -> (Expected, Fields) {
    let mut fields = Fields::new();
    written(&mut fields, "outcome", Some(&p.outcome));
    written(&mut fields, "attempt", p.attempt.as_ref());
    written(&mut fields, "amount", p.amount.as_ref());
    written(&mut fields, "failure_code", p.failure_code.as_ref());
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
    let expected = Expected::Payment {
        tenant: expected_tenant(problems, &p.tenant, known),
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
        amount: parsed(problems, p.amount.as_ref(), "amount", MONEY),
        failure_code: p.failure_code.as_ref().map(|c| c.get_ref().clone()),
    };
    (expected, fields)
}

/// `subscription = { tenant, plan, status }`: a plan of the catalog, or a contract's over one.
fn expected_subscription(
    problems: &mut Problems<'_>,
    s: &RawSubscription,
    known: &Known<'_>,
) -> (Expected, Fields) {
    let mut fields = Fields::new();
    written(&mut fields, "plan", s.plan.as_ref());
    written(&mut fields, "status", s.status.as_ref());
    let plans = &known.plans;
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
    let expected = Expected::Subscription {
        tenant: expected_tenant(problems, &s.tenant, known),
        plan: s.plan.as_ref().map(|p| p.get_ref().clone()),
        status: parsed(
            problems,
            s.status.as_ref(),
            "subscription status",
            &options(SubscriptionStatus::ALL),
        ),
    };
    (expected, fields)
}

impl Scenario {
    /// The file it was read from, as its diagnostics name it.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The file's text, for diagnostics that point into it.
    pub(crate) fn source(&self) -> &str {
        &self.source
    }
}

impl Scenario {
    /// The same scenario `months` months later (earlier when negative): every date moves by
    /// whole months, a day past the end of its new month becoming that month's last day.
    pub fn shifted(&self, months: i32) -> Scenario {
        let shift = |day: NaiveDate| {
            let moved = if months >= 0 {
                day.checked_add_months(chrono::Months::new(months.unsigned_abs()))
            } else {
                day.checked_sub_months(chrono::Months::new(months.unsigned_abs()))
            };
            moved.unwrap_or(day)
        };
        let mut shifted = self.clone();
        // Expectations name the file's own days; a shifted run is not checked against them.
        shifted.expectations.clear();
        shifted.start = shift(self.start);
        shifted.until = shift(self.until);
        for step in &mut shifted.steps {
            step.on = shift(step.on);
            if let Action::Usage { day, .. } = &mut step.action {
                *day = shift(*day);
            }
        }
        shifted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use billing_harness::calendar::Job;
    use billing_harness::model::Month;

    #[test]
    fn actions_and_jobs_read_as_words_with_the_scenarios_keys() {
        let scenario = Scenario {
            name: "words".into(),
            description: None,
            start: NaiveDate::from_ymd_opt(2026, 10, 1).unwrap(),
            until: NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
            catalog: Catalog::new(Vec::new()),
            orgs: vec![OrgDef {
                key: "acme".into(),
                name: Some("Acme Inc.".into()),
                card: None,
                owner: None,
                members: Vec::new(),
            }],
            tenants: vec![TenantDef {
                key: "acme-analytics".into(),
                org: 0,
                product: "analytics".into(),
            }],
            products: Vec::new(),
            steps: Vec::new(),
            expectations: Vec::new(),
            path: "words.toml".into(),
            source: String::new(),
        };
        let text = |action: Action| action.display(&scenario).to_string();
        assert_eq!(
            text(Action::Subscribe {
                tenant: 0,
                plan: "pro".into()
            }),
            "subscribe acme-analytics to pro"
        );
        assert_eq!(
            text(Action::ChangePlan {
                tenant: 0,
                plan: "business".into()
            }),
            "change acme-analytics to plan business"
        );
        assert_eq!(text(Action::Cancel { tenant: 0 }), "cancel acme-analytics");
        assert_eq!(
            text(Action::Usage {
                tenant: 0,
                metric: "api_calls".into(),
                quantity: 120_000,
                day: "2026-10-25".parse().expect("a date"),
            }),
            "record 120000 api_calls for acme-analytics on 2026-10-25"
        );
        assert_eq!(
            text(Action::SetCard {
                org: 0,
                card: TestCard::FailTimes(2)
            }),
            "register card fail_times:2 for acme"
        );
        assert_eq!(text(Action::Cancel { tenant: 7 }), "cancel tenant #7");
        let month = Month::new(2026, 11).unwrap();
        assert_eq!(Job::Close(month).to_string(), "close of 2026-11");
        assert_eq!(Job::Charge.to_string(), "charge");
        assert_eq!(Job::Retry.to_string(), "retries");
    }

    /// A shift moves every date by whole months, later or earlier, a 31st becoming the last day
    /// of a shorter month, and drops the expectations (they name the file's own days).
    #[test]
    fn a_shift_moves_every_date_by_whole_months() {
        let source = r#"version = 1
name = "shift"
start = "2026-10-01"
until = "2026-11-10"

[catalog]
[[catalog.plan]]
key = "pro"
product = "analytics"
base_fee = "1"
included = { api_calls = 10 }

[[org]]
key = "acme"

[[tenant]]
key = "acme-analytics"
org = "acme"
product = "analytics"

[[step]]
on = "2026-10-31"
usage = { tenant = "acme-analytics", metric = "api_calls", quantity = 5, day = "2026-10-30" }

[[expect]]
subscription = { tenant = "acme-analytics", status = "active" }
"#;
        let scenario = crate::parse("shift.toml", source, None).unwrap_or_else(|e| {
            panic!("{}", e.render());
        });
        assert_eq!(scenario.expectations.len(), 1);
        let days = |s: &Scenario| {
            let Action::Usage { day, .. } = s.steps[0].action else {
                panic!("a usage step");
            };
            [s.start, s.until, s.steps[0].on, day].map(|d| d.to_string())
        };
        let later = scenario.shifted(1);
        assert_eq!(
            days(&later),
            ["2026-11-01", "2026-12-10", "2026-11-30", "2026-11-30"]
        );
        assert!(later.expectations.is_empty());
        assert_eq!(
            days(&scenario.shifted(-1)),
            ["2026-09-01", "2026-10-10", "2026-09-30", "2026-09-30"]
        );
        assert_eq!(
            days(&scenario.shifted(0)),
            ["2026-10-01", "2026-11-10", "2026-10-31", "2026-10-30"]
        );
    }
}
