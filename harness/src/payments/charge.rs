//! The charge and retry jobs: one attempt per due invoice, through the gateway, each written in
//! one transaction with the invoice's and the subscription's new status.

use chrono::{DateTime, Datelike, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::PgPool;

use super::gateway::{Approval, ChargeRequest, Gateway, GatewayError};
use crate::model::{Currency, InvoiceId, Month};
use crate::platform::{self, Settings};

/// Attempts per invoice: the charge and three daily retries.
pub(crate) const MAX_ATTEMPTS: i16 = 4;

/// One charge attempt and its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attempt {
    /// The invoice charged.
    pub invoice: InvoiceId,
    /// 1 for the charge, 2 to 4 for the retries.
    pub attempt: i16,
    /// `succeeded` or `failed`.
    pub outcome: &'static str,
    /// Why it failed.
    pub failure_code: Option<String>,
}

#[derive(sqlx::FromRow)]
struct Due {
    id: i64,
    subscription_id: i64,
    organization_id: i64,
    period: chrono::NaiveDate,
    currency: String,
    total: Decimal,
    attempts: i64,
}

const DUE: &str = "select i.id, i.subscription_id, t.organization_id, i.period, i.currency::text as currency, \
            i.total, (select count(*) from payments p where p.invoice_id = i.id) as attempts \
     from invoices i join tenants t on t.id = i.tenant_id";

/// The charge job: on the charge day, attempts every `finalized` invoice with a total above
/// zero. Does nothing on other days.
///
/// # Errors
/// The database failed; attempts written before the failure stay written.
pub async fn charge_due(
    pool: &PgPool,
    gateway: &dyn Gateway,
    at: DateTime<Utc>,
) -> Result<Vec<Attempt>, sqlx::Error> {
    let settings = platform::settings(&mut *pool.acquire().await?).await?;
    let today = settings.day_of(at);
    if today.day() != settings.charge_day {
        return Ok(Vec::new());
    }
    let due: Vec<Due> = sqlx::query_as(&format!(
        "{DUE} where i.status = 'finalized' and i.total > 0 and i.due_on <= $1 order by i.id"
    ))
    .bind(today)
    .fetch_all(pool)
    .await?;
    attempt_all(pool, gateway, &settings, due, at).await
}

/// The retry job: every day, attempts each `past_due` invoice once more if it has attempts left
/// and none today.
///
/// # Errors
/// The database failed; attempts written before the failure stay written.
pub async fn retry_due(
    pool: &PgPool,
    gateway: &dyn Gateway,
    at: DateTime<Utc>,
) -> Result<Vec<Attempt>, sqlx::Error> {
    let settings = platform::settings(&mut *pool.acquire().await?).await?;
    let due: Vec<Due> = sqlx::query_as(&format!(
        "{DUE} where i.status = 'past_due' \
           and (select count(*) from payments p where p.invoice_id = i.id) < $1 \
           and not exists (select 1 from payments p where p.invoice_id = i.id and p.attempted_at >= $2) \
         order by i.id"
    ))
    .bind(i64::from(MAX_ATTEMPTS))
    .bind(settings.midnight(settings.day_of(at)))
    .fetch_all(pool)
    .await?;
    attempt_all(pool, gateway, &settings, due, at).await
}

async fn attempt_all(
    pool: &PgPool,
    gateway: &dyn Gateway,
    settings: &Settings,
    due: Vec<Due>,
    at: DateTime<Utc>,
) -> Result<Vec<Attempt>, sqlx::Error> {
    let mut attempts = Vec::with_capacity(due.len());
    for invoice in due {
        attempts.push(attempt(pool, gateway, settings, invoice, at).await?);
    }
    Ok(attempts)
}

/// Charges through the gateway; a lost reply is answered by asking the gateway about the same
/// idempotency key, so a capture is never made twice.
async fn charge(gateway: &dyn Gateway, request: &ChargeRequest) -> Result<Approval, GatewayError> {
    match gateway.charge(request).await {
        Err(GatewayError::Timeout) => match gateway.find(&request.idempotency_key).await? {
            Some(approval) => Ok(approval),
            None => Err(GatewayError::Timeout),
        },
        other => other,
    }
}

