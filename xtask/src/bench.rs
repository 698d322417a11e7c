//! `cargo xtask bench <what> [--format json]`: the workspace's speed goals, measured.

mod adopt;
mod scenarios;
mod sync;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use billing_harness::env::Config;
use billing_harness::env::{self as harness_env, Broker, CloneStrategy, Schema};
use serde::Serialize;

/// `cargo xtask bench ...`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Time template clones against create-plus-migrate, and the cold start.
    Db(Args),
    /// Close one month of 10,000 subscriptions with 1,000,000 usage events.
    Billing(Args),
    /// Create 1,000 subscribed tenants with 100 usage events each via the builders.
    Build(Args),
    /// Run every scenario at one job and at --jobs, timing the lot and each phase.
    Scenarios(ScenariosArgs),
    /// Operations per second at 1, 4, 16 and 64 concurrent clients, with the platform's
    /// invariants checked after each level.
    Load(Args),
    /// Deliveries per second through the product-sync dispatcher to the product mocks over
    /// HTTP, fault-free and with 30% of the writes faulted.
    Sync(Args),
    /// `bench db`'s child: one fresh process on the bench's server, timing its `TestEnv`s.
    #[command(hide = true)]
    DbChild,
    /// The example backend's test suite with the harness against its own create-and-migrate,
    /// cold and warm, under cargo test and cargo nextest (the test binaries are built first, not
    /// timed).
    Adopt(AdoptArgs),
}

/// What `bench adopt` takes.
#[derive(Debug, clap::Args)]
pub(crate) struct AdoptArgs {
    #[command(flatten)]
    output: Args,
    /// Time each configuration this many times (1 to 100) and report the median.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=100))]
    rounds: u16,
}

/// What `bench scenarios` takes.
#[derive(Debug, clap::Args)]
pub(crate) struct ScenariosArgs {
    #[command(flatten)]
    output: Args,
    /// The scenarios played at once in the second run (default: the number of cores).
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    jobs: Option<u16>,
}

/// What every bench takes: `--format`, and `--json` for `--format json`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    output: crate::format::Output,
    /// The same as `--format json`.
    #[arg(long, conflicts_with = "format")]
    json: bool,
}

impl Args {
    /// `--format json` or its alias `--json`.
    fn json(&self) -> bool {
        self.json || self.output.json()
    }
}

/// Runs one bench.
pub(crate) fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Db(args) => db(args.json()),
        Command::Billing(args) => billing(args.json()),
        Command::Build(args) => build(args.json()),
        Command::Scenarios(args) => emit(
            args.output.json(),
            &scenarios::run(crate::scenario::jobs_or_default(args.jobs))?,
            scenarios::text,
        ),
        Command::Load(args) => load(args.json()),
        Command::Sync(args) => emit(args.json(), &sync::run()?, sync::text),
        Command::Adopt(args) => emit(
            args.output.json(),
            &adopt::run(usize::from(args.rounds))?,
            adopt::text,
        ),
        Command::DbChild => db_child(),
    }
}

/// Prints a bench's report: exactly one JSON document with `--format json`, else `text` for
/// people.
fn emit<T: Serialize>(
    json: bool,
    report: &T,
    text: impl FnOnce(&T) -> String,
) -> anyhow::Result<ExitCode> {
    let format = if json {
        crate::format::Plain::Json
    } else {
        crate::format::Plain::Text
    };
    crate::format::Output { format }.emit(report, |r| format!("{}\n", text(r)))?;
    Ok(ExitCode::SUCCESS)
}

/// How many databases each way is timed.
const ROUNDS: usize = 30;

#[derive(Serialize)]
struct Spread {
    median: f64,
    p95: f64,
}

impl Spread {
    fn of(samples: Vec<Duration>) -> Spread {
        let at = quantiles(samples);
        Spread {
            median: at(0.5),
            p95: at(0.95),
        }
    }
}

/// The quantiles of `samples`: `q` (0 to 1) to milliseconds, to a tenth.
fn quantiles(mut samples: Vec<Duration>) -> impl Fn(f64) -> f64 {
    samples.sort();
    move |q| {
        let d = samples[((samples.len() - 1) as f64 * q).round() as usize];
        (d.as_secs_f64() * 1000.0 * 10.0).round() / 10.0
    }
}

