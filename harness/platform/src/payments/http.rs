//! The mock gateway over HTTP: a real server on 127.0.0.1, and the client the platform uses to
//! reach any gateway that speaks the same small API.
//!
//! - `POST /v1/charges` with a [`ChargeRequest`]: `200` and an [`Approval`], `402` and a decline
//!   (`{"request_id": .., "code": ..}`), or `504` when the reply is lost;
//! - `GET /v1/charges/{idempotency_key}`: `200` and the approval, or `404`;
//! - `GET /v1/ledger` and `GET /v1/journal`: the mock's captures and requests.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::gateway::{Approval, BoxFuture, ChargeRequest, Gateway, GatewayError};
use super::mock::MockGateway;
use crate::http::Served;

/// The mock gateway served on `127.0.0.1`; stops when dropped.
#[derive(Debug)]
pub struct GatewayServer {
    served: Served,
}

impl GatewayServer {
    /// Serves `mock` on a free port of 127.0.0.1.
    ///
    /// # Errors
    /// No port could be bound.
    pub async fn start(mock: Arc<MockGateway>) -> std::io::Result<GatewayServer> {
        let router = Router::new()
            .route("/v1/charges", post(charge))
            .route("/v1/charges/{key}", get(find))
            .route(
                "/v1/ledger",
                get(|State(m): State<Arc<MockGateway>>| async move { Json(m.ledger()) }),
            )
            .route(
                "/v1/journal",
                get(|State(m): State<Arc<MockGateway>>| async move { Json(m.journal()) }),
            )
            .with_state(mock);
        Ok(GatewayServer {
            served: crate::http::serve(router).await?,
        })
    }

    /// Its base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        self.served.url()
    }
}

async fn charge(
    State(mock): State<Arc<MockGateway>>,
    Json(request): Json<ChargeRequest>,
) -> Response {
    match mock.charge_now(&request) {
        Ok(approval) => Json(approval).into_response(),
        Err(GatewayError::Timeout) => StatusCode::GATEWAY_TIMEOUT.into_response(),
        Err(GatewayError::Declined { request_id, code }) => (
            StatusCode::PAYMENT_REQUIRED,
            Json(serde_json::json!({ "request_id": request_id, "code": code })),
        )
            .into_response(),
        Err(GatewayError::Unavailable(reason)) => (StatusCode::BAD_GATEWAY, reason).into_response(),
    }
}

async fn find(State(mock): State<Arc<MockGateway>>, Path(key): Path<String>) -> Response {
    match mock.find_now(&key) {
        Some(approval) => Json(approval).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// A [`Gateway`] reached over HTTP.
#[derive(Debug, Clone)]
pub struct HttpGateway {
    base: String,
    client: reqwest::Client,
}

impl HttpGateway {
    /// A client of the gateway at `base` (`http://127.0.0.1:PORT`).
    pub fn new(base: impl Into<String>) -> HttpGateway {
        HttpGateway {
            base: base.into(),
            client: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(10))
                .build()
                .expect(
                    "cannot fail: reqwest is built without TLS, so a client with only a timeout \
                     has nothing to load that could be missing",
                ),
        }
    }
}

#[derive(Deserialize)]
struct Decline {
    request_id: String,
    code: String,
}

fn unavailable(e: reqwest::Error) -> GatewayError {
    if e.is_timeout() {
        GatewayError::Timeout
    } else {
        GatewayError::Unavailable(e.to_string())
    }
}

impl Gateway for HttpGateway {
    fn charge<'a>(
        &'a self,
        request: &'a ChargeRequest,
    ) -> BoxFuture<'a, Result<Approval, GatewayError>> {
        Box::pin(async move {
            let reply = self
                .client
                .post(format!("{}/v1/charges", self.base))
                .json(request)
                .send()
                .await
                .map_err(unavailable)?;
            match reply.status() {
                StatusCode::OK => reply.json().await.map_err(unavailable),
                StatusCode::PAYMENT_REQUIRED => {
                    let Decline { request_id, code } = reply.json().await.map_err(unavailable)?;
                    Err(GatewayError::Declined { request_id, code })
                }
                StatusCode::GATEWAY_TIMEOUT => Err(GatewayError::Timeout),
                other => Err(GatewayError::Unavailable(format!(
                    "unexpected status {other}"
                ))),
            }
        })
    }

    fn find<'a>(
        &'a self,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Approval>, GatewayError>> {
        Box::pin(async move {
            let reply = self
                .client
                .get(format!("{}/v1/charges/{idempotency_key}", self.base))
                .send()
                .await
                .map_err(unavailable)?;
            match reply.status() {
                StatusCode::OK => reply.json().await.map(Some).map_err(unavailable),
                StatusCode::NOT_FOUND => Ok(None),
                other => Err(GatewayError::Unavailable(format!(
                    "unexpected status {other}"
                ))),
            }
        })
    }
}
