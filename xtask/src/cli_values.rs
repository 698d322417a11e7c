//! Every value-taking argument of every command, given generated strings: clap accepts each or
//! refuses it as a usage error (exit 2) that names the argument, never a panic; and what it
//! accepts goes through the conversions that follow the parse (an anchor to a month, `--to` and
//! `--by` to an instant) without a panic.

use std::ffi::OsString;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};
use proptest::prelude::*;

use crate::clock::today;
use crate::{Cli, Command};

/// A valid value for each argument id that has no list of possible values: the rest of a
/// command line around the argument under test. A new option needs an entry here (the
/// `every_argument_has_a_valid_value` test says which).
fn valid(id: &str) -> Option<String> {
    let day = || today().to_string();
    Some(match id {
        "database_url" => "postgres://qa@127.0.0.1:1/app".into(),
        "env" => "qa".into(),
        "target" | "targets" => "holds".into(),
        "report" | "out" => "target/out".into(),
        "lang" => "en".into(),
        "name" => "new-one".into(),
        "anchor" => "last-month".into(),
        "file" => "contract.toml".into(),
        "to" => day(),
        "by" => "1d".into(),
        "email" => "someone@example.com".into(),
        "org" => "1".into(),
        "run" => "run-1".into(),
        "rounds" => "1".into(),
        "shard" => "0/1".into(),
        "timeout" => "60".into(),
        "jobs" => "2".into(),
        "partition" => "count:1/2".into(),
        "sync_timeout" => "50".into(),
        _ => return None,
    })
}

/// Arguments that are required unless another is given (clap has no getter for that): the
/// first is supplied unless the test is about either.
const REQUIRED_UNLESS: &[(&str, &str)] = &[("to", "by")];

/// Arguments that need another of their required group (`--partition` conflicts with a
/// target, so it needs `--all`): the second is supplied with the first, for the group.
const REQUIRES: &[(&str, &str)] = &[("partition", "all")];

/// One value-taking argument of one command, with what must surround it.
#[derive(Debug, Clone)]
struct Slot {
    /// The subcommand path, `["clock", "advance"]`.
    path: Vec<String>,
    /// The argument's id.
    id: String,
    /// `--long`, or `None` for a positional.
    long: Option<String>,
    /// How clap names it in errors: `--long` or `<NAME>`.
    named: String,
    /// The other arguments the command needs, valid.
    rest: Vec<String>,
}

impl Slot {
    /// The command lines that give `value` to the argument: `--long=VALUE` and `--long VALUE`
    /// for an option, `VALUE` and `-- VALUE` for a positional. The first of each pair always
    /// reaches the value's parser.
    fn lines(&self, value: &str) -> [(Vec<OsString>, bool); 2] {
        let head: Vec<OsString> = std::iter::once("xtask")
            .chain(self.path.iter().map(String::as_str))
            .chain(self.rest.iter().map(String::as_str))
            .map(OsString::from)
            .collect();
        let with = |tail: &[&str]| {
            let mut line = head.clone();
            line.extend(tail.iter().map(OsString::from));
            line
        };
        match &self.long {
            Some(long) => [
                (with(&[&format!("{long}={value}")]), true),
                (with(&[long, value]), false),
            ],
            None => [(with(&["--", value]), true), (with(&[value]), false)],
        }
    }
}

/// Every value-taking argument of every leaf command, each with the valid arguments its command
/// needs besides it.
fn slots() -> &'static [Slot] {
    static SLOTS: std::sync::OnceLock<Vec<Slot>> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| {
        let mut out = Vec::new();
        walk(&Cli::command(), &mut Vec::new(), &mut out);
        out
    })
}

