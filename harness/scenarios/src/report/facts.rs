//! What a report needs beyond the [`Outcome`](crate::Outcome), read once from the
//! run's database and its product mocks: each tenant's plan periods with the terms agreed for
//! each (a contract's own fee, quotas and overage prices, not the catalog's), its usage per day
//! and metric, and each product's requests placed on the day they were sent.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;

use crate::{RunOptions, Scenario};
use billing_harness::TestEnv;
use billing_harness::calendar::local_day;
use billing_harness::model::{Overage, Terms};
use billing_harness::platform::DomainError;

/// What the database of a run says about one tenant, for its lanes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantFacts {
    /// The tenant's key.
    pub tenant: String,
    /// Its plan periods, oldest first.
    pub periods: Vec<PlanPeriod>,
    /// Its usage per day and metric, by day then metric.
    pub usage: Vec<DailyUsage>,
}

/// One plan period of a subscription: `[from, until)`, with the terms billed for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanPeriod {
    /// The plan's key (for a contract, `<base>~<tenant slug>~<day>`).
    pub plan: String,
    /// For a contract (a custom plan), the catalog plan it was made from; `None` for a catalog
    /// plan.
    pub contract_over: Option<String>,
    /// Its first day.
    pub from: NaiveDate,
    /// Its first day not served; `None` while open.
    pub until: Option<NaiveDate>,
    /// The ISO code of the currency it is billed in.
    pub currency: String,
    /// The terms stored with the period's billing: base fee, included units and overage price
    /// per metric.
    pub terms: Terms,
}

impl PlanPeriod {
    /// Whether `day` falls in the period.
    pub fn covers(&self, day: NaiveDate) -> bool {
        self.from <= day && self.until.is_none_or(|until| day < until)
    }
}

/// The units of one metric used on one day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailyUsage {
    /// The day the units were used.
    pub day: NaiveDate,
    /// The metric.
    pub metric: String,
    /// How many.
    pub quantity: u64,
}

/// What a product's mock received during a run, each request on its day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductFacts {
    /// The product's key.
    pub product: String,
    /// Every request, in the order received.
    pub requests: Vec<ProductDelivery>,
}

/// One request a product received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductDelivery {
    /// The day it was sent, by its `Sync-Sent-At`; for a request that did not say, the day its
    /// outbox row was delivered or given up, else the scenario's `until`.
    pub day: NaiveDate,
    /// `PUT`, `DELETE` or `GET`.
    pub method: String,
    /// The path with its id as a placeholder.
    pub route: String,
    /// The name of the fault put on it (`status_503`), if any.
    pub fault: Option<String>,
    /// The status answered; `None` when no answer reached the client.
    pub status: Option<u16>,
    /// Whether it changed the product's state.
    pub applied: bool,
    /// A repeated idempotency key, answered without applying it again.
    pub replay: bool,
}

