//! `cargo xtask bench adopt`: the example backend's test suite (`examples/billing-service`) with
//! a database per test from the harness, against the same suite on the crate's own
//! create-and-migrate (`EXAMPLE_DB=own`), cold and warm, under `cargo test` and under
//! `cargo nextest`, side by side in one run.
//!
//! The test binaries are built first and not timed. Each timed run is the whole command as a
//! developer types it. Cold: the harness starts from a state folder of its own that holds no
//! server and no template (its first test starts the server and builds the template); the own
//! set-up starts against a server started just before, on which it created nothing yet. Warm: the
//! same command again right after, the harness's server still lingering, the own set-up's server
//! still up. The tests append how long each database took to be ready (`EXAMPLE_DB_TIMINGS`).
//! Every state folder is the bench's own, under `Config::default_state_base()`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};
use billing_harness::env::{
    self as harness_env, Backend, Broker, CloneStrategy, Config, MigrationSource, Schema,
};
use serde::Serialize;

/// The example backend's package.
const PACKAGE: &str = "example-billing-service";

/// Its folder in the workspace.
const EXAMPLE_DIR: &str = "examples/billing-service";

/// Which test runner a run used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Runner {
    /// `cargo test -p example-billing-service`: one process per test binary, tests on threads.
    CargoTest,
    /// `cargo nextest run -p example-billing-service`: one process per test.
    Nextest,
}

impl Runner {
    const ALL: [Runner; 2] = [Runner::CargoTest, Runner::Nextest];

    fn name(self) -> &'static str {
        match self {
            Runner::CargoTest => "cargo-test",
            Runner::Nextest => "nextest",
        }
    }

    fn args(self) -> &'static [&'static str] {
        match self {
            Runner::CargoTest => &["test", "-p", PACKAGE],
            Runner::Nextest => &["nextest", "run", "-p", PACKAGE],
        }
    }
}

/// Where a run's databases came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
enum Setup {
    /// `TestEnv::builder().migrations("migrations")`: a clone of a migrated template.
    Harness,
    /// `CREATE DATABASE` plus `sqlx::migrate!` per test, on a server given by URL.
    Own,
}

impl Setup {
    fn name(self) -> &'static str {
        match self {
            Setup::Harness => "harness",
            Setup::Own => "own",
        }
    }
}

/// Whether a run found its server and template (harness) or server (own) fresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
enum Cache {
    Cold,
    Warm,
}

impl Cache {
    fn name(self) -> &'static str {
        match self {
            Cache::Cold => "cold",
            Cache::Warm => "warm",
        }
    }
}

/// One configuration's timed runs.
#[derive(Debug, Serialize)]
struct Run {
    runner: Runner,
    setup: Setup,
    cache: Cache,
    /// Median wall time of the command over the rounds.
    suite_seconds: f64,
    /// Every round's wall time.
    suite_seconds_each: Vec<f64>,
    /// Tests the runner reported passed (in every round).
    tests: usize,
}

/// How long the tests waited for their database, over a configuration's rounds.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
struct Ready {
    p50: f64,
    p95: f64,
    max: f64,
    databases: usize,
}

impl Ready {
    /// From samples in microseconds; `None` when there are none.
    fn of(mut micros: Vec<u64>) -> Option<Ready> {
        if micros.is_empty() {
            return None;
        }
        micros.sort_unstable();
        let ms = |us: u64| (us as f64 / 100.0).round() / 10.0;
        let at = |q: f64| micros[((micros.len() - 1) as f64 * q).round() as usize];
        Some(Ready {
            p50: ms(at(0.5)),
            p95: ms(at(0.95)),
            max: ms(at(1.0)),
            databases: micros.len(),
        })
    }
}

/// What `bench adopt --json` prints.
#[derive(Debug, Serialize)]
pub(super) struct AdoptReport {
    /// One entry per runner, set-up and cache.
    runs: Vec<Run>,
    /// Time from asking for a database to a migrated one, in ms: setup, then runner, then cache.
    database_ready_ms:
        BTreeMap<&'static str, BTreeMap<&'static str, BTreeMap<&'static str, Ready>>>,
    /// The PostgreSQL backend both set-ups ran on.
    backend: String,
    /// Rounds of each configuration.
    rounds: usize,
}

