//! `cargo xtask scenario ...`: list, run and create the QA team's scenario files.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use billing_harness::TestEnv;
use billing_scenarios::report::{self, IndexRow, Lang, PageOptions};
use billing_scenarios::snapshot::Stored;
use billing_scenarios::{self as scenario, Outcome, Scenario};

use crate::format::{Format, Output, xml};

/// `cargo xtask scenario ...`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// The scenario files under scenarios/, with their names.
    List(Output),
    /// Play scenarios on throwaway databases; exit 1 if one does not hold, 2 if a file is
    /// invalid.
    #[command(group(clap::ArgGroup::new("which").required(true).args(["target", "all"])))]
    Run {
        /// A scenario's name (as `scenario list` shows it) or a path to a scenario file.
        target: Option<String>,
        /// Run every scenario under scenarios/.
        #[arg(long)]
        all: bool,
        /// `text` for people, `json` for one JSON document on stdout, `junit` for a JUnit XML
        /// report on stdout (one test case per scenario).
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Write the snapshots of the run (under snapshots/, beside scenarios/) where they are
        /// missing or differ, like `cargo insta accept`; without it a differing snapshot fails.
        #[arg(long)]
        accept: bool,
        /// Also write an HTML page per scenario and an index.html of the run into DIR.
        #[arg(long, value_name = "DIR")]
        report: Option<PathBuf>,
        /// The language of the pages: en or ko (default: from LANG, ko_KR.UTF-8 gives ko).
        #[arg(long, value_name = "en|ko")]
        lang: Option<Lang>,
        /// Run the scenarios through another billing implementation and compare every result
        /// with the reference platform's, in the same run: each difference names the invoice,
        /// line, field, expected vs got and the rule. Exits 1 when one differs.
        #[arg(long, value_enum, value_name = "NAME", conflicts_with_all = ["accept", "report", "lang"])]
        driver: Option<crate::conformance::DriverChoice>,
        /// Play this many scenarios at once, each on its own database and product mocks
        /// (default: the number of cores). The output keeps the files' order.
        #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
        jobs: Option<u16>,
        /// With --all, play only one shard of the scenarios, as cargo-nextest splits a run
        /// across CI machines: count:K/N takes every N-th of the sorted files from the K-th,
        /// hash:K/N those whose name hashes to K (stable across machines and runs). Shards 1 to
        /// N together play every scenario exactly once.
        #[arg(long, value_name = "count:K/N|hash:K/N", conflicts_with = "target")]
        partition: Option<crate::partition::Partition>,
        /// How long, in milliseconds of real time, a product mock has to answer one write: what
        /// a `timeout` fault or an outage of timeouts costs (1 to 60000; its mock holds such a
        /// request 250 ms longer). Raise it when a loaded machine answers fault-free writes late.
        #[arg(long, value_name = "MS", default_value_t = SYNC_TIMEOUT_MS,
              value_parser = clap::value_parser!(u64).range(1..=60_000), conflicts_with = "driver")]
        sync_timeout: u64,
    },
    /// Write a commented starting point to scenarios/NAME.toml (never overwrites).
    New {
        /// The new scenario's name: letters, digits, - and _, starting with a letter or a digit.
        #[arg(value_parser = scenario_name)]
        name: String,
    },
    /// Write a scenario into a marked QA database (see `db mark`), shifted to an anchor month
    /// and applied up to the database's clock, every row recorded under a run id as it is
    /// written (`purge --run ID` removes them, a seed that failed half-way included).
    ///
    /// The database is shared, so a seed changes nothing of everyone's: a scenario whose
    /// catalog differs from the database's (platform_settings: time zone, currency, tax rate,
    /// charge day; or a plan of the same key) is refused with each difference listed, and
    /// nothing is written. The database's clock is the present: the seed plays the months up
    /// to it on a clock of its own and never moves it back (a database with no clock yet gets
    /// the wall clock, or noon of HARNESS_TODAY; HARNESS_TODAY naming another day than a
    /// database's clock is refused: `clock advance` moves it). Seeds and `clock advance` on one
    /// database take turns: one waits while another moves the clock.
    Seed {
        /// A scenario's name or a path to a scenario file.
        target: String,
        /// The marked database, as postgres://USER:PASSWORD@HOST:PORT/DATABASE;
        /// default: HARNESS_DATABASE_URL, then DATABASE_URL.
        #[arg(long, value_name = "URL", value_parser = crate::db::database_url, env = "HARNESS_DATABASE_URL", hide_env_values = true)]
        database_url: String,
        /// The month the scenario's first month moves to, counted back from the month of the
        /// database's clock: last-month, this-month or months-ago:N (N at most 240, 20 years).
        #[arg(long, value_name = "MONTH", default_value = "last-month")]
        anchor: Anchor,
        /// Also write the seeded run's HTML page to FILE, with today marked on its timeline.
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
        /// The language of the page: en or ko (default: from LANG, ko_KR.UTF-8 gives ko).
        #[arg(long, value_name = "en|ko")]
        lang: Option<Lang>,
        #[command(flatten)]
        output: Output,
    },
    /// Play a scenario and write one self-contained HTML page: the timeline and the invoices.
    Report {
        /// A scenario's name or a path to a scenario file.
        target: String,
        /// Where to write the page (default: target/scenario-reports/NAME.html).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// The language of the page: en or ko (default: from LANG, ko_KR.UTF-8 gives ko).
        #[arg(long, value_name = "en|ko")]
        lang: Option<Lang>,
        #[command(flatten)]
        output: Output,
    },
}

