//! The reconciler: level-triggered, like a Kubernetes controller. For each product that answers
//! its read-back it re-queues what waits for it (dead letters, rows backing off) and delivers
//! it, then compares what the product holds with the sync views and repairs the difference
//! through the outbox. Whatever a product missed while it was down, it holds the platform's data
//! once one reconcile finds it answering.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;

use super::delivery::{SyncPolicy, dispatch};
use super::outbox::{Column, queue_upserts};
use crate::platform::DomainError;
use crate::products::SyncClient;
use crate::products::api::{Entity, ProductState};

/// One way a product differs from the platform.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Drift {
    /// The product's key.
    pub product: String,
    /// What differs.
    pub entity: Entity,
    /// The entity's id (a subscription's tenant, for subscriptions).
    pub id: i64,
    /// How.
    pub kind: DriftKind,
}

/// How an entity differs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum DriftKind {
    /// The platform has it, the product does not.
    Missing,
    /// The product has it, the platform does not.
    Extra,
    /// Both have it, with these fields different.
    Differs {
        /// Field, the platform's value, the product's value.
        fields: Vec<(String, Value, Value)>,
    },
}

impl Drift {
    /// The drift in words, each entity named by `name(entity, id)` (a subscription by its
    /// tenant's name): `analytics: the subscription of tenant acme differs: plan is "drifted" in
    /// the product, "pro" on the platform;`. [`fmt::Display`] names them by id.
    pub fn describe(&self, name: impl Fn(Entity, i64) -> String) -> String {
        let what = match self.entity {
            Entity::Subscription => {
                format!("the subscription of {}", name(Entity::Tenant, self.id))
            }
            e => name(e, self.id),
        };
        match &self.kind {
            DriftKind::Missing => format!("{}: {what} is missing in the product", self.product),
            DriftKind::Extra => format!(
                "{}: {what} is in the product but not on the platform",
                self.product
            ),
            DriftKind::Differs { fields } => {
                let mut out = format!("{}: {what} differs:", self.product);
                for (field, platform, product) in fields {
                    out.push_str(&format!(
                        " {field} is {product} in the product, {platform} on the platform;"
                    ));
                }
                out
            }
        }
    }
}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe(|entity, id| format!("{entity} {id}")))
    }
}

/// A drift report as a person reads it: one line per drift.
pub fn drift_report(drift: &[Drift]) -> String {
    drift.iter().map(|d| format!("  - {d}\n")).collect()
}

/// What the platform says `product` must hold, as the product would answer `GET /v1/state`:
/// keyed by entity and id, the document as JSON.
async fn expected(
    pool: &PgPool,
    product: i64,
) -> Result<BTreeMap<(Entity, i64), Value>, sqlx::Error> {
    let rows: Vec<(String, i64, Value)> = sqlx::query_as(
        "select distinct on (entity_id) 'user', entity_id, payload from sync_users where product_id = $1 \
         union all select 'tenant', entity_id, payload from sync_tenants where product_id = $1 \
         union all select 'subscription', tenant_id, payload from sync_subscriptions where product_id = $1",
    )
    .bind(product)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(entity, id, payload)| Some(((Entity::parse(&entity)?, id), payload)))
        .collect())
}

fn held(state: &ProductState) -> BTreeMap<(Entity, i64), Value> {
    fn json(doc: &impl Serialize) -> Value {
        serde_json::to_value(doc).unwrap_or(Value::Null)
    }
    let users = state.users.iter().map(|u| ((Entity::User, u.id), json(u)));
    let tenants = state
        .tenants
        .iter()
        .map(|t| ((Entity::Tenant, t.id), json(t)));
    let subscriptions = state
        .subscriptions
        .iter()
        .map(|s| ((Entity::Subscription, s.tenant_id), json(s)));
    users.chain(tenants).chain(subscriptions).collect()
}

