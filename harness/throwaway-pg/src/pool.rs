//! The warm pool: databases cloned from a template ahead of time, waiting in the server for the
//! next test of any process.
//!
//! A warm database is named `bh_pool_<hash>_<token>_<n>`. A test takes one by renaming it to its
//! own clone name, `bh_<hash>_<token>_<n>`: `ALTER DATABASE ... RENAME` is atomic, so of two
//! processes that reach for the same one, one gets it and the other tries the next, and a taken
//! database belongs to its taker's liveness lock like any clone. Nobody ever connects to a warm
//! database, so the rename never waits for sessions.
//!
//! One process at a time tops a template's pool up to `HARNESS_WARM_POOL` (under `FILL(hash)`),
//! one clone per step of its background work, and only while the state folder keeps room for the
//! next test's own clone. A clone that a process sent just before it ended is finished by the
//! server, so the pool fills across short-lived processes (cargo-nextest's, one per test). The
//! reaper drops a pool with its template.

use sqlx::{Executor, PgConnection};

use super::EnvError;
use super::admin::{ident, warm_pattern};
use super::template::Migrations;

/// Takes a warm database of the template `hash` by renaming it to `name`. Returns `false` when
/// the pool has none (or every one was taken meanwhile).
pub(crate) async fn claim(
    control: &mut PgConnection,
    hash: &str,
    name: &str,
) -> Result<bool, EnvError> {
    // One round trip: candidates in random order (processes claiming at once rarely collide),
    // each rename in a subtransaction of its own so that losing a race tries the next one.
    let sql = format!(
        "do $$ declare c text; begin \
           for c in select datname from pg_database \
                    where datname like '{pattern}' and not datistemplate \
                    and datdba = (select oid from pg_roles where rolname = current_user) \
                    order by random() loop \
             begin \
               execute format('alter database %I rename to %I', c, '{name}'); \
               return; \
             exception when others then null; \
             end; \
           end loop; \
           raise exception 'the warm pool is empty' using errcode = 'P0002'; \
         end $$",
        pattern = warm_pattern(hash),
    );
    match control.execute(sql.as_str()).await {
        Ok(_) => Ok(true),
        Err(e) if e.as_database_error().and_then(|d| d.code()).as_deref() == Some("P0002") => {
            Ok(false)
        }
        Err(e) => Err(EnvError::db(format!("take a warm database into {name}"))(e)),
    }
}

/// The warm databases of the template `hash` that this role may take, oldest first.
pub(crate) async fn warm(conn: &mut PgConnection, hash: &str) -> Result<Vec<String>, EnvError> {
    sqlx::query_scalar(
        "select datname::text from pg_database where datname like $1 and not datistemplate \
         and datdba = (select oid from pg_roles where rolname = current_user) order by oid",
    )
    .bind(warm_pattern(hash))
    .fetch_all(conn)
    .await
    .map_err(EnvError::db("count the warm databases"))
}

/// Clones the template of `migrations` into the warm database `name`.
pub(crate) async fn clone(
    conn: &mut PgConnection,
    migrations: &Migrations,
    name: &str,
    strategy: &str,
) -> Result<(), EnvError> {
    let sql = format!(
        "create database {} template {}{strategy}",
        ident(name),
        ident(&migrations.template_name())
    );
    conn.execute(sql.as_str())
        .await
        .map(drop)
        .map_err(EnvError::db(format!("clone a warm database into {name}")))
}

/// What a step of topping up should do, given the pool's level, its cap and whether the state
/// folder has room for one more database besides the next test's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Clone one more.
    Clone,
    /// Drop one: the pool is over its cap (the cap was lowered, or clones sent by processes that
    /// ended arrived after the count).
    Trim,
    /// Nothing to do: full, or no room.
    Done,
}

/// The next step of topping up a pool at `level` to `cap`.
pub(crate) fn next_step(level: usize, cap: u32, room: bool) -> Step {
    let cap = cap as usize;
    if level > cap {
        Step::Trim
    } else if level < cap && room {
        Step::Clone
    } else {
        Step::Done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_is_topped_up_to_its_cap_with_room_and_trimmed_above_it() {
        let cases = [
            // level, cap, room, step
            (0, 2, true, Step::Clone),
            (1, 2, true, Step::Clone),
            (2, 2, true, Step::Done),
            (3, 2, true, Step::Trim),
            (3, 2, false, Step::Trim),
            (0, 2, false, Step::Done),
            (0, 0, true, Step::Done),
            (1, 0, true, Step::Trim),
        ];
        for (level, cap, room, step) in cases {
            assert_eq!(next_step(level, cap, room), step, "{level} {cap} {room}");
        }
    }
}
