//! The process-wide database broker: one thread with its own runtime that owns the control
//! connection and hands every test its database, whatever runtime the test runs on.
//!
//! A test's database comes from the template's warm pool when it has one ([`super::pool`]), else
//! it is cloned there and then. What a test does not wait for happens in the background, on a
//! second connection ([`super::maintenance`]): dropping the databases of passing tests, topping
//! the warm pool up, recording that a template is in use, and reaping what ended processes left
//! ([`super::reaper`]). The advisory locks that coordinate processes are listed in
//! [`super::admin`]. The session with the server, which the broker and its background work share,
//! is [`super::session`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use sqlx::{Executor, PgConnection};
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};

use super::EnvError;
use super::admin::{KEPT_COMMENT, LOCK_KEEP, clone_name, drop_database, ident};
use super::config::CloneStrategy;
use super::config::Config;
use super::decide::keep::{kept_comment, within_cap};
use super::lease::Lease;
use super::maintenance;
use super::session::{Job, KeptBy, Session, State, drop_kept};
use super::template::{Migrations, Schema};

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
                "the server keeps {kept} already, the cap (HARNESS_KEEP_FAILED={cap}); {dropped} dropped over the cap by this test process so far\n  ({})",
                super::note::drop_kept_hint()
            ),
            Released::DroppedForSpace { free, size } => format!(
                "the state folder{} has {} free of {}, too little for the next test's database\n  (set HARNESS_STATE_DIR to a folder with more room)",
                super::error::space_folder()
                    .map(|f| format!(" {}", f.display()))
                    .unwrap_or_default(),
                super::disk::human_bytes(free),
                super::disk::human_bytes(size),
            ),
            Released::Dropped | Released::Kept => return None,
        };
        Some(format!(
            "billing-harness: dropped database {name} of the failed test instead of keeping it: {why}"
        ))
    }
}

/// The process-wide broker, once asked for.
static GLOBAL: OnceLock<Result<Broker, EnvError>> = OnceLock::new();

/// Owner of the background thread that serves databases. The process-wide one is
/// [`Broker::global`]; a separate one (another state directory, say) is [`Broker::start`]ed and
/// stops when dropped.
#[derive(Debug)]
pub struct Broker {
    handle: Handle,
    state: Arc<State>,
    _stop: oneshot::Sender<()>,
}

impl Broker {
    /// The process-wide broker, configured from the environment on first use.
    ///
    /// # Errors
    /// A configuration error, the same one every time it is asked.
    pub fn global() -> Result<&'static Broker, EnvError> {
        GLOBAL
            .get_or_init(|| Config::from_env().and_then(Broker::start))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The process-wide broker if something in the process asked for it already, without
    /// reading the configuration otherwise (for a command that settles before it exits).
    pub fn global_if_used() -> Option<&'static Broker> {
        GLOBAL.get().and_then(|broker| broker.as_ref().ok())
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

    /// Runs `work` on the broker's thread with the session (connecting first on first use), and
    /// once more if the server had ended the control connection ([`Session::healing`]).
    async fn on_session<T, F, Fut>(&self, work: F) -> Result<T, EnvError>
    where
        T: Send + 'static,
        F: Fn(Arc<State>, Arc<Session>) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<T, EnvError>> + Send,
    {
        let state = self.state.clone();
        self.handle
            .spawn(async move {
                let session = state.session().await?;
                session
                    .healing(|| work(state.clone(), session.clone()))
                    .await
            })
            .await
            .map_err(|_| EnvError::BrokerGone)?
    }

    /// A database for a test: taken from the warm pool of `schema`'s template when it has one,
    /// else cloned now; it holds `connections` slots of the connection budget. Connects (starting
    /// or joining a server) on first use, and tops the warm pool up in the background.
    ///
    /// # Errors
    /// Any [`EnvError`]: no backend, a server that does not start, failing migrations, no room in
    /// the budget.
    pub async fn claim(&self, schema: &Schema, connections: u32) -> Result<Lease, EnvError> {
        let schema = schema.clone();
        self.on_session(move |state, session| {
            let schema = schema.clone();
            async move {
                let warm = state.config.warm_pool > 0;
                session
                    .lease(&state, &schema, connections, warm, session.strategy)
                    .await
            }
        })
        .await
    }