/// The 50th and 90th percentiles of a sample, in milliseconds to a tenth.
#[derive(Serialize)]
struct Quantiles {
    p50: f64,
    p90: f64,
}

impl Quantiles {
    fn of(samples: Vec<Duration>) -> Quantiles {
        let at = quantiles(samples);
        Quantiles {
            p50: at(0.5),
            p90: at(0.9),
        }
    }
}

#[derive(Serialize)]
struct DbReport {
    /// A database for a test, as `Database::new` gets one: the lease, before any connection.
    ready_ms: Quantiles,
    /// Of those, how many came from the warm pool.
    warm_hits: usize,
    /// The first `TestEnv::new()` of a fresh process, with the server already up.
    first_env_ms: Quantiles,
    /// Every later `TestEnv::new()` of those processes.
    env_ms: Quantiles,
    /// `drop(env)` of a passing test, on the test's own thread.
    drop_ms: Quantiles,
    /// Fresh processes started for the figures above.
    processes: usize,
    clone_ms: Spread,
    migrate_ms: Spread,
    ratio: f64,
    cold_start_ms: f64,
    /// The other clone strategy, for the record of why the harness uses FILE_COPY.
    clone_wal_log_ms: Spread,
    backend: String,
    rounds: usize,
    /// The container backend, when an engine answers and has `HARNESS_POSTGRES_IMAGE`.
    container: Option<ContainerReport>,
}

/// A database per test on the container backend: by clone inside one shared container, against
/// one new container per test (start, ready, migrate), in the same run.
#[derive(Serialize)]
struct ContainerReport {
    image: String,
    clone_ms: Spread,
    container_per_test_ms: Spread,
    ratio: f64,
    container_rounds: usize,
}

/// New containers started for the container-per-test figure.
const CONTAINER_ROUNDS: usize = 3;

/// The container figures, or `None` (and why, on stderr) without an engine and image.
fn container_figures(config: &Config) -> anyhow::Result<Option<ContainerReport>> {
    let config = config
        .clone()
        .with_backend(billing_harness::env::BackendChoice::Container);
    let image = config.image.clone();
    let ready = std::process::Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", &image])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ready {
        eprintln!(
            "container figures skipped: no Docker engine answers, or it has no image {image} \
             (cargo xtask images builds one; set HARNESS_POSTGRES_IMAGE)"
        );
        return Ok(None);
    }
    let source = Schema::new(
        config
            .migrations
            .clone()
            .unwrap_or_else(billing_harness::platform_schema),
    );
    let runtime = crate::runtime()?;
    // One new container per test: a state folder of its own each time, so each acquire starts
    // a container, waits for it and migrates the template, as a test would without sharing.
    let mut per_test = Vec::with_capacity(CONTAINER_ROUNDS);
    for round in 0..CONTAINER_ROUNDS {
        let state = config.state_dir.with_file_name(format!(
            "billing-harness-bench-ct-{}-{round}",
            std::process::id()
        ));
        let broker = Broker::start(config.clone().with_state_dir(&state))?;
        let t = Instant::now();
        let lease = runtime.block_on(broker.acquire(&source, CloneStrategy::FileCopy))?;
        per_test.push(t.elapsed());
        runtime.block_on(broker.release(&lease, None))?;
        drop(broker);
        stop_when_unused(&state);
        let _ = std::fs::remove_dir_all(&state);
    }
    // Clones inside one shared container.
    let state = config
        .state_dir
        .with_file_name(format!("billing-harness-bench-ct-{}", std::process::id()));
    let broker = Broker::start(config.clone().with_state_dir(&state))?;
    let clone = runtime.block_on(async {
        let first = broker.acquire(&source, CloneStrategy::FileCopy).await?;
        broker.release(&first, None).await?;
        let mut samples = Vec::with_capacity(ROUNDS);
        for _ in 0..ROUNDS {
            let t = Instant::now();
            let lease = broker.acquire(&source, CloneStrategy::FileCopy).await?;
            samples.push(t.elapsed());
            broker.release(&lease, None).await?;
        }
        anyhow::Ok(Spread::of(samples))
    })?;
    drop(broker);
    stop_when_unused(&state);
    let _ = std::fs::remove_dir_all(&state);
    let per_test = Spread::of(per_test);
    Ok(Some(ContainerReport {
        image,
        ratio: (per_test.median / clone.median * 10.0).round() / 10.0,
        clone_ms: clone,
        container_per_test_ms: per_test,
        container_rounds: CONTAINER_ROUNDS,
    }))
}