fn walk(cmd: &clap::Command, path: &mut Vec<String>, out: &mut Vec<Slot>) {
    if cmd.has_subcommands() {
        for sub in cmd.get_subcommands() {
            path.push(sub.get_name().to_owned());
            walk(sub, path, out);
            path.pop();
        }
        return;
    }
    for arg in cmd.get_arguments() {
        if !arg.get_action().takes_values() || arg.get_id() == "help" {
            continue;
        }
        let id = arg.get_id().as_str();
        let named = match arg.get_long() {
            Some(long) => format!("--{long}"),
            None => format!(
                "<{}>",
                arg.get_value_names()
                    .and_then(|n| n.first())
                    .map_or_else(|| id.to_uppercase(), ToString::to_string)
            ),
        };
        out.push(Slot {
            path: path.clone(),
            id: id.to_owned(),
            long: arg.get_long().map(|l| format!("--{l}")),
            named,
            rest: rest_of(cmd, id),
        });
    }
}

/// The valid arguments `cmd` needs besides `testing`: its required ones, what [`REQUIRES`] says
/// `testing` needs, the first of each required group that neither `testing` nor those are in,
/// and [`REQUIRED_UNLESS`].
fn rest_of(cmd: &clap::Command, testing: &str) -> Vec<String> {
    let mut needed: Vec<&str> = cmd
        .get_arguments()
        .filter(|a| a.is_required_set() && a.get_id() != testing)
        .map(|a| a.get_id().as_str())
        .collect();
    needed.extend(
        REQUIRES
            .iter()
            .filter(|(id, _)| *id == testing)
            .map(|(_, needs)| *needs),
    );
    for group in cmd.get_groups().filter(|g| g.is_required_set()) {
        let members: Vec<&str> = group.get_args().map(|a| a.as_str()).collect();
        if !members.contains(&testing)
            && !members.iter().any(|m| needed.contains(m))
            && let Some(first) = members.first()
        {
            needed.push(first);
        }
    }
    for (id, unless) in REQUIRED_UNLESS {
        if cmd.get_arguments().any(|a| a.get_id() == *id) && ![*id, *unless].contains(&testing) {
            needed.push(id);
        }
    }
    let mut rest = Vec::new();
    for id in needed {
        let Some(arg) = cmd.get_arguments().find(|a| a.get_id() == id) else {
            continue;
        };
        let value = arg.get_action().takes_values().then(|| valid_value(arg));
        match (arg.get_long(), value) {
            (Some(long), Some(value)) => rest.push(format!("--{long}={value}")),
            (Some(long), None) => rest.push(format!("--{long}")),
            (None, Some(value)) => rest.push(value),
            (None, None) => {}
        }
    }
    rest
}

/// A valid value for the argument of `slot`.
fn valid_for(slot: &Slot) -> String {
    let cmd = slot.path.iter().fold(Cli::command(), |cmd, name| {
        cmd.find_subcommand(name)
            .cloned()
            .expect("a subcommand of the tree")
    });
    let arg = cmd
        .get_arguments()
        .find(|a| a.get_id() == slot.id.as_str())
        .expect("an argument of the command");
    valid_value(arg)
}

/// A valid value for `arg`: the first of its possible values, else [`valid`]'s.
fn valid_value(arg: &clap::Arg) -> String {
    let id = arg.get_id().as_str();
    arg.get_possible_values()
        .first()
        .map(|p| p.get_name().to_owned())
        .or_else(|| valid(id))
        .unwrap_or_else(|| panic!("no valid value for {id}: add one to valid()"))
}

/// Checks one command line: parsed, it converts without a panic; refused, clap's error is a
/// usage error (exit 2, or 0 for help) that names the argument when `names` is set.
fn check(line: &[OsString], slot: &Slot, names: bool) -> Result<(), TestCaseError> {
    match Cli::try_parse_from(line) {
        Ok(cli) => {
            convert(&cli);
            Ok(())
        }
        Err(e) => {
            let text = e.render().to_string();
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                prop_assert_eq!(e.exit_code(), 0, "{:?}: {}", line, text);
                return Ok(());
            }
            prop_assert_eq!(e.exit_code(), 2, "{:?}: {}", line, text);
            prop_assert!(text.starts_with("error: "), "{:?}: {}", line, text);
            if names {
                prop_assert!(
                    text.contains(&slot.named),
                    "{:?} should name {}: {}",
                    line,
                    slot.named,
                    text
                );
            }
            Ok(())
        }
    }
}

