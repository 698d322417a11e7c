//! The monthly close: set-based reads of every billable plan period and its usage, the pure
//! [`crate::billing::invoice`] per subscription, and bulk inserts of invoices and lines.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::PgPool;

use super::{Platform, settings};
use crate::billing::{self, Invoice, InvoiceInput, Line, LineKind, PlanPeriod, Usage};
use crate::model::{Currency, InvoiceId, Month, Overage, TenantId, Terms};

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

/// An invoice as stored: what [`billing::invoice`] returned at the close, with its id, status
/// and finalisation instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredInvoice {
    /// Its id (redact it in snapshots).
    pub id: InvoiceId,
    /// When the close finalised it (redact it in snapshots).
    pub finalized_at: DateTime<Utc>,
    /// `finalized`, `paid`, `past_due` or `uncollectible`.
    pub status: String,
    /// The month, lines and amounts.
    #[serde(flatten)]
    pub invoice: Invoice,
}

#[derive(sqlx::FromRow)]
struct PeriodRow {
    billing_id: i64,
    subscription_id: i64,
    tenant_id: i64,
    plan_id: i64,
    plan_key: String,
    currency: String,
    base_fee: Decimal,
    starts_on: NaiveDate,
    ends_on: Option<NaiveDate>,
}

#[derive(sqlx::FromRow)]
struct DetailRow {
    billing_id: i64,
    metric: String,
    included: i64,
    overage_block: Option<i64>,
    overage_price: Option<Decimal>,
}

