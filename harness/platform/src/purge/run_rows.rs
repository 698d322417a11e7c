//! What a purge of a scenario run takes beyond the organizations it created: the other rows it
//! recorded (`harness_run_rows`) that belong to no organization left standing and that nothing
//! left standing uses. A catalog row the run added goes unless another row still uses it (a plan
//! another run subscribed to, a product with a `sync_url`); a row the run recorded that hangs
//! below another organization (an invoice its clock's close wrote for someone else's
//! subscription) is that organization's, and stays; the records themselves all go with the run.

use sqlx::PgConnection;

use super::catalog::{Schema, affected};
use super::error::PurgeError;

/// Adds to `purge_rows` the rows `run` recorded beyond what is there already (its
/// organizations and everything below them), leaving out each row that hangs below an
/// organization not purged, and each row something not purged references (until none does).
pub(super) async fn add_recorded(
    conn: &mut PgConnection,
    schema: &Schema,
    run: &str,
) -> Result<(), PurgeError> {
    sqlx::query(
        "create temporary table purge_candidates (tbl text not null, rid tid not null, \
         primary key (tbl, rid)) on commit drop",
    )
    .execute(&mut *conn)
    .await?;
    for table in &schema.with_id {
        affected(
            conn,
            &format!(
                "insert into purge_candidates select $1, x.ctid from {table} x \
                 join harness_run_rows r on r.table_name = $1 and r.row_id = x.id \
                 where r.run_id = $2 and x.ctid not in (select rid from purge_rows where tbl = $1) \
                 on conflict do nothing"
            ),
            &[table, run],
        )
        .await?;
    }
    if schema.has("products") {
        // A product with a sync_url is in use (someone configured where it is told of changes),
        // and must hear of the run's deletions: it stays.
        sqlx::query(
            "delete from purge_candidates k using products p \
             where k.tbl = 'products' and p.ctid = k.rid and p.sync_url is not null",
        )
        .execute(&mut *conn)
        .await?;
    }
    spare_other_organizations(conn, schema).await?;
    spare_used(conn, schema).await?;
    sqlx::query(
        "insert into purge_rows select tbl, rid from purge_candidates on conflict do nothing",
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Drops from the candidates every row with an organization not purged above it: walks up every
/// foreign key (and an outbox row's entity) from each candidate, keeping where each walk began.
async fn spare_other_organizations(
    conn: &mut PgConnection,
    schema: &Schema,
) -> Result<(), PurgeError> {
    sqlx::query(
        "create temporary table purge_lineage (root_tbl text not null, root_rid tid not null, \
         tbl text not null, rid tid not null, primary key (root_tbl, root_rid, tbl, rid)) on commit drop",
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query("insert into purge_lineage select tbl, rid, tbl, rid from purge_candidates")
        .execute(&mut *conn)
        .await?;
    loop {
        let mut added = 0;
        for fk in &schema.foreign_keys {
            let sql = format!(
                "insert into purge_lineage select l.root_tbl, l.root_rid, $2, p.ctid \
                 from purge_lineage l join {child} c on l.tbl = $1 and c.ctid = l.rid \
                 join {parent} p on {on} on conflict do nothing",
                child = fk.child,
                parent = fk.parent,
                on = fk.on(),
            );
            added += affected(conn, &sql, &[&fk.child, &fk.parent]).await?;
        }
        for (entity, table) in schema.outbox_entities() {
            let sql = format!(
                "insert into purge_lineage select l.root_tbl, l.root_rid, $2, x.ctid \
                 from purge_lineage l join sync_outbox o on l.tbl = 'sync_outbox' and o.ctid = l.rid \
                 join {table} x on o.entity = $1 and o.entity_id = x.id on conflict do nothing"
            );
            added += affected(conn, &sql, &[entity, table]).await?;
        }
        if added == 0 {
            break;
        }
    }
    // Any organization above a candidate is one not purged: `purge_rows` is closed downwards
    // (the walk down follows these very links), so a row below a purged organization is in it
    // already, never a candidate.
    sqlx::query(
        "delete from purge_candidates k using purge_lineage l \
         where l.root_tbl = k.tbl and l.root_rid = k.rid and l.tbl = 'organizations'",
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Drops from the candidates, until none is left to drop, every row that a row neither purged
/// nor a candidate references (through a foreign key, or as an outbox row's entity); rows of a
/// table without an id go with what they reference.
async fn spare_used(conn: &mut PgConnection, schema: &Schema) -> Result<(), PurgeError> {
    let standing = |tbl: &str, alias: &str| {
        format!(
            "{alias}.ctid not in (select rid from purge_rows where tbl = '{tbl}') \
             and {alias}.ctid not in (select rid from purge_candidates where tbl = '{tbl}')"
        )
    };
    loop {
        let mut dropped = 0;
        // A row of a table without an id (a plan's limits) is part of the row it references: no
        // run can record it, and it goes with its parent.
        for fk in schema
            .foreign_keys
            .iter()
            .filter(|fk| schema.with_id.contains(&fk.child))
        {
            let sql = format!(
                "delete from purge_candidates k where k.tbl = $1 and exists (\
                 select 1 from {parent} p join {child} c on {on} where p.ctid = k.rid and {kept})",
                parent = fk.parent,
                child = fk.child,
                on = fk.on(),
                kept = standing(&fk.child, "c"),
            );
            dropped += affected(conn, &sql, &[&fk.parent]).await?;
        }
        for (entity, table) in schema.outbox_entities() {
            let sql = format!(
                "delete from purge_candidates k where k.tbl = $2 and exists (\
                 select 1 from {table} x join sync_outbox o on o.entity = $1 and o.entity_id = x.id \
                 where x.ctid = k.rid and {kept})",
                kept = standing("sync_outbox", "o"),
            );
            dropped += affected(conn, &sql, &[entity, table]).await?;
        }
        if dropped == 0 {
            return Ok(());
        }
    }
}
