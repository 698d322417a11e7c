//! The crate-level invariants, read from `cargo metadata`: which workspace crate may depend on
//! which (every kind of dependency counts: normal, dev and build), and which crate may declare
//! Cargo features.

use std::collections::BTreeSet;

use serde_json::Value;

use super::source::Violation;

/// The one crate that may declare `[features]`: the example backend, whose deliberately broken
/// builds (`flaws`) and scenario driver (`conformance`) are opt-in.
const MAY_HAVE_FEATURES: &[&str] = &["example-billing-service"];

/// What the workspace's manifests break of the crate-level invariants.
pub(super) fn check(metadata: &Value) -> Vec<Violation> {
    let packages = metadata["packages"].as_array().cloned().unwrap_or_default();
    let ours: BTreeSet<&str> = packages.iter().filter_map(|p| p["name"].as_str()).collect();
    let root = metadata["workspace_root"].as_str().map(|r| format!("{r}/"));
    let mut found = Vec::new();
    for package in &packages {
        let name = package["name"].as_str().unwrap_or_default();
        let manifest = package["manifest_path"].as_str().unwrap_or_default();
        let manifest = root
            .as_deref()
            .and_then(|r| manifest.strip_prefix(r))
            .unwrap_or(manifest);
        let deps: BTreeSet<&str> = package["dependencies"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| d["name"].as_str())
            .filter(|d| ours.contains(d))
            .collect();
        for dep in deps {
            if let Some((rule, fix)) = forbidden(name, dep) {
                found.push(Violation {
                    at: manifest.to_owned(),
                    what: format!("`{name}` depends on `{dep}`"),
                    rule,
                    fix: fix.to_owned(),
                });
            }
        }
        let features = package["features"].as_object().map_or(0, |f| f.len());
        if features > 0 && !MAY_HAVE_FEATURES.contains(&name) {
            found.push(Violation {
                at: manifest.to_owned(),
                what: format!("`{name}` declares {features} Cargo feature(s)"),
                rule: "no workspace crate declares [features] but the example backend",
                fix:
                    "remove the [features] table (and `optional = true` dependencies): a crate of \
                      the harness always builds whole; put what is optional in a crate of its own"
                        .to_owned(),
            });
        }
    }
    found
}

/// Why `package` may not depend on the workspace crate `dep`, and the fix; `None` if it may.
fn forbidden(package: &str, dep: &str) -> Option<(&'static str, &'static str)> {
    match (package, dep) {
        ("throwaway-pg", _) => Some((
            "throwaway-pg depends on no workspace crate",
            "the database crate knows databases only: move the code that needs the domain into a \
             crate above it (billing-platform or billing-harness) and pass what it needs down as \
             plain data",
        )),
        ("billing-harness-macros", _) => Some((
            "billing-harness-macros depends on no workspace crate",
            "the attribute only rewrites the test function into calls of \
             `::billing_harness::__private`: put what the expansion needs at run time there",
        )),
        ("billing-platform", d) if d != "throwaway-pg" => Some((
            "billing-platform depends on no workspace crate but throwaway-pg",
            "the reference platform knows no test-facing crate: move the code that needs it up \
             into billing-harness (TestEnv, builders) or billing-scenarios",
        )),
        (
            "billing-harness",
            "billing-scenarios" | "xtask" | "xtask-mutants" | "example-billing-service",
        ) => Some((
            "billing-harness depends on neither scenarios, xtask, the mutation tool nor the example",
            "the test-facing facade sits below QA's scenarios and the tools: move the code into \
             the crate that needs both",
        )),
        (_, "xtask") => Some((
            "nothing depends on xtask",
            "xtask is a binary of commands: move the shared code into the crate it is about \
             (billing-harness, billing-scenarios) and use it from both",
        )),
        (p, "xtask-mutants") if p != "xtask" => Some((
            "only xtask depends on xtask-mutants",
            "the mutation tool is reached through `cargo xtask mutants` only",
        )),
        _ => None,
    }
}

