//! The process-wide database broker: one thread with its own runtime that owns the control
//! connection and makes and drops the clone of every test, whatever runtime the test runs on.
//!
//! Everything shared between processes is coordinated in PostgreSQL itself, with session-level
//! advisory locks on the control connection, so it works the same on a throwaway cluster and on a
//! server given by URL that other machines use too:
//! - `PROCESS(token)`: held for the life of the process. A clone is named after its owner's token,
//!   so a clone whose owner lock is free belongs to a dead process and is reaped.
//! - `TEMPLATE(hash)`, shared: held by every process that clones that template, so that an unused
//!   template of older migrations can be dropped.
//! - `SETUP`: held while reaping or building a template: one process builds, the others wait and
//!   then find it ready.
//! - `SLOT(i)`: the connection budget. `max_connections` divided by the pool size gives the slots;
//!   every live test database holds one, and a process that finds none free waits.
//! - `KEEP`: held while a failed test's database is counted against the keep cap
//!   (`HARNESS_KEEP_FAILED`) and marked as kept, so that processes failing at once keep no more
//!   than the cap between them.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use sqlx::{Connection, Executor, PgConnection};
use tokio::runtime::Handle;
use tokio::sync::oneshot;

use super::EnvError;
use super::config::{Config, MigrationSource};
use super::endpoint::Endpoint;
use super::server::{self, Backend, Server};
use super::template::{Migrations, lock_key_of};

const LOCK_SETUP: i32 = 0x6268_0001;
const LOCK_PROCESS: i32 = 0x6268_0002;
const LOCK_TEMPLATE: i32 = 0x6268_0003;
const LOCK_SLOT: i32 = 0x6268_0004;
const LOCK_KEEP: i32 = 0x6268_0005;

/// Room kept free in a local server's state folder beyond the next clone: for the WAL and the
/// temporary files of the tests running meanwhile. A server that cannot write its WAL crashes.
const ROOM_RESERVE: u64 = 4 << 20;

/// The comment that marks a database kept for a failed test; the reaper leaves those alone.
pub(crate) const KEPT_COMMENT: &str = "billing-harness: kept";

/// How a clone is copied from its template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloneStrategy {
    /// `STRATEGY FILE_COPY` (PostgreSQL 15+): copies the files after a checkpoint. Fastest for
    /// small templates on a server with fsync off; the default.
    FileCopy,
    /// `STRATEGY WAL_LOG` (PostgreSQL 15+'s own default): copies block by block through the WAL.
    WalLog,
}

/// What became of a released database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Released {
    /// Dropped: nobody asked to keep it.
    Dropped,
    /// Kept for a person to inspect (a failed test's database).
    Kept,
    /// Asked to be kept, but dropped: the server keeps `kept` databases already, and the cap
    /// (`HARNESS_KEEP_FAILED`) is `cap`.
    DroppedOverCap {
        /// Databases kept on the server when this one was released.
        kept: u32,
        /// The cap.
        cap: u32,
        /// How many failed tests' databases this process has dropped over the cap so far,
        /// this one included.
        dropped: u64,
    },
    /// Asked to be kept, but dropped: the state folder of the throwaway server had too little
    /// room left for the next test's database.
    DroppedForSpace {
        /// Bytes free in the state folder when it was released.
        free: u64,
        /// The size of that folder's file system.
        size: u64,
    },
}

impl Released {
    /// For a failed test's database that was dropped all the same: the note that replaces
    /// "kept database ..., open it with", saying why.
    pub(crate) fn dropped_note(&self, name: &str) -> Option<String> {
        let why = match *self {
            Released::DroppedOverCap { kept, cap, dropped } => format!(
                "the server keeps {kept} already, the cap (HARNESS_KEEP_FAILED={cap}); {dropped} dropped over the cap by this test process so far\n  (`cargo xtask doctor` lists the kept databases, `cargo xtask db clean` drops them)"
            ),
            Released::DroppedForSpace { free, size } => format!(
                "the state folder{} has {} free of {}, too little for the next test's database\n  (set HARNESS_STATE_DIR to a folder with more room)",
                super::error::space_folder()
                    .map(|f| format!(" {}", f.display()))
                    .unwrap_or_default(),
                super::os::human_bytes(free),
                super::os::human_bytes(size),
            ),
            Released::Dropped | Released::Kept => return None,
        };
        Some(format!(
            "billing-harness: dropped database {name} of the failed test instead of keeping it: {why}"
        ))
    }
}

