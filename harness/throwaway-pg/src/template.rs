//! Migrated templates: which migrations, their hash (the template's name), how a template is
//! built so that clones of it are ready to use, and the comment that says when it was last used.
//!
//! A template is named after its content: the clock objects if they go in, and every migration's
//! version, description and checksum. The same migrations from a folder, from
//! `HARNESS_MIGRATIONS` or compiled in share one template, and editing a migration makes another.

use sha2::{Digest, Sha256};
use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Executor, PgConnection};

use super::EnvError;
use super::admin::{drop_database, ident};
use super::config::MigrationSource;
use super::endpoint::Endpoint;

/// The test clock's table and `harness_now()`, installed before any migration.
pub(crate) const CLOCK_SQL: &str = include_str!("clock.sql");

/// What a test database is made of: the migrations, and whether the harness's database clock
/// (the `harness_clock` table and `harness_now()`) goes in before them. Each schema has a template
/// of its own.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Schema {
    migrations: MigrationSource,
    db_clock: bool,
}

impl Schema {
    /// The schema of `migrations`, with the database clock.
    pub fn new(migrations: MigrationSource) -> Schema {
        Schema {
            migrations,
            db_clock: true,
        }
    }

    /// The same migrations with (`true`, the default) or without the database clock.
    #[must_use]
    pub fn with_db_clock(mut self, db_clock: bool) -> Schema {
        self.db_clock = db_clock;
        self
    }

    /// Where the migrations come from.
    pub fn migrations(&self) -> &MigrationSource {
        &self.migrations
    }

    /// Whether `harness_clock` and `harness_now()` go in before the migrations.
    pub fn db_clock(&self) -> bool {
        self.db_clock
    }
}

impl From<MigrationSource> for Schema {
    fn from(migrations: MigrationSource) -> Schema {
        Schema::new(migrations)
    }
}

/// A set of migrations and the name of the template built from it.
#[derive(Debug)]
pub(crate) struct Migrations {
    pub(crate) schema: Schema,
    migrator: Loaded,
    /// First 12 hex digits of the SHA-256 over the clock SQL (when it goes in) and every
    /// migration.
    pub(crate) hash: String,
}

impl Migrations {
    /// Loads the migrations of `schema` and hashes them.
    pub(crate) async fn load(schema: &Schema) -> Result<Migrations, EnvError> {
        let migrator = Loaded::of(&schema.migrations).await?;
        let mut digest = Sha256::new();
        if schema.db_clock {
            digest.update(CLOCK_SQL.as_bytes());
        } else {
            digest.update(b"without the database clock");
        }
        for m in migrator.get().iter() {
            digest.update(m.version.to_le_bytes());
            digest.update(m.description.as_bytes());
            digest.update(&*m.checksum);
        }
        let hash: String = digest
            .finalize()
            .iter()
            .take(6)
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(Migrations {
            schema: schema.clone(),
            migrator,
            hash,
        })
    }

    /// The template database's name.
    pub(crate) fn template_name(&self) -> String {
        format!("bh_tpl_{}", self.hash)
    }

    /// A 32-bit key for the advisory locks of this template (in use, being filled).
    pub(crate) fn lock_key(&self) -> i32 {
        lock_key_of(&self.hash)
    }

    /// Where the migrations come from, for messages.
    pub(crate) fn origin(&self) -> String {
        self.schema.migrations.origin()
    }

    /// The line of descent of this template: its first migration and whether the clock goes in.
    /// Editing or adding migrations keeps it, so a newer template of the same lineage supersedes
    /// an older one; two schemas that begin alike share it, which costs at most a rebuild.
    pub(crate) fn lineage(&self) -> String {
        let first = self
            .migrator
            .get()
            .iter()
            .next()
            .map_or_else(String::new, |m| format!("{} {}", m.version, m.description));
        let clock = if self.schema.db_clock {
            ""
        } else {
            " (no clock)"
        };
        // A comment is one line of text the harness parses back.
        format!("{first}{clock}").replace(['\n', '\'', '$'], " ")
    }

    /// Runs the clock SQL (unless left out) and the migrations into the (new, empty) database
    /// `name`.
    pub(crate) async fn apply(&self, endpoint: &Endpoint, name: &str) -> Result<(), EnvError> {
        // A one-connection pool: `Migrator::run` on a bare connection is not `Send` enough to
        // run inside a spawned task.
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(endpoint.options(name))
            .await
            .map_err(EnvError::db(format!("connect to the new database {name}")))?;
        let result = async {
            if self.schema.db_clock {
                pool.execute(CLOCK_SQL)
                    .await
                    .map_err(EnvError::db("install harness_now() into the template"))?;
            }
            self.migrator
                .get()
                .run(&pool)
                .await
                .map_err(EnvError::migrate(self.origin()))
        }
        .await;
        pool.close().await;
        result
    }
}

