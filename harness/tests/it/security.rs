//! No way in for another local user: a state folder someone else planted is refused by name and
//! the command it records never runs, a throwaway server refuses a connection without its
//! password (over 127.0.0.1 and over its socket), and a planted lock cannot stall a run.
//!
//! The other user is `bh-intruder`, created when missing; commands run as it with `runuser`.
//! Both need root. Run as anyone else these tests say so on standard error and pass, except in
//! CI (`CI` set), where they fail: `.ci/run` runs them as root.
//!
//! The runs under attack are this binary run again as a child process
//! (`security::child_gets_a_database`) with `HARNESS_STATE_DIR` set to the planted folder, as the
//! next `cargo test` of the victim would be.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use billing_harness::TestEnv;
use billing_harness::env::{BackendChoice, Broker, Config, Lease, MigrationSource, Schema};

use crate::support::url_password;

/// Set for the child run only.
const CHILD: &str = "BH_SECURITY_CHILD";
/// The other local user.
const INTRUDER: &str = "bh-intruder";

/// The child's side: gets a database as the environment says, or does nothing in an ordinary
/// run. A failure panics with the error's message.
#[tokio::test]
async fn child_gets_a_database() {
    if std::env::var_os(CHILD).is_some() {
        let _env = TestEnv::start().await;
    }
}

/// Whether the tests of another local user can run here: as root, with `bh-intruder` created if
/// missing. Otherwise says why (and fails in CI).
fn intruder() -> bool {
    if std::env::var_os(CHILD).is_some() {
        return false;
    }
    let uid = std::fs::metadata("/proc/self").unwrap().uid();
    if uid != 0 {
        let why = "running commands as another local user (useradd, runuser) needs root";
        let ci = std::env::var("CI").is_ok_and(|v| !v.trim().is_empty());
        assert!(
            !ci,
            "{why}, and CI must run these tests: run them as root (.ci/run does)"
        );
        eprintln!("skipped: {why}");
        return false;
    }
    let exists = || {
        Command::new("id")
            .args(["-u", INTRUDER])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !exists() {
        // Another test may add it at the same moment: what counts is that it exists after.
        let _ = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
            ])
            .arg(INTRUDER)
            .output();
    }
    assert!(
        exists(),
        "could not create the user {INTRUDER} with useradd"
    );
    true
}

/// Runs `args` as `bh-intruder`.
fn as_intruder(args: &[&str]) -> Output {
    as_user(INTRUDER, args, &[])
}

