//! `cargo xtask`: the workspace's commands for people and CI (databases, diagnosis, benchmarks).

mod bench;
mod db;
mod fixtures;
mod mutants;
mod scenario;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  db up                start a throwaway migrated database, print its URL, keep it until Ctrl-C
  db clean             drop databases kept by failed tests and let idle servers stop
  db mark --env qa --database-url URL
                       let the harness write to a database it did not create
  doctor               say which PostgreSQL backends work here, and why the others do not
  scenario list        the scenario files under scenarios/
  scenario run NAME|FILE|--all [--format text|json]
                       play scenarios on throwaway databases; exit 1 if one fails, 2 if invalid
  scenario new NAME    write a commented starting point to scenarios/NAME.toml
  scenario seed NAME|FILE --database-url URL [--anchor last-month|this-month|months-ago:N]
                       write a scenario into a marked QA database, up to now, tagged with a run id
  scenario report NAME|FILE [--out FILE]
                       write an HTML page: the timeline and the invoices
  bench db [--json]    time template clones against create-plus-migrate, and the cold start
  bench billing [--json]
                       close one month of 10,000 subscriptions with 1,000,000 usage events
  bench scenarios [--json]
                       run every scenario once and time the lot
  bench build [--json] create 1,000 subscribed tenants with 100 usage events each via the builders
  mutants [--kind rust|sql|both] [--file PATH] [--shard K/N] [--list] [--timeout SECS]
                       mutation testing (cargo-mutants and SQL) of billing, platform and payments;
                       exit 1 if a survivor is not in mutants-accepted.toml
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["db", "up"] => db::up(),
        ["db", "clean"] => db::clean(),
        ["db", "mark", rest @ ..] => db::mark(rest),
        ["doctor"] => db::doctor(),
        ["scenario", "list"] => scenario::list(),
        ["scenario", "run", rest @ ..] => scenario::run(rest),
        ["scenario", "new", name] => scenario::new(name),
        ["scenario", "report", rest @ ..] => scenario::report(rest),
        ["scenario", "seed", rest @ ..] => scenario::seed(rest),
        ["bench", "db", rest @ ..] => bench::db(json_flag(rest)),
        ["bench", "billing", rest @ ..] => bench::billing(json_flag(rest)),
        ["bench", "build", rest @ ..] => bench::build(json_flag(rest)),
        ["bench", "scenarios", rest @ ..] => bench::scenarios(json_flag(rest)),
        ["mutants", rest @ ..] => mutants::parse_args(rest).and_then(|args| mutants::run(&args)),
        ["help" | "--help" | "-h"] | [] => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprint!("error: unknown command `{}`\n\n{USAGE}", args.join(" "));
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn json_flag(rest: &[&str]) -> Result<bool, anyhow::Error> {
    match rest {
        [] => Ok(false),
        ["--json"] => Ok(true),
        other => anyhow::bail!("unexpected arguments `{}` (only --json)", other.join(" ")),
    }
}

/// A current-thread runtime for one command.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}
