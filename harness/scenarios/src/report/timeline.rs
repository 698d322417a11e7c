//! The timeline picture of a scenario page: a day axis, then for each tenant a stack of lanes
//! (plan periods, subscription state, usage per metric, invoices, payment attempts, expected
//! errors, contract and purge steps), then for each product one lane (its outage, its requests by
//! day, the faults on them, drift steps, when it caught up and the convergence at the end), drawn
//! as inline SVG.
//!
//! [`build`] turns a run into plain data (one [`Lane`] per row); [`svg`] draws it. A new kind of
//! lane (product sync, contracts, purge) is one more [`Lane`] variant, filled in [`build`], with
//! its marks and labels returned by [`Lane::marks`]; the axis, the label rows and the layout are
//! shared.

use crate::PurgeStep;
use std::collections::BTreeSet;
use std::fmt::Write;

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Utc};
use chrono_tz::Tz;

use super::facts::{Facts, PlanPeriod, ProductFacts, TenantFacts};
use super::lang::{Lang, Words, fill};
use super::markup::escape;
use super::money::{count, money, money_in};
use super::palette as p;
use crate::validate::{Action, Scenario};
use crate::{LongestWait, Outcome, OutcomeInvoice};
use billing_harness::billing::rules::prorated_quota;
use billing_harness::calendar::Month;
use billing_harness::model::PaymentOutcome;

/// The days shown and the rows for each tenant.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Timeline {
    /// The first day shown.
    pub(crate) first: NaiveDate,
    /// The last day shown (the scenario's `until`).
    pub(crate) last: NaiveDate,
    /// The present day, marked when the run stopped at it (seeding).
    pub(crate) today: Option<NaiveDate>,
    /// One block of lanes per tenant, in the scenario's order.
    pub(crate) tenants: Vec<TenantLanes>,
    /// One [`Lane::Product`] per product that received a request or converged, by key.
    pub(crate) products: Vec<Lane>,
}

/// One tenant's lanes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TenantLanes {
    /// The tenant's key.
    pub(crate) tenant: String,
    /// Its rows, top to bottom; a lane with nothing to show is left out.
    pub(crate) lanes: Vec<Lane>,
}

/// One row of the timeline.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Lane {
    /// Plan periods, labelled by plan and monthly fee.
    Plans(Vec<PlanMark>),
    /// The subscription's state from day to day.
    State(Vec<StateMark>),
    /// Usage of one metric so far in each plan period, against the prorated quota.
    Usage {
        /// The metric.
        metric: String,
        /// One part per plan period and month.
        segments: Vec<UsageSegment>,
    },
    /// Invoices, on the day of their close, labelled with their total.
    Invoices(Vec<InvoiceMark>),
    /// Payment attempts, labelled with day and outcome.
    Payments(Vec<PaymentMark>),
    /// Steps refused with their expected error.
    Errors(Vec<ErrorMark>),
    /// Contract steps, on their day.
    Contracts(Vec<ContractMark>),
    /// Purge steps that reached the tenant's organization, on their day.
    Purges(Vec<PurgeMark>),
    /// One product: its requests by day, the faults on them, drift steps and the convergence
    /// result at the end.
    Product(Box<ProductLane>),
}

/// A contract step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ContractMark {
    pub(crate) day: NaiveDate,
    pub(crate) step: usize,
    /// The catalog plan it is made over.
    pub(crate) base: String,
    /// The monthly base fee, formatted; empty when unknown.
    pub(crate) fee: String,
    /// Included units per metric.
    pub(crate) included: Vec<(String, u64)>,
    /// Overage price per metric: (metric, block, price formatted).
    pub(crate) overage: Vec<(String, u64, String)>,
    /// Limits set by the contract.
    pub(crate) limits: Vec<(String, i64)>,
    pub(crate) term_ends_on: Option<NaiveDate>,
}

/// A purge step, with what it deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PurgeMark {
    pub(crate) day: NaiveDate,
    pub(crate) step: usize,
    /// The step in words.
    pub(crate) purged: String,
    /// Rows deleted per table.
    pub(crate) rows: Vec<(String, u64)>,
    /// Deletions queued for products.
    pub(crate) told: Vec<(String, usize)>,
}

/// A product's lane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProductLane {
    pub(crate) product: String,
    /// Days with requests, in order.
    pub(crate) days: Vec<ProductDay>,
    /// Drift steps on this product: (day, step, tenant).
    pub(crate) drifts: Vec<(NaiveDate, usize, String)>,
    /// Its outage, from the scenario's `[[product]]` table.
    pub(crate) outage: Option<OutageMark>,
    /// When it held the platform's data again after its outage.
    pub(crate) caught_up: Option<CaughtUpMark>,
    /// The convergence at `until`, when it was checked.
    pub(crate) end: Option<ProductEnd>,
}

/// A product's outage, in the catalog's time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OutageMark {
    pub(crate) from: DateTime<Tz>,
    pub(crate) until: DateTime<Tz>,
    pub(crate) fault: String,
}

/// When a product converged after its outage, and the rows that waited longest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CaughtUpMark {
    pub(crate) at: DateTime<Tz>,
    pub(crate) wait: Option<LongestWait>,
}

/// The requests a product received on one day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProductDay {
    pub(crate) day: NaiveDate,
    /// Requests answered `2xx`, each as `PUT /v1/tenants/{tenant} 200`.
    pub(crate) delivered: Vec<Request>,
    /// Requests with a fault or without a `2xx` answer.
    pub(crate) faulted: Vec<Request>,
}

/// One request as a tooltip lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    pub(crate) call: String,
    /// The status answered; `None`: no answer.
    pub(crate) status: Option<u16>,
    pub(crate) fault: Option<String>,
    pub(crate) replay: bool,
}

/// A product's convergence at `until`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProductEnd {
    pub(crate) day: NaiveDate,
    pub(crate) converged: bool,
    pub(crate) repaired: Vec<String>,
    pub(crate) drift: Vec<String>,
    pub(crate) requests: usize,
    pub(crate) faults_applied: u64,
    pub(crate) dead_letters: usize,
}

/// A plan period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PlanMark {
    pub(crate) plan: String,
    /// For a contract, the catalog plan it is made over.
    pub(crate) contract_over: Option<String>,
    pub(crate) from: NaiveDate,
    pub(crate) until: Option<NaiveDate>,
    /// The monthly base fee, formatted.
    pub(crate) fee: String,
    /// Index into the plan colours.
    pub(crate) colour: usize,
}

/// A subscription state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Active,
    PastDue,
    Cancelled,
}

/// A stretch of one state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StateMark {
    pub(crate) state: State,
    pub(crate) from: NaiveDate,
    pub(crate) until: Option<NaiveDate>,
}

/// Usage of one plan period within one month.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UsageSegment {
    pub(crate) plan: String,
    /// For a contract, the catalog plan it is made over.
    pub(crate) contract_over: Option<String>,
    pub(crate) from: NaiveDate,
    /// Exclusive.
    pub(crate) until: NaiveDate,
    /// The period's monthly quota of the metric (its own terms: a contract's, not the
    /// catalog's).
    pub(crate) included: u64,
    /// Days of the plan period in the month.
    pub(crate) days: u32,
    pub(crate) month_days: u32,
    /// The prorated quota: `included × days / month_days`, floored.
    pub(crate) quota: u64,
    /// Each day from the first use to the end: (day, used that day, used so far).
    pub(crate) days_used: Vec<(NaiveDate, u64, u64)>,
    /// The first day the usage so far went above the quota.
    pub(crate) crossed: Option<NaiveDate>,
}

