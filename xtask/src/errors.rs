//! What `cargo xtask` prints when something goes wrong: an error chain with each cause once, a
//! usage error that names the argument, and never a password.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use billing_harness::env::redact_passwords;

/// `error: A` then `  caused by: B` for each further cause, one line per layer, each layer
/// saying only its own part and every password hidden (of a URL or a `key=value` string).
pub(crate) fn error_chain(error: &anyhow::Error) -> String {
    let texts: Vec<String> = error.chain().map(ToString::to_string).collect();
    let mut out = String::new();
    for (i, part) in own_parts(&texts).iter().enumerate() {
        out.push_str(if i == 0 { "error: " } else { "  caused by: " });
        out.push_str(&redact_passwords(part));
        out.push('\n');
    }
    out
}

/// The chain on one line, `A: B: C`, each cause once and every password hidden: for a
/// message that goes inside a line of its own.
pub(crate) fn inline(error: &anyhow::Error) -> String {
    let texts: Vec<String> = error.chain().map(ToString::to_string).collect();
    redact_passwords(&own_parts(&texts).join(": "))
}

/// Each layer's own part of an error chain (outermost first). Many errors (the database
/// driver's, say) repeat their cause at the end of their own message: that repetition is cut,
/// and a cause whose whole text an earlier line already gave is left out.
fn own_parts(texts: &[String]) -> Vec<String> {
    let mut parts: Vec<String> = Vec::new();
    for (i, text) in texts.iter().enumerate() {
        if parts.iter().any(|p| p.contains(text.as_str())) {
            continue;
        }
        let own = match texts.get(i + 1) {
            Some(next) if !next.is_empty() && text.ends_with(next.as_str()) => text
                [..text.len() - next.len()]
                .trim_end_matches(|c: char| c == ':' || c.is_whitespace())
                .to_owned(),
            _ => text.clone(),
        };
        if !own.is_empty() {
            parts.push(own);
        }
    }
    parts
}

/// Prints clap's answer to a command line it did not run (help, or a usage error that names
/// the argument) with passwords hidden, and returns its exit code: 0 for help, 2 for an error.
pub(crate) fn usage_error(error: &clap::Error) -> ExitCode {
    let to_stderr = error.use_stderr();
    let styled = if to_stderr {
        std::io::stderr().is_terminal()
    } else {
        std::io::stdout().is_terminal()
    };
    let rendered = error.render();
    let text = if styled {
        rendered.ansi().to_string()
    } else {
        rendered.to_string()
    };
    // Only an error can echo what was typed; help is ours alone.
    let text = if to_stderr {
        redact_passwords(&text)
    } else {
        text
    };
    // A closed pipe (`cargo xtask --help | head`) is no reason to fail differently.
    let _ = if to_stderr {
        std::io::stderr().write_all(text.as_bytes())
    } else {
        std::io::stdout().write_all(text.as_bytes())
    };
    ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(2))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(texts: &[&str]) -> Vec<String> {
        own_parts(&texts.iter().map(|t| t.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn a_cause_repeated_at_the_end_of_each_layer_is_said_once() {
        // The shape of sqlx's migration error over a database error.
        let exists = "relation \"organizations\" already exists";
        let db = format!("error returned from database: {exists}");
        let migration = format!("while executing migration 1: {db}");
        let texts = [
            "could not migrate the template from the bundled platform schema",
            &migration,
            &db,
            exists,
        ];
        assert_eq!(
            parts(&texts),
            [
                "could not migrate the template from the bundled platform schema",
                "while executing migration 1",
                "error returned from database",
                exists,
            ]
        );
    }

    #[test]
    fn a_cause_already_inside_an_earlier_line_is_left_out() {
        assert_eq!(
            parts(&["could not start (disk full) at once", "disk full"]),
            ["could not start (disk full) at once"]
        );
        // A transparent layer (same text as its cause) prints once.
        assert_eq!(parts(&["boom", "boom"]), ["boom"]);
    }

    #[test]
    fn the_chain_prints_one_line_per_layer() {
        let e = anyhow::anyhow!("inner").context("middle").context("outer");
        assert_eq!(
            error_chain(&e),
            "error: outer\n  caused by: middle\n  caused by: inner\n"
        );
        assert_eq!(inline(&e), "outer: middle: inner");
    }

    #[test]
    fn passwords_are_hidden_wherever_they_appear_in_the_chain() {
        let e = anyhow::anyhow!("connect to postgres://qa:s3cret@db/app refused")
            .context("could not read host=db user=qa password='s3 cret' dbname=app");
        let chain = error_chain(&e);
        assert!(
            !chain.contains("s3cret") && !chain.contains("s3 cret"),
            "{chain}"
        );
        assert!(
            chain.contains("qa:***@db") && chain.contains("password=***"),
            "{chain}"
        );
        assert!(!inline(&e).contains("s3"), "{}", inline(&e));
    }
}
