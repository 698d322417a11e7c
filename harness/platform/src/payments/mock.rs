//! `MockGateway`: a payment gateway that behaves like a real one (request ids, idempotency keys,
//! approval numbers, a ledger of captures) and follows each test card's script.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rust_decimal::Decimal;
use serde::Serialize;

use super::card::TestCard;
use super::gateway::{Approval, BoxFuture, ChargeRequest, Gateway, GatewayError};
use crate::model::Currency;

/// A captured charge in the mock's ledger: what a real gateway would settle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Capture {
    /// The request that captured.
    pub request_id: String,
    /// Its idempotency key.
    pub idempotency_key: String,
    /// The card's billing key.
    pub billing_key: String,
    /// The amount.
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
    /// Its currency.
    pub currency: Currency,
    /// The approval number.
    pub approval_number: String,
}

/// One request the mock received, and what it answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JournalEntry {
    /// `charge` or `find`.
    pub call: &'static str,
    /// The idempotency key asked about.
    pub idempotency_key: String,
    /// `approved`, `replayed`, `declined:<code>`, `timeout` (approved, reply lost), `found` or
    /// `not_found`.
    pub answer: String,
}

#[derive(Debug, Default)]
struct State {
    /// Charges seen per billing key (a `fail_times:N` card fails the first N).
    charges: HashMap<String, u32>,
    /// The outcome stored per idempotency key.
    outcomes: HashMap<String, Result<Approval, GatewayError>>,
    ledger: Vec<Capture>,
    journal: Vec<JournalEntry>,
    requests: u64,
}

/// The mock gateway. Cheap to share (`Arc`); use it directly as a [`Gateway`], or serve it over
/// HTTP with [`MockGateway::serve`](super::GatewayServer).
#[derive(Debug, Default)]
pub struct MockGateway {
    state: Mutex<State>,
}

impl MockGateway {
    /// A mock with an empty ledger.
    pub fn new() -> Arc<MockGateway> {
        Arc::new(MockGateway::default())
    }

    /// The billing key the mock issues when `card` is registered; `unique` tells cards apart.
    pub fn billing_key(card: TestCard, unique: &str) -> String {
        format!("bk.{card}.{unique}")
    }

    /// The mock's books. Nothing that can panic runs while they are held (map and list
    /// updates), so a lock poisoned by a panicking test thread still guards whole books.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every capture so far, in order.
    pub fn ledger(&self) -> Vec<Capture> {
        self.state().ledger.clone()
    }

    /// Every request so far, in order.
    pub fn journal(&self) -> Vec<JournalEntry> {
        self.state().journal.clone()
    }

    /// Charges synchronously: the whole behaviour of the mock.
    pub(crate) fn charge_now(&self, request: &ChargeRequest) -> Result<Approval, GatewayError> {
        let mut state = self.state();
        let key = request.idempotency_key.clone();
        if let Some(previous) = state.outcomes.get(&key).cloned() {
            let reply = previous.map(|a| Approval {
                replayed: true,
                ..a
            });
            let answer = match &reply {
                Ok(_) => "replayed".to_owned(),
                Err(e) => format!("declined:{}", e.code()),
            };
            state.journal.push(JournalEntry {
                call: "charge",
                idempotency_key: key,
                answer,
            });
            return reply;
        }
        state.requests += 1;
        let request_id = format!("req_{:06}", state.requests);
        let card = request
            .billing_key
            .split('.')
            .nth(1)
            .and_then(|s| s.parse::<TestCard>().ok());
        let seen = {
            let n = state
                .charges
                .entry(request.billing_key.clone())
                .or_default();
            *n += 1;
            *n
        };
        let decline = |code: &str| GatewayError::Declined {
            request_id: request_id.clone(),
            code: code.to_owned(),
        };
        let outcome = match card {
            None => Err(decline("invalid_billing_key")),
            Some(TestCard::Declined) => Err(decline("declined")),
            Some(TestCard::InsufficientFunds) => Err(decline("insufficient_funds")),
            Some(TestCard::Expired) => Err(decline("expired_card")),
            Some(TestCard::FailTimes(n)) if seen <= n => Err(decline("declined")),
            Some(TestCard::Ok | TestCard::FailTimes(_) | TestCard::Timeout) => {
                let approval_number = format!("{:08}", (state.requests * 7_919_993) % 100_000_000);
                state.ledger.push(Capture {
                    request_id: request_id.clone(),
                    idempotency_key: key.clone(),
                    billing_key: request.billing_key.clone(),
                    amount: request.amount,
                    currency: request.currency,
                    approval_number: approval_number.clone(),
                });
                Ok(Approval {
                    request_id: request_id.clone(),
                    approval_number,
                    amount: request.amount,
                    replayed: false,
                })
            }
        };
        state.outcomes.insert(key.clone(), outcome.clone());
        let lost = card == Some(TestCard::Timeout);
        state.journal.push(JournalEntry {
            call: "charge",
            idempotency_key: key,
            answer: match (&outcome, lost) {
                (Ok(_), true) => "timeout".to_owned(),
                (Ok(_), false) => "approved".to_owned(),
                (Err(e), _) => format!("declined:{}", e.code()),
            },
        });
        if lost {
            Err(GatewayError::Timeout)
        } else {
            outcome
        }
    }

