//! Sales contracts, with the reference platform's rules: custom terms over a plan of the price
//! list (its base), applied to a customer from today as a plan change is (once a day, in the
//! subscription's currency, a card for a paid fee), and the end of a contract's term.
//!
//! A contract is a plan of its own, `<base>~<customer id>~<first day>`, which
//! [`Contract::plan_over`] makes from the base plan as a pure function: every term the contract
//! leaves out is the base plan's, never an earlier contract's. It is not on the price list, so
//! no one subscribes or changes to it by its key; its invoices bill it like any plan.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Deserialize;
use sqlx::PgConnection;

use crate::Error;
use crate::billing::{Currency, Plan};
use crate::calendar;
use crate::service::{
    BillingService, CustomerId, Subscription, SubscriptionId, check_card, check_change_limit,
    check_currency, check_product, end_subscription, lock_customer, move_subscription,
    price_list_plan, start_subscription, write_plan,
};

/// A sales contract's terms over a plan of the price list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Contract {
    /// The plan it is made from (default: the plan the customer's subscription is on, or the
    /// base of its contract).
    #[serde(default)]
    pub base: Option<String>,
    /// Monthly fee, prorated by days (default: the base plan's).
    #[serde(default)]
    pub monthly_fee: Option<Decimal>,
    /// The metric `included` and `overage` are for: the base plan's, which it must be.
    #[serde(default)]
    pub metric: Option<String>,
    /// Units included each month, prorated by days (default: the base plan's).
    #[serde(default)]
    pub included: Option<i64>,
    /// Overage pricing (default: the base plan's).
    #[serde(default)]
    pub overage: Option<Overage>,
    /// Limits per option, e.g. `seats = 40`; none of them is billed.
    #[serde(default)]
    pub limits: BTreeMap<String, i64>,
    /// The first day the contract no longer covers: its subscription is cancelled that day if
    /// it is still on the contract (default: no end).
    #[serde(default)]
    pub term_ends_on: Option<NaiveDate>,
}

/// Overage pricing: `block_price` for every started block of `block_size` units.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Overage {
    /// Units per block.
    pub block_size: i64,
    /// Price of one block.
    pub block_price: Decimal,
}

impl Contract {
    /// The plan this contract makes over `base` for `customer` from `first_day`: keyed
    /// `<base>~<customer>~<first day>`, named `<base name> (contract)`, with the base plan's
    /// product, currency and metric, and each term the contract gives in place of the base's.
    ///
    /// # Errors
    /// `invalid_terms`: a metric the base plan does not meter, an amount negative or finer than
    /// the currency's minor unit, a negative quota or limit, a block of fewer than 1 unit, a
    /// term that ends by its first day.
    pub fn plan_over(
        &self,
        base: &Plan,
        customer: CustomerId,
        first_day: NaiveDate,
    ) -> Result<Plan, Error> {
        if let Some(end) = self.term_ends_on
            && end <= first_day
        {
            return Err(Error::InvalidTerms(format!(
                "the term must end after its first day {first_day}, not on {end}"
            )));
        }
        if let Some(metric) = &self.metric
            && *metric != base.metric
        {
            return Err(Error::InvalidTerms(format!(
                "metric {metric:?} is not metered by plan {} (it meters {})",
                base.key, base.metric
            )));
        }
        if let Some((name, value)) = self.limits.iter().find(|(_, v)| **v < 0) {
            return Err(Error::InvalidTerms(format!(
                "the limit {name} must not be negative, got {value}"
            )));
        }
        let plan = Plan {
            key: format!("{}~{customer}~{first_day}", base.key),
            name: format!("{} (contract)", base.name),
            monthly_fee: self.monthly_fee.unwrap_or(base.monthly_fee),
            included: self.included.unwrap_or(base.included),
            block_size: self
                .overage
                .as_ref()
                .map_or(base.block_size, |o| o.block_size),
            block_price: self
                .overage
                .as_ref()
                .map_or(base.block_price, |o| Some(o.block_price)),
            ..base.clone()
        };
        plan.check().map_err(Error::InvalidTerms)?;
        Ok(plan)
    }
}

/// The customer's live subscription, under its row lock: its currency and the plan of the
/// price list it is on (a contract's base).
#[derive(sqlx::FromRow)]
struct Live {
    id: SubscriptionId,
    #[sqlx(try_from = "String")]
    currency: Currency,
    base: String,
}

