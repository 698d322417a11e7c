//! `t.contract()`: a sales-led contract for a tenant in one typed chain, without SQL: custom fee,
//! quotas, overage prices, limits, the tenant's spec and the term's end.

use std::future::{Future, IntoFuture};
use std::pin::Pin;

use rust_decimal::Decimal;

use super::BuildError;
use crate::TestEnv;
use crate::dates::Day;
use crate::model::{ContractTerms, Overage, TenantId};
use crate::platform::AppliedContract;

/// A contract to apply; every term left out comes from the base plan. `.await` it, after
/// `.on(day)` for another day than the clock's.
#[derive(Debug)]
#[must_use = "a contract is applied only when awaited"]
pub struct ContractBuilder<'e> {
    env: &'e TestEnv,
    tenant: TenantId,
    terms: ContractTerms,
    on: Option<Day>,
    bad: Option<String>,
}

impl<'e> ContractBuilder<'e> {
    pub(crate) fn new(env: &'e TestEnv, tenant: TenantId) -> ContractBuilder<'e> {
        ContractBuilder {
            env,
            tenant,
            terms: ContractTerms::default(),
            on: None,
            bad: None,
        }
    }

    fn money(&mut self, what: &str, value: &str) -> Option<Decimal> {
        match value.parse() {
            Ok(v) => Some(v),
            Err(_) => {
                self.bad = Some(format!("{what} {value:?} is not an amount"));
                None
            }
        }
    }

    /// The catalog plan the contract is made from (default: the tenant's plan, or the base of
    /// its contract).
    pub fn plan(mut self, plan: impl Into<String>) -> Self {
        self.terms.plan = Some(plan.into());
        self
    }

    /// The monthly base fee, e.g. `"1500000"` (default: the base plan's).
    pub fn base_fee(mut self, fee: &str) -> Self {
        self.terms.base_fee = self.money("the base fee", fee);
        self
    }

    /// Units of `metric` included each month (default: the base plan's).
    pub fn included(mut self, metric: impl Into<String>, units: u64) -> Self {
        self.terms.included.insert(metric.into(), units);
        self
    }

    /// `price` for every started `block` of `metric` above the quota (default: the base plan's).
    pub fn overage(mut self, metric: impl Into<String>, block: u64, price: &str) -> Self {
        let metric = metric.into();
        if let Some(price) = self.money(&format!("the overage price of {metric}"), price) {
            self.terms.overage.insert(metric, Overage { block, price });
        }
        self
    }

    /// A limit (a contract detail), e.g. `seats` (default: the base plan's).
    pub fn limit(mut self, name: impl Into<String>, value: i64) -> Self {
        self.terms.limits.insert(name.into(), value);
        self
    }

    /// The tenant's new spec, a JSON object (default: unchanged).
    pub fn spec(mut self, spec: serde_json::Value) -> Self {
        match spec {
            serde_json::Value::Object(map) => self.terms.spec = Some(map),
            other => self.bad = Some(format!("a spec is a JSON object, not {other}")),
        }
        self
    }

    /// The first day the contract no longer covers (default: open-ended).
    pub fn ends_on(mut self, day: Day) -> Self {
        self.terms.term_ends_on = Some(day.date());
        self
    }

    /// Applies it on `day`: the clock moves there first (running the jobs on the way).
    pub fn on(mut self, day: Day) -> Self {
        self.on = Some(day);
        self
    }

    /// The terms as plain values, without touching the database.
    pub fn terms(&self) -> &ContractTerms {
        &self.terms
    }
}

type ContractFuture<'e> =
    Pin<Box<dyn Future<Output = Result<AppliedContract, BuildError>> + Send + 'e>>;

impl<'e> IntoFuture for ContractBuilder<'e> {
    type Output = Result<AppliedContract, BuildError>;
    type IntoFuture = ContractFuture<'e>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            if let Some(bad) = self.bad {
                return Err(crate::platform::DomainError::InvalidTerms(bad).into());
            }
            if let Some(day) = self.on {
                self.env.clock().travel_to(day).await?;
            }
            let at = self.env.clock().now();
            Ok(self
                .env
                .platform()
                .apply_contract(self.tenant, &self.terms, at)
                .await?)
        })
    }
}
