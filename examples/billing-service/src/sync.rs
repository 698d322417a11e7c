//! Product sync: each product (analytics, crm, ...) holds a copy of its tenants, their
//! organizations' users and each tenant's latest subscription, and this module keeps the copies
//! right.
//!
//! - The outbox: every change queues rows copied from the views `product_users`,
//!   `product_tenants` and `product_subscriptions` (migration `product_sync`) in its own
//!   transaction, so a change and its sync commit or roll back together.
//! - Delivery ([`BillingService::deliver_due`]): the rows of one (product, customer) key go out
//!   in order, each under its row id as `Idempotency-Key` (a product applies a key once, so a
//!   delivery sent twice is applied once); a failure or a timeout waits
//!   [`DeliveryPolicy::backoff`] on the service's clock, and after
//!   [`DeliveryPolicy::max_attempts`] failures the row is a dead letter that holds back its key
//!   until [`BillingService::requeue_dead_letters`].
//! - The reconciler ([`BillingService::reconcile`]): reads each idle product's copy back,
//!   compares it with the views, and repairs what differs through the outbox.
//!
//! The wire format is the product sync API, version 1: `PUT` or `DELETE` of
//! `/v1/users/{id}`, `/v1/tenants/{id}` and `/v1/tenants/{id}/subscription` with JSON documents,
//! and `GET /v1/state` for the read-back. A `2xx` answer means applied; anything else, or no
//! answer within [`DeliveryPolicy::timeout`], means "send it again later".

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;
use sqlx::PgConnection;

use crate::Error;
use crate::service::{BillingService, CustomerId, SubscriptionId, UserId};

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
    policy: DeliveryPolicy,
}

impl Delivery {
    pub(crate) fn new(policy: DeliveryPolicy) -> Delivery {
        Delivery {
            client: reqwest::Client::builder().build().unwrap_or_default(),
            policy,
        }
    }

