//! `cargo xtask purge` and `cargo xtask clock` on a QA database the harness did not create:
//! refused unmarked with nothing changed; a run purged while another run's data stays; a seed
//! anchored last month whose invoice is charged when the clock moves to the 6th.

use std::path::Path;
use std::process::Output;

use billing_harness::TestEnv;
use chrono::Datelike;
use sqlx::Connection;

mod qa;

use qa::{fingerprint, text};

fn state_dir(name: &str) -> std::path::PathBuf {
    qa::state_dir("purge", name)
}

fn cli(state: &Path, url: &str, today: &str, args: &[&str]) -> Output {
    qa::cli(state, url, &[("HARNESS_TODAY", today)], args)
}

#[tokio::test]
async fn purge_and_clock_refuse_unmarked_then_purge_one_run_and_charge_on_the_6th() {
    let env = TestEnv::start().await;
    let qa = format!("qa_purge_{}", std::process::id());
    sqlx::query(&format!("create database {qa}"))
        .execute(env.pool())
        .await
        .unwrap();
    let url = format!("{}/{qa}", env.url().rsplit_once('/').unwrap().0);
    let state = state_dir("runs");
    let wall = billing_harness::calendar::local_day(
        billing_harness::calendar::DEFAULT_TIME_ZONE,
        billing_harness::clock::wall_now(),
    );
    let today = format!("{:04}-{:02}-02", wall.year(), wall.month());
    let sixth = format!("{:04}-{:02}-06", wall.year(), wall.month());
    let run = |args: &[&str]| cli(&state, &url, &today, args);

    // Unmarked: both refuse, and nothing changes.
    let before = fingerprint(&url).await;
    let purge = run(&["purge", "--org", "1", "--database-url", &url]);
    let advance = run(&["clock", "advance", "--by", "1d", "--database-url", &url]);
    assert!(!purge.status.success() && !advance.status.success());
    assert!(
        text(&purge).contains("refusing to write"),
        "{}",
        text(&purge)
    );
    assert!(
        text(&advance).contains("refusing to write"),
        "{}",
        text(&advance)
    );
    assert_eq!(fingerprint(&url).await, before, "refused: nothing changed");

    let marked = run(&["db", "mark", "--env", "qa", "--database-url", &url]);
    assert!(marked.status.success(), "{}", text(&marked));
    let seed = [
        "scenario",
        "seed",
        "charged-on-the-5th",
        "--database-url",
        url.as_str(),
        "--anchor",
        "last-month",
    ];
    for _ in 0..2 {
        let out = run(&seed);
        assert!(out.status.success(), "{}", text(&out));
    }
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    let runs: Vec<String> =
        sqlx::query_scalar("select id from harness_runs order by created_at, id")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(runs.len(), 2, "two runs seeded");
    let closed: String =
        sqlx::query_scalar("select string_agg(status, ',' order by id) from invoices")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(
        closed, "finalized,finalized",
        "last month closed on the 1st, not yet charged"
    );

    // The clock moves to the 6th: the charge on the 5th runs, a line per job.
    let shown = run(&["clock", "show", "--database-url", &url]);
    assert!(text(&shown).contains(&today), "{}", text(&shown));
    let moved = run(&["clock", "advance", "--to", &sixth, "--database-url", &url]);
    assert!(moved.status.success(), "{}", text(&moved));
    let out = text(&moved);
    assert!(out.contains("charge: 2 payment attempt(s)"), "{out}");
    let paid: String =
        sqlx::query_scalar("select string_agg(status, ',' order by id) from invoices")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(
        paid, "paid,paid",
        "last month's invoices charged on the 5th"
    );
    let back = run(&["clock", "advance", "--to", &today, "--database-url", &url]);
    assert!(!back.status.success());
    assert!(
        text(&back).contains("refusing to move the clock backwards"),
        "{}",
        text(&back)
    );

    // Purge the first run: a dry run writes nothing; then exactly its rows go.
    let first_tenants: Vec<i64> = sqlx::query_scalar(
        "select row_id from harness_run_rows where run_id = $1 and table_name = 'tenants'",
    )
    .bind(&runs[0])
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let second_rows: i64 =
        sqlx::query_scalar("select count(*) from harness_run_rows where run_id = $1")
            .bind(&runs[1])
            .fetch_one(&mut conn)
            .await
            .unwrap();
    let second_before = second_run_rows(&mut conn, &runs[1]).await;
    let before = fingerprint(&url).await;
    let dry = run(&[
        "purge",
        "--run",
        &runs[0],
        "--database-url",
        &url,
        "--dry-run",
    ]);
    assert!(dry.status.success(), "{}", text(&dry));
    assert!(text(&dry).contains("tenants"), "{}", text(&dry));
    assert_eq!(fingerprint(&url).await, before, "a dry run writes nothing");
    let purged = run(&["purge", "--run", &runs[0], "--database-url", &url]);
    assert!(purged.status.success(), "{}", text(&purged));
    let left: i64 = sqlx::query_scalar("select count(*) from tenants where id = any($1)")
        .bind(&first_tenants)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(left, 0, "the first run's tenants are gone");
    let runs_left: Vec<String> = sqlx::query_scalar("select id from harness_runs")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(runs_left, [runs[1].clone()]);
    assert_eq!(
        second_run_rows(&mut conn, &runs[1]).await,
        second_before,
        "the other run's rows stay as they were"
    );
    let second_after: i64 =
        sqlx::query_scalar("select count(*) from harness_run_rows where run_id = $1")
            .bind(&runs[1])
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(second_after, second_rows);
    let audits: i64 = sqlx::query_scalar("select count(*) from purge_audit")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(audits, 1);
    assert!(!text(&purged).contains("postgres://"), "no URL printed");
    drop(conn);
    let _ = std::fs::remove_dir_all(&state);
}

/// Every row a run tagged, as text.
async fn second_run_rows(conn: &mut sqlx::PgConnection, run: &str) -> Vec<String> {
    let tables: Vec<String> = sqlx::query_scalar(
        "select distinct table_name from harness_run_rows where run_id = $1 order by 1",
    )
    .bind(run)
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    let mut out = Vec::new();
    for table in tables {
        let rows: Vec<String> = sqlx::query_scalar(&format!(
            "select t::text from {table} t join harness_run_rows r on r.table_name = $2 \
             and r.row_id = t.id where r.run_id = $1 and '{table}' <> 'sync_outbox' order by t.id"
        ))
        .bind(run)
        .bind(&table)
        .fetch_all(&mut *conn)
        .await
        .unwrap();
        out.extend(rows);
    }
    out
}