/// Builds the example's test binaries (not timed), then times every configuration `rounds`
/// times.
pub(super) fn run(rounds: usize) -> anyhow::Result<AdoptReport> {
    anyhow::ensure!(rounds >= 1, "--rounds must be at least 1");
    let config = Config::from_env()?;
    build()?;
    let root = crate::workspace_root();
    let migrations = root.join(EXAMPLE_DIR).join("migrations");
    // State folders of its own, where the harness puts state by default (`/dev/shm` when it
    // has room): what an adopter who sets nothing gets. `HARNESS_STATE_DIR` names one folder that
    // processes share, which a cold run must not find.
    let work = Config::default_state_base().join(format!(
        "billing-harness-bench-adopt-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&work).with_context(|| format!("create {}", work.display()))?;
    let result = (|| {
        let mut samples: BTreeMap<(Runner, Setup, Cache), Samples> = BTreeMap::new();
        let mut backend = String::new();
        for round in 0..rounds {
            for (runner, setup) in Runner::ALL
                .into_iter()
                .flat_map(|r| [(r, Setup::Harness), (r, Setup::Own)])
            {
                let state = work.join(format!("{}-{}-{round}", setup.name(), runner.name()));
                // The harness gets a state folder with no server and no template; the own
                // set-up a server started for it, on which it created nothing yet.
                let (server, env) = match setup {
                    Setup::Harness => (None, vec![("EXAMPLE_DB", "harness".to_owned())]),
                    Setup::Own => {
                        let (broker, url, on) = own_server(&config, &state, &migrations)?;
                        backend = on.to_string();
                        let env = vec![
                            ("EXAMPLE_DB", "own".to_owned()),
                            ("EXAMPLE_DATABASE_URL", url),
                        ];
                        (Some(broker), env)
                    }
                };
                for cache in [Cache::Cold, Cache::Warm] {
                    let timed = time_suite(runner, cache, &state, &env, &work)?;
                    samples
                        .entry((runner, setup, cache))
                        .or_default()
                        .add(timed);
                }
                drop(server);
                stop(&state);
            }
        }
        anyhow::Ok((samples, backend))
    })();
    // Whatever happened, no server of the bench's stays up.
    if let Ok(entries) = std::fs::read_dir(&work) {
        for entry in entries.flatten() {
            stop(&entry.path());
        }
    }
    let _ = std::fs::remove_dir_all(&work);
    let (samples, backend) = result?;
    let mut runs = Vec::new();
    let mut database_ready_ms: BTreeMap<_, BTreeMap<_, BTreeMap<_, _>>> = BTreeMap::new();
    for (
        (runner, setup, cache),
        Samples {
            seconds,
            tests,
            ready,
        },
    ) in samples
    {
        if let Some(ready) = Ready::of(ready) {
            database_ready_ms
                .entry(setup.name())
                .or_default()
                .entry(runner.name())
                .or_default()
                .insert(cache.name(), ready);
        }
        runs.push(Run {
            runner,
            setup,
            cache,
            suite_seconds: median(&seconds),
            suite_seconds_each: seconds,
            tests,
        });
    }
    Ok(AdoptReport {
        runs,
        database_ready_ms,
        backend,
        rounds,
    })
}

/// What one timed command gave: wall seconds, tests passed, database-ready samples (µs).
struct Timed {
    seconds: f64,
    tests: usize,
    ready: Vec<u64>,
}

/// One configuration's rounds so far.
#[derive(Default)]
struct Samples {
    seconds: Vec<f64>,
    tests: usize,
    ready: Vec<u64>,
}

impl Samples {
    fn add(&mut self, timed: Timed) {
        self.seconds.push(timed.seconds);
        self.tests = timed.tests;
        self.ready.extend(timed.ready);
    }
}

/// `cargo test --no-run` and `cargo nextest list` for the example, so that no timed run
/// compiles anything.
fn build() -> anyhow::Result<()> {
    eprintln!("bench adopt: building the test binaries of {PACKAGE} (not timed)");
    for args in [
        &["test", "-p", PACKAGE, "--no-run"][..],
        &["nextest", "list", "-p", PACKAGE],
    ] {
        let status = crate::cargo_command()
            .args(args)
            .current_dir(crate::workspace_root())
            .stdout(Stdio::null())
            .status()
            .with_context(|| format!("run cargo {}", args.join(" ")))?;
        if !status.success() {
            if args[0] == "nextest" {
                bail!(
                    "cargo nextest list failed; is cargo-nextest installed? (cargo install --locked cargo-nextest)"
                );
            }
            bail!("cargo {} failed", args.join(" "));
        }
    }
    Ok(())
}

/// Starts a server of its own under `state` through the harness's env (the configured backend;
/// local binaries here) and returns it with a URL of its `postgres` database.
fn own_server(
    config: &Config,
    state: &Path,
    migrations: &Path,
) -> anyhow::Result<(Broker, String, Backend)> {
    let broker = Broker::start(config.clone().with_state_dir(state))?;
    let runtime = crate::runtime()?;
    let source = Schema::new(MigrationSource::Dir(migrations.to_owned()));
    let lease = runtime.block_on(broker.acquire(&source, CloneStrategy::FileCopy))?;
    runtime.block_on(broker.release(&lease, None))?;
    let url = match (lease.backend, &config.database_url) {
        // A server given by URL: its URL as given (the lease's hides the password).
        (Backend::Url, Some(url)) => url.clone(),
        _ => server_url(&lease.url()),
    };
    Ok((broker, url, lease.backend))
}

/// The URL of `url`'s server with the `postgres` database.
fn server_url(url: &str) -> String {
    let (base, rest) = url.rsplit_once('/').unwrap_or((url, ""));
    let query = rest.find('?').map_or("", |i| &rest[i..]);
    format!("{base}/postgres{query}")
}

/// Stops the throwaway server under `state` if nobody uses it, and removes the folder.
fn stop(state: &Path) {
    let _ = harness_env::stop_unused(state);
    let _ = std::fs::remove_dir_all(state);
}

/// Runs the suite once under `runner` with `env`, timing the whole command.
fn time_suite(
    runner: Runner,
    cache: Cache,
    state: &Path,
    env: &[(&str, String)],
    work: &Path,
) -> anyhow::Result<Timed> {
    let timings = work.join("ready.txt");
    let _ = std::fs::remove_file(&timings);
    let mut command = suite_command(runner, state, env, &timings);
    let shown = format!(
        "{} ({})",
        runner.args().join(" "),
        env.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let started = Instant::now();
    let output = command
        .output()
        .with_context(|| format!("run cargo {shown}"))?;
    let seconds = started.elapsed().as_secs_f64();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if !output.status.success() {
        let tail: Vec<&str> = text.lines().rev().take(40).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        bail!("cargo {shown} failed:\n{}", tail.join("\n"));
    }
    let tests = passed(runner, &text)
        .with_context(|| format!("no test summary in the output of cargo {shown}"))?;
    let ready = std::fs::read_to_string(&timings)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1)?.parse().ok())
        .collect();
    eprintln!(
        "bench adopt: {} cargo {shown}: {seconds:.2} s, {tests} tests",
        cache.name()
    );
    Ok(Timed {
        seconds: (seconds * 1000.0).round() / 1000.0,
        tests,
        ready,
    })
}

/// The command of one timed run.
fn suite_command(runner: Runner, state: &Path, env: &[(&str, String)], timings: &Path) -> Command {
    let mut command = crate::cargo_command();
    command
        .args(runner.args())
        .current_dir(crate::workspace_root())
        .env("HARNESS_STATE_DIR", state)
        .env("EXAMPLE_DB_TIMINGS", timings)
        // The run must not write snapshots.
        .env("INSTA_UPDATE", "no")
        .stdin(Stdio::null());
    for (name, value) in env {
        command.env(name, value);
    }
    command
}

/// Tests passed, from a runner's output: the sum of `cargo test`'s `test result:` lines, or
/// nextest's summary.
fn passed(runner: Runner, output: &str) -> Option<usize> {
    let count_before = |line: &str, word: &str| -> Option<usize> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let i = words
            .iter()
            .position(|w| w.trim_end_matches([',', ';']) == word)?;
        words.get(i.checked_sub(1)?)?.parse().ok()
    };
    match runner {
        Runner::CargoTest => {
            let results: Vec<usize> = output
                .lines()
                .filter(|l| l.starts_with("test result:"))
                .filter_map(|l| count_before(l, "passed"))
                .collect();
            (!results.is_empty()).then(|| results.iter().sum())
        }
        Runner::Nextest => output
            .lines()
            .filter(|l| l.trim_start().starts_with("Summary"))
            .find_map(|l| count_before(l, "passed")),
    }
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(0.0)
}