/// A database the broker made for one user.
#[derive(Debug, Clone)]
pub struct Lease {
    /// The database's name, `bh_<template hash>_<process token>_<n>`.
    pub name: String,
    /// Where it lives.
    pub(crate) endpoint: Endpoint,
    /// The backend serving it.
    pub backend: Backend,
    slot: u32,
}

impl Lease {
    /// Driver options for this database.
    pub fn connect_options(&self) -> sqlx::postgres::PgConnectOptions {
        self.endpoint.options(&self.name)
    }

    /// Its URL (with the password only on throwaway servers).
    pub fn url(&self) -> String {
        self.endpoint.url(&self.name)
    }

    /// A ready-to-paste `psql` command.
    pub fn psql_command(&self) -> String {
        self.endpoint.psql(&self.name)
    }
}

/// Owner of the background thread that serves databases. The process-wide one is
/// [`Broker::global`]; a separate one (another state directory, say) is [`Broker::start`]ed and
/// stops when dropped.
#[derive(Debug)]
pub struct Broker {
    handle: Handle,
    state: Arc<State>,
    _stop: oneshot::Sender<()>,
}

#[derive(Debug)]
struct State {
    config: Config,
    token: u32,
    seq: AtomicU64,
    /// Failed tests' databases dropped over the keep cap by this process.
    dropped_over_cap: AtomicU64,
    session: tokio::sync::OnceCell<Result<Arc<Session>, EnvError>>,
}

#[derive(Debug)]
struct Session {
    server: Server,
    control: tokio::sync::Mutex<PgConnection>,
    version: i32,
    slots: u32,
    held_slots: Mutex<HashSet<u32>>,
    templates: tokio::sync::Mutex<HashMap<MigrationSource, Arc<Migrations>>>,
}

