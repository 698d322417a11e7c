//! Delivery of the outbox (the `products` feature): the dispatcher that sends each (product,
//! tenant) key's rows in order with backoff and dead letters, and the reconciler that compares
//! each product's read-back with the sync views and queues repairs through the outbox.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;

use super::outbox::{Column, HEADS, queue_upserts};
use crate::platform::DomainError;
use crate::products::api::{Entity, ProductState, Write};
use crate::products::{DeliveryError, SyncClient, splitmix};

/// How the dispatcher retries: attempts before a row is dead-lettered, the backoff, and the
/// seed of its jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncPolicy {
    /// Failed attempts after which a row is dead-lettered (default 6).
    pub max_attempts: u32,
    /// The wait after the first failure; it doubles with each further failure (default 2 s).
    pub base_backoff: TimeDelta,
    /// The longest wait before jitter (default 5 minutes).
    pub max_backoff: TimeDelta,
    /// Seeds the jitter, so that a run replays (default 0; a `TestEnv` uses its fake-data seed).
    pub seed: u64,
    /// The most rows one round claims, one per (product, tenant) key (default 512).
    pub batch: i64,
    /// How long a product has to answer one write, in real time (default 2 s).
    pub timeout: Duration,
}

impl Default for SyncPolicy {
    fn default() -> SyncPolicy {
        SyncPolicy {
            max_attempts: 6,
            base_backoff: TimeDelta::seconds(2),
            max_backoff: TimeDelta::minutes(5),
            seed: 0,
            batch: 512,
            timeout: Duration::from_secs(2),
        }
    }
}

impl SyncPolicy {
    /// The wait after a row's `failures`-th failure (from 1): `base × 2^(failures-1)`, at most
    /// `max_backoff`, plus a jitter of up to half of that drawn from the seed and the row, to the
    /// millisecond.
    ///
    /// ```
    /// use billing_platform::platform::SyncPolicy;
    /// use chrono::TimeDelta;
    ///
    /// let policy = SyncPolicy { seed: 7, ..SyncPolicy::default() };
    /// let first = policy.backoff(42, 1);
    /// assert!(first >= TimeDelta::seconds(2) && first < TimeDelta::seconds(3));
    /// let third = policy.backoff(42, 3);
    /// assert!(third >= TimeDelta::seconds(8) && third < TimeDelta::seconds(12));
    /// assert_eq!(policy.backoff(42, 3), third, "the same seed and row, the same wait");
    /// ```
    pub fn backoff(&self, row: i64, failures: u32) -> TimeDelta {
        let exponent = failures.saturating_sub(1).min(20);
        let base = (self.base_backoff.num_milliseconds().max(1) * (1i64 << exponent))
            .min(self.max_backoff.num_milliseconds().max(1));
        let mut stream = self.seed ^ (row as u64).rotate_left(17) ^ u64::from(failures);
        let jitter = (splitmix(&mut stream) % 1000) as i64;
        TimeDelta::milliseconds(base + base / 2 * jitter / 1000)
    }
}

/// What one dispatcher run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SyncReport {
    /// Rows delivered (answered `2xx`).
    pub delivered: usize,
    /// Attempts that failed.
    pub failed: usize,
    /// Rows given up on this run.
    pub dead_lettered: usize,
}

// ---------------------------------------------------------------------------------------------
// The dispatcher.
#[derive(Debug, sqlx::FromRow)]
struct Claimed {
    id: i64,
    tenant_id: Option<i64>,
    entity: String,
    operation: String,
    entity_id: i64,
    payload: Value,
    attempts: i32,
    /// Never null: only the rows of products with a URL are claimed ([`HEADS`]).
    sync_url: String,
}

impl Claimed {
    fn write(&self) -> Option<Write> {
        let entity = Entity::parse(&self.entity)?;
        let delete = self.operation == "delete";
        let path_id = match entity {
            Entity::User | Entity::Tenant => self.entity_id,
            Entity::Subscription => self.tenant_id?,
        };
        Some(Write {
            entity,
            delete,
            path_id,
            body: (!delete).then(|| self.payload.clone()),
        })
    }
}

