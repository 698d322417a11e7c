//! Products, as the platform syncs them: the versioned sync API ([`api`]), the client the
//! platform sends writes with, and a stateful mock of a product, in process or over HTTP, with
//! faults, a journal and drift; served alone or many to a host (a container's), and driven there
//! through a control API.
//!
//! This module knows no platform: what to send and when (the outbox, the dispatcher, the
//! reconciler) is `platform::sync`.
//!
//! With the `domain` feature alone only [`api`] is here: the documents the platform's outbox
//! holds. The client, the mocks and their servers come with the `products` feature.

pub mod api;
#[cfg(feature = "products")]
mod client;
#[cfg(feature = "products")]
mod control;
#[cfg(feature = "products")]
mod fault;
#[cfg(feature = "products")]
mod journal;
#[cfg(feature = "products")]
mod mock;
#[cfg(feature = "products")]
mod server;

#[cfg(feature = "products")]
pub use client::{DeliveryError, SyncClient};
#[cfg(feature = "products")]
pub use fault::Fault;
#[cfg(feature = "products")]
pub(crate) use fault::splitmix;
#[cfg(feature = "products")]
pub use journal::{RedactedRequest, redacted};
#[cfg(feature = "products")]
pub use mock::{ProductMock, ProductRequest};
#[cfg(feature = "products")]
pub use server::{ProductHost, ProductServer};