impl Broker {
    /// The process-wide broker, configured from the environment on first use.
    ///
    /// # Errors
    /// A configuration error, the same one every time it is asked.
    pub fn global() -> Result<&'static Broker, EnvError> {
        static GLOBAL: OnceLock<Result<Broker, EnvError>> = OnceLock::new();
        GLOBAL
            .get_or_init(|| Config::from_env().and_then(Broker::start))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Starts a broker with its own thread for `config`. Nothing connects until the first
    /// request.
    ///
    /// # Errors
    /// The operating system refused the thread or the runtime's I/O driver (out of threads or
    /// file descriptors).
    pub fn start(config: Config) -> Result<Broker, EnvError> {
        let (handle_tx, handle_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("billing-harness-broker".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = handle_tx.send(Err(e));
                        return;
                    }
                };
                let _ = handle_tx.send(Ok(runtime.handle().clone()));
                runtime.block_on(async {
                    let _ = stop_rx.await;
                });
            })
            .map_err(EnvError::io("start the broker thread"))?;
        let handle = match handle_rx.recv() {
            Ok(built) => built.map_err(EnvError::io("start the broker's runtime"))?,
            // The thread ended without a word: it cannot serve requests.
            Err(_) => return Err(EnvError::BrokerGone),
        };
        Ok(Broker {
            handle,
            state: Arc::new(State {
                config,
                token: rand::random::<u32>() & 0x7fff_ffff,
                seq: AtomicU64::new(0),
                dropped_over_cap: AtomicU64::new(0),
                session: tokio::sync::OnceCell::new(),
            }),
            _stop: stop_tx,
        })
    }

    /// The configuration this broker serves.
    pub fn config(&self) -> &Config {
        &self.state.config
    }

    /// Connects (starting or joining a server on first use), then returns a fresh clone of the
    /// template built from `source`, holding one connection slot.
    ///
    /// # Errors
    /// Any [`EnvError`]: no backend, a server that does not start, failing migrations, no slot.
    pub async fn acquire(
        &self,
        source: &MigrationSource,
        strategy: CloneStrategy,
    ) -> Result<Lease, EnvError> {
        let state = self.state.clone();
        let source = source.clone();
        self.handle
            .spawn(async move {
                let session = state.session().await?;
                let migrations = session.template(&source).await?;
                let slot = session.acquire_slot(state.config.pool_size).await?;
                let n = state.seq.fetch_add(1, Ordering::Relaxed);
                let name = format!("bh_{}_{:08x}_{n}", migrations.hash, state.token);
                match session.create_clone(&name, &migrations, strategy).await {
                    Ok(()) => Ok(Lease {
                        name,
                        endpoint: session.server.endpoint.clone(),
                        backend: session.server.backend,
                        slot,
                    }),
                    Err(e) => {
                        session.release_slot(slot).await;
                        Err(e)
                    }
                }
            })
            .await
            .map_err(|_| EnvError::BrokerGone)?
    }

    /// Like [`Broker::acquire`], but the slow way that the template avoids: an empty `CREATE
    /// DATABASE` and then every migration (for benchmarks).
    ///
    /// # Errors
    /// As [`Broker::acquire`].
    pub async fn acquire_by_migrating(&self, source: &MigrationSource) -> Result<Lease, EnvError> {
        let state = self.state.clone();
        let source = source.clone();
        self.handle
            .spawn(async move {
                let session = state.session().await?;
                let migrations = Migrations::load(&source).await?;
                let slot = session.acquire_slot(state.config.pool_size).await?;
                let n = state.seq.fetch_add(1, Ordering::Relaxed);
                let name = format!("bh_{}_{:08x}_{n}", migrations.hash, state.token);
                let created = async {
                    session
                        .control
                        .lock()
                        .await
                        .execute(
                            format!("create database {} template template0", ident(&name)).as_str(),
                        )
                        .await
                        .map_err(EnvError::db(format!("create {name}")))?;
                    migrations.apply(&session.server.endpoint, &name).await
                }
                .await;
                let lease = Lease {
                    name,
                    endpoint: session.server.endpoint.clone(),
                    backend: session.server.backend,
                    slot,
                };
                match created {
                    Ok(()) => Ok(lease),
                    Err(e) => {
                        let _ = state.release(&lease, None).await;
                        Err(e)
                    }
                }
            })
            .await
            .map_err(|_| EnvError::BrokerGone)?
    }

    /// Drops the lease's database, or keeps it (with `keep` as the reason) for a person to
    /// inspect unless the server keeps as many as `HARNESS_KEEP_FAILED` already, and frees its
    /// slot.
    ///
    /// # Errors
    /// The drop or comment failed.
    pub async fn release(&self, lease: &Lease, keep: Option<String>) -> Result<Released, EnvError> {
        let state = self.state.clone();
        let lease = lease.clone();
        self.handle
            .spawn(async move { state.release(&lease, keep).await })
            .await
            .map_err(|_| EnvError::BrokerGone)?
    }

    /// [`Broker::release`] for synchronous callers such as `Drop`: blocks this thread (never the
    /// broker's) until done.
    pub(crate) fn release_blocking(
        &self,
        lease: &Lease,
        keep: Option<String>,
    ) -> Result<Released, EnvError> {
        let (tx, rx) = std::sync::mpsc::channel();
        let state = self.state.clone();
        let lease = lease.clone();
        self.handle.spawn(async move {
            let _ = tx.send(state.release(&lease, keep).await);
        });
        rx.recv().map_err(|_| EnvError::BrokerGone)?
    }

    /// When the state folder of this process's throwaway server has room for fewer than two more
    /// databases: a line saying so, for the note of a failed test (its failure may come from the
    /// lack of space rather than from the code under test).
    pub(crate) fn space_warning(&self) -> Option<String> {
        let folder = super::error::space_folder()?;
        let space = super::os::space(&folder)?;
        if space.free >= 2 * super::config::Footprint::DATABASE_BYTES {
            return None;
        }
        Some(format!(
            "billing-harness: the state folder {} has {} free of {}, less than the {} the harness needs: the failure may come from the lack of space; set HARNESS_STATE_DIR to a folder with more room",
            folder.display(),
            super::os::human_bytes(space.free),
            super::os::human_bytes(space.size),
            super::os::human_bytes(self.state.config.footprint().bytes()),
        ))
    }

    /// Whether this process started the server (a cold start) rather than joining one.
    ///
    /// # Errors
    /// The session could not be opened.
    pub async fn started_server(&self) -> Result<bool, EnvError> {
        let state = self.state.clone();
        self.handle
            .spawn(async move {
                let session = state.session().await?;
                Ok(session
                    .server
                    .membership
                    .as_ref()
                    .is_some_and(|m| m.started))
            })
            .await
            .map_err(|_| EnvError::BrokerGone)?
    }

    /// Drops the databases kept for failed tests on this server (only `only`, if given), and
    /// forgets the markers that keep a throwaway server up for them. Returns the names dropped.
    ///
    /// # Errors
    /// The session could not be opened or a drop failed.
    pub async fn drop_kept(&self, only: Option<&str>) -> Result<Vec<String>, EnvError> {
        let state = self.state.clone();
        let only = only.map(str::to_owned);
        self.handle
            .spawn(async move {
                let session = state.session().await?;
                let mut control = session.control.lock().await;
                let kept: Vec<String> = sqlx::query_scalar(
                    "select datname from pg_database where datname like 'bh\\_%' \
                     and shobj_description(oid, 'pg_database') like $1 || '%' \
                     and ($2::text is null or datname = $2)",
                )
                .bind(KEPT_COMMENT)
                .bind(&only)
                .fetch_all(&mut *control)
                .await
                .map_err(EnvError::db("list kept databases"))?;
                for name in &kept {
                    drop_database(&mut control, name).await?;
                }
                if let Some(membership) = &session.server.membership {
                    match &only {
                        Some(name) => membership.unkeep(name),
                        None => super::instance::clear_kept(&membership.dir),
                    }
                }
                Ok(kept)
            })
            .await
            .map_err(|_| EnvError::BrokerGone)?
    }
}

