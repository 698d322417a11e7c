//! [`Platform`], the handle the platform's operations hang off: a pool on one database. The
//! operations are `impl Platform` blocks next to their logic (accounts, subscriptions, the close,
//! ...), so this module is below all of them.

use sqlx::PgPool;

/// The platform over one database. Cheap to clone; every operation takes the instant it happens
/// at (usually the test clock's now).
#[derive(Debug, Clone)]
pub struct Platform {
    pub(super) pool: PgPool,
}

impl Platform {
    /// The platform over the database behind `pool`.
    pub fn new(pool: PgPool) -> Platform {
        Platform { pool }
    }

    /// The pool it uses.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}
