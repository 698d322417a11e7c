//! `cargo xtask bench scenarios`: the bundled scenarios at one job and at N, and where a
//! scenario's time goes, phase by phase (a session that times each operation of the reference's).

use std::future::Future;
use std::ops::AddAssign;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use billing_harness::TestEnv;
use billing_harness::payments::TestCard;
use billing_scenarios::driver::{PurgeOf, Purged};
use billing_scenarios::{
    DriverError, OrgDef, OutcomeProduct, ReadBack, ReferenceSession, RunOptions, ScriptedFault,
    Session, TenantDef,
};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

/// What `bench scenarios --json` prints.
#[derive(Serialize)]
pub(super) struct Report {
    scenarios: usize,
    /// Wall seconds of the corpus at `jobs` scenarios at once.
    seconds: f64,
    jobs: usize,
    scenarios_per_second: f64,
    /// The same corpus one scenario at a time.
    one_job: Pass,
    /// Where the time went in the one-job run, seconds summed over the corpus.
    phases: Phases,
}

/// One pass over the corpus.
#[derive(Serialize)]
struct Pass {
    seconds: f64,
    scenarios_per_second: f64,
}

/// A scenario's time by phase, in seconds.
#[derive(Serialize, Default, Clone, Copy)]
struct Phases {
    /// A database from the warm pool, the clock and the gateway: the `TestEnv` built.
    database: f64,
    /// The catalog installed and the product mocks set up.
    catalog: f64,
    /// Organizations, users, tenants and cards created.
    set_up: f64,
    /// The steps: subscriptions, plan changes, usage, contracts, purges, faults.
    steps: f64,
    /// The clock moved to each step and to `until`, running the jobs due on the way (closes,
    /// charges, retries, product sync's deliveries and reconciles).
    jobs: f64,
    /// At `until`: product sync run to idle, reconciled, and each product's state read.
    sync_and_reconcile: f64,
    /// Invoices, payments and subscriptions read back.
    read_back: f64,
    /// The product mocks' journals, read for the snapshots.
    journals: f64,
    /// The test environment dropped: its database handed back.
    release: f64,
}

impl AddAssign for Phases {
    fn add_assign(&mut self, o: Phases) {
        self.database += o.database;
        self.catalog += o.catalog;
        self.set_up += o.set_up;
        self.steps += o.steps;
        self.jobs += o.jobs;
        self.sync_and_reconcile += o.sync_and_reconcile;
        self.read_back += o.read_back;
        self.journals += o.journals;
        self.release += o.release;
    }
}

impl Phases {
    /// Each phase rounded to the millisecond.
    fn rounded(self) -> Phases {
        let r = |x: f64| (x * 1000.0).round() / 1000.0;
        Phases {
            database: r(self.database),
            catalog: r(self.catalog),
            set_up: r(self.set_up),
            steps: r(self.steps),
            jobs: r(self.jobs),
            sync_and_reconcile: r(self.sync_and_reconcile),
            read_back: r(self.read_back),
            journals: r(self.journals),
            release: r(self.release),
        }
    }
}

/// Plays every bundled scenario once at one job and once at `jobs`, each on its own database,
/// after one untimed scenario starts the server and fills the warm pool; fails when one does not
/// hold.
pub(super) fn run(jobs: usize) -> anyhow::Result<Report> {
    let files = crate::scenario::files()?;
    let round = |x: f64| (x * 1000.0).round() / 1000.0;
    pass(&files[..1.min(files.len())], 1)?;
    let (one_seconds, phases) = pass(&files, 1)?;
    let (seconds, _) = pass(&files, jobs)?;
    let per_second = |s: f64| round(files.len() as f64 / s.max(1e-9));
    Ok(Report {
        scenarios: files.len(),
        seconds: round(seconds),
        jobs,
        scenarios_per_second: per_second(seconds),
        one_job: Pass {
            seconds: round(one_seconds),
            scenarios_per_second: per_second(one_seconds),
        },
        phases: phases.rounded(),
    })
}

/// The report for people.
pub(super) fn text(r: &Report) -> String {
    let p = &r.phases;
    format!(
        "ran {} scenarios in {:.2} s at {} jobs ({:.1} a second), {:.2} s at 1 job ({:.1} a second)\n\
         at 1 job, summed: database {:.2} s, catalog {:.2} s, set-up {:.2} s, steps {:.2} s, jobs {:.2} s, \
         sync and reconcile {:.2} s, read-back {:.2} s, journals {:.2} s, release {:.2} s",
        r.scenarios,
        r.seconds,
        r.jobs,
        r.scenarios_per_second,
        r.one_job.seconds,
        r.one_job.scenarios_per_second,
        p.database,
        p.catalog,
        p.set_up,
        p.steps,
        p.jobs,
        p.sync_and_reconcile,
        p.read_back,
        p.journals,
        p.release
    )
}

