//! Product mocks in a container (`HARNESS_PRODUCTS=container`): one container per test process,
//! started with testcontainers from `HARNESS_PRODUCT_MOCK_IMAGE`, serving every product mock of
//! the process's tests in namespaces, and reached over its mapped port.
//!
//! A detached watchdog removes the container once the process has ended, however it ended
//! (SIGKILL included), and renews its heartbeat every second until then. The containers are
//! labelled with the random id of the state folder's product-mock instance
//! (`<state_dir>/product-mocks/instance-id`); a start-up reaps only containers of that id whose
//! heartbeat (`product-mocks/heartbeats/<id>`) has stopped, in case a watchdog was killed too:
//! never another state folder's or another CI job's, whatever its process ids.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use testcontainers::core::{IntoContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{GenericImage, ImageExt};

use super::EnvError;
use super::container::{
    INSTANCE_LABEL, beat, docker, docker_answers, instance_id, publish_on_loopback,
};
use super::lock::FileLock;
use super::private;
use super::stop::remove_container as remove;

/// The label naming the process a product-mock container serves (for people: reaping goes by
/// the heartbeat).
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
/// later call; its instance folder is `<state_dir>/product-mocks` (private, like the state
/// directory).
///
/// # Errors
/// [`EnvError::Unavailable`] when no image is named, no engine answers or the image is missing;
/// [`EnvError::Start`] when the container does not start; [`EnvError::Io`] or a refusal when the
/// state folder is not private.
pub async fn product_mock_container(
    image: Option<&str>,
    state_dir: &Path,
) -> Result<&'static MockContainer, EnvError> {
    static CONTAINER: tokio::sync::OnceCell<MockContainer> = tokio::sync::OnceCell::const_new();
    CONTAINER.get_or_try_init(|| start(image, state_dir)).await
}

/// The product-mock instance folder of the state directory `state_dir`, made private if new.
fn instance_folder(state_dir: &Path) -> Result<PathBuf, EnvError> {
    let dir = state_dir.join("product-mocks");
    private::ensure(state_dir)?;
    private::ensure(&dir)?;
    Ok(dir)
}

fn unavailable(reason: String, fix: &str) -> EnvError {
    EnvError::Unavailable {
        backend: "product-mock container",
        reason,
        fix: fix.to_owned(),
    }
}

async fn start(image: Option<&str>, state_dir: &Path) -> Result<MockContainer, EnvError> {
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
    let dir = instance_folder(state_dir)?;
    let own = instance_id(&dir)?;
    reap_dead(state_dir)?;
    // Held from before the container exists until its heartbeat does: a reaper waits for none
    // (it reaps only when it can take the lock alone), and never sees it without a heartbeat.
    let _starting = FileLock::shared(&dir.join("start.lock"))?;
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
        .with_label(INSTANCE_LABEL, own.as_str())
        .with_startup_timeout(Duration::from_secs(60))
        .start()
        .await
        .map_err(|e| start_error(e.to_string()))?;
    let id = container.id().to_owned();
    // The container must outlive this value (tests hold it through a `static`): the watchdog
    // removes it when the process is gone, not a drop.
    std::mem::forget(container);
    beat(&dir, &id).inspect_err(|_| remove(&id))?;
    spawn_watchdog(&id, &dir).map_err(|e| {
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
/// renews the container's heartbeat every second while this process lives, then removes the
/// container, its heartbeat, and the instance folder once no heartbeat is left in it (and the
/// default state directory when nothing else is left). The pid, the id and the folder are
/// arguments, never part of the script.
fn spawn_watchdog(id: &str, dir: &Path) -> std::io::Result<()> {
    const SCRIPT: &str = r#"
pid=$1 id=$2 dir=$3
while kill -0 "$pid" 2>/dev/null; do touch "$dir/heartbeats/$id" 2>/dev/null; sleep 1; done
docker rm -f -v "$id" >/dev/null 2>&1 || exit 1
rm -f "$dir/heartbeats/$id"
rmdir "$dir/heartbeats" 2>/dev/null && rm -f "$dir/instance-id" "$dir/start.lock" &&
  rmdir "$dir" 2>/dev/null
state=$(dirname "$dir")
case $(basename "$state") in billing-harness-*) rmdir "$state" 2>/dev/null;; esac
exit 0
"#;
    let status = super::os::detached_sh(SCRIPT, "billing-harness-mock-watchdog")
        .arg(std::process::id().to_string())
        .arg(id)
        .arg(dir)
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "setsid exited with {status}"
        )))
    }
}

/// Removes the product-mock containers of the state directory `state_dir` whose heartbeat has
/// stopped: their watchdog died with their process (a machine restart, a killed process group).
/// Containers of other state folders, or without the label, are never touched. Nothing is reaped
/// while a process of this folder is starting one (it would have no heartbeat yet). Returns
/// their ids.
///
/// # Errors
/// The state folder is not private, or its instance id cannot be written.
pub fn reap_dead(state_dir: &Path) -> Result<Vec<String>, EnvError> {
    let dir = instance_folder(state_dir)?;
    let own = instance_id(&dir)?;
    let Some(_alone) = FileLock::try_exclusive(&dir.join("start.lock"))? else {
        return Ok(Vec::new());
    };
    Ok(super::container::reap(&dir, &own))
}