/// Instants a QA database's clock might read, to the ends of what it can hold.
fn clocks() -> [DateTime<Utc>; 4] {
    [
        billing_harness::clock::wall_now(),
        DateTime::<Utc>::MIN_UTC,
        DateTime::<Utc>::MAX_UTC,
        DateTime::<Utc>::UNIX_EPOCH,
    ]
}

/// Time zones with the largest offsets either way, and one whose midnights a change skips.
const ZONES: [chrono_tz::Tz; 3] = [
    chrono_tz::Pacific::Kiritimati,
    chrono_tz::Pacific::Pago_Pago,
    chrono_tz::America::Santiago,
];

/// The conversions after the parse, with the values clap accepted: each returns, never panics.
fn convert(cli: &Cli) {
    match &cli.command {
        Some(Command::Qa(crate::Qa::Clock(crate::clock::Command::Advance { to, by, .. }))) => {
            for now in clocks() {
                for zone in ZONES {
                    let _ = crate::clock::target(now, zone, *to, *by);
                }
            }
        }
        Some(Command::Qa(crate::Qa::Scenario(crate::scenario::Command::Seed {
            anchor, ..
        }))) => {
            for today in [today(), NaiveDate::MIN, NaiveDate::MAX] {
                let _ = anchor.month(today);
            }
        }
        Some(Command::Mutants(opts)) => {
            let _ = xtask_mutants::MutantsArgs::from(opts);
        }
        _ => {}
    }
}

/// Strings of every kind a person or a script might pass.
fn values() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "\\PC{0,16}",
        Just(String::new()),
        "-{1,2}[a-z-]{0,10}(=[a-z0-9]{0,4})?",
        any::<i128>().prop_map(|n| n.to_string()),
        (any::<i64>(), "[dhmsw일시]?").prop_map(|(n, unit)| format!("{n}{unit}")),
        (any::<u64>(), "[dh]").prop_map(|(n, unit)| format!("{n}{unit}")),
        "[0-9]{1,3}(일|시간|d|h)",
        "(this|last)-month|months-ago:[+-]?[0-9]{0,22}|months-ago:\\PC{0,4}",
        "[+-]?[0-9]{1,6}-[0-9]{1,3}-[0-9]{1,3}",
        prop_oneof![
            Just("9999-12-31"),
            Just("-262143-01-01"),
            Just("+262142-12-31")
        ]
        .prop_map(str::to_owned),
        "[0-9]{1,12}/[0-9]{1,12}",
        "(postgres|postgresql|mysql|http)://[a-z%@:0-9]{0,12}@[a-z.:0-9%]{0,12}/[a-z?=&%]{0,10}",
        "(host|user|password|dbname|port) ?= ?('[^']{0,6}'|[a-z0-9]{0,6})( [a-z]+=[a-z]+){0,2}",
        "[a-z_-]{1,12}(\\.toml)?|\\.\\./[a-z/]{0,10}",
    ]
}

