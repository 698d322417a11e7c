//! The service's operations over its database. Each one reads "now" from the injected clock
//! once, runs in one transaction, and writes everything or nothing; a refusal is an [`Error`]
//! with a stable code.
//!
//! Usage and the monthly close meet on an advisory lock per month: usage holds it shared and
//! checks that its month is open, the close holds it exclusively while it writes the month's
//! invoices, so accepted usage is always billed and late usage is refused with `period_closed`.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};

pub use crate::ids::{CustomerId, InvoiceId, OrganizationId, SubscriptionId, UserId};

use crate::Error;
use crate::billing::{self, Currency, Line, LineKind, Plan, PlanPeriod, Usage};
use crate::calendar::{self, Month};
use crate::clock::Clock;
use crate::outbox::{self, Delivery, DeliveryPolicy};
use crate::payments::PaymentGateway;

/// Korean VAT, the default tax rate: 10%.
pub const VAT: Decimal = Decimal::from_parts(1, 0, 0, false, 1);

/// The first key of the service's advisory locks: `'e' 'x'`.
const LOCK_CLASS: i32 = 0x6578;

/// The billing service: a database, a clock, a payment provider and a tax rate.
#[derive(Debug, Clone)]
pub struct BillingService {
    pub(crate) pool: PgPool,
    clock: Arc<dyn Clock>,
    pub(crate) gateway: Arc<dyn PaymentGateway>,
    tax_rate: Decimal,
    pub(crate) delivery: Delivery,
    #[cfg(feature = "flaws")]
    pub(crate) flaw: Option<crate::Flaw>,
}

/// A customer to create.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct NewCustomer {
    /// Their name.
    pub name: String,
    /// Their e-mail address, unique.
    pub email: String,
    /// The payment provider's key for their card, if they registered one.
    #[serde(default)]
    pub billing_key: Option<String>,
    /// The product their account is for (`None`: any); only its plans can be subscribed to.
    #[serde(default)]
    pub product: Option<String>,
    /// The organization the account belongs to (`None`: none). A customer with a product and
    /// an organization is a tenant of that product, which is synced its users, the tenant and
    /// its subscription.
    #[serde(default)]
    pub organization: Option<OrganizationId>,
}

/// A customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Customer {
    /// Id.
    pub id: CustomerId,
    /// Name.
    pub name: String,
    /// E-mail address.
    pub email: String,
    /// Whether a card is registered (the billing key itself is never shown).
    pub has_card: bool,
    /// When the customer was created.
    pub created_at: DateTime<Utc>,
}

/// A subscription and its plan periods.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Subscription {
    /// Id.
    pub id: SubscriptionId,
    /// Whose.
    pub customer_id: CustomerId,
    /// The first day of service.
    pub started_on: NaiveDate,
    /// `active`, `past_due` while an invoice is in dunning, or `cancelled`.
    pub status: SubscriptionStatus,
    /// The day it was cancelled (by hand, or by dunning), not billed itself.
    pub cancelled_on: Option<NaiveDate>,
    /// Its plans, oldest first; the last is current unless cancelled.
    pub periods: Vec<Period>,
}

/// The days `[from, until)` a subscription spent on one plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Period {
    /// The plan's key.
    pub plan: String,
    /// First day on it.
    pub from: NaiveDate,
    /// First day no longer on it; `None` while current.
    pub until: Option<NaiveDate>,
}

/// A usage report.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct NewUsage {
    /// The metric, which the subscription's plan must meter.
    pub metric: String,
    /// Units, at least 1.
    pub quantity: i64,
    /// When the usage happened (default: now); its Seoul day is the day billed.
    #[serde(default)]
    pub occurred_at: Option<DateTime<Utc>>,
}

/// A recorded usage report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct UsageEvent {
    /// Id.
    pub id: i64,
    /// Whose.
    pub subscription_id: SubscriptionId,
    /// The metric.
    pub metric: String,
    /// Units.
    pub quantity: i64,
    /// The Seoul day it is billed on.
    pub day: NaiveDate,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
}

/// Where an invoice stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceStatus {
    /// Written at the close; waiting for the charge.
    Finalized,
    /// Paid (a total of zero is paid at the close).
    Paid,
    /// An attempt failed and attempts are left: retried daily.
    PastDue,
    /// The last attempt failed: no more attempts; the subscription was cancelled.
    Uncollectible,
}

/// Where a subscription stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    /// In service and paid up (or not charged yet).
    Active,
    /// In service, with an invoice in dunning.
    PastDue,
    /// Cancelled by hand or after an uncollectible invoice.
    Cancelled,
}