/// The report as a table for people.
pub(super) fn text(r: &AdoptReport) -> String {
    let tests = r.runs.first().map_or(0, |run| run.tests);
    let mut out = format!(
        "the example backend's suite ({tests} tests) with a database per test: the harness against \
         its own create-and-migrate, on the {} backend, {} round(s), median wall time\n\
         {:<11} {:<8} {:<5} {:>9} {:>6}   {:>14} {:>10}\n",
        r.backend, r.rounds, "runner", "setup", "cache", "suite", "tests", "db ready p50", "p95"
    );
    for run in &r.runs {
        let ready = r
            .database_ready_ms
            .get(run.setup.name())
            .and_then(|m| m.get(run.runner.name()))
            .and_then(|m| m.get(run.cache.name()));
        let (p50, p95) = ready.map_or(("-".to_owned(), "-".to_owned()), |r| {
            (format!("{:.1} ms", r.p50), format!("{:.1} ms", r.p95))
        });
        out.push_str(&format!(
            "{:<11} {:<8} {:<5} {:>7.2} s {:>6}   {:>14} {:>10}\n",
            run.runner.name(),
            run.setup.name(),
            run.cache.name(),
            run.suite_seconds,
            run.tests,
            p50,
            p95
        ));
    }
    for runner in Runner::ALL {
        let suite = |setup| {
            r.runs
                .iter()
                .find(|x| x.runner == runner && x.setup == setup && x.cache == Cache::Warm)
                .map(|x| x.suite_seconds)
        };
        if let (Some(h), Some(o)) = (suite(Setup::Harness), suite(Setup::Own)) {
            out.push_str(&format!(
                "{}, warm: the harness's suite takes {:.2}x the own set-up's\n",
                runner.name(),
                h / o
            ));
        }
    }
    out.push_str(
        "cold: the harness starts its own server and builds the template inside the timed run; \
         the own set-up runs against a server started just before it",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tests_passed_are_read_from_either_runner() {
        let cargo = "running 4 tests\ntest result: ok. 4 passed; 0 failed; 0 ignored\n\
                     test result: ok. 0 passed; 0 failed\n\
                     test result: ok. 15 passed; 0 failed; 0 ignored; finished in 3.17s\n";
        assert_eq!(passed(Runner::CargoTest, cargo), Some(19));
        let nextest = "        PASS [   0.590s] (18/19) x\n────────────\n     Summary [   5.265s] \
                       19 tests run: 19 passed, 0 skipped\n";
        assert_eq!(passed(Runner::Nextest, nextest), Some(19));
        assert_eq!(passed(Runner::Nextest, "error: no tests"), None);
    }

    #[test]
    fn the_server_url_names_the_postgres_database() {
        assert_eq!(
            server_url("postgres://postgres@127.0.0.1:5432/bh_abc_1"),
            "postgres://postgres@127.0.0.1:5432/postgres"
        );
        assert_eq!(
            server_url("postgres://u:p@db:5432/bh_abc_1?sslmode=disable"),
            "postgres://u:p@db:5432/postgres?sslmode=disable"
        );
    }

    #[test]
    fn ready_times_are_summed_up_in_milliseconds() {
        let ready = Ready::of((1..=100).map(|ms| ms * 1000).collect()).unwrap();
        assert_eq!(
            (ready.p50, ready.p95, ready.max, ready.databases),
            (51.0, 95.0, 100.0, 100)
        );
        assert_eq!(Ready::of(Vec::new()), None);
    }

    #[test]
    fn the_example_crate_has_the_migrations_the_bench_starts_its_server_with() {
        let dir = crate::workspace_root().join(EXAMPLE_DIR);
        assert!(dir.join("migrations").is_dir(), "{}", dir.display());
    }

    #[test]
    fn the_json_names_runner_setup_and_cache() {
        let report = AdoptReport {
            runs: vec![Run {
                runner: Runner::Nextest,
                setup: Setup::Harness,
                cache: Cache::Warm,
                suite_seconds: 5.2,
                suite_seconds_each: vec![5.2],
                tests: 19,
            }],
            database_ready_ms: BTreeMap::from([(
                "harness",
                BTreeMap::from([(
                    "nextest",
                    BTreeMap::from([(
                        "warm",
                        Ready {
                            p50: 8.0,
                            p95: 12.0,
                            max: 20.0,
                            databases: 15,
                        },
                    )]),
                )]),
            )]),
            backend: "local".into(),
            rounds: 1,
        };
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["runs"][0]["runner"], "nextest");
        assert_eq!(json["runs"][0]["setup"], "harness");
        assert_eq!(json["runs"][0]["cache"], "warm");
        assert_eq!(
            json["database_ready_ms"]["harness"]["nextest"]["warm"]["p50"],
            8.0
        );
        assert!(text(&report).contains("nextest     harness  warm"));
    }
}
