//! `env.build().outage("analytics")`: a product down for a window of the test clock, as a
//! scenario's `[[product]] outage = { from, until, fault }` says, on the product's mock.

use chrono::{DateTime, TimeDelta, Utc};

use super::BuildError;
use crate::TestEnv;
use crate::products::{Fault, Outage};

/// Builds an outage of one product; every setter documents its default, and the end must be
/// chosen (`until` or `lasting`).
///
/// ```
/// use billing_harness::prelude::*;
/// use chrono::TimeDelta;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let env = TestEnv::builder().today("2026-11-24".parse()?).build().await?;
/// env.build().outage("analytics").lasting(TimeDelta::hours(2)).create().await?;
/// let t = env.build().tenant().plan("pro").create().await?;    // queued, not delivered
/// env.clock().advance(TimeDelta::hours(4)).await?;            // retried until it answers
/// let analytics = env.product("analytics").await?;
/// assert!(analytics.tenant(t.id().0).is_some());
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
#[must_use]
pub struct OutageBuilder<'e> {
    env: &'e TestEnv,
    product: String,
    from: Option<DateTime<Utc>>,
    end: Option<End>,
    fault: Fault,
}

/// How the outage's end was given.
#[derive(Debug, Clone, Copy)]
enum End {
    Until(DateTime<Utc>),
    Lasting(TimeDelta),
}

impl<'e> OutageBuilder<'e> {
    pub(crate) fn new(env: &'e TestEnv, product: String) -> OutageBuilder<'e> {
        OutageBuilder {
            env,
            product,
            from: None,
            end: None,
            fault: Fault::Status503,
        }
    }

    /// When the product goes down: an instant, or a [`super::Day`] (its 00:00) (default: the
    /// clock's now when `create` runs).
    pub fn from(mut self, at: impl Into<DateTime<Utc>>) -> Self {
        self.from = Some(at.into());
        self
    }

    /// When it answers again (excluded from the outage); or give [`OutageBuilder::lasting`].
    pub fn until(mut self, at: impl Into<DateTime<Utc>>) -> Self {
        self.end = Some(End::Until(at.into()));
        self
    }

    /// How long it is down, from its start; or give [`OutageBuilder::until`].
    pub fn lasting(mut self, length: TimeDelta) -> Self {
        self.end = Some(End::Lasting(length));
        self
    }

    /// How every request in it fails: `status_500`, `status_503`, `timeout` or `reset`
    /// (default: `status_503`).
    pub fn fault(mut self, fault: Fault) -> Self {
        self.fault = fault;
        self
    }

    /// Takes the product's mock down for the window ([`crate::products::ProductMock::outage`]).
    ///
    /// # Errors
    /// [`BuildError::Outage`] without an end, for an empty window or a fault that applies the
    /// write; [`BuildError::Domain`] for a product outside the catalog.
    pub async fn create(self) -> Result<Outage, BuildError> {
        let from = self.from.unwrap_or_else(|| self.env.clock().now());
        let until = match self.end {
            Some(End::Until(at)) => at,
            Some(End::Lasting(length)) => from + length,
            None => return Err(BuildError::OutageWithoutEnd),
        };
        let outage = Outage::new(from, until, self.fault)?;
        self.env.product(&self.product).await?.outage(outage);
        Ok(outage)
    }
}
