//! `env.build().tenant()`: tenants, their subscription and usage, built through the platform's
//! operations so that subscription, contract, contract details, billing, billing details and
//! usage always agree.

use std::future::{Future, IntoFuture};
use std::pin::Pin;

use serde::Serialize;

use super::BuildError;
use super::lookup::{next_sequence, plan_product};
use super::org::{OrgBuilder, OrgSpec};
use super::user::member;
use crate::TestEnv;
use crate::dates::{Day, day_of};
use crate::model::{Month, OrgId, TenantId};
use crate::payments::TestCard;
use crate::platform::Timeline;
use crate::platform::{StoredInvoice, UsageRecord};
use crate::world::Org;

/// Type state of a [`TenantBuilder`] without a plan: it can create a tenant, but not a
/// subscription.
#[derive(Debug, Clone, Copy)]
pub struct NoPlan;

/// Type state of a [`TenantBuilder`] with a plan: it creates a subscribed tenant.
#[derive(Debug, Clone)]
pub struct WithPlan {
    plan: String,
    on: Option<Day>,
    past_due: bool,
    daily_usage: Vec<(String, i64)>,
}

#[derive(Debug, Clone, Copy)]
enum OrgChoice {
    Default,
    Given(Org),
    Own(Option<TestCard>),
}

/// Builds a tenant. Without [`TenantBuilder::plan`] it has no subscription, and the
/// subscription's options (`subscribed_on`, `past_due`, `daily_usage`) do not exist:
///
/// ```compile_fail
/// # async fn f(env: billing_harness::TestEnv) {
/// // A subscription without a plan does not compile.
/// env.build().tenant().subscribed_on(env.months_ago(1).day(10)).create().await;
/// # }
/// ```
#[derive(Debug)]
#[must_use]
pub struct TenantBuilder<'e, P> {
    env: &'e TestEnv,
    product: Option<String>,
    name: Option<String>,
    org: OrgChoice,
    users: u32,
    plan: P,
}

/// A tenant as plain values: what [`TenantBuilder::build`] returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TenantSpec {
    /// Its name and slug.
    pub name: String,
    /// Its product.
    pub product: String,
    /// The plan subscribed to, if any.
    pub plan: Option<String>,
    /// The day of the subscription.
    pub subscribed_on: Option<chrono::NaiveDate>,
    /// Its own organization, when it does not join the test's default one.
    pub org: Option<OrgSpec>,
    /// How many product users it gets.
    pub users: u32,
}

impl<'e> TenantBuilder<'e, NoPlan> {
    pub(crate) fn new(env: &'e TestEnv) -> Self {
        TenantBuilder {
            env,
            product: None,
            name: None,
            org: OrgChoice::Default,
            users: 0,
            plan: NoPlan,
        }
    }

    /// Subscribes the tenant to `plan` (a key of the catalog).
    pub fn plan(self, plan: impl Into<String>) -> TenantBuilder<'e, WithPlan> {
        TenantBuilder {
            env: self.env,
            product: self.product,
            name: self.name,
            org: self.org,
            users: self.users,
            plan: WithPlan {
                plan: plan.into(),
                on: None,
                past_due: false,
                daily_usage: Vec::new(),
            },
        }
    }

    /// Creates the tenant, without a subscription.
    ///
    /// # Errors
    /// The database refused a row (an unknown product, say).
    pub async fn create(self) -> Result<Tenant<'e>, BuildError> {
        self.create_tenant().await
    }

    /// The tenant as plain values, without touching the database.
    pub fn build(self) -> TenantSpec {
        self.spec(None, None)
    }
}

impl<'e, P> TenantBuilder<'e, P> {
    /// Its product (default: the plan's product, else `analytics`).
    pub fn product(mut self, product: impl Into<String>) -> Self {
        self.product = Some(product.into());
        self
    }

    /// Its name and slug (default: `<product>-<n>` from the sequence).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Puts it in `org` (default: the test's one default organization, made on first use with
    /// an `ok` card).
    pub fn org(mut self, org: &Org) -> Self {
        self.org = OrgChoice::Given(*org);
        self
    }

    /// Gives it an organization of its own, with this card.
    pub fn card(mut self, card: TestCard) -> Self {
        self.org = OrgChoice::Own(Some(card));
        self
    }

    /// Gives it an organization of its own without a card.
    pub fn without_card(mut self) -> Self {
        self.org = OrgChoice::Own(None);
        self
    }