/// A charge attempt's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PaymentOutcome {
    /// Captured.
    Succeeded,
    /// Not captured; see the failure code.
    Failed,
}

macro_rules! text_enum {
    ($name:ident { $($variant:ident = $text:literal),+ }) => {
        impl $name {
            /// The text stored in the database.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl FromStr for $name {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!("unknown {} {other:?}", stringify!($name))),
                }
            }
        }
    };
}

text_enum!(InvoiceStatus {
    Finalized = "finalized",
    Paid = "paid",
    PastDue = "past_due",
    Uncollectible = "uncollectible"
});
text_enum!(SubscriptionStatus {
    Active = "active",
    PastDue = "past_due",
    Cancelled = "cancelled"
});
text_enum!(PaymentOutcome { Succeeded = "succeeded", Failed = "failed" });

/// A stored invoice with its lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Invoice {
    /// Id.
    pub id: InvoiceId,
    /// The subscription billed.
    pub subscription_id: SubscriptionId,
    /// Its customer.
    pub customer_id: CustomerId,
    /// The month billed.
    pub month: Month,
    /// Where it stands.
    pub status: InvoiceStatus,
    /// The currency of its amounts: its subscription's.
    pub currency: Currency,
    /// Sum of the lines.
    pub subtotal: Decimal,
    /// Tax on the subtotal.
    pub tax: Decimal,
    /// Subtotal plus tax.
    pub total: Decimal,
    /// When the month was closed.
    pub closed_at: DateTime<Utc>,
    /// When it was paid.
    pub paid_at: Option<DateTime<Utc>>,
    /// Base and overage lines, in order.
    pub lines: Vec<Line>,
}

/// A charge attempt of an invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Payment {
    /// Id.
    pub id: i64,
    /// The invoice charged.
    pub invoice_id: InvoiceId,
    /// 1 for the charge on the charge day, 2 to 4 for the daily retries.
    pub attempt: u8,
    /// The amount asked.
    pub amount: Decimal,
    /// Captured or not.
    pub outcome: PaymentOutcome,
    /// The provider's id of the capture.
    pub reference: Option<String>,
    /// Why it was not captured.
    pub failure_code: Option<String>,
    /// When it was attempted.
    pub attempted_at: DateTime<Utc>,
}

impl BillingService {
    /// The service over `pool` (migrated with [`crate::MIGRATOR`]), reading time from `clock`
    /// and charging through `gateway`, at the [`VAT`] rate.
    pub fn new(
        pool: PgPool,
        clock: Arc<dyn Clock>,
        gateway: Arc<dyn PaymentGateway>,
    ) -> BillingService {
        BillingService {
            pool,
            clock,
            gateway,
            tax_rate: VAT,
            delivery: Delivery::new(DeliveryPolicy::default()),
            #[cfg(feature = "flaws")]
            flaw: None,
        }
    }

    /// The same service delivering product sync under `policy` (default:
    /// [`crate::sync::DeliveryPolicy::default`]).
    #[must_use]
    pub fn with_delivery_policy(mut self, policy: DeliveryPolicy) -> BillingService {
        self.delivery = Delivery::new(policy);
        self
    }

    /// The same service with a deliberate `flaw` in its rules (feature `flaws` only), for
    /// conformance tests that must catch it.
    #[cfg(feature = "flaws")]
    #[must_use]
    pub fn with_flaw(mut self, flaw: crate::Flaw) -> BillingService {
        self.flaw = Some(flaw);
        self
    }

    /// The days a month's fees and quotas are prorated over: its own.
    fn proration_days(&self, month: Month) -> u32 {
        #[cfg(feature = "flaws")]
        if self.flaw == Some(crate::Flaw::ProrateBy30Days) {
            return 30;
        }
        month.days()
    }

    /// The same service taxing invoices at `rate` (default [`VAT`]).
    #[must_use]
    pub fn with_tax_rate(mut self, rate: Decimal) -> BillingService {
        self.tax_rate = rate;
        self
    }

    /// The tax rate invoices are written with.
    pub fn tax_rate(&self) -> Decimal {
        self.tax_rate
    }