/// Compares what the platform says a product must hold with what it holds.
fn compare(
    product: &str,
    expected: &BTreeMap<(Entity, i64), Value>,
    held: &BTreeMap<(Entity, i64), Value>,
) -> Vec<Drift> {
    let mut drift = Vec::new();
    for (&(entity, id), want) in expected {
        let kind = match held.get(&(entity, id)) {
            None => DriftKind::Missing,
            Some(got) if got == want => continue,
            Some(got) => DriftKind::Differs {
                fields: differing_fields(want, got),
            },
        };
        drift.push(Drift {
            product: product.to_owned(),
            entity,
            id,
            kind,
        });
    }
    for &(entity, id) in held.keys() {
        if !expected.contains_key(&(entity, id)) {
            drift.push(Drift {
                product: product.to_owned(),
                entity,
                id,
                kind: DriftKind::Extra,
            });
        }
    }
    drift
}

fn differing_fields(want: &Value, got: &Value) -> Vec<(String, Value, Value)> {
    let (Some(want), Some(got)) = (want.as_object(), got.as_object()) else {
        return vec![(String::new(), want.clone(), got.clone())];
    };
    let mut keys: Vec<&String> = want.keys().chain(got.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|k| {
            let (w, g) = (
                want.get(k).cloned().unwrap_or(Value::Null),
                got.get(k).cloned().unwrap_or(Value::Null),
            );
            (w != g).then(|| (k.clone(), w, g))
        })
        .collect()
}

/// What a reconciler run found and did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Reconciliation {
    /// Every difference found, product by product (with `repair`, queued and sent).
    pub drift: Vec<Drift>,
    /// Products not compared because rows for them were still undelivered (compare when idle).
    pub busy: Vec<String>,
    /// Products that did not answer the read-back: not compared, and nothing re-queued for them.
    pub unreachable: Vec<String>,
    /// Rows put back in the queue for products that answered: dead letters, and rows whose
    /// backoff had not ended.
    pub requeued: usize,
    /// Outbox rows queued to repair the drift.
    pub repairs: usize,
}

/// Compares every product that has a `sync_url` and answers its read-back with the platform, in
/// key order; a product that does not answer is listed as unreachable and left alone.
///
/// With `repair`, at `at`, for each product that answers: its dead letters are re-queued (each
/// with a whole retry horizon again) and its rows waiting for a backoff made due, in their
/// order, and what is due is delivered (`dispatch`, as the clock would at `at`); once nothing of
/// it is undelivered it is compared, and the writes that bring it back (upserts for missing or
/// different entities, deletions for extra ones) are queued through the outbox like any change
/// and delivered. So a product that answers again holds the platform's data when the reconcile
/// returns, unless its writes still fail. A later row of a key never overtakes an earlier one:
/// re-queued rows keep their place, repairs come after them.
///
/// Without `repair` nothing is written: a product with undelivered rows is skipped (listed as
/// busy), since its differences may be on their way.
///
/// # Errors
/// The database failed.
pub async fn reconcile(
    pool: &PgPool,
    client: &SyncClient,
    policy: &SyncPolicy,
    repair: bool,
    at: DateTime<Utc>,
) -> Result<Reconciliation, DomainError> {
    let products: Vec<(i64, String, String)> = sqlx::query_as(
        "select id, key, sync_url from products where sync_url is not null order by key",
    )
    .fetch_all(pool)
    .await?;
    let mut out = Reconciliation::default();
    for (id, key, url) in products {
        let Ok(mut state) = client.state(&url, at).await else {
            out.unreachable.push(key);
            continue;
        };
        if undelivered_rows(pool, id).await? > 0 {
            if !repair {
                out.busy.push(key);
                continue;
            }
            out.requeued += requeue_product(pool, id, at).await?;
            dispatch(pool, client, policy, at).await?;
            if undelivered_rows(pool, id).await? > 0 {
                out.busy.push(key);
                continue;
            }
            let Ok(after) = client.state(&url, at).await else {
                out.unreachable.push(key);
                continue;
            };
            state = after;
        }
        let drift = compare(&key, &expected(pool, id).await?, &held(&state));
        if repair && !drift.is_empty() {
            out.repairs += queue_repairs(pool, id, &drift, at).await?;
            dispatch(pool, client, policy, at).await?;
        }
        out.drift.extend(drift);
    }
    Ok(out)
}

