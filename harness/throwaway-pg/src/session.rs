//! A process's session with its server, shared by the broker and its background work: the
//! control connection, the connection budget, the templates in use, and the queue of background
//! jobs; the state it is opened from; and the dropping of kept databases.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sqlx::{Connection, Executor, PgConnection};
use tokio::sync::{mpsc, oneshot};

use super::EnvError;
use super::admin::{
    self, KEPT_COMMENT, LOCK_PROCESS, LOCK_SLOT, LOCK_TEMPLATE, clone_name, drop_database, ident,
    setup_lock,
};
use super::budget::Budget;
use super::config::CloneStrategy;
use super::config::Config;
use super::decide;
use super::decide::keep::{KeptMark, ROOM_RESERVE, drops_kept, has_room};
use super::lease::Lease;
use super::server::{self, Backend, Server};
use super::template::{self, Migrations, Schema};

/// Connections a process holds of its own: the control connection and the background one.
const OWN_CONNECTIONS: u32 = 2;

/// Whose kept databases [`super::Broker::drop_kept`] drops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeptBy {
    /// Those the operating-system user of this process kept (its uid is in their mark).
    ThisUser,
    /// Everyone's, those of an older harness (which marked no user) included.
    AnyUser,
}

/// A piece of background work.
#[derive(Debug)]
pub(crate) enum Job {
    /// Drop a passing test's database and free its slots.
    Drop(Lease),
    /// Record that this process began to use a template.
    Stamp(Arc<Migrations>),
    /// Top a template's warm pool up.
    Fill(Arc<Migrations>),
    /// Reap what ended processes left (once per process).
    Reap,
    /// Drop every kept database (`HARNESS_DROP_KEPT=1`).
    DropKept,
    /// Answer once everything asked before is done (`drops_only`: once the databases to drop
    /// are gone).
    Settle {
        done: oneshot::Sender<()>,
        drops_only: bool,
    },
}

/// What a broker holds from its start: its configuration, this process's token and the counters
/// of its names, and the session once opened.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) config: Config,
    pub(crate) token: u32,
    pub(crate) seq: AtomicU64,
    /// Failed tests' databases dropped over the keep cap by this process.
    pub(crate) dropped_over_cap: AtomicU64,
    pub(crate) session: tokio::sync::OnceCell<Result<Arc<Session>, EnvError>>,
}

impl State {
    /// The next name for a clone of the template `hash` made by this process.
    pub(crate) fn next_name(&self, hash: &str) -> String {
        clone_name(hash, self.token, self.seq.fetch_add(1, Ordering::Relaxed))
    }

    /// The next name for a warm database of the template `hash` cloned by this process.
    pub(crate) fn next_warm_name(&self, hash: &str) -> String {
        admin::warm_name(hash, self.token, self.seq.fetch_add(1, Ordering::Relaxed))
    }
}

/// The connection to the server this process made on first use, and what goes with it.
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) server: Server,
    /// This process's token, whose `PROCESS` lock says its clones are in use.
    pub(crate) token: u32,
    pub(crate) control: tokio::sync::Mutex<PgConnection>,
    pub(crate) version: i32,
    /// The server's `fsync` setting.
    fsync: bool,
    /// How this server's clones are made ([`crate::decide::clone`]).
    pub(crate) strategy: Option<CloneStrategy>,
    pub(crate) budget: Budget,
    /// Whether the process's own connections are counted in the budget yet (with its first
    /// database).
    own_counted: AtomicBool,
    templates: tokio::sync::Mutex<HashMap<Schema, Arc<Migrations>>>,
    /// The background work's queue.
    pub(crate) jobs: mpsc::UnboundedSender<Job>,
    /// Background work held back until the database being made is handed out.
    later: std::sync::Mutex<Vec<Job>>,
}

