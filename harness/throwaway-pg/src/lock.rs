//! File locks in private folders: the throwaway server's `setup.lock` and `users.lock`.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::EnvError;

/// An advisory lock on a file, held until dropped (or until the process dies).
///
/// The lock file lives in a private folder (see `private.rs`): another user cannot open it, so
/// cannot hold it. A stopped instance's folder is removed under its `setup.lock`, so a lock is
/// only taken once the file locked is still the one at `path`: a process that waited on the
/// removed file tries again on the new one (and creates the folder, privately, if needed).
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
        // The folder is private (made `0700` if new), so no other user can hold the lock.
        if let Some(dir) = path.parent() {
            super::private::ensure(dir)?;
        }
        use std::os::unix::fs::OpenOptionsExt;
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
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
        let dir = crate::scratch_dir("lock-test");
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
