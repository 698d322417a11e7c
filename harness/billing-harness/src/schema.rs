//! The reference platform's schema as a migration source: what a `TestEnv` builds its template
//! from unless told otherwise.

use throwaway_pg::MigrationSource;

/// The reference platform's schema as [`TestEnv`](crate::TestEnv) builds it by default (unless
/// given migrations of the test's own, or `HARNESS_MIGRATIONS`).
pub fn platform_schema() -> MigrationSource {
    MigrationSource::Named {
        name: "the bundled platform schema",
        migrator: &billing_platform::MIGRATOR,
        needs_db_clock: true,
    }
}
