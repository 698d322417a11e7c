//! The SQL side of a run, and what it shares with the Rust sides: the frozen unmutated test
//! binaries, the baselines on them (each tier's timeout and tests, the queries the tests send),
//! the database server and the proxy in front of it; then the SQL mutants, most of them as a
//! rewrite of the queries on the frozen binaries, the others written into the tree and built.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use billing_harness::TestEnv;

use crate::accepted::Accepted;
use crate::args::MutantsArgs;
use crate::guard::Backup;
use crate::nextest::{
    Build, CATCHERS, STOP_AT_FIRST_FAILURE, TEST_ENV, catchers_filter, first_failure,
    frequent_catchers, listed_tests, passed_tests, tested_status, tier_time,
};
use crate::outcome::{Outcome, Status, print_not_run, status_label};
use crate::process::{self, Ended, Signals};
use crate::proxy::Proxy;
use crate::rewrite::{self, Rewrite};
use crate::schema::Schema;
use crate::sql;
use crate::targets::{
    Binary, LIBRARY_SOURCES, MIGRATIONS, TARGETS, Tests, build_args, collect_rs, selection,
    slashed, tiers_text,
};
use crate::{PROFILE, cargo};

/// Every SQL literal of the library as the program sends it: its file, its range, its text.
pub(crate) fn all_literals(
    root: &Path,
) -> anyhow::Result<Vec<(PathBuf, std::ops::Range<usize>, String)>> {
    let mut files = Vec::new();
    for dir in LIBRARY_SOURCES {
        collect_rs(&root.join(dir), &mut files)?;
    }
    let mut out = Vec::new();
    for path in files {
        let source = std::fs::read_to_string(&path)?;
        let file = path.strip_prefix(root)?.to_owned();
        for (range, text) in sql::sql_literals(&source)
            .into_iter()
            .zip(rewrite::literals_as_run(&source, None))
        {
            out.push((file.clone(), range, text));
        }
    }
    Ok(out)
}

/// `mutant`'s rewrite at run time, unless another literal of the library would match it too.
pub(crate) fn run_time_rewrite(
    source: &str,
    file: &Path,
    mutant: &sql::SqlMutant,
    literals: &[(PathBuf, std::ops::Range<usize>, String)],
) -> Option<Rewrite> {
    let own = rewrite::literal_of(source, mutant)?;
    let others: Vec<String> = literals
        .iter()
        .filter(|(f, r, _)| !(f == file && *r == own))
        .map(|(_, _, text)| text.clone())
        .collect();
    rewrite::rewrite(source, own, mutant, &others)
}

/// `url` (`postgres://USER[:PASSWORD]@HOST:PORT/DATABASE[?...]`) pointed at the proxy on
/// 127.0.0.1:`port` and its `postgres` database, without TLS.
pub(crate) fn proxied_url(url: &str, port: u16) -> anyhow::Result<String> {
    let (scheme, rest) = url
        .split_once("://")
        .context("a database URL without a scheme")?;
    let (user, rest) = rest
        .rsplit_once('@')
        .context("a database URL without a user")?;
    let (_, path) = rest.split_once('/').unwrap_or((rest, ""));
    let database = path
        .split('?')
        .next()
        .filter(|d| !d.is_empty() && !d.starts_with("bh_"));
    Ok(format!(
        "{scheme}://{user}@127.0.0.1:{port}/{}?sslmode=disable",
        database.unwrap_or("postgres")
    ))
}

/// Whether mutant number `index` of a stable list is in the shard.
pub(crate) fn in_shard(shard: Option<(u32, u32)>, index: usize) -> bool {
    shard.is_none_or(|(k, n)| index % n as usize == k as usize)
}

/// A SQL mutant chosen to run.
pub(crate) struct Chosen {
    /// Its file, relative to the workspace root.
    pub(crate) file: PathBuf,
    /// The change.
    pub(crate) mutant: sql::SqlMutant,
    /// The change as a rewrite of the queries sent, when it can be told as one.
    pub(crate) rewrite: Option<Rewrite>,
}

/// The SQL mutants of one target (index into [`TARGETS`]).
pub(crate) type SqlPlan = (usize, Vec<Chosen>);

