//! The lower half of product sync, what the service's operations need: which entities a
//! product holds copies of ([`Entity`]), the outbox rows every change queues in its own
//! transaction, and the HTTP client that sends one row or reads a product's copy back under a
//! [`DeliveryPolicy`] (the wire format is described in [`crate::sync`]).
//!
//! The runs over the outbox, delivery, dead letters and the reconciler, are methods of the
//! service in [`crate::sync`], above [`crate::service`]; this module names neither.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;
use sqlx::PgConnection;

use crate::ids::{CustomerId, SubscriptionId, UserId};

/// The header that carries a write's idempotency key.
const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

/// How deliveries are retried and how long a product has to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryPolicy {
    /// Failed attempts after which a row is a dead letter (default 6).
    pub max_attempts: u32,
    /// The wait after the first failure; it doubles after each further one (default 2 s).
    pub base_backoff: TimeDelta,
    /// The longest wait (default 5 minutes).
    pub max_backoff: TimeDelta,
    /// How long a product has to answer one write, in real time (default 2 s).
    pub timeout: Duration,
}

impl Default for DeliveryPolicy {
    fn default() -> DeliveryPolicy {
        DeliveryPolicy {
            max_attempts: 6,
            base_backoff: TimeDelta::seconds(2),
            max_backoff: TimeDelta::minutes(5),
            timeout: Duration::from_secs(2),
        }
    }
}

impl DeliveryPolicy {
    /// The wait after a row's `failures`-th failure (from 1): `base × 2^(failures-1)`, at most
    /// `max_backoff`.
    ///
    /// ```
    /// use chrono::TimeDelta;
    /// use example_billing_service::sync::DeliveryPolicy;
    ///
    /// let policy = DeliveryPolicy::default();
    /// let waits: Vec<i64> = (1..=5).map(|n| policy.backoff(n).num_seconds()).collect();
    /// assert_eq!(waits, [2, 4, 8, 16, 32]);
    /// assert_eq!(policy.backoff(30), TimeDelta::minutes(5));
    /// ```
    pub fn backoff(&self, failures: u32) -> TimeDelta {
        let exponent = failures.saturating_sub(1).min(20);
        let wait = self
            .base_backoff
            .num_milliseconds()
            .max(1)
            .saturating_mul(1 << exponent);
        TimeDelta::milliseconds(wait.min(self.max_backoff.num_milliseconds().max(1)))
    }
}

/// The HTTP client deliveries and read-backs go through, with their policy.
#[derive(Debug, Clone)]
pub(crate) struct Delivery {
    client: reqwest::Client,
    /// The retries and timeouts it runs under; the delivery runs read it too.
    pub(crate) policy: DeliveryPolicy,
}

impl Delivery {
    pub(crate) fn new(policy: DeliveryPolicy) -> Delivery {
        Delivery {
            client: reqwest::Client::builder().build().unwrap_or_default(),
            policy,
        }
    }

    /// Sends one outbox row to the product at `base_url`: `Ok` on a `2xx` answer, else why not.
    pub(crate) async fn send(&self, base_url: &str, row: &Pending) -> Result<(), String> {
        let entity = Entity::parse(&row.entity)
            .ok_or_else(|| format!("the row's entity {} is not synced", row.entity))?;
        let path_id = match entity {
            Entity::User | Entity::Tenant => row.entity_id,
            Entity::Subscription => row
                .customer_id
                .ok_or("a subscription row without its tenant")?,
        };
        let url = format!("{}{}", base_url.trim_end_matches('/'), entity.path(path_id));
        let delete = row.operation == "delete";
        let method = if delete {
            reqwest::Method::DELETE
        } else {
            reqwest::Method::PUT
        };
        let mut request = self
            .client
            .request(method, url)
            .timeout(self.policy.timeout)
            .header(IDEMPOTENCY_KEY, row.id.to_string());
        if !delete {
            request = request.json(&row.payload);
        }
        match request.send().await {
            Ok(answer) if answer.status().is_success() => Ok(()),
            Ok(answer) => Err(format!("the product answered {}", answer.status())),
            Err(e) => Err(self.failure(&e)),
        }
    }

    /// What the product at `base_url` holds (`GET /v1/state`).
    pub(crate) async fn state(&self, base_url: &str) -> Result<Value, String> {
        let url = format!("{}/v1/state", base_url.trim_end_matches('/'));
        let answer = self
            .client
            .get(url)
            .timeout(self.policy.timeout.max(Duration::from_secs(5)))
            .send()
            .await
            .map_err(|e| self.failure(&e))?;
        if !answer.status().is_success() {
            return Err(format!("the product answered {}", answer.status()));
        }
        answer
            .json()
            .await
            .map_err(|e| format!("the state does not parse: {e}"))
    }

