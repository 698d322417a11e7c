//! The payment provider as the service sees it: charge a customer's billing key once per
//! idempotency key. [`SandboxGateway`] stands in for the provider in the served binary.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use rust_decimal::Decimal;

/// A boxed future, so that a gateway can be held as `dyn PaymentGateway`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeRequest {
    /// The provider's key for the customer's card.
    pub billing_key: String,
    /// The amount in won.
    pub amount: Decimal,
    /// The same key never captures twice.
    pub idempotency_key: String,
    /// What is paid for, for the customer's statement.
    pub description: String,
}

/// A captured charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capture {
    /// The provider's id of the capture.
    pub reference: String,
}

/// A charge that was not captured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the charge was not captured: {code}")]
pub struct Decline {
    /// Why, as the provider says it (`declined`, `insufficient_funds`, `timeout`, ...).
    pub code: String,
}

/// A payment provider.
pub trait PaymentGateway: Send + Sync + fmt::Debug {
    /// Charges `request.amount` to `request.billing_key`.
    fn charge<'a>(&'a self, request: &'a ChargeRequest) -> BoxFuture<'a, Result<Capture, Decline>>;
}

/// A provider sandbox that captures every charge.
#[derive(Debug, Clone, Copy, Default)]
pub struct SandboxGateway;

impl PaymentGateway for SandboxGateway {
    fn charge<'a>(&'a self, request: &'a ChargeRequest) -> BoxFuture<'a, Result<Capture, Decline>> {
        Box::pin(async move {
            Ok(Capture {
                reference: format!("sandbox-{}", request.idempotency_key),
            })
        })
    }
}
