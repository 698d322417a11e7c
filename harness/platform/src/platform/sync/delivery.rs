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

/// How the dispatcher retries: for how long (the retry horizon, on the test clock) before a row
/// is dead-lettered, the backoff between attempts, and the seed of its jitter.
///
/// A failed row is tried again after [`SyncPolicy::backoff`], and again, for as long as its
/// horizon lasts from its first failure: the last attempt falls on the horizon, and only a
/// failure there makes it a dead letter. A dead letter is not the end: the next reconcile that
/// finds its product answering re-queues it ([`super::reconcile`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncPolicy {
    /// How long a row is retried from its first failure before it is dead-lettered (default 3
    /// days, as Stripe retries a webhook).
    pub horizon: TimeDelta,
    /// A horizon of its own for some products, by key: it replaces [`SyncPolicy::horizon`] for
    /// their rows (default none; see [`SyncPolicy::with_horizon`]).
    pub horizons: BTreeMap<String, TimeDelta>,
    /// The wait after the first failure; it doubles with each further failure (default 2 s).
    pub base_backoff: TimeDelta,
    /// The longest wait before jitter (default 1 hour).
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
            horizon: TimeDelta::days(3),
            horizons: BTreeMap::new(),
            base_backoff: TimeDelta::seconds(2),
            max_backoff: TimeDelta::hours(1),
            seed: 0,
            batch: 512,
            timeout: Duration::from_secs(2),
        }
    }
}

impl SyncPolicy {
    /// The same policy with `horizon` for the rows of `product` (a key of the catalog).
    ///
    /// ```
    /// use billing_platform::platform::SyncPolicy;
    /// use chrono::TimeDelta;
    ///
    /// let policy = SyncPolicy::default().with_horizon("crm", TimeDelta::hours(6));
    /// assert_eq!(policy.horizon_of("crm"), TimeDelta::hours(6));
    /// assert_eq!(policy.horizon_of("analytics"), TimeDelta::days(3));
    /// assert_eq!(policy.longest_horizon(), TimeDelta::days(3));
    /// ```
    #[must_use]
    pub fn with_horizon(mut self, product: impl Into<String>, horizon: TimeDelta) -> SyncPolicy {
        self.horizons.insert(product.into(), horizon);
        self
    }

    /// The retry horizon of `product`'s rows.
    pub fn horizon_of(&self, product: &str) -> TimeDelta {
        self.horizons.get(product).copied().unwrap_or(self.horizon)
    }

    /// The longest horizon of any product: by then every row that failed from the start is
    /// delivered or a dead letter.
    pub fn longest_horizon(&self) -> TimeDelta {
        self.horizons
            .values()
            .copied()
            .fold(self.horizon, TimeDelta::max)
    }

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
    /// let late = policy.backoff(42, 40);
    /// assert!(late >= TimeDelta::hours(1) && late < TimeDelta::minutes(90), "capped: {late}");
    /// ```
    pub fn backoff(&self, row: i64, failures: u32) -> TimeDelta {
        let exponent = failures.saturating_sub(1).min(30);
        let base = (self.base_backoff.num_milliseconds().max(1))
            .saturating_mul(1i64 << exponent)
            .min(self.max_backoff.num_milliseconds().max(1));
        let mut stream = self.seed ^ (row as u64).rotate_left(17) ^ u64::from(failures);
        let jitter = (splitmix(&mut stream) % 1000) as i64;
        TimeDelta::milliseconds(base + base / 2 * jitter / 1000)
    }

    /// What becomes of a row of `product` that failed at `at`, its `failures`-th failure, when
    /// its failures began at `since`: `Retry(when)`, after its backoff but no later than its
    /// horizon's end, or `GiveUp` once the horizon is reached.
    ///
    /// ```
    /// use billing_platform::platform::{Retry, SyncPolicy};
    /// use chrono::{TimeDelta, TimeZone, Utc};
    ///
    /// let policy = SyncPolicy { horizon: TimeDelta::hours(6), ..SyncPolicy::default() };
    /// let since = Utc.with_ymd_and_hms(2026, 10, 10, 0, 0, 0).unwrap();
    /// let first = policy.after_failure("analytics", 1, 1, since, since);
    /// assert!(matches!(first, Retry::At(at) if at > since && at < since + TimeDelta::seconds(3)));
    /// let late = since + TimeDelta::hours(5) + TimeDelta::minutes(30);
    /// let end = since + TimeDelta::hours(6);
    /// assert_eq!(policy.after_failure("analytics", 1, 14, since, late), Retry::At(end));
    /// assert_eq!(policy.after_failure("analytics", 1, 15, since, end), Retry::GiveUp);
    /// ```
    pub fn after_failure(
        &self,
        product: &str,
        row: i64,
        failures: u32,
        since: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Retry {
        let end = since + self.horizon_of(product);
        if at >= end {
            Retry::GiveUp
        } else {
            Retry::At((at + self.backoff(row, failures)).min(end))
        }
    }
}

/// What the dispatcher does with a row after a failed attempt ([`SyncPolicy::after_failure`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Try it again at this instant.
    At(DateTime<Utc>),
    /// Its horizon is over: it is a dead letter.
    GiveUp,
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
    /// When its failures began; null while it has not failed since it was queued or re-queued.
    failing_since: Option<DateTime<Utc>>,
    /// The product's key, for its retry horizon.
    product: String,
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
/// row waits [`SyncPolicy::backoff`], for as long as its product's retry horizon lasts from its
/// first failure ([`SyncPolicy::after_failure`]); a failure at the horizon dead-letters it, and it
/// holds back its key until a reconcile finds the product answering ([`super::reconcile`]) or
/// [`super::requeue`].
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
                    o.failing_since, p.key as product, p.sync_url \
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
        let results = deliver_all(client, &rows, at).await;
        let outcome = Outcome::of(policy, &rows, results, at, &mut report);
        sqlx::query(
            "update sync_outbox o set \
               attempts = o.attempts + case when r.ok then 0 else 1 end, \
               dispatched_at = case when r.ok then $6 end, \
               last_status = r.status, last_error = r.error, \
               available_at = case when r.ok or r.dead then o.available_at else r.next end, \
               dead_at = case when r.dead then $6 end, \
               failing_since = case when r.ok then o.failing_since else r.since end \
             from unnest($1::bigint[], $2::bool[], $3::int[], $4::text[], $5::timestamptz[], \
                         $7::bool[], $8::timestamptz[]) \
                  as r(id, ok, status, error, next, dead, since) \
             where o.id = r.id",
        )
        .bind(&outcome.ids)
        .bind(&outcome.ok)
        .bind(&outcome.statuses)
        .bind(&outcome.errors)
        .bind(&outcome.next)
        .bind(at)
        .bind(&outcome.dead)
        .bind(&outcome.since)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
    }
}

