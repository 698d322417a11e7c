//! A throwaway server (local cluster or container) shared by every process that uses one state
//! directory, started once under a file lock and stopped by a watchdog when its last user is done.
//!
//! The state directory and `<state_dir>/<backend>/` are private to their user (`private.rs`):
//! created `0700`, and checked before anything in them is read, locked or run, so another user
//! can neither plant an instance nor hold a lock. Nothing read from them is run by a shell: a
//! recorded server is stopped by signalling the pid whose `/proc` entry shows the data folder the
//! harness made, or by removing the recorded container.
//!
//! Layout of `<state_dir>/<backend>/`:
//! - `setup.lock`: held exclusively while a process starts, joins, checks or stops the instance;
//! - `users.lock`: held shared by every process that uses the instance, for its whole life, so a
//!   crashed process stops counting the moment it dies;
//! - `instance.json`: the running instance ([`Instance`]), absent when none runs; `0600`, since
//!   it holds the server's password;
//! - `pgpass`: the password as a libpq password file (`0600`), which printed `psql` commands
//!   name instead of showing the password;
//! - `kept/`: one empty file per database kept for a failed test; while any is there the instance
//!   stays up so the printed `psql` command keeps working (`env::drop_kept` empties it);
//! - `instance-id`, `heartbeats/` (container backend): the random id labelling every container of
//!   this folder, and one file per container whose time the watchdog renews every second; a
//!   launch reaps only containers of this id whose heartbeat has stopped (`container.rs`);
//! - `watchdog.pid`: the watchdog, a small `sh` loop that stops the instance once nobody has held
//!   `users.lock` for the linger time, and then removes this folder (and the state directory too
//!   when nothing else is in it), so that a run leaves nothing behind but the databases it kept;
//! - `.billing-harness`: the marker of a folder the harness made. Only a marked folder is removed
//!   whole: of an unmarked one (a `HARNESS_STATE_DIR` that was there, or a backend's folder with
//!   files of someone else's in it), only the entries above go.
//!
//! The folder is removed while its `setup.lock` is held; [`FileLock`] takes a lock only on the
//! file that is still at its path, so a process that waited on a removed lock tries again.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::Connection;

use super::EnvError;
use super::endpoint::Endpoint;
use super::lock::FileLock;
use super::os;
use super::private;
use super::stop::Stop;

/// A running throwaway server, as recorded in `instance.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Instance {
    /// Unique per start: tells a watchdog whether the instance it guards is still this one.
    pub(crate) generation: String,
    /// How to reach it.
    pub(crate) endpoint: Endpoint,
    /// What to stop: data the harness checks before acting on it, never a command.
    pub(crate) stop: Stop,
}

/// What the harness puts in a backend's folder: all that is removed from one it did not make.
const OURS: &[&str] = &[
    "cluster",
    "instance.json",
    "pgpass",
    "kept",
    "watchdog.pid",
    "events.log",
    "setup.lock",
    "users.lock",
    "instance-id",
    "heartbeats",
];

/// Makes the state directory above `dir` and `dir` itself private if they are new, marking each
/// it creates ([`private::MARKER`]: only those are ever removed), and refuses them unless they
/// are private. A backend's folder an older harness made (nothing in it but [`OURS`]) is marked
/// too; a state directory that was there is never marked.
fn secure(dir: &Path) -> Result<(), EnvError> {
    if let Some(state) = dir.parent() {
        private::ensure_marked(state, &[])?;
    }
    private::ensure_marked(dir, OURS)
}

/// Whether `dir` exists (`false` when it does not), refusing it and the state directory above
/// it unless both are private.
fn trusted(dir: &Path) -> Result<bool, EnvError> {
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        _ => {}
    }
    if let Some(state) = dir.parent() {
        private::check(state)?;
    }
    private::check(dir)?;
    Ok(true)
}

