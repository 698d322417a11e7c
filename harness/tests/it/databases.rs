//! Throwaway databases: isolation, clock, keep-on-failure, drop-on-success and the warm pool.

use billing_harness::TestEnv;
use billing_harness::env::{Broker, MigrationSource, Schema};
use chrono::{TimeZone, Utc};
use rstest::rstest;

use crate::env;
use crate::support::url_password;

async fn database_exists(env: &TestEnv, name: &str) -> Option<String> {
    sqlx::query_scalar::<_, Option<String>>(
        "select coalesce(shobj_description(oid, 'pg_database'), '') from pg_database where datname = $1",
    )
    .bind(name)
    .fetch_optional(env.pool())
    .await
    .unwrap()
    .flatten()
}

/// Fifty tests run at once, each writes its own marker and must see only that one: each has its
/// own database.
#[rstest]
#[tokio::test]
async fn each_test_sees_only_its_own_rows(
    #[future] env: TestEnv,
    #[values(
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24,
        25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47,
        48, 49
    )]
    n: u32,
) {
    writes_and_sees_only(&env.await, &format!("product-{n}")).await;
}

#[tokio::test]
async fn rows_written_in_one_database_are_invisible_in_another() {
    let (a, b) = (TestEnv::start().await, TestEnv::start().await);
    assert_ne!(a.database_name(), b.database_name());
    sqlx::query(
        "insert into products (key, name, created_at) values ('only-in-a', 'A', harness_now())",
    )
    .execute(a.pool())
    .await
    .unwrap();
    let in_b: i64 = sqlx::query_scalar("select count(*) from products")
        .fetch_one(b.pool())
        .await
        .unwrap();
    let in_a: i64 = sqlx::query_scalar("select count(*) from products")
        .fetch_one(a.pool())
        .await
        .unwrap();
    assert_eq!((in_a, in_b), (1, 0));
}

#[tokio::test]
async fn harness_now_follows_the_test_clock() {
    let start = Utc.with_ymd_and_hms(2026, 10, 1, 0, 0, 0).unwrap();
    let env = TestEnv::builder().start_at(start).build().await.unwrap();
    let read = || async {
        sqlx::query_scalar::<_, chrono::DateTime<Utc>>("select harness_now()")
            .fetch_one(env.pool())
            .await
            .unwrap()
    };
    assert_eq!(read().await, start);
    let later = Utc.with_ymd_and_hms(2026, 11, 5, 15, 0, 0).unwrap();
    env.clock().set(later).await.unwrap();
    assert_eq!((env.clock().now(), read().await), (later, later));
}

#[rstest]
#[tokio::test]
async fn a_passing_test_drops_its_database(#[future] env: TestEnv) {
    let observer = env.await;
    let name = {
        let passing = TestEnv::start().await;
        passing.database_name().to_owned()
    };
    // Dropped off the test's path: wait for the background work to be done.
    Broker::global().unwrap().settle_drops().await.unwrap();
    assert_eq!(database_exists(&observer, &name).await, None);
}

/// Which of the databases `names` exist.
async fn still_there(env: &TestEnv, names: &[String]) -> Vec<String> {
    sqlx::query_scalar("select datname::text from pg_database where datname = any($1)")
        .bind(names)
        .fetch_all(env.pool())
        .await
        .unwrap()
}

/// The warm databases of the template `hash`.
async fn warm_databases(env: &TestEnv, hash: &str) -> Vec<String> {
    sqlx::query_scalar(
        "select datname::text from pg_database where datname like 'bh\\_pool\\_' || $1 || '\\_%'",
    )
    .bind(hash)
    .fetch_all(env.pool())
    .await
    .unwrap()
}

