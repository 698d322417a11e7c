//! Subscribe, change plan and cancel: each plan period is one contract (limits) and one billing
//! (prices), opened and closed together, so the six tables QA used to shift by hand always agree.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use sqlx::PgConnection;

use super::DomainError;
use super::handle::Platform;
use super::settings::settings;
use crate::model::{CancelReason, Currency, Month, SubscriptionId, SubscriptionStatus, TenantId};
use crate::products::api::Entity;

/// A product, by id and by key (the key names it in errors).
pub(super) struct ProductRow {
    pub(super) id: i64,
    pub(super) key: String,
}

pub(super) struct TenantRow {
    pub(super) org: i64,
    pub(super) product: ProductRow,
}

#[derive(sqlx::FromRow)]
struct SubscribeContext {
    product_id: i64,
    product: String,
    plan_id: Option<i64>,
    plan_product_id: Option<i64>,
    plan_product: Option<String>,
    base_fee: Option<Decimal>,
    currency: Option<Currency>,
    live: bool,
    has_card: bool,
}

pub(super) struct PlanRow {
    pub(super) id: i64,
    pub(super) product_id: i64,
    pub(super) product: String,
    pub(super) base_fee: Decimal,
    pub(super) currency: Currency,
}

/// A tenant's live subscription, as the plan-change rules need it.
#[derive(sqlx::FromRow)]
pub(super) struct LiveSubscription {
    pub(super) id: i64,
    pub(super) plan_id: i64,
    pub(super) last_plan_change_at: Option<DateTime<Utc>>,
    /// Its plan's currency, which is every one of its billings' (see [`check_currency`]).
    pub(super) currency: Currency,
}

/// Locks the tenant's row until the end of the transaction, in a statement of its own, so that
/// the reads after it see what a concurrent subscribe, change or cancel of the same tenant
/// committed: operations on one tenant run one after the other, and their rules (one live
/// subscription, one change a day) hold under concurrency.
pub(super) async fn lock_tenant(
    conn: &mut PgConnection,
    tenant: TenantId,
) -> Result<(), DomainError> {
    let found: Option<i64> = sqlx::query_scalar("select id from tenants where id = $1 for update")
        .bind(tenant)
        .fetch_optional(conn)
        .await?;
    found.map(drop).ok_or(DomainError::UnknownTenant(tenant.0))
}

pub(super) async fn tenant(
    conn: &mut PgConnection,
    tenant: TenantId,
) -> Result<TenantRow, DomainError> {
    let row: Option<(i64, i64, String)> = sqlx::query_as(
        "select t.organization_id, t.product_id, p.key from tenants t \
         join products p on p.id = t.product_id where t.id = $1",
    )
    .bind(tenant)
    .fetch_optional(conn)
    .await?;
    let (org, id, key) = row.ok_or(DomainError::UnknownTenant(tenant.0))?;
    Ok(TenantRow {
        org,
        product: ProductRow { id, key },
    })
}

pub(super) async fn plan(conn: &mut PgConnection, key: &str) -> Result<PlanRow, DomainError> {
    let row: Option<(i64, i64, String, Decimal, Currency)> = sqlx::query_as(
        "select pl.id, pl.product_id, p.key, pl.base_fee, pl.currency from plans pl \
         join products p on p.id = pl.product_id where pl.key = $1 and not pl.is_custom",
    )
    .bind(key)
    .fetch_optional(conn)
    .await?;
    let (id, product_id, product, base_fee, currency) =
        row.ok_or_else(|| DomainError::UnknownPlan(key.to_owned()))?;
    Ok(PlanRow {
        id,
        product_id,
        product,
        base_fee,
        currency,
    })
}

/// The plan must be one of the tenant's product (`tenant_product`).
pub(super) fn check_product(
    plan: &PlanRow,
    key: &str,
    tenant_product: &ProductRow,
) -> Result<(), DomainError> {
    if plan.product_id == tenant_product.id {
        Ok(())
    } else {
        Err(DomainError::PlanProductMismatch {
            plan: key.to_owned(),
            plan_product: plan.product.clone(),
            tenant_product: tenant_product.key.clone(),
        })
    }
}

/// A subscription stays in the currency it started in: one invoice bills all of its plan periods
/// of a month, and amounts of two currencies cannot be added up. A move to a plan of another
/// currency (a plan change or a contract) is refused; a new subscription may take any.
pub(super) fn check_currency(
    plan: &PlanRow,
    key: &str,
    live: &LiveSubscription,
) -> Result<(), DomainError> {
    if plan.currency == live.currency {
        Ok(())
    } else {
        Err(DomainError::CurrencyMismatch {
            plan: key.to_owned(),
            plan_currency: plan.currency,
            subscription_currency: live.currency,
        })
    }
}

