//! The scenario runner: plays a [`Scenario`] on a test database through the builders and the
//! platform, with the clock running every job on the way, and reports what happened.

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};

use super::diagnostic::ScenarioError;
use super::driver::{Driver, DriverError, PurgeOf, Purged, ReadBack, Session};
use super::outcome::{
    LongestWait, Outcome, OutcomeError, OutcomeInvoice, OutcomePayment, OutcomeProduct,
    OutcomePurge, OutcomeStatusChange, OutcomeSubscription, ProductSync,
};
use super::validate::{Action, OrgDef, PurgeStep, Scenario, ScriptedFault, Step, TenantDef};
use billing_harness::builders::{BuildError, Day, Org};
use billing_harness::calendar::{Calendar, Job};
use billing_harness::model::{ContractTerms, TenantId};
use billing_harness::payments::TestCard;
use billing_harness::platform::{SyncPolicy, timeline};
use billing_harness::products::ProductMock;
use billing_harness::products::api::Entity;
use billing_harness::purge::PurgeTarget;
use billing_harness::{Convergence, SyncError};
use billing_harness::{TestEnv, TestEnvBuilder};

/// The seed of every scenario run: fake data and the dispatcher's jitter.
const SEED: u64 = 1;

/// How long a product has to answer one write in a scenario run ([`Scenario::test_env`]), in real
/// time: what a `timeout` fault, or an outage of timeouts, costs the run, instead of the 2 s of
/// [`SyncPolicy::default`]. The request still reaches the product's mock over HTTP, which holds
/// it past this limit (the harness holds it 250 ms longer) and applies nothing. 1 s, not less: at
/// 50 ms a fault-free answer came too late under load (two container suites at once) and changed
/// a snapshot's `longest_wait`.
pub const SYNC_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(1000);

