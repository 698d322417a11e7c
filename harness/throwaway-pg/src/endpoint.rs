//! Where a PostgreSQL server is and how to reach it: driver options and printable URLs.

use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sqlx::postgres::PgConnectOptions;

use super::EnvError;
use super::conninfo::{self, redact};
use super::secret::Secret;

/// How to reach one server, as stored in a shared instance's state file or read from a URL.
///
/// `Debug` shows no password.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Endpoint {
    /// The URL without the database name: `postgres://user@host:port`.
    pub(crate) url_base: String,
    /// Query string after the database name, with its `?`, or empty.
    pub(crate) url_query: String,
    /// The database the harness administers from (usually `postgres`).
    pub(crate) admin_database: String,
    /// The password: in the URLs handed to tests only on a throwaway server (one with a
    /// `passfile`), never in what is printed.
    pub(crate) password: Option<String>,
    /// A unix socket directory the harness connects through instead of TCP.
    pub(crate) socket_dir: Option<PathBuf>,
    /// A libpq password file holding the password (`0600`, in the private state folder): what
    /// printed `psql` commands name instead of the password. Only a throwaway server has one,
    /// and only its [`Endpoint::url`] carries the password, which a test's own connections need.
    #[serde(default)]
    pub(crate) passfile: Option<PathBuf>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field(
                "admin_url",
                &redact(&self.url_without_password(&self.admin_database)),
            )
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("socket_dir", &self.socket_dir)
            .field("passfile", &self.passfile)
            .finish()
    }
}

impl Endpoint {
    /// A throwaway server on 127.0.0.1 whose superuser `user` has `password`, which `passfile`
    /// holds too.
    pub(crate) fn throwaway(
        port: u16,
        user: &str,
        password: &str,
        socket_dir: Option<PathBuf>,
        passfile: PathBuf,
    ) -> Endpoint {
        Endpoint {
            url_base: format!("postgres://{user}@127.0.0.1:{port}"),
            url_query: String::new(),
            admin_database: "postgres".into(),
            password: Some(password.to_owned()),
            socket_dir,
            passfile: Some(passfile),
        }
    }

    /// An existing server from `HARNESS_DATABASE_URL`.
    pub(crate) fn from_url(url: &str) -> Result<Endpoint, EnvError> {
        let bad = |reason: &str| EnvError::BadVariable {
            var: "HARNESS_DATABASE_URL",
            value: redact(url),
            reason: reason.to_owned(),
        };
        conninfo::parse_given(url, "HARNESS_DATABASE_URL")?;
        let rest = url
            .strip_prefix("postgres://")
            .or_else(|| url.strip_prefix("postgresql://"))
            .unwrap_or(url);
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let (database, query) = match path.trim_start_matches('/').split_once('?') {
            Some((db, q)) => (db, format!("?{q}")),
            None => (path.trim_start_matches('/'), String::new()),
        };
        let (userinfo, hostport) = authority.rsplit_once('@').unwrap_or(("", authority));
        let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
        // Kept decoded, as libpq reads it: `p%40ss` is `p@ss`.
        let password = conninfo::password_in(url).map_err(|e| bad(&e.to_string()))?;
        if hostport.is_empty() {
            return Err(bad("the URL names no host"));
        }
        let at = if user.is_empty() { "" } else { "@" };
        Ok(Endpoint {
            url_base: format!("postgres://{user}{at}{hostport}"),
            url_query: query,
            admin_database: if database.is_empty() {
                "postgres".into()
            } else {
                database.to_owned()
            },
            password,
            socket_dir: None,
            passfile: None,
        })
    }

    /// Driver options for `database` on this server.
    pub(crate) fn options(&self, database: &str) -> PgConnectOptions {
        let mut options = PgConnectOptions::from_str(&self.url_without_password(database)).expect(
            "cannot fail: url_base and url_query come from a URL that parsed when the \
                 endpoint was made (from_url) or from a fixed pattern (throwaway), and database \
                 names are the harness's own or that URL's",
        );
        if let Some(password) = &self.password {
            options = options.password(password);
        }
        if let Some(dir) = &self.socket_dir {
            options = options.socket(dir);
        }
        options
    }

    /// The host in the server's URL: where other programs reach it over TCP (a throwaway
    /// server's `127.0.0.1`, even though the harness itself goes through its unix socket).
    pub(crate) fn host(&self) -> String {
        self.tcp_options().get_host().to_owned()
    }

