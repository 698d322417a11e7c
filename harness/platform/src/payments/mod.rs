//! The payment gateway, as the platform sees it: the interface it charges through, the test
//! cards, and a scripted mock of the gateway (in process, and over HTTP with the `gateway-http`
//! feature).
//!
//! This module knows no platform: charging invoices, retries and dunning are platform operations
//! (`platform::charge_due`, `platform::retry_due`) that use a [`Gateway`].

mod card;
mod gateway;
mod http;
mod mock;

pub use card::TestCard;
pub use gateway::{Approval, BoxFuture, ChargeRequest, Gateway, GatewayError};
pub use http::{GatewayServer, HttpGateway};
pub use mock::{Capture, JournalEntry, MockGateway};
