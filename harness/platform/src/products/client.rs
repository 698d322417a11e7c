//! The platform's side of the sync API: an HTTP client that sends one write to a product's
//! `sync_url` with its idempotency key, and reads a product's state back.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};

use super::api::{IDEMPOTENCY_KEY, ProductState, SENT_AT, Write};

/// Why a write or a read-back did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeliveryError {
    /// The product answered, but not with `2xx`.
    #[error("the product answered {status}: {body}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// No answer within the client's limit.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The connection failed or was reset.
    #[error("the connection failed: {0}")]
    Connection(String),
    /// The read-back did not parse.
    #[error("the product's state does not parse: {0}")]
    Unreadable(String),
}

impl DeliveryError {
    /// The HTTP status, when the product answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            DeliveryError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// An HTTP client for products; cheap to clone (one connection pool).
#[derive(Debug, Clone)]
pub struct SyncClient {
    http: reqwest::Client,
    timeout: Duration,
}

impl SyncClient {
    /// A client that gives up on a request after `timeout`.
    pub fn new(timeout: Duration) -> SyncClient {
        SyncClient {
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(64)
                .build()
                .unwrap_or_default(),
            timeout,
        }
    }

    /// The client's limit per request.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends `write` to the product at `base_url` under the idempotency key `key`, sent at `at`
    /// on the platform's clock ([`SENT_AT`]); `Ok` with the status when it answered `2xx`.
    ///
    /// # Errors
    /// Any other answer, a timeout or a failed connection.
    pub async fn send(
        &self,
        base_url: &str,
        write: &Write,
        key: &str,
        at: DateTime<Utc>,
    ) -> Result<u16, DeliveryError> {
        let url = format!("{}{}", base_url.trim_end_matches('/'), write.path());
        let method = if write.delete {
            reqwest::Method::DELETE
        } else {
            reqwest::Method::PUT
        };
        let mut request = self
            .http
            .request(method, url)
            .timeout(self.timeout)
            .header(IDEMPOTENCY_KEY, key)
            .header(SENT_AT, sent_at(at));
        if let Some(body) = &write.body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| self.failure(&e))?;
        let status = response.status().as_u16();
        if response.status().is_success() {
            return Ok(status);
        }
        let body = response.text().await.unwrap_or_default();
        Err(DeliveryError::Status {
            status,
            body: body.chars().take(200).collect(),
        })
    }

    /// Reads everything the product at `base_url` holds (`GET /v1/state`), asked at `at` on the
    /// platform's clock.
    ///
    /// # Errors
    /// The product did not answer `200` with a state that parses.
    pub async fn state(
        &self,
        base_url: &str,
        at: DateTime<Utc>,
    ) -> Result<ProductState, DeliveryError> {
        let url = format!("{}/v1/state", base_url.trim_end_matches('/'));
        let response = self
            .http
            .get(url)
            .header(SENT_AT, sent_at(at))
            .timeout(self.timeout.max(Duration::from_secs(5)))
            .send()
            .await
            .map_err(|e| self.failure(&e))?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(|e| self.failure(&e))?;
        if status != 200 {
            return Err(DeliveryError::Status {
                status,
                body: String::from_utf8_lossy(&body).chars().take(200).collect(),
            });
        }
        serde_json::from_slice(&body).map_err(|e| DeliveryError::Unreadable(e.to_string()))
    }

    fn failure(&self, e: &reqwest::Error) -> DeliveryError {
        if e.is_timeout() {
            DeliveryError::Timeout(self.timeout)
        } else {
            DeliveryError::Connection(throwaway_pg::with_causes(e))
        }
    }
}

/// `at` as the [`SENT_AT`] header carries it: RFC 3339 in UTC, to the microsecond.
fn sent_at(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}