/// What a backend does to bring up a fresh instance.
pub(crate) trait Launch {
    /// Starts a server whose files may live under `dir`, and waits until it answers.
    async fn launch(&self, dir: &Path, generation: &str) -> Result<Instance, EnvError>;
}

/// A process's membership of a shared instance: while it is alive, the instance stays up.
#[derive(Debug)]
pub(crate) struct Membership {
    pub(crate) instance: Instance,
    pub(crate) dir: PathBuf,
    /// Whether this process started the instance (a cold start) or joined a running one.
    pub(crate) started: bool,
    _users: FileLock,
}

impl Membership {
    /// Marks a database as kept for a failed test, so the instance outlives the run.
    pub(crate) fn keep(&self, database: &str) {
        let kept = self.dir.join("kept");
        let _ = std::fs::create_dir_all(&kept);
        let _ = std::fs::write(kept.join(database), b"");
    }

    /// Forgets that a database was kept.
    pub(crate) fn unkeep(&self, database: &str) {
        let _ = std::fs::remove_file(self.dir.join("kept").join(database));
    }
}

/// Whether an instance runs under `dir`: one is recorded and its watchdog guards it. Says nothing
/// about whether the server answers.
pub(crate) fn running(dir: &Path) -> bool {
    read(dir)
        .ok()
        .flatten()
        .is_some_and(|instance| watchdog_alive(dir, &instance.generation))
}

/// Joins the instance under `dir` the quick way, when one runs and its watchdog guards it: under
/// a shared `setup.lock` (the watchdog stops a server only under the exclusive one), without
/// probing the server, so that processes joining at once do not wait for each other. `None`
/// when nothing runs there; the caller's first connection is the probe, and if it fails the
/// caller asks [`join`].
pub(crate) fn join_running(dir: &Path) -> Result<Option<Membership>, EnvError> {
    if !trusted(dir)? || !dir.join("instance.json").exists() {
        return Ok(None);
    }
    let _setup = FileLock::shared(&dir.join("setup.lock"))?;
    let Some(instance) = read(dir)?.filter(|i| watchdog_alive(dir, &i.generation)) else {
        return Ok(None);
    };
    let users = FileLock::shared(&dir.join("users.lock"))?;
    log_event(dir, &format!("join generation={}", instance.generation));
    Ok(Some(Membership {
        instance,
        dir: dir.to_owned(),
        started: false,
        _users: users,
    }))
}

/// Joins the instance under `dir`, starting one with `launcher` if none runs or the recorded one
/// no longer answers.
pub(crate) async fn join(
    dir: &Path,
    linger: Duration,
    launcher: &impl Launch,
) -> Result<Membership, EnvError> {
    secure(dir)?;
    let _setup = FileLock::exclusive(&dir.join("setup.lock"))?;
    // Again: the folder may have been removed, and made anew by anyone, while this process
    // waited for the lock.
    secure(dir)?;
    private::ensure(&dir.join("kept"))?;
    let mut started = false;
    let instance = match read(dir)? {
        Some(instance) if answers(&instance.endpoint).await => instance,
        stale => {
            if let Some(stale) = stale {
                stale.stop.run(dir);
            }
            let _ = std::fs::remove_file(dir.join("instance.json"));
            let generation = format!("{:016x}", rand::random::<u64>());
            let instance = launcher.launch(dir, &generation).await?;
            // A path that is not UTF-8 does not serialize: refused like a failed write.
            let written = serde_json::to_vec_pretty(&instance)
                .map_err(|e| EnvError::io("write instance.json")(std::io::Error::other(e)))
                .and_then(|json| private::write(&dir.join("instance.json"), &json));
            if let Err(e) = written {
                instance.stop.run(dir);
                return Err(e);
            }
            started = true;
            instance
        }
    };
    ensure_watchdog(dir, &instance, linger)?;
    let users = FileLock::shared(&dir.join("users.lock"))?;
    let verb = if started { "start" } else { "join" };
    log_event(dir, &format!("{verb} generation={}", instance.generation));
    Ok(Membership {
        instance,
        dir: dir.to_owned(),
        started,
        _users: users,
    })
}