/// The month a seeded scenario starts in, counted back from this one; as written on the
/// command line, which the run's record keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Anchor {
    text: String,
    months_back: u32,
}

/// The furthest back an anchor goes: 20 years of months.
const MAX_MONTHS_BACK: u32 = 240;

impl std::str::FromStr for Anchor {
    type Err = String;

    /// `last-month`, `this-month` or `months-ago:N` with N at most [`MAX_MONTHS_BACK`].
    fn from_str(text: &str) -> Result<Anchor, String> {
        let too_far =
            || format!("months-ago goes back at most {MAX_MONTHS_BACK} months (20 years)");
        let months_back = match text {
            "this-month" => 0,
            "last-month" => 1,
            other => match other.strip_prefix("months-ago:") {
                Some(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
                    n.parse::<u32>().map_err(|_| too_far())?
                }
                _ => return Err("use last-month, this-month or months-ago:N".to_owned()),
            },
        };
        if months_back > MAX_MONTHS_BACK {
            return Err(too_far());
        }
        Ok(Anchor {
            text: text.to_owned(),
            months_back,
        })
    }
}

impl Anchor {
    /// The anchor month seen from `today`; an error, never a panic, when it falls outside the
    /// dates the calendar holds (a `HARNESS_TODAY` at the end of time).
    pub(crate) fn month(
        &self,
        today: chrono::NaiveDate,
    ) -> anyhow::Result<billing_harness::model::Month> {
        use billing_harness::model::Month;
        Month::of(today)
            .first_day()
            .checked_sub_months(chrono::Months::new(self.months_back))
            .map(Month::of)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "{} months before {today} is before the first date",
                    self.months_back
                )
            })
    }
}

/// A new scenario's name as `scenario new` takes it: letters, digits, - and _, starting with a
/// letter or a digit (a file named `-x.toml` reads as an option to other tools).
fn scenario_name(name: &str) -> Result<String, String> {
    if name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        Ok(name.to_owned())
    } else {
        Err(
            "a scenario's name is letters, digits, - and _, starting with a letter or a digit"
                .to_owned(),
        )
    }
}

/// Runs one `scenario` command.
pub(crate) fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::List(output) => list(output),
        Command::Run {
            target,
            format,
            driver: Some(driver),
            jobs,
            partition,
            ..
        } => {
            let files = chosen(target.as_deref(), partition)?;
            crate::conformance::run(driver, &files, format, jobs_or_default(jobs))
        }
        Command::Run {
            target,
            format,
            accept,
            report,
            lang,
            jobs,
            partition,
            sync_timeout,
            ..
        } => run_scenarios(
            target.as_deref(),
            chosen(target.as_deref(), partition)?,
            format,
            RunSettings {
                accept,
                report: report.as_deref().map(|dir| (dir, language(lang))),
                jobs: jobs_or_default(jobs),
                sync_timeout: Duration::from_millis(sync_timeout),
            },
        ),
        Command::New { name } => new(&name),
        Command::Seed {
            target,
            database_url,
            anchor,
            report,
            lang,
            output,
        } => seed(
            &target,
            &database_url,
            &anchor,
            report.as_deref().map(|file| (file, language(lang))),
            output,
        ),
        Command::Report {
            target,
            out,
            lang,
            output,
        } => report_one(&target, out, language(lang), output),
    }
}

/// `--sync-timeout`'s default: [`scenario::SYNC_TIMEOUT`].
const SYNC_TIMEOUT_MS: u64 = scenario::SYNC_TIMEOUT.as_millis() as u64;

/// The files a run plays: the `target`'s, else every scenario file, or the `partition`'s shard
/// of them.
fn chosen(
    target: Option<&str>,
    partition: Option<crate::partition::Partition>,
) -> anyhow::Result<Vec<PathBuf>> {
    Ok(match (target, partition) {
        (Some(target), _) => vec![resolve(target)?],
        (None, Some(partition)) => partition.select(files()?, |path| stem(path)),
        (None, None) => files()?,
    })
}

/// `--jobs N`, else the number of cores.
pub(crate) fn jobs_or_default(jobs: Option<u16>) -> usize {
    jobs.map_or_else(crate::parallel::default_jobs, usize::from)
}

/// The language of the pages: `--lang`, else the one `LANG` names.
fn language(lang: Option<Lang>) -> Lang {
    lang.unwrap_or_else(|| Lang::from_locale(std::env::var("LANG").ok().as_deref()))
}

/// The scenarios folder: `HARNESS_SCENARIOS_DIR`, else the workspace's `scenarios/` (under
/// `cargo xtask`) or, after [`use_bundled`], `./scenarios` when there is one and else the
/// bundled scenarios.
pub(crate) fn dir() -> PathBuf {
    match std::env::var_os("HARNESS_SCENARIOS_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ if BUNDLED_IN_USE.get().is_some() => {
            let here = PathBuf::from("scenarios");
            if here.is_dir() { here } else { bundled_dir() }
        }
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios"),
    }
}

