//! The Rust mutants' side of a run: cargo-mutants, pinned, run in place over one target at a
//! time, tier after tier on the survivors of the tier before; in the workspace, and, for a run of
//! several targets, in its twin at the same time.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::accepted::Accepted;
use crate::args::MutantsArgs;
use crate::guard::Backup;
use crate::nextest::{FIRST_PROFILE, STOP_AT_FIRST_FAILURE, TEST_ENV, first_profile};
use crate::outcome::{Kind, Outcome, Status, print_not_run};
use crate::process::{self, Ended, Signals};
use crate::targets::{TARGETS, Tests, slashed, target_of};
use crate::{CARGO_MUTANTS_VERSION, PROFILE, Queue, cargo};

/// The state folder's subfolder of one cargo-mutants run: tier `tier` of target `target` (its
/// `mutants.out`, its nextest profile and its listings).
pub(crate) fn run_folder(target: usize, tier: usize) -> String {
    format!("rust-{target}-{tier}")
}

/// Brings the twin at `twin` up to the workspace at `root`: every file but `target/` and
/// `.git/` written where its text differs (an unchanged file keeps its time, so cargo rebuilds
/// only what changed), what the workspace no longer has removed (a migration renamed in the
/// workspace must not stay in the twin's schema), and, the first time, the `mutants` profile's
/// build copied in, so only the workspace's own crates build there from scratch.
///
/// The twin is cargo-mutants' `--jobs` done so that it lasts: cargo-mutants makes each job's
/// copy of the tree afresh for every run of it (one per target and tier here), without
/// `target/` and so with every dependency to build again, and it cannot copy at all in place
/// (`--in-place` conflicts with `--jobs`). The twin and its build stay from one run to the
/// next.
pub(crate) fn sync_twin(root: &Path, twin: &Path) -> anyhow::Result<()> {
    mirror(root, twin, true)?;
    let build = twin.join("target").join(PROFILE);
    if !build.exists() && root.join("target").join(PROFILE).exists() {
        std::fs::create_dir_all(twin.join("target"))?;
        let status = std::process::Command::new("cp")
            .arg("-a")
            .arg(root.join("target").join(PROFILE))
            .arg(twin.join("target"))
            .status()
            .context("copying the mutants build into the twin")?;
        anyhow::ensure!(
            status.success(),
            "copying the mutants build into the twin failed"
        );
    }
    Ok(())
}

/// Makes the folder `to` hold what `from` holds: files written where their bytes differ,
/// files and folders that `from` lacks removed; at the `top`, `target/` and `.git/` are left
/// alone on both sides.
fn mirror(from: &Path, to: &Path, top: bool) -> anyhow::Result<()> {
    let skipped = |name: &std::ffi::OsStr| top && (name == "target" || name == ".git");
    std::fs::create_dir_all(to)?;
    let mut names = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        if skipped(&name) {
            continue;
        }
        let (from, to) = (entry.path(), to.join(&name));
        if entry.file_type()?.is_dir() {
            if to.is_file() {
                std::fs::remove_file(&to)?;
            }
            mirror(&from, &to, false)?;
        } else if entry.file_type()?.is_file() {
            let text = std::fs::read(&from)?;
            if std::fs::read(&to).ok().as_deref() != Some(text.as_slice()) {
                if to.is_dir() {
                    std::fs::remove_dir_all(&to)?;
                }
                std::fs::write(&to, text).with_context(|| format!("writing {}", to.display()))?;
            }
        }
        names.insert(name);
    }
    for entry in std::fs::read_dir(to)? {
        let entry = entry?;
        let name = entry.file_name();
        if skipped(&name) || names.contains(&name) {
            continue;
        }
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        }
        .with_context(|| format!("removing {}", path.display()))?;
    }
    Ok(())
}

