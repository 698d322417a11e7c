//! Which backend serves the databases: the one `HARNESS_POSTGRES` names, or, for `auto`, the
//! first that can: `url` when `HARNESS_DATABASE_URL` is set, then a throwaway server of the run
//! that is up already, then `container`, then `local`. The probes (a state folder, Docker, the
//! binaries) are given, and each runs only when the ones before it did not decide.

use std::fmt;

use crate::config::BackendChoice;

/// A backend that actually serves databases (what `auto` resolved to).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An existing server from `HARNESS_DATABASE_URL`.
    Url,
    /// A throwaway cluster from local `initdb` and `postgres` binaries.
    Local,
    /// A throwaway testcontainers container.
    Container,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Url => "url",
            Backend::Local => "local",
            Backend::Container => "container",
        })
    }
}

/// The backend for `choice`. For `auto`: `url` when `url_set`; else the first of `container`
/// and `local` whose throwaway server is `running` (every process of a run takes the same one,
/// without asking Docker again); else `container` when `docker` says the engine answers and has
/// the image; else `local` when `local` finds the binaries. When none can, the error says why
/// each could not (`docker`'s and `local`'s reasons).
pub(crate) fn pick(
    choice: BackendChoice,
    url_set: bool,
    running: impl Fn(Backend) -> bool,
    docker: impl FnOnce() -> Result<(), String>,
    local: impl FnOnce() -> Result<(), String>,
) -> Result<Backend, String> {
    match choice {
        BackendChoice::Url => return Ok(Backend::Url),
        BackendChoice::Local => return Ok(Backend::Local),
        BackendChoice::Container => return Ok(Backend::Container),
        BackendChoice::Auto => {}
    }
    if url_set {
        return Ok(Backend::Url);
    }
    if let Some(backend) = [Backend::Container, Backend::Local]
        .into_iter()
        .find(|b| running(*b))
    {
        return Ok(backend);
    }
    // The container backend only when the engine answers and has the image (or pulls it): an
    // engine without a registry must not take the run from local binaries.
    let docker = match docker() {
        Ok(()) => return Ok(Backend::Container),
        Err(reason) => reason,
    };
    match local() {
        Ok(()) => Ok(Backend::Local),
        Err(local) => Err(format!(
            "HARNESS_DATABASE_URL is not set; container: {docker}; local: {local}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `pick` for `auto` with the URL set or not, the server running (if any), and whether
    /// Docker and the binaries answer; the probes that ran are recorded.
    fn auto(
        url_set: bool,
        running: Option<Backend>,
        docker: bool,
        local: bool,
    ) -> (Result<Backend, String>, Vec<&'static str>) {
        let probed = std::cell::RefCell::new(Vec::new());
        let picked = pick(
            BackendChoice::Auto,
            url_set,
            |b| {
                probed.borrow_mut().push(match b {
                    Backend::Container => "running container",
                    Backend::Local => "running local",
                    Backend::Url => "running url",
                });
                running == Some(b)
            },
            || {
                probed.borrow_mut().push("docker");
                docker.then_some(()).ok_or_else(|| "no engine".to_owned())
            },
            || {
                probed.borrow_mut().push("local");
                local.then_some(()).ok_or_else(|| "no initdb".to_owned())
            },
        );
        (picked, probed.into_inner())
    }

    #[test]
    fn backends_show_as_their_names() {
        let names = [Backend::Url, Backend::Local, Backend::Container].map(|b| b.to_string());
        assert_eq!(names, ["url", "local", "container"]);
    }

    #[test]
    fn a_named_backend_is_taken_without_a_probe() {
        for (choice, backend) in [
            (BackendChoice::Url, Backend::Url),
            (BackendChoice::Local, Backend::Local),
            (BackendChoice::Container, Backend::Container),
        ] {
            let picked = pick(
                choice,
                false,
                |_| panic!("probed a running server"),
                || panic!("probed Docker"),
                || panic!("probed the binaries"),
            );
            assert_eq!(picked, Ok(backend));
        }
    }

    #[test]
    fn auto_takes_the_url_first_without_a_probe() {
        assert_eq!(auto(true, None, true, true), (Ok(Backend::Url), vec![]));
    }

    #[test]
    fn auto_joins_the_runs_server_before_asking_docker() {
        assert_eq!(
            auto(false, Some(Backend::Container), false, true),
            (Ok(Backend::Container), vec!["running container"])
        );
        assert_eq!(
            auto(false, Some(Backend::Local), true, true),
            (
                Ok(Backend::Local),
                vec!["running container", "running local"]
            )
        );
    }

    #[test]
    fn auto_takes_docker_then_the_binaries() {
        let probes = vec!["running container", "running local", "docker"];
        assert_eq!(
            auto(false, None, true, true),
            (Ok(Backend::Container), probes.clone())
        );
        let mut with_local = probes;
        with_local.push("local");
        assert_eq!(
            auto(false, None, false, true),
            (Ok(Backend::Local), with_local)
        );
    }

    #[test]
    fn auto_without_any_backend_says_why_each_cannot() {
        assert_eq!(
            auto(false, None, false, false).0,
            Err("HARNESS_DATABASE_URL is not set; container: no engine; local: no initdb".into())
        );
    }
}
