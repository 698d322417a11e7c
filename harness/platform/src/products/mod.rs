//! Products, as the platform syncs them: the versioned sync API ([`api`]), the client the
//! platform sends writes with, and a stateful mock of a product, in process or over HTTP, with
//! faults and outages, a journal and drift; served alone or many to a host (a container's), and driven there
//! through a control API.
//!
//! This module knows no platform: what to send and when (the outbox, the dispatcher, the
//! reconciler) is `platform::sync`.
//!
//! With the `domain` feature alone only [`api`] is here: the documents the platform's outbox
//! holds. The client, the mocks and their servers come with the `products` feature.

pub mod api;
mod client;
mod control;
mod fault;
mod journal;
mod mock;
mod server;

pub use client::{DeliveryError, SyncClient};
pub(crate) use fault::splitmix;
pub use fault::{Fault, Outage, OutageError};
pub use journal::{RedactedRequest, redacted};
pub use mock::{ProductMock, ProductRequest};
pub use server::{ProductHost, ProductServer};