/// Delivers every row due at `at`, in order per (product, tenant): in rounds of one row per key,
/// each row claimed (`for update skip locked`) for the length of its delivery, so that several
/// dispatchers, in tasks or processes, never deliver a row twice nor a key out of order. A failed
/// row waits [`SyncPolicy::backoff`]; after [`SyncPolicy::max_attempts`] failures it is
/// dead-lettered and holds back its key until [`super::requeue`].
///
/// # Errors
/// The database failed.
pub async fn dispatch(
    pool: &PgPool,
    client: &SyncClient,
    policy: &SyncPolicy,
    at: DateTime<Utc>,
) -> Result<SyncReport, DomainError> {
    let mut report = SyncReport::default();
    loop {
        let mut tx = pool.begin().await?;
        let rows: Vec<Claimed> = sqlx::query_as(&format!(
            "with heads as ({HEADS}) \
             select o.id, o.tenant_id, o.entity, o.operation, o.entity_id, o.payload, o.attempts, \
                    p.sync_url \
             from sync_outbox o join heads h on h.id = o.id join products p on p.id = o.product_id \
             where o.dispatched_at is null and o.dead_at is null and o.available_at <= $1 \
             order by o.id limit $2 for update of o skip locked"
        ))
        .bind(at)
        .bind(policy.batch)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            tx.commit().await?;
            return Ok(report);
        }
        let results = deliver_all(client, &rows).await;
        let mut ids = Vec::with_capacity(rows.len());
        let mut ok = Vec::with_capacity(rows.len());
        let mut statuses: Vec<Option<i32>> = Vec::with_capacity(rows.len());
        let mut errors: Vec<Option<String>> = Vec::with_capacity(rows.len());
        let mut next = Vec::with_capacity(rows.len());
        let mut dead = Vec::with_capacity(rows.len());
        for (row, result) in rows.iter().zip(results) {
            let failures = u32::try_from(row.attempts).unwrap_or(0) + 1;
            ids.push(row.id);
            ok.push(result.is_ok());
            match result {
                Ok(status) => {
                    report.delivered += 1;
                    statuses.push(Some(i32::from(status)));
                    errors.push(None);
                }
                Err(e) => {
                    report.failed += 1;
                    statuses.push(e.status().map(i32::from));
                    errors.push(Some(e.to_string()));
                }
            }
            let gives_up = !ok[ok.len() - 1] && failures >= policy.max_attempts;
            report.dead_lettered += usize::from(gives_up);
            dead.push(gives_up);
            next.push(at + policy.backoff(row.id, failures));
        }
        sqlx::query(
            "update sync_outbox o set \
               attempts = o.attempts + case when r.ok then 0 else 1 end, \
               dispatched_at = case when r.ok then $6 end, \
               last_status = r.status, last_error = r.error, \
               available_at = case when r.ok or r.dead then o.available_at else r.next end, \
               dead_at = case when r.dead then $6 end \
             from unnest($1::bigint[], $2::bool[], $3::int[], $4::text[], $5::timestamptz[], $7::bool[]) \
                  as r(id, ok, status, error, next, dead) \
             where o.id = r.id",
        )
        .bind(&ids)
        .bind(&ok)
        .bind(&statuses)
        .bind(&errors)
        .bind(&next)
        .bind(at)
        .bind(&dead)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
    }
}

/// How many deliveries are in flight at once: enough to keep a product busy, few enough that
/// their connections stay open between rounds (HTTP keep-alive; the client keeps 64 idle per
/// product) instead of being set up anew for each delivery.
const LANES: usize = 64;

