//! The catalog-wide billing settings as the platform reads them back: the calendar (time zone,
//! charge day, retries), the tax rate and the default currency.

use rust_decimal::Decimal;
use sqlx::PgConnection;

use super::DomainError;
use super::handle::Platform;
use crate::calendar::Calendar;
use crate::model::Currency;

/// Catalog-wide billing settings as stored by [`super::install`].
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

impl Platform {
    /// The billing settings in force.
    ///
    /// # Errors
    /// [`DomainError::NoCatalog`] when no catalog is installed, a stored setting the platform
    /// cannot read, or a database error.
    pub async fn settings(&self) -> Result<Settings, DomainError> {
        settings(&mut *self.pool.acquire().await?).await
    }
}
