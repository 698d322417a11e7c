//! The executable reference of the platform: its operations over the schema, each checking the
//! rules in the documented order and writing all of its rows in one transaction or none.
//!
//! The pure arithmetic lives in [`crate::billing`]; this module stores and reads what it needs.

mod accounts;
mod catalog;
mod close;
mod error;
mod subscriptions;
mod usage;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use sqlx::{PgConnection, PgPool};

pub use accounts::NewUser;
pub use catalog::install;
pub use close::{CloseReport, StoredInvoice, close_month};
pub use error::DomainError;
pub(crate) use subscriptions::{end_subscription, queue_subscription_sync};
pub use usage::UsageRecord;

use crate::model::{Catalog, Month};

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
    /// The database failed.
    pub async fn close_month(
        &self,
        month: Month,
        at: DateTime<Utc>,
    ) -> Result<CloseReport, sqlx::Error> {
        close::close_month(&self.pool, month, at).await
    }

    /// The billing settings in force.
    ///
    /// # Errors
    /// The database failed.
    pub async fn settings(&self) -> Result<Settings, sqlx::Error> {
        settings(&mut *self.pool.acquire().await?).await
    }
}

/// Catalog-wide billing settings as stored (defaults when no catalog was installed).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// The billing time zone.
    pub time_zone: Tz,
    /// Tax on each invoice's subtotal.
    pub tax_rate: Decimal,
    /// The charge day of the month.
    pub charge_day: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            time_zone: chrono_tz::Asia::Seoul,
            tax_rate: Decimal::ZERO,
            charge_day: 5,
        }
    }
}

impl Settings {
    /// The calendar day of `at` in the billing time zone.
    pub fn day_of(&self, at: DateTime<Utc>) -> NaiveDate {
        at.with_timezone(&self.time_zone).date_naive()
    }

    /// 00:00 of `day` in the billing time zone.
    pub fn midnight(&self, day: NaiveDate) -> DateTime<Utc> {
        let local = day.and_hms_opt(0, 0, 0).expect("midnight exists");
        self.time_zone
            .from_local_datetime(&local)
            .earliest()
            .unwrap_or_else(|| self.time_zone.from_utc_datetime(&local))
            .with_timezone(&Utc)
    }
}

/// Reads the settings row, or the defaults.
pub(crate) async fn settings(conn: &mut PgConnection) -> Result<Settings, sqlx::Error> {
    let row: Option<(String, Decimal, i16)> =
        sqlx::query_as("select time_zone, tax_rate, charge_day from platform_settings")
            .fetch_optional(conn)
            .await?;
    Ok(match row {
        None => Settings::default(),
        Some((tz, tax_rate, charge_day)) => Settings {
            time_zone: tz.parse().unwrap_or(chrono_tz::Asia::Seoul),
            tax_rate,
            charge_day: charge_day as u32,
        },
    })
}