/// The workspace's scenario files, built into the binary: `(file name, text)`.
const BUNDLED: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/bundled_scenarios.rs"));

/// Set by [`use_bundled`].
static BUNDLED_IN_USE: std::sync::OnceLock<()> = std::sync::OnceLock::new();

/// For `cargo billing-harness`, which runs outside the workspace: scenarios come from
/// `./scenarios`, else from the bundled ones.
pub(crate) fn use_bundled() {
    let _ = BUNDLED_IN_USE.set(());
}

/// The bundled scenarios as files, written once per content into the state folder (a folder
/// named by their hash, renamed into place whole); where they would be if that failed, which
/// it says.
fn bundled_dir() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let base = billing_harness::env::Config::from_env()
            .map(|c| c.state_dir)
            .unwrap_or_else(|_| billing_harness::env::Config::default_state_base());
        let mut hash = <sha2::Sha256 as sha2::Digest>::new();
        for (name, text) in BUNDLED {
            sha2::Digest::update(&mut hash, name.as_bytes());
            sha2::Digest::update(&mut hash, text.as_bytes());
        }
        let hash = format!("{:x}", sha2::Digest::finalize(hash));
        let folder = base.join(format!("scenarios-{}", &hash[..16]));
        if !folder.is_dir()
            && let Err(e) = write_bundled(&folder)
        {
            eprintln!(
                "error: cannot write the bundled scenarios to {}: {e:#}",
                folder.display()
            );
        }
        folder.join("scenarios")
    })
    .clone()
}

/// Writes [`BUNDLED`] to `folder/scenarios/`, through a temporary folder renamed into place.
fn write_bundled(folder: &Path) -> anyhow::Result<()> {
    let temporary = folder.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::create_dir_all(temporary.join("scenarios"))?;
    for (name, text) in BUNDLED {
        std::fs::write(temporary.join("scenarios").join(name), text)?;
    }
    if std::fs::rename(&temporary, folder).is_err() && folder.is_dir() {
        // Another process wrote the same content first.
        std::fs::remove_dir_all(&temporary)?;
    }
    Ok(())
}

/// Every scenario file, sorted by name (not `catalog.toml`).
pub(crate) fn files() -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir())
        .context("read scenarios/")?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "toml")
                && p.file_name().is_some_and(|n| n != "catalog.toml")
        })
        .collect();
    files.sort();
    Ok(files)
}

/// A name (`fail-times-2`) or a path to a file.
pub(crate) fn resolve(target: &str) -> anyhow::Result<PathBuf> {
    let path = Path::new(target);
    if path.is_file() {
        return Ok(path.to_owned());
    }
    let named = dir().join(format!("{}.toml", target.trim_end_matches(".toml")));
    if named.is_file() {
        return Ok(named);
    }
    anyhow::bail!(
        "no scenario {target:?}: not a file, and no scenarios/{target}.toml (`cargo xtask scenario list` shows them)"
    )
}

/// Reads a scenario, printing its diagnostic on failure.
pub(crate) fn load(path: &Path) -> Result<Scenario, ExitCode> {
    read(path).map_err(|e| {
        eprintln!("{:?}", miette::Report::new(e));
        ExitCode::from(2)
    })
}

/// Reads a scenario with the scenarios folder's catalog.
pub(crate) fn read(path: &Path) -> Result<Scenario, scenario::ScenarioError> {
    scenario::load(path, Some(&dir().join("catalog.toml")))
}

/// Plays one scenario on a throwaway database, which it returns for a closer look.
pub(crate) async fn play_on(scenario: &Scenario) -> anyhow::Result<(TestEnv, Outcome)> {
    play_within(scenario, scenario::SYNC_TIMEOUT).await
}

/// [`play_on`] with `sync_timeout` for a product to answer one write.
async fn play_within(
    scenario: &Scenario,
    sync_timeout: Duration,
) -> anyhow::Result<(TestEnv, Outcome)> {
    let env = scenario
        .test_env_with_sync_timeout(sync_timeout)
        .build()
        .await?;
    let outcome = scenario::run(scenario, &env).await?;
    Ok((env, outcome))
}

/// Plays one scenario on a throwaway database and writes its page.
async fn play_and_page(scenario: &Scenario, lang: Lang) -> anyhow::Result<(Outcome, String)> {
    let (env, outcome) = play_on(scenario).await?;
    let page = page(scenario, &env, &outcome, lang).await?;
    Ok((outcome, page))
}

/// The page of a scenario played on `env`.
async fn page(
    scenario: &Scenario,
    env: &TestEnv,
    outcome: &Outcome,
    lang: Lang,
) -> anyhow::Result<String> {
    let facts = report::facts(scenario, env).await?;
    let options = PageOptions {
        lang,
        ..PageOptions::default()
    };
    Ok(report::html(scenario, outcome, &facts, &options))
}

/// Writes `text` to `path`, creating its folder.
fn write_file(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("write {}", path.display()))
}

