//! Administration of a server, shared by the broker, the warm pool, the reaper and the background
//! work: the advisory-lock classes, the names the harness gives databases, quoting, and dropping a
//! database.
//!
//! Everything shared between processes is coordinated in PostgreSQL itself, with session-level
//! advisory locks, so it works the same on a throwaway cluster and on a server given by URL that
//! other machines use too:
//! - `PROCESS(token)`, shared: held for the life of the process on its control connection and
//!   on its background one, each taking it again when it is opened anew. A clone is named after
//!   its owner's token, so a clone whose owner lock is free belongs to a dead process and is
//!   reaped; one connection of the owner ended by the server leaves the lock held.
//! - `TEMPLATE(hash)`, shared: held by every process that uses that template (clones it, claims
//!   from or fills its warm pool). A reaper drops a template, and its warm pool, only while it
//!   holds this lock exclusively.
//! - `SETUP`: held while building a template (one process builds, the others wait and then find
//!   it ready) and while reaping half-built ones.
//! - `SLOT(i)`: the connection budget, one lock per connection the server can give tests; a test
//!   database holds one per connection of its pools, a process one per connection of its own.
//! - `KEEP`: held while a failed test's database is counted against the keep cap
//!   (`HARNESS_KEEP_FAILED`) and marked as kept, so that processes failing at once keep no more
//!   than the cap between them.
//! - `FILL(hash)`: held by the one process topping up a template's warm pool.
//!
//! Names: `bh_tpl_<hash>` a template, `bh_<hash>_<token>_<n>` a clone owned by the process of
//! `token`, `bh_pool_<hash>_<token>_<n>` a warm database nobody owns yet. The harness creates and
//! drops no other database.

use std::time::{Duration, Instant};

use sqlx::{Connection, Executor, PgConnection};

use super::EnvError;
use super::endpoint::Endpoint;

pub(crate) const LOCK_SETUP: i32 = 0x6268_0001;
pub(crate) const LOCK_PROCESS: i32 = 0x6268_0002;
pub(crate) const LOCK_TEMPLATE: i32 = 0x6268_0003;
pub(crate) const LOCK_SLOT: i32 = 0x6268_0004;
pub(crate) const LOCK_KEEP: i32 = 0x6268_0005;
pub(crate) const LOCK_FILL: i32 = 0x6268_0006;

/// The comment that marks a database kept for a failed test; the reaper leaves those alone.
pub(crate) const KEPT_COMMENT: &str = "billing-harness: kept";

/// What a database of the harness is, read from its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `bh_tpl_<hash>`.
    Template { hash: String },
    /// `bh_<hash>_<token>_<n>`: a test's database, owned by the process of `token`.
    Clone { hash: String, token: u32 },
    /// `bh_pool_<hash>_<token>_<n>`: a warm database, cloned ahead.
    Warm { hash: String },
}

impl Kind {
    /// The kind of `name`, or `None` for a name the harness does not give.
    pub(crate) fn of(name: &str) -> Option<Kind> {
        let rest = name.strip_prefix("bh_")?;
        if let Some(hash) = rest.strip_prefix("tpl_") {
            return Some(Kind::Template {
                hash: hash.to_owned(),
            });
        }
        if let Some(warm) = rest.strip_prefix("pool_") {
            let (hash, _) = warm.split_once('_')?;
            return Some(Kind::Warm {
                hash: hash.to_owned(),
            });
        }
        let mut parts = rest.split('_');
        let (hash, token, n) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || token.len() != 8 || n.parse::<u64>().is_err() {
            return None;
        }
        Some(Kind::Clone {
            hash: hash.to_owned(),
            token: u32::from_str_radix(token, 16).ok()?,
        })
    }
}

/// The name of the `n`th clone of the template `hash` made by the process of `token`.
pub(crate) fn clone_name(hash: &str, token: u32, n: u64) -> String {
    format!("bh_{hash}_{token:08x}_{n}")
}

/// The name of the `n`th warm database of the template `hash` cloned by the process of `token`.
pub(crate) fn warm_name(hash: &str, token: u32, n: u64) -> String {
    format!("bh_pool_{hash}_{token:08x}_{n}")
}

/// A `like` pattern for the warm databases of the template `hash`.
pub(crate) fn warm_pattern(hash: &str) -> String {
    format!("bh\\_pool\\_{hash}\\_%")
}

/// The `application_name` of a process's connection: `billing-harness <role> <token>`, so that
/// `pg_stat_activity` tells whose control or background connection it is.
pub(crate) fn app_name(role: &str, token: u32) -> String {
    format!("billing-harness {role} {token:08x}")
}

