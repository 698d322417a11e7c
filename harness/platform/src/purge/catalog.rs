//! What the purge knows of a schema, read from the database catalog rather than a list of tables:
//! every foreign key, the known soft references (outbox entity ids, run rows), and the integer
//! `*_id` columns that reference something without saying what, which make the purge refuse.

use sqlx::PgConnection;

use super::error::PurgeError;

/// A foreign key, child columns to parent columns, as `pg_constraint` states it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub(super) struct ForeignKey {
    pub(super) child: String,
    pub(super) parent: String,
    pub(super) child_cols: Vec<String>,
    pub(super) parent_cols: Vec<String>,
}

impl ForeignKey {
    /// The join condition `c.a = p.x and ...`.
    pub(super) fn on(&self) -> String {
        self.child_cols
            .iter()
            .zip(&self.parent_cols)
            .map(|(c, p)| format!("c.{c} = p.{p}"))
            .collect::<Vec<_>>()
            .join(" and ")
    }
}

/// A reference that is not a foreign key but points at a row all the same: an outbox row's
/// `entity_id` (`user`, `tenant` or `subscription` by its `entity`) and a run row's `row_id` (any
/// table, by its `table_name`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SoftReference {
    /// The table holding the reference.
    pub(super) table: &'static str,
    /// The column holding the referenced id.
    pub(super) column: &'static str,
}

/// The soft references the purge follows. Each is a column no foreign key can express.
pub(super) const SOFT_REFERENCES: &[SoftReference] = &[
    SoftReference {
        table: "sync_outbox",
        column: "entity_id",
    },
    SoftReference {
        table: "harness_run_rows",
        column: "row_id",
    },
];

/// Which table an outbox row's `entity` names.
pub(super) const OUTBOX_ENTITIES: &[(&str, &str)] = &[
    ("user", "users"),
    ("tenant", "tenants"),
    ("subscription", "subscriptions"),
];

/// The schema as the purge sees it.
#[derive(Debug, Clone)]
pub(super) struct Schema {
    pub(super) tables: Vec<String>,
    pub(super) foreign_keys: Vec<ForeignKey>,
    /// Tables with an integer `id` column (rows a run row can name; keys the walk compares).
    pub(super) with_id: Vec<String>,
}

impl Schema {
    /// Whether `table` exists.
    pub(super) fn has(&self, table: &str) -> bool {
        self.tables.iter().any(|t| t == table)
    }

    /// The outbox's entities whose tables the schema has (none without an outbox).
    pub(super) fn outbox_entities(&self) -> impl Iterator<Item = &(&'static str, &'static str)> {
        OUTBOX_ENTITIES
            .iter()
            .filter(|(_, table)| self.has("sync_outbox") && self.has(table))
    }
}

/// Runs `sql` with `binds` (text, `$1`, `$2`, ... in order) and returns how many rows it
/// changed: the step of the purge's walks, each of which repeats until a round changes none.
pub(super) async fn affected(
    conn: &mut PgConnection,
    sql: &str,
    binds: &[&str],
) -> Result<u64, PurgeError> {
    let mut query = sqlx::query(sql);
    for bind in binds {
        query = query.bind(*bind);
    }
    Ok(query.execute(conn).await?.rows_affected())
}