/// How a scenario is played: by default entirely, on a throwaway database.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Appended to tenant names, so that a scenario can be seeded into one database many times.
    pub tenant_suffix: Option<String>,
    /// Nothing dated after this instant is applied (the present, when seeding a QA database);
    /// what is left is listed in [`Outcome::later`].
    pub stop_at: Option<DateTime<Utc>>,
    /// The caller installed the scenario's catalog, or checked that the database's is the same
    /// (a seed into a shared database): the run writes none.
    pub catalog_installed: bool,
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
    Platform(#[from] billing_harness::platform::DomainError),
    /// The clock could not move.
    #[error(transparent)]
    Clock(#[from] billing_harness::clock::ClockError),
    /// The database failed.
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// Product sync could not be run to idle at `until`.
    #[error("could not run product sync to idle")]
    Sync(#[from] SyncError),
    /// A purge step was refused.
    #[error("a purge step was refused")]
    Purge(#[from] billing_harness::purge::PurgeError),
    /// A driver failed, or lacks what a step needs.
    #[error(transparent)]
    Driver(DriverError),
    /// A scenario file is not valid.
    #[error(transparent)]
    Invalid(#[from] Box<ScenarioError>),
    /// A conformance run failed in one scenario, on one side.
    #[error("scenario {path} through {side} failed")]
    InScenario {
        /// The scenario file, as named in diagnostics.
        path: String,
        /// `reference` or the driver's name.
        side: String,
        /// What failed.
        #[source]
        source: Box<RunError>,
    },
}

impl Scenario {
    /// 00:00 of the start day in the catalog's time zone: where the clock starts.
    pub fn start_instant(&self) -> DateTime<Utc> {
        Day::new(self.start, self.catalog.time_zone).midnight()
    }

    /// The test environment every run of this scenario uses: the clock at
    /// [`Scenario::start_instant`], the same seed, and a dispatcher that delivers one row at a
    /// time (in outbox order), so that each product's journal is the same on every run, with
    /// each product's `retry_horizon`, and [`SYNC_TIMEOUT`] for a product to answer.
    pub fn test_env(&self) -> TestEnvBuilder {
        self.test_env_with_sync_timeout(SYNC_TIMEOUT)
    }

    /// [`Scenario::test_env`] with `timeout` for a product to answer one write: longer for a
    /// slow machine, or [`SyncPolicy::default`]'s for products that are real servers.
    pub fn test_env_with_sync_timeout(&self, timeout: std::time::Duration) -> TestEnvBuilder {
        let policy = self.products.iter().fold(
            SyncPolicy {
                seed: SEED,
                batch: 1,
                timeout,
                ..SyncPolicy::default()
            },
            |policy, def| match def.retry_horizon {
                Some(horizon) => policy.with_horizon(&def.key, horizon),
                None => policy,
            },
        );
        TestEnv::builder()
            .start_at(self.start_instant())
            .seed(SEED)
            .sync_policy(policy)
    }
}

/// Plays `scenario` on `env` (whose clock should start at [`Scenario::start_instant`]) through
/// the reference platform.
///
/// # Errors
/// Setting up or the database failed; a scenario that does not hold is an `Ok` outcome.
pub async fn run(scenario: &Scenario, env: &TestEnv) -> Result<Outcome, RunError> {
    run_on(scenario, env, &RunOptions::default()).await
}

/// [`run`] with options: a partial run up to an instant, tenant names made unique.
///
/// # Errors
/// As [`run`].
pub async fn run_on(
    scenario: &Scenario,
    env: &TestEnv,
    options: &RunOptions,
) -> Result<Outcome, RunError> {
    let mut session = ReferenceSession::new(env, scenario, options.clone())
        .await
        .map_err(RunError::from_driver)?;
    play(scenario, &mut session, options.stop_at)
        .await
        .map_err(RunError::from_driver)
}

/// Plays `scenario` through `session`, as [`run_on`] plays it through the reference session,
/// entirely: set up, steps, the clock to `until`, products, read-back and expectations.
///
/// # Errors
/// The session failed, or lacks what a step needs; a scenario that does not hold is an `Ok`
/// outcome.
pub async fn play_session<S: Session>(
    scenario: &Scenario,
    session: &mut S,
) -> Result<Outcome, RunError> {
    play(scenario, session, None)
        .await
        .map_err(RunError::from_driver)
}

impl RunError {
    /// The reference session's failures carry a [`RunError`]: unwrap it.
    pub(crate) fn from_driver(e: DriverError) -> RunError {
        match e {
            DriverError::Failed(inner) => match inner.downcast::<RunError>() {
                Ok(run) => *run,
                Err(other) => RunError::Driver(DriverError::Failed(other)),
            },
            other => RunError::Driver(other),
        }
    }
}

/// Plays `scenario` through `session`: creates its organizations, users and tenants, plays the
/// steps at 00:00 of their days, runs the clock to `until` (or `stop_at`, whichever comes
/// first), reads back what the implementation holds and checks the expectations.
///
/// # Errors
/// The session failed, or lacks what a step needs ([`DriverError::Unsupported`]); a refusal is
/// part of the outcome.
pub(crate) async fn play<S: Session>(
    scenario: &Scenario,
    session: &mut S,
    stop_at: Option<DateTime<Utc>>,
) -> Result<Outcome, DriverError> {
    let tz = scenario.catalog.time_zone;
    set_up(scenario, session).await?;
    let stop_at = stop_at.unwrap_or(DateTime::<Utc>::MAX_UTC);
    let mut played = Played::default();
    for step in &scenario.steps {
        if Day::new(step.on, tz).midnight() > stop_at {
            played.later.push(format!(
                "step {} on {}: {}",
                step.number,
                step.on,
                step.action.display(scenario)
            ));
            continue;
        }
        session.advance_to(Day::new(step.on, tz).midnight()).await?;
        let refusal = act(scenario, step, session, &mut played).await?;
        played.compare_error(step, refusal);
    }
    let end = Day::new(scenario.until, tz).midnight();
    session.advance_to(end.min(stop_at)).await?;
    if end > stop_at {
        played.later.extend(jobs_after(scenario, stop_at, end)?);
    }
    // Convergence is checked at `until`, before the read-back (repairs are part of it).
    let products = if end <= stop_at {
        products_at_until(scenario, session).await?
    } else {
        Vec::new()
    };
    for product in &products {
        if !product.converged {
            played.failures.push(not_converged(product));
        }
    }
    let back = session.read_back().await?;
    let mut outcome = Outcome {
        scenario: scenario.name.clone(),
        holds: false,
        failures: played.failures,
        invoices: back.invoices,
        payments: back.payments,
        subscriptions: back.subscriptions,
        errors: played.errors,
        products,
        later: played.later,
        purges: played.purges,
    };
    // A partial run (stop_at) has not reached the day the expectations speak of.
    if end <= stop_at
        && let Err(mismatches) = scenario.check(&outcome)
    {
        outcome
            .failures
            .extend(mismatches.problems().iter().map(|p| {
                format!(
                    "{}:{}:{}: {}",
                    scenario.path(),
                    p.line(),
                    p.column(),
                    p.message()
                )
            }));
    }
    outcome.holds = outcome.failures.is_empty();
    Ok(outcome)
}

/// What playing the steps gathers for the [`Outcome`], besides what is read back at the end.
#[derive(Debug, Default)]
struct Played {
    /// Why the run does not hold, so far.
    failures: Vec<String>,
    /// Every step that returned an error.
    errors: Vec<OutcomeError>,
    /// Steps and jobs after `stop_at`, not applied.
    later: Vec<String>,
    /// What each purge step deleted.
    purges: Vec<OutcomePurge>,
}

impl Played {
    /// Records a step's `refusal` (code and message), and a failure when it is not the error
    /// the step expects.
    fn compare_error(&mut self, step: &Step, refusal: Option<(String, String)>) {
        if let Some((code, _)) = &refusal {
            self.errors.push(OutcomeError {
                step: step.number,
                code: code.clone(),
            });
        }
        match (&step.expect_error, &refusal) {
            (Some(expected), None) => self.failures.push(format!(
                "step {} on {}: expected {expected}, but it succeeded",
                step.number, step.on
            )),
            (Some(expected), Some((code, _))) if expected != code => self.failures.push(format!(
                "step {} on {}: expected {expected}, got {code}",
                step.number, step.on
            )),
            (None, Some((code, message))) => self.failures.push(format!(
                "step {} on {}: unexpected error {code}: {message}",
                step.number, step.on
            )),
            _ => {}
        }
    }
}

/// Creates the scenario's organizations with their members, then its tenants.
async fn set_up<S: Session>(scenario: &Scenario, session: &mut S) -> Result<(), DriverError> {
    for def in &scenario.orgs {
        session.create_org(def).await?;
        for email in &def.members {
            session.create_user(&def.key, email).await?;
        }
    }
    for def in &scenario.tenants {
        session
            .create_tenant(def, &scenario.orgs[def.org].key)
            .await?;
    }
    Ok(())
}

/// Plays `step`'s action through `session`, one arm per kind of action, and returns the
/// refusal it met (code and message), if any. A drift that finds no tenant to change is a
/// failure of the run; what a purge deleted goes to `played`.
async fn act<S: Session>(
    scenario: &Scenario,
    step: &Step,
    session: &mut S,
    played: &mut Played,
) -> Result<Option<(String, String)>, DriverError> {
    let tenant = |i: &usize| scenario.tenants[*i].key.as_str();
    let result = match &step.action {
        Action::ProductFault { product, fault } => session.product_fault(product, fault).await,
        Action::ProductDrift { product, tenant: t } => {
            if !session.product_drift(product, tenant(t)).await? {
                played.failures.push(format!(
                    "step {} on {}: product {product} has no tenant {} to drift yet \
                     (its writes arrive when the clock moves: drift on a later day)",
                    step.number,
                    step.on,
                    tenant(t)
                ));
            }
            Ok(())
        }
        Action::Subscribe { tenant: t, plan } => session.subscribe(tenant(t), plan).await,
        Action::ChangePlan { tenant: t, plan } => session.change_plan(tenant(t), plan).await,
        Action::Contract { tenant: t, terms } => session.apply_contract(tenant(t), terms).await,
        Action::Cancel { tenant: t } => session.cancel(tenant(t)).await,
        Action::Purge(target) => {
            let target = match target {
                PurgeStep::Org(o) => PurgeOf::Org(&scenario.orgs[*o].key),
                PurgeStep::User(email) => PurgeOf::User(email),
            };
            session.purge(target).await.map(|purged| {
                played.purges.push(OutcomePurge {
                    step: step.number,
                    purged: step.action.display(scenario).to_string(),
                    scope: purged.scope,
                    rows: purged.rows,
                    told: purged.told,
                });
            })
        }
        Action::Usage {
            tenant: t,
            metric,
            quantity,
            day,
        } => {
            session
                .record_usage(tenant(t), metric, *quantity, *day)
                .await
        }
        Action::SetCard { org, card } => {
            session.register_card(&scenario.orgs[*org].key, *card).await
        }
    };
    match result {
        Ok(()) => Ok(None),
        Err(DriverError::Refused { code, message }) => Ok(Some((code, message))),
        Err(other) => Err(other),
    }
}

/// The jobs due after `stop_at` up to `end` (`until`), the daily retries and reconciles left
/// out: what a partial run did not apply.
fn jobs_after(
    scenario: &Scenario,
    stop_at: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Vec<String>, DriverError> {
    let calendar = Calendar::new(scenario.catalog.time_zone, scenario.catalog.charge_day)
        .map_err(DriverError::failed)?;
    let mut later = Vec::new();
    for (at, jobs) in calendar.due_between(stop_at, end) {
        let day = calendar.local_day(at);
        for job in jobs {
            if !matches!(job, Job::Retry | Job::Reconcile) {
                later.push(format!("{job} at 00:00 on {day}"));
            }
        }
    }
    Ok(later)
}

/// Each product after sync ran to idle at `until`; none for an implementation without product
/// sync, unless the scenario is about it.
async fn products_at_until<S: Session>(
    scenario: &Scenario,
    session: &mut S,
) -> Result<Vec<OutcomeProduct>, DriverError> {
    match session.products().await? {
        Some(products) => Ok(products),
        // A scenario about product sync says nothing of an implementation without it.
        None if !scenario.products.is_empty() => Err(DriverError::unsupported("product sync")),
        None => Ok(Vec::new()),
    }
}

/// The reference platform as a [`Driver`]: each scenario on a fresh [`TestEnv`] made by
/// [`Scenario::test_env`], with a product mock for every product of its catalog.
#[derive(Debug, Clone, Copy, Default)]
pub struct Reference;

impl Driver for Reference {
    type Session = ReferenceSession<TestEnv>;

    fn name(&self) -> &str {
        "reference"
    }

    async fn start(&self, scenario: &Scenario) -> Result<ReferenceSession<TestEnv>, DriverError> {
        let env = scenario
            .test_env()
            .build()
            .await
            .map_err(DriverError::failed)?;
        ReferenceSession::new(env, scenario, RunOptions::default()).await
    }
}

/// A scenario's world on the reference platform: a [`TestEnv`] (owned, or borrowed by
/// [`run`]), and what the run made, by key.
#[derive(Debug)]
pub struct ReferenceSession<E> {
    env: E,
    options: RunOptions,
    orgs: BTreeMap<String, Org>,
    /// Tenants in the scenario's order, by key.
    tenants: Vec<(String, TenantId)>,
    mocks: BTreeMap<String, Arc<ProductMock>>,
    /// The catalog's time zone, in which the outcome says when products converged.
    tz: chrono_tz::Tz,
}

impl<E: Borrow<TestEnv> + Send + Sync> ReferenceSession<E> {
    /// Installs `scenario`'s catalog on `env` at its clock's instant (unless
    /// [`RunOptions::catalog_installed`]) and sets up its product mocks: the session [`run_on`]
    /// plays, for a caller that wraps it (to time each operation, say) and plays it with
    /// [`play_session`].
    ///
    /// # Errors
    /// Installing the catalog or setting up a product mock failed.
    pub async fn new(
        env: E,
        scenario: &Scenario,
        options: RunOptions,
    ) -> Result<ReferenceSession<E>, DriverError> {
        let e = env.borrow();
        if !options.catalog_installed {
            e.platform()
                .install_catalog(&scenario.catalog, e.clock().now())
                .await
                .map_err(failed)?;
        }
        let mocks = configure_products(scenario, e).await.map_err(failed)?;
        Ok(ReferenceSession {
            env,
            options,
            orgs: BTreeMap::new(),
            tenants: Vec::new(),
            mocks,
            tz: scenario.catalog.time_zone,
        })
    }

    fn env(&self) -> &TestEnv {
        self.env.borrow()
    }

    fn org(&self, key: &str) -> Result<&Org, DriverError> {
        self.orgs
            .get(key)
            .ok_or_else(|| DriverError::failed(UnknownKey(format!("organization {key}"))))
    }

    fn tenant(&self, key: &str) -> Result<TenantId, DriverError> {
        self.tenants
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, id)| *id)
            .ok_or_else(|| DriverError::failed(UnknownKey(format!("tenant {key}"))))
    }
}

/// A key the scenario did not create before using it: a bug of the runner.
#[derive(Debug, thiserror::Error)]
#[error("no {0} was created before it was used")]
struct UnknownKey(String);

/// A failure of the reference session, carrying the [`RunError`] that [`run`] returns.
fn failed(e: impl Into<RunError>) -> DriverError {
    DriverError::failed(e.into())
}

/// A platform refusal as a driver's, with the platform's code.
fn refused(e: &billing_harness::platform::DomainError) -> DriverError {
    DriverError::refused(e.code(), billing_harness::env::with_causes(e))
}

impl<E: Borrow<TestEnv> + Send + Sync> Session for ReferenceSession<E> {
    async fn create_org(&mut self, def: &OrgDef) -> Result<(), DriverError> {
        let builder = self
            .env()
            .build()
            .org()
            .name(def.name.clone().unwrap_or_else(|| def.key.clone()));
        let builder = match def.card {
            Some(card) => builder.card(card),
            None => builder.without_card(),
        };
        let builder = match &def.owner {
            Some(email) => builder.owner_email(suffixed(email, &self.options)),
            None => builder,
        };
        let org = builder.create().await.map_err(failed)?;
        self.orgs.insert(def.key.clone(), org);
        Ok(())
    }

    async fn create_user(&mut self, org: &str, email: &str) -> Result<(), DriverError> {
        let org = self.org(org)?;
        self.env()
            .build()
            .user()
            .org(org)
            .email(suffixed(email, &self.options))
            .create()
            .await
            .map_err(failed)?;
        Ok(())
    }

    async fn create_tenant(&mut self, def: &TenantDef, org: &str) -> Result<(), DriverError> {
        let org = self.org(org)?;
        let tenant = self
            .env()
            .build()
            .tenant()
            .org(org)
            .product(def.product.clone())
            .name(format!(
                "{}{}",
                def.key,
                self.options.tenant_suffix.as_deref().unwrap_or("")
            ))
            .create()
            .await
            .map_err(failed)?;
        self.tenants.push((def.key.clone(), tenant.id()));
        Ok(())
    }

    async fn register_card(&mut self, org: &str, card: TestCard) -> Result<(), DriverError> {
        let id = self.org(org)?.id;
        let at = self.env().clock().now();
        self.env()
            .platform()
            .register_card(id, card, at)
            .await
            .map(drop)
            .map_err(|e| refused(&e.into()))
    }

    async fn subscribe(&mut self, tenant: &str, plan: &str) -> Result<(), DriverError> {
        let id = self.tenant(tenant)?;
        let at = self.env().clock().now();
        let p = self.env().platform();
        p.subscribe(id, plan, at)
            .await
            .map(drop)
            .map_err(|e| refused(&e))
    }

    async fn change_plan(&mut self, tenant: &str, plan: &str) -> Result<(), DriverError> {
        let id = self.tenant(tenant)?;
        let at = self.env().clock().now();
        let p = self.env().platform();
        p.change_plan(id, plan, at).await.map_err(|e| refused(&e))
    }

    async fn cancel(&mut self, tenant: &str) -> Result<(), DriverError> {
        let id = self.tenant(tenant)?;
        let at = self.env().clock().now();
        let p = self.env().platform();
        p.cancel(id, at).await.map_err(|e| refused(&e))
    }

    async fn apply_contract(
        &mut self,
        tenant: &str,
        terms: &ContractTerms,
    ) -> Result<(), DriverError> {
        let id = self.tenant(tenant)?;
        let at = self.env().clock().now();
        let p = self.env().platform();
        p.apply_contract(id, terms, at)
            .await
            .map(drop)
            .map_err(|e| refused(&e))
    }

    async fn record_usage(
        &mut self,
        tenant: &str,
        metric: &str,
        quantity: i64,
        day: NaiveDate,
    ) -> Result<(), DriverError> {
        let id = self.tenant(tenant)?;
        let at = self.env().clock().now();
        let p = self.env().platform();
        p.record_usage(id, metric, quantity, day, at)
            .await
            .map_err(|e| refused(&e))
    }

    async fn advance_to(&mut self, at: DateTime<Utc>) -> Result<(), DriverError> {
        self.env().clock().advance_to(at).await.map_err(failed)?;
        Ok(())
    }

    async fn read_back(&mut self) -> Result<ReadBack, DriverError> {
        read_back(self.env(), &self.tenants).await.map_err(failed)
    }

    async fn purge(&mut self, target: PurgeOf<'_>) -> Result<Purged, DriverError> {
        let target = match target {
            PurgeOf::Org(key) => PurgeTarget::Org(self.org(key)?.id),
            PurgeOf::User(email) => PurgeTarget::Email(suffixed(email, &self.options)),
        };
        let at = self.env().clock().now();
        let report = billing_harness::purge::purge(self.env().pool(), &target, at)
            .await
            .map_err(failed)?;
        let notices = &report.plan.notices;
        let told = Purged::count_told(notices.iter().map(|n| (&*n.product, &*n.entity)));
        Ok(Purged {
            scope: report.plan.scope,
            rows: report.plan.rows,
            told,
        })
    }

    async fn product_fault(
        &mut self,
        product: &str,
        fault: &ScriptedFault,
    ) -> Result<(), DriverError> {
        if let Some(mock) = self.mocks.get(product) {
            mock.fail_next(fault.fault, fault.times);
        }
        Ok(())
    }

    async fn product_drift(&mut self, product: &str, tenant: &str) -> Result<bool, DriverError> {
        let id = self.tenant(tenant)?;
        Ok(self
            .mocks
            .get(product)
            .is_none_or(|m| m.drift(id.0).is_some()))
    }

    async fn products(&mut self) -> Result<Option<Vec<OutcomeProduct>>, DriverError> {
        // An attached database (a seed) has no mocks: nothing to converge, nothing lacking.
        if self.mocks.is_empty() {
            return Ok(Some(Vec::new()));
        }
        let env = self.env();
        let convergence = env.converge().await.map_err(failed)?;
        let names = Names::read(env, &self.tenants).await.map_err(failed)?;
        Ok(Some(
            self.mocks
                .values()
                .map(|mock| product_outcome(mock, &convergence, &names, self.tz))
                .collect(),
        ))
    }
}

/// A scenario's e-mail address made unique for a seed (`jo@acme.test` becomes
/// `jo+run-1a2b@acme.test`), as tenant names are; unchanged otherwise.
fn suffixed(email: &str, options: &RunOptions) -> String {
    match (&options.tenant_suffix, email.split_once('@')) {
        (Some(suffix), Some((local, domain))) => {
            format!("{local}+{}@{domain}", suffix.trim_start_matches('-'))
        }
        _ => email.to_owned(),
    }
}

/// Sets up the mock of every product with a `[[product]]` table, and returns every product's
/// mock by key: none on a database without mocks.
async fn configure_products(
    scenario: &Scenario,
    env: &TestEnv,
) -> Result<BTreeMap<String, Arc<ProductMock>>, RunError> {
    let mocks: BTreeMap<String, Arc<ProductMock>> = env
        .products()
        .await?
        .into_iter()
        .map(|m| (m.key().to_owned(), m))
        .collect();
    for def in &scenario.products {
        let Some(mock) = mocks.get(&def.key) else {
            continue;
        };
        mock.set_strict(def.strict);
        if let Some(drawn) = def.drawn {
            mock.fault_rate(drawn.rate, drawn.seed);
        }
        for f in &def.faults {
            mock.fail_next(f.fault, f.times);
        }
        if let Some(outage) = def.outage {
            mock.outage(outage);
        }
    }
    Ok(mocks)
}

/// How a run names what it made: tenants by their keys, users by e-mail.
struct Names {
    tenants: BTreeMap<i64, String>,
    users: BTreeMap<i64, String>,
}

impl Names {
    async fn read(env: &TestEnv, tenants: &[(String, TenantId)]) -> Result<Names, sqlx::Error> {
        let users: Vec<(i64, String)> = sqlx::query_as("select id, email from users")
            .fetch_all(env.pool())
            .await?;
        Ok(Names {
            tenants: tenants
                .iter()
                .map(|(key, id)| (id.0, key.clone()))
                .collect(),
            users: users.into_iter().collect(),
        })
    }

    fn tenant(&self, id: i64) -> Option<&str> {
        self.tenants.get(&id).map(String::as_str)
    }

    /// `tenant acme-analytics`, `user jo@example.com`; the id when the run did not make it.
    fn entity(&self, entity: Entity, id: i64) -> String {
        let name = match entity {
            Entity::User => self.users.get(&id),
            Entity::Tenant | Entity::Subscription => self.tenants.get(&id),
        };
        name.map_or_else(|| format!("{entity} {id}"), |n| format!("{entity} {n}"))
    }
}

/// A product at the end of a run, from its mock and the convergence of every product; instants
/// in `tz`.
fn product_outcome(
    mock: &ProductMock,
    c: &Convergence,
    names: &Names,
    tz: chrono_tz::Tz,
) -> OutcomeProduct {
    let key = mock.key();
    let delivered = c.deliveries.iter().find(|d| d.product == key);
    let describe = |d: &billing_harness::platform::Drift| d.describe(|e, id| names.entity(e, id));
    let sync = ProductSync {
        drift: c
            .reconciliation
            .drift
            .iter()
            .filter(|d| d.product == key)
            .map(describe)
            .collect(),
        repaired: c
            .repaired
            .iter()
            .filter(|d| d.product == key)
            .map(describe)
            .collect(),
        busy: c.reconciliation.busy.iter().any(|b| b == key),
        dead_letters: c.dead_letters.iter().filter(|r| r.product == key).count(),
        last_delivery: delivered.map(|d| d.last.with_timezone(&tz).fixed_offset()),
        longest_wait: delivered.map(|d| LongestWait {
            rows: d.longest_waiting,
            wait: d.longest_wait,
        }),
    };
    OutcomeProduct::of(mock, sync, |id| names.tenant(id).map(str::to_owned))
}

/// The failure of a run whose `product` did not converge: its drift report and what else held
/// it back.
fn not_converged(product: &OutcomeProduct) -> String {
    let mut out = format!("product {} did not converge with the platform", product.key);
    if !product.drift.is_empty() {
        out.push_str(":\n");
        out.push_str(&product.drift.join("\n"));
    }
    if product.dead_letters > 0 {
        out.push_str(&format!(
            "\n{} dead letter(s): rows given up on hold back their tenant",
            product.dead_letters
        ));
    }
    for v in &product.violations {
        out.push_str(&format!("\nstrict mock: {v}"));
    }
    out
}

/// Every invoice, payment attempt and last subscription of `tenants` on the reference platform.
async fn read_back(env: &TestEnv, tenants: &[(String, TenantId)]) -> Result<ReadBack, RunError> {
    let p = env.platform();
    let calendar = p.settings().await?.calendar;
    let mut invoices = Vec::new();
    let mut payments = Vec::new();
    let mut subscriptions = Vec::new();
    for (key, id) in tenants {
        for stored in p.invoices(*id).await? {
            let i = stored.invoice;
            invoices.push(OutcomeInvoice {
                tenant: key.clone(),
                period: i.month.to_string(),
                status: stored.status,
                currency: i.currency.to_string(),
                lines: i.lines,
                subtotal: i.subtotal,
                tax: i.tax,
                total: i.total,
            });
        }
        let t = timeline(env.pool(), *id).await?;
        payments.extend(t.attempts.iter().map(|a| OutcomePayment {
            tenant: key.clone(),
            period: a.period.to_string(),
            on: a.on,
            attempt: a.attempt,
            amount: a.amount,
            outcome: a.outcome,
            failure_code: a.failure_code.clone(),
        }));
        if let Some(s) = t.subscription {
            subscriptions.push(OutcomeSubscription {
                tenant: key.clone(),
                plan: s.plan,
                status: s.status,
                changes: status_changes(env, *id, &calendar).await?,
            });
        }
    }
    payments.sort_by(|a, b| (a.on, &a.tenant).cmp(&(b.on, &b.tenant)));
    Ok(ReadBack {
        invoices,
        payments,
        subscriptions,
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