    fn failure(&self, e: &reqwest::Error) -> String {
        if e.is_timeout() {
            format!("no answer within {:?}", self.policy.timeout)
        } else {
            format!("the request failed: {e}")
        }
    }
}

/// What a product holds copies of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Entity {
    /// A user of a tenant's organization.
    User,
    /// A tenant: a customer of the product in an organization.
    Tenant,
    /// A tenant's latest subscription.
    Subscription,
}

impl Entity {
    /// Its word in the outbox: `user`, `tenant`, `subscription`.
    pub fn as_str(self) -> &'static str {
        match self {
            Entity::User => "user",
            Entity::Tenant => "tenant",
            Entity::Subscription => "subscription",
        }
    }

    pub(crate) fn parse(word: &str) -> Option<Entity> {
        [Entity::User, Entity::Tenant, Entity::Subscription]
            .into_iter()
            .find(|e| e.as_str() == word)
    }

    /// The view that says what products must hold of it.
    fn view(self) -> &'static str {
        match self {
            Entity::User => "product_users",
            Entity::Tenant => "product_tenants",
            Entity::Subscription => "product_subscriptions",
        }
    }

    /// Its path in the sync API: the user's or tenant's id; a subscription's tenant.
    fn path(self, id: i64) -> String {
        match self {
            Entity::User => format!("/v1/users/{id}"),
            Entity::Tenant => format!("/v1/tenants/{id}"),
            Entity::Subscription => format!("/v1/tenants/{id}/subscription"),
        }
    }
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// ---------------------------------------------------------------------------------------------
// The outbox: what every change queues.

/// Queues the upserts of `entity` whose view column `column` is `id` (of `product` only, when
/// given), one row per (product, customer), in the caller's transaction.
pub(crate) async fn queue_upserts(
    conn: &mut PgConnection,
    entity: Entity,
    column: &str,
    id: i64,
    product: Option<&str>,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "insert into product_outbox \
           (product, customer_id, entity, operation, entity_id, payload, created_at, available_at) \
         select product, customer_id, $2, 'upsert', entity_id, payload, $3, $3 from {} \
         where {column} = $1 and ($4::text is null or product = $4) \
         order by customer_id, entity_id",
        entity.view()
    ))
    .bind(id)
    .bind(entity.as_str())
    .bind(at)
    .bind(product)
    .execute(conn)
    .await
    .map(drop)
}

/// Queues a new tenant for its product: its organization's users first, then the tenant.
/// Nothing for a customer without a product or an organization.
pub(crate) async fn queue_tenant(
    conn: &mut PgConnection,
    customer: CustomerId,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    queue_upserts(
        &mut *conn,
        Entity::User,
        "customer_id",
        customer.0,
        None,
        at,
    )
    .await?;
    queue_upserts(conn, Entity::Tenant, "customer_id", customer.0, None, at).await
}

/// Queues a subscription's new state (plan, status, limits) for its tenant's product.
pub(crate) async fn queue_subscription(
    conn: &mut PgConnection,
    subscription: SubscriptionId,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    queue_upserts(
        conn,
        Entity::Subscription,
        "entity_id",
        subscription.0,
        None,
        at,
    )
    .await
}

/// Queues a user for the product of each tenant of its organization.
pub(crate) async fn queue_user(
    conn: &mut PgConnection,
    user: UserId,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    queue_upserts(conn, Entity::User, "entity_id", user.0, None, at).await
}

/// Queues the deletion of `entity` `id` on `product`, ordered with `customer`'s key.
pub(crate) async fn queue_delete(
    conn: &mut PgConnection,
    product: &str,
    customer: Option<i64>,
    entity: Entity,
    id: i64,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into product_outbox \
           (product, customer_id, entity, operation, entity_id, payload, created_at, available_at) \
         values ($1, $2, $3, 'delete', $4, jsonb_build_object('id', $4::bigint), $5, $5)",
    )
    .bind(product)
    .bind(customer)
    .bind(entity.as_str())
    .bind(id)
    .bind(at)
    .execute(conn)
    .await
    .map(drop)
}

/// An outbox row claimed for delivery: the delivery run reads its id, attempts and endpoint,
/// [`Delivery::send`] the rest.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct Pending {
    pub(crate) id: i64,
    customer_id: Option<i64>,
    entity: String,
    operation: String,
    entity_id: i64,
    payload: Value,
    pub(crate) attempts: i32,
    pub(crate) sync_url: String,
}
