//! Nothing left behind: after a throwaway server's last user is done (it ended normally or was
//! killed with SIGKILL), no PostgreSQL shared-memory segment in `/dev/shm`, no server process and
//! no state folder stays.
//!
//! Other servers on the machine (other runs, other people) create and remove segments at the same
//! time, so the counts compare only the segments nobody maps (leaked ones) and that appeared during
//! the test.

mod common;

use common::wait_until;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use sqlx::Connection;

fn xtask(state: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
    cmd.env("HARNESS_STATE_DIR", state)
        .env("HARNESS_POSTGRES", "local")
        .env("HARNESS_LINGER_SECS", "1")
        .env_remove("HARNESS_DATABASE_URL")
        .env_remove("RUST_BACKTRACE");
    cmd
}

/// Starts `db up` and returns it with the URL it printed.
fn db_up(state: &Path) -> (Child, String) {
    let (child, rx) = common::spawn_first_line(xtask(state).args(["db", "up"]));
    let url = rx.recv_timeout(Duration::from_secs(60)).unwrap();
    assert!(url.starts_with("postgres://"), "db up printed {url:?}");
    (child, url)
}

/// A state directory named like the default one (`billing-harness-*`), which the watchdog removes
/// when its server stops.
fn state_dir(name: &str) -> PathBuf {
    common::state_dir("billing-harness-leftovers", name)
}

/// The names of PostgreSQL's dynamic shared-memory segments in `/dev/shm`.
fn segments() -> BTreeSet<String> {
    std::fs::read_dir("/dev/shm")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("PostgreSQL."))
        .collect()
}

/// Every process id on the machine with its parent's.
fn processes() -> Vec<(u32, u32)> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            // pid (comm) state ppid ...: comm may hold spaces, so read after the last ')'.
            let ppid = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            Some((pid, ppid))
        })
        .collect()
}

/// The segments of `/dev/shm` that the given processes (all of them, when `None`) map.
fn mapped(pids: Option<&[u32]>) -> BTreeSet<String> {
    let all: Vec<u32>;
    let pids = match pids {
        Some(pids) => pids,
        None => {
            all = processes().into_iter().map(|(pid, _)| pid).collect();
            &all
        }
    };
    pids.iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/maps")).ok())
        .flat_map(|maps| {
            maps.lines()
                .filter_map(|l| l.split("/dev/shm/").nth(1))
                .filter(|name| name.starts_with("PostgreSQL."))
                .map(|name| name.trim_end_matches(" (deleted)").to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Segments that appeared since `before` and that no process maps: leaked ones.
fn leaked_since(before: &BTreeSet<String>) -> BTreeSet<String> {
    let in_use = mapped(None);
    segments()
        .difference(before)
        .filter(|name| !in_use.contains(*name))
        .cloned()
        .collect()
}

/// The postmaster of the state folder's cluster and its children.
fn server_processes(state: &Path) -> Vec<u32> {
    let pid_file = state.join("local/cluster/data/postmaster.pid");
    let postmaster: u32 = std::fs::read_to_string(pid_file)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let mut pids = vec![postmaster];
    pids.extend(
        processes()
            .into_iter()
            .filter(|&(_, ppid)| ppid == postmaster)
            .map(|(pid, _)| pid),
    );
    pids
}

/// Makes the server use dynamic shared memory (a parallel query, besides the statistics it keeps
/// there anyway) and returns how it is configured.
async fn use_dynamic_shared_memory(url: &str) -> String {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    for sql in [
        "set max_parallel_workers_per_gather = 2",
        "set parallel_setup_cost = 0",
        "set parallel_tuple_cost = 0",
        "set min_parallel_table_scan_size = 0",
        "create table parallel_food as select g from generate_series(1, 50000) g",
        "analyze parallel_food",
    ] {
        sqlx::query(sql).execute(&mut conn).await.unwrap();
    }
    let plan: Vec<String> = sqlx::query_scalar("explain select count(*) from parallel_food")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert!(plan.iter().any(|l| l.contains("Gather")), "{plan:?}");
    let n: i64 = sqlx::query_scalar("select count(*) from parallel_food")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(n, 50_000);
    let kind: String = sqlx::query_scalar("show dynamic_shared_memory_type")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    kind
}

/// How a session ends.
#[derive(Clone, Copy)]
enum End {
    /// Its user stops with Ctrl-C: a passing run.
    Interrupted,
    /// Its user is killed with SIGKILL: no destructor runs.
    Killed,
    /// The server itself is killed with SIGKILL (a crash), then its user stops with Ctrl-C.
    ServerKilled,
}

/// One user's session: `db up`, a parallel query, then the end; returns how dynamic shared
/// memory is configured, the `/dev/shm` segments the server mapped while it ran, and whether its
/// processes and the state folder were gone within 15 s of the end.
async fn session(state: &Path, end: End) -> (String, BTreeSet<String>, bool) {
    let (child, url) = db_up(state);
    let kind = use_dynamic_shared_memory(&url).await;
    let server = server_processes(state);
    let used = mapped(Some(&server));
    let kill = |signal: &str, pid: u32| {
        Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .unwrap()
    };
    match end {
        End::Interrupted => kill("-INT", child.id()),
        End::Killed => kill("-KILL", child.id()),
        End::ServerKilled => {
            kill("-KILL", server[0]);
            kill("-INT", child.id())
        }
    };
    { child }.wait().unwrap();
    let gone = wait_until(Duration::from_secs(15), || {
        !state.exists()
            && server
                .iter()
                .all(|pid| !Path::new(&format!("/proc/{pid}")).exists())
    });
    (kind, used, gone)
}

#[tokio::test]
async fn no_shared_memory_process_or_folder_outlives_a_server_that_ended_or_was_killed() {
    let before = segments();
    let mut outcomes = Vec::new();
    for (name, end) in [
        ("ended", End::Interrupted),
        ("killed", End::Killed),
        ("server-killed", End::ServerKilled),
    ] {
        let state = state_dir(name);
        let outcome = session(&state, end).await;
        let leaked = leaked_since(&before);
        let _ = std::fs::remove_dir_all(&state);
        outcomes.push((name, outcome, leaked));
    }
    // Leaks first: they are what this test is for, the causes below explain them.
    for (how, _, leaked) in &outcomes {
        assert!(
            leaked.is_empty(),
            "{how}: segments left behind in /dev/shm: {leaked:?}"
        );
    }
    for (how, (kind, used, gone), _) in outcomes {
        assert_eq!(
            kind, "mmap",
            "{how}: dynamic shared memory lives in the data folder"
        );
        assert!(
            used.is_empty(),
            "{how}: the server mapped /dev/shm segments {used:?}"
        );
        assert!(
            gone,
            "{how}: the server or its state folder outlived the last user"
        );
    }
    println!(
        "/dev/shm/PostgreSQL.* before: {}, after: {}",
        before.len(),
        segments().len()
    );
}
