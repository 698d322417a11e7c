//! The executable reference of the platform: its operations over the schema, each checking the
//! rules in the documented order and writing all of its rows in one transaction or none.
//!
//! The pure arithmetic lives in [`crate::billing`]; this module stores and reads what it needs.

mod accounts;
mod assemble;
mod catalog;
mod charge;
mod close;
mod contracts;
mod error;
mod invariants;
mod jobs;
mod subscriptions;
pub mod sync;
mod timeline;
mod usage;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::{PgConnection, PgPool};

pub use accounts::NewUser;
pub use catalog::install;
pub use charge::{Attempt, charge_due, retry_due};
pub use close::{CloseReport, StoredInvoice, close_month};
pub use contracts::{AppliedContract, apply_contract, end_contract_terms};
pub use error::DomainError;
pub use invariants::invariant_violations;
pub use jobs::PlatformJobs;
pub use sync::OutboxRow;
pub use sync::{Drift, DriftKind, Reconciliation, SyncPolicy, SyncReport};
pub use timeline::{Timeline, TimelineAttempt, TimelineInvoice, TimelineSubscription, timeline};
pub use usage::UsageRecord;

use crate::calendar::Calendar;
use crate::model::{Catalog, Currency, Month};

/// The platform over one database. Cheap to clone; every operation takes the instant it happens
/// at (usually the test clock's now).
#[derive(Debug, Clone)]
pub struct Platform {
    pool: PgPool,
}

impl Platform {
    /// The platform over the database behind `pool`.
    pub fn new(pool: PgPool) -> Platform {
        Platform { pool }
    }

    /// The pool it uses.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Installs a catalog (see [`install`]).
    ///
    /// # Errors
    /// The database refused a row.
    pub async fn install_catalog(
        &self,
        catalog: &Catalog,
        at: DateTime<Utc>,
    ) -> Result<(), sqlx::Error> {
        install(&self.pool, catalog, at).await
    }

    /// Finalises `month`: one invoice per subscription with a service day in it.
    ///
    /// # Errors
    /// No catalog is installed, or the database failed.
    pub async fn close_month(
        &self,
        month: Month,
        at: DateTime<Utc>,
    ) -> Result<CloseReport, DomainError> {
        close::close_month(&self.pool, month, at).await
    }

    /// The billing settings in force.
    ///
    /// # Errors
    /// [`DomainError::NoCatalog`] when no catalog is installed, a stored setting the platform
    /// cannot read, or a database error.
    pub async fn settings(&self) -> Result<Settings, DomainError> {
        settings(&mut *self.pool.acquire().await?).await
    }

    /// A tenant's payment timeline (see [`timeline`]).
    ///
    /// # Errors
    /// No catalog is installed, or the database failed.
    pub async fn timeline(&self, tenant: crate::model::TenantId) -> Result<Timeline, DomainError> {
        timeline(&self.pool, tenant).await
    }
}

/// The advisory-lock class that serializes a month's close with the usage written for that
/// month: usage takes it shared, the close exclusive (see [`month_lock`]).
const MONTH_LOCK: i32 = 0x6268_0101;

/// Takes `month`'s lock until the end of the transaction: `shared` for a usage write, exclusive
/// for the close. So a usage write either commits before the close reads the month's usage (and
/// is billed) or starts after the close committed (and is refused with `period_closed`); it is
/// never accepted and then missed.
pub(crate) async fn month_lock(
    conn: &mut PgConnection,
    month: Month,
    shared: bool,
) -> Result<(), sqlx::Error> {
    let key = month.year() * 12 + i32::try_from(month.month()).unwrap_or(0) - 1;
    let sql = if shared {
        "select pg_advisory_xact_lock_shared($1, $2)"
    } else {
        "select pg_advisory_xact_lock($1, $2)"
    };
    sqlx::query(sql)
        .bind(MONTH_LOCK)
        .bind(key)
        .execute(conn)
        .await
        .map(drop)
}

/// Catalog-wide billing settings as stored by [`install`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// Time zone, charge day and retries.
    pub calendar: Calendar,
    /// Tax on each invoice's subtotal.
    pub tax_rate: Decimal,
    /// The default currency of billing accounts.
    pub currency: Currency,
}

/// Reads the settings row; a database without one has no catalog, and nothing to bill.
pub(crate) async fn settings(conn: &mut PgConnection) -> Result<Settings, DomainError> {
    stored_settings(conn).await?.ok_or(DomainError::NoCatalog)
}

/// Reads the settings row, `None` when no catalog is installed.
pub(crate) async fn stored_settings(
    conn: &mut PgConnection,
) -> Result<Option<Settings>, DomainError> {
    let row: Option<(String, Decimal, i16, Currency)> =
        sqlx::query_as("select time_zone, tax_rate, charge_day, currency from platform_settings")
            .fetch_optional(conn)
            .await?;
    let Some((time_zone, tax_rate, charge_day, currency)) = row else {
        return Ok(None);
    };
    let calendar = Calendar::parse(&time_zone, u32::try_from(charge_day).unwrap_or(0))
        .map_err(|e| DomainError::Settings(e.to_string()))?;
    Ok(Some(Settings {
        calendar,
        tax_rate,
        currency,
    }))
}
