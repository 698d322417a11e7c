//! The purge's plan, execution and proof, in one transaction.
//!
//! Rows are chosen by walking down every foreign key from the roots (and the soft references of
//! [`catalog::SOFT_REFERENCES`]), so a table a later migration adds is covered if it references a
//! purged row by a key; an integer `*_id` column without a key makes the purge refuse, naming it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;

use super::catalog::{self, OUTBOX_ENTITIES, Schema, affected};
use super::error::PurgeError;
use crate::model::{OrgId, UserId};
use crate::platform::Platform;

/// What to purge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PurgeTarget {
    /// A user, by e-mail address.
    Email(String),
    /// A user, by id.
    User(UserId),
    /// An organization and everything of it.
    Org(OrgId),
    /// Everything a scenario run created (`harness_runs.id`).
    Run(String),
}

impl PurgeTarget {
    /// What was asked, as the audit row keeps it: an e-mail address only as its SHA-256.
    pub fn asked(&self) -> String {
        match self {
            PurgeTarget::Email(email) => format!(
                "user email sha256:{:x}",
                Sha256::digest(email.trim().to_lowercase().as_bytes())
            ),
            PurgeTarget::User(id) => format!("user {}", id.0),
            PurgeTarget::Org(id) => format!("organization {}", id.0),
            PurgeTarget::Run(id) => format!("run {id}"),
        }
    }
}

/// How far a purge reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// A user leaves an organization that keeps other members and another owner: the user's own
    /// rows go (product access, invitations sent or accepted), the organization's stay.
    UserLeft,
    /// The last owner of an organization that keeps other members: the user and the
    /// organization's tenants, billing account, cards and custom plans go; the organization and
    /// its other members stay.
    OwnerData,
    /// A whole organization: the target itself, or a user who was its last member.
    Organization,
    /// A scenario run: what it recorded as it wrote (`harness_run_rows`) and everything below:
    /// the organizations it created and everything of them, and the catalog rows it added that
    /// nothing else uses. A row it recorded that hangs below another organization (a job its
    /// clock ran for someone else) is that organization's, and stays.
    Run,
    /// Nothing matches what was asked (already purged, say): a no-op, audited all the same.
    Nothing,
}

impl Scope {
    fn as_str(self) -> &'static str {
        match self {
            Scope::UserLeft => "user_left",
            Scope::OwnerData => "owner_data",
            Scope::Organization => "organization",
            Scope::Run => "run",
            Scope::Nothing => "nothing",
        }
    }
}

/// A deletion a product will be told of, through the outbox.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, sqlx::FromRow)]
pub struct Notice {
    /// The product's key.
    pub product: String,
    /// `tenant` or `user`.
    pub entity: String,
    /// The entity's id.
    pub id: i64,
}

/// A purge's plan: what it deletes and whom it tells.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PurgePlan {
    /// What was asked (no e-mail address: see [`PurgeTarget::asked`]).
    pub asked: String,
    /// How far it reaches.
    pub scope: Scope,
    /// Rows deleted per table; tables with none are left out.
    pub rows: BTreeMap<String, u64>,
    /// The tenants whose products are told of the deletion: (tenant id, product key).
    pub tenants_told: Vec<(i64, String)>,
    /// Every deletion queued for products.
    pub notices: Vec<Notice>,
    /// The order tables are deleted in.
    pub order: Vec<String>,
}

impl PurgePlan {
    /// The plan as text: a line per table, then the products told.
    pub fn render(&self) -> String {
        let mut out = format!("purge {} ({})\n", self.asked, self.scope.as_str());
        if self.scope == Scope::Nothing {
            out.push_str("  nothing matches: nothing to delete\n");
        } else if self.rows.is_empty() {
            out.push_str("  nothing to delete\n");
        }
        for table in &self.order {
            if let Some(n) = self.rows.get(table) {
                out.push_str(&format!("  {table:<24} {n:>7} row{}\n", plural(*n)));
            }
        }
        for (tenant, product) in &self.tenants_told {
            out.push_str(&format!("  tell {product}: tenant {tenant} is deleted\n"));
        }
        let users = self.notices.iter().filter(|n| n.entity == "user").count();
        if users > 0 {
            out.push_str(&format!(
                "  tell products: {users} user deletion{}\n",
                plural(users as u64)
            ));
        }
        out
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// What a purge did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PurgeReport {
    /// The plan it executed.
    pub plan: PurgePlan,
    /// The ids deleted per table (tables with an `id` column).
    pub keys: BTreeMap<String, Vec<i64>>,
    /// The audit row.
    pub audit_id: i64,
}

/// A row that still points at a purged one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Leftover {
    /// The referencing table.
    pub table: String,
    /// Its column(s).
    pub column: String,
    /// The table of the purged rows.
    pub references: String,
    /// How many rows.
    pub rows: i64,
}

