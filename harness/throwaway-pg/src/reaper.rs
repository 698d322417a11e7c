//! The reaper: drops what processes that ended left behind on a server, in the background of
//! the next process that uses it, one database per step.
//!
//! - A clone whose owner process is gone (its `PROCESS` lock is free), unless it was kept for a
//!   failed test. A passing test's clone is dropped in the background of its own process; when
//!   that process ends first (cargo-nextest ends it as soon as the test is done), the reaper of a
//!   later one drops it.
//! - A half-built template, when nobody builds (the `SETUP` lock is free).
//! - A template nobody uses (its `TEMPLATE` lock is free), with its warm pool, once it is
//!   *stale*: no process began to use it for an hour, or for a minute when a newer template of its
//!   lineage exists (its migrations were edited). A template therefore survives the gaps between
//!   the processes of a run, however its migrations were given.
//! - Warm databases whose template is gone.
//!
//! Which databases go is decided by [`plan`] (`decide::reap`), a pure function of the list of
//! databases and the server's clock; [`run`] checks each one's lock and drops it.

use sqlx::PgConnection;

use super::EnvError;
use super::admin::{LOCK_PROCESS, LOCK_SETUP, LOCK_TEMPLATE, drop_database, try_lock, unlock};
pub(crate) use super::decide::reap::{Listed, Reap, plan};
use super::template::lock_key_of;

/// Every database of the harness on the server, and the server's clock in seconds.
pub(crate) async fn list(conn: &mut PgConnection) -> Result<(Vec<Listed>, i64), EnvError> {
    let rows: Vec<(String, bool, String, i64)> = sqlx::query_as(
        "select datname::text, datistemplate, coalesce(shobj_description(oid, 'pg_database'), ''), \
         extract(epoch from now())::bigint from pg_database where datname like 'bh\\_%'",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(EnvError::db("list the harness's databases"))?;
    let now = match rows.first() {
        Some(row) => row.3,
        None => 0,
    };
    let listed = rows
        .into_iter()
        .map(|(name, is_template, comment, _)| Listed {
            name,
            is_template,
            comment,
        })
        .collect();
    Ok((listed, now))
}

/// Drops what `reap` names if its lock is free; returns the names dropped.
pub(crate) async fn run(conn: &mut PgConnection, reap: &Reap) -> Result<Vec<String>, EnvError> {
    let (class, key, names) = match reap {
        Reap::Orphan { name, token } => (LOCK_PROCESS, *token as i32, vec![name.clone()]),
        Reap::HalfBuilt { name } => (LOCK_SETUP, 0, vec![name.clone()]),
        Reap::Stale { name, hash, warm } => {
            let mut names = warm.clone();
            names.push(name.clone());
            (LOCK_TEMPLATE, lock_key_of(hash), names)
        }
        Reap::Stray { hash, warm } => (LOCK_TEMPLATE, lock_key_of(hash), warm.clone()),
    };
    if !try_lock(conn, class, key).await? {
        return Ok(Vec::new());
    }
    // Held while dropping: a process that takes a template's lock shared before looking for it
    // waits, and then builds it again, rather than cloning one that is going.
    let dropped = async {
        if let Reap::HalfBuilt { name } = reap {
            let sealed: Option<bool> =
                sqlx::query_scalar("select datistemplate from pg_database where datname = $1")
                    .bind(name)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(EnvError::db("look at a half-built template"))?;
            // Finished by its builder since the list was read, or gone.
            if sealed != Some(false) {
                return Ok(Vec::new());
            }
        }
        for name in &names {
            drop_database(conn, name).await?;
        }
        Ok(names)
    }
    .await;
    unlock(conn, class, key).await?;
    dropped
}
