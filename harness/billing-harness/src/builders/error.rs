//! `BuildError`: why a builder or a tenant's operation failed.

use crate::clock::ClockError;
use crate::platform::DomainError;
use crate::products::OutageError;

/// Why a builder step failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The platform refused the operation (see [`DomainError::code`]).
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The clock could not move to the step's day.
    #[error(transparent)]
    Clock(#[from] ClockError),
    /// The database failed.
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// An outage's window or fault cannot be.
    #[error(transparent)]
    Outage(#[from] OutageError),
    /// An outage was given no end (`until` or `lasting`).
    #[error("an outage needs an end: call .until(..) or .lasting(..)")]
    OutageWithoutEnd,
}

impl BuildError {
    /// The platform's rule code for refusals (`plan_change_limit`, ...), else `clock`,
    /// `database` or `outage`.
    pub fn code(&self) -> &'static str {
        match self {
            BuildError::Domain(e) => e.code(),
            BuildError::Clock(_) => "clock",
            BuildError::Database(_) => "database",
            BuildError::Outage(_) | BuildError::OutageWithoutEnd => "outage",
        }
    }
}