/// Writes the index page of a run into `dir`.
fn write_index(dir: &Path, rows: &[IndexRow<'_>], lang: Lang) -> anyhow::Result<()> {
    let path = dir.join("index.html");
    write_file(&path, &report::index(rows, lang))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

/// `scenario list`.
fn list(output: Output) -> anyhow::Result<ExitCode> {
    let listed: Vec<_> = files()?
        .iter()
        .map(|path| match read(path) {
            Ok(s) => serde_json::json!({"name": stem(path), "title": s.name}),
            Err(e) => serde_json::json!({"name": stem(path), "invalid": e.to_string()}),
        })
        .collect();
    output.emit(&serde_json::json!({ "scenarios": listed }), |_| {
        listed
            .iter()
            .map(|s| match (s["title"].as_str(), s["invalid"].as_str()) {
                (Some(title), _) => {
                    format!("{:<36} {title}\n", s["name"].as_str().unwrap_or_default())
                }
                (_, invalid) => format!(
                    "{:<36} INVALID: {}\n",
                    s["name"].as_str().unwrap_or_default(),
                    invalid.unwrap_or_default()
                ),
            })
            .collect()
    })?;
    Ok(ExitCode::SUCCESS)
}

/// What one scenario file gave: its verdict and what to say about it.
struct Played {
    /// The file's name without `.toml`.
    stem: String,
    /// The outcome, if the file was valid and ran.
    outcome: Option<Outcome>,
    /// The diagnostic of an invalid file.
    invalid: Option<String>,
    /// Each snapshot that differs from the run: its file and a unified diff.
    changed: Vec<(PathBuf, String)>,
    /// Seconds the run took.
    seconds: f64,
    /// What it says on stderr (its diagnostic, failures, snapshot diffs and mismatches), kept
    /// together and printed in the run's order whatever order the scenarios finish in.
    log: String,
}

impl Played {
    fn holds(&self) -> bool {
        self.outcome.as_ref().is_some_and(|o| o.holds)
    }
}

/// `scenario run NAME|FILE|--all [--format text|json|junit] [--accept] [--report DIR [--lang
/// en|ko]] [--jobs N] [--partition P]`: the `files` (`target`'s one, or all or a shard of them),
/// `jobs` at once, compared with their snapshots, printed as `format`.
fn run_scenarios(
    target: Option<&str>,
    files: Vec<PathBuf>,
    format: Format,
    settings: RunSettings<'_>,
) -> anyhow::Result<ExitCode> {
    let bar = progress_bar(files.len() as u64, target.is_none());
    // A failing outcome goes to stderr too, unless it is what stdout shows.
    let loud = target.is_none() || format != Format::Text;
    let started = Instant::now();
    let results = crate::parallel::ordered(
        &files,
        settings.jobs,
        |runtime, path| play_file(runtime, path, &settings, loud),
        |result| {
            if let Ok((one, _)) = result {
                bar.set_message(one.stem.clone());
                bar.suspend(|| eprint!("{}", one.log));
            }
            bar.inc(1);
        },
    )?;
    let mut played = Vec::with_capacity(results.len());
    let mut written = 0;
    for result in results {
        let (one, wrote) = result?;
        played.push(one);
        written += wrote;
    }
    bar.finish_and_clear();
    if let Some((dir, lang)) = settings.report {
        let index: Vec<IndexRow<'_>> = played
            .iter()
            .map(|p| IndexRow {
                stem: &p.stem,
                outcome: p.outcome.as_ref(),
            })
            .collect();
        write_index(dir, &index, lang)?;
    }
    if written > 0 {
        eprintln!("wrote {written} snapshot(s)");
    }
    print_run(format, target, &played, started.elapsed().as_secs_f64())?;
    Ok(exit_code(&played))
}

/// How `scenario run` plays each file.
struct RunSettings<'a> {
    /// `--accept`: write the snapshots that differ.
    accept: bool,
    /// `--report DIR` and the pages' language.
    report: Option<(&'a Path, Lang)>,
    /// `--jobs`: how many scenarios play at once.
    jobs: usize,
    /// `--sync-timeout`: how long a product has to answer one write.
    sync_timeout: Duration,
}

/// The progress bar of a run: drawn for `--all` on a terminal, hidden otherwise.
fn progress_bar(files: u64, all: bool) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(files);
    if all && std::io::stderr().is_terminal() {
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}")
                .expect("a valid template"),
        );
    } else {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar
}

