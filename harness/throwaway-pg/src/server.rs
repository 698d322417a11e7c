//! Choosing a backend and getting a server from it: `url`, `local`, `container` or `auto`.

use std::path::PathBuf;

use sqlx::Connection;

use super::EnvError;
use super::admin::KEPT_COMMENT;
use super::config::{Config, Footprint};
use super::conninfo::redact;
use super::container::{self, ContainerLauncher};
pub use super::decide::backend::Backend;
use super::decide::backend::pick;
use super::decide::keep::KeptMark;
use super::endpoint::Endpoint;
use super::instance::{self, Membership};
use super::local::{Binaries, LocalLauncher};

/// A reachable server, and for throwaway ones this process's membership that keeps it up.
#[derive(Debug)]
pub(crate) struct Server {
    pub(crate) backend: Backend,
    pub(crate) endpoint: Endpoint,
    pub(crate) membership: Option<Membership>,
    /// Joined without a probe ([`instance::join_running`]): if the first connection fails, the
    /// caller connects again with `quick` off, which checks the server and replaces a dead one.
    pub(crate) joined_unprobed: bool,
}

/// Resolves `auto` the documented way (`decide::backend`): url, then the run's server, then
/// container, then local.
pub(crate) fn resolve(config: &Config) -> Result<Backend, EnvError> {
    pick(
        config.backend,
        config.database_url.is_some(),
        |backend| instance::running(&config.state_dir.join(backend.to_string())),
        || {
            container::docker_answers()
                .and_then(|_| container::image_ready(&config.image))
                .map(drop)
        },
        || match Binaries::find(config.pg_bin.as_deref()) {
            Ok(_) => Ok(()),
            Err(EnvError::Unavailable { reason, .. }) => Err(reason),
            Err(other) => Err(super::error::with_causes(&other)),
        },
    )
    .map_err(|details| EnvError::NoBackend { details })
}

/// Gets a server from the configured backend, starting or joining a throwaway one if needed.
/// With `quick`, a throwaway server that runs is joined without a probe (see [`Server`]).
pub(crate) async fn connect(config: &Config, quick: bool) -> Result<Server, EnvError> {
    let backend = resolve(config)?;
    if quick && backend != Backend::Url {
        let dir = config.state_dir.join(backend.to_string());
        if let Some(membership) = instance::join_running(&dir)? {
            if backend == Backend::Local {
                super::error::set_space_folder(&config.state_dir, config.footprint().bytes());
            }
            return Ok(Server {
                backend,
                endpoint: membership.instance.endpoint.clone(),
                membership: Some(membership),
                joined_unprobed: true,
            });
        }
    }
    match backend {
        Backend::Url => {
            let url = config
                .database_url
                .as_deref()
                .ok_or_else(|| EnvError::Unavailable {
                    backend: "url",
                    reason: "HARNESS_DATABASE_URL is not set".into(),
                    fix: "set HARNESS_DATABASE_URL=postgres://USER:PASSWORD@HOST:PORT/postgres, or HARNESS_POSTGRES=auto".into(),
                })?;
            let endpoint = Endpoint::from_url(url)?;
            if !instance::answers(&endpoint).await {
                return Err(EnvError::Unavailable {
                    backend: "url",
                    reason: format!("nothing answered `select 1` at {} within 3 s", redact(url)),
                    fix: "check the host, port, user and password in HARNESS_DATABASE_URL, and that the server runs".into(),
                });
            }
            Ok(Server {
                backend,
                endpoint,
                membership: None,
                joined_unprobed: false,
            })
        }
        Backend::Local => {
            let launcher = LocalLauncher::new(config.pg_bin.as_deref())?;
            super::error::set_space_folder(&config.state_dir, config.footprint().bytes());
            shared(config, backend, &launcher).await
        }
        Backend::Container => {
            if let Err(reason) = container::docker_answers() {
                return Err(EnvError::Unavailable {
                    backend: "container",
                    reason,
                    fix: "start a Docker engine (or set DOCKER_HOST), or use HARNESS_POSTGRES=local with PostgreSQL binaries installed".into(),
                });
            }
            let launcher = ContainerLauncher {
                image: config.image.clone(),
            };
            shared(config, backend, &launcher).await
        }
    }
}

/// Joins (or starts) the throwaway server of `backend` under the state directory.
async fn shared(
    config: &Config,
    backend: Backend,
    launcher: &impl instance::Launch,
) -> Result<Server, EnvError> {
    let dir = config.state_dir.join(backend.to_string());
    let membership = instance::join(&dir, config.linger, launcher).await?;
    Ok(Server {
        backend,
        endpoint: membership.instance.endpoint.clone(),
        membership: Some(membership),
        joined_unprobed: false,
    })
}

/// What one backend can do on this machine, for `cargo xtask doctor`.
#[derive(Debug, Clone)]
pub struct BackendStatus {
    /// The backend.
    pub backend: Backend,
    /// `Ok` with what it would use, or `Err` with why it cannot run and the fix.
    pub status: Result<String, String>,
}

