//! The scenario runner: plays a [`Scenario`] on a test database through the builders and the
//! platform, with the clock running every job on the way, and reports what happened.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::Serialize;

use super::validate::{Action, Scenario};
use crate::TestEnv;
use crate::builders::{BuildError, Day, Org};
use crate::calendar::{Calendar, Job};
use crate::model::{InvoiceStatus, PaymentOutcome, SubscriptionStatus, TenantId};
use crate::platform::timeline;

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
    /// The sync events queued for products, in order.
    pub sync: Vec<OutcomeSync>,
    /// Steps and jobs not applied because they fall after [`RunOptions::stop_at`].
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub later: Vec<String>,
}

/// How a scenario is played: by default entirely, on a throwaway database.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Appended to tenant names, so that a scenario can be seeded into one database many times.
    pub tenant_suffix: Option<String>,
    /// Nothing dated after this instant is applied (the present, when seeding a QA database);
    /// what is left is listed in [`Outcome::later`].
    pub stop_at: Option<DateTime<Utc>>,
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

/// An invoice line in an [`Outcome`]: every quantity its amount was computed from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutcomeLine {
    /// `base` or `overage`.
    pub kind: String,
    /// The plan's key.
    pub plan: String,
    /// The metric of an overage line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    /// First day of the plan period within the month, `YYYY-MM-DD`.
    pub from: NaiveDate,
    /// First day after the plan period within the month (`[from, until)`), `YYYY-MM-DD`.
    pub until: NaiveDate,
    /// Days of the plan period in the month.
    pub days: u32,
    /// Overage lines: units used in the plan period.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used: Option<u64>,
    /// Overage lines: the period's prorated included quota, in whole units.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub included: Option<u64>,
    /// Overage lines: units above the quota (`used − included`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overage: Option<u64>,
    /// The amount.
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
}

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

/// A sync event queued for a product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutcomeSync {
    /// The tenant's key.
    pub tenant: String,
    /// `user`, `tenant` or `subscription`.
    pub entity: String,
    /// `upsert` or `delete`.
    pub operation: String,
    /// The subscription's plan and status at the time.
    pub state: String,
}