/// One file of a run: read (an invalid one is reported and goes no further), played, its page
/// written with `--report`, compared with its snapshots when it is bundled, and what fails
/// written to its log (its outcome too when `loud`). Returns what it gave and how many snapshots
/// it wrote.
fn play_file(
    runtime: &tokio::runtime::Runtime,
    path: &Path,
    settings: &RunSettings<'_>,
    loud: bool,
) -> anyhow::Result<(Played, usize)> {
    use std::fmt::Write as _;
    let stem = stem(path);
    let scenario = match read(path) {
        Ok(s) => s,
        Err(e) => {
            let rendered = e.render();
            let played = Played {
                stem,
                outcome: None,
                invalid: Some(rendered),
                changed: Vec::new(),
                seconds: 0.0,
                log: format!("{:?}\n", miette::Report::new(e)),
            };
            return Ok((played, 0));
        }
    };
    let t = Instant::now();
    let (env, mut outcome) = runtime.block_on(play_within(&scenario, settings.sync_timeout))?;
    if let Some((dir, lang)) = settings.report {
        let page = runtime.block_on(page(&scenario, &env, &outcome, lang))?;
        write_file(&dir.join(format!("{stem}.html")), &page)?;
    }
    let mut log = String::new();
    let (changed, written) = if is_bundled(path) {
        compare_snapshots(
            runtime,
            &mut log,
            &stem,
            &env,
            &mut outcome,
            settings.accept,
        )?
    } else {
        (Vec::new(), 0)
    };
    if !outcome.holds && loud {
        log.push_str(&outcome.to_text());
    }
    for (path, diff) in &changed {
        let _ = writeln!(log, "{}:\n{diff}", shown(path));
    }
    if let Err(mismatches) = scenario.check(&outcome) {
        log.push_str(&mismatches.render());
    }
    let played = Played {
        stem,
        outcome: Some(outcome),
        invalid: None,
        changed,
        seconds: t.elapsed().as_secs_f64(),
        log,
    };
    Ok((played, written))
}

/// Compares a bundled scenario's run with its snapshots: with `accept`, writes each one missing
/// or differing; without, a missing one is reported and a differing one fails the outcome.
/// Returns each differing snapshot with its diff, and how many it wrote.
fn compare_snapshots(
    runtime: &tokio::runtime::Runtime,
    log: &mut String,
    stem: &str,
    env: &TestEnv,
    outcome: &mut Outcome,
    accept: bool,
) -> anyhow::Result<(Vec<(PathBuf, String)>, usize)> {
    let mut changed = Vec::new();
    let mut written = 0;
    let journals = runtime.block_on(scenario::snapshot::journals(env))?;
    let name = format!("{stem}.toml");
    for snap in scenario::snapshot::snapshots(&snapshots_dir(), &name, outcome, &journals) {
        let stored = snap
            .stored()
            .with_context(|| format!("read {}", snap.path.display()))?;
        match (stored, accept) {
            (Stored::Same, _) => {}
            (_, true) => {
                snap.write()
                    .with_context(|| format!("write {}", snap.path.display()))?;
                written += 1;
            }
            (Stored::Missing, false) => log.push_str(&format!(
                "{stem}: no snapshot {} yet (--accept writes it)\n",
                shown(&snap.path)
            )),
            (Stored::Changed(before), false) => {
                let (before, now) = (
                    format!("{}\n", before.trim_end()),
                    format!("{}\n", snap.body.trim_end()),
                );
                let diff = similar::TextDiff::from_lines(&before, &now)
                    .unified_diff()
                    .context_radius(3)
                    .header("stored snapshot", "this run")
                    .to_string();
                outcome.failures.push(format!(
                    "the run differs from its snapshot {} (`cargo xtask scenario run {stem} --accept` writes it)",
                    shown(&snap.path)
                ));
                outcome.holds = false;
                changed.push((snap.path.clone(), diff));
            }
        }
    }
    Ok((changed, written))
}

/// Prints a run on stdout as `format` asks: one scenario's outcome, or every scenario's.
fn print_run(
    format: Format,
    target: Option<&str>,
    played: &[Played],
    total: f64,
) -> anyhow::Result<()> {
    match (format, target) {
        (Format::Junit, _) => print!("{}", junit(played, total)),
        (Format::Json, Some(_)) => {
            println!("{}", serde_json::to_string_pretty(&played[0].outcome)?);
        }
        (Format::Json, None) => {
            let outcomes: Vec<&Outcome> =
                played.iter().filter_map(|p| p.outcome.as_ref()).collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({ "scenarios": outcomes }))?
            );
        }
        (Format::Text, Some(_)) => {
            if let Some(outcome) = &played[0].outcome {
                print!("{}", outcome.to_text());
            }
        }
        (Format::Text, None) => print_table(played, total),
    }
    Ok(())
}