/// The plan of a purge, with nothing written (a dry run).
///
/// # Errors
/// See [`PurgeError`].
pub async fn plan(pool: &sqlx::PgPool, target: &PurgeTarget) -> Result<PurgePlan, PurgeError> {
    let mut tx = pool.begin().await?;
    let (plan, _) = prepare(&mut tx, target).await?;
    tx.rollback().await?;
    Ok(plan.plan)
}

/// Purges `target` in one transaction: plans it, queues the deletions for products, deletes
/// children before parents, proves from the catalog that nothing points at a purged row and that
/// every table outside the plan kept its size, writes the audit row, commits. A second purge of
/// the same target finds nothing and writes only its audit row.
///
/// # Errors
/// See [`PurgeError`]; nothing is written.
pub async fn purge(
    pool: &sqlx::PgPool,
    target: &PurgeTarget,
    at: DateTime<Utc>,
) -> Result<PurgeReport, PurgeError> {
    let mut tx = pool.begin().await?;
    let (plan, schema) = prepare(&mut tx, target).await?;
    let before = counts(&mut tx, &schema).await?;
    // Keys before deletion: what the walk afterwards looks for.
    let mut keys: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for table in plan.rows.keys() {
        if schema.with_id.contains(table) {
            let ids: Vec<i64> = sqlx::query_scalar(&format!(
                "select id::bigint from {table} where ctid in (select rid from purge_rows where tbl = $1) order by id"
            ))
            .bind(table)
            .fetch_all(&mut *tx)
            .await?;
            keys.insert(table.clone(), ids);
        }
    }
    for table in &plan.order {
        let done = sqlx::query(&format!(
            "delete from {table} where ctid in (select rid from purge_rows where tbl = $1)"
        ))
        .bind(table)
        .execute(&mut *tx)
        .await?;
        let planned = plan.rows.get(table).copied().unwrap_or(0);
        if done.rows_affected() != planned {
            return Err(PurgeError::CountChanged {
                table: table.clone(),
                expected: i64::try_from(planned).unwrap_or(i64::MAX),
                found: i64::try_from(done.rows_affected()).unwrap_or(i64::MAX),
            });
        }
    }
    for n in &plan.notices {
        let tenant = plan
            .tenant_key
            .get(&(n.product.clone(), n.entity.clone(), n.id))
            .copied()
            .flatten();
        sqlx::query(
            "insert into sync_outbox (product_id, tenant_id, entity, operation, entity_id, payload, created_at, available_at) \
             select p.id, (select id from tenants where id = $2), $3, 'delete', $4, jsonb_build_object('id', $4::bigint), $5, $5 \
             from products p where p.key = $1",
        )
        .bind(&n.product)
        .bind(tenant)
        .bind(&n.entity)
        .bind(n.id)
        .bind(at)
        .execute(&mut *tx)
        .await?;
    }
    let left = walk(&mut tx, &schema, &keys).await?;
    if !left.is_empty() {
        return Err(PurgeError::Leftovers(
            left.iter()
                .map(|l| {
                    format!(
                        "{} rows of {}.{} -> {}",
                        l.rows, l.table, l.column, l.references
                    )
                })
                .collect::<Vec<_>>()
                .join(", "),
        ));
    }
    let after = counts(&mut tx, &schema).await?;
    for (table, was) in &before {
        let deleted = i64::try_from(plan.rows.get(table).copied().unwrap_or(0)).unwrap_or(0);
        let added = if table == "sync_outbox" {
            i64::try_from(plan.notices.len()).unwrap_or(0)
        } else {
            0
        };
        let expected = was - deleted + added;
        let found = after.get(table).copied().unwrap_or(0);
        if found != expected {
            return Err(PurgeError::CountChanged {
                table: table.clone(),
                expected,
                found,
            });
        }
    }
    let audit_id: i64 = sqlx::query_scalar(
        "insert into purge_audit (purged_at, asked, scope, rows, told) values ($1, $2, $3, $4, $5) returning id",
    )
    .bind(at)
    .bind(&plan.plan.asked)
    .bind(plan.plan.scope.as_str())
    .bind(serde_json::to_value(&plan.plan.rows).unwrap_or_default())
    .bind(serde_json::to_value(&plan.plan.notices).unwrap_or_default())
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(PurgeReport {
        plan: plan.plan,
        keys,
        audit_id,
    })
}