/// Prints the planned SQL mutants.
pub(crate) fn list_sql(planned: &[SqlPlan]) {
    for (_, chosen) in planned {
        for c in chosen {
            let how = if c.rewrite.is_some() { "" } else { ", built" };
            println!(
                "{}:{}: [sql{how}] {}",
                slashed(&c.file),
                c.mutant.line,
                c.mutant.description
            );
        }
    }
}

/// The state of one run of the command.
pub(crate) struct Run<'a> {
    /// The workspace root.
    pub(crate) root: &'a Path,
    /// `target/xtask-mutants`.
    pub(crate) state: &'a Path,
    /// The options.
    pub(crate) args: &'a MutantsArgs,
    /// The accepted survivors.
    pub(crate) accepted: &'a Accepted,
    /// The original text of every file mutated so far.
    pub(crate) backup: Backup,
    /// Ctrl-C and SIGTERM.
    signals: &'a mut Signals,
    /// What ran.
    pub(crate) outcomes: Vec<Outcome>,
    /// What test runs add to their environment to reach the database (through the proxy).
    db_env: Vec<(String, String)>,
    /// The database server the tests use, kept up while the command runs, once started.
    server: Option<TestEnv>,
    /// The proxy in front of it, once started.
    proxy: Option<Arc<Proxy>>,
    /// Per target and tier: the test timeout for mutants, the queries the unmutated tests sent
    /// and the tier's tests, from one baseline run of the tests of every tier, shared by both
    /// kinds of mutant.
    baselines: BTreeMap<(usize, usize), Baseline>,
    /// Per test: how many SQL mutants of the whole run it caught first.
    caught_by: BTreeMap<String, usize>,
    /// The unmutated test binaries the run-time SQL mutants run, once [frozen](Run::freeze).
    frozen: Option<PathBuf>,
}

/// What the run of the unmutated tree tells of a tier.
struct Baseline {
    /// The test timeout for a mutant.
    timeout: Duration,
    /// Every query text the tests of the baseline sent (those of every tier that ran with it).
    queries: Arc<BTreeSet<String>>,
    /// The names of the tier's tests.
    tests: Arc<BTreeSet<String>>,
}

