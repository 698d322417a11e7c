//! The platform's scheduled jobs, registered with the test clock: the close on the 1st, the
//! charge on the charge day and the daily retries, each run through the platform's operations.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{charge_due, close_month, retry_due, stored_settings};
use crate::calendar::{Calendar, Job};
use crate::clock::{BoxFuture, JobError, Jobs};
use crate::payments::Gateway;

/// The platform's jobs over one database, charging through one gateway.
#[derive(Debug, Clone)]
pub struct PlatformJobs {
    pool: sqlx::PgPool,
    gateway: Arc<dyn Gateway>,
}

impl PlatformJobs {
    /// The jobs of the platform behind `pool`, whose charges go through `gateway`.
    pub fn new(pool: sqlx::PgPool, gateway: Arc<dyn Gateway>) -> PlatformJobs {
        PlatformJobs { pool, gateway }
    }
}

impl Jobs for PlatformJobs {
    fn calendar(&self) -> BoxFuture<'_, Result<Option<Calendar>, JobError>> {
        Box::pin(async move {
            let mut conn = self.pool.acquire().await?;
            Ok(stored_settings(&mut conn).await?.map(|s| s.calendar))
        })
    }

    fn run(&self, job: Job, at: DateTime<Utc>) -> BoxFuture<'_, Result<usize, JobError>> {
        Box::pin(async move {
            let gateway = self.gateway.as_ref();
            Ok(match job {
                Job::Close(month) => close_month(&self.pool, month, at).await?.invoices,
                Job::Charge => charge_due(&self.pool, gateway, at).await?.len(),
                Job::Retry => retry_due(&self.pool, gateway, at).await?.len(),
            })
        })
    }
}