/// Why a scenario could not be run at all (not whether it holds).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// Setting the scene failed.
    #[error("could not set up the scenario")]
    Setup(#[from] BuildError),
    /// The platform failed (no catalog, or its database).
    #[error(transparent)]
    Platform(#[from] crate::platform::DomainError),
    /// The clock could not move.
    #[error(transparent)]
    Clock(#[from] crate::clock::ClockError),
    /// The database failed.
    #[error("database error")]
    Database(#[from] sqlx::Error),
}

impl Scenario {
    /// 00:00 of the start day in the catalog's time zone: where the clock starts.
    pub fn start_instant(&self) -> DateTime<Utc> {
        Day::new(self.start, self.catalog.time_zone).midnight()
    }
}

/// Plays `scenario` on `env` (whose clock should start at [`Scenario::start_instant`]).
///
/// # Errors
/// Setting up or the database failed; a scenario that does not hold is an `Ok` outcome.
pub async fn run(scenario: &Scenario, env: &TestEnv) -> Result<Outcome, RunError> {
    run_with(scenario, env, &RunOptions::default()).await
}

/// [`run`] with options: a partial run up to an instant, tenant names made unique.
///
/// # Errors
/// As [`run`].
pub async fn run_with(
    scenario: &Scenario,
    env: &TestEnv,
    options: &RunOptions,
) -> Result<Outcome, RunError> {
    let tz = scenario.catalog.time_zone;
    let p = env.platform();
    let clock = env.clock();
    p.install_catalog(&scenario.catalog, clock.now()).await?;
    let mut orgs: Vec<Org> = Vec::new();
    for def in &scenario.orgs {
        let builder = env
            .org()
            .name(def.name.clone().unwrap_or_else(|| def.key.clone()));
        let builder = match def.card {
            Some(card) => builder.card(card),
            None => builder.without_card(),
        };
        orgs.push(builder.create().await?);
    }
    let mut tenants: Vec<TenantId> = Vec::new();
    for def in &scenario.tenants {
        let tenant = env
            .tenant()
            .org(&orgs[def.org])
            .product(def.product.clone())
            .name(format!(
                "{}{}",
                def.key,
                options.tenant_suffix.as_deref().unwrap_or("")
            ))
            .create()
            .await?;
        tenants.push(tenant.id());
    }
    let mut failures = Vec::new();
    let mut errors = Vec::new();
    let mut later = Vec::new();
    let stop_at = options.stop_at.unwrap_or(DateTime::<Utc>::MAX_UTC);
    for step in &scenario.steps {
        if Day::new(step.on, tz).midnight() > stop_at {
            later.push(format!(
                "step {} on {}: {}",
                step.number,
                step.on,
                step.action.display(scenario)
            ));
            continue;
        }
        clock.advance_to(Day::new(step.on, tz)).await?;
        let at = clock.now();
        let result = match &step.action {
            Action::Subscribe { tenant, plan } => {
                p.subscribe(tenants[*tenant], plan, at).await.map(drop)
            }
            Action::ChangePlan { tenant, plan } => p.change_plan(tenants[*tenant], plan, at).await,
            Action::Cancel { tenant } => p.cancel(tenants[*tenant], at).await,
            Action::Usage {
                tenant,
                metric,
                quantity,
                day,
            } => {
                p.record_usage(tenants[*tenant], metric, *quantity, *day, at)
                    .await
            }
            Action::SetCard { org, card } => p
                .register_card(orgs[*org].id, *card, at)
                .await
                .map(drop)
                .map_err(Into::into),
        };
        let code = match &result {
            Ok(()) => None,
            Err(e) => Some(e.code().to_owned()),
        };
        if let Some(code) = &code {
            errors.push(OutcomeError {
                step: step.number,
                code: code.clone(),
            });
        }
        match (&step.expect_error, &code, &result) {
            (Some(expected), None, _) => failures.push(format!(
                "step {} on {}: expected {expected}, but it succeeded",
                step.number, step.on
            )),
            (Some(expected), Some(code), _) if expected != code => failures.push(format!(
                "step {} on {}: expected {expected}, got {code}",
                step.number, step.on
            )),
            (None, Some(_), Err(e)) => failures.push(format!(
                "step {} on {}: unexpected error {}: {}",
                step.number,
                step.on,
                e.code(),
                crate::env::with_causes(e)
            )),
            _ => {}
        }
    }
    let end = Day::new(scenario.until, tz).midnight();
    clock.advance_to(end.min(stop_at)).await?;
    if end > stop_at {
        let calendar = p.settings().await?.calendar;
        for (at, jobs) in calendar.due_between(stop_at, end) {
            let day = calendar.local_day(at);
            for job in jobs {
                if job != Job::Retry {
                    later.push(format!("{job} at 00:00 on {day}"));
                }
            }
        }
    }
    let mut outcome = collect(scenario, env, &tenants, failures, errors).await?;
    outcome.later = later;
    Ok(outcome)
}

async fn collect(
    scenario: &Scenario,
    env: &TestEnv,
    tenants: &[TenantId],
    failures: Vec<String>,
    errors: Vec<OutcomeError>,
) -> Result<Outcome, RunError> {
    let p = env.platform();
    let calendar = p.settings().await?.calendar;
    let mut invoices = Vec::new();
    let mut payments = Vec::new();
    let mut subscriptions = Vec::new();
    for (def, id) in scenario.tenants.iter().zip(tenants) {
        for stored in p.invoices(*id).await? {
            let i = stored.invoice;
            invoices.push(OutcomeInvoice {
                tenant: def.key.clone(),
                period: i.month.to_string(),
                status: stored.status,
                currency: i.currency.to_string(),
                lines: i
                    .lines
                    .into_iter()
                    .map(|l| OutcomeLine {
                        kind: l.kind.as_str().to_owned(),
                        plan: l.plan,
                        metric: l.metric,
                        from: l.from,
                        until: l.until,
                        days: l.days,
                        used: l.used,
                        included: l.included,
                        overage: l.overage,
                        amount: l.amount,
                    })
                    .collect(),
                subtotal: i.subtotal,
                tax: i.tax,
                total: i.total,
            });
        }
        let t = timeline(env.pool(), *id).await?;
        payments.extend(t.attempts.iter().map(|a| OutcomePayment {
            tenant: def.key.clone(),
            period: a.period.to_string(),
            on: a.on,
            attempt: a.attempt,
            amount: a.amount,
            outcome: a.outcome,
            failure_code: a.failure_code.clone(),
        }));
        if let Some(s) = t.subscription {
            subscriptions.push(OutcomeSubscription {
                tenant: def.key.clone(),
                plan: s.plan,
                status: s.status,
                changes: status_changes(env, *id, &calendar).await?,
            });
        }
    }
    payments.sort_by(|a, b| (a.on, &a.tenant).cmp(&(b.on, &b.tenant)));
    let sync: Vec<(i64, String, String, serde_json::Value)> =
        sqlx::query_as("select tenant_id, entity, operation, payload from sync_outbox order by id")
            .fetch_all(env.pool())
            .await?;
    let key_of = |id: i64| {
        tenants
            .iter()
            .position(|t| t.0 == id)
            .map_or_else(|| id.to_string(), |i| scenario.tenants[i].key.clone())
    };
    let sync = sync
        .into_iter()
        .map(|(tenant, entity, operation, payload)| OutcomeSync {
            tenant: key_of(tenant),
            entity,
            operation,
            state: format!(
                "{} {}",
                payload["plan"].as_str().unwrap_or("-"),
                payload["status"].as_str().unwrap_or("-")
            ),
        })
        .collect();
    Ok(Outcome {
        scenario: scenario.name.clone(),
        holds: failures.is_empty(),
        failures,
        invoices,
        payments,
        subscriptions,
        errors,
        sync,
        later: Vec::new(),
    })
}

/// The status changes of `tenant`'s last subscription, from the subscription events of the sync
/// outbox: each status change of the platform queues one in its own transaction, with the
/// subscription's status and `cancelled_on` after the change.
async fn status_changes(
    env: &TestEnv,
    tenant: TenantId,
    calendar: &Calendar,
) -> Result<Vec<OutcomeStatusChange>, sqlx::Error> {
    let events: Vec<(DateTime<Utc>, Option<String>, Option<NaiveDate>)> = sqlx::query_as(
        "select o.created_at, o.payload->>'status', (o.payload->>'cancelled_on')::date \
         from sync_outbox o \
         where o.entity = 'subscription' \
           and o.entity_id = (select max(s.id) from subscriptions s where s.tenant_id = $1) \
         order by o.id",
    )
    .bind(tenant)
    .fetch_all(env.pool())
    .await?;
    let mut changes: Vec<OutcomeStatusChange> = Vec::new();
    for (created_at, status, cancelled_on) in events {
        let Some(status) = status else { continue };
        if changes.last().is_some_and(|c| c.status == status) {
            continue;
        }
        let on = match cancelled_on {
            Some(day) if status == "cancelled" => day,
            _ => calendar.local_day(created_at),
        };
        changes.push(OutcomeStatusChange { on, status });
    }
    Ok(changes)
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
            out.push_str(&format!(
                "  {:<8} {:<12} {:<12} {:>5} {:>14}\n",
                "kind", "plan", "metric", "days", "amount"
            ));
            for l in &i.lines {
                out.push_str(&format!(
                    "  {:<8} {:<12} {:<12} {:>5} {:>14}\n",
                    l.kind,
                    l.plan,
                    l.metric.as_deref().unwrap_or(""),
                    l.days,
                    l.amount
                ));
            }
            out.push_str(&format!("  {:<41} {:>14}\n", "subtotal", i.subtotal));
            out.push_str(&format!("  {:<41} {:>14}\n", "tax", i.tax));
            out.push_str(&format!("  {:<41} {:>14}\n", "total", i.total));
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
        out
    }
}
