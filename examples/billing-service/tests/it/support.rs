//! What the tests share: the [`World`] of one test (a database, the service over it on the test
//! clock, the mock gateway, fake customers), the test catalog, the HTTP helper, and [`check`],
//! which plays a story through the service and compares its invoice with the harness's pure
//! invoice function fed from the same story.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use billing_harness::TestEnv;
use billing_harness::billing::{self as reference, InvoiceInput};
use billing_harness::builders::{Fakes, Locale, MonthOf};
use billing_harness::calendar::{self as harness_calendar, DEFAULT_TIME_ZONE};
use billing_harness::model::{self, Currency, Overage, Terms};
use billing_harness::payments::{self as harness_payments, Gateway, MockGateway, TestCard};
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use example_billing_service::billing::{Currency as ServiceCurrency, Plan};
use example_billing_service::calendar::Month;
use example_billing_service::clock::Clock;
use example_billing_service::payments::{
    BoxFuture, Capture, ChargeRequest, Decline, PaymentGateway,
};
use example_billing_service::service::{
    Customer, Invoice, NewCustomer, PaymentOutcome, SubscriptionId,
};
use example_billing_service::{BillingService, http};
use http_body_util::BodyExt;
use rust_decimal::Decimal;
use serde_json::Value;
use tower::ServiceExt;

use crate::own::OwnDatabase;

/// The fake-data seed of every test: the same customers in every run, so snapshots hold names.
pub(crate) const SEED: u64 = 16;

/// The metric every test plan meters.
pub(crate) const METRIC: &str = "api_calls";

/// The plans the tests install, and the reference's terms are built from: `lite` has a small
/// quota for overage at its boundary; `pro` and `business` are the service's own.
pub(crate) fn catalog() -> Vec<Plan> {
    let plan = |key: &str, fee: i64, included: i64, block: i64, price: i64| Plan {
        key: key.into(),
        name: key.to_uppercase(),
        product: None,
        currency: ServiceCurrency::Krw,
        monthly_fee: Decimal::from(fee),
        metric: METRIC.into(),
        included,
        block_size: block,
        block_price: Some(Decimal::from(price)),
    };
    vec![
        plan("lite", 9_900, 1_000, 100, 1_000),
        plan("pro", 99_000, 100_000, 1_000, 500),
        plan("business", 290_000, 1_000_000, 1_000, 300),
    ]
}

/// 00:00 in Seoul on `day` of `month` of `year`: the instant a test acts "on" a day.
pub(crate) fn seoul(year: i32, month: u32, day: u32) -> DateTime<Utc> {
    let month = model::Month::new(year, month).expect("a valid month");
    MonthOf::new(month, DEFAULT_TIME_ZONE).day(day).midnight()
}

/// A calendar day, `(year, month, day)`.
pub(crate) fn date(year: i32, month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, day).expect("a valid day")
}

/// `seoul(..)` plus hours and minutes, for the edges of a day.
pub(crate) fn seoul_at(year: i32, month: u32, day: u32, h: i64, m: i64) -> DateTime<Utc> {
    seoul(year, month, day) + TimeDelta::hours(h) + TimeDelta::minutes(m)
}

/// Where a test's database comes from: `EXAMPLE_DB=harness` (the default) or `own`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Setup {
    Harness,
    Own,
}

impl Setup {
    fn from_env() -> Setup {
        match std::env::var("EXAMPLE_DB").as_deref() {
            Err(_) | Ok("" | "harness") => Setup::Harness,
            Ok("own") => Setup::Own,
            Ok(other) => panic!("EXAMPLE_DB={other:?}: expected `harness` or `own`"),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Setup::Harness => "harness",
            Setup::Own => "own",
        }
    }
}

