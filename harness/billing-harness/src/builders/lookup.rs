//! What the builders look up in the test's database: the next number of its sequence, and the
//! product of a plan (remembered in the test's world).

use super::BuildError;
use crate::TestEnv;

/// The product of a plan in the installed catalog.
pub(crate) async fn plan_product(env: &TestEnv, plan: &str) -> Result<Option<String>, BuildError> {
    if let Some(product) = env
        .world()
        .plan_products
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(plan)
    {
        return Ok(Some(product.clone()));
    }
    let product: Option<String> = sqlx::query_scalar(
        "select p.key from plans pl join products p on p.id = pl.product_id where pl.key = $1",
    )
    .bind(plan)
    .fetch_optional(env.pool())
    .await?;
    if let Some(product) = &product {
        env.world()
            .plan_products
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(plan.to_owned(), product.clone());
    }
    Ok(product)
}

/// The next number of the database's `harness_sequence`.
pub(crate) async fn next_sequence(env: &TestEnv) -> Result<i64, BuildError> {
    Ok(sqlx::query_scalar("select nextval('harness_sequence')")
        .fetch_one(env.pool())
        .await?)
}
