//! Marking a database the harness did not create (a shared QA database) as one it may write to,
//! and preparing it: the clock function and the caller's migrations; and the check that refuses
//! to attach a database without the marker.

use sqlx::postgres::PgPoolOptions;
use sqlx::{Executor, PgPool};

use super::EnvError;
use super::MigrationSource;
use super::conninfo::{self, redact};
use super::template::Loaded;

const MARKER: &str = "create table if not exists harness_marker (\
    env text not null, marked_at timestamptz not null)";

/// A small pool on the database at `url`, read as libpq reads it (see [`super::parse_url`]).
async fn connect(url: &str) -> Result<PgPool, EnvError> {
    let options = conninfo::parse_given(url, "--database-url")?;
    PgPoolOptions::new()
        .max_connections(2)
        .connect_with(options)
        .await
        .map_err(EnvError::db(format!("connect to {}", redact(url))))
}

/// Marks the database at `url` for environment `env` (`qa`, say): installs `harness_now()` and
/// `migrations` if missing, and records the marker. Marking twice is harmless.
///
/// # Errors
/// The database cannot be reached, or a migration fails.
pub async fn mark(url: &str, env: &str, migrations: &MigrationSource) -> Result<(), EnvError> {
    let pool = connect(url).await?;
    pool.execute(super::template::CLOCK_SQL)
        .await
        .map_err(EnvError::db("install harness_now()"))?;
    let migrator = Loaded::of(migrations).await?;
    migrator
        .get()
        .run(&pool)
        .await
        .map_err(|e| EnvError::Migrate {
            origin: migrations.origin(),
            source: std::sync::Arc::new(e),
        })?;
    pool.execute(MARKER)
        .await
        .map_err(EnvError::db("create harness_marker"))?;
    sqlx::query("insert into harness_marker (env, marked_at) values ($1, $2)")
        .bind(env)
        .bind(super::wall_clock::wall_now())
        .execute(&pool)
        .await
        .map_err(EnvError::db("record the marker"))?;
    pool.close().await;
    Ok(())
}

/// The environment the database at `url` was marked for, if it was.
///
/// # Errors
/// The database cannot be reached.
pub async fn marker(url: &str) -> Result<Option<String>, EnvError> {
    let pool = connect(url).await?;
    let marked = read(&pool)
        .await
        .map_err(EnvError::db("read the harness marker"))?;
    pool.close().await;
    Ok(marked)
}

/// The environment the database behind `pool` was marked for; [`EnvError::NotMarked`] (naming
/// `name` and the URL as `shown`, its password hidden) when it has no marker.
///
/// # Errors
/// No marker, or the database failed.
pub(crate) async fn require(pool: &PgPool, name: &str, shown: &str) -> Result<String, EnvError> {
    let marked = read(pool)
        .await
        .map_err(EnvError::db(format!("read the harness marker of {name}")))?;
    marked.ok_or_else(|| EnvError::NotMarked {
        database: name.to_owned(),
        url: shown.to_owned(),
    })
}

/// The environment of the newest marker, `None` without one (or without the marker table).
async fn read(pool: &PgPool) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("select env from harness_marker order by marked_at desc limit 1")
        .fetch_optional(pool)
        .await
        .or_else(|e| match e.as_database_error().and_then(|d| d.code()) {
            // No marker table: not marked.
            Some(code) if code == "42P01" => Ok(None),
            _ => Err(e),
        })
}