    /// The clock's instant.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Creates a customer; a tenant (with a product and an organization) is queued for its
    /// product: the organization's users, then the tenant.
    ///
    /// # Errors
    /// `invalid` for an empty name or an address without `@`, `email_taken`, or the database
    /// refused the row (no such organization, say).
    pub async fn create_customer(&self, new: &NewCustomer) -> Result<Customer, Error> {
        if new.name.trim().is_empty() || !new.email.contains('@') {
            return Err(Error::Invalid(
                "a customer needs a name and an e-mail address".into(),
            ));
        }
        let now = self.now();
        let mut tx = self.pool.begin().await?;
        let customer: Customer = sqlx::query_as(
            "insert into customers (name, email, billing_key, product, organization_id, created_at) \
             values ($1, $2, $3, $4, $5, $6) on conflict (email) do nothing \
             returning id, name, email, billing_key is not null as has_card, created_at",
        )
        .bind(new.name.trim())
        .bind(&new.email)
        .bind(&new.billing_key)
        .bind(&new.product)
        .bind(new.organization)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| Error::EmailTaken(new.email.clone()))?;
        outbox::queue_tenant(&mut tx, customer.id, now).await?;
        tx.commit().await?;
        Ok(customer)
    }

    /// Replaces a customer's card with `billing_key` (`None`: removes it). The next charge
    /// attempt, a retry of a past-due invoice included, uses the new card.
    ///
    /// # Errors
    /// `no_customer`.
    pub async fn set_card(
        &self,
        customer: CustomerId,
        billing_key: Option<String>,
    ) -> Result<Customer, Error> {
        sqlx::query_as(
            "update customers set billing_key = $2 where id = $1 \
             returning id, name, email, billing_key is not null as has_card, created_at",
        )
        .bind(customer)
        .bind(billing_key)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(Error::NoCustomer(customer))
    }

    /// Adds a plan to the price list, or changes it (invoices already written keep their
    /// amounts; months closed later use the new prices).
    ///
    /// # Errors
    /// `invalid` for a negative amount or quota, an amount finer than its currency's minor unit
    /// (a fraction of a won, of a cent), or a block of fewer than 1 unit.
    pub async fn put_plan(&self, plan: &Plan) -> Result<(), Error> {
        plan.check().map_err(Error::Invalid)?;
        let mut conn = self.pool.acquire().await?;
        if !write_plan(&mut conn, plan, None).await? {
            return Err(Error::Invalid(format!(
                "plan {} is a contract's: it changes with its contract only",
                plan.key
            )));
        }
        Ok(())
    }

    /// The price list, by key (contracts' plans are not on it).
    ///
    /// # Errors
    /// The database failed.
    pub async fn plans(&self) -> Result<Vec<Plan>, Error> {
        Ok(
            sqlx::query_as("select * from plans where base_key is null order by key")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Subscribes a customer to a plan from today.
    ///
    /// # Errors
    /// `no_customer`, `no_plan`, `already_subscribed`, `plan_product_mismatch` for a plan of
    /// another product than the account's, and `card_required` for a paid plan without a card.
    pub async fn subscribe(&self, customer: CustomerId, plan: &str) -> Result<Subscription, Error> {
        let now = self.now();
        let today = calendar::local_day(now);
        let mut tx = self.pool.begin().await?;
        lock_customer(&mut tx, customer).await?;
        let plan = price_list_plan(&mut tx, plan).await?;
        let live: Option<i64> = sqlx::query_scalar(
            "select id from subscriptions where customer_id = $1 and cancelled_on is null",
        )
        .bind(customer)
        .fetch_optional(&mut *tx)
        .await?;
        if live.is_some() {
            return Err(Error::AlreadySubscribed(customer));
        }
        check_product(&mut tx, customer, &plan).await?;
        check_card(&mut tx, customer, &plan).await?;
        let id = start_subscription(&mut tx, customer, &plan, today, now).await?;
        outbox::queue_subscription(&mut tx, id, now).await?;
        tx.commit().await?;
        self.subscription(id).await
    }

    /// Moves a subscription to another plan from today: the current plan's period ends today
    /// and the new one starts today, so the month is split between them.
    ///
    /// # Errors
    /// `no_subscription`, `cancelled`, `no_plan`, `plan_product_mismatch` for a plan of another
    /// product than the account's, `currency_mismatch` for a plan in another currency than the
    /// subscription's, `same_plan`, `plan_change_limit` when the subscription changed plan
    /// today already (subscribing does not count), and `card_required` for a paid plan without
    /// a card.
    pub async fn change_plan(
        &self,
        subscription: SubscriptionId,
        plan: &str,
    ) -> Result<Subscription, Error> {
        let now = self.now();
        let today = calendar::local_day(now);
        let mut tx = self.pool.begin().await?;
        let (customer, has) = lock_live(&mut tx, subscription).await?;
        let plan = price_list_plan(&mut tx, plan).await?;
        check_product(&mut tx, customer, &plan).await?;
        check_currency(subscription, has, &plan)?;
        let current: String = sqlx::query_scalar(
            "select plan_key from plan_periods where subscription_id = $1 and ends_on is null",
        )
        .bind(subscription)
        .fetch_one(&mut *tx)
        .await?;
        if current == plan.key {
            return Err(Error::SamePlan(subscription, current));
        }
        check_change_limit(&mut tx, subscription, today).await?;
        check_card(&mut tx, customer, &plan).await?;
        move_subscription(&mut tx, subscription, &plan.key, today, now).await?;
        outbox::queue_subscription(&mut tx, subscription, now).await?;
        tx.commit().await?;
        self.subscription(subscription).await
    }

    /// Cancels a subscription from today: today is not billed.
    ///
    /// # Errors
    /// `no_subscription`, `cancelled`.
    pub async fn cancel(&self, subscription: SubscriptionId) -> Result<Subscription, Error> {
        let now = self.now();
        let today = calendar::local_day(now);
        let mut tx = self.pool.begin().await?;
        lock_live(&mut tx, subscription).await?;
        end_subscription(&mut tx, subscription, today).await?;
        outbox::queue_subscription(&mut tx, subscription, now).await?;
        tx.commit().await?;
        self.subscription(subscription).await
    }

    /// Records usage, billed on the Seoul day it occurred (default: now).
    ///
    /// # Errors
    /// `invalid` (no units, or a time in the future), `period_closed`, `no_subscription`,
    /// `not_in_service` on that day, `unknown_metric` for a metric its plan does not meter.
    pub async fn record_usage(
        &self,
        subscription: SubscriptionId,
        usage: &NewUsage,
    ) -> Result<UsageEvent, Error> {
        let now = self.now();
        let at = usage.occurred_at.unwrap_or(now);
        if usage.quantity < 1 {
            return Err(Error::Invalid("usage must be at least 1 unit".into()));
        }
        if at > now {
            return Err(Error::Invalid(format!(
                "usage cannot occur in the future ({at})"
            )));
        }
        let day = calendar::local_day(at);
        let month = Month::of(day);
        let mut tx = self.pool.begin().await?;
        sqlx::query("select pg_advisory_xact_lock_shared($1, $2)")
            .bind(LOCK_CLASS)
            .bind(month_key(month))
            .execute(&mut *tx)
            .await?;
        let closed: bool =
            sqlx::query_scalar("select exists (select 1 from closed_months where month = $1)")
                .bind(month.first_day())
                .fetch_one(&mut *tx)
                .await?;
        if closed {
            return Err(Error::PeriodClosed { day, month });
        }
        // The plan the subscription was on that day, if it was in service.
        let on_day: Option<(Option<String>, Option<String>)> = sqlx::query_as(
            "select p.plan_key, pl.metric from subscriptions s \
             left join plan_periods p on p.subscription_id = s.id \
                 and p.starts_on <= $2 and (p.ends_on is null or p.ends_on > $2) \
             left join plans pl on pl.key = p.plan_key \
             where s.id = $1 for share of s",
        )
        .bind(subscription)
        .bind(day)
        .fetch_optional(&mut *tx)
        .await?;
        let (Some(plan), Some(meters)) = on_day.ok_or(Error::NoSubscription(subscription))? else {
            return Err(Error::NotInService(subscription, day));
        };
        if meters != usage.metric {
            return Err(Error::UnknownMetric {
                plan,
                meters,
                metric: usage.metric.clone(),
            });
        }
        let event = sqlx::query_as(
            "insert into usage_events (subscription_id, metric, quantity, occurred_on, recorded_at) \
             values ($1, $2, $3, $4, $5) \
             returning id, subscription_id, metric, quantity, occurred_on as day, recorded_at",
        )
        .bind(subscription)
        .bind(&usage.metric)
        .bind(usage.quantity)
        .bind(day)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(event)
    }

    /// Closes `month` once it has ended in Seoul: writes the invoice of every subscription
    /// served in it ([`billing::draft_invoice`]) and refuses later usage for it. Closing a
    /// closed month writes nothing and returns its invoices.
    ///
    /// # Errors
    /// `month_not_over`.
    pub async fn close_month(&self, month: Month) -> Result<Vec<Invoice>, Error> {
        let now = self.now();
        if now < calendar::start_of_day(month.end()) {
            return Err(Error::MonthNotOver(month));
        }
        let mut tx = self.pool.begin().await?;
        sqlx::query("select pg_advisory_xact_lock($1, $2)")
            .bind(LOCK_CLASS)
            .bind(month_key(month))
            .execute(&mut *tx)
            .await?;
        let newly_closed: Option<NaiveDate> = sqlx::query_scalar(
            "insert into closed_months (month, closed_at) values ($1, $2) \
             on conflict do nothing returning month",
        )
        .bind(month.first_day())
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        if newly_closed.is_some() {
            let days = self.proration_days(month);
            write_invoices(&mut tx, month, days, self.tax_rate, now).await?;
        }
        tx.commit().await?;
        self.read_invoices("i.month = $1", month.first_day()).await
    }

    /// A subscription with its plan periods.
    ///
    /// # Errors
    /// `no_subscription`.
    pub async fn subscription(&self, id: SubscriptionId) -> Result<Subscription, Error> {
        let (customer_id, started_on, status, cancelled_on): (
            CustomerId,
            NaiveDate,
            String,
            Option<NaiveDate>,
        ) = sqlx::query_as(
            "select customer_id, started_on, status, cancelled_on from subscriptions where id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(Error::NoSubscription(id))?;
        let periods = sqlx::query_as(
            "select plan_key as plan, starts_on as from, ends_on as until from plan_periods \
             where subscription_id = $1 and (ends_on is null or ends_on > starts_on) \
             order by starts_on, id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        Ok(Subscription {
            id,
            customer_id,
            started_on,
            status: status.parse().map_err(decode)?,
            cancelled_on,
            periods,
        })
    }

    /// A customer's invoices, oldest month first.
    ///
    /// # Errors
    /// `no_customer`.
    pub async fn invoices(&self, customer: CustomerId) -> Result<Vec<Invoice>, Error> {
        sqlx::query_scalar::<_, i64>("select id from customers where id = $1")
            .bind(customer)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(Error::NoCustomer(customer))?;
        self.read_invoices("i.customer_id = $1", customer.0).await
    }

    /// The charge attempts of `month`'s invoices.
    ///
    /// # Errors
    /// The database failed.
    pub async fn payments(&self, month: Month) -> Result<Vec<Payment>, Error> {
        let rows: Vec<PaymentRow> = sqlx::query_as(
            "select p.id, p.invoice_id, p.attempt, p.amount, p.outcome, p.reference, p.failure_code, \
             p.attempted_at from payments p join invoices i on i.id = p.invoice_id \
             where i.month = $1 order by p.id",
        )
        .bind(month.first_day())
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(PaymentRow::into_payment).collect()
    }

    /// The invoices matching `filter` (SQL over `invoices i`, with `$1` bound to `value`).
    async fn read_invoices<T>(&self, filter: &str, value: T) -> Result<Vec<Invoice>, Error>
    where
        T: for<'q> sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send,
    {
        let rows: Vec<InvoiceRow> = sqlx::query_as(&format!(
            "select i.id, i.subscription_id, i.customer_id, i.month, i.status, i.currency, \
             i.subtotal, \
             i.tax, i.total, i.closed_at, i.paid_at from invoices i where {filter} \
             order by i.month, i.id"
        ))
        .bind(value)
        .fetch_all(&self.pool)
        .await?;
        let ids: Vec<i64> = rows.iter().map(|r| r.id.0).collect();
        let lines: Vec<LineRow> = sqlx::query_as(
            "select invoice_id, kind, plan_key, metric, period_from, period_until, days, used, \
             included, overage, amount from invoice_lines where invoice_id = any($1) \
             order by invoice_id, position",
        )
        .bind(&ids)
        .fetch_all(&self.pool)
        .await?;
        let mut by_invoice: BTreeMap<InvoiceId, Vec<Line>> = BTreeMap::new();
        for line in lines {
            by_invoice
                .entry(line.invoice_id)
                .or_default()
                .push(line.into_line()?);
        }
        rows.into_iter()
            .map(|row| {
                let lines = by_invoice.remove(&row.id).unwrap_or_default();
                row.into_invoice(lines)
            })
            .collect()
    }
}

/// Locks a customer's row, refusing an unknown customer: two operations on one customer's
/// subscriptions at once see each other.
pub(crate) async fn lock_customer(
    conn: &mut PgConnection,
    customer: CustomerId,
) -> Result<(), Error> {
    sqlx::query_scalar::<_, i64>("select id from customers where id = $1 for update")
        .bind(customer)
        .fetch_optional(conn)
        .await?
        .ok_or(Error::NoCustomer(customer))
        .map(drop)
}

/// The plan of the price list with this key: a contract's plan is no one else's to take.
pub(crate) async fn price_list_plan(conn: &mut PgConnection, key: &str) -> Result<Plan, Error> {
    sqlx::query_as("select * from plans where key = $1 and base_key is null")
        .bind(key)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| Error::NoPlan(key.to_owned()))
}