impl Platform {
    /// What purging `target` would delete and whom it would tell; writes nothing (see [`plan`]).
    ///
    /// # Errors
    /// See [`PurgeError`].
    pub async fn purge_plan(&self, target: &PurgeTarget) -> Result<PurgePlan, PurgeError> {
        plan(self.pool(), target).await
    }

    /// Purges `target` at `at` (see [`purge`]).
    ///
    /// # Errors
    /// See [`PurgeError`]; nothing is written.
    pub async fn purge(
        &self,
        target: &PurgeTarget,
        at: DateTime<Utc>,
    ) -> Result<PurgeReport, PurgeError> {
        purge(self.pool(), target, at).await
    }
}

/// The catalog walk after a purge: every row, through every foreign key and soft reference, that
/// still points at one of `keys` (ids per table, as [`PurgeReport::keys`]). Empty when the purge
/// is complete. The purge's own deletion notices (an outbox `delete` whose payload is the id
/// alone) are what tells products, and are not counted.
///
/// # Errors
/// The database failed.
pub async fn leftovers(
    pool: &sqlx::PgPool,
    keys: &BTreeMap<String, Vec<i64>>,
) -> Result<Vec<Leftover>, PurgeError> {
    let mut conn = pool.acquire().await?;
    let schema = catalog::read(&mut conn).await?;
    walk(&mut conn, &schema, keys).await
}

async fn walk(
    conn: &mut PgConnection,
    schema: &Schema,
    keys: &BTreeMap<String, Vec<i64>>,
) -> Result<Vec<Leftover>, PurgeError> {
    let mut out = Vec::new();
    for fk in &schema.foreign_keys {
        let Some(ids) = keys.get(&fk.parent) else {
            continue;
        };
        if fk.parent_cols != ["id"] || ids.is_empty() {
            continue;
        }
        let column = &fk.child_cols[0];
        let rows: i64 = sqlx::query_scalar(&format!(
            "select count(*) from {} where {column} = any($1)",
            fk.child
        ))
        .bind(ids)
        .fetch_one(&mut *conn)
        .await?;
        if rows > 0 {
            out.push(Leftover {
                table: fk.child.clone(),
                column: column.clone(),
                references: fk.parent.clone(),
                rows,
            });
        }
    }
    if schema.has("sync_outbox") {
        for (entity, table) in OUTBOX_ENTITIES {
            let Some(ids) = keys.get(*table).filter(|ids| !ids.is_empty()) else {
                continue;
            };
            let rows: i64 = sqlx::query_scalar(
                "select count(*) from sync_outbox where entity = $1 and entity_id = any($2) \
                 and not (operation = 'delete' and payload = jsonb_build_object('id', entity_id))",
            )
            .bind(entity)
            .bind(ids)
            .fetch_one(&mut *conn)
            .await?;
            if rows > 0 {
                out.push(Leftover {
                    table: "sync_outbox".into(),
                    column: format!("entity_id ({entity})"),
                    references: (*table).into(),
                    rows,
                });
            }
        }
    }
    if schema.has("harness_run_rows") {
        for (table, ids) in keys {
            let rows: i64 = sqlx::query_scalar(
                "select count(*) from harness_run_rows where table_name = $1 and row_id = any($2)",
            )
            .bind(table)
            .bind(ids)
            .fetch_one(&mut *conn)
            .await?;
            if rows > 0 {
                out.push(Leftover {
                    table: "harness_run_rows".into(),
                    column: "row_id".into(),
                    references: table.clone(),
                    rows,
                });
            }
        }
    }
    Ok(out)
}

