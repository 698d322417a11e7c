//! This service as a scenario driver (Cargo feature `conformance`): billing-harness's scenario
//! files run through this crate's own billing code and are compared with the harness's reference
//! platform, result by result (`cargo xtask scenario run --driver example`).
//!
//! The platform's words map onto this service's: an organization and its users are this
//! service's ([`crate::accounts`]); a tenant is a customer of its own in its organization,
//! carrying the organization's card; a contract's plan is keyed by the customer's id here, by the
//! tenant's slug there. Each product of the catalog is one of the harness's product mocks, served
//! over HTTP and configured as the scenario's `[[product]]` tables say; the service knows it only
//! by its URL and syncs it through its own outbox ([`crate::sync`]). Purges are the service's own
//! ([`crate::purge`]). What the service has no counterpart for (contract terms over several
//! metrics, another time zone or charge day) answers [`DriverError::Unsupported`], and such a
//! scenario is reported as not supported.

use std::collections::BTreeMap;
use std::sync::Arc;

use billing_harness::TestEnv;
use billing_harness::billing::LineKind as HarnessLineKind;
use billing_harness::builders::{Fakes, Locale};
use billing_harness::payments::{self as harness_payments, Gateway, MockGateway, TestCard};
use billing_harness::products::{ProductMock, ProductServer};
use billing_harness::purge::Scope;
use billing_scenarios::driver::{DriverError, PurgeOf, Purged, ReadBack, Session};
use billing_scenarios::{
    Driver, OrgDef, OutcomeInvoice, OutcomeLine, OutcomePayment, OutcomeProduct,
    OutcomeStatusChange, OutcomeSubscription, ProductSync, Scenario, ScriptedFault, TenantDef,
};
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};

use crate::accounts::NewUser;
use crate::billing::{Currency, LineKind, Plan};
use crate::calendar::{self, Month};
use crate::clock::Clock;
use crate::contracts::{Contract, Overage};
use crate::payments::{BoxFuture, Capture, ChargeRequest, Decline, PaymentGateway};
use crate::purge::{PurgeScope, PurgeTarget};
use crate::service::{
    CustomerId, NewCustomer, NewUsage, OrganizationId, PaymentOutcome, SubscriptionId,
};
use crate::sync::{DeliveryPolicy, Drift};
use crate::{BillingService, Error, MIGRATOR};

/// The fake-data seed of the reference's scenario runs (`Scenario::test_env`): an organization
/// without an owner address gets the fake owner the scenario format promises, the same person
/// the reference signs up.
const PEOPLE_SEED: u64 = 1;

/// The most delivery-and-reconcile rounds [`ExampleSession::products`] runs, as the reference's
/// convergence.
const ROUNDS: usize = 4;

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
        let products = serve_products(scenario, &service).await?;
        Ok(ExampleSession {
            env,
            service,
            orgs: BTreeMap::new(),
            tenants: Vec::new(),
            cards: 0,
            people: Fakes::new(PEOPLE_SEED, Locale::English),
            signed_up: 0,
            products,
        })
    }
}

/// A product mock for every product of the catalog, served on 127.0.0.1 and configured as the
/// scenario's `[[product]]` tables say (strict mode, scripted and drawn faults), each the
/// service's endpoint for its product; by key. A scenario with an outage is not supported: the
/// service's delivery gives up after a number of attempts, and its client does not say when it
/// sends (the mock places a request in an outage by that).
async fn serve_products(
    scenario: &Scenario,
    service: &BillingService,
) -> Result<BTreeMap<String, ProductServer>, DriverError> {
    if scenario.products.iter().any(|d| d.outage.is_some()) {
        return Err(DriverError::unsupported(
            "product outages (its delivery gives a row up after 6 attempts, and only a person \
             re-queues it)",
        ));
    }
    let mut keys: Vec<&str> = scenario
        .catalog
        .plans
        .iter()
        .map(|p| p.product.as_str())
        .collect();
    keys.sort_unstable();
    keys.dedup();
    let mut served = BTreeMap::new();
    for key in keys {
        let mock = Arc::new(ProductMock::new(key));
        // A `timeout` fault holds a write past the service's limit.
        mock.set_hold(DeliveryPolicy::default().timeout + std::time::Duration::from_millis(250));
        if let Some(def) = scenario.products.iter().find(|d| d.key == key) {
            mock.set_strict(def.strict);
            if let Some(drawn) = def.drawn {
                mock.fault_rate(drawn.rate, drawn.seed);
            }
            for f in &def.faults {
                mock.fail_next(f.fault, f.times);
            }
        }
        let server = ProductServer::start(mock)
            .await
            .map_err(DriverError::failed)?;
        service
            .set_product_endpoint(key, server.url())
            .await
            .map_err(DriverError::failed)?;
        served.insert(key.to_owned(), server);
    }
    Ok(served)
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
    /// Each organization, by key.
    orgs: BTreeMap<String, Org>,
    /// Tenants in the scenario's order: key, organization, customer, last subscription.
    tenants: Vec<Tenant>,
    /// Cards registered so far, to make billing keys unique.
    cards: u32,
    /// Fake people, for owners the scenario gives no address.
    people: Fakes,
    /// People signed up so far: the sequence number of the next fake person.
    signed_up: i64,
    /// The product mocks, by key.
    products: BTreeMap<String, ProductServer>,
}

