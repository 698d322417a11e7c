//! Reading scenario and catalog files: the two stages, [`super::raw`] (the TOML as written) then
//! [`super::validate`] (what it means), from text or from a path.

use std::path::Path;

use super::diagnostic::{Problems, ScenarioError};
use super::raw::{RawCatalog, RawScenario, from_toml};
use super::validate::{self, Scenario};
use billing_harness::model::Catalog;

/// Reads a scenario from `source` (`path` names it in diagnostics), using `default_catalog`
/// when it has no `[catalog]` table.
///
/// # Errors
/// Every problem found, with spans.
pub fn parse(
    path: &str,
    source: &str,
    default_catalog: Option<&Catalog>,
) -> Result<Scenario, ScenarioError> {
    let raw: RawScenario = from_toml(path, source)?;
    validate::scenario(path, source, raw, default_catalog)
}

/// Reads a catalog file (the whole file is one catalog: settings and `[[plan]]` entries).
///
/// # Errors
/// Every problem found, with spans.
pub fn parse_catalog(path: &str, source: &str) -> Result<Catalog, ScenarioError> {
    let raw: RawCatalog = from_toml(path, source)?;
    let mut problems = Problems::new(path, source);
    let catalog = validate::catalog(&mut problems, &raw);
    problems.finish()?;
    Ok(catalog)
}

/// Reads the scenario file at `path`. Its default catalog is `catalog_file` if given, else the
/// `catalog.toml` beside it, if any.
///
/// # Errors
/// The file cannot be read (a problem without a span), or its problems.
pub fn load(path: &Path, catalog_file: Option<&Path>) -> Result<Scenario, ScenarioError> {
    let shown = path.display().to_string();
    let source = read(path)?;
    let catalog_path =
        catalog_file.map_or_else(|| path.with_file_name("catalog.toml"), Path::to_owned);
    let catalog = if catalog_path.is_file() {
        Some(parse_catalog(
            &catalog_path.display().to_string(),
            &read(&catalog_path)?,
        )?)
    } else {
        None
    };
    parse(&shown, &source, catalog.as_ref())
}

fn read(path: &Path) -> Result<String, ScenarioError> {
    std::fs::read_to_string(path).map_err(|e| {
        let shown = path.display().to_string();
        let mut problems = Problems::new(&shown, "");
        problems.add(0..0, format!("cannot read {shown}: {e}"), "", None);
        problems
            .finish()
            .expect_err("cannot fail: one problem was just added")
    })
}