/// The plan with what only the execution needs.
struct Prepared {
    plan: PurgePlan,
    /// The tenant each notice is ordered with: a surviving tenant of the product, or none (the
    /// tenant is purged: the rows of a product without a tenant share one key, in order).
    tenant_key: BTreeMap<(String, String, i64), Option<i64>>,
}

impl std::ops::Deref for Prepared {
    type Target = PurgePlan;
    fn deref(&self) -> &PurgePlan {
        &self.plan
    }
}

async fn counts(
    conn: &mut PgConnection,
    schema: &Schema,
) -> Result<BTreeMap<String, i64>, sqlx::Error> {
    let mut out = BTreeMap::new();
    for table in &schema.tables {
        let n: i64 = sqlx::query_scalar(&format!("select count(*) from {table}"))
            .fetch_one(&mut *conn)
            .await?;
        out.insert(table.clone(), n);
    }
    Ok(out)
}

/// Reads the catalog, chooses the roots, walks down to every row to delete (into the temporary
/// table `purge_rows`, by `ctid`, which holds for the transaction) and works out the notices.
async fn prepare(
    conn: &mut PgConnection,
    target: &PurgeTarget,
) -> Result<(Prepared, Schema), PurgeError> {
    let schema = catalog::read(&mut *conn).await?;
    sqlx::query(
        "create temporary table purge_rows (tbl text not null, rid tid not null, primary key (tbl, rid)) on commit drop",
    )
    .execute(&mut *conn)
    .await?;
    let scope = roots(&mut *conn, &schema, target).await?;
    // What each product must hold, before: the deletions are the difference with after.
    let held_before = held(&mut *conn).await?;
    walk_down(&mut *conn, &schema).await?;
    if let (Scope::Run, PurgeTarget::Run(run)) = (scope, target) {
        // The rest of what the run recorded: the catalog rows it added that nothing else uses.
        super::run_rows::add_recorded(&mut *conn, &schema, run).await?;
        walk_down(&mut *conn, &schema).await?;
    }
    let rows: Vec<(String, i64)> =
        sqlx::query_as("select tbl, count(*) from purge_rows group by tbl order by tbl")
            .fetch_all(&mut *conn)
            .await?;
    let rows: BTreeMap<String, u64> = rows
        .into_iter()
        .map(|(t, n)| (t, u64::try_from(n).unwrap_or(0)))
        .collect();
    let tables: Vec<String> = rows.keys().cloned().collect();
    let order = catalog::deletion_order(&tables, &schema.foreign_keys);
    let tenants_told: Vec<(i64, String)> = sqlx::query_as(
        "select t.id, p.key from tenants t join products p on p.id = t.product_id \
         where t.status <> 'deleted' and t.ctid in (select rid from purge_rows where tbl = 'tenants') \
         order by t.id",
    )
    .fetch_all(&mut *conn)
    .await?;
    // After: the views without the purged rows.
    let held_after = held_without_purged(&mut *conn).await?;
    let mut tenant_key = BTreeMap::new();
    let mut notices = Vec::new();
    for ((product, entity, id), tenants) in &held_before {
        if held_after.contains_key(&(product.clone(), entity.clone(), *id)) {
            continue;
        }
        let surviving = surviving_tenant(&mut *conn, tenants).await?;
        notices.push(Notice {
            product: product.clone(),
            entity: entity.clone(),
            id: *id,
        });
        tenant_key.insert((product.clone(), entity.clone(), *id), surviving);
    }
    // Deletions still waiting in rows the purge removes are queued again.
    let pending: Vec<Notice> = sqlx::query_as(
        "select p.key as product, o.entity, o.entity_id as id from sync_outbox o \
         join products p on p.id = o.product_id \
         where o.operation = 'delete' and o.dispatched_at is null \
           and o.ctid in (select rid from purge_rows where tbl = 'sync_outbox') order by o.id",
    )
    .fetch_all(&mut *conn)
    .await?;
    for n in pending {
        let key = (n.product.clone(), n.entity.clone(), n.id);
        if let std::collections::btree_map::Entry::Vacant(e) = tenant_key.entry(key) {
            e.insert(None);
            notices.push(n);
        }
    }
    // A product purged with the run (a catalog row it added, with no sync_url) is told nothing.
    let purged_products: Vec<String> = sqlx::query_scalar(
        "select key from products where ctid in (select rid from purge_rows where tbl = 'products')",
    )
    .fetch_all(&mut *conn)
    .await?;
    notices.retain(|n| !purged_products.contains(&n.product));
    // Tenants first, then users, as a tenant's deletion is queued on the platform.
    notices.sort_by(|a, b| {
        (a.product.as_str(), a.entity != "tenant", a.id).cmp(&(
            b.product.as_str(),
            b.entity != "tenant",
            b.id,
        ))
    });
    Ok((
        Prepared {
            plan: PurgePlan {
                asked: target.asked(),
                scope,
                rows,
                tenants_told,
                notices,
                order,
            },
            tenant_key,
        },
        schema,
    ))
}

