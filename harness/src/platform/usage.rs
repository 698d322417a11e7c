//! Recording usage: a metered quantity on a calendar day, for the subscription in service then.

use chrono::{DateTime, NaiveDate, Utc};

use super::{DomainError, Platform};
use crate::model::{Month, TenantId};

impl Platform {
    /// Records `quantity` units of `metric` used by `tenant` on `day`.
    ///
    /// # Errors
    /// `invalid_quantity`, `period_closed`, `no_active_subscription`, or an unknown reference.
    pub async fn record_usage(
        &self,
        tenant: TenantId,
        metric: &str,
        quantity: i64,
        day: NaiveDate,
        at: DateTime<Utc>,
    ) -> Result<(), DomainError> {
        if quantity <= 0 {
            return Err(DomainError::InvalidQuantity(quantity));
        }
        let mut tx = self.pool.begin().await?;
        let month = Month::of(day);
        let closed: bool =
            sqlx::query_scalar("select exists (select 1 from month_closes where month = $1)")
                .bind(month.first_day())
                .fetch_one(&mut *tx)
                .await?;
        if closed {
            return Err(DomainError::PeriodClosed(month.to_string()));
        }
        let exists: bool =
            sqlx::query_scalar("select exists (select 1 from tenants where id = $1)")
                .bind(tenant)
                .fetch_one(&mut *tx)
                .await?;
        if !exists {
            return Err(DomainError::UnknownTenant(tenant.0));
        }
        let subscription: Option<i64> = sqlx::query_scalar(
            "select id from subscriptions where tenant_id = $1 and started_on <= $2 \
             and (cancelled_on is null or $2 < cancelled_on) order by started_on desc limit 1",
        )
        .bind(tenant)
        .bind(day)
        .fetch_optional(&mut *tx)
        .await?;
        let subscription = subscription.ok_or(DomainError::NoActiveSubscription)?;
        sqlx::query(
            "insert into usage_events (tenant_id, subscription_id, metric, quantity, occurred_on, occurred_at, created_at) \
             values ($1, $2, $3, $4, $5, $6, $6)",
        )
        .bind(tenant)
        .bind(subscription)
        .bind(metric)
        .bind(quantity)
        .bind(day)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