#[derive(Debug)]
struct Org {
    id: OrganizationId,
    /// Its card (a billing key), if any.
    card: Option<String>,
}

#[derive(Debug)]
struct Tenant {
    key: String,
    org: String,
    customer: CustomerId,
    subscription: Option<SubscriptionId>,
    /// Deleted by a purge: nothing of it is left to read back.
    purged: bool,
}

impl ExampleSession {
    fn billing_key(&mut self, card: TestCard, org: &str) -> String {
        self.cards += 1;
        MockGateway::billing_key(card, &format!("{org}-{}", self.cards))
    }

    fn org(&self, key: &str) -> Result<&Org, DriverError> {
        self.orgs.get(key).ok_or_else(|| {
            DriverError::failed(std::io::Error::other(format!(
                "no organization {key} was created before it was used"
            )))
        })
    }

    /// Signs up a user of `org` in `role`, with this address or the next fake person's: one
    /// fake person is drawn for every user, numbered as the reference numbers the people it
    /// signs up, so that an owner without an address is the one the reference signs up.
    async fn sign_up(
        &mut self,
        org: OrganizationId,
        email: Option<&str>,
        role: &str,
    ) -> Result<(), DriverError> {
        self.signed_up += 1;
        let person = self.people.person(self.signed_up);
        let user = NewUser {
            email: email.map_or(person.email, str::to_owned),
            name: person.name,
            role: role.to_owned(),
            locale: person.locale.to_owned(),
        };
        self.service
            .add_user(org, &user)
            .await
            .map(drop)
            .map_err(refused)
    }

    /// Runs product sync to idle: delivers every row, moving the clock through each backoff
    /// (a day's jobs run on the way), until no live row is left.
    async fn sync_to_idle(&mut self) -> Result<(), DriverError> {
        loop {
            let now = self.env.clock().now();
            let horizon = now + TimeDelta::days(1);
            let due = self
                .service
                .next_delivery(now, horizon)
                .await
                .map_err(DriverError::failed)?;
            match due {
                Some(due) if due > now => self.advance_to(due).await?,
                Some(_) => {
                    let done = self
                        .service
                        .deliver_due()
                        .await
                        .map_err(DriverError::failed)?;
                    if done.delivered + done.failed == 0 {
                        return Ok(());
                    }
                }
                None => return Ok(()),
            }
        }
    }

    /// A tenant's key by its customer's id; the name the product holds for one the run did not
    /// make.
    fn tenant_key(&self, customer: i64, fallback: &str) -> String {
        self.tenants
            .iter()
            .find(|t| t.customer.0 == customer)
            .map_or_else(|| fallback.to_owned(), |t| t.key.clone())
    }

    /// A drift in words, a tenant (or its subscription) by the tenant's key.
    fn describe(&self, d: &Drift) -> String {
        let text = d.to_string();
        if d.entity == crate::sync::Entity::User {
            return text;
        }
        let key = self.tenant_key(d.id, &d.id.to_string());
        text.replacen(&format!("tenant {}", d.id), &format!("tenant {key}"), 1)
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
        let id = self
            .service
            .create_organization(org.name.as_deref().unwrap_or(&org.key))
            .await
            .map_err(refused)?;
        self.orgs.insert(org.key.clone(), Org { id, card });
        self.sign_up(id, org.owner.as_deref(), "owner").await
    }

    async fn create_user(&mut self, org: &str, email: &str) -> Result<(), DriverError> {
        let id = self.org(org)?.id;
        self.sign_up(id, Some(email), "member").await
    }

    async fn create_tenant(&mut self, tenant: &TenantDef, org: &str) -> Result<(), DriverError> {
        let (id, card) = {
            let o = self.org(org)?;
            (o.id, o.card.clone())
        };
        let customer = self
            .service
            .create_customer(&NewCustomer {
                name: tenant.key.clone(),
                email: format!("{}@{org}.example", tenant.key),
                billing_key: card,
                product: Some(tenant.product.clone()),
                organization: Some(id),
            })
            .await
            .map_err(refused)?;
        self.tenants.push(Tenant {
            key: tenant.key.clone(),
            org: org.to_owned(),
            customer: customer.id,
            subscription: None,
            purged: false,
        });
        Ok(())
    }