/// A run's exit code: 2 when a file is invalid, else 0 when every scenario holds, else 1.
fn exit_code(played: &[Played]) -> ExitCode {
    if played.iter().any(|p| p.invalid.is_some()) {
        ExitCode::from(2)
    } else if played.iter().all(Played::holds) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The summary table of `scenario run --all`.
fn print_table(played: &[Played], total: f64) {
    // The widest name sets the column, so a long scenario name cannot push its row out.
    let width = played
        .iter()
        .map(|p| p.stem.len())
        .max()
        .unwrap_or(0)
        .max(34);
    println!("{:<width$} {:<8} {:>8}", "scenario", "result", "seconds");
    for p in played {
        let verdict = match (&p.invalid, p.holds(), p.changed.is_empty()) {
            (Some(_), _, _) => "INVALID",
            (None, true, _) => "holds",
            (None, false, false) => "SNAPSHOT",
            (None, false, true) => "FAILS",
        };
        println!("{:<width$} {verdict:<8} {:>8.2}", p.stem, p.seconds);
    }
    let held = played.iter().filter(|p| p.holds()).count();
    println!("\n{held} of {} scenarios hold ({total:.1} s)", played.len());
}

/// The run as a JUnit XML report: one `<testsuite>` of one `<testcase>` per scenario, a
/// `<failure>` for a scenario that does not hold (its failures, snapshot diffs and
/// expectations) and an `<error>` for an invalid file.
fn junit(played: &[Played], total: f64) -> String {
    let failures = played
        .iter()
        .filter(|p| p.invalid.is_none() && !p.holds())
        .count();
    let errors = played.iter().filter(|p| p.invalid.is_some()).count();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!(
        "<testsuites name=\"scenarios\" tests=\"{n}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{total:.3}\">\n\
         \x20 <testsuite name=\"scenarios\" tests=\"{n}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"0\" time=\"{total:.3}\">\n",
        n = played.len()
    ));
    for p in played {
        out.push_str(&format!(
            "    <testcase name=\"{}\" classname=\"scenarios\" time=\"{:.3}\"",
            xml(&p.stem),
            p.seconds
        ));
        match (&p.invalid, &p.outcome) {
            (Some(rendered), _) => out.push_str(&format!(
                ">\n      <error message=\"invalid scenario file\" type=\"invalid\">{}</error>\n    </testcase>\n",
                xml(rendered)
            )),
            (None, Some(o)) if !o.holds => {
                let mut text = o.failures.join("\n");
                for (path, diff) in &p.changed {
                    text.push_str(&format!("\n\n{}:\n{diff}", shown(path)));
                }
                out.push_str(&format!(
                    ">\n      <failure message=\"{}\" type=\"does not hold\">{}</failure>\n    </testcase>\n",
                    xml(o.failures.first().map_or("does not hold", String::as_str)),
                    xml(&text)
                ));
            }
            _ => out.push_str(" />\n"),
        }
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// Whether `path` is a file of the scenarios folder, whose snapshots are kept (outside the
/// workspace only when there is a snapshots folder: the bundled scenarios come without).
fn is_bundled(path: &Path) -> bool {
    let canon = |p: &Path| std::fs::canonicalize(p).ok();
    canon(path).and_then(|p| p.parent().map(Path::to_owned)) == canon(&dir())
        && (BUNDLED_IN_USE.get().is_none() || snapshots_dir().is_dir())
}

/// The snapshots folder: `HARNESS_SNAPSHOTS_DIR`, else `snapshots/` beside the scenarios folder.
fn snapshots_dir() -> PathBuf {
    match std::env::var_os("HARNESS_SNAPSHOTS_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => dir().join("../snapshots"),
    }
}

/// A path as people read it: relative to the working folder where it can be.
fn shown(path: &Path) -> String {
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_owned))
        .unwrap_or(path)
        .display()
        .to_string()
}

/// A scenario file's name without `.toml`.
pub(crate) fn stem(path: &Path) -> String {
    path.file_stem()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned()
}