/// Appends one line to `<dir>/events.log`: what this process did with the shared instance
/// (`start`, `join`, `template-build`), so a run can be checked to have started one server and
/// built one template however many processes it had.
pub(crate) fn log_event(dir: &Path, event: &str) {
    use std::io::Write;
    let line = format!("{event} pid={}\n", std::process::id());
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("events.log"))
    {
        let _ = file.write_all(line.as_bytes());
    }
}

/// The instance recorded under `dir`, if any (a record of an older layout reads as none).
/// Refuses a folder that is not private, before reading anything in it.
pub(crate) fn read(dir: &Path) -> Result<Option<Instance>, EnvError> {
    if !trusted(dir)? {
        return Ok(None);
    }
    let Ok(bytes) = std::fs::read(dir.join("instance.json")) else {
        return Ok(None);
    };
    Ok(serde_json::from_slice(&bytes).ok())
}

/// Stops the instance under `dir` now if nobody uses it, whatever the linger time; kept databases
/// are forgotten and the folder is removed. Returns whether one was stopped.
pub(crate) fn stop_if_unused(dir: &Path) -> Result<bool, EnvError> {
    if !trusted(dir)? {
        return Ok(false);
    }
    let _setup = FileLock::exclusive(&dir.join("setup.lock"))?;
    let Some(instance) = read(dir)? else {
        return Ok(false);
    };
    let Some(_users) = FileLock::try_exclusive(&dir.join("users.lock"))? else {
        return Ok(false);
    };
    instance.stop.run(dir);
    remove_folder(dir);
    Ok(true)
}

/// Removes a stopped instance's folder if the harness made it (else only what it put there,
/// [`OURS`]), and the state directory above it when the harness made that too and nothing else is
/// left in it. The watchdog does the same in `sh`. Must run under `setup.lock`.
fn remove_folder(dir: &Path) {
    if private::is_marked(dir) {
        let _ = std::fs::remove_dir_all(dir);
    } else {
        for name in OURS {
            let path = dir.join(name);
            let _ = std::fs::remove_dir_all(&path).or_else(|_| std::fs::remove_file(&path));
        }
    }
    if let Some(state) = dir.parent()
        && private::is_marked(state)
        && std::fs::read_dir(state).is_ok_and(|entries| entries.count() == 1)
    {
        // Fails, as it should, if another backend's folder came meanwhile.
        let _ = std::fs::remove_file(state.join(private::MARKER));
        let _ = std::fs::remove_dir(state);
    }
}