    async fn register_card(&mut self, org: &str, card: TestCard) -> Result<(), DriverError> {
        let key = self.billing_key(card, org);
        if let Some(o) = self.orgs.get_mut(org) {
            o.card = Some(key.clone());
        }
        for t in self.tenants.iter().filter(|t| t.org == org && !t.purged) {
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
        // A step on the day the clock is at already moves nothing, and sends nothing yet.
        if at <= clock.now() {
            return Ok(());
        }
        // Each day on the way at 00:00 in Seoul, then its jobs, as the platform's scheduler does;
        // product deliveries due before a midnight go out at their own instants first.
        loop {
            let now = clock.now();
            let midnight = calendar::start_of_day(calendar::local_day(now) + TimeDelta::days(1));
            let stop = midnight.min(at);
            let due = self
                .service
                .next_delivery(now, stop)
                .await
                .map_err(DriverError::failed)?;
            if let Some(due) = due.filter(|due| *due < midnight) {
                if due > now {
                    clock.set(due).await.map_err(DriverError::failed)?;
                }
                let done = self
                    .service
                    .deliver_due()
                    .await
                    .map_err(DriverError::failed)?;
                if done.delivered + done.failed > 0 {
                    continue;
                }
            }
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
        for t in self.tenants.iter().filter(|t| !t.purged) {
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
                            kind: match l.kind {
                                LineKind::Base => HarnessLineKind::Base,
                                LineKind::Overage => HarnessLineKind::Overage,
                            },
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

    async fn purge(&mut self, target: PurgeOf<'_>) -> Result<Purged, DriverError> {
        let target = match target {
            PurgeOf::Org(key) => PurgeTarget::Organization(self.org(key)?.id),
            PurgeOf::User(email) => PurgeTarget::User(email),
        };
        let purged = self.service.purge(target).await.map_err(refused)?;
        for t in &mut self.tenants {
            t.purged |= purged.customers.contains(&t.customer);
        }
        let notices = &purged.notices;
        let told = Purged::count_told(notices.iter().map(|n| (&*n.product, n.entity.as_str())));
        Ok(Purged {
            scope: scope(purged.scope),
            rows: purged.rows,
            told,
        })
    }

    async fn product_fault(
        &mut self,
        product: &str,
        fault: &ScriptedFault,
    ) -> Result<(), DriverError> {
        if let Some(server) = self.products.get(product) {
            server.mock().fail_next(fault.fault, fault.times);
        }
        Ok(())
    }

    async fn product_drift(&mut self, product: &str, tenant: &str) -> Result<bool, DriverError> {
        let customer = self.tenant(tenant)?.customer;
        Ok(self
            .products
            .get(product)
            .is_none_or(|server| server.mock().drift(customer.0).is_some()))
    }

    async fn products(&mut self) -> Result<Option<Vec<OutcomeProduct>>, DriverError> {
        let mut repaired = Vec::new();
        let mut last = crate::sync::Reconciliation::default();
        for _ in 0..ROUNDS {
            self.sync_to_idle().await?;
            last = self
                .service
                .reconcile()
                .await
                .map_err(DriverError::failed)?;
            if last.drift.is_empty() {
                break;
            }
            repaired.extend(last.drift.iter().cloned());
        }
        let dead = self
            .service
            .dead_letters()
            .await
            .map_err(DriverError::failed)?;
        let mut out = Vec::new();
        for (key, server) in &self.products {
            let of = |d: &&Drift| &d.product == key;
            let sync = ProductSync {
                drift: last
                    .drift
                    .iter()
                    .filter(of)
                    .map(|d| self.describe(d))
                    .collect(),
                repaired: repaired
                    .iter()
                    .filter(of)
                    .map(|d| self.describe(d))
                    .collect(),
                busy: last.busy.contains(key),
                dead_letters: dead.iter().filter(|r| &r.product == key).count(),
                // The service keeps no such figures; conformance does not compare them.
                last_delivery: None,
                longest_wait: None,
            };
            let tenant = |id: i64| {
                let t = self.tenants.iter().find(|t| t.customer.0 == id)?;
                Some(t.key.clone())
            };
            let mut product = OutcomeProduct::of(server.mock(), sync, tenant);
            // A contract's plan by the platform's key.
            for s in &mut product.state.subscriptions {
                s.plan = self.plan_key(&s.plan);
            }
            out.push(product);
        }
        Ok(Some(out))
    }
}

/// A purge's reach in the platform's words.
fn scope(scope: PurgeScope) -> Scope {
    match scope {
        PurgeScope::UserLeft => Scope::UserLeft,
        PurgeScope::OwnerData => Scope::OwnerData,
        PurgeScope::Organization => Scope::Organization,
        PurgeScope::Nothing => Scope::Nothing,
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