/// Adds `plan` (a contract's when `base` names its base plan), or changes a plan of the price
/// list with its key; false, writing nothing, when the key is a contract's plan.
pub(crate) async fn write_plan(
    conn: &mut PgConnection,
    plan: &Plan,
    base: Option<&str>,
) -> Result<bool, Error> {
    let currency = plan.currency;
    let written = sqlx::query(
        "insert into plans (key, name, currency, monthly_fee, metric, included, block_size, \
         block_price, product, base_key) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         on conflict (key) do update set name = excluded.name, currency = excluded.currency, \
         product = excluded.product, \
         monthly_fee = excluded.monthly_fee, metric = excluded.metric, \
         included = excluded.included, block_size = excluded.block_size, \
         block_price = excluded.block_price \
         where plans.base_key is null and excluded.base_key is null",
    )
    .bind(&plan.key)
    .bind(&plan.name)
    .bind(currency.as_str())
    .bind(currency.exact(plan.monthly_fee))
    .bind(&plan.metric)
    .bind(plan.included)
    .bind(plan.block_size)
    .bind(plan.block_price.map(|p| currency.exact(p)))
    .bind(&plan.product)
    .bind(base)
    .execute(conn)
    .await?;
    Ok(written.rows_affected() == 1)
}

/// A plan for one product is refused to an account for another.
pub(crate) async fn check_product(
    conn: &mut PgConnection,
    customer: CustomerId,
    plan: &Plan,
) -> Result<(), Error> {
    let account: Option<String> = sqlx::query_scalar("select product from customers where id = $1")
        .bind(customer)
        .fetch_one(conn)
        .await?;
    match (account, &plan.product) {
        (Some(account), Some(product)) if &account != product => Err(Error::PlanProductMismatch {
            customer,
            customer_product: account,
            plan: plan.key.clone(),
            plan_product: product.clone(),
        }),
        _ => Ok(()),
    }
}

