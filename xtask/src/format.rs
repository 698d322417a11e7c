//! How `scenario run` prints its results, with or without `--driver`: the formats, and the
//! escaping of text for their JUnit XML. Below `scenario` and `conformance`, which both print.

/// How `scenario run` prints its outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// Tables for people.
    Text,
    /// One JSON document.
    Json,
    /// A JUnit XML report, as CI systems display test results.
    Junit,
}

/// Escapes text for XML attributes and content.
pub(crate) fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 allows no other control characters (miette's output has none but tabs).
            c if c.is_control() && c != '\n' && c != '\t' && c != '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// How a command other than `scenario run` prints its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Plain {
    /// Lines for people.
    Text,
    /// One JSON document on stdout; progress and logs stay on stderr.
    Json,
}

/// `--format text|json`, which every command that prints a result takes.
#[derive(Debug, Clone, Copy, clap::Args)]
pub(crate) struct Output {
    /// `text` for people, `json` for one JSON document on stdout (logs stay on stderr).
    #[arg(long, value_enum, default_value_t = Plain::Text)]
    pub(crate) format: Plain,
}

impl Output {
    /// Whether the result is one JSON document.
    pub(crate) fn json(self) -> bool {
        self.format == Plain::Json
    }

    /// Prints `value` as one JSON document, or as `text` gives it for people.
    pub(crate) fn emit<T: serde::Serialize>(
        self,
        value: &T,
        text: impl FnOnce(&T) -> String,
    ) -> anyhow::Result<()> {
        match self.format {
            Plain::Json => println!("{}", serde_json::to_string(value)?),
            Plain::Text => print!("{}", text(value)),
        }
        Ok(())
    }
}
