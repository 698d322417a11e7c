//! A test's database stays its own while its process lives: a connection of the process's broker
//! ended by the server (`pg_terminate_backend`) does not let another process's reaper drop it.

use std::time::{Duration, Instant};

use billing_harness::TestEnv;
use billing_harness::env::{Broker, Config, MigrationSource, Schema};
use sqlx::PgPool;

/// The `PROCESS` advisory-lock class of throwaway-pg (its liveness lock).
const LOCK_PROCESS: i64 = 0x6268_0002;

/// The backend pid of this process's `role` connection (`control` or `background`) holding the
/// liveness lock of `token`, if one does.
async fn holder(pool: &PgPool, role: &str, token: &str) -> Option<i32> {
    sqlx::query_scalar(
        "select a.pid from pg_stat_activity a join pg_locks l on l.pid = a.pid \
         where a.application_name = $1 and l.locktype = 'advisory' and l.granted \
         and l.classid = $2 and l.objid = $3 and l.objsubid = 2",
    )
    .bind(format!("billing-harness {role} {token}"))
    .bind(LOCK_PROCESS)
    .bind(i64::from_str_radix(token, 16).unwrap())
    .fetch_optional(pool)
    .await
    .unwrap()
}

/// Waits up to ten seconds for the `role` connection of `token` to hold the liveness lock.
async fn wait_for_holder(pool: &PgPool, role: &str, token: &str) -> i32 {
    let start = Instant::now();
    loop {
        if let Some(pid) = holder(pool, role, token).await {
            return pid;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no {role} connection of {token} took the liveness lock again"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Ends the backend `pid` as an operator or a pooler would, and waits until it is gone.
async fn terminate(pool: &PgPool, pid: i32) {
    let ended: bool = sqlx::query_scalar("select pg_terminate_backend($1)")
        .bind(pid)
        .fetch_one(pool)
        .await
        .unwrap();
    assert!(ended, "pg_terminate_backend({pid})");
    let start = Instant::now();
    while sqlx::query_scalar::<_, bool>(
        "select exists (select from pg_stat_activity where pid = $1)",
    )
    .bind(pid)
    .fetch_one(pool)
    .await
    .unwrap()
    {
        assert!(start.elapsed() < Duration::from_secs(10), "{pid} lingers");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What another process does when it starts: its broker claims a database and its reaper drops
/// the clones of every process whose liveness lock is free. Waits until that round is over.
async fn another_process_reaps() {
    let broker = Broker::start(Config::from_env().unwrap()).unwrap();
    // Absolute: CI also runs this binary by hand, with no CARGO_MANIFEST_DIR set.
    let schema = Schema::new(MigrationSource::dir(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/warm"
    )));
    let lease = broker.claim(&schema, 1).await.unwrap();
    broker.settle().await.unwrap();
    broker.release(&lease, None).await.unwrap();
}

/// Whether `name` exists, asked through `pool`: no answer when the reaper dropped the pool's
/// own database (its sessions are ended first) counts as gone.
async fn exists(pool: &PgPool, name: &str) -> bool {
    sqlx::query_scalar("select exists (select from pg_database where datname = $1)")
        .bind(name)
        .fetch_one(pool)
        .await
        .unwrap_or(false)
}

/// The control connection killed during a test: the background connection holds the liveness
/// lock meanwhile, another process's reaper leaves the database alone, the broker opens its
/// control connection anew and takes the lock again; then the same with the background one.
#[tokio::test]
async fn a_killed_control_connection_leaves_the_test_its_database() {
    let env = TestEnv::start().await;
    // The background connection is open once the first round of background work is done.
    Broker::global().unwrap().settle().await.unwrap();
    let name = env.database_name().to_owned();
    let token = name.split('_').nth(2).unwrap().to_owned();
    let pool = env.pool().clone();
    sqlx::query("insert into products (key, name, created_at) values ('kept', 'K', harness_now())")
        .execute(&pool)
        .await
        .unwrap();
    let background = wait_for_holder(&pool, "background", &token).await;

    let control = wait_for_holder(&pool, "control", &token).await;
    terminate(&pool, control).await;
    assert_eq!(
        holder(&pool, "background", &token).await,
        Some(background),
        "the background connection holds the liveness lock while the control one is gone"
    );
    another_process_reaps().await;
    assert!(exists(&pool, &name).await, "{name} was reaped");

    let control = wait_for_holder(&pool, "control", &token).await;
    terminate(&pool, background).await;
    assert_eq!(holder(&pool, "control", &token).await, Some(control));
    another_process_reaps().await;
    assert!(exists(&pool, &name).await, "{name} was reaped");
    wait_for_holder(&pool, "background", &token).await;

    // The database is whole and usable, and the broker serves the next test.
    let rows: i64 = sqlx::query_scalar("select count(*) from products where key = 'kept'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 1);
    let next = TestEnv::start().await;
    assert!(exists(&pool, next.database_name()).await);
}

/// A request that meets the dead control connection before the broker's idle heartbeat has
/// mended it: the broker opens it anew, takes its locks back and answers the request.
#[tokio::test]
async fn a_claim_right_after_the_control_connection_is_killed_is_answered() {
    let env = TestEnv::start().await;
    let broker = Broker::global().unwrap();
    broker.settle().await.unwrap();
    let token = env.database_name().split('_').nth(2).unwrap().to_owned();
    let pool = env.pool().clone();
    let control = wait_for_holder(&pool, "control", &token).await;
    terminate(&pool, control).await;
    let schema = Schema::new(MigrationSource::dir(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/warm"
    )));
    let lease = broker.claim(&schema, 1).await.unwrap();
    assert!(exists(&pool, &lease.name).await, "{} was made", lease.name);
    broker.release(&lease, None).await.unwrap();
    let again = wait_for_holder(&pool, "control", &token).await;
    assert_ne!(
        again, control,
        "a new control connection holds the liveness lock"
    );
}
