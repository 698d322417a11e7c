//! The outbox: the rows every change queues in its own transaction, copied from the `sync_*`
//! views, and what waits in it (the head of each key, dead letters, undelivered rows).

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};

use crate::products::api::Entity;

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
pub(super) async fn queue_upserts(
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
pub(super) enum Column {
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
// What waits in the outbox.

/// The first undelivered row of every (product, tenant) key: a key whose head is dead-lettered
/// or waiting for its backoff sends nothing after it.
/// Rows for a product without a `sync_url` wait until it has one.
pub(super) const HEADS: &str = "select distinct on (o.product_id, o.tenant_id) o.id, o.available_at, o.dead_at \
                     from sync_outbox o join products p on p.id = o.product_id \
                     where o.dispatched_at is null and p.sync_url is not null \
                     order by o.product_id, o.tenant_id, o.id";

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

/// Puts dead letters back in the queue, from `at`, each with a whole retry horizon again: the row
/// `id`, or every dead letter when `None`. Returns how many.
///
/// # Errors
/// The database failed.
pub async fn requeue(
    pool: &PgPool,
    id: Option<i64>,
    at: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "update sync_outbox set dead_at = null, attempts = 0, failing_since = null, \
                available_at = greatest($2, created_at) \
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

/// How a product's deliveries went: when the last one was made, and which rows waited longest
/// from queued to delivered (a product behind an outage shows the outage there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deliveries {
    /// The product's key.
    pub product: String,
    /// The instant of the last delivery to it: from then on it held what it was sent.
    pub last: DateTime<Utc>,
    /// The longest a row to it waited, from queued to delivered.
    pub longest_wait: TimeDelta,
    /// How many rows waited that long.
    pub longest_waiting: usize,
}

/// [`Deliveries`] of every product that was delivered a row, by key.
///
/// # Errors
/// The database failed.
pub async fn deliveries(pool: &PgPool) -> Result<Vec<Deliveries>, sqlx::Error> {
    let rows: Vec<(String, DateTime<Utc>, i64, i64)> = sqlx::query_as(
        "select key, max(dispatched_at), max(wait), count(*) filter (where wait = longest) \
         from (select p.key, o.dispatched_at, w.wait, \
                      max(w.wait) over (partition by o.product_id) as longest \
               from sync_outbox o join products p on p.id = o.product_id \
               cross join lateral (select (extract(epoch from o.dispatched_at - o.created_at) \
                                           * 1000000)::bigint as wait) w \
               where o.dispatched_at is not null) d \
         group by key order by key",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(product, last, wait, n)| Deliveries {
            product,
            last,
            longest_wait: TimeDelta::microseconds(wait),
            longest_waiting: usize::try_from(n).unwrap_or(0),
        })
        .collect())
}