impl ProductDelivery {
    /// Whether the platform saw it succeed: a `2xx` answer.
    pub fn delivered(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// Everything a page reads besides the outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// One per tenant of the scenario, in its order.
    pub tenants: Vec<TenantFacts>,
    /// One per product mock that received a request, by key.
    pub products: Vec<ProductFacts>,
}

/// Reads the facts of a run played with [`crate::run()`] (no tenant suffix).
///
/// # Errors
/// The database failed, or a product mock could not be started.
pub async fn facts(scenario: &Scenario, env: &TestEnv) -> Result<Facts, DomainError> {
    facts_with(scenario, env, &RunOptions::default()).await
}

/// Reads the facts of a run played with [`crate::run_on`] and these options (a
/// seeded run names its tenants with a suffix). On an attached database there are no mocks,
/// so no product facts.
///
/// # Errors
/// The database failed, or a product mock could not be started.
pub async fn facts_with(
    scenario: &Scenario,
    env: &TestEnv,
    options: &RunOptions,
) -> Result<Facts, DomainError> {
    let suffix = options.tenant_suffix.as_deref().unwrap_or("");
    let mut tenants = Vec::new();
    for tenant in &scenario.tenants {
        let name = format!("{}{suffix}", tenant.key);
        tenants.push(TenantFacts {
            tenant: tenant.key.clone(),
            periods: periods(env, &name).await?,
            usage: usage(env, &name).await?,
        });
    }
    Ok(Facts {
        tenants,
        products: products(scenario, env).await?,
    })
}

/// A plan period: billing id, plan, base plan of a contract, from, until, currency, base fee.
type PeriodRow = (
    i64,
    String,
    Option<String>,
    NaiveDate,
    Option<NaiveDate>,
    String,
    Decimal,
);

/// A billing detail: billing id, metric, included, overage block and price.
type DetailRow = (i64, String, i64, Option<i64>, Option<Decimal>);

async fn periods(env: &TestEnv, tenant: &str) -> Result<Vec<PlanPeriod>, sqlx::Error> {
    let rows: Vec<PeriodRow> = sqlx::query_as(
        "select b.id, p.key, base.key, c.starts_on, c.ends_on, b.currency::text, b.base_fee \
         from contracts c join plans p on p.id = c.plan_id \
         left join plans base on base.id = p.base_plan_id and p.is_custom \
         join billings b on b.contract_id = c.id \
         join subscriptions s on s.id = c.subscription_id join tenants t on t.id = s.tenant_id \
         where t.name = $1 and (c.ends_on is null or c.ends_on > c.starts_on) \
         order by c.starts_on, c.id",
    )
    .bind(tenant)
    .fetch_all(env.pool())
    .await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
    let details: Vec<DetailRow> = sqlx::query_as(
        "select billing_id, metric, included, overage_block, overage_price from billing_details \
         where billing_id = any($1) order by billing_id, metric",
    )
    .bind(&ids)
    .fetch_all(env.pool())
    .await?;
    Ok(rows
        .into_iter()
        .map(|(billing, plan, base, from, until, currency, base_fee)| {
            let mut terms = Terms {
                base_fee,
                included: BTreeMap::new(),
                overage: BTreeMap::new(),
            };
            for (_, metric, included, block, price) in details.iter().filter(|d| d.0 == billing) {
                terms
                    .included
                    .insert(metric.clone(), included.max(&0).unsigned_abs());
                if let (Some(block), Some(price)) = (block, price) {
                    terms.overage.insert(
                        metric.clone(),
                        Overage {
                            block: block.max(&1).unsigned_abs(),
                            price: *price,
                        },
                    );
                }
            }
            PlanPeriod {
                plan,
                contract_over: base,
                from,
                until,
                currency: currency.trim().to_owned(),
                terms,
            }
        })
        .collect())
}

async fn usage(env: &TestEnv, tenant: &str) -> Result<Vec<DailyUsage>, sqlx::Error> {
    let rows: Vec<(NaiveDate, String, i64)> = sqlx::query_as(
        "select u.occurred_on, u.metric, sum(u.quantity)::bigint from usage_events u \
         join tenants t on t.id = u.tenant_id where t.name = $1 \
         group by u.occurred_on, u.metric order by u.occurred_on, u.metric",
    )
    .bind(tenant)
    .fetch_all(env.pool())
    .await?;
    Ok(rows
        .into_iter()
        .map(|(day, metric, quantity)| DailyUsage {
            day,
            metric,
            quantity: quantity.max(0).unsigned_abs(),
        })
        .collect())
}

/// Each product mock's journal, every request dated by when it was sent (else by its outbox
/// row: the idempotency key is the row's id).
async fn products(scenario: &Scenario, env: &TestEnv) -> Result<Vec<ProductFacts>, DomainError> {
    // An attached database has no mocks: the list is empty.
    let mocks = env.products().await?;
    if mocks.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<(i64, DateTime<Utc>)> = sqlx::query_as(
        "select id, coalesce(dispatched_at, dead_at, available_at) from sync_outbox order by id",
    )
    .fetch_all(env.pool())
    .await?;
    let sent: BTreeMap<String, NaiveDate> = rows
        .into_iter()
        .map(|(id, at)| (id.to_string(), local_day(scenario.catalog.time_zone, at)))
        .collect();
    let mut out: Vec<ProductFacts> = mocks
        .iter()
        .map(|mock| ProductFacts {
            product: mock.key().to_owned(),
            requests: mock
                .journal()
                .into_iter()
                .map(|r| ProductDelivery {
                    day: r
                        .sent_at
                        .map(|at| local_day(scenario.catalog.time_zone, at))
                        .or_else(|| {
                            r.idempotency_key
                                .as_ref()
                                .and_then(|k| sent.get(k).copied())
                        })
                        .unwrap_or(scenario.until),
                    method: r.method,
                    route: r.route,
                    fault: r.fault.map(|f| f.as_str().to_owned()),
                    status: r.status,
                    applied: r.applied,
                    replay: r.replay,
                })
                .collect(),
        })
        .filter(|p| !p.requests.is_empty())
        .collect();
    out.sort_by(|a, b| a.product.cmp(&b.product));
    Ok(out)
}