/// A subscription keeps the currency it started in (`has`): a plan in another is refused.
pub(crate) fn check_currency(
    subscription: SubscriptionId,
    has: Currency,
    plan: &Plan,
) -> Result<(), Error> {
    if plan.currency == has {
        return Ok(());
    }
    Err(Error::CurrencyMismatch {
        subscription,
        has,
        plan: plan.key.clone(),
        asked: plan.currency,
    })
}

/// A plan with a monthly fee needs a card on file.
pub(crate) async fn check_card(
    conn: &mut PgConnection,
    customer: CustomerId,
    plan: &Plan,
) -> Result<(), Error> {
    let has_card: bool =
        sqlx::query_scalar("select billing_key is not null from customers where id = $1")
            .bind(customer)
            .fetch_one(conn)
            .await?;
    if plan.monthly_fee > Decimal::ZERO && !has_card {
        return Err(Error::CardRequired(customer, plan.key.clone()));
    }
    Ok(())
}

/// One plan change a day: a period that ended `today` was ended by a change (a cancel leaves
/// nothing live). Subscribing does not count, so a change on the first day is allowed.
pub(crate) async fn check_change_limit(
    conn: &mut PgConnection,
    subscription: SubscriptionId,
    today: NaiveDate,
) -> Result<(), Error> {
    let changed_today: bool = sqlx::query_scalar(
        "select exists (select 1 from plan_periods where subscription_id = $1 and ends_on = $2)",
    )
    .bind(subscription)
    .bind(today)
    .fetch_one(conn)
    .await?;
    if changed_today {
        return Err(Error::PlanChangeLimit(subscription, today));
    }
    Ok(())
}

