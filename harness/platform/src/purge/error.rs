//! Why a purge did not run: the error of the catalog walk and of the run alike.

/// Why a purge did not run. Nothing was written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PurgeError {
    /// A column that looks like a reference but is no foreign key the purge can follow.
    #[error(
        "table {table} has column {column}, an integer reference without a foreign key; the purge cannot tell what it points at (add a foreign key)"
    )]
    UnknownReference {
        /// The table.
        table: String,
        /// The column.
        column: String,
    },
    /// The catalog walk found rows still pointing at purged ones: rolled back.
    #[error("rows would still reference purged rows: {0}")]
    Leftovers(String),
    /// A table outside the plan changed size: rolled back.
    #[error("table {table} would have {found} rows instead of {expected}")]
    CountChanged {
        /// The table.
        table: String,
        /// Rows expected.
        expected: i64,
        /// Rows found.
        found: i64,
    },
    /// An e-mail address matches more than one user: addresses that differ only in case.
    /// Nothing is purged; purge each user by id.
    #[error(
        "the e-mail address matches {matches} users whose addresses differ only in case; nothing was purged (purge each by its user id)"
    )]
    Ambiguous {
        /// How many users it matches.
        matches: usize,
    },
    /// The database failed.
    #[error("database error")]
    Database(#[from] sqlx::Error),
}