    /// A fresh clone of the template of `schema`, made now with `strategy` (no warm pool; for
    /// benchmarks of the clone itself). It holds `HARNESS_POOL_SIZE` slots of the budget.
    ///
    /// # Errors
    /// As [`Broker::claim`].
    pub async fn acquire(
        &self,
        schema: &Schema,
        strategy: CloneStrategy,
    ) -> Result<Lease, EnvError> {
        let schema = schema.clone();
        self.on_session(move |state, session| {
            let schema = schema.clone();
            async move {
                let connections = state.config.pool_size;
                let strategy = session.strategy_for(strategy);
                session
                    .lease(&state, &schema, connections, false, strategy)
                    .await
            }
        })
        .await
    }

    /// Like [`Broker::acquire`], but the slow way that the template avoids: an empty `CREATE
    /// DATABASE` and then every migration (for benchmarks).
    ///
    /// # Errors
    /// As [`Broker::acquire`].
    pub async fn acquire_by_migrating(&self, schema: &Schema) -> Result<Lease, EnvError> {
        let schema = schema.clone();
        self.on_session(move |state, session| {
            let schema = schema.clone();
            async move {
                let migrations = Migrations::load(&schema).await?;
                let slots = session.take_slots(state.config.pool_size).await?;
                let n = state.seq.fetch_add(1, Ordering::Relaxed);
                let lease = Lease {
                    name: clone_name(&migrations.hash, state.token, n),
                    endpoint: session.server.endpoint.clone(),
                    backend: session.server.backend,
                    warm: false,
                    slots,
                };
                let created = async {
                    let sql = format!("create database {} template template0", ident(&lease.name));
                    session
                        .control
                        .lock()
                        .await
                        .execute(sql.as_str())
                        .await
                        .map_err(EnvError::db(format!("create {}", lease.name)))?;
                    migrations
                        .apply(&session.server.endpoint, &lease.name)
                        .await
                }
                .await;
                match created {
                    Ok(()) => Ok(lease),
                    Err(e) => {
                        let _ = state.release(&lease, None).await;
                        Err(e)
                    }
                }
            }
        })
        .await
    }

    /// Drops the lease's database, or keeps it (with `keep` as the reason) for a person to
    /// inspect unless the server keeps as many as `HARNESS_KEEP_FAILED` already, and frees its
    /// slots. Waits until it is done.
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

    /// Drops a passing test's database in the background and returns at once: the test does
    /// not wait for it. If this process ends first, the reaper of a later one drops it.
    pub(crate) fn release_in_background(&self, lease: &Lease) {
        if let Some(Ok(session)) = self.state.session.get() {
            let _ = session.jobs.send(Job::Drop(lease.clone()));
        }
    }

    /// Builds the template of `schema` if needed and tops its warm pool up, waiting until done
    /// (for benchmarks, and a CI step that prepares the server before the tests).
    ///
    /// # Errors
    /// As [`Broker::claim`].
    pub async fn warm_up(&self, schema: &Schema) -> Result<(), EnvError> {
        let schema = schema.clone();
        self.on_session(move |_, session| {
            let schema = schema.clone();
            async move {
                let migrations = session.template(&schema).await?;
                session.later(Job::Fill(migrations));
                session.start_later();
                Ok(())
            }
        })
        .await?;
        self.settle().await
    }

    /// Waits until this process's background work is done: the databases of passing tests
    /// dropped, the warm pools topped up, the reaper's round over. A test never needs it; tests
    /// of the harness that count databases, benchmarks and commands about to exit do.
    ///
    /// # Errors
    /// The broker has stopped.
    pub async fn settle(&self) -> Result<(), EnvError> {
        self.wait_for_background(false).await
    }

