//! This service as a scenario driver (Cargo feature `conformance`): billing-harness's scenario
//! files run through this crate's own billing code and are compared with the harness's reference
//! platform, result by result (`cargo xtask scenario run --driver example`).
//!
//! The platform's words map onto this service's: a tenant is a customer of its own, carrying its
//! organization's card; organizations and users are only names here; a contract's plan is keyed
//! by the customer's id here, by the tenant's slug there. What the service has no counterpart
//! for (purge, product sync, contract terms over several metrics) answers
//! [`DriverError::Unsupported`], and such a scenario is reported as not supported.

use std::collections::BTreeMap;
use std::sync::Arc;

use billing_harness::TestEnv;
use billing_harness::payments::{self as harness_payments, Gateway, MockGateway, TestCard};
use billing_harness::scenario::driver::{DriverError, ReadBack, Session};
use billing_harness::scenario::{
    Driver, OrgDef, OutcomeInvoice, OutcomeLine, OutcomePayment, OutcomeStatusChange,
    OutcomeSubscription, Scenario, TenantDef,
};
use chrono::{DateTime, NaiveDate, Utc};

use crate::billing::{Currency, Plan};
use crate::calendar::{self, Month};
use crate::clock::Clock;
use crate::contracts::{Contract, Overage};
use crate::payments::{BoxFuture, Capture, ChargeRequest, Decline, PaymentGateway};
use crate::service::{CustomerId, NewCustomer, NewUsage, PaymentOutcome, SubscriptionId};
use crate::{BillingService, Error, MIGRATOR};

/// This service as a [`Driver`]: each scenario on a fresh database of its own schema (a
/// [`TestEnv`] migrated with [`MIGRATOR`]), on the harness's test clock and mock gateway.
#[derive(Debug, Clone, Default)]
pub struct Example {
    #[cfg(feature = "flaws")]
    flaw: Option<crate::Flaw>,
}

impl Example {
    /// The service as it is.
    pub fn new() -> Example {
        Example::default()
    }

    /// The service with a planted bug, to show that the scenarios catch it.
    #[cfg(feature = "flaws")]
    pub fn with_flaw(flaw: crate::Flaw) -> Example {
        Example { flaw: Some(flaw) }
    }
}

impl Driver for Example {
    type Session = ExampleSession;

    fn name(&self) -> &str {
        #[cfg(feature = "flaws")]
        match self.flaw {
            Some(crate::Flaw::ProrateBy30Days) => return "example-prorate-by-30-days",
            Some(crate::Flaw::RetrySkipsADay) => return "example-retry-skips-a-day",
            _ => {}
        }
        "example"
    }

    async fn start(&self, scenario: &Scenario) -> Result<ExampleSession, DriverError> {
        let catalog = &scenario.catalog;
        if catalog.time_zone != chrono_tz::Asia::Seoul {
            return Err(DriverError::unsupported(format!(
                "billing time zone other than Asia/Seoul ({})",
                catalog.time_zone
            )));
        }
        if catalog.charge_day != crate::dunning::CHARGE_DAY {
            return Err(DriverError::unsupported(format!(
                "charge day other than the {}th",
                crate::dunning::CHARGE_DAY
            )));
        }
        let plans = catalog
            .plans
            .iter()
            .map(plan)
            .collect::<Result<Vec<Plan>, DriverError>>()?;
        let env = TestEnv::builder()
            .migrator(&MIGRATOR)
            .start_at(scenario.start_instant())
            .build()
            .await
            .map_err(DriverError::failed)?;
        let env = Arc::new(env);
        let gateway = MockGateway::new();
        let service = BillingService::new(
            env.pool().clone(),
            Arc::new(EnvClock(env.clone())),
            Arc::new(MockProvider(gateway.clone())),
        )
        .with_tax_rate(catalog.tax_rate);
        #[cfg(feature = "flaws")]
        let service = match self.flaw {
            Some(flaw) => service.with_flaw(flaw),
            None => service,
        };
        for plan in &plans {
            service.put_plan(plan).await.map_err(DriverError::failed)?;
        }
        Ok(ExampleSession {
            env,
            service,
            orgs: BTreeMap::new(),
            tenants: Vec::new(),
            cards: 0,
        })
    }
}