/// `scenario new NAME`: a commented starting point in `scenarios/NAME.toml`.
fn new(name: &str) -> anyhow::Result<ExitCode> {
    let path = dir().join(format!("{name}.toml"));
    anyhow::ensure!(
        !path.exists(),
        "{} exists already; nothing was written",
        path.display()
    );
    std::fs::write(&path, template(name)).with_context(|| format!("write {}", path.display()))?;
    eprintln!(
        "wrote {}; run it with `cargo xtask scenario run {name}`",
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn template(name: &str) -> String {
    format!(
        r#"version = 1
name = "{name}"
start = "2026-10-01"   # the clock starts at 00:00 (Asia/Seoul) on this day
until = "2026-11-10"   # after the last step the clock runs to 00:00 of this day (close on the 1st, charge on the 5th)

# Plans come from scenarios/catalog.toml unless this file has a [catalog] table.

[[org]]
key = "acme"
card = "ok"            # ok | declined | insufficient_funds | expired | fail_times:N | timeout; omit for no card

[[tenant]]
key = "acme-analytics"
org = "acme"
product = "analytics"

[[step]]
on = "2026-10-10"
subscribe = {{ tenant = "acme-analytics", plan = "pro" }}

# Other steps: change_plan = {{ tenant, plan }}, cancel = {{ tenant }},
# usage = {{ tenant, metric, quantity }}, set_card = {{ org, card }},
# product_fault = {{ product, fault, times }}, product_drift = {{ product, tenant }}.
# A step that must fail names its error: expect_error = "plan_change_limit".
#
# Every product gets a fault-free mock; a [[product]] table changes that:
# [[product]]
# key = "analytics"
# strict = true
# faults = [{{ fault = "status_500", times = 2 }}]   # status_500 status_503 delay timeout reset reply_lost duplicate
# At until, product sync runs to idle; a product that differs from the platform fails the run.
"#
    )
}

/// `scenario report NAME|FILE [--out FILE] [--lang en|ko]`: plays the scenario and writes one
/// self-contained HTML page (default `target/scenario-reports/NAME.html`).
fn report_one(
    target: &str,
    out: Option<PathBuf>,
    lang: Lang,
    output: Output,
) -> anyhow::Result<ExitCode> {
    let path = resolve(target)?;
    let scenario = match load(&path) {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let stem = stem(&path);
    let out = out.unwrap_or_else(|| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../target/scenario-reports")
            .join(format!("{stem}.html"))
    });
    let (_, page) = crate::runtime()?.block_on(play_and_page(&scenario, lang))?;
    write_file(&out, &page)?;
    output.emit(&serde_json::json!({ "page": out }), |_| {
        format!("{}\n", out.display())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// `scenario seed NAME|FILE --database-url URL [--anchor last-month|this-month|months-ago:N]
/// [--report FILE [--lang en|ko]]`: writes the scenario into a marked QA database, shifted so
/// that its first month is the anchor month, up to the database's present (its clock), every
/// row it writes recorded under a run id as it is written; with `--report`, also the run's page
/// with today marked. See [`seed_into`].
fn seed(
    target: &str,
    url: &str,
    anchor: &Anchor,
    report: Option<(&Path, Lang)>,
    output: Output,
) -> anyhow::Result<ExitCode> {
    let path = resolve(target)?;
    let scenario = match load(&path) {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    crate::runtime()?.block_on(seed_into(&scenario, url, anchor, report, output))
}

/// A seed, in order: attach (an unmarked database is refused), take the clock lock (a seed, a
/// `clock advance` or an attach that moves the clock waits for another), read the present (the
/// database's clock), then in one transaction write the run's row, the catalog (refused with
/// every difference when the database's differs: nothing written) and, on a database with no
/// clock yet, the clock; then play the scenario from the anchor month up to the present on a
/// clock of its own, every connection recording what it inserts under the run id.
async fn seed_into(
    scenario: &Scenario,
    url: &str,
    anchor: &Anchor,
    report: Option<(&Path, Lang)>,
    output: Output,
) -> anyhow::Result<ExitCode> {
    let db = billing_harness::env::Database::builder()
        .attach(url)
        .await?;
    let marked = db.marked_for().unwrap_or("marked").to_owned();
    ensure_recording(&db, &marked).await?;
    let mut lock = crate::clock::lock(db.pool()).await?;
    let tz = scenario.catalog.time_zone;
    let (now, clock_set) = seed_now(lock.connection(), tz).await?;
    let today = billing_harness::calendar::local_day(tz, now);
    let month = anchor.month(today)?;
    let start = billing_harness::model::Month::of(scenario.start);
    let months = (month.year() - start.year()) * 12 + month.month() as i32 - start.month() as i32;
    let shifted = scenario.shifted(months);
    let run_id = format!("run-{:016x}", rand_id());
    if let Err(differences) =
        begin_run(&db, &shifted, &run_id, &anchor.text, now, clock_set).await?
    {
        eprintln!(
            "error: refusing to seed {:?}: the database's catalog (platform_settings, plans) differs from the scenario's, and a seed never changes it for everyone; nothing was written",
            shifted.name
        );
        for d in &differences {
            eprintln!("  {d}");
        }
        eprintln!(
            "  fix: seed a scenario whose catalog matches (its [catalog] table or scenarios/catalog.toml), or use another database"
        );
        lock.release().await?;
        return Ok(ExitCode::FAILURE);
    }
    // The products of a shared database may be real servers: they get the platform's own limit.
    let env = shifted
        .test_env_with_sync_timeout(billing_harness::platform::SyncPolicy::default().timeout)
        .record_run(&run_id)
        .attach(url)
        .await?;
    let options = scenario::RunOptions {
        tenant_suffix: Some(format!("-{run_id}")),
        stop_at: Some(now),
        catalog_installed: true,
    };
    let played = async {
        let outcome = scenario::run_on(&shifted, &env, &options).await?;
        let page = match report {
            Some((_, lang)) => {
                let facts = report::facts_with(&shifted, &env, &options).await?;
                let options = PageOptions {
                    lang,
                    today: Some(today),
                };
                Some(report::html(&shifted, &outcome, &facts, &options))
            }
            None => None,
        };
        anyhow::Ok((outcome, page))
    }
    .await;
    lock.release().await?;
    let (outcome, page) = played.inspect_err(|_| {
        eprintln!(
            "the rows {run_id} wrote before it failed are recorded: `cargo xtask purge --run {run_id} --database-url URL` removes them"
        );
    })?;
    let page = match (report, page) {
        (Some((file, _)), Some(page)) => {
            write_file(file, &page)?;
            Some(file)
        }
        _ => None,
    };
    let seeded = serde_json::json!({
        "run_id": run_id,
        "scenario": shifted.name,
        "database": marked,
        "shifted_months": months,
        "start": shifted.start.to_string(),
        "until": shifted.until.to_string(),
        "today": today.to_string(),
        "holds": outcome.holds,
        "applied_steps": applied_steps(&shifted, &outcome),
        "expected_errors": outcome.errors.len(),
        "later": outcome.later,
        "page": page,
    });
    output.emit(&seeded, |_| {
        let mut text = format!(
            "seeded {:?} into the {marked} database as {run_id}\n  shifted by {months} month(s): {} to {}; the database's clock is at {today}\n",
            shifted.name, shifted.start, shifted.until
        );
        text += &seeded_text(&shifted, &outcome);
        if let Some(file) = page {
            text += &format!("  page with today ({today}) marked: {}\n", file.display());
        }
        text
    })?;
    Ok(if outcome.holds {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Refuses a database marked before seeds recorded their rows as they write them: its schema
/// lacks the recording trigger's function, and a seed there would own nothing.
async fn ensure_recording(db: &billing_harness::env::Database, marked: &str) -> anyhow::Result<()> {
    let recording: bool =
        sqlx::query_scalar("select to_regprocedure('harness_record_row()') is not null")
            .fetch_one(db.pool())
            .await?;
    anyhow::ensure!(
        recording,
        "refusing to seed: the database {} was marked before seeds recorded their rows (its schema lacks harness_record_row()); nothing was written\n  fix: mark it again, which adds the missing migrations: cargo xtask db mark --env {marked} --database-url URL",
        db.name()
    );
    Ok(())
}

/// How many of a seeded scenario's steps were applied: those not left for later.
fn applied_steps(shifted: &Scenario, outcome: &Outcome) -> usize {
    shifted.steps.len()
        - outcome
            .later
            .iter()
            .filter(|l| l.starts_with("step"))
            .count()
}

/// What a seed applied and what it left for later, for people.
fn seeded_text(shifted: &Scenario, outcome: &Outcome) -> String {
    let mut text = format!(
        "  applied {} step(s); {} error(s) as expected\n",
        applied_steps(shifted, outcome),
        outcome.errors.len()
    );
    if outcome.later.is_empty() {
        text += "  nothing left for later\n";
    } else {
        text += "  left for later (dated after now):\n";
        for item in &outcome.later {
            text += &format!("    {item}\n");
        }
    }
    text
}

/// The run's row, its catalog and (`clock_set` false) the database's clock at `now`, in one
/// transaction that records what it inserts under `run_id` (`set local harness.run_id`). The
/// catalog's differences from the database's, when there are any: then nothing was written.
async fn begin_run(
    db: &billing_harness::env::Database,
    shifted: &Scenario,
    run_id: &str,
    anchor: &str,
    now: chrono::DateTime<chrono::Utc>,
    clock_set: bool,
) -> anyhow::Result<Result<(), Vec<billing_harness::platform::CatalogDifference>>> {
    let mut tx = db.pool().begin().await?;
    sqlx::query(
        "insert into harness_runs (id, scenario, seed, anchor, created_at) values ($1, $2, 1, null, $3)",
    )
    .bind(run_id)
    .bind(format!("{} (anchor {anchor})", shifted.name))
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sqlx::query("select set_config('harness.run_id', $1, true)")
        .bind(run_id)
        .execute(&mut *tx)
        .await?;
    let differences =
        billing_harness::platform::install_or_compare(&mut tx, &shifted.catalog, now).await?;
    if !differences.is_empty() {
        tx.rollback().await?;
        return Ok(Err(differences));
    }
    if !clock_set {
        billing_harness::clock::move_forward(&mut tx, now).await?;
    }
    tx.commit().await?;
    Ok(Ok(()))
}

/// The present a seed runs up to, and whether the database's clock already says it: the
/// database's clock (`harness_clock`), which a seed never moves; on a database with no clock yet,
/// noon of `HARNESS_TODAY` when it is set (so that a test, or a QA engineer rehearsing a date,
/// sees the same months on any day), else the wall clock. `HARNESS_TODAY` naming another day than
/// a database's clock is refused: the seed cannot move that clock back, nor forward past the
/// jobs `clock advance` would run.
async fn seed_now(
    conn: &mut sqlx::PgConnection,
    tz: chrono_tz::Tz,
) -> anyhow::Result<(chrono::DateTime<chrono::Utc>, bool)> {
    let asked = match std::env::var("HARNESS_TODAY") {
        Ok(day) if !day.trim().is_empty() => {
            let day: chrono::NaiveDate = day
                .trim()
                .parse()
                .map_err(|e| anyhow::anyhow!("HARNESS_TODAY={day:?} is not a date: {e}"))?;
            Some(day)
        }
        _ => None,
    };
    let Some(clock) = billing_harness::clock::database_now(conn).await? else {
        return Ok((
            match asked {
                Some(day) => {
                    billing_harness::calendar::start_of_day(tz, day) + chrono::TimeDelta::hours(12)
                }
                None => billing_harness::clock::wall_now(),
            },
            false,
        ));
    };
    let on = billing_harness::calendar::local_day(tz, clock);
    if let Some(day) = asked
        && day != on
    {
        anyhow::bail!(
            "HARNESS_TODAY={day} but the database's clock is at {} ({on} in {tz}): a seed runs up to the database's clock and never moves it\n  fix: unset HARNESS_TODAY{}",
            clock.to_rfc3339(),
            if day > on {
                format!(
                    ", or move the clock first: cargo xtask clock advance --to {day} --database-url URL"
                )
            } else {
                String::new()
            }
        );
    }
    Ok((clock, true))
}

/// A random number for a run id (the standard library's hasher keys are random per process).
fn rand_id() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one((std::process::id(), billing_harness::clock::wall_now()))
}
