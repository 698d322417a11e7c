//! Diagnostics for scenario files: every problem with its file, line, column, the offending
//! span and a hint, rendered by `miette`.

use std::ops::Range;

use miette::{Diagnostic, NamedSource, SourceSpan};

/// One problem in a scenario file.
#[derive(Debug, Clone, thiserror::Error, Diagnostic)]
#[error("{message}")]
pub struct Problem {
    message: String,
    #[label("{label}")]
    span: SourceSpan,
    label: String,
    #[help]
    help: Option<String>,
    line: usize,
    column: usize,
}

impl Problem {
    /// What is wrong.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// 1-based line of the offending text.
    pub fn line(&self) -> usize {
        self.line
    }

    /// 1-based column of the offending text.
    pub fn column(&self) -> usize {
        self.column
    }

    /// The hint, if any.
    pub fn hint(&self) -> Option<&str> {
        self.help.as_deref()
    }
}

/// Why a scenario file cannot be used: every problem found in it.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{path}: {} problem{} in the scenario", problems.len(), if problems.len() == 1 { "" } else { "s" })]
pub struct ScenarioError {
    path: String,
    #[source_code]
    source_code: NamedSource<String>,
    #[related]
    problems: Vec<Problem>,
}

impl ScenarioError {
    /// The file.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The problems, in file order.
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    /// The diagnostic as plain text (no colours), as a terminal shows it.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let handler =
            miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
                .with_width(100);
        let _ = handler.render_report(&mut out, self);
        out
    }
}

/// Collects problems while a file is checked.
#[derive(Debug)]
pub(crate) struct Problems<'s> {
    path: &'s str,
    source: &'s str,
    found: Vec<Problem>,
}

impl<'s> Problems<'s> {
    pub(crate) fn new(path: &'s str, source: &'s str) -> Problems<'s> {
        Problems {
            path,
            source,
            found: Vec::new(),
        }
    }

    /// Records a problem at `span`.
    pub(crate) fn add(
        &mut self,
        span: Range<usize>,
        message: impl Into<String>,
        label: impl Into<String>,
        help: Option<String>,
    ) {
        let (line, column) = line_col(self.source, span.start);
        self.found.push(Problem {
            message: message.into(),
            span: (span.start, span.end.saturating_sub(span.start)).into(),
            label: label.into(),
            help,
            line,
            column,
        });
    }

    /// The error, if any problem was found.
    pub(crate) fn finish(mut self) -> Result<(), ScenarioError> {
        if self.found.is_empty() {
            return Ok(());
        }
        self.found.sort_by_key(|p| p.span.offset());
        Err(ScenarioError {
            path: self.path.to_owned(),
            source_code: NamedSource::new(self.path, self.source.to_owned()),
            problems: self.found,
        })
    }
}

/// 1-based line and column of a byte offset.
fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let before = &source[..offset.min(source.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}
