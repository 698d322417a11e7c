//! Running one child command (a test run, cargo-mutants) in its own process group, with a
//! timeout, and stopping it whole on Ctrl-C or SIGTERM so the caller can put its files back.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::process::Command;
use tokio::signal::unix::{SignalKind, signal};

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    /// It exited with this code (`None`: killed by a signal).
    Exited(Option<i32>),
    /// It ran past the timeout and was stopped.
    TimedOut,
}

/// The user asked to stop (Ctrl-C or SIGTERM); the child was stopped.
#[derive(Debug)]
pub(crate) struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted")
    }
}

impl std::error::Error for Interrupted {}

/// Ctrl-C and SIGTERM, listened to from the start of the command to its end, so that one
/// arriving between two children is seen by the next.
pub(crate) struct Signals {
    /// SIGINT.
    interrupt: tokio::signal::unix::Signal,
    /// SIGTERM.
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    /// Starts listening (inside a Tokio runtime).
    ///
    /// # Errors
    /// The handlers could not be installed.
    pub(crate) fn listen() -> anyhow::Result<Signals> {
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }
}

/// Runs `program args` in `dir` with `env` added, cargo's package variables removed (see
/// [`package_vars`]) and its output appended to `log` (or inherited when `None`),
/// in a process group of its own, and waits for it, at most `timeout`.
///
/// # Errors
/// It could not start, or [`Interrupted`] when Ctrl-C or SIGTERM arrived (the group has then
/// been stopped).
pub(crate) async fn run(
    signals: &mut Signals,
    program: &str,
    args: &[String],
    dir: &Path,
    log: Option<&Path>,
    timeout: Option<Duration>,
    env: &[(&str, &str)],
) -> anyhow::Result<(Ended, Duration)> {
    let mut cmd = Command::new(program);
    // Without them, a mutant's build reuses ring and the rest as built for the plain tests.
    for name in package_vars() {
        cmd.env_remove(name);
    }
    cmd.args(args)
        .envs(env.iter().copied())
        .current_dir(dir)
        .stdin(Stdio::null())
        .process_group(0);
    if let Some(log) = log {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        cmd.stdout(file.try_clone()?).stderr(file);
    }
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {program} {}", args.join(" ")))?;
    let group = child.id().context("the child has no process id")?;
    // Dropped before the child ends (another side of the run failed first): stop its group.
    let mut orphan = StopOnDrop(Some(group));
    let deadline = async {
        match timeout {
            Some(t) => tokio::time::sleep(t).await,
            None => std::future::pending().await,
        }
    };
    let ended = tokio::select! {
        status = child.wait() => {
            let status = status?;
            Ok((Ended::Exited(status.code()), started.elapsed()))
        }
        () = deadline => {
            stop_group(group, &mut child).await;
            Ok((Ended::TimedOut, started.elapsed()))
        }
        _ = signals.interrupt.recv() => {
            stop_group(group, &mut child).await;
            Err(Interrupted.into())
        }
        _ = signals.terminate.recv() => {
            stop_group(group, &mut child).await;
            Err(Interrupted.into())
        }
    };
    orphan.0 = None;
    ended
}

/// The variables cargo set for the package of the running program (`cargo xtask` runs xtask),
/// inherited by every process it starts. A cargo started from here must not pass them on: ring's
/// build script reruns when `CARGO_MANIFEST_DIR` or a `CARGO_PKG_*` variable differs from what it
/// last saw, so each such build would rebuild ring and everything above it (rustls, bollard,
/// testcontainers). xtask's own cargo commands leave them out too.
pub fn package_vars() -> Vec<std::ffi::OsString> {
    std::env::vars_os()
        .map(|(name, _)| name)
        .filter(|name| {
            let name = name.to_string_lossy();
            name.starts_with("CARGO_PKG_")
                || name.starts_with("CARGO_MANIFEST_")
                || [
                    "CARGO_CRATE_NAME",
                    "CARGO_BIN_NAME",
                    "CARGO_PRIMARY_PACKAGE",
                ]
                .contains(&&*name)
        })
        .collect()
}

/// A child's process group to stop if its [`run`] is dropped before the child ends.
struct StopOnDrop(Option<u32>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Some(group) = self.0 {
            signal_group("TERM", group);
        }
    }
}

/// Sends SIGTERM to the process group, then SIGKILL if it is still there after 15 s.
async fn stop_group(group: u32, child: &mut tokio::process::Child) {
    signal_group("TERM", group);
    if tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .is_err()
    {
        signal_group("KILL", group);
        let _ = child.wait().await;
    }
}

/// `kill -SIGNAL -- -GROUP`: std has no way to signal a process group.
fn signal_group(name: &str, group: u32) {
    let _ = std::process::Command::new("kill")
        .args([format!("-{name}"), "--".to_owned(), format!("-{group}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}