/// The Rust mutants' side of a run: cargo-mutants in place, with a backup of its own so that
/// it can run beside the SQL mutants.
pub(crate) struct RustRun<'a> {
    /// The tree it mutates: the workspace, or its [twin](sync_twin).
    pub(crate) root: PathBuf,
    /// The cargo target directory of a twin (else cargo's own).
    pub(crate) target_dir: Option<PathBuf>,
    /// `target/xtask-mutants`.
    pub(crate) state: &'a Path,
    /// The options.
    pub(crate) args: &'a MutantsArgs,
    /// The accepted survivors.
    pub(crate) accepted: &'a Accepted,
    /// The original text of the files cargo-mutants mutates.
    pub(crate) backup: Backup,
    /// Ctrl-C and SIGTERM.
    pub(crate) signals: Signals,
    /// The test timeout per target and tier, from each baseline as it ends.
    pub(crate) timeouts: tokio::sync::watch::Receiver<BTreeMap<(usize, usize), Duration>>,
    /// What ran.
    pub(crate) outcomes: Vec<Outcome>,
}

impl<'a> RustRun<'a> {
    /// A side mutating `root` (the workspace, or a twin with its own `target_dir`), its backup
    /// in `backup`: restores what an earlier run left there and listens for signals.
    pub(crate) fn start(
        root: &Path,
        target_dir: Option<PathBuf>,
        backup: &str,
        state: &'a Path,
        args: &'a MutantsArgs,
        accepted: &'a Accepted,
        timeouts: tokio::sync::watch::Receiver<BTreeMap<(usize, usize), Duration>>,
    ) -> anyhow::Result<RustRun<'a>> {
        let (backup, restored) = Backup::start(root, &state.join(backup))?;
        for file in &restored {
            eprintln!(
                "mutants: restored {} from a previous run's backup",
                file.display()
            );
        }
        Ok(RustRun {
            root: root.to_owned(),
            target_dir,
            state,
            args,
            accepted,
            backup,
            signals: Signals::listen()?,
            timeouts,
            outcomes: Vec::new(),
        })
    }

    /// The Rust mutants of the targets in `queue`, taken one at a time (another side may take
    /// from the same queue).
    pub(crate) async fn run(&mut self, queue: &Queue) -> anyhow::Result<()> {
        loop {
            let next = queue.borrow_mut().pop_front();
            let Some((target, files)) = next else {
                return Ok(());
            };
            self.run_target(target, &files).await?;
        }
    }

    /// The Rust mutants of `target`: one cargo-mutants run in place over its files with the
    /// first tier of tests, then one per further tier over the survivors of the one before.
    async fn run_target(&mut self, target: usize, files: &[PathBuf]) -> anyhow::Result<()> {
        let t = &TARGETS[target];
        let mut common: Vec<String> = vec![
            "mutants".into(),
            format!("--package={}", t.package),
            "--in-place".into(),
            "--test-tool=nextest".into(),
            format!("--profile={PROFILE}"),
            "--no-shuffle".into(),
            "--colors=never".into(),
        ];
        for file in files {
            common.push(format!("--file={}", slashed(file)));
            // cargo-mutants restores after each mutant; this guard covers its being killed.
            self.backup.hold(file)?;
        }
        let mut first = common.clone();
        first.extend(self.test_args(target, 0)?);
        if let Some((k, n)) = self.args.shard {
            first.push(format!("--shard={k}/{n}"));
        }
        if self.args.list {
            return self.rust_list(target, first).await;
        }
        // An accepted survivor is known to survive: counted, not run, unless asked for.
        if !self.args.run_accepted {
            let patterns = accepted_patterns(self.accepted, files);
            if !patterns.is_empty() {
                let mut list = first.clone();
                list.extend(patterns.iter().map(|p| format!("--re={p}")));
                list.push("--json".into());
                let listing = self
                    .cargo_mutants_list(&run_folder(target, 0), list)
                    .await?;
                for outcome in parse_listed(&listing, target)? {
                    print_not_run(&outcome);
                    self.outcomes.push(outcome);
                }
                first.extend(patterns.iter().map(|p| format!("--exclude-re={p}")));
            }
        }
        // The tier's baseline (shared with the SQL mutants) stands for cargo-mutants' own.
        first.extend(self.skip_baseline(target, 0).await?);
        let mut outcomes = self.cargo_mutants(target, 0, first).await?;
        for tier in 1..t.tiers.len() {
            let survivors: Vec<String> = outcomes
                .iter()
                .filter(|o| o.status == Status::Survived)
                .map(|o| o.name.clone())
                .collect();
            if survivors.is_empty() {
                break;
            }
            let mut args = common.clone();
            args.extend(self.test_args(target, tier)?);
            args.extend(self.skip_baseline(target, tier).await?);
            // The survivors only, by their exact names (the shard is already applied).
            args.extend(
                survivors
                    .iter()
                    .map(|name| format!("--re=^{}$", regex_escape(name))),
            );
            for again in self.cargo_mutants(target, tier, args).await? {
                if let Some(o) = outcomes.iter_mut().find(|o| o.name == again.name) {
                    o.status = again.status;
                    o.took += again.took;
                }
            }
        }
        self.outcomes.extend(outcomes);
        Ok(())
    }

    /// The cargo-mutants options that skip its baseline and set the timeout from ours, once
    /// the baseline (of every tier of every planned target) has run.
    ///
    /// # Errors
    /// The baseline will never come: the SQL side stopped.
    async fn skip_baseline(&mut self, target: usize, tier: usize) -> anyhow::Result<Vec<String>> {
        let timeout = self
            .timeouts
            .wait_for(|known| known.contains_key(&(target, tier)))
            .await
            .map_err(|_| anyhow::anyhow!("the baseline of {} did not run", TARGETS[target].path))?
            [&(target, tier)];
        Ok(vec![
            "--baseline=skip".to_owned(),
            format!("--timeout={}", timeout.as_secs()),
        ])
    }

    /// The cargo-mutants options that run the tests of tier `tier` of `target`
    /// ([`cargo_mutants_test_args`]), and, when the tier names tests to run
    /// [`first`](Tests::first), a nextest profile that gives them priority.
    fn test_args(&self, target: usize, tier: usize) -> anyhow::Result<Vec<String>> {
        let tests = &TARGETS[target].tiers[tier];
        let mut args = cargo_mutants_test_args(tests);
        if !tests.first.is_empty() {
            let output = self.state.join(run_folder(target, tier));
            std::fs::create_dir_all(&output)?;
            let config = output.join("nextest.toml");
            std::fs::write(&config, first_profile(tests.first))?;
            args.extend([
                format!(
                    "--cargo-test-arg=--tool-config-file=xtask:{}",
                    config.display()
                ),
                format!("--cargo-test-arg=--profile={FIRST_PROFILE}"),
            ]);
        }
        Ok(args)
    }

    /// Runs cargo-mutants with `args` for tier `tier` of `target` and reads its outcomes.
    async fn cargo_mutants(
        &mut self,
        target: usize,
        tier: usize,
        mut args: Vec<String>,
    ) -> anyhow::Result<Vec<Outcome>> {
        let output = self.state.join(run_folder(target, tier));
        std::fs::create_dir_all(&output)?;
        let _ = std::fs::remove_dir_all(output.join("mutants.out"));
        args.push(format!("--output={}", output.display()));
        let side = if self.target_dir.is_some() {
            "twin"
        } else {
            "tree"
        };
        eprintln!("mutants: [{side}] cargo {}", args.join(" "));
        let env = cargo_mutants_env(self.target_dir.as_deref());
        let (ended, _) = process::run(
            &mut self.signals,
            &cargo(),
            &args,
            &self.root,
            None,
            None,
            &env,
        )
        .await?;
        self.backup.restore_all()?;
        // 0: all caught; 2: some missed; 3: some timed out. Anything else is no result.
        anyhow::ensure!(
            matches!(ended, Ended::Exited(Some(0 | 2 | 3))),
            "cargo mutants ended with {ended:?}; see {}",
            output.join("mutants.out").display()
        );
        let json = std::fs::read_to_string(output.join("mutants.out/outcomes.json"))
            .context("reading cargo-mutants' outcomes.json")?;
        parse_outcomes(&json, target)
    }

    /// Prints what cargo-mutants would run for `target`.
    async fn rust_list(&mut self, target: usize, args: Vec<String>) -> anyhow::Result<()> {
        let listing = self
            .cargo_mutants_list(&run_folder(target, 0), args)
            .await?;
        for line in listing.lines() {
            println!("{line}  [rust]");
        }
        Ok(())
    }

    /// How many Rust mutants each target of `plan` has, from one listing of all their files.
    pub(crate) async fn counts(
        &mut self,
        plan: &BTreeMap<usize, Vec<PathBuf>>,
    ) -> anyhow::Result<BTreeMap<usize, usize>> {
        let mut args = vec!["mutants".to_owned()];
        args.extend(packages_args(plan.keys().map(|&t| TARGETS[t].package)));
        args.push("--json".to_owned());
        args.extend(
            plan.values()
                .flatten()
                .map(|file| format!("--file={}", slashed(file))),
        );
        let listing = self.cargo_mutants_list("rust-all", args).await?;
        counts_by_target(&listing)
    }

    /// What `cargo mutants --list` with `args` prints, kept in the state folder's `folder`.
    async fn cargo_mutants_list(
        &mut self,
        folder: &str,
        mut args: Vec<String>,
    ) -> anyhow::Result<String> {
        args.push("--list".into());
        let output = self.state.join(folder);
        std::fs::create_dir_all(&output)?;
        let log = output.join("list.txt");
        let _ = std::fs::remove_file(&log);
        let env = cargo_mutants_env(self.target_dir.as_deref());
        let (ended, _) = process::run(
            &mut self.signals,
            &cargo(),
            &args,
            &self.root,
            Some(&log),
            None,
            &env,
        )
        .await?;
        let listing = std::fs::read_to_string(&log).unwrap_or_default();
        anyhow::ensure!(
            ended == Ended::Exited(Some(0)),
            "cargo mutants --list failed: {listing}"
        );
        Ok(listing)
    }
}

