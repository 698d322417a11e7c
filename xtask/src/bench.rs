//! `cargo xtask bench <what> [--json]`: the workspace's speed goals, measured.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use billing_harness::env::Config;
use billing_harness::env::internals::{self, Broker, CloneStrategy};
use serde::Serialize;

/// How many databases each way is timed.
const ROUNDS: usize = 30;

#[derive(Serialize)]
struct Spread {
    median: f64,
    p95: f64,
}

impl Spread {
    fn of(mut samples: Vec<Duration>) -> Spread {
        samples.sort();
        let ms = |d: Duration| (d.as_secs_f64() * 1000.0 * 10.0).round() / 10.0;
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
        Spread {
            median: ms(at(0.5)),
            p95: ms(at(0.95)),
        }
    }
}

#[derive(Serialize)]
struct DbReport {
    clone_ms: Spread,
    migrate_ms: Spread,
    ratio: f64,
    cold_start_ms: f64,
    /// The other clone strategy, for the record of why the harness uses FILE_COPY.
    clone_wal_log_ms: Spread,
    backend: String,
    rounds: usize,
}

/// Times, on one fresh server: the cold start, template clones and create-plus-migrate.
pub(crate) fn db(json: anyhow::Result<bool>) -> anyhow::Result<ExitCode> {
    let json = json?;
    let config = Config::from_env()?;
    // A state directory of its own: the cold start really starts a server.
    let state = config
        .state_dir
        .with_file_name(format!("billing-harness-bench-{}", std::process::id()));
    let config = config.with_state_dir(&state);
    let source = config.migrations.clone();
    let report = {
        let broker = Broker::start(config);
        let runtime = crate::runtime()?;
        runtime.block_on(async {
            let started = Instant::now();
            let first = broker.acquire(&source, CloneStrategy::FileCopy).await?;
            let cold_start = started.elapsed();
            broker.release(&first, None).await?;
            let backend = first.backend.to_string();

            let time = |strategy: Option<CloneStrategy>| {
                let broker = &broker;
                let source = &source;
                async move {
                    let mut samples = Vec::with_capacity(ROUNDS);
                    for _ in 0..ROUNDS {
                        let t = Instant::now();
                        let lease = match strategy {
                            Some(strategy) => broker.acquire(source, strategy).await?,
                            None => broker.acquire_by_migrating(source).await?,
                        };
                        samples.push(t.elapsed());
                        broker.release(&lease, None).await?;
                    }
                    anyhow::Ok(Spread::of(samples))
                }
            };
            let clone = time(Some(CloneStrategy::FileCopy)).await?;
            let wal_log = time(Some(CloneStrategy::WalLog)).await?;
            let migrate = time(None).await?;
            anyhow::Ok(DbReport {
                ratio: (migrate.median / clone.median * 10.0).round() / 10.0,
                clone_ms: clone,
                migrate_ms: migrate,
                cold_start_ms: (cold_start.as_secs_f64() * 1000.0).round(),
                clone_wal_log_ms: wal_log,
                backend,
                rounds: ROUNDS,
            })
        })?
    };
    // The broker is gone, so nobody uses the bench's server: stop it now rather than linger.
    let _ = internals::stop_unused(&state);
    let _ = std::fs::remove_dir_all(&state);
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "database per test, {} rounds each, {} backend",
            report.rounds, report.backend
        );
        println!(
            "  template clone (FILE_COPY)  median {:>7.1} ms   p95 {:>7.1} ms",
            report.clone_ms.median, report.clone_ms.p95
        );
        println!(
            "  template clone (WAL_LOG)    median {:>7.1} ms   p95 {:>7.1} ms",
            report.clone_wal_log_ms.median, report.clone_wal_log_ms.p95
        );
        println!(
            "  create + migrate            median {:>7.1} ms   p95 {:>7.1} ms",
            report.migrate_ms.median, report.migrate_ms.p95
        );
        println!(
            "  clone is {:.1}x faster; cold start to first database {:.0} ms",
            report.ratio, report.cold_start_ms
        );
    }
    Ok(ExitCode::SUCCESS)
}
