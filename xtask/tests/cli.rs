//! `cargo xtask` as a user runs it: a crashed holder is reaped by the next run, and a
//! misconfigured machine gets one clear error, never a panic.

mod common;

use common::wait_until;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use sqlx::Connection;

fn xtask(state: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
    cmd.env("HARNESS_STATE_DIR", state)
        .env("HARNESS_POSTGRES", "local")
        .env("HARNESS_LINGER_SECS", "1")
        .env_remove("HARNESS_DATABASE_URL")
        .env_remove("DATABASE_URL")
        .env_remove("RUST_BACKTRACE");
    cmd
}

/// Starts `db up` with extra variables; the receiver yields the URL it prints.
fn spawn_db_up(state: &Path, vars: &[(&str, &str)]) -> (Child, mpsc::Receiver<String>) {
    let mut cmd = xtask(state);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let (child, rx) = common::spawn_first_line(cmd.args(["db", "up"]));
    (child, rx)
}

/// Starts `db up` and returns it with the URL it printed.
fn db_up(state: &Path) -> (Child, String) {
    let (child, rx) = spawn_db_up(state, &[]);
    let url = rx.recv_timeout(Duration::from_secs(60)).unwrap();
    if !url.starts_with("postgres://") {
        // Its standard error is not kept: the server's own log of starts and joins says why.
        let events = std::fs::read_to_string(state.join("local").join("events.log"));
        panic!("db up printed {url:?}; events.log: {events:?}");
    }
    (child, url)
}

/// Ctrl-C for a child, then its exit status.
fn interrupt(child: Child) -> std::process::ExitStatus {
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    { child }.wait().unwrap()
}

/// The tests' databases on the server of `url`: neither templates nor the warm pool's.
async fn databases(url: &str) -> Vec<String> {
    let admin = format!("{}/postgres", url.rsplit_once('/').unwrap().0);
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
    sqlx::query_scalar(
        "select datname::text from pg_database where datname like 'bh\\_%' \
         and datname not like 'bh\\_pool\\_%' and not datistemplate order by 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap()
}

fn state_dir(name: &str) -> PathBuf {
    common::state_dir("bh-xtask-test", name)
}

#[tokio::test]
async fn a_holder_killed_with_sigkill_is_reaped_by_the_next_run_and_the_server_stops_after_the_last()
 {
    let state = state_dir("sigkill");
    let (mut crashed, crashed_url) = db_up(&state);
    let crashed_db = crashed_url.rsplit_once('/').unwrap().1.to_owned();
    crashed.kill().unwrap(); // SIGKILL: no destructor runs
    crashed.wait().unwrap();
    assert_eq!(databases(&crashed_url).await, vec![crashed_db.clone()]);

    // The next run starts: it joins the same server and reaps the dead process's database, in
    // the background.
    let (next, next_url) = db_up(&state);
    let next_db = next_url.rsplit_once('/').unwrap().1.to_owned();
    let mut left = databases(&next_url).await;
    for _ in 0..100 {
        if left == [next_db.clone()] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = databases(&next_url).await;
    }
    assert_eq!(left, vec![next_db]);

    // Ctrl-C ends the last user; after the linger time the watchdog removes the cluster and
    // the folder with its events.log, so that is read first.
    let events = std::fs::read_to_string(state.join("local").join("events.log")).unwrap();
    let status = interrupt(next);
    assert!(status.success(), "db up exited with {status}");
    let cluster = state.join("local").join("cluster");
    let gone = wait_until(Duration::from_secs(15), || {
        !cluster.exists() && !state.join("local").join("instance.json").exists()
    });
    let _ = std::fs::remove_dir_all(&state);
    assert!(gone, "the cluster outlived its last user");
    let starts = events.lines().filter(|l| l.starts_with("start ")).count();
    let joins = events.lines().filter(|l| l.starts_with("join ")).count();
    assert_eq!((starts, joins), (1, 1), "{events}");
}

/// `HARNESS_STATE_DIR` set to a folder of the user's, with a file of theirs in it and in a
/// `local` folder of theirs: once the server stops, the watchdog has removed what the harness
/// made (the cluster, the record, the locks) and nothing else.
#[test]
fn a_state_dir_of_the_users_keeps_the_users_files_after_the_run() {
    use std::os::unix::fs::DirBuilderExt;
    let state = state_dir("users-folder");
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&state)
        .unwrap();
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(state.join("local"))
        .unwrap();
    std::fs::write(state.join("notes.txt"), "mine").unwrap();
    std::fs::write(state.join("local").join("mine.txt"), "mine").unwrap();
    let (up, _url) = db_up(&state);
    let cluster_ran = state.join("local").join("cluster").exists();
    let status = interrupt(up);
    let stopped = wait_until(Duration::from_secs(15), || {
        !state.join("local").join("cluster").exists()
            && !state.join("local").join("instance.json").exists()
    });
    let mut left: Vec<String> = ["", "local"]
        .iter()
        .flat_map(|sub| {
            std::fs::read_dir(state.join(sub))
                .unwrap()
                .flatten()
                .map(move |e| format!("{sub}/{}", e.file_name().to_string_lossy()))
        })
        .collect();
    left.sort();
    let _ = std::fs::remove_dir_all(&state);
    assert!(
        status.success() && cluster_ran,
        "db up exited with {status}"
    );
    assert!(stopped, "the server outlived its last user: {left:?}");
    assert_eq!(left, ["/local", "/notes.txt", "local/mine.txt"]);
}

/// `db clean` drops the kept databases of the user who runs it; another user's (its uid in the
/// mark) and an older harness's (no user in the mark) stay until `db clean --all-users`.
#[tokio::test]
async fn db_clean_drops_only_this_users_kept_databases_unless_all_users() {
    use std::os::unix::fs::MetadataExt;
    let state = state_dir("clean-users");
    let (up, url) = db_up(&state);
    let uid = std::fs::metadata("/proc/self").unwrap().uid();
    let planted = [
        (
            "bh_planted_mine",
            format!("kept by me (uid {uid}): failed test a"),
        ),
        (
            "bh_planted_theirs",
            format!("kept by other (uid {}): failed test b", uid.wrapping_add(1)),
        ),
        ("bh_planted_older", "kept: failed test c".to_owned()),
    ];
    let admin = format!("{}/postgres", url.rsplit_once('/').unwrap().0);
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
    for (name, mark) in &planted {
        sqlx::query(&format!("create database {name}"))
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::query(&format!(
            "comment on database {name} is 'billing-harness: {mark}'"
        ))
        .execute(&mut conn)
        .await
        .unwrap();
    }
    let planted_left = |all: Vec<String>| -> Vec<String> {
        all.into_iter()
            .filter(|d| d.starts_with("bh_planted_"))
            .collect()
    };

    let mine_only = xtask(&state).args(["db", "clean"]).output().unwrap();
    let after_mine = planted_left(databases(&url).await);
    let all_users = xtask(&state)
        .args(["db", "clean", "--all-users"])
        .output()
        .unwrap();
    let after_all = planted_left(databases(&url).await);
    let status = interrupt(up);
    let _ = std::fs::remove_dir_all(&state);

    let stderr = String::from_utf8_lossy(&mine_only.stderr);
    assert!(mine_only.status.success(), "{stderr}");
    assert_eq!(
        after_mine,
        ["bh_planted_older", "bh_planted_theirs"],
        "{stderr}"
    );
    assert!(
        stderr.contains("dropped kept database bh_planted_mine")
            && stderr.contains("2 kept database(s) of other users stay")
            && stderr.contains("bh_planted_theirs by other (uid ")
            && stderr.contains("--all-users"),
        "{stderr}"
    );
    let stderr = String::from_utf8_lossy(&all_users.stderr);
    assert!(all_users.status.success(), "{stderr}");
    assert!(after_all.is_empty(), "{after_all:?} {stderr}");
    assert!(stderr.contains("2 kept database(s) dropped"), "{stderr}");
    assert!(status.success(), "db up exited with {status}");
}

#[test]
fn the_connection_budget_makes_a_third_process_wait_for_a_free_slot() {
    // 64 connections per database on a 200-connection cluster, whose budget is 200 - 3 reserved
    // - 10 spare = 187: two processes take 64 + 2 of their own each, and 55 are left.
    let state = state_dir("budget");
    let vars = [("HARNESS_POOL_SIZE", "64")];
    let (first, first_url) = spawn_db_up(&state, &vars);
    let first_url = first_url.recv_timeout(Duration::from_secs(60)).unwrap();
    let (second, second_url) = spawn_db_up(&state, &vars);
    let second_url = second_url.recv_timeout(Duration::from_secs(60)).unwrap();
    let (third, third_url) = spawn_db_up(&state, &vars);
    let waited = third_url.recv_timeout(Duration::from_secs(2));
    let first_status = interrupt(first);
    let third_after = third_url.recv_timeout(Duration::from_secs(30));
    let statuses = [interrupt(second), interrupt(third)];
    let _ = std::fs::remove_dir_all(&state);
    assert!(first_url.starts_with("postgres://") && second_url.starts_with("postgres://"));
    assert!(
        waited.is_err(),
        "a third database was served beyond the budget"
    );
    assert!(first_status.success());
    assert!(
        third_after.unwrap().starts_with("postgres://"),
        "the freed slot was not reused"
    );
    assert!(statuses.iter().all(|s| s.success()), "{statuses:?}");
}

#[test]
fn a_cluster_whose_server_died_is_replaced_at_the_next_start() {
    let state = state_dir("crashed-cluster");
    let (holder, _) = db_up(&state);
    let data = state.join("local").join("cluster").join("data");
    let pid = std::fs::read_to_string(data.join("postmaster.pid")).unwrap();
    let pid = pid.lines().next().unwrap().to_owned();
    let watchdog = std::fs::read_to_string(state.join("local").join("watchdog.pid")).unwrap();
    // A machine crash in miniature: the server, the watchdog and the holder die at once.
    for victim in [pid.as_str(), watchdog.trim()] {
        Command::new("kill")
            .args(["-KILL", victim])
            .status()
            .unwrap();
    }
    let _ = { holder }.kill();
    let (next, url) = db_up(&state);
    let events = std::fs::read_to_string(state.join("local").join("events.log")).unwrap();
    let status = interrupt(next);
    let stopped = wait_until(Duration::from_secs(15), || {
        !state.join("local").join("cluster").exists()
    });
    let _ = std::fs::remove_dir_all(&state);
    assert!(url.starts_with("postgres://"), "db up printed {url:?}");
    assert!(status.success(), "db up ended with {status} after Ctrl-C");
    let starts = events.lines().filter(|l| l.starts_with("start ")).count();
    assert_eq!(starts, 2, "{events}");
    assert!(stopped, "the replacement cluster outlived its last user");
}