pub(super) async fn check_card(
    conn: &mut PgConnection,
    plan: &PlanRow,
    org: i64,
) -> Result<(), DomainError> {
    if plan.base_fee <= Decimal::ZERO {
        return Ok(());
    }
    let has_card: bool = sqlx::query_scalar(
        "select exists (select 1 from cards where organization_id = $1 and status = 'active')",
    )
    .bind(org)
    .fetch_one(conn)
    .await?;
    if has_card {
        Ok(())
    } else {
        Err(DomainError::CardRequired)
    }
}

/// Opens a plan period from `day`: a contract with the plan's limits and a billing with its
/// prices, both copied so that later catalog changes do not rewrite history.
pub(super) async fn open_period(
    conn: &mut PgConnection,
    subscription: i64,
    plan: i64,
    day: NaiveDate,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    // One statement: the contract, its details, the billing and its details.
    sqlx::query(
        "with contract as ( \
           insert into contracts (subscription_id, plan_id, kind, starts_on, created_at) \
           select $1, $2, case when is_custom then 'custom' else 'plan' end, $3, $4 \
           from plans where id = $2 returning id), \
         details as ( \
           insert into contract_details (contract_id, option_key, value) \
           select contract.id, option_key, value from contract, plan_limits where plan_id = $2), \
         billing as ( \
           insert into billings (subscription_id, contract_id, currency, base_fee, starts_on, created_at) \
           select $1, contract.id, currency, base_fee, $3, $4 from contract, plans where plans.id = $2 \
           returning id) \
         insert into billing_details (billing_id, metric, included, overage_block, overage_price) \
         select billing.id, metric, included, overage_block, overage_price \
         from billing, plan_metrics where plan_id = $2",
    )
    .bind(subscription)
    .bind(plan)
    .bind(day)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Ends the open plan period on `day` (exclusive).
pub(super) async fn close_period(
    conn: &mut PgConnection,
    subscription: i64,
    day: NaiveDate,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "with ended as (update contracts set ends_on = $2 \
                         where subscription_id = $1 and ends_on is null) \
         update billings set ends_on = $2 where subscription_id = $1 and ends_on is null",
    )
    .bind(subscription)
    .bind(day)
    .execute(conn)
    .await
    .map(drop)
}

/// Cancels a subscription from `day` (not billed): ends its plan period, records why, and
/// queues the sync event.
pub(crate) async fn end_subscription(
    conn: &mut PgConnection,
    subscription: i64,
    day: NaiveDate,
    reason: CancelReason,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    close_period(&mut *conn, subscription, day).await?;
    sqlx::query(
        "update subscriptions set status = $5, cancelled_on = greatest($2, started_on), \
         cancel_reason = $3, updated_at = $4 where id = $1",
    )
    .bind(subscription)
    .bind(day)
    .bind(reason)
    .bind(at)
    .bind(SubscriptionStatus::Cancelled)
    .execute(&mut *conn)
    .await?;
    super::sync::queue_change(conn, Entity::Subscription, subscription, at).await
}

/// Starts a subscription of `tenant` to `plan` from `day`: the subscription, its first plan period
/// and its sync row.
pub(super) async fn start_subscription(
    conn: &mut PgConnection,
    tenant: TenantId,
    plan: i64,
    day: NaiveDate,
    at: DateTime<Utc>,
) -> Result<i64, sqlx::Error> {
    let month = Month::of(day);
    let id: i64 = sqlx::query_scalar(
        "insert into subscriptions (tenant_id, plan_id, status, started_on, current_period_start, \
         current_period_end, created_at, updated_at) \
         values ($1, $2, $7, $3, $4, $5, $6, $6) returning id",
    )
    .bind(tenant)
    .bind(plan)
    .bind(day)
    .bind(month.first_day())
    .bind(month.end())
    .bind(at)
    .bind(SubscriptionStatus::Active)
    .fetch_one(&mut *conn)
    .await?;
    open_period(&mut *conn, id, plan, day, at).await?;
    super::sync::queue_change(conn, Entity::Subscription, id, at).await?;
    Ok(id)
}

/// Moves the live `subscription` to `plan` from `day`: ends the open plan period, opens the new
/// one, records the change (for the once-a-day rule) and queues the sync row.
pub(super) async fn move_subscription(
    conn: &mut PgConnection,
    subscription: i64,
    plan: i64,
    day: NaiveDate,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    close_period(&mut *conn, subscription, day).await?;
    open_period(&mut *conn, subscription, plan, day, at).await?;
    sqlx::query(
        "update subscriptions set plan_id = $2, last_plan_change_at = $3, updated_at = $3 where id = $1",
    )
    .bind(subscription)
    .bind(plan)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    super::sync::queue_change(conn, Entity::Subscription, subscription, at).await
}

pub(super) async fn live_subscription(
    conn: &mut PgConnection,
    tenant: TenantId,
) -> Result<Option<LiveSubscription>, sqlx::Error> {
    sqlx::query_as(
        "select s.id, s.plan_id, s.last_plan_change_at, \
                (select p.currency from plans p where p.id = s.plan_id) as currency \
         from subscriptions s where s.tenant_id = $1 and s.status <> 'cancelled' for update",
    )
    .bind(tenant)
    .fetch_optional(conn)
    .await
}