/// A connection to the administration database of the server at `endpoint`, named `name` in
/// `pg_stat_activity` (see [`app_name`]).
pub(crate) async fn connect(endpoint: &Endpoint, name: &str) -> Result<PgConnection, EnvError> {
    let options = endpoint.admin_options().application_name(name);
    PgConnection::connect_with(&options)
        .await
        .map_err(EnvError::db(
            "connect to the server's administration database",
        ))
}

/// Takes (`true`) or releases (`false`) the server-wide setup lock.
pub(crate) async fn setup_lock(control: &mut PgConnection, take: bool) -> Result<(), EnvError> {
    let sql = if take {
        "select pg_advisory_lock($1, 0)"
    } else {
        "select pg_advisory_unlock($1, 0)"
    };
    sqlx::query(sql)
        .bind(LOCK_SETUP)
        .execute(control)
        .await
        .map(drop)
        .map_err(EnvError::db("take or release the setup lock"))
}

/// Tries the advisory lock `(class, key)` exclusively, without waiting.
pub(crate) async fn try_lock(
    conn: &mut PgConnection,
    class: i32,
    key: i32,
) -> Result<bool, EnvError> {
    sqlx::query_scalar("select pg_try_advisory_lock($1, $2)")
        .bind(class)
        .bind(key)
        .fetch_one(conn)
        .await
        .map_err(EnvError::db("try an advisory lock"))
}

/// Takes this process's liveness lock, `PROCESS(token)` shared, on `conn`.
pub(crate) async fn hold_liveness(conn: &mut PgConnection, token: u32) -> Result<(), EnvError> {
    sqlx::query("select pg_advisory_lock_shared($1, $2)")
        .bind(LOCK_PROCESS)
        .bind(token as i32)
        .execute(conn)
        .await
        .map(drop)
        .map_err(EnvError::db("take this process's liveness lock"))
}

/// Releases the advisory lock `(class, key)` taken exclusively.
pub(crate) async fn unlock(conn: &mut PgConnection, class: i32, key: i32) -> Result<(), EnvError> {
    sqlx::query("select pg_advisory_unlock($1, $2)")
        .bind(class)
        .bind(key)
        .execute(conn)
        .await
        .map(drop)
        .map_err(EnvError::db("release an advisory lock"))
}

/// Drops a database. Its sessions are ended first and waited for in short steps: `WITH (FORCE)`
/// alone would sleep in 100 ms steps until they are gone.
pub(crate) async fn drop_database(control: &mut PgConnection, name: &str) -> Result<(), EnvError> {
    if name.starts_with("bh_tpl_") {
        control
            .execute(
                format!(
                    "alter database {} with is_template false allow_connections true",
                    ident(name)
                )
                .as_str(),
            )
            .await
            .map_err(EnvError::db(format!("unseal {name} before dropping it")))?;
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let sessions: i64 = sqlx::query_scalar(
            "select count(pg_terminate_backend(pid)) from pg_stat_activity \
             where datname = $1 and pid <> pg_backend_pid()",
        )
        .bind(name)
        .fetch_one(&mut *control)
        .await
        .map_err(EnvError::db(format!("end the sessions on {name}")))?;
        if sessions == 0 || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    control
        .execute(format!("drop database if exists {} with (force)", ident(name)).as_str())
        .await
        .map(drop)
        .map_err(EnvError::db(format!("drop {name}")))
}

/// A quoted SQL identifier.
pub(crate) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kind_of_a_database_is_read_from_its_name() {
        let clone = |hash: &str, token| Kind::Clone {
            hash: hash.into(),
            token,
        };
        assert_eq!(
            Kind::of("bh_0123456789ab_0000002a_7"),
            Some(clone("0123456789ab", 42))
        );
        assert_eq!(
            Kind::of(&clone_name("0123456789ab", 42, 7)),
            Some(clone("0123456789ab", 42))
        );
        assert_eq!(
            Kind::of("bh_tpl_0123456789ab"),
            Some(Kind::Template {
                hash: "0123456789ab".into()
            })
        );
        assert_eq!(
            Kind::of(&warm_name("0123456789ab", 42, 3)),
            Some(Kind::Warm {
                hash: "0123456789ab".into()
            })
        );
        for other in [
            "bh_x_zz_1",
            "postgres",
            "bh_a_0000002a_x",
            "bh_a_0000002a_1_2",
        ] {
            assert_eq!(Kind::of(other), None, "{other}");
        }
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(ident("bh_1"), "\"bh_1\"");
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
    }
}
