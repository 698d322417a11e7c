//! Scenarios for QA: TOML files that describe a billing case once (catalog, organizations,
//! tenants, dated steps), checked with precise diagnostics and run on a throwaway database.
//!
//! Reading is two stages: `raw` deserializes the text with spans and refuses unknown fields;
//! `validate` checks meaning (dates, references, cards, codes) and yields a [`Scenario`]. The
//! runner ([`run()`]) plays it on a [`billing_harness::TestEnv`] and returns an [`Outcome`].
//! Any billing implementation can play a scenario through the [`driver`] traits;
//! [`run_with`] plays each file through one and through the reference platform
//! ([`Reference`]) and compares every result.
//!
//! The format, version 1:
//!
//! ```toml
//! version = 1
//! name = "pro upgraded mid-month"
//! start = "2026-10-01"        # the clock starts at 00:00 (catalog time zone) on this day
//! until = "2026-11-10"        # after the last step, the clock runs to 00:00 of this day
//!
//! [[org]]
//! key = "acme"
//! card = "ok"                 # ok | declined | insufficient_funds | expired | fail_times:N | timeout
//! owner = "owner@acme.test"   # optional: the owner's e-mail address (default: a fake one)
//! members = ["jo@acme.test"]  # optional: members signed up with it
//!
//! [[tenant]]
//! key = "acme-analytics"
//! org = "acme"
//! product = "analytics"
//!
//! [[step]]
//! on = "2026-10-10"
//! subscribe = { tenant = "acme-analytics", plan = "pro" }
//!
//! [[step]]
//! on = "2026-10-20"
//! change_plan = { tenant = "acme-analytics", plan = "pro" }
//! expect_error = "same_plan"
//! ```
//!
//! Without a `[catalog]` table the scenario uses `scenarios/catalog.toml`. Step kinds:
//! `subscribe`, `change_plan` (`tenant`, `plan`), `cancel` (`tenant`), `usage` (`tenant`,
//! `metric`, `quantity`, and optionally `day`: the day the units were used when it is before
//! the step's `on`, i.e. usage reported late), `set_card` (`org`, `card`), `product_fault`
//! (`product`, `fault`, `times`: the fault on that product's next `times` writes from the
//! step's day on) and `product_drift` (`product`, `tenant`: the product changes its own copy of
//! one of its tenants behind the platform's back; the reconciler must find and repair it) and
//! `contract` (`tenant`, and the terms over a catalog plan: `plan` (default: the tenant's plan,
//! or its contract's base), `base_fee`, `included = { METRIC = N }`, `overage = { METRIC =
//! { block = N, price = "..." } }`, `limits = { NAME = N }`, `spec = { ... }`, `ends_on`;
//! a term left out is the base plan's; the contract starts on the step's day and follows the
//! plan-change rules, so `expect_error = "plan_change_limit"`, `"currency_mismatch"` or
//! `"card_required"` apply) and
//! `purge` (`org = KEY`, or `user = EMAIL`, an owner's or member's address from an `[[org]]`:
//! see [`billing_harness::purge`]; the outcome lists what each purge deleted per table and the deletions
//! the products were told of, under `purges`). Seeding adds `+RUN` to each address.
//!
//! Every product of the catalog gets a mock of the product sync API (`billing_harness::products`). A
//! `[[product]]` table sets one up:
//!
//! ```toml
//! [[product]]
//! key = "analytics"             # a product of the catalog
//! strict = true                 # a request outside the API fails the run (default false)
//! fault_rate = 0.3              # a fault drawn for each unscripted write with this probability
//! fault_seed = 7                # the draws' seed (default 1)
//! faults = [{ fault = "status_500", times = 2 }, { fault = "reply_lost", times = 1 }]
//! # down from 09:00 on the 10th until (not including) 11:00, local time of the catalog's zone;
//! # every request in the window fails with `fault` (status_500, status_503 by default, timeout
//! # or reset); the outage must end by `until`. Dates alone mean 00:00.
//! outage = { from = "2026-10-10T09:00", until = "2026-10-10T11:00", fault = "reset" }
//! retry_horizon = "6h"          # a failing row is retried this long, then a dead letter (default 3d)
//! ```
//!
//! A row that fails is retried with a backoff that doubles from 2 s up to an hour (plus seeded
//! jitter) until its product's retry horizon has passed since its first failure; then it is a
//! dead letter. The daily reconcile (00:00 every day) re-queues the dead letters of each product
//! that answers and repairs drift, so a product back from any outage holds the platform's data
//! after the next one.
//!
//! `[[expect]]` tables write down what the run must show at `until`, from the rules, by hand
//! (see [`Expectation`]); each that does not hold fails the run with a diagnostic at its field:
//!
//! ```toml
//! [[expect]]
//! invoice = { tenant = "acme-analytics", period = "2026-10", total = "70258", status = "paid" }
//! [[expect]]
//! payment = { tenant = "acme-analytics", on = "2026-11-05", outcome = "succeeded", attempt = 1 }
//! [[expect]]
//! subscription = { tenant = "acme-analytics", plan = "pro", status = "active" }
//! ```
//!
//! Faults: `status_500`, `status_503`, `delay`, `timeout`, `reset`, `reply_lost`, `duplicate`
//! (see `billing_harness::products::Fault`). At `until` the runner runs product sync to idle and
//! reconciles ([`billing_harness::TestEnv::converge`]); a product that does not converge fails the run
//! with its drift report. Each product of the outcome says when it converged (`converged_at`, its
//! last delivery in test time) and which rows waited longest (`longest_wait`).

