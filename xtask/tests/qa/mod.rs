//! Helpers of the tests that write to a QA database the harness did not create (`contract apply`,
//! `purge`, `clock`): a state folder, the command run against that database's server, and the
//! database's every row as text, to prove what a command wrote or left alone.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sqlx::Connection;

/// A state folder `<prefix>-<name>-<pid>` where the harness would put one.
pub(crate) fn state_dir(prefix: &str, name: &str) -> PathBuf {
    let base = billing_harness::env::Config::default_state_base();
    let dir = base.join(format!("{prefix}-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Runs xtask with `args` against the server of `url` (the url backend), with extra `vars`.
pub(crate) fn cli(state: &Path, url: &str, vars: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
    command
        .env("HARNESS_STATE_DIR", state)
        .env("HARNESS_POSTGRES", "url")
        .env("HARNESS_DATABASE_URL", url)
        .env("HARNESS_LINGER_SECS", "1")
        .env_remove("DATABASE_URL")
        .env_remove("RUST_BACKTRACE");
    for (k, v) in vars {
        command.env(k, v);
    }
    command.args(args).output().unwrap()
}

/// Every row of every table of the database, as text.
pub(crate) async fn fingerprint(url: &str) -> String {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "select tablename::text from pg_tables where schemaname = 'public' order by 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let mut all = String::new();
    for table in tables {
        let rows: Option<String> = sqlx::query_scalar(&format!(
            "select string_agg(t::text, E'\\n' order by t::text) from {table} t"
        ))
        .fetch_one(&mut conn)
        .await
        .unwrap();
        all.push_str(&format!("== {table}\n{}\n", rows.unwrap_or_default()));
    }
    all
}

/// A command's stdout and stderr together.
pub(crate) fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