/// An invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InvoiceMark {
    pub(crate) period: String,
    /// Its close: the first day of the next month.
    pub(crate) day: NaiveDate,
    pub(crate) status: String,
    pub(crate) subtotal: String,
    pub(crate) tax: String,
    pub(crate) total: String,
}

/// A payment attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PaymentMark {
    pub(crate) day: NaiveDate,
    pub(crate) attempt: i16,
    pub(crate) period: String,
    pub(crate) amount: String,
    pub(crate) succeeded: bool,
    pub(crate) reason: Option<String>,
}

/// A step refused with its expected error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ErrorMark {
    pub(crate) day: NaiveDate,
    pub(crate) step: usize,
    pub(crate) code: String,
}

/// The timeline of a run.
pub(crate) fn build(
    scenario: &Scenario,
    outcome: &Outcome,
    facts: &Facts,
    today: Option<NaiveDate>,
) -> Timeline {
    // A plan keeps its colour across tenants: the order plans are first seen in.
    let mut plan_order: Vec<String> = Vec::new();
    let tenants = scenario
        .tenants
        .iter()
        .map(|def| {
            let fact = facts.tenants.iter().find(|f| f.tenant == def.key);
            TenantLanes {
                tenant: def.key.clone(),
                lanes: tenant_lanes(scenario, outcome, &def.key, fact, &mut plan_order),
            }
        })
        .collect();
    Timeline {
        first: scenario.start,
        last: scenario.until.max(scenario.start),
        today,
        tenants,
        products: product_lanes(scenario, outcome, &facts.products),
    }
}

/// A tenant's lanes, top to bottom, each left out when it has nothing to show.
fn tenant_lanes(
    scenario: &Scenario,
    outcome: &Outcome,
    key: &str,
    fact: Option<&TenantFacts>,
    plan_order: &mut Vec<String>,
) -> Vec<Lane> {
    let mut lanes = Vec::new();
    let periods = fact.map_or(&[][..], |f| &f.periods[..]);
    push_lane(&mut lanes, plan_marks(periods, plan_order), Lane::Plans);
    push_lane(&mut lanes, state_marks(outcome, key), Lane::State);
    if let Some(fact) = fact {
        lanes.extend(usage_lanes(scenario, fact));
    }
    push_lane(
        &mut lanes,
        invoice_marks(scenario, outcome, key),
        Lane::Invoices,
    );
    push_lane(
        &mut lanes,
        payment_marks(scenario, outcome, key),
        Lane::Payments,
    );
    push_lane(
        &mut lanes,
        error_marks(scenario, outcome, key),
        Lane::Errors,
    );
    push_lane(
        &mut lanes,
        contract_marks(scenario, key, fact),
        Lane::Contracts,
    );
    push_lane(
        &mut lanes,
        purge_marks(scenario, outcome, key),
        Lane::Purges,
    );
    lanes
}

/// Adds the lane of `marks` to `lanes`, unless there is none to show.
fn push_lane<T>(lanes: &mut Vec<Lane>, marks: Vec<T>, lane: fn(Vec<T>) -> Lane) {
    if !marks.is_empty() {
        lanes.push(lane(marks));
    }
}

/// The plan periods, each coloured by its plan's place in `plan_order` (a new plan is added to
/// it).
fn plan_marks(periods: &[PlanPeriod], plan_order: &mut Vec<String>) -> Vec<PlanMark> {
    periods
        .iter()
        .map(|period| {
            let colour = match plan_order.iter().position(|p| p == &period.plan) {
                Some(n) => n,
                None => {
                    plan_order.push(period.plan.clone());
                    plan_order.len() - 1
                }
            };
            PlanMark {
                plan: period.plan.clone(),
                contract_over: period.contract_over.clone(),
                from: period.from,
                until: period.until,
                fee: money_in(period.terms.base_fee, &period.currency),
                colour,
            }
        })
        .collect()
}

/// The subscription's states of `tenant`, each until the next change.
fn state_marks(outcome: &Outcome, tenant: &str) -> Vec<StateMark> {
    let Some(subscription) = outcome.subscriptions.iter().find(|s| s.tenant == tenant) else {
        return Vec::new();
    };
    subscription
        .changes
        .iter()
        .enumerate()
        .filter_map(|(i, change)| {
            let state = match change.status.as_str() {
                "active" => State::Active,
                "past_due" => State::PastDue,
                "cancelled" => State::Cancelled,
                _ => return None,
            };
            Some(StateMark {
                state,
                from: change.on,
                until: subscription.changes.get(i + 1).map(|c| c.on),
            })
        })
        .collect()
}

/// A usage lane per metric the tenant used, by name.
fn usage_lanes(scenario: &Scenario, fact: &TenantFacts) -> Vec<Lane> {
    let metrics: BTreeSet<&str> = fact.usage.iter().map(|u| u.metric.as_str()).collect();
    metrics
        .into_iter()
        .filter_map(|metric| {
            let segments = usage_segments(scenario, fact, metric);
            (!segments.is_empty()).then(|| Lane::Usage {
                metric: metric.to_owned(),
                segments,
            })
        })
        .collect()
}

/// The invoices of `tenant`, on the day of their close.
fn invoice_marks(scenario: &Scenario, outcome: &Outcome, tenant: &str) -> Vec<InvoiceMark> {
    outcome
        .invoices
        .iter()
        .filter(|i| i.tenant == tenant)
        .map(|i| {
            let day = i.period.parse::<Month>().map_or(scenario.until, Month::end);
            InvoiceMark {
                period: i.period.clone(),
                day,
                status: i.status.to_string(),
                subtotal: money_in(i.subtotal, &i.currency),
                tax: money_in(i.tax, &i.currency),
                total: money_in(i.total, &i.currency),
            }
        })
        .collect()
}

/// The payment attempts of `tenant`, each amount in its invoice's currency.
fn payment_marks(scenario: &Scenario, outcome: &Outcome, tenant: &str) -> Vec<PaymentMark> {
    let currency = |invoice: Option<&OutcomeInvoice>, plan: &str| {
        invoice
            .map(|i| i.currency.clone())
            .or_else(|| {
                scenario
                    .catalog
                    .plan(plan)
                    .map(|p| p.currency.code().to_owned())
            })
            .unwrap_or_else(|| scenario.catalog.currency.code().to_owned())
    };
    outcome
        .payments
        .iter()
        .filter(|pay| pay.tenant == tenant)
        .map(|pay| {
            let invoice = outcome
                .invoices
                .iter()
                .find(|i| i.tenant == tenant && i.period == pay.period);
            PaymentMark {
                day: pay.on,
                attempt: pay.attempt,
                period: pay.period.clone(),
                amount: money_in(pay.amount, &currency(invoice, "")),
                succeeded: pay.outcome == PaymentOutcome::Succeeded,
                reason: pay.failure_code.clone(),
            }
        })
        .collect()
}

/// The steps acting on `tenant` that were refused with their expected error.
fn error_marks(scenario: &Scenario, outcome: &Outcome, tenant: &str) -> Vec<ErrorMark> {
    outcome
        .errors
        .iter()
        .filter_map(|e| {
            let step = scenario.steps.iter().find(|s| s.number == e.step)?;
            (step_tenant(scenario, &step.action)? == tenant).then(|| ErrorMark {
                day: step.on,
                step: e.step,
                code: e.code.clone(),
            })
        })
        .collect()
}

