//! Product sync: the outbox rows every change writes in its own transaction, the dispatcher that
//! delivers them in order per (product, tenant) with backoff and dead letters, and the reconciler
//! that compares each product's read-back with the platform and repairs what differs.
//!
//! What a product must hold is defined once, by the views `sync_users`, `sync_tenants` and
//! `sync_subscriptions` (migration `product_sync`): the outbox copies its payloads from them, and
//! the reconciler compares with them.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::{PgConnection, PgPool};

use super::DomainError;
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
    /// use billing_harness::platform::SyncPolicy;
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

/// An outbox row, as reports show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct OutboxRow {
    /// The row's id: the idempotency key of its deliveries.
    pub id: i64,
    /// The product's key.
    pub product: String,
    /// The tenant it is ordered with.
    pub tenant_id: Option<i64>,
    /// `user`, `tenant` or `subscription`.
    pub entity: String,
    /// `upsert` or `delete`.
    pub operation: String,
    /// The entity's id.
    pub entity_id: i64,
    /// Failed attempts so far.
    pub attempts: i32,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// The outbox: what every change queues.

/// Queues the upserts of `entity` whose `column` (`entity_id` or `tenant_id`) is `id`, copied from
/// its view, one row per (product, tenant), in the caller's transaction.
async fn queue_upserts(
    conn: &mut PgConnection,
    entity: Entity,
    column: Column,
    id: i64,
    at: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    let view = match entity {
        Entity::User => "sync_users",
        Entity::Tenant => "sync_tenants",
        Entity::Subscription => "sync_subscriptions",
    };
    let column = match column {
        Column::Entity => "entity_id",
        Column::Tenant => "tenant_id",
    };
    let sql = format!(
        "insert into sync_outbox (product_id, tenant_id, entity, operation, entity_id, payload, created_at, available_at) \
         select product_id, tenant_id, $2, 'upsert', entity_id, payload, $3, $3 from {view} \
         where {column} = $1 order by tenant_id, entity_id"
    );
    let done = sqlx::query(&sql)
        .bind(id)
        .bind(entity.as_str())
        .bind(at)
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}

#[derive(Debug, Clone, Copy)]
enum Column {
    Entity,
    Tenant,
}

/// Queues a new tenant for its product: the users of its organization first, then the tenant
/// (the platform's order: user, tenant, then the subscription when there is one).
pub(crate) async fn queue_tenant(
    conn: &mut PgConnection,
    tenant: i64,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    queue_upserts(&mut *conn, Entity::User, Column::Tenant, tenant, at).await?;
    queue_upserts(conn, Entity::Tenant, Column::Entity, tenant, at)
        .await
        .map(drop)
}

/// Queues the changed document of one entity (a tenant's new spec, a subscription's state, a
/// user's profile) for every product that holds it, ordered with each of its tenants.
pub(crate) async fn queue_change(
    conn: &mut PgConnection,
    entity: Entity,
    id: i64,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    queue_upserts(conn, entity, Column::Entity, id, at)
        .await
        .map(drop)
}

/// Queues a deletion of `entity_id` for `tenant`'s product, ordered with `tenant`.
async fn queue_delete(
    conn: &mut PgConnection,
    entity: Entity,
    entity_id: i64,
    tenant: i64,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into sync_outbox (product_id, tenant_id, entity, operation, entity_id, payload, created_at, available_at) \
         select product_id, id, $2, 'delete', $3, jsonb_build_object('id', $3::bigint), $4, $4 \
         from tenants where id = $1",
    )
    .bind(tenant)
    .bind(entity.as_str())
    .bind(entity_id)
    .bind(at)
    .execute(conn)
    .await
    .map(drop)
}

/// Queues the removal of a user who left `org`: a deletion for the product of each live tenant
/// of the organization.
pub(crate) async fn queue_user_removal(
    conn: &mut PgConnection,
    user: i64,
    org: i64,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let tenants: Vec<i64> = sqlx::query_scalar(
        "select id from tenants where organization_id = $1 and status <> 'deleted' order by id",
    )
    .bind(org)
    .fetch_all(&mut *conn)
    .await?;
    for tenant in tenants {
        queue_delete(&mut *conn, Entity::User, user, tenant, at).await?;
    }
    Ok(())
}