#[cfg(test)]
mod planted {
    use serde_json::json;

    use super::*;

    fn package(name: &str, deps: &[(&str, Option<&str>)], features: Value) -> Value {
        let deps: Vec<Value> = deps
            .iter()
            .map(|(d, kind)| json!({"name": d, "kind": kind, "path": format!("/ws/{d}")}))
            .collect();
        json!({
            "name": name,
            "manifest_path": format!("/ws/{name}/Cargo.toml"),
            "dependencies": deps,
            "features": features,
        })
    }

    fn rules(packages: Vec<Value>) -> Vec<String> {
        check(&json!({ "packages": packages }))
            .into_iter()
            .map(|v| format!("{}: {}", v.at, v.what))
            .collect()
    }

    fn today() -> Vec<Value> {
        vec![
            package("throwaway-pg", &[("sqlx", None)], json!({})),
            package("billing-platform", &[("throwaway-pg", None)], json!({})),
            package("billing-harness-macros", &[("syn", None)], json!({})),
            package(
                "billing-harness",
                &[
                    ("billing-harness-macros", None),
                    ("billing-platform", None),
                    ("throwaway-pg", None),
                ],
                json!({}),
            ),
            package("billing-scenarios", &[("billing-harness", None)], json!({})),
            package(
                "xtask",
                &[("billing-scenarios", None), ("xtask-mutants", None)],
                json!({}),
            ),
            package("xtask-mutants", &[], json!({})),
            package(
                "example-billing-service",
                &[("billing-harness", Some("dev"))],
                json!({"flaws": []}),
            ),
        ]
    }

    #[test]
    fn the_workspace_as_it_is_breaks_nothing() {
        assert_eq!(rules(today()), Vec::<String>::new());
    }

    #[test]
    fn throwaway_pg_depending_on_the_platform_is_reported() {
        let mut packages = today();
        packages[0] = package(
            "throwaway-pg",
            &[("billing-platform", Some("dev"))],
            json!({}),
        );
        assert_eq!(
            rules(packages),
            ["/ws/throwaway-pg/Cargo.toml: `throwaway-pg` depends on `billing-platform`"]
        );
    }

    #[test]
    fn the_macro_crate_depending_on_the_facade_is_reported() {
        let mut packages = today();
        packages[2] = package(
            "billing-harness-macros",
            &[("billing-harness", Some("dev")), ("syn", None)],
            json!({}),
        );
        assert_eq!(
            rules(packages),
            [
                "/ws/billing-harness-macros/Cargo.toml: `billing-harness-macros` depends on \
                 `billing-harness`"
            ]
        );
    }

    #[test]
    fn every_upward_or_tool_dependency_is_reported() {
        let mut packages = today();
        packages[1] = package(
            "billing-platform",
            &[("throwaway-pg", None), ("billing-harness", None)],
            json!({}),
        );
        packages[3] = package("billing-harness", &[("billing-scenarios", None)], json!({}));
        packages[4] = package(
            "billing-scenarios",
            &[("xtask", Some("dev")), ("xtask-mutants", None)],
            json!({}),
        );
        assert_eq!(
            rules(packages),
            [
                "/ws/billing-platform/Cargo.toml: `billing-platform` depends on `billing-harness`",
                "/ws/billing-harness/Cargo.toml: `billing-harness` depends on `billing-scenarios`",
                "/ws/billing-scenarios/Cargo.toml: `billing-scenarios` depends on `xtask`",
                "/ws/billing-scenarios/Cargo.toml: `billing-scenarios` depends on `xtask-mutants`",
            ]
        );
    }

    #[test]
    fn features_outside_the_example_are_reported() {
        let mut packages = today();
        packages[3] = package(
            "billing-harness",
            &[("billing-platform", None)],
            json!({"domain": []}),
        );
        assert_eq!(
            rules(packages),
            ["/ws/billing-harness/Cargo.toml: `billing-harness` declares 1 Cargo feature(s)"]
        );
    }
}
