//! Malformed scenario files: each gives a precise diagnostic (file, line, column, the span and a
//! hint), snapshotted as a terminal shows it.

use billing_scenarios as scenario;

const VALID: &str = r#"version = 1
name = "valid"
start = "2026-10-01"
until = "2026-11-10"

[[org]]
key = "acme"
card = "ok"

[[tenant]]
key = "acme-analytics"
org = "acme"
product = "analytics"

[[step]]
on = "2026-10-10"
subscribe = { tenant = "acme-analytics", plan = "pro" }

[[step]]
on = "2026-10-20"
change_plan = { tenant = "acme-analytics", plan = "business" }
"#;

/// The malformed files: each is the valid one with one edit (`from` replaced by `to`).
const CASES: &[(&str, &str, &str)] = &[
    (
        "usage_day_after_its_step",
        r#"change_plan = { tenant = "acme-analytics", plan = "business" }"#,
        r#"usage = { tenant = "acme-analytics", metric = "api_calls", quantity = 5, day = "2026-10-21" }"#,
    ),
    (
        "unknown_plan",
        r#"plan = "business""#,
        r#"plan = "enterprise""#,
    ),
    (
        "unknown_metric",
        r#"change_plan = { tenant = "acme-analytics", plan = "business" }"#,
        r#"usage = { tenant = "acme-analytics", metric = "bandwidth", quantity = 5 }"#,
    ),
    (
        "metric_of_another_product",
        r#"change_plan = { tenant = "acme-analytics", plan = "business" }"#,
        r#"usage = { tenant = "acme-analytics", metric = "contacts", quantity = 5 }"#,
    ),
    (
        "unknown_tenant",
        r#"{ tenant = "acme-analytics", plan = "pro" }"#,
        r#"{ tenant = "globex", plan = "pro" }"#,
    ),
    (
        "unknown_org_of_tenant",
        "org = \"acme\"\nproduct",
        "org = \"initech\"\nproduct",
    ),
    (
        "unknown_product",
        r#"product = "analytics""#,
        r#"product = "warehouse""#,
    ),
    (
        "bad_start_date",
        r#"start = "2026-10-01""#,
        r#"start = "2026-13-01""#,
    ),
    (
        "bad_until_date",
        r#"until = "2026-11-10""#,
        r#"until = "next month""#,
    ),
    (
        "bad_step_date",
        r#"on = "2026-10-10""#,
        r#"on = "10/10/2026""#,
    ),
    (
        "until_before_start",
        r#"until = "2026-11-10""#,
        r#"until = "2026-09-30""#,
    ),
    (
        "dates_out_of_order",
        r#"on = "2026-10-20""#,
        r#"on = "2026-10-05""#,
    ),
    (
        "step_before_start",
        r#"on = "2026-10-10""#,
        r#"on = "2026-09-10""#,
    ),
    (
        "step_after_until",
        r#"on = "2026-10-20""#,
        r#"on = "2026-12-20""#,
    ),
    (
        "unknown_top_level_field",
        "name = \"valid\"",
        "name = \"valid\"\nowner = \"qa\"",
    ),
    (
        "unknown_step_field",
        r#"on = "2026-10-10""#,
        "on = \"2026-10-10\"\nwhen = \"later\"",
    ),
    (
        "unknown_action_field",
        r#"plan = "business" }"#,
        r#"plan = "business", prorate = false }"#,
    ),
    ("misspelled_action", "change_plan = {", "chnage_plan = {"),
    ("wrong_type_version", "version = 1", "version = \"one\""),
    (
        "wrong_type_quantity",
        r#"subscribe = { tenant = "acme-analytics", plan = "pro" }"#,
        r#"usage = { tenant = "acme-analytics", metric = "api_calls", quantity = "many" }"#,
    ),
    ("unsupported_version", "version = 1", "version = 2"),
    ("missing_name", "name = \"valid\"\n", ""),
    ("missing_until", "until = \"2026-11-10\"\n", ""),
    ("missing_step_date", "on = \"2026-10-20\"\n", ""),
    ("unknown_card", r#"card = "ok""#, r#"card = "visa""#),
    (
        "bad_fail_times",
        r#"card = "ok""#,
        r#"card = "fail_times:x""#,
    ),
    (
        "unknown_error_code",
        r#"plan = "business" }"#,
        "plan = \"business\" }\nexpect_error = \"too_expensive\"",
    ),
    (
        "two_actions_in_a_step",
        r#"subscribe = { tenant = "acme-analytics", plan = "pro" }"#,
        "subscribe = { tenant = \"acme-analytics\", plan = \"pro\" }\ncancel = { tenant = \"acme-analytics\" }",
    ),
    (
        "no_action_in_a_step",
        "subscribe = { tenant = \"acme-analytics\", plan = \"pro\" }\n",
        "",
    ),
    (
        "duplicate_tenant",
        "[[step]]\non = \"2026-10-10\"",
        "[[tenant]]\nkey = \"acme-analytics\"\norg = \"acme\"\nproduct = \"analytics\"\n\n[[step]]\non = \"2026-10-10\"",
    ),
    (
        "duplicate_org",
        "[[tenant]]",
        "[[org]]\nkey = \"acme\"\n\n[[tenant]]",
    ),
    (
        "set_card_unknown_org",
        r#"change_plan = { tenant = "acme-analytics", plan = "business" }"#,
        r#"set_card = { org = "umbrella", card = "ok" }"#,
    ),
    ("not_toml", "[[org]]", "[[org]"),
    ("empty_name", "name = \"valid\"", "name = \"  \""),
    (
        "inline_catalog_bad_fee",
        "[[org]]",
        "[catalog]\n[[catalog.plan]]\nkey = \"pro\"\nproduct = \"analytics\"\nbase_fee = \"ninety\"\n\n[[catalog.plan]]\nkey = \"business\"\nproduct = \"analytics\"\nbase_fee = \"290000\"\n\n[[org]]",
    ),
    (
        "inline_catalog_bad_currency",
        "[[org]]",
        "[catalog]\ncurrency = \"EUR\"\n[[catalog.plan]]\nkey = \"pro\"\nproduct = \"analytics\"\nbase_fee = \"1\"\n[[catalog.plan]]\nkey = \"business\"\nproduct = \"analytics\"\nbase_fee = \"2\"\n\n[[org]]",
    ),
    (
        "inline_catalog_zero_block",
        "[[org]]",
        "[catalog]\n[[catalog.plan]]\nkey = \"pro\"\nproduct = \"analytics\"\nbase_fee = \"1\"\noverage = { api_calls = { block = 0, price = \"5\" } }\n[[catalog.plan]]\nkey = \"business\"\nproduct = \"analytics\"\nbase_fee = \"2\"\n\n[[org]]",
    ),
    (
        "inline_catalog_duplicate_plan",
        "[[org]]",
        "[catalog]\n[[catalog.plan]]\nkey = \"pro\"\nproduct = \"analytics\"\nbase_fee = \"1\"\n[[catalog.plan]]\nkey = \"pro\"\nproduct = \"analytics\"\nbase_fee = \"2\"\n\n[[org]]",
    ),
    (
        "product_table_unknown_product",
        "[[step]]\non = \"2026-10-10\"",
        "[[product]]\nkey = \"warehouse\"\n\n[[step]]\non = \"2026-10-10\"",
    ),
    (
        "product_table_unknown_fault",
        "[[step]]\non = \"2026-10-10\"",
        "[[product]]\nkey = \"analytics\"\nfaults = [{ fault = \"status_404\", times = 1 }]\n\n[[step]]\non = \"2026-10-10\"",
    ),
    (
        "product_table_times_zero",
        "[[step]]\non = \"2026-10-10\"",
        "[[product]]\nkey = \"analytics\"\nfaults = [{ fault = \"reset\", times = 0 }]\n\n[[step]]\non = \"2026-10-10\"",
    ),
    (
        "product_table_rate_above_one",
        "[[step]]\non = \"2026-10-10\"",
        "[[product]]\nkey = \"analytics\"\nfault_rate = 1.5\nfault_seed = 7\n\n[[step]]\non = \"2026-10-10\"",
    ),
    (
        "product_table_rate_below_zero",
        "[[step]]\non = \"2026-10-10\"",
        "[[product]]\nkey = \"analytics\"\nfault_rate = -0.1\n\n[[step]]\non = \"2026-10-10\"",
    ),
    (
        "product_table_seed_without_rate",
        "[[step]]\non = \"2026-10-10\"",
        "[[product]]\nkey = \"analytics\"\nfault_seed = 7\n\n[[step]]\non = \"2026-10-10\"",
    ),
    (
        "product_table_unknown_field",
        "[[step]]\non = \"2026-10-10\"",
        "[[product]]\nkey = \"analytics\"\nretries = 3\n\n[[step]]\non = \"2026-10-10\"",
    ),
    (
        "product_table_twice",
        "[[step]]\non = \"2026-10-10\"",
        "[[product]]\nkey = \"analytics\"\n\n[[product]]\nkey = \"analytics\"\nstrict = true\n\n[[step]]\non = \"2026-10-10\"",
    ),
    (
        "product_outage_from_not_a_time",
        "[[step]]\non = \"2026-10-10\"",
        "[[product]]\nkey = \"analytics\"\noutage = { from = \"tomorrow\", until = \"2026-10-11\" }\n\n[[step]]\non = \"2026-10-10\"",
    ),
    (
        "product_outage_ends_before_it_starts",
        "[[step]]\non = \"2026-10-10\"",
        "[[product]]\nkey = \"analytics\"\noutage = { from = \"2026-10-12T09:00\", until = \"2026-10-12T08:30\" }\n\n[[step]]\non = \"2026-10-10\"",
    ),
    (
        "product_outage_past_until",
        "[[step]]\non = \"2026-10-10\"",
        "[[product]]\nkey = \"analytics\"\noutage = { from = \"2026-11-08\", until = \"2026-11-10T06:00\" }\n\n[[step]]\non = \"2026-10-10\"",
    ),
    (
        "product_outage_fault_applies_the_write",
        "[[step]]\non = \"2026-10-10\"",
        "[[product]]\nkey = \"analytics\"\noutage = { from = \"2026-10-12\", until = \"2026-10-13\", fault = \"duplicate\" }\n\n[[step]]\non = \"2026-10-10\"",
    ),
    (
        "product_outage_unknown_fault",
        "[[step]]\non = \"2026-10-10\"",
        "[[product]]\nkey = \"analytics\"\noutage = { from = \"2026-10-12\", until = \"2026-10-13\", fault = \"down\" }\n\n[[step]]\non = \"2026-10-10\"",
    ),
    (
        "product_outage_unknown_field",
        "[[step]]\non = \"2026-10-10\"",
        "[[product]]\nkey = \"analytics\"\noutage = { from = \"2026-10-12\", to = \"2026-10-13\" }\n\n[[step]]\non = \"2026-10-10\"",
    ),
    (
        "product_retry_horizon_not_a_length",
        "[[step]]\non = \"2026-10-10\"",
        "[[product]]\nkey = \"analytics\"\nretry_horizon = \"3 days\"\n\n[[step]]\non = \"2026-10-10\"",
    ),
    (
        "product_retry_horizon_zero",
        "[[step]]\non = \"2026-10-10\"",
        "[[product]]\nkey = \"analytics\"\nretry_horizon = \"0h\"\n\n[[step]]\non = \"2026-10-10\"",
    ),
    (
        "product_fault_unknown_product",
        r#"change_plan = { tenant = "acme-analytics", plan = "business" }"#,
        r#"product_fault = { product = "warehouse", fault = "status_500", times = 1 }"#,
    ),
    (
        "product_fault_unknown_fault",
        r#"change_plan = { tenant = "acme-analytics", plan = "business" }"#,
        r#"product_fault = { product = "analytics", fault = "explode", times = 1 }"#,
    ),
    (
        "product_fault_times_zero",
        r#"change_plan = { tenant = "acme-analytics", plan = "business" }"#,
        r#"product_fault = { product = "analytics", fault = "timeout", times = 0 }"#,
    ),
    (
        "product_drift_on_a_tenant_of_another_product",
        r#"change_plan = { tenant = "acme-analytics", plan = "business" }"#,
        r#"product_drift = { product = "crm", tenant = "acme-analytics" }"#,
    ),
    (
        "product_drift_unknown_tenant",
        r#"change_plan = { tenant = "acme-analytics", plan = "business" }"#,
        r#"product_drift = { product = "analytics", tenant = "globex" }"#,
    ),
    (
        "contract_unknown_metric",
        r#"change_plan = { tenant = "acme-analytics", plan = "business" }"#,
        r#"contract = { tenant = "acme-analytics", plan = "pro", included = { storage_gb = 100 } }"#,
    ),
    (
        "contract_negative_price",
        r#"change_plan = { tenant = "acme-analytics", plan = "business" }"#,
        r#"contract = { tenant = "acme-analytics", overage = { api_calls = { block = 1000, price = "-10" } } }"#,
    ),
    (
        "contract_block_of_zero",
        r#"change_plan = { tenant = "acme-analytics", plan = "business" }"#,
        r#"contract = { tenant = "acme-analytics", overage = { api_calls = { block = 0, price = "10" } } }"#,
    ),
    (
        "contract_negative_quota",
        r#"change_plan = { tenant = "acme-analytics", plan = "business" }"#,
        r#"contract = { tenant = "acme-analytics", included = { api_calls = -1 } }"#,
    ),
    (
        "contract_unknown_tenant",
        r#"change_plan = { tenant = "acme-analytics", plan = "business" }"#,
        r#"contract = { tenant = "globex", base_fee = "100" }"#,
    ),
    (
        "contract_unknown_base_plan",
        r#"change_plan = { tenant = "acme-analytics", plan = "business" }"#,
        r#"contract = { tenant = "acme-analytics", plan = "enterprise" }"#,
    ),
    (
        "contract_starts_on_in_a_step",
        r#"change_plan = { tenant = "acme-analytics", plan = "business" }"#,
        r#"contract = { tenant = "acme-analytics", starts_on = "2026-10-01", base_fee = "100" }"#,
    ),
    (
        "contract_term_ends_before_it_starts",
        r#"change_plan = { tenant = "acme-analytics", plan = "business" }"#,
        r#"contract = { tenant = "acme-analytics", base_fee = "100", ends_on = "2026-10-20" }"#,
    ),
    (
        "purge_unknown_org",
        r#"change_plan = { tenant = "acme-analytics", plan = "business" }"#,
        r#"purge = { org = "globex" }"#,
    ),
    (
        "purge_unknown_user",
        r#"change_plan = { tenant = "acme-analytics", plan = "business" }"#,
        r#"purge = { user = "nobody@acme.test" }"#,
    ),
    (
        "purge_org_and_user",
        r#"change_plan = { tenant = "acme-analytics", plan = "business" }"#,
        r#"purge = { org = "acme", user = "jo@acme.test" }"#,
    ),
    (
        "org_owner_not_an_email",
        r#"card = "ok""#,
        "card = \"ok\"\nowner = \"jo\"",
    ),
    (
        "expect_unknown_tenant",
        r#"change_plan = { tenant = "acme-analytics", plan = "business" }"#,
        r#"change_plan = { tenant = "acme-analytics", plan = "business" }

[[expect]]
invoice = { tenant = "globex", period = "2026-10", total = "70258" }"#,
    ),
    (
        "expect_period_not_a_month",
        r#"change_plan = { tenant = "acme-analytics", plan = "business" }"#,
        r#"change_plan = { tenant = "acme-analytics", plan = "business" }

[[expect]]
invoice = { tenant = "acme-analytics", period = "2026-13", total = "70258" }"#,
    ),
    (
        "expect_total_not_an_amount",
        r#"change_plan = { tenant = "acme-analytics", plan = "business" }"#,
        r#"change_plan = { tenant = "acme-analytics", plan = "business" }

[[expect]]
invoice = { tenant = "acme-analytics", period = "2026-10", total = "lots" }"#,
    ),
    (
        "expect_unknown_invoice_status",
        r#"change_plan = { tenant = "acme-analytics", plan = "business" }"#,
        r#"change_plan = { tenant = "acme-analytics", plan = "business" }

[[expect]]
invoice = { tenant = "acme-analytics", period = "2026-10", status = "settled" }"#,
    ),
    (
        "expect_unknown_field",
        r#"change_plan = { tenant = "acme-analytics", plan = "business" }"#,
        r#"change_plan = { tenant = "acme-analytics", plan = "business" }

[[expect]]
invoice = { tenant = "acme-analytics", period = "2026-10", amount = "70258" }"#,
    ),
    (
        "expect_two_things_in_one_table",
        r#"change_plan = { tenant = "acme-analytics", plan = "business" }"#,
        r#"change_plan = { tenant = "acme-analytics", plan = "business" }

[[expect]]
invoice = { tenant = "acme-analytics", period = "2026-10", total = "70258" }
subscription = { tenant = "acme-analytics", status = "active" }"#,
    ),
    (
        "expect_attempt_that_cannot_happen",
        r#"change_plan = { tenant = "acme-analytics", plan = "business" }"#,
        r#"change_plan = { tenant = "acme-analytics", plan = "business" }

[[expect]]
payment = { tenant = "acme-analytics", on = "2026-11-05", outcome = "failed", attempt = 5 }"#,
    ),
    (
        "expect_unknown_payment_outcome",
        r#"change_plan = { tenant = "acme-analytics", plan = "business" }"#,
        r#"change_plan = { tenant = "acme-analytics", plan = "business" }

[[expect]]
payment = { tenant = "acme-analytics", on = "2026-11-05", outcome = "bounced" }"#,
    ),
    (
        "expect_unknown_plan",
        r#"change_plan = { tenant = "acme-analytics", plan = "business" }"#,
        r#"change_plan = { tenant = "acme-analytics", plan = "business" }

[[expect]]
subscription = { tenant = "acme-analytics", plan = "enterprise" }"#,
    ),
    (
        "inline_catalog_negative_fee",
        "[[org]]",
        "[catalog]\n[[catalog.plan]]\nkey = \"pro\"\nproduct = \"analytics\"\nbase_fee = \"-1\"\n[[catalog.plan]]\nkey = \"business\"\nproduct = \"analytics\"\nbase_fee = \"2\"\n\n[[org]]",
    ),
    (
        "inline_catalog_tax_rate_of_one",
        "[[org]]",
        "[catalog]\ntax_rate = \"1\"\n[[catalog.plan]]\nkey = \"pro\"\nproduct = \"analytics\"\nbase_fee = \"1\"\n[[catalog.plan]]\nkey = \"business\"\nproduct = \"analytics\"\nbase_fee = \"2\"\n\n[[org]]",
    ),
    (
        "inline_catalog_charge_day_29",
        "[[org]]",
        "[catalog]\ncharge_day = 29\n[[catalog.plan]]\nkey = \"pro\"\nproduct = \"analytics\"\nbase_fee = \"1\"\n[[catalog.plan]]\nkey = \"business\"\nproduct = \"analytics\"\nbase_fee = \"2\"\n\n[[org]]",
    ),
    (
        "inline_catalog_negative_limit",
        "[[org]]",
        "[catalog]\n[[catalog.plan]]\nkey = \"pro\"\nproduct = \"analytics\"\nbase_fee = \"1\"\nlimits = { seats = -1 }\n[[catalog.plan]]\nkey = \"business\"\nproduct = \"analytics\"\nbase_fee = \"2\"\n\n[[org]]",
    ),
    (
        "owner_who_is_a_member_of_another_org",
        r#"card = "ok""#,
        "card = \"ok\"\nmembers = [\"jo@acme.test\"]\n\n[[org]]\nkey = \"globex\"\nowner = \"jo@acme.test\"",
    ),
    (
        "owner_of_two_orgs",
        r#"card = "ok""#,
        "card = \"ok\"\nowner = \"jo@acme.test\"\n\n[[org]]\nkey = \"globex\"\nowner = \"jo@acme.test\"",
    ),
];

fn catalog() -> billing_harness::model::Catalog {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scenarios/catalog.toml");
    scenario::parse_catalog(
        "scenarios/catalog.toml",
        &std::fs::read_to_string(path).unwrap(),
    )
    .unwrap()
}

#[test]
fn the_valid_file_parses() {
    let s = scenario::parse("valid.toml", VALID, Some(&catalog())).unwrap();
    assert_eq!((s.orgs.len(), s.tenants.len(), s.steps.len()), (1, 1, 2));
}

/// Files at the edge of each rule that the malformed ones break: each is the valid file with
/// one edit, as in [`CASES`], and parses.
const EDGES: &[(&str, &str, &str)] = &[
    (
        "a step on the until day",
        r#"on = "2026-10-20""#,
        r#"on = "2026-11-10""#,
    ),
    (
        "usage of the step's own day",
        r#"change_plan = { tenant = "acme-analytics", plan = "business" }"#,
        r#"usage = { tenant = "acme-analytics", metric = "api_calls", quantity = 5, day = "2026-10-20" }"#,
    ),
    (
        "a metric a contract prices, on a plan of another product",
        r#"change_plan = { tenant = "acme-analytics", plan = "business" }"#,
        r#"contract = { tenant = "acme-analytics", plan = "crm-basic", included = { contacts = 100 } }

[[step]]
on = "2026-10-21"
usage = { tenant = "acme-analytics", metric = "contacts", quantity = 5 }"#,
    ),
    (
        "a catalog at its bounds: a tax just below 1, charge days 2 and 28, a limit of 0",
        "[[org]]",
        "[catalog]\ntax_rate = \"0.99\"\ncharge_day = 28\n[[catalog.plan]]\nkey = \"pro\"\nproduct = \"analytics\"\nbase_fee = \"0\"\nlimits = { seats = 0 }\n[[catalog.plan]]\nkey = \"business\"\nproduct = \"analytics\"\nbase_fee = \"2\"\n\n[[org]]",
    ),
    (
        "two orgs, each with its own owner and member",
        r#"card = "ok""#,
        "card = \"ok\"\nowner = \"jo@acme.test\"\nmembers = [\"kim@acme.test\"]\n\n[[org]]\nkey = \"globex\"\nowner = \"ann@globex.test\"\nmembers = [\"lee@globex.test\"]",
    ),
];

#[test]
fn files_at_the_edge_of_each_rule_parse() {
    let catalog = catalog();
    for (what, from, to) in EDGES {
        assert!(
            VALID.contains(from),
            "{what}: {from:?} is not in the valid file"
        );
        let source = VALID.replacen(from, to, 1);
        if let Err(e) = scenario::parse("edge.toml", &source, Some(&catalog)) {
            panic!("{what}:\n{}", e.render());
        }
    }
    let source = VALID.replacen("[[org]]", EDGES[3].2.replace("= 28", "= 2").as_str(), 1);
    let s = scenario::parse("edge.toml", &source, Some(&catalog)).unwrap();
    assert_eq!(s.catalog.charge_day, 2);
}

#[test]
fn product_tables_and_product_steps_parse_into_their_meaning() {
    use billing_harness::products::Fault;
    use billing_scenarios::{Action, DrawnFaults, ScriptedFault};
    let source = VALID
        .replacen(
            "[[step]]",
            "[[product]]\nkey = \"analytics\"\nstrict = true\nfault_rate = 0.25\n\
             faults = [{ fault = \"reply_lost\", times = 2 }]\n\n[[step]]",
            1,
        )
        .replace(
            r#"change_plan = { tenant = "acme-analytics", plan = "business" }"#,
            r#"product_fault = { product = "crm", fault = "duplicate", times = 3 }

[[step]]
on = "2026-10-21"
product_drift = { product = "analytics", tenant = "acme-analytics" }"#,
        );
    let s = scenario::parse("products.toml", &source, Some(&catalog()))
        .unwrap_or_else(|e| panic!("{}", e.render()));
    let p = &s.products[0];
    assert_eq!((p.key.as_str(), p.strict), ("analytics", true));
    assert_eq!(
        p.drawn,
        Some(DrawnFaults {
            rate: 0.25,
            seed: 1
        })
    );
    assert_eq!(
        p.faults,
        [ScriptedFault {
            fault: Fault::ReplyLost,
            times: 2
        }]
    );
    let fault = &s.steps[1].action;
    assert_eq!(
        fault.display(&s).to_string(),
        "put duplicate on the next 3 writes to crm"
    );
    assert_eq!(
        *fault,
        Action::ProductFault {
            product: "crm".into(),
            fault: ScriptedFault {
                fault: Fault::Duplicate,
                times: 3
            }
        }
    );
    assert_eq!(
        s.steps[2].action.display(&s).to_string(),
        "drift acme-analytics in analytics"
    );
}

#[test]
fn an_outage_and_a_retry_horizon_parse_into_instants_of_the_catalogs_time_zone() {
    use billing_harness::products::{Fault, Outage};
    use chrono::{TimeDelta, TimeZone, Utc};
    let with = |table: &str| {
        let source = VALID.replacen(
            "[[step]]",
            &format!("[[product]]\nkey = \"analytics\"\n{table}\n\n[[step]]"),
            1,
        );
        let s = scenario::parse("outage.toml", &source, Some(&catalog()))
            .unwrap_or_else(|e| panic!("{}", e.render()));
        s.products[0].clone()
    };
    let p = with(
        "retry_horizon = \"6h\"\noutage = { from = \"2026-10-10T09:30\", until = \"2026-10-14\", \
         fault = \"reset\" }",
    );
    // Asia/Seoul is UTC+9: 09:30 local is 00:30 UTC, and the 14th starts at 15:00 UTC the day
    // before.
    let (from, until) = (
        Utc.with_ymd_and_hms(2026, 10, 10, 0, 30, 0).unwrap(),
        Utc.with_ymd_and_hms(2026, 10, 13, 15, 0, 0).unwrap(),
    );
    assert_eq!(
        p.outage,
        Some(Outage::new(from, until, Fault::Reset).unwrap())
    );
    assert_eq!(p.retry_horizon, Some(TimeDelta::hours(6)));
    let p = with("outage = { from = \"2026-10-10T09:30:15\", until = \"2026-11-10\" }");
    let outage = p.outage.unwrap();
    assert_eq!(
        (outage.fault(), outage.from(), p.retry_horizon),
        (Fault::Status503, from + TimeDelta::seconds(15), None),
        "status_503 by default; seconds are read; the platform's horizon by default; an \
         outage may end at until"
    );
    for (text, length) in [("90s", 90), ("45m", 2_700), ("30d", 2_592_000)] {
        let p = with(&format!("retry_horizon = \"{text}\""));
        assert_eq!(p.retry_horizon, Some(TimeDelta::seconds(length)), "{text}");
    }
}

#[test]
fn every_malformed_file_gets_a_precise_diagnostic() {
    assert!(CASES.len() >= 45);
    let catalog = catalog();
    let mut rendered = String::new();
    for (name, from, to) in CASES {
        assert!(
            VALID.contains(from),
            "case {name}: {from:?} is not in the valid file"
        );
        let source = VALID.replacen(from, to, 1);
        let path = format!("{name}.toml");
        let err = scenario::parse(&path, &source, Some(&catalog))
            .err()
            .unwrap_or_else(|| panic!("case {name} parsed"));
        let problem = &err.problems()[0];
        assert!(problem.line() >= 1 && problem.column() >= 1, "{name}");
        rendered.push_str(&format!(
            "==== {name} (line {}, column {})\n{}\n",
            problem.line(),
            problem.column(),
            err.render()
        ));
    }
    insta::with_settings!({
        snapshot_path => "../../../snapshots/scenario_errors",
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_snapshot!("malformed", rendered);
    });
}
