//! Helpers the xtask test binaries share: a state folder of a test's own, a command's first line
//! of output, and polling.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A fresh state folder `<prefix>-<name>-<pid>` where the harness itself would put one
/// (`/dev/shm` only when it has room for a server), so that the test's server is its own.
#[allow(dead_code, reason = "not every test binary starts a server of its own")]
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

/// Spawns `cmd` with its standard output piped (input and errors discarded); the receiver yields
/// its first line, trimmed, once printed.
pub(crate) fn spawn_first_line(cmd: &mut Command) -> (Child, mpsc::Receiver<String>) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let rx = first_line(child.stdout.take().unwrap());
    (child, rx)
}

/// The first line `output` gives (a child's piped stdout or stderr), trimmed, read on a thread of
/// its own: the receiver yields it once written.
pub(crate) fn first_line(output: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(output).read_line(&mut line);
        let _ = tx.send(line.trim().to_owned());
    });
    rx
}
