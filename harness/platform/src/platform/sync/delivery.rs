//! Delivery of the outbox: the [`SyncPolicy`] (backoff and retry horizon) and the dispatcher that
//! sends each (product, tenant) key's rows in order, retrying a failed row until its horizon and
//! then dead-lettering it. The reconciler is `reconcile.rs`.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;

use super::outbox::HEADS;
use crate::platform::DomainError;
use crate::products::api::{Entity, Write};
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
}
