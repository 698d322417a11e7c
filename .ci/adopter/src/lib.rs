//! A backend's order book, as small as a test needs: orders dated by the database's clock.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

/// Places an order for `item`, dated by the database (`harness_now()` in tests, through the
/// column's default); returns its id.
///
/// # Errors
/// The database failed.
pub async fn place(pool: &PgPool, item: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("insert into orders (item) values ($1) returning id")
        .bind(item)
        .fetch_one(pool)
        .await
}

/// The orders placed before `cutoff`, oldest first.
///
/// # Errors
/// The database failed.
pub async fn placed_before(pool: &PgPool, cutoff: DateTime<Utc>) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("select item from orders where placed_at < $1 order by placed_at, id")
        .bind(cutoff)
        .fetch_all(pool)
        .await
}
