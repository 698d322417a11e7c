//! The `local` backend: a throwaway cluster from the machine's `initdb` and `postgres`, tuned for
//! tests (no fsync) and for a small footprint (1 MB WAL segments, little WAL kept), on a unix
//! socket in the private state folder and a free port on 127.0.0.1.
//!
//! Only its user can open it: the superuser `postgres` has a random password per cluster
//! (`scram-sha-256` for the socket and TCP alike; `initdb --pwfile` reads its SCRAM secret from a
//! `0600` file that is removed at once), and the cluster's folder and socket folder are `0700`.
//!
//! Its shared memory never outlives it: the main segment is anonymous memory (`shared_memory_type
//! = mmap`), and dynamic segments are files in the data folder (`dynamic_shared_memory_type =
//! mmap`), not `/dev/shm/PostgreSQL.*` files that an immediate shutdown would leave behind.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::EnvError;
use super::endpoint::Endpoint;
use super::instance::{self, Instance, Launch};
use super::os::{self, Account};
use super::password;
use super::private;
use super::stop::{self, Stop};

/// The PostgreSQL server programs found on this machine.
#[derive(Debug, Clone)]
pub(crate) struct Binaries {
    pub(crate) dir: PathBuf,
}

impl Binaries {
    /// Looks in `HARNESS_PG_BIN`, then on `PATH`, then under `/usr/lib/postgresql/*/bin` (newest
    /// first).
    pub(crate) fn find(configured: Option<&Path>) -> Result<Binaries, EnvError> {
        let complete = |dir: &Path| {
            ["initdb", "pg_ctl", "postgres"]
                .iter()
                .all(|p| dir.join(p).is_file())
        };
        let dir = if let Some(dir) = configured {
            if !complete(dir) {
                return Err(EnvError::Unavailable {
                    backend: "local",
                    reason: format!(
                        "HARNESS_PG_BIN={} does not hold initdb, pg_ctl and postgres",
                        dir.display()
                    ),
                    fix: "point HARNESS_PG_BIN at PostgreSQL's bin folder, or unset it".into(),
                });
            }
            dir.to_owned()
        } else if let Some(dir) = os::which("initdb")
            .and_then(|p| std::fs::canonicalize(p).ok())
            .and_then(|p| p.parent().map(Path::to_owned))
            .filter(|d| complete(d))
        {
            dir
        } else {
            let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| {
                    let major = e.file_name().to_str()?.parse().ok()?;
                    Some((major, e.path().join("bin")))
                })
                .filter(|(_, dir)| complete(dir))
                .collect();
            versions.sort();
            versions
                .pop()
                .map(|(_, dir)| dir)
                .ok_or_else(|| EnvError::Unavailable {
                    backend: "local",
                    reason: "no initdb, pg_ctl and postgres on PATH or under /usr/lib/postgresql/*/bin".into(),
                    fix: "install the server binaries (Debian: `apt-get install postgresql`) or set HARNESS_PG_BIN".into(),
                })?
        };
        Ok(Binaries { dir })
    }

    /// `postgres --version`, for messages. Asked only when a message needs it: running it costs
    /// a process, and every test process finds the binaries.
    pub(crate) fn version(&self) -> String {
        let mut cmd = os::command(&self.dir.join("postgres"), None);
        cmd.arg("--version");
        os::run(cmd, "postgres --version")
            .map(|v| v.trim().to_owned())
            .unwrap_or_else(|_| "postgres (version unknown)".into())
    }
}

/// Starts clusters from [`Binaries`].
#[derive(Debug)]
pub(crate) struct LocalLauncher {
    pub(crate) binaries: Binaries,
    pub(crate) account: Option<Account>,
}

impl LocalLauncher {
    pub(crate) fn new(pg_bin: Option<&Path>) -> Result<LocalLauncher, EnvError> {
        Ok(LocalLauncher {
            binaries: Binaries::find(pg_bin)?,
            account: Account::for_server()?,
        })
    }
}

/// Settings that trade durability for speed (a test cluster is thrown away anyway) and keep the
/// cluster small: WAL only as much as crash recovery needs (`wal_level = minimal`), in 1 MB
/// segments, removed rather than recycled; shared memory that lives and dies with the data folder.
/// New WAL segments are still written full of zeros (`wal_init_zero`), so that a full folder fails
/// when a segment is made, not with a server crash half-way through a segment.
const SETTINGS: &str = "
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
wal_level = minimal
max_wal_senders = 0
min_wal_size = 2MB
max_wal_size = 8MB
wal_recycle = off
checkpoint_timeout = 1h
checkpoint_flush_after = 0
bgwriter_flush_after = 0
wal_writer_flush_after = 0
shared_memory_type = mmap
dynamic_shared_memory_type = mmap
huge_pages = off
listen_addresses = '127.0.0.1'
unix_socket_permissions = 0700
password_encryption = 'scram-sha-256'
timezone = 'UTC'
log_min_messages = warning
";

/// `shared_buffers` sized to the room in the state folder: a quarter of its free space, from 16 MB
/// to 128 MB. On tmpfs the buffers and the files take the same memory, and a test database is a
/// few megabytes.
fn shared_buffers(dir: &Path) -> u64 {
    const MB: u64 = 1 << 20;
    let free = super::disk::space(dir).map_or(128 * MB, |s| s.free);
    (free / 4).clamp(16 * MB, 128 * MB) / MB
}

