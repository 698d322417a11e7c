//! Purge: deletes an organization, or a user, with everything that only it owns, in one
//! transaction, and tells each product of the users and tenants it no longer holds.
//!
//! How far a user's purge reaches depends on who stays: a user who is not the organization's
//! last owner only leaves; the last owner of an organization that keeps other members takes the
//! organization's customers (its tenants, with their subscriptions, invoices, payments and
//! contracts) along, and the organization stays with its members; the last user takes the
//! whole organization. What products are told is the difference between what the sync views
//! list before and after: every tenant deleted, and every user no tenant keeps on a product.

use std::collections::BTreeMap;

use sqlx::PgConnection;

use crate::Error;
use crate::outbox::{self, Entity};
use crate::service::{BillingService, CustomerId, OrganizationId};

/// What to purge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PurgeTarget<'a> {
    /// An organization, its users and its customers, with everything of them.
    Organization(OrganizationId),
    /// A user, by e-mail address (case does not matter).
    User(&'a str),
}

/// How far a purge reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PurgeScope {
    /// A user left an organization that keeps another owner: only the user went.
    UserLeft,
    /// The last owner of an organization that keeps other members: the user and the
    /// organization's customers went; the organization stays with its members.
    OwnerData,
    /// A whole organization: the target itself, or a user who was its last member.
    Organization,
    /// Nothing matched (purged already, say): nothing was deleted.
    Nothing,
}

/// A deletion a product is told of, through the outbox.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Notice {
    /// The product.
    pub product: String,
    /// [`Entity::Tenant`] or [`Entity::User`].
    pub entity: Entity,
    /// The tenant's (customer's) or user's id.
    pub id: i64,
}

/// What a purge did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purged {
    /// How far it reached.
    pub scope: PurgeScope,
    /// Rows deleted, per table; tables with none are left out.
    pub rows: BTreeMap<String, u64>,
    /// The customers deleted.
    pub customers: Vec<CustomerId>,
    /// The deletions queued for products, tenants first.
    pub notices: Vec<Notice>,
}

/// What the sync views list: (product, entity, id) with the customers that hold it there.
type Held = BTreeMap<(String, Entity, i64), Vec<i64>>;

impl BillingService {
    /// Purges `target` at the clock's now (see the module's rules).
    ///
    /// # Errors
    /// The database failed; nothing is written then.
    pub async fn purge(&self, target: PurgeTarget<'_>) -> Result<Purged, Error> {
        let now = self.now();
        let mut tx = self.pool.begin().await?;
        let (scope, org, users) = reach(&mut tx, target).await?;
        let customers: Vec<i64> = match (scope, org) {
            (PurgeScope::Organization | PurgeScope::OwnerData, Some(org)) => {
                sqlx::query_scalar("select id from customers where organization_id = $1")
                    .bind(org)
                    .fetch_all(&mut *tx)
                    .await?
            }
            _ => Vec::new(),
        };
        let before = held(&mut tx).await?;
        let mut rows = BTreeMap::new();
        delete_customers(&mut tx, &customers, &mut rows).await?;
        let by_user = "operation = 'upsert' and entity = 'user' and entity_id = any($1)";
        delete(&mut tx, "product_outbox", by_user, &users, &mut rows).await?;
        delete(&mut tx, "users", "id = any($1)", &users, &mut rows).await?;
        if scope == PurgeScope::Organization {
            let orgs: Vec<i64> = org.into_iter().map(|o| o.0).collect();
            delete(&mut tx, "organizations", "id = any($1)", &orgs, &mut rows).await?;
        }
        let after = held(&mut tx).await?;
        let mut notices: Vec<(Notice, Option<i64>)> = before
            .into_iter()
            .filter(|(key, _)| !after.contains_key(key))
            .map(|((product, entity, id), holders)| {
                (
                    Notice {
                        product,
                        entity,
                        id,
                    },
                    holders.first().copied(),
                )
            })
            .collect();
        notices.sort_by(|(a, _), (b, _)| {
            let order = |n: &Notice| (n.product.clone(), n.entity != Entity::Tenant, n.id);
            order(a).cmp(&order(b))
        });
        for (n, customer) in &notices {
            outbox::queue_delete(&mut tx, &n.product, *customer, n.entity, n.id, now).await?;
        }
        tx.commit().await?;
        Ok(Purged {
            scope,
            rows,
            customers: customers.into_iter().map(CustomerId).collect(),
            notices: notices.into_iter().map(|(n, _)| n).collect(),
        })
    }
}