#[test]
fn every_argument_has_a_valid_value_and_its_command_parses_with_it() {
    let slots = slots();
    assert!(slots.len() > 20, "{slots:?}");
    for slot in slots {
        let value = valid_for(slot);
        for (line, _) in slot.lines(&value) {
            if let Err(e) = Cli::try_parse_from(&line) {
                panic!("{line:?} should parse: {}", e.render());
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    #[test]
    fn no_argument_value_panics_and_a_refused_one_is_a_usage_error_that_names_it(
        pick in any::<prop::sample::Index>(),
        value in values(),
    ) {
        let slots = slots();
        let slot = &slots[pick.index(slots.len())];
        for (line, names) in slot.lines(&value) {
            check(&line, slot, names)?;
        }
    }
}

#[test]
fn the_values_the_issue_names_are_refused_as_usage_errors() {
    let slots = slots();
    let slot = |path: &[&str], id: &str| {
        slots
            .iter()
            .find(|s| s.path == path && s.id == id)
            .unwrap_or_else(|| panic!("no {id} in {path:?}"))
            .clone()
    };
    for (slot, value) in [
        (slot(&["clock", "advance"], "by"), "3일"),
        (slot(&["clock", "advance"], "by"), "99999999999999d"),
        (slot(&["clock", "advance"], "to"), "9999-12-31"),
        (
            slot(&["scenario", "seed"], "anchor"),
            "months-ago:99999999999",
        ),
        (slot(&["scenario", "seed"], "anchor"), "months-ago:241"),
        (
            slot(&["db", "mark"], "database_url"),
            "host=db password=s3cret",
        ),
        (slot(&["purge"], "org"), "0"),
        (slot(&["mutants"], "timeout"), "18446744073709551615"),
        (slot(&["scenario", "new"], "name"), "../escape"),
    ] {
        let (line, _) = &slot.lines(value)[0];
        let e = Cli::try_parse_from(line).expect_err(value);
        let text = e.render().to_string();
        assert_eq!(e.exit_code(), 2, "{text}");
        assert!(text.contains(&slot.named), "{text}");
    }
    let by = |text: &str| crate::clock::duration(text).unwrap_err();
    assert!(by("3일").contains("unknown unit \"일\""), "{}", by("3일"));
}

#[test]
fn the_conversions_after_the_parse_refuse_what_would_overflow() {
    let seoul = chrono_tz::Asia::Seoul;
    let now = billing_harness::clock::wall_now();
    let target = crate::clock::target;
    assert!(
        target(
            DateTime::<Utc>::MAX_UTC,
            seoul,
            None,
            Some(TimeDelta::hours(1))
        )
        .is_err()
    );
    let far = target(DateTime::<Utc>::MIN_UTC, seoul, Some(today()), None)
        .unwrap_err()
        .to_string();
    assert!(far.contains("more than 7320 days"), "{far}");
    assert_eq!(
        target(now, seoul, None, Some(TimeDelta::days(3))).unwrap(),
        now + TimeDelta::days(3)
    );
    let anchor: crate::scenario::Anchor = "months-ago:240".parse().unwrap();
    assert!(anchor.month(NaiveDate::MIN).is_err());
    let today = NaiveDate::from_ymd_opt(2026, 3, 31).unwrap();
    assert_eq!(
        anchor.month(today).unwrap(),
        billing_harness::model::Month::new(2006, 3).unwrap()
    );
}

#[test]
fn a_move_of_exactly_twenty_years_is_allowed_and_a_second_more_is_not() {
    let seoul = chrono_tz::Asia::Seoul;
    let now = DateTime::<Utc>::from_timestamp(1_790_000_000, 0).unwrap();
    let most = TimeDelta::days(crate::clock::MAX_DAYS);
    assert_eq!(
        crate::clock::target(now, seoul, None, Some(most)).unwrap(),
        now + most
    );
    let over = crate::clock::target(now, seoul, None, Some(most + TimeDelta::seconds(1)));
    assert!(
        over.unwrap_err()
            .to_string()
            .contains("more than 7320 days")
    );
}

#[test]
fn a_day_exactly_twenty_years_away_is_allowed_and_a_day_more_is_not() {
    let today = NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
    let most = TimeDelta::days(crate::clock::MAX_DAYS);
    for edge in [today + most, today - most] {
        let text = edge.format("%Y-%m-%d").to_string();
        assert_eq!(crate::clock::day_from(&text, today), Ok(edge));
    }
    for beyond in [
        today + most + TimeDelta::days(1),
        today - most - TimeDelta::days(1),
    ] {
        let text = beyond.format("%Y-%m-%d").to_string();
        let refused = crate::clock::day_from(&text, today).unwrap_err();
        assert!(refused.contains("at most 7320 days"), "{refused}");
    }
}