/// A catalog plan as one of this service's, which meter one metric each.
fn plan(p: &billing_harness::model::Plan) -> Result<Plan, DriverError> {
    let mut metrics: Vec<&String> = p
        .terms
        .included
        .keys()
        .chain(p.terms.overage.keys())
        .collect();
    metrics.sort();
    metrics.dedup();
    let [metric] = metrics[..] else {
        return Err(DriverError::unsupported(format!(
            "plans metering {} metrics (plan {})",
            metrics.len(),
            p.key
        )));
    };
    let overage = p.terms.overage.get(metric);
    Ok(Plan {
        key: p.key.clone(),
        name: p.key.clone(),
        product: Some(p.product.clone()),
        currency: match p.currency {
            billing_harness::model::Currency::Krw => Currency::Krw,
            billing_harness::model::Currency::Usd => Currency::Usd,
        },
        monthly_fee: p.terms.base_fee,
        metric: metric.clone(),
        included: count(p.terms.included.get(metric).copied().unwrap_or(0))?,
        block_size: count(overage.map_or(1, |o| o.block))?,
        block_price: overage.map(|o| o.price),
    })
}

/// Contract terms as one of this service's contracts, whose plans meter one metric: terms over
/// several metrics are not supported. The spec (the tenant's deployment sizing) is the
/// products' business, which this service has none of.
fn contract(terms: &billing_harness::model::ContractTerms) -> Result<Contract, DriverError> {
    let mut metrics: Vec<&String> = terms.included.keys().chain(terms.overage.keys()).collect();
    metrics.sort();
    metrics.dedup();
    let metric = match metrics[..] {
        [] => None,
        [metric] => Some(metric.clone()),
        _ => {
            return Err(DriverError::unsupported(format!(
                "contract terms over {} metrics",
                metrics.len()
            )));
        }
    };
    let included = metric.as_ref().and_then(|m| terms.included.get(m));
    let overage = metric.as_ref().and_then(|m| terms.overage.get(m));
    Ok(Contract {
        base: terms.plan.clone(),
        monthly_fee: terms.base_fee,
        included: included.map(|&n| count(n)).transpose()?,
        overage: overage
            .map(|o| {
                Ok::<_, DriverError>(Overage {
                    block_size: count(o.block)?,
                    block_price: o.price,
                })
            })
            .transpose()?,
        metric,
        limits: terms.limits.clone(),
        term_ends_on: terms.term_ends_on,
    })
}

/// A count of units as this service stores them.
fn count(n: u64) -> Result<i64, DriverError> {
    i64::try_from(n).map_err(|_| DriverError::unsupported("quantities beyond i64"))
}

/// One scenario's world in this service.
#[derive(Debug)]
pub struct ExampleSession {
    env: Arc<TestEnv>,
    service: BillingService,
    /// Each organization's card (its billing key), by key.
    orgs: BTreeMap<String, Option<String>>,
    /// Tenants in the scenario's order: key, organization, customer, last subscription.
    tenants: Vec<Tenant>,
    /// Cards registered so far, to make billing keys unique.
    cards: u32,
}

#[derive(Debug)]
struct Tenant {
    key: String,
    org: String,
    customer: CustomerId,
    subscription: Option<SubscriptionId>,
}

impl ExampleSession {
    fn billing_key(&mut self, card: TestCard, org: &str) -> String {
        self.cards += 1;
        MockGateway::billing_key(card, &format!("{org}-{}", self.cards))
    }