/// The purge steps that reached `tenant`'s organization: the organization itself, or one of its
/// people, with what the step deleted (from the outcome).
fn purge_marks(scenario: &Scenario, outcome: &Outcome, tenant: &str) -> Vec<PurgeMark> {
    let Some(def) = scenario.tenants.iter().find(|t| t.key == tenant) else {
        return Vec::new();
    };
    let org = scenario.orgs.get(def.org);
    scenario
        .steps
        .iter()
        .filter_map(|step| {
            let Action::Purge(purge) = &step.action else {
                return None;
            };
            let reaches = match purge {
                PurgeStep::Org(o) => *o == def.org,
                PurgeStep::User(email) => org.is_some_and(|o| {
                    o.owner.as_deref() == Some(email.as_str()) || o.members.contains(email)
                }),
            };
            if !reaches {
                return None;
            }
            let done = outcome.purges.iter().find(|p| p.step == step.number)?;
            Some(PurgeMark {
                day: step.on,
                step: step.number,
                purged: done.purged.clone(),
                rows: done.rows.iter().map(|(t, n)| (t.clone(), *n)).collect(),
                told: done.told.iter().map(|(t, n)| (t.clone(), *n)).collect(),
            })
        })
        .collect()
}

/// The contract steps of `tenant`, with the terms the period they opened was billed with (or,
/// for a step that opened none, the terms it named).
fn contract_marks(
    scenario: &Scenario,
    tenant: &str,
    fact: Option<&TenantFacts>,
) -> Vec<ContractMark> {
    scenario
        .steps
        .iter()
        .filter_map(|step| {
            let Action::Contract { tenant: t, terms } = &step.action else {
                return None;
            };
            (scenario.tenants.get(*t)?.key == tenant).then_some(())?;
            let period: Option<&PlanPeriod> = fact.and_then(|f| {
                f.periods
                    .iter()
                    .find(|p| p.from == step.on && p.contract_over.is_some())
            });
            let base = period
                .and_then(|p| p.contract_over.clone())
                .or_else(|| terms.plan.clone())
                .unwrap_or_else(|| "?".to_owned());
            let (fee, included, overage) = match period {
                Some(p) => (
                    money_in(p.terms.base_fee, &p.currency),
                    p.terms
                        .included
                        .iter()
                        .map(|(m, n)| (m.clone(), *n))
                        .collect(),
                    p.terms
                        .overage
                        .iter()
                        .map(|(m, o)| (m.clone(), o.block, money_in(o.price, &p.currency)))
                        .collect(),
                ),
                None => {
                    let currency = scenario.catalog.currency;
                    (
                        terms
                            .base_fee
                            .map(|f| money(f, currency))
                            .unwrap_or_default(),
                        terms
                            .included
                            .iter()
                            .map(|(m, n)| (m.clone(), *n))
                            .collect(),
                        terms
                            .overage
                            .iter()
                            .map(|(m, o)| (m.clone(), o.block, money(o.price, currency)))
                            .collect(),
                    )
                }
            };
            Some(ContractMark {
                day: step.on,
                step: step.number,
                base,
                fee,
                included,
                overage,
                limits: terms.limits.iter().map(|(k, v)| (k.clone(), *v)).collect(),
                term_ends_on: terms.term_ends_on,
            })
        })
        .collect()
}

/// A lane per product that has something to show, by key: it received a write, a step put a
/// fault or drift on it, or it did not converge or needed repairs. A product that was only read
/// back at the end (it holds nothing of the scenario's tenants) gets none.
fn product_lanes(scenario: &Scenario, outcome: &Outcome, facts: &[ProductFacts]) -> Vec<Lane> {
    let named = |key: &str| {
        scenario.steps.iter().any(|step| match &step.action {
            Action::ProductFault { product, .. } | Action::ProductDrift { product, .. } => {
                product == key
            }
            _ => false,
        }) || scenario.products.iter().any(|p| p.key == key)
    };
    let keys: BTreeSet<&str> = facts
        .iter()
        .filter(|f| f.requests.iter().any(|r| r.method != "GET"))
        .map(|f| f.product.as_str())
        .chain(
            outcome
                .products
                .iter()
                .filter(|p| !p.converged || !p.repaired.is_empty())
                .map(|p| p.key.as_str()),
        )
        .chain(
            facts
                .iter()
                .map(|f| f.product.as_str())
                .chain(outcome.products.iter().map(|p| p.key.as_str()))
                .filter(|key| named(key)),
        )
        .collect();
    keys.into_iter()
        .map(|key| {
            let mut days: Vec<ProductDay> = Vec::new();
            // A read-back answered `200` is the reconciler looking, not sync: it is counted at
            // the end, not drawn on its day.
            for r in facts
                .iter()
                .filter(|f| f.product == key)
                .flat_map(|f| &f.requests)
                .filter(|r| r.method != "GET" || !r.delivered())
            {
                if days.last().is_none_or(|d| d.day != r.day) {
                    days.push(ProductDay {
                        day: r.day,
                        delivered: Vec::new(),
                        faulted: Vec::new(),
                    });
                }
                let Some(day) = days.iter_mut().find(|d| d.day == r.day) else {
                    continue;
                };
                let request = Request {
                    call: format!("{} {}", r.method, r.route),
                    status: r.status,
                    fault: r.fault.clone(),
                    replay: r.replay,
                };
                if r.fault.is_some() || !r.delivered() {
                    day.faulted.push(request.clone());
                }
                if r.delivered() {
                    day.delivered.push(request);
                }
            }
            days.sort_by_key(|d| d.day);
            let drifts = scenario
                .steps
                .iter()
                .filter_map(|step| match &step.action {
                    Action::ProductDrift { product, tenant } if product == key => Some((
                        step.on,
                        step.number,
                        scenario.tenants.get(*tenant)?.key.clone(),
                    )),
                    _ => None,
                })
                .collect();
            let tz = scenario.catalog.time_zone;
            let outage = scenario
                .products
                .iter()
                .find(|p| p.key == key)
                .and_then(|p| p.outage)
                .map(|o| OutageMark {
                    from: o.from().with_timezone(&tz),
                    until: o.until().with_timezone(&tz),
                    fault: o.fault().to_string(),
                });
            let result = outcome.products.iter().find(|p| p.key == key);
            let caught_up = outage.as_ref().and_then(|_| {
                let p = result?;
                Some(CaughtUpMark {
                    at: p.converged_at?.with_timezone(&tz),
                    wait: p.longest_wait,
                })
            });
            let end = result.map(|p| ProductEnd {
                day: scenario.until,
                converged: p.converged,
                repaired: p.repaired.clone(),
                drift: p.drift.clone(),
                requests: p.requests,
                faults_applied: p.faults_applied,
                dead_letters: p.dead_letters,
            });
            Lane::Product(Box::new(ProductLane {
                product: key.to_owned(),
                days,
                drifts,
                outage,
                caught_up,
                end,
            }))
        })
        .collect()
}

/// A plan period's name: its key, or for a contract "contract over pro".
pub(crate) fn plan_name(w: &Words, plan: &str, contract_over: Option<&str>) -> String {
    match contract_over {
        Some(base) => fill(w.contract_name, &[("base", base)]),
        None => plan.to_owned(),
    }
}

/// The tenant a step acts on: its own, or for a card the first tenant of the organization;
/// none for a fault put on a product.
fn step_tenant<'a>(scenario: &'a Scenario, action: &Action) -> Option<&'a str> {
    let index = match action {
        Action::Subscribe { tenant, .. }
        | Action::ChangePlan { tenant, .. }
        | Action::Cancel { tenant }
        | Action::Usage { tenant, .. }
        | Action::ProductDrift { tenant, .. }
        | Action::Contract { tenant, .. } => *tenant,
        Action::SetCard { org, .. } | Action::Purge(super::super::PurgeStep::Org(org)) => {
            scenario.tenants.iter().position(|t| t.org == *org)?
        }
        Action::ProductFault { .. } | Action::Purge(_) => return None,
    };
    scenario.tenants.get(index).map(|t| t.key.as_str())
}

