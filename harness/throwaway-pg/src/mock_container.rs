//! Product mocks in a container (`HARNESS_PRODUCTS=container`): one container per test process,
//! started with testcontainers from `HARNESS_PRODUCT_MOCK_IMAGE`, serving every product mock of
//! the process's tests in namespaces, and reached over its mapped port.
//!
//! A detached watchdog removes the container once the process has ended, however it ended
//! (SIGKILL included); a start-up also reaps the product-mock containers whose process is gone
//! (by the `billing-harness.role` and `billing-harness.pid` labels), in case a watchdog was killed
//! too.

use std::time::{Duration, Instant};

use testcontainers::core::{IntoContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{GenericImage, ImageExt};

use super::EnvError;
use super::container::{docker, docker_answers, publish_on_loopback};
use super::stop::remove_container as remove;

/// The label that marks the harness's product-mock containers.
const ROLE_LABEL: &str = "billing-harness.role=product-mock";
/// The label naming the process a product-mock container serves.
const PID_LABEL: &str = "billing-harness.pid";
/// The port the image serves on inside the container.
const PORT: u16 = 8080;

/// A product-mock container serving this process.
#[derive(Debug, Clone)]
pub struct MockContainer {
    /// The container's id.
    pub id: String,
    /// `http://127.0.0.1:PORT`: the mapped port; a product's `sync_url` is
    /// `{url}/ns/{namespace}`.
    pub url: String,
    /// How long it took to start, reaping included.
    pub started_in: Duration,
}

/// This process's product-mock container, started from `image` on first use and shared by every
/// later call.
///
/// # Errors
/// [`EnvError::Unavailable`] when no image is named, no engine answers or the image is missing;
/// [`EnvError::Start`] when the container does not start.
pub async fn product_mock_container(
    image: Option<&str>,
) -> Result<&'static MockContainer, EnvError> {
    static CONTAINER: tokio::sync::OnceCell<MockContainer> = tokio::sync::OnceCell::const_new();
    CONTAINER.get_or_try_init(|| start(image)).await
}

fn unavailable(reason: String, fix: &str) -> EnvError {
    EnvError::Unavailable {
        backend: "product-mock container",
        reason,
        fix: fix.to_owned(),
    }
}

async fn start(image: Option<&str>) -> Result<MockContainer, EnvError> {
    let began = Instant::now();
    let fix = "build the image with `cargo xtask images` and set HARNESS_PRODUCT_MOCK_IMAGE to \
               the name it prints, or set HARNESS_PRODUCTS=in-process";
    let image = image.ok_or_else(|| {
        unavailable(
            "HARNESS_PRODUCTS=container needs HARNESS_PRODUCT_MOCK_IMAGE".into(),
            fix,
        )
    })?;
    docker_answers().map_err(|reason| {
        unavailable(
            reason,
            "start a Docker engine (or set DOCKER_HOST), or set HARNESS_PRODUCTS=in-process",
        )
    })?;
    docker(&["image", "inspect", "--format", "{{.Id}}", image], 100).map_err(|reason| {
        unavailable(
            format!("image {image} is not on the engine ({reason})"),
            fix,
        )
    })?;
    reap_dead();
    let (name, tag) = image.rsplit_once(':').unwrap_or((image, "latest"));
    let pid = std::process::id().to_string();
    let start_error = |reason: String| EnvError::Start {
        what: format!("a product-mock container from {image}"),
        reason,
    };
    let container = GenericImage::new(name, tag)
        .with_exposed_port(PORT.tcp())
        .with_wait_for(WaitFor::message_on_stdout("product mock listening on"))
        // The image's server listens on every address inside the container; the engine
        // publishes it on 127.0.0.1 only.
        .with_host_config_modifier(publish_on_loopback(PORT))
        .with_label("billing-harness.role", "product-mock")
        .with_label(PID_LABEL, pid.as_str())
        .with_startup_timeout(Duration::from_secs(60))
        .start()
        .await
        .map_err(|e| start_error(e.to_string()))?;
    let id = container.id().to_owned();
    // The container must outlive this value (tests hold it through a `static`): the watchdog
    // removes it when the process is gone, not a drop.
    std::mem::forget(container);
    spawn_watchdog(&id).map_err(|e| {
        remove(&id);
        start_error(format!("could not start its watchdog with `setsid` ({e})"))
    })?;
    let port = docker(&["port", &id, &format!("{PORT}/tcp")], 100)
        .ok()
        .and_then(|lines| {
            lines
                .lines()
                .find_map(|l| l.rsplit_once(':').and_then(|(_, p)| p.parse::<u16>().ok()))
        })
        .ok_or_else(|| {
            remove(&id);
            start_error(format!("container {id} has no mapped port {PORT}"))
        })?;
    Ok(MockContainer {
        id,
        url: format!("http://127.0.0.1:{port}"),
        started_in: began.elapsed(),
    })
}

/// A detached `sh` loop, in its own session so that no test runner's signal reaches it, that
/// removes the container once this process has ended. The pid and the id are arguments, never
/// part of the script.
fn spawn_watchdog(id: &str) -> std::io::Result<()> {
    const SCRIPT: &str =
        r#"while kill -0 "$1" 2>/dev/null; do sleep 1; done; docker rm -f -v "$2" >/dev/null 2>&1"#;
    let status = super::os::detached_sh(SCRIPT, "billing-harness-mock-watchdog")
        .arg(std::process::id().to_string())
        .arg(id)
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "setsid exited with {status}"
        )))
    }
}

/// Removes the product-mock containers whose process has ended: their watchdog died with it
/// (a machine restart, a killed process group). Returns their ids.
pub fn reap_dead() -> Vec<String> {
    let listed = docker(
        &[
            "ps",
            "-a",
            "--filter",
            &format!("label={ROLE_LABEL}"),
            "--format",
            &format!("{{{{.ID}}}} {{{{.Label \"{PID_LABEL}\"}}}}"),
        ],
        100,
    )
    .unwrap_or_default();
    let mut reaped = Vec::new();
    for line in listed.lines() {
        let Some((id, pid)) = line.split_once(' ') else {
            continue;
        };
        let alive = pid
            .trim()
            .parse::<u32>()
            .is_ok_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists());
        if !alive {
            remove(id);
            reaped.push(id.to_owned());
        }
    }
    reaped
}