    fn tenant(&self, key: &str) -> Result<&Tenant, DriverError> {
        self.tenants.iter().find(|t| t.key == key).ok_or_else(|| {
            DriverError::failed(std::io::Error::other(format!(
                "no tenant {key} was created before it was used"
            )))
        })
    }

    /// A plan's key as the platform writes it: a contract's plan,
    /// `<base>~<customer id>~<first day>` here, is `<base>~<tenant>~<first day>` there.
    fn plan_key(&self, key: &str) -> String {
        let contract = key.rsplit_once('~').and_then(|(rest, day)| {
            let (base, customer) = rest.rsplit_once('~')?;
            let t = self
                .tenants
                .iter()
                .find(|t| t.customer.to_string() == customer)?;
            Some(format!("{base}~{}~{day}", t.key))
        });
        contract.unwrap_or_else(|| key.to_owned())
    }

    /// The tenant's last subscription: a refusal when it never subscribed.
    fn subscription(&self, key: &str) -> Result<SubscriptionId, DriverError> {
        self.tenant(key)?.subscription.ok_or_else(|| {
            DriverError::refused(
                "no_active_subscription",
                format!("tenant {key} never subscribed"),
            )
        })
    }
}

/// This service's refusal as the platform's code for the same rule.
fn refused(e: Error) -> DriverError {
    let code = match &e {
        Error::Database(_) => return DriverError::failed(e),
        Error::NoSubscription(_)
        | Error::NotSubscribed(_)
        | Error::Cancelled(_)
        | Error::NotInService(..) => "no_active_subscription",
        Error::NoPlan(_) => "unknown_plan",
        Error::Invalid(_) => "invalid_quantity",
        other => other.code(),
    };
    DriverError::refused(code, e)
}

impl Session for ExampleSession {
    async fn create_org(&mut self, org: &OrgDef) -> Result<(), DriverError> {
        let card = org.card.map(|card| self.billing_key(card, &org.key));
        self.orgs.insert(org.key.clone(), card);
        Ok(())
    }

    async fn create_user(&mut self, _org: &str, _email: &str) -> Result<(), DriverError> {
        // The service has no users: a member changes nothing it bills.
        Ok(())
    }

    async fn create_tenant(&mut self, tenant: &TenantDef, org: &str) -> Result<(), DriverError> {
        let card = self.orgs.get(org).cloned().flatten();
        let customer = self
            .service
            .create_customer(&NewCustomer {
                name: tenant.key.clone(),
                email: format!("{}@{org}.example", tenant.key),
                billing_key: card,
                product: Some(tenant.product.clone()),
                organization: None,
            })
            .await
            .map_err(refused)?;
        self.tenants.push(Tenant {
            key: tenant.key.clone(),
            org: org.to_owned(),
            customer: customer.id,
            subscription: None,
        });
        Ok(())
    }

    async fn register_card(&mut self, org: &str, card: TestCard) -> Result<(), DriverError> {
        let key = self.billing_key(card, org);
        self.orgs.insert(org.to_owned(), Some(key.clone()));
        for t in self.tenants.iter().filter(|t| t.org == org) {
            self.service
                .set_card(t.customer, Some(key.clone()))
                .await
                .map_err(refused)?;
        }
        Ok(())
    }

    async fn subscribe(&mut self, tenant: &str, plan: &str) -> Result<(), DriverError> {
        let customer = self.tenant(tenant)?.customer;
        let subscription = self
            .service
            .subscribe(customer, plan)
            .await
            .map_err(refused)?;
        if let Some(t) = self.tenants.iter_mut().find(|t| t.key == tenant) {
            t.subscription = Some(subscription.id);
        }
        Ok(())
    }

    async fn change_plan(&mut self, tenant: &str, plan: &str) -> Result<(), DriverError> {
        let subscription = self.subscription(tenant)?;
        self.service
            .change_plan(subscription, plan)
            .await
            .map(drop)
            .map_err(refused)
    }

