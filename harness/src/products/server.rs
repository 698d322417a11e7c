//! The product mock over HTTP: a real server on 127.0.0.1 that speaks the sync API and acts out
//! the mock's faults on the wire (held requests, reset connections).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};

use super::api::IDEMPOTENCY_KEY;
use super::mock::{ProductMock, Reply};
use crate::env::http::{ResetConnection, Served, serve_resettable};

/// A [`ProductMock`] served on a free port of 127.0.0.1; stops when dropped.
#[derive(Debug)]
pub struct ProductServer {
    mock: Arc<ProductMock>,
    served: Served,
}

impl ProductServer {
    /// Serves `mock` on the current tokio runtime.
    ///
    /// # Errors
    /// No port could be bound.
    pub async fn start(mock: Arc<ProductMock>) -> std::io::Result<ProductServer> {
        let router = Router::new().fallback(handle).with_state(mock.clone());
        Ok(ProductServer {
            mock,
            served: serve_resettable(router).await?,
        })
    }

    /// Its base URL, `http://127.0.0.1:PORT`: the product's `sync_url`.
    pub fn url(&self) -> &str {
        self.served.url()
    }

    /// The mock behind it.
    pub fn mock(&self) -> &Arc<ProductMock> {
        &self.mock
    }
}

async fn handle(
    State(mock): State<Arc<ProductMock>>,
    Extension(reset): Extension<ResetConnection>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let key = headers
        .get(IDEMPOTENCY_KEY)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    match mock.handle(method.as_str(), uri.path(), key.as_deref(), &body) {
        Reply::Answer {
            status,
            body,
            after,
        } => {
            if !after.is_zero() {
                tokio::time::sleep(after).await;
            }
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (status, Json(body)).into_response()
        }
        Reply::Hold(hold) => {
            tokio::time::sleep(hold).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
        Reply::Reset => {
            reset.reset();
            std::future::pending::<Response>().await
        }
    }
}
