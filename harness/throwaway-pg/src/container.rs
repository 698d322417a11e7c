//! The `container` backend: a throwaway PostgreSQL container started with testcontainers, shared
//! by the run's processes like a local cluster and removed by the same watchdog.
//!
//! Each state folder's container instance has a random id (`<state_dir>/container/instance-id`)
//! that labels every container it starts; the watchdog renews the container's heartbeat
//! (`heartbeats/<id>`) every second. A launch reaps only its own instance's containers whose
//! heartbeat has stopped (`decide::containers`): never another state folder's, another CI job's
//! on the same engine, or one without the label.
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
use super::decide::containers::{GRACE, Seen, doomed};
use super::endpoint::Endpoint;
use super::instance::{self, Instance, Launch};
use super::password;
use super::private;
use super::stop::{self, Stop, heartbeat_path};

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

/// The label naming the container instance (of one state folder) that started a container.
pub(crate) const INSTANCE_LABEL: &str = "billing-harness.instance";

/// The random id of the container instance of the private folder `dir`, recorded in
/// `dir/instance-id` (`0600`) by the first process to ask and kept for the folder's life:
/// processes that ask at once all get the one that was linked into place first.
pub(crate) fn instance_id(dir: &Path) -> Result<String, EnvError> {
    let path = dir.join("instance-id");
    let valid = |text: &str| text.len() == 32 && text.bytes().all(|b| b.is_ascii_hexdigit());
    if let Ok(text) = std::fs::read_to_string(&path)
        && valid(text.trim())
    {
        return Ok(text.trim().to_owned());
    }
    let id = format!("{:032x}", rand::random::<u128>());
    let draft = dir.join(format!("instance-id.{}", std::process::id()));
    private::write(&draft, id.as_bytes())?;
    // A link fails if the name is taken: by another process's id, or by a damaged file.
    let linked = std::fs::hard_link(&draft, &path);
    let outcome = match std::fs::read_to_string(&path) {
        Ok(text) if valid(text.trim()) => Ok(text.trim().to_owned()),
        _ => std::fs::rename(&draft, &path)
            .map(|()| id)
            .map_err(EnvError::io(format!("write {}", path.display()))),
    };
    let _ = (linked, std::fs::remove_file(&draft));
    outcome
}

/// Renews the heartbeat of container `id` (the watchdog does the same every second in `sh`).
pub(crate) fn beat(dir: &Path, id: &str) -> Result<(), EnvError> {
    private::ensure(&dir.join("heartbeats"))?;
    private::write(&heartbeat_path(dir, id), b"")
}

/// Seconds since the heartbeat of container `id` was renewed, at `now`; `None` when it has none.
fn heartbeat_age(dir: &Path, id: &str, now: i64) -> Option<i64> {
    let renewed = std::fs::metadata(heartbeat_path(dir, id))
        .and_then(|meta| meta.modified())
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    Some(now - i64::try_from(renewed.as_secs()).ok()?)
}

/// Removes what dead runs of this state folder left: the containers labelled with its instance
/// id `own` whose heartbeat under `dir` is missing or older than the grace
/// (`decide::containers`). Containers of other instances, and any without the label, are never
/// touched. Returns the ids removed.
pub(crate) fn reap(dir: &Path, own: &str) -> Vec<String> {
    let listed = docker(
        &[
            "ps",
            "-a",
            "--no-trunc",
            "--filter",
            "label=billing-harness.role",
            "--format",
            &format!("{{{{.ID}}}} {{{{.Label \"{INSTANCE_LABEL}\"}}}}"),
        ],
        200,
    )
    .unwrap_or_default();
    let now = super::wall_clock::wall_now().timestamp();
    let seen: Vec<Seen> = listed
        .lines()
        .filter_map(|line| {
            let (id, instance) = line.split_once(' ').unwrap_or((line, ""));
            let id = id.trim();
            stop::is_container_id(id).then(|| Seen {
                id: id.to_owned(),
                instance: instance.trim().to_owned(),
                heartbeat_age: heartbeat_age(dir, id, now),
            })
        })
        .collect();
    doomed(&seen, own, GRACE)
        .into_iter()
        .filter(|id| docker(&["rm", "-f", "-v", id], 400).is_ok())
        .inspect(|id| {
            let _ = std::fs::remove_file(heartbeat_path(dir, id));
        })
        .collect()
}

