//! The architecture invariants of ARCHITECTURE.md, checked on the workspace as it is: the crate
//! graph from `cargo metadata`, and every `.rs` file under every crate's `src/`, recursively. A
//! failure names the file, the rule and the fix.
//!
//! Each check is a pure function over metadata or source text (the submodules), tested in its
//! own `planted` module on inputs that break it, so that a rule that stops catching what it is for
//! fails too.

mod crates;
mod functions;
mod layers;
mod modules;
mod source;

use layers::Layer;
use source::{Violation, assert_none, workspace};

/// The module-level layering rules.
const LAYERS: &[Layer] = &[
    Layer {
        rule: "throwaway-pg knows databases only, no domain",
        scope: &["throwaway-pg"],
        except: &[],
        no_modules: &[],
        no_text: &[
            "billing_platform",
            "billing_harness",
            "billing_scenarios",
            "example_billing_service",
            "testenv",
            "invoice",
            "subscription",
            "tenant",
            "organization",
            "gateway",
            "contract",
            "dunning",
            "charge",
            "purge",
        ],
        any_case: true,
        fix: "keep the domain above the database crate: do it in billing-platform or \
              billing-harness, and give throwaway-pg plain settings (a Schema, a Config)",
    },
    Layer {
        rule: "the gateway knows no platform",
        scope: &["billing-platform/payments"],
        except: &[],
        no_modules: &["platform", "clock", "purge"],
        no_text: &["billing_harness"],
        any_case: false,
        fix: "charging and dunning are platform operations over a `Gateway`: put the code in \
              `platform` and call the gateway from there",
    },
    Layer {
        rule: "products know no platform and no database",
        scope: &["billing-platform/products"],
        except: &[],
        no_modules: &["platform", "clock", "purge", "payments"],
        no_text: &["sqlx", "billing_harness", "TestEnv"],
        any_case: false,
        fix: "what to send a product and when (outbox, dispatcher, reconciler) is \
              `platform::sync`: move the code there and give the products module plain documents",
    },
    Layer {
        rule: "the clock knows no job",
        scope: &["billing-platform/clock"],
        except: &[],
        no_modules: &["platform", "payments", "products", "purge"],
        no_text: &["billing_harness"],
        any_case: false,
        fix: "the clock runs the `Jobs` it is given: register the job from the platform \
              (`platform::jobs`) instead of naming it in the clock",
    },
    Layer {
        rule: "billing rules, model and calendar do no I/O",
        scope: &[
            "billing-platform/billing",
            "billing-platform/model",
            "billing-platform/calendar",
            "billing-platform/platform::assemble",
        ],
        except: &[],
        no_modules: &["clock", "platform", "payments", "products", "purge", "http"],
        no_text: &[
            "sqlx::query",
            "PgPool",
            "PgConnection",
            "tokio",
            ".await",
            "async ",
            "std::fs",
            "std::net",
            "std::process",
            "reqwest",
            "hyper",
            "axum",
            "throwaway_pg",
        ],
        any_case: false,
        fix: "take values in and return values out: read and write in the platform operation \
              that calls the pure function (as `platform::close` does around `assemble`)",
    },
    Layer {
        rule: "local days are computed in the calendar only",
        scope: &["*"],
        except: &[
            "billing-platform/calendar",
            "example-billing-service/calendar",
        ],
        no_modules: &[],
        no_text: &[
            "date_naive()",
            "from_local_datetime",
            "and_hms_opt(0, 0, 0)",
        ],
        any_case: false,
        fix: "use `calendar::local_day` and `calendar::start_of_day` (the example backend has \
              its own `calendar` module)",
    },
];

/// The import cycles between sibling modules found today, per crate (full module paths). Another
/// change is removing them: this list must only shrink. A cycle not in it fails the test, and so
/// does an entry that no longer matches a cycle found (remove or shrink it).
const KNOWN_CYCLES: &[(&str, &[&str])] = &[];

/// The functions of library code found today with a body over 120 lines, as (file, function).
/// This list must only shrink: a new long function fails the test, and so does an entry that is
/// now short or gone (remove it).
const KNOWN_LONG: &[(&str, &str)] = &[];

/// ARCHITECTURE.md stays a map: at most 300 lines, the rest in each module's `//!` doc.
#[test]
fn the_map_stays_a_map() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let map = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let lines = map.lines().count();
    assert!(
        lines <= 300,
        "ARCHITECTURE.md has {lines} lines, over 300\n    fix: move file-level detail into the modules' `//!` docs"
    );
}

#[test]
fn crates_depend_downwards_and_only_the_example_has_features() {
    assert_none(&crates::check(&workspace().metadata));
}

#[test]
fn modules_keep_their_layers() {
    let mut found = Vec::new();
    for krate in &workspace().crates {
        let references = modules::references(krate);
        for layer in LAYERS {
            found.extend(layers::check(layer, krate, &references));
        }
    }
    assert_none(&found);
}

#[test]
fn every_module_file_begins_with_its_doc() {
    let found: Vec<Violation> = workspace()
        .crates
        .iter()
        .flat_map(|k| k.files.iter().filter_map(layers::module_doc))
        .collect();
    assert_none(&found);
}

#[test]
fn test_env_has_no_feature_gated_field() {
    let harness = workspace()
        .crates
        .iter()
        .find(|k| k.name == "billing-harness")
        .expect("the billing-harness crate");
    let files = harness
        .library()
        .filter(|f| f.module.first().is_some_and(|m| m == "test_env"));
    let found: Vec<Violation> = files.flat_map(layers::gated_fields).collect();
    assert_none(&found);
}

#[test]
fn no_import_cycle_but_the_known_ones() {
    let found: Vec<modules::Cycle> = workspace()
        .crates
        .iter()
        .flat_map(modules::cycles)
        .collect();
    assert_none(&modules::cycles_against(&found, KNOWN_CYCLES));
}

#[test]
fn no_function_over_120_lines_but_the_known_ones() {
    let found: Vec<functions::Function> = workspace()
        .crates
        .iter()
        .flat_map(functions::long)
        .collect();
    assert_none(&functions::long_against(&found, KNOWN_LONG));
}
