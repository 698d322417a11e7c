//! The product sync API, version 1: what the platform sends a product and what a product answers,
//! as plain data that the dispatcher, the mock and a product team's own server share.
//!
//! | call | meaning |
//! |---|---|
//! | `PUT /v1/users/{id}` with a [`UserDoc`] | create or replace a user |
//! | `DELETE /v1/users/{id}` | forget a user (no tenant of its organization is left on the product) |
//! | `PUT /v1/tenants/{id}` with a [`TenantDoc`] | create or replace a tenant |
//! | `DELETE /v1/tenants/{id}` | delete a tenant and its subscription |
//! | `PUT /v1/tenants/{id}/subscription` with a [`SubscriptionDoc`] | set a tenant's subscription |
//! | `DELETE /v1/tenants/{id}/subscription` | remove a tenant's subscription |
//! | `GET /v1/state` | read-back: every user, tenant and subscription held, as a [`ProductState`] |
//! | `GET /v1/tenants/{id}` | read-back of one tenant: a [`TenantState`], or `404` |
//!
//! Every write carries an `Idempotency-Key` header (the outbox row's id): a product applies a key
//! at most once and answers a repeated key as it answered the first time. Writes of one tenant
//! arrive in the order the platform made them; a `2xx` answer means "applied", anything else (or
//! no answer) means "send it again later". Bodies are JSON; unknown fields are an error.
//!
//! Every request also carries `Sync-Sent-At`: the instant the platform sent it, on the platform's
//! clock (a test's clock in a test), as RFC 3339. A product may ignore it; the product mock uses
//! it to place a request inside or outside an outage window.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The version in every path.
pub const VERSION: &str = "v1";

/// The header that carries a write's idempotency key.
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

/// The header that carries the instant a request was sent, on the platform's clock (RFC 3339).
pub const SENT_AT: &str = "Sync-Sent-At";

/// A user as a product holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserDoc {
    /// The platform's user id.
    pub id: i64,
    /// The user's organization.
    pub organization_id: i64,
    /// E-mail address (the login).
    pub email: String,
    /// Full name.
    pub name: String,
    /// `owner`, `admin` or `member` in the organization.
    pub role: String,
    /// Locale, e.g. `ko-KR`.
    pub locale: String,
}

/// A tenant (one deployment of the product) as a product holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantDoc {
    /// The platform's tenant id.
    pub id: i64,
    /// The owning organization.
    pub organization_id: i64,
    /// Display name.
    pub name: String,
    /// URL slug.
    pub slug: String,
    /// Deployment sizing agreed with sales (cpu, memory, storage...), a JSON object.
    pub spec: serde_json::Map<String, serde_json::Value>,
    /// `provisioning`, `active` or `suspended`.
    pub status: String,
}

/// A tenant's subscription as a product holds it: what it may serve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionDoc {
    /// The platform's subscription id.
    pub id: i64,
    /// Its tenant.
    pub tenant_id: i64,
    /// The plan's key.
    pub plan: String,
    /// `active`, `past_due` or `cancelled`, the platform's words.
    pub status: String,
    /// First day of service.
    pub started_on: String,
    /// First day without service, once cancelled.
    pub cancelled_on: Option<String>,
    /// Limits of the current contract, e.g. `seats`.
    pub limits: std::collections::BTreeMap<String, i64>,
}

/// Everything a product holds, as `GET /v1/state` answers it (each list sorted by id).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductState {
    /// Users.
    pub users: Vec<UserDoc>,
    /// Tenants.
    pub tenants: Vec<TenantDoc>,
    /// One subscription per tenant that has one, sorted by tenant.
    pub subscriptions: Vec<SubscriptionDoc>,
}

/// One tenant as `GET /v1/tenants/{id}` answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantState {
    /// The tenant.
    pub tenant: TenantDoc,
    /// Its subscription, if any.
    pub subscription: Option<SubscriptionDoc>,
}

/// The kinds of entity a product receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Entity {
    /// A [`UserDoc`].
    User,
    /// A [`TenantDoc`].
    Tenant,
    /// A [`SubscriptionDoc`].
    Subscription,
}

impl Entity {
    /// Its word in the outbox and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Entity::User => "user",
            Entity::Tenant => "tenant",
            Entity::Subscription => "subscription",
        }
    }

    /// The entity named `word`.
    pub fn parse(word: &str) -> Option<Entity> {
        [Entity::User, Entity::Tenant, Entity::Subscription]
            .into_iter()
            .find(|e| e.as_str() == word)
    }
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A write to a product: what one outbox row becomes on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Write {
    /// What it is about.
    pub entity: Entity,
    /// `true` for a `DELETE`, `false` for a `PUT`.
    pub delete: bool,
    /// The user's, the tenant's (for a tenant or a subscription) id in the path.
    pub path_id: i64,
    /// The body of a `PUT`.
    pub body: Option<serde_json::Value>,
}

impl Write {
    /// `PUT` or `DELETE`.
    pub fn method(&self) -> &'static str {
        if self.delete { "DELETE" } else { "PUT" }
    }

    /// The path, e.g. `/v1/tenants/7/subscription`.
    pub fn path(&self) -> String {
        let id = self.path_id;
        match self.entity {
            Entity::User => format!("/{VERSION}/users/{id}"),
            Entity::Tenant => format!("/{VERSION}/tenants/{id}"),
            Entity::Subscription => format!("/{VERSION}/tenants/{id}/subscription"),
        }
    }

    /// The path with its id replaced by a placeholder, e.g. `/v1/tenants/{tenant}/subscription`:
    /// the same for every run, for snapshots and contracts.
    pub fn route(&self) -> &'static str {
        match self.entity {
            Entity::User => "/v1/users/{user}",
            Entity::Tenant => "/v1/tenants/{tenant}",
            Entity::Subscription => "/v1/tenants/{tenant}/subscription",
        }
    }

    /// Parses a request line back into a write (the body is given separately); `None` for a path
    /// outside the API.
    pub fn parse(method: &str, path: &str, body: Option<serde_json::Value>) -> Option<Write> {
        let delete = match method {
            "PUT" => false,
            "DELETE" => true,
            _ => return None,
        };
        let rest = path.strip_prefix("/v1/")?;
        let parts: Vec<&str> = rest.split('/').collect();
        let (entity, id) = match parts.as_slice() {
            ["users", id] => (Entity::User, id),
            ["tenants", id] => (Entity::Tenant, id),
            ["tenants", id, "subscription"] => (Entity::Subscription, id),
            _ => return None,
        };
        Some(Write {
            entity,
            delete,
            path_id: id.parse().ok()?,
            body: if delete { None } else { body },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_round_trips_through_its_path() {
        for entity in [Entity::User, Entity::Tenant, Entity::Subscription] {
            for delete in [false, true] {
                let w = Write {
                    entity,
                    delete,
                    path_id: 42,
                    body: (!delete).then(|| serde_json::json!({"id": 42})),
                };
                assert_eq!(
                    Write::parse(w.method(), &w.path(), w.body.clone()),
                    Some(w.clone())
                );
                assert!(w.route().starts_with("/v1/") && w.route().contains('{'));
            }
        }
        assert_eq!(Write::parse("GET", "/v1/users/1", None), None);
        assert_eq!(Write::parse("PUT", "/v2/users/1", None), None);
        assert_eq!(Write::parse("PUT", "/v1/users/x", None), None);
        assert_eq!(Entity::parse("tenant"), Some(Entity::Tenant));
        assert_eq!(Entity::parse("org"), None);
    }
}