    /// Transient: signs `n` members up in its organization and gives them access to it
    /// (default: none).
    pub fn users(mut self, n: u32) -> Self {
        self.users = n;
        self
    }

    fn spec(&self, plan: Option<&str>, on: Option<Day>) -> TenantSpec {
        let product = self
            .product
            .clone()
            .or_else(|| {
                plan.and_then(|p| super::default_catalog().plan(p).map(|p| p.product.clone()))
            })
            .unwrap_or_else(|| "analytics".into());
        TenantSpec {
            name: self.name.clone().unwrap_or_else(|| format!("{product}-0")),
            product,
            plan: plan.map(str::to_owned),
            subscribed_on: on.map(Day::date),
            org: match self.org {
                OrgChoice::Own(card) => {
                    let org = OrgBuilder::new(self.env);
                    Some(
                        match card {
                            Some(card) => org.card(card),
                            None => org.without_card(),
                        }
                        .build(),
                    )
                }
                _ => None,
            },
            users: self.users,
        }
    }

    async fn resolve_org(&self) -> Result<Org, BuildError> {
        match self.org {
            OrgChoice::Given(org) => Ok(org),
            OrgChoice::Own(card) => {
                let org = OrgBuilder::new(self.env);
                match card {
                    Some(card) => org.card(card),
                    None => org.without_card(),
                }
                .create()
                .await
            }
            OrgChoice::Default => {
                let mut default = self.env.world().default_org.lock().await;
                if let Some(org) = *default {
                    return Ok(org);
                }
                let org = OrgBuilder::new(self.env).create().await?;
                *default = Some(org);
                Ok(org)
            }
        }
    }

    async fn create_tenant(&self) -> Result<Tenant<'e>, BuildError> {
        let env = self.env;
        env.ensure_catalog().await?;
        let org = self.resolve_org().await?;
        let product = match &self.product {
            Some(p) => p.clone(),
            None => "analytics".into(),
        };
        let name = match &self.name {
            Some(name) => name.clone(),
            None => format!("{product}-{}", next_sequence(env).await?),
        };
        let id = env
            .platform()
            .create_tenant(org.id, &product, &name, env.clock().now())
            .await?;
        for _ in 0..self.users {
            let user = member(env, &org).await?;
            env.platform()
                .add_product_user(id, user, "member", env.clock().now())
                .await?;
        }
        Ok(Tenant {
            env,
            id,
            org: org.id,
        })
    }
}

impl<'e> TenantBuilder<'e, WithPlan> {
    /// Subscribes on this day (default: the clock's now). A day before the clock moves the
    /// clock back, which is allowed until a job has acted.
    pub fn subscribed_on(mut self, day: Day) -> Self {
        self.plan.on = Some(day);
        self
    }

    /// Trait: a past-due subscription. Its own organization gets a `declined` card, it is
    /// subscribed on the 1st of last month, and the clock runs through this month's charge day
    /// so the first charge fails.
    pub fn past_due(mut self) -> Self {
        self.plan.past_due = true;
        self.org = OrgChoice::Own(Some(TestCard::Declined));
        self
    }

    /// Transient: `quantity` units of `metric` every day from the subscription day to the day
    /// before today.
    pub fn daily_usage(mut self, metric: impl Into<String>, quantity: i64) -> Self {
        self.plan.daily_usage.push((metric.into(), quantity));
        self
    }

    /// The tenant as plain values, without touching the database.
    pub fn build(self) -> TenantSpec {
        self.spec(Some(&self.plan.plan.clone()), self.plan.on)
    }

    /// Creates the tenant and subscribes it, through the platform's operations.
    ///
    /// # Errors
    /// The platform refused the subscription (`card_required`, `plan_product_mismatch`, ...),
    /// the clock could not move to the day, or the database failed.
    pub async fn create(mut self) -> Result<Tenant<'e>, BuildError> {
        let env = self.env;
        env.ensure_catalog().await?;
        if self.product.is_none() {
            self.product = plan_product(env, &self.plan.plan).await?;
        }
        let on = match (self.plan.on, self.plan.past_due) {
            (Some(day), _) => Some(day),
            (None, true) => Some(env.last_month().first_day()),
            (None, false) => None,
        };
        if let Some(day) = on {
            env.clock().travel_to(day).await?;
        }
        let tenant = self.create_tenant().await?;
        let at = env.clock().now();
        env.platform()
            .subscribe(tenant.id, &self.plan.plan, at)
            .await?;
        let start = day_of(at, env.world().tz);
        let today = env.today();
        for (metric, quantity) in &self.plan.daily_usage {
            tenant
                .usage_pattern(metric.clone())
                .daily(*quantity)
                .from(start)
                .until(today)
                .await?;
        }
        if self.plan.past_due {
            let charge_day = env.platform().settings().await?.calendar.charge_day();
            let charge = env.this_month().day(charge_day);
            if env.clock().now() < charge.midnight() {
                env.clock().travel_to(charge).await?;
            }
        }
        Ok(tenant)
    }
}