#[derive(sqlx::FromRow)]
struct HeadRow {
    id: i64,
    finalized_at: DateTime<Utc>,
    period: NaiveDate,
    status: String,
    currency: String,
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
/// The database failed; nothing was written.
pub async fn close_month(
    pool: &PgPool,
    month: Month,
    at: DateTime<Utc>,
) -> Result<CloseReport, sqlx::Error> {
    let mut tx = pool.begin().await?;
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
        "select b.id as billing_id, b.subscription_id, s.tenant_id, c.plan_id, p.key as plan_key, \
                b.currency::text as currency, b.base_fee, b.starts_on, b.ends_on \
         from billings b join subscriptions s on s.id = b.subscription_id \
         join contracts c on c.id = b.contract_id join plans p on p.id = c.plan_id \
         where b.id in ({BILLABLE})"
    ))
    .bind(first)
    .bind(end)
    .fetch_all(&mut *tx)
    .await?;
    let details: Vec<DetailRow> = sqlx::query_as(&format!(
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

    let mut terms: HashMap<i64, Terms> = HashMap::new();
    for DetailRow {
        billing_id: billing,
        metric,
        included,
        overage_block: block,
        overage_price: price,
    } in details
    {
        let t = terms.entry(billing).or_insert_with(|| Terms {
            base_fee: Decimal::ZERO,
            included: BTreeMap::new(),
            overage: BTreeMap::new(),
        });
        t.included.insert(metric.clone(), included.max(0) as u64);
        if let (Some(block), Some(price)) = (block, price) {
            t.overage.insert(
                metric,
                Overage {
                    block: block as u64,
                    price,
                },
            );
        }
    }
    let mut used: HashMap<i64, Vec<(String, u64)>> = HashMap::new();
    for (billing, metric, quantity) in usage {
        used.entry(billing)
            .or_default()
            .push((metric, quantity.max(0) as u64));
    }

    struct Draft {
        tenant: i64,
        currency: Currency,
        periods: Vec<PlanPeriod>,
        usage: Vec<Usage>,
        plan_ids: HashMap<String, i64>,
    }
    let mut drafts: BTreeMap<i64, Draft> = BTreeMap::new();
    for row in periods {
        let currency: Currency = row.currency.parse().unwrap_or(Currency::Krw);
        let draft = drafts.entry(row.subscription_id).or_insert_with(|| Draft {
            tenant: row.tenant_id,
            currency,
            periods: Vec::new(),
            usage: Vec::new(),
            plan_ids: HashMap::new(),
        });
        let mut period_terms = terms.remove(&row.billing_id).unwrap_or(Terms {
            base_fee: Decimal::ZERO,
            included: BTreeMap::new(),
            overage: BTreeMap::new(),
        });
        period_terms.base_fee = row.base_fee;
        // Usage is already summed per period: date it on the period's first day in the month.
        let day = row.starts_on.max(first);
        for (metric, quantity) in used.remove(&row.billing_id).unwrap_or_default() {
            draft.usage.push(Usage {
                day,
                metric,
                quantity,
            });
        }
        draft.plan_ids.insert(row.plan_key.clone(), row.plan_id);
        draft.periods.push(PlanPeriod {
            plan: row.plan_key,
            from: row.starts_on,
            until: row.ends_on,
            terms: period_terms,
        });
    }

    let due_on = month
        .next()
        .first_day()
        .with_day0(settings.charge_day.saturating_sub(1))
        .unwrap_or(month.end());
    let mut inv = InvoiceColumns::default();
    let mut lines = LineColumns::default();
    for (subscription, draft) in &drafts {
        let invoice = billing::invoice(&InvoiceInput {
            month,
            currency: draft.currency,
            tax_rate: settings.tax_rate,
            periods: draft.periods.clone(),
            usage: draft.usage.clone(),
        });
        if !invoice.has_service() {
            continue;
        }
        let index = inv.subscription.len() as i32;
        inv.subscription.push(*subscription);
        inv.tenant.push(draft.tenant);
        inv.status.push(
            if invoice.total.is_zero() {
                "paid"
            } else {
                "finalized"
            }
            .to_owned(),
        );
        inv.currency.push(draft.currency.code().to_owned());
        inv.subtotal.push(invoice.subtotal);
        inv.tax.push(invoice.tax);
        inv.total.push(invoice.total);
        for (position, line) in invoice.lines.iter().enumerate() {
            lines.invoice.push(index);
            lines.position.push(position as i32 + 1);
            lines.kind.push(line.kind.as_str().to_owned());
            lines.plan.push(draft.plan_ids[&line.plan]);
            lines.metric.push(line.metric.clone());
            lines.from.push(line.from);
            lines.until.push(line.until);
            lines.days.push(line.days as i32);
            lines.quantity.push(line.used.map(|u| u as i64));
            lines.included.push(line.included.map(|u| u as i64));
            lines.amount.push(line.amount);
            debug_assert!(line.kind == LineKind::Base || line.metric.is_some());
        }
    }

    let ids: Vec<(i64, i32)> = sqlx::query_as(
        "insert into invoices (subscription_id, tenant_id, period, status, currency, subtotal, tax, \
                               total, due_on, finalized_at, paid_at) \
         select s, t, $1, st, c, sub, tax, tot, $2, $3, case when st = 'paid' then $3 end \
         from unnest($4::bigint[], $5::bigint[], $6::text[], $7::text[], $8::numeric[], $9::numeric[], $10::numeric[]) \
              with ordinality as x(s, t, st, c, sub, tax, tot, n) \
         order by n returning id, 0",
    )
    .bind(first)
    .bind(due_on)
    .bind(at)
    .bind(&inv.subscription)
    .bind(&inv.tenant)
    .bind(&inv.status)
    .bind(&inv.currency)
    .bind(&inv.subtotal)
    .bind(&inv.tax)
    .bind(&inv.total)
    .fetch_all(&mut *tx)
    .await?;
    // `returning` keeps the insertion order of `order by n`; map line indexes to ids.
    let invoice_ids: Vec<i64> = ids.into_iter().map(|(id, _)| id).collect();
    let line_invoice: Vec<i64> = lines
        .invoice
        .iter()
        .map(|&i| invoice_ids[i as usize])
        .collect();
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
        .bind(invoice_ids.len() as i32)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(CloseReport {
        month,
        invoices: invoice_ids.len(),
        already_closed,
    })
}

#[derive(Default)]
struct InvoiceColumns {
    subscription: Vec<i64>,
    tenant: Vec<i64>,
    status: Vec<String>,
    currency: Vec<String>,
    subtotal: Vec<Decimal>,
    tax: Vec<Decimal>,
    total: Vec<Decimal>,
}

#[derive(Default)]
struct LineColumns {
    invoice: Vec<i32>,
    position: Vec<i32>,
    kind: Vec<String>,
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
    /// Every invoice of `tenant`, oldest first, with its lines.
    ///
    /// # Errors
    /// The database failed.
    pub async fn invoices(&self, tenant: TenantId) -> Result<Vec<StoredInvoice>, sqlx::Error> {
        let heads: Vec<HeadRow> = sqlx::query_as(
            "select id, finalized_at, period, status, currency::text as currency, subtotal, tax, total \
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
                let currency: Currency = currency.parse().unwrap_or(Currency::Krw);
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
