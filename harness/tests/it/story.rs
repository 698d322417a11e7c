//! A reference fed from the story, not from the database (issue 20, item 2).
//!
//! The monthly close is already checked against the pure `billing::invoice`, but fed from the rows
//! the close itself read, so a wrong query feeds both sides alike. Here a model computes, from a
//! story's steps alone, every invoice line, every charge attempt and every subscription state
//! (see [`model`]); the same story is played on a fresh database through the platform and the
//! clock (see [`play`]); the two [`record::Record`]s must be equal.
//!
//! A failing property prints the shrunk story as a scenario file (see [`scenario_file`]), writes
//! it under `$CARGO_TARGET_DIR/story-failures/`, and prints the `cargo xtask scenario run`
//! command that replays it.

mod generate;
mod model;
mod play;
mod record;
mod scenario_file;

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::time::Instant;

use billing_harness::TestEnv;
use billing_scenarios::{self as scenario, OutcomeError, OutcomeInvoice, OutcomePayment};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestError, TestRunner};

use model::{Action, Story};
use record::Record;

/// `PROPTEST_CASES` cases (`.ci/run` asks for 256), else 8: each case is a fresh database
/// and a story of up to three months, so 256 of them would double the suite's time on every
/// `cargo test`; the generators aim at the boundaries, so few cases already reach most of them.
fn config() -> Config {
    let mut config = Config::with_cases(8);
    if let Some(cases) = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
    {
        config.cases = cases;
    }
    // Failing seeds are kept beside the failure files, out of the source tree.
    let seeds = scenario_file::target_dir().join("story-failures/seeds.txt");
    let seeds: &'static str = Box::leak(seeds.display().to_string().into_boxed_str());
    config.failure_persistence = Some(Box::new(FileFailurePersistence::Direct(seeds)));
    config.max_shrink_iters = 2048;
    // A story that hangs the platform fails after play::TIME_LIMIT; do not shrink those for hours.
    config.max_shrink_time = 180_000;
    config
}

/// What the generated stories reached, printed after the run so that a reader can see the
/// boundaries were hit.
#[derive(Debug, Default)]
struct Reach {
    stories: usize,
    days: i64,
    counts: BTreeMap<String, usize>,
}

impl Reach {
    fn add(&mut self, key: impl Into<String>) {
        *self.counts.entry(key.into()).or_default() += 1;
    }

    fn note(&mut self, story: &Story, expected: &Record) {
        self.stories += 1;
        self.days += (story.until - story.start).num_days();
        let c = &story.catalog;
        self.add(format!("catalog {} tax {}", c.currency, c.tax_rate));
        if c.plans.iter().any(|p| p.currency != c.currency) {
            self.add("catalog in two currencies");
        }
        self.add(format!("start day {}", chrono::Datelike::day(&story.start)));
        for step in &story.steps {
            self.add(format!("time {}", step.time.label()));
            if story.start.format("%Y-%m").to_string() == "2028-02"
                || step.day.format("%Y-%m").to_string() == "2028-02"
            {
                self.add("steps in 2028-02");
            }
        }
        for code in expected.steps.iter().flatten() {
            self.add(format!("refusal {code}"));
        }
        for i in &expected.invoices {
            self.add(format!("invoice {}", i.status));
            self.add(format!("invoice days in month {}", i.invoice.month.days()));
            for l in &i.invoice.lines {
                self.add(format!("line {}", l.kind.as_str()));
            }
        }
        for p in &expected.payments {
            self.add(format!(
                "attempt {} {}",
                p.attempt,
                p.failure_code.as_deref().unwrap_or("succeeded")
            ));
        }
        for s in &expected.subscriptions {
            self.add(format!(
                "final {} {}",
                s.status,
                s.cancel_reason.as_deref().unwrap_or("")
            ));
        }
    }
}

/// Every story, played on the platform, ends exactly as the model says: step outcomes, invoices
/// line by line, attempts, captures, subscriptions, plan periods and state history.
#[test]
fn every_story_ends_on_the_platform_as_its_model_expects() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let default_catalog = scenario_file::default_catalog();
    let mut runner = TestRunner::new(config());
    let cases = runner.config().cases;
    let reach = RefCell::new(Reach::default());
    // Stories played so far, and the number of the first one that failed.
    let played = Cell::new(0usize);
    let first_failure = Cell::new(None::<usize>);
    let started = Instant::now();
    let result = runner.run(&generate::story(default_catalog.clone()), |story| {
        played.set(played.get() + 1);
        let expected = model::expect(&story);
        reach.borrow_mut().note(&story, &expected.record);
        let verdict = if expected.reference.is_empty() {
            match runtime.block_on(play::play(&story)) {
                Ok(actual) if actual == expected.record => Ok(()),
                Ok(actual) => Err(record::diff(&story, &expected.record, &actual)),
                Err(e) => Err(e),
            }
        } else {
            Err(expected.reference.join("\n"))
        };
        if verdict.is_err() && first_failure.get().is_none() {
            first_failure.set(Some(played.get()));
        }
        verdict.map_err(TestCaseError::fail)
    });
    let elapsed = started.elapsed();
    let reach = reach.into_inner();
    eprintln!(
        "story property: {} stories ({cases} cases, {} days on the clock on average) in {:.1} s",
        reach.stories,
        reach.days / i64::try_from(reach.stories.max(1)).unwrap_or(1),
        elapsed.as_secs_f64()
    );
    for (key, n) in &reach.counts {
        eprintln!("  {key:<40} {n}");
    }
    match result {
        Ok(()) => {}
        Err(TestError::Fail(reason, story)) => {
            let expected = model::expect(&story);
            let toml = scenario_file::render(&story, &expected.record, &default_catalog);
            let path = scenario_file::write("story-failures", &toml);
            let first = first_failure.get().unwrap_or(0);
            panic!(
                "story {first} of {cases} failed; shrunk in {} more runs to:\n{reason}\n\n\
                 The shrunk story as a scenario file, written to {path}; replay it with\n  \
                 cargo xtask scenario run {path} --format json\n\n{toml}",
                played.get() - first,
                path = path.display()
            );
        }
        Err(TestError::Abort(reason)) => panic!("the story property aborted: {reason}"),
    }
}

