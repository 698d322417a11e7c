//! `scenario run --driver NAME`: scenarios through another billing implementation (the example
//! backend, or one of its deliberately broken builds), compared with the reference platform in
//! the same run.

use std::path::PathBuf;
use std::process::ExitCode;

use billing_scenarios::{self as scenario, Conformance, RunError, Verdict};
use example_billing_service::Flaw;
use example_billing_service::conformance::Example;

use crate::format::{Format, xml};

/// The implementations `--driver` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum DriverChoice {
    /// The example backend (`examples/billing-service`).
    Example,
    /// The example backend prorating by 30 days instead of the month's days (a planted bug).
    #[value(name = "example-prorate-by-30-days")]
    ExampleProrateBy30Days,
    /// The example backend retrying a failed charge a day late (a planted bug).
    ExampleRetrySkipsADay,
}

/// Runs `files` through `driver` and the reference, `jobs` scenarios at once; prints the comparison as `format` asks.
/// Exits 0 when no scenario differs, 1 when one does, 2 when a file is not a valid scenario.
pub(crate) fn run(
    driver: DriverChoice,
    files: &[PathBuf],
    format: Format,
    jobs: usize,
) -> anyhow::Result<ExitCode> {
    let example = match driver {
        DriverChoice::Example => Example::new(),
        DriverChoice::ExampleProrateBy30Days => Example::with_flaw(Flaw::ProrateBy30Days),
        DriverChoice::ExampleRetrySkipsADay => Example::with_flaw(Flaw::RetrySkipsADay),
    };
    let started = std::time::Instant::now();
    // Canonical paths: the report names each file without `xtask/..`. Every file is read before
    // any is played: an invalid one fails the run at once.
    let mut scenarios = Vec::with_capacity(files.len());
    for file in files {
        let file = std::fs::canonicalize(file).unwrap_or_else(|_| file.clone());
        match scenario::load(&file, None) {
            Ok(s) => scenarios.push(s),
            Err(e) => {
                eprintln!("{:?}", miette::Report::new(e));
                return Ok(ExitCode::from(2));
            }
        }
    }
    let results = crate::parallel::ordered(
        &scenarios,
        jobs,
        |runtime, s| runtime.block_on(scenario::conform(&example, s)),
        |_| {},
    )?;
    let report = Conformance {
        driver: scenario::Driver::name(&example).to_owned(),
        scenarios: results.into_iter().collect::<Result<_, RunError>>()?,
    };
    match format {
        Format::Text => print!("{}", report.to_text()),
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Format::Junit => print!("{}", junit(&report, started.elapsed().as_secs_f64())),
    }
    Ok(if report.conforms() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The comparison as a JUnit XML report: one test case per scenario, a `<failure>` with every
/// difference for one that differs, `<skipped>` for one the driver cannot play.
fn junit(report: &Conformance, total: f64) -> String {
    let (_, differs, unsupported) = report.counts();
    let n = report.scenarios.len();
    let suite = xml(&format!("conformance of {}", report.driver));
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!(
        "<testsuites name=\"{suite}\" tests=\"{n}\" failures=\"{differs}\" errors=\"0\" time=\"{total:.3}\">\n\
         \x20 <testsuite name=\"{suite}\" tests=\"{n}\" failures=\"{differs}\" errors=\"0\" skipped=\"{unsupported}\" time=\"{total:.3}\">\n"
    ));
    for s in &report.scenarios {
        let name = std::path::Path::new(&s.path)
            .file_stem()
            .map_or_else(|| s.path.clone(), |n| n.to_string_lossy().into_owned());
        out.push_str(&format!(
            "    <testcase name=\"{}\" classname=\"conformance\"",
            xml(&name)
        ));
        match &s.verdict {
            Verdict::Conforms => out.push_str(" />\n"),
            Verdict::Unsupported { what } => out.push_str(&format!(
                ">\n      <skipped message=\"{} has no {}\" />\n    </testcase>\n",
                xml(&report.driver),
                xml(what)
            )),
            Verdict::Differs => {
                let mut lines: Vec<String> =
                    s.differences.iter().map(ToString::to_string).collect();
                lines.extend(s.failures.iter().cloned());
                out.push_str(&format!(
                    ">\n      <failure message=\"{}\" type=\"differs\">{}</failure>\n    </testcase>\n",
                    xml(lines.first().map_or("differs", String::as_str)),
                    xml(&lines.join("\n"))
                ));
            }
        }
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}