impl<'a> Run<'a> {
    /// The state of a run of the workspace at `root` with `args`, its files in `state`: nothing
    /// started yet.
    pub(crate) fn new(
        root: &'a Path,
        state: &'a Path,
        args: &'a MutantsArgs,
        accepted: &'a Accepted,
        backup: Backup,
        signals: &'a mut Signals,
    ) -> Run<'a> {
        Run {
            root,
            state,
            args,
            accepted,
            backup,
            signals,
            outcomes: Vec::new(),
            db_env: Vec::new(),
            server: None,
            proxy: None,
            baselines: BTreeMap::new(),
            caught_by: BTreeMap::new(),
            frozen: None,
        }
    }

    /// The test timeout for a mutant of `tier` (target and tier), from its baseline, which
    /// [`Run::baselines_of`] ran.
    ///
    /// # Panics
    /// The tier's baseline has not run.
    pub(crate) fn baseline_timeout(&self, tier: (usize, usize)) -> Duration {
        self.baselines[&tier].timeout
    }

    /// The SQL mutants of the planned files in the shard, per target, each with its rewrite at
    /// run time when it can be told as one. Reads the files as they are now.
    pub(crate) fn sql_plan(
        &self,
        plan: &BTreeMap<usize, Vec<PathBuf>>,
    ) -> anyhow::Result<Vec<SqlPlan>> {
        let schema = Schema::from_migrations(&self.root.join(MIGRATIONS))?;
        let literals = all_literals(self.root)?;
        let mut index = 0;
        let mut planned = Vec::new();
        for (&target, files) in plan {
            let mut chosen = Vec::new();
            for file in files {
                let source = std::fs::read_to_string(self.root.join(file))?;
                for mutant in sql::mutants(&source, &schema) {
                    if in_shard(self.args.shard, index) {
                        let rewrite = run_time_rewrite(&source, file, &mutant, &literals);
                        chosen.push(Chosen {
                            file: file.clone(),
                            mutant,
                            rewrite,
                        });
                    }
                    index += 1;
                }
            }
            if !chosen.is_empty() {
                planned.push((target, chosen));
            }
        }
        Ok(planned)
    }

    /// Runs the planned SQL mutants, each alone. The tests reach Postgres through a [`Proxy`]:
    /// a mutant whose literal can be told as a rewrite of the queries the baseline sent runs
    /// without a rebuild, on the [frozen](Run::freeze) test binaries; any other is written into
    /// the file and built, unless `defer_built`, which returns those instead (the tree is not
    /// ours while the Rust mutants run).
    pub(crate) async fn sql(
        &mut self,
        planned: Vec<SqlPlan>,
        defer_built: bool,
    ) -> anyhow::Result<Vec<SqlPlan>> {
        let logs = self.state.join("sql-logs");
        std::fs::create_dir_all(&logs)?;
        let mut deferred = Vec::new();
        for (target, chosen) in planned {
            let t = &TARGETS[target];
            eprintln!(
                "mutants: {} SQL mutant(s) in {} (tests: {}), {} rewritten at run time",
                chosen.len(),
                t.path,
                tiers_text(t),
                chosen.iter().filter(|c| c.rewrite.is_some()).count()
            );
            let proxy = self.proxy().await?;
            // The tests that caught this target's latest mutants, newest first, per tier: a
            // mutant meets them before its whole tier, as neighbouring mutants of one query
            // mostly fail the same test.
            let mut catchers: Vec<Vec<String>> = vec![Vec::new(); t.tiers.len()];
            let mut later = Vec::new();
            for (n, c) in chosen.into_iter().enumerate() {
                let Chosen { file, mutant, .. } = &c;
                // An accepted SQL survivor is known to survive (the run-time rewrite makes the
                // same text every time): it is counted, not run, unless asked for.
                if !self.args.run_accepted
                    && self
                        .accepted
                        .find(&slashed(file), &mutant.description)
                        .is_some()
                {
                    let outcome = Outcome::sql(target, file, mutant, Status::Survived);
                    print_not_run(&outcome);
                    self.outcomes.push(outcome);
                    continue;
                }
                let log = logs.join(format!(
                    "{}-{}-{n}.log",
                    file.file_stem().unwrap_or_default().to_string_lossy(),
                    mutant.line
                ));
                let _ = std::fs::remove_file(&log);
                let tested = self
                    .sql_mutant(target, &c, &proxy, &mut catchers, &log, defer_built)
                    .await?;
                let Some((status, took, how)) = tested else {
                    eprintln!(
                        "  {:<9} {}:{}: {}  (needs a build: after the Rust mutants)",
                        "waiting",
                        slashed(file),
                        mutant.line,
                        mutant.description,
                    );
                    later.push(c);
                    continue;
                };
                eprintln!(
                    "  {:<9} {}:{}: {}  ({:.0} s{})",
                    status_label(status),
                    slashed(file),
                    mutant.line,
                    mutant.description,
                    took.as_secs_f64(),
                    how,
                );
                self.outcomes.push(Outcome {
                    took,
                    ..Outcome::sql(target, file, mutant, status)
                });
            }
            if !later.is_empty() {
                deferred.push((target, later));
            }
        }
        Ok(deferred)
    }

    /// Tests the SQL mutant `chosen` of `target`, tier after tier until one catches it: as a
    /// rewrite of the queries on the frozen binaries when the baseline sent its literal's query,
    /// else written into its file and built, unless `defer_built` (then `None`: it waits for
    /// the tree). Its status, its time, and how it ran, for the progress line.
    async fn sql_mutant(
        &mut self,
        target: usize,
        chosen: &Chosen,
        proxy: &Proxy,
        catchers: &mut [Vec<String>],
        log: &Path,
        defer_built: bool,
    ) -> anyhow::Result<Option<(Status, Duration, String)>> {
        let Chosen {
            file,
            mutant,
            rewrite,
        } = chosen;
        let mut status = Status::Survived;
        let mut took = Duration::ZERO;
        let mut built = false;
        let mut rewrote = 0;
        // Whether the baseline's tests sent the literal's query: one answer for every tier, as
        // one baseline run recorded the queries of them all.
        self.baseline(target, 0).await?;
        let reached = rewrite.as_ref().filter(|r| {
            self.baselines[&(target, 0)]
                .queries
                .iter()
                .any(|q| r.matches(q))
        });
        for (tier, tests) in TARGETS[target].tiers.iter().enumerate() {
            let timeout = self.baseline(target, tier).await?;
            let result = if let Some(rewrite) = reached {
                proxy.set(Some(rewrite.clone()));
                let result = self
                    .catchers_then_tier((target, tier), &mut catchers[tier], log, timeout)
                    .await;
                let hits = proxy.hits();
                rewrote += hits;
                proxy.set(None);
                result.and_then(|(status, took)| Ok((run_time_status(status, hits, log)?, took)))
            } else if defer_built {
                return Ok(None);
            } else {
                built = true;
                let original = self.backup.hold(file)?.to_owned();
                std::fs::write(self.root.join(file), sql::apply(&original, mutant))?;
                let result = self.sql_one(tests, log, timeout).await;
                self.backup.restore(file)?;
                result
            };
            let (tier_status, tier_took) = result?;
            took += tier_took;
            status = tier_status;
            if status != Status::Survived {
                break;
            }
        }
        let how = if built {
            ", built".to_owned()
        } else {
            format!(", {rewrote} queries rewritten")
        };
        Ok(Some((status, took, how)))
    }

    /// Tests the mutant now in effect with `catchers` (the tests that caught this target's
    /// latest mutants, newest first), then with the run's most frequent catchers among the
    /// tier's tests, before the whole of `tests` (tier `tier` of `target`), and puts the test
    /// that catches it first in `catchers`. Most mutants fail one of the first few tests; the
    /// whole tier runs only for those that none of them catches.
    async fn catchers_then_tier(
        &mut self,
        (target, tier): (usize, usize),
        catchers: &mut Vec<String>,
        log: &Path,
        timeout: Duration,
    ) -> anyhow::Result<(Status, Duration)> {
        let tests = &TARGETS[target].tiers[tier];
        let mut took = Duration::ZERO;
        let mut filters = Vec::new();
        if !catchers.is_empty() {
            filters.push(catchers_filter(tests.filter, catchers));
        }
        let frequent = frequent_catchers(
            &self.caught_by,
            &self.baselines[&(target, tier)].tests,
            catchers,
        );
        if !frequent.is_empty() {
            filters.push(catchers_filter(tests.filter, &frequent));
        }
        filters.push(tests.filter.to_owned());
        let mut status = Status::Survived;
        for filter in filters {
            let start = std::fs::metadata(log).map_or(0, |m| m.len());
            let (ended, run_took) = self
                .nextest_of(
                    &[],
                    &selection(tests, &filter),
                    Build::Frozen,
                    log,
                    Some(timeout),
                )
                .await?;
            took += run_took;
            status = tested_status(ended, log)?;
            if status != Status::Survived {
                if let Some(name) = first_failure(log, start) {
                    *self.caught_by.entry(name.clone()).or_default() += 1;
                    catchers.retain(|c| *c != name);
                    catchers.insert(0, name);
                    catchers.truncate(CATCHERS);
                }
                break;
            }
        }
        Ok((status, took))
    }

    /// The proxy the tests reach the database through, started with its server when first
    /// needed (the server the environment selects, kept up by holding a database in it); from
    /// then on every test run of the command reaches the server through it, as the `url`
    /// backend.
    async fn proxy(&mut self) -> anyhow::Result<Arc<Proxy>> {
        if let Some(proxy) = &self.proxy {
            return Ok(Arc::clone(proxy));
        }
        let server = TestEnv::new()
            .await
            .context("starting a database server for the mutants' tests")?;
        let proxy = Arc::new(Proxy::start(format!("{}:{}", server.host(), server.port())).await?);
        // An existing server's URL carries its password; a throwaway server's prints it.
        let given = match server.backend() {
            billing_harness::env::Backend::Url => {
                billing_harness::env::Config::from_env()?.database_url
            }
            _ => None,
        };
        let base = given.unwrap_or_else(|| server.url());
        let url = proxied_url(&base, proxy.port())?;
        self.db_env = vec![
            ("HARNESS_POSTGRES".to_owned(), "url".to_owned()),
            ("HARNESS_DATABASE_URL".to_owned(), url),
        ];
        self.server = Some(server);
        self.proxy = Some(Arc::clone(&proxy));
        Ok(proxy)
    }

    /// Archives the unmutated test binaries (nextest's reuse of a build) and extracts them under
    /// the state directory: from then on a run-time SQL mutant runs them without cargo, so
    /// neither a build nor a Rust mutant written into the tree meanwhile changes what it tests.
    pub(crate) async fn freeze(&mut self) -> anyhow::Result<()> {
        let dir = self.state.join("unmutated");
        let archive = self.state.join("unmutated.tar.zst");
        let logs = self.state.join("baselines");
        std::fs::create_dir_all(&logs)?;
        let log = logs.join("freeze.log");
        let _ = std::fs::remove_file(&log);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let mut archive_args: Vec<String> = vec![
            "nextest".into(),
            "archive".into(),
            format!("--cargo-profile={PROFILE}"),
        ];
        archive_args.extend(build_args(Binary::ALL));
        archive_args.push(format!("--archive-file={}", archive.display()));
        let extract_args: Vec<String> = vec![
            "nextest".into(),
            "list".into(),
            format!("--archive-file={}", archive.display()),
            format!("--extract-to={}", dir.display()),
            "--extract-overwrite".into(),
            format!("--workspace-remap={}", self.root.display()),
            "-E".into(),
            "none()".into(),
        ];
        for args in [archive_args, extract_args] {
            let ended = self.cargo_logged(&args, &log, &[]).await?;
            anyhow::ensure!(
                ended == Ended::Exited(Some(0)),
                "freezing the unmutated test binaries failed; see {}",
                log.display()
            );
        }
        self.frozen = Some(dir);
        Ok(())
    }

    /// The test timeout for mutants of tier `tier` of `target`, from the tier's [`Baseline`],
    /// run first if it has not run yet.
    async fn baseline(&mut self, target: usize, tier: usize) -> anyhow::Result<Duration> {
        self.baselines_of(&[(target, tier)]).await?;
        Ok(self.baselines[&(target, tier)].timeout)
    }

    /// Runs the tests of every tier in `tiers` (target and tier) that has no [`Baseline`] yet,
    /// all at once on the [frozen](Run::freeze) unmutated binaries: they must pass. The run
    /// records the queries the tests send; then each distinct tier's tests are listed, and
    /// their times in the run set the tier's test timeout for mutants (`--timeout`, or three
    /// times the [tier's time](tier_time), at least 60 s).
    /// One run of the union costs far less than one per tier: the slowest tests (the
    /// scenarios, the day-by-day comparison) are in nearly every tier.
    pub(crate) async fn baselines_of(&mut self, tiers: &[(usize, usize)]) -> anyhow::Result<()> {
        let missing: Vec<(usize, usize)> = tiers
            .iter()
            .filter(|key| !self.baselines.contains_key(key))
            .copied()
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let mut distinct: Vec<Tests> = Vec::new();
        for &(target, tier) in &missing {
            let tests = TARGETS[target].tiers[tier];
            if !distinct.contains(&tests) {
                distinct.push(tests);
            }
        }
        let union = distinct
            .iter()
            .map(|tests| format!("({})", selection(tests, tests.filter)))
            .collect::<Vec<_>>()
            .join(" | ");
        let logs = self.state.join("baselines");
        std::fs::create_dir_all(&logs)?;
        let log = logs.join(format!("baseline-{}.log", self.baselines.len()));
        let _ = std::fs::remove_file(&log);
        let proxy = self.proxy().await?;
        self.backup.restore_all()?;
        proxy.record();
        let ran = self
            .nextest_of(&[], &union, Build::Frozen, &log, None)
            .await;
        let queries = Arc::new(proxy.recorded());
        let (tested, test_time) = ran?;
        anyhow::ensure!(
            tested == Ended::Exited(Some(0)),
            "the covering tests fail on the unmutated tree; see {}",
            log.display()
        );
        let times = passed_tests(&std::fs::read_to_string(&log)?);
        eprintln!(
            "mutants: baseline of {} tier(s), {} tests, tested in {:.0} s",
            distinct.len(),
            times.len(),
            test_time.as_secs_f64(),
        );
        let mut listed: Vec<(Tests, Duration, Arc<BTreeSet<String>>)> = Vec::new();
        for tests in distinct {
            let names = self.list(&selection(&tests, tests.filter)).await?;
            let timeout = self
                .args
                .timeout
                .unwrap_or_else(|| Duration::from_secs(60).max(tier_time(&times, &names) * 3));
            eprintln!(
                "mutants: {} test(s) of `{}`; test timeout {} s",
                names.len(),
                tests.filter,
                timeout.as_secs()
            );
            listed.push((tests, timeout, Arc::new(names)));
        }
        for (target, tier) in missing {
            let tests = TARGETS[target].tiers[tier];
            if let Some((_, timeout, names)) = listed.iter().find(|(t, ..)| *t == tests) {
                self.baselines.insert(
                    (target, tier),
                    Baseline {
                        timeout: *timeout,
                        queries: Arc::clone(&queries),
                        tests: Arc::clone(names),
                    },
                );
            }
        }
        Ok(())
    }

    /// The names of the tests of the [frozen](Run::freeze) binaries that `selection` selects.
    async fn list(&mut self, selection: &str) -> anyhow::Result<BTreeSet<String>> {
        let log = self.state.join("baselines/list.log");
        let _ = std::fs::remove_file(&log);
        let mut args: Vec<String> = vec!["nextest".into(), "list".into()];
        args.extend(self.frozen_args()?);
        args.extend([
            "--message-format=oneline".to_owned(),
            "-E".to_owned(),
            selection.to_owned(),
        ]);
        let ended = self.cargo_logged(&args, &log, TEST_ENV).await?;
        let output = std::fs::read_to_string(&log).unwrap_or_default();
        anyhow::ensure!(
            ended == Ended::Exited(Some(0)),
            "listing the tests of `{selection}` failed: {output}"
        );
        Ok(listed_tests(&output))
    }

    /// Runs cargo with `args` in the workspace, its output in `log`, with no timeout.
    async fn cargo_logged(
        &mut self,
        args: &[String],
        log: &Path,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Ended> {
        let (ended, _) = process::run(
            self.signals,
            &cargo(),
            args,
            self.root,
            Some(log),
            None,
            env,
        )
        .await?;
        Ok(ended)
    }

    /// The options that make nextest run the [frozen](Run::freeze) binaries without cargo.
    fn frozen_args(&self) -> anyhow::Result<Vec<String>> {
        let dir = self
            .frozen
            .as_ref()
            .context("the unmutated test binaries are not frozen yet")?;
        let metadata = dir.join("target/nextest");
        Ok(vec![
            format!(
                "--binaries-metadata={}",
                metadata.join("binaries-metadata.json").display()
            ),
            format!(
                "--cargo-metadata={}",
                metadata.join("cargo-metadata.json").display()
            ),
            format!("--target-dir-remap={}", dir.join("target").display()),
            format!("--workspace-remap={}", self.root.display()),
        ])
    }

    /// Builds, then tests, the mutant now written into the tree.
    async fn sql_one(
        &mut self,
        tests: &Tests,
        log: &Path,
        timeout: Duration,
    ) -> anyhow::Result<(Status, Duration)> {
        let (built, build_time) = self.nextest(tests, true, log, None).await?;
        if built != Ended::Exited(Some(0)) {
            return Ok((Status::Unviable, build_time));
        }
        let (tested, test_time) = self.nextest(tests, false, log, Some(timeout)).await?;
        Ok((tested_status(tested, log)?, build_time + test_time))
    }

    /// `cargo nextest run` of `tests` (`--no-run` when `build_only`), stopping at the first
    /// failure.
    async fn nextest(
        &mut self,
        tests: &Tests,
        build_only: bool,
        log: &Path,
        timeout: Option<Duration>,
    ) -> anyhow::Result<(Ended, Duration)> {
        let build = if build_only { Build::Only } else { Build::Tree };
        self.nextest_of(
            tests.binaries,
            &selection(tests, tests.filter),
            build,
            log,
            timeout,
        )
        .await
    }

    /// [`Run::nextest`] of the tests that `selection` selects, the test binaries `binaries`
    /// built as `build` says (none to build for the frozen binaries).
    async fn nextest_of(
        &mut self,
        binaries: &[Binary],
        selection: &str,
        build: Build,
        log: &Path,
        timeout: Option<Duration>,
    ) -> anyhow::Result<(Ended, Duration)> {
        let mut args: Vec<String> = vec!["nextest".into(), "run".into()];
        if build == Build::Frozen {
            args.extend(self.frozen_args()?);
        } else {
            args.push(format!("--cargo-profile={PROFILE}"));
            args.extend(build_args(binaries));
        }
        if build == Build::Only {
            args.push("--no-run".into());
        } else {
            args.extend([
                STOP_AT_FIRST_FAILURE.into(),
                "--no-tests=fail".into(),
                "-E".into(),
                selection.to_owned(),
            ]);
        }
        let env: Vec<(&str, &str)> = TEST_ENV
            .iter()
            .copied()
            .chain(self.db_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .collect();
        process::run(
            self.signals,
            &cargo(),
            &args,
            self.root,
            Some(log),
            timeout,
            &env,
        )
        .await
    }
}

/// The status of a run-time SQL mutant whose tests sent `hits` rewritten queries. Tests that
/// failed or hung without running the mutated text failed for another reason (the server or the
/// proxy went away, a flaky test): that is an error of the run, never a catch.
fn run_time_status(status: Status, hits: u64, log: &Path) -> anyhow::Result<Status> {
    match status {
        Status::Caught | Status::Timeout if hits == 0 => bail!(
            "the tests failed without running the mutated query, so something else broke them \
             (the database server, the proxy, a flaky test): see {}",
            log.display()
        ),
        status => Ok(status),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_time_sql_mutant_is_caught_only_by_tests_that_ran_its_query() {
        let log = Path::new("sql-logs/close-100-1.log");
        assert_eq!(
            run_time_status(Status::Caught, 1, log).unwrap(),
            Status::Caught
        );
        assert_eq!(
            run_time_status(Status::Timeout, 3, log).unwrap(),
            Status::Timeout
        );
        assert_eq!(
            run_time_status(Status::Survived, 0, log).unwrap(),
            Status::Survived
        );
        for status in [Status::Caught, Status::Timeout] {
            let error = run_time_status(status, 0, log).unwrap_err().to_string();
            assert!(
                error.contains("without running the mutated query"),
                "{error}"
            );
            assert!(error.contains("sql-logs/close-100-1.log"), "{error}");
        }
    }

    #[test]
    fn tests_reach_the_server_through_the_proxy_with_its_credentials() {
        assert_eq!(
            proxied_url("postgres://harness:pw@127.0.0.1:41234/bh_7", 5000).unwrap(),
            "postgres://harness:pw@127.0.0.1:5000/postgres?sslmode=disable"
        );
        assert_eq!(
            proxied_url(
                "postgresql://ci@db.internal:5432/admin?sslmode=require",
                5001
            )
            .unwrap(),
            "postgresql://ci@127.0.0.1:5001/admin?sslmode=disable"
        );
        assert!(proxied_url("127.0.0.1:5432", 5002).is_err());
    }

    #[test]
    fn shards_split_a_list_without_overlap() {
        let picked: Vec<Vec<usize>> = (0..3)
            .map(|k| (0..10).filter(|&i| in_shard(Some((k, 3)), i)).collect())
            .collect();
        assert_eq!(picked, [vec![0, 3, 6, 9], vec![1, 4, 7], vec![2, 5, 8]]);
        assert!((0..10).all(|i| in_shard(None, i)));
    }
}