/// cargo-mutants' `--package` options for `packages`, each once, in their first order.
pub(crate) fn packages_args<'p>(packages: impl Iterator<Item = &'p str>) -> Vec<String> {
    let mut args: Vec<String> = Vec::new();
    for package in packages {
        let arg = format!("--package={package}");
        if !args.contains(&arg) {
            args.push(arg);
        }
    }
    args
}

/// The environment of a cargo-mutants run: [`TEST_ENV`], and a twin's target directory.
pub(crate) fn cargo_mutants_env(target_dir: Option<&Path>) -> Vec<(&'static str, &str)> {
    let mut env = TEST_ENV.to_vec();
    if let Some(dir) = target_dir.and_then(Path::to_str) {
        env.push(("CARGO_TARGET_DIR", dir));
    }
    env
}

/// cargo-mutants name patterns (`--re`) of the accepted survivors of `files`: the file, any
/// line and column, the change.
pub(crate) fn accepted_patterns(accepted: &Accepted, files: &[PathBuf]) -> Vec<String> {
    let files: Vec<String> = files.iter().map(|f| slashed(f)).collect();
    accepted
        .accepted
        .iter()
        .filter(|e| files.contains(&e.file))
        .map(|e| {
            format!(
                "^{}:[0-9]+:[0-9]+: {}$",
                regex_escape(&e.file),
                regex_escape(&e.change)
            )
        })
        .collect()
}