impl BillingService {
    /// Applies a sales contract to a customer from today, in one transaction: its plan over the
    /// base ([`Contract::plan_over`]), and the customer's live subscription moved to it as in a
    /// plan change, or a new subscription started on it when there is none. A later plan
    /// change, or another contract, leaves it.
    ///
    /// # Errors
    /// `no_customer`; `not_subscribed` (no base named and no live subscription); `no_plan`;
    /// `plan_product_mismatch`; `currency_mismatch` (a base in another currency than the live
    /// subscription's); `plan_change_limit` (the subscription changed plan today already, or
    /// the customer signed a contract over this base today); `invalid_terms`; `card_required`
    /// (a fee without a card). Nothing is written then.
    pub async fn apply_contract(
        &self,
        customer: CustomerId,
        contract: &Contract,
    ) -> Result<Subscription, Error> {
        let now = self.now();
        let today = calendar::local_day(now);
        let mut tx = self.pool.begin().await?;
        lock_customer(&mut tx, customer).await?;
        let live: Option<Live> = sqlx::query_as(
            "select s.id, s.currency, coalesce(pl.base_key, pl.key) as base \
             from subscriptions s \
             join plan_periods p on p.subscription_id = s.id and p.ends_on is null \
             join plans pl on pl.key = p.plan_key \
             where s.customer_id = $1 and s.cancelled_on is null for update of s",
        )
        .bind(customer)
        .fetch_optional(&mut *tx)
        .await?;
        let base = match (&contract.base, &live) {
            (Some(key), _) => key,
            (None, Some(live)) => &live.base,
            (None, None) => return Err(Error::NotSubscribed(customer)),
        };
        let base = price_list_plan(&mut tx, base).await?;
        check_product(&mut tx, customer, &base).await?;
        if let Some(live) = &live {
            check_currency(live.id, live.currency, &base)?;
            check_change_limit(&mut tx, live.id, today).await?;
        }
        let plan = contract.plan_over(&base, customer, today)?;
        check_card(&mut tx, customer, &plan).await?;
        if !write_plan(&mut tx, &plan, Some(&base.key)).await? {
            // The key is taken: a contract over this base signed today, by a subscription
            // since cancelled.
            let signed: SubscriptionId =
                sqlx::query_scalar("select subscription_id from contracts where plan_key = $1")
                    .bind(&plan.key)
                    .fetch_one(&mut *tx)
                    .await?;
            return Err(Error::PlanChangeLimit(signed, today));
        }
        let subscription = match live {
            Some(live) => {
                move_subscription(&mut tx, live.id, &plan.key, today, now).await?;
                live.id
            }
            None => start_subscription(&mut tx, customer, &plan, today, now).await?,
        };
        sqlx::query(
            "insert into contracts (plan_key, customer_id, subscription_id, starts_on, \
             term_ends_on, limits, created_at) values ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&plan.key)
        .bind(customer)
        .bind(subscription)
        .bind(today)
        .bind(contract.term_ends_on)
        .bind(sqlx::types::Json(&contract.limits))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        crate::outbox::queue_subscription(&mut tx, subscription, now).await?;
        tx.commit().await?;
        self.subscription(subscription).await
    }

    /// Cancels every live subscription still on a contract whose term ended by today, from the
    /// term's end day (not billed itself); how many. Runs with the day's jobs, before the
    /// charges and retries.
    pub(crate) async fn end_contract_terms(&self) -> Result<usize, Error> {
        let now = self.now();
        let today = calendar::local_day(now);
        let mut tx = self.pool.begin().await?;
        let ended = ended_terms(&mut tx, today).await?;
        for (subscription, end) in &ended {
            end_subscription(&mut tx, *subscription, *end).await?;
            crate::outbox::queue_subscription(&mut tx, *subscription, now).await?;
        }
        tx.commit().await?;
        Ok(ended.len())
    }
}

/// The live subscriptions on a contract whose term ended by `today`, locked, with the end day.
async fn ended_terms(
    conn: &mut PgConnection,
    today: NaiveDate,
) -> Result<Vec<(SubscriptionId, NaiveDate)>, Error> {
    Ok(sqlx::query_as(
        "select s.id, c.term_ends_on from subscriptions s \
         join plan_periods p on p.subscription_id = s.id and p.ends_on is null \
         join contracts c on c.plan_key = p.plan_key \
         where s.cancelled_on is null and c.term_ends_on <= $1 \
         order by s.id for update of s skip locked",
    )
    .bind(today)
    .fetch_all(conn)
    .await?)
}
