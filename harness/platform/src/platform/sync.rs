//! Product sync: the outbox rows every change writes in its own transaction, the dispatcher that
//! delivers them in order per (product, tenant), retrying a failed row for its retry horizon
//! before it is a dead letter, and the reconciler that, daily and on demand, re-queues what waits
//! for each product that answers and repairs what differs.
//!
//! The guarantee: once a product answers again, it holds the platform's data within one
//! reconcile.
//!
//! What a product must hold is defined once, by the views `sync_users`, `sync_tenants` and
//! `sync_subscriptions` (migration `product_sync`): the outbox copies its payloads from them, and
//! the reconciler compares with them.
//!
//! The outbox's own queries are `outbox.rs`; the policy and the dispatcher `delivery.rs`; the
//! reconciler `reconcile.rs`.

mod delivery;
mod outbox;
mod reconcile;

pub use delivery::{Retry, SyncPolicy, SyncReport, dispatch};
pub use outbox::{Deliveries, OutboxRow, dead_letters, deliveries, next_due, requeue, undelivered};
pub(crate) use outbox::{queue_change, queue_tenant, queue_tenant_removal, queue_user_removal};
pub use reconcile::{Drift, DriftKind, Reconciliation, drift_report, reconcile};
