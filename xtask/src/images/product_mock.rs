//! The product-mock image: the `harness-product-mock` binary, its shared libraries and the dynamic
//! loader on an otherwise empty root file system, imported with `docker import` (no registry, no
//! base image) and named `billing-harness/product-mock:<hash of those files>`.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

use super::{RootFs, present};
use crate::workspace_root;

/// The image's repository; the tag is the content hash.
pub(crate) const REPOSITORY: &str = "billing-harness/product-mock";

/// Builds the binary and imports the image unless an image of the same content exists; returns
/// the image's name. Progress goes to standard error.
pub(crate) fn build(work: &std::path::Path) -> anyhow::Result<String> {
    let binary = build_binary()?;
    let stripped = work.join("harness-product-mock");
    std::fs::create_dir_all(work)?;
    let status = Command::new("strip")
        .arg("-o")
        .arg(&stripped)
        .arg(&binary)
        .status()
        .context("run strip (binutils)")?;
    if !status.success() {
        bail!("strip failed on {}", binary.display());
    }
    let mut root = RootFs::new(&work.join("product-mock"))?;
    root.place(&stripped, "/harness-product-mock")?;
    root.copy_libraries(&binary)?;
    // On every address inside the container (the engine's forwarding arrives on its own
    // interface); the harness publishes the port on the machine's 127.0.0.1 only.
    let changes = [
        r#"ENTRYPOINT ["/harness-product-mock", "--host", "0.0.0.0"]"#,
        "EXPOSE 8080",
        "LABEL billing-harness.image=product-mock",
    ];
    let name = format!("{REPOSITORY}:{}", root.hash(&changes.join("\n"))?);
    if present(&name) {
        eprintln!("{name}: present, skipped");
    } else {
        root.import(&name, &changes)?;
        eprintln!("{name}: built");
    }
    Ok(name)
}

/// `cargo build -p harness-product-mock`; the executable's path.
fn build_binary() -> anyhow::Result<PathBuf> {
    eprintln!("product-mock: cargo build --bin harness-product-mock");
    let mut command = crate::cargo_command();
    let mut child = command
        .args([
            "build",
            "-p",
            "harness-product-mock",
            "--message-format=json-render-diagnostics",
        ])
        .current_dir(workspace_root())
        .stdout(Stdio::piped())
        .spawn()
        .context("run cargo build")?;
    let mut executable = None;
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines() {
            let line = line.context("read cargo's output")?;
            let Ok(message) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if let Some(path) = message["executable"].as_str()
                && message["target"]["name"] == "harness-product-mock"
            {
                executable = Some(PathBuf::from(path));
            }
        }
    }
    if !child.wait().context("wait for cargo build")?.success() {
        bail!("cargo build of harness-product-mock failed");
    }
    executable.context("cargo build named no harness-product-mock executable")
}