type Held = BTreeMap<(String, String, i64), Vec<i64>>;

/// The users and tenants each product must hold (the sync views), with the tenants that hold
/// them there.
async fn held(conn: &mut PgConnection) -> Result<Held, sqlx::Error> {
    held_query(conn, "true", "true").await
}

async fn held_without_purged(conn: &mut PgConnection) -> Result<Held, sqlx::Error> {
    held_query(
        conn,
        "t.ctid not in (select rid from purge_rows where tbl = 'tenants')",
        "u.ctid not in (select rid from purge_rows where tbl = 'users')",
    )
    .await
}

async fn held_query(
    conn: &mut PgConnection,
    tenant_kept: &str,
    user_kept: &str,
) -> Result<Held, sqlx::Error> {
    let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(&format!(
        "select p.key, 'tenant', t.id, t.id from tenants t join products p on p.id = t.product_id \
         where t.status <> 'deleted' and {tenant_kept} \
         union all \
         select p.key, 'user', u.id, t.id from users u \
         join tenants t on t.organization_id = u.organization_id and t.status <> 'deleted' \
         join products p on p.id = t.product_id \
         where u.deleted_at is null and {tenant_kept} and {user_kept} \
         order by 1, 2, 3, 4"
    ))
    .fetch_all(conn)
    .await?;
    let mut out: Held = BTreeMap::new();
    for (product, entity, id, tenant) in rows {
        out.entry((product, entity, id)).or_default().push(tenant);
    }
    Ok(out)
}

async fn surviving_tenant(
    conn: &mut PgConnection,
    tenants: &[i64],
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "select min(id) from tenants where id = any($1) \
         and ctid not in (select rid from purge_rows where tbl = 'tenants')",
    )
    .bind(tenants)
    .fetch_one(conn)
    .await
}