    /// The TCP port in the server's URL.
    pub(crate) fn port(&self) -> u16 {
        self.tcp_options().get_port()
    }

    /// The user the harness connects as (the URL's; the driver's default, `PGUSER` or the
    /// operating-system user, when it names none).
    pub(crate) fn user(&self) -> String {
        self.tcp_options().get_username().to_owned()
    }

    /// The password the harness connects with, decoded; `None` when the server takes none.
    pub(crate) fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// The URL of `database` with the password in it, on every kind of server: for the program
    /// under test, never for printing.
    pub(crate) fn url_with_password(&self, database: &str) -> Secret {
        Secret::new(conninfo::with_password(
            &self.url_without_password(database),
            self.password.as_deref(),
        ))
    }

    /// The URL's own options, without the password or the socket the harness adds.
    fn tcp_options(&self) -> PgConnectOptions {
        PgConnectOptions::from_str(&format!("{}/{}", self.url_base, self.admin_database))
            .expect("cannot fail: url_base parsed when the endpoint was made")
    }

    /// Options for the administration database.
    pub(crate) fn admin_options(&self) -> PgConnectOptions {
        self.options(&self.admin_database)
    }

    /// The URL handed to tests and tools: with the password on throwaway servers (so that a
    /// test's own connections get in), without it on a server given by URL. Not for printing.
    pub(crate) fn url(&self, database: &str) -> String {
        match &self.passfile {
            Some(_) => self.url_with_password(database).expose().to_owned(),
            None => redact(&self.url_without_password(database)),
        }
    }

    /// `url_base`, then `database`, then `url_query`: a URL with no password in its user
    /// information.
    fn url_without_password(&self, database: &str) -> String {
        format!("{}/{database}{}", self.url_base, self.url_query)
    }

