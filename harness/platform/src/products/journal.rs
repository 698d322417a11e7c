//! A product's journal as a snapshot shows it: each request's method, route, body, fault and
//! answer, with every id and timestamp replaced by a placeholder, so that the same run gives the
//! same text on every machine.

use serde::Serialize;
use serde_json::Value;

use super::Fault;
use super::mock::ProductRequest;

/// One journal entry with ids and timestamps redacted; made by [`redacted`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RedactedRequest {
    /// `PUT`, `DELETE` or `GET`.
    pub method: String,
    /// The path with its id as a placeholder (`/v1/tenants/{tenant}`).
    pub route: String,
    /// The JSON body, with `id`, `*_id` as `"[id]"` and `*_at` as `"[timestamp]"`.
    pub body: Option<Value>,
    /// The fault put on it.
    pub fault: Option<Fault>,
    /// The status answered; `None` when no answer reached the client.
    pub status: Option<u16>,
    /// Whether it changed the product's state.
    pub applied: bool,
    /// A repeated idempotency key, answered without applying it again.
    pub replay: bool,
}

/// `journal` with ids and timestamps redacted, in the same order.
pub fn redacted(journal: &[ProductRequest]) -> Vec<RedactedRequest> {
    journal
        .iter()
        .map(|r| RedactedRequest {
            method: r.method.clone(),
            route: r.route.clone(),
            body: r.body.clone().map(redact),
            fault: r.fault,
            status: r.status,
            applied: r.applied,
            replay: r.replay,
        })
        .collect()
}

/// Replaces ids and timestamps at any depth of `value`.
fn redact(mut value: Value) -> Value {
    match &mut value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if k == "id" || k.ends_with("_id") {
                    *v = Value::String("[id]".into());
                } else if k.ends_with("_at") {
                    *v = Value::String("[timestamp]".into());
                } else {
                    *v = redact(v.take());
                }
            }
        }
        Value::Array(items) => {
            for v in items.iter_mut() {
                *v = redact(v.take());
            }
        }
        _ => {}
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_timestamps_are_redacted_at_any_depth_and_nothing_else() {
        let body = serde_json::json!({
            "id": 7, "tenant_id": 3, "plan": "pro", "started_on": "2026-11-01",
            "limits": { "seats": 10 }, "items": [{ "user_id": 1, "created_at": "x" }]
        });
        assert_eq!(
            redact(body),
            serde_json::json!({
                "id": "[id]", "tenant_id": "[id]", "plan": "pro", "started_on": "2026-11-01",
                "limits": { "seats": 10 }, "items": [{ "user_id": "[id]", "created_at": "[timestamp]" }]
            })
        );
    }
}
