//! What a backend repository gets when it tests its own schema with the harness (issue 16): a
//! template from its migrations built once for all test processes, relative migration paths from
//! the crate's folder, the connection options, a failure note with commands it has, its schema
//! left untouched on request, and its own pool counted in the connection budget.
//!
//! Some tests run this binary again as a child process (a variable names the child's job), as
//! cargo-nextest runs each test in a process of its own.
//!
//! The module denies warnings, as an adopter's test crate may: what it holds of the harness (a
//! `TestEnv` kept only for its drop, in a struct of its own) must compile clean (friction 7).

#![deny(warnings)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use billing_harness::env::EnvError;
use billing_harness::{TestEnv, env};
use chrono::{TimeZone, Utc};
use sqlx::Connection;
use sqlx::postgres::PgConnectOptions;

/// A backend repository's migrations, relative to this crate's folder.
const NOTES: &str = "fixtures/notes";

/// Set for a child process: what it does.
const CHILD: &str = "BH_ADOPTER_CHILD";
/// The migrations folder a child uses.
const CHILD_DIR: &str = "BH_ADOPTER_DIR";

/// Runs the test `adopters::<test>` of this binary as a child with `job`, in `cwd`.
fn child(test: &str, job: &str, dir: &Path, cwd: &Path) -> Output {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", &format!("adopters::{test}"), "--nocapture"])
        .env(CHILD, job)
        .env(CHILD_DIR, dir)
        // Cargo and nextest set it for the test binary; given here as well, so the child sees it
        // however this binary was started.
        .env(
            "CARGO_MANIFEST_DIR",
            std::env::var_os("CARGO_MANIFEST_DIR")
                .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
        )
        .env_remove("RUST_BACKTRACE")
        .current_dir(cwd)
        .output()
        .unwrap()
}

/// The job of this process if it is a child of [`child`].
fn job() -> Option<String> {
    std::env::var(CHILD).ok()
}

/// The child's side of the tests below: does `BH_ADOPTER_CHILD`'s job, or nothing at all in an
/// ordinary run.
#[tokio::test]
async fn child_process() {
    let Some(job) = job() else { return };
    let dir = std::env::var(CHILD_DIR).unwrap();
    match job.as_str() {
        // Gets a database from `.migrations(dir)` and prints its template's oid.
        "template" => {
            let env = TestEnv::builder().migrations(dir).build().await.unwrap();
            let hash = env.database_name().split('_').nth(1).unwrap().to_owned();
            let oid: i64 = sqlx::query_scalar(
                "select oid::bigint from pg_database where datname = 'bh_tpl_' || $1",
            )
            .bind(hash)
            .fetch_one(env.pool())
            .await
            .unwrap();
            println!("template-oid {oid}");
        }
        // Gets a database from a relative `.migrations(dir)` and checks its table is there.
        "relative" => {
            let env = TestEnv::builder().migrations(dir).build().await.unwrap();
            let notes: Option<String> = sqlx::query_scalar("select to_regclass('notes')::text")
                .fetch_one(env.pool())
                .await
                .unwrap();
            assert_eq!(notes.as_deref(), Some("notes"));
            println!("relative-ok");
        }
        // Fails with a database and no fake data drawn, or with fake data drawn.
        "fail" | "fail-with-fakes" => {
            let env = TestEnv::start().await;
            if job == "fail-with-fakes" {
                draw_fake_data(&env).await;
            }
            panic!("a pretend failure");
        }
        // Drops the databases kept for failed tests and prints how many.
        "drop-kept" => {
            let dropped = env::drop_kept(None).await.unwrap();
            println!("dropped-kept {}", dropped.len());
        }
        other => panic!("unknown child job {other}"),
    }
}

/// Creates an organization through the builders, which draws its name from the fake data.
async fn draw_fake_data(env: &TestEnv) {
    let catalog = billing_harness::builders::default_catalog();
    env.platform()
        .install_catalog(&catalog, env.clock().now())
        .await
        .unwrap();
    env.build().org().create().await.unwrap();
}

/// A folder of migrations whose content no other run has: its template is new to the server.
fn fresh_migrations(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "bh-adopters-{name}-{}-{:x}",
        std::process::id(),
        rand::random::<u64>()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("20260101000000_fresh.sql"),
        format!(
            "create table fresh (id bigint primary key); -- {}",
            dir.display()
        ),
    )
    .unwrap();
    dir
}