/// Checks every backend without starting anything, and says which one `auto` picks.
pub async fn doctor(config: &Config) -> (Vec<BackendStatus>, Result<Backend, EnvError>) {
    let url = match &config.database_url {
        None => Err("HARNESS_DATABASE_URL is not set".to_owned()),
        Some(url) => match Endpoint::from_url(url) {
            Err(e) => Err(e.to_string()),
            Ok(endpoint) if instance::answers(&endpoint).await => {
                Ok(format!("{} answers", redact(url)))
            }
            Ok(_) => Err(format!("{} does not answer `select 1`", redact(url))),
        },
    };
    let container = match container::docker_answers() {
        Err(reason) => Err(format!("{reason}; start Docker or set DOCKER_HOST")),
        Ok(version) => container::image_ready(&config.image)
            .map(|image| format!("Docker engine {version}; {image}"))
            .map_err(|reason| format!("Docker engine {version} answers, but {reason}")),
    };
    let local = Binaries::find(config.pg_bin.as_deref())
        .map(|b| format!("{} in {}", b.version(), b.dir.display()))
        .map_err(|e| super::error::with_causes(&e));
    let statuses = vec![
        BackendStatus {
            backend: Backend::Url,
            status: url,
        },
        BackendStatus {
            backend: Backend::Container,
            status: container,
        },
        BackendStatus {
            backend: Backend::Local,
            status: local,
        },
    ];
    (statuses, resolve(config))
}

/// The state directory, how it was chosen, and its room, for `cargo xtask doctor`.
#[derive(Debug, Clone)]
pub struct SpaceReport {
    /// The state directory (`HARNESS_STATE_DIR` or the default).
    pub state_dir: PathBuf,
    /// How it was chosen, and why.
    pub choice: String,
    /// The size of its file system in bytes, when `df` could tell.
    pub size: Option<u64>,
    /// The bytes free there, when `df` could tell.
    pub free: Option<u64>,
    /// What a local server needs there on this machine.
    pub footprint: Footprint,
    /// What the state directory holds now, in bytes (0 when it does not exist).
    pub in_use: u64,
}

/// Measures the state directory of `config` without starting anything.
pub fn space_report(config: &Config) -> SpaceReport {
    let space = super::disk::space(&config.state_dir);
    SpaceReport {
        state_dir: config.state_dir.clone(),
        choice: config.state_dir_choice().to_owned(),
        size: space.map(|s| s.size),
        free: space.map(|s| s.free),
        footprint: config.footprint(),
        in_use: super::disk::disk_usage(&config.state_dir),
    }
}

/// A database kept for a failed test.
#[derive(Debug, Clone)]
pub struct KeptDatabase {
    /// Its name (`bh_...`).
    pub name: String,
    /// Its size in bytes (`pg_database_size`).
    pub bytes: u64,
    /// Why it was kept (`failed test <name>`).
    pub reason: String,
    /// The operating-system user who kept it (`name (uid N)`), if its mark says.
    pub user: Option<String>,
}

/// The databases kept for failed tests on the server `config` uses, if that server runs: `None`
/// when no throwaway server runs (nothing is started to find out).
///
/// # Errors
/// The server runs but could not be queried.
pub async fn kept_databases(config: &Config) -> Result<Option<Vec<KeptDatabase>>, EnvError> {
    let endpoint = match resolve(config)? {
        Backend::Url => match &config.database_url {
            Some(url) => Endpoint::from_url(url)?,
            None => return Ok(None),
        },
        backend => match instance::read(&config.state_dir.join(backend.to_string()))? {
            Some(instance) => instance.endpoint,
            None => return Ok(None),
        },
    };
    if !instance::answers(&endpoint).await {
        return Ok(None);
    }
    let mut conn = sqlx::PgConnection::connect_with(&endpoint.admin_options())
        .await
        .map_err(EnvError::db("connect to the server to list kept databases"))?;
    let rows: Vec<(String, i64, String)> = sqlx::query_as(
        "select datname::text, pg_database_size(oid), shobj_description(oid, 'pg_database') \
         from pg_database where datname like 'bh\\_%' \
         and shobj_description(oid, 'pg_database') like $1 || '%' order by datname",
    )
    .bind(KEPT_COMMENT)
    .fetch_all(&mut conn)
    .await
    .map_err(EnvError::db("list the kept databases"))?;
    let _ = conn.close().await;
    Ok(Some(
        rows.into_iter()
            .map(|(name, bytes, comment)| {
                let mark = KeptMark::parse(&comment);
                KeptDatabase {
                    name,
                    bytes: u64::try_from(bytes).unwrap_or(0),
                    reason: mark.as_ref().map_or(comment.clone(), |m| m.reason.clone()),
                    user: mark.and_then(|m| m.user),
                }
            })
            .collect(),
    ))
}