mod conformance;
mod contract;
mod diagnostic;
pub mod driver;
mod expect;
mod load;
mod outcome;
mod raw;
pub mod report;
mod run;
pub mod snapshot;
mod validate;

pub use conformance::{Conformance, Difference, ScenarioConformance, Verdict, conform, run_with};
pub use contract::{ContractFile, parse_contract_file};
pub use diagnostic::{Problem, ScenarioError};
pub use driver::{Driver, DriverError, ReadBack, Session};
pub use load::{load, parse, parse_catalog};
pub use outcome::{
    LongestWait, Outcome, OutcomeError, OutcomeInvoice, OutcomeLine, OutcomePayment,
    OutcomeProduct, OutcomeProductState, OutcomeProductSubscription, OutcomeProductTenant,
    OutcomeProductUser, OutcomePurge, OutcomeStatusChange, OutcomeSubscription, ProductSync,
};
pub use run::{
    Reference, ReferenceSession, RunError, RunOptions, SYNC_TIMEOUT, play_session, run, run_on,
};
pub use validate::{
    Action, ActionDisplay, DrawnFaults, ERROR_CODES, Expectation, Expected, OrgDef, ProductDef,
    PurgeStep, Scenario, ScriptedFault, Step, TenantDef, VERSION,
};

/// The workspace README's examples, compiled as doctests so that they stay true: here, the one
/// crate that sees every layer a README example uses.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
mod readme {}

/// Every page of the book (`docs/`, an mdBook), compiled as doctests like the README: its Rust
/// blocks must compile, so an example cannot go stale (xtask's `docs` tests check that each page
/// with a Rust block is listed here).
#[cfg(doctest)]
mod book {
    #[doc = include_str!("../../../docs/introduction.md")]
    mod introduction {}
    #[doc = include_str!("../../../docs/tests.md")]
    mod tests {}
    #[doc = include_str!("../../../docs/adopting.md")]
    mod adopting {}
    #[doc = include_str!("../../../docs/product-sync.md")]
    mod product_sync {}
    #[doc = include_str!("../../../docs/shared-databases.md")]
    mod shared_databases {}
    #[doc = include_str!("../../../docs/qa.md")]
    mod qa {}
    #[doc = include_str!("../../../docs/qa-ko.md")]
    mod qa_ko {}
    #[doc = include_str!("../../../docs/ci.md")]
    mod ci {}
    #[doc = include_str!("../../../docs/commands.md")]
    mod commands {}
    #[doc = include_str!("../../../docs/reference/cli.md")]
    mod reference_cli {}
    #[doc = include_str!("../../../docs/scenario-format.md")]
    mod scenario_format {}
    #[doc = include_str!("../../../docs/environment.md")]
    mod environment {}
    #[doc = include_str!("../../../docs/security.md")]
    mod security {}
    #[doc = include_str!("../../../docs/crates.md")]
    mod crates {}
    #[doc = include_str!("../../../docs/layout.md")]
    mod layout {}
    #[doc = include_str!("../../../docs/mutation-testing.md")]
    mod mutation_testing {}
    #[doc = include_str!("../../../docs/benchmarks.md")]
    mod benchmarks {}
}
