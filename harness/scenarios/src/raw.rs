//! Stage one of reading a scenario, a catalog or a contract file: the TOML as written, every
//! value with its span, unknown fields refused. No meaning is checked here; [`super::validate`]
//! (and [`super::contract`] for contract terms) does that.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::diagnostic::{Problems, ScenarioError};

/// A scenario file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawScenario {
    pub(crate) version: Spanned<i64>,
    pub(crate) name: Spanned<String>,
    #[serde(default)]
    pub(crate) description: Option<String>,
    pub(crate) start: Spanned<String>,
    pub(crate) until: Spanned<String>,
    #[serde(default)]
    pub(crate) catalog: Option<Spanned<RawCatalog>>,
    #[serde(default)]
    pub(crate) org: Vec<Spanned<RawOrg>>,
    #[serde(default)]
    pub(crate) tenant: Vec<Spanned<RawTenant>>,
    #[serde(default)]
    pub(crate) product: Vec<Spanned<RawProduct>>,
    #[serde(default)]
    pub(crate) step: Vec<Spanned<RawStep>>,
    #[serde(default)]
    pub(crate) expect: Vec<Spanned<RawExpect>>,
}

/// A `[[product]]` table: how one product's mock behaves.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProduct {
    pub(crate) key: Spanned<String>,
    #[serde(default)]
    pub(crate) strict: Option<bool>,
    #[serde(default)]
    pub(crate) fault_rate: Option<Spanned<f64>>,
    #[serde(default)]
    pub(crate) fault_seed: Option<Spanned<i64>>,
    #[serde(default)]
    pub(crate) faults: Vec<Spanned<RawFault>>,
    #[serde(default)]
    pub(crate) outage: Option<Spanned<RawOutage>>,
    #[serde(default)]
    pub(crate) retry_horizon: Option<Spanned<String>>,
}

/// An outage: `{ from = "2026-10-10T09:00", until = "2026-10-10T11:00", fault = "reset" }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOutage {
    pub(crate) from: Spanned<String>,
    pub(crate) until: Spanned<String>,
    #[serde(default)]
    pub(crate) fault: Option<Spanned<String>>,
}

/// A scripted fault: `{ fault = "status_500", times = 2 }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFault {
    pub(crate) fault: Spanned<String>,
    pub(crate) times: Spanned<i64>,
}

/// A catalog: inline in a scenario, or the whole of `scenarios/catalog.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCatalog {
    #[serde(default)]
    pub(crate) currency: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) tax_rate: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) time_zone: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) charge_day: Option<Spanned<i64>>,
    #[serde(default)]
    pub(crate) plan: Vec<Spanned<RawPlan>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPlan {
    pub(crate) key: Spanned<String>,
    pub(crate) product: Spanned<String>,
    pub(crate) base_fee: Spanned<String>,
    #[serde(default)]
    pub(crate) currency: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) included: BTreeMap<String, Spanned<i64>>,
    #[serde(default)]
    pub(crate) overage: BTreeMap<String, Spanned<RawOverage>>,
    #[serde(default)]
    pub(crate) limits: BTreeMap<String, Spanned<i64>>,
}