    /// Sends one outbox row to the product at `base_url`: `Ok` on a `2xx` answer, else why not.
    async fn send(&self, base_url: &str, row: &Pending) -> Result<(), String> {
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
    async fn state(&self, base_url: &str) -> Result<Value, String> {
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

    fn parse(word: &str) -> Option<Entity> {
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
async fn queue_upserts(
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

// ---------------------------------------------------------------------------------------------
// Delivery.

/// The first undelivered row of every (product, customer) key whose product has an endpoint: a
/// key whose head is a dead letter or waits for its backoff sends nothing after it.
const HEADS: &str = "select distinct on (o.product, o.customer_id) o.id, o.available_at, o.dead_at \
                     from product_outbox o join product_endpoints e on e.product = o.product \
                     where o.delivered_at is null \
                     order by o.product, o.customer_id, o.id";

/// An outbox row claimed for delivery.
#[derive(Debug, sqlx::FromRow)]
struct Pending {
    id: i64,
    customer_id: Option<i64>,
    entity: String,
    operation: String,
    entity_id: i64,
    payload: Value,
    attempts: i32,
    sync_url: String,
}

/// What one delivery run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivered {
    /// Rows a product applied (answered `2xx`).
    pub delivered: usize,
    /// Attempts that failed.
    pub failed: usize,
    /// Rows given up on in this run.
    pub dead_lettered: usize,
}

/// An outbox row, as [`BillingService::dead_letters`] lists it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OutboxRow {
    /// Its id: the idempotency key of its deliveries.
    pub id: i64,
    /// The product it goes to.
    pub product: String,
    /// The customer it is ordered with.
    pub customer_id: Option<i64>,
    /// `user`, `tenant` or `subscription`.
    pub entity: String,
    /// `upsert` or `delete`.
    pub operation: String,
    /// The entity's id.
    pub entity_id: i64,
    /// Failed attempts.
    pub attempts: i32,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

impl BillingService {
    /// Sends `product`'s sync writes to `sync_url` from now on (rows queued for a product
    /// without an endpoint wait for one).
    ///
    /// # Errors
    /// The database failed.
    pub async fn set_product_endpoint(&self, product: &str, sync_url: &str) -> Result<(), Error> {
        sqlx::query(
            "insert into product_endpoints (product, sync_url) values ($1, $2) \
             on conflict (product) do update set sync_url = excluded.sync_url",
        )
        .bind(product)
        .bind(sync_url)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Delivers every row due at the clock's now, in rounds of one row per (product, customer)
    /// key, each row locked (`for update skip locked`) while it is sent, so that two runs at
    /// once never send a row twice nor a key out of order. A failed row waits its backoff; the
    /// last allowed failure makes it a dead letter.
    ///
    /// # Errors
    /// The database failed (a product that fails is the row's failure, not the run's).
    pub async fn deliver_due(&self) -> Result<Delivered, Error> {
        let now = self.now();
        let policy = self.delivery.policy;
        let mut report = Delivered::default();
        loop {
            let mut tx = self.pool.begin().await?;
            let rows: Vec<Pending> = sqlx::query_as(&format!(
                "with heads as ({HEADS}) \
                 select o.id, o.customer_id, o.entity, o.operation, o.entity_id, o.payload, \
                        o.attempts, e.sync_url \
                 from product_outbox o join heads h on h.id = o.id \
                 join product_endpoints e on e.product = o.product \
                 where o.dead_at is null and o.available_at <= $1 \
                 order by o.id for update of o skip locked"
            ))
            .bind(now)
            .fetch_all(&mut *tx)
            .await?;
            if rows.is_empty() {
                tx.commit().await?;
                return Ok(report);
            }
            for row in &rows {
                let failure = self.delivery.send(&row.sync_url, row).await.err();
                let failures = u32::try_from(row.attempts).unwrap_or(0) + 1;
                let dead = failure.is_some() && failures >= policy.max_attempts;
                match &failure {
                    None => report.delivered += 1,
                    Some(_) => report.failed += 1,
                }
                report.dead_lettered += usize::from(dead);
                sqlx::query(
                    "update product_outbox set \
                       delivered_at = case when $2 is null then $3 end, \
                       attempts = attempts + case when $2 is null then 0 else 1 end, \
                       last_error = $2, \
                       available_at = case when $2 is null or $5 then available_at else $4 end, \
                       dead_at = case when $5 then $3 end \
                     where id = $1",
                )
                .bind(row.id)
                .bind(&failure)
                .bind(now)
                .bind(now + policy.backoff(failures))
                .bind(dead)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        }
    }

    /// The instant delivery next has work, from `after` on (a row already due counts as due at
    /// `after`), if it is no later than `until`.
    ///
    /// # Errors
    /// The database failed.
    pub async fn next_delivery(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, Error> {
        Ok(sqlx::query_scalar(&format!(
            "select min(greatest(h.available_at, $1)) from ({HEADS}) h \
             where h.dead_at is null and h.available_at <= $2"
        ))
        .bind(after)
        .bind(until)
        .fetch_one(&self.pool)
        .await?)
    }

    /// The rows given up on, oldest first.
    ///
    /// # Errors
    /// The database failed.
    pub async fn dead_letters(&self) -> Result<Vec<OutboxRow>, Error> {
        Ok(sqlx::query_as(
            "select id, product, customer_id, entity, operation, entity_id, attempts, last_error \
             from product_outbox where dead_at is not null and delivered_at is null order by id",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Puts every dead letter back in the queue from now, its attempts counted anew; how many.
    ///
    /// # Errors
    /// The database failed.
    pub async fn requeue_dead_letters(&self) -> Result<u64, Error> {
        let done = sqlx::query(
            "update product_outbox set dead_at = null, attempts = 0, \
               available_at = greatest($1, created_at) \
             where dead_at is not null and delivered_at is null",
        )
        .bind(self.now())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}

// ---------------------------------------------------------------------------------------------
// The reconciler.

/// One way a product's copy differs from what it must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    /// The product.
    pub product: String,
    /// What differs.
    pub entity: Entity,
    /// The user's or tenant's id; a subscription's tenant.
    pub id: i64,
    /// How.
    pub kind: DriftKind,
}

/// How an entity differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriftKind {
    /// The product lacks it.
    Missing,
    /// The product has it, and must not.
    Extra,
    /// Both have it, with different documents.
    Differs,
}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let how = match self.kind {
            DriftKind::Missing => "is missing in the product",
            DriftKind::Extra => "is in the product but not in the service",
            DriftKind::Differs => "differs",
        };
        let what = match self.entity {
            Entity::Subscription => format!("the subscription of tenant {}", self.id),
            e => format!("{e} {}", self.id),
        };
        write!(f, "{}: {what} {how}", self.product)
    }
}

/// What a reconciler run found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reconciliation {
    /// Every difference found, product by product.
    pub drift: Vec<Drift>,
    /// Products not compared because rows to them are undelivered (their differences may be on
    /// their way): compare when delivery is idle.
    pub busy: Vec<String>,
}

impl BillingService {
    /// Compares every idle product with what it must hold and queues the writes that repair
    /// it, through the outbox like any change: upserts for what is missing or differs,
    /// deletions for what is extra. Running it again before the repairs are delivered finds the
    /// product busy; after, nothing.
    ///
    /// # Errors
    /// The database failed, or a product's copy could not be read back.
    pub async fn reconcile(&self) -> Result<Reconciliation, Error> {
        let now = self.now();
        let endpoints: Vec<(String, String, bool)> = sqlx::query_as(
            "select e.product, e.sync_url, exists (select 1 from product_outbox o \
                    where o.product = e.product and o.delivered_at is null) \
             from product_endpoints e order by e.product",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = Reconciliation::default();
        for (product, url, busy) in endpoints {
            if busy {
                out.busy.push(product);
                continue;
            }
            let state =
                self.delivery
                    .state(&url)
                    .await
                    .map_err(|reason| Error::ProductUnreadable {
                        product: product.clone(),
                        reason,
                    })?;
            let drift = compare(&product, &self.must_hold(&product).await?, &held(&state));
            let mut tx = self.pool.begin().await?;
            for d in &drift {
                repair(&mut tx, d, now).await?;
            }
            tx.commit().await?;
            out.drift.extend(drift);
        }
        Ok(out)
    }

    /// The documents `product` must hold, by entity and id (a subscription by its tenant).
    async fn must_hold(&self, product: &str) -> Result<BTreeMap<(Entity, i64), Value>, Error> {
        let rows: Vec<(String, i64, Value)> = sqlx::query_as(
            "select 'user', entity_id, payload from product_users where product = $1 \
             union all select 'tenant', entity_id, payload from product_tenants where product = $1 \
             union all select 'subscription', customer_id, payload from product_subscriptions \
                       where product = $1",
        )
        .bind(product)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(entity, id, doc)| Some(((Entity::parse(&entity)?, id), doc)))
            .collect())
    }
}

/// A product's read-back (`{"users": [...], "tenants": [...], "subscriptions": [...]}`) by
/// entity and id.
fn held(state: &Value) -> BTreeMap<(Entity, i64), Value> {
    let mut out = BTreeMap::new();
    for (list, entity, id) in [
        ("users", Entity::User, "id"),
        ("tenants", Entity::Tenant, "id"),
        ("subscriptions", Entity::Subscription, "tenant_id"),
    ] {
        let docs = state
            .get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten();
        for doc in docs {
            if let Some(key) = doc.get(id).and_then(Value::as_i64) {
                out.insert((entity, key), doc.clone());
            }
        }
    }
    out
}

/// What differs between what `product` must hold and what it holds.
fn compare(
    product: &str,
    must: &BTreeMap<(Entity, i64), Value>,
    held: &BTreeMap<(Entity, i64), Value>,
) -> Vec<Drift> {
    let drift = |(entity, id): (Entity, i64), kind| Drift {
        product: product.to_owned(),
        entity,
        id,
        kind,
    };
    let mut out: Vec<Drift> = must
        .iter()
        .filter_map(|(&key, doc)| match held.get(&key) {
            None => Some(drift(key, DriftKind::Missing)),
            Some(got) if got != doc => Some(drift(key, DriftKind::Differs)),
            Some(_) => None,
        })
        .collect();
    out.extend(
        held.keys()
            .filter(|key| !must.contains_key(key))
            .map(|&key| drift(key, DriftKind::Extra)),
    );
    out
}

/// Queues the write that repairs `d`.
async fn repair(conn: &mut PgConnection, d: &Drift, at: DateTime<Utc>) -> Result<(), sqlx::Error> {
    match (d.kind, d.entity) {
        (DriftKind::Extra, Entity::User) => {
            queue_delete(conn, &d.product, None, Entity::User, d.id, at).await
        }
        (DriftKind::Extra, entity) => {
            queue_delete(conn, &d.product, Some(d.id), entity, d.id, at).await
        }
        (_, Entity::Subscription) => {
            let by = "customer_id";
            queue_upserts(conn, Entity::Subscription, by, d.id, Some(&d.product), at).await
        }
        (_, entity) => queue_upserts(conn, entity, "entity_id", d.id, Some(&d.product), at).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_finds_missing_extra_and_different_documents() {
        let must = BTreeMap::from([
            (
                (Entity::Tenant, 1),
                serde_json::json!({"id": 1, "name": "a"}),
            ),
            (
                (Entity::Tenant, 2),
                serde_json::json!({"id": 2, "name": "b"}),
            ),
        ]);
        let state = serde_json::json!({
            "users": [{"id": 5}],
            "tenants": [{"id": 2, "name": "c"}],
            "subscriptions": [],
        });
        let drift = compare("p", &must, &held(&state));
        let text: Vec<String> = drift.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "p: tenant 1 is missing in the product",
                "p: tenant 2 differs",
                "p: user 5 is in the product but not in the service",
            ]
        );
    }

    #[test]
    fn a_subscription_is_held_by_its_tenant() {
        let state = serde_json::json!({"subscriptions": [{"id": 9, "tenant_id": 3}]});
        assert!(held(&state).contains_key(&(Entity::Subscription, 3)));
    }
}
