//! What a failed test prints about its kept database: where it is, how to open it, and how to
//! drop kept databases with what an adopter has (the harness's API, an environment variable, and
//! `cargo xtask db clean` only when the tests run inside this workspace, where that command
//! exists).

use std::path::{Path, PathBuf};

/// The note of a failed test whose database `name` was kept; `psql` opens it.
pub(crate) fn kept(name: &str, psql: &str) -> String {
    kept_with(name, psql, in_this_workspace())
}

fn kept_with(name: &str, psql: &str, in_workspace: bool) -> String {
    format!(
        "billing-harness: kept database {name} of the failed test; open it with:\n  {psql}\n  {}",
        hint(in_workspace)
    )
}

/// How to drop kept databases, as one line for notes and error messages.
pub(crate) fn drop_kept_hint() -> String {
    hint(in_this_workspace())
}

fn hint(in_workspace: bool) -> String {
    let mut hint = "drop kept databases with HARNESS_DROP_KEPT=1 on the next test run, or \
                    `billing_harness::env::drop_kept(None)` in code"
        .to_owned();
    if in_workspace {
        hint.push_str(" (here: `cargo xtask db clean`)");
    }
    hint
}

/// Whether the tests run inside the workspace of the harness itself (where `cargo xtask` is):
/// the crate whose tests run (`CARGO_MANIFEST_DIR`, else the working directory) lies in the
/// folder this crate was built from, and that folder has the `xtask` crate. A backend repository
/// that depends on the harness (by path, by git or from a registry) is elsewhere.
fn in_this_workspace() -> bool {
    let Some(root) = Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2) else {
        return false;
    };
    let here = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::current_dir().ok());
    root.join("xtask").join("Cargo.toml").is_file()
        && here.is_some_and(|here| here.starts_with(root))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PSQL: &str = "psql 'postgres://postgres@127.0.0.1:5433/bh_1'";

    #[test]
    fn an_adopters_note_names_psql_the_variable_and_the_api_but_no_xtask() {
        assert_eq!(
            kept_with("bh_1", PSQL, false),
            "billing-harness: kept database bh_1 of the failed test; open it with:\n  \
             psql 'postgres://postgres@127.0.0.1:5433/bh_1'\n  \
             drop kept databases with HARNESS_DROP_KEPT=1 on the next test run, or \
             `billing_harness::env::drop_kept(None)` in code"
        );
    }

    #[test]
    fn inside_this_workspace_the_note_adds_cargo_xtask_db_clean() {
        let note = kept_with("bh_1", PSQL, true);
        assert!(note.ends_with(" (here: `cargo xtask db clean`)"), "{note}");
        // This crate's own tests run inside the workspace.
        assert!(in_this_workspace());
    }
}