/// Overage terms as written, in a plan or a contract: `{ block = N, price = "..." }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOverage {
    pub(crate) block: Spanned<i64>,
    pub(crate) price: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOrg {
    pub(crate) key: Spanned<String>,
    #[serde(default)]
    pub(crate) name: Option<String>,
    #[serde(default)]
    pub(crate) card: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) owner: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) members: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTenant {
    pub(crate) key: Spanned<String>,
    pub(crate) org: Spanned<String>,
    pub(crate) product: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStep {
    pub(crate) on: Spanned<String>,
    #[serde(default)]
    pub(crate) subscribe: Option<Spanned<RawTenantPlan>>,
    #[serde(default)]
    pub(crate) change_plan: Option<Spanned<RawTenantPlan>>,
    #[serde(default)]
    pub(crate) cancel: Option<Spanned<RawTenantRef>>,
    #[serde(default)]
    pub(crate) usage: Option<Spanned<RawUsage>>,
    #[serde(default)]
    pub(crate) set_card: Option<Spanned<RawSetCard>>,
    #[serde(default)]
    pub(crate) product_fault: Option<Spanned<RawProductFault>>,
    #[serde(default)]
    pub(crate) product_drift: Option<Spanned<RawProductDrift>>,
    #[serde(default)]
    pub(crate) contract: Option<Spanned<RawContract>>,
    #[serde(default)]
    pub(crate) purge: Option<Spanned<RawPurge>>,
    #[serde(default)]
    pub(crate) expect_error: Option<Spanned<String>>,
}

/// `purge = { org = "acme" }` or `purge = { user = "jo@acme.test" }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPurge {
    #[serde(default)]
    pub(crate) org: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) user: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTenantPlan {
    pub(crate) tenant: Spanned<String>,
    pub(crate) plan: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTenantRef {
    pub(crate) tenant: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawUsage {
    pub(crate) tenant: Spanned<String>,
    pub(crate) metric: Spanned<String>,
    pub(crate) quantity: Spanned<i64>,
    #[serde(default)]
    pub(crate) day: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSetCard {
    pub(crate) org: Spanned<String>,
    pub(crate) card: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProductFault {
    pub(crate) product: Spanned<String>,
    pub(crate) fault: Spanned<String>,
    pub(crate) times: Spanned<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProductDrift {
    pub(crate) product: Spanned<String>,
    pub(crate) tenant: Spanned<String>,
}

/// A contract as written: in a scenario step (`tenant` is a tenant key) or in a contract file
/// (`tenant` is a slug, with `starts_on`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawContract {
    pub(crate) tenant: Spanned<String>,
    #[serde(default)]
    pub(crate) starts_on: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) plan: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) base_fee: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) included: BTreeMap<String, Spanned<i64>>,
    #[serde(default)]
    pub(crate) overage: BTreeMap<String, Spanned<RawOverage>>,
    #[serde(default)]
    pub(crate) limits: BTreeMap<String, Spanned<i64>>,
    #[serde(default)]
    pub(crate) spec: Option<Spanned<toml::Table>>,
    #[serde(default)]
    pub(crate) ends_on: Option<Spanned<String>>,
}

/// An `[[expect]]` table as written: exactly one of its fields is expected.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawExpect {
    #[serde(default)]
    pub(crate) invoice: Option<Spanned<RawInvoice>>,
    #[serde(default)]
    pub(crate) payment: Option<Spanned<RawPayment>>,
    #[serde(default)]
    pub(crate) subscription: Option<Spanned<RawSubscription>>,
}

/// `invoice = { .. }` in an `[[expect]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawInvoice {
    pub(crate) tenant: Spanned<String>,
    pub(crate) period: Spanned<String>,
    #[serde(default)]
    pub(crate) total: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) subtotal: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) tax: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) status: Option<Spanned<String>>,
}

/// `payment = { .. }` in an `[[expect]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPayment {
    pub(crate) tenant: Spanned<String>,
    pub(crate) on: Spanned<String>,
    pub(crate) outcome: Spanned<String>,
    #[serde(default)]
    pub(crate) attempt: Option<Spanned<i64>>,
    #[serde(default)]
    pub(crate) amount: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) failure_code: Option<Spanned<String>>,
}

/// `subscription = { .. }` in an `[[expect]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSubscription {
    pub(crate) tenant: Spanned<String>,
    #[serde(default)]
    pub(crate) plan: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) status: Option<Spanned<String>>,
}

/// Deserializes `source` (`path` names it in diagnostics) into a raw shape; a TOML or shape
/// error is one problem at its span, with a hint for the usual mistakes.
pub(crate) fn from_toml<T: serde::de::DeserializeOwned>(
    path: &str,
    source: &str,
) -> Result<T, ScenarioError> {
    toml::from_str(source).map_err(|e| {
        let mut problems = Problems::new(path, source);
        let span = e.span().unwrap_or(0..0);
        let message = e.message().trim().to_owned();
        let help = if message.contains("unknown field") {
            Some("check the spelling; the scenario format is documented in `billing_scenarios`".to_owned())
        } else if message.contains("missing field") {
            Some("every scenario needs version, name, start and until; steps need `on`".to_owned())
        } else if message.contains("invalid type") {
            Some("numbers are bare (quantity = 120000); amounts and dates are quoted (\"99000\", \"2026-10-01\")".to_owned())
        } else {
            None
        };
        problems.add(span, message, "here", help);
        problems.finish().expect_err("cannot fail: one problem was just added")
    })
}
