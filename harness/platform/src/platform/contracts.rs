//! Sales-led contracts: custom terms over a catalog plan, applied to a tenant as a plan change
//! (the same rules: proration by days, once a day, a card for a paid fee), with the tenant's spec
//! and the new terms synced to its product; and the end of a contract's term.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sqlx::PgConnection;

use super::catalog::{insert_terms, read_plan};
use super::handle::Platform;
use super::settings::settings;
use super::subscriptions::{
    PlanRow, check_card, check_currency, check_product, live_subscription, lock_tenant,
    move_subscription, plan, start_subscription, tenant,
};
use super::{DomainError, sync};
use crate::model::{CancelReason, ContractTerms, SubscriptionId, TenantId};
use crate::products::api::Entity;

/// A contract in force: its custom plan and the subscription on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppliedContract {
    /// The custom plan's key, `<base>~<tenant slug>~<first day>`.
    pub plan: String,
    /// Its id.
    pub plan_id: i64,
    /// The catalog plan it is made from.
    pub base: String,
    /// The subscription now on it (a new one when the tenant had none).
    pub subscription: SubscriptionId,
    /// Its first day.
    pub starts_on: NaiveDate,
}

impl Platform {
    /// Applies a sales contract to `tenant` from the day of `at`, in one transaction: a custom
    /// plan over the base plan with `terms`, the subscription moved to it (or started on it),
    /// its contract, details, billing and billing details, the tenant's spec, and their sync rows.
    ///
    /// # Errors
    /// `plan_change_limit` (a plan change or contract already today), `card_required`,
    /// `plan_product_mismatch`, `currency_mismatch` (a base plan of another currency than the
    /// live subscription), `invalid_terms`, `no_active_subscription` (no plan given and the
    /// tenant has no subscription), or an unknown tenant or plan. Nothing is written then.
    pub async fn apply_contract(
        &self,
        tenant: TenantId,
        terms: &ContractTerms,
        at: DateTime<Utc>,
    ) -> Result<AppliedContract, DomainError> {
        let mut tx = self.pool.begin().await?;
        let applied = apply_contract(&mut tx, tenant, terms, at).await?;
        tx.commit().await?;
        Ok(applied)
    }
}

/// [`Platform::apply_contract`] inside the caller's transaction (to show or audit what it wrote
/// before committing).
///
/// # Errors
/// See [`Platform::apply_contract`].
pub async fn apply_contract(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    terms: &ContractTerms,
    at: DateTime<Utc>,
) -> Result<AppliedContract, DomainError> {
    lock_tenant(&mut *conn, tenant_id).await?;
    let calendar = settings(&mut *conn).await?.calendar;
    let day = calendar.local_day(at);
    let owner = tenant(&mut *conn, tenant_id).await?;
    let live = live_subscription(&mut *conn, tenant_id).await?;
    let base_key = match (&terms.plan, &live) {
        (Some(key), _) => key.clone(),
        (None, Some(live)) => {
            sqlx::query_scalar(
                "select coalesce(b.key, p.key) from plans p \
                 left join plans b on b.id = p.base_plan_id where p.id = $1",
            )
            .bind(live.plan_id)
            .fetch_one(&mut *conn)
            .await?
        }
        (None, None) => return Err(DomainError::NoActiveSubscription),
    };
    let base_row = plan(&mut *conn, &base_key).await?;
    check_product(&base_row, &base_key, &owner.product)?;
    if let Some(live) = &live {
        check_currency(&base_row, &base_key, live)?;
    }
    if let Some(last) = live.as_ref().and_then(|l| l.last_plan_change_at)
        && calendar.local_day(last) == day
    {
        return Err(DomainError::PlanChangeLimit {
            next_allowed: calendar.next_day_start(at),
        });
    }
    if let Some(end) = terms.term_ends_on
        && end <= day
    {
        return Err(DomainError::InvalidTerms(format!(
            "the term must end after its first day {day}, not on {end}"
        )));
    }
    let slug: String = sqlx::query_scalar("select slug from tenants where id = $1")
        .bind(tenant_id)
        .fetch_one(&mut *conn)
        .await?;
    let key = format!("{base_key}~{slug}~{day}");
    let base = read_plan(&mut *conn, &base_key, &base_row).await?;
    let custom = terms
        .over(&base, &key)
        .map_err(|e| DomainError::InvalidTerms(e.to_string()))?;
    check_card(
        &mut *conn,
        &PlanRow {
            id: base_row.id,
            product_id: base_row.product_id,
            product: base_row.product.clone(),
            base_fee: custom.terms.base_fee,
            currency: base_row.currency,
        },
        owner.org,
    )
    .await?;
    let plan_id: i64 = sqlx::query_scalar(
        "insert into plans (product_id, key, name, currency, base_fee, is_custom, organization_id, \
                            base_plan_id, created_at) \
         values ($1, $2, $3, $4, $5, true, $6, $7, $8) returning id",
    )
    .bind(owner.product.id)
    .bind(&key)
    .bind(format!("{base_key} (contract)"))
    .bind(custom.currency.code())
    .bind(custom.terms.base_fee)
    .bind(owner.org)
    .bind(base_row.id)
    .bind(at)
    .fetch_one(&mut *conn)
    .await?;
    insert_terms(&mut *conn, plan_id, &custom).await?;
    // The spec first: the product redeploys the tenant, then serves the new terms.
    if let Some(spec) = &terms.spec {
        sqlx::query("update tenants set spec = $2 where id = $1")
            .bind(tenant_id)
            .bind(serde_json::Value::Object(spec.clone()))
            .execute(&mut *conn)
            .await?;
        sync::queue_change(&mut *conn, Entity::Tenant, tenant_id.0, at).await?;
    }
    let subscription = match live {
        Some(live) => {
            move_subscription(&mut *conn, live.id, plan_id, day, at).await?;
            live.id
        }
        None => start_subscription(&mut *conn, tenant_id, plan_id, day, at).await?,
    };
    if let Some(end) = terms.term_ends_on {
        sqlx::query(
            "update contracts set term_ends_on = $2 where subscription_id = $1 and ends_on is null",
        )
        .bind(subscription)
        .bind(end)
        .execute(&mut *conn)
        .await?;
    }
    Ok(AppliedContract {
        plan: key,
        plan_id,
        base: base_key,
        subscription: SubscriptionId(subscription),
        starts_on: day,
    })
}

/// Cancels, with the reason `contract_ended`, every live subscription whose contract's term
/// ended by the day of `at` (its last billed day is the day before); returns how many. Runs with
/// the daily job.
///
/// # Errors
/// The database failed.
pub async fn end_contract_terms(
    pool: &sqlx::PgPool,
    at: DateTime<Utc>,
) -> Result<usize, DomainError> {
    let mut tx = pool.begin().await?;
    let day = settings(&mut tx).await?.calendar.local_day(at);
    let ended: Vec<(i64, NaiveDate)> = sqlx::query_as(
        "select s.id, c.term_ends_on from subscriptions s \
         join contracts c on c.subscription_id = s.id and c.ends_on is null \
         where s.status <> 'cancelled' and c.term_ends_on <= $1 \
         order by s.id for update of s skip locked",
    )
    .bind(day)
    .fetch_all(&mut *tx)
    .await?;
    for (subscription, end) in &ended {
        super::subscriptions::end_subscription(
            &mut tx,
            *subscription,
            *end,
            CancelReason::ContractEnded,
            at,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(ended.len())
}