/// Forgets every kept-database marker under `dir`.
pub(crate) fn clear_kept(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir.join("kept")) {
        for entry in entries.flatten() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Whether a server answers `select 1` at `endpoint` within a few seconds.
pub(crate) async fn answers(endpoint: &Endpoint) -> bool {
    matches!(
        tokio::time::timeout(Duration::from_secs(3), probe(endpoint)).await,
        Ok(Ok(()))
    )
}

/// Connects to the administration database and runs `select 1`: the readiness check.
async fn probe(endpoint: &Endpoint) -> Result<(), sqlx::Error> {
    let mut conn = sqlx::PgConnection::connect_with(&endpoint.admin_options()).await?;
    sqlx::query("select 1").execute(&mut conn).await?;
    conn.close().await
}

/// Polls `endpoint` until it answers `select 1`, for at most `limit`; `alive` tells whether the
/// server process is still there, so that a crashed start fails at once.
pub(crate) async fn wait_ready(
    endpoint: &Endpoint,
    limit: Duration,
    mut alive: impl FnMut() -> bool,
) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let last = match tokio::time::timeout(Duration::from_secs(2), probe(endpoint)).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => e.to_string(),
            Err(_) => "connecting timed out".to_owned(),
        };
        if !alive() {
            return Err(format!("the server exited ({last})"));
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!("no answer within {} s ({last})", limit.as_secs()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The watchdog: a `sh` loop (with `flock` from util-linux) that outlives every test process.
/// Arguments: the instance folder, linger seconds, generation, then what to stop: `cluster DATA`
/// (the postmaster whose `/proc` entry shows it runs in DATA, as [`Stop::run`] checks) or
/// `container ID`, whose heartbeat (`heartbeats/ID`) it renews every second while it guards it.
/// The rest are the entries the harness puts in the folder ([`OURS`]), all it removes of one it did
/// not make. A container it fails to remove keeps its folder (but not `instance.json`), so the
/// next launch reaps it once the heartbeat is stale. They are only ever arguments: nothing the
/// script reads is run.
const WATCHDOG: &str = r#"
dir=$1 linger=$2 gen=$3 kind=$4 what=$5
shift 5
echo $$ > "$dir/watchdog.pid"
stop() {
  case $kind in
  cluster)
    pid=$(head -n1 "$what/postmaster.pid" 2>/dev/null)
    case $pid in ''|*[!0-9]*) pid= ;; esac
    if [ -n "$pid" ] && [ "$(readlink "/proc/$pid/cwd")" = "$(readlink -f "$what")" ] &&
      tr '\0' '\n' < "/proc/$pid/cmdline" 2>/dev/null | grep -qxF -- "$what"; then
      kill -QUIT "$pid"; i=0
      while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
      kill -KILL "$pid" 2>/dev/null
    fi
    true ;;
  container)
    docker rm -f -v "$what" >/dev/null 2>&1 || ! docker container inspect "$what" >/dev/null 2>&1 ;;
  esac
}
beat() {
  case $kind:$what in container:*[!0-9a-f]*) ;; container:?*) touch "$dir/heartbeats/$what" 2>/dev/null ;; esac
}
unused() {
  grep -q "$gen" "$dir/instance.json" 2>/dev/null &&
  [ -z "$(ls -A "$dir/kept" 2>/dev/null)" ] &&
  flock -n -x "$dir/users.lock" true
}
idle=0
while grep -q "$gen" "$dir/instance.json" 2>/dev/null; do
  beat
  sleep 1
  if unused; then idle=$((idle + 1)); else idle=0; fi
  if [ "$idle" -ge "$linger" ]; then
    exec 9>>"$dir/setup.lock"
    flock -x 9
    if unused; then
      stop || { rm -f "$dir/instance.json"; exit 1; }
      if [ -f "$dir/.billing-harness" ]; then rm -rf "$dir"
      else (cd "$dir" && rm -rf -- "$@")
      fi
      state=$(dirname "$dir")
      if [ -f "$state/.billing-harness" ] && [ "$(ls -A "$state")" = .billing-harness ]; then
        rm -f "$state/.billing-harness"; rmdir "$state" 2>/dev/null
      fi
      exit 0
    fi
    exec 9>&-
    idle=0
  fi
done
"#;

fn watchdog_alive(dir: &Path, generation: &str) -> bool {
    let Ok(pid) = std::fs::read_to_string(dir.join("watchdog.pid")) else {
        return false;
    };
    let Ok(pid) = pid.trim().parse::<u32>() else {
        return false;
    };
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|cmdline| String::from_utf8_lossy(&cmdline).contains(generation))
        .unwrap_or(false)
}

