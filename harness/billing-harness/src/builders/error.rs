//! `BuildError`: why a builder or a tenant's operation failed.

use crate::clock::ClockError;
use crate::platform::DomainError;

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
}

impl BuildError {
    /// The platform's rule code for refusals (`plan_change_limit`, ...), else `clock` or
    /// `database`.
    pub fn code(&self) -> &'static str {
        match self {
            BuildError::Domain(e) => e.code(),
            BuildError::Clock(_) => "clock",
            BuildError::Database(_) => "database",
        }
    }
}
