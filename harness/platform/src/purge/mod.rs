//! Purge: delete a user, an organization or everything a scenario run created, proven complete
//! and harmless. A plan first (rows per table, the deletions products will be told), then its
//! execution in the same transaction, checked from the database catalog before it commits, and
//! an audit row that names no person.

mod catalog;
mod error;
mod run;

pub use error::PurgeError;
pub use run::{
    Leftover, Notice, PurgePlan, PurgeReport, PurgeTarget, Scope, leftovers, plan, purge,
};