/// Sends every claimed row, [`LANES`] at a time; each answer in the rows' order.
async fn deliver_all(client: &SyncClient, rows: &[Claimed]) -> Vec<Result<u16, DeliveryError>> {
    let mut tasks = tokio::task::JoinSet::new();
    let lanes = std::sync::Arc::new(tokio::sync::Semaphore::new(LANES));
    for (i, row) in rows.iter().enumerate() {
        let lanes = lanes.clone();
        let client = client.clone();
        let url = row.sync_url.clone();
        let write = row.write();
        let key = row.id.to_string();
        tasks.spawn(async move {
            let _lane = lanes.acquire_owned().await;
            let result = match write {
                Some(write) => client.send(&url, &write, &key).await,
                None => Err(DeliveryError::Connection(
                    "the row is not a write of the sync API".into(),
                )),
            };
            (i, result)
        });
    }
    let mut results: Vec<Option<Result<u16, DeliveryError>>> = vec![None; rows.len()];
    while let Some(done) = tasks.join_next().await {
        if let Ok((i, result)) = done {
            results[i] = Some(result);
        }
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(DeliveryError::Connection("the task failed".into()))))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The reconciler.

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
    /// Every difference found, product by product.
    pub drift: Vec<Drift>,
    /// Products not compared because rows for them were still undelivered (compare when idle).
    pub busy: Vec<String>,
    /// Outbox rows queued to repair the drift.
    pub repairs: usize,
}

/// Compares every product that has a `sync_url` with the platform; with `repair`, queues the
/// writes that bring it back (upserts for missing or different entities, deletions for extra
/// ones), at `at`, through the outbox like any change. A product with undelivered rows is
/// skipped (listed as busy): its differences may be on their way.
///
/// # Errors
/// The database failed, or a product's state could not be read.
pub async fn reconcile(
    pool: &PgPool,
    client: &SyncClient,
    repair: bool,
    at: DateTime<Utc>,
) -> Result<Reconciliation, DomainError> {
    let products: Vec<(i64, String, String, bool)> = sqlx::query_as(
        "select p.id, p.key, p.sync_url, \
                exists (select 1 from sync_outbox o where o.product_id = p.id and o.dispatched_at is null) \
         from products p where p.sync_url is not null order by p.key",
    )
    .fetch_all(pool)
    .await?;
    let mut out = Reconciliation::default();
    for (id, key, url, busy) in products {
        if busy {
            out.busy.push(key);
            continue;
        }
        let state = client
            .state(&url)
            .await
            .map_err(|source| DomainError::ProductUnreachable {
                product: key.clone(),
                source,
            })?;
        let drift = compare(&key, &expected(pool, id).await?, &held(&state));
        if repair && !drift.is_empty() {
            out.repairs += queue_repairs(pool, id, &drift, at).await?;
        }
        out.drift.extend(drift);
    }
    Ok(out)
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
    fn backoff_doubles_with_a_bounded_jitter() {
        let policy = SyncPolicy {
            seed: 3,
            ..SyncPolicy::default()
        };
        for failures in 1..=6u32 {
            let base = 2000 * (1i64 << (failures - 1));
            for row in [1, 2, 99, 1_000_000] {
                let wait = policy.backoff(row, failures).num_milliseconds();
                assert!(
                    (base..base + base / 2).contains(&wait),
                    "failure {failures} of row {row}: {wait} ms"
                );
            }
        }
        let other = SyncPolicy { seed: 4, ..policy };
        assert!(
            (1..50).any(|row| policy.backoff(row, 2) != other.backoff(row, 2)),
            "the seed moves the jitter"
        );
    }

    #[test]
    fn a_seed_replays_the_same_waits_in_every_version() {
        // A failed run prints its seed; replaying it must wait exactly as it did, so the jitter's
        // mixing of seed, row and failure count is pinned here.
        let policy = SyncPolicy {
            seed: 7,
            ..SyncPolicy::default()
        };
        let waits: Vec<i64> = [(1, 1), (42, 1), (42, 2), (42, 3), (1_000_000, 6)]
            .into_iter()
            .map(|(row, failures)| policy.backoff(row, failures).num_milliseconds())
            .collect();
        assert_eq!(waits, [2697, 2653, 4770, 11216, 87104]);
    }

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
