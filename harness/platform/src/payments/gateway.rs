//! The payment-gateway interface the platform charges through.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::model::Currency;

/// A boxed future, so that gateways can be used as `dyn Gateway`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One charge of a billing key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargeRequest {
    /// The card's billing key, as issued at registration.
    pub billing_key: String,
    /// The amount to capture.
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
    /// Its currency.
    pub currency: Currency,
    /// The same key always gets the same outcome, and a capture at most once.
    pub idempotency_key: String,
    /// What is being paid, for the statement.
    pub order_name: String,
}

/// An approved, captured charge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// The gateway's id for the request that captured.
    pub request_id: String,
    /// The card issuer's approval number.
    pub approval_number: String,
    /// The amount captured.
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
    /// Whether this reply repeats an earlier one for the same idempotency key.
    pub replayed: bool,
}

/// Why a charge did not come back approved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum GatewayError {
    /// The issuer declined; `code` says why (`declined`, `insufficient_funds`, `expired_card`).
    #[error("declined by the issuer: {code} (request {request_id})")]
    Declined {
        /// The gateway's id for the request.
        request_id: String,
        /// The decline code.
        code: String,
    },
    /// No reply came back: the charge may or may not have been captured. Ask with
    /// [`Gateway::find`] before charging again.
    #[error("the gateway did not reply in time")]
    Timeout,
    /// The gateway could not be reached or answered nonsense.
    #[error("the gateway is unavailable: {0}")]
    Unavailable(String),
}

impl GatewayError {
    /// The failure code stored with a failed payment.
    pub fn code(&self) -> &str {
        match self {
            GatewayError::Declined { code, .. } => code,
            GatewayError::Timeout => "timeout",
            GatewayError::Unavailable(_) => "unavailable",
        }
    }
}

/// A payment gateway: charge a billing key, and ask what became of an idempotency key.
pub trait Gateway: Send + Sync + fmt::Debug {
    /// Charges `request.amount` to `request.billing_key`.
    fn charge<'a>(
        &'a self,
        request: &'a ChargeRequest,
    ) -> BoxFuture<'a, Result<Approval, GatewayError>>;

    /// The capture made under `idempotency_key`, if any.
    fn find<'a>(
        &'a self,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Approval>, GatewayError>>;
}

#[cfg(test)]
mod tests {
    use super::GatewayError;

    #[test]
    fn the_failure_code_stored_is_the_decline_code_or_the_kind_of_failure() {
        let declined = GatewayError::Declined {
            request_id: "req_000001".into(),
            code: "expired_card".into(),
        };
        assert_eq!(
            [
                declined.code(),
                GatewayError::Timeout.code(),
                GatewayError::Unavailable("connection refused".into()).code(),
            ],
            ["expired_card", "timeout", "unavailable"]
        );
    }
}