/// Starts a subscription of `customer` on `plan` from `today`, in the plan's currency.
pub(crate) async fn start_subscription(
    conn: &mut PgConnection,
    customer: CustomerId,
    plan: &Plan,
    today: NaiveDate,
    now: DateTime<Utc>,
) -> Result<SubscriptionId, Error> {
    let id: SubscriptionId = sqlx::query_scalar(
        "insert into subscriptions (customer_id, started_on, status, currency, created_at) \
         values ($1, $2, 'active', $3, $4) returning id",
    )
    .bind(customer)
    .bind(today)
    .bind(plan.currency.as_str())
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    open_period(conn, id, &plan.key, today, now).await?;
    Ok(id)
}

/// Moves `subscription` to `plan` from `today`: its open period ends today and the plan's
/// starts today. The caller holds the subscription's row.
pub(crate) async fn move_subscription(
    conn: &mut PgConnection,
    subscription: SubscriptionId,
    plan: &str,
    today: NaiveDate,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    sqlx::query(
        "update plan_periods set ends_on = $2 where subscription_id = $1 and ends_on is null",
    )
    .bind(subscription)
    .bind(today)
    .execute(&mut *conn)
    .await?;
    open_period(conn, subscription, plan, today, now).await
}

/// Locks a subscription's row, refusing an unknown or cancelled one; its customer and currency.
pub(crate) async fn lock_live(
    conn: &mut PgConnection,
    id: SubscriptionId,
) -> Result<(CustomerId, Currency), Error> {
    let (customer, cancelled_on, currency): (CustomerId, Option<NaiveDate>, String) =
        sqlx::query_as(
            "select customer_id, cancelled_on, currency from subscriptions where id = $1 for update",
        )
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or(Error::NoSubscription(id))?;
    match cancelled_on {
        Some(_) => Err(Error::Cancelled(id)),
        None => Ok((customer, currency.parse().map_err(decode)?)),
    }
}