    /// A ready-to-paste `psql` command for `database`, showing no password: on a throwaway
    /// server the URL names the password file (`?passfile=...`), which only this user can read.
    pub(crate) fn psql(&self, database: &str) -> String {
        let url = self.url_without_password(database);
        let url = match &self.passfile {
            Some(passfile) => {
                let join = if self.url_query.is_empty() { '?' } else { '&' };
                // A URI query value: every byte but letters, digits and `/._-` as `%XX`.
                let passfile =
                    conninfo::percent_encode(passfile.as_os_str().as_encoded_bytes(), b"/._-");
                format!("{url}{join}passfile={passfile}")
            }
            None => redact(&url),
        };
        format!("psql '{url}'")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_url_keeps_its_query_and_hides_its_password() {
        let e =
            Endpoint::from_url("postgres://qa:s3cret@db.internal:6432/postgres?sslmode=disable")
                .unwrap();
        assert_eq!(e.admin_database, "postgres");
        assert_eq!(
            e.url("bh_x"),
            "postgres://qa@db.internal:6432/bh_x?sslmode=disable"
        );
        assert_eq!(e.password.as_deref(), Some("s3cret"));
    }

    #[test]
    fn a_password_in_the_query_is_hidden_too() {
        let e = Endpoint::from_url("postgres://qa@db:6432/postgres?password=s3cret").unwrap();
        assert_eq!(e.url("bh_x"), "postgres://qa@db:6432/bh_x?password=***");
        assert_eq!(
            redact("postgres://qa:pa:ss@w@db/x?a=1&PASSWORD=s3cret"),
            "postgres://qa:***@db/x?a=1&PASSWORD=***"
        );
        assert_eq!(redact("not a url: s3cret"), "not a url: s3cret");
        assert_eq!(
            redact("postgres://USER:PASSWORD@HOST:PORT/DATABASE"),
            "postgres://USER:PASSWORD@HOST:PORT/DATABASE"
        );
        assert_eq!(redact("postgres://u:PASSWORDx@h/d"), "postgres://u:***@h/d");
    }

    #[test]
    fn bad_urls_are_refused_without_showing_the_password() {
        let err = Endpoint::from_url("mysql://root:pw@host/db").unwrap_err();
        assert!(err.to_string().contains("root:***@host"), "{err}");
        assert!(Endpoint::from_url("postgres://u:pw@host:notaport/db").is_err());
    }

    #[test]
    fn a_percent_encoded_password_is_decoded_as_libpq_decodes_it() {
        let e = Endpoint::from_url("postgres://q%40a:p%40ss%25@db:6432/postgres").unwrap();
        assert_eq!(e.password.as_deref(), Some("p@ss%"));
        // The user name stays encoded in the URL, which the driver decodes.
        assert_eq!(e.admin_options().get_username(), "q@a");
        assert_eq!(e.url("bh_x"), "postgres://q%40a@db:6432/bh_x");
        for bad in [
            "postgres://qa:Secret1%zz@db/postgres",
            "postgres://qa:Secret1%00@db/postgres",
            "postgres://qa:Secret1%ff@db/postgres",
        ] {
            let err = Endpoint::from_url(bad).unwrap_err().to_string();
            assert!(err.starts_with("HARNESS_DATABASE_URL="), "{err}");
            assert!(!err.contains("Secret1"), "{err}");
        }
    }

    #[test]
    fn a_key_value_string_is_refused_without_showing_its_password() {
        let err = Endpoint::from_url("host=db user=qa password='Secret 1' dbname=postgres")
            .unwrap_err()
            .to_string();
        assert!(err.contains("password=***"), "{err}");
        assert!(err.contains("key=value"), "{err}");
        assert!(!err.contains("Secret"), "{err}");
    }

    #[test]
    fn host_and_port_are_the_urls_even_with_a_socket() {
        let e = Endpoint::throwaway(
            5433,
            "postgres",
            "pw",
            Some("/tmp/socket".into()),
            "/tmp/pgpass".into(),
        );
        assert_eq!((e.host(), e.port()), ("127.0.0.1".to_owned(), 5433));
        let e = Endpoint::from_url("postgres://qa:pw@db.internal:6432/postgres").unwrap();
        assert_eq!((e.host(), e.port()), ("db.internal".to_owned(), 6432));
    }

    #[test]
    fn a_throwaway_url_carries_the_password_but_psql_and_debug_never_show_it() {
        let e = Endpoint::throwaway(
            5433,
            "postgres",
            "0f1e2d3c",
            None,
            "/dev/shm/billing-harness-7/it's/pgpass".into(),
        );
        assert_eq!(
            e.url("bh_1"),
            "postgres://postgres:0f1e2d3c@127.0.0.1:5433/bh_1"
        );
        assert_eq!(
            e.psql("bh_1"),
            "psql 'postgres://postgres@127.0.0.1:5433/bh_1?passfile=/dev/shm/billing-harness-7/it%27s/pgpass'"
        );
        let debug = format!("{e:?}");
        assert!(!debug.contains("0f1e2d3c"), "{debug}");
        assert!(debug.contains("password: Some(\"***\")"), "{debug}");
    }

    #[test]
    fn the_url_with_the_password_carries_it_on_every_server() {
        let e =
            Endpoint::from_url("postgres://qa:p%40ss@db:6432/postgres?sslmode=disable").unwrap();
        assert_eq!((e.user().as_str(), e.password()), ("qa", Some("p@ss")));
        assert_eq!(
            e.url_with_password("bh_x").expose(),
            "postgres://qa:p%40ss@db:6432/bh_x?sslmode=disable"
        );
        assert_eq!(e.url("bh_x"), "postgres://qa@db:6432/bh_x?sslmode=disable");
        let e = Endpoint::from_url("postgres://qa@db/postgres?password=s%20c").unwrap();
        assert_eq!(e.password(), Some("s c"));
        assert_eq!(e.admin_options().get_username(), "qa");
        let e = Endpoint::from_url("postgres://qa@db/postgres").unwrap();
        assert_eq!(e.password(), None);
        assert_eq!(
            e.url_with_password("bh_x").expose(),
            "postgres://qa@db/bh_x"
        );
        let e = Endpoint::throwaway(5433, "postgres", "0f1e", None, "/tmp/pgpass".into());
        assert_eq!(
            (e.url_with_password("bh_1").expose(), e.url("bh_1").as_str()),
            (
                "postgres://postgres:0f1e@127.0.0.1:5433/bh_1",
                "postgres://postgres:0f1e@127.0.0.1:5433/bh_1"
            )
        );
    }

    #[test]
    fn a_server_urls_debug_and_psql_show_no_password() {
        let e =
            Endpoint::from_url("postgres://qa:s3cret@db:6432/postgres?password=s3cret").unwrap();
        let debug = format!("{e:?}");
        assert!(!debug.contains("s3cret"), "{debug}");
        assert_eq!(
            e.psql("bh_1"),
            "psql 'postgres://qa@db:6432/bh_1?password=***'"
        );
    }
}