/// Times, on one fresh server: the cold start, template clones and create-plus-migrate.
fn db(json: bool) -> anyhow::Result<ExitCode> {
    let config = Config::from_env()?;
    // A state directory of its own: the cold start really starts a server.
    let state = config
        .state_dir
        .with_file_name(format!("billing-harness-bench-{}", std::process::id()));
    let config = config.with_state_dir(&state);
    let source = Schema::new(
        config
            .migrations
            .clone()
            .unwrap_or_else(billing_harness::platform_schema),
    );
    let report = {
        let broker = Broker::start(config.clone())?;
        let runtime = crate::runtime()?;
        runtime.block_on(db_figures(&broker, &source, &state))?
    };
    let mut report = report;
    report.container = container_figures(&config)?;
    // The broker is gone, so nobody uses the bench's server: stop it now rather than linger.
    stop_when_unused(&state);
    let _ = std::fs::remove_dir_all(&state);
    emit(json, &report, db_text)
}

/// The figures of `bench db` on `broker`'s server, started by the first acquire (the cold
/// start): clones both ways, create-plus-migrate, the warm pool, and fresh processes' `TestEnv`s.
async fn db_figures(
    broker: &Broker,
    source: &Schema,
    state: &std::path::Path,
) -> anyhow::Result<DbReport> {
    let started = Instant::now();
    let first = broker.acquire(source, CloneStrategy::FileCopy).await?;
    let cold_start = started.elapsed();
    broker.release(&first, None).await?;
    let backend = first.backend.to_string();

    let time = |strategy: Option<CloneStrategy>| async move {
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
    };
    let clone = time(Some(CloneStrategy::FileCopy)).await?;
    let wal_log = time(Some(CloneStrategy::WalLog)).await?;
    let migrate = time(None).await?;
    // A test's database from the warm pool, topped up between rounds as it is while
    // tests run (a clone takes about as long as the shortest test).
    let connections = broker.config().pool_size;
    let mut ready = Vec::with_capacity(ROUNDS);
    let mut warm = 0;
    broker.warm_up(source).await?;
    for _ in 0..ROUNDS {
        broker.settle().await?;
        let t = Instant::now();
        let lease = broker.claim(source, connections).await?;
        ready.push(t.elapsed());
        warm += usize::from(lease.warm);
        broker.release(&lease, None).await?;
    }
    // Fresh processes join the server this broker keeps up, as nextest's do.
    let children = db_children(broker, source, state, &backend).await?;
    anyhow::Ok(DbReport {
        ready_ms: Quantiles::of(ready),
        warm_hits: warm,
        first_env_ms: Quantiles::of(children.first),
        env_ms: Quantiles::of(children.later),
        drop_ms: Quantiles::of(children.drops),
        processes: PROCESSES,
        ratio: (migrate.median / clone.median * 10.0).round() / 10.0,
        clone_ms: clone,
        migrate_ms: migrate,
        cold_start_ms: (cold_start.as_secs_f64() * 1000.0).round(),
        clone_wal_log_ms: wal_log,
        backend,
        rounds: ROUNDS,
        container: None,
    })
}