    /// Looks up an idempotency key synchronously.
    pub(crate) fn find_now(&self, idempotency_key: &str) -> Option<Approval> {
        let mut state = self.state();
        let found = match state.outcomes.get(idempotency_key) {
            Some(Ok(approval)) => Some(Approval {
                replayed: true,
                ..approval.clone()
            }),
            _ => None,
        };
        state.journal.push(JournalEntry {
            call: "find",
            idempotency_key: idempotency_key.to_owned(),
            answer: if found.is_some() {
                "found"
            } else {
                "not_found"
            }
            .to_owned(),
        });
        found
    }
}

impl Gateway for MockGateway {
    fn charge<'a>(
        &'a self,
        request: &'a ChargeRequest,
    ) -> BoxFuture<'a, Result<Approval, GatewayError>> {
        Box::pin(async move { self.charge_now(request) })
    }

    fn find<'a>(
        &'a self,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Approval>, GatewayError>> {
        Box::pin(async move { Ok(self.find_now(idempotency_key)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(card: TestCard, key: &str) -> ChargeRequest {
        ChargeRequest {
            billing_key: MockGateway::billing_key(card, "1"),
            amount: Decimal::from(99_000),
            currency: Currency::Krw,
            idempotency_key: key.to_owned(),
            order_name: "pro 2026-10".to_owned(),
        }
    }

    #[test]
    fn each_new_charge_gets_the_next_request_id_and_a_known_key_its_first_outcome_replayed() {
        let mock = MockGateway::new();
        let first = mock.charge_now(&request(TestCard::Ok, "k1")).unwrap();
        let second = mock.charge_now(&request(TestCard::Ok, "k2")).unwrap();
        assert_eq!(
            (first.request_id.as_str(), second.request_id.as_str()),
            ("req_000001", "req_000002")
        );
        assert!(!first.replayed && !second.replayed);
        let again = mock.charge_now(&request(TestCard::Ok, "k1")).unwrap();
        assert_eq!(
            again,
            Approval {
                replayed: true,
                ..first
            },
            "the first outcome, marked replayed"
        );
        assert_eq!(mock.ledger().len(), 2, "a repeated key captures nothing");
        assert_eq!(
            (mock.find_now("k2"), mock.find_now("k3")),
            (
                Some(Approval {
                    replayed: true,
                    ..second
                }),
                None
            ),
            "a key's capture is found, marked replayed; an unknown key has none"
        );
        let answers: Vec<String> = mock.journal().into_iter().map(|j| j.answer).collect();
        assert_eq!(
            answers,
            ["approved", "approved", "replayed", "found", "not_found"]
        );
    }
}