/// How far purging `target` reaches: the scope, the organization it deletes from, the users
/// it deletes.
async fn reach(
    conn: &mut PgConnection,
    target: PurgeTarget<'_>,
) -> Result<(PurgeScope, Option<OrganizationId>, Vec<i64>), Error> {
    let email = match target {
        PurgeTarget::Organization(org) => {
            let users: Option<Vec<i64>> = sqlx::query_scalar(
                "select array(select u.id from users u where u.organization_id = o.id) \
                 from organizations o where o.id = $1 for update",
            )
            .bind(org)
            .fetch_optional(&mut *conn)
            .await?;
            return Ok(match users {
                Some(users) => (PurgeScope::Organization, Some(org), users),
                None => (PurgeScope::Nothing, None, Vec::new()),
            });
        }
        PurgeTarget::User(email) => email.trim(),
    };
    let user: Option<(i64, OrganizationId, String)> = sqlx::query_as(
        "select id, organization_id, role from users where lower(email) = lower($1) for update",
    )
    .bind(email)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((user, org, role)) = user else {
        return Ok((PurgeScope::Nothing, None, Vec::new()));
    };
    let (others, owners): (i64, i64) = sqlx::query_as(
        "select count(*), count(*) filter (where role = 'owner') from users \
         where organization_id = $1 and id <> $2",
    )
    .bind(org)
    .bind(user)
    .fetch_one(&mut *conn)
    .await?;
    let scope = if others == 0 {
        PurgeScope::Organization
    } else if role != "owner" || owners > 0 {
        PurgeScope::UserLeft
    } else {
        PurgeScope::OwnerData
    };
    Ok((scope, Some(org), vec![user]))
}

/// Deletes `customers` with everything of them, children first: payments, invoice lines,
/// invoices, usage, contracts and their plans, plan periods, subscriptions, their queued
/// upserts (deletions queued earlier still go out) and the customers.
async fn delete_customers(
    conn: &mut PgConnection,
    customers: &[i64],
    rows: &mut BTreeMap<String, u64>,
) -> Result<(), Error> {
    if customers.is_empty() {
        return Ok(());
    }
    let invoices = "invoice_id in (select id from invoices where customer_id = any($1))";
    let subscriptions =
        "subscription_id in (select id from subscriptions where customer_id = any($1))";
    delete(&mut *conn, "payments", invoices, customers, rows).await?;
    delete(&mut *conn, "invoice_lines", invoices, customers, rows).await?;
    delete(
        &mut *conn,
        "invoices",
        "customer_id = any($1)",
        customers,
        rows,
    )
    .await?;
    delete(&mut *conn, "usage_events", subscriptions, customers, rows).await?;
    delete(&mut *conn, "plan_periods", subscriptions, customers, rows).await?;
    // The contracts' own plans go after the rows that name them, before the contracts.
    let keys: Vec<String> =
        sqlx::query_scalar("select plan_key from contracts where customer_id = any($1)")
            .bind(customers)
            .fetch_all(&mut *conn)
            .await?;
    delete(
        &mut *conn,
        "contracts",
        "customer_id = any($1)",
        customers,
        rows,
    )
    .await?;
    let done = sqlx::query("delete from plans where base_key is not null and key = any($1)")
        .bind(&keys)
        .execute(&mut *conn)
        .await?;
    count(rows, "plans", done.rows_affected());
    delete(
        &mut *conn,
        "subscriptions",
        "customer_id = any($1)",
        customers,
        rows,
    )
    .await?;
    let queued = "operation = 'upsert' and customer_id = any($1)";
    delete(&mut *conn, "product_outbox", queued, customers, rows).await?;
    delete(&mut *conn, "customers", "id = any($1)", customers, rows).await
}

/// Deletes the rows of `table` that `filter` picks with `ids` as `$1`, counting them.
async fn delete(
    conn: &mut PgConnection,
    table: &str,
    filter: &str,
    ids: &[i64],
    rows: &mut BTreeMap<String, u64>,
) -> Result<(), Error> {
    if ids.is_empty() {
        return Ok(());
    }
    let done = sqlx::query(&format!("delete from {table} where {filter}"))
        .bind(ids)
        .execute(conn)
        .await?;
    count(rows, table, done.rows_affected());
    Ok(())
}

fn count(rows: &mut BTreeMap<String, u64>, table: &str, n: u64) {
    if n > 0 {
        *rows.entry(table.to_owned()).or_insert(0) += n;
    }
}

/// The tenants and users each product must hold now, with the customers that hold them there.
async fn held(conn: &mut PgConnection) -> Result<Held, sqlx::Error> {
    let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(
        "select product, 'tenant', entity_id, customer_id from product_tenants \
         union all select product, 'user', entity_id, customer_id from product_users \
         order by 1, 2, 3, 4",
    )
    .fetch_all(conn)
    .await?;
    let mut out = Held::new();
    for (product, entity, id, customer) in rows {
        let entity = if entity == "tenant" {
            Entity::Tenant
        } else {
            Entity::User
        };
        out.entry((product, entity, id)).or_default().push(customer);
    }
    Ok(out)
}
