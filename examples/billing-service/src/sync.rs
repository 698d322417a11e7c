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
//!
//! The outbox itself, what products hold ([`Entity`]), the [`DeliveryPolicy`] and the HTTP
//! client sit in the private `outbox` module below [`crate::service`], whose operations queue
//! rows; the runs here are `BillingService` methods above it.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgConnection;

pub use crate::outbox::{DeliveryPolicy, Entity};

use crate::Error;
use crate::outbox::{Pending, queue_delete, queue_upserts};
use crate::service::BillingService;

// ---------------------------------------------------------------------------------------------
// Delivery.

/// The first undelivered row of every (product, customer) key whose product has an endpoint: a
/// key whose head is a dead letter or waits for its backoff sends nothing after it.
const HEADS: &str = "select distinct on (o.product, o.customer_id) o.id, o.available_at, o.dead_at \
                     from product_outbox o join product_endpoints e on e.product = o.product \
                     where o.delivered_at is null \
                     order by o.product, o.customer_id, o.id";

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
