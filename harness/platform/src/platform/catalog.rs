//! Writing a catalog (settings, products, plans and their options) into the platform's tables.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::handle::Platform;
use crate::model::{Catalog, Plan};

/// Installs `catalog`: the settings row, one product per product key, and every plan with its
/// limits and metrics. Installing again updates the settings and adds what is new.
///
/// # Errors
/// The database refused a row (a plan key used twice, say).
pub async fn install(
    pool: &PgPool,
    catalog: &Catalog,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "insert into platform_settings (id, time_zone, currency, tax_rate, charge_day, updated_at) \
         values (true, $1, $2, $3, $4, $5) on conflict (id) do update set \
         time_zone = excluded.time_zone, currency = excluded.currency, tax_rate = excluded.tax_rate, \
         charge_day = excluded.charge_day, updated_at = excluded.updated_at",
    )
    .bind(catalog.time_zone.name())
    .bind(catalog.currency.code())
    .bind(catalog.tax_rate)
    .bind(catalog.charge_day as i16)
    .bind(at)
    .execute(&mut *tx)
    .await?;
    for plan in &catalog.plans {
        sqlx::query(
            "insert into products (key, name, created_at) values ($1, $1, $2) \
             on conflict (key) do nothing",
        )
        .bind(&plan.product)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        // A plan already installed keeps its terms: installing again only adds what is new.
        let plan_id: Option<i64> = sqlx::query_scalar(
            "insert into plans (product_id, key, name, currency, base_fee, created_at) \
             select id, $2, $2, $3, $4, $5 from products where key = $1 \
             on conflict (key) do nothing returning id",
        )
        .bind(&plan.product)
        .bind(&plan.key)
        .bind(plan.currency.code())
        .bind(plan.terms.base_fee)
        .bind(at)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(plan_id) = plan_id else {
            continue;
        };
        insert_terms(&mut tx, plan_id, plan).await?;
    }
    tx.commit().await
}

impl Platform {
    /// Installs a catalog (see [`install`]).
    ///
    /// # Errors
    /// The database refused a row.
    pub async fn install_catalog(
        &self,
        catalog: &Catalog,
        at: DateTime<Utc>,
    ) -> Result<(), sqlx::Error> {
        install(&self.pool, catalog, at).await
    }
}

/// Writes a plan's limits and metrics (included quota, overage block and price): a catalog
/// plan's at install, a contract's custom plan when it is applied.
pub(crate) async fn insert_terms(
    conn: &mut sqlx::PgConnection,
    plan_id: i64,
    plan: &Plan,
) -> Result<(), sqlx::Error> {
    for (option, value) in &plan.limits {
        sqlx::query("insert into plan_limits (plan_id, option_key, value) values ($1, $2, $3)")
            .bind(plan_id)
            .bind(option)
            .bind(value)
            .execute(&mut *conn)
            .await?;
    }
    let metrics = plan
        .terms
        .included
        .keys()
        .chain(plan.terms.overage.keys())
        .collect::<std::collections::BTreeSet<_>>();
    for metric in metrics {
        let overage = plan.terms.overage.get(metric);
        sqlx::query(
            "insert into plan_metrics (plan_id, metric, included, overage_block, overage_price) \
             values ($1, $2, $3, $4, $5)",
        )
        .bind(plan_id)
        .bind(metric)
        .bind(plan.terms.included.get(metric).copied().unwrap_or(0) as i64)
        .bind(overage.map(|o| o.block as i64))
        .bind(overage.map(|o| o.price))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Plan `key` (the catalog row `row`, as [`super::subscriptions::plan`] read it) as a
/// [`Plan`]: the row's product, currency and fee with the plan's metrics and limits.
pub(crate) async fn read_plan(
    conn: &mut sqlx::PgConnection,
    key: &str,
    row: &super::subscriptions::PlanRow,
) -> Result<Plan, sqlx::Error> {
    let id = row.id;
    let metrics: Vec<(String, i64, Option<i64>, Option<rust_decimal::Decimal>)> = sqlx::query_as(
        "select metric, included, overage_block, overage_price from plan_metrics \
         where plan_id = $1 order by metric",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    let limits: Vec<(String, i64)> =
        sqlx::query_as("select option_key, value from plan_limits where plan_id = $1")
            .bind(id)
            .fetch_all(&mut *conn)
            .await?;
    let mut terms = crate::model::Terms {
        base_fee: row.base_fee,
        included: std::collections::BTreeMap::new(),
        overage: std::collections::BTreeMap::new(),
    };
    for (metric, included, block, price) in metrics {
        terms
            .included
            .insert(metric.clone(), u64::try_from(included).unwrap_or(0));
        if let (Some(block), Some(price)) = (block, price) {
            terms.overage.insert(
                metric,
                crate::model::Overage {
                    block: u64::try_from(block).unwrap_or(1),
                    price,
                },
            );
        }
    }
    Ok(Plan {
        key: key.to_owned(),
        product: row.product.clone(),
        currency: row.currency,
        terms,
        limits: limits.into_iter().collect(),
    })
}
