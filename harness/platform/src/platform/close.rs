//! The monthly close, the I/O half: set-based reads of every billable plan period, its terms and
//! its usage, the pure [`super::assemble`] of the invoices, and bulk inserts of invoices and
//! lines.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::PgPool;

use super::DomainError;
use super::assemble::{self, Closing, DetailRow, PeriodRow, UsedRow};
use super::handle::Platform;
use super::month_lock::month_lock;
use super::settings::settings;
use crate::billing::{Invoice, Line, LineKind};
use crate::model::{Currency, InvoiceId, InvoiceStatus, Month, Overage, TenantId};

/// What one close did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CloseReport {
    /// The month closed.
    pub month: Month,
    /// Invoices finalised (zero-total ones are paid at once).
    pub invoices: usize,
    /// Whether the month had been closed before: then only subscriptions not yet invoiced for
    /// it (written into the past of a shared database by a later seed) are invoiced.
    pub already_closed: bool,
}

/// An invoice as stored: what [`crate::billing::invoice`] returned at the close, with its id, status
/// and finalisation instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredInvoice {
    /// Its id (redact it in snapshots).
    pub id: InvoiceId,
    /// When the close finalised it (redact it in snapshots).
    pub finalized_at: DateTime<Utc>,
    /// `finalized`, `paid`, `past_due` or `uncollectible`.
    pub status: InvoiceStatus,
    /// The month, lines and amounts.
    #[serde(flatten)]
    pub invoice: Invoice,
}

#[derive(sqlx::FromRow)]
struct HeadRow {
    id: i64,
    finalized_at: DateTime<Utc>,
    period: NaiveDate,
    status: InvoiceStatus,
    currency: Currency,
    subtotal: Decimal,
    tax: Decimal,
    total: Decimal,
}

impl LineRow {
    fn to_line(&self, currency: Currency) -> Line {
        let used = self.quantity.map(|q| q.max(0) as u64);
        let included = self.included.map(|q| q.max(0) as u64);
        Line {
            kind: if self.kind == "base" {
                LineKind::Base
            } else {
                LineKind::Overage
            },
            plan: self.plan.clone(),
            metric: self.metric.clone(),
            from: self.period_from,
            until: self.period_until,
            days: self.days.max(0) as u32,
            used,
            included,
            overage: used.zip(included).map(|(u, i)| u.saturating_sub(i)),
            amount: currency.exact(self.amount),
        }
    }
}

#[derive(sqlx::FromRow)]
struct LineRow {
    invoice_id: i64,
    kind: String,
    plan: String,
    metric: Option<String>,
    period_from: NaiveDate,
    period_until: NaiveDate,
    days: i32,
    quantity: Option<i64>,
    included: Option<i64>,
    amount: Decimal,
}

/// A billing detail as read: billing, metric, included, overage block and price.
type DetailTuple = (i64, String, i64, Option<i64>, Option<Decimal>);

/// The billings (plan periods) with at least one day in the month, of subscriptions not yet
/// invoiced for it. `$1` is the month's first day, `$2` the next month's.
const BILLABLE: &str = "select b.id from billings b \
     where b.starts_on < $2 and (b.ends_on is null or (b.ends_on > $1 and b.ends_on > b.starts_on)) \
       and not exists (select 1 from invoices i where i.subscription_id = b.subscription_id and i.period = $1)";