/// The usage of `metric` cut into plan periods within months, each with its prorated quota
/// (the same rule as the invoice's overage line).
fn usage_segments(scenario: &Scenario, fact: &TenantFacts, metric: &str) -> Vec<UsageSegment> {
    let mut segments = Vec::new();
    for period in &fact.periods {
        let included = period.terms.included.get(metric).copied().unwrap_or(0);
        let mut month = Month::of(period.from);
        loop {
            let from = period.from.max(month.first_day());
            let until = period.until.unwrap_or(month.end()).min(month.end());
            if from >= until || from > scenario.until {
                break;
            }
            let days = u32::try_from((until - from).num_days()).unwrap_or(0);
            let quota = prorated_quota(included, days, month.days());
            let mut so_far = 0;
            let mut days_used = Vec::new();
            let mut crossed = None;
            let mut day = from;
            while day < until && day <= scenario.until {
                let used: u64 = fact
                    .usage
                    .iter()
                    .filter(|u| u.day == day && u.metric == metric)
                    .map(|u| u.quantity)
                    .sum();
                so_far += used;
                if so_far > 0 {
                    days_used.push((day, used, so_far));
                }
                if crossed.is_none() && so_far > quota {
                    crossed = Some(day);
                }
                day = day.succ_opt().unwrap_or(day);
                if day == from {
                    break;
                }
            }
            segments.push(UsageSegment {
                plan: period.plan.clone(),
                contract_over: period.contract_over.clone(),
                from,
                until,
                included,
                days,
                month_days: month.days(),
                quota,
                days_used,
                crossed,
            });
            if period.until.is_some_and(|u| u <= month.end()) {
                break;
            }
            month = month.next();
        }
    }
    if segments.iter().all(|s| s.days_used.is_empty()) {
        return Vec::new();
    }
    segments
}

/// Width of one day.
const DAY: f64 = 16.0;
/// Room for the lane labels on the left.
const LEFT: f64 = 150.0;
/// Height of the axis.
const AXIS: f64 = 46.0;
/// Height of a row of labels.
const ROW: f64 = 15.0;
/// Height of the band of marks in a lane.
const BAND: f64 = 18.0;
/// Height of the usage bars' area.
const BARS: f64 = 56.0;

/// One mark of a lane: its shape (SVG), where its label starts, the label and the tooltip.
struct Mark {
    shape: String,
    x: f64,
    label: String,
    tip: String,
}

/// A day as in the labels: `11-05`.
fn short(day: NaiveDate) -> String {
    day.format("%m-%d").to_string()
}

/// A day as in the tooltips: `2026-11-05`.
fn date(day: NaiveDate) -> String {
    day.to_string()
}

/// The width `text` takes at the labels' size, roughly (for placing labels in rows).
fn text_width(text: &str) -> f64 {
    text.chars()
        .map(|c| if c.is_ascii() { 6.4 } else { 11.5 })
        .sum()
}

/// Row of each label so that none overlaps the one before it in its row.
fn place(starts: &[(f64, f64)]) -> Vec<usize> {
    let mut ends: Vec<f64> = Vec::new();
    starts
        .iter()
        .map(|&(x, width)| {
            let row = ends
                .iter()
                .position(|&end| end + 6.0 <= x)
                .unwrap_or(ends.len());
            if row == ends.len() {
                ends.push(x + width);
            } else {
                ends[row] = x + width;
            }
            row
        })
        .collect()
}

/// The state's name in `w`.
pub(crate) fn state_name(w: &Words, status: &str) -> String {
    match status {
        "active" => w.active,
        "past_due" => w.past_due,
        "cancelled" => w.cancelled,
        other => other,
    }
    .to_owned()
}

impl State {
    fn key(self) -> &'static str {
        match self {
            State::Active => "active",
            State::PastDue => "past_due",
            State::Cancelled => "cancelled",
        }
    }
}

struct Scale {
    first: NaiveDate,
    last: NaiveDate,
}

impl Scale {
    /// The left edge of `day`'s column, clamped to the days shown.
    fn x(&self, day: NaiveDate) -> f64 {
        let n = (day.min(self.end()) - self.first).num_days().max(0);
        LEFT + DAY * n as f64
    }

    /// The day after the last one shown.
    fn end(&self) -> NaiveDate {
        self.last.succ_opt().unwrap_or(self.last)
    }

    fn days(&self) -> i64 {
        (self.end() - self.first).num_days()
    }
}

impl Lane {
    /// The lane's label on the left.
    fn title(&self, w: &Words) -> String {
        match self {
            Lane::Plans(_) => w.lane_plans.to_owned(),
            Lane::State(_) => w.lane_state.to_owned(),
            Lane::Usage { metric, .. } => fill(w.lane_usage, &[("metric", metric)]),
            Lane::Invoices(_) => w.lane_invoices.to_owned(),
            Lane::Payments(_) => w.lane_payments.to_owned(),
            Lane::Errors(_) => w.lane_errors.to_owned(),
            Lane::Contracts(_) => w.lane_contracts.to_owned(),
            Lane::Purges(_) => w.lane_purges.to_owned(),
            Lane::Product(lane) => lane.product.clone(),
        }
    }

    /// Height of the band of marks above the labels.
    fn band(&self) -> f64 {
        match self {
            Lane::Usage { .. } => BARS,
            _ => BAND,
        }
    }

    /// The marks, with `top` the top of the band: one function per kind of lane draws them.
    fn marks(&self, w: &Words, s: &Scale, top: f64) -> Vec<Mark> {
        match self {
            Lane::Plans(plans) => draw_plans(w, s, top, plans),
            Lane::State(states) => draw_states(w, s, top, states),
            Lane::Usage { metric, segments } => draw_usage(w, s, top, metric, segments),
            Lane::Invoices(invoices) => draw_invoices(w, s, top, invoices),
            Lane::Payments(payments) => draw_payments(w, s, top, payments),
            Lane::Errors(errors) => draw_errors(w, s, top, errors),
            Lane::Contracts(contracts) => draw_contracts(w, s, top, contracts),
            Lane::Purges(purges) => draw_purges(w, s, top, purges),
            Lane::Product(lane) => draw_product(w, s, top, lane),
        }
    }
}

/// The plan periods: a bar each in its plan's colour, labelled with the plan and its fee.
fn draw_plans(w: &Words, s: &Scale, top: f64, plans: &[PlanMark]) -> Vec<Mark> {
    plans
        .iter()
        .map(|m| {
            let (fill_colour, stroke) = p::PLANS[m.colour % p::PLANS.len()];
            let x1 = s.x(m.from);
            let x2 = s.x(m.until.unwrap_or(s.end()));
            Mark {
                shape: format!(
                    r#"<rect x="{x1:.1}" y="{top:.1}" width="{:.1}" height="{BAND}" rx="3" fill="{fill_colour}" stroke="{stroke}"/>"#,
                    (x2 - x1).max(2.0)
                ),
                x: x1,
                label: match &m.contract_over {
                    Some(base) => {
                        fill(w.contract_plan_label, &[("base", base), ("fee", &m.fee)])
                    }
                    None => fill(w.plan_label, &[("plan", &m.plan), ("fee", &m.fee)]),
                },
                tip: fill(
                    w.plan_tip,
                    &[
                        ("plan", &plan_name(w, &m.plan, m.contract_over.as_deref())),
                        ("from", &date(m.from)),
                        ("until", &m.until.map_or(w.open.to_owned(), date)),
                        ("fee", &m.fee),
                    ],
                ),
            }
        })
        .collect()
}

