//! Small operating-system helpers: who we are, which user runs the server, free ports and file
//! locks. How much room a folder has is `disk.rs`.

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
///
/// A stopped instance's folder is removed under its `setup.lock`, so a lock is only taken once
/// the file locked is still the one at `path`: a process that waited on the removed file tries
/// again on the new one (and creates the folder if needed).
#[derive(Debug)]
pub(crate) struct FileLock {
    file: File,
}

/// How a [`FileLock`] is taken.
#[derive(Clone, Copy)]
enum Mode {
    Exclusive,
    Shared,
}

impl FileLock {
    fn open(path: &Path) -> Result<File, EnvError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(EnvError::io(format!("create {}", dir.display())))?;
        }
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(EnvError::io(format!("open lock file {}", path.display())))
    }

    /// Whether `file` is still the file at `path` (not removed or replaced while we waited).
    fn still_there(file: &File, path: &Path) -> bool {
        match (file.metadata(), std::fs::metadata(path)) {
            (Ok(held), Ok(now)) => held.dev() == now.dev() && held.ino() == now.ino(),
            _ => false,
        }
    }

    fn take(path: &Path, mode: Mode) -> Result<FileLock, EnvError> {
        loop {
            let file = Self::open(path)?;
            match mode {
                Mode::Exclusive => file.lock(),
                Mode::Shared => file.lock_shared(),
            }
            .map_err(EnvError::io(format!("lock {}", path.display())))?;
            if Self::still_there(&file, path) {
                return Ok(FileLock { file });
            }
        }
    }

    /// Waits for the exclusive lock on `path`.
    pub(crate) fn exclusive(path: &Path) -> Result<FileLock, EnvError> {
        Self::take(path, Mode::Exclusive)
    }

    /// Waits for a shared lock on `path`.
    pub(crate) fn shared(path: &Path) -> Result<FileLock, EnvError> {
        Self::take(path, Mode::Shared)
    }

    /// Takes the exclusive lock on `path` only if nobody holds any lock on it.
    pub(crate) fn try_exclusive(path: &Path) -> Result<Option<FileLock>, EnvError> {
        loop {
            let file = Self::open(path)?;
            match file.try_lock() {
                Ok(()) if Self::still_there(&file, path) => return Ok(Some(FileLock { file })),
                Ok(()) => continue,
                Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(EnvError::io(format!("lock {}", path.display()))(e));
                }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_file_removed_while_waiting_is_taken_again_at_its_path() {
        let dir = std::env::temp_dir().join(format!("bh-lock-test-{}", std::process::id()));
        let path = dir.join("setup.lock");
        let first = FileLock::exclusive(&path).unwrap();
        let waiter = {
            let path = path.clone();
            std::thread::spawn(move || {
                FileLock::exclusive(&path).map(|lock| lock.file.metadata().unwrap().ino())
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(100));
        std::fs::remove_dir_all(&dir).unwrap();
        drop(first);
        let locked = waiter.join().unwrap().unwrap();
        let at_path = std::fs::metadata(&path).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(locked, at_path.ino());
    }
}