/// The file a story is written to replays through the scenario runner (what `cargo xtask
/// scenario run FILE` does) with the outcome the model expects.
#[test]
fn a_story_written_as_a_scenario_file_replays_as_its_model_expects() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let default_catalog = scenario_file::default_catalog();
    let strategy = generate::story(default_catalog.clone());
    let mut runner = TestRunner::deterministic();
    let mut replayed = 0;
    while replayed < 8 {
        let story = strategy.new_tree(&mut runner).expect("a story").current();
        // Stories that bill and charge something say more about the replay.
        let expected = model::expect(&story);
        if expected.record.invoices.is_empty() && replayed > 0 {
            continue;
        }
        replayed += 1;
        let toml = scenario_file::render(&story, &expected.record, &default_catalog);
        let path = scenario_file::write("story-replays", &toml);
        let catalog_file = scenario_file::default_catalog_path();
        let scenario = scenario::load(&path, Some(catalog_file.as_path()))
            .unwrap_or_else(|e| panic!("{}\n{toml}", e.render()));
        let outcome = runtime.block_on(async {
            let env = TestEnv::builder()
                .start_at(scenario.start_instant())
                .seed(1)
                .build()
                .await
                .expect("a test database");
            crate::support::distinct_ids(&env).await;
            scenario::run(&scenario, &env).await.expect("a run")
        });
        let context = format!("{}\n{toml}", path.display());
        assert!(outcome.holds, "{}\n{context}", outcome.to_text());
        let want = outcome_of(&story, &expected.record);
        assert_eq!(outcome.invoices, want.invoices, "{context}");
        assert_eq!(outcome.payments, want.payments, "{context}");
        // The model keeps each subscription's end state, not its history of changes.
        let ends: Vec<(String, String, String)> = outcome
            .subscriptions
            .iter()
            .map(|s| (s.tenant.clone(), s.plan.clone(), s.status.to_string()))
            .collect();
        assert_eq!(ends, want.subscriptions, "{context}");
        let codes =
            |errors: &[OutcomeError]| errors.iter().map(|e| e.code.clone()).collect::<Vec<_>>();
        assert_eq!(codes(&outcome.errors), codes(&want.errors), "{context}");
    }
}

/// The parts of a scenario run's outcome the model predicts.
struct Want {
    invoices: Vec<OutcomeInvoice>,
    payments: Vec<OutcomePayment>,
    /// Tenant, plan and status of each tenant's last subscription.
    subscriptions: Vec<(String, String, String)>,
    errors: Vec<OutcomeError>,
}

fn outcome_of(story: &Story, expected: &Record) -> Want {
    let invoices = expected
        .invoices
        .iter()
        .map(|i| OutcomeInvoice {
            tenant: format!("t{}", i.tenant),
            period: i.invoice.month.to_string(),
            status: i
                .status
                .parse()
                .expect("the model writes the platform's status words"),
            currency: i.invoice.currency.to_string(),
            lines: i.invoice.lines.clone(),
            subtotal: i.invoice.subtotal,
            tax: i.invoice.tax,
            total: i.invoice.total,
        })
        .collect();
    // The runner lists payments tenant by tenant, then sorts them by day and tenant.
    let mut payments: Vec<OutcomePayment> = (0..story.tenants.len())
        .flat_map(|t| expected.payments.iter().filter(move |p| p.tenant == t))
        .map(|p| OutcomePayment {
            tenant: format!("t{}", p.tenant),
            period: p.period.to_string(),
            on: model::day_of(p.at),
            attempt: p.attempt,
            amount: p.amount,
            outcome: p
                .outcome
                .parse()
                .expect("the model writes the platform's outcome words"),
            failure_code: p.failure_code.clone(),
        })
        .collect();
    payments.sort_by(|a, b| (a.on, &a.tenant).cmp(&(b.on, &b.tenant)));
    let subscriptions = (0..story.tenants.len())
        .filter_map(|t| {
            expected
                .subscriptions
                .iter()
                .rev()
                .find(|s| s.tenant == t)
                .map(|s| (format!("t{t}"), s.plan.clone(), s.status.clone()))
        })
        .collect();
    let errors = story
        .steps
        .iter()
        .zip(&expected.steps)
        .filter(|(step, _)| !matches!(step.action, Action::LateUsage { .. }))
        .enumerate()
        .filter_map(|(i, (_, code))| {
            code.as_ref().map(|code| OutcomeError {
                step: i + 1,
                code: code.clone(),
            })
        })
        .collect();
    Want {
        invoices,
        payments,
        subscriptions,
        errors,
    }
}