/// Plays every file `jobs` at once: the wall seconds, and the phases summed.
fn pass(files: &[PathBuf], jobs: usize) -> anyhow::Result<(f64, Phases)> {
    let t = Instant::now();
    let played = crate::parallel::ordered(
        files,
        jobs,
        |runtime, path| runtime.block_on(timed_play(path)),
        |_| {},
    )?;
    let seconds = t.elapsed().as_secs_f64();
    let mut phases = Phases::default();
    for one in played {
        phases += one?;
    }
    Ok((seconds, phases))
}

/// Plays one scenario as `scenario run` does (its journals read too), timing each phase.
async fn timed_play(path: &Path) -> anyhow::Result<Phases> {
    let scenario = crate::scenario::read(path).map_err(|e| anyhow::anyhow!("{}", e.render()))?;
    let mut phases = Phases::default();
    let t = Instant::now();
    let env: TestEnv = scenario.test_env().build().await?;
    phases.database = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let reference = ReferenceSession::new(&env, &scenario, RunOptions::default()).await?;
    phases.catalog = t.elapsed().as_secs_f64();
    let mut session = Timed {
        inner: reference,
        phases,
    };
    let outcome = billing_scenarios::play_session(&scenario, &mut session).await?;
    let mut phases = session.phases;
    let t = Instant::now();
    billing_scenarios::snapshot::journals(&env).await?;
    phases.journals = t.elapsed().as_secs_f64();
    let t = Instant::now();
    drop(env);
    phases.release = t.elapsed().as_secs_f64();
    anyhow::ensure!(outcome.holds, "{} does not hold", path.display());
    Ok(phases)
}

/// A session that adds the time of each operation of `inner` to its phase.
struct Timed<S> {
    inner: S,
    phases: Phases,
}

/// Awaits `work`, adding its wall time to `slot`.
async fn timed<T>(slot: &mut f64, work: impl Future<Output = T>) -> T {
    let t = Instant::now();
    let out = work.await;
    *slot += Duration::as_secs_f64(&t.elapsed());
    out
}

impl<S: Session + Sync> Session for Timed<S> {
    async fn create_org(&mut self, org: &OrgDef) -> Result<(), DriverError> {
        timed(&mut self.phases.set_up, self.inner.create_org(org)).await
    }

    async fn create_user(&mut self, org: &str, email: &str) -> Result<(), DriverError> {
        timed(&mut self.phases.set_up, self.inner.create_user(org, email)).await
    }

    async fn create_tenant(&mut self, tenant: &TenantDef, org: &str) -> Result<(), DriverError> {
        timed(
            &mut self.phases.set_up,
            self.inner.create_tenant(tenant, org),
        )
        .await
    }

    async fn register_card(&mut self, org: &str, card: TestCard) -> Result<(), DriverError> {
        timed(&mut self.phases.steps, self.inner.register_card(org, card)).await
    }

    async fn subscribe(&mut self, tenant: &str, plan: &str) -> Result<(), DriverError> {
        timed(&mut self.phases.steps, self.inner.subscribe(tenant, plan)).await
    }

    async fn change_plan(&mut self, tenant: &str, plan: &str) -> Result<(), DriverError> {
        timed(&mut self.phases.steps, self.inner.change_plan(tenant, plan)).await
    }

    async fn cancel(&mut self, tenant: &str) -> Result<(), DriverError> {
        timed(&mut self.phases.steps, self.inner.cancel(tenant)).await
    }

    async fn apply_contract(
        &mut self,
        tenant: &str,
        terms: &billing_harness::model::ContractTerms,
    ) -> Result<(), DriverError> {
        timed(
            &mut self.phases.steps,
            self.inner.apply_contract(tenant, terms),
        )
        .await
    }

    async fn record_usage(
        &mut self,
        tenant: &str,
        metric: &str,
        quantity: i64,
        day: NaiveDate,
    ) -> Result<(), DriverError> {
        let work = self.inner.record_usage(tenant, metric, quantity, day);
        timed(&mut self.phases.steps, work).await
    }

    async fn advance_to(&mut self, at: DateTime<Utc>) -> Result<(), DriverError> {
        timed(&mut self.phases.jobs, self.inner.advance_to(at)).await
    }

    async fn read_back(&mut self) -> Result<ReadBack, DriverError> {
        timed(&mut self.phases.read_back, self.inner.read_back()).await
    }

    async fn purge(&mut self, target: PurgeOf<'_>) -> Result<Purged, DriverError> {
        timed(&mut self.phases.steps, self.inner.purge(target)).await
    }

    async fn product_fault(
        &mut self,
        product: &str,
        fault: &ScriptedFault,
    ) -> Result<(), DriverError> {
        timed(
            &mut self.phases.steps,
            self.inner.product_fault(product, fault),
        )
        .await
    }

    async fn product_drift(&mut self, product: &str, tenant: &str) -> Result<bool, DriverError> {
        timed(
            &mut self.phases.steps,
            self.inner.product_drift(product, tenant),
        )
        .await
    }

    async fn products(&mut self) -> Result<Option<Vec<OutcomeProduct>>, DriverError> {
        timed(&mut self.phases.sync_and_reconcile, self.inner.products()).await
    }
}
