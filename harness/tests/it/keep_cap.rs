//! The keep cap: a run in which 20 tests fail keeps at most `HARNESS_KEEP_FAILED` databases (3 by
//! default), and each failed test past the cap says that its database was dropped and how many
//! the run has dropped.
//!
//! The failing run is this binary run again as a child process, on a server of its own (its own
//! `HARNESS_STATE_DIR`), so that the databases other tests keep do not count against its cap.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use billing_harness::TestEnv;
use billing_harness::env::{self, BackendChoice, Config};
use billing_harness::env::{Broker, KeptBy};

/// Set for the child run only.
const CHILD: &str = "BH_KEEP_CAP_CHILD";
const FAILURES: usize = 20;

/// The child's side: 20 tests that fail one after another, each a thread that panics while its
/// `TestEnv` is alive, as libtest runs a failing test. Passes at once in an ordinary run.
#[test]
fn twenty_failing_tests() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    for n in 0..FAILURES {
        let failed = std::thread::Builder::new()
            .name(format!("keep_cap::failure_{n}"))
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async {
                    let _env = TestEnv::start().await;
                    panic!("a pretend failure");
                })
            })
            .unwrap()
            .join();
        assert!(failed.is_err(), "failure {n} did not fail");
    }
}

fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    done()
}

#[tokio::test]
async fn a_run_in_which_20_tests_fail_keeps_the_cap_and_says_how_many_it_dropped() {
    let state = std::env::temp_dir().join(format!("bh-keep-cap-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state);
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["keep_cap::twenty_failing_tests", "--exact", "--nocapture"])
        .env(CHILD, "1")
        .env("HARNESS_STATE_DIR", &state)
        .env("HARNESS_POSTGRES", "local")
        .env("HARNESS_LINGER_SECS", "1")
        .env_remove("HARNESS_KEEP_FAILED")
        .env_remove("HARNESS_DATABASE_URL")
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);

    // What the server kept, then clean up before asserting, so nothing stays either way.
    let config = Config::from_env()
        .unwrap()
        .with_state_dir(&state)
        .with_backend(BackendChoice::Local);
    let kept = env::kept_databases(&config)
        .await
        .unwrap()
        .unwrap_or_default();
    let dropped = {
        let broker = Broker::start(config).unwrap();
        broker.drop_kept(None, KeptBy::ThisUser).await.unwrap()
    };
    let server_gone = wait_until(Duration::from_secs(15), || !state.join("local").exists());
    let _ = std::fs::remove_dir_all(&state);

    assert!(output.status.success(), "{stderr}");
    let kept_notes = stderr.matches("billing-harness: kept database ").count();
    let dropped_notes = stderr.matches("billing-harness: dropped database ").count();
    assert_eq!((kept_notes, dropped_notes), (3, FAILURES - 3), "{stderr}");
    assert!(
        stderr.contains("the server keeps 3 already, the cap (HARNESS_KEEP_FAILED=3)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("17 dropped over the cap by this test process so far"),
        "{stderr}"
    );
    assert_eq!(kept.len(), 3, "{kept:?}");
    assert!(
        kept.iter()
            .all(|k| k.reason.starts_with("failed test keep_cap::failure_") && k.bytes > 0),
        "{kept:?}"
    );
    assert_eq!(dropped.len(), 3);
    assert!(
        server_gone,
        "the server outlived its last kept database: {}",
        Path::new(&state).display()
    );
}