/// A created tenant, and what can happen to it.
#[derive(Debug, Clone, Copy)]
pub struct Tenant<'e> {
    env: &'e TestEnv,
    id: TenantId,
    org: OrgId,
}

impl<'e> Tenant<'e> {
    /// Its id.
    pub fn id(&self) -> TenantId {
        self.id
    }

    /// Its organization.
    pub fn org(&self) -> OrgId {
        self.org
    }

    /// Changes its plan; add `.on(day)` to do it on another day than the clock's.
    pub fn change_plan(&self, plan: impl Into<String>) -> Op<'e> {
        self.op(OpKind::ChangePlan(plan.into()))
    }

    /// Cancels its subscription; add `.on(day)` for another day.
    pub fn cancel(&self) -> Op<'e> {
        self.op(OpKind::Cancel)
    }

    /// A sales contract for it: custom fee, quotas, overage, limits, spec; `.await` to apply it.
    pub fn contract(&self) -> super::ContractBuilder<'e> {
        super::ContractBuilder::new(self.env, self.id)
    }

    /// Replaces its spec (deployment sizing, a JSON object); add `.on(day)` for another day.
    pub fn set_spec(&self, spec: serde_json::Value) -> Op<'e> {
        self.op(OpKind::Spec(spec))
    }

    /// Deletes it (its live subscription is cancelled that day); add `.on(day)` for another day.
    pub fn delete(&self) -> Op<'e> {
        self.op(OpKind::Delete)
    }

    /// Records usage today; add `.on(day)` for another day.
    pub fn usage(&self, metric: impl Into<String>, quantity: i64) -> Op<'e> {
        self.op(OpKind::Usage(metric.into(), quantity))
    }

    /// Bulk usage: a daily or hourly pattern, or a total spread over days.
    pub fn usage_pattern(&self, metric: impl Into<String>) -> UsagePattern<'e> {
        UsagePattern {
            env: self.env,
            tenant: self.id,
            metric: metric.into(),
            shape: Shape::Daily(1),
            from: None,
            until: None,
        }
    }

    /// Registers a new card for its organization, used from the next charge on.
    ///
    /// # Errors
    /// The database failed.
    pub async fn replace_card(&self, card: TestCard) -> Result<(), BuildError> {
        self.env
            .platform()
            .register_card(self.org, card, self.env.clock().now())
            .await?;
        Ok(())
    }

    /// Its invoice for `month`, if the month was closed.
    ///
    /// # Errors
    /// The database failed.
    pub async fn invoice(
        &self,
        month: impl Into<Month>,
    ) -> Result<Option<StoredInvoice>, BuildError> {
        let month = month.into();
        Ok(self
            .invoices()
            .await?
            .into_iter()
            .find(|i| i.invoice.month == month))
    }

    /// All its invoices, oldest first.
    ///
    /// # Errors
    /// The database failed.
    pub async fn invoices(&self) -> Result<Vec<StoredInvoice>, BuildError> {
        Ok(self.env.platform().invoices(self.id).await?)
    }

    /// Its payment timeline.
    ///
    /// # Errors
    /// The database failed.
    pub async fn timeline(&self) -> Result<Timeline, BuildError> {
        Ok(crate::platform::timeline(self.env.pool(), self.id).await?)
    }

    fn op(&self, kind: OpKind) -> Op<'e> {
        Op {
            env: self.env,
            tenant: self.id,
            kind,
            on: None,
        }
    }
}

#[derive(Debug, Clone)]
enum OpKind {
    ChangePlan(String),
    Cancel,
    Usage(String, i64),
    Spec(serde_json::Value),
    Delete,
}

/// One operation on a tenant; `.await` it, after `.on(day)` if it happens on another day.
#[derive(Debug)]
#[must_use = "an operation does nothing until awaited"]
pub struct Op<'e> {
    env: &'e TestEnv,
    tenant: TenantId,
    kind: OpKind,
    on: Option<Day>,
}