/// Finalises `month` on the database behind `pool`: one invoice per subscription with a
/// service day in it, `paid` at once when its total is zero. Closing a month again invoices only
/// what it has not invoiced yet: never two invoices for one subscription and month.
///
/// # Errors
/// No catalog is installed, or the database failed; nothing was written.
pub async fn close_month(
    pool: &PgPool,
    month: Month,
    at: DateTime<Utc>,
) -> Result<CloseReport, DomainError> {
    let mut tx = pool.begin().await?;
    month_lock(&mut tx, month, false).await?;
    let first = month.first_day();
    let end = month.end();
    let fresh: Option<NaiveDate> = sqlx::query_scalar(
        "insert into month_closes (month, closed_at, invoices) values ($1, $2, 0) \
         on conflict (month) do nothing returning month",
    )
    .bind(first)
    .bind(at)
    .fetch_optional(&mut *tx)
    .await?;
    let already_closed = fresh.is_none();
    let settings = settings(&mut tx).await?;

    let periods: Vec<PeriodRow> = sqlx::query_as(&format!(
        "select b.id as billing, b.subscription_id as subscription, s.tenant_id as tenant, \
                c.plan_id, p.key as plan, b.currency, b.base_fee, b.starts_on, b.ends_on \
         from billings b join subscriptions s on s.id = b.subscription_id \
         join contracts c on c.id = b.contract_id join plans p on p.id = c.plan_id \
         where b.id in ({BILLABLE})"
    ))
    .bind(first)
    .bind(end)
    .fetch_all(&mut *tx)
    .await?;
    // The invoices' foreign keys lock each subscription, then its tenant, against a key change.
    // A plan change or cancel locks the tenant first and then its subscription: inserting in that
    // order deadlocks with one. So the close takes its tenants first, in id order, as they do.
    let tenants: Vec<i64> = periods.iter().map(|p| p.tenant).collect();
    sqlx::query("select id from tenants where id = any($1) order by id for key share")
        .bind(&tenants)
        .execute(&mut *tx)
        .await?;
    let details: Vec<DetailTuple> = sqlx::query_as(&format!(
        "select billing_id, metric, included, overage_block, overage_price from billing_details \
             where billing_id in ({BILLABLE})"
    ))
    .bind(first)
    .bind(end)
    .fetch_all(&mut *tx)
    .await?;
    // Usage summed per plan period and metric: the day of each event picks its period.
    let usage: Vec<(i64, String, i64)> = sqlx::query_as(&format!(
        "select b.id, u.metric, sum(u.quantity)::bigint from usage_events u \
         join billings b on b.subscription_id = u.subscription_id and u.occurred_on >= b.starts_on \
              and (b.ends_on is null or u.occurred_on < b.ends_on) \
         where u.occurred_on >= $1 and u.occurred_on < $2 and b.id in ({BILLABLE}) \
         group by b.id, u.metric"
    ))
    .bind(first)
    .bind(end)
    .fetch_all(&mut *tx)
    .await?;

    let closings = assemble::assemble(
        month,
        settings.tax_rate,
        periods,
        details
            .into_iter()
            .map(|(billing, metric, included, block, price)| DetailRow {
                billing,
                metric,
                included: unsigned(included),
                overage: block.zip(price).map(|(block, price)| Overage {
                    block: unsigned(block),
                    price,
                }),
            })
            .collect(),
        usage
            .into_iter()
            .map(|(billing, metric, quantity)| UsedRow {
                billing,
                metric,
                quantity: unsigned(quantity),
            })
            .collect(),
    );
    let count = store(
        &mut tx,
        month,
        settings.calendar.charge_date(month),
        at,
        &closings,
    )
    .await?;
    tx.commit().await?;
    Ok(CloseReport {
        month,
        invoices: count,
        already_closed,
    })
}

