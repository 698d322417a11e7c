//! `cargo xtask images`: the local container images the `container` backends use, built without
//! a registry and named by content hash, so that a second run skips what exists.

mod product_mock;

use std::process::ExitCode;

/// Builds every image (skipping those that exist) and prints each name with the variable that
/// selects it.
pub(crate) fn run() -> anyhow::Result<ExitCode> {
    let docker = "docker";
    let product_mock = product_mock::build(docker)?;
    println!("HARNESS_PRODUCT_MOCK_IMAGE={product_mock}");
    Ok(ExitCode::SUCCESS)
}
