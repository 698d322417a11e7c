//! Charging and dunning, platform operations over a gateway: the charge job on the charge day,
//! the daily retries, and what each attempt does to the invoice and the subscription (paid and
//! renewed, past due, or uncollectible and cancelled), each written in one transaction.
//!
//! The rules: at the start of the charge day (the 5th by default) every `finalized` invoice with
//! a total above zero is charged to its organization's current card. A success marks it `paid`
//! and renews the subscription; a failure makes both `past_due` and schedules a retry at the
//! start of each of the next three days. When the third retry fails the invoice is
//! `uncollectible` and the subscription is cancelled from that day. Every subscription status
//! change queues a sync event in the same transaction.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::{PgConnection, PgPool};

use super::DomainError;
use super::settings::{Settings, settings};
use super::subscriptions::end_subscription;
use super::sync::queue_change;
use crate::model::{
    CancelReason, Currency, InvoiceId, InvoiceStatus, Month, PaymentOutcome, SubscriptionStatus,
};
use crate::payments::{Approval, ChargeRequest, Gateway, GatewayError};
use crate::products::api::Entity;

/// One charge attempt and its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attempt {
    /// The invoice charged.
    pub invoice: InvoiceId,
    /// 1 for the charge, 2 to 4 for the retries.
    pub attempt: i16,
    /// `succeeded` or `failed`.
    pub outcome: PaymentOutcome,
    /// Why it failed.
    pub failure_code: Option<String>,
}

#[derive(sqlx::FromRow)]
struct Due {
    id: i64,
    subscription_id: i64,
    organization_id: i64,
    period: chrono::NaiveDate,
    currency: Currency,
    total: Decimal,
    status: InvoiceStatus,
    attempts: i64,
}