async fn attempt(
    pool: &PgPool,
    gateway: &dyn Gateway,
    settings: &Settings,
    invoice: Due,
    at: DateTime<Utc>,
) -> Result<Attempt, sqlx::Error> {
    let number = invoice.attempts as i16 + 1;
    let key = format!("inv{}-a{number}", invoice.id);
    let card: Option<(i64, String)> = sqlx::query_as(
        "select id, billing_key from cards where organization_id = $1 and status = 'active'",
    )
    .bind(invoice.organization_id)
    .fetch_optional(pool)
    .await?;
    let currency: Currency = invoice.currency.parse().unwrap_or(Currency::Krw);
    let result = match &card {
        None => Err(GatewayError::Declined {
            request_id: String::new(),
            code: "no_card".into(),
        }),
        Some((_, billing_key)) => {
            let request = ChargeRequest {
                billing_key: billing_key.clone(),
                amount: invoice.total,
                currency,
                idempotency_key: key.clone(),
                order_name: format!("{} invoice {}", Month::of(invoice.period), invoice.id),
            };
            charge(gateway, &request).await
        }
    };
    let today = settings.day_of(at);
    let mut tx = pool.begin().await?;
    let (request_id, approval, failure) = match &result {
        Ok(a) => (
            Some(a.request_id.clone()),
            Some(a.approval_number.clone()),
            None,
        ),
        Err(GatewayError::Declined { request_id, code }) => (
            Some(request_id.clone()).filter(|r| !r.is_empty()),
            None,
            Some(code.clone()),
        ),
        Err(e) => (None, None, Some(e.code().to_owned())),
    };
    sqlx::query(
        "insert into payments (invoice_id, card_id, attempt, attempted_at, outcome, amount, \
                               gateway_request_id, idempotency_key, approval_number, failure_code) \
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(invoice.id)
    .bind(card.as_ref().map(|(id, _)| *id))
    .bind(number)
    .bind(at)
    .bind(if result.is_ok() {
        "succeeded"
    } else {
        "failed"
    })
    .bind(invoice.total)
    .bind(&request_id)
    .bind(&key)
    .bind(&approval)
    .bind(&failure)
    .execute(&mut *tx)
    .await?;
    let subscription_status: String =
        sqlx::query_scalar("select status from subscriptions where id = $1 for update")
            .bind(invoice.subscription_id)
            .fetch_one(&mut *tx)
            .await?;
    let cancelled = subscription_status == "cancelled";
    if result.is_ok() {
        sqlx::query("update invoices set status = 'paid', paid_at = $2 where id = $1")
            .bind(invoice.id)
            .bind(at)
            .execute(&mut *tx)
            .await?;
        if !cancelled {
            // Renewal: active again, and the current period moves on to this month.
            let month = Month::of(today);
            sqlx::query(
                "update subscriptions set status = 'active', current_period_start = $2, \
                 current_period_end = $3, updated_at = $4 where id = $1",
            )
            .bind(invoice.subscription_id)
            .bind(month.first_day())
            .bind(month.end())
            .bind(at)
            .execute(&mut *tx)
            .await?;
            platform::queue_subscription_sync(&mut tx, invoice.subscription_id, at).await?;
        }
    } else if number < MAX_ATTEMPTS {
        sqlx::query("update invoices set status = 'past_due' where id = $1")
            .bind(invoice.id)
            .execute(&mut *tx)
            .await?;
        if subscription_status == "active" {
            sqlx::query(
                "update subscriptions set status = 'past_due', updated_at = $2 where id = $1",
            )
            .bind(invoice.subscription_id)
            .bind(at)
            .execute(&mut *tx)
            .await?;
            platform::queue_subscription_sync(&mut tx, invoice.subscription_id, at).await?;
        }
    } else {
        sqlx::query("update invoices set status = 'uncollectible' where id = $1")
            .bind(invoice.id)
            .execute(&mut *tx)
            .await?;
        if !cancelled {
            platform::end_subscription(
                &mut tx,
                invoice.subscription_id,
                today,
                "payment_failed",
                at,
            )
            .await?;
        }
    }
    tx.commit().await?;
    Ok(Attempt {
        invoice: InvoiceId(invoice.id),
        attempt: number,
        outcome: if result.is_ok() {
            "succeeded"
        } else {
            "failed"
        },
        failure_code: failure,
    })
}
