//! The wall clock: the one place in the workspace that reads wall time.

/// The wall clock, to the second: read when a clock starts without an explicit instant, and by
/// tools that must know the present (seeding a QA database). Nothing else in the workspace may
/// read wall time (clippy's `disallowed-methods`).
pub fn wall_now() -> chrono::DateTime<chrono::Utc> {
    #[expect(
        clippy::disallowed_methods,
        reason = "the one reader of wall time: the test clock starts from it, and the database's own bookkeeping stamps with it"
    )]
    let now = chrono::Utc::now();
    chrono::DurationRound::duration_trunc(now, chrono::TimeDelta::seconds(1)).unwrap_or(now)
}