/// Runs `args` as `user` with the variables `vars` (and no `PGPASSWORD` of ours).
fn as_user(user: &str, args: &[&str], vars: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new("runuser");
    cmd.args(["-u", user, "--"])
        .args(args)
        .env_remove("PGPASSWORD")
        .env_remove("PGPASSFILE")
        .current_dir("/")
        .stdin(Stdio::null());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// A folder name of this test process's own in the temporary folder, which every user may write
/// in (so the intruder can plant there), removed first.
fn scratch(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("bh-security-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&path);
    path
}

/// Plants `<dir>/local/instance.json` as the intruder: a record whose `stop` command, in the
/// layout the harness once ran with `sh -c`, writes `pwned`.
fn plant_record(dir: &Path, pwned: &Path) {
    let record = serde_json::json!({
        "generation": "0000000000000000",
        "endpoint": {
            "url_base": "postgres://postgres@127.0.0.1:1",
            "url_query": "",
            "admin_database": "postgres",
            "password": null,
            "print_password": true,
            "socket_dir": null
        },
        "stop": format!("id > {}", pwned.display()),
    })
    .to_string();
    let out = as_intruder(&[
        "sh",
        "-c",
        r#"mkdir -p "$1/local"; chmod 777 "$1" "$1/local" 2>/dev/null; printf '%s' "$2" > "$1/local/instance.json""#,
        "plant",
        &dir.display().to_string(),
        &record,
    ]);
    assert!(
        out.status.success(),
        "planting failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// This binary's child run on the state folder `state` (the local backend), given at most
/// `limit`: its output, and how long it took. A child still running then is killed.
fn victim_run(state: &Path, limit: Duration) -> (Output, Duration) {
    let began = Instant::now();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "security::child_gets_a_database", "--nocapture"])
        .env(CHILD, "1")
        .env("HARNESS_STATE_DIR", state)
        .env("HARNESS_POSTGRES", "local")
        .env("HARNESS_LINGER_SECS", "1")
        .env_remove("HARNESS_DATABASE_URL")
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    while began.elapsed() < limit && child.try_wait().unwrap().is_none() {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    (child.wait_with_output().unwrap(), began.elapsed())
}

#[test]
fn a_planted_state_folder_is_refused_by_name_and_its_stop_never_runs() {
    if !intruder() {
        return;
    }
    let pwned = scratch("pwned");
    // The intruder's own folder, and one of the victim's that others may write in.
    let theirs = scratch("planted-theirs");
    let open = scratch("planted-open");
    std::fs::create_dir_all(open.join("local")).unwrap();
    for dir in [&open, &open.join("local")] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let mut runs = Vec::new();
    for (dir, owner) in [(&theirs, INTRUDER), (&open, "root")] {
        plant_record(dir, &pwned);
        runs.push((dir, owner, victim_run(dir, Duration::from_secs(60)).0));
    }
    let ran = pwned.exists();
    for dir in [&theirs, &open, &pwned] {
        // Should a run have been let in, its server goes too (refused here otherwise).
        let _ = billing_harness::env::stop_unused(dir);
        let _ = std::fs::remove_dir_all(dir);
        let _ = std::fs::remove_file(dir);
    }
    assert!(!ran, "the planted stop command ran as the victim");
    for (dir, owner, out) in runs {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        let named = format!(
            "the state folder {} is not private to this user",
            dir.display()
        );
        assert!(stderr.contains(&named), "{stderr}");
        assert!(
            stderr.contains(&format!("it belongs to {owner} (uid ")),
            "{stderr}"
        );
        assert!(stderr.contains("fix: "), "{stderr}");
    }
}

/// A throwaway server of this test's own, on the local backend, in a state folder of its own.
struct OwnServer {
    state: PathBuf,
    broker: Broker,
    lease: Lease,
}

impl OwnServer {
    async fn start(name: &str) -> OwnServer {
        let state = scratch(name);
        let mut config = Config::from_env()
            .unwrap()
            .with_state_dir(&state)
            .with_backend(BackendChoice::Local);
        config.warm_pool = 0;
        config.linger = Duration::from_secs(1);
        let broker = Broker::start(config).unwrap();
        // Absolute: CI also runs this binary by hand, with no CARGO_MANIFEST_DIR set.
        let schema = Schema::new(MigrationSource::dir(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/warm"
        )));
        let lease = broker.claim(&schema, 1).await.unwrap();
        OwnServer {
            state,
            broker,
            lease,
        }
    }

    /// The folder of the server's unix socket.
    fn socket(&self) -> PathBuf {
        self.state.join("local").join("cluster").join("socket")
    }

    /// Releases the database and waits for the watchdog to stop the server and remove its
    /// folder (a folder removed under a running server would leave the server running).
    async fn stop(self) {
        self.broker.release(&self.lease, None).await.unwrap();
        drop(self.broker);
        let gone = (0..300).any(|_| {
            std::thread::sleep(Duration::from_millis(100));
            !self.state.join("local").exists()
        });
        let _ = std::fs::remove_dir_all(&self.state);
        assert!(gone, "the server of {} did not stop", self.state.display());
    }
}

/// `psql` as `user` against `host` (an address or a socket folder) and `port`, with `vars`.
fn psql(user: &str, host: &str, port: u16, vars: &[(&str, &str)]) -> Output {
    let port = port.to_string();
    as_user(
        user,
        &[
            "psql", "-w", "-h", host, "-p", &port, "-U", "postgres", "-d", "postgres", "-tAc",
            "select 1",
        ],
        vars,
    )
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn the_throwaway_server_refuses_another_user_without_its_password() {
    if !intruder() {
        return;
    }
    let server = OwnServer::start("server").await;
    let (host, port) = (server.lease.host(), server.lease.port());
    let password =
        url_password(&server.lease.url()).expect("a throwaway server's URL carries its password");
    let socket = server.socket();
    let socket_text = socket.display().to_string();
    // The server's own account (root runs it as postgres or nobody) may reach the socket.
    let account = std::fs::metadata(&socket).unwrap().uid();
    let account = String::from_utf8_lossy(
        &Command::new("id")
            .args(["-nu", &account.to_string()])
            .output()
            .unwrap()
            .stdout,
    )
    .trim()
    .to_owned();
    let no_password = psql(INTRUDER, &host, port, &[]);
    let wrong = psql(INTRUDER, &host, port, &[("PGPASSWORD", "postgres")]);
    let right = psql(INTRUDER, &host, port, &[("PGPASSWORD", &password)]);
    let by_socket = psql(INTRUDER, &socket_text, port, &[]);
    let owner_by_socket = psql(&account, &socket_text, port, &[]);
    server.stop().await;

    assert_eq!(host, "127.0.0.1");
    refused(&no_password, "no password supplied");
    refused(
        &wrong,
        "password authentication failed for user \"postgres\"",
    );
    // The refusals above are the password's: with it, the same user gets in.
    assert!(right.status.success(), "{}", stderr(&right));
    refused(&by_socket, "Permission denied");
    // The socket asks the server's own account for the password too.
    refused(&owner_by_socket, "no password supplied");
}

/// Asserts that `out` failed and said `words`.
fn refused(out: &Output, words: &str) {
    assert!(
        !out.status.success() && stderr(out).contains(words),
        "expected a refusal saying {words:?}: {}",
        stderr(out)
    );
}

#[tokio::test]
async fn a_planted_setup_lock_cannot_stall_a_run() {
    if !intruder() {
        return;
    }
    // The intruder makes the folder first and holds its setup.lock.
    let planted = scratch("planted-lock");
    let lock = planted.join("local").join("setup.lock");
    let out = as_intruder(&[
        "sh",
        "-c",
        r#"mkdir -p "$1/local" && chmod -R 777 "$1""#,
        "plant",
        &planted.display().to_string(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    // In a process group of its own, so that ending it ends `flock` and `sleep` below it.
    let mut holder = Command::new("runuser")
        .args(["-u", INTRUDER, "--", "flock"])
        .arg(&lock)
        .args(["sleep", "120"])
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let held = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        !Command::new("flock")
            .args(["-n"])
            .arg(&lock)
            .arg("true")
            .status()
            .unwrap()
            .success()
    });
    let (out, took) = victim_run(&planted, Duration::from_secs(60));

    // And into a running server's folder the intruder cannot even open the lock.
    let server = OwnServer::start("locks").await;
    let own_lock = server.state.join("local").join("setup.lock");
    let attempt = as_intruder(&["flock", "-w", "1", &own_lock.display().to_string(), "true"]);
    server.stop().await;
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", holder.id())])
        .status();
    let _ = holder.wait();
    let _ = std::fs::remove_dir_all(&planted);

    assert!(held, "the intruder's flock did not take the lock");
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{text}");
    assert!(
        took < Duration::from_secs(30),
        "the run waited {took:?} on the planted lock: {text}"
    );
    assert!(
        text.contains(&format!(
            "the state folder {} is not private to this user",
            planted.display()
        )),
        "{text}"
    );
    assert!(!attempt.status.success(), "{}", stderr(&attempt));
    assert!(
        stderr(&attempt).contains("Permission denied"),
        "{}",
        stderr(&attempt)
    );
}