/// A migrator compiled in, or loaded from a folder at run time.
#[derive(Debug)]
pub(crate) enum Loaded {
    Static(&'static Migrator),
    Owned(Migrator),
}

impl Loaded {
    /// The migrations of `source`, read from its folder if it has one.
    pub(crate) async fn of(source: &MigrationSource) -> Result<Loaded, EnvError> {
        Ok(match source {
            MigrationSource::Named { migrator, .. } | MigrationSource::Embedded(migrator) => {
                Loaded::Static(migrator)
            }
            MigrationSource::Dir(dir) => {
                if !dir.is_dir() {
                    return Err(EnvError::NoMigrations {
                        path: dir.clone(),
                        problem: if dir.exists() {
                            "is not a folder".into()
                        } else {
                            "does not exist".into()
                        },
                    });
                }
                Loaded::Owned(
                    Migrator::new(dir.as_path())
                        .await
                        .map_err(EnvError::migrate(dir.display().to_string()))?,
                )
            }
        })
    }

    pub(crate) fn get(&self) -> &Migrator {
        match self {
            Loaded::Static(migrator) => migrator,
            Loaded::Owned(migrator) => migrator,
        }
    }
}

/// The advisory-lock key of a template hash (its first 8 hex digits).
pub(crate) fn lock_key_of(hash: &str) -> i32 {
    u32::from_str_radix(hash.get(..8).unwrap_or("0"), 16).unwrap_or(0) as i32
}

/// How a template's comment begins: `billing-harness template used=<epoch> lineage=<...>`.
const COMMENT: &str = "billing-harness template used=";

/// What a template's comment says: when a process last began to use it (the server's clock, in
/// seconds since 1970) and its lineage. A template without one (an older harness's) was last
/// used at 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub(crate) used: i64,
    pub(crate) lineage: String,
}

impl Stamp {
    /// Reads a database's comment.
    pub(crate) fn parse(comment: &str) -> Stamp {
        let parsed = comment.strip_prefix(COMMENT).and_then(|rest| {
            let (used, lineage) = rest.split_once(" lineage=")?;
            Some(Stamp {
                used: used.parse().ok()?,
                lineage: lineage.to_owned(),
            })
        });
        parsed.unwrap_or(Stamp {
            used: 0,
            lineage: String::new(),
        })
    }
}

/// Records that the template of `migrations` is used now, by the server's clock (a comment; the
/// reaper reads it).
pub(crate) async fn stamp(
    control: &mut PgConnection,
    migrations: &Migrations,
) -> Result<(), EnvError> {
    let sql = format!(
        "do $$ begin execute format('comment on database %I is %L', '{name}', \
         '{COMMENT}' || extract(epoch from now())::bigint || ' lineage={lineage}'); end $$",
        name = migrations.template_name(),
        lineage = migrations.lineage(),
    );
    control
        .execute(sql.as_str())
        .await
        .map(drop)
        .map_err(EnvError::db(format!(
            "record the use of {}",
            migrations.template_name()
        )))
}

/// Builds the template unless a complete one exists. A database of the template's name that is
/// not marked as a template is a build that crashed half-way: it is dropped and built again.
/// Returns whether it built one. Runs under the setup lock.
pub(crate) async fn build(
    control: &mut PgConnection,
    endpoint: &Endpoint,
    migrations: &Migrations,
) -> Result<bool, EnvError> {
    let name = migrations.template_name();
    let complete: Option<bool> =
        sqlx::query_scalar("select datistemplate from pg_database where datname = $1")
            .bind(&name)
            .fetch_optional(&mut *control)
            .await
            .map_err(EnvError::db("look for the template"))?;
    match complete {
        Some(true) => return Ok(false),
        Some(false) => drop_database(control, &name).await?,
        None => {}
    }
    control
        .execute(format!("create database {} template template0", ident(&name)).as_str())
        .await
        .map_err(EnvError::db(format!("create the template {name}")))?;
    if let Err(e) = migrations.apply(endpoint, &name).await {
        let _ = drop_database(control, &name).await;
        return Err(e);
    }
    stamp(control, migrations).await?;
    control
        .execute(
            format!(
                "alter database {} with is_template true allow_connections false",
                ident(&name)
            )
            .as_str(),
        )
        .await
        .map_err(EnvError::db(format!("seal the template {name}")))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_reads_back_and_an_unknown_comment_reads_as_never_used() {
        assert_eq!(
            Stamp::parse("billing-harness template used=1780000000 lineage=20260101000000 notes"),
            Stamp {
                used: 1_780_000_000,
                lineage: "20260101000000 notes".into()
            }
        );
        for comment in [
            "",
            "something else",
            "billing-harness template used=x lineage=y",
        ] {
            assert_eq!(Stamp::parse(comment).used, 0, "{comment}");
        }
    }
}