/// An error of a step of the start that failed for lack of space, in words; other errors as
/// they are.
fn space_or(error: EnvError, step: &str) -> EnvError {
    match &error {
        EnvError::Start { reason, .. } if super::error::mentions_no_space(reason) => {
            let line = reason
                .lines()
                .rev()
                .find(|l| super::error::mentions_no_space(l))
                .unwrap_or(reason)
                .trim()
                .to_owned();
            EnvError::out_of_space(step, line)
        }
        _ => error,
    }
}

impl Launch for LocalLauncher {
    async fn launch(&self, dir: &Path, generation: &str) -> Result<Instance, EnvError> {
        let cluster = dir.join("cluster");
        let data = stop::cluster_data(dir);
        let stop = Stop::Cluster { data: data.clone() };
        if cluster.exists() {
            stop.run(dir);
        }
        let password = password::new_password();
        let passfile = password::write_passfile(dir, &password)?;
        self.init(dir, &password).inspect_err(|_| {
            stop.run(dir);
        })?;
        let socket = cluster.join("socket");
        let log = cluster.join("server.log");
        let account = self.account.as_ref();
        let shared_buffers = shared_buffers(dir);
        let mut last_error = String::new();
        for _ in 0..3 {
            let port = os::free_port()?;
            let conf = format!(
                "{SETTINGS}shared_buffers = {shared_buffers}MB\nport = {port}\nunix_socket_directories = '{}'\n",
                socket.display()
            );
            std::fs::write(data.join("postgresql.auto.conf"), conf)
                .map_err(EnvError::io("write postgresql.auto.conf"))?;
            if let Some(account) = account {
                account.own(&data.join("postgresql.auto.conf"))?;
            }
            let mut start = os::command(&self.binaries.dir.join("pg_ctl"), account);
            start
                .arg("start")
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(&log)
                .args(["-W", "-s"]);
            if let Err(e) = os::run(start, "pg_ctl start") {
                last_error = super::error::with_causes(&e);
                continue;
            }
            let endpoint = Endpoint::throwaway(
                port,
                "postgres",
                &password,
                Some(socket.clone()),
                passfile.clone(),
            );
            let pid_file = data.join("postmaster.pid");
            let mut seen_pid = false;
            let ready = instance::wait_ready(&endpoint, Duration::from_secs(30), || {
                // pg_ctl -W returns before the postmaster writes its pid file: only a pid file
                // that appeared and vanished again means the server died.
                let exists = pid_file.exists();
                seen_pid |= exists;
                exists || !seen_pid
            })
            .await;
            match ready {
                Ok(()) => {
                    return Ok(Instance {
                        generation: generation.to_owned(),
                        endpoint,
                        stop,
                    });
                }
                Err(reason) => {
                    let tail = log_tail(&log);
                    stop::stop_postmaster(&data);
                    last_error = format!("{reason}; server log:\n{tail}");
                    if !tail.contains("could not bind") && !tail.contains("already in use") {
                        break;
                    }
                }
            }
        }
        stop.run(dir);
        Err(space_or(
            EnvError::Start {
                what: format!("a local cluster with {}", self.binaries.version()),
                reason: last_error,
            },
            "start the local cluster",
        ))
    }
}

impl LocalLauncher {
    /// Makes the cluster's folders (`0700`, the server's user's) and runs `initdb` with
    /// `password` for the superuser: its SCRAM secret, read from a `0600` file that is removed at
    /// once (the server's user never sees the password itself).
    fn init(&self, dir: &Path, password: &str) -> Result<(), EnvError> {
        let cluster = dir.join("cluster");
        if let Some(account) = &self.account {
            // The server's own user must be able to walk down to its data directory.
            for path in [dir.parent(), Some(dir)].into_iter().flatten() {
                let_in(path, account)?;
            }
        }
        for path in [cluster.clone(), cluster.join("socket")] {
            private::ensure(&path)?;
            if let Some(account) = &self.account {
                account.own(&path)?;
            }
        }
        let pwfile = cluster.join("pwfile");
        let secret = password::scram_secret(password);
        private::write(&pwfile, format!("{secret}\n").as_bytes())?;
        if let Some(account) = &self.account {
            account.own(&pwfile)?;
        }
        let mut cmd = os::command(&self.binaries.dir.join("initdb"), self.account.as_ref());
        cmd.arg("-D")
            .arg(stop::cluster_data(dir))
            .arg(format!("--pwfile={}", pwfile.display()))
            .args([
                "-U",
                "postgres",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
                // 1 MB instead of 16 MB: the cluster's WAL is most of its size otherwise.
                "--wal-segsize=1",
            ]);
        let initialised = os::run(cmd, "initdb");
        let _ = std::fs::remove_file(&pwfile);
        initialised
            .map(drop)
            .map_err(|e| space_or(e, "create a cluster with initdb"))
    }
}

/// Lets the server's user walk through `path` (only that user's group, not everyone): adds
/// group search to a folder that others cannot search, giving it the account's group.
fn let_in(path: &Path, account: &Account) -> Result<(), EnvError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = std::fs::metadata(path).map_err(EnvError::io(format!("read {}", path.display())))?;
    let mode = meta.mode() & 0o7777;
    if mode & 0o001 != 0 || (meta.gid() == account.gid && mode & 0o010 != 0) {
        return Ok(());
    }
    let fail = || EnvError::io(format!("let the server's user into {}", path.display()));
    std::os::unix::fs::chown(path, None, Some(account.gid)).map_err(fail())?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode | 0o010)).map_err(fail())
}

fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}
