//! A test's products (the `products` feature): a mock served over HTTP for every product of the
//! catalog (its URL goes into `products.sync_url`), in this process or (with `containers`) in the
//! process's product-mock container, the jobs that start them before product sync runs, and
//! convergence.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

use super::{TestEnv, TestEnvBuilder};
use crate::calendar::Job;
use crate::clock::{BoxFuture, ClockError, Due, JobError, Jobs, Schedule};
use crate::env::{Broker, Database, EnvError, ProductsChoice};
use crate::platform::sync::{self, Deliveries, drift_report};
use crate::platform::{DomainError, Drift, OutboxRow, PlatformJobs, Reconciliation};
use crate::products::{ProductMock, ProductServer};

/// The product mocks of one test, started on demand.
#[derive(Debug)]
pub(super) struct ProductMocks {
    mocks: tokio::sync::Mutex<BTreeMap<String, Served>>,
    /// How long a `timeout` fault holds a request: past the dispatcher's limit.
    hold: Duration,
    /// Only a throwaway database gets mocks: an attached QA database keeps its own `sync_url`s.
    enabled: bool,
    place: Place,
    /// Drift every reconcile of the test found and repaired, daily or asked for, in order.
    repaired: std::sync::Mutex<Vec<Drift>>,
}

/// Where a test's mocks run.
#[derive(Debug)]
enum Place {
    /// A [`ProductServer`] per product in this process.
    InProcess,
    /// A namespace per product in the process's product-mock container.
    Container {
        /// `HARNESS_PRODUCT_MOCK_IMAGE`.
        image: Option<String>,
        /// `HARNESS_STATE_DIR`: the product-mock instance folder goes under it.
        state_dir: std::path::PathBuf,
    },
}

#[derive(Debug)]
struct Served {
    mock: Arc<ProductMock>,
    url: String,
    /// Serves an in-process mock until the test ends.
    _server: Option<ProductServer>,
}

