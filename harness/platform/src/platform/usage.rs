//! Recording usage: metered quantities on calendar days, each for the subscription in service on
//! its day. A batch is checked whole and written in one statement, or not at all.

use chrono::{DateTime, NaiveDate, Utc};

use super::DomainError;
use super::handle::Platform;
use super::month_lock::month_lock;
use crate::model::{Month, TenantId};

type BatchFacts = (
    Option<NaiveDate>,
    bool,
    Vec<i64>,
    Vec<NaiveDate>,
    Vec<Option<NaiveDate>>,
);

/// Units of a metric used on a day, to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRecord {
    /// The calendar day (billing time zone).
    pub day: NaiveDate,
    /// The metric.
    pub metric: String,
    /// Units; must be positive.
    pub quantity: i64,
}

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
        let record = UsageRecord {
            day,
            metric: metric.to_owned(),
            quantity,
        };
        self.record_usage_batch(tenant, std::slice::from_ref(&record), at)
            .await
            .map(drop)
    }

    /// Records many usage events of `tenant` at once: every record is checked as
    /// [`Platform::record_usage`] checks one, and the first broken rule refuses the whole batch.
    /// Returns how many were recorded.
    ///
    /// # Errors
    /// As [`Platform::record_usage`], for the first record that breaks a rule.
    pub async fn record_usage_batch(
        &self,
        tenant: TenantId,
        records: &[UsageRecord],
        at: DateTime<Utc>,
    ) -> Result<usize, DomainError> {
        if let Some(bad) = records.iter().find(|r| r.quantity <= 0) {
            return Err(DomainError::InvalidQuantity(bad.quantity));
        }
        let mut tx = self.pool.begin().await?;
        let mut locked: Vec<Month> = records.iter().map(|r| Month::of(r.day)).collect();
        locked.sort();
        locked.dedup();
        // Before reading whether a month is closed: see `month_lock`.
        for month in locked {
            month_lock(&mut tx, month, true).await?;
        }
        // Shared with other usage, exclusive with a plan change or cancel of the same tenant
        // (they lock its row for update): the subscription read below stays true until commit.
        sqlx::query("select id from tenants where id = $1 for share")
            .bind(tenant)
            .execute(&mut *tx)
            .await?;
        let months: Vec<NaiveDate> = records
            .iter()
            .map(|r| Month::of(r.day).first_day())
            .collect();
        // The rules' facts in one round trip: a closed month among the records', whether the
        // tenant exists, and its subscriptions, newest first.
        let (closed, exists, ids, starts, ends): BatchFacts = sqlx::query_as(
            "select (select min(month) from month_closes where month = any($1)), \
                    exists (select 1 from tenants where id = $2), \
                    array(select id from subscriptions where tenant_id = $2 order by started_on desc, id desc), \
                    array(select started_on from subscriptions where tenant_id = $2 order by started_on desc, id desc), \
                    array(select cancelled_on from subscriptions where tenant_id = $2 order by started_on desc, id desc)",
        )
        .bind(&months)
        .bind(tenant)
        .fetch_one(&mut *tx)
        .await?;
        if let Some(month) = closed {
            return Err(DomainError::PeriodClosed(Month::of(month).to_string()));
        }
        if !exists {
            return Err(DomainError::UnknownTenant(tenant.0));
        }
        let subscriptions: Vec<(i64, NaiveDate, Option<NaiveDate>)> = ids
            .into_iter()
            .zip(starts)
            .zip(ends)
            .map(|((id, start), end)| (id, start, end))
            .collect();
        let mut subscription_ids = Vec::with_capacity(records.len());
        for record in records {
            let serving = subscriptions.iter().find(|(_, from, until)| {
                *from <= record.day && until.is_none_or(|until| record.day < until)
            });
            subscription_ids.push(serving.ok_or(DomainError::NoActiveSubscription)?.0);
        }
        let days: Vec<NaiveDate> = records.iter().map(|r| r.day).collect();
        let metrics: Vec<&str> = records.iter().map(|r| r.metric.as_str()).collect();
        let quantities: Vec<i64> = records.iter().map(|r| r.quantity).collect();
        sqlx::query(
            "insert into usage_events (tenant_id, subscription_id, metric, quantity, occurred_on, occurred_at, created_at) \
             select $1, s, m, q, d, $6, $6 from unnest($2::bigint[], $3::text[], $4::bigint[], $5::date[]) as u(s, m, q, d)",
        )
        .bind(tenant)
        .bind(&subscription_ids)
        .bind(&metrics)
        .bind(&quantities)
        .bind(&days)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(records.len())
    }
}
