//! Nothing left behind by product mocks in containers: a test process's product-mock container is
//! removed once the process is killed with SIGKILL, and a container whose process died with its
//! watchdog is reaped by the next start of its own state folder only. Needs a Docker engine and
//! HARNESS_PRODUCT_MOCK_IMAGE; without them it says so in one line and checks nothing, except in
//! CI's container pass (`CI=true` with `DOCKER_HOST`).

mod common;

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

fn docker(args: &[&str]) -> String {
    let output = Command::new("docker").args(args).output().unwrap();
    assert!(
        output.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// The ids of the containers labelled with `pid`.
fn containers_of(pid: u32) -> Vec<String> {
    docker(&[
        "ps",
        "-a",
        "-q",
        "--filter",
        &format!("label=billing-harness.pid={pid}"),
    ])
    .lines()
    .map(str::to_owned)
    .collect()
}

/// Whether the containers of `pid` are gone within 15 s (the watchdog polls every second).
fn gone(pid: u32) -> bool {
    common::wait_until(Duration::from_secs(15), || containers_of(pid).is_empty())
}

fn image() -> Option<String> {
    let engine = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .is_ok_and(|o| o.status.success());
    let image = std::env::var("HARNESS_PRODUCT_MOCK_IMAGE")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let why = match (engine, image) {
        (true, Some(image)) => return Some(image),
        (false, _) => "no Docker engine answers (DOCKER_HOST)",
        (true, None) => "HARNESS_PRODUCT_MOCK_IMAGE is not set (cargo xtask images prints it)",
    };
    assert!(
        std::env::var("CI").as_deref() != Ok("true") || std::env::var("DOCKER_HOST").is_err(),
        "product-mock containers cannot be tested in CI: {why}"
    );
    println!("skipped: product-mock containers: {why}");
    None
}

/// `cargo xtask products up` with product mocks in a container, with the state folder `state`,
/// once it printed its URL.
fn products_up(image: &str, state: &Path) -> Child {
    let (child, rx) = common::spawn_first_line(
        Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(["products", "up"])
            .env("HARNESS_PRODUCTS", "container")
            .env("HARNESS_PRODUCT_MOCK_IMAGE", image)
            .env("HARNESS_STATE_DIR", state),
    );
    let url = rx.recv_timeout(Duration::from_secs(60)).unwrap();
    assert!(
        url.starts_with("http://127.0.0.1:"),
        "products up printed {url:?}"
    );
    child
}

/// The product-mock container's port is published on 127.0.0.1 only, whatever address the
/// engine publishes on by default, though the image's server listens on every address inside.
#[test]
fn the_product_mock_container_is_published_on_127_0_0_1_only() {
    let Some(image) = image() else {
        return;
    };
    let state = common::state_dir("bh-xtask", "mock-loopback");
    let mut up = products_up(&image, &state);
    let ids = containers_of(up.id());
    let ports: Vec<String> = ids.iter().map(|id| docker(&["port", id])).collect();
    let _ = up.kill();
    let _ = up.wait();
    assert!(gone(up.id()), "the container outlived its process");
    let _ = std::fs::remove_dir_all(&state);
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert!(
        ports
            .iter()
            .all(|p| !p.is_empty() && p.lines().all(|l| l.starts_with("8080/tcp -> 127.0.0.1:"))),
        "published beyond 127.0.0.1: {ports:?}"
    );
}

/// A labelled container of `instance`, created (never started) for a process `pid` long gone.
fn orphan(image: &str, instance: &str, pid: u32) -> String {
    docker(&[
        "create",
        "--label",
        "billing-harness.role=product-mock",
        "--label",
        &format!("billing-harness.pid={pid}"),
        "--label",
        &format!("billing-harness.instance={instance}"),
        image,
    ])
}

#[test]
fn a_killed_process_leaves_no_product_mock_container_and_only_own_orphans_are_reaped() {
    let Some(image) = image() else {
        return;
    };
    let state = common::state_dir("bh-xtask", "mock-reap");
    let mut first = products_up(&image, &state);
    let pid = first.id();
    assert_eq!(containers_of(pid).len(), 1, "one container for the process");
    let folder = state.join("product-mocks");
    assert!(folder.join("instance-id").exists());
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(
        gone(pid),
        "the watchdog removed the container of the killed process"
    );
    assert!(
        common::wait_until(Duration::from_secs(5), || !folder.exists()),
        "and the instance folder, with no heartbeat left in it"
    );

    // Containers whose process and watchdog are both gone, as a dead run leaves them: labelled
    // with the instance id on file, with no heartbeat. The next start of this state folder reaps
    // its own, and never another instance's (another CI job on the engine), though its process
    // is gone too.
    let own = "fedcba9876543210fedcba9876543210";
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&folder)
        .unwrap();
    let id_file = folder.join("instance-id");
    std::fs::write(&id_file, own).unwrap();
    std::fs::set_permissions(&id_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let ours = orphan(&image, own, pid);
    let theirs = orphan(&image, "0123456789abcdef0123456789abcdef", pid);
    let mut second = products_up(&image, &state);
    let exists = |id: &str| {
        Command::new("docker")
            .args(["inspect", id])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let (ours_left, theirs_left) = (exists(&ours), exists(&theirs));
    let second_pid = second.id();
    second.kill().unwrap();
    second.wait().unwrap();
    for id in [&ours, &theirs] {
        let _ = Command::new("docker").args(["rm", "-f", id]).output();
    }
    assert!(
        !ours_left,
        "the orphan {ours} of this state folder was reaped at start-up"
    );
    assert!(
        theirs_left,
        "the orphan {theirs} of another instance was left alone"
    );
    assert!(
        gone(second_pid),
        "and the second container went with its process"
    );
    let _ = std::fs::remove_dir_all(&state);
}

#[test]
fn containers_asked_for_without_an_image_say_how_to_build_one() {
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["products", "up"])
        .env("HARNESS_PRODUCTS", "container")
        .env_remove("HARNESS_PRODUCT_MOCK_IMAGE")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with(
            "error: the product-mock container backend is not available: HARNESS_PRODUCTS=container needs HARNESS_PRODUCT_MOCK_IMAGE\n  fix: build the image with `cargo xtask images`"
        ),
        "{stderr}"
    );
}