/// The mutants of `cargo mutants --list --json` output, as accepted survivors not run.
pub(crate) fn parse_listed(listing: &str, target: usize) -> anyhow::Result<Vec<Outcome>> {
    Ok(listed_mutants(listing)?
        .iter()
        .map(|mutant| rust_outcome(mutant, target, Status::Survived, Duration::ZERO))
        .collect())
}

/// How many mutants of each target `cargo mutants --list --json` printed.
pub(crate) fn counts_by_target(listing: &str) -> anyhow::Result<BTreeMap<usize, usize>> {
    let mut counts = BTreeMap::new();
    for mutant in listed_mutants(listing)? {
        if let Some(target) = mutant["file"]
            .as_str()
            .and_then(|f| target_of(Path::new(f)))
        {
            *counts.entry(target).or_default() += 1;
        }
    }
    Ok(counts)
}

/// Orders `queue` by its targets' mutant `counts`, the most first (a target without a count
/// last; ties keep their order).
pub(crate) fn largest_first(queue: &mut [(usize, Vec<PathBuf>)], counts: &BTreeMap<usize, usize>) {
    queue.sort_by_key(|(target, _)| std::cmp::Reverse(counts.get(target).copied()));
}

/// The mutants in what `cargo mutants --list --json` printed.
pub(crate) fn listed_mutants(listing: &str) -> anyhow::Result<Vec<serde_json::Value>> {
    let start = listing
        .find('[')
        .context("cargo mutants --list --json printed no list")?;
    let mut stream = serde_json::Deserializer::from_str(&listing[start..]).into_iter();
    let value: serde_json::Value = stream
        .next()
        .context("cargo mutants --list --json printed no list")??;
    match value {
        serde_json::Value::Array(mutants) => Ok(mutants),
        _ => bail!("cargo mutants --list --json printed no list"),
    }
}