/// `bench db`'s report for people.
fn db_text(r: &DbReport) -> String {
    format!(
        "database per test, {} rounds each, {} backend\n\
         \x20 template clone (FILE_COPY)  median {:>7.1} ms   p95 {:>7.1} ms\n\
         \x20 template clone (WAL_LOG)    median {:>7.1} ms   p95 {:>7.1} ms\n\
         \x20 create + migrate            median {:>7.1} ms   p95 {:>7.1} ms\n\
         \x20 clone is {:.1}x faster; cold start to first database {:.0} ms\n\
         \x20 database ready for a test    p50 {:>7.1} ms   p90 {:>7.1} ms   ({} of {} from the warm pool)\n\
         \x20 first TestEnv of a process   p50 {:>7.1} ms   p90 {:>7.1} ms   ({} fresh processes, server up)\n\
         \x20 later TestEnv                p50 {:>7.1} ms   p90 {:>7.1} ms\n\
         \x20 drop on the test's path      p50 {:>7.1} ms   p90 {:>7.1} ms",
        r.rounds,
        r.backend,
        r.clone_ms.median,
        r.clone_ms.p95,
        r.clone_wal_log_ms.median,
        r.clone_wal_log_ms.p95,
        r.migrate_ms.median,
        r.migrate_ms.p95,
        r.ratio,
        r.cold_start_ms,
        r.ready_ms.p50,
        r.ready_ms.p90,
        r.warm_hits,
        r.rounds,
        r.first_env_ms.p50,
        r.first_env_ms.p90,
        r.processes,
        r.env_ms.p50,
        r.env_ms.p90,
        r.drop_ms.p50,
        r.drop_ms.p90,
    ) + &r.container.as_ref().map_or_else(
        || "\n  container backend: not measured (no engine or image; see above)".to_owned(),
        |c| {
            format!(
                "\ncontainer backend, image {}\n\
                 \x20 clone in the shared container median {:>7.1} ms   p95 {:>7.1} ms\n\
                 \x20 a new container per test      median {:>7.1} ms   ({} rounds: start, ready, migrate)\n\
                 \x20 clone in the shared container is {:.1}x faster",
                c.image,
                c.clone_ms.median,
                c.clone_ms.p95,
                c.container_per_test_ms.median,
                c.container_rounds,
                c.ratio
            )
        },
    )
}

/// Fresh processes started for the first-`TestEnv` figure.
const PROCESSES: usize = 10;
/// `TestEnv`s each of them makes after its first.
const ENVS_PER_PROCESS: usize = 10;

/// What one `bench db-child` process measured, printed as one line of JSON, in milliseconds.
#[derive(Debug, Serialize, serde::Deserialize)]
struct ChildTimes {
    first_ms: f64,
    later_ms: Vec<f64>,
    drop_ms: Vec<f64>,
}

/// The samples of every child process.
#[derive(Default)]
struct Children {
    first: Vec<Duration>,
    later: Vec<Duration>,
    drops: Vec<Duration>,
}

