//! The product mock over HTTP: a real server that speaks the sync API and the mock's control API
//! and acts out the mock's faults on the wire (held requests, reset connections). A
//! [`ProductServer`] serves one mock on 127.0.0.1; a [`ProductHost`] serves one mock per
//! namespace (`/ns/{namespace}/...`), created on first use: the product-mock container's server,
//! shared by every test of a process.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Serialize;
use serde_json::Value;

use super::api::{IDEMPOTENCY_KEY, SENT_AT};
use super::control::Control;
use super::mock::{Incoming, ProductMock, Reply};
use crate::http::{ResetConnection, Served, serve_resettable, serve_resettable_on};

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
        let router = Router::new()
            .fallback(handle)
            .with_state(Arc::new(Mocks::One(mock.clone())));
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

/// Many [`ProductMock`]s on one port, one per namespace: `{url}/ns/{namespace}` is a product's
/// `sync_url` and the address of [`ProductMock::remote`]. A namespace's mock is created by its
/// first request and forgotten by `DELETE {url}/ns/{namespace}`. Stops when dropped.
#[derive(Debug)]
pub struct ProductHost {
    mocks: Arc<Mocks>,
    served: Served,
}

type Namespaces = Mutex<HashMap<String, Arc<ProductMock>>>;

impl ProductHost {
    /// Serves the namespaces on `addr` (`127.0.0.1:0` for a free port of the loopback,
    /// `0.0.0.0:8080` in a container) on the current tokio runtime.
    ///
    /// # Errors
    /// The address could not be bound.
    pub async fn bind(addr: SocketAddr) -> std::io::Result<ProductHost> {
        let mocks = Arc::new(Mocks::Namespaced(Namespaces::default()));
        let router = Router::new().fallback(handle).with_state(mocks.clone());
        Ok(ProductHost {
            mocks,
            served: serve_resettable_on(addr, router).await?,
        })
    }

    /// Its base URL, `http://ADDRESS:PORT`.
    pub fn url(&self) -> &str {
        self.served.url()
    }

    /// How many namespaces hold a mock now.
    pub fn namespaces(&self) -> usize {
        match &*self.mocks {
            Mocks::One(_) => 1,
            Mocks::Namespaced(held) => held.lock().unwrap_or_else(PoisonError::into_inner).len(),
        }
    }
}

/// What a server serves: one mock at its root, or one per namespace.
#[derive(Debug)]
enum Mocks {
    One(Arc<ProductMock>),
    Namespaced(Namespaces),
}

async fn handle(
    State(mocks): State<Arc<Mocks>>,
    Extension(reset): Extension<ResetConnection>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (mock, path) = match &*mocks {
        Mocks::One(mock) => (mock.clone(), uri.path()),
        Mocks::Namespaced(held) => match namespace(held, &method, uri.path()) {
            Ok(found) => found,
            Err(answer) => return (answer.0, Json(answer.1)).into_response(),
        },
    };
    respond(&mock, &reset, &method, path, &headers, &body).await
}

