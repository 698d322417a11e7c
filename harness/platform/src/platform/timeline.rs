//! A tenant's payment timeline: invoices, every charge attempt, and where the subscription ended
//! up, for snapshots and reports.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::PgPool;

use super::DomainError;
use super::handle::Platform;
use super::settings::settings;
use crate::model::{
    CancelReason, Currency, InvoiceStatus, Month, PaymentOutcome, SubscriptionStatus, TenantId,
};

/// What happened to a tenant's money.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Timeline {
    /// Every invoice: month, total, status.
    pub invoices: Vec<TimelineInvoice>,
    /// Every attempt, in order.
    pub attempts: Vec<TimelineAttempt>,
    /// The tenant's last subscription.
    pub subscription: Option<TimelineSubscription>,
}

/// An invoice in a timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimelineInvoice {
    /// The month billed.
    pub period: Month,
    /// Its total.
    #[serde(with = "rust_decimal::serde::str")]
    pub total: Decimal,
    /// Its status now.
    pub status: InvoiceStatus,
}

/// A charge attempt in a timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimelineAttempt {
    /// The month of the invoice charged.
    pub period: Month,
    /// The day (billing time zone).
    pub on: NaiveDate,
    /// 1 to 4.
    pub attempt: i16,
    /// The amount asked of the card, in the invoice's currency.
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
    /// `succeeded` or `failed`.
    pub outcome: PaymentOutcome,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_code: Option<String>,
    /// The card's last four digits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card: Option<String>,
}

/// A subscription's state in a timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimelineSubscription {
    /// Its plan.
    pub plan: String,
    /// `active`, `past_due` or `cancelled`.
    pub status: SubscriptionStatus,
    /// The first day no longer served.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancelled_on: Option<NaiveDate>,
    /// Why it was cancelled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<CancelReason>,
}

#[derive(sqlx::FromRow)]
struct AttemptRow {
    period: NaiveDate,
    attempted_at: chrono::DateTime<chrono::Utc>,
    attempt: i16,
    amount: Decimal,
    currency: Currency,
    outcome: PaymentOutcome,
    failure_code: Option<String>,
    card: Option<String>,
}

/// The payment timeline of `tenant`.
///
/// # Errors
/// The database failed.
pub async fn timeline(pool: &PgPool, tenant: TenantId) -> Result<Timeline, DomainError> {
    let calendar = settings(&mut *pool.acquire().await?).await?.calendar;
    let invoices: Vec<(NaiveDate, Decimal, InvoiceStatus, Currency)> = sqlx::query_as(
        "select period, total, status, currency from invoices where tenant_id = $1 order by period, id",
    )
    .bind(tenant)
    .fetch_all(pool)
    .await?;
    let attempts: Vec<AttemptRow> =
        sqlx::query_as(
            "select i.period, p.attempted_at, p.attempt, p.amount, i.currency::text as currency, \
                    p.outcome, p.failure_code, \
                    c.number_last4::text as card \
             from payments p join invoices i on i.id = p.invoice_id left join cards c on c.id = p.card_id \
             where i.tenant_id = $1 order by p.attempted_at, p.id",
        )
        .bind(tenant)
        .fetch_all(pool)
        .await?;
    type SubscriptionRow = (
        String,
        SubscriptionStatus,
        Option<NaiveDate>,
        Option<CancelReason>,
    );
    let subscription: Option<SubscriptionRow> = sqlx::query_as(
        "select p.key, s.status, s.cancelled_on, s.cancel_reason from subscriptions s \
         join plans p on p.id = s.plan_id where s.tenant_id = $1 order by s.id desc limit 1",
    )
    .bind(tenant)
    .fetch_optional(pool)
    .await?;
    Ok(Timeline {
        invoices: invoices
            .into_iter()
            .map(|(period, total, status, currency)| TimelineInvoice {
                period: Month::of(period),
                total: currency.exact(total),
                status,
            })
            .collect(),
        attempts: attempts
            .into_iter()
            .map(|a| TimelineAttempt {
                period: Month::of(a.period),
                on: calendar.local_day(a.attempted_at),
                attempt: a.attempt,
                amount: a.currency.exact(a.amount),
                outcome: a.outcome,
                failure_code: a.failure_code,
                card: a.card,
            })
            .collect(),
        subscription: subscription.map(|(plan, status, cancelled_on, cancel_reason)| {
            TimelineSubscription {
                plan,
                status,
                cancelled_on,
                cancel_reason,
            }
        }),
    })
}

impl Platform {
    /// A tenant's payment timeline (see [`timeline`]).
    ///
    /// # Errors
    /// No catalog is installed, or the database failed.
    pub async fn timeline(&self, tenant: TenantId) -> Result<Timeline, DomainError> {
        timeline(&self.pool, tenant).await
    }
}