/// Puts the roots of `target` into `purge_rows` and says how far the purge reaches.
async fn roots(
    conn: &mut PgConnection,
    schema: &Schema,
    target: &PurgeTarget,
) -> Result<Scope, PurgeError> {
    let org = |id: i64| {
        format!(
            "insert into purge_rows select 'organizations', ctid from organizations where id = {id}"
        )
    };
    match target {
        PurgeTarget::Org(id) => {
            let found = sqlx::query(&org(id.0)).execute(&mut *conn).await?;
            Ok(if found.rows_affected() == 0 {
                Scope::Nothing
            } else {
                Scope::Organization
            })
        }
        PurgeTarget::Email(_) | PurgeTarget::User(_) => {
            let (by, value) = match target {
                PurgeTarget::Email(email) => ("lower(email) = lower($1)", email.trim().to_owned()),
                PurgeTarget::User(id) => ("id = $1::text::bigint", id.0.to_string()),
                _ => unreachable!("matched above"),
            };
            let users: Vec<(i64, i64, String)> = sqlx::query_as(&format!(
                "select id, organization_id, role from users where {by}"
            ))
            .bind(&value)
            .fetch_all(&mut *conn)
            .await?;
            // Addresses are matched without regard to case, as people type them: two users whose
            // addresses differ only in case are both the person asked for, or neither.
            let (user, org_id, role) = match <[_; 1]>::try_from(users) {
                Ok([user]) => user,
                Err(users) if users.is_empty() => return Ok(Scope::Nothing),
                Err(users) => {
                    return Err(PurgeError::Ambiguous {
                        matches: users.len(),
                    });
                }
            };
            let (others, owners): (i64, i64) = sqlx::query_as(
                "select count(*), count(*) filter (where role = 'owner') from users \
                 where organization_id = $1 and id <> $2 and deleted_at is null",
            )
            .bind(org_id)
            .bind(user)
            .fetch_one(&mut *conn)
            .await?;
            if others == 0 {
                sqlx::query(&org(org_id)).execute(&mut *conn).await?;
                return Ok(Scope::Organization);
            }
            sqlx::query("insert into purge_rows select 'users', ctid from users where id = $1")
                .bind(user)
                .execute(&mut *conn)
                .await?;
            if role != "owner" || owners > 0 {
                return Ok(Scope::UserLeft);
            }
            for table in ["tenants", "cards", "billing_accounts"] {
                sqlx::query(&format!(
                    "insert into purge_rows select '{table}', ctid from {table} where organization_id = $1"
                ))
                .bind(org_id)
                .execute(&mut *conn)
                .await?;
            }
            sqlx::query(
                "insert into purge_rows select 'plans', ctid from plans where organization_id = $1",
            )
            .bind(org_id)
            .execute(&mut *conn)
            .await?;
            Ok(Scope::OwnerData)
        }
        PurgeTarget::Run(id) => Ok(if run_roots(conn, schema, id).await? {
            Scope::Run
        } else {
            Scope::Nothing
        }),
    }
}

/// A run's roots: the run and the organizations it recorded. Everything of those organizations
/// goes with them, rows the jobs wrote later included (a charge after the seed is the run's
/// customer's); the rest of what it recorded is added after the walk down from these
/// ([`super::run_rows::add_recorded`]).
async fn run_roots(
    conn: &mut PgConnection,
    schema: &Schema,
    run: &str,
) -> Result<bool, PurgeError> {
    let found = sqlx::query(
        "insert into purge_rows select 'harness_runs', ctid from harness_runs where id = $1",
    )
    .bind(run)
    .execute(&mut *conn)
    .await?;
    if found.rows_affected() == 0 {
        return Ok(false);
    }
    if schema.has("organizations") {
        sqlx::query(
            "insert into purge_rows select 'organizations', o.ctid from organizations o \
             join harness_run_rows r on r.table_name = 'organizations' and r.row_id = o.id \
             where r.run_id = $1 on conflict do nothing",
        )
        .bind(run)
        .execute(&mut *conn)
        .await?;
    }
    Ok(true)
}

/// Adds to `purge_rows`, until nothing more is found, every row that references a row in it:
/// through each foreign key, and through the soft references.
async fn walk_down(conn: &mut PgConnection, schema: &Schema) -> Result<(), PurgeError> {
    loop {
        let mut added = 0;
        for fk in &schema.foreign_keys {
            let sql = format!(
                "insert into purge_rows select $2, c.ctid from {child} c join {parent} p on {on} \
                 where p.ctid in (select rid from purge_rows where tbl = $1) on conflict do nothing",
                parent = fk.parent,
                child = fk.child,
                on = fk.on(),
            );
            added += affected(conn, &sql, &[&fk.parent, &fk.child]).await?;
        }
        for (entity, table) in schema.outbox_entities() {
            let sql = format!(
                "insert into purge_rows select 'sync_outbox', o.ctid from sync_outbox o \
                 join {table} x on o.entity = $1 and o.entity_id = x.id \
                 where x.ctid in (select rid from purge_rows where tbl = $2) on conflict do nothing"
            );
            added += affected(conn, &sql, &[entity, table]).await?;
        }
        if schema.has("harness_run_rows") {
            for table in &schema.with_id {
                let sql = format!(
                    "insert into purge_rows select 'harness_run_rows', r.ctid from harness_run_rows r \
                     join {table} x on r.table_name = $1 and r.row_id = x.id \
                     where x.ctid in (select rid from purge_rows where tbl = $1) on conflict do nothing"
                );
                added += affected(conn, &sql, &[table]).await?;
            }
        }
        if added == 0 {
            return Ok(());
        }
    }
}
