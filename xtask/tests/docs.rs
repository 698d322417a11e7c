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