impl Launch for ContainerLauncher {
    async fn launch(&self, dir: &Path, generation: &str) -> Result<Instance, EnvError> {
        let own = instance_id(dir)?;
        reap(dir, &own);
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
            .with_label(INSTANCE_LABEL, own.as_str())
            .with_startup_timeout(Duration::from_secs(120))
            .start()
            .await
            .map_err(|e| start_error(e.to_string()))?;
        let id = container.id().to_owned();
        let stop = Stop::Container { id: id.clone() };
        // Alive from now on: renewed by the watchdog once this launch returns (under the same
        // `setup.lock`, which keeps this folder's reaper away meanwhile).
        if let Err(e) = beat(dir, &id) {
            stop.run(dir);
            return Err(e);
        }
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
        beat(dir, &id)?;
        Ok(Instance {
            generation: generation.to_owned(),
            endpoint,
            stop,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An image on the engine to create (never start) labelled containers from, or why not.
    fn image() -> Option<String> {
        let why = match (docker_answers(), std::env::var("HARNESS_POSTGRES_IMAGE")) {
            (Ok(_), Ok(image)) if image_ready(&image).is_ok() => return Some(image),
            (Err(why), _) => why,
            _ => "HARNESS_POSTGRES_IMAGE is not set or not on the engine".into(),
        };
        assert!(
            std::env::var("CI").as_deref() != Ok("true") || std::env::var("DOCKER_HOST").is_err(),
            "the container reaper cannot be tested in CI: {why}"
        );
        println!("skipped: the container reaper: {why}");
        None
    }

    fn create(image: &str, labels: &[String]) -> String {
        let mut args = vec!["create".to_owned()];
        for label in labels {
            args.extend(["--label".to_owned(), label.clone()]);
        }
        args.push(image.to_owned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let short = docker(&args, 400).unwrap();
        docker(&["inspect", "--format", "{{.Id}}", &short], 100).unwrap()
    }

    /// Sets the heartbeat of `id` as renewed `ago` seconds before now.
    fn beat_ago(dir: &Path, id: &str, ago: i64) {
        beat(dir, id).unwrap();
        let at = super::super::wall_clock::wall_now().timestamp() - ago;
        let at = std::time::UNIX_EPOCH + Duration::from_secs(at.try_into().unwrap());
        let file = std::fs::File::options()
            .write(true)
            .open(heartbeat_path(dir, id))
            .unwrap();
        file.set_modified(at).unwrap();
    }

    #[test]
    fn the_reaper_removes_only_its_own_instances_containers_whose_heartbeat_stopped() {
        let Some(image) = image() else {
            return;
        };
        let dir = crate::scratch_dir("reap-containers");
        private::ensure(&dir).unwrap();
        let own = instance_id(&dir).unwrap();
        assert_eq!(instance_id(&dir).unwrap(), own, "the id is kept");
        let other = format!("{:032x}", rand::random::<u128>());
        let role = "billing-harness.role=postgres".to_owned();
        let mine = |rest: &[&str]| {
            let mut labels = vec![role.clone(), format!("{INSTANCE_LABEL}={own}")];
            labels.extend(rest.iter().map(|l| (*l).to_owned()));
            create(&image, &labels)
        };
        let no_heartbeat = mine(&[]);
        let inside = mine(&[]);
        beat_ago(&dir, &inside, GRACE - 2);
        let outside = mine(&[]);
        beat_ago(&dir, &outside, GRACE + 2);
        let foreign = create(&image, &[role.clone(), format!("{INSTANCE_LABEL}={other}")]);
        let unlabelled = create(&image, std::slice::from_ref(&role));
        let bare = create(&image, &[]);

        let mut reaped = reap(&dir, &own);
        reaped.sort();
        let exists = |id: &str| docker(&["inspect", "--format", "{{.Id}}", id], 100).is_ok();
        let survivors = [&inside, &foreign, &unlabelled, &bare].map(|id| exists(id));
        for id in [
            &no_heartbeat,
            &inside,
            &outside,
            &foreign,
            &unlabelled,
            &bare,
        ] {
            let _ = docker(&["rm", "-f", "-v", id], 400);
        }
        let heartbeat_left = heartbeat_path(&dir, &outside).exists();
        let _ = std::fs::remove_dir_all(&dir);
        let mut expected = vec![no_heartbeat, outside];
        expected.sort();
        assert_eq!(reaped, expected);
        assert_eq!(
            survivors, [true; 4],
            "inside the grace, foreign, unlabelled, bare"
        );
        assert!(
            !heartbeat_left,
            "a reaped container's heartbeat goes with it"
        );
    }
}