fn ensure_watchdog(dir: &Path, instance: &Instance, linger: Duration) -> Result<(), EnvError> {
    if watchdog_alive(dir, &instance.generation) {
        return Ok(());
    }
    let _ = std::fs::remove_file(dir.join("watchdog.pid"));
    let status = os::detached_sh(WATCHDOG, "billing-harness-watchdog")
        .arg(dir)
        .arg(linger.as_secs().to_string())
        .arg(&instance.generation)
        .args(instance.stop.watchdog_args())
        .args(OURS)
        .status()
        .map_err(EnvError::io(
            "start the watchdog with `setsid` (util-linux)",
        ))?;
    if !status.success() {
        return Err(EnvError::Start {
            what: "the watchdog".into(),
            reason: format!("setsid exited with {status}"),
        });
    }
    // The watchdog writes its pid first thing; wait for it so the next joiner sees it.
    for _ in 0..200 {
        if watchdog_alive(dir, &instance.generation) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Err(EnvError::Start {
        what: "the watchdog".into(),
        reason: "it did not record its pid within 1 s".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_of_the_old_layout_with_a_stop_command_reads_as_none() {
        let state = crate::scratch_dir("old-record");
        let dir = state.join("local");
        secure(&dir).unwrap();
        std::fs::write(
            dir.join("instance.json"),
            r#"{"generation": "1", "endpoint": {}, "stop": "touch /tmp/bh-pwned"}"#,
        )
        .unwrap();
        let read = read(&dir);
        std::fs::remove_dir_all(&state).unwrap();
        assert!(matches!(read, Ok(None)), "{read:?}");
    }

    /// A `HARNESS_STATE_DIR` that was there, with a file of the user's in it and a `local`
    /// folder of the user's: the harness removes only what it made.
    #[test]
    fn only_what_the_harness_made_is_removed() {
        let state = crate::scratch_dir("remove-ours");
        private::ensure(&state).unwrap();
        std::fs::write(state.join("notes.txt"), "mine").unwrap();
        secure(&state.join("container")).unwrap();
        std::fs::create_dir(state.join("local")).unwrap();
        std::fs::write(state.join("local").join("mine.txt"), "mine").unwrap();
        secure(&state.join("local")).unwrap();
        for name in OURS {
            std::fs::write(state.join("local").join(name), "").unwrap();
        }
        let (container_marked, local_marked) = (
            private::is_marked(&state.join("container")),
            private::is_marked(&state.join("local")),
        );
        remove_folder(&state.join("container"));
        remove_folder(&state.join("local"));
        let mut left: Vec<String> = walk(&state);
        left.sort();
        std::fs::remove_dir_all(&state).unwrap();
        assert_eq!((container_marked, local_marked), (true, false));
        assert_eq!(left, ["local", "local/mine.txt", "notes.txt"]);
    }

    /// A state folder the harness made goes with its last backend's folder; one an older harness
    /// made (only its files in it) is marked when used again.
    #[test]
    fn a_state_folder_the_harness_made_goes_with_its_last_backend() {
        let state = crate::scratch_dir("remove-made");
        secure(&state.join("local")).unwrap();
        secure(&state.join("container")).unwrap();
        remove_folder(&state.join("local"));
        let after_one = state.exists();
        remove_folder(&state.join("container"));
        assert!(after_one && !state.exists());

        let older = state.join("local");
        private::ensure(&state).unwrap();
        private::ensure(&older).unwrap();
        std::fs::write(older.join("instance.json"), "{}").unwrap();
        secure(&older).unwrap();
        let marked = private::is_marked(&older);
        std::fs::remove_dir_all(&state).unwrap();
        assert!(marked);
    }

    #[test]
    fn the_watchdog_removes_the_same_entries_of_an_unmarked_folder() {
        // The entries themselves are its arguments after the five named ones: `OURS`.
        assert!(WATCHDOG.contains("shift 5\n"));
        assert!(WATCHDOG.contains("rm -rf -- \"$@\")"));
        assert!(WATCHDOG.contains(&format!("\"$dir/{}\"", private::MARKER)));
    }

    /// The paths below `dir`, relative to it.
    fn walk(dir: &Path) -> Vec<String> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.path().is_dir() {
                found.extend(
                    walk(&entry.path())
                        .into_iter()
                        .map(|p| format!("{name}/{p}")),
                );
            }
            found.push(name);
        }
        found
    }
}