/// A count or quantity the schema keeps non-negative.
fn unsigned(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Inserts the invoices and their lines in two statements; returns how many invoices.
async fn store(
    tx: &mut sqlx::PgConnection,
    month: Month,
    due_on: NaiveDate,
    at: DateTime<Utc>,
    closings: &[Closing],
) -> Result<usize, sqlx::Error> {
    let first = month.first_day();
    let mut inv = InvoiceColumns::default();
    let mut lines = LineColumns::default();
    for (index, closing) in closings.iter().enumerate() {
        let invoice = &closing.invoice;
        inv.subscription.push(closing.subscription);
        inv.tenant.push(closing.tenant);
        inv.status.push(closing.status);
        inv.currency.push(invoice.currency);
        inv.subtotal.push(invoice.subtotal);
        inv.tax.push(invoice.tax);
        inv.total.push(invoice.total);
        for (position, line) in invoice.lines.iter().enumerate() {
            lines.invoice.push(index);
            lines
                .position
                .push(i32::try_from(position + 1).unwrap_or(i32::MAX));
            lines.kind.push(line.kind.as_str());
            lines.plan.push(
                closing
                    .plan_ids
                    .get(&line.plan)
                    .copied()
                    .unwrap_or_default(),
            );
            lines.metric.push(line.metric.clone());
            lines.from.push(line.from);
            lines.until.push(line.until);
            lines
                .days
                .push(i32::try_from(line.days).unwrap_or(i32::MAX));
            lines.quantity.push(line.used.map(signed));
            lines.included.push(line.included.map(signed));
            lines.amount.push(line.amount);
            debug_assert!(line.kind == LineKind::Base || line.metric.is_some());
        }
    }

    let invoice_ids: Vec<i64> = sqlx::query_scalar(
        "insert into invoices (subscription_id, tenant_id, period, status, currency, subtotal, tax, \
                               total, due_on, finalized_at, paid_at) \
         select s, t, $1, st, c, sub, tax, tot, $2, $3, case when st = 'paid' then $3 end \
         from unnest($4::bigint[], $5::bigint[], $6::text[], $7::text[], $8::numeric[], $9::numeric[], $10::numeric[]) \
              with ordinality as x(s, t, st, c, sub, tax, tot, n) \
         order by n returning id",
    )
    .bind(first)
    .bind(due_on)
    .bind(at)
    .bind(&inv.subscription)
    .bind(&inv.tenant)
    .bind(inv.status.iter().map(|s| s.as_str()).collect::<Vec<_>>())
    .bind(inv.currency.iter().map(|c| c.code()).collect::<Vec<_>>())
    .bind(&inv.subtotal)
    .bind(&inv.tax)
    .bind(&inv.total)
    .fetch_all(&mut *tx)
    .await?;
    // `returning` keeps the insertion order of `order by n`; map line indexes to ids.
    let line_invoice: Vec<i64> = lines.invoice.iter().map(|&i| invoice_ids[i]).collect();
    sqlx::query(
        "insert into invoice_lines (invoice_id, position, kind, plan_id, metric, period_from, \
                                    period_until, days, quantity, included, amount) \
         select * from unnest($1::bigint[], $2::int[], $3::text[], $4::bigint[], $5::text[], \
                              $6::date[], $7::date[], $8::int[], $9::bigint[], $10::bigint[], $11::numeric[])",
    )
    .bind(&line_invoice)
    .bind(&lines.position)
    .bind(&lines.kind)
    .bind(&lines.plan)
    .bind(&lines.metric)
    .bind(&lines.from)
    .bind(&lines.until)
    .bind(&lines.days)
    .bind(&lines.quantity)
    .bind(&lines.included)
    .bind(&lines.amount)
    .execute(&mut *tx)
    .await?;
    sqlx::query("update month_closes set invoices = invoices + $2 where month = $1")
        .bind(first)
        .bind(i32::try_from(invoice_ids.len()).unwrap_or(i32::MAX))
        .execute(&mut *tx)
        .await?;
    Ok(invoice_ids.len())
}

/// A quantity as the schema's `bigint`.
fn signed(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[derive(Default)]
struct InvoiceColumns {
    subscription: Vec<i64>,
    tenant: Vec<i64>,
    status: Vec<InvoiceStatus>,
    currency: Vec<Currency>,
    subtotal: Vec<Decimal>,
    tax: Vec<Decimal>,
    total: Vec<Decimal>,
}

#[derive(Default)]
struct LineColumns {
    invoice: Vec<usize>,
    position: Vec<i32>,
    kind: Vec<&'static str>,
    plan: Vec<i64>,
    metric: Vec<Option<String>>,
    from: Vec<NaiveDate>,
    until: Vec<NaiveDate>,
    days: Vec<i32>,
    quantity: Vec<Option<i64>>,
    included: Vec<Option<i64>>,
    amount: Vec<Decimal>,
}

impl Platform {
    /// Finalises `month`: one invoice per subscription with a service day in it.
    ///
    /// # Errors
    /// No catalog is installed, or the database failed.
    pub async fn close_month(
        &self,
        month: Month,
        at: DateTime<Utc>,
    ) -> Result<CloseReport, DomainError> {
        close_month(&self.pool, month, at).await
    }

    /// Every invoice of `tenant`, oldest first, with its lines.
    ///
    /// # Errors
    /// The database failed.
    pub async fn invoices(&self, tenant: TenantId) -> Result<Vec<StoredInvoice>, sqlx::Error> {
        let heads: Vec<HeadRow> = sqlx::query_as(
            "select id, finalized_at, period, status, currency, subtotal, tax, total \
             from invoices \
             where tenant_id = $1 order by period, id",
        )
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?;
        let rows: Vec<LineRow> =
            sqlx::query_as(
                "select l.invoice_id, l.kind, p.key as plan, l.metric, l.period_from, l.period_until, \
                        coalesce(l.days, 0) as days, l.quantity, l.included, l.amount \
                 from invoice_lines l join invoices i on i.id = l.invoice_id join plans p on p.id = l.plan_id \
                 where i.tenant_id = $1 order by l.invoice_id, l.position",
            )
            .bind(tenant)
            .fetch_all(&self.pool)
            .await?;
        Ok(heads
            .into_iter()
            .map(|head| {
                let HeadRow {
                    id,
                    finalized_at,
                    period,
                    status,
                    currency,
                    subtotal,
                    tax,
                    total,
                } = head;
                StoredInvoice {
                    id: InvoiceId(id),
                    finalized_at,
                    status,
                    invoice: Invoice {
                        month: Month::of(period),
                        currency,
                        lines: rows
                            .iter()
                            .filter(|r| r.invoice_id == id)
                            .map(|r| r.to_line(currency))
                            .collect(),
                        subtotal: currency.exact(subtotal),
                        tax: currency.exact(tax),
                        total: currency.exact(total),
                    },
                }
            })
            .collect())
    }
}