impl ProductMocks {
    /// The mocks of a test on `db`, none started yet, held past the dispatcher's
    /// `client_timeout` by a `timeout` fault, where the builder's `products` option (else
    /// `HARNESS_PRODUCTS`) says. Only a throwaway database gets mocks.
    ///
    /// # Errors
    /// The configuration is invalid, or it asks for a container without the `containers` feature.
    pub(super) fn open(
        builder: &TestEnvBuilder,
        db: &Database,
        client_timeout: Duration,
    ) -> Result<ProductMocks, EnvError> {
        let place = if db.is_owned() {
            let config = Broker::global()?.config();
            match builder.products.unwrap_or(config.products) {
                ProductsChoice::InProcess => Place::InProcess,
                ProductsChoice::Container => Place::Container {
                    image: config.product_mock_image.clone(),
                    state_dir: config.state_dir.clone(),
                },
            }
        } else {
            Place::InProcess
        };
        Ok(ProductMocks {
            mocks: tokio::sync::Mutex::new(BTreeMap::new()),
            hold: client_timeout + Duration::from_millis(250),
            enabled: db.is_owned(),
            place,
            repaired: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// Starts a mock for every product without a `sync_url` and points the product at it.
    pub(super) async fn ensure(&self, pool: &PgPool) -> Result<(), DomainError> {
        if !self.enabled {
            return Ok(());
        }
        let missing: Vec<String> =
            sqlx::query_scalar("select key from products where sync_url is null order by key")
                .fetch_all(pool)
                .await?;
        if missing.is_empty() {
            return Ok(());
        }
        let mut mocks = self.mocks.lock().await;
        for key in missing {
            if !mocks.contains_key(&key) {
                let served = self.serve(&key).await?;
                mocks.insert(key.clone(), served);
            }
            let url = mocks.get(&key).map(|s| s.url.clone());
            sqlx::query("update products set sync_url = $2 where key = $1 and sync_url is null")
                .bind(&key)
                .bind(url)
                .execute(pool)
                .await?;
        }
        Ok(())
    }

    /// A new mock of product `key`, served where the test's mocks run.
    async fn serve(&self, key: &str) -> Result<Served, DomainError> {
        match &self.place {
            Place::InProcess => {
                let mock = Arc::new(ProductMock::new(key));
                mock.set_hold(self.hold);
                let server = ProductServer::start(mock.clone()).await.map_err(|e| {
                    DomainError::Settings(format!("could not serve the mock of product {key}: {e}"))
                })?;
                Ok(Served {
                    mock,
                    url: server.url().to_owned(),
                    _server: Some(server),
                })
            }
            Place::Container { image, state_dir } => {
                let container = crate::env::product_mock_container(image.as_deref(), state_dir)
                    .await
                    .map_err(|e| {
                        DomainError::Settings(format!(
                            "could not serve the mock of product {key}: {}",
                            crate::env::with_causes(&e)
                        ))
                    })?;
                static ENVS: AtomicU64 = AtomicU64::new(0);
                let url = format!(
                    "{}/ns/p{}-e{}-{key}",
                    container.url,
                    std::process::id(),
                    ENVS.fetch_add(1, Ordering::Relaxed)
                );
                let mock = Arc::new(ProductMock::remote(key, url.clone()));
                // The first control call: blocking, but short and on the loopback.
                mock.set_hold(self.hold);
                Ok(Served {
                    mock,
                    url,
                    _server: None,
                })
            }
        }
    }

    pub(super) async fn get(&self, key: &str) -> Option<Arc<ProductMock>> {
        self.mocks.lock().await.get(key).map(|s| s.mock.clone())
    }

    /// Keeps `drift`, found and repaired by a reconcile.
    fn record(&self, drift: &[Drift]) {
        self.repaired
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend(drift.iter().cloned());
    }

    /// Every drift repaired so far.
    fn repaired(&self) -> Vec<Drift> {
        self.repaired
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub(super) async fn all(&self) -> Vec<Arc<ProductMock>> {
        self.mocks
            .lock()
            .await
            .values()
            .map(|s| s.mock.clone())
            .collect()
    }
}

/// The platform's jobs, with the test's product mocks started before product sync looks for work
/// and each reconcile's repairs kept for [`Convergence::repaired`].
#[derive(Debug)]
pub(super) struct EnvJobs {
    pub(super) platform: PlatformJobs,
    pub(super) mocks: Arc<ProductMocks>,
    pub(super) pool: PgPool,
}

impl EnvJobs {
    /// The platform's reconcile at `at`, once every product has its mock; its repairs kept.
    pub(super) async fn reconcile(&self, at: DateTime<Utc>) -> Result<Reconciliation, DomainError> {
        self.mocks.ensure(&self.pool).await?;
        let found = self.platform.reconcile(at).await?;
        self.mocks.record(&found.drift);
        Ok(found)
    }
}

impl Jobs for EnvJobs {
    fn due_between(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Schedule, JobError>> {
        self.platform.due_between(after, until)
    }

    fn run(&self, job: Job, at: DateTime<Utc>) -> BoxFuture<'_, Result<usize, JobError>> {
        match job {
            Job::Reconcile => Box::pin(async move {
                let found = self.reconcile(at).await?;
                Ok(found.requeued + found.repairs)
            }),
            _ => self.platform.run(job, at),
        }
    }

    fn next_due(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Option<Due>, JobError>> {
        Box::pin(async move {
            self.mocks.ensure(&self.pool).await?;
            self.platform.next_due(after, until).await
        })
    }
}

/// Whether the products hold what the platform says they must, after sync ran to idle.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Convergence {
    /// The last reconciliation: drift left, products still busy and products that did not
    /// answer.
    pub reconciliation: Reconciliation,
    /// Rows given up on and not re-queued (their product did not answer the last reconcile):
    /// they hold back their tenant until a reconcile finds it answering.
    pub dead_letters: Vec<OutboxRow>,
    /// What strict mocks objected to, as `product: what`.
    pub violations: Vec<String>,
    /// Drift found and repaired on the way: by every reconcile of the test so far, the daily
    /// ones included.
    pub repaired: Vec<Drift>,
    /// Per product delivered to: its last delivery and the rows that waited longest.
    #[serde(skip)]
    pub deliveries: Vec<Deliveries>,
}

impl Convergence {
    /// Every product answered, with no drift, nothing in flight, no dead letter and no strict
    /// violation.
    pub fn is_converged(&self) -> bool {
        self.reconciliation.drift.is_empty()
            && self.reconciliation.busy.is_empty()
            && self.reconciliation.unreachable.is_empty()
            && self.dead_letters.is_empty()
            && self.violations.is_empty()
    }
}

impl fmt::Display for Convergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_converged() {
            return f.write_str("every product holds what the platform says\n");
        }
        if !self.reconciliation.drift.is_empty() {
            writeln!(f, "drift left after repair:")?;
            f.write_str(&drift_report(&self.reconciliation.drift))?;
        }
        for product in &self.reconciliation.busy {
            writeln!(f, "{product}: rows still undelivered")?;
        }
        for product in &self.reconciliation.unreachable {
            writeln!(f, "{product}: did not answer the read-back")?;
        }
        if !self.dead_letters.is_empty() {
            writeln!(
                f,
                "dead letters (the next reconcile that finds their product answering re-queues them):"
            )?;
            for row in &self.dead_letters {
                writeln!(
                    f,
                    "  - row {} to {}: {} {} {} of tenant {}, {} attempts, last error: {}",
                    row.id,
                    row.product,
                    row.operation,
                    row.entity,
                    row.entity_id,
                    row.tenant_id.map_or_else(|| "-".into(), |t| t.to_string()),
                    row.attempts,
                    row.last_error.as_deref().unwrap_or("-")
                )?;
            }
        }
        for v in &self.violations {
            writeln!(f, "strict mock: {v}")?;
        }
        Ok(())
    }
}

/// Why sync could not be run to idle.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// The clock, or a job it ran, failed.
    #[error("the clock could not run product sync")]
    Clock(#[from] ClockError),
    /// The platform failed (reading a product's state, say).
    #[error("the platform failed during product sync")]
    Platform(#[from] DomainError),
}

impl From<sqlx::Error> for SyncError {
    fn from(e: sqlx::Error) -> SyncError {
        SyncError::Platform(DomainError::Database(e))
    }
}

/// The most dispatcher-and-reconciler rounds [`TestEnv::converge`] runs.
const ROUNDS: usize = 4;

impl TestEnv {
    /// The mock of `product` (a key of the catalog; [`crate::model::default_catalog`] is
    /// installed when none is): its journal, state, faults and drift. Mocks start with the first product
    /// sync, or here.
    ///
    /// # Errors
    /// [`DomainError::UnknownProduct`] for a key outside the catalog (or an attached database,
    /// which has no mocks), or a database error.
    pub async fn product(&self, key: &str) -> Result<Arc<ProductMock>, DomainError> {
        self.ensure_catalog().await?;
        self.mocks().ensure(self.pool()).await?;
        self.mocks()
            .get(key)
            .await
            .ok_or_else(|| DomainError::UnknownProduct(key.to_owned()))
    }

    fn mocks(&self) -> &ProductMocks {
        &self.open.domain.mocks
    }

    /// Every product mock started so far, by key.
    pub async fn products(&self) -> Result<Vec<Arc<ProductMock>>, DomainError> {
        self.mocks().ensure(self.pool()).await?;
        Ok(self.mocks().all().await)
    }

    /// Runs product sync to idle on the test clock: delivers every row, moving the clock
    /// through each backoff (jobs due on the way run too, the daily reconcile among them), until
    /// no live row is left, or until the longest retry horizon of the sync policy has passed
    /// (rows that still fail by then are dead letters, or wait for a product that keeps failing).
    ///
    /// # Errors
    /// The clock or a job failed.
    pub async fn sync_to_idle(&self) -> Result<(), SyncError> {
        let clock = self.clock();
        clock.settle().await?;
        let lookahead = chrono::TimeDelta::days(1);
        let until = clock.now() + self.open.domain.jobs.sync_policy().longest_horizon();
        while let Some(at) =
            sync::next_due(self.pool(), clock.now(), clock.now() + lookahead).await?
        {
            if at > until {
                break;
            }
            if at > clock.now() {
                clock.advance_to(at).await?;
            } else if clock.settle().await?.iter().all(|r| r.effects == 0) {
                break;
            }
        }
        Ok(())
    }

    /// Reconciles every product now, as the daily reconcile does: for each product that
    /// answers, re-queues and delivers what waits for it (dead letters included), compares it
    /// with the platform and repairs the difference ([`sync::reconcile`]). A product that answers
    /// holds the platform's data when it returns, unless its writes fail.
    ///
    /// # Errors
    /// The database failed.
    pub async fn reconcile(&self) -> Result<Reconciliation, DomainError> {
        self.open
            .domain
            .env_jobs
            .reconcile(self.clock().now())
            .await
    }

    /// Runs dispatcher and reconciler to idle: sync to idle, reconcile (re-queue what waits for
    /// each product that answers, compare, repair), and again while repairs were needed (a few
    /// rounds at most).
    ///
    /// # Errors
    /// The clock or a job failed.
    pub async fn converge(&self) -> Result<Convergence, SyncError> {
        let mut reconciliation = Reconciliation::default();
        for _ in 0..ROUNDS {
            self.sync_to_idle().await?;
            reconciliation = self.reconcile().await?;
            if reconciliation.drift.is_empty() {
                break;
            }
        }
        let mut violations = Vec::new();
        for mock in self.mocks().all().await {
            if mock.is_strict() {
                violations.extend(
                    mock.violations()
                        .into_iter()
                        .map(|v| format!("{}: {v}", mock.key())),
                );
            }
        }
        Ok(Convergence {
            reconciliation,
            dead_letters: sync::dead_letters(self.pool()).await?,
            violations,
            repaired: self.mocks().repaired(),
            deliveries: sync::deliveries(self.pool()).await?,
        })
    }

    /// [`TestEnv::converge`], then panics with the drift report, the dead letters and the
    /// violations of strict mocks if any product differs from the platform.
    pub async fn assert_converged(&self) -> Convergence {
        match self.converge().await {
            Ok(c) if c.is_converged() => c,
            Ok(c) => panic!("the products did not converge with the platform:\n{c}"),
            Err(e) => panic!("product sync failed: {}", crate::env::with_causes(&e)),
        }
    }

    /// Puts dead letters back in the queue from now: the row `id`, or all when `None`.
    ///
    /// # Errors
    /// The database failed.
    pub async fn requeue(&self, id: Option<i64>) -> Result<u64, sqlx::Error> {
        sync::requeue(self.pool(), id, self.clock().now()).await
    }
}