/// The states: a bar each, told apart by colour and pattern, labelled with the state and its
/// first day.
fn draw_states(w: &Words, s: &Scale, top: f64, states: &[StateMark]) -> Vec<Mark> {
    states
        .iter()
        .map(|m| {
            let (background, _) = match m.state {
                State::Active => p::ACTIVE,
                State::PastDue => p::PAST_DUE,
                State::Cancelled => p::CANCELLED,
            };
            let x1 = s.x(m.from);
            let x2 = s.x(m.until.unwrap_or(s.end()));
            let name = state_name(w, m.state.key());
            Mark {
                shape: format!(
                    r#"<rect x="{x1:.1}" y="{top:.1}" width="{:.1}" height="{BAND}" fill="{background}"/><rect x="{x1:.1}" y="{top:.1}" width="{:.1}" height="{BAND}" fill="url(#bh-{})" stroke="{}"/>"#,
                    (x2 - x1).max(2.0),
                    (x2 - x1).max(2.0),
                    m.state.key(),
                    p::GRID
                ),
                x: x1,
                label: fill(w.state_label, &[("state", &name), ("day", &short(m.from))]),
                tip: fill(
                    w.state_tip,
                    &[
                        ("state", &name),
                        ("from", &date(m.from)),
                        ("until", &m.until.map_or(w.open.to_owned(), date)),
                    ],
                ),
            }
        })
        .collect()
}

/// The invoices: a page on the day of the close, labelled with the period and the total.
fn draw_invoices(w: &Words, s: &Scale, top: f64, invoices: &[InvoiceMark]) -> Vec<Mark> {
    invoices
        .iter()
        .map(|m| {
            let x = s.x(m.day) + 3.0;
            Mark {
                shape: format!(
                    r#"<path d="M{x:.1} {:.1}h8l3 3v11h-11z" fill="{}" stroke="{}" stroke-width="1.5"/>"#,
                    top + 2.0,
                    p::PAPER,
                    p::INK
                ),
                x: s.x(m.day),
                label: fill(w.invoice_label, &[("period", &m.period), ("total", &m.total)]),
                tip: fill(
                    w.invoice_tip,
                    &[
                        ("period", &m.period),
                        ("day", &date(m.day)),
                        ("status", &invoice_status(w, &m.status)),
                        ("subtotal", &m.subtotal),
                        ("tax", &m.tax),
                        ("total", &m.total),
                    ],
                ),
            }
        })
        .collect()
}

/// The payment attempts: a dot for a success, a cross for a failure, labelled with the day and
/// the outcome.
fn draw_payments(w: &Words, s: &Scale, top: f64, payments: &[PaymentMark]) -> Vec<Mark> {
    let mid = top + BAND / 2.0;
    payments
        .iter()
        .map(|m| {
            let cx = s.x(m.day) + DAY / 2.0;
            let shape = if m.succeeded {
                format!(
                    r#"<circle cx="{cx:.1}" cy="{mid:.1}" r="5.5" fill="{}"/>"#,
                    p::SUCCEEDED
                )
            } else {
                format!(
                    r#"<path d="M{:.1} {:.1}l10 10m0 -10l-10 10" stroke="{}" stroke-width="3"/>"#,
                    cx - 5.0,
                    mid - 5.0,
                    p::FAILED
                )
            };
            let (mark, outcome) = if m.succeeded {
                ("✓", w.succeeded)
            } else {
                ("✗", w.failed)
            };
            let reason = m
                .reason
                .as_deref()
                .map_or_else(String::new, |r| format!(" ({r})"));
            Mark {
                shape,
                x: s.x(m.day),
                label: fill(
                    w.payment_label,
                    &[("day", &short(m.day)), ("mark", mark), ("outcome", outcome)],
                ),
                tip: fill(
                    w.payment_tip,
                    &[
                        ("date", &date(m.day)),
                        ("attempt", &m.attempt.to_string()),
                        ("period", &m.period),
                        ("amount", &m.amount),
                        ("outcome", outcome),
                        ("reason", &reason),
                    ],
                ),
            }
        })
        .collect()
}

/// The refused steps: a diamond on the step's day, labelled with the expected error.
fn draw_errors(w: &Words, s: &Scale, top: f64, errors: &[ErrorMark]) -> Vec<Mark> {
    errors
        .iter()
        .map(|m| {
            let cx = s.x(m.day) + DAY / 2.0;
            Mark {
                shape: format!(
                    r#"<path d="M{cx:.1} {:.1}l6 7l-6 7l-6 -7z" fill="{}"/>"#,
                    top + 2.0,
                    p::ERROR
                ),
                x: s.x(m.day),
                label: fill(w.error_label, &[("day", &short(m.day)), ("code", &m.code)]),
                tip: fill(
                    w.error_tip,
                    &[
                        ("step", &m.step.to_string()),
                        ("date", &date(m.day)),
                        ("code", &m.code),
                    ],
                ),
            }
        })
        .collect()
}

/// The contract steps: a document on the step's day, labelled with the plan it is made over.
fn draw_contracts(w: &Words, s: &Scale, top: f64, contracts: &[ContractMark]) -> Vec<Mark> {
    contracts
        .iter()
        .map(|m| {
            let cx = s.x(m.day) + DAY / 2.0;
            Mark {
                shape: format!(
                    r#"<path d="M{:.1} {:.1}h12v14h-12z M{:.1} {:.1}h6" fill="{}" stroke="{}" stroke-width="1.5"/>"#,
                    cx - 6.0,
                    top + 2.0,
                    cx - 3.0,
                    top + 7.0,
                    p::CONTRACT,
                    p::INK
                ),
                x: s.x(m.day),
                label: fill(w.contract_label, &[("day", &short(m.day)), ("base", &m.base)]),
                tip: fill(
                    w.contract_tip,
                    &[
                        ("step", &m.step.to_string()),
                        ("date", &date(m.day)),
                        ("base", &m.base),
                        ("terms", &contract_terms(w, m)),
                    ],
                ),
            }
        })
        .collect()
}

/// The purge steps: a cross on the step's day, labelled with the rows it deleted.
fn draw_purges(w: &Words, s: &Scale, top: f64, purges: &[PurgeMark]) -> Vec<Mark> {
    purges
        .iter()
        .map(|m| {
            let cx = s.x(m.day) + DAY / 2.0;
            let rows: u64 = m.rows.iter().map(|(_, n)| n).sum();
            let list = |items: Vec<String>| {
                if items.is_empty() {
                    "-".to_owned()
                } else {
                    items.join(", ")
                }
            };
            Mark {
                shape: format!(
                    r#"<path d="M{:.1} {:.1}l12 14 M{:.1} {:.1}l-12 14" stroke="{}" stroke-width="2.5"/>"#,
                    cx - 6.0,
                    top + 2.0,
                    cx + 6.0,
                    top + 2.0,
                    p::INK
                ),
                x: s.x(m.day),
                label: fill(
                    w.purge_label,
                    &[("day", &short(m.day)), ("rows", &count(rows))],
                ),
                tip: fill(
                    w.purge_tip,
                    &[
                        ("step", &m.step.to_string()),
                        ("date", &date(m.day)),
                        ("purged", &m.purged),
                        ("rows", &count(rows)),
                        (
                            "tables",
                            &list(m.rows.iter().map(|(t, n)| format!("{t} {n}")).collect()),
                        ),
                        (
                            "told",
                            &list(m.told.iter().map(|(t, n)| format!("{t} ×{n}")).collect()),
                        ),
                    ],
                ),
            }
        })
        .collect()
}

