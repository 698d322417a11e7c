//! `mutants-accepted.toml`: the survivors that are truly equivalent, each with a one-line reason,
//! keyed by file and the change's text (never by line number alone, which moves with any edit).

use std::path::Path;

use anyhow::Context;
use serde::Deserialize;

/// The file at the workspace root.
pub(crate) const FILE: &str = "mutants-accepted.toml";

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Accepted {
    /// The entries, in file order.
    #[serde(default)]
    pub(crate) accepted: Vec<Entry>,
}

/// One accepted survivor.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(crate) struct Entry {
    /// The mutated file, relative to the workspace root.
    pub(crate) file: String,
    /// The change exactly as the survivor list prints it after `file:line:`.
    pub(crate) change: String,
    /// Why no test can tell the mutant from the code: one line.
    pub(crate) reason: String,
}

impl Accepted {
    /// Reads the file at `path`; a missing file accepts nothing.
    ///
    /// # Errors
    /// The file is not valid TOML of this shape, or an entry has an empty or multi-line reason.
    pub(crate) fn load(path: &Path) -> anyhow::Result<Accepted> {
        let Ok(text) = std::fs::read_to_string(path) else {
            return Ok(Accepted::default());
        };
        Accepted::parse(&text).with_context(|| format!("reading {}", path.display()))
    }

    /// Parses the file's text.
    ///
    /// # Errors
    /// As [`Accepted::load`].
    pub(crate) fn parse(text: &str) -> anyhow::Result<Accepted> {
        let accepted: Accepted = toml::from_str(text)?;
        for entry in &accepted.accepted {
            let reason = entry.reason.trim();
            anyhow::ensure!(
                !reason.is_empty() && !reason.contains('\n'),
                "the entry for `{}` in {} needs a one-line reason",
                entry.change,
                entry.file
            );
        }
        Ok(accepted)
    }

    /// The entry that accepts the survivor `change` of `file`.
    pub(crate) fn find(&self, file: &str, change: &str) -> Option<&Entry> {
        self.accepted
            .iter()
            .find(|e| e.file == file && e.change == change)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_match_on_file_and_change_and_need_a_reason() {
        let accepted = Accepted::parse(
            "[[accepted]]\nfile = \"a.rs\"\nchange = \"replace < with <= in `x < 1`\"\n\
             reason = \"x is never 1\"\n",
        )
        .unwrap();
        assert!(
            accepted
                .find("a.rs", "replace < with <= in `x < 1`")
                .is_some()
        );
        assert!(
            accepted
                .find("b.rs", "replace < with <= in `x < 1`")
                .is_none()
        );
        assert!(
            accepted
                .find("a.rs", "replace < with <= in `x < 2`")
                .is_none()
        );
        assert!(
            Accepted::parse("[[accepted]]\nfile = \"a.rs\"\nchange = \"c\"\nreason = \" \"\n")
                .is_err()
        );
        assert!(Accepted::parse("[[accepted]]\nfile = \"a.rs\"\nchange = \"c\"\n").is_err());
        assert!(Accepted::parse("").unwrap().accepted.is_empty());
    }

    #[test]
    fn every_accepted_survivor_is_in_a_file_under_mutation() {
        let root = crate::workspace_root();
        let accepted = Accepted::load(&root.join(FILE)).unwrap();
        assert!(!accepted.accepted.is_empty(), "{FILE} was read");
        for entry in &accepted.accepted {
            let file = Path::new(&entry.file);
            assert!(root.join(file).is_file(), "{} does not exist", entry.file);
            assert!(
                crate::targets::target_of(file).is_some(),
                "{} is in no target",
                entry.file
            );
        }
    }
}
