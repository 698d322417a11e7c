//! A database others share (a QA database the harness did not create): attaching refuses it
//! unmarked; every write checks the marker in its own transaction; a run owns the rows its
//! connections wrote, never a range of ids, and its purge leaves every other run's rows; a
//! catalog that differs is refused with nothing written; the shared clock never goes back.

use std::collections::BTreeMap;

use billing_harness::TestEnv;
use billing_harness::env::{Database, EnvError};
use billing_harness::model::{Currency, OrgId, default_catalog};
use billing_harness::purge::{self, PurgeTarget, Scope};
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use crate::support::seoul;

/// A database on the test's server that the harness did not create, dropped by [`Foreign::drop`].
struct Foreign {
    url: String,
    name: String,
    /// A plain pool on it: no harness setting, as another program's.
    pool: PgPool,
}

impl Foreign {
    async fn new(env: &TestEnv, tag: &str, marked: bool) -> Foreign {
        let name = format!(
            "qa_{tag}_{}_{:08x}",
            std::process::id(),
            rand::random::<u32>()
        );
        sqlx::query(&format!("create database {name}"))
            .execute(env.pool())
            .await
            .unwrap();
        let url = format!("{}/{name}", env.url().rsplit_once('/').unwrap().0);
        if marked {
            billing_harness::env::mark(&url, "qa", &billing_harness::platform_schema())
                .await
                .unwrap();
        }
        let pool = PgPoolOptions::new()
            .max_connections(3)
            .connect(&url)
            .await
            .unwrap();
        Foreign { url, name, pool }
    }

    async fn begin_run(&self, run: &str) {
        sqlx::query(
            "insert into harness_runs (id, scenario, seed, created_at) values ($1, $1, 1, $2)",
        )
        .bind(run)
        .bind(seoul(2026, 10, 1))
        .execute(&self.pool)
        .await
        .unwrap();
    }

    /// Attaches to it with the clock at `start`, recording its writes as `run`'s when given.
    async fn attach(&self, start: DateTime<Utc>, run: Option<&str>) -> TestEnv {
        let builder = TestEnv::builder().start_at(start);
        let builder = match run {
            Some(run) => builder.record_run(run),
            None => builder,
        };
        builder.attach(&self.url).await.unwrap()
    }

    /// Attaches to it with the clock at 2026-10-01 (Seoul), installs the default catalog and
    /// creates one organization: a database with a row to write to.
    async fn attach_with_an_org(&self) -> TestEnv {
        let start = seoul(2026, 10, 1);
        let attached = self.attach(start, None).await;
        attached
            .platform()
            .install_catalog(&default_catalog(), start)
            .await
            .unwrap();
        attached.build().org().create().await.unwrap();
        attached
    }

