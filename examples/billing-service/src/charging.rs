//! Charging and dunning over the database: the charge of finalized invoices, the daily retries
//! of past-due ones, and [`BillingService::run_due_jobs`], which runs what the calendar makes
//! due on the clock's day. Each attempt is one transaction that holds its invoice's row, so
//! that two runs at once attempt an invoice once; what an attempt does is
//! [`dunning::after_attempt`]'s.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;

use crate::Error;
use crate::billing::Currency;
use crate::calendar::{self, Month};
use crate::dunning::{self, Consequence};
use crate::payments::{self, ChargeRequest, Decline};
use crate::service::{
    BillingService, InvoiceId, InvoiceStatus, Payment, SubscriptionId, SubscriptionStatus,
    end_subscription,
};

/// An invoice as an attempt reads it, under its row lock.
#[derive(sqlx::FromRow)]
struct Due {
    subscription_id: SubscriptionId,
    month: NaiveDate,
    #[sqlx(try_from = "String")]
    currency: Currency,
    total: Decimal,
    billing_key: Option<String>,
    attempts: i64,
}

impl BillingService {
    /// Charges every finalized invoice of `month` through the payment provider: attempt 1 of
    /// each. Captured: `paid`; not (no card counts as `no_card`): `past_due`, and its
    /// subscription `past_due`, to be retried by [`BillingService::retry`]. Returns every
    /// payment of the month's invoices; a second run charges nobody again.
    ///
    /// # Errors
    /// The database failed; attempts written before the failure stay written.
    pub async fn charge(&self, month: Month) -> Result<Vec<Payment>, Error> {
        self.charge_finalized("=", month).await?;
        self.payments(month).await
    }

    /// The retry job: attempts once more each `past_due` invoice that has had no attempt today
    /// (in Seoul). Returns the payments it made.
    ///
    /// # Errors
    /// The database failed; attempts written before the failure stay written.
    pub async fn retry(&self) -> Result<Vec<Payment>, Error> {
        let today = calendar::local_day(self.now());
        let candidates: Vec<(InvoiceId, i64, DateTime<Utc>)> = sqlx::query_as(
            "select i.id, count(p.id), max(p.attempted_at) from invoices i \
             join payments p on p.invoice_id = i.id \
             where i.status = 'past_due' group by i.id order by i.id",
        )
        .fetch_all(&self.pool)
        .await?;
        let due = candidates
            .into_iter()
            .filter(|&(_, attempts, last)| {
                let attempts = u8::try_from(attempts).unwrap_or(u8::MAX);
                self.retry_due(attempts, calendar::local_day(last), today)
            })
            .map(|(id, attempts, _)| (id, attempts))
            .collect();
        self.attempt_each(due, InvoiceStatus::PastDue).await
    }

    /// Runs the jobs due on the clock's day (in Seoul), in the platform's order: first the end
    /// of contracts whose term is over, on the 1st the close of the month before, on the [`dunning::CHARGE_DAY`] the charge of every finalized
    /// invoice of earlier months, and every day the retries. Each job does nothing twice, so a
    /// caller moving time day by day calls it once a day, at any instant of it (the platform
    /// runs them at 00:00).
    ///
    /// # Errors
    /// The database failed.
    pub async fn run_due_jobs(&self) -> Result<(), Error> {
        let today = calendar::local_day(self.now());
        let this_month = Month::of(today);
        // As the platform's daily run: contracts whose term is over end first.
        self.end_contract_terms().await?;
        if today == this_month.first_day() {
            self.close_month(this_month.prev()).await?;
        }
        if dunning::is_charge_day(today) {
            self.charge_finalized("<", this_month).await?;
        }
        self.retry().await?;
        Ok(())
    }

    /// Whether the retry job attempts an invoice today ([`dunning::retry_due`]).
    fn retry_due(&self, attempts: u8, last_attempt: NaiveDate, today: NaiveDate) -> bool {
        #[cfg(feature = "flaws")]
        if self.flaw == Some(crate::Flaw::RetrySkipsADay) && attempts == 1 {
            // The flaw: the day after the charge does not count.
            return last_attempt.succ_opt().is_some_and(|next| next < today);
        }
        dunning::retry_due(attempts, last_attempt, today)
    }

    /// Attempt 1 of every finalized invoice whose month compares to `month` by `comparison`
    /// (`=` or `<`); the payments made.
    async fn charge_finalized(
        &self,
        comparison: &'static str,
        month: Month,
    ) -> Result<Vec<Payment>, Error> {
        let due: Vec<InvoiceId> = sqlx::query_scalar(&format!(
            "select id from invoices where month {comparison} $1 and status = 'finalized' \
             order by id"
        ))
        .bind(month.first_day())
        .fetch_all(&self.pool)
        .await?;
        let never_attempted = due.into_iter().map(|id| (id, 0)).collect();
        self.attempt_each(never_attempted, InvoiceStatus::Finalized)
            .await
    }

    /// Attempts each invoice still in `status` with the attempts it had when listed; the
    /// payments made.
    async fn attempt_each(
        &self,
        invoices: Vec<(InvoiceId, i64)>,
        status: InvoiceStatus,
    ) -> Result<Vec<Payment>, Error> {
        let mut made = Vec::with_capacity(invoices.len());
        for (invoice, attempts) in invoices {
            if let Some(payment) = self.attempt(invoice, status, attempts).await? {
                made.push(payment);
            }
        }
        Ok(made)
    }

