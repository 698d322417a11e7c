//! The layering rules over source text: which modules a module may refer to, what text its code
//! may hold, that every module file starts with its `//!` doc, and that `TestEnv` has no field
//! behind a Cargo feature.

use super::modules::Reference;
use super::source::{Krate, SourceFile, Violation, line_of, module_name};

/// One layering rule: code in `scope` (less `except`) refers to none of `no_modules` of its own
/// crate and holds none of `no_text`.
pub(super) struct Layer {
    pub(super) rule: &'static str,
    /// Where the rule holds: `*` (every crate), `crate` (all of it) or `crate/module` (that module
    /// and its submodules, `a::b` for a nested one).
    pub(super) scope: &'static [&'static str],
    /// Left out of `scope`, written the same way.
    pub(super) except: &'static [&'static str],
    /// Modules of the same crate the code must not refer to (with their submodules).
    pub(super) no_modules: &'static [&'static str],
    /// Text the code must not hold (comments and literals do not count).
    pub(super) no_text: &'static [&'static str],
    /// Whether `no_text` matches in any case (words rather than names).
    pub(super) any_case: bool,
    pub(super) fix: &'static str,
}

/// Whether module `module` of crate `krate` matches one of `patterns`.
fn covers(patterns: &[&str], krate: &str, module: &[String]) -> bool {
    patterns.iter().any(|p| {
        let (name, inside) = p.split_once('/').unwrap_or((p, ""));
        (name == "*" || name == krate) && under(module, inside)
    })
}

/// Whether `module` is the module written `path` (`a::b`, empty for the root) or inside it.
fn under(module: &[String], path: &str) -> bool {
    path.is_empty() || module.starts_with(&path.split("::").map(str::to_owned).collect::<Vec<_>>())
}

/// What `krate`'s library code breaks of `layer`, given its [`references`](super::modules::references).
pub(super) fn check(layer: &Layer, krate: &Krate, references: &[Reference]) -> Vec<Violation> {
    let in_scope =
        |m: &[String]| covers(layer.scope, &krate.name, m) && !covers(layer.except, &krate.name, m);
    let mut found = Vec::new();
    for r in references {
        let target = layer.no_modules.iter().find(|n| under(&r.to, n));
        if let Some(target) = target
            && in_scope(&r.from)
            && !in_scope(&r.to)
        {
            found.push(Violation {
                at: r.at.clone(),
                what: format!(
                    "`{}` refers to `{}` (`{}` of {})",
                    module_name(&r.from),
                    module_name(&r.to),
                    r.path,
                    krate.name
                ),
                rule: layer.rule,
                fix: format!("{} (`{target}` is above this module)", layer.fix),
            });
        }
    }
    for file in krate.library().filter(|f| in_scope(&f.module)) {
        found.extend(text_in(layer, file));
    }
    found
}

fn text_in(layer: &Layer, file: &SourceFile) -> Vec<Violation> {
    let mut found = Vec::new();
    for (n, line) in file.code.lines().enumerate() {
        let line = if layer.any_case {
            line.to_lowercase()
        } else {
            line.to_owned()
        };
        for needle in layer.no_text {
            if line.contains(needle) {
                found.push(Violation {
                    at: format!("{}:{}", file.path, n + 1),
                    what: format!(
                        "`{needle}` in `{}`: {}",
                        file.module_name(),
                        file.text.lines().nth(n).unwrap_or_default().trim()
                    ),
                    rule: layer.rule,
                    fix: layer.fix.to_owned(),
                });
            }
        }
    }
    found
}

/// A file that does not start with a `//!` line.
pub(super) fn module_doc(file: &SourceFile) -> Option<Violation> {
    (!file.text.starts_with("//!")).then(|| Violation {
        at: format!("{}:1", file.path),
        what: "the file does not begin with a `//!` line".to_owned(),
        rule: "every module file begins with its `//!` doc",
        fix: "start the file with `//!` lines: what the module is for, and what it must not know"
            .to_owned(),
    })
}

/// Feature-gated fields of the structs declared in `file` (the `TestEnv` files).
pub(super) fn gated_fields(file: &SourceFile) -> Vec<Violation> {
    let code = &file.code;
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = code[from..].find("struct ").map(|a| from + a) {
        let (end, body) = super::source::item_end(code, at);
        from = end;
        if !body {
            continue;
        }
        let name = code[at + 7..]
            .split(|c: char| !c.is_alphanumeric() && c != '_')
            .next();
        let fields = &code[at..end];
        let mut seen = 0;
        while let Some(cfg) = fields[seen..].find("#[cfg").map(|c| seen + c) {
            let close = super::source::close_of(fields, cfg + 1, b'[', b']');
            seen = close;
            if fields[cfg..close].contains("feature") {
                found.push(Violation {
                    at: format!("{}:{}", file.path, line_of(code, at + cfg)),
                    what: format!(
                        "a field of `{}` is behind a Cargo feature",
                        name.unwrap_or("?")
                    ),
                    rule: "TestEnv has no field behind a Cargo feature",
                    fix:
                        "every TestEnv holds every part; make the part cheap when unused (lazy, or \
                          an Option chosen by the builder) instead of a feature"
                            .to_owned(),
                });
            }
        }
    }
    found
}

#[cfg(test)]
mod planted {
    use super::*;
    use crate::architecture::LAYERS;