impl Op<'_> {
    /// Does it on `day`: the clock moves there first (running the jobs on the way). Usage for a
    /// day before the clock is recorded late, without moving the clock.
    pub fn on(mut self, day: Day) -> Self {
        self.on = Some(day);
        self
    }
}

type OpFuture<'e> = Pin<Box<dyn Future<Output = Result<(), BuildError>> + Send + 'e>>;

impl<'e> IntoFuture for Op<'e> {
    type Output = Result<(), BuildError>;
    type IntoFuture = OpFuture<'e>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let env = self.env;
            let p = env.platform();
            let clock = env.clock();
            match (&self.kind, self.on) {
                (OpKind::Usage(..), Some(day)) if day.midnight() <= clock.now() => {}
                (_, Some(day)) => {
                    clock.travel_to(day).await?;
                }
                (_, None) => {}
            }
            let at = clock.now();
            match self.kind {
                OpKind::ChangePlan(plan) => p.change_plan(self.tenant, &plan, at).await?,
                OpKind::Cancel => p.cancel(self.tenant, at).await?,
                OpKind::Spec(spec) => p.set_tenant_spec(self.tenant, &spec, at).await?,
                OpKind::Delete => p.delete_tenant(self.tenant, at).await?,
                OpKind::Usage(metric, quantity) => {
                    let day = self.on.unwrap_or_else(|| day_of(at, env.world().tz));
                    p.record_usage(self.tenant, &metric, quantity, day.date(), at)
                        .await?;
                }
            }
            Ok(())
        })
    }
}

#[derive(Debug, Clone, Copy)]
enum Shape {
    Daily(i64),
    Hourly(i64),
    Total(i64),
}

/// Bulk usage of one metric over days `[from, until)`, recorded in one batch at the clock's
/// now; `.await` it.
#[derive(Debug)]
#[must_use = "usage is recorded only when awaited"]
pub struct UsagePattern<'e> {
    env: &'e TestEnv,
    tenant: TenantId,
    metric: String,
    shape: Shape,
    from: Option<Day>,
    until: Option<Day>,
}

impl UsagePattern<'_> {
    /// `quantity` units once a day.
    pub fn daily(mut self, quantity: i64) -> Self {
        self.shape = Shape::Daily(quantity);
        self
    }

    /// `quantity` units every hour: 24 events a day.
    pub fn hourly(mut self, quantity: i64) -> Self {
        self.shape = Shape::Hourly(quantity);
        self
    }

    /// `total` units spread evenly over the days, the remainder on the first ones.
    pub fn total(mut self, total: i64) -> Self {
        self.shape = Shape::Total(total);
        self
    }

    /// The first day (default: the 1st of the clock's month).
    pub fn from(mut self, day: Day) -> Self {
        self.from = Some(day);
        self
    }

    /// The first day not included (default: the clock's today).
    pub fn until(mut self, day: Day) -> Self {
        self.until = Some(day);
        self
    }

    /// The events the pattern makes, without recording them.
    pub fn records(&self) -> Vec<UsageRecord> {
        let today = day_of(self.env.clock().now(), self.env.world().tz);
        let from = self.from.unwrap_or_else(|| today.month().first_day());
        let until = self.until.unwrap_or(today);
        let days: Vec<Day> = (0..)
            .map(|n| from.plus_days(n))
            .take_while(|d| d.date() < until.date())
            .collect();
        let record = |day: Day, quantity: i64| UsageRecord {
            day: day.date(),
            metric: self.metric.clone(),
            quantity,
        };
        match self.shape {
            Shape::Daily(q) => days.iter().map(|d| record(*d, q)).collect(),
            Shape::Hourly(q) => days
                .iter()
                .flat_map(|d| std::iter::repeat_n(*d, 24))
                .map(|d| record(d, q))
                .collect(),
            Shape::Total(total) => {
                let n = days.len() as i64;
                days.iter()
                    .enumerate()
                    .map(|(i, d)| {
                        let extra = i64::from((i as i64) < total.rem_euclid(n.max(1)));
                        record(*d, total.div_euclid(n.max(1)) + extra)
                    })
                    .filter(|r| r.quantity > 0)
                    .collect()
            }
        }
    }
}

impl<'e> IntoFuture for UsagePattern<'e> {
    type Output = Result<(), BuildError>;
    type IntoFuture = OpFuture<'e>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let records = self.records();
            self.env
                .platform()
                .record_usage_batch(self.tenant, &records, self.env.clock().now())
                .await?;
            Ok(())
        })
    }
}