/// Runs `db up` with a broken set-up and returns its exit status and standard error.
fn misconfigured(vars: &[(&str, &str)]) -> (i32, String) {
    let state = state_dir("misconfigured");
    let mut cmd = xtask(&state);
    cmd.args(["db", "up"]);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let output = cmd.stdin(Stdio::null()).output().unwrap();
    let _ = std::fs::remove_dir_all(&state);
    assert!(output.stdout.is_empty(), "nothing on stdout");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// [`misconfigured`] on the url backend with `HARNESS_DATABASE_URL` set to `url`.
fn misconfigured_url(url: &str) -> (i32, String) {
    misconfigured(&[("HARNESS_POSTGRES", "url"), ("HARNESS_DATABASE_URL", url)])
}

fn assert_clear(stderr: &str, names_the_fix: &str) {
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("backtrace"), "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains(names_the_fix), "{stderr}");
}

#[test]
fn a_bad_database_url_names_the_variable() {
    let (code, stderr) = misconfigured_url("mysql://root:secret@db/x");
    assert_eq!(code, 1);
    assert_clear(
        &stderr,
        "HARNESS_DATABASE_URL=\"mysql://root:***@db/x\" is not valid",
    );
}

#[test]
fn an_unreachable_server_says_what_to_check() {
    let (code, stderr) = misconfigured_url("postgres://u:p@127.0.0.1:1/postgres");
    assert_eq!(code, 1);
    assert_clear(&stderr, "check the host, port, user and password");
}

#[test]
fn missing_binaries_name_the_package_to_install() {
    let (code, stderr) = misconfigured(&[("HARNESS_PG_BIN", "/nonexistent/bin")]);
    assert_eq!(code, 1);
    assert_clear(
        &stderr,
        "HARNESS_PG_BIN=/nonexistent/bin does not hold initdb",
    );
}

#[test]
fn the_container_backend_without_docker_says_to_start_docker() {
    // A socket nobody listens on: "no Docker" even on a machine that has an engine.
    let (code, stderr) = misconfigured(&[
        ("HARNESS_POSTGRES", "container"),
        ("DOCKER_HOST", "unix:///nonexistent/docker.sock"),
    ]);
    assert_eq!(code, 1);
    assert_clear(&stderr, "start a Docker engine");
}

#[test]
fn an_unknown_backend_lists_the_choices() {
    let (code, stderr) = misconfigured(&[("HARNESS_POSTGRES", "sqlite")]);
    assert_eq!(code, 1);
    assert_clear(&stderr, "expected one of auto, url, local, container");
}

#[test]
fn doctor_reports_every_backend() {
    let state = state_dir("doctor");
    let output = xtask(&state)
        .arg("doctor")
        .env("HARNESS_POSTGRES", "auto")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    for backend in ["url ", "container ", "local "] {
        assert!(stdout.contains(backend), "{stdout}");
    }
    assert!(
        stdout.contains("HARNESS_DATABASE_URL is not set"),
        "{stdout}"
    );
    assert!(output.status.success(), "{stdout}");
}

/// A scenario file in a temporary folder of its own; the folder goes when this is dropped.
struct ScenarioFile {
    dir: PathBuf,
    path: PathBuf,
}

impl std::ops::Deref for ScenarioFile {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<std::ffi::OsStr> for ScenarioFile {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.path.as_os_str()
    }
}

impl Drop for ScenarioFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Writes a scenario file `<name>.toml` into a temporary folder of its own.
fn scenario_file(name: &str, body: &str) -> ScenarioFile {
    let dir = std::env::temp_dir().join(format!("bh-scenario-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, body).unwrap();
    ScenarioFile { dir, path }
}

const HOLDS: &str = r#"version = 1
name = "holds"
start = "2026-10-01"
until = "2026-11-06"

[[org]]
key = "acme"
card = "ok"

[[tenant]]
key = "t"
org = "acme"
product = "analytics"

[[step]]
on = "2026-10-10"
subscribe = { tenant = "t", plan = "pro" }

[[step]]
on = "2026-10-10"
subscribe = { tenant = "t", plan = "pro" }
expect_error = "already_subscribed"
"#;

#[test]
fn scenario_run_prints_one_json_document_of_the_documented_shape_and_exits_0() {
    let state = state_dir("scenario-json");
    let path = scenario_file("holds", HOLDS);
    let output = xtask(&state)
        .args([
            "scenario",
            "run",
            path.to_str().unwrap(),
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&state);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let keys = |v: &serde_json::Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    for field in ["invoices", "payments", "subscriptions", "errors"] {
        assert!(json[field].is_array(), "{field}");
    }
    let invoice = &json["invoices"][0];
    for field in [
        "tenant", "period", "status", "currency", "lines", "subtotal", "tax", "total",
    ] {
        assert!(invoice.get(field).is_some(), "invoice.{field}");
    }
    assert_eq!(invoice["period"], "2026-10");
    assert_eq!(invoice["total"], "70258");
    assert_eq!(invoice["lines"][0]["kind"], "base");
    assert_eq!(invoice["lines"][0]["plan"], "pro");
    assert_eq!(invoice["lines"][0]["amount"], "70258");
    assert_eq!(
        keys(&invoice["lines"][0]),
        ["amount", "days", "from", "kind", "plan", "until"]
    );
    assert_eq!(invoice["lines"][0]["from"], "2026-10-10");
    assert_eq!(invoice["lines"][0]["until"], "2026-11-01");
    assert_eq!(invoice["lines"][0]["days"], 22);
    assert_eq!(
        keys(&json["payments"][0]),
        [
            "amount",
            "attempt",
            "failure_code",
            "on",
            "outcome",
            "period",
            "tenant"
        ]
    );
    assert_eq!(json["payments"][0]["on"], "2026-11-05");
    assert_eq!(json["payments"][0]["attempt"], 1);
    assert_eq!(json["payments"][0]["amount"], "70258");
    assert_eq!(json["payments"][0]["outcome"], "succeeded");
    assert!(json["payments"][0]["failure_code"].is_null());
    assert_eq!(
        keys(&json["subscriptions"][0]),
        ["changes", "plan", "status", "tenant"]
    );
    assert_eq!(
        json["subscriptions"][0]["changes"],
        serde_json::json!([{ "on": "2026-10-10", "status": "active" }])
    );
    assert_eq!(
        json["errors"],
        serde_json::json!([{ "step": 2, "code": "already_subscribed" }])
    );
}

#[test]
fn pact_export_writes_one_pact_v4_file_per_product_that_received_writes() {
    let state = state_dir("pact-export");
    let path = scenario_file("pact", HOLDS);
    let out = state.with_file_name(format!("bh-pacts-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let output = xtask(&state)
        .args(["pact", "export", "--out", out.to_str().unwrap()])
        .arg(&path)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&state);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let file = out.join("platform-analytics.json");
    assert!(
        stdout.contains(&format!("wrote {}", file.display())),
        "{stdout}"
    );
    assert!(
        stdout.contains("crm: no writes observed"),
        "a product without writes gets no file: {stdout}"
    );
    let text = std::fs::read_to_string(&file).unwrap();
    let _ = std::fs::remove_dir_all(&out);
    let pact: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(pact["consumer"]["name"], "platform");
    assert_eq!(pact["provider"]["name"], "analytics");
    assert_eq!(pact["metadata"]["pactSpecification"]["version"], "4.0");
    let interactions = pact["interactions"].as_array().unwrap();
    let calls: Vec<(&str, &str)> = interactions
        .iter()
        .map(|i| {
            assert_eq!(i["type"], "Synchronous/HTTP");
            (
                i["request"]["method"].as_str().unwrap(),
                i["description"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        calls,
        [
            (
                "GET",
                "GET /v1/state: read back everything the product holds"
            ),
            (
                "PUT",
                "PUT /v1/tenants/{tenant}: create or replace a tenant"
            ),
            (
                "PUT",
                "PUT /v1/tenants/{tenant}/subscription: set a tenant's subscription"
            ),
            ("PUT", "PUT /v1/users/{user}: create or replace a user"),
        ],
        "one interaction per route and body shape"
    );
    for put in &interactions[1..] {
        let request = &put["request"];
        assert!(
            request["path"].as_str().unwrap().starts_with("/v1/"),
            "{request}"
        );
        assert_eq!(request["headers"]["Content-Type"][0], "application/json");
        assert!(
            request["headers"]["Idempotency-Key"][0]
                .as_str()
                .unwrap()
                .parse::<u64>()
                .is_ok(),
            "{request}"
        );
        assert_eq!(request["body"]["contentType"], "application/json");
        assert!(request["body"]["content"]["id"].is_number(), "{request}");
        assert_eq!(
            request["matchingRules"]["body"]["$.id"]["matchers"][0]["match"],
            "type"
        );
        assert!(request["matchingRules"]["path"]["matchers"][0]["regex"].is_string());
        assert_eq!(put["response"]["status"], 200);
        assert_eq!(
            put["response"]["body"]["content"],
            serde_json::json!({ "applied": true })
        );
    }
}

#[test]
fn a_scenario_that_does_not_hold_exits_1_and_says_which_step() {
    let state = state_dir("scenario-fails");
    let path = scenario_file("fails", &HOLDS.replace("already_subscribed", "same_plan"));
    let output = xtask(&state)
        .args(["scenario", "run", path.to_str().unwrap()])
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&state);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("step 2 on 2026-10-10: expected same_plan, got already_subscribed"),
        "{stdout}"
    );
}

#[test]
fn an_invalid_scenario_exits_2_with_file_line_and_column_and_writes_nothing() {
    let state = state_dir("scenario-invalid");
    let path = scenario_file(
        "invalid",
        &HOLDS.replace("plan = \"pro\" }\n\n", "plan = \"platinum\" }\n\n"),
    );
    let output = xtask(&state)
        .args(["scenario", "run", path.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(output.stdout.is_empty());
    assert!(stderr.contains("unknown plan \"platinum\""), "{stderr}");
    assert!(stderr.contains("invalid.toml:17:36"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        !state.join("local").exists(),
        "no database was started for an invalid file"
    );
}

#[test]
fn a_usage_of_a_metric_no_plan_meters_exits_2_at_the_metric() {
    let state = state_dir("scenario-unknown-metric");
    let usage = "[[step]]\non = \"2026-10-20\"\nusage = { tenant = \"t\", metric = \"bandwidth\", quantity = 5 }\n";
    let path = scenario_file("unknown-metric", &format!("{HOLDS}\n{usage}"));
    let output = xtask(&state)
        .args(["scenario", "run", path.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(output.stdout.is_empty());
    assert!(
        stderr.contains("unknown metric \"bandwidth\": no plan of analytics meters it"),
        "{stderr}"
    );
    assert!(stderr.contains("unknown-metric.toml:26:34"), "{stderr}");
    assert!(
        stderr.contains("metrics of analytics: api_calls"),
        "{stderr}"
    );
    assert!(
        !state.join("local").exists(),
        "no database for an invalid file"
    );
}

#[test]
fn scenario_new_writes_a_file_that_runs_and_never_overwrites() {
    // A folder of its own, so that no other test sees the new file.
    let scenarios = std::env::temp_dir().join(format!("bh-scenarios-new-{}", std::process::id()));
    std::fs::create_dir_all(&scenarios).unwrap();
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/catalog.toml");
    std::fs::copy(workspace, scenarios.join("catalog.toml")).unwrap();
    let name = "upgrade-case";
    let path = scenarios.join(format!("{name}.toml"));
    let state = state_dir("scenario-new");
    let cli = |args: &[&str]| scenario_cli(&state, &scenarios, args);
    let first = cli(&["scenario", "new", name]);
    let written = std::fs::read_to_string(&path);
    let again = cli(&["scenario", "new", name]);
    let run = cli(&["scenario", "run", name]);
    let _ = std::fs::remove_dir_all(&scenarios);
    let _ = std::fs::remove_dir_all(&state);
    assert!(first.status.success());
    assert!(written.unwrap().contains("version = 1"));
    assert_eq!(again.status.code(), Some(1), "a second `new` refuses");
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stdout)
    );
}

/// What a test that needs a browser does here.
#[derive(Debug, PartialEq, Eq)]
enum Browser {
    /// Run it with this Chromium.
    Run(&'static str),
    /// Skip it (not in CI, no Chromium); the line says how to enable it.
    Skip(String),
    /// Fail it (in CI, no Chromium): CI must run every test.
    Fail(String),
}

/// Decides from `CI` (its value, if set) and the Chromium found, if any.
fn browser(ci: Option<&str>, chromium: Option<&'static str>) -> Browser {
    let in_ci = ci.is_some_and(|v| !v.is_empty() && v != "false" && v != "0");
    match (chromium, in_ci) {
        (Some(chromium), _) => Browser::Run(chromium),
        (None, true) => Browser::Fail(
            "CI is set, and the report test needs Chromium: install Debian's package `chromium` \
             (apt-get install chromium); .ci/run does"
                .to_owned(),
        ),
        (None, false) => Browser::Skip(
            "skipped the_html_report_renders_in_headless_chromium: no Chromium here; \
             to run it, install Debian's package `chromium` (apt-get install chromium)"
                .to_owned(),
        ),
    }
}

/// The Chromium on the PATH, if any.
fn find_chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser"].into_iter().find(|c| {
        Command::new("sh")
            .args(["-c", &format!("command -v {c}")])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

#[test]
fn without_chromium_the_report_test_skips_outside_ci_and_fails_in_ci() {
    assert_eq!(
        browser(Some("true"), Some("chromium")),
        Browser::Run("chromium")
    );
    assert_eq!(browser(None, Some("chromium")), Browser::Run("chromium"));
    let Browser::Skip(why) = browser(None, None) else {
        panic!("outside CI a missing Chromium skips");
    };
    assert!(!why.contains('\n') && why.contains("install Debian's package `chromium`"));
    assert!(matches!(browser(Some("false"), None), Browser::Skip(_)));
    let Browser::Fail(why) = browser(Some("true"), None) else {
        panic!("in CI a missing Chromium fails");
    };
    assert!(why.contains("chromium"), "{why}");
}

/// Screenshots differ from their reference only by anti-aliasing: at most this share of the
/// pixels may differ, each by more than [`PIXEL_TOLERANCE`] in a channel.
const CHANGED_SHARE: f64 = 0.005;
/// How far a channel may move before its pixel counts as changed.
const PIXEL_TOLERANCE: u8 = 48;

/// A PNG's size and RGBA pixels.
fn decode(bytes: &[u8]) -> Result<(u32, u32, Vec<u8>), String> {
    let mut decoder = png::Decoder::new(bytes);
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().map_err(|e| e.to_string())?;
    let mut buffer = vec![0; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut buffer).map_err(|e| e.to_string())?;
    let pixels = &buffer[..frame.buffer_size()];
    let rgba = match frame.color_type {
        png::ColorType::Rgba => pixels.to_vec(),
        png::ColorType::Rgb => pixels
            .chunks(3)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect(),
        png::ColorType::Grayscale => pixels.iter().flat_map(|&g| [g, g, g, 255]).collect(),
        png::ColorType::GrayscaleAlpha => pixels
            .chunks(2)
            .flat_map(|p| [p[0], p[0], p[0], p[1]])
            .collect(),
        png::ColorType::Indexed => return Err("an indexed PNG after expansion".to_owned()),
    };
    Ok((frame.width, frame.height, rgba))
}

/// Whether `actual` matches `reference` within the tolerance; if not, why.
fn compare(actual: &[u8], reference: &[u8]) -> Result<(), String> {
    let (aw, ah, a) = decode(actual)?;
    let (rw, rh, r) = decode(reference)?;
    if (aw, ah) != (rw, rh) {
        return Err(format!("the size is {aw}x{ah}, the reference's {rw}x{rh}"));
    }
    let changed = a
        .chunks(4)
        .zip(r.chunks(4))
        .filter(|(p, q)| {
            p.iter()
                .zip(*q)
                .any(|(x, y)| x.abs_diff(*y) > PIXEL_TOLERANCE)
        })
        .count();
    let share = changed as f64 / f64::from(aw * ah);
    if share > CHANGED_SHARE {
        return Err(format!(
            "{changed} pixels ({:.2}%) differ, more than {:.2}%",
            share * 100.0,
            CHANGED_SHARE * 100.0
        ));
    }
    Ok(())
}

#[test]
fn screenshots_compare_within_the_tolerance() {
    let mut blank = png_bytes(20, 10, |_, _| [255, 255, 255, 255]);
    assert_eq!(compare(&blank, &blank), Ok(()));
    // 0.5% of 200 pixels is one: one changed pixel passes, two fail.
    let one = png_bytes(20, 10, |x, y| {
        if (x, y) == (3, 3) {
            [0, 0, 0, 255]
        } else {
            [255; 4]
        }
    });
    assert_eq!(compare(&one, &blank), Ok(()));
    let two = png_bytes(20, 10, |x, y| {
        if y == 3 && x < 2 {
            [0, 0, 0, 255]
        } else {
            [255; 4]
        }
    });
    let why = compare(&two, &blank).unwrap_err();
    assert!(why.contains("2 pixels"), "{why}");
    // A faint change (anti-aliasing) is not a change.
    let faint = png_bytes(20, 10, |_, _| [240, 240, 240, 255]);
    assert_eq!(compare(&faint, &blank), Ok(()));
    blank = png_bytes(10, 10, |_, _| [255; 4]);
    assert!(compare(&one, &blank).unwrap_err().contains("size"));
}

/// A PNG of `width`×`height` whose pixel at (x, y) is `pixel(x, y)`.
fn png_bytes(width: u32, height: u32, pixel: impl Fn(u32, u32) -> [u8; 4]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().unwrap();
    let data: Vec<u8> = (0..height)
        .flat_map(|y| (0..width).map(move |x| (x, y)))
        .flat_map(|(x, y)| pixel(x, y))
        .collect();
    writer.write_image_data(&data).unwrap();
    writer.finish().unwrap();
    out
}

/// Renders `html` in headless Chromium at 1280×1000 and returns the PNG.
fn screenshot(chromium: &str, html: &Path, work: &Path) -> Vec<u8> {
    let png = html.with_extension("png");
    let shot = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            // A CI container's /dev/shm is 64 MB: Chromium then writes no screenshot at all.
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            "--window-size=1280,1000",
        ])
        .arg(format!(
            "--user-data-dir={}",
            work.join("profile").display()
        ))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", html.display()))
        .output()
        .unwrap();
    assert!(
        shot.status.success(),
        "{}",
        String::from_utf8_lossy(&shot.stderr)
    );
    std::fs::read(&png).unwrap()
}

/// Compares a screenshot with its reference under snapshots/report/. A missing reference is
/// written (and fails in CI); `UPDATE_REPORT_SCREENSHOTS=1` rewrites it. On a mismatch the
/// screenshot is kept under target/report-screenshots/ for a look.
fn check_screenshot(name: &str, actual: &[u8], in_ci: bool) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../snapshots/report");
    let reference = dir.join(format!("{name}.png"));
    let update = std::env::var("UPDATE_REPORT_SCREENSHOTS").is_ok_and(|v| v == "1");
    if update || !reference.exists() {
        assert!(
            update || !in_ci,
            "no reference screenshot {}: run the test outside CI once to write it, and commit it",
            reference.display()
        );
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(&reference, actual).unwrap();
        let _ = writeln!(
            std::io::stderr(),
            "wrote the reference screenshot {}",
            reference.display()
        );
        return;
    }
    if let Err(why) = compare(actual, &std::fs::read(&reference).unwrap()) {
        let kept = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../target/report-screenshots")
            .join(format!("{name}.png"));
        std::fs::create_dir_all(kept.parent().unwrap()).unwrap();
        std::fs::write(&kept, actual).unwrap();
        panic!(
            "the {name} page no longer looks like {}: {why}; the screenshot is {} \
             (if the change is meant, rerun with UPDATE_REPORT_SCREENSHOTS=1 and commit it)",
            reference.display(),
            kept.display()
        );
    }
}

/// Runs `scenario run --all --lang en --report DIR` with `xtask`, which must succeed.
fn report_all(mut xtask: Command, dir: &Path) {
    let run = xtask
        .args(["scenario", "run", "--all", "--lang", "en", "--report"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
}

/// The scenarios of the index screenshot: a fixed list, so that a new scenario file leaves the
/// reference alone.
const SCREENSHOT_INDEX: &[&str] = &[
    "contract-from-the-15th",
    "declined-dunning",
    "overage-in-each-period",
    "pro-upgraded-mid-month",
    "sync-drift-repaired",
    "usd-with-tax",
];

#[test]
fn the_html_report_renders_in_headless_chromium() {
    let ci = std::env::var("CI").ok();
    let chromium = match browser(ci.as_deref(), find_chromium()) {
        Browser::Run(chromium) => chromium,
        Browser::Skip(why) => {
            // Past the test harness's capture, so that a person running the tests sees it.
            let _ = writeln!(std::io::stderr(), "{why}");
            return;
        }
        Browser::Fail(why) => panic!("{why}"),
    };
    let in_ci = !matches!(browser(ci.as_deref(), None), Browser::Skip(_));
    let state = state_dir("report");
    let out = std::env::temp_dir().join(format!("bh-report-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    // The whole run: a page per scenario and the index.
    report_all(xtask(&state), &out);
    let index = std::fs::read_to_string(out.join("index.html")).unwrap();
    let scenarios = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut stems: Vec<String> = std::fs::read_dir(&scenarios)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .filter(|s| s != "catalog")
        .collect();
    stems.sort();
    assert!(stems.len() > 20);
    for stem in &stems {
        assert!(
            index.contains(&format!(r#"<a href="./{stem}.html">"#)),
            "the index lists {stem}"
        );
        assert!(out.join(format!("{stem}.html")).is_file(), "{stem}'s page");
    }
    assert!(
        index.contains(&format!("{0} of {0} scenarios hold.", stems.len())),
        "{index}"
    );
    // The same page in Korean.
    let korean = out.join("declined-dunning.ko.html");
    let report = xtask(&state)
        .args([
            "scenario",
            "report",
            "declined-dunning",
            "--lang",
            "ko",
            "--out",
        ])
        .arg(&korean)
        .output()
        .unwrap();
    assert!(
        report.status.success(),
        "{}",
        String::from_utf8_lossy(&report.stderr)
    );
    let english = out.join("declined-dunning.html");
    let page = std::fs::read_to_string(&english).unwrap();
    assert!(page.contains("<svg") && page.contains("₩99,000"), "{page}");
    assert!(
        !page.contains("src=") && !page.contains("<link") && !page.contains("<script"),
        "self-contained: no external resources"
    );
    // The index screenshot is of a run over a fixed list of bundled scenarios, so that adding a
    // scenario file does not change it; the pages of a sync and a contract scenario come with it.
    let fixed = out.join("fixed");
    let chosen = out.join("scenarios");
    std::fs::create_dir_all(&chosen).unwrap();
    for stem in SCREENSHOT_INDEX.iter().chain(&["catalog"]) {
        std::fs::copy(
            scenarios.join(format!("{stem}.toml")),
            chosen.join(format!("{stem}.toml")),
        )
        .unwrap();
    }
    let mut only = xtask(&state);
    only.env("HARNESS_SCENARIOS_DIR", &chosen);
    report_all(only, &fixed);
    let sync = std::fs::read_to_string(fixed.join("sync-drift-repaired.html")).unwrap();
    assert!(sync.contains("converged · 1 repaired"), "{sync}");
    let contract = std::fs::read_to_string(fixed.join("contract-from-the-15th.html")).unwrap();
    assert!(
        contract.contains("contract over pro · ₩1,500,000/month"),
        "{contract}"
    );
    let shots = [
        ("declined-dunning.en", screenshot(chromium, &english, &out)),
        ("declined-dunning.ko", screenshot(chromium, &korean, &out)),
        (
            "index.en",
            screenshot(chromium, &fixed.join("index.html"), &out),
        ),
        (
            "sync-drift-repaired.en",
            screenshot(chromium, &fixed.join("sync-drift-repaired.html"), &out),
        ),
        (
            "contract-from-the-15th.en",
            screenshot(chromium, &fixed.join("contract-from-the-15th.html"), &out),
        ),
    ];
    let _ = std::fs::remove_dir_all(&out);
    let _ = std::fs::remove_dir_all(&state);
    for (name, shot) in &shots {
        // A blank page compresses to a few kilobytes; text, bars and tables take far more.
        assert!(shot.len() > 20_000, "the {name} screenshot looks empty");
        check_screenshot(name, shot, in_ci);
    }
}

#[tokio::test]
async fn seed_refuses_an_unmarked_database_then_writes_up_to_now_with_every_row_tagged() {
    // A database the harness did not create, on the test run's server.
    let env = billing_harness::TestEnv::start().await;
    let qa = format!("qa_seed_{}", std::process::id());
    sqlx::query(&format!("create database {qa}"))
        .execute(env.pool())
        .await
        .unwrap();
    let url = format!("{}/{qa}", env.url().rsplit_once('/').unwrap().0);
    let state = state_dir("seed");
    let cli = |args: &[&str]| {
        let mut cmd = xtask(&state);
        // The same server as this test: the url backend, never a cluster of its own.
        cmd.env("HARNESS_POSTGRES", "url")
            .env("HARNESS_DATABASE_URL", &url);
        cmd.args(args).output().unwrap()
    };
    let seed = [
        "scenario",
        "seed",
        "fail-times-2",
        "--database-url",
        url.as_str(),
        "--anchor",
        "months-ago:3",
    ];
    let refused = cli(&seed);
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    let tables: i64 =
        sqlx::query_scalar("select count(*) from pg_tables where schemaname = 'public'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    let marked = cli(&["db", "mark", "--env", "qa", "--database-url", &url]);
    let seeded = cli(&seed);
    let again = cli(&seed);
    let page = std::env::temp_dir().join(format!("bh-seed-{}.html", std::process::id()));
    let today = billing_harness::calendar::local_day(
        billing_harness::calendar::DEFAULT_TIME_ZONE,
        billing_harness::clock::wall_now(),
    );
    let current = cli(&[
        "scenario",
        "seed",
        "fail-times-2",
        "--database-url",
        url.as_str(),
        "--anchor",
        "this-month",
        "--report",
        page.to_str().unwrap(),
        "--lang",
        "en",
    ]);
    let html = std::fs::read_to_string(&page).unwrap_or_default();
    let _ = std::fs::remove_file(&page);
    let runs: Vec<String> = sqlx::query_scalar(
        "select r.id from harness_runs r order by (select min(row_id) from harness_run_rows w \
         where w.run_id = r.id and w.table_name = 'tenants')",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let tagged: i64 = sqlx::query_scalar(
        "select count(*) from harness_run_rows r where r.run_id = $1 and r.table_name in ('subscriptions', 'invoices', 'payments')",
    )
    .bind(&runs[0])
    .fetch_one(&mut conn)
    .await
    .unwrap();
    let tenants: i64 = sqlx::query_scalar("select count(*) from tenants")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    sqlx::query(&format!("drop database {qa} with (force)"))
        .execute(env.pool())
        .await
        .unwrap();
    let _ = std::fs::remove_dir_all(&state);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cargo xtask db mark --env qa"), "{stderr}");
    assert_eq!(tables, 0, "a refused seed changes nothing");
    assert!(
        marked.status.success(),
        "{}",
        String::from_utf8_lossy(&marked.stderr)
    );
    let stdout = String::from_utf8_lossy(&seeded.stdout);
    assert!(
        seeded.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&seeded.stderr)
    );
    assert!(stdout.contains("shifted by"), "{stdout}");
    assert!(
        again.status.success(),
        "seeding twice works: {}",
        String::from_utf8_lossy(&again.stderr)
    );
    // Anchored in this month, the close at the start of next month has not happened yet.
    let later = String::from_utf8_lossy(&current.stdout);
    assert!(
        later.contains("left for later") && later.contains("close of "),
        "{later}"
    );
    // The page of a seed marks today on its timeline (a run that stopped at the present), and
    // shows what was applied up to it: the subscription on its plan.
    assert!(
        later.contains("page with today"),
        "{later}{}",
        String::from_utf8_lossy(&current.stderr)
    );
    assert!(
        html.contains(&format!("<title>today {today}</title>")) && html.contains(">today</text>"),
        "no today line at {today}: {html}"
    );
    assert!(html.contains("pro · ₩99,000/month"), "{html}");
    assert_eq!((runs.len(), tenants), (3, 3));
    // Three months back: the subscription, its invoice and the three attempts all happened.
    assert_eq!(tagged, 1 + 1 + 3);
}

/// Every command and subcommand, as typed after `cargo xtask`.
const COMMANDS: &[&[&str]] = &[
    &[],
    &["db"],
    &["db", "up"],
    &["db", "clean"],
    &["db", "mark"],
    &["doctor"],
    &["scenario"],
    &["scenario", "list"],
    &["scenario", "run"],
    &["scenario", "new"],
    &["scenario", "seed"],
    &["scenario", "report"],
    &["contract"],
    &["contract", "apply"],
    &["bench"],
    &["bench", "db"],
    &["bench", "billing"],
    &["bench", "build"],
    &["bench", "scenarios"],
    &["bench", "load"],
    &["bench", "sync"],
    &["bench", "adopt"],
    &["pact"],
    &["pact", "export"],
];

#[test]
fn every_command_and_subcommand_answers_help() {
    let state = state_dir("help");
    for command in COMMANDS {
        let output = xtask(&state).args(*command).arg("--help").output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let shown = format!("cargo xtask {}", command.join(" "));
        assert_eq!(output.status.code(), Some(0), "{shown} --help: {stdout}");
        assert!(
            stdout.contains("Usage:") && stdout.contains(shown.trim_end()),
            "{shown} --help: {stdout}"
        );
    }
    // Doc comments are the help text, flags included.
    let seed = xtask(&state)
        .args(["scenario", "seed", "--help"])
        .output()
        .unwrap();
    let seed = String::from_utf8_lossy(&seed.stdout);
    for flag in [
        "--database-url <URL>",
        "--anchor <MONTH>",
        "months-ago:N",
        "--report <FILE>",
    ] {
        assert!(seed.contains(flag), "{seed}");
    }
    assert!(!state.join("local").exists(), "help starts no database");
}

#[test]
fn a_bad_argument_exits_2_and_names_it() {
    let state = state_dir("bad-args");
    let cases: &[(&[&str], &str)] = &[
        (&["scenario", "run", "--all", "--bogus"], "--bogus"),
        (&["bench", "db", "--jsn"], "--jsn"),
        (
            &[
                "db",
                "mark",
                "--env",
                "qa",
                "--database-url",
                "postgres://qa@db/app",
                "--force",
            ],
            "--force",
        ),
        (&["doctor", "--verbose"], "--verbose"),
        (&["scenario", "run", "holds", "--format", "xml"], "--format"),
        (
            &[
                "scenario",
                "seed",
                "x",
                "--database-url",
                "postgres://qa@db/app",
                "--anchor",
                "soon",
            ],
            "--anchor",
        ),
        (&["scenario", "run"], "--all"),
        (&["db", "mark", "--env", "qa"], "--database-url"),
        (&["scenario", "frobnicate"], "frobnicate"),
        (&["pact", "export", "--all", "holds"], "--all"),
        (&["scenario", "run", "--all", "--jobs", "0"], "--jobs"),
        (
            &["scenario", "run", "--all", "--partition", "count:4/3"],
            "count:4/3",
        ),
        (
            &["scenario", "run", "--all", "--partition", "slice:1/2"],
            "slice:1/2",
        ),
        (
            &["scenario", "run", "holds", "--partition", "hash:1/2"],
            "--partition",
        ),
    ];
    for (args, named) in cases {
        let output = xtask(&state).args(*args).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
        assert!(
            stderr.contains(named),
            "{args:?} should name {named}: {stderr}"
        );
        assert!(output.stdout.is_empty(), "{args:?}");
    }
    // A URL typed in the wrong place is echoed without its password.
    let output = xtask(&state)
        .args([
            "db",
            "mark",
            "--env",
            "qa",
            "postgres://qa:Hunter2Secret@db/app",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("postgres://qa:***@db/app"), "{stderr}");
    assert!(!stderr.contains("Hunter2Secret"), "{stderr}");
}

/// A database URL the typed-value tests complete command lines with (nothing listens there).
const SOME_URL: &str = "postgres://qa@127.0.0.1:1/app";

/// Values every typed argument refuses (each has a character outside a scenario name's, so
/// `scenario new` refuses them too): several bytes to a character, huge numbers, spans past
/// year 9999, shell and SQL text, passwords in a URL and in a key=value string.
const REFUSED_BY_ALL: &[&str] = &[
    "",
    " ",
    "3일",
    "일",
    "１２",
    "12 ",
    " 12",
    "1.5",
    "-1.5",
    "Ω",
    "🦀",
    "\u{202e}1d",
    "a b",
    "\n",
    "\t1",
    "%",
    "%00",
    "\\",
    "+",
    "1/0",
    "0/0",
    "ab/cd",
    "' OR 1=1 --",
    "$(id)",
    "`id`",
    "${HOME}",
    "months-ago:99999999999",
    "months-ago:-1",
    "+262142-12-31",
    "1970-01-01T00:00:00Z",
    "99999999999999d.",
    "host=db password=Kv5ecretPw",
    "password='Kv5ecretPw x' host=db",
    "postgres://qa:Url5ecretPw@db:port/x",
    "postgres://qa:Url5ecretPw%zz@db/x",
];

/// Each typed argument: a command line around it (valid but for it), how clap names it, and
/// values it alone refuses; `all` when [`REFUSED_BY_ALL`] applies (not to a free-text name).
struct Typed {
    line: &'static [&'static str],
    arg: &'static str,
    own: &'static [&'static str],
    all: bool,
}

const TYPED: &[Typed] = &[
    Typed {
        line: &["clock", "advance", "--database-url", SOME_URL],
        arg: "--by",
        own: &[
            "99999999999999d",
            "-99999999999999h",
            "7321d",
            "3w",
            "d",
            "3",
            "1d1h",
            "0x10d",
        ],
        all: true,
    },
    Typed {
        line: &["clock", "advance", "--database-url", SOME_URL],
        arg: "--to",
        own: &[
            "9999-12-31",
            "99999-01-01",
            "2026-02-30",
            "2026-13-01",
            "20261201",
            "-0001-01-01",
            "0000-00-00",
        ],
        all: true,
    },
    Typed {
        line: &["clock", "advance", "--by", "1d"],
        arg: "--database-url",
        own: &[
            "mysql://root:Url5ecretPw@db/x",
            "postgres://qa:Url5ecretPw@db/x%",
            "postgres://qa:Url5ecretPw@db/x%00",
            "Postgres://qa:Url5ecretPw@db/x",
            "password = Kv5ecretPw host=db",
            r"password='Kv5ecretPw\' x' host=db",
        ],
        all: true,
    },
    Typed {
        line: &["clock", "show"],
        arg: "--database-url",
        own: &["postgres:/db"],
        all: true,
    },
    Typed {
        line: &["scenario", "seed", "holds", "--database-url", SOME_URL],
        arg: "--anchor",
        own: &[
            "months-ago:241",
            "months-ago:",
            "next-month",
            "LAST-MONTH",
            "months-ago:4294967296",
        ],
        all: true,
    },
    Typed {
        line: &["scenario", "seed", "holds"],
        arg: "--database-url",
        own: &[],
        all: true,
    },
    Typed {
        line: &["scenario", "seed", "holds", "--database-url", SOME_URL],
        arg: "--lang",
        own: &["EN", "ko_KR"],
        all: true,
    },
    Typed {
        line: &["db", "mark", "--env", "qa"],
        arg: "--database-url",
        own: &[],
        all: true,
    },
    Typed {
        line: &["db", "mark", "--database-url", SOME_URL],
        arg: "--env",
        own: &[""],
        all: false,
    },
    Typed {
        line: &["purge", "--database-url", SOME_URL],
        arg: "--org",
        own: &["0", "-1", "9223372036854775808", "99999999999999999999999"],
        all: true,
    },
    Typed {
        line: &["purge", "--database-url", SOME_URL],
        arg: "--email",
        own: &[""],
        all: false,
    },
    Typed {
        line: &["purge", "--org", "1"],
        arg: "--database-url",
        own: &[],
        all: true,
    },
    Typed {
        line: &["contract", "apply", "contract.toml"],
        arg: "--database-url",
        own: &[],
        all: true,
    },
    Typed {
        line: &["scenario", "run", "--all"],
        arg: "--format",
        own: &["xml", "TEXT"],
        all: true,
    },
    Typed {
        line: &["scenario", "run", "--all"],
        arg: "--driver",
        own: &["example-", "reference"],
        all: true,
    },
    Typed {
        line: &["scenario", "report", "holds"],
        arg: "--lang",
        own: &["fr"],
        all: true,
    },
    Typed {
        line: &["bench", "adopt"],
        arg: "--rounds",
        own: &["0", "101", "65536", "-1"],
        all: true,
    },
    Typed {
        line: &["mutants"],
        arg: "--timeout",
        own: &["0", "86401", "18446744073709551615", "18446744073709551616"],
        all: true,
    },
    Typed {
        line: &["mutants"],
        arg: "--shard",
        own: &["4/4", "1", "4294967296/4294967297", "0/99999999999"],
        all: true,
    },
    Typed {
        line: &["mutants"],
        arg: "--kind",
        own: &["go", "both "],
        all: true,
    },
    Typed {
        line: &["scenario", "new", "--"],
        arg: "<NAME>",
        own: &["../escape", "a.toml", "-rf", "--", "x/y"],
        all: true,
    },
];

#[test]
fn every_typed_argument_refuses_adversarial_values_with_exit_2_naming_it_and_no_panic() {
    let state = state_dir("typed-values");
    let scenarios = state.join("scenarios");
    let mut runs = 0;
    for typed in TYPED {
        let all = if typed.all { REFUSED_BY_ALL } else { &[] };
        for value in typed.own.iter().chain(all) {
            let mut args: Vec<String> = typed.line.iter().map(|a| a.to_string()).collect();
            if typed.arg.starts_with("--") {
                args.push(format!("{}={value}", typed.arg));
            } else {
                args.push(value.to_string());
            }
            // A value taken by mistake writes nowhere that matters.
            let output = xtask(&state)
                .env("HARNESS_SCENARIOS_DIR", &scenarios)
                .args(&args)
                .output()
                .unwrap();
            runs += 1;
            let stderr = String::from_utf8_lossy(&output.stderr);
            let shown = format!("{args:?}: {stderr}");
            assert_eq!(output.status.code(), Some(2), "{shown}");
            assert!(stderr.starts_with("error: "), "{shown}");
            assert!(
                stderr.contains(typed.arg),
                "should name {}: {shown}",
                typed.arg
            );
            assert!(!stderr.contains("panicked"), "{shown}");
            assert!(!stderr.contains("5ecretPw"), "a password shown: {shown}");
            assert!(output.stdout.is_empty(), "{shown}");
        }
    }
    assert!(
        !state.join("local").exists(),
        "a refused value starts no database"
    );
    assert!(!scenarios.exists(), "a refused name writes no scenario");
    let _ = std::fs::remove_dir_all(&state);
    assert!(runs > 600, "{runs} command lines");
}

#[tokio::test]
async fn db_mark_never_prints_the_password_of_a_url_or_a_key_value_string() {
    const SECRET: &str = "Mark5ecretPw";
    let env = billing_harness::TestEnv::start().await;
    let (host, port) = (env.host(), env.port());
    let pid = std::process::id();
    let state = state_dir("mark-password");
    // Each with the exit code it must give: 2 for what clap refuses, 1 for what fails after.
    let cases = [
        // key=value strings, which only URLs replace: bad syntax.
        (
            format!("host={host} port={port} user=postgres password={SECRET} dbname=postgres"),
            2,
        ),
        (
            format!("host={host} password='{SECRET} x' dbname=postgres"),
            2,
        ),
        (format!("password = {SECRET} host={host}"), 2),
        (
            format!(r"host={host} password='{SECRET}\' x\\' dbname=postgres"),
            2,
        ),
        // URLs of bad syntax.
        (format!("postgres://qa:{SECRET}@{host}:port/postgres"), 2),
        (
            format!("postgres://qa:{SECRET}%zz@{host}:{port}/postgres"),
            2,
        ),
        (format!("mysql://qa:{SECRET}@{host}:{port}/postgres"), 2),
        // An unreachable host.
        (format!("postgres://qa:{SECRET}@127.0.0.1:1/app"), 1),
        (
            format!("postgres://qa@127.0.0.1:1/app?password={SECRET}"),
            1,
        ),
        (format!("postgres://qa:{SECRET}@nonexistent.invalid/app"), 1),
        // A database the server does not have.
        (
            format!("postgres://postgres:{SECRET}@{host}:{port}/no_such_db_{pid}"),
            1,
        ),
    ];
    // At once: the driver retries an unreachable server for 30 s before it gives up.
    let children: Vec<Child> = cases
        .iter()
        .map(|(url, _)| {
            xtask(&state)
                .args(["db", "mark", "--env", "qa", "--database-url", url])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for ((url, code), child) in cases.iter().zip(children) {
        let output = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let shown = format!("{url}: {stderr}{stdout}");
        assert_eq!(output.status.code(), Some(*code), "{shown}");
        assert!(stderr.starts_with("error: "), "{shown}");
        assert!(!stderr.contains("panicked"), "{shown}");
        assert!(
            !stderr.contains(&SECRET[4..]) && !stdout.contains(&SECRET[4..]),
            "a password shown: {shown}"
        );
        assert!(
            stderr.contains("--database-url") || stderr.contains("***"),
            "{shown}"
        );
    }
    let _ = std::fs::remove_dir_all(&state);
}

#[test]
fn a_key_value_database_url_variable_is_named_without_its_password() {
    let (code, stderr) =
        misconfigured_url("host=db user=qa password='Var5ecret x' dbname=postgres");
    assert_eq!(code, 1);
    assert_clear(&stderr, "HARNESS_DATABASE_URL=");
    assert!(stderr.contains("key=value"), "{stderr}");
    assert!(!stderr.contains("5ecret"), "{stderr}");
}

/// A role named `qa@pct_PID` with the password `p@ss`, and a database it owns: both need
/// percent-encoding in a URL, as libpq reads one.
#[tokio::test]
async fn a_percent_encoded_user_and_password_connect_as_libpq_reads_them() {
    let env = billing_harness::TestEnv::start().await;
    let pid = std::process::id();
    let role = format!("qa@pct_{pid}");
    let db = format!("qa_pct_{pid}");
    create_role(&env, &role, "p@ss", false).await;
    sqlx::query(&format!("create database {db} owner \"{role}\""))
        .execute(env.pool())
        .await
        .unwrap();
    let (host, port) = (env.host(), env.port());
    let base = format!("postgres://qa%40pct_{pid}:p%40ss@{host}:{port}");
    let url = format!("{base}/{db}");
    let state = state_dir("percent-encoded");

    // `db mark --database-url`, as a person types it.
    let mark = xtask(&state)
        .args(["db", "mark", "--env", "qa", "--database-url", &url])
        .output()
        .unwrap();
    // HARNESS_DATABASE_URL: the url backend's server, which `doctor` connects to.
    let doctor = cli_on(&state, &format!("{base}/postgres"), &["doctor"]);
    // `Database::attach`, the library's way in.
    let attached = billing_harness::env::Database::builder().attach(&url).await;
    let (who, marked): (Option<String>, Option<String>) = match &attached {
        Ok(db) => (
            sqlx::query_scalar("select current_user::text")
                .fetch_one(db.pool())
                .await
                .ok(),
            sqlx::query_scalar("select env from harness_marker")
                .fetch_one(db.pool())
                .await
                .ok(),
        ),
        Err(_) => (None, None),
    };
    // Where the server asks for passwords, the text as typed (`p%40ss`, what was sent before
    // it was decoded) is refused; a server that trusts local connections cannot tell.
    let checks_passwords: bool = sqlx::query_scalar(
        "select not exists (select from pg_hba_file_rules where auth_method = 'trust')",
    )
    .fetch_one(env.pool())
    .await
    .unwrap();
    let undecoded = billing_harness::env::Database::builder()
        .attach(&format!(
            "postgres://qa%40pct_{pid}:p%2540ss@{host}:{port}/{db}"
        ))
        .await
        .is_ok();
    drop(attached);
    drop_database(&env, &url).await;
    drop_role(&env, &role).await;
    let _ = std::fs::remove_dir_all(&state);

    let stderr = String::from_utf8_lossy(&mark.stderr);
    assert!(mark.status.success(), "db mark: {stderr}");
    assert_eq!(marked.as_deref(), Some("qa"), "the marker db mark wrote");
    assert_eq!(
        who.as_deref(),
        Some(role.as_str()),
        "attach connected as the role"
    );
    let report = String::from_utf8_lossy(&doctor.stdout);
    assert!(
        report
            .lines()
            .any(|l| l.starts_with("url ") && l.contains("available") && l.contains("answers")),
        "{report}{}",
        String::from_utf8_lossy(&doctor.stderr)
    );
    assert!(
        !report.contains("p%40ss") && !report.contains("p@ss"),
        "{report}"
    );
    if checks_passwords {
        assert!(!undecoded, "the undecoded password got in");
    }
}

/// A database on this test run's server that the harness did not create; dropped by the caller.
async fn foreign_database(env: &billing_harness::TestEnv, name: &str) -> String {
    let name = format!("{name}_{}", std::process::id());
    sqlx::query(&format!("create database {name}"))
        .execute(env.pool())
        .await
        .unwrap();
    format!("{}/{name}", env.url().rsplit_once('/').unwrap().0)
}

async fn drop_database(env: &billing_harness::TestEnv, url: &str) {
    let name = url.rsplit_once('/').unwrap().1;
    sqlx::query(&format!("drop database {name} with (force)"))
        .execute(env.pool())
        .await
        .unwrap();
}

/// `cargo xtask` against the server of `url` (the url backend: no cluster of its own), not yet
/// run.
fn xtask_on(state: &Path, url: &str, args: &[&str]) -> Command {
    let mut cmd = xtask(state);
    cmd.env("HARNESS_POSTGRES", "url")
        .env("HARNESS_DATABASE_URL", url)
        .env_remove("HARNESS_TODAY")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// A login role on `env`'s server with `password`, a superuser when `superuser`; dropped by the
/// caller with [`drop_role`].
async fn create_role(env: &billing_harness::TestEnv, role: &str, password: &str, superuser: bool) {
    let superuser = if superuser { "superuser " } else { "" };
    sqlx::query(&format!(
        "create role \"{role}\" login {superuser}password '{password}'"
    ))
    .execute(env.pool())
    .await
    .unwrap();
}

async fn drop_role(env: &billing_harness::TestEnv, role: &str) {
    sqlx::query(&format!("drop role \"{role}\""))
        .execute(env.pool())
        .await
        .unwrap();
}

/// Runs xtask against the server of `url` (see [`xtask_on`]).
fn cli_on(state: &Path, url: &str, args: &[&str]) -> std::process::Output {
    xtask_on(state, url, args).output().unwrap()
}

#[tokio::test]
async fn database_url_falls_back_to_harness_database_url_then_database_url() {
    let env = billing_harness::TestEnv::start().await;
    let url = foreign_database(&env, "qa_url_fallback").await;
    let state = state_dir("url-fallback");
    let marked = cli_on(
        &state,
        &url,
        &["db", "mark", "--env", "qa", "--database-url", &url],
    );
    assert!(marked.status.success(), "{marked:?}");
    // Neither the flag nor HARNESS_DATABASE_URL: DATABASE_URL is the database.
    let show = |vars: &[(&str, &str)]| {
        let mut cmd = xtask(&state);
        cmd.args(["clock", "show"]);
        for (k, v) in vars {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let from_database_url = show(&[("DATABASE_URL", &url)]);
    assert!(from_database_url.status.success(), "{from_database_url:?}");
    assert!(String::from_utf8_lossy(&from_database_url.stdout).starts_with("clock: "));
    // An empty HARNESS_DATABASE_URL counts as unset.
    let empty = show(&[("HARNESS_DATABASE_URL", ""), ("DATABASE_URL", &url)]);
    assert!(empty.status.success(), "{empty:?}");
    // HARNESS_DATABASE_URL comes first: DATABASE_URL's bad value is never read.
    let first = show(&[
        ("HARNESS_DATABASE_URL", &url),
        ("DATABASE_URL", "mysql://x@y/z"),
    ]);
    assert!(first.status.success(), "{first:?}");
    // The flag beats both.
    let flag = {
        let mut cmd = xtask(&state);
        cmd.env("HARNESS_DATABASE_URL", "mysql://x@y/z")
            .env("DATABASE_URL", "mysql://x@y/z")
            .args(["clock", "show", "--database-url", &url]);
        cmd.output().unwrap()
    };
    assert!(flag.status.success(), "{flag:?}");
    // None of them: a usage error naming the option.
    let none = show(&[]);
    assert_eq!(none.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&none.stderr).contains("--database-url <URL>"));
    drop_database(&env, &url).await;
    let _ = std::fs::remove_dir_all(&state);
}

/// Parses a command's whole standard output as exactly one JSON document.
fn one_json_document(args: &[&str], stdout: &[u8]) -> serde_json::Value {
    let text = String::from_utf8_lossy(stdout);
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{args:?} printed no single JSON document ({e}):\n{text}"))
}

/// Starts a long-running command with `--format json`, reads its first line, interrupts it,
/// and parses its whole standard output.
fn json_of_a_server(mut cmd: Command, args: &[&str]) -> serde_json::Value {
    use std::io::BufRead;
    let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let status = interrupt(child);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert!(status.success(), "{args:?}: {status}");
    one_json_document(args, format!("{first}{rest}").as_bytes())
}

#[tokio::test]
async fn every_printing_command_prints_one_json_document_with_format_json() {
    let env = billing_harness::TestEnv::start().await;
    let url = foreign_database(&env, "qa_json").await;
    let state = state_dir("json");
    let page = state.join("page.html");
    let page = page.to_str().unwrap();
    let json = |args: &[&str]| {
        let mut args = args.to_vec();
        args.extend(["--format", "json"]);
        let output = cli_on(&state, &url, &args);
        assert!(output.status.success(), "{args:?}: {output:?}");
        one_json_document(&args, &output.stdout)
    };
    // Commands that make throwaway databases share this test process's server and state folder:
    // on the url backend with a state folder of their own they would take the databases of the
    // tests running beside this one for abandoned ones.
    let shared = billing_harness::env::Config::from_env().unwrap().state_dir;
    let throwaway = |args: &[&str]| {
        let mut cmd = xtask(&shared);
        cmd.args(args).args(["--format", "json"]);
        cmd
    };
    let doctor = json(&["doctor"]);
    assert_eq!(doctor["harness_postgres"], "url", "{doctor}");
    assert!(
        doctor["backends"].as_array().unwrap().len() >= 3,
        "{doctor}"
    );
    let list = json(&["scenario", "list"]);
    assert!(
        list["scenarios"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "fail-times-2"),
        "{list}"
    );
    for args in [
        &["scenario", "run", "fail-times-2"][..],
        &["scenario", "report", "fail-times-2", "--out", page],
    ] {
        let output = throwaway(args).output().unwrap();
        assert!(output.status.success(), "{args:?}: {output:?}");
        let document = one_json_document(args, &output.stdout);
        assert!(
            document["holds"] == true || document["page"] == page,
            "{document}"
        );
    }
    let marked = json(&["db", "mark", "--env", "qa", "--database-url", &url]);
    assert_eq!(marked["marked"], "qa", "{marked}");
    let seed = [
        "scenario",
        "seed",
        "fail-times-2",
        "--database-url",
        &url,
        "--anchor",
        "months-ago:3",
    ];
    let seeded = json(&seed);
    let run_id = seeded["run_id"].as_str().unwrap().to_owned();
    assert_eq!(seeded["database"], "qa", "{seeded}");
    let shown = json(&["clock", "show", "--database-url", &url]);
    let before = shown["clock"].as_str().unwrap().to_owned();
    let advanced = json(&["clock", "advance", "--by", "1d", "--database-url", &url]);
    assert_eq!(advanced["from"], before.as_str(), "{advanced}");
    assert!(advanced["jobs"].is_array(), "{advanced}");
    let plan = json(&[
        "purge",
        "--run",
        &run_id,
        "--dry-run",
        "--database-url",
        &url,
    ]);
    assert_eq!(plan["dry_run"], true, "{plan}");
    assert!(
        !plan["plan"]["rows"].as_object().unwrap().is_empty(),
        "{plan}"
    );
    let up = json_of_a_server(throwaway(&["db", "up"]), &["db", "up"]);
    assert!(
        up["url"].as_str().unwrap().starts_with("postgres://"),
        "{up}"
    );
    let products = json_of_a_server(throwaway(&["products", "up"]), &["products", "up"]);
    assert!(
        products["url"].as_str().unwrap().starts_with("http://"),
        "{products}"
    );
    drop_database(&env, &url).await;
    // On a state folder of its own with no server running, so that it drops nothing of others.
    let own = state_dir("json-clean");
    let cleaned = xtask(&own)
        .args(["db", "clean", "--format", "json"])
        .output()
        .unwrap();
    assert!(cleaned.status.success(), "{cleaned:?}");
    let cleaned = one_json_document(&["db", "clean"], &cleaned.stdout);
    assert_eq!(cleaned["dropped"], serde_json::json!([]), "{cleaned}");
    let _ = std::fs::remove_dir_all(&state);
    let _ = std::fs::remove_dir_all(&own);
}

#[tokio::test]
async fn seed_never_prints_the_password_of_the_database_url() {
    const PASSWORD: &str = "Sup3rSecretPassw0rd";
    let env = billing_harness::TestEnv::start().await;
    let url = foreign_database(&env, "qa_password").await;
    // The throwaway server checks passwords: a role of this test's own has this one.
    let role = format!("bh_qa_pw_{}", std::process::id());
    create_role(&env, &role, PASSWORD, true).await;
    let host = url.split_once('@').unwrap().1;
    let with_password = format!("postgres://{role}:{PASSWORD}@{host}");
    let missing = format!("{}_missing", with_password);
    let state = state_dir("seed-password");
    let outputs = [
        // Unmarked: refused, with the fix to paste.
        cli_on(
            &state,
            &url,
            &[
                "scenario",
                "seed",
                "fail-times-2",
                "--database-url",
                &with_password,
            ],
        ),
        // A database that does not exist: an error chain about the URL.
        cli_on(
            &state,
            &url,
            &[
                "scenario",
                "seed",
                "fail-times-2",
                "--database-url",
                &missing,
            ],
        ),
        cli_on(
            &state,
            &url,
            &["db", "mark", "--env", "qa", "--database-url", &missing],
        ),
    ];
    drop_database(&env, &url).await;
    drop_role(&env, &role).await;
    let _ = std::fs::remove_dir_all(&state);
    for output in &outputs {
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stdout.contains(PASSWORD), "{stdout}");
        assert!(!stderr.contains(PASSWORD), "{stderr}");
        assert!(!output.status.success(), "{stderr}");
    }
    let refused = String::from_utf8_lossy(&outputs[0].stderr);
    assert_eq!(outputs[0].status.code(), Some(1), "{refused}");
    assert!(
        refused.contains("fix: cargo xtask db mark --env qa --database-url 'postgres://")
            && refused.contains(":***@"),
        "{refused}"
    );
    let missing = String::from_utf8_lossy(&outputs[1].stderr);
    assert!(
        missing.contains(":***@"),
        "the error names the URL: {missing}"
    );
}

#[tokio::test]
async fn an_error_chain_says_each_cause_once() {
    // A database that has the platform's tables but not the migrations' record of them (a
    // restored dump, say): marking it runs the first migration into existing tables.
    let env = billing_harness::TestEnv::start().await;
    let (url, state) = marked_database(&env, "qa_chain", "error-chain").await;
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query("drop table _sqlx_migrations")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let second = cli_on(
        &state,
        &url,
        &["db", "mark", "--env", "qa", "--database-url", &url],
    );
    drop_database(&env, &url).await;
    let _ = std::fs::remove_dir_all(&state);
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.matches("already exists").count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: could not migrate"), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(
        lines.len() >= 2 && lines[1..].iter().all(|l| l.starts_with("  caused by: ")),
        "{stderr}"
    );
    // The server's own words are said once: in the first line when the harness's message
    // already carries them (as it does for migrations), else as the last cause.
    assert!(
        stderr.contains("relation \"harness_runs\" already exists"),
        "{stderr}"
    );
}

/// With a Docker engine that answers (from `DOCKER_HOST`) but no image for the container backend
/// (none pulled, no registry), `auto` takes the local binaries and `doctor` says why. Needs an
/// engine: `.ci/run` runs it again with its own; without one it says so and passes, unless CI.
#[test]
fn an_engine_without_the_image_leaves_auto_on_local_binaries() {
    if !docker_ready(
        &["version", "--format", "{{.Server.Version}}"],
        "no Docker engine answers",
    ) {
        return;
    }
    let state = state_dir("fallback");
    let out = xtask(&state)
        .env("HARNESS_POSTGRES", "auto")
        .env("HARNESS_POSTGRES_IMAGE", "billing-harness/absent:0")
        .arg("doctor")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("answers, but image billing-harness/absent:0 is not on the engine"),
        "{stdout}"
    );
    assert!(
        stdout.contains("HARNESS_POSTGRES=auto uses: local"),
        "{stdout}"
    );
}

/// Whether `docker ARGS` succeeds here (none of them empty); if not, says so with `what`, and
/// fails when CI gave `DOCKER_HOST`.
fn docker_ready(args: &[&str], what: &str) -> bool {
    let ready = args.iter().all(|a| !a.is_empty())
        && Command::new("docker")
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success());
    if !ready {
        assert!(
            std::env::var("CI").is_err() || std::env::var("DOCKER_HOST").is_err(),
            "CI gave DOCKER_HOST but {what}"
        );
        eprintln!("skipped: {what} here (.ci/run runs this with an engine of its own)");
    }
    ready
}

/// Whether an engine answers with `HARNESS_POSTGRES_IMAGE` on it (see [`docker_ready`]).
fn postgres_image_ready() -> bool {
    let image = std::env::var("HARNESS_POSTGRES_IMAGE").unwrap_or_default();
    docker_ready(
        &["image", "inspect", &image],
        &format!("no engine has HARNESS_POSTGRES_IMAGE {image:?}"),
    )
}

/// On the container backend: the server's port is published on 127.0.0.1 only (whatever address
/// the engine publishes on by default: `.ci/run` starts its engine without `--ip`), and the
/// server asks for the password its URL carries. Needs an engine and `HARNESS_POSTGRES_IMAGE`.
#[tokio::test]
async fn a_container_server_is_published_on_127_0_0_1_only_and_asks_for_its_password() {
    if !postgres_image_ready() {
        return;
    }
    let state = state_dir("ct-loopback");
    let (up, url) = {
        let (child, rx) = spawn_db_up(&state, &[("HARNESS_POSTGRES", "container")]);
        (child, rx.recv_timeout(Duration::from_secs(120)).unwrap())
    };
    let instance: serde_json::Value = serde_json::from_slice(
        &std::fs::read(state.join("container").join("instance.json")).unwrap(),
    )
    .unwrap();
    let id = instance["stop"]["id"].as_str().unwrap().to_owned();
    let ports = Command::new("docker").args(["port", &id]).output().unwrap();
    let ports = String::from_utf8_lossy(&ports.stdout).into_owned();
    let (with, without) = {
        let (userinfo, rest) = url.split_once('@').unwrap();
        let user = userinfo.rsplit_once(':').unwrap().0;
        (url.clone(), format!("{user}@{rest}"))
    };
    let allowed = sqlx::PgConnection::connect(&with).await.map(|_| ());
    let refused = sqlx::PgConnection::connect(&without).await.map(|_| ());
    let wrong = sqlx::PgConnection::connect(&with.replacen('@', "x@", 1))
        .await
        .map(|_| ());
    let status = interrupt(up);
    let gone = wait_until(Duration::from_secs(30), || {
        containers(&format!("id={id}")).is_empty()
    });
    let _ = std::fs::remove_dir_all(&state);

    assert!(status.success(), "db up ended with {status}");
    assert!(!ports.trim().is_empty(), "docker port shows nothing");
    assert!(
        ports
            .lines()
            .all(|l| l.starts_with("5432/tcp -> 127.0.0.1:")),
        "published beyond 127.0.0.1: {ports}"
    );
    assert!(allowed.is_ok(), "{allowed:?}");
    for refusal in [refused, wrong] {
        let err = refusal.unwrap_err().to_string();
        assert!(err.contains("password authentication failed"), "{err}");
    }
    assert!(gone, "container {id} outlived its run");
}

/// The ids of the containers, running or not, that `docker ps --filter FILTER` lists.
fn containers(filter: &str) -> Vec<String> {
    let out = Command::new("docker")
        .args(["ps", "-aq", "--filter", filter])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// The ids of the containers of a generation (a started server), running or not.
fn containers_of(generation: &str) -> Vec<String> {
    containers(&format!("label=billing-harness.generation={generation}"))
}

/// On the container backend: a run killed with SIGKILL, its watchdog too, leaves its container;
/// the next run reaps or adopts it, and once that run is over no container is left. Needs an
/// engine and `HARNESS_POSTGRES_IMAGE` there (`.ci/run` gives both); else it says so and passes,
/// unless CI gave `DOCKER_HOST`.
#[test]
fn no_container_is_left_after_a_run_killed_with_sigkill_once_the_next_has_run() {
    if !postgres_image_ready() {
        return;
    }
    let state = state_dir("ct-sigkill");
    let vars = [("HARNESS_POSTGRES", "container")];
    let (mut crashed, rx) = spawn_db_up(&state, &vars);
    let url = rx.recv_timeout(Duration::from_secs(120)).unwrap();
    assert!(url.starts_with("postgres://"), "db up printed {url:?}");
    let dir = state.join("container");
    let instance = std::fs::read_to_string(dir.join("instance.json")).unwrap();
    let generation = instance
        .split("\"generation\": \"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_owned();
    let watchdog = std::fs::read_to_string(dir.join("watchdog.pid")).unwrap();
    crashed.kill().unwrap(); // SIGKILL: no destructor runs
    crashed.wait().unwrap();
    Command::new("kill")
        .args(["-KILL", watchdog.trim()])
        .status()
        .unwrap();
    let left = containers_of(&generation);
    assert_eq!(left.len(), 1, "the dead run left its container");

    // The next run starts, and ends; then nothing of either is left.
    let (next, rx) = spawn_db_up(&state, &vars);
    let next_url = rx.recv_timeout(Duration::from_secs(120)).unwrap();
    assert!(
        next_url.starts_with("postgres://"),
        "db up printed {next_url:?}"
    );
    let next_generation = std::fs::read_to_string(dir.join("instance.json"))
        .unwrap()
        .split("\"generation\": \"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_owned();
    let status = interrupt(next);
    assert!(status.success(), "db up exited with {status}");
    let gone = wait_until(Duration::from_secs(30), || {
        containers_of(&generation).is_empty() && containers_of(&next_generation).is_empty()
    });
    let _ = std::fs::remove_dir_all(&state);
    assert!(
        gone,
        "a container outlived the runs: {:?}",
        containers_of(&generation)
    );
}

/// `cargo xtask ARGS` on the scenarios folder `scenarios`.
fn scenario_cli(state: &Path, scenarios: &Path, args: &[&str]) -> std::process::Output {
    xtask(state)
        .env("HARNESS_SCENARIOS_DIR", scenarios)
        .args(args)
        .output()
        .unwrap()
}

/// A test's own scenarios folder and state folder, both removed when dropped.
struct ScenarioBed {
    /// `bh-<name>-<pid>` in the temporary folder: `scenarios/` and `snapshots/`.
    root: PathBuf,
    /// `root/scenarios`.
    scenarios: PathBuf,
    state: PathBuf,
}

impl ScenarioBed {
    /// A scenarios folder as [`scenario_folder`] makes one, under `bh-<name>-<pid>`, and a state
    /// folder named `name`.
    fn new(name: &str, bundled: &[&str]) -> ScenarioBed {
        let root = std::env::temp_dir().join(format!("bh-{name}-{}", std::process::id()));
        let scenarios = scenario_folder(&root, bundled);
        let state = state_dir(name);
        ScenarioBed {
            root,
            scenarios,
            state,
        }
    }

    /// `cargo xtask ARGS` on this bed's scenarios (see [`scenario_cli`]).
    fn cli(&self, args: &[&str]) -> std::process::Output {
        scenario_cli(&self.state, &self.scenarios, args)
    }
}

impl Drop for ScenarioBed {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
        let _ = std::fs::remove_dir_all(&self.state);
    }
}

/// A scenarios folder of a test's own under `root`, with the workspace's catalog and the named
/// bundled scenarios, and their stored snapshots in `root/snapshots`.
fn scenario_folder(root: &Path, bundled: &[&str]) -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let scenarios = root.join("scenarios");
    let _ = std::fs::remove_dir_all(root);
    for sub in ["scenarios", "snapshots/scenarios", "snapshots/sync"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
    }
    std::fs::copy(
        workspace.join("scenarios/catalog.toml"),
        scenarios.join("catalog.toml"),
    )
    .unwrap();
    for name in bundled {
        let file = format!("{name}.toml");
        std::fs::copy(
            workspace.join("scenarios").join(&file),
            scenarios.join(&file),
        )
        .unwrap();
        for sub in ["snapshots/scenarios", "snapshots/sync"] {
            for entry in std::fs::read_dir(workspace.join(sub)).unwrap() {
                let path = entry.unwrap().path();
                let snap = path.file_name().unwrap().to_string_lossy().into_owned();
                if snap.ends_with(&format!("@{file}.snap")) {
                    std::fs::copy(&path, root.join(sub).join(&snap)).unwrap();
                }
            }
        }
    }
    scenarios
}

#[test]
fn scenario_run_fails_on_a_changed_snapshot_and_accept_writes_it() {
    let bed = ScenarioBed::new("scenario-snapshots", &["downgrade"]);
    let stored = bed.root.join(
        "snapshots/scenarios/every_scenario_holds_and_matches_its_snapshot@downgrade.toml.snap",
    );
    let original = std::fs::read_to_string(&stored).unwrap();
    assert!(original.contains("\"total\": \"194500\""));
    std::fs::write(&stored, original.replace("\"194500\"", "\"194400\"")).unwrap();
    let changed = bed.cli(&["scenario", "run", "downgrade"]);
    let accepted = bed.cli(&["scenario", "run", "downgrade", "--accept"]);
    let written = std::fs::read_to_string(&stored).unwrap();
    let again = bed.cli(&["scenario", "run", "downgrade"]);
    drop(bed);

    let stderr = String::from_utf8_lossy(&changed.stderr);
    assert_eq!(changed.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("-      \"total\": \"194400\"")
            && stderr.contains("+      \"total\": \"194500\""),
        "the diff shows the stored and the new total:\n{stderr}"
    );
    assert!(
        String::from_utf8_lossy(&changed.stdout).contains("differs from its snapshot")
            && String::from_utf8_lossy(&changed.stdout).contains("--accept"),
        "{}",
        String::from_utf8_lossy(&changed.stdout)
    );
    assert_eq!(accepted.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&accepted.stderr).contains("wrote 1 snapshot(s)"));
    assert_eq!(written, original, "--accept writes the file insta writes");
    assert_eq!(again.status.code(), Some(0));
}

#[test]
fn a_scenario_that_finishes_last_still_says_its_failure_first_and_whole() {
    // `a-wrong-total` plays for a while; `b-not-valid` is refused at once, on another job.
    let bed = ScenarioBed::new("scenario-order", &[]);
    let wrong = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/charged-on-the-5th.toml"),
    )
    .unwrap()
    .replace(
        r#"period = "2026-10", total = "99000""#,
        r#"period = "2026-10", total = "99001""#,
    );
    std::fs::write(bed.scenarios.join("a-wrong-total.toml"), wrong).unwrap();
    std::fs::write(bed.scenarios.join("b-not-valid.toml"), "version = 1\n").unwrap();
    let out = bed.cli(&["scenario", "run", "--all", "--jobs", "2"]);
    drop(bed);
    assert_eq!(out.status.code(), Some(2), "an invalid file exits 2");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let at = |text: &str| {
        stderr
            .find(text)
            .unwrap_or_else(|| panic!("{text:?} not on stderr:\n{stderr}"))
    };
    // The first scenario's block: its failures, then its expectation's diagnostic.
    let (failure, mismatch) = (
        at("expected total 99001, got 99000"),
        at("1 problem in the scenario"),
    );
    let invalid = at("b-not-valid.toml");
    assert!(
        failure < mismatch && mismatch < invalid,
        "in the files' order, each whole:\n{stderr}"
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.find("a-wrong-total") < table.find("b-not-valid"),
        "{table}"
    );
}

#[test]
fn scenario_run_format_junit_writes_a_report_valid_against_the_junit_schema() {
    let bed = ScenarioBed::new("scenario-junit", &["charged-on-the-5th"]);
    let wrong = std::fs::read_to_string(bed.scenarios.join("charged-on-the-5th.toml"))
        .unwrap()
        .replace(
            r#"period = "2026-10", total = "99000""#,
            r#"period = "2026-10", total = "99001""#,
        );
    std::fs::write(bed.scenarios.join("wrong-total.toml"), wrong).unwrap();
    std::fs::write(
        bed.scenarios.join("not-valid.toml"),
        "version = 1\nname = \"<bad> & 'quoted'\"\n",
    )
    .unwrap();
    let out = bed.cli(&["scenario", "run", "--all", "--format", "junit"]);
    drop(bed);
    assert_eq!(out.status.code(), Some(2), "an invalid file exits 2");
    let xml = String::from_utf8(out.stdout).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{e}:\n{xml}"));

    assert_junit_schema(&doc);
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    let suites: Vec<_> = root.children().filter(|n| n.is_element()).collect();
    assert_eq!(suites.len(), 1);
    let suite = suites[0];
    assert_eq!(suite.attribute("name"), Some("scenarios"));
    let cases: Vec<_> = suite
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    let names: Vec<_> = cases.iter().map(|c| c.attribute("name").unwrap()).collect();
    assert_eq!(names, ["charged-on-the-5th", "not-valid", "wrong-total"]);
    for (element, attr) in [(root, "tests"), (suite, "tests")] {
        assert_eq!(element.attribute(attr), Some("3"));
    }
    let child = |case: &roxmltree::Node<'_, '_>| {
        case.children().find(roxmltree::Node::is_element).map(|n| {
            (
                n.tag_name().name().to_owned(),
                n.attribute("message").unwrap_or("").to_owned(),
                n.text().unwrap_or("").to_owned(),
            )
        })
    };
    assert_eq!(
        child(&cases[0]),
        None,
        "a scenario that holds has no failure"
    );
    let (kind, _, text) = child(&cases[1]).unwrap();
    assert_eq!(kind, "error");
    assert!(text.contains("missing field"), "{text}");
    let (kind, message, text) = child(&cases[2]).unwrap();
    assert_eq!(kind, "failure");
    assert!(
        message.contains("invoice of acme-analytics for 2026-10: expected total 99001, got 99000"),
        "{message}"
    );
    assert!(text.contains("wrong-total.toml:"), "{text}");
    for element in [root, suite] {
        assert_eq!(element.attribute("failures"), Some("1"));
        assert_eq!(element.attribute("errors"), Some("1"));
    }
}

/// The JUnit XML schema CI systems read (Jenkins' junit-10.xsd): the elements and attributes it
/// allows, times as decimals.
fn assert_junit_schema(doc: &roxmltree::Document<'_>) {
    let allowed: &[(&str, &[&str])] = &[
        (
            "testsuites",
            &["name", "tests", "failures", "errors", "time", "disabled"],
        ),
        (
            "testsuite",
            &[
                "name",
                "tests",
                "failures",
                "errors",
                "skipped",
                "time",
                "timestamp",
                "hostname",
                "id",
                "package",
                "disabled",
            ],
        ),
        (
            "testcase",
            &["name", "classname", "time", "assertions", "status"],
        ),
        ("failure", &["message", "type"]),
        ("error", &["message", "type"]),
        ("skipped", &["message"]),
    ];
    for node in doc.descendants().filter(|n| n.is_element()) {
        let name = node.tag_name().name();
        let attrs = allowed
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("<{name}> is not a JUnit element"))
            .1;
        for a in node.attributes() {
            assert!(
                attrs.contains(&a.name()),
                "<{name} {}> is not in the schema",
                a.name()
            );
        }
        if let Some(time) = node.attribute("time") {
            assert!(time.parse::<f64>().is_ok_and(|t| t >= 0.0), "time {time:?}");
        }
    }
}

#[test]
fn scenario_run_driver_format_junit_fails_a_difference_and_skips_what_the_driver_cannot_play() {
    let bed = ScenarioBed::new("scenario-junit-driver", &["full-month", "leap-february"]);
    // The example charges on the 5th only: a catalog charged on the 10th it cannot play.
    std::fs::write(
        bed.scenarios.join("charged-on-the-10th.toml"),
        "version = 1\nname = \"a catalog charged on the 10th\"\nstart = \"2026-09-01\"\n\
         until = \"2026-09-02\"\n\n[catalog]\ncharge_day = 10\n\n[[catalog.plan]]\n\
         key = \"pro\"\nproduct = \"analytics\"\nbase_fee = \"99000\"\n\n\
         [[org]]\nkey = \"acme\"\ncard = \"ok\"\n\n[[tenant]]\nkey = \"acme-analytics\"\n\
         org = \"acme\"\nproduct = \"analytics\"\n\n[[step]]\non = \"2026-09-01\"\n\
         subscribe = { tenant = \"acme-analytics\", plan = \"pro\" }\n",
    )
    .unwrap();
    let out = bed.cli(&[
        "scenario",
        "run",
        "--all",
        "--driver",
        "example-prorate-by-30-days",
        "--format",
        "junit",
    ]);
    drop(bed);
    assert_eq!(out.status.code(), Some(1), "a difference exits 1");
    let xml = String::from_utf8(out.stdout).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{e}:\n{xml}"));
    assert_junit_schema(&doc);
    let suite = doc.root_element().first_element_child().unwrap();
    for (attr, value) in [("tests", "3"), ("failures", "1"), ("skipped", "1")] {
        assert_eq!(suite.attribute(attr), Some(value), "{attr}:\n{xml}");
    }
    let outcome: Vec<(&str, Option<&str>)> = suite
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .map(|c| {
            (
                c.attribute("name").unwrap(),
                c.first_element_child().map(|n| n.tag_name().name()),
            )
        })
        .collect();
    assert_eq!(
        outcome,
        [
            ("charged-on-the-10th", Some("skipped")),
            ("full-month", None),
            ("leap-february", Some("failure")),
        ],
        "{xml}"
    );
    assert!(
        xml.contains(
            "invoice acme-analytics 2028-02, line 1 (base pro): amount: expected 68275, got 66000"
        ),
        "{xml}"
    );
}

/// `scenario run --all --format json --jobs N` on the bundled scenarios: its stdout, after
/// checking that it held and said nothing on stderr.
fn all_as_json(jobs: &str) -> Vec<u8> {
    let state = state_dir(&format!("jobs-{jobs}"));
    let out = xtask(&state)
        .args([
            "scenario", "run", "--all", "--format", "json", "--jobs", jobs,
        ])
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&state);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "--jobs {jobs}: {stderr}");
    assert!(stderr.is_empty(), "--jobs {jobs}: {stderr}");
    out.stdout
}

#[test]
fn scenario_run_all_prints_the_same_json_with_one_job_and_with_four() {
    // The JSON holds no timing, so whatever order the scenarios finish in, it is the same bytes.
    let one = all_as_json("1");
    let four = all_as_json("4");
    let doc: serde_json::Value = serde_json::from_slice(&one).unwrap();
    let names: Vec<&str> = doc["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["scenario"].as_str().unwrap())
        .collect();
    assert!(names.len() > 40, "every bundled scenario: {names:?}");
    assert!(
        one == four,
        "--jobs 1 and --jobs 4 differ:\n{}\n---\n{}",
        String::from_utf8_lossy(&one),
        String::from_utf8_lossy(&four)
    );
}

#[test]
fn the_shards_of_a_partition_together_play_every_scenario_exactly_once() {
    let bundled = [
        "charged-on-the-5th",
        "downgrade",
        "full-month",
        "leap-february",
        "usage-at-quota",
    ];
    let bed = ScenarioBed::new("partition", &bundled);
    let shard = |partition: &str| -> Vec<String> {
        let out = bed.cli(&[
            "scenario",
            "run",
            "--all",
            "--format",
            "json",
            "-j",
            "2",
            "--partition",
            partition,
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{partition}: {stderr}");
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        doc["scenarios"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["scenario"].as_str().unwrap().to_owned())
            .collect()
    };
    let count: Vec<Vec<String>> = (1..=3).map(|k| shard(&format!("count:{k}/3"))).collect();
    let hash: Vec<Vec<String>> = (1..=3).map(|k| shard(&format!("hash:{k}/3"))).collect();
    drop(bed);
    assert_eq!(
        count.iter().map(Vec::len).collect::<Vec<_>>(),
        [2, 2, 1],
        "count:K/3 of 5 files: {count:?}"
    );
    for (by, shards) in [("count", count), ("hash", hash)] {
        let mut all: Vec<String> = shards.concat();
        all.sort();
        let before = all.len();
        all.dedup();
        assert_eq!(
            before,
            all.len(),
            "{by}: a scenario played twice: {shards:?}"
        );
        assert_eq!(all.len(), bundled.len(), "{by}: {shards:?}");
    }
}

/// `scenario run --all --driver NAME`: its exit code, and the report on stdout.
fn conformance(driver: &str) -> (Option<i32>, String) {
    let state = state_dir(driver);
    let output = xtask(&state)
        .args(["scenario", "run", "--all", "--driver", driver])
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&state);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        !stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code(), stdout)
}

/// The scenarios a report says differ, by file name.
fn differing(report: &str) -> Vec<&str> {
    report
        .lines()
        .filter_map(|l| l.strip_suffix(": DIFFERS"))
        .map(|path| path.rsplit('/').next().unwrap())
        .collect()
}

#[test]
fn the_example_backend_conforms_to_every_bundled_scenario() {
    let (code, report) = conformance("example");
    assert_eq!(code, Some(0), "{report}");
    assert!(differing(&report).is_empty(), "{report}");
    // Purges and product sync included: every bundled scenario plays through its own code, but
    // the one in a time zone the example has no calendar for, and those with a product outage
    // (the example's delivery gives a row up after 6 attempts).
    let unsupported: Vec<&str> = report
        .lines()
        .filter(|l| l.contains(": not supported"))
        .collect();
    assert_eq!(unsupported.len(), 4, "{report}");
    assert!(
        unsupported[0].ends_with(
            "santiago-across-the-dst-change.toml: not supported (example has no billing time zone \
             other than Asia/Seoul (America/Santiago))"
        ),
        "{report}"
    );
    for (line, name) in unsupported[1..].iter().zip([
        "sync-outage-2-hours.toml",
        "sync-outage-4-days.toml",
        "sync-retried-up-to-the-last-attempt.toml",
    ]) {
        assert!(
            line.ends_with(&format!(
                "{name}: not supported (example has no product outages (its delivery gives a row \
                 up after 6 attempts, and only a person re-queues it))"
            )),
            "{report}"
        );
    }
    assert!(
        report.ends_with("example: 43 conform, 0 differ, 4 not supported, of 47 scenarios\n"),
        "{report}"
    );
}

#[test]
fn prorating_by_30_days_is_caught_by_the_scenarios_of_months_other_than_30_days() {
    let (code, report) = conformance("example-prorate-by-30-days");
    assert_eq!(code, Some(1), "{report}");
    let caught = differing(&report);
    for name in [
        "leap-february.toml",
        "subscribe-on-the-10th.toml",
        "cancel-mid-month.toml",
        "usd-with-tax.toml",
    ] {
        assert!(caught.contains(&name), "{name} missed it:\n{report}");
    }
    // September has 30 days: a whole September is billed the same either way.
    assert!(!caught.contains(&"full-month.toml"), "{report}");
    assert!(
        report.ends_with(
            "example-prorate-by-30-days: 10 conform, 33 differ, 4 not supported, of 47 scenarios\n"
        ),
        "{report}"
    );
    assert!(
        report.contains(
            "  invoice acme-analytics 2028-02, line 1 (base pro): amount: expected 68275, got 66000\n    \
             rule: the base fee is prorated: fee × days used / days in the month, rounded down to \
             the currency's unit\n"
        ),
        "{report}"
    );
}

#[test]
fn a_retry_that_skips_a_day_is_caught_by_the_dunning_scenarios() {
    let (code, report) = conformance("example-retry-skips-a-day");
    assert_eq!(code, Some(1), "{report}");
    let caught = differing(&report);
    for name in [
        "declined-dunning.toml",
        "fail-times-2.toml",
        "card-replaced-between-attempts.toml",
        "expired-card.toml",
        "insufficient-funds.toml",
    ] {
        assert!(caught.contains(&name), "{name} missed it:\n{report}");
    }
    // A card that pays on the 5th is never retried: nothing to skip.
    assert!(!caught.contains(&"charged-on-the-5th.toml"), "{report}");
    assert!(
        report.ends_with(
            "example-retry-skips-a-day: 36 conform, 7 differ, 4 not supported, of 47 scenarios\n"
        ),
        "{report}"
    );
    assert!(
        report.contains(
            "  payment acme-analytics 2026-10 attempt 2: on: expected 2026-11-06, got 2026-11-07\n    \
             rule: month M is charged on the charge day (the 5th) of M+1; a failed charge is \
             retried daily for up to 3 days (4 attempts in all)\n"
        ),
        "{report}"
    );
}

/// A database on this test run's server that the harness did not create, marked for `qa` with
/// `db mark`, and a state folder for the commands run on it.
async fn marked_database(
    env: &billing_harness::TestEnv,
    name: &str,
    state: &str,
) -> (String, PathBuf) {
    let url = foreign_database(env, name).await;
    let state = state_dir(state);
    let marked = cli_on(
        &state,
        &url,
        &["db", "mark", "--env", "qa", "--database-url", &url],
    );
    assert!(
        marked.status.success(),
        "{}",
        String::from_utf8_lossy(&marked.stderr)
    );
    (url, state)
}

/// Starts `scenario seed NAME` into the database of `url`, anchored two months ago.
fn spawn_seed(state: &Path, url: &str, name: &str) -> Child {
    xtask_on(
        state,
        url,
        &[
            "scenario",
            "seed",
            name,
            "--database-url",
            url,
            "--anchor",
            "months-ago:2",
        ],
    )
    .spawn()
    .unwrap()
}

/// The run id a seed printed (`... as run-...`).
fn run_of(output: &std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .split_whitespace()
        .find(|w| w.starts_with("run-"))
        .unwrap_or_else(|| panic!("no run id in {stdout}"))
        .to_owned()
}

/// How many of the rows `run` recorded still exist, per table (a table with none: 0).
async fn recorded_rows(
    conn: &mut sqlx::PgConnection,
    rows: &[(String, i64)],
) -> std::collections::BTreeMap<String, i64> {
    let mut out = std::collections::BTreeMap::new();
    for (table, id) in rows {
        let n: i64 = sqlx::query_scalar(&format!("select count(*) from {table} where id = $1"))
            .bind(id)
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        *out.entry(table.clone()).or_insert(0) += n;
    }
    out
}

/// `run`'s rows as its purge plan counts them, per table, the runs' records left out: another
/// run's records of them (its jobs billed this run's subscription, say) go with that run.
async fn own_plan(pool: &sqlx::PgPool, run: &str) -> std::collections::BTreeMap<String, u64> {
    let mut rows = billing_harness::purge::plan(
        pool,
        &billing_harness::purge::PurgeTarget::Run(run.to_owned()),
    )
    .await
    .unwrap()
    .rows;
    rows.remove("harness_run_rows");
    rows
}

async fn records_of(conn: &mut sqlx::PgConnection, run: &str) -> Vec<(String, i64)> {
    sqlx::query_as(
        "select table_name, row_id from harness_run_rows where run_id = $1 order by 1, 2",
    )
    .bind(run)
    .fetch_all(conn)
    .await
    .unwrap()
}

#[tokio::test]
async fn seeds_started_at_once_own_their_rows_and_purging_one_leaves_every_other_row() {
    let env = billing_harness::TestEnv::start().await;
    let (url, state) = marked_database(&env, "qa_at_once", "seed-at-once").await;
    let seed = |name: &str| spawn_seed(&state, &url, name);
    // Twice, a pair started at once: the second of each pair waits for the clock lock.
    let mut runs = Vec::new();
    for _ in 0..2 {
        let (dunning, month) = (seed("declined-dunning"), seed("full-month"));
        runs.push(run_of(&dunning.wait_with_output().unwrap()));
        runs.push(run_of(&month.wait_with_output().unwrap()));
    }
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let mut before = Vec::new();
    for run in &runs[1..] {
        let rows = records_of(&mut conn, run).await;
        let plan = own_plan(&pool, run).await;
        before.push((rows.clone(), recorded_rows(&mut conn, &rows).await, plan));
    }
    let first = records_of(&mut conn, &runs[0]).await;
    let purged = cli_on(
        &state,
        &url,
        &["purge", "--run", &runs[0], "--database-url", &url],
    );
    let mut after = Vec::new();
    for (run, (rows, _, _)) in runs[1..].iter().zip(&before) {
        let plan = own_plan(&pool, run).await;
        after.push((recorded_rows(&mut conn, rows).await, plan));
    }
    let first_left = recorded_rows(&mut conn, &first).await;
    // What the first run's jobs wrote for the others (its close billed their subscriptions for
    // the months it replayed) is theirs, and stays: every invoice of it left is another run's.
    let first_invoices: Vec<i64> = first
        .iter()
        .filter(|(t, _)| t == "invoices")
        .map(|(_, id)| *id)
        .collect();
    let others_invoices: i64 = sqlx::query_scalar(
        "select count(*) from invoices i join tenants t on t.id = i.tenant_id \
         where i.id = any($1) and exists (select 1 from harness_run_rows r \
         where r.table_name = 'organizations' and r.row_id = t.organization_id)",
    )
    .bind(&first_invoices)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    let tenants: i64 = sqlx::query_scalar("select count(*) from tenants")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    pool.close().await;
    conn.close().await.unwrap();
    drop_database(&env, &url).await;
    let _ = std::fs::remove_dir_all(&state);
    assert!(
        purged.status.success(),
        "{}",
        String::from_utf8_lossy(&purged.stderr)
    );
    for ((run, (rows, counts, plan)), (counts_after, plan_after)) in
        runs[1..].iter().zip(&before).zip(&after)
    {
        assert!(
            rows.iter().any(|(t, _)| t == "organizations"),
            "{run} recorded its organization"
        );
        assert_eq!(
            counts_after, counts,
            "{run}'s recorded rows, table by table"
        );
        assert_eq!(
            plan_after, plan,
            "{run}'s rows and all below them, table by table"
        );
    }
    for table in [
        "organizations",
        "users",
        "tenants",
        "subscriptions",
        "contracts",
        "billings",
    ] {
        assert_eq!(
            first_left.get(table).copied().unwrap_or(0),
            0,
            "{table} of the first run left: {first_left:?}"
        );
    }
    assert_eq!(
        first_left.get("invoices").copied().unwrap_or(0),
        others_invoices,
        "only the others' invoices stay: {first_left:?}"
    );
    assert_eq!(tenants, 3, "one tenant per run left");
}

#[tokio::test]
async fn a_seed_killed_half_way_is_purged_completely_by_its_run_id() {
    let env = billing_harness::TestEnv::start().await;
    let (url, state) = marked_database(&env, "qa_killed", "seed-killed").await;
    // The close of the first month waits on this lock: the seed has written its organization,
    // tenant and subscription, and is killed there.
    let mut blocker = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query("begin").execute(&mut blocker).await.unwrap();
    sqlx::query("lock table invoices in share mode")
        .execute(&mut blocker)
        .await
        .unwrap();
    let mut child = spawn_seed(&state, &url, "declined-dunning");
    let mut watch = sqlx::PgConnection::connect(&url).await.unwrap();
    let mut waiting = false;
    for _ in 0..600 {
        waiting = sqlx::query_scalar(
            "select exists (select 1 from pg_locks where not granted and relation = 'invoices'::regclass)",
        )
        .fetch_one(&mut watch)
        .await
        .unwrap();
        if waiting {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The seed holds the clock lock: a `clock advance` waits for it, and says so.
    let mut advance = xtask_on(
        &state,
        &url,
        &["clock", "advance", "--by", "1h", "--database-url", &url],
    )
    .spawn()
    .unwrap();
    let said = common::first_line(advance.stderr.take().unwrap())
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_default();
    let advance_waited = advance.try_wait().unwrap().is_none();
    child.kill().unwrap();
    let status = child.wait().unwrap();
    sqlx::query("commit").execute(&mut blocker).await.unwrap();
    let advanced = advance.wait_with_output().unwrap();
    // The killed seed's backend finds its client gone once the lock is free: wait for it.
    for _ in 0..100 {
        let others: i64 = sqlx::query_scalar(
            "select count(*) from pg_stat_activity where datname = current_database() \
             and pid <> pg_backend_pid() and application_name <> 'psql' and backend_type = 'client backend'",
        )
        .fetch_one(&mut watch)
        .await
        .unwrap();
        if others <= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let run: String = sqlx::query_scalar("select id from harness_runs")
        .fetch_one(&mut watch)
        .await
        .unwrap();
    let rows = records_of(&mut watch, &run).await;
    let purged = cli_on(
        &state,
        &url,
        &["purge", "--run", &run, "--database-url", &url],
    );
    let left = recorded_rows(&mut watch, &rows).await;
    let runs: i64 = sqlx::query_scalar("select count(*) from harness_runs")
        .fetch_one(&mut watch)
        .await
        .unwrap();
    blocker.close().await.unwrap();
    watch.close().await.unwrap();
    drop_database(&env, &url).await;
    let _ = std::fs::remove_dir_all(&state);
    assert!(waiting, "the seed reached the close");
    assert!(
        said.contains("waiting for another seed or clock advance") && advance_waited,
        "{said}"
    );
    assert!(
        advanced.status.success(),
        "the advance went on once the seed was gone: {}",
        String::from_utf8_lossy(&advanced.stderr)
    );
    assert!(!status.success(), "killed, not finished");
    let tables: Vec<&str> = rows.iter().map(|(t, _)| t.as_str()).collect();
    for table in ["organizations", "tenants", "subscriptions", "plans"] {
        assert!(
            tables.contains(&table),
            "{table} recorded before the kill: {rows:?}"
        );
    }
    assert!(
        !tables.contains(&"invoices"),
        "killed before its first invoice"
    );
    assert!(
        purged.status.success(),
        "{}",
        String::from_utf8_lossy(&purged.stderr)
    );
    assert!(
        left.values().all(|n| *n == 0),
        "rows of the killed run left, per table: {left:?}"
    );
    assert_eq!(runs, 0);
}

#[tokio::test]
async fn seeding_a_usd_catalog_into_a_krw_database_is_refused_with_the_differences() {
    let env = billing_harness::TestEnv::start().await;
    let (url, state) = marked_database(&env, "qa_currency", "seed-currency").await;
    let run = |args: &[&str]| xtask_on(&state, &url, args).output().unwrap();
    let krw = run(&["scenario", "seed", "fail-times-2", "--database-url", &url]);
    run_of(&krw);
    let settings = || async {
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        let all: Vec<String> = sqlx::query_scalar(
            "select t::text from platform_settings t union all select count(*)::text from plans \
             union all select count(*)::text from harness_runs union all select now::text from harness_clock",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        all
    };
    let before = settings().await;
    let usd = run(&["scenario", "seed", "usd-with-tax", "--database-url", &url]);
    let after = settings().await;
    // A database marked before seeds recorded their rows: refused, with the fix.
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query("drop function harness_record_row() cascade")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let old = run(&["scenario", "seed", "fail-times-2", "--database-url", &url]);
    drop_database(&env, &url).await;
    let _ = std::fs::remove_dir_all(&state);
    let stderr = String::from_utf8_lossy(&usd.stderr);
    assert_eq!(usd.status.code(), Some(1), "{stderr}");
    for line in [
        "refusing to seed",
        "currency: database KRW vs scenario USD",
        "tax_rate: database 0 vs scenario 0.1",
        "nothing was written",
    ] {
        assert!(stderr.contains(line), "{line}: {stderr}");
    }
    assert_eq!(
        after, before,
        "platform_settings, plans, runs and clock unchanged"
    );
    let old = String::from_utf8_lossy(&old.stderr);
    assert!(old.contains("cargo xtask db mark --env qa"), "{old}");
}