/// How many rows to `product` are not delivered yet, live or dead.
async fn undelivered_rows(pool: &PgPool, product: i64) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "select count(*) from sync_outbox where product_id = $1 and dispatched_at is null",
    )
    .bind(product)
    .fetch_one(pool)
    .await
}

/// Puts every row waiting for `product` back in the queue from `at`: a dead letter with a whole
/// horizon again (no attempts, no failure yet), a row whose backoff has not ended due now.
/// Returns how many.
async fn requeue_product(
    pool: &PgPool,
    product: i64,
    at: DateTime<Utc>,
) -> Result<usize, sqlx::Error> {
    let done = sqlx::query(
        "update sync_outbox set \
           attempts = case when dead_at is null then attempts else 0 end, \
           failing_since = case when dead_at is null then failing_since end, \
           dead_at = null, \
           available_at = greatest($2, created_at) \
         where product_id = $1 and dispatched_at is null \
           and (dead_at is not null or available_at > $2)",
    )
    .bind(product)
    .bind(at)
    .execute(pool)
    .await?;
    Ok(usize::try_from(done.rows_affected()).unwrap_or(usize::MAX))
}

async fn queue_repairs(
    pool: &PgPool,
    product: i64,
    drift: &[Drift],
    at: DateTime<Utc>,
) -> Result<usize, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let before: i64 = sqlx::query_scalar("select count(*) from sync_outbox")
        .fetch_one(&mut *tx)
        .await?;
    for d in drift {
        match (&d.kind, d.entity) {
            (DriftKind::Extra, entity) => {
                // The row is ordered with the tenant when the platform still has it.
                let (tenant, path_id) = match entity {
                    Entity::User => (None, d.id),
                    Entity::Tenant | Entity::Subscription => (Some(d.id), d.id),
                };
                sqlx::query(
                    "insert into sync_outbox (product_id, tenant_id, entity, operation, entity_id, payload, created_at, available_at) \
                     values ($1, (select id from tenants where id = $2), $3, 'delete', $4, jsonb_build_object('id', $4::bigint), $5, $5)",
                )
                .bind(product)
                .bind(tenant)
                .bind(entity.as_str())
                .bind(path_id)
                .bind(at)
                .execute(&mut *tx)
                .await?;
            }
            (_, Entity::User) => {
                sqlx::query(
                    "insert into sync_outbox (product_id, tenant_id, entity, operation, entity_id, payload, created_at, available_at) \
                     select distinct on (entity_id) product_id, tenant_id, 'user', 'upsert', entity_id, payload, $3, $3 \
                     from sync_users where product_id = $1 and entity_id = $2 order by entity_id, tenant_id",
                )
                .bind(product)
                .bind(d.id)
                .bind(at)
                .execute(&mut *tx)
                .await?;
            }
            (_, Entity::Tenant) => {
                queue_upserts(&mut tx, Entity::Tenant, Column::Entity, d.id, at).await?;
            }
            (_, Entity::Subscription) => {
                queue_upserts(&mut tx, Entity::Subscription, Column::Tenant, d.id, at).await?;
            }
        }
    }
    let after: i64 = sqlx::query_scalar("select count(*) from sync_outbox")
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(usize::try_from(after - before).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_names_missing_extra_and_differing_fields() {
        let expected = BTreeMap::from([
            (
                (Entity::Tenant, 1),
                serde_json::json!({"id": 1, "name": "a"}),
            ),
            (
                (Entity::Tenant, 2),
                serde_json::json!({"id": 2, "name": "b"}),
            ),
        ]);
        let held = BTreeMap::from([
            (
                (Entity::Tenant, 2),
                serde_json::json!({"id": 2, "name": "c"}),
            ),
            ((Entity::User, 5), serde_json::json!({"id": 5})),
        ]);
        let drift = compare("p", &expected, &held);
        let text = drift_report(&drift);
        assert_eq!(
            text,
            "  - p: tenant 1 is missing in the product\n  \
             - p: tenant 2 differs: name is \"c\" in the product, \"b\" on the platform;\n  \
             - p: user 5 is in the product but not on the platform\n"
        );
    }
}
