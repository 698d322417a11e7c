//! What the broker hands a user: a database leased from a template, and how it was cloned.

use super::endpoint::Endpoint;
use super::secret::Secret;
use super::server::Backend;

/// A database the broker made for one user.
#[derive(Debug, Clone)]
pub struct Lease {
    /// The database's name, `bh_<template hash>_<process token>_<n>`.
    pub name: String,
    /// Where it lives.
    pub(crate) endpoint: Endpoint,
    /// The backend serving it.
    pub backend: Backend,
    /// Whether it came from the warm pool (cloned ahead) rather than being cloned for the asker.
    pub warm: bool,
    /// The connection slots it holds.
    pub(crate) slots: Vec<u32>,
}

impl Lease {
    /// Driver options for this database.
    pub fn connect_options(&self) -> sqlx::postgres::PgConnectOptions {
        self.endpoint.options(&self.name)
    }

    /// Its URL (with the password only on throwaway servers; see [`Lease::url_with_password`]).
    pub fn url(&self) -> String {
        self.endpoint.url(&self.name)
    }

    /// Its URL with the password, on every backend, for the program under test.
    pub fn url_with_password(&self) -> Secret {
        self.endpoint.url_with_password(&self.name)
    }

    /// The user the harness connects as.
    pub fn user(&self) -> String {
        self.endpoint.user()
    }

    /// The user's password (empty when the server takes none).
    pub fn password(&self) -> Secret {
        Secret::new(self.endpoint.password().unwrap_or_default())
    }

    /// A ready-to-paste `psql` command.
    pub fn psql_command(&self) -> String {
        self.endpoint.psql(&self.name)
    }

    /// The host other programs reach the server at (the TCP address, even where the harness
    /// itself goes through a unix socket).
    pub fn host(&self) -> String {
        self.endpoint.host()
    }

    /// The server's TCP port.
    pub fn port(&self) -> u16 {
        self.endpoint.port()
    }
}