/// Stops the throwaway server under `state` once no process uses it, waiting up to 10 s: a
/// dropped broker's background connection (drops, refills, reaping) lets go of the server a
/// moment after the drop, and a server left running once its folder is removed (a container)
/// would have nothing left to stop it.
fn stop_when_unused(state: &std::path::Path) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        match harness_env::stop_unused(state) {
            Ok(stopped) if !stopped.is_empty() => return,
            Err(_) => return,
            Ok(_) if !state.join("local").exists() && !state.join("container").exists() => return,
            Ok(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Runs [`PROCESSES`] fresh `bench db-child` processes one after another on the server of
/// `state`, which must be up.
async fn db_children(
    broker: &Broker,
    schema: &Schema,
    state: &std::path::Path,
    backend: &str,
) -> anyhow::Result<Children> {
    let exe = std::env::current_exe()?;
    let mut children = Children::default();
    let ms = |ms: f64| Duration::from_secs_f64(ms / 1000.0);
    for _ in 0..PROCESSES {
        // The warm pool topped up, as the other processes of a run keep it.
        broker.warm_up(schema).await?;
        let output = std::process::Command::new(&exe)
            .args(["bench", "db-child"])
            .env("HARNESS_STATE_DIR", state)
            .env("HARNESS_POSTGRES", backend)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .output()?;
        anyhow::ensure!(
            output.status.success(),
            "bench db-child exited with {}",
            output.status
        );
        let times: ChildTimes = serde_json::from_slice(&output.stdout)?;
        children.first.push(ms(times.first_ms));
        children.later.extend(times.later_ms.into_iter().map(ms));
        children.drops.extend(times.drop_ms.into_iter().map(ms));
    }
    Ok(children)
}

/// `bench db-child`: the first `TestEnv` of this process and [`ENVS_PER_PROCESS`] more, each
/// timed with the warm pool topped up before it (not timed), and each drop on this thread timed;
/// one line of JSON on stdout.
fn db_child() -> anyhow::Result<ExitCode> {
    use billing_harness::TestEnv;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let runtime = crate::runtime()?;
    let broker = Broker::global()?;
    let schema = Schema::new(
        broker
            .config()
            .migrations
            .clone()
            .unwrap_or_else(billing_harness::platform_schema),
    );
    let times = runtime.block_on(async {
        let t = Instant::now();
        let env = TestEnv::new().await?;
        let first_ms = ms(t.elapsed());
        let mut drop_ms = Vec::with_capacity(ENVS_PER_PROCESS + 1);
        let t = Instant::now();
        drop(env);
        drop_ms.push(ms(t.elapsed()));
        let mut later_ms = Vec::with_capacity(ENVS_PER_PROCESS);
        for _ in 0..ENVS_PER_PROCESS {
            broker.warm_up(&schema).await?;
            let t = Instant::now();
            let env = TestEnv::new().await?;
            later_ms.push(ms(t.elapsed()));
            let t = Instant::now();
            drop(env);
            drop_ms.push(ms(t.elapsed()));
        }
        anyhow::Ok(ChildTimes {
            first_ms,
            later_ms,
            drop_ms,
        })
    })?;
    println!("{}", serde_json::to_string(&times)?);
    Ok(ExitCode::SUCCESS)
}

#[derive(Serialize)]
struct BillingReport {
    subscriptions: i64,
    usage_events: i64,
    seconds: f64,
    invoices_per_second: f64,
}

/// Seeds 10,000 subscriptions with 100 usage events each (set-based SQL, not timed), then times
/// the close of their month.
fn billing(json: bool) -> anyhow::Result<ExitCode> {
    use billing_harness::TestEnv;
    use billing_harness::model::Month;
    let runtime = crate::runtime()?;
    let report = runtime.block_on(async {
        let start = crate::fixtures::seoul(2026, 10, 1);
        let env = TestEnv::builder().start_at(start).build().await?;
        let platform = env.platform();
        platform
            .install_catalog(&crate::fixtures::catalog(), start)
            .await?;
        eprintln!("seeding 10,000 subscriptions and 1,000,000 usage events ...");
        for statement in SEED_BILLING {
            sqlx::query(statement)
                .bind(start)
                .execute(env.pool())
                .await?;
        }
        let (subscriptions, usage_events): (i64, i64) = sqlx::query_as(
            "select (select count(*) from subscriptions), (select count(*) from usage_events)",
        )
        .fetch_one(env.pool())
        .await?;
        let close_at = crate::fixtures::seoul(2026, 11, 1);
        let t = Instant::now();
        let closed = platform
            .close_month(Month::new(2026, 10).expect("a month"), close_at)
            .await?;
        let seconds = t.elapsed().as_secs_f64();
        anyhow::ensure!(
            closed.invoices as i64 == subscriptions,
            "closed {} invoices for {subscriptions} subscriptions",
            closed.invoices
        );
        anyhow::Ok(BillingReport {
            subscriptions,
            usage_events,
            seconds: (seconds * 1000.0).round() / 1000.0,
            invoices_per_second: (closed.invoices as f64 / seconds).round(),
        })
    })?;
    emit(json, &report, |r| {
        format!(
            "closed {} subscriptions with {} usage events in {:.3} s ({:.0} invoices/s)",
            r.subscriptions, r.usage_events, r.seconds, r.invoices_per_second
        )
    })
}

/// Set-based seed of the billing bench: every row goes in with one statement per table. `$1` is
/// the instant the rows are created at.
const SEED_BILLING: &[&str] = &[
    "insert into organizations (name, created_at) select 'bench-' || g, $1 from generate_series(1, 10000) g",
    "insert into cards (organization_id, billing_key, brand, number_last4, expires_on, status, registered_at) \
     select id, 'bk_bench_' || id, 'test', '4242', date '2030-01-01', 'active', $1 from organizations",
    "insert into tenants (organization_id, product_id, name, slug, status, created_at) \
     select o.id, p.id, o.name, o.name, 'active', $1 from organizations o, products p where p.key = 'analytics'",
    "insert into subscriptions (tenant_id, plan_id, status, started_on, current_period_start, current_period_end, created_at, updated_at) \
     select t.id, (select id from plans where key = case when t.id % 3 = 0 then 'business' else 'pro' end), \
            'active', date '2026-10-01' + (t.id % 20)::int, date '2026-10-01', date '2026-11-01', $1, $1 from tenants t",
    "insert into contracts (subscription_id, plan_id, kind, starts_on, created_at) \
     select id, plan_id, 'plan', started_on, $1 from subscriptions",
    "insert into contract_details (contract_id, option_key, value) \
     select c.id, l.option_key, l.value from contracts c join plan_limits l on l.plan_id = c.plan_id where $1 is not null",
    "insert into billings (subscription_id, contract_id, currency, base_fee, starts_on, created_at) \
     select c.subscription_id, c.id, p.currency, p.base_fee, c.starts_on, $1 from contracts c join plans p on p.id = c.plan_id",
    "insert into billing_details (billing_id, metric, included, overage_block, overage_price) \
     select b.id, m.metric, m.included, m.overage_block, m.overage_price from billings b \
     join contracts c on c.id = b.contract_id join plan_metrics m on m.plan_id = c.plan_id where $1 is not null",
    "insert into usage_events (tenant_id, subscription_id, metric, quantity, occurred_on, occurred_at, created_at) \
     select s.tenant_id, s.id, 'api_calls', 1 + (g * 7919 + s.id) % 5000, \
            s.started_on + (g % (date '2026-11-01' - s.started_on)), $1, $1 \
     from subscriptions s cross join generate_series(1, 100) g",
    "analyze",
];

#[derive(Serialize)]
struct BuildReport {
    tenants: usize,
    usage_events: usize,
    seconds: f64,
    ms_per_tenant: f64,
}

/// Creates 1,000 subscribed tenants with 100 usage events each through the builders.
fn build(json: bool) -> anyhow::Result<ExitCode> {
    use billing_harness::TestEnv;
    const TENANTS: usize = 1_000;
    const EVENTS: i64 = 100;
    let runtime = crate::runtime()?;
    let report = runtime.block_on(async {
        let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 24).expect("a date");
        let env = TestEnv::builder().today(today).seed(1).build().await?;
        let start = env.months_ago(4).day(1);
        let t = Instant::now();
        for _ in 0..TENANTS {
            let tenant = env
                .build()
                .tenant()
                .plan("pro")
                .subscribed_on(start)
                .create()
                .await?;
            tenant
                .usage_pattern("api_calls")
                .daily(1_000)
                .from(start)
                .until(start.plus_days(EVENTS))
                .await?;
        }
        let seconds = t.elapsed().as_secs_f64();
        let (tenants, usage_events): (i64, i64) = sqlx::query_as(
            "select (select count(*) from subscriptions), (select count(*) from usage_events)",
        )
        .fetch_one(env.pool())
        .await?;
        anyhow::ensure!(
            tenants as usize == TENANTS,
            "created {tenants} subscriptions"
        );
        anyhow::Ok(BuildReport {
            tenants: TENANTS,
            usage_events: usage_events as usize,
            seconds: (seconds * 1000.0).round() / 1000.0,
            ms_per_tenant: (seconds * 1000.0 / TENANTS as f64 * 100.0).round() / 100.0,
        })
    })?;
    emit(json, &report, |r| {
        format!(
            "built {} subscribed tenants with {} usage events in {:.3} s ({:.2} ms per tenant)",
            r.tenants, r.usage_events, r.seconds, r.ms_per_tenant
        )
    })
}

#[derive(Serialize)]
struct LoadReport {
    /// Operations completed per second, keyed by the number of concurrent clients.
    ops_per_second: std::collections::BTreeMap<String, f64>,
    /// Rows breaking the platform's invariants, summed over every level.
    invariant_violations: usize,
    /// How long each level runs.
    seconds_per_level: f64,
    /// Operations that failed with anything but a rule's refusal.
    raw_errors: usize,
}

/// Operations per second against one database at 1, 4, 16 and 64 concurrent clients, each on
/// its own tenant (usage mostly, some plan changes), with the invariant check after each level.
fn load(json: bool) -> anyhow::Result<ExitCode> {
    use billing_harness::TestEnv;
    use billing_harness::platform::{DomainError, Platform, invariant_violations};
    use sqlx::postgres::PgPoolOptions;
    const LEVELS: [usize; 4] = [1, 4, 16, 64];
    const PER_LEVEL: Duration = Duration::from_millis(1500);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(async {
        let start = crate::fixtures::seoul(2026, 10, 1);
        let env = TestEnv::builder().start_at(start).build().await?;
        // A pool of its own, as wide as the widest level: the test pool is sized for tests.
        let pool = PgPoolOptions::new()
            .max_connections(64)
            .connect(&env.url())
            .await?;
        let p = Platform::new(pool.clone());
        p.install_catalog(&crate::fixtures::catalog(), start)
            .await?;
        let org = p.create_org("load", start).await?;
        p.register_card(org, billing_harness::payments::TestCard::Ok, start)
            .await?;
        let mut tenants = Vec::new();
        for n in 0..64 {
            let t = p
                .create_tenant(org, "analytics", &format!("load-{n}"), start)
                .await?;
            p.subscribe(t, "pro", start).await?;
            tenants.push(t);
        }
        let mut ops_per_second = std::collections::BTreeMap::new();
        let mut violations = 0;
        let mut raw_errors = 0;
        for (level, clients) in LEVELS.into_iter().enumerate() {
            let at = start + chrono::TimeDelta::days(1 + level as i64);
            env.clock().set(at).await?;
            let day = billing_harness::calendar::Calendar::platform().local_day(at);
            let began = Instant::now();
            let tasks: Vec<_> = (0..clients)
                .map(|client| {
                    let p = p.clone();
                    let tenant = tenants[client];
                    tokio::spawn(async move {
                        let (mut ops, mut raw) = (0_u64, 0_u64);
                        while began.elapsed() < PER_LEVEL {
                            let result = if ops % 8 == 7 {
                                let plan = if ops % 16 == 7 { "business" } else { "pro" };
                                p.change_plan(tenant, plan, at).await
                            } else {
                                p.record_usage(tenant, "api_calls", 100, day, at).await
                            };
                            if let Err(e) = result
                                && !DomainError::RULE_CODES.contains(&e.code())
                            {
                                raw += 1;
                            }
                            ops += 1;
                        }
                        (ops, raw)
                    })
                })
                .collect();
            let mut ops = 0;
            for task in tasks {
                let (n, raw) = task.await?;
                ops += n;
                raw_errors += raw as usize;
            }
            let seconds = began.elapsed().as_secs_f64();
            ops_per_second.insert(
                clients.to_string(),
                (ops as f64 / seconds * 10.0).round() / 10.0,
            );
            violations += invariant_violations(&pool).await?.len();
        }
        anyhow::Ok(LoadReport {
            ops_per_second,
            invariant_violations: violations,
            seconds_per_level: PER_LEVEL.as_secs_f64(),
            raw_errors,
        })
    })?;
    emit(json, &report, |r| {
        let mut out = format!(
            "operations per second against one database ({} s a level)\n",
            r.seconds_per_level
        );
        for clients in LEVELS {
            let key = clients.to_string();
            out.push_str(&format!(
                "  {clients:>3} clients  {:>9.1} ops/s\n",
                r.ops_per_second.get(&key).copied().unwrap_or_default()
            ));
        }
        out.push_str(&format!(
            "invariant violations: {}; errors other than a rule's refusal: {}",
            r.invariant_violations, r.raw_errors
        ));
        out
    })
}
