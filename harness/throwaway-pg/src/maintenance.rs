//! A process's background work, on a connection of its own so that no test waits for it: drops
//! the databases of passing tests, records that a template is in use, tops warm pools up and
//! reaps what ended processes left, one step at a time.
//!
//! Drops come first (they free connection slots and room), then the use stamps; the reaper and
//! the warm pool take turns with what is left, so that a short-lived process (cargo-nextest runs
//! one per test) does a little of each before it ends. Whatever a process leaves undone, the
//! next one's reaper finds. A failure here fails no test: the first one is printed, and the work
//! goes on without it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::{Connection, PgConnection};
use tokio::sync::{mpsc, oneshot};

use super::EnvError;
use super::admin::{self, LOCK_FILL, drop_database, try_lock, unlock};
use super::config::CloneStrategy;
use super::decide::keep::has_room;
use super::lease::Lease;
use super::pool::{self, Step};
use super::reaper::{self, Reap};
use super::session::{Job, KeptBy, Session, State, drop_kept};
use super::template::{self, Migrations};

/// Where the reaper is.
#[derive(Debug, Default)]
enum Reaping {
    #[default]
    NotAsked,
    /// Asked; the list is read at its first step.
    Asked,
    /// What is left to reap.
    Left(VecDeque<Reap>),
}

/// The work not done yet.
#[derive(Debug, Default)]
struct Work {
    drops: VecDeque<Lease>,
    stamps: Vec<Arc<Migrations>>,
    fills: Vec<Arc<Migrations>>,
    /// Templates whose `FILL` lock this process holds.
    filling: HashSet<String>,
    reaping: Reaping,
    drop_kept: bool,
    settles: Vec<oneshot::Sender<()>>,
    drop_settles: Vec<oneshot::Sender<()>>,
    /// Whose turn it is: the reaper's (`true`) or the warm pool's.
    reaper_turn: bool,
    /// Template sizes in bytes, for the room a warm database needs.
    sizes: HashMap<String, u64>,
}

impl Work {
    fn add(&mut self, job: Job) {
        match job {
            Job::Drop(lease) => self.drops.push_back(lease),
            Job::Stamp(migrations) => self.stamps.push(migrations),
            Job::Fill(migrations) => {
                if !self.fills.iter().any(|m| m.hash == migrations.hash) {
                    self.fills.push(migrations);
                }
            }
            Job::Reap => {
                if matches!(self.reaping, Reaping::NotAsked) {
                    self.reaping = Reaping::Asked;
                }
            }
            Job::DropKept => self.drop_kept = true,
            Job::Settle {
                done,
                drops_only: false,
            } => self.settles.push(done),
            Job::Settle {
                done,
                drops_only: true,
            } => self.drop_settles.push(done),
        }
    }

    fn reap_pending(&self) -> bool {
        match &self.reaping {
            Reaping::NotAsked => false,
            Reaping::Asked => true,
            Reaping::Left(left) => !left.is_empty(),
        }
    }

    fn idle(&self) -> bool {
        self.drops.is_empty()
            && self.stamps.is_empty()
            && self.fills.is_empty()
            && !self.reap_pending()
            && !self.drop_kept
    }

    /// Gives the work up (no connection): the slots of the databases to drop are freed (the
    /// reaper of a later process drops them), the rest is forgotten.
    async fn abandon(&mut self, session: &Session) {
        for lease in self.drops.drain(..) {
            session.give_back(&lease).await;
        }
        self.stamps.clear();
        self.fills.clear();
        self.filling.clear();
        self.reaping = Reaping::Left(VecDeque::new());
        self.drop_kept = false;
    }
}

/// Serves the jobs of `queue` until the broker stops.
pub(crate) async fn serve(
    state: Arc<State>,
    session: Arc<Session>,
    mut queue: mpsc::UnboundedReceiver<Job>,
) {
    let mut work = Work::default();
    let mut conn: Option<PgConnection> = None;
    loop {
        if work.drops.is_empty() && !work.drop_kept {
            for settled in work.drop_settles.drain(..) {
                let _ = settled.send(());
            }
        }
        if work.idle() {
            for settled in work.settles.drain(..) {
                let _ = settled.send(());
            }
            match tokio::time::timeout(HEARTBEAT, queue.recv()).await {
                Ok(Some(job)) => work.add(job),
                Ok(None) => return,
                Err(_) => {
                    heartbeat(&session, &mut conn).await;
                    continue;
                }
            }
        }
        while let Ok(job) = queue.try_recv() {
            work.add(job);
        }
        if work.idle() {
            continue;
        }
        if conn.is_none() {
            match open(&session).await {
                Ok(opened) => conn = Some(opened),
                Err(e) => {
                    report(&e);
                    work.abandon(&session).await;
                    continue;
                }
            }
        }
        let Some(open) = conn.as_mut() else { continue };
        if let Err(e) = step(&state, &session, &mut work, open).await {
            report(&e);
            // A connection that failed is opened anew at the next step.
            conn = None;
        }
    }
}

/// How often an idle process checks that its connections are alive.
const HEARTBEAT: Duration = Duration::from_secs(1);