/// Ends `subscription` from `day`: cancelled, and its open plan period ends that day, so the
/// day itself is not billed. The caller holds the subscription's row.
pub(crate) async fn end_subscription(
    conn: &mut PgConnection,
    subscription: SubscriptionId,
    day: NaiveDate,
) -> Result<(), Error> {
    sqlx::query(
        "update subscriptions set status = 'cancelled', cancelled_on = greatest($2, started_on) \
         where id = $1",
    )
    .bind(subscription)
    .bind(day)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "update plan_periods set ends_on = greatest($2, starts_on) \
         where subscription_id = $1 and ends_on is null",
    )
    .bind(subscription)
    .bind(day)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn open_period(
    conn: &mut PgConnection,
    subscription: SubscriptionId,
    plan: &str,
    from: NaiveDate,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    sqlx::query(
        "insert into plan_periods (subscription_id, plan_key, starts_on, created_at) \
         values ($1, $2, $3, $4)",
    )
    .bind(subscription)
    .bind(plan)
    .bind(from)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// The second key of a month's advisory lock.
fn month_key(month: Month) -> i32 {
    let first = month.first_day();
    first.year() * 12 + i32::try_from(first.month()).unwrap_or(0)
}

/// A plan period with the plan's current prices, as the close reads it.
#[derive(sqlx::FromRow)]
struct PeriodRow {
    subscription_id: SubscriptionId,
    customer_id: CustomerId,
    #[sqlx(try_from = "String")]
    invoice_currency: Currency,
    starts_on: NaiveDate,
    ends_on: Option<NaiveDate>,
    #[sqlx(flatten)]
    plan: Plan,
}

/// Writes the invoices of `month`, which the caller has just marked closed, prorating over
/// `days_in_month`.
async fn write_invoices(
    conn: &mut PgConnection,
    month: Month,
    days_in_month: u32,
    tax_rate: Decimal,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let (first, end) = (month.first_day(), month.end());
    let periods: Vec<PeriodRow> = sqlx::query_as(
        "select p.subscription_id, s.customer_id, s.currency as invoice_currency, p.starts_on, \
                p.ends_on, pl.* \
         from plan_periods p join subscriptions s on s.id = p.subscription_id \
         join plans pl on pl.key = p.plan_key \
         where p.starts_on < $2 and (p.ends_on is null or p.ends_on > $1) \
         order by p.subscription_id, p.starts_on",
    )
    .bind(first)
    .bind(end)
    .fetch_all(&mut *conn)
    .await?;
    let usage: Vec<(SubscriptionId, NaiveDate, String, i64)> = sqlx::query_as(
        "select subscription_id, occurred_on, metric, sum(quantity)::bigint from usage_events \
         where occurred_on >= $1 and occurred_on < $2 group by 1, 2, 3 order by 1, 2, 3",
    )
    .bind(first)
    .bind(end)
    .fetch_all(&mut *conn)
    .await?;
    let mut subscriptions: BTreeMap<SubscriptionId, (CustomerId, Currency, Vec<PlanPeriod>)> =
        BTreeMap::new();
    for row in periods {
        subscriptions
            .entry(row.subscription_id)
            .or_insert_with(|| (row.customer_id, row.invoice_currency, Vec::new()))
            .2
            .push(PlanPeriod {
                plan: row.plan,
                from: row.starts_on,
                until: row.ends_on,
            });
    }
    let mut used: BTreeMap<SubscriptionId, Vec<Usage>> = BTreeMap::new();
    for (subscription, day, metric, quantity) in usage {
        used.entry(subscription).or_default().push(Usage {
            day,
            metric,
            quantity: u64::try_from(quantity).unwrap_or(0),
        });
    }
    for (subscription, (customer, currency, periods)) in subscriptions {
        let usage = used.remove(&subscription).unwrap_or_default();
        let draft =
            billing::prorated_draft(month, days_in_month, currency, &periods, &usage, tax_rate);
        if draft.lines.is_empty() {
            continue;
        }
        let paid = draft.total.is_zero();
        let status = if paid {
            InvoiceStatus::Paid
        } else {
            InvoiceStatus::Finalized
        };
        let invoice: i64 = sqlx::query_scalar(
            "insert into invoices (subscription_id, customer_id, month, status, currency, \
             subtotal, tax, total, closed_at, paid_at) \
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) returning id",
        )
        .bind(subscription)
        .bind(customer)
        .bind(first)
        .bind(status.as_str())
        .bind(currency.as_str())
        .bind(draft.subtotal)
        .bind(draft.tax)
        .bind(draft.total)
        .bind(now)
        .bind(paid.then_some(now))
        .fetch_one(&mut *conn)
        .await?;
        for (position, line) in (1_i32..).zip(&draft.lines) {
            let units = |n: Option<u64>| n.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
            sqlx::query(
                "insert into invoice_lines (invoice_id, position, kind, plan_key, metric, \
                 period_from, period_until, days, used, included, overage, amount) \
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            )
            .bind(invoice)
            .bind(position)
            .bind(line.kind.as_str())
            .bind(&line.plan)
            .bind(&line.metric)
            .bind(line.from)
            .bind(line.until)
            .bind(i32::try_from(line.days).unwrap_or(i32::MAX))
            .bind(units(line.used))
            .bind(units(line.included))
            .bind(units(line.overage))
            .bind(line.amount)
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

#[derive(sqlx::FromRow)]
struct InvoiceRow {
    id: InvoiceId,
    subscription_id: SubscriptionId,
    customer_id: CustomerId,
    month: NaiveDate,
    status: String,
    currency: String,
    subtotal: Decimal,
    tax: Decimal,
    total: Decimal,
    closed_at: DateTime<Utc>,
    paid_at: Option<DateTime<Utc>>,
}

impl InvoiceRow {
    fn into_invoice(self, mut lines: Vec<Line>) -> Result<Invoice, Error> {
        // Postgres keeps `0.00` as written, but a zero decodes without its decimals.
        let currency: Currency = self.currency.parse().map_err(decode)?;
        for line in &mut lines {
            line.amount = currency.exact(line.amount);
        }
        Ok(Invoice {
            id: self.id,
            subscription_id: self.subscription_id,
            customer_id: self.customer_id,
            month: Month::of(self.month),
            status: self.status.parse().map_err(decode)?,
            currency,
            subtotal: currency.exact(self.subtotal),
            tax: currency.exact(self.tax),
            total: currency.exact(self.total),
            closed_at: self.closed_at,
            paid_at: self.paid_at,
            lines,
        })
    }
}

#[derive(sqlx::FromRow)]
struct LineRow {
    invoice_id: InvoiceId,
    kind: String,
    plan_key: String,
    metric: Option<String>,
    period_from: NaiveDate,
    period_until: NaiveDate,
    days: i32,
    used: Option<i64>,
    included: Option<i64>,
    overage: Option<i64>,
    amount: Decimal,
}

impl LineRow {
    fn into_line(self) -> Result<Line, Error> {
        let kind = match self.kind.as_str() {
            "base" => LineKind::Base,
            "overage" => LineKind::Overage,
            other => return Err(decode(format!("unknown line kind {other:?}"))),
        };
        let units = |n: Option<i64>| n.map(|n| u64::try_from(n).unwrap_or(0));
        Ok(Line {
            kind,
            plan: self.plan_key,
            metric: self.metric,
            from: self.period_from,
            until: self.period_until,
            days: u32::try_from(self.days).unwrap_or(0),
            used: units(self.used),
            included: units(self.included),
            overage: units(self.overage),
            amount: self.amount,
        })
    }
}

/// A payment as stored.
#[derive(sqlx::FromRow)]
pub(crate) struct PaymentRow {
    id: i64,
    invoice_id: InvoiceId,
    attempt: i16,
    amount: Decimal,
    outcome: String,
    reference: Option<String>,
    failure_code: Option<String>,
    attempted_at: DateTime<Utc>,
}

impl PaymentRow {
    /// The payment, its texts parsed.
    pub(crate) fn into_payment(self) -> Result<Payment, Error> {
        Ok(Payment {
            id: self.id,
            invoice_id: self.invoice_id,
            attempt: u8::try_from(self.attempt).map_err(|e| decode(e.to_string()))?,
            amount: self.amount,
            outcome: self.outcome.parse().map_err(decode)?,
            reference: self.reference,
            failure_code: self.failure_code,
            attempted_at: self.attempted_at,
        })
    }
}

/// A stored value the schema's checks should have kept out.
pub(crate) fn decode(reason: String) -> Error {
    Error::Database(sqlx::Error::Decode(reason.into()))
}