    async fn cancel(&mut self, tenant: &str) -> Result<(), DriverError> {
        let subscription = self.subscription(tenant)?;
        self.service
            .cancel(subscription)
            .await
            .map(drop)
            .map_err(refused)
    }

    async fn apply_contract(
        &mut self,
        tenant: &str,
        terms: &billing_harness::model::ContractTerms,
    ) -> Result<(), DriverError> {
        let customer = self.tenant(tenant)?.customer;
        let subscription = self
            .service
            .apply_contract(customer, &contract(terms)?)
            .await
            .map_err(refused)?;
        if let Some(t) = self.tenants.iter_mut().find(|t| t.key == tenant) {
            t.subscription = Some(subscription.id);
        }
        Ok(())
    }

    async fn record_usage(
        &mut self,
        tenant: &str,
        metric: &str,
        quantity: i64,
        day: NaiveDate,
    ) -> Result<(), DriverError> {
        let subscription = self.subscription(tenant)?;
        let usage = NewUsage {
            metric: metric.to_owned(),
            quantity,
            occurred_at: Some(calendar::start_of_day(day)),
        };
        self.service
            .record_usage(subscription, &usage)
            .await
            .map(drop)
            .map_err(refused)
    }

    async fn advance_to(&mut self, at: DateTime<Utc>) -> Result<(), DriverError> {
        let clock = self.env.clock();
        let today = calendar::local_day(clock.now());
        // Each day on the way at 00:00 in Seoul, then its jobs, as the platform's scheduler does.
        for day in today.iter_days().skip(1) {
            let midnight = calendar::start_of_day(day);
            if midnight > at {
                break;
            }
            clock.set(midnight).await.map_err(DriverError::failed)?;
            self.service
                .run_due_jobs()
                .await
                .map_err(DriverError::failed)?;
        }
        if at > clock.now() {
            clock.set(at).await.map_err(DriverError::failed)?;
        }
        Ok(())
    }

    async fn read_back(&mut self) -> Result<ReadBack, DriverError> {
        let mut back = ReadBack::default();
        for t in &self.tenants {
            let invoices = self
                .service
                .invoices(t.customer)
                .await
                .map_err(DriverError::failed)?;
            let mut attempts = Vec::new();
            for invoice in &invoices {
                let period = period(invoice.month);
                let payments = self
                    .service
                    .payments(invoice.month)
                    .await
                    .map_err(DriverError::failed)?;
                for p in payments.iter().filter(|p| p.invoice_id == invoice.id) {
                    attempts.push((p.attempted_at, p.outcome));
                    back.payments.push(OutcomePayment {
                        tenant: t.key.clone(),
                        period: period.clone(),
                        on: calendar::local_day(p.attempted_at),
                        attempt: i16::from(p.attempt),
                        amount: p.amount,
                        outcome: parse(p.outcome.as_str())?,
                        failure_code: p.failure_code.clone(),
                    });
                }
                back.invoices.push(OutcomeInvoice {
                    tenant: t.key.clone(),
                    period,
                    status: parse(invoice.status.as_str())?,
                    currency: invoice.currency.as_str().to_owned(),
                    lines: invoice
                        .lines
                        .iter()
                        .map(|l| OutcomeLine {
                            kind: l.kind.as_str().to_owned(),
                            plan: self.plan_key(&l.plan),
                            metric: l.metric.clone(),
                            from: l.from,
                            until: l.until,
                            days: l.days,
                            used: l.used,
                            included: l.included,
                            overage: l.overage,
                            amount: l.amount,
                        })
                        .collect(),
                    subtotal: invoice.subtotal,
                    tax: invoice.tax,
                    total: invoice.total,
                });
            }
            if let Some(id) = t.subscription {
                let s = self
                    .service
                    .subscription(id)
                    .await
                    .map_err(DriverError::failed)?;
                attempts.sort_by_key(|(at, _)| *at);
                back.subscriptions.push(OutcomeSubscription {
                    tenant: t.key.clone(),
                    plan: s
                        .periods
                        .last()
                        .map(|p| self.plan_key(&p.plan))
                        .unwrap_or_default(),
                    status: parse(s.status.as_str())?,
                    changes: changes(s.started_on, s.cancelled_on, &attempts),
                });
            }
        }
        back.payments
            .sort_by(|a, b| (a.on, &a.tenant).cmp(&(b.on, &b.tenant)));
        Ok(back)
    }
}

