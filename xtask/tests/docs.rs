//! The book's command reference (`docs/reference/cli.md`) is what the commands accept: it is
//! generated from their clap definitions, and this fails when the checked-in page is stale.

use std::process::Command;

#[test]
fn the_command_reference_is_what_the_commands_say() {
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["docs", "--check"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docs/reference/cli.md is stale; regenerate it with `cargo xtask docs`\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_visible_command_has_a_section() {
    let page = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/reference/cli.md"
    ))
    .unwrap();
    for command in [
        "scenario run",
        "scenario seed",
        "clock advance",
        "purge",
        "bench adopt",
        "docs",
    ] {
        assert!(
            page.contains(&format!("`cargo xtask {command}`\n\n```text\n")),
            "no section for {command}"
        );
    }
    assert!(!page.contains("db-child"), "a hidden command is listed");
}

/// The book's pages (`docs/**/*.md`), with their path relative to `docs/`.
fn pages() -> Vec<(String, String)> {
    let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
    let mut pages = Vec::new();
    let mut folders = vec![docs.clone()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                let name = path.strip_prefix(&docs).unwrap().display().to_string();
                pages.push((name, std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    pages
}

#[test]
fn every_rust_block_of_the_book_is_compiled_as_a_doctest() {
    let lib = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../harness/scenarios/src/lib.rs"
    ))
    .unwrap();
    let pages = pages();
    assert!(pages.len() > 10, "the book's pages: {}", pages.len());
    for (name, text) in pages {
        let fences = text
            .lines()
            .map(str::trim_start)
            .filter(|l| l.starts_with("```"));
        for (i, fence) in fences.enumerate().filter(|(i, _)| i % 2 == 0) {
            let lang = fence.trim_start_matches('`');
            assert!(
                !lang.is_empty(),
                "docs/{name}: opening fence {} has no language (rustdoc would compile it as Rust)",
                i / 2 + 1
            );
            assert!(
                !lang.contains("ignore"),
                "docs/{name}: an `ignore` block is never compiled: make it compile (`no_run`) or `text`"
            );
        }
        if text.contains("```rust") {
            assert!(
                lib.contains(&format!("include_str!(\"../../../docs/{name}\")")),
                "docs/{name} has Rust blocks but is not in `mod book` of harness/scenarios/src/lib.rs"
            );
        }
    }
}