    fn krate(name: &str, files: &[(&str, &str)]) -> Krate {
        let files = files
            .iter()
            .map(|(p, t)| (format!("{name}/src/{p}"), (*t).to_owned()))
            .collect();
        Krate::new(name, &format!("{name}/src"), files)
    }

    fn broken(rule: &str, k: &Krate) -> Vec<String> {
        let layer = LAYERS
            .iter()
            .find(|l| l.rule == rule)
            .expect("a rule of LAYERS");
        check(layer, k, &super::super::modules::references(k))
            .iter()
            .map(|v| v.at.clone())
            .collect()
    }

    #[test]
    fn a_domain_crate_in_throwaway_pg_is_reported() {
        let k = krate(
            "throwaway-pg",
            &[
                ("lib.rs", "//! db\nmod pool;\n"),
                (
                    "pool.rs",
                    "//! pool\nuse billing_platform::model;\n// a tenant\nfn f() { let s = \"tenant\"; }\n",
                ),
            ],
        );
        assert_eq!(
            broken("throwaway-pg knows databases only, no domain", &k),
            ["throwaway-pg/src/pool.rs:2"]
        );
        let k = krate("throwaway-pg", &[("lib.rs", "//! db\nstruct Tenant;\n")]);
        assert_eq!(
            broken("throwaway-pg knows databases only, no domain", &k),
            ["throwaway-pg/src/lib.rs:2"]
        );
    }

    #[test]
    fn a_platform_import_in_the_gateway_products_or_clock_is_reported() {
        let k = krate(
            "billing-platform",
            &[
                (
                    "lib.rs",
                    "mod payments; mod products; mod clock; mod platform; mod model;\n",
                ),
                (
                    "payments/mod.rs",
                    "use crate::{model::Currency, platform::charge_due};\n",
                ),
                (
                    "products/mock.rs",
                    "fn f(p: &sqlx::PgPool) { super::super::clock::Clock::now(); }\n",
                ),
                (
                    "clock.rs",
                    "use crate::platform;\nuse crate::model::Month;\n",
                ),
                ("platform/mod.rs", "use crate::clock;\n"),
            ],
        );
        assert_eq!(
            broken("the gateway knows no platform", &k),
            ["billing-platform/src/payments/mod.rs:1"]
        );
        assert_eq!(
            broken("products know no platform and no database", &k),
            [
                "billing-platform/src/products/mock.rs:1",
                "billing-platform/src/products/mock.rs:1"
            ]
        );
        assert_eq!(
            broken("the clock knows no job", &k),
            ["billing-platform/src/clock.rs:1"]
        );
    }

    #[test]
    fn io_in_the_pure_modules_is_reported() {
        let k = krate(
            "billing-platform",
            &[
                (
                    "lib.rs",
                    "mod billing; mod model; mod platform; mod calendar;\n",
                ),
                (
                    "billing/invoice.rs",
                    "async fn f() { sqlx::query(\"\").execute(p).await; }\n",
                ),
                (
                    "model.rs",
                    "use crate::calendar::Month;\nfn g() { std::fs::read(\"x\"); }\n",
                ),
                ("platform/assemble.rs", "use super::close::Row;\n"),
                (
                    "platform/close.rs",
                    "use super::assemble;\nasync fn h() { x.await }\n",
                ),
            ],
        );
        let mut found = broken("billing rules, model and calendar do no I/O", &k);
        found.dedup();
        assert_eq!(
            found,
            [
                "billing-platform/src/platform/assemble.rs:1",
                "billing-platform/src/billing/invoice.rs:1",
                "billing-platform/src/model.rs:2",
            ]
        );
    }

    #[test]
    fn a_local_day_outside_the_calendar_is_reported() {
        let k = krate(
            "billing-harness",
            &[(
                "builders/dates.rs",
                "fn d(t: DateTime<Tz>) -> NaiveDate { t.date_naive() }\n",
            )],
        );
        assert_eq!(
            broken("local days are computed in the calendar only", &k),
            ["billing-harness/src/builders/dates.rs:1"]
        );
        let k = krate(
            "billing-platform",
            &[("calendar.rs", "fn d() { t.date_naive() }\n")],
        );
        assert!(broken("local days are computed in the calendar only", &k).is_empty());
    }

    #[test]
    fn a_file_without_its_doc_is_reported() {
        let k = krate(
            "k",
            &[
                ("a.rs", "//! a\n"),
                ("b.rs", "\n//! late\n"),
                ("c.rs", "/// item doc\n"),
            ],
        );
        let found: Vec<String> = k
            .files
            .iter()
            .filter_map(module_doc)
            .map(|v| v.at)
            .collect();
        assert_eq!(found, ["k/src/b.rs:1", "k/src/c.rs:1"]);
    }

    #[test]
    fn a_feature_gated_test_env_field_is_reported() {
        let k = krate(
            "billing-harness",
            &[(
                "test_env/mod.rs",
                "//! t\npub struct TestEnv {\n    db: Database,\n    #[cfg(feature = \"products\")]\n    mocks: Mocks,\n}\n#[cfg(feature = \"x\")]\nfn f() {}\n",
            )],
        );
        let found: Vec<String> = gated_fields(&k.files[0])
            .into_iter()
            .map(|v| v.at + " " + &v.what)
            .collect();
        assert_eq!(
            found,
            [
                "billing-harness/src/test_env/mod.rs:4 a field of `TestEnv` is behind a Cargo feature"
            ]
        );
    }
}