/// The service's clock in the tests: the harness's test clock, which owns the test's database
/// (with `EXAMPLE_DB=own`, a plain instant).
#[derive(Debug)]
enum TestClock {
    Harness(Box<TestEnv>),
    Own(Mutex<DateTime<Utc>>),
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        match self {
            TestClock::Harness(env) => env.clock().now(),
            TestClock::Own(now) => *now.lock().unwrap_or_else(PoisonError::into_inner),
        }
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
                    ServiceCurrency::Krw => Currency::Krw,
                    ServiceCurrency::Usd => Currency::Usd,
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

/// One test's world.
pub(crate) struct World {
    /// The service under test, on the test's database and clock.
    pub(crate) service: BillingService,
    /// The harness's mock gateway the service charges through: its ledger and journal.
    pub(crate) gateway: Arc<MockGateway>,
    /// The test's database, for what the service's API does not show.
    pool: sqlx::PgPool,
    /// Seeded fake data (the harness's), for customers.
    fakes: Fakes,
    customers: AtomicI64,
    clock: Arc<TestClock>,
    /// Dropped last: the crate's own database, when `EXAMPLE_DB=own`.
    _own: Option<OwnDatabase>,
}

impl World {
    /// A fresh database, migrated with this crate's migrations, the clock at `start` and the
    /// test catalog installed.
    pub(crate) async fn start(start: DateTime<Utc>) -> World {
        let setup = Setup::from_env();
        let began = Instant::now();
        let (pool, clock, own) = match setup {
            Setup::Harness => {
                // Relative to this crate's folder (CARGO_MANIFEST_DIR), wherever the test runs.
                let env = TestEnv::builder()
                    .migrations("migrations")
                    .start_at(start)
                    .seed(SEED)
                    .build()
                    .await
                    .unwrap_or_else(|e| panic!("no test database: {e}"));
                let pool = env.pool().clone();
                (pool, TestClock::Harness(Box::new(env)), None)
            }
            Setup::Own => {
                let db = OwnDatabase::create().await;
                let pool = db.pool().clone();
                (pool, TestClock::Own(Mutex::new(start)), Some(db))
            }
        };
        record_ready(setup, began.elapsed());
        let clock = Arc::new(clock);
        let gateway = MockGateway::new();
        let service = BillingService::new(
            pool.clone(),
            clock.clone(),
            Arc::new(MockProvider(gateway.clone())),
        );
        for plan in catalog() {
            service
                .put_plan(&plan)
                .await
                .expect("the test catalog is valid");
        }
        World {
            service,
            gateway,
            pool,
            fakes: Fakes::new(SEED, Locale::Korean),
            customers: AtomicI64::new(0),
            clock,
            _own: own,
        }
    }

    /// The test's database.
    pub(crate) fn pool(&self) -> &sqlx::PgPool {
        &self.pool
    }

    /// Moves the clock to `at`, forwards or back; the harness's clock moves `harness_now()` in
    /// the database with it.
    pub(crate) async fn at(&self, at: DateTime<Utc>) {
        match &*self.clock {
            // `set`, not `advance_to`: this schema has none of the harness platform's jobs to run.
            TestClock::Harness(env) => env.clock().set(at).await.expect("the clock moves"),
            TestClock::Own(now) => *now.lock().unwrap_or_else(PoisonError::into_inner) = at,
        }
    }

    /// Lives the days from `first` to `last` (both included) as the platform does: the clock at
    /// 00:00 in Seoul of each, then the day's jobs ([`BillingService::run_due_jobs`]).
    pub(crate) async fn live_days(&self, first: NaiveDate, last: NaiveDate) {
        for day in first.iter_days().take_while(|d| *d <= last) {
            self.at(example_billing_service::calendar::start_of_day(day))
                .await;
            self.service
                .run_due_jobs()
                .await
                .unwrap_or_else(|e| panic!("the jobs of {day} failed: {e}"));
        }
    }

    /// The attempts at the invoices of `(year, month)`, in order: number and outcome.
    pub(crate) async fn attempts(&self, (year, month): (i32, u32)) -> Vec<(u8, PaymentOutcome)> {
        let month = Month::new(year, month).expect("a valid month");
        let payments = self.service.payments(month).await.expect("the payments");
        payments.iter().map(|p| (p.attempt, p.outcome)).collect()
    }

    /// The service's HTTP API.
    pub(crate) fn app(&self) -> Router {
        http::router(self.service.clone())
    }

    /// A customer with a fake Korean name and address, and `card` registered (none: no card).
    pub(crate) fn new_customer(&self, card: Option<TestCard>) -> NewCustomer {
        let n = self.customers.fetch_add(1, Ordering::Relaxed) + 1;
        let person = self.fakes.person(n);
        NewCustomer {
            name: person.name,
            email: person.email,
            billing_key: card.map(|card| MockGateway::billing_key(card, &format!("customer-{n}"))),
            product: None,
            organization: None,
        }
    }

    /// [`World::new_customer`], created.
    pub(crate) async fn customer(&self, card: Option<TestCard>) -> Customer {
        let new = self.new_customer(card);
        self.service
            .create_customer(&new)
            .await
            .expect("a new customer")
    }

    /// A customer with a card that pays (a paid plan needs one), subscribed to `plan` now.
    pub(crate) async fn subscriber(&self, plan: &str) -> (Customer, SubscriptionId) {
        self.subscriber_with(Some(TestCard::Ok), plan).await
    }

