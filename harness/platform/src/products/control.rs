//! The control API of a served product mock: what a test does to a mock (faults, strict mode,
//! drift) and reads from it (journal, state, violations), as one JSON request per call, so that a
//! mock in another process or a container behaves like one held in the test. An outage is
//! `{"op": "outage", "outage": {"from": "2026-10-10T01:00:00Z", "until": "2026-10-10T03:00:00Z",
//! "fault": "status_503"}}`.
//!
//! Every call is `POST {sync_url}/_mock` with a [`Control`] as its body, e.g.
//! `{"op": "fail_next", "fault": "reset", "times": 2}`, answered `200` with the method's result as
//! JSON (`null` for setters), or `400` with `{"error": ...}`. Control calls are not journaled.
//! [`Remote`] is the client: one blocking HTTP/1.1 request per call (the mock's methods are
//! synchronous, and the host is on the loopback). The mock's server (`server.rs`) answers them.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::api::ProductState;
use super::fault::{Fault, Outage};
use crate::http::post_blocking;

/// One call of the control API: a `ProductMock` method and its arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(crate) enum Control {
    SetStrict { strict: bool },
    IsStrict,
    SetHold { millis: u64 },
    FailNext { fault: Fault, times: u32 },
    FaultRate { rate: f64, seed: u64 },
    Outage { outage: Outage },
    ClearFaults,
    RejectTenant { tenant: i64, status: u16 },
    AcceptTenant { tenant: i64 },
    Drift { tenant: i64 },
    ReplaceState { state: ProductState },
    ReadState,
    Tenant { tenant: i64 },
    Journal,
    Requests,
    FaultsApplied,
    Violations,
    AppliedTwice,
}

/// The client side: a mock's namespace URL, called with blocking HTTP/1.1 requests.
#[derive(Debug)]
pub(crate) struct Remote {
    url: String,
}

/// Why a control call failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ControlError {
    #[error("the mock's host could not be reached")]
    Io(#[from] std::io::Error),
    #[error("the mock's host answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("the mock's host sent an answer that does not parse: {0}")]
    Unreadable(String),
}

impl Remote {
    pub(crate) fn new(url: String) -> Remote {
        Remote {
            url: url.trim_end_matches('/').to_owned(),
        }
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// Runs `op` on the remote mock and decodes its answer.
    ///
    /// # Panics
    /// The host cannot be reached or answers with an error (see `ProductMock::remote`).
    pub(crate) fn call<T: DeserializeOwned>(&self, op: &Control) -> T {
        match self.try_call(op) {
            Ok(value) => value,
            Err(e) => panic!(
                "the product mock at {} failed a control call ({op:?}): {}",
                self.url,
                throwaway_pg::with_causes(&e)
            ),
        }
    }

    pub(crate) fn try_call<T: DeserializeOwned>(&self, op: &Control) -> Result<T, ControlError> {
        let body = serde_json::to_vec(op).map_err(|e| ControlError::Unreadable(e.to_string()))?;
        let (status, answer) = post_blocking(&self.url, "/_mock", &body)?;
        if status != 200 {
            return Err(ControlError::Status {
                status,
                body: String::from_utf8_lossy(&answer).chars().take(200).collect(),
            });
        }
        serde_json::from_slice(&answer).map_err(|e| ControlError::Unreadable(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_read_as_their_method_and_arguments() {
        let op = Control::FailNext {
            fault: Fault::ReplyLost,
            times: 2,
        };
        let text = serde_json::to_string(&op).unwrap();
        assert_eq!(text, r#"{"op":"fail_next","fault":"reply_lost","times":2}"#);
        assert_eq!(serde_json::from_str::<Control>(&text).unwrap(), op);
        assert_eq!(
            serde_json::to_string(&Control::Journal).unwrap(),
            r#"{"op":"journal"}"#
        );
    }
}