impl State {
    async fn session(&self) -> Result<Arc<Session>, EnvError> {
        self.session
            .get_or_init(|| async { Session::open(&self.config, self.token).await.map(Arc::new) })
            .await
            .clone()
    }

    async fn release(&self, lease: &Lease, keep: Option<String>) -> Result<Released, EnvError> {
        let session = self.session().await?;
        let result = {
            let mut control = session.control.lock().await;
            let too_full = match &keep {
                Some(_) => session.too_full_to_keep(&mut control, lease).await,
                None => None,
            };
            match (&keep, too_full) {
                (Some(_), Some(space)) => {
                    drop_database(&mut control, &lease.name).await.map(|()| {
                        Released::DroppedForSpace {
                            free: space.free,
                            size: space.size,
                        }
                    })
                }
                (Some(reason), None) => {
                    let cap = self.config.keep_failed;
                    match keep_within_cap(&mut control, &lease.name, reason, cap).await {
                        Ok(None) => {
                            if let Some(membership) = &session.server.membership {
                                membership.keep(&lease.name);
                            }
                            Ok(Released::Kept)
                        }
                        Ok(Some(kept)) => {
                            drop_database(&mut control, &lease.name).await.map(|()| {
                                Released::DroppedOverCap {
                                    kept,
                                    cap,
                                    dropped: self.dropped_over_cap.fetch_add(1, Ordering::Relaxed)
                                        + 1,
                                }
                            })
                        }
                        Err(e) => Err(e),
                    }
                }
                (None, _) => drop_database(&mut control, &lease.name)
                    .await
                    .map(|()| Released::Dropped),
            }
        };
        session.release_slot(lease.slot).await;
        result
    }
}

