//! The month's advisory lock, which serializes a month's close with the usage written for it.

use sqlx::PgConnection;

use crate::model::Month;

/// The advisory-lock class that serializes a month's close with the usage written for that
/// month: usage takes it shared, the close exclusive (see [`month_lock`]).
const MONTH_LOCK: i32 = 0x6268_0101;

/// Takes `month`'s lock until the end of the transaction: `shared` for a usage write, exclusive
/// for the close. So a usage write either commits before the close reads the month's usage (and
/// is billed) or starts after the close committed (and is refused with `period_closed`); it is
/// never accepted and then missed.
pub(crate) async fn month_lock(
    conn: &mut PgConnection,
    month: Month,
    shared: bool,
) -> Result<(), sqlx::Error> {
    let key = month.year() * 12 + i32::try_from(month.month()).unwrap_or(0) - 1;
    let sql = if shared {
        "select pg_advisory_xact_lock_shared($1, $2)"
    } else {
        "select pg_advisory_xact_lock($1, $2)"
    };
    sqlx::query(sql)
        .bind(MONTH_LOCK)
        .bind(key)
        .execute(conn)
        .await
        .map(drop)
}
