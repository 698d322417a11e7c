//! The payment provider as the service sees it: charge a customer's billing key once per
//! idempotency key, and find what became of a key whose reply was lost. [`SandboxGateway`]
//! stands in for the provider in the served binary.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};

use rust_decimal::Decimal;

use crate::billing::Currency;

/// A boxed future, so that a gateway can be held as `dyn PaymentGateway`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeRequest {
    /// The provider's key for the customer's card.
    pub billing_key: String,
    /// The amount, in `currency`.
    pub amount: Decimal,
    /// The invoice's currency.
    pub currency: Currency,
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

impl Decline {
    /// The code of a charge whose reply was lost: it may or may not have been captured.
    pub const TIMEOUT: &'static str = "timeout";

    /// Whether the reply was lost ([`Decline::TIMEOUT`]): ask [`PaymentGateway::find`] before
    /// charging again.
    pub fn is_timeout(&self) -> bool {
        self.code == Self::TIMEOUT
    }
}

/// A payment provider.
pub trait PaymentGateway: Send + Sync + fmt::Debug {
    /// Charges `request.amount` to `request.billing_key`.
    fn charge<'a>(&'a self, request: &'a ChargeRequest) -> BoxFuture<'a, Result<Capture, Decline>>;

    /// The capture made under `idempotency_key`, if any; an `Err` when the provider could not
    /// answer.
    fn find<'a>(
        &'a self,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Capture>, Decline>>;
}

/// Charges through `gateway`; a lost reply is answered by asking the gateway about the same
/// idempotency key, as the platform does, so that a card is captured once: found, it is the
/// capture; not found, the attempt failed with [`Decline::TIMEOUT`].
///
/// # Errors
/// The decline, or the lost reply of a charge the gateway did not capture.
pub async fn charge_once(
    gateway: &dyn PaymentGateway,
    request: &ChargeRequest,
) -> Result<Capture, Decline> {
    match gateway.charge(request).await {
        Err(decline) if decline.is_timeout() => {
            gateway.find(&request.idempotency_key).await?.ok_or(decline)
        }
        other => other,
    }
}

/// A provider sandbox that captures every charge, once per idempotency key, and remembers it.
#[derive(Debug, Default)]
pub struct SandboxGateway {
    captures: Mutex<HashMap<String, Capture>>,
}

impl PaymentGateway for SandboxGateway {
    fn charge<'a>(&'a self, request: &'a ChargeRequest) -> BoxFuture<'a, Result<Capture, Decline>> {
        Box::pin(async move {
            let mut captures = self.captures.lock().unwrap_or_else(PoisonError::into_inner);
            let capture = captures
                .entry(request.idempotency_key.clone())
                .or_insert_with(|| Capture {
                    reference: format!("sandbox-{}", request.idempotency_key),
                });
            Ok(capture.clone())
        })
    }

    fn find<'a>(
        &'a self,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Capture>, Decline>> {
        Box::pin(async move {
            let captures = self.captures.lock().unwrap_or_else(PoisonError::into_inner);
            Ok(captures.get(idempotency_key).cloned())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(key: &str) -> ChargeRequest {
        ChargeRequest {
            billing_key: "bk".into(),
            amount: Decimal::from(99_000),
            currency: Currency::Krw,
            idempotency_key: key.into(),
            description: "test".into(),
        }
    }

    #[tokio::test]
    async fn the_sandbox_finds_what_it_captured_and_nothing_else() {
        let sandbox = SandboxGateway::default();
        let first = sandbox.charge(&request("a")).await;
        assert_eq!(sandbox.charge(&request("a")).await, first, "replayed");
        assert_eq!(sandbox.find("a").await, first.map(Some));
        assert_eq!(sandbox.find("b").await, Ok(None));
    }
}