/// Marks `name` as kept with `reason` unless the server keeps `cap` databases already; returns
/// `None` when kept, or how many are kept when not. Counting and marking happen under the `KEEP`
/// lock, so that processes failing at once stay within the cap between them.
async fn keep_within_cap(
    control: &mut PgConnection,
    name: &str,
    reason: &str,
    cap: u32,
) -> Result<Option<u32>, EnvError> {
    sqlx::query("select pg_advisory_lock($1, 0)")
        .bind(LOCK_KEEP)
        .execute(&mut *control)
        .await
        .map_err(EnvError::db("take the keep lock"))?;
    let decided = async {
        let kept: i64 = sqlx::query_scalar(
            "select count(*) from pg_database where datname like 'bh\\_%' \
             and shobj_description(oid, 'pg_database') like $1 || '%'",
        )
        .bind(KEPT_COMMENT)
        .fetch_one(&mut *control)
        .await
        .map_err(EnvError::db("count the kept databases"))?;
        let kept = u32::try_from(kept).unwrap_or(u32::MAX);
        if kept >= cap {
            return Ok(Some(kept));
        }
        let comment = format!("{KEPT_COMMENT}: {reason}").replace('\'', "''");
        control
            .execute(format!("comment on database {} is '{comment}'", ident(name)).as_str())
            .await
            .map_err(EnvError::db(format!("mark {name} as kept")))?;
        Ok(None)
    }
    .await;
    let unlocked = sqlx::query("select pg_advisory_unlock($1, 0)")
        .bind(LOCK_KEEP)
        .execute(&mut *control)
        .await
        .map_err(EnvError::db("release the keep lock"));
    let decided = decided?;
    unlocked?;
    Ok(decided)
}

impl Session {
    async fn open(config: &Config, token: u32) -> Result<Session, EnvError> {
        let mut server = server::connect(config, true).await?;
        let mut control = match connect_admin(&server).await {
            Ok(control) => control,
            // Joined without a probe, and the server does not answer: the slow way in checks
            // it and starts a new one if it is dead.
            Err(_) if server.joined_unprobed => {
                drop(server);
                server = server::connect(config, false).await?;
                connect_admin(&server).await?
            }
            Err(e) => return Err(e),
        };
        // The liveness lock and the settings in one round trip.
        let (version, max_connections, reserved, may_create): (i32, i32, i32, bool) =
            sqlx::query_as(
                "select current_setting('server_version_num')::int, \
                 current_setting('max_connections')::int, \
                 current_setting('superuser_reserved_connections')::int, \
                 (select rolcreatedb or rolsuper from pg_roles where rolname = current_user) \
                 from (select pg_advisory_lock($1, $2)) as liveness",
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
        let budget = (max_connections - reserved - 10).max(config.pool_size as i32);
        let slots = (budget as u32 / config.pool_size).max(1);
        let keep_hash = Migrations::load(&config.migrations)
            .await
            .map(|m| m.hash)
            .unwrap_or_default();
        setup_lock(&mut control, true).await?;
        let reaped = reap(&mut control, token, keep_hash).await;
        setup_lock(&mut control, false).await?;
        reaped?;
        Ok(Session {
            server,
            control: tokio::sync::Mutex::new(control),
            version,
            slots,
            held_slots: Mutex::new(HashSet::new()),
            templates: tokio::sync::Mutex::new(HashMap::new()),
        })
    }

    /// The template for `source`, built once per server under the setup lock.
    async fn template(&self, source: &MigrationSource) -> Result<Arc<Migrations>, EnvError> {
        let mut templates = self.templates.lock().await;
        if let Some(found) = templates.get(source) {
            return Ok(found.clone());
        }
        let migrations = Migrations::load(source).await?;
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
            let built = build_template(&mut control, &self.server.endpoint, &migrations).await;
            setup_lock(&mut control, false).await?;
            if built? && let Some(membership) = &self.server.membership {
                super::instance::log_event(
                    &membership.dir,
                    &format!("template-build {}", migrations.template_name()),
                );
            }
        }
        let migrations = Arc::new(migrations);
        templates.insert(source.clone(), migrations.clone());
        Ok(migrations)
    }

    async fn create_clone(
        &self,
        name: &str,
        migrations: &Migrations,
        strategy: CloneStrategy,
    ) -> Result<(), EnvError> {
        self.wait_for_room(
            format!("clone the template into {name}"),
            &migrations.template_name(),
        )
        .await?;
        let strategy = match (self.version >= 150_000, strategy) {
            (false, _) => "",
            (true, CloneStrategy::FileCopy) => " strategy file_copy",
            (true, CloneStrategy::WalLog) => " strategy wal_log",
        };
        let sql = format!(
            "create database {} template {}{strategy}",
            ident(name),
            ident(&migrations.template_name())
        );
        let mut control = self.control.lock().await;
        control
            .execute(sql.as_str())
            .await
            .map(drop)
            .map_err(EnvError::db(format!("clone the template into {name}")))
    }