/// Queues the removal of a deleted tenant: the tenant (its product drops the subscription with
/// it), then the users of its organization whom no other live tenant keeps on that product.
pub(crate) async fn queue_tenant_removal(
    conn: &mut PgConnection,
    tenant: i64,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    queue_delete(&mut *conn, Entity::Tenant, tenant, tenant, at).await?;
    let users: Vec<i64> = sqlx::query_scalar(
        "select u.id from users u join tenants t on t.organization_id = u.organization_id \
         where t.id = $1 and u.deleted_at is null \
           and not exists (select 1 from sync_users s \
                           where s.product_id = t.product_id and s.entity_id = u.id) \
         order by u.id",
    )
    .bind(tenant)
    .fetch_all(&mut *conn)
    .await?;
    for user in users {
        queue_delete(&mut *conn, Entity::User, user, tenant, at).await?;
    }
    Ok(())
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
    product: String,
    sync_url: Option<String>,
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

/// The first undelivered row of every (product, tenant) key: a key whose head is dead-lettered
/// or waiting for its backoff sends nothing after it.
/// Rows for a product without a `sync_url` wait until it has one.
const HEADS: &str = "select distinct on (o.product_id, o.tenant_id) o.id, o.available_at, o.dead_at \
                     from sync_outbox o join products p on p.id = o.product_id \
                     where o.dispatched_at is null and p.sync_url is not null \
                     order by o.product_id, o.tenant_id, o.id";

/// Delivers every row due at `at`, in order per (product, tenant): in rounds of one row per key,
/// each row claimed (`for update skip locked`) for the length of its delivery, so that several
/// dispatchers, in tasks or processes, never deliver a row twice nor a key out of order. A failed
/// row waits [`SyncPolicy::backoff`]; after [`SyncPolicy::max_attempts`] failures it is
/// dead-lettered and holds back its key until [`requeue`].
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
                    p.key as product, p.sync_url \
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
        let product = row.product.clone();
        let write = row.write();
        let key = row.id.to_string();
        tasks.spawn(async move {
            let _lane = lanes.acquire_owned().await;
            let result = match (url, write) {
                (Some(url), Some(write)) => client.send(&url, &write, &key).await,
                (None, _) => Err(DeliveryError::Connection(format!(
                    "product {product} has no sync_url"
                ))),
                (_, None) => Err(DeliveryError::Connection(
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

/// The instant the dispatcher next has work, from `after` on (a row already due counts as due
/// at `after`), if it is no later than `until`: the head of a key, live, whose backoff ends.
///
/// # Errors
/// The database failed.
pub async fn next_due(
    pool: &PgPool,
    after: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar(&format!(
        "select min(greatest(h.available_at, $1)) from ({HEADS}) h \
         where h.dead_at is null and h.available_at <= $2"
    ))
    .bind(after)
    .bind(until)
    .fetch_one(pool)
    .await
}

/// Puts dead letters back in the queue, from `at`: the row `id`, or every dead letter when
/// `None`. Returns how many.
///
/// # Errors
/// The database failed.
pub async fn requeue(
    pool: &PgPool,
    id: Option<i64>,
    at: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "update sync_outbox set dead_at = null, attempts = 0, available_at = greatest($2, created_at) \
         where dead_at is not null and dispatched_at is null and ($1::bigint is null or id = $1)",
    )
    .bind(id)
    .bind(at)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// The rows given up on, oldest first.
///
/// # Errors
/// The database failed.
pub async fn dead_letters(pool: &PgPool) -> Result<Vec<OutboxRow>, sqlx::Error> {
    outbox_rows(pool, "o.dead_at is not null and o.dispatched_at is null").await
}

/// The rows not delivered yet (live or dead), oldest first.
///
/// # Errors
/// The database failed.
pub async fn undelivered(pool: &PgPool) -> Result<Vec<OutboxRow>, sqlx::Error> {
    outbox_rows(pool, "o.dispatched_at is null").await
}

async fn outbox_rows(pool: &PgPool, filter: &str) -> Result<Vec<OutboxRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "select o.id, p.key as product, o.tenant_id, o.entity, o.operation, o.entity_id, o.attempts, \
                o.last_error \
         from sync_outbox o join products p on p.id = o.product_id where {filter} order by o.id"
    ))
    .fetch_all(pool)
    .await
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
