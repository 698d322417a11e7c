//! Where the service reads the time: a [`Clock`] it is given, so that tests (and a scenario
//! driver) decide what "now" is. Only [`SystemClock`] reads the wall clock.

use std::fmt;

use chrono::{DateTime, Utc};

/// The source of "now" for every operation of the service.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock, for the served binary.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        #[expect(
            clippy::disallowed_methods,
            reason = "the system clock is the service's one reader of wall time"
        )]
        Utc::now()
    }
}