    /// A customer with `card` (none: no card), subscribed to `plan` now.
    pub(crate) async fn subscriber_with(
        &self,
        card: Option<TestCard>,
        plan: &str,
    ) -> (Customer, SubscriptionId) {
        let customer = self.customer(card).await;
        let subscription = self.service.subscribe(customer.id, plan).await;
        (customer, subscription.expect("subscribed").id)
    }
}

/// With `EXAMPLE_DB_TIMINGS=FILE`, appends how long the database took to be ready, for
/// `cargo xtask bench adopt`.
fn record_ready(setup: Setup, took: Duration) {
    let Ok(path) = std::env::var("EXAMPLE_DB_TIMINGS") else {
        return;
    };
    let line = format!("{} {}\n", setup.name(), took.as_micros());
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(e) = written {
        eprintln!("could not append to EXAMPLE_DB_TIMINGS={path}: {e}");
    }
}

/// Sends one request to the API; the status and the JSON body (`Null` when empty).
pub(crate) async fn call(
    app: &Router,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .expect("a valid request");
    let response = app
        .clone()
        .oneshot(request)
        .await
        .expect("the router answers");
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("a whole body")
        .to_bytes();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    (status, body)
}

/// One step of a story, at an instant.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Step {
    /// Subscribe the story's customer to a plan.
    Subscribe(&'static str),
    /// Change to another plan.
    Change(&'static str),
    /// Cancel.
    Cancel,
    /// Report this many units of [`METRIC`].
    Usage(u64),
}

/// Plays `steps` (each at its instant) through the service for one new customer, closes the
/// month `(year, month)` at 00:00 on the 1st after it, and checks every line and total of the
/// stored invoice against [`billing_harness::billing::invoice`] of the same story, built from
/// the steps and [`catalog`] alone, never from what the service stored. Returns the stored
/// invoice, or `None` when neither side bills anything.
pub(crate) async fn check(
    world: &World,
    (year, month): (i32, u32),
    steps: &[(DateTime<Utc>, Step)],
) -> Option<Invoice> {
    let service = &world.service;
    let customer = world.customer(Some(TestCard::Ok)).await;
    let mut subscription: Option<SubscriptionId> = None;
    for &(at, step) in steps {
        world.at(at).await;
        let sub = || subscription.expect("the story subscribes first");
        match step {
            Step::Subscribe(plan) => {
                subscription = Some(service.subscribe(customer.id, plan).await.unwrap().id);
            }
            Step::Change(plan) => {
                service.change_plan(sub(), plan).await.unwrap();
            }
            Step::Cancel => {
                service.cancel(sub()).await.unwrap();
            }
            Step::Usage(quantity) => {
                let usage = example_billing_service::service::NewUsage {
                    metric: METRIC.into(),
                    quantity: i64::try_from(quantity).unwrap(),
                    occurred_at: None,
                };
                service.record_usage(sub(), &usage).await.unwrap();
            }
        }
    }
    let billed = Month::new(year, month).unwrap();
    world
        .at(example_billing_service::calendar::start_of_day(
            billed.end(),
        ))
        .await;
    service.close_month(billed).await.unwrap();
    let stored = service
        .invoices(customer.id)
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.month == billed);

    let expected = reference::invoice(&reference_input(
        model::Month::new(year, month).unwrap(),
        service.tax_rate(),
        steps,
    ));
    let Some(stored) = stored else {
        assert!(
            !expected.has_service(),
            "the service wrote no invoice for {billed}; the reference bills {expected:#?}"
        );
        return None;
    };
    // Both sides serialize a line the same way (amounts as exact decimal strings), so every
    // field of every line is compared, and a difference prints both lines in full.
    assert_eq!(
        serde_json::to_value(&stored.lines).expect("lines serialize"),
        serde_json::to_value(&expected.lines).expect("lines serialize"),
        "the lines of {billed} differ from the reference's for {steps:#?}"
    );
    assert_eq!(
        (stored.subtotal, stored.tax, stored.total),
        (expected.subtotal, expected.tax, expected.total),
        "subtotal, tax and total of {billed}"
    );
    Some(stored)
}

/// The reference's input for a story: plan periods and usage from the steps' Seoul days, terms
/// from [`catalog`].
fn reference_input(
    month: model::Month,
    tax_rate: Decimal,
    steps: &[(DateTime<Utc>, Step)],
) -> InvoiceInput {
    let terms: BTreeMap<String, Terms> = catalog()
        .into_iter()
        .map(|p| {
            let terms = Terms {
                base_fee: p.monthly_fee,
                included: BTreeMap::from([(p.metric.clone(), u64::try_from(p.included).unwrap())]),
                overage: p
                    .block_price
                    .map(|price| {
                        let block = u64::try_from(p.block_size).unwrap();
                        (p.metric.clone(), Overage { block, price })
                    })
                    .into_iter()
                    .collect(),
            };
            (p.key, terms)
        })
        .collect();
    let mut periods: Vec<reference::PlanPeriod> = Vec::new();
    let mut usage = Vec::new();
    for &(at, step) in steps {
        let day = harness_calendar::local_day(DEFAULT_TIME_ZONE, at);
        match step {
            Step::Subscribe(plan) | Step::Change(plan) => {
                if let Some(open) = periods.last_mut() {
                    open.until = Some(day);
                }
                periods.push(reference::PlanPeriod {
                    plan: plan.into(),
                    from: day,
                    until: None,
                    terms: terms[plan].clone(),
                });
            }
            Step::Cancel => {
                if let Some(open) = periods.last_mut() {
                    open.until = Some(day);
                }
            }
            Step::Usage(quantity) => usage.push(reference::Usage {
                day,
                metric: METRIC.into(),
                quantity,
            }),
        }
    }
    InvoiceInput {
        month,
        currency: Currency::Krw,
        tax_rate,
        periods,
        usage,
    }
}
