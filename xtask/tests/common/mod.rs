//! Helpers the xtask test binaries share: a state folder of a test's own, and polling.

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A fresh state folder `<prefix>-<name>-<pid>` where the harness itself would put one
/// (`/dev/shm` only when it has room for a server), so that the test's server is its own.
pub(crate) fn state_dir(prefix: &str, name: &str) -> PathBuf {
    let base = billing_harness::env::Config::default_state_base();
    let dir = base.join(format!("{prefix}-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Polls `done` every 100 ms until it holds or `limit` has passed; whether it held.
pub(crate) fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    done()
}