    /// How many organizations it holds, read by another program's connection.
    async fn organizations(&self) -> i64 {
        sqlx::query_scalar("select count(*) from organizations")
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// The shared clock's time (`harness_clock`).
    async fn clock(&self) -> DateTime<Utc> {
        sqlx::query_scalar("select now from harness_clock")
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    async fn drop(self, env: &TestEnv) {
        self.pool.close().await;
        sqlx::query(&format!("drop database {} with (force)", self.name))
            .execute(env.pool())
            .await
            .unwrap();
    }
}

/// Every row `run` recorded, as (table, id), ordered.
async fn recorded(pool: &PgPool, run: &str) -> Vec<(String, i64)> {
    sqlx::query_as(
        "select table_name, row_id from harness_run_rows where run_id = $1 order by 1, 2",
    )
    .bind(run)
    .fetch_all(pool)
    .await
    .unwrap()
}

/// How many of `rows` still exist, per table.
async fn existing(pool: &PgPool, rows: &[(String, i64)]) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for (table, id) in rows {
        let n: i64 = sqlx::query_scalar(&format!("select count(*) from {table} where id = $1"))
            .bind(id)
            .fetch_one(pool)
            .await
            .unwrap();
        *out.entry(table.clone()).or_insert(0) += n;
    }
    out
}

/// The rows of an organization and everything below it, per table (the purge's own plan), the
/// runs' records of them left out (a run's go with it).
async fn below(pool: &PgPool, org: OrgId) -> BTreeMap<String, u64> {
    let mut rows = purge::plan(pool, &PurgeTarget::Org(org))
        .await
        .unwrap()
        .rows;
    rows.remove("harness_run_rows");
    rows
}

#[tokio::test]
async fn a_run_owns_the_rows_its_connections_wrote_and_its_purge_leaves_every_other_row() {
    let env = TestEnv::start().await;
    let qa = Foreign::new(&env, "runs", true).await;
    qa.begin_run("run-a").await;
    qa.begin_run("run-b").await;
    let start = seoul(2026, 10, 1);
    let (a, b, app) = (
        qa.attach(start, Some("run-a")).await,
        qa.attach(start, Some("run-b")).await,
        qa.attach(start, None).await,
    );
    // Interleaved: ids of the three writers alternate, so no range of ids is one run's.
    let a1 = a.build().tenant().plan("pro").create().await.unwrap();
    let b1 = b.build().tenant().plan("pro").create().await.unwrap();
    let app1 = app.build().tenant().plan("pro").create().await.unwrap();
    let a2 = a.build().tenant().plan("business").create().await.unwrap();
    let b2 = b.build().org().create().await.unwrap();
    // Run a's clock closes October for every subscription: b's and the application's invoices
    // are recorded as a's writes, and stay theirs.
    a.clock().advance_to(seoul(2026, 11, 2)).await.unwrap();
    let orgs: Vec<i64> = sqlx::query_scalar(
        "select row_id from harness_run_rows where run_id = 'run-a' and table_name = 'organizations' order by 1",
    )
    .fetch_all(&qa.pool)
    .await
    .unwrap();
    let mut made = vec![a1.org().0, a2.org().0];
    made.dedup();
    assert_eq!(orgs, made, "a recorded its organizations only");
    let invoices_of_a: i64 = sqlx::query_scalar(
        "select count(*) from harness_run_rows where run_id = 'run-a' and table_name = 'invoices'",
    )
    .fetch_one(&qa.pool)
    .await
    .unwrap();
    assert_eq!(
        invoices_of_a, 4,
        "a's close wrote every subscription's invoice"
    );

    let others = [b1.org(), b2.id, app1.org()];
    let mut before = Vec::new();
    for org in others {
        before.push(below(&qa.pool, org).await);
    }
    let b_rows = recorded(&qa.pool, "run-b").await;
    let b_before = existing(&qa.pool, &b_rows).await;
    let a_rows = recorded(&qa.pool, "run-a").await;
    let report = purge::purge(&qa.pool, &PurgeTarget::Run("run-a".into()), a.clock().now())
        .await
        .unwrap();
    assert_eq!(report.plan.scope, Scope::Run);
    for (org, was) in others.into_iter().zip(before) {
        assert_eq!(
            below(&qa.pool, org).await,
            was,
            "organization {org:?} kept every row"
        );
    }
    assert_eq!(
        existing(&qa.pool, &b_rows).await,
        b_before,
        "run b's rows all remain"
    );
    let left = existing(&qa.pool, &a_rows).await;
    for table in [
        "organizations",
        "users",
        "cards",
        "billing_accounts",
        "tenants",
        "subscriptions",
    ] {
        assert_eq!(
            left.get(table).copied().unwrap_or(0),
            0,
            "{table}: {left:?}"
        );
    }
    // The invoices a's close wrote for b's and the application's subscriptions stay theirs, and
    // so does the catalog a installed, which they subscribe to.
    assert_eq!(left["invoices"], 2, "{left:?}");
    assert!(left["plans"] > 0 && left["products"] > 0, "{left:?}");
    for org in [a1.org(), a2.org()] {
        assert!(
            below(&qa.pool, org).await.is_empty(),
            "a's organizations went"
        );
    }
    drop((a, b, app));
    qa.drop(&env).await;
}

#[tokio::test]
async fn a_run_that_stops_half_way_is_purged_to_its_last_row_catalog_included() {
    let env = TestEnv::start().await;
    let qa = Foreign::new(&env, "halfway", true).await;
    qa.begin_run("run-c").await;
    {
        let c = qa.attach(seoul(2026, 10, 1), Some("run-c")).await;
        let tenant = c.build().tenant().plan("pro").create().await.unwrap();
        tenant.usage("api_calls", 10).await.unwrap();
        // It stops here: no tag at the end, every row was recorded as it was written.
    }
    let rows = recorded(&qa.pool, "run-c").await;
    let tables: Vec<&str> = rows.iter().map(|(t, _)| t.as_str()).collect();
    for table in [
        "organizations",
        "tenants",
        "subscriptions",
        "plans",
        "products",
    ] {
        assert!(tables.contains(&table), "{table} recorded: {rows:?}");
    }
    purge::purge(
        &qa.pool,
        &PurgeTarget::Run("run-c".into()),
        seoul(2026, 10, 2),
    )
    .await
    .unwrap();
    let left = existing(&qa.pool, &rows).await;
    assert!(
        left.values().all(|n| *n == 0),
        "rows of run-c left: {left:?}"
    );
    let runs: i64 = sqlx::query_scalar("select count(*) from harness_runs")
        .fetch_one(&qa.pool)
        .await
        .unwrap();
    assert_eq!(runs, 0);
    qa.drop(&env).await;
}

#[tokio::test]
async fn debug_of_an_attached_database_and_env_shows_no_password() {
    let env = TestEnv::start().await;
    let qa = Foreign::new(&env, "debug", true).await;
    let role = format!("qa_dbg_{:08x}", rand::random::<u32>());
    let password = format!("pw-{:016x}", rand::random::<u64>());
    sqlx::query(&format!(
        "create role {role} login superuser password '{password}'"
    ))
    .execute(env.pool())
    .await
    .unwrap();
    let url = format!(
        "postgres://{role}:{password}@{}:{}/{}",
        env.host(),
        env.port(),
        qa.name
    );
    let db = Database::builder().attach(&url).await.unwrap();
    let attached = TestEnv::builder().attach(&url).await.unwrap();
    for shown in [
        format!("{db:?}"),
        format!("{db:#?}"),
        format!("{attached:?}"),
        format!("{attached:#?}"),
    ] {
        assert!(!shown.contains(&password), "{shown}");
        assert!(shown.contains(&qa.name), "{shown}");
    }
    drop(db);
    drop(attached);
    qa.drop(&env).await;
    sqlx::query(&format!("drop role {role}"))
        .execute(env.pool())
        .await
        .unwrap();
}

#[tokio::test]
async fn attaching_an_unmarked_database_is_refused_by_name_with_the_fix() {
    let env = TestEnv::start().await;
    let qa = Foreign::new(&env, "unmarked", false).await;
    let by_db = Database::builder().attach(&qa.url).await.unwrap_err();
    let by_env = TestEnv::builder().attach(&qa.url).await.unwrap_err();
    let tables: i64 =
        sqlx::query_scalar("select count(*) from pg_tables where schemaname = 'public'")
            .fetch_one(&qa.pool)
            .await
            .unwrap();
    let name = qa.name.clone();
    qa.drop(&env).await;
    for e in [by_db, by_env] {
        assert!(matches!(e, EnvError::NotMarked { .. }), "{e}");
        let text = e.to_string();
        assert!(text.contains(&name), "{text}");
        assert!(text.contains("cargo xtask db mark"), "{text}");
    }
    assert_eq!(tables, 0, "nothing written, not even the clock");
}

#[tokio::test]
async fn a_marker_removed_after_attaching_lets_no_write_through_and_waits_for_writes_under_way() {
    let env = TestEnv::start().await;
    let qa = Foreign::new(&env, "unmark", true).await;
    let attached = qa.attach_with_an_org().await;
    // A write under way holds the marker: removing it waits (here: gives up after 300 ms).
    let mut tx = attached.pool().begin().await.unwrap();
    sqlx::query("update organizations set name = 'renamed'")
        .execute(&mut *tx)
        .await
        .unwrap();
    let mut other = qa.pool.begin().await.unwrap();
    sqlx::query("set local lock_timeout = '300ms'")
        .execute(&mut *other)
        .await
        .unwrap();
    let waited = sqlx::query("delete from harness_marker")
        .execute(&mut *other)
        .await
        .unwrap_err();
    other.rollback().await.unwrap();
    tx.commit().await.unwrap();
    // Removed between the attach's check and the next write: the write is refused.
    sqlx::query("delete from harness_marker")
        .execute(&qa.pool)
        .await
        .unwrap();
    let refused = attached.build().org().create().await.unwrap_err();
    let orgs = qa.organizations().await;
    drop(attached);
    qa.drop(&env).await;
    assert_eq!(
        waited.as_database_error().and_then(|e| e.code()).as_deref(),
        Some("55P03"),
        "{waited}"
    );
    let refused = billing_harness::env::with_causes(&refused);
    assert!(refused.contains("no harness marker"), "{refused}");
    assert_eq!(orgs, 1, "the refused write left nothing");
}

/// Purges delete and clean-ups truncate: without the marker, every kind of write is refused.
#[tokio::test]
async fn without_the_marker_an_update_a_delete_and_a_truncate_are_refused_too() {
    let env = TestEnv::start().await;
    let qa = Foreign::new(&env, "unmark_all", true).await;
    let attached = qa.attach_with_an_org().await;
    sqlx::query("delete from harness_marker")
        .execute(&qa.pool)
        .await
        .unwrap();
    let mut refused = Vec::new();
    for write in [
        "update organizations set name = 'renamed'",
        "delete from organizations",
        "truncate organizations cascade",
    ] {
        let error = sqlx::query(write)
            .execute(attached.pool())
            .await
            .unwrap_err();
        refused.push((write, error.to_string()));
    }
    let orgs = qa.organizations().await;
    drop(attached);
    qa.drop(&env).await;
    for (write, error) in refused {
        assert!(error.contains("no harness marker"), "{write}: {error}");
    }
    assert_eq!(orgs, 1, "the refused writes left the organization");
}

#[tokio::test]
async fn a_catalog_that_differs_is_refused_with_each_difference_and_writes_nothing() {
    let env = TestEnv::start().await;
    let qa = Foreign::new(&env, "catalog", true).await;
    let at = seoul(2026, 10, 1);
    let krw = default_catalog();
    let mut tx = qa.pool.begin().await.unwrap();
    let first = billing_harness::platform::install_or_compare(&mut tx, &krw, at)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let settings = || async {
        sqlx::query_as::<_, (String, String, String, i16, DateTime<Utc>)>(
            "select time_zone, currency::text, tax_rate::text, charge_day, updated_at from platform_settings",
        )
        .fetch_one(&qa.pool)
        .await
        .unwrap()
    };
    let plans = || async {
        sqlx::query_scalar::<_, i64>("select count(*) from plans")
            .fetch_one(&qa.pool)
            .await
            .unwrap()
    };
    let (settings_before, plans_before) = (settings().await, plans().await);
    let mut usd = default_catalog();
    usd.currency = Currency::Usd;
    usd.tax_rate = "0.1".parse().unwrap();
    usd.plans[0].currency = Currency::Usd;
    let mut extra = usd.plans[0].clone();
    extra.key = "brand-new".into();
    usd.plans.push(extra);
    let mut tx = qa.pool.begin().await.unwrap();
    let differences = billing_harness::platform::install_or_compare(&mut tx, &usd, at)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    let same = {
        let mut tx = qa.pool.begin().await.unwrap();
        let d = billing_harness::platform::install_or_compare(&mut tx, &krw, at)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        d
    };
    let (settings_after, plans_after) = (settings().await, plans().await);
    qa.drop(&env).await;
    assert_eq!((first, same), (vec![], vec![]));
    let shown: Vec<String> = differences.iter().map(ToString::to_string).collect();
    let plan = &krw.plans[0].key;
    assert_eq!(
        shown,
        [
            "currency: database KRW vs scenario USD".to_owned(),
            "tax_rate: database 0 vs scenario 0.1".to_owned(),
            format!("plan {plan}: currency: database KRW vs scenario USD"),
        ]
    );
    assert_eq!(
        settings_after, settings_before,
        "platform_settings unchanged"
    );
    assert_eq!(
        plans_after, plans_before,
        "no plan added by the refused catalog"
    );
}

#[tokio::test]
async fn attaching_never_moves_the_shared_clock_back() {
    let env = TestEnv::start().await;
    let qa = Foreign::new(&env, "clock", true).await;
    let late = qa.attach(seoul(2026, 11, 10), None).await;
    let moved = qa.clock().await;
    // The catalog, so that the clock has jobs to run on the way.
    late.platform()
        .install_catalog(&default_catalog(), seoul(2026, 11, 10))
        .await
        .unwrap();
    let early = qa.attach(seoul(2026, 10, 1), None).await;
    early.clock().advance_to(seoul(2026, 10, 20)).await.unwrap();
    let kept = qa.clock().await;
    early.clock().advance_to(seoul(2026, 11, 12)).await.unwrap();
    let passed = qa.clock().await;
    drop((late, early));
    qa.drop(&env).await;
    assert_eq!(moved, seoul(2026, 11, 10), "a start ahead moves it forward");
    assert_eq!(kept, seoul(2026, 11, 10), "an earlier clock leaves it");
    assert_eq!(passed, seoul(2026, 11, 12), "and moves it once past it");
}

#[tokio::test]
async fn clock_movers_take_turns_an_attach_that_moves_the_clock_included() {
    use billing_harness::clock::ClockLock;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let env = TestEnv::start().await;
    let qa = Foreign::new(&env, "turns", true).await;
    let first = ClockLock::acquire(&qa.pool, || ()).await.unwrap();
    let waited = Arc::new(AtomicBool::new(false));
    let second = {
        let (pool, waited) = (qa.pool.clone(), waited.clone());
        tokio::spawn(async move {
            ClockLock::acquire(&pool, || waited.store(true, Ordering::SeqCst)).await
        })
    };
    let url = qa.url.clone();
    let attach = tokio::spawn(async move {
        TestEnv::builder()
            .start_at(seoul(2026, 11, 10))
            .attach(&url)
            .await
            .map(drop)
    });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let (second_waits, attach_waits) = (!second.is_finished(), !attach.is_finished());
    first.release().await.unwrap();
    second.await.unwrap().unwrap().release().await.unwrap();
    attach.await.unwrap().unwrap();
    let clock = qa.clock().await;
    qa.drop(&env).await;
    assert!(
        second_waits && waited.load(Ordering::SeqCst),
        "a second mover waits"
    );
    assert!(attach_waits, "an attach that moves the clock waits too");
    assert_eq!(clock, seoul(2026, 11, 10));
}

#[tokio::test]
async fn a_product_the_run_added_stays_once_it_has_a_sync_url_and_is_told_of_the_deletions() {
    let env = TestEnv::start().await;
    let qa = Foreign::new(&env, "synced", true).await;
    qa.begin_run("run-d").await;
    let tenant = {
        let d = qa.attach(seoul(2026, 10, 1), Some("run-d")).await;
        d.build().tenant().plan("pro").create().await.unwrap().id()
    };
    sqlx::query(
        "update products set sync_url = 'http://127.0.0.1:9/analytics' where key = 'analytics'",
    )
    .execute(&qa.pool)
    .await
    .unwrap();
    purge::purge(
        &qa.pool,
        &PurgeTarget::Run("run-d".into()),
        seoul(2026, 10, 2),
    )
    .await
    .unwrap();
    let products: Vec<String> = sqlx::query_scalar("select key from products order by 1")
        .fetch_all(&qa.pool)
        .await
        .unwrap();
    let told: i64 = sqlx::query_scalar(
        "select count(*) from sync_outbox o join products p on p.id = o.product_id \
         where p.key = 'analytics' and o.entity = 'tenant' and o.entity_id = $1 and o.operation = 'delete'",
    )
    .bind(tenant.0)
    .fetch_one(&qa.pool)
    .await
    .unwrap();
    qa.drop(&env).await;
    assert_eq!(
        products,
        ["analytics"],
        "the product without a sync_url went"
    );
    assert_eq!(
        told, 1,
        "the product that stays hears of its tenant's deletion"
    );
}
