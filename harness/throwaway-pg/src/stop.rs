//! Stopping a throwaway server from what its state folder records: data the harness checks
//! before acting on it, never a command. A local cluster is stopped by signalling the pid whose
//! `/proc` entry shows it runs in the data folder the harness made (inside the private instance
//! folder); a container is removed by an id that is one (hexadecimal digits). No shell runs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::os::quiet;

/// What stops an instance and removes what it left on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Stop {
    /// A local cluster: the postmaster of `data` (which must be `<instance folder>/cluster/data`)
    /// is signalled once `/proc` shows it runs there, then the cluster's folder is removed.
    Cluster {
        /// The cluster's data folder.
        data: PathBuf,
    },
    /// A container, removed with its volumes by its id.
    Container {
        /// The container's id.
        id: String,
    },
}

impl Stop {
    /// Stops the instance whose folder in the state directory is `dir`. A record that names a
    /// data folder elsewhere, or a container id that is not one, is not acted on: returns
    /// whether it acted.
    pub(crate) fn run(&self, dir: &Path) -> bool {
        match self {
            Stop::Cluster { data } if *data == cluster_data(dir) => {
                stop_postmaster(data);
                let _ = std::fs::remove_dir_all(dir.join("cluster"));
                true
            }
            Stop::Container { id } if is_container_id(id) => {
                remove_container(id);
                let _ = std::fs::remove_file(heartbeat_path(dir, id));
                true
            }
            _ => false,
        }
    }

    /// The watchdog's arguments for it: `cluster DATA` or `container ID`.
    pub(crate) fn watchdog_args(&self) -> [&std::ffi::OsStr; 2] {
        match self {
            Stop::Cluster { data } => ["cluster".as_ref(), data.as_os_str()],
            Stop::Container { id } => ["container".as_ref(), id.as_ref()],
        }
    }
}

/// Where a local cluster's data folder is under the instance folder `dir`.
pub(crate) fn cluster_data(dir: &Path) -> PathBuf {
    dir.join("cluster").join("data")
}

/// Where the heartbeat of container `id` is renewed under the instance folder `dir`
/// (`container.rs` renews and reads it).
pub(crate) fn heartbeat_path(dir: &Path, id: &str) -> PathBuf {
    dir.join("heartbeats").join(id)
}

/// Whether `id` looks like a Docker container id (12 to 64 hexadecimal digits).
pub(crate) fn is_container_id(id: &str) -> bool {
    (12..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Removes a container and its volumes with `docker rm -f -v`, if `id` is a container id.
pub(crate) fn remove_container(id: &str) {
    if is_container_id(id) {
        let _ = quiet(Command::new("docker").args(["rm", "-f", "-v", id])).status();
    }
}

/// Stops the postmaster of `data`, only if `/proc` shows that the pid in its `postmaster.pid`
/// runs there (its working folder is `data`, and `data` is one of its arguments): SIGQUIT, then
/// SIGKILL after 5 s. The pid is only ever a number given to `kill`.
pub(crate) fn stop_postmaster(data: &Path) {
    let Some(pid) = std::fs::read_to_string(data.join("postmaster.pid"))
        .ok()
        .and_then(|text| text.lines().next()?.trim().parse::<u32>().ok())
    else {
        return;
    };
    if !runs_in(pid, data) {
        return;
    }
    let gone = |pid: u32| !Path::new(&format!("/proc/{pid}")).exists();
    signal(pid, "-QUIT");
    for _ in 0..100 {
        if gone(pid) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    signal(pid, "-KILL");
}

/// Whether process `pid` works in `data` and names it among its arguments: a postmaster of that
/// data folder, not whatever took its pid since.
fn runs_in(pid: u32, data: &Path) -> bool {
    let proc = PathBuf::from(format!("/proc/{pid}"));
    let cwd = std::fs::read_link(proc.join("cwd")).ok();
    let here = std::fs::canonicalize(data).ok();
    let named = std::fs::read(proc.join("cmdline")).is_ok_and(|cmdline| {
        cmdline
            .split(|b| *b == 0)
            .any(|arg| arg == data.as_os_str().as_encoded_bytes())
    });
    cwd.is_some() && cwd == here && named
}

/// Sends `signal` (`-QUIT`, `-KILL`) to `pid` with `kill`.
fn signal(pid: u32, signal: &str) {
    let _ = quiet(Command::new("kill").arg(signal).arg(pid.to_string())).status();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stop_record_outside_its_instance_folder_is_not_acted_on() {
        let dir = crate::scratch_dir("stop-test");
        let elsewhere = dir.with_extension("elsewhere");
        std::fs::create_dir_all(elsewhere.join("data")).unwrap();
        std::fs::create_dir_all(dir.join("cluster")).unwrap();
        let acted = Stop::Cluster {
            data: elsewhere.join("data"),
        }
        .run(&dir);
        let kept = elsewhere.join("data").exists() && dir.join("cluster").exists();
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_dir_all(&elsewhere);
        assert!(!acted);
        assert!(kept, "a folder was removed");
    }

    #[test]
    fn only_hexadecimal_ids_are_container_ids() {
        assert!(is_container_id("0123456789abcdef"));
        assert!(!is_container_id("abc; rm -rf ~"));
        assert!(!is_container_id("--all"));
        assert!(!is_container_id("0123456789a"));
        assert!(!Stop::Container { id: "--all".into() }.run(Path::new("/nonexistent")));
    }

    #[test]
    fn a_process_that_does_not_run_in_the_data_folder_is_not_a_postmaster_of_it() {
        let me = std::process::id();
        let cwd = std::env::current_dir().unwrap();
        // This process works in `cwd` but does not name it among its arguments.
        assert!(!runs_in(me, &cwd));
        assert!(!runs_in(me, Path::new("/nonexistent")));
    }

    #[test]
    fn a_postmaster_pid_file_naming_another_process_signals_nothing() {
        let data = crate::scratch_dir("stop-pid");
        std::fs::create_dir_all(&data).unwrap();
        let mut sleeper = Command::new("sleep").arg("30").spawn().unwrap();
        std::fs::write(data.join("postmaster.pid"), format!("{}\n", sleeper.id())).unwrap();
        stop_postmaster(&data);
        let alive = sleeper.try_wait().unwrap().is_none();
        let _ = sleeper.kill();
        let _ = sleeper.wait();
        let _ = std::fs::remove_dir_all(&data);
        assert!(
            alive,
            "a process that does not run in the data folder was signalled"
        );
    }
}
