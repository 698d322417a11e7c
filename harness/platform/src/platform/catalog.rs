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
    write_settings(
        &mut tx,
        catalog,
        at,
        " on conflict (id) do update set \
         time_zone = excluded.time_zone, currency = excluded.currency, tax_rate = excluded.tax_rate, \
         charge_day = excluded.charge_day, updated_at = excluded.updated_at",
    )
    .await?;
    add_plans(&mut tx, catalog, at).await?;
    tx.commit().await
}

/// Inserts the settings row of `catalog`, `on_conflict` saying what to do when there is one.
async fn write_settings(
    conn: &mut sqlx::PgConnection,
    catalog: &Catalog,
    at: DateTime<Utc>,
    on_conflict: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "insert into platform_settings (id, time_zone, currency, tax_rate, charge_day, updated_at) \
         values (true, $1, $2, $3, $4, $5){on_conflict}"
    ))
    .bind(catalog.time_zone.name())
    .bind(catalog.currency.code())
    .bind(catalog.tax_rate)
    .bind(catalog.charge_day as i16)
    .bind(at)
    .execute(conn)
    .await
    .map(drop)
}

/// Adds the products and plans of `catalog` the database lacks; a plan already installed keeps
/// its terms.
async fn add_plans(
    conn: &mut sqlx::PgConnection,
    catalog: &Catalog,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    for plan in &catalog.plans {
        sqlx::query(
            "insert into products (key, name, created_at) values ($1, $1, $2) \
             on conflict (key) do nothing",
        )
        .bind(&plan.product)
        .bind(at)
        .execute(&mut *conn)
        .await?;
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
        .fetch_optional(&mut *conn)
        .await?;
        let Some(plan_id) = plan_id else {
            continue;
        };
        insert_terms(conn, plan_id, plan).await?;
    }
    Ok(())
}

/// Where a database's catalog and another differ: the field, the database's value, the other's.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CatalogDifference {
    /// `currency`, `tax_rate`, ..., or `plan pro: base_fee`.
    pub field: String,
    /// The database's value.
    pub database: String,
    /// The other catalog's value.
    pub catalog: String,
}

impl std::fmt::Display for CatalogDifference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: database {} vs scenario {}",
            self.field, self.database, self.catalog
        )
    }
}

/// Installs `catalog` into a database others share, unless it contradicts the catalog there, on
/// `conn` (the caller's transaction): with no settings row, the catalog is installed whole; with
/// one, its time zone, currency, tax rate and charge day are compared with the catalog's, and
/// every plan the database has under a key of the catalog's is compared term by term. Returns
/// the differences: when there are any it wrote nothing (settings, products or plans), and the
/// caller rolls back; else it added the products and plans the database lacked, and left the
/// settings row as it was.
///
/// # Errors
/// The database failed.
pub async fn install_or_compare(
    conn: &mut sqlx::PgConnection,
    catalog: &Catalog,
    at: DateTime<Utc>,
) -> Result<Vec<CatalogDifference>, sqlx::Error> {
    let settings: Option<(String, String, rust_decimal::Decimal, i16)> = sqlx::query_as(
        "select time_zone, currency::text, tax_rate, charge_day from platform_settings for share",
    )
    .fetch_optional(&mut *conn)
    .await?;
    let mut differences = Vec::new();
    let mut differ = |field: &str, database: String, catalog: String| {
        if database != catalog {
            differences.push(CatalogDifference {
                field: field.to_owned(),
                database,
                catalog,
            });
        }
    };
    match settings {
        None => write_settings(&mut *conn, catalog, at, "").await?,
        Some((zone, currency, tax, day)) => {
            differ("time_zone", zone, catalog.time_zone.name().to_owned());
            differ("currency", currency, catalog.currency.code().to_owned());
            differ(
                "tax_rate",
                tax.normalize().to_string(),
                catalog.tax_rate.normalize().to_string(),
            );
            differ(
                "charge_day",
                day.to_string(),
                catalog.charge_day.to_string(),
            );
        }
    }
    for plan in &catalog.plans {
        let row = match super::subscriptions::plan(&mut *conn, &plan.key).await {
            Ok(row) => row,
            Err(super::DomainError::Database(e)) => return Err(e),
            // Not there yet: added below.
            Err(_) => continue,
        };
        let there = read_plan(&mut *conn, &plan.key, &row).await?;
        let field = |name: &str| format!("plan {}: {name}", plan.key);
        differ(
            &field("product"),
            there.product.clone(),
            plan.product.clone(),
        );
        differ(
            &field("currency"),
            there.currency.code().to_owned(),
            plan.currency.code().to_owned(),
        );
        differ(
            &field("base_fee"),
            there.terms.base_fee.normalize().to_string(),
            plan.terms.base_fee.normalize().to_string(),
        );
        differ(
            &field("included"),
            format!("{:?}", there.terms.included),
            format!("{:?}", plan.terms.included),
        );
        let overage = |p: &Plan| {
            p.terms
                .overage
                .iter()
                .map(|(metric, o)| format!("{metric}: {} per {}", o.price.normalize(), o.block))
                .collect::<Vec<_>>()
                .join(", ")
        };
        differ(&field("overage"), overage(&there), overage(plan));
        differ(
            &field("limits"),
            format!("{:?}", there.limits),
            format!("{:?}", plan.limits),
        );
    }
    if differences.is_empty() {
        add_plans(conn, catalog, at).await?;
    }
    Ok(differences)
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
