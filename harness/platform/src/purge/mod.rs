//! Purge: delete a user, an organization or what a scenario run recorded, proven complete
//! and harmless. A plan first (rows per table, the deletions products will be told), then its
//! execution in the same transaction, checked from the database catalog before it commits, and
//! an audit row that names no person.
//!
//! Who a purge of a user takes, by the organization's other members (users of the same
//! organization not yet deleted; one who left with `leave_org` no longer counts):
//!
//! | the user | other members | scope | what goes |
//! |---|---|---|---|
//! | any role | none | `Organization` | the organization and everything of it |
//! | a member (not an owner) | some | `UserLeft` | the user's own rows |
//! | an owner | another owner among them | `UserLeft` | the user's own rows |
//! | the last owner | members only | `OwnerData` | the user, and the organization's tenants, billing account, cards and custom plans; the organization and its members stay |
//! | no user matches | | `Nothing` | nothing |
//!
//! A user is found by id, or by e-mail address without regard to case; an address that matches
//! two users (addresses that differ only in case) is refused as `PurgeError::Ambiguous`, and
//! nothing is purged. Names play no part: a user of another organization with the same name is
//! never touched.

mod catalog;
mod error;
mod run;
mod run_rows;

pub use error::PurgeError;
pub use run::{
    Leftover, Notice, PurgePlan, PurgeReport, PurgeTarget, Scope, leftovers, plan, purge,
};