/// A test's database comes from the warm pool, which is topped up in the background to its cap
/// and no further, and a passing test's database is dropped in the background.
#[tokio::test]
async fn databases_come_from_a_warm_pool_topped_up_to_its_cap() {
    let observer = TestEnv::start().await;
    let broker = Broker::global().unwrap();
    let cap = broker.config().warm_pool as usize;
    // A schema of this test's own: no other test takes from its pool meanwhile.
    // Absolute: CI also runs this binary by hand as nobody, with no CARGO_MANIFEST_DIR set.
    let schema = Schema::new(MigrationSource::dir(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/warm"
    )));
    broker.warm_up(&schema).await.unwrap();
    let first = broker.claim(&schema, 1).await.unwrap();
    let hash = first.name.split('_').nth(1).unwrap().to_owned();
    assert_eq!(first.warm, cap > 0, "{first:?}");
    let mut leases = vec![first];
    for _ in 0..cap + 2 {
        leases.push(broker.claim(&schema, 1).await.unwrap());
    }
    broker.settle().await.unwrap();
    assert_eq!(
        warm_databases(&observer, &hash).await.len(),
        cap,
        "topped up to the cap"
    );
    let names: Vec<String> = leases.iter().map(|l| l.name.clone()).collect();
    for lease in &leases {
        broker.release(lease, None).await.unwrap();
    }
    let left = still_there(&observer, &names).await;
    assert!(left.is_empty(), "{left:?}");
    broker.settle().await.unwrap();
    assert_eq!(
        warm_databases(&observer, &hash).await.len(),
        cap,
        "and no further"
    );
}

#[rstest]
#[tokio::test]
async fn a_failing_test_keeps_its_database_with_a_note(#[future] env: TestEnv) {
    // A test that fails: a thread whose body panics while its TestEnv is alive.
    assert_a_failure_keeps_its_database(&env.await, || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let env = TestEnv::start().await;
            let name = env.database_name().to_owned();
            std::panic::panic_any(name);
        })
    })
    .await;
}

/// Runs `fail` as the failing test `it::pretend_failure`: a thread that must panic with a
/// message ending in its database's name. Then that database must be kept, with the failure's
/// comment (or dropped, when earlier failures filled the cap of kept databases); it is dropped
/// before this returns the panic's message either way.
pub(crate) async fn assert_a_failure_keeps_its_database(
    observer: &TestEnv,
    fail: impl FnOnce() + Send + 'static,
) -> String {
    // Databases that earlier failed tests left on this server count against the cap: at it, the
    // failure below is dropped over the cap instead (`keep_cap` covers that path), and the
    // suite must still pass until someone runs `cargo xtask db clean`.
    let config = Broker::global().unwrap().config();
    let kept_before = billing_harness::env::kept_databases(config)
        .await
        .unwrap()
        .map_or(0, |kept| kept.len());
    let cap = config.keep_failed;
    let failed = std::thread::Builder::new()
        .name("it::pretend_failure".into())
        .spawn(fail)
        .unwrap()
        .join()
        .unwrap_err();
    let message = failed.downcast::<String>().unwrap();
    let name = message.rsplit(' ').next().unwrap_or_default().to_owned();
    let comment = database_exists(observer, &name).await;
    // Clean up before asserting, so that this test leaves nothing behind either way.
    let dropped = billing_harness::env::drop_kept(Some(&name)).await.unwrap();
    if kept_before >= cap as usize {
        eprintln!(
            "{kept_before} databases of failed tests are kept already (the cap is {cap}): \
             this failure's was dropped; `cargo xtask db clean` drops them"
        );
        assert_eq!(comment, None, "over the cap, the database goes");
        assert!(dropped.is_empty(), "{dropped:?}");
        return *message;
    }
    // Marked with the operating-system user who kept it, whose `db clean` drops it.
    let uid = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").unwrap());
    let comment = comment.unwrap_or_default();
    assert!(
        comment.starts_with("billing-harness: kept by ")
            && comment.contains(&format!("uid {uid}"))
            && comment.ends_with(": failed test it::pretend_failure"),
        "{comment}"
    );
    assert_eq!(dropped, vec![name]);
    *message
}

