//! Small operating-system helpers: who we are, which user runs the server, free ports, file locks.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::EnvError;

/// The effective user id of this process (the owner of `/proc/self`).
pub(crate) fn current_uid() -> u32 {
    std::fs::metadata("/proc/self").map_or(u32::MAX, |m| m.uid())
}

/// An operating-system account that can own a PostgreSQL data directory.
#[derive(Debug, Clone)]
pub(crate) struct Account {
    pub(crate) name: String,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
}

impl Account {
    /// The account to run `initdb` and `postgres` as: this process's own, or, when running as
    /// root (which PostgreSQL refuses), `postgres` if it exists and else `nobody`.
    pub(crate) fn for_server() -> Result<Option<Account>, EnvError> {
        if current_uid() != 0 {
            return Ok(None);
        }
        let passwd = std::fs::read_to_string("/etc/passwd").map_err(EnvError::io(
            "read /etc/passwd to find an unprivileged user",
        ))?;
        let find = |wanted: &str| {
            passwd.lines().find_map(|line| {
                let mut fields = line.split(':');
                let name = fields.next()?;
                if name != wanted {
                    return None;
                }
                let uid = fields.nth(1)?.parse().ok()?;
                let gid = fields.next()?.parse().ok()?;
                Some(Account {
                    name: name.to_owned(),
                    uid,
                    gid,
                })
            })
        };
        find("postgres")
            .or_else(|| find("nobody"))
            .map(Some)
            .ok_or_else(|| EnvError::Unavailable {
                backend: "local",
                reason: "running as root, and neither a `postgres` nor a `nobody` user exists to run the server".into(),
                fix: "create an unprivileged user named postgres (`useradd postgres`) or run as a normal user".into(),
            })
    }

    /// Makes `path` (and what is below it) belong to this account.
    pub(crate) fn own(&self, path: &Path) -> Result<(), EnvError> {
        std::os::unix::fs::chown(path, Some(self.uid), Some(self.gid)).map_err(EnvError::io(
            format!("give {} to user {}", path.display(), self.name),
        ))
    }
}

/// A command that runs as `account` when one is given, with no terminal input or output.
pub(crate) fn command(program: &Path, account: Option<&Account>) -> Command {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(program);
    if let Some(account) = account {
        cmd.uid(account.uid).gid(account.gid);
        cmd.env("HOME", "/tmp").env("USER", &account.name);
    }
    cmd.stdin(Stdio::null());
    cmd
}

/// Runs `cmd` to completion; a failure carries its standard error.
pub(crate) fn run(mut cmd: Command, what: &str) -> Result<String, EnvError> {
    let output = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .map_err(EnvError::io(format!("run {what}")))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(EnvError::Start {
            what: what.to_owned(),
            reason: format!(
                "{} ({})",
                String::from_utf8_lossy(&output.stderr).trim(),
                output.status
            ),
        })
    }
}

/// A TCP port on 127.0.0.1 that nothing listens on right now.
pub(crate) fn free_port() -> Result<u16, EnvError> {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(EnvError::io("find a free port on 127.0.0.1"))
}

/// Looks for an executable on `PATH`.
pub(crate) fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// An advisory lock on a file, held until dropped (or until the process dies).
#[derive(Debug)]
pub(crate) struct FileLock {
    file: File,
}

impl FileLock {
    fn open(path: &Path) -> Result<File, EnvError> {
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(EnvError::io(format!("open lock file {}", path.display())))
    }

    /// Waits for the exclusive lock on `path`.
    pub(crate) fn exclusive(path: &Path) -> Result<FileLock, EnvError> {
        let file = Self::open(path)?;
        file.lock()
            .map_err(EnvError::io(format!("lock {}", path.display())))?;
        Ok(FileLock { file })
    }

    /// Waits for a shared lock on `path`.
    pub(crate) fn shared(path: &Path) -> Result<FileLock, EnvError> {
        let file = Self::open(path)?;
        file.lock_shared()
            .map_err(EnvError::io(format!("lock {}", path.display())))?;
        Ok(FileLock { file })
    }

    /// Takes the exclusive lock on `path` only if nobody holds any lock on it.
    pub(crate) fn try_exclusive(path: &Path) -> Result<Option<FileLock>, EnvError> {
        let file = Self::open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(FileLock { file })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(EnvError::io(format!("lock {}", path.display()))(e))
            }
        }
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // Closing the file releases the lock as well; unlocking first makes the order explicit.
        let _ = self.file.unlock();
    }
}