/// A contract's terms in words: fee, quotas, overage prices, limits and term.
fn contract_terms(w: &Words, m: &ContractMark) -> String {
    let mut parts = Vec::new();
    if !m.fee.is_empty() {
        parts.push(fill(w.term_fee, &[("fee", &m.fee)]));
    }
    for (metric, n) in &m.included {
        parts.push(fill(
            w.term_included,
            &[("metric", metric), ("count", &count(*n))],
        ));
    }
    for (metric, block, price) in &m.overage {
        parts.push(fill(
            w.term_overage,
            &[
                ("metric", metric),
                ("block", &count(*block)),
                ("price", price),
            ],
        ));
    }
    for (limit, value) in &m.limits {
        parts.push(fill(
            w.term_limit,
            &[("limit", limit), ("value", &value.to_string())],
        ));
    }
    if let Some(day) = m.term_ends_on {
        parts.push(fill(w.term_ends, &[("date", &day.to_string())]));
    }
    parts.join(", ")
}

/// One request as a tooltip lists it: `PUT /v1/tenants/{tenant} 503 (status_503)`.
fn request_text(w: &Words, r: &Request) -> String {
    let mut out = format!(
        "{} {}",
        r.call,
        r.status.map_or(w.no_answer.to_owned(), |s| s.to_string())
    );
    if let Some(fault) = &r.fault {
        let _ = write!(out, " ({fault})");
    }
    if r.replay {
        let _ = write!(out, " [{}]", w.replayed);
    }
    out
}

