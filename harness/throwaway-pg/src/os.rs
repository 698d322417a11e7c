//! Small operating-system helpers: who we are, which user runs the server, quiet and detached
//! commands, and free ports. File locks are `lock.rs`; how much room a folder has is `disk.rs`.

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
        let accounts = accounts().map_err(EnvError::io(
            "read /etc/passwd to find an unprivileged user",
        ))?;
        let find = |wanted: &str| accounts.iter().find(|a| a.name == wanted).cloned();
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

/// The accounts of `/etc/passwd`.
fn accounts() -> std::io::Result<Vec<Account>> {
    let passwd = std::fs::read_to_string("/etc/passwd")?;
    Ok(passwd
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            let uid = fields.nth(1)?.parse().ok()?;
            let gid = fields.next()?.parse().ok()?;
            Some(Account {
                name: name.to_owned(),
                uid,
                gid,
            })
        })
        .collect())
}

/// The user `uid` for messages: `name (uid N)`, or `uid N` when `/etc/passwd` does not name it.
pub(crate) fn user_name(uid: u32) -> String {
    accounts()
        .ok()
        .and_then(|all| all.into_iter().find(|a| a.uid == uid))
        .map_or_else(
            || format!("uid {uid}"),
            |a| format!("{} (uid {uid})", a.name),
        )
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

/// `cmd` with no input and its output discarded.
pub(crate) fn quiet(cmd: &mut Command) -> &mut Command {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
}

/// A quiet command that runs the `sh` script `script` (its `$0` is `name`; the caller adds its
/// arguments, which stay arguments: none of them is run) in the background, in a session of its
/// own forked by `setsid -f` (util-linux): no terminal signal or test runner's process-group kill
/// reaches it, and it is nobody's zombie. Its status is `setsid`'s.
pub(crate) fn detached_sh(script: &str, name: &str) -> Command {
    let mut cmd = Command::new("setsid");
    cmd.args(["-f", "sh", "-c", script, name]);
    quiet(&mut cmd);
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
