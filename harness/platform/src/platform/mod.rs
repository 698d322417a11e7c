//! The executable reference of the platform: its operations over the schema, each checking the
//! rules in the documented order and writing all of its rows in one transaction or none.
//!
//! The pure arithmetic lives in [`crate::billing`]; this module stores and reads what it needs.

mod accounts;
mod assemble;
mod catalog;
mod charge;
mod close;
mod contracts;
mod error;
mod handle;
mod invariants;
mod jobs;
mod month_lock;
mod settings;
mod subscriptions;
pub mod sync;
mod timeline;
mod usage;

pub use accounts::NewUser;
pub use catalog::{CatalogDifference, install, install_or_compare};
pub use charge::{Attempt, charge_due, retry_due};
pub use close::{CloseReport, StoredInvoice, close_month};
pub use contracts::{AppliedContract, apply_contract, end_contract_terms};
pub use error::DomainError;
pub use handle::Platform;
pub use invariants::invariant_violations;
pub use jobs::PlatformJobs;
pub use settings::Settings;
pub use sync::OutboxRow;
pub use sync::{Drift, DriftKind, Reconciliation, Retry, SyncPolicy, SyncReport};
pub use timeline::{Timeline, TimelineAttempt, TimelineInvoice, TimelineSubscription, timeline};
pub use usage::UsageRecord;