const DUE: &str = "select i.id, i.subscription_id, t.organization_id, i.period, i.currency, \
            i.total, i.status, (select count(*) from payments p where p.invoice_id = i.id) as attempts \
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
) -> Result<Vec<Attempt>, DomainError> {
    let settings = settings(&mut *pool.acquire().await?).await?;
    let today = settings.calendar.local_day(at);
    if today.day() != settings.calendar.charge_day() {
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

/// The retry job: every day, attempts each `past_due` invoice once more if it has had no attempt
/// today. A `past_due` invoice has attempts left: the failure of its last one makes it
/// `uncollectible`.
///
/// # Errors
/// The database failed; attempts written before the failure stay written.
pub async fn retry_due(
    pool: &PgPool,
    gateway: &dyn Gateway,
    at: DateTime<Utc>,
) -> Result<Vec<Attempt>, DomainError> {
    let settings = settings(&mut *pool.acquire().await?).await?;
    let calendar = settings.calendar;
    let due: Vec<Due> = sqlx::query_as(&format!(
        "{DUE} where i.status = 'past_due' \
           and not exists (select 1 from payments p where p.invoice_id = i.id and p.attempted_at >= $1) \
         order by i.id"
    ))
    .bind(calendar.start_of_day(calendar.local_day(at)))
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
) -> Result<Vec<Attempt>, DomainError> {
    let mut attempts = Vec::with_capacity(due.len());
    for invoice in due {
        // `None`: another job (a task or process running the same job) took this invoice.
        if let Some(attempt) = attempt(pool, gateway, settings, invoice, at).await? {
            attempts.push(attempt);
        }
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

/// One attempt at `invoice`, in one transaction that holds the invoice's row from the check to
/// the commit, so that jobs running at once (tasks or processes) attempt it once: a job that
/// finds the row taken, or already attempted since it listed it, skips it (`None`).
async fn attempt(
    pool: &PgPool,
    gateway: &dyn Gateway,
    settings: &Settings,
    invoice: Due,
    at: DateTime<Utc>,
) -> Result<Option<Attempt>, sqlx::Error> {
    let number = i16::try_from(invoice.attempts + 1).unwrap_or(i16::MAX);
    let key = format!("inv{}-a{number}", invoice.id);
    let mut tx = pool.begin().await?;
    if !still_due(&mut tx, &invoice).await? {
        return Ok(None);
    }
    hold_tenant(&mut tx, &invoice).await?;
    let card = active_card(&mut tx, &invoice).await?;
    let result = charge_card(gateway, &invoice, card.as_ref(), &key).await;
    let answer = answer(&result);
    if !record(&mut tx, &invoice, card.as_ref(), number, &key, &answer, at).await? {
        // Another job wrote this attempt between our check and our insert; the gateway saw the
        // same idempotency key, so nothing was captured twice.
        return Ok(None);
    }
    apply(&mut tx, settings, &invoice, number, result.is_ok(), at).await?;
    tx.commit().await?;
    Ok(Some(Attempt {
        invoice: InvoiceId(invoice.id),
        attempt: number,
        outcome: answer.outcome,
        failure_code: answer.failure,
    }))
}

/// Takes the invoice's row if it is still as listed (same status, same number of attempts) and
/// no other job holds it; `false`: skip it.
async fn still_due(conn: &mut PgConnection, invoice: &Due) -> Result<bool, sqlx::Error> {
    let still_due: Option<i64> = sqlx::query_scalar(
        "select i.id from invoices i where i.id = $1 and i.status = $2 \
           and (select count(*) from payments p where p.invoice_id = i.id) = $3 \
         for update skip locked",
    )
    .bind(invoice.id)
    .bind(invoice.status)
    .bind(invoice.attempts)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(still_due.is_some())
}

/// Holds the invoice's tenant: the attempt may end or renew the subscription, and like every
/// operation that changes one it holds the tenant's row, so usage being recorded for the tenant
/// sees the change or finishes before it.
async fn hold_tenant(conn: &mut PgConnection, invoice: &Due) -> Result<(), sqlx::Error> {
    sqlx::query(
        "select t.id from tenants t join invoices i on i.tenant_id = t.id where i.id = $1 \
         for update of t",
    )
    .bind(invoice.id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The organization's active card: its id and billing key.
async fn active_card(
    conn: &mut PgConnection,
    invoice: &Due,
) -> Result<Option<(i64, String)>, sqlx::Error> {
    sqlx::query_as(
        "select id, billing_key from cards where organization_id = $1 and status = 'active'",
    )
    .bind(invoice.organization_id)
    .fetch_optional(&mut *conn)
    .await
}

/// Charges the invoice's total to `card` under the attempt's idempotency `key`; without a card,
/// a decline `no_card` that the gateway never sees.
async fn charge_card(
    gateway: &dyn Gateway,
    invoice: &Due,
    card: Option<&(i64, String)>,
    key: &str,
) -> Result<Approval, GatewayError> {
    match card {
        None => Err(GatewayError::Declined {
            request_id: String::new(),
            code: "no_card".into(),
        }),
        Some((_, billing_key)) => {
            let request = ChargeRequest {
                billing_key: billing_key.clone(),
                amount: invoice.total,
                currency: invoice.currency,
                idempotency_key: key.to_owned(),
                order_name: format!("{} invoice {}", Month::of(invoice.period), invoice.id),
            };
            charge(gateway, &request).await
        }
    }
}

/// What the gateway answered, as the payment row keeps it.
struct Answer {
    outcome: PaymentOutcome,
    /// The gateway's id of the request, when it gave one.
    request_id: Option<String>,
    approval: Option<String>,
    /// Why it failed: the decline's code, or the error's.
    failure: Option<String>,
}

/// The answer to a charge, from its result.
fn answer(result: &Result<Approval, GatewayError>) -> Answer {
    let outcome = if result.is_ok() {
        PaymentOutcome::Succeeded
    } else {
        PaymentOutcome::Failed
    };
    let (request_id, approval, failure) = match result {
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
    Answer {
        outcome,
        request_id,
        approval,
        failure,
    }
}

/// Writes the attempt's payment row; `false`: another job wrote this attempt first.
async fn record(
    conn: &mut PgConnection,
    invoice: &Due,
    card: Option<&(i64, String)>,
    number: i16,
    key: &str,
    answer: &Answer,
    at: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let written: Option<i64> = sqlx::query_scalar(
        "insert into payments (invoice_id, card_id, attempt, attempted_at, outcome, amount, \
                               gateway_request_id, idempotency_key, approval_number, failure_code) \
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         on conflict do nothing returning id",
    )
    .bind(invoice.id)
    .bind(card.map(|(id, _)| *id))
    .bind(number)
    .bind(at)
    .bind(answer.outcome)
    .bind(invoice.total)
    .bind(&answer.request_id)
    .bind(key)
    .bind(&answer.approval)
    .bind(&answer.failure)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(written.is_some())
}

/// What attempt `number` does to the invoice and its subscription, held for the change: paid
/// renews it, a failure with attempts left makes it past due, the last failure cancels it.
async fn apply(
    conn: &mut PgConnection,
    settings: &Settings,
    invoice: &Due,
    number: i16,
    succeeded: bool,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let last_attempt = i16::try_from(settings.calendar.attempts()).unwrap_or(i16::MAX);
    let today = settings.calendar.local_day(at);
    let subscription_status: SubscriptionStatus =
        sqlx::query_scalar("select status from subscriptions where id = $1 for update")
            .bind(invoice.subscription_id)
            .fetch_one(&mut *conn)
            .await?;
    if succeeded {
        paid(conn, invoice, subscription_status, today, at).await
    } else if number < last_attempt {
        past_due(conn, invoice, subscription_status, at).await
    } else {
        uncollectible(conn, invoice, subscription_status, today, at).await
    }
}

/// A success: the invoice is paid, and a subscription not cancelled is renewed.
async fn paid(
    conn: &mut PgConnection,
    invoice: &Due,
    subscription_status: SubscriptionStatus,
    today: NaiveDate,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query("update invoices set status = $3, paid_at = $2 where id = $1")
        .bind(invoice.id)
        .bind(at)
        .bind(InvoiceStatus::Paid)
        .execute(&mut *conn)
        .await?;
    if subscription_status != SubscriptionStatus::Cancelled {
        // Renewal: active again, and the current period moves on to this month.
        let month = Month::of(today);
        sqlx::query(
            "update subscriptions set status = $5, current_period_start = $2, \
             current_period_end = $3, updated_at = $4 where id = $1",
        )
        .bind(invoice.subscription_id)
        .bind(month.first_day())
        .bind(month.end())
        .bind(at)
        .bind(SubscriptionStatus::Active)
        .execute(&mut *conn)
        .await?;
        queue_change(conn, Entity::Subscription, invoice.subscription_id, at).await?;
    }
    Ok(())
}

/// A failure with attempts left: the invoice is past due, and so is an active subscription;
/// the retry job attempts it again tomorrow.
async fn past_due(
    conn: &mut PgConnection,
    invoice: &Due,
    subscription_status: SubscriptionStatus,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query("update invoices set status = $2 where id = $1")
        .bind(invoice.id)
        .bind(InvoiceStatus::PastDue)
        .execute(&mut *conn)
        .await?;
    if subscription_status == SubscriptionStatus::Active {
        sqlx::query("update subscriptions set status = $3, updated_at = $2 where id = $1")
            .bind(invoice.subscription_id)
            .bind(at)
            .bind(SubscriptionStatus::PastDue)
            .execute(&mut *conn)
            .await?;
        queue_change(conn, Entity::Subscription, invoice.subscription_id, at).await?;
    }
    Ok(())
}

/// The last attempt failed: the invoice is uncollectible, and a subscription not cancelled
/// already is cancelled from `today`.
async fn uncollectible(
    conn: &mut PgConnection,
    invoice: &Due,
    subscription_status: SubscriptionStatus,
    today: NaiveDate,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query("update invoices set status = $2 where id = $1")
        .bind(invoice.id)
        .bind(InvoiceStatus::Uncollectible)
        .execute(&mut *conn)
        .await?;
    if subscription_status != SubscriptionStatus::Cancelled {
        end_subscription(
            conn,
            invoice.subscription_id,
            today,
            CancelReason::PaymentFailed,
            at,
        )
        .await?;
    }
    Ok(())
}
