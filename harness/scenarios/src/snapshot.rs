//! The stored snapshots of a scenario run: its outcome and the journal of each product that
//! received a write, as files in insta's format, so that `cargo test` (through insta) and
//! `cargo xtask scenario run` compare against the same files and either can write them.
//!
//! For `scenarios/NAME.toml`, the outcome is
//! `snapshots/scenarios/every_scenario_holds_and_matches_its_snapshot@NAME.toml.snap` and a
//! product's journal `snapshots/sync/PRODUCT@NAME.toml.snap`; each body is pretty JSON, ids
//! and timestamps redacted. A journal leaves out the read-backs a product answered `200` (the
//! daily reconcile reads every product back, so they would bury the writes): the outcome counts
//! them among its `requests`, and a read-back that failed stays in.

use std::path::{Path, PathBuf};

use super::outcome::Outcome;
use billing_harness::TestEnv;
use billing_harness::platform::DomainError;
use billing_harness::products::{RedactedRequest, redacted};

/// The test whose `insta::glob!` owns the outcome snapshots; their names start with it.
pub const OUTCOME_TEST: &str = "every_scenario_holds_and_matches_its_snapshot";

/// The source file named in a snapshot's header.
const SOURCE: &str = "harness/tests/it/scenarios.rs";

/// One snapshot of a run: where it is stored, and what the run shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The `.snap` file.
    pub path: PathBuf,
    /// What the run shows (the file's body, after its header).
    pub body: String,
    /// The scenario file, as the header names it (`scenarios/NAME.toml`).
    input_file: String,
}

/// How a stored snapshot compares with a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// No file yet.
    Missing,
    /// The file holds what the run shows.
    Same,
    /// The file holds something else: its body.
    Changed(String),
}

/// The outcome as its snapshot shows it: pretty JSON, the document `scenario run --format json`
/// prints.
pub fn outcome_body(outcome: &Outcome) -> String {
    serde_json::to_string_pretty(outcome).unwrap_or_else(|e| format!("unserializable: {e}"))
}

/// A product's journal as its snapshot shows it: pretty JSON.
pub fn journal_body(journal: &[RedactedRequest]) -> String {
    serde_json::to_string_pretty(journal).unwrap_or_else(|e| format!("unserializable: {e}"))
}

/// The journal of each product mock of `env` that received a write (a `PUT` or `DELETE`),
/// redacted and without the read-backs answered `200`, by product key.
///
/// # Errors
/// The product mocks could not be listed.
pub async fn journals(env: &TestEnv) -> Result<Vec<(String, Vec<RedactedRequest>)>, DomainError> {
    let mut out = Vec::new();
    for mock in env.products().await? {
        let mut journal = mock.journal();
        if journal.iter().any(|r| r.method != "GET") {
            journal.retain(|r| r.method != "GET" || r.status != Some(200));
            out.push((mock.key().to_owned(), redacted(&journal)));
        }
    }
    Ok(out)
}

/// The snapshots of one run of the scenario file named `file_name` (`NAME.toml`), stored under
/// `root` (the workspace's `snapshots/`).
pub fn snapshots(
    root: &Path,
    file_name: &str,
    outcome: &Outcome,
    journals: &[(String, Vec<RedactedRequest>)],
) -> Vec<Snapshot> {
    let input_file = format!("scenarios/{file_name}");
    let mut out = vec![Snapshot {
        path: root
            .join("scenarios")
            .join(format!("{OUTCOME_TEST}@{file_name}.snap")),
        body: outcome_body(outcome),
        input_file: input_file.clone(),
    }];
    for (product, journal) in journals {
        out.push(Snapshot {
            path: root
                .join("sync")
                .join(format!("{product}@{file_name}.snap")),
            body: journal_body(journal),
            input_file: input_file.clone(),
        });
    }
    out
}

/// The body of a `.snap` file: what follows its header (`---` ... `---`).
fn body_of(text: &str) -> &str {
    text.strip_prefix("---\n")
        .and_then(|rest| rest.split_once("\n---\n"))
        .map_or(text, |(_, body)| body)
}

impl Snapshot {
    /// Compares the stored file with this run.
    ///
    /// # Errors
    /// The file exists but cannot be read.
    pub fn stored(&self) -> std::io::Result<Stored> {
        match std::fs::read_to_string(&self.path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Stored::Missing),
            Err(e) => Err(e),
            Ok(text) => {
                let body = body_of(&text);
                Ok(if body.trim_end() == self.body.trim_end() {
                    Stored::Same
                } else {
                    Stored::Changed(body.to_owned())
                })
            }
        }
    }

    /// Writes the file as insta does (header, then body), creating its folder.
    ///
    /// # Errors
    /// The folder or the file cannot be written.
    pub fn write(&self) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(
            &self.path,
            format!(
                "---\nsource: {SOURCE}\ninput_file: {}\n---\n{}\n",
                self.input_file,
                self.body.trim_end()
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_is_what_follows_the_header() {
        let text = "---\nsource: a.rs\ninput_file: scenarios/x.toml\n---\n{\n  \"a\": 1\n}\n";
        assert_eq!(body_of(text), "{\n  \"a\": 1\n}\n");
        assert_eq!(body_of("no header"), "no header");
    }
}