/// Reads the schema of `public` and refuses an integer `*_id` column that is neither in a foreign
/// key nor a known soft reference: the purge cannot tell what it points at, so it cannot promise
/// that nothing is left pointing at a purged row.
pub(super) async fn read(conn: &mut PgConnection) -> Result<Schema, PurgeError> {
    let tables: Vec<String> = sqlx::query_scalar(
        "select table_name::text from information_schema.tables \
         where table_schema = 'public' and table_type = 'BASE TABLE' \
           and table_name <> '_sqlx_migrations' order by 1",
    )
    .fetch_all(&mut *conn)
    .await?;
    let foreign_keys: Vec<ForeignKey> = sqlx::query_as(
        "select c.conrelid::regclass::text as child, c.confrelid::regclass::text as parent, \
                array(select a.attname::text from unnest(c.conkey) with ordinality k(n, i) \
                      join pg_attribute a on a.attrelid = c.conrelid and a.attnum = k.n \
                      order by k.i) as child_cols, \
                array(select a.attname::text from unnest(c.confkey) with ordinality k(n, i) \
                      join pg_attribute a on a.attrelid = c.confrelid and a.attnum = k.n \
                      order by k.i) as parent_cols \
         from pg_constraint c join pg_namespace n on n.oid = c.connamespace \
         where c.contype = 'f' and n.nspname = 'public' \
         order by 1, 2, c.conname",
    )
    .fetch_all(&mut *conn)
    .await?;
    let with_id: Vec<String> = sqlx::query_scalar(
        "select table_name::text from information_schema.columns \
         where table_schema = 'public' and column_name = 'id' \
           and data_type in ('bigint', 'integer', 'smallint') order by 1",
    )
    .fetch_all(&mut *conn)
    .await?;
    let columns: Vec<(String, String)> = sqlx::query_as(
        "select c.table_name::text, c.column_name::text from information_schema.columns c \
         join information_schema.tables t on t.table_schema = c.table_schema \
              and t.table_name = c.table_name and t.table_type = 'BASE TABLE' \
         where c.table_schema = 'public' and c.column_name like '%\\_id' \
           and c.data_type in ('bigint', 'integer', 'smallint') order by 1, 2",
    )
    .fetch_all(&mut *conn)
    .await?;
    for (table, column) in columns {
        let in_key = foreign_keys
            .iter()
            .any(|fk| fk.child == table && fk.child_cols.contains(&column));
        let soft = SOFT_REFERENCES
            .iter()
            .any(|s| s.table == table && s.column == column);
        if !in_key && !soft {
            return Err(PurgeError::UnknownReference { table, column });
        }
    }
    Ok(Schema {
        tables,
        foreign_keys,
        with_id,
    })
}

/// The platform's analysis of deletion (ARCHITECTURE.md, process 4), as a preference: when
/// several tables may go next, the one listed first goes first. Coverage never depends on this
/// list: a table missing from it goes after the listed ones, by name, still children first.
pub(super) const ANALYSIS_ORDER: &[&str] = &[
    "payments",
    "invoice_lines",
    "invoices",
    "usage_events",
    "billing_details",
    "billings",
    "contract_details",
    "contracts",
    "subscriptions",
    "product_users",
    "tenants",
    "cards",
    "invitations",
    "billing_accounts",
    "users",
    "organizations",
];

/// The order to delete `tables` in: every table before the tables it references (a foreign key's
/// child before its parent), ties broken by [`ANALYSIS_ORDER`], then by name. A cycle through
/// several tables is broken at its best-ranked table; one statement per table then fails on the
/// key and rolls the purge back rather than leave a half.
pub(super) fn deletion_order(tables: &[String], foreign_keys: &[ForeignKey]) -> Vec<String> {
    let rank = |t: &String| {
        ANALYSIS_ORDER
            .iter()
            .position(|a| a == t)
            .unwrap_or(ANALYSIS_ORDER.len())
    };
    let mut left: Vec<String> = tables.to_vec();
    left.sort_by(|a, b| rank(a).cmp(&rank(b)).then(a.cmp(b)));
    let mut order = Vec::with_capacity(left.len());
    while !left.is_empty() {
        // A table is ready when no table still left references it (other than itself).
        let ready = left
            .iter()
            .position(|t| {
                !foreign_keys
                    .iter()
                    .any(|fk| &fk.parent == t && &fk.child != t && left.contains(&fk.child))
            })
            .unwrap_or(0);
        order.push(left.remove(ready));
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fk(child: &str, parent: &str) -> ForeignKey {
        ForeignKey {
            child: child.into(),
            parent: parent.into(),
            child_cols: vec![format!("{parent}_id")],
            parent_cols: vec!["id".into()],
        }
    }

    #[test]
    fn children_go_before_parents_and_the_analysis_breaks_ties() {
        let keys = [
            fk("users", "organizations"),
            fk("invitations", "users"),
            fk("invitations", "organizations"),
            fk("tenants", "organizations"),
            fk("notes", "tenants"),
            fk("plans", "plans"),
        ];
        let tables: Vec<String> = [
            "organizations",
            "users",
            "invitations",
            "tenants",
            "notes",
            "plans",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            deletion_order(&tables, &keys),
            [
                "invitations",
                "users",
                "notes",
                "tenants",
                "organizations",
                "plans"
            ]
        );
    }
}