    /// One attempt at `invoice` if it is still in `status` with `attempts` made, and no other
    /// run holds it (`None` otherwise: a run listing it at the same time attempted it first, so
    /// it is not attempted twice in a day): the charge with the customer's current card, the payment row numbered after
    /// the invoice's earlier attempts, and the consequence for the invoice and subscription.
    async fn attempt(
        &self,
        invoice: InvoiceId,
        status: InvoiceStatus,
        attempts: i64,
    ) -> Result<Option<Payment>, Error> {
        let now = self.now();
        let today = calendar::local_day(now);
        let mut tx = self.pool.begin().await?;
        let due: Option<Due> = sqlx::query_as(
            "select i.subscription_id, i.month, i.currency, i.total, c.billing_key, \
                    (select count(*) from payments p where p.invoice_id = i.id) as attempts \
             from invoices i join customers c on c.id = i.customer_id \
             where i.id = $1 and i.status = $2 \
               and (select count(*) from payments p where p.invoice_id = i.id) = $3 \
             for update of i skip locked",
        )
        .bind(invoice)
        .bind(status.as_str())
        .bind(attempts)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(due) = due else {
            return Ok(None);
        };
        // The count above is of the statement's snapshot: a run that attempted the invoice and
        // committed while this one waited for its row is only seen by a new statement, now that
        // the row is held.
        let attempted: i64 =
            sqlx::query_scalar("select count(*) from payments where invoice_id = $1")
                .bind(invoice)
                .fetch_one(&mut *tx)
                .await?;
        if attempted != attempts {
            return Ok(None);
        }
        let number = u8::try_from(due.attempts + 1).unwrap_or(u8::MAX);
        let idempotency_key = format!("invoice-{invoice}-attempt-{number}");
        let outcome = match due.billing_key {
            Some(billing_key) => {
                let request = ChargeRequest {
                    billing_key,
                    amount: due.total,
                    currency: due.currency,
                    idempotency_key: idempotency_key.clone(),
                    description: format!("invoice {invoice} for {}", Month::of(due.month)),
                };
                payments::charge_once(self.gateway.as_ref(), &request).await
            }
            None => Err(Decline {
                code: "no_card".into(),
            }),
        };
        let (reference, failure_code) = match outcome {
            Ok(capture) => (Some(capture.reference), None),
            Err(decline) => (None, Some(decline.code)),
        };
        let consequence = dunning::after_attempt(number, reference.is_some());
        let payment: Payment = sqlx::query_as::<_, crate::service::PaymentRow>(
            "insert into payments (invoice_id, attempt, attempted_at, amount, outcome, reference, \
             failure_code, idempotency_key) values ($1, $2, $3, $4, $5, $6, $7, $8) \
             returning id, invoice_id, attempt, amount, outcome, reference, failure_code, \
             attempted_at",
        )
        .bind(invoice)
        .bind(i16::from(number))
        .bind(now)
        .bind(due.total)
        .bind(if reference.is_some() {
            "succeeded"
        } else {
            "failed"
        })
        .bind(reference)
        .bind(failure_code)
        .bind(&idempotency_key)
        .fetch_one(&mut *tx)
        .await?
        .into_payment()?;
        let invoice_status = match consequence {
            Consequence::Paid => InvoiceStatus::Paid,
            Consequence::PastDue => InvoiceStatus::PastDue,
            Consequence::Uncollectible => InvoiceStatus::Uncollectible,
        };
        sqlx::query("update invoices set status = $2, paid_at = $3 where id = $1")
            .bind(invoice)
            .bind(invoice_status.as_str())
            .bind((consequence == Consequence::Paid).then_some(now))
            .execute(&mut *tx)
            .await?;
        let subscription: SubscriptionStatus = sqlx::query_scalar::<_, String>(
            "select status from subscriptions where id = $1 for update",
        )
        .bind(due.subscription_id)
        .fetch_one(&mut *tx)
        .await?
        .parse()
        .map_err(crate::service::decode)?;
        let next = match (consequence, subscription) {
            // A subscription cancelled (by hand, or by an earlier invoice) stays cancelled.
            (_, SubscriptionStatus::Cancelled) => None,
            (Consequence::Paid, SubscriptionStatus::PastDue) => Some(SubscriptionStatus::Active),
            (Consequence::PastDue, SubscriptionStatus::Active) => Some(SubscriptionStatus::PastDue),
            (Consequence::Uncollectible, _) => {
                end_subscription(&mut tx, due.subscription_id, today).await?;
                crate::outbox::queue_subscription(&mut tx, due.subscription_id, now).await?;
                None
            }
            _ => None,
        };
        if let Some(next) = next {
            sqlx::query("update subscriptions set status = $2 where id = $1")
                .bind(due.subscription_id)
                .bind(next.as_str())
                .execute(&mut *tx)
                .await?;
            crate::outbox::queue_subscription(&mut tx, due.subscription_id, now).await?;
        }
        tx.commit().await?;
        Ok(Some(payment))
    }
}