/// The background connection, holding the liveness lock like the control connection: either
/// one ended by the server leaves this process's clones owned.
async fn open(session: &Session) -> Result<PgConnection, EnvError> {
    let name = admin::app_name("background", session.token);
    let mut conn = admin::connect(&session.server.endpoint, &name).await?;
    admin::hold_liveness(&mut conn, session.token).await?;
    Ok(conn)
}

/// While idle: opens anew whichever of this process's connections the server ended, so that
/// both hold the liveness lock again within a beat. Quiet: a server gone for good is the next
/// request's error to report.
async fn heartbeat(session: &Session, conn: &mut Option<PgConnection>) {
    let _ = session.heal().await;
    if let Some(open_conn) = conn.as_mut()
        && open_conn.ping().await.is_err()
    {
        *conn = open(session).await.ok();
    }
}

/// Prints the first failure of this process's background work.
fn report(e: &EnvError) {
    static REPORTED: AtomicBool = AtomicBool::new(false);
    if !REPORTED.swap(true, Ordering::Relaxed) {
        eprintln!(
            "billing-harness: background work failed, tests go on without it: {}",
            super::error::with_causes(e)
        );
    }
}

/// Does one piece of the work.
async fn step(
    state: &State,
    session: &Session,
    work: &mut Work,
    conn: &mut PgConnection,
) -> Result<(), EnvError> {
    if std::mem::take(&mut work.drop_kept) {
        return drop_kept(conn, &session.server, None, KeptBy::ThisUser)
            .await
            .map(drop);
    }
    if let Some(lease) = work.drops.pop_front() {
        let dropped = drop_database(conn, &lease.name).await;
        session.give_back(&lease).await;
        return dropped;
    }
    if let Some(migrations) = work.stamps.pop() {
        return template::stamp(conn, &migrations).await;
    }
    work.reaper_turn = !work.reaper_turn;
    if work.fills.is_empty() || (work.reaper_turn && work.reap_pending()) {
        return reap_step(state, work, conn).await;
    }
    let migrations = work.fills[0].clone();
    let filled = fill_step(state, session, work, conn, &migrations).await;
    if !matches!(filled, Ok(true)) {
        work.fills.remove(0);
        if work.filling.remove(&migrations.hash) {
            unlock(conn, LOCK_FILL, migrations.lock_key()).await?;
        }
    }
    filled.map(drop)
}

/// One step of the reaper: reads the list at the first, then drops one database a step.
async fn reap_step(
    state: &State,
    work: &mut Work,
    conn: &mut PgConnection,
) -> Result<(), EnvError> {
    match &mut work.reaping {
        Reaping::NotAsked => Ok(()),
        Reaping::Asked => {
            // Emptied first: a list that cannot be read is not asked again.
            work.reaping = Reaping::Left(VecDeque::new());
            let (listed, now) = reaper::list(conn).await?;
            work.reaping = Reaping::Left(reaper::plan(&listed, state.token, now).into());
            Ok(())
        }
        Reaping::Left(left) => match left.pop_front() {
            Some(reap) => reaper::run(conn, &reap).await.map(drop),
            None => Ok(()),
        },
    }
}

/// One step of topping up the warm pool of `migrations`; `Ok(true)` while there is more to do.
async fn fill_step(
    state: &State,
    session: &Session,
    work: &mut Work,
    conn: &mut PgConnection,
    migrations: &Migrations,
) -> Result<bool, EnvError> {
    let hash = &migrations.hash;
    if !work.filling.contains(hash) {
        // Another process tops this pool up.
        if !try_lock(conn, LOCK_FILL, migrations.lock_key()).await? {
            return Ok(false);
        }
        work.filling.insert(hash.clone());
    }
    let warm = pool::warm(conn, hash).await?;
    let room = room_for_one_more(session, work, conn, migrations).await?;
    match pool::next_step(warm.len(), state.config.warm_pool, room) {
        Step::Clone => {
            let name = state.next_warm_name(hash);
            let strategy = CloneStrategy::clause(session.strategy);
            pool::clone(conn, migrations, &name, strategy).await?;
            Ok(true)
        }
        Step::Trim => {
            drop_database(conn, &warm[0]).await?;
            Ok(true)
        }
        Step::Done => Ok(false),
    }
}

/// Whether a local server's state folder has room for a warm database besides the next test's
/// own clone and the WAL's reserve (other backends: always).
async fn room_for_one_more(
    session: &Session,
    work: &mut Work,
    conn: &mut PgConnection,
    migrations: &Migrations,
) -> Result<bool, EnvError> {
    let Some(folder) = session.local_folder() else {
        return Ok(true);
    };
    let size = match work.sizes.get(&migrations.hash) {
        Some(size) => *size,
        None => {
            let size: i64 = sqlx::query_scalar("select pg_database_size($1)")
                .bind(migrations.template_name())
                .fetch_one(&mut *conn)
                .await
                .map_err(EnvError::db("measure the template"))?;
            let size = u64::try_from(size).unwrap_or(0);
            work.sizes.insert(migrations.hash.clone(), size);
            size
        }
    };
    Ok(super::disk::space(folder).is_none_or(|space| has_room(space.free, size, 2)))
}