/// A month as the platform writes a period: `2026-10`.
fn period(month: Month) -> String {
    month.first_day().format("%Y-%m").to_string()
}

/// One of this service's words as the harness's value of the same name.
fn parse<T: std::str::FromStr<Err = String>>(text: &str) -> Result<T, DriverError> {
    text.parse()
        .map_err(|e: String| DriverError::failed(std::io::Error::other(e)))
}

/// A subscription's status changes, from what it keeps: active from its first day; past due on
/// the day an attempt fails while it is active, active again on the day one succeeds; cancelled
/// on its cancel day.
fn changes(
    started_on: NaiveDate,
    cancelled_on: Option<NaiveDate>,
    attempts: &[(DateTime<Utc>, PaymentOutcome)],
) -> Vec<OutcomeStatusChange> {
    let mut out = vec![OutcomeStatusChange {
        on: started_on,
        status: "active".to_owned(),
    }];
    // An attempt after the cancel day changes nothing: the subscription stays cancelled.
    let before_cancel =
        |at: &DateTime<Utc>| cancelled_on.is_none_or(|day| calendar::local_day(*at) < day);
    for (at, outcome) in attempts.iter().filter(|(at, _)| before_cancel(at)) {
        let status = match outcome {
            PaymentOutcome::Failed => "past_due",
            PaymentOutcome::Succeeded => "active",
        };
        if out.last().is_some_and(|c| c.status != status) {
            out.push(OutcomeStatusChange {
                on: calendar::local_day(*at),
                status: status.to_owned(),
            });
        }
    }
    if let Some(day) = cancelled_on {
        out.push(OutcomeStatusChange {
            on: day,
            status: "cancelled".to_owned(),
        });
    }
    out
}

/// The harness's test clock as the service's clock.
#[derive(Debug)]
struct EnvClock(Arc<TestEnv>);

impl Clock for EnvClock {
    fn now(&self) -> DateTime<Utc> {
        self.0.clock().now()
    }
}

/// The harness's mock gateway as the service's payment provider.
#[derive(Debug)]
struct MockProvider(Arc<MockGateway>);

impl PaymentGateway for MockProvider {
    fn charge<'a>(&'a self, request: &'a ChargeRequest) -> BoxFuture<'a, Result<Capture, Decline>> {
        Box::pin(async move {
            let request = harness_payments::ChargeRequest {
                billing_key: request.billing_key.clone(),
                amount: request.amount,
                currency: match request.currency {
                    Currency::Krw => billing_harness::model::Currency::Krw,
                    Currency::Usd => billing_harness::model::Currency::Usd,
                },
                idempotency_key: request.idempotency_key.clone(),
                order_name: request.description.clone(),
            };
            self.0.charge(&request).await.map(capture).map_err(decline)
        })
    }

    fn find<'a>(
        &'a self,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Capture>, Decline>> {
        Box::pin(async move {
            let found = self.0.find(idempotency_key).await;
            found.map(|a| a.map(capture)).map_err(decline)
        })
    }
}

/// The mock's approval as the service's capture.
fn capture(approval: harness_payments::Approval) -> Capture {
    Capture {
        reference: approval.request_id,
    }
}

/// The mock's failure as the service's decline, by its code (`timeout` for a lost reply).
fn decline(error: harness_payments::GatewayError) -> Decline {
    Decline {
        code: error.code().to_owned(),
    }
}