impl Session {
    pub(crate) async fn open(
        config: &Config,
        token: u32,
        jobs: mpsc::UnboundedSender<Job>,
    ) -> Result<Session, EnvError> {
        let mut server = server::connect(config, true).await?;
        let name = admin::app_name("control", token);
        let mut control = match admin::connect(&server.endpoint, &name).await {
            Ok(control) => control,
            // Joined without a probe, and the server does not answer: the slow way in checks
            // it and starts a new one if it is dead.
            Err(_) if server.joined_unprobed => {
                drop(server);
                server = server::connect(config, false).await?;
                admin::connect(&server.endpoint, &name).await?
            }
            Err(e) => return Err(e),
        };
        // The liveness lock and the settings in one round trip.
        let (version, fsync, max_connections, reserved, may_create): (i32, bool, i32, i32, bool) =
            sqlx::query_as(
                "select current_setting('server_version_num')::int, \
                 current_setting('fsync')::bool, \
                 current_setting('max_connections')::int, \
                 current_setting('superuser_reserved_connections')::int, \
                 (select rolcreatedb or rolsuper from pg_roles where rolname = current_user) \
                 from (select pg_advisory_lock_shared($1, $2)) as liveness",
            )
            .bind(LOCK_PROCESS)
            .bind(token as i32)
            .fetch_one(&mut control)
            .await
            .map_err(EnvError::db(
                "take this process's liveness lock and read the server's settings",
            ))?;
        if version < 130_000 {
            return Err(EnvError::Unavailable {
                backend: "url",
                reason: format!("the server runs PostgreSQL {version}, older than 13"),
                fix: "use PostgreSQL 13 or newer (15+ for the fastest clones)".into(),
            });
        }
        if !may_create {
            return Err(EnvError::Unavailable {
                backend: "url",
                reason: "the role in HARNESS_DATABASE_URL may not create databases".into(),
                fix: "grant it with `ALTER ROLE <user> CREATEDB`, or use another role".into(),
            });
        }
        Ok(Session {
            server,
            token,
            control: tokio::sync::Mutex::new(control),
            version,
            fsync,
            strategy: decide::clone::strategy(config.clone_strategy, version, fsync),
            budget: Budget::new(max_connections, reserved),
            own_counted: AtomicBool::new(false),
            templates: tokio::sync::Mutex::new(HashMap::new()),
            jobs,
            later: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// How a clone is made on this server when `wanted` names the strategy ([`crate::Broker::acquire`]
    /// does, for benchmarks): as wanted, or no clause before PostgreSQL 15.
    pub(crate) fn strategy_for(&self, wanted: CloneStrategy) -> Option<CloneStrategy> {
        decide::clone::strategy(Some(wanted), self.version, self.fsync)
    }

    /// A database of `schema`'s template holding `connections` slots: from the warm pool when
    /// `warm` and it has one, else cloned now with `strategy`.
    pub(crate) async fn lease(
        &self,
        state: &State,
        schema: &Schema,
        connections: u32,
        warm: bool,
        strategy: Option<CloneStrategy>,
    ) -> Result<Lease, EnvError> {
        let migrations = self.template(schema).await?;
        let slots = self.take_slots(connections).await?;
        let mut lease = Lease {
            name: state.next_name(&migrations.hash),
            endpoint: self.server.endpoint.clone(),
            backend: self.server.backend,
            warm: false,
            slots,
        };
        let made = async {
            if warm {
                let mut control = self.control.lock().await;
                lease.warm =
                    super::pool::claim(&mut control, &migrations.hash, &lease.name).await?;
            }
            if !lease.warm {
                self.create_clone(&lease.name, &migrations, strategy)
                    .await?;
            }
            Ok(())
        }
        .await;
        if warm {
            self.later(Job::Fill(migrations.clone()));
        }
        self.start_later();
        match made {
            Ok(()) => Ok(lease),
            Err(e) => {
                self.budget.give_back(&self.control, &lease.slots).await;
                Err(e)
            }
        }
    }

    /// Takes `connections` slots of the budget; with the first database of the process, the
    /// process's own connections are counted too (and kept for its life).
    pub(crate) async fn take_slots(&self, connections: u32) -> Result<Vec<u32>, EnvError> {
        let own = if self.own_counted.swap(true, Ordering::AcqRel) {
            0
        } else {
            OWN_CONNECTIONS
        };
        match self.budget.take(&self.control, connections + own).await {
            Ok(mut slots) => {
                slots.truncate(connections as usize);
                Ok(slots)
            }
            Err(e) => {
                if own > 0 {
                    self.own_counted.store(false, Ordering::Release);
                }
                Err(e)
            }
        }
    }

    /// The template for `schema`, built once per server under the setup lock, and held in use
    /// for the life of the process. Its first use in a process is recorded, and starts the
    /// reaper, in the background.
    pub(crate) async fn template(&self, schema: &Schema) -> Result<Arc<Migrations>, EnvError> {
        let mut templates = self.templates.lock().await;
        if let Some(found) = templates.get(schema) {
            return Ok(found.clone());
        }
        let migrations = Migrations::load(schema).await?;
        // In use first, then looked for: a reaper drops a template only while it holds the
        // template's lock exclusively, so once this shared lock is held, a template found stays.
        let built_already: bool = {
            let mut control = self.control.lock().await;
            sqlx::query_scalar(
                "select exists (select from pg_database where datname = $3 and datistemplate) \
                 from (select pg_advisory_lock_shared($1, $2)) as in_use",
            )
            .bind(LOCK_TEMPLATE)
            .bind(migrations.lock_key())
            .bind(migrations.template_name())
            .fetch_one(&mut *control)
            .await
            .map_err(EnvError::db("mark the template as in use and look for it"))?
        };
        if !built_already {
            self.wait_for_room(
                format!("create the template {}", migrations.template_name()),
                "template0",
            )
            .await?;
            let mut control = self.control.lock().await;
            setup_lock(&mut control, true).await?;
            let built = template::build(&mut control, &self.server.endpoint, &migrations).await;
            setup_lock(&mut control, false).await?;
            if built? && let Some(membership) = &self.server.membership {
                super::instance::log_event(
                    &membership.dir,
                    &format!("template-build {}", migrations.template_name()),
                );
            }
        }
        let migrations = Arc::new(migrations);
        if templates.is_empty() {
            self.later(Job::Reap);
        }
        self.later(Job::Stamp(migrations.clone()));
        templates.insert(schema.clone(), migrations.clone());
        Ok(migrations)
    }

    /// Queues background work to start once the database being made now is handed out: begun at
    /// once, it would compete with it for the server (a connection of its own to open, a clone).
    pub(crate) fn later(&self, job: Job) {
        if let Ok(mut later) = self.later.lock() {
            later.push(job);
        }
    }

    /// Starts the work queued by [`Session::later`].
    pub(crate) fn start_later(&self) {
        let jobs = match self.later.lock() {
            Ok(mut later) => std::mem::take(&mut *later),
            Err(_) => return,
        };
        for job in jobs {
            let _ = self.jobs.send(job);
        }
    }

    async fn create_clone(
        &self,
        name: &str,
        migrations: &Migrations,
        strategy: Option<CloneStrategy>,
    ) -> Result<(), EnvError> {
        self.wait_for_room(
            format!("clone the template into {name}"),
            &migrations.template_name(),
        )
        .await?;
        let sql = format!(
            "create database {} template {}{}",
            ident(name),
            ident(&migrations.template_name()),
            CloneStrategy::clause(strategy),
        );
        let mut control = self.control.lock().await;
        control
            .execute(sql.as_str())
            .await
            .map(drop)
            .map_err(EnvError::db(format!("clone the template into {name}")))
    }

    /// The state folder of a local server (the only backend whose files the harness places).
    pub(crate) fn local_folder(&self) -> Option<&std::path::Path> {
        self.server
            .membership
            .as_ref()
            .filter(|_| self.server.backend == Backend::Local)
            .map(|m| m.dir.as_path())
    }

    /// On a local server whose state folder could not hold one more database like `lease`'s (and
    /// the WAL's reserve): the folder's room. A failed test's database is then dropped rather
    /// than kept, so that the tests still to run get theirs.
    pub(crate) async fn too_full_to_keep(
        &self,
        control: &mut PgConnection,
        lease: &Lease,
    ) -> Option<super::disk::Space> {
        let folder = self.local_folder()?;
        let size: i64 = sqlx::query_scalar("select pg_database_size($1)")
            .bind(&lease.name)
            .fetch_one(&mut *control)
            .await
            .ok()?;
        let space = super::disk::space(folder)?;
        (!has_room(space.free, u64::try_from(size).unwrap_or(0), 1)).then_some(space)
    }

    /// On a local server, waits up to 10 s until the state folder has room for one more database
    /// the size of `like` (the template to clone, or `template0`) plus a reserve for the WAL. A
    /// database that fills the folder makes the server's next WAL write fail, and a server that
    /// cannot write its WAL crashes, failing every test of the run; waiting instead lets the tests
    /// that end meanwhile free room.
    async fn wait_for_room(&self, action: String, like: &str) -> Result<(), EnvError> {
        const WAIT: Duration = Duration::from_secs(10);
        let Some(folder) = self.local_folder() else {
            return Ok(());
        };
        let size: i64 = {
            let mut control = self.control.lock().await;
            sqlx::query_scalar("select pg_database_size($1)")
                .bind(like)
                .fetch_one(&mut *control)
                .await
                .map_err(EnvError::db(format!("measure {like}")))?
        };
        let size = u64::try_from(size).unwrap_or(0);
        let start = Instant::now();
        loop {
            let Some(space) = super::disk::space(folder) else {
                return Ok(());
            };
            if has_room(space.free, size, 1) {
                return Ok(());
            }
            if start.elapsed() > WAIT {
                return Err(EnvError::out_of_space(
                    action,
                    format!(
                        "a new database needs {} plus {} kept free for the WAL, and {} stayed free for {} s while other tests ran",
                        super::disk::human_bytes(size),
                        super::disk::human_bytes(ROOM_RESERVE),
                        super::disk::human_bytes(space.free),
                        WAIT.as_secs()
                    ),
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Opens the control connection anew if the server ended it (`pg_terminate_backend`, a
    /// restart of a server given by URL, a dropped network): the new one takes again what the old
    /// one held, the liveness lock first, so that this process's clones stay its own. The
    /// background connection holds the liveness lock meanwhile. A slot another process took in
    /// between stays its: the budget is over by that much until it is given back. Returns whether
    /// it opened it anew.
    pub(crate) async fn heal(&self) -> Result<bool, EnvError> {
        if self.control.lock().await.ping().await.is_ok() {
            return Ok(false);
        }
        // Read before the control connection is locked again: `template` locks the templates
        // first, then the control connection.
        let templates: Vec<i32> = {
            let templates = self.templates.lock().await;
            templates.values().map(|m| m.lock_key()).collect()
        };
        let mut control = self.control.lock().await;
        // Another task may have opened it anew meanwhile.
        if control.ping().await.is_ok() {
            return Ok(true);
        }
        let name = admin::app_name("control", self.token);
        let mut fresh = admin::connect(&self.server.endpoint, &name).await?;
        admin::hold_liveness(&mut fresh, self.token).await?;
        let slots: Vec<i32> = self.budget.held_slots().iter().map(|&s| s as i32).collect();
        let again = [
            (
                "select pg_advisory_lock_shared($1, k) from unnest($2::int[]) k",
                LOCK_TEMPLATE,
                templates,
            ),
            (
                "select pg_try_advisory_lock($1, k) from unnest($2::int[]) k",
                LOCK_SLOT,
                slots,
            ),
        ];
        for (sql, class, keys) in again {
            sqlx::query(sql)
                .bind(class)
                .bind(&keys)
                .execute(&mut fresh)
                .await
                .map_err(EnvError::db(
                    "take the templates in use and the slots held again",
                ))?;
        }
        *control = fresh;
        Ok(true)
    }

    /// Runs `attempt` (a request that uses the control connection), and once more if it failed
    /// because the server had ended that connection, which [`Session::heal`] then opens anew. The
    /// connection is checked only after a failure, never before each request: a round trip per
    /// test saved; the idle heartbeat heals one ended between requests.
    pub(crate) async fn healing<T, F, Fut>(&self, attempt: F) -> Result<T, EnvError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, EnvError>>,
    {
        match attempt().await {
            Ok(done) => Ok(done),
            Err(_) if self.heal().await? => attempt().await,
            Err(e) => Err(e),
        }
    }

    /// Frees the slots of a lease whose database is gone.
    pub(crate) async fn give_back(&self, lease: &Lease) {
        self.budget.give_back(&self.control, &lease.slots).await;
    }
}

/// Drops the kept databases on the server that `by` says (only `only`, if given) and forgets
/// their markers; returns the names dropped.
pub(crate) async fn drop_kept(
    conn: &mut PgConnection,
    server: &Server,
    only: Option<&str>,
    by: KeptBy,
) -> Result<Vec<String>, EnvError> {
    let listed: Vec<(String, String)> = sqlx::query_as(
        "select datname::text, shobj_description(oid, 'pg_database') from pg_database \
         where datname like 'bh\\_%' and shobj_description(oid, 'pg_database') like $1 || '%' \
         and ($2::text is null or datname = $2)",
    )
    .bind(KEPT_COMMENT)
    .bind(only)
    .fetch_all(&mut *conn)
    .await
    .map_err(EnvError::db("list kept databases"))?;
    let uid = super::os::current_uid();
    let (mine, others): (Vec<_>, Vec<_>) = listed.into_iter().partition(|(_, comment)| {
        KeptMark::parse(comment).is_some_and(|mark| drops_kept(&mark, uid, by == KeptBy::AnyUser))
    });
    let kept: Vec<String> = mine.into_iter().map(|(name, _)| name).collect();
    for name in &kept {
        drop_database(conn, name).await?;
    }
    if let Some(membership) = &server.membership {
        for name in &kept {
            membership.unkeep(name);
        }
        // Markers of databases gone some other way go too, once none is left.
        if only.is_none() && others.is_empty() {
            super::instance::clear_kept(&membership.dir);
        }
    }
    Ok(kept)
}