    /// On a local server whose state folder could not hold one more database like `lease`'s (and
    /// the WAL's reserve): the folder's room. A failed test's database is then dropped rather
    /// than kept, so that the tests still to run get theirs.
    async fn too_full_to_keep(
        &self,
        control: &mut PgConnection,
        lease: &Lease,
    ) -> Option<super::os::Space> {
        let membership = self
            .server
            .membership
            .as_ref()
            .filter(|_| self.server.backend == Backend::Local)?;
        let size: i64 = sqlx::query_scalar("select pg_database_size($1)")
            .bind(&lease.name)
            .fetch_one(&mut *control)
            .await
            .ok()?;
        let space = super::os::space(&membership.dir)?;
        (space.free < u64::try_from(size).unwrap_or(0) + ROOM_RESERVE).then_some(space)
    }

    /// On a local server, waits up to 10 s until the state folder has room for one more database
    /// the size of `like` (the template to clone, or `template0`) plus a reserve for the WAL. A
    /// database that fills the folder makes the server's next WAL write fail, and a server that
    /// cannot write its WAL crashes, failing every test of the run; waiting instead lets the tests
    /// that end meanwhile free room.
    async fn wait_for_room(&self, action: String, like: &str) -> Result<(), EnvError> {
        const WAIT: Duration = Duration::from_secs(10);
        let Some(membership) = self
            .server
            .membership
            .as_ref()
            .filter(|_| self.server.backend == Backend::Local)
        else {
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
            let Some(space) = super::os::space(&membership.dir) else {
                return Ok(());
            };
            if space.free >= size + ROOM_RESERVE {
                return Ok(());
            }
            if start.elapsed() > WAIT {
                return Err(EnvError::out_of_space(
                    action,
                    format!(
                        "a new database needs {} plus {} kept free for the WAL, and {} stayed free for {} s while other tests ran",
                        super::os::human_bytes(size),
                        super::os::human_bytes(ROOM_RESERVE),
                        super::os::human_bytes(space.free),
                        WAIT.as_secs()
                    ),
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Takes a free connection slot, waiting up to two minutes for one.
    async fn acquire_slot(&self, pool_size: u32) -> Result<u32, EnvError> {
        const WAIT: Duration = Duration::from_secs(120);
        let start = Instant::now();
        loop {
            let held: Vec<i32> = self.held_slots().iter().map(|&s| s as i32).collect();
            let offset = rand::random::<u32>() % self.slots;
            // `offset 0` keeps the planner from evaluating the lock call before the filter.
            let found: Option<i32> = {
                let mut control = self.control.lock().await;
                sqlx::query_scalar(
                    "select s from (select ((g + $3) % $2)::int as s from generate_series(0, $2 - 1) g \
                     where not ((g + $3) % $2)::int = any($4) offset 0) t \
                     where pg_try_advisory_lock($1, t.s) limit 1",
                )
                .bind(LOCK_SLOT)
                .bind(self.slots as i32)
                .bind(offset as i32)
                .bind(&held)
                .fetch_optional(&mut *control)
                .await
                .map_err(EnvError::db("take a connection slot"))?
            };
            if let Some(slot) = found {
                self.held_slots().insert(slot as u32);
                return Ok(slot as u32);
            }
            if start.elapsed() > WAIT {
                return Err(EnvError::Budget {
                    seconds: WAIT.as_secs(),
                    slots: self.slots,
                    pool_size,
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn release_slot(&self, slot: u32) {
        let mut control = self.control.lock().await;
        let _ = sqlx::query("select pg_advisory_unlock($1, $2)")
            .bind(LOCK_SLOT)
            .bind(slot as i32)
            .execute(&mut *control)
            .await;
        self.held_slots().remove(&slot);
    }

    /// The slots this process holds. A panic elsewhere cannot leave the set half-changed (each
    /// use is one insert, remove or read), so a poisoned lock is still good to use.
    fn held_slots(&self) -> std::sync::MutexGuard<'_, HashSet<u32>> {
        self.held_slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A connection to the server's administration database, named so in `pg_stat_activity`.
async fn connect_admin(server: &Server) -> Result<PgConnection, EnvError> {
    let options = server
        .endpoint
        .admin_options()
        .application_name("billing-harness");
    PgConnection::connect_with(&options)
        .await
        .map_err(EnvError::db(
            "connect to the server's administration database",
        ))
}

/// Takes (`true`) or releases (`false`) the server-wide setup lock.
async fn setup_lock(control: &mut PgConnection, take: bool) -> Result<(), EnvError> {
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

/// Builds the template unless a complete one exists. A database of the template's name that is
/// not marked as a template is a build that crashed half-way: it is dropped and built again.
/// Returns whether it built one.
async fn build_template(
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

/// Drops what crashed or older runs left: clones whose owner process is gone (unless kept for a
/// failed test), half-built templates, and templates no live process uses (except `keep_hash`,
/// the one this process is about to use). Must run under the setup lock.
async fn reap(
    control: &mut PgConnection,
    own_token: u32,
    keep_hash: String,
) -> Result<Vec<String>, EnvError> {
    let databases: Vec<(String, bool, String)> = sqlx::query_as(
        "select datname, datistemplate, coalesce(shobj_description(oid, 'pg_database'), '') \
         from pg_database where datname like 'bh\\_%'",
    )
    .fetch_all(&mut *control)
    .await
    .map_err(EnvError::db("list the harness's databases"))?;
    let mut reaped = Vec::new();
    for (name, is_template, comment) in databases {
        let dead_lock = if let Some(hash) = name.strip_prefix("bh_tpl_") {
            if hash == keep_hash && is_template {
                continue;
            }
            if !is_template {
                None
            } else {
                Some((LOCK_TEMPLATE, lock_key_of(hash)))
            }
        } else {
            let Some(token) = parse_owner(&name) else {
                continue;
            };
            if token == own_token || comment.starts_with(KEPT_COMMENT) {
                continue;
            }
            Some((LOCK_PROCESS, token as i32))
        };
        let Some((class, key)) = dead_lock else {
            drop_database(control, &name).await?;
            reaped.push(name);
            continue;
        };
        let free: bool = sqlx::query_scalar("select pg_try_advisory_lock($1, $2)")
            .bind(class)
            .bind(key)
            .fetch_one(&mut *control)
            .await
            .map_err(EnvError::db("check whether a database's owner lives"))?;
        if !free {
            continue;
        }
        // Held while dropping: a process that takes a template's lock shared before looking
        // for it waits, and then builds it again, rather than cloning one that is going.
        let dropped = drop_database(control, &name).await;
        sqlx::query("select pg_advisory_unlock($1, $2)")
            .bind(class)
            .bind(key)
            .execute(&mut *control)
            .await
            .map_err(EnvError::db("release an owner check"))?;
        dropped?;
        reaped.push(name);
    }
    Ok(reaped)
}

/// The owner token in a clone's name `bh_<hash>_<token>_<n>`.
fn parse_owner(name: &str) -> Option<u32> {
    let mut parts = name.strip_prefix("bh_")?.split('_');
    let (_hash, token, _n) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || token.len() != 8 {
        return None;
    }
    u32::from_str_radix(token, 16).ok()
}

/// Drops a database. Its sessions are ended first and waited for in short steps: `WITH (FORCE)`
/// alone would sleep in 100 ms steps until they are gone, which is most of a test's cost.
async fn drop_database(control: &mut PgConnection, name: &str) -> Result<(), EnvError> {
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
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_are_read_from_clone_names_only() {
        assert_eq!(parse_owner("bh_0123456789ab_0000002a_7"), Some(42));
        assert_eq!(parse_owner("bh_tpl_0123456789ab"), None);
        assert_eq!(parse_owner("bh_x_zz_1"), None);
        assert_eq!(parse_owner("postgres"), None);
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(ident("bh_1"), "\"bh_1\"");
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
    }
}
