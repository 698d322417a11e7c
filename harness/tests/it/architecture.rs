//! The layering rules of ARCHITECTURE.md, checked on the source: a module that starts to import
//! a layer above it fails here, with the file and line.

use std::path::{Path, PathBuf};

fn sources(dir: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(dir);
    if root.is_file() {
        return vec![root];
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("read {}: {e}", root.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    files.sort();
    files
}

/// Every line of the files under `dir` that mentions one of `needles`, as `file:line: text`.
fn mentions(dir: &str, needles: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for file in sources(dir) {
        let text = std::fs::read_to_string(&file).expect("a source file");
        for (n, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            if needles.iter().any(|needle| line.contains(needle)) {
                found.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    found
}

#[test]
fn env_knows_no_domain() {
    let found = mentions(
        "env",
        &[
            "crate::builders",
            "crate::platform",
            "crate::payments",
            "crate::products",
            "crate::scenario",
            "crate::billing",
            "crate::TestEnv",
        ],
    );
    assert!(
        found.is_empty(),
        "env/ must know databases only:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_gateway_knows_no_platform() {
    let found = mentions(
        "payments",
        &["crate::platform", "crate::clock", "crate::builders"],
    );
    assert!(
        found.is_empty(),
        "payments/ must not use the platform:\n{}",
        found.join("\n")
    );
}

#[test]
fn products_know_no_platform() {
    let found = mentions(
        "products",
        &[
            "crate::platform",
            "crate::clock",
            "crate::builders",
            "crate::payments",
            "crate::TestEnv",
            "sqlx",
        ],
    );
    assert!(
        found.is_empty(),
        "products/ must not use the platform or a database:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_clock_knows_no_job() {
    let found = mentions(
        "clock.rs",
        &["crate::platform", "crate::payments", "crate::builders"],
    );
    assert!(
        found.is_empty(),
        "the clock runs registered jobs only:\n{}",
        found.join("\n")
    );
}

#[test]
fn billing_model_and_calendar_do_no_io() {
    let io = [
        "sqlx::query",
        "PgPool",
        "PgConnection",
        "tokio::",
        ".await",
        "std::fs",
        "std::net",
        "crate::env",
        "crate::clock",
    ];
    for dir in ["billing", "model.rs", "calendar.rs", "platform/assemble.rs"] {
        let found = mentions(dir, &io);
        assert!(
            found.is_empty(),
            "{dir} must stay pure:\n{}",
            found.join("\n")
        );
    }
}

#[test]
fn local_days_are_computed_in_the_calendar_only() {
    let mut found = Vec::new();
    for dir in [
        "builders", "platform", "scenario", "clock.rs", "test_env", "products", "payments",
    ] {
        found.extend(mentions(
            dir,
            &[
                "date_naive()",
                "from_local_datetime",
                "and_hms_opt(0, 0, 0)",
            ],
        ));
    }
    assert!(
        found.is_empty(),
        "use calendar::local_day and calendar::start_of_day:\n{}",
        found.join("\n")
    );
}
