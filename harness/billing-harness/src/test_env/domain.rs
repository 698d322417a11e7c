//! A test's platform (the `domain` feature): the mock payment gateway, in process or (with
//! `gateway-http`) over HTTP, the platform's jobs registered with the clock, the default catalog
//! on demand, and the purge.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{TestEnv, TestEnvBuilder};
use crate::clock::{Clock, Jobs};
use crate::env::{Database, EnvError};
use crate::model::OrgId;
use crate::payments::{Gateway, MockGateway};
use crate::payments::{GatewayServer, HttpGateway};
use crate::platform::DomainError;
use crate::platform::{Platform, PlatformJobs};
use crate::purge::{PurgeError, PurgeReport, PurgeTarget};

/// What the domain adds to a [`TestEnv`].
#[derive(Debug)]
pub(super) struct Parts {
    pub(super) gateway: Arc<MockGateway>,
    _gateway_server: Option<GatewayServer>,
    /// The jobs registered with the clock, for the client product sync goes through.
    pub(super) jobs: PlatformJobs,
    /// Set once a catalog is known to be installed.
    catalog_ready: AtomicBool,
    pub(super) mocks: Arc<super::products::ProductMocks>,
    /// The jobs as the clock runs them, for the reconcile a test asks for.
    pub(super) env_jobs: Arc<super::products::EnvJobs>,
}

impl Parts {
    /// The gateway mock and the platform's jobs over `db`, registered with `clock` (with the
    /// product mocks, when there are any, started before product sync looks for work).
    pub(super) async fn open(
        builder: &TestEnvBuilder,
        db: &Database,
        clock: Clock,
    ) -> Result<(Clock, Parts), EnvError> {
        let gateway = MockGateway::new();
        let (used, server) = served(&gateway, builder.gateway_over_http).await?;
        let jobs = PlatformJobs::new(db.pool().clone(), used);
        let (jobs, mocks) = {
            let policy =
                builder
                    .sync_policy
                    .clone()
                    .unwrap_or_else(|| crate::platform::SyncPolicy {
                        seed: builder.seed.unwrap_or(0),
                        ..Default::default()
                    });
            let mocks = super::products::ProductMocks::open(builder, db, policy.timeout)?;
            (jobs.with_sync_policy(policy), Arc::new(mocks))
        };
        let env_jobs = Arc::new(super::products::EnvJobs {
            platform: jobs.clone(),
            mocks: mocks.clone(),
            pool: db.pool().clone(),
        });
        let registered: Arc<dyn Jobs> = env_jobs.clone();
        // A schema of the test's own (an adopter's migrations) has no platform tables: the clock
        // then moves application and database time only, and runs no platform job.
        let clock = if has_platform_schema(db).await? {
            clock.with_jobs(registered)
        } else {
            clock
        };
        Ok((
            clock,
            Parts {
                gateway,
                _gateway_server: server,
                jobs,
                catalog_ready: AtomicBool::new(false),
                mocks,
                env_jobs,
            },
        ))
    }
}

/// Whether `db` holds the platform's schema (its settings table), so that its jobs can run.
async fn has_platform_schema(db: &Database) -> Result<bool, EnvError> {
    sqlx::query_scalar("select to_regclass('public.platform_settings') is not null")
        .fetch_one(db.pool())
        .await
        .map_err(EnvError::db(format!(
            "look for the platform schema in {}",
            db.name()
        )))
}

/// The gateway the platform charges through: the mock itself, or a client of the mock served on
/// 127.0.0.1 `over_http`, with its server.
async fn served(
    mock: &Arc<MockGateway>,
    over_http: bool,
) -> Result<(Arc<dyn Gateway>, Option<GatewayServer>), EnvError> {
    if !over_http {
        return Ok((mock.clone(), None));
    }
    let server = GatewayServer::start(mock.clone())
        .await
        .map_err(EnvError::io("serve the mock gateway on 127.0.0.1"))?;
    Ok((Arc::new(HttpGateway::new(server.url())), Some(server)))
}

impl TestEnv {
    /// The mock payment gateway this test's charges go through: its ledger and journal.
    pub fn gateway(&self) -> &MockGateway {
        &self.open.domain.gateway
    }

    /// The platform over this database; operations take their instant from the caller, usually
    /// `env.clock().now()`.
    pub fn platform(&self) -> Platform {
        Platform::new(self.pool().clone())
    }

    /// Installs [`crate::model::default_catalog`] unless a catalog is installed: what a builder or a product
    /// mock needs first.
    pub(crate) async fn ensure_catalog(&self) -> Result<(), DomainError> {
        let ready = &self.open.domain.catalog_ready;
        if ready.load(Ordering::Relaxed) {
            return Ok(());
        }
        let installed: bool = sqlx::query_scalar("select exists (select 1 from platform_settings)")
            .fetch_one(self.pool())
            .await?;
        if !installed {
            self.platform()
                .install_catalog(&crate::model::default_catalog(), self.clock().now())
                .await?;
        }
        ready.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Purges a user (by e-mail address, or [`crate::purge::PurgeTarget::User`] through
    /// [`TestEnv::purge`]) at the clock's now: see [`crate::purge::purge`]. The deletions reach
    /// the products when the clock next moves, or at `TestEnv::converge`.
    ///
    /// # Errors
    /// See [`PurgeError`]; nothing is written.
    pub async fn purge_user(&self, email: &str) -> Result<PurgeReport, PurgeError> {
        self.purge(&PurgeTarget::Email(email.to_owned())).await
    }

    /// Purges an organization and everything of it at the clock's now (see
    /// [`TestEnv::purge_user`]).
    ///
    /// # Errors
    /// See [`PurgeError`]; nothing is written.
    pub async fn purge_org(&self, org: OrgId) -> Result<PurgeReport, PurgeError> {
        self.purge(&PurgeTarget::Org(org)).await
    }

    /// Purges `target` at the clock's now.
    ///
    /// # Errors
    /// See [`PurgeError`]; nothing is written.
    pub async fn purge(&self, target: &PurgeTarget) -> Result<PurgeReport, PurgeError> {
        crate::purge::purge(self.pool(), target, self.clock().now()).await
    }
}