/// The mock of the namespace `path` names (created on first use) and the rest of the path; or
/// the answer when the path names none, or forgets one.
fn namespace<'p>(
    held: &Namespaces,
    method: &Method,
    path: &'p str,
) -> Result<(Arc<ProductMock>, &'p str), (StatusCode, Value)> {
    let not_found = |why: &str| (StatusCode::NOT_FOUND, serde_json::json!({ "error": why }));
    let Some(rest) = path.strip_prefix("/ns/") else {
        return Err(not_found(
            "paths start with /ns/{namespace}: /ns/{namespace}/v1/... or /ns/{namespace}/_mock",
        ));
    };
    let (namespace, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    if namespace.is_empty() {
        return Err(not_found("no namespace"));
    }
    let mut held = held.lock().unwrap_or_else(PoisonError::into_inner);
    if path.is_empty() || path == "/" {
        if method != Method::DELETE {
            let why = "a namespace itself can only be deleted";
            return Err((
                StatusCode::METHOD_NOT_ALLOWED,
                serde_json::json!({ "error": why }),
            ));
        }
        let gone = held.remove(namespace).is_some();
        return Err((StatusCode::OK, serde_json::json!({ "forgotten": gone })));
    }
    let mock = held
        .entry(namespace.to_owned())
        .or_insert_with(|| Arc::new(ProductMock::new(namespace)))
        .clone();
    Ok((mock, path))
}

/// Answers one request to `mock`: a control call under `/_mock`, else a call of the sync API.
async fn respond(
    mock: &ProductMock,
    reset: &ResetConnection,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    if path == "/_mock" {
        if method != Method::POST {
            return StatusCode::METHOD_NOT_ALLOWED.into_response();
        }
        let (status, answer) = answer_control(mock, body);
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return (status, Json(answer)).into_response();
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let sent_at = header(SENT_AT)
        .and_then(|v| chrono::DateTime::parse_from_rfc3339(v).ok())
        .map(|at| at.to_utc());
    let request = Incoming {
        method: method.as_str(),
        path,
        key: header(IDEMPOTENCY_KEY),
        sent_at,
        body,
    };
    match mock.handle(request) {
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

/// Runs the control call in `body` on `mock`: the status and JSON body to answer.
fn answer_control(mock: &ProductMock, body: &[u8]) -> (u16, Value) {
    let op: Control = match serde_json::from_slice(body) {
        Ok(op) => op,
        Err(e) => {
            return (
                400,
                serde_json::json!({ "error": format!("not a control call: {e}") }),
            );
        }
    };
    let value = match op {
        Control::SetStrict { strict } => {
            mock.set_strict(strict);
            Value::Null
        }
        Control::IsStrict => json(mock.is_strict()),
        Control::SetHold { millis } => {
            mock.set_hold(Duration::from_millis(millis));
            Value::Null
        }
        Control::FailNext { fault, times } => {
            mock.fail_next(fault, times);
            Value::Null
        }
        Control::FaultRate { rate, seed } => {
            mock.fault_rate(rate, seed);
            Value::Null
        }
        Control::Outage { outage } => {
            mock.outage(outage);
            Value::Null
        }
        Control::ClearFaults => {
            mock.clear_faults();
            Value::Null
        }
        Control::RejectTenant { tenant, status } => {
            mock.reject_tenant(tenant, status);
            Value::Null
        }
        Control::AcceptTenant { tenant } => {
            mock.accept_tenant(tenant);
            Value::Null
        }
        Control::Drift { tenant } => json(mock.drift(tenant)),
        Control::ReplaceState { state } => {
            mock.replace_state(state);
            Value::Null
        }
        Control::ReadState => json(mock.read_state()),
        Control::Tenant { tenant } => json(mock.tenant(tenant)),
        Control::Journal => json(mock.journal()),
        Control::Requests => json(mock.requests()),
        Control::FaultsApplied => json(mock.faults_applied()),
        Control::Violations => json(mock.violations()),
        Control::AppliedTwice => json(mock.applied_twice()),
    };
    (200, value)
}

fn json(value: impl Serialize) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_call_or_fault_is_a_400_that_says_why() {
        let mock = ProductMock::new("p");
        let (status, body) = answer_control(&mock, br#"{"op":"explode"}"#);
        assert_eq!(status, 400);
        assert!(
            body["error"].as_str().unwrap().contains("explode"),
            "{body}"
        );
        let (status, body) =
            answer_control(&mock, br#"{"op":"fail_next","fault":"gone","times":1}"#);
        assert_eq!(status, 400);
        assert!(body["error"].as_str().unwrap().contains("gone"), "{body}");
        let (status, body) = answer_control(
            &mock,
            br#"{"op":"outage","outage":{"from":"2026-10-10T02:00:00Z","until":"2026-10-10T01:00:00Z","fault":"reset"}}"#,
        );
        assert_eq!(status, 400);
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("must end after it starts"),
            "{body}"
        );
    }
}