impl Platform {
    /// Subscribes `tenant` to `plan` from the day of `at`.
    ///
    /// # Errors
    /// `already_subscribed`, `plan_product_mismatch`, `card_required`, or an unknown reference.
    pub async fn subscribe(
        &self,
        tenant_id: TenantId,
        plan_key: &str,
        at: DateTime<Utc>,
    ) -> Result<SubscriptionId, DomainError> {
        let mut tx = self.pool.begin().await?;
        lock_tenant(&mut tx, tenant_id).await?;
        // Everything the rules need, in one round trip: subscribing is the builders' hot path.
        let row: Option<SubscribeContext> = sqlx::query_as(
            "select t.product_id, tp.key as product, \
                    pl.id as plan_id, pl.product_id as plan_product_id, pp.key as plan_product, \
                    pl.base_fee, pl.currency, \
                    exists (select 1 from subscriptions s \
                            where s.tenant_id = t.id and s.status <> 'cancelled') as live, \
                    exists (select 1 from cards c \
                            where c.organization_id = t.organization_id and c.status = 'active') as has_card \
             from tenants t join products tp on tp.id = t.product_id \
             left join plans pl on pl.key = $2 and not pl.is_custom \
             left join products pp on pp.id = pl.product_id \
             where t.id = $1",
        )
        .bind(tenant_id)
        .bind(plan_key)
        .fetch_optional(&mut *tx)
        .await?;
        let row = row.ok_or(DomainError::UnknownTenant(tenant_id.0))?;
        let calendar = settings(&mut tx).await?.calendar;
        let day = calendar.local_day(at);
        let product = ProductRow {
            id: row.product_id,
            key: row.product,
        };
        let plan = match (
            row.plan_id,
            row.plan_product_id,
            row.plan_product,
            row.base_fee,
            row.currency,
        ) {
            (Some(id), Some(product_id), Some(product), Some(base_fee), Some(currency)) => {
                PlanRow {
                    id,
                    product_id,
                    product,
                    base_fee,
                    currency,
                }
            }
            _ => return Err(DomainError::UnknownPlan(plan_key.to_owned())),
        };
        if row.live {
            return Err(DomainError::AlreadySubscribed);
        }
        check_product(&plan, plan_key, &product)?;
        if plan.base_fee > Decimal::ZERO && !row.has_card {
            return Err(DomainError::CardRequired);
        }
        let id = start_subscription(&mut tx, tenant_id, plan.id, day, at).await?;
        tx.commit().await?;
        Ok(SubscriptionId(id))
    }
}

impl Platform {
    /// Moves `tenant`'s live subscription to `plan` from the day of `at`.
    ///
    /// # Errors
    /// `no_active_subscription`, `plan_product_mismatch`, `currency_mismatch`, `same_plan`,
    /// `plan_change_limit`, `card_required`, or an unknown reference.
    pub async fn change_plan(
        &self,
        tenant_id: TenantId,
        plan_key: &str,
        at: DateTime<Utc>,
    ) -> Result<(), DomainError> {
        let mut tx = self.pool.begin().await?;
        lock_tenant(&mut tx, tenant_id).await?;
        let calendar = settings(&mut tx).await?.calendar;
        let day = calendar.local_day(at);
        let tenant = tenant(&mut tx, tenant_id).await?;
        let plan = plan(&mut tx, plan_key).await?;
        let live = live_subscription(&mut tx, tenant_id)
            .await?
            .ok_or(DomainError::NoActiveSubscription)?;
        check_product(&plan, plan_key, &tenant.product)?;
        check_currency(&plan, plan_key, &live)?;
        if plan.id == live.plan_id {
            return Err(DomainError::SamePlan(plan_key.to_owned()));
        }
        if live
            .last_plan_change_at
            .is_some_and(|last| calendar.local_day(last) == day)
        {
            return Err(DomainError::PlanChangeLimit {
                next_allowed: calendar.next_day_start(at),
            });
        }
        check_card(&mut tx, &plan, tenant.org).await?;
        move_subscription(&mut tx, live.id, plan.id, day, at).await?;
        tx.commit().await?;
        Ok(())
    }
}

impl Platform {
    /// Cancels `tenant`'s live subscription from the day of `at` (that day is not billed).
    ///
    /// # Errors
    /// `no_active_subscription`, or an unknown reference.
    pub async fn cancel(&self, tenant_id: TenantId, at: DateTime<Utc>) -> Result<(), DomainError> {
        let mut tx = self.pool.begin().await?;
        lock_tenant(&mut tx, tenant_id).await?;
        let day = settings(&mut tx).await?.calendar.local_day(at);
        let live = live_subscription(&mut tx, tenant_id)
            .await?
            .ok_or(DomainError::NoActiveSubscription)?;
        end_subscription(&mut tx, live.id, day, CancelReason::Requested, at).await?;
        tx.commit().await?;
        Ok(())
    }
}