/// The printed `psql` command shows no password, and on a throwaway server it opens the
/// database as it is (through the password file it names).
#[rstest]
#[tokio::test]
async fn the_psql_command_opens_this_database_and_shows_no_password(#[future] env: TestEnv) {
    let env = env.await;
    let command = env.psql_command();
    if let Some(password) = &url_password(&env.url()) {
        assert!(!command.contains(password.as_str()), "{command}");
    }
    let given = command
        .strip_prefix("psql '")
        .and_then(|c| c.strip_suffix('\''))
        .unwrap_or_else(|| panic!("not a psql command: {command}"));
    if env.backend() == billing_harness::env::Backend::Url {
        return;
    }
    let output = std::process::Command::new("psql")
        .args([given, "-w", "-tAc", "select current_database()"])
        .env_remove("PGPASSWORD")
        .output()
        .expect("psql (Debian package postgresql-client) runs");
    assert!(
        output.status.success(),
        "{command}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        env.database_name()
    );
}

#[tokio::test]
async fn a_backend_repos_own_migrations_get_their_own_template() {
    let dir = std::env::temp_dir().join(format!("bh-own-migrations-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("20260101000000_notes.sql"),
        "create table notes (id bigint primary key, written_at timestamptz not null default harness_now());",
    )
    .unwrap();
    let start = Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap();
    let env = TestEnv::builder()
        .migrations(&dir)
        .start_at(start)
        .build()
        .await
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let written: chrono::DateTime<Utc> =
        sqlx::query_scalar("insert into notes (id) values (1) returning written_at")
            .fetch_one(env.pool())
            .await
            .unwrap();
    assert_eq!(written, start);
    let platform_tables: i64 = sqlx::query_scalar(
        "select count(*) from information_schema.tables where table_name = 'subscriptions'",
    )
    .fetch_one(env.pool())
    .await
    .unwrap();
    assert_eq!(
        platform_tables, 0,
        "a custom template holds only its own schema"
    );
}

/// Writes a product keyed `key` and checks that it is the only one the database holds.
async fn writes_and_sees_only(env: &TestEnv, key: &str) {
    sqlx::query("insert into products (key, name, created_at) values ($1, $1, harness_now())")
        .bind(key)
        .execute(env.pool())
        .await
        .unwrap();
    let keys: Vec<String> = sqlx::query_scalar("select key from products")
        .fetch_all(env.pool())
        .await
        .unwrap();
    assert_eq!(keys, vec![key.to_owned()]);
}

/// Sixty-four `TestEnv`s started at once in one process (more than the connection budget holds
/// at a time, so some wait for a slot): each sees only its own rows, and every database is gone
/// once they are dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_test_envs_at_once_stay_isolated_and_leak_nothing() {
    let observer = TestEnv::start().await;
    let tasks: Vec<_> = (0..64)
        .map(|n| {
            tokio::spawn(async move {
                let env = TestEnv::new()
                    .await
                    .expect("a database, after a wait for a slot");
                let key = format!("product-{n}");
                writes_and_sees_only(&env, &key).await;
                env.database_name().to_owned()
            })
        })
        .collect();
    let mut names = Vec::new();
    for task in tasks {
        names.push(task.await.unwrap());
    }
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 64, "64 distinct databases");
    Broker::global().unwrap().settle_drops().await.unwrap();
    let left = still_there(&observer, &names).await;
    assert!(left.is_empty(), "databases left behind: {left:?}");
}

/// Run as a child of [`eight_processes_at_once_stay_isolated`] (it sets
/// `HARNESS_ISOLATION_CHILD`): eight `TestEnv`s at once, each seeing only its own row. Alone it
/// does nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolation_child_process() {
    let Ok(child) = std::env::var("HARNESS_ISOLATION_CHILD") else {
        return;
    };
    let tasks: Vec<_> = (0..8)
        .map(|n| {
            let key = format!("p{child}-{n}");
            tokio::spawn(async move {
                let env = TestEnv::start().await;
                writes_and_sees_only(&env, &key).await;
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

/// Eight test processes at once on one server (as nextest runs them), eight databases each:
/// every one isolated, every process passing.
#[test]
fn eight_processes_at_once_stay_isolated() {
    if std::env::var_os("HARNESS_ISOLATION_CHILD").is_some() {
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..8)
        .map(|n| {
            std::process::Command::new(&exe)
                .args([
                    "--exact",
                    "databases::isolation_child_process",
                    "--nocapture",
                ])
                .env("HARNESS_ISOLATION_CHILD", n.to_string())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (n, child) in children.into_iter().enumerate() {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "process {n} failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