/// `text` with the regular-expression metacharacters escaped.
pub(crate) fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The cargo-mutants options that build only the test binaries of `tests` and run only its
/// tests, failing fast (the workspace's nextest profile does not). The packages of the
/// binaries are cargo-mutants' test packages (by default it tests only the mutated package,
/// whose library tests are not the integration tests).
pub(crate) fn cargo_mutants_test_args(tests: &Tests) -> Vec<String> {
    let mut args: Vec<String> = Vec::new();
    for package in tests.binaries.iter().map(|b| b.package()) {
        let arg = format!("--test-package={package}");
        if !args.contains(&arg) {
            args.push(arg);
        }
    }
    let mut targets: Vec<String> = Vec::new();
    for target in tests.binaries.iter().map(|b| b.cargo_target()) {
        let arg = format!("--cargo-arg={target}");
        if !targets.contains(&arg) {
            targets.push(arg);
        }
    }
    args.extend(targets);
    args.extend([
        format!("--cargo-test-arg={STOP_AT_FIRST_FAILURE}"),
        "--cargo-test-arg=--no-tests=fail".to_owned(),
        "--cargo-test-arg=-E".to_owned(),
        format!("--cargo-test-arg={}", tests.filter),
    ]);
    args
}

/// Installs cargo-mutants [`CARGO_MUTANTS_VERSION`] unless that version is installed.
pub(crate) fn ensure_cargo_mutants() -> anyhow::Result<()> {
    let installed = std::process::Command::new(cargo())
        .args(["mutants", "--version"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    if installed.as_deref() == Some(&format!("cargo-mutants {CARGO_MUTANTS_VERSION}")) {
        return Ok(());
    }
    eprintln!("mutants: installing cargo-mutants {CARGO_MUTANTS_VERSION}");
    let status = std::process::Command::new(cargo())
        .args([
            "install",
            "--locked",
            "cargo-mutants",
            "--version",
            CARGO_MUTANTS_VERSION,
        ])
        // Build it in cargo's temporary directory, not in the workspace's target.
        .env_remove("CARGO_TARGET_DIR")
        .status()
        .context("running cargo install")?;
    anyhow::ensure!(
        status.success(),
        "cargo install cargo-mutants {CARGO_MUTANTS_VERSION} failed"
    );
    Ok(())
}

/// The mutants of cargo-mutants' `outcomes.json` (the baseline skipped).
pub(crate) fn parse_outcomes(json: &str, target: usize) -> anyhow::Result<Vec<Outcome>> {
    let value: serde_json::Value = serde_json::from_str(json)?;
    let mut out = Vec::new();
    for outcome in value["outcomes"]
        .as_array()
        .context("outcomes.json has no outcomes")?
    {
        let Some(mutant) = outcome["scenario"].get("Mutant") else {
            continue;
        };
        let name = mutant["name"].as_str().unwrap_or_default();
        let status = match outcome["summary"].as_str().unwrap_or_default() {
            "CaughtMutant" => Status::Caught,
            "MissedMutant" => Status::Survived,
            "Unviable" => Status::Unviable,
            "Timeout" => Status::Timeout,
            other => bail!("cargo-mutants reported `{other}` for {name}"),
        };
        let took = outcome["phase_results"]
            .as_array()
            .map(|phases| {
                phases
                    .iter()
                    .filter_map(|p| p["duration"].as_f64())
                    .map(Duration::from_secs_f64)
                    .sum()
            })
            .unwrap_or_default();
        out.push(rust_outcome(mutant, target, status, took));
    }
    Ok(out)
}

/// The outcome `status` of a cargo-mutants mutant (as its JSON describes it).
pub(crate) fn rust_outcome(
    mutant: &serde_json::Value,
    target: usize,
    status: Status,
    took: Duration,
) -> Outcome {
    let file = mutant["file"].as_str().unwrap_or_default().to_owned();
    let line = mutant["span"]["start"]["line"].as_u64().unwrap_or(0) as usize;
    let column = mutant["span"]["start"]["column"].as_u64().unwrap_or(0);
    let name = mutant["name"].as_str().unwrap_or_default();
    let change = name
        .strip_prefix(&format!("{file}:{line}:{column}: "))
        .unwrap_or(name)
        .to_owned();
    Outcome {
        kind: Kind::Rust,
        target,
        file,
        line,
        change,
        name: name.to_owned(),
        status,
        took,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::{IT, LIB, LIB_AND_IT, SCENARIOS_LIB};

    #[test]
    fn the_targets_with_the_most_listed_mutants_come_first() {
        let listing = r#"Found 4 mutants
[{"file": "harness/platform/src/payments/gateway.rs"}, {"file": "harness/platform/src/platform/sync/delivery.rs"},
 {"file": "harness/platform/src/platform/sync/delivery.rs"}, {"file": "harness/platform/src/clock.rs"}]"#;
        let of = |path: &str| TARGETS.iter().position(|t| t.path == path).unwrap();
        let (sync, payments, billing) = (
            of("harness/platform/src/platform/sync/"),
            of("harness/platform/src/payments/"),
            of("harness/platform/src/billing/"),
        );
        let counts = counts_by_target(listing).unwrap();
        assert_eq!(counts, BTreeMap::from([(sync, 2), (payments, 1)]));
        let mut queue: Vec<(usize, Vec<PathBuf>)> = [billing, payments, sync]
            .into_iter()
            .map(|t| (t, Vec::new()))
            .collect();
        largest_first(&mut queue, &counts);
        let order: Vec<usize> = queue.iter().map(|(t, _)| *t).collect();
        assert_eq!(order, [sync, payments, billing]);
    }

    #[test]
    fn accepted_rust_survivors_are_listed_by_file_and_change_at_any_line() {
        let accepted = Accepted::parse(
            r#"
[[accepted]]
file = "harness/platform/src/billing/invoice.rs"
change = "replace > with >= in Invoice::has_service"
reason = "equal"

[[accepted]]
file = "harness/platform/src/platform/close.rs"
change = "replace < with <= in close"
reason = "equal"
"#,
        )
        .unwrap();
        let patterns = accepted_patterns(
            &accepted,
            &[PathBuf::from("harness/platform/src/billing/invoice.rs")],
        );
        assert_eq!(patterns.len(), 1, "only the files of the target");
        assert_eq!(
            patterns[0],
            "^harness/platform/src/billing/invoice\\.rs:[0-9]+:[0-9]+: replace > with >= in Invoice::has_service$"
        );
        let listing = r#"warning: something
[{"file": "harness/platform/src/billing/invoice.rs", "name": "harness/platform/src/billing/invoice.rs:125:17: replace > with >= in Invoice::has_service", "span": {"start": {"line": 125, "column": 17}}}]"#;
        let listed = parse_listed(listing, 0).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].line, 125);
        assert_eq!(
            listed[0].change,
            "replace > with >= in Invoice::has_service"
        );
        assert_eq!(listed[0].status, Status::Survived);
        assert!(accepted.find(&listed[0].file, &listed[0].change).is_some());
    }

    #[test]
    fn each_package_of_the_planned_targets_is_listed_once() {
        let of = |path: &str| TARGETS.iter().position(|t| t.path == path).unwrap();
        let plan = [
            of("harness/platform/src/billing/"),
            of("harness/scenarios/src/validate.rs"),
            of("harness/platform/src/purge/"),
            of("harness/throwaway-pg/src/decide/"),
        ];
        assert_eq!(
            packages_args(plan.iter().map(|&t| TARGETS[t].package)),
            [
                "--package=billing-platform",
                "--package=billing-scenarios",
                "--package=throwaway-pg"
            ]
        );
    }

    #[test]
    fn cargo_mutants_tests_the_tiers_packages() {
        let of = |binaries| {
            cargo_mutants_test_args(&Tests {
                binaries,
                filter: "test(/^x::/)",
                first: &[],
            })
        };
        assert_eq!(
            of(LIB)[..2],
            ["--test-package=billing-platform", "--cargo-arg=--lib"]
        );
        assert_eq!(
            of(IT)[..2],
            ["--test-package=harness-tests", "--cargo-arg=--test=it"]
        );
        assert_eq!(
            of(SCENARIOS_LIB)[..2],
            ["--test-package=billing-scenarios", "--cargo-arg=--lib"]
        );
        assert_eq!(
            of(LIB_AND_IT)[..4],
            [
                "--test-package=billing-platform",
                "--test-package=harness-tests",
                "--cargo-arg=--lib",
                "--cargo-arg=--test=it"
            ]
        );
        assert_eq!(
            of(IT)[2..],
            [
                "--cargo-test-arg=--max-fail=1:immediate",
                "--cargo-test-arg=--no-tests=fail",
                "--cargo-test-arg=-E",
                "--cargo-test-arg=test(/^x::/)"
            ]
        );
    }

    #[test]
    fn the_twin_gets_the_workspaces_files_and_loses_those_it_no_longer_has() {
        let scratch =
            std::env::temp_dir().join(format!("xtask-mutants-twin-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&scratch);
        let (root, twin) = (scratch.join("root"), scratch.join("twin"));
        let write = |path: &Path, text: &str| {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        write(&root.join("a/src/lib.rs"), "new");
        write(&root.join("a/migrations/2_b.sql"), "b");
        write(&root.join("target/big"), "root's build");
        write(&twin.join("a/src/lib.rs"), "old");
        write(&twin.join("a/migrations/1_a.sql"), "renamed since");
        write(&twin.join("gone/x.rs"), "removed since");
        write(&twin.join("target/mutants/kept"), "the twin's build");
        std::fs::create_dir_all(twin.join(".git")).unwrap();
        sync_twin(&root, &twin).unwrap();
        let read = |path: &str| std::fs::read_to_string(twin.join(path)).ok();
        assert_eq!(read("a/src/lib.rs").as_deref(), Some("new"));
        assert_eq!(read("a/migrations/2_b.sql").as_deref(), Some("b"));
        assert_eq!(read("a/migrations/1_a.sql"), None);
        assert!(!twin.join("gone").exists());
        assert_eq!(
            read("target/mutants/kept").as_deref(),
            Some("the twin's build")
        );
        assert_eq!(
            read("target/big"),
            None,
            "the workspace's target is not copied"
        );
        assert!(twin.join(".git").is_dir());
        let _ = std::fs::remove_dir_all(&scratch);
    }

    #[test]
    fn escaped_names_match_only_themselves() {
        assert_eq!(
            regex_escape("a.rs:1:2: replace > with >= in f -> (u8)"),
            "a\\.rs:1:2: replace > with >= in f \\-> \\(u8\\)"
        );
    }

    #[test]
    fn reads_cargo_mutants_outcomes() {
        let json = r#"{"outcomes": [
            {"scenario": "Baseline", "summary": "Success", "phase_results": []},
            {"scenario": {"Mutant": {"name": "harness/platform/src/billing/rules.rs:42:9: replace < with <= in prorate",
              "file": "harness/platform/src/billing/rules.rs", "span": {"start": {"line": 42, "column": 9}}}},
             "summary": "MissedMutant", "phase_results": [{"duration": 1.5}, {"duration": 2.0}]}
        ]}"#;
        let outcomes = parse_outcomes(json, 0).unwrap();
        assert_eq!(outcomes.len(), 1);
        assert_eq!(outcomes[0].change, "replace < with <= in prorate");
        assert_eq!(outcomes[0].line, 42);
        assert_eq!(outcomes[0].status, Status::Survived);
        assert_eq!(outcomes[0].took, Duration::from_secs_f64(3.5));
    }
}