    /// Waits until the databases of passing tests that this process released are dropped, and
    /// nothing more: what a command does before it exits.
    ///
    /// # Errors
    /// The broker has stopped.
    pub async fn settle_drops(&self) -> Result<(), EnvError> {
        self.wait_for_background(true).await
    }

    async fn wait_for_background(&self, drops_only: bool) -> Result<(), EnvError> {
        let Some(Ok(session)) = self.state.session.get() else {
            return Ok(());
        };
        let (done, rx) = oneshot::channel();
        if session.jobs.send(Job::Settle { done, drops_only }).is_err() {
            return Ok(());
        }
        rx.await.map_err(|_| EnvError::BrokerGone)
    }

    /// When the state folder of this process's throwaway server has room for fewer than two more
    /// databases: a line saying so, for the note of a failed test (its failure may come from the
    /// lack of space rather than from the code under test).
    pub(crate) fn space_warning(&self) -> Option<String> {
        let folder = super::error::space_folder()?;
        let space = super::disk::space(&folder)?;
        if space.free >= 2 * super::config::Footprint::DATABASE_BYTES {
            return None;
        }
        Some(format!(
            "billing-harness: the state folder {} has {} free of {}, less than the {} the harness needs: the failure may come from the lack of space; set HARNESS_STATE_DIR to a folder with more room",
            folder.display(),
            super::disk::human_bytes(space.free),
            super::disk::human_bytes(space.size),
            super::disk::human_bytes(self.state.config.footprint().bytes()),
        ))
    }

    /// Whether this process started the server (a cold start) rather than joining one.
    ///
    /// # Errors
    /// The session could not be opened.
    pub async fn started_server(&self) -> Result<bool, EnvError> {
        self.on_session(move |_, session| async move {
            Ok(session
                .server
                .membership
                .as_ref()
                .is_some_and(|m| m.started))
        })
        .await
    }

    /// Drops the databases kept for failed tests on this server that `by` says (only `only`, if
    /// given), and forgets the markers that keep a throwaway server up for them. Returns the
    /// names dropped.
    ///
    /// # Errors
    /// The session could not be opened or a drop failed.
    pub async fn drop_kept(&self, only: Option<&str>, by: KeptBy) -> Result<Vec<String>, EnvError> {
        let only = only.map(str::to_owned);
        self.on_session(move |_, session| {
            let only = only.clone();
            async move {
                let mut control = session.control.lock().await;
                drop_kept(&mut control, &session.server, only.as_deref(), by).await
            }
        })
        .await
    }
}

/// The broker's side of its state: the session, opened with its background worker on first
/// use, and the release of a lease.
impl State {
    pub(crate) async fn session(self: &Arc<Self>) -> Result<Arc<Session>, EnvError> {
        self.session
            .get_or_init(|| async {
                let (jobs, queue) = mpsc::unbounded_channel();
                let session = Arc::new(Session::open(&self.config, self.token, jobs).await?);
                tokio::spawn(maintenance::serve(self.clone(), session.clone(), queue));
                if self.config.drop_kept {
                    let _ = session.jobs.send(Job::DropKept);
                }
                Ok(session)
            })
            .await
            .clone()
    }

    async fn release(
        self: &Arc<Self>,
        lease: &Lease,
        keep: Option<String>,
    ) -> Result<Released, EnvError> {
        let session = self.session().await?;
        session
            .healing(|| self.release_on(&session, lease, keep.as_deref()))
            .await
    }

    /// [`State::release`] on the session's control connection as it is.
    async fn release_on(
        &self,
        session: &Session,
        lease: &Lease,
        keep: Option<&str>,
    ) -> Result<Released, EnvError> {
        let result = {
            let mut control = session.control.lock().await;
            let too_full = match keep {
                Some(_) => session.too_full_to_keep(&mut control, lease).await,
                None => None,
            };
            match (keep, too_full) {
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
        session
            .budget
            .give_back(&session.control, &lease.slots)
            .await;
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
        if !within_cap(kept, cap) {
            return Ok(Some(kept));
        }
        let user = super::os::user_name(super::os::current_uid());
        let comment = kept_comment(&user, reason).replace('\'', "''");
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
