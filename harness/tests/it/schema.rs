//! The reference platform schema: every table exists, starts empty, and is tied by foreign keys.

use billing_harness::TestEnv;
use rstest::rstest;

use crate::env;

#[rstest]
#[tokio::test]
async fn every_platform_table_exists_and_starts_empty(
    #[future] env: TestEnv,
    #[values(
        "harness_runs",
        "harness_run_rows",
        "organizations",
        "users",
        "invitations",
        "cards",
        "billing_accounts",
        "products",
        "plans",
        "plan_limits",
        "plan_metrics",
        "tenants",
        "product_users",
        "subscriptions",
        "contracts",
        "contract_details",
        "billings",
        "billing_details",
        "usage_events",
        "invoices",
        "invoice_lines",
        "payments",
        "sync_outbox"
    )]
    table: &str,
) {
    let env = env.await;
    let rows: i64 = sqlx::query_scalar(&format!("select count(*) from {table}"))
        .fetch_one(env.pool())
        .await
        .unwrap();
    assert_eq!(rows, 0);
}

#[rstest]
#[tokio::test]
async fn no_column_default_reads_the_wall_clock(#[future] env: TestEnv) {
    let env = env.await;
    let offenders: Vec<String> = sqlx::query_scalar(
        "select table_name || '.' || column_name from information_schema.columns \
         where table_schema = 'public' and table_name <> '_sqlx_migrations' and column_default ~* '(now|current_timestamp|current_date|clock_timestamp|statement_timestamp|transaction_timestamp|localtime)'",
    )
    .fetch_all(env.pool())
    .await
    .unwrap();
    assert_eq!(offenders, Vec::<String>::new());
}

#[rstest]
#[tokio::test]
async fn every_table_but_the_roots_references_another(#[future] env: TestEnv) {
    let env = env.await;
    let unlinked: Vec<String> = sqlx::query_scalar(
        "select c.relname::text from pg_class c join pg_namespace n on n.oid = c.relnamespace \
         where n.nspname = 'public' and c.relkind = 'r' \
           and not exists (select 1 from pg_constraint k where k.conrelid = c.oid and k.contype = 'f') \
         order by 1",
    )
    .fetch_all(env.pool())
    .await
    .unwrap();
    assert_eq!(
        unlinked,
        [
            "_sqlx_migrations",
            "harness_clock",
            "harness_runs",
            "month_closes",
            "organizations",
            "platform_settings",
            "products",
            // An audit that must outlive the rows it describes: it references none of them.
            "purge_audit"
        ]
    );
}

#[rstest]
#[tokio::test]
async fn a_row_that_breaks_a_foreign_key_is_refused(#[future] env: TestEnv) {
    let env = env.await;
    let err = sqlx::query(
        "insert into users (organization_id, email, name, role, created_at) \
         values (999, 'a@example.com', 'A', 'owner', harness_now())",
    )
    .execute(env.pool())
    .await
    .unwrap_err();
    let code = err.as_database_error().and_then(|e| e.code()).unwrap();
    assert_eq!(code, "23503", "foreign_key_violation");
}

#[rstest]
#[tokio::test]
async fn every_table_checks_the_marker_and_every_table_with_an_id_records_run_rows(
    #[future] env: TestEnv,
) {
    let env = env.await;
    let missing = |trigger: &str, tables: &str| {
        format!(
            "select c.relname::text from pg_class c join pg_namespace n on n.oid = c.relnamespace \
             where n.nspname = 'public' and c.relkind = 'r' and c.relname <> '_sqlx_migrations' {tables} \
               and not exists (select 1 from pg_trigger t where t.tgrelid = c.oid and t.tgname = '{trigger}') \
             order by 1"
        )
    };
    let unguarded: Vec<String> = sqlx::query_scalar(&missing("harness_guard", ""))
        .fetch_all(env.pool())
        .await
        .unwrap();
    let unrecorded: Vec<String> = sqlx::query_scalar(&missing(
        "harness_record_row",
        "and exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'id' \
         and a.atttypid in ('bigint'::regtype, 'integer'::regtype, 'smallint'::regtype))",
    ))
    .fetch_all(env.pool())
    .await
    .unwrap();
    // A migration that adds a table adds both triggers (see the harness_guard migration).
    assert_eq!(
        unguarded,
        Vec::<String>::new(),
        "tables that skip the marker check"
    );
    assert_eq!(
        unrecorded,
        Vec::<String>::new(),
        "tables whose rows a run would not own"
    );
}
