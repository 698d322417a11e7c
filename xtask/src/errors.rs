//! What `cargo xtask` prints when its command line is wrong: a usage error that names the
//! argument, and never a password.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

/// `text` with the password of every URL in it hidden (see
/// [`billing_harness::env::redact_url`]): for messages that may echo what a person typed.
pub(crate) fn redact_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(sep) = rest.find("://") {
        let start = rest[..sep]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
            .map_or(0, |i| i + 1);
        let end = rest[sep..]
            .find(|c: char| c.is_whitespace() || matches!(c, '\'' | '"' | '`' | '\u{1b}'))
            .map_or(rest.len(), |i| sep + i);
        out.push_str(&rest[..start]);
        out.push_str(&billing_harness::env::redact_url(&rest[start..end]));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Prints clap's answer to a command line it did not run (help, or a usage error that names
/// the argument) with URLs redacted, and returns its exit code: 0 for help, 2 for an error.
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
    let text = if to_stderr { redact_urls(&text) } else { text };
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

    #[test]
    fn passwords_in_urls_are_hidden_wherever_they_appear() {
        assert_eq!(
            redact_urls("unexpected argument 'postgres://qa:s3cret@db/app' found"),
            "unexpected argument 'postgres://qa:***@db/app' found"
        );
        assert_eq!(
            redact_urls("a postgresql://u:p@h/x and http://k:v@h ok"),
            "a postgresql://u:***@h/x and http://k:***@h ok"
        );
        assert_eq!(redact_urls("no url here"), "no url here");
    }
}
