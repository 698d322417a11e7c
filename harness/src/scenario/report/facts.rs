//! What a report needs beyond the [`Outcome`](crate::scenario::Outcome), read once from the
//! run's database: each tenant's plan periods and its usage per day and metric.

use chrono::NaiveDate;

use crate::TestEnv;
use crate::scenario::Scenario;

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

/// One plan period of a subscription: `[from, until)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanPeriod {
    /// The plan's key.
    pub plan: String,
    /// Its first day.
    pub from: NaiveDate,
    /// Its first day not served; `None` while open.
    pub until: Option<NaiveDate>,
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

/// Reads every tenant's facts from the database of a run (after [`crate::scenario::run()`],
/// without a tenant suffix).
///
/// # Errors
/// The database failed.
pub async fn facts(scenario: &Scenario, env: &TestEnv) -> Result<Vec<TenantFacts>, sqlx::Error> {
    let mut out = Vec::new();
    for tenant in &scenario.tenants {
        let periods: Vec<(String, NaiveDate, Option<NaiveDate>)> = sqlx::query_as(
            "select p.key, c.starts_on, c.ends_on from contracts c join plans p on p.id = c.plan_id \
             join subscriptions s on s.id = c.subscription_id join tenants t on t.id = s.tenant_id \
             where t.name = $1 and (c.ends_on is null or c.ends_on > c.starts_on) \
             order by c.starts_on, c.id",
        )
        .bind(&tenant.key)
        .fetch_all(env.pool())
        .await?;
        let usage: Vec<(NaiveDate, String, i64)> = sqlx::query_as(
            "select u.occurred_on, u.metric, sum(u.quantity)::bigint from usage_events u \
             join tenants t on t.id = u.tenant_id where t.name = $1 \
             group by u.occurred_on, u.metric order by u.occurred_on, u.metric",
        )
        .bind(&tenant.key)
        .fetch_all(env.pool())
        .await?;
        out.push(TenantFacts {
            tenant: tenant.key.clone(),
            periods: periods
                .into_iter()
                .map(|(plan, from, until)| PlanPeriod { plan, from, until })
                .collect(),
            usage: usage
                .into_iter()
                .map(|(day, metric, quantity)| DailyUsage {
                    day,
                    metric,
                    quantity: quantity.max(0).unsigned_abs(),
                })
                .collect(),
        });
    }
    Ok(out)
}
