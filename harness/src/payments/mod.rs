//! Payments and dunning: the payment-gateway interface, a scripted mock of it (in-process and
//! over HTTP), and the charge and retry jobs that the clock runs after the monthly close.
//!
//! The rules: at 00:00 on the charge day (the 5th by default) every `finalized` invoice with a
//! total above zero is charged to its organization's current card. A success marks it `paid`
//! and renews the subscription; a failure makes both `past_due` and schedules a retry at 00:00 on
//! each of the next three days. When the third retry fails the invoice is `uncollectible` and the
//! subscription is cancelled from that day. Every subscription status change queues a sync event
//! in the same transaction.

mod card;
mod charge;
mod gateway;
mod http;
mod mock;
mod timeline;

pub use card::TestCard;
pub use charge::{Attempt, charge_due, retry_due};
pub use gateway::{Approval, BoxFuture, ChargeRequest, Gateway, GatewayError};
pub use http::{GatewayServer, HttpGateway};
pub use mock::{Capture, JournalEntry, MockGateway};
pub use timeline::{Timeline, timeline};
