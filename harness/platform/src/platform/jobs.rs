//! The platform's scheduled jobs, registered with the test clock: the close on the 1st, the
//! charge on the charge day, the daily retries and the daily product reconcile, each run through
//! the platform's operations; and the product sync, due whenever an outbox row's time comes.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::DomainError;
use super::settings::stored_settings;
use super::sync::{self, Reconciliation, SyncPolicy};
use super::{charge_due, close_month, retry_due};
use crate::calendar::Job;
use crate::clock::Due;
use crate::clock::{BoxFuture, JobError, Jobs, Schedule};
use crate::payments::Gateway;
use crate::products::SyncClient;

/// The platform's jobs over one database, charging through one gateway and syncing products
/// with one client.
#[derive(Debug, Clone)]
pub struct PlatformJobs {
    pool: sqlx::PgPool,
    gateway: Arc<dyn Gateway>,
    sync: SyncClient,
    policy: SyncPolicy,
}

impl PlatformJobs {
    /// The jobs of the platform behind `pool`, whose charges go through `gateway`; product sync
    /// follows the default `SyncPolicy`.
    pub fn new(pool: sqlx::PgPool, gateway: Arc<dyn Gateway>) -> PlatformJobs {
        let policy = SyncPolicy::default();
        PlatformJobs {
            pool,
            gateway,
            sync: SyncClient::new(policy.timeout),
            policy,
        }
    }
}

impl PlatformJobs {
    /// The same jobs with product sync under `policy`.
    #[must_use]
    pub fn with_sync_policy(mut self, policy: SyncPolicy) -> PlatformJobs {
        self.sync = SyncClient::new(policy.timeout);
        self.policy = policy;
        self
    }

    /// The client product sync goes through.
    pub fn sync_client(&self) -> &SyncClient {
        &self.sync
    }

    /// The policy product sync follows.
    pub fn sync_policy(&self) -> &SyncPolicy {
        &self.policy
    }

    /// The daily reconcile, at `at`: [`sync::reconcile`] with repairs, through this client and
    /// policy.
    ///
    /// # Errors
    /// The database failed.
    pub async fn reconcile(&self, at: DateTime<Utc>) -> Result<Reconciliation, DomainError> {
        sync::reconcile(&self.pool, &self.sync, &self.policy, true, at).await
    }
}

impl Jobs for PlatformJobs {
    /// The stored calendar's jobs; none before a catalog is installed.
    fn due_between(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Schedule, JobError>> {
        Box::pin(async move {
            let mut conn = self.pool.acquire().await?;
            Ok(stored_settings(&mut conn)
                .await?
                .map_or_else(Vec::new, |s| s.calendar.due_between(after, until)))
        })
    }

    fn run(&self, job: Job, at: DateTime<Utc>) -> BoxFuture<'_, Result<usize, JobError>> {
        Box::pin(async move {
            let gateway = self.gateway.as_ref();
            Ok(match job {
                Job::Close(month) => close_month(&self.pool, month, at).await?.invoices,
                Job::Charge => charge_due(&self.pool, gateway, at).await?.len(),
                // The daily run: contracts whose term is over end first, then the retries.
                Job::Retry => {
                    super::end_contract_terms(&self.pool, at).await?
                        + retry_due(&self.pool, gateway, at).await?.len()
                }
                // Rows put back in the queue and repairs queued (and sent).
                Job::Reconcile => {
                    let r = self.reconcile(at).await?;
                    r.requeued + r.repairs
                }
                Job::Sync => {
                    let report = sync::dispatch(&self.pool, &self.sync, &self.policy, at).await?;
                    report.delivered + report.failed
                }
            })
        })
    }

    /// Product sync: the next instant an outbox row is due (nothing is delivered without the
    /// `products` feature).
    fn next_due(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Option<Due>, JobError>> {
        Box::pin(async move {
            Ok(sync::next_due(&self.pool, after, until)
                .await?
                .map(|at| (at, Job::Sync)))
        })
    }
}
