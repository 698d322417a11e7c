//! The `container` backend: a throwaway PostgreSQL container started with testcontainers, shared
//! by the run's processes like a local cluster and removed by the same watchdog.
//!
//! Only its user can open it: its superuser has a random password per container (the image's
//! `scram-sha-256`, no `trust`), and its port is published on 127.0.0.1 only, whatever address
//! the engine publishes on by default.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use testcontainers::bollard::models::{HostConfig, PortBinding};
use testcontainers::core::{IntoContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{GenericImage, ImageExt};

use super::EnvError;
use super::endpoint::Endpoint;
use super::instance::{self, Instance, Launch};
use super::password;
use super::stop::{self, Stop};

/// A `HostConfig` change that publishes the container's TCP `port` on 127.0.0.1 only, on a port
/// the engine picks, instead of on every interface (testcontainers' publish-all, or an engine's
/// default `0.0.0.0` and `[::]`).
pub(crate) fn publish_on_loopback(port: u16) -> impl Fn(&mut HostConfig) + Send + Sync + 'static {
    move |config: &mut HostConfig| {
        config.publish_all_ports = Some(false);
        config.port_bindings = Some(
            [(
                format!("{port}/tcp"),
                Some(vec![PortBinding {
                    host_ip: Some("127.0.0.1".into()),
                    host_port: Some(String::new()),
                }]),
            )]
            .into_iter()
            .collect(),
        );
    }
}

/// Starts containers from an image such as `postgres:16-alpine`.
#[derive(Debug)]
pub(crate) struct ContainerLauncher {
    pub(crate) image: String,
}

/// Whether a Docker engine answers here; `Err` says why not.
pub(crate) fn docker_answers() -> Result<String, String> {
    docker(&["version", "--format", "{{.Server.Version}}"], 100)
}

/// Whether `image` is on the engine, or can be pulled; `Err` says why not. A pull that cannot
/// reach a registry fails fast (no such host), so a machine without one falls back at once.
pub(crate) fn image_ready(image: &str) -> Result<String, String> {
    if docker(&["image", "inspect", "--format", "{{.Id}}", image], 100).is_ok() {
        return Ok(format!("image {image} is present"));
    }
    // Up to two minutes: a first pull of a PostgreSQL image over a slow link.
    match docker(&["pull", "--quiet", image], 2400) {
        Ok(_) => Ok(format!("image {image} was pulled")),
        Err(reason) => Err(format!(
            "image {image} is not on the engine and cannot be pulled ({reason}); build the local one with `cargo xtask images` and set HARNESS_POSTGRES_IMAGE"
        )),
    }
}

/// Runs `docker ARGS`, giving up after `ticks` × 50 ms; its stdout, or why it failed.
pub(crate) fn docker(args: &[&str], ticks: u32) -> Result<String, String> {
    let mut child = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("the `docker` command could not run ({e})"))?;
    // A client without an engine usually fails at once, but a dead socket may hang: give up
    // after a while.
    for _ in 0..ticks {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            let output = child.wait_with_output().map_err(|e| e.to_string())?;
            let stdout = String::from_utf8_lossy(&output.stdout).trim().to_owned();
            return if status.success() && !stdout.is_empty() {
                Ok(stdout)
            } else {
                let stderr = String::from_utf8_lossy(&output.stderr);
                let first = stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
                Err(if args.first() == Some(&"version") {
                    format!("no Docker engine answers ({})", first.trim())
                } else {
                    first.trim().to_owned()
                })
            };
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    Err(format!(
        "`docker {}` gave no answer within {} s",
        args.join(" "),
        ticks / 20
    ))
}

/// The label value naming a state folder: the containers started for it carry it.
pub(crate) fn state_label(dir: &Path) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(dir.to_string_lossy().as_bytes());
    format!("{digest:x}")[..16].to_owned()
}

/// Removes what dead runs left: every container of this state folder (a launch happens only when
/// no live instance holds the folder, so any container of it is a leftover, e.g. of a run whose
/// watchdog was killed too), and any harness container older than a day. Returns their ids.
pub(crate) fn reap(dir: &Path) -> Vec<String> {
    let mut gone = Vec::new();
    let ours = docker(
        &[
            "ps",
            "-aq",
            "--filter",
            &format!("label=billing-harness.state={}", state_label(dir)),
        ],
        200,
    )
    .unwrap_or_default();
    let now = super::wall_clock::wall_now().timestamp();
    let all = docker(
        &[
            "ps",
            "-a",
            "--filter",
            "label=billing-harness.role=postgres",
            "--format",
            "{{.ID}} {{.Label \"billing-harness.started\"}}",
        ],
        200,
    )
    .unwrap_or_default();
    let old = all.lines().filter_map(|line| {
        let (id, started) = line.split_once(' ')?;
        let started: i64 = started.trim().parse().ok()?;
        (now - started > 24 * 3600).then_some(id)
    });
    for id in ours.split_whitespace().chain(old) {
        if !gone.iter().any(|g: &String| g == id)
            && stop::is_container_id(id)
            && docker(&["rm", "-f", "-v", id], 400).is_ok()
        {
            gone.push(id.to_owned());
        }
    }
    gone
}

impl Launch for ContainerLauncher {
    async fn launch(&self, dir: &Path, generation: &str) -> Result<Instance, EnvError> {
        reap(dir);
        let password = password::new_password();
        let passfile = password::write_passfile(dir, &password)?;
        let (name, tag) = self
            .image
            .rsplit_once(':')
            .unwrap_or((&self.image, "latest"));
        let start_error = |reason: String| EnvError::Start {
            what: format!("a container from {}", self.image),
            reason,
        };
        let container = GenericImage::new(name, tag)
            .with_exposed_port(5432.tcp())
            .with_wait_for(WaitFor::message_on_stderr(
                "database system is ready to accept connections",
            ))
            // The data in memory, as a local cluster in /dev/shm: clones copy files, and the
            // engine's layered file system makes every copy slow.
            .with_mount(testcontainers::core::Mount::tmpfs_mount(
                "/var/lib/postgresql/data",
            ))
            // The image's own default for other hosts: scram-sha-256. It stores a SCRAM secret
            // as it is, so `docker inspect` shows no password.
            .with_env_var("POSTGRES_PASSWORD", password::scram_secret(&password))
            .with_host_config_modifier(publish_on_loopback(5432))
            .with_cmd([
                "postgres",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=200",
                "-c",
                "max_wal_size=2GB",
            ])
            .with_label("billing-harness.generation", generation)
            .with_label("billing-harness.role", "postgres")
            .with_label("billing-harness.state", state_label(dir))
            .with_label(
                "billing-harness.started",
                super::wall_clock::wall_now().timestamp().to_string(),
            )
            .with_startup_timeout(Duration::from_secs(120))
            .start()
            .await
            .map_err(|e| start_error(e.to_string()))?;
        let stop = Stop::Container {
            id: container.id().to_owned(),
        };
        let port = match container.get_host_port_ipv4(5432).await {
            Ok(port) => port,
            Err(e) => {
                stop.run(dir);
                return Err(start_error(e.to_string()));
            }
        };
        // The container must outlive this process: the watchdog removes it, not our drop.
        std::mem::forget(container);
        let endpoint = Endpoint::throwaway(port, "postgres", &password, None, passfile);
        // The image restarts the server once after initialising; wait for the final one.
        if let Err(reason) = instance::wait_ready(&endpoint, Duration::from_secs(60), || true).await
        {
            stop.run(dir);
            return Err(start_error(reason));
        }
        Ok(Instance {
            generation: generation.to_owned(),
            endpoint,
            stop,
        })
    }
}