/// What went wrong on a day, by name with counts: `status_503 ×5, no answer`.
fn fault_names(w: &Words, requests: &[Request]) -> String {
    let mut names: Vec<(String, usize)> = Vec::new();
    for r in requests {
        let name = match (&r.fault, r.status) {
            (Some(fault), _) => fault.clone(),
            (None, Some(status)) => status.to_string(),
            (None, None) => w.no_answer.to_owned(),
        };
        match names.iter_mut().find(|(n, _)| *n == name) {
            Some((_, times)) => *times += 1,
            None => names.push((name, 1)),
        }
    }
    names
        .into_iter()
        .map(|(name, times)| {
            if times == 1 {
                name
            } else {
                format!("{name} ×{times}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A product's marks: per day a dot with the number of answered requests and a cross naming the
/// faults, a flag on each drift step, and at the end its convergence.
fn draw_product(w: &Words, s: &Scale, top: f64, lane: &ProductLane) -> Vec<Mark> {
    let mut marks = Vec::new();
    // Under the day's marks, so that they show on it.
    if let Some(outage) = &lane.outage {
        marks.push(outage_mark(w, s, top, &lane.product, outage));
    }
    for d in &lane.days {
        if !d.delivered.is_empty() {
            marks.push(delivered_mark(w, s, top, &lane.product, d));
        }
        if !d.faulted.is_empty() {
            marks.push(faulted_mark(w, s, top, &lane.product, d));
        }
    }
    for drift in &lane.drifts {
        marks.push(drift_mark(w, s, top, &lane.product, drift));
    }
    if let Some(caught_up) = &lane.caught_up {
        marks.push(caught_up_mark(w, s, top, &lane.product, caught_up));
    }
    if let Some(end) = &lane.end {
        marks.push(convergence_mark(w, s, top, &lane.product, end));
    }
    marks
}

/// The requests of a day as a tooltip lists them, one after the other.
fn request_list(w: &Words, requests: &[Request]) -> String {
    requests
        .iter()
        .map(|r| request_text(w, r))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A day's answered requests: a dot, labelled with their number.
fn delivered_mark(w: &Words, s: &Scale, top: f64, product: &str, d: &ProductDay) -> Mark {
    let cx = s.x(d.day) + DAY / 2.0;
    Mark {
        // Above a cross on the same day, so that both show.
        shape: format!(
            r#"<circle cx="{cx:.1}" cy="{:.1}" r="4.5" fill="{}"/>"#,
            top + 4.5,
            p::SUCCEEDED
        ),
        x: s.x(d.day),
        label: fill(
            w.delivered_label,
            &[
                ("day", &short(d.day)),
                ("count", &d.delivered.len().to_string()),
            ],
        ),
        tip: fill(
            w.delivered_tip,
            &[
                ("date", &date(d.day)),
                ("product", product),
                ("count", &d.delivered.len().to_string()),
                ("requests", &request_list(w, &d.delivered)),
            ],
        ),
    }
}

/// A day's faulted or unanswered requests: a cross, labelled with what went wrong.
fn faulted_mark(w: &Words, s: &Scale, top: f64, product: &str, d: &ProductDay) -> Mark {
    let cx = s.x(d.day) + DAY / 2.0;
    Mark {
        shape: format!(
            r#"<path d="M{:.1} {:.1}l7 7m0 -7l-7 7" stroke="{}" stroke-width="2.5"/>"#,
            cx - 3.5,
            top + 10.5,
            p::FAILED
        ),
        x: s.x(d.day),
        label: fill(
            w.fault_label,
            &[
                ("day", &short(d.day)),
                ("faults", &fault_names(w, &d.faulted)),
            ],
        ),
        tip: fill(
            w.fault_tip,
            &[
                ("date", &date(d.day)),
                ("product", product),
                ("count", &d.faulted.len().to_string()),
                ("requests", &request_list(w, &d.faulted)),
            ],
        ),
    }
}

/// The local day of an instant of the catalog's time zone.
fn day_of(at: &DateTime<Tz>) -> NaiveDate {
    billing_harness::calendar::local_day(at.timezone(), at.with_timezone(&Utc))
}

/// An instant as the labels show it: `10-10 09:00`.
fn short_time(at: &DateTime<Tz>) -> String {
    at.format("%m-%d %H:%M").to_string()
}

/// An instant as the tooltips show it: `2026-10-10 09:00:00 KST`.
fn long_time(at: &DateTime<Tz>) -> String {
    at.format("%Y-%m-%d %H:%M:%S%.3f %Z")
        .to_string()
        .replace(".000 ", " ")
}

/// The product's outage: a band over the days it covers, under the day's marks.
fn outage_mark(w: &Words, s: &Scale, top: f64, product: &str, o: &OutageMark) -> Mark {
    let (background, outline) = p::OUTAGE;
    let x1 = s.x(day_of(&o.from));
    // The last day it covers: the day of the instant before `until`.
    let last = day_of(&(o.until - TimeDelta::microseconds(1)));
    let x2 = s.x(last.succ_opt().unwrap_or(last));
    let length = crate::outcome::duration_text(o.until - o.from);
    Mark {
        shape: format!(
            r#"<rect x="{x1:.1}" y="{top:.1}" width="{:.1}" height="{BAND}" fill="{background}" stroke="{outline}" stroke-dasharray="4 2"/>"#,
            (x2 - x1).max(2.0)
        ),
        x: x1,
        label: fill(
            w.outage_label,
            &[
                ("from", &short_time(&o.from)),
                ("until", &short_time(&o.until)),
            ],
        ),
        tip: fill(
            w.outage_tip,
            &[
                ("product", product),
                ("from", &long_time(&o.from)),
                ("until", &long_time(&o.until)),
                ("length", &length),
                ("fault", &o.fault),
            ],
        ),
    }
}

/// When the product held the platform's data again after its outage: a ring on that day.
fn caught_up_mark(w: &Words, s: &Scale, top: f64, product: &str, c: &CaughtUpMark) -> Mark {
    let day = day_of(&c.at);
    let cx = s.x(day) + DAY / 2.0;
    let (rows, wait) = c
        .wait
        .map_or((0, w.none.to_owned()), |l| (l.rows, l.wait_text()));
    Mark {
        shape: format!(
            r#"<circle cx="{cx:.1}" cy="{:.1}" r="6" fill="none" stroke="{}" stroke-width="2.5"/>"#,
            top + BAND / 2.0,
            p::SUCCEEDED
        ),
        x: s.x(day),
        label: fill(
            w.caught_up_label,
            &[
                ("day", &short(day)),
                ("time", &c.at.format("%H:%M").to_string()),
            ],
        ),
        tip: fill(
            w.caught_up_tip,
            &[
                ("product", product),
                ("at", &long_time(&c.at)),
                ("rows", &rows.to_string()),
                ("wait", &wait),
            ],
        ),
    }
}

/// A drift step on the product: a flag on its day.
fn drift_mark(
    w: &Words,
    s: &Scale,
    top: f64,
    product: &str,
    (day, step, tenant): &(NaiveDate, usize, String),
) -> Mark {
    let x = s.x(*day) + DAY / 2.0;
    Mark {
        shape: format!(
            r#"<path d="M{x:.1} {:.1}v16 M{x:.1} {:.1}h7l-2 3l2 3h-7z" stroke="{}" stroke-width="1.5" fill="{}"/>"#,
            top + 1.0,
            top + 1.0,
            p::INK,
            p::DRIFT
        ),
        x: s.x(*day),
        label: fill(w.drift_label, &[("day", &short(*day))]),
        tip: fill(
            w.drift_tip,
            &[
                ("step", &step.to_string()),
                ("date", &date(*day)),
                ("product", product),
                ("tenant", tenant),
            ],
        ),
    }
}

/// The product's convergence at the end: a square right of the last day, labelled with the
/// repairs it needed or the drift left.
fn convergence_mark(w: &Words, s: &Scale, top: f64, product: &str, end: &ProductEnd) -> Mark {
    let mid = top + BAND / 2.0;
    // Right of the last day's column: the result of the run, after that day's requests.
    let left = s.x(s.end()) + 2.0;
    let x = left + 6.0;
    let (colour, result) = if end.converged {
        (p::SUCCEEDED, w.converged)
    } else {
        (p::FAILED, w.not_converged)
    };
    let none = || w.none.to_owned();
    Mark {
        shape: format!(
            r#"<rect x="{:.1}" y="{:.1}" width="12" height="12" rx="2" fill="{colour}"/>"#,
            x - 6.0,
            mid - 6.0,
        ),
        x: left,
        label: if end.converged {
            fill(
                w.converged_label,
                &[("repaired", &end.repaired.len().to_string())],
            )
        } else {
            fill(
                w.not_converged_label,
                &[("drift", &end.drift.len().to_string())],
            )
        },
        tip: fill(
            w.product_end_tip,
            &[
                ("product", product),
                ("date", &date(end.day)),
                ("result", result),
                ("requests", &end.requests.to_string()),
                ("faults", &end.faults_applied.to_string()),
                ("dead", &end.dead_letters.to_string()),
                (
                    "repaired",
                    &if end.repaired.is_empty() {
                        none()
                    } else {
                        end.repaired.join("; ")
                    },
                ),
                (
                    "drift",
                    &if end.drift.is_empty() {
                        none()
                    } else {
                        end.drift.join("; ")
                    },
                ),
            ],
        ),
    }
}

/// An invoice status in `w`.
pub(crate) fn invoice_status(w: &Words, status: &str) -> String {
    match status {
        "finalized" => w.finalized,
        "paid" => w.paid,
        "past_due" => w.invoice_past_due,
        "uncollectible" => w.uncollectible,
        other => other,
    }
    .to_owned()
}

/// The usage bars and quota lines: one mark per quota line (labelled with the quota) and per
/// crossing (labelled with its day); every bar has its own tooltip.
fn draw_usage(
    w: &Words,
    s: &Scale,
    top: f64,
    metric: &str,
    segments: &[UsageSegment],
) -> Vec<Mark> {
    let most = segments
        .iter()
        .flat_map(|g| g.days_used.iter().map(|d| d.2).chain([g.quota]))
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let bottom = top + BARS;
    let y = |n: u64| bottom - (BARS - 4.0) * n as f64 / most;
    let mut marks = Vec::new();
    for g in segments {
        let mut bars = String::new();
        for &(day, used, so_far) in &g.days_used {
            let x = s.x(day) + 2.0;
            let over = so_far > g.quota;
            let tip = fill(
                w.usage_tip,
                &[
                    ("date", &day.to_string()),
                    ("metric", metric),
                    ("day_used", &count(used)),
                    ("used", &count(so_far)),
                    ("quota", &count(g.quota)),
                ],
            );
            // The part within the quota in blue, the part above it in red with stripes: the
            // overage starts where a bar crosses the quota line.
            let top_y = y(so_far);
            let split = if over { y(g.quota) } else { top_y };
            let _ = write!(
                bars,
                r#"<g><title>{}</title><rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{}"/>"#,
                escape(&tip),
                split,
                DAY - 4.0,
                bottom - split,
                p::USAGE,
            );
            if over {
                let _ = write!(
                    bars,
                    r#"<rect x="{x:.1}" y="{top_y:.1}" width="{w:.1}" height="{h:.1}" fill="{}"/><rect x="{x:.1}" y="{top_y:.1}" width="{w:.1}" height="{h:.1}" fill="url(#bh-over)"/>"#,
                    p::OVER,
                    w = DAY - 4.0,
                    h = (split - top_y).max(1.5),
                );
            }
            bars.push_str("</g>");
        }
        let (x1, x2) = (s.x(g.from), s.x(g.until));
        let qy = y(g.quota);
        let quota_tip = fill(
            w.quota_tip,
            &[
                ("plan", &plan_name(w, &g.plan, g.contract_over.as_deref())),
                ("metric", metric),
                ("included", &count(g.included)),
                ("days", &g.days.to_string()),
                ("month_days", &g.month_days.to_string()),
                ("quota", &count(g.quota)),
            ],
        );
        marks.push(Mark {
            shape: format!(
                r#"{bars}<line x1="{x1:.1}" y1="{qy:.1}" x2="{x2:.1}" y2="{qy:.1}" stroke="{}" stroke-width="2" stroke-dasharray="5 3"/>"#,
                p::INK
            ),
            x: x1,
            label: fill(w.quota_label, &[("quota", &count(g.quota))]),
            tip: quota_tip,
        });
        if let Some(day) = g.crossed {
            let x = s.x(day) + DAY / 2.0;
            marks.push(Mark {
                shape: format!(
                    r#"<path d="M{:.1} {:.1}l5 -7l5 7z" fill="{}"/>"#,
                    x - 5.0,
                    bottom + 1.0,
                    p::OVER
                ),
                x: s.x(day),
                label: fill(w.over_label, &[("day", &short(day))]),
                tip: fill(
                    w.usage_tip,
                    &[
                        ("date", &day.to_string()),
                        ("metric", metric),
                        (
                            "day_used",
                            &count(g.days_used.iter().find(|d| d.0 == day).map_or(0, |d| d.1)),
                        ),
                        (
                            "used",
                            &count(g.days_used.iter().find(|d| d.0 == day).map_or(0, |d| d.2)),
                        ),
                        ("quota", &count(g.quota)),
                    ],
                ),
            });
        }
    }
    marks
}

/// The patterns that tell states apart without colour.
fn defs() -> String {
    format!(
        concat!(
            r#"<defs>"#,
            r#"<pattern id="bh-active" width="8" height="8" patternUnits="userSpaceOnUse"><rect width="8" height="8" fill="none"/></pattern>"#,
            r#"<pattern id="bh-past_due" width="8" height="8" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="3.5" height="8" fill="{past_due}"/></pattern>"#,
            r#"<pattern id="bh-cancelled" width="8" height="8" patternUnits="userSpaceOnUse"><path d="M0 0l8 8M8 0l-8 8" stroke="{cancelled}" stroke-width="1.2"/></pattern>"#,
            r#"<pattern id="bh-over" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(-45)"><rect width="2" height="6" fill="{paper}" fill-opacity="0.55"/></pattern>"#,
            r#"</defs>"#
        ),
        past_due = p::PAST_DUE.1,
        cancelled = p::CANCELLED.1,
        paper = p::PAPER,
    )
}

/// A month on the axis.
fn month_name(w: &Words, month: Month) -> String {
    const MON: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    fill(
        w.month,
        &[
            ("year", &month.year().to_string()),
            ("month", &month.month().to_string()),
            ("mon", MON[(month.month() as usize + 11) % 12]),
        ],
    )
}

/// The picture: `<svg role="img">` with a title and a description, an axis with every day
/// ticked and each month's start labelled, and the lanes.
pub(crate) fn svg(t: &Timeline, lang: Lang, name: &str) -> String {
    let w = lang.words();
    let s = Scale {
        first: t.first,
        last: t.last,
    };
    let blocks: Vec<(String, &[Lane])> = t
        .tenants
        .iter()
        .map(|tenant| (tenant.tenant.clone(), &tenant.lanes[..]))
        .chain((!t.products.is_empty()).then(|| (w.products_heading.to_owned(), &t.products[..])))
        .collect();
    // Wide enough for the days and for the labels that start near the end (the convergence).
    let width = blocks
        .iter()
        .flat_map(|(_, lanes)| lanes.iter())
        .flat_map(|lane| lane.marks(w, &s, 0.0))
        .map(|m| m.x + 2.0 + text_width(&m.label) + 8.0)
        .fold(LEFT + DAY * s.days() as f64 + 24.0, f64::max)
        .ceil();
    let mut body = String::new();
    let mut y = AXIS + 6.0;
    for (heading, lanes) in blocks {
        let _ = write!(
            body,
            r#"<text x="8" y="{:.1}" font-weight="bold" font-size="13" fill="{}">{}</text>"#,
            y + 14.0,
            p::INK,
            escape(&heading)
        );
        y += 22.0;
        for lane in lanes {
            y += draw_lane(&mut body, w, &s, lane, y, width);
        }
        y += 10.0;
    }
    let height = y + 4.0;
    let axis = draw_axis(w, t, &s, height);
    let title = fill(w.timeline_title, &[("name", name)]);
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="timeline" role="img" aria-labelledby="bh-tl-title bh-tl-desc" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif" font-size="11"><title id="bh-tl-title">{}</title><desc id="bh-tl-desc">{}</desc>{}<rect width="100%" height="100%" fill="{}"/>{axis}{body}</svg>"#,
        escape(&title),
        escape(w.timeline_desc),
        defs(),
        p::PAPER
    )
}

/// Draws `lane` into `body` at `y`, across `width`: a rule and its title, its marks with a
/// leader down to each label, then the labels in rows; returns the lane's height.
fn draw_lane(body: &mut String, w: &Words, s: &Scale, lane: &Lane, y: f64, width: f64) -> f64 {
    let band = lane.band();
    let marks = lane.marks(w, s, y + 4.0);
    let rows = place(
        &marks
            .iter()
            .map(|m| (m.x, text_width(&m.label)))
            .collect::<Vec<_>>(),
    );
    let label_rows = rows.iter().max().map_or(0, |r| r + 1);
    let height = 4.0 + band + ROW * label_rows as f64 + 8.0;
    let _ = write!(
        body,
        r#"<line x1="8" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{}"/><text x="16" y="{:.1}" fill="{}">{}</text>"#,
        width - 8.0,
        p::GRID,
        y + 4.0 + 13.0,
        p::MUTED,
        escape(&lane.title(w))
    );
    // Shapes and leaders first, then every label over them (with a halo), so that no
    // line crosses a label.
    let mut labels = String::new();
    for (mark, row) in marks.iter().zip(&rows) {
        let label_y = y + 4.0 + band + ROW * (*row as f64 + 1.0);
        let tip = escape(&mark.tip);
        let _ = write!(
            body,
            r#"<g><title>{tip}</title>{}<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="{}"/></g>"#,
            mark.shape,
            y + 4.0 + band,
            label_y - 9.0,
            p::MUTED,
            x = mark.x + 0.5,
        );
        let _ = write!(
            labels,
            r#"<g><title>{tip}</title><text x="{:.1}" y="{label_y:.1}" fill="{}" stroke="{}" stroke-width="3" paint-order="stroke">{}</text></g>"#,
            mark.x + 2.0,
            p::INK,
            p::PAPER,
            escape(&mark.label),
        );
    }
    body.push_str(&labels);
    height
}

/// The day axis, `height` tall: every day ticked, each month's start labelled with a line down
/// the picture, and the present day marked when it is shown.
fn draw_axis(w: &Words, t: &Timeline, s: &Scale, height: f64) -> String {
    let mut axis = String::new();
    let mut day = t.first;
    while day <= t.last {
        let x = s.x(day);
        let month_start = day.day() == 1 || day == t.first;
        if month_start {
            let _ = write!(
                axis,
                r#"<line x1="{x:.1}" y1="4" x2="{x:.1}" y2="{height:.1}" stroke="{}"/><text x="{:.1}" y="14" font-weight="bold" fill="{}">{}</text>"#,
                p::GRID,
                x + 3.0,
                p::INK,
                escape(&month_name(w, Month::of(day)))
            );
        }
        let _ = write!(
            axis,
            r#"<g><title>{day}</title><line x1="{x:.1}" y1="{}" x2="{x:.1}" y2="30" stroke="{}"/><text x="{:.1}" y="42" font-size="9" text-anchor="middle" fill="{}">{}</text></g>"#,
            if month_start { 18 } else { 24 },
            p::MUTED,
            x + DAY / 2.0,
            p::MUTED,
            day.day()
        );
        day = match day.succ_opt() {
            Some(next) => next,
            None => break,
        };
    }
    let _ = write!(
        axis,
        r#"<line x1="{LEFT}" y1="30" x2="{:.1}" y2="30" stroke="{}"/>"#,
        s.x(s.end()),
        p::MUTED
    );
    if let Some(today) = t.today.filter(|d| (t.first..=t.last).contains(d)) {
        let x = s.x(today) + DAY / 2.0;
        let _ = write!(
            axis,
            r#"<g><title>{} {today}</title><line x1="{x:.1}" y1="30" x2="{x:.1}" y2="{height:.1}" stroke="{}" stroke-width="2" stroke-dasharray="2 2"/><text x="{:.1}" y="{:.1}" fill="{}">{}</text></g>"#,
            escape(w.today),
            p::TODAY,
            x + 3.0,
            height - 4.0,
            p::INK,
            escape(w.today)
        );
    }
    axis
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_that_would_overlap_go_to_the_next_row() {
        assert_eq!(
            place(&[(0.0, 50.0), (16.0, 50.0), (60.0, 20.0), (32.0, 10.0)]),
            vec![0, 1, 0, 2]
        );
        assert_eq!(place(&[(0.0, 10.0), (100.0, 10.0)]), vec![0, 0]);
    }
}
