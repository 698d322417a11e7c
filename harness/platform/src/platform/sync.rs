//! Product sync: the outbox rows every change writes in its own transaction, the dispatcher that
//! delivers them in order per (product, tenant) with backoff and dead letters, and the reconciler
//! that compares each product's read-back with the platform and repairs what differs.
//!
//! What a product must hold is defined once, by the views `sync_users`, `sync_tenants` and
//! `sync_subscriptions` (migration `product_sync`): the outbox copies its payloads from them, and
//! the reconciler compares with them.
//!
//! The outbox is part of the `domain` feature (every change queues its rows); the dispatcher and
//! the reconciler, which talk to products over HTTP, come with the `products` feature
//! (`delivery.rs`). The outbox's own queries are `outbox.rs`.

mod delivery;
mod outbox;

pub use delivery::{
    Drift, DriftKind, Reconciliation, Retry, SyncPolicy, SyncReport, dispatch, drift_report,
    reconcile,
};
pub use outbox::{OutboxRow, dead_letters, next_due, requeue, undelivered};
pub(crate) use outbox::{queue_change, queue_tenant, queue_tenant_removal, queue_user_removal};