/// Friction 1: under cargo-nextest every test is a process of its own. A template built from
/// `.migrations(dir)` must outlive the process that built it, as one from `HARNESS_MIGRATIONS`
/// does: the second process finds the first one's template (same oid) instead of building it
/// again.
#[test]
fn a_template_from_migrations_given_in_code_is_built_once_for_two_processes() {
    if job().is_some() {
        return;
    }
    let dir = fresh_migrations("template");
    let outputs: Vec<Output> = (0..2)
        .map(|_| child("child_process", "template", &dir, Path::new(".")))
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    let oids: Vec<String> = outputs
        .iter()
        .map(|out| {
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "{stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            stdout
                .lines()
                .find_map(|l| l.strip_prefix("template-oid "))
                .unwrap_or_else(|| panic!("no oid printed: {stdout}"))
                .to_owned()
        })
        .collect();
    assert_eq!(
        oids[0], oids[1],
        "the second process built the template again"
    );
}

/// Friction 5: a relative migrations path is the crate's, not the working directory's: the
/// child runs in `/` and still finds `fixtures/notes` of this crate.
#[test]
fn a_relative_migrations_path_is_taken_from_the_crates_folder() {
    if job().is_some() {
        return;
    }
    let out = child(
        "child_process",
        "relative",
        Path::new(NOTES),
        Path::new("/"),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("relative-ok"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Friction 5: a missing folder is an error that names the resolved path.
#[tokio::test]
async fn a_missing_migrations_folder_is_named_resolved() {
    let err = TestEnv::builder()
        .migrations("fixtures/no-such-folder")
        .build()
        .await
        .unwrap_err();
    let base = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| std::env::current_dir().unwrap(), PathBuf::from);
    let resolved = base.join("fixtures/no-such-folder");
    assert!(matches!(err, EnvError::NoMigrations { .. }), "{err}");
    assert!(
        err.to_string().starts_with(&format!(
            "the migrations folder {} does not exist",
            resolved.display()
        )),
        "{err}"
    );
}

/// An adopter's own schema has no platform tables: moving the clock moves application and
/// database time, across a month's start too, and runs no platform job (which would need them).
#[tokio::test]
async fn the_clock_moves_over_a_schema_of_the_tests_own() {
    let start = chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 1, 31, 23, 0, 0).unwrap();
    let env = TestEnv::builder()
        .migrations(NOTES)
        .start_at(start)
        .build()
        .await
        .unwrap();
    let later = start + chrono::TimeDelta::days(40);
    env.clock().advance_to(later).await.unwrap();
    let now: chrono::DateTime<chrono::Utc> = sqlx::query_scalar("select harness_now()")
        .fetch_one(env.pool())
        .await
        .unwrap();
    assert_eq!((now, env.clock().now()), (later, later));
}

/// Friction 2: the driver's options, host and port of the test's database, without parsing its
/// URL.
#[tokio::test]
async fn connect_options_host_and_port_reach_the_tests_database() {
    let env = TestEnv::builder().migrations(NOTES).build().await.unwrap();
    let mut conn = sqlx::PgConnection::connect_with(&env.connect_options())
        .await
        .unwrap();
    let name: String = sqlx::query_scalar("select current_database()::text")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    assert_eq!(name, env.database_name());
    let from_url: PgConnectOptions = env.url().parse().unwrap();
    assert_eq!(
        (from_url.get_host(), from_url.get_port()),
        (env.host().as_str(), env.port())
    );
    let db = env.database();
    assert_eq!(
        (db.host(), db.port(), db.name()),
        (env.host(), env.port(), env.database_name())
    );
}

/// An application that builds its pool from host, port, user, password and database gets each
/// part, and they reach the test's database on every backend (the password of a server given by
/// `HARNESS_DATABASE_URL` too); so does the URL meant for the program under test.
#[tokio::test]
async fn the_connections_parts_alone_reach_the_tests_database() {
    let env = TestEnv::builder().migrations(NOTES).build().await.unwrap();
    let from_parts = PgConnectOptions::new()
        .host(&env.host())
        .port(env.port())
        .username(&env.user())
        .password(env.password().expose())
        .database(env.database_name());
    let from_url: PgConnectOptions = env.url_with_password().expose().parse().unwrap();
    for options in [from_parts, from_url] {
        let mut conn = sqlx::PgConnection::connect_with(&options).await.unwrap();
        let (database, user): (String, String) =
            sqlx::query_as("select current_database()::text, current_user::text")
                .fetch_one(&mut conn)
                .await
                .unwrap();
        conn.close().await.unwrap();
        assert_eq!((database.as_str(), user), (env.database_name(), env.user()));
    }
    if env.backend() != env::Backend::Url {
        assert_eq!(
            env.password().expose().len(),
            32,
            "a throwaway server's password"
        );
    }
}

/// The password and the URL that carries it print as `***`, through `Debug` and `Display`, so a
/// log line or a failed assertion never shows them; `url()` keeps what it always gave.
#[tokio::test]
async fn the_password_and_the_url_with_it_print_as_stars() {
    let env = TestEnv::builder().migrations(NOTES).build().await.unwrap();
    let (password, url) = (env.password(), env.url_with_password());
    assert!(url.expose().starts_with("postgres://"), "a URL");
    for shown in [
        format!("{password}"),
        format!("{password:?}"),
        format!("{url}"),
        format!("{url:?}"),
    ] {
        assert!(shown.contains("***"), "{shown}");
        if !password.expose().is_empty() {
            assert!(!shown.contains(password.expose()), "{shown}");
        }
    }
    let with = env::parse_url(url.expose()).unwrap();
    let plain = env::parse_url(&env.url()).unwrap();
    assert_eq!(
        (with.get_host(), with.get_port(), with.get_database()),
        (plain.get_host(), plain.get_port(), plain.get_database())
    );
    if env.backend() == env::Backend::Url {
        assert!(!env.url().contains(password.expose()) || password.expose().is_empty());
    } else {
        assert_eq!(
            env.url(),
            url.expose(),
            "a throwaway server's url() carries it"
        );
    }
}

/// Friction 3: the note of a failed test names commands a backend repository has, and the seed
/// only when the test drew fake data.
#[tokio::test]
async fn the_failure_note_names_an_adopters_commands_and_the_seed_only_if_drawn() {
    let env = TestEnv::start().await;
    let note = env.failure_note();
    assert!(note.contains(&env.psql_command()), "{note}");
    assert!(
        note.contains("HARNESS_DROP_KEPT=1") && note.contains("billing_harness::env::drop_kept"),
        "{note}"
    );
    // These tests run inside the harness's own workspace, where `cargo xtask` exists.
    assert!(note.contains("`cargo xtask db clean`"), "{note}");
    assert!(!note.contains("seed"), "no fake data was drawn: {note}");
    draw_fake_data(&env).await;
    let seed = format!("HARNESS_SEED={}", env.seed());
    assert!(env.failure_note().contains(&seed), "{}", env.failure_note());
}

/// Friction 3, as a failing test prints it on standard error. The failing children run on a
/// server of their own, so that databases other tests keep do not count against their cap.
#[tokio::test]
async fn a_failed_test_prints_the_note_and_a_seed_only_after_drawing_fake_data() {
    if job().is_some() {
        return;
    }
    let state = std::env::temp_dir().join(format!("bh-adopters-note-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state);
    let on_own_server = |job: &str| {
        Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "adopters::child_process", "--nocapture"])
            .env(CHILD, job)
            .env(CHILD_DIR, NOTES)
            .env("HARNESS_STATE_DIR", &state)
            .env("HARNESS_POSTGRES", "local")
            .env("HARNESS_LINGER_SECS", "1")
            .env_remove("HARNESS_DATABASE_URL")
            .env_remove("HARNESS_KEEP_FAILED")
            .env_remove("RUST_BACKTRACE")
            .output()
            .unwrap()
    };
    let mut notes = Vec::new();
    for job in ["fail", "fail-with-fakes"] {
        let out = on_own_server(job);
        assert!(!out.status.success(), "{job} did not fail");
        notes.push(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    // Clean up before asserting, so nothing stays either way. A child drops the kept
    // databases: this process never joins the server, so once the child is gone nobody uses it
    // and it stops here, before its folder goes (a folder removed under a running server
    // leaves the server running with no watchdog).
    let dropped = on_own_server("drop-kept");
    let _ = env::stop_unused(&state);
    let _ = std::fs::remove_dir_all(&state);
    let dropped = String::from_utf8_lossy(&dropped.stdout).into_owned();
    assert!(dropped.contains("dropped-kept 2"), "{dropped}\n{notes:?}");
    for note in &notes {
        assert!(
            note.contains("of the failed test; open it with:\n  psql '"),
            "{note}"
        );
        assert!(note.contains("HARNESS_DROP_KEPT=1"), "{note}");
    }
    assert!(!notes[0].contains("seed"), "{}", notes[0]);
    assert!(
        notes[1].contains("billing-harness: the failed test's fake data seed: "),
        "{}",
        notes[1]
    );
}

/// What of the harness's own the database holds: its clock table and function.
async fn harness_objects(env: &TestEnv) -> (bool, bool) {
    sqlx::query_as(
        "select to_regclass('harness_clock') is not null, \
         exists (select from pg_proc where proname = 'harness_now')",
    )
    .fetch_one(env.pool())
    .await
    .unwrap()
}

/// Friction 4: the database clock goes in by default, and `without_db_clock` leaves the schema
/// the adopter's own, with the server's time in SQL and the test clock for the application.
#[tokio::test]
async fn the_database_clock_goes_in_unless_left_out() {
    let with = TestEnv::builder().migrations(NOTES).build().await.unwrap();
    assert_eq!(harness_objects(&with).await, (true, true));

    let start = Utc.with_ymd_and_hms(2001, 2, 3, 4, 5, 6).unwrap();
    let own = TestEnv::builder()
        .migrations(NOTES)
        .without_db_clock()
        .start_at(start)
        .build()
        .await
        .unwrap();
    assert_eq!(harness_objects(&own).await, (false, false));
    assert!(!own.database().has_db_clock());
    let later = Utc.with_ymd_and_hms(2001, 3, 1, 0, 0, 0).unwrap();
    own.clock().set(later).await.unwrap();
    assert_eq!(own.clock().now(), later);
    let server_now: chrono::DateTime<Utc> = sqlx::query_scalar("select now()")
        .fetch_one(own.pool())
        .await
        .unwrap();
    assert!(server_now > later, "SQL reads the server's time");
    let template = |env: &TestEnv| env.database_name().split('_').nth(1).unwrap().to_owned();
    assert_ne!(template(&with), template(&own), "a template each");

    let bundled = TestEnv::builder()
        .without_db_clock()
        .build()
        .await
        .unwrap_err();
    assert!(
        bundled
            .to_string()
            .contains("the bundled platform schema calls harness_now()"),
        "{bundled}"
    );
}

/// Friction 8: a pool the test opens itself is counted in the connection budget: one that asks
/// for more than the server can give is refused at once, naming the count, and one that fits is
/// served.
#[tokio::test]
async fn an_app_pool_counts_in_the_connection_budget() {
    let err = TestEnv::builder()
        .migrations(NOTES)
        .app_pool(100_000)
        .build()
        .await
        .unwrap_err();
    let EnvError::Budget {
        wanted,
        budget,
        seconds,
    } = err
    else {
        panic!("not a budget error: {err}");
    };
    assert!(
        wanted >= 100_000 && budget < wanted && seconds == 0,
        "{wanted} {budget}"
    );

    let app = test_app().await;
    let one: i32 = sqlx::query_scalar("select 1")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(one, 1);
}

/// What an adopter's tests hold: the app's pool, and the environment kept only so that the
/// database lives as long as the app (the README's pattern). Never read, the field raises no
/// warning under `#![deny(warnings)]` (friction 7).
struct TestApp {
    pool: sqlx::PgPool,
    _env: TestEnv,
}

async fn test_app() -> TestApp {
    let env = TestEnv::builder()
        .migrations(NOTES)
        .app_pool(2)
        .build()
        .await
        .unwrap();
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect_with(env.connect_options())
        .await
        .unwrap();
    TestApp { pool, _env: env }
}

/// Friction 7: the app under test works on the test's database while the struct holds the
/// environment.
#[tokio::test]
async fn an_app_holding_the_environment_for_its_drop_compiles_clean_and_works() {
    let app = test_app().await;
    sqlx::query("insert into notes (id) values (1)")
        .execute(&app.pool)
        .await
        .unwrap();
    let n: i64 = sqlx::query_scalar("select count(*) from notes")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(n, 1);
}