/// What became of one round's rows, column by column as the update binds them.
#[derive(Debug, Default)]
struct Outcome {
    ids: Vec<i64>,
    ok: Vec<bool>,
    statuses: Vec<Option<i32>>,
    errors: Vec<Option<String>>,
    /// When a failed row is tried again (ignored for the others).
    next: Vec<DateTime<Utc>>,
    dead: Vec<bool>,
    /// When a failed row's failures began.
    since: Vec<Option<DateTime<Utc>>>,
}

impl Outcome {
    /// Each row's answer, and for a failed one its next attempt or its end under `policy`;
    /// counted into `report`.
    fn of(
        policy: &SyncPolicy,
        rows: &[Claimed],
        results: Vec<Result<u16, DeliveryError>>,
        at: DateTime<Utc>,
        report: &mut SyncReport,
    ) -> Outcome {
        let mut out = Outcome::default();
        for (row, result) in rows.iter().zip(results) {
            out.ids.push(row.id);
            out.ok.push(result.is_ok());
            let (dead, next, since) = match result {
                Ok(status) => {
                    report.delivered += 1;
                    out.statuses.push(Some(i32::from(status)));
                    out.errors.push(None);
                    (false, at, None)
                }
                Err(e) => {
                    report.failed += 1;
                    out.statuses.push(e.status().map(i32::from));
                    out.errors.push(Some(e.to_string()));
                    let failures = u32::try_from(row.attempts).unwrap_or(0) + 1;
                    let since = row.failing_since.unwrap_or(at);
                    match policy.after_failure(&row.product, row.id, failures, since, at) {
                        Retry::At(next) => (false, next, Some(since)),
                        Retry::GiveUp => {
                            report.dead_lettered += 1;
                            (true, at, Some(since))
                        }
                    }
                }
            };
            out.dead.push(dead);
            out.next.push(next);
            out.since.push(since);
        }
        out
    }
}

/// How many deliveries are in flight at once: enough to keep a product busy, few enough that
/// their connections stay open between rounds (HTTP keep-alive; the client keeps 64 idle per
/// product) instead of being set up anew for each delivery.
const LANES: usize = 64;

/// Sends every claimed row, [`LANES`] at a time; each answer in the rows' order.
async fn deliver_all(
    client: &SyncClient,
    rows: &[Claimed],
    at: DateTime<Utc>,
) -> Vec<Result<u16, DeliveryError>> {
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
                Some(write) => client.send(&url, &write, &key, at).await,
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
        let state =
            client
                .state(&url, at)
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
        let other = SyncPolicy {
            seed: 4,
            ..policy.clone()
        };
        assert!(
            (1..50).any(|row| policy.backoff(row, 2) != other.backoff(row, 2)),
            "the seed moves the jitter"
        );
    }

    #[test]
    fn a_row_is_retried_until_its_horizon_with_waits_capped_at_an_hour_and_jitter() {
        let policy = SyncPolicy {
            seed: 5,
            ..SyncPolicy::default()
        }
        .with_horizon("crm", TimeDelta::hours(2));
        let since = DateTime::from_timestamp(1_790_000_000, 0).unwrap();
        for (product, horizon) in [
            ("analytics", TimeDelta::days(3)),
            ("crm", TimeDelta::hours(2)),
        ] {
            let (mut at, mut failures, mut waits) = (since, 1u32, Vec::new());
            while let Retry::At(next) = policy.after_failure(product, 42, failures, since, at) {
                waits.push(next - at);
                at = next;
                failures += 1;
            }
            assert_eq!(
                at,
                since + horizon,
                "{product}: the last attempt falls on the horizon"
            );
            assert!(
                waits.iter().all(|w| *w <= TimeDelta::minutes(90)),
                "{product}: no wait above the cap plus half: {waits:?}"
            );
            assert!(
                waits[..waits.len() - 1]
                    .iter()
                    .rev()
                    .take(3)
                    .all(|w| *w >= TimeDelta::hours(1))
                    || product == "crm",
                "{product}: late waits are at the cap: {waits:?}"
            );
            assert!(
                failures > 6,
                "{product}: more than the old 6 attempts: {failures}"
            );
        }
        assert_eq!(
            policy.after_failure("analytics", 42, 1, since, since + TimeDelta::days(3)),
            Retry::GiveUp,
            "a failure at the horizon gives up"
        );
        assert_eq!(
            policy.after_failure(
                "analytics",
                42,
                1,
                since,
                since + TimeDelta::days(3) - TimeDelta::milliseconds(1)
            ),
            Retry::At(since + TimeDelta::days(3)),
            "a failure just before it is tried once more, at the horizon"
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
